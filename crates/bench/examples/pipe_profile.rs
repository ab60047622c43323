//! A small run of the pipe section's work, for an instruction profile:
//! `valgrind --tool=callgrind target/release/examples/pipe_profile`.
//! Formats as `ringtrace pipe` does: batches of lines into one reused
//! buffer, each batch written at once.

use ringtrace::clock::Clock;
use std::io::Write as _;

fn main() {
    let t = ringtrace_bench::pc_tracer(64, 4 << 20, Clock::mono());
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..20_000u64 {
                    let _ = ringtrace_bench::drain_rate::mixed_event(&t, i);
                }
            });
        }
    });
    let mut out = std::fs::File::create("/dev/null").expect("null");
    let mut pipe = t.pipe();
    let mut text = String::with_capacity(1 << 16);
    let mut n = 0;
    loop {
        text.clear();
        let got = pipe.read_lines_into(&mut text, 1 << 16).expect("read");
        if got == 0 {
            break;
        }
        out.write_all(text.as_bytes()).expect("write");
        n += got;
    }
    eprintln!("{n} lines");
}
