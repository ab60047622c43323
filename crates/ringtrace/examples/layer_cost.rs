//! Quick cost check of `tracing::info!(n = i)` through [`RingtraceLayer`]
//! (not a criterion benchmark: that is `cargo bench -p ringtrace-bench
//! --bench layer`). Run with
//! `cargo run --release --features tracing --example layer_cost`, or for
//! instruction counts under callgrind, name a clock and a count:
//! `valgrind --tool=callgrind target/release/examples/layer_cost counter 1000000`
//! (one round; divide `Ir` by the count). `layer_cost nop 1000000` runs
//! the same loop through a do-nothing layer instead (`tracing`'s own
//! dispatch, the bench's `nop_layer`).
//!
//! [`RingtraceLayer`]: ringtrace::layer::RingtraceLayer

use std::hint::black_box;
use std::time::Instant;

use ringtrace::clock::Clock;
use ringtrace::TracerConfig;
use tracing_subscriber::prelude::*;

fn measure(name: &str, clock: Clock, n: u64, rounds: usize) {
    let tracer: &'static ringtrace::Tracer = Box::leak(Box::new(
        TracerConfig::new()
            .max_contexts(1)
            .bytes_per_context(4 << 20)
            .clock(clock)
            .build()
            .expect("tracer"),
    ));
    let sub = tracing_subscriber::registry().with(ringtrace::layer::RingtraceLayer::new(tracer));
    let mut per = Vec::new();
    tracing::subscriber::with_default(sub, || {
        tracing::info!(n = 0u64);
        for _ in 0..rounds {
            let start = Instant::now();
            for i in 0..n {
                tracing::info!(n = black_box(i));
            }
            per.push(start.elapsed().as_nanos() as f64 / n as f64);
        }
    });
    per.sort_by(f64::total_cmp);
    println!(
        "info!(n) through the layer, {name:11}: median {:.1} ns (min {:.1}, max {:.1}) over {rounds} rounds of {n}",
        per[rounds / 2],
        per[0],
        per[rounds - 1]
    );
    let s = tracer.ring_stats(0).expect("stats");
    assert_eq!(s.written, 1 + n * rounds as u64, "{s:?}");
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun + s.entries
    );
}

/// A layer that does nothing.
struct Nop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nop {}

fn measure_nop(n: u64) {
    let sub = tracing_subscriber::registry().with(Nop);
    tracing::subscriber::with_default(sub, || {
        tracing::info!(n = 0u64);
        let start = Instant::now();
        for i in 0..n {
            tracing::info!(n = black_box(i));
        }
        let per = start.elapsed().as_nanos() as f64 / n as f64;
        println!("info!(n) through a do-nothing layer: {per:.1} ns over {n}");
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    if let Some(name) = args.next() {
        if name == "nop" {
            measure_nop(
                args.next()
                    .map_or(1_000_000, |a| a.parse().expect("a count")),
            );
            return;
        }
        let clock = Clock::by_name(&name).expect("a clock name");
        let n = args
            .next()
            .map_or(1_000_000, |a| a.parse().expect("a count"));
        measure(&name, clock, n, 1);
        return;
    }
    for name in ["tsc", "mono", "counter"] {
        match Clock::by_name(name) {
            Ok(c) => measure(name, c, 2_000_000, 7),
            Err(e) => println!("{name}: {e}"),
        }
    }
}
