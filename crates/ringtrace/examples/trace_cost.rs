//! Quick cost check of `trace!` with two u64 arguments, clock read
//! included, on one thread (not a criterion benchmark: those live in
//! crates/bench). Run with `cargo run --release --example trace_cost`.
//!
//! For instruction counts under callgrind, name one clock and a count:
//! `valgrind --tool=callgrind target/release/examples/trace_cost counter 1000000`
//! (one round; divide `Ir` by the count).

mod common;

use std::time::Instant;

use ringtrace::clock::Clock;
use ringtrace::TracerConfig;

fn measure(name: &str, clock: Clock) {
    measure_n(name, clock, 5_000_000, 7);
}

fn measure_n(name: &str, clock: Clock, n: u64, rounds: usize) {
    let t = TracerConfig::new()
        .max_contexts(1)
        .bytes_per_context(64 << 10)
        .clock(clock)
        .build()
        .expect("tracer");
    ringtrace::trace!(tracer: &t, "warm up %llu %llu", 0u64, 0u64);
    let mut per = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for i in 0..n {
            ringtrace::trace!(tracer: &t, "a=%llu b=%llu", i, i ^ 0x5555);
        }
        per.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    common::print_rounds(&format!("trace! two u64, {name:8}"), &mut per, n);
    common::assert_accounts(&t.ring_stats(0).expect("stats"));
}

fn main() {
    let mut args = std::env::args().skip(1);
    if let Some(name) = args.next() {
        let (clock, n) = common::clock_and_count(&name, args.next());
        measure_n(&name, clock, n, 1);
        return;
    }
    for name in ["tsc", "tsc-ordered", "mono", "counter"] {
        match Clock::by_name(name) {
            Ok(c) => measure(name, c),
            Err(e) => println!("{name}: {e}"),
        }
    }
}
