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
//! - `ringtrace_trace_macro` (for scale, not a `tracing` subscriber):
//!   ringtrace's own `trace!(tracer: t, "n=%llu", i)` into the same tracer,
//!   the record path the layer ends in (clock read, reserve, copy, commit)
//!   without `tracing`'s dispatch and field visit.
//!
//! Each subscriber is made the thread's default (`with_default`) for its
//! run only, so every contender pays the same dispatch. Compare figures of
//! one run only: the machine is shared, so figures of different runs differ
//! by more than the contenders do.
//!
//! Run: `cargo bench -p ringtrace-bench --bench layer` (add `-- --quick`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use tracing_subscriber::prelude::*;

/// A layer that does nothing.
struct Nop;
impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Nop {}

/// A layer that only visits each event's fields, keeping the u64 values.
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

/// A two-context overwrite tracer that lives as long as the benches, with
/// `clock` (the default clock when `None`).
fn leak_tracer(clock: Option<ringtrace::clock::Clock>) -> &'static ringtrace::Tracer {
    let mut cfg = ringtrace::TracerConfig::new()
        .max_contexts(2)
        .mode(ringtrace_ring::Mode::Overwrite);
    if let Some(clock) = clock {
        cfg = cfg.clock(clock);
    }
    Box::leak(Box::new(cfg.build().expect("tracer")))
}

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

/// Checks that the events really went to `tracer`'s rings (overwrite
/// mode: most were overwritten) and that none was refused.
fn assert_recorded(tracer: &ringtrace::Tracer) {
    let recorded: u64 = (0..tracer.max_contexts())
        .filter_map(|r| tracer.ring_stats(r).ok())
        .map(|s| s.entries + s.overrun)
        .sum();
    assert!(recorded > 0, "the layer recorded nothing");
    assert_eq!(ringtrace::layer::RingtraceLayer::untyped(), 0);
    let st = tracer.stats();
    assert_eq!(st.refused_no_context + st.refused_other, 0, "{st:?}");
}

fn two_u64(i: u64) {
    tracing::info!(a = i, b = !i);
}

fn one_u64(i: u64) {
    tracing::info!(n = i);
}

fn two_fields(c: &mut Criterion) {
    let mut g = c.benchmark_group("tracing_info_two_u64__ringtrace_vs_nop_vs_visit");
    g.throughput(Throughput::Elements(1));
    let tracer = leak_tracer(None);
    let layer = ringtrace::layer::RingtraceLayer::new(tracer);
    bench_through(&mut g, "ringtrace_layer", layer, two_u64, || {
        assert_recorded(tracer)
    });
    bench_through(&mut g, "nop_layer", Nop, two_u64, || {});
    bench_through(&mut g, "visit_layer", VisitOnly, two_u64, || {});
    g.finish();
}

fn one_field(c: &mut Criterion) {
    let mut g = c.benchmark_group("tracing_info_one_u64__ringtrace_vs_nop_vs_fmt");
    g.throughput(Throughput::Elements(1));

    let tracer = leak_tracer(None);
    let layer = ringtrace::layer::RingtraceLayer::new(tracer);
    bench_through(&mut g, "ringtrace_layer", layer, one_u64, || {
        assert_recorded(tracer)
    });

    let counter = leak_tracer(Some(ringtrace::clock::Clock::counter()));
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
