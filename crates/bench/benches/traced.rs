//! Issue 25's traced-function overhead: one call of an empty function with
//! `#[ringtrace::traced]` (two records, `funcgraph_entry` and
//! `funcgraph_exit`, and two clock reads), with
//! `#[ringtrace::traced(entry_only)]` (one `function` record), and the same
//! function untraced, side by side in one group; `trace!` of a constant
//! string (one `bprint` record) is the one-record peer.
//!
//! The default tracer runs in overwrite mode (it never fills, so every call
//! records) with one context for this thread.
//!
//! Run: `cargo bench -p ringtrace-bench --bench traced` (add `-- --quick`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringtrace::{Mode, TracerConfig};
use std::hint::black_box;

#[inline(never)]
fn untraced(x: u64) -> u64 {
    black_box(x)
}

#[ringtrace::traced]
#[inline(never)]
fn traced_graph(x: u64) -> u64 {
    black_box(x)
}

#[ringtrace::traced(entry_only)]
#[inline(never)]
fn traced_entry_only(x: u64) -> u64 {
    black_box(x)
}

fn benches(c: &mut Criterion) {
    let tracer = ringtrace::init(TracerConfig::new().mode(Mode::Overwrite).max_contexts(4))
        .expect("the default tracer is made once, here");
    let mut g = c.benchmark_group("traced_fn__graph_vs_entry_only_vs_untraced");
    g.throughput(Throughput::Elements(1));
    g.bench_function("untraced", |b| b.iter(|| untraced(black_box(1))));
    g.bench_function("traced_graph", |b| b.iter(|| traced_graph(black_box(1))));
    g.bench_function("traced_entry_only", |b| {
        b.iter(|| traced_entry_only(black_box(1)))
    });
    g.bench_function("trace_printk_peer", |b| {
        b.iter(|| ringtrace::trace!("peer"))
    });
    g.finish();
    let s = tracer.stats();
    let refused = s.refused_no_context + s.refused_in_signal_handler + s.refused_other;
    assert_eq!(refused, 0, "every traced call recorded: {s:?}");
}

criterion_group!(traced, benches);
criterion_main!(traced);
