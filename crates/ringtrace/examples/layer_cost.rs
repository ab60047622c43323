//! Quick cost check of `tracing::info!(n = i)` through [`RingtraceLayer`]
//! (not a criterion benchmark: that is `cargo bench -p ringtrace-bench
//! --bench layer`). Run with
//! `cargo run --release --features tracing --example layer_cost`, or for
//! instruction counts under callgrind, name a clock and a count:
//! `valgrind --tool=callgrind target/release/examples/layer_cost counter 1000000`
//! (one round; divide `Ir` by the count). `layer_cost nop 1000000` runs
//! the same loop through a do-nothing layer instead (`tracing`'s own
//! dispatch, the bench's `nop_layer`), and `layer_cost visit 1000000`
//! through a layer that only visits the fields (the floor of any layer that
//! records field values).
//!
//! [`RingtraceLayer`]: ringtrace::layer::RingtraceLayer

mod common;

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
    common::print_rounds(
        &format!("info!(n) through the layer, {name:11}"),
        &mut per,
        n,
    );
    let s = tracer.ring_stats(0).expect("stats");
    assert_eq!(s.written, 1 + n * rounds as u64, "{s:?}");
    common::assert_accounts(&s);
}

/// A layer that does nothing.
struct Nop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nop {}

/// A layer that only visits each event's fields, with a visitor that
/// keeps the u64 values: the least any layer that records field values
/// does, whatever it records them into.
struct VisitOnly;
struct KeepU64(u64);
impl tracing::field::Visit for KeepU64 {
    fn record_u64(&mut self, _: &tracing::field::Field, v: u64) {
        self.0 = self.0.wrapping_add(v);
    }
    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for VisitOnly {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut v = KeepU64(0);
        event.record(&mut v);
        black_box(v.0);
    }
}

fn measure_floor<L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync>(
    what: &str,
    layer: L,
    n: u64,
) {
    let sub = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(sub, || {
        tracing::info!(n = 0u64);
        let start = Instant::now();
        for i in 0..n {
            tracing::info!(n = black_box(i));
        }
        let per = start.elapsed().as_nanos() as f64 / n as f64;
        println!("info!(n) through {what}: {per:.1} ns over {n}");
    });
}

fn main() {
    let mut args = std::env::args().skip(1);
    if let Some(name) = args.next() {
        if name == "nop" {
            measure_floor("a do-nothing layer", Nop, common::count(args.next()));
            return;
        }
        if name == "visit" {
            measure_floor(
                "a layer that only visits the fields",
                VisitOnly,
                common::count(args.next()),
            );
            return;
        }
        let (clock, n) = common::clock_and_count(&name, args.next());
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
