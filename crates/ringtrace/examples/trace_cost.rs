//! Quick cost check of `trace!` with two u64 arguments, clock read
//! included, on one thread (not a criterion benchmark: those live in
//! crates/bench). Run with `cargo run --release --example trace_cost`.

use std::time::Instant;

use ringtrace::clock::Clock;
use ringtrace::TracerConfig;

const N: u64 = 5_000_000;
const ROUNDS: usize = 7;

fn measure(name: &str, clock: Clock) {
    let t = TracerConfig::new()
        .max_contexts(1)
        .bytes_per_context(4 << 20)
        .clock(clock)
        .build()
        .expect("tracer");
    ringtrace::trace!(tracer: &t, "warm up %llu %llu", 0u64, 0u64);
    let mut per = Vec::new();
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for i in 0..N {
            ringtrace::trace!(tracer: &t, "a=%llu b=%llu", i, i ^ 0x5555);
        }
        per.push(start.elapsed().as_nanos() as f64 / N as f64);
    }
    per.sort_by(f64::total_cmp);
    println!(
        "trace! two u64, {name:8}: median {:.1} ns (min {:.1}, max {:.1}) over {ROUNDS} rounds of {N}",
        per[ROUNDS / 2],
        per[0],
        per[ROUNDS - 1]
    );
    let s = t.ring_stats(0).expect("stats");
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun + s.entries
    );
}

fn main() {
    match Clock::tsc() {
        Ok(c) => measure("tsc", c),
        Err(e) => println!("no tsc clock: {e}"),
    }
    if let Ok(c) = Clock::tsc_unordered() {
        measure("tsc-unord", c);
    }
    measure("mono", Clock::mono());
    measure("counter", Clock::counter());
}
