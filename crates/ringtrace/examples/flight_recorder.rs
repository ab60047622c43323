//! Flight recorder: the rings run in overwrite mode, so they always hold
//! the most recent events and never block or refuse a writer; when the
//! program dies, the tail of the trace is dumped to stderr.
//!
//! Run: `cargo run -p ringtrace --release --example flight_recorder`
//! (ends in a panic: the dump follows the panic message), or with
//! `-- abort` (dies of SIGABRT: the dump comes from the signal handler,
//! which formats without allocating or locking).

use ringtrace::{Mode, TracerConfig};

ringtrace::declare_event! {
    /// One request handled.
    pub struct Request: "demo" / "request" = 1100 { id: u64, status: u32 }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 16 KiB per context: room for a few hundred events, the rest overwritten.
    let tracer = ringtrace::init(
        TracerConfig::new()
            .max_contexts(2)
            .bytes_per_context(16 << 10)
            .mode(Mode::Overwrite),
    )?;
    tracer.dump_on_panic();
    tracer.dump_on_fatal_signal()?;

    for id in 0..100_000u64 {
        let status = if id % 997 == 0 { 500 } else { 200 };
        ringtrace::trace_event!(Request { id, status });
        if status != 200 {
            ringtrace::trace!("request %llu failed with %u", id, status);
        }
    }
    let st = tracer.ring_stats(0)?;
    eprintln!(
        "recorded 100000 requests: {} kept, {} overwritten",
        st.entries, st.overrun
    );

    ringtrace::trace_marker("about to crash");
    if std::env::args().any(|a| a == "abort") {
        std::process::abort(); // SIGABRT: dumped by the signal handler
    }
    panic!("simulated crash"); // dumped by the panic hook
}
