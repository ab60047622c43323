//! A small run of the pipe section's work, for an instruction profile:
//! `valgrind --tool=callgrind target/release/examples/pipe_profile`.

use ringtrace::clock::Clock;
use ringtrace::{Mode, TracerConfig};
use std::io::Write as _;

fn main() {
    let t = TracerConfig::new()
        .max_contexts(64)
        .bytes_per_context(4 << 20)
        .mode(Mode::ProducerConsumer)
        .clock(Clock::mono())
        .build()
        .expect("tracer");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..20_000u64 {
                    let _ = t.record(&ringtrace::bprintk!(
                        "request %llu took %u us status=%d path=%s",
                        i,
                        (i % 977) as u32,
                        200i32,
                        "/api/v1/items"
                    ));
                }
            });
        }
    });
    let mut out = std::io::BufWriter::new(std::fs::File::create("/dev/null").expect("null"));
    let mut pipe = t.pipe();
    let mut n = 0u64;
    while let Some(l) = pipe.next_line().expect("read") {
        out.write_all(l.as_bytes()).expect("write");
        n += 1;
    }
    out.flush().expect("flush");
    eprintln!("{n} lines");
}
