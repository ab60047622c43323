//! A callgrind harness for the `tracing` layer's cost per event: runs
//! `tracing::info!(a = i, b = !i)` N times under one subscriber, chosen by
//! the first argument (`ringtrace`, `nop`, `visit`, or `record`:
//! ringtrace's own record of the same two numbers, no `tracing`), so that
//! `valgrind --tool=callgrind` gives instructions per event of each, built
//! the same way. The contenders are those of the criterion bench
//! (`ringtrace_bench::layer_setup`). The second argument is N (default
//! 100000). Run a contender twice with different N: the difference of the
//! counts divided by the difference of N is the cost per event, free of
//! set-up. `docs/layer-cost.md` has the commands and the figures.

use ringtrace_bench::layer_setup::{
    assert_recorded, overwrite_tracer, record_two_u64, two_u64, Nop, VisitOnly,
};
use std::hint::black_box;
use tracing_subscriber::prelude::*;

fn run(n: u64) {
    for i in 0..n {
        two_u64(black_box(i));
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "ringtrace".into());
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    match which.as_str() {
        "ringtrace" => {
            let tracer = overwrite_tracer(None);
            let sub =
                tracing_subscriber::registry().with(ringtrace::layer::RingtraceLayer::new(tracer));
            tracing::subscriber::with_default(sub, || run(n));
            assert_recorded(tracer);
        }
        "record" => {
            let t = overwrite_tracer(None);
            for i in 0..n {
                record_two_u64(black_box(t), black_box(i));
            }
            assert_recorded(t);
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
