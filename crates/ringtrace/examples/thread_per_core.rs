//! Thread per core: each worker leases an explicit context
//! (`Tracer::context`) and records through its `ContextHandle`, so the
//! program decides which ring (the `[CPU]` column) each thread writes;
//! the handle gives the ring back when dropped.
//!
//! Run: `cargo run -p ringtrace --release --example thread_per_core`

use ringtrace::TracerConfig;

ringtrace::declare_event! {
    /// A batch of packets handled by one core.
    pub struct Batch: "demo" / "batch" = 1200 { core: u32, packets: u32, seq: u64 }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let tracer = TracerConfig::new().max_contexts(cores).build()?;
    tracer.register(Batch::EVENT_TYPE)?;

    std::thread::scope(|s| {
        for core in 0..cores as u32 {
            let tracer = &tracer;
            s.spawn(move || -> Result<(), ringtrace::RecordError> {
                // Pin the thread to `core` here (sched_setaffinity) in a real program.
                let ctx = tracer.context()?;
                ringtrace::trace!(tracer: &ctx, "core %u up on ring %llu", core, ctx.ring() as u64);
                for seq in 0..5u64 {
                    ringtrace::trace_event!(
                        &ctx,
                        Batch {
                            core,
                            packets: 32,
                            seq
                        }
                    );
                }
                ctx.marker("core done");
                Ok(())
            });
        }
    });

    for ring in 0..tracer.max_contexts() {
        println!("# ring {ring}: {} events", tracer.ring_stats(ring)?.entries);
    }
    print!("{}", tracer.pipe().read_to_string()?);
    Ok(())
}
