//! Issue 2's write benchmark: single-ring `write` and `reserve`/`commit` of
//! 8, 32 and 128-byte payloads with a time stamp taken once before the loop
//! (no clock read per event), overwrite mode, no reader; measured in the same
//! run as rtrb's chunked byte write of the same record (8-byte time stamp +
//! payload) and a plain `memcpy` of that record into a preallocated buffer.
//!
//! Each group holds the four contenders for one payload size, so criterion's
//! report shows them side by side: the ratio that matters is
//! `ringtrace_write / rtrb_chunk` (target at most 0.7) and
//! `ringtrace_write / memcpy_floor`.
//!
//! Fairness (see `ringtrace_bench::sinks`): every contender has 64 KiB of
//! storage. ringtrace runs in overwrite mode and never fills, so it pays for
//! its page crossings and head pushes. rtrb would fill, so each timed batch
//! writes at most as many records as it holds, and its consumer is drained
//! in bulk (one `read_chunk(slots).commit_all()`, which moves an index)
//! outside the timed section: rtrb always writes into room, its fastest case.
//!
//! Run: `cargo bench -p ringtrace-bench --bench write` (add `-- --quick`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringtrace_bench::record::Record;
use ringtrace_bench::sinks::{bench_ring, time_events, Memcpy, RingReserve, RingWrite, RtrbBytes};
use ringtrace_ring::Mode;
use std::time::Duration;

fn group<const N: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!(
        "write_{N}B_payload+8B_ts__ringtrace_vs_rtrb_vs_memcpy"
    ));
    g.throughput(Throughput::Elements(1));

    g.bench_function("memcpy_floor", |b| {
        let mut sink = Memcpy::new();
        b.iter_custom(|iters| time_events::<N, _>(&mut sink, iters));
    });
    g.bench_function("ringtrace_write", |b| {
        let buf = bench_ring(Mode::Overwrite);
        let mut sink = RingWrite::new(buf.writer(0).expect("ring 0 is free"));
        b.iter_custom(|iters| time_events::<N, _>(&mut sink, iters));
        assert_eq!(sink.errors, 0, "overwrite-mode writes never fail");
    });
    g.bench_function("ringtrace_reserve_commit", |b| {
        let buf = bench_ring(Mode::Overwrite);
        let mut sink = RingReserve::new(buf.writer(0).expect("ring 0 is free"));
        b.iter_custom(|iters| time_events::<N, _>(&mut sink, iters));
        assert_eq!(sink.errors, 0, "overwrite-mode reservations never fail");
    });
    g.bench_function("rtrb_chunk", |b| {
        let mut sink = RtrbBytes::new(Record::<N>::BYTES);
        b.iter_custom(|iters| time_events::<N, _>(&mut sink, iters));
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    group::<8>(c);
    group::<32>(c);
    group::<128>(c);
}

criterion_group! {
    name = write;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = benches
}
criterion_main!(write);
