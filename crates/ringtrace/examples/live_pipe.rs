//! Live pipe: a reader follows writers while they run, like
//! `cat /sys/kernel/tracing/trace_pipe`. The rings run in producer/consumer
//! mode, so a writer that gets ahead of the reader loses its newest events,
//! and the pipe says where (`CPU:N [LOST n EVENTS]`).
//!
//! Run: `cargo run -p ringtrace --release --example live_pipe`

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ringtrace::{Mode, TracerConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tracer = TracerConfig::new()
        .max_contexts(4)
        .bytes_per_context(64 << 10)
        .mode(Mode::ProducerConsumer)
        .build()?;
    let done = AtomicBool::new(false);

    std::thread::scope(
        |s| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            let mut writers = Vec::new();
            for w in 0..3u32 {
                let tracer = &tracer;
                writers.push(
                    std::thread::Builder::new()
                        .name(format!("writer{w}"))
                        .spawn_scoped(s, move || {
                            for i in 0..20_000u64 {
                                ringtrace::trace!(tracer: tracer, "writer %u step %llu", w, i);
                                if i % 1000 == 0 {
                                    std::thread::sleep(Duration::from_millis(1));
                                }
                            }
                        })?,
                );
            }
            let reader = s.spawn(|| -> Result<(u64, u64), ringtrace_ring::ReadError> {
                let mut pipe = tracer.pipe();
                let (mut lines, mut lost) = (0u64, 0u64);
                loop {
                    match pipe.next_line_timeout(Duration::from_millis(50))? {
                        Some(l) if l.starts_with("CPU:") => {
                            lost += 1;
                            print!("{l}");
                        }
                        Some(l) => {
                            lines += 1;
                            if lines % 5000 == 1 {
                                print!("{l}");
                            }
                        }
                        None if done.load(Ordering::Acquire) => return Ok((lines, lost)),
                        None => {}
                    }
                }
            });
            // Wait for the writers, then let the reader drain what is left and stop.
            for w in writers {
                w.join().map_err(|_| "writer panicked")?;
            }
            // Release: pairs with the reader's Acquire load; it stops at the
            // first empty poll after this.
            done.store(true, Ordering::Release);
            match reader.join() {
                Ok(Ok((lines, lost))) => {
                    println!("read {lines} events live; {lost} loss reports");
                    Ok(())
                }
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Err("reader panicked".into()),
            }
        },
    )
    .map_err(|e| e as Box<dyn std::error::Error>)?;
    println!("{:?}", tracer.stats());
    Ok(())
}
