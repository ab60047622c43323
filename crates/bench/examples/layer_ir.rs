//! A callgrind harness for the `tracing` layer's cost per event: runs
//! `tracing::info!(a = i, b = !i)` N times under one subscriber, chosen by
//! the first argument (`ringtrace`, `nop`, `visit`, or
//! `record`: ringtrace's own record of the same two numbers, no `tracing`), so that
//! `valgrind --tool=callgrind` gives instructions per event of each, built
//! the same way. The second argument is N (default 100000). Run a
//! contender twice with different N: the difference of the counts divided
//! by the difference of N is the cost per event, free of set-up.
//!
//! `cargo build --release -p ringtrace-bench --example layer_ir`, then
//! `valgrind --tool=callgrind --callgrind-out-file=cg.out
//! target/release/examples/layer_ir ringtrace 100000`.

use std::hint::black_box;
use tracing_subscriber::prelude::*;

struct Nop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nop {}

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

ringtrace::declare_event! {
    /// Two numbers: the record `info!(a = i, b = !i)` becomes, written by
    /// ringtrace's own path (the floor: clock, reserve, copy, commit).
    pub struct TwoU64: "layer_ir" / "two_u64" = 942 { a: u64, b: u64 }
}

#[inline(never)]
fn two_u64(i: u64) {
    tracing::info!(a = i, b = !i);
}

fn run(n: u64) {
    for i in 0..n {
        two_u64(black_box(i));
    }
}

fn overwrite_tracer() -> &'static ringtrace::Tracer {
    let tracer = ringtrace::TracerConfig::new()
        .max_contexts(2)
        .mode(ringtrace_ring::Mode::Overwrite)
        .build()
        .expect("tracer");
    Box::leak(Box::new(tracer))
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ringtrace".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    match which.as_str() {
        "ringtrace" => {
            let tracer = overwrite_tracer();
            let sub =
                tracing_subscriber::registry().with(ringtrace::layer::RingtraceLayer::new(tracer));
            tracing::subscriber::with_default(sub, || run(n));
            let st = tracer.stats();
            assert_eq!(st.refused_no_context + st.refused_other, 0, "{st:?}");
        }
        "record" => {
            let t = overwrite_tracer();
            for i in 0..n {
                let i = black_box(i);
                let _ = t.record(&TwoU64 { a: i, b: !i });
            }
        }
        "nop" => {
            let sub = tracing_subscriber::registry().with(Nop);
            tracing::subscriber::with_default(sub, || run(n));
        }
        "visit" => {
            let sub = tracing_subscriber::registry().with(VisitOnly);
            tracing::subscriber::with_default(sub, || run(n));
        }
        other => panic!("unknown contender {other:?}: ringtrace, nop, visit or record"),
    }
}
