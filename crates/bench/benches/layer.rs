//! The `tracing` layer's cost per event: `tracing::info!` through several
//! subscribers in the same run, in two groups:
//!
//! - `tracing_info_two_u64__ringtrace_vs_nop_vs_visit`: `info!(a = i, b =
//!   !i)` (two u64 fields, no message), the measure of issue 24 (target: at
//!   most 25 ns per event on the project's usual machine);
//! - `tracing_info_one_u64__ringtrace_vs_nop_vs_fmt`: `info!(n = i)`, the
//!   measure of issue 8 (target: `ringtrace_layer / nop_layer <= 2`).
//!
//! The contenders:
//!
//! - `ringtrace_layer`: `Registry` + `ringtrace::layer::RingtraceLayer`
//!   into a tracer in overwrite mode (a flight recorder that never fills),
//!   default clock;
//! - `nop_layer`: `Registry` + a layer whose callbacks do nothing (the cost
//!   of `tracing`'s dispatch and the `Registry` alone);
//! - `visit_layer`: `Registry` + a layer that only visits the event's
//!   fields (the least any layer that records field values does, before it
//!   reads a clock or stores anything);
//! - `fmt_nonblocking`: `Registry` + `tracing_subscriber::fmt` layer writing
//!   through `tracing_appender::non_blocking` to `io::sink()` (formatting on
//!   the caller, a channel to the writer thread);
//! - `ringtrace_layer_counter_clock` (for scale): the same layer into a
//!   tracer whose clock is `counter` (one atomic increment) instead of the
//!   default (a plain `rdtsc` where the TSC is invariant), to show what the
//!   clock read costs;
//! - `ringtrace_record` (for scale, not a `tracing` subscriber, in the
//!   two-field group): ringtrace's own record of the same two numbers
//!   (`layer_setup::record_two_u64`), the floor a recording layer
//!   approaches on top of `visit_layer`;
//! - `ringtrace_trace_macro` (for scale, not a `tracing` subscriber):
//!   ringtrace's own `trace!(tracer: t, "n=%llu", i)` into the same tracer,
//!   the record path the layer ends in (clock read, reserve, copy, commit)
//!   without `tracing`'s dispatch and field visit.
//!
//! The contenders and events are those of the callgrind harness
//! `examples/layer_ir.rs` (`ringtrace_bench::layer_setup`), which gives
//! instructions per event (`docs/layer-cost.md`).
//!
//! Each subscriber is made the thread's default (`with_default`) for its
//! run only, so every contender pays the same dispatch. Compare figures of
//! one run only: the machine is shared, so figures of different runs differ
//! by more than the contenders do.
//!
//! Run: `cargo bench -p ringtrace-bench --bench layer` (add `-- --quick`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringtrace_bench::layer_setup::{
    assert_recorded, one_u64, overwrite_tracer, record_two_u64, two_u64, Nop, VisitOnly,
};
use std::hint::black_box;
use tracing_subscriber::prelude::*;

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Benches `event(i)` through `layer` (on a `Registry`) as `name`, then
/// runs `check` (when the bench ran: a filter may skip it).
fn bench_through<L>(g: &mut Group<'_>, name: &str, layer: L, event: fn(u64), check: impl Fn())
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync,
{
    let sub = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(sub, || {
        g.bench_function(name, |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                event(black_box(i));
            });
            check();
        });
    });
}

fn two_fields(c: &mut Criterion) {
    let mut g = c.benchmark_group("tracing_info_two_u64__ringtrace_vs_nop_vs_visit");
    g.throughput(Throughput::Elements(1));
    let tracer = overwrite_tracer(None);
    let layer = ringtrace::layer::RingtraceLayer::new(tracer);
    bench_through(&mut g, "ringtrace_layer", layer, two_u64, || {
        assert_recorded(tracer)
    });
    bench_through(&mut g, "nop_layer", Nop, two_u64, || {});
    bench_through(&mut g, "visit_layer", VisitOnly, two_u64, || {});
    let floor = overwrite_tracer(None);
    g.bench_function("ringtrace_record", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            record_two_u64(black_box(floor), black_box(i));
        });
        assert_recorded(floor);
    });
    g.finish();
}

fn one_field(c: &mut Criterion) {
    let mut g = c.benchmark_group("tracing_info_one_u64__ringtrace_vs_nop_vs_fmt");
    g.throughput(Throughput::Elements(1));

    let tracer = overwrite_tracer(None);
    let layer = ringtrace::layer::RingtraceLayer::new(tracer);
    bench_through(&mut g, "ringtrace_layer", layer, one_u64, || {
        assert_recorded(tracer)
    });

    let counter = overwrite_tracer(Some(ringtrace::clock::Clock::counter()));
    let layer = ringtrace::layer::RingtraceLayer::new(counter);
    bench_through(
        &mut g,
        "ringtrace_layer_counter_clock",
        layer,
        one_u64,
        || assert_recorded(counter),
    );

    g.bench_function("ringtrace_trace_macro", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            ringtrace::trace!(tracer: tracer, "n=%llu", black_box(i));
        });
    });

    bench_through(&mut g, "nop_layer", Nop, one_u64, || {});
    bench_through(&mut g, "visit_layer", VisitOnly, one_u64, || {});

    let (writer, _guard) = tracing_appender::non_blocking(std::io::sink());
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(writer);
    bench_through(&mut g, "fmt_nonblocking", fmt, one_u64, || {});
    g.finish();
}

criterion_group!(layer, two_fields, one_field);
criterion_main!(layer);
