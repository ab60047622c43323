//! `tracing` integration: events and spans from the `tracing` crate go to
//! ringtrace's rings through `RingtraceLayer`, beside the usual `fmt` layer;
//! then the trace is read back as ftrace text.
//!
//! Run: `cargo run -p ringtrace --example tracing_layer --features tracing`
//! (under `ringtrace record -o t.dat -- PROGRAM` the events go to `t.dat`
//! instead: `record` reads the rings).

use tracing_subscriber::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The default tracer, sized before first use.
    let tracer = ringtrace::init(ringtrace::TracerConfig::new().max_contexts(4))?;
    tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(ringtrace::layer::RingtraceLayer::new(tracer))
        .init();

    let span = tracing::info_span!("request", path = "/index.html", attempt = 1u64);
    {
        let _entered = span.enter();
        tracing::info!(bytes = 4096u64, cached = false, "served");
        tracing::warn!(latency_ms = 12.5, "slow");
    }
    std::thread::spawn(|| tracing::debug!(worker = 1u64, "from another thread"))
        .join()
        .ok();

    // Field values were stored in binary; they are formatted here.
    match tracer.pipe().read_to_string() {
        Ok(text) => print!("{text}"),
        // Another consuming reader has the rings: under `ringtrace record`,
        // that is `record`, and the events go to its output.
        Err(e @ ringtrace_ring::ReadError::ReaderHeld { .. }) => {
            eprintln!("tracing_layer: the trace is not printed here: {e}");
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}
