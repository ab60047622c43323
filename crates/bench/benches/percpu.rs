//! Issue 21's ring-write ratio: one event of 8, 32 and 128 payload bytes
//! written into a per-CPU ring (rseq critical section) and into a
//! per-thread ring (`Writer::write`), in the same run, producer/consumer
//! mode, same storage (64 pages of 4 KiB per ring), a time stamp taken once
//! before the loop (the clock is not measured). The target is
//! `per_cpu_ring_write / per_thread_ring_write <= 1.3`.
//!
//! Fairness: both rings are drained outside the timed section after each
//! batch of 1024 events (which fits in either ring), so neither ever
//! drops; each batch is timed as a whole.
//!
//! Run: `cargo bench -p ringtrace-bench --bench percpu` (add `-- --quick`).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringtrace_ring::percpu::{PerCpuConfig, PerCpuRing};
use ringtrace_ring::{Config, Mode, RingBuffer};
use std::hint::black_box;
use std::time::{Duration, Instant};

const PAGES: usize = 64;
const BATCH: u64 = 1024;

/// Times `iters` calls of `write` in batches, running `drain` untimed
/// after each batch.
fn batched(iters: u64, mut write: impl FnMut(), mut drain: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(BATCH);
        let t = Instant::now();
        for _ in 0..n {
            write();
        }
        total += t.elapsed();
        drain();
        left -= n;
    }
    total
}

fn group<const N: usize>(c: &mut Criterion) {
    let mut g = c.benchmark_group(format!("ring_write_{N}B__per_cpu_vs_per_thread"));
    g.throughput(Throughput::Elements(1));
    let payload = [0x5au8; N];

    g.bench_function("per_thread_ring_write", |b| {
        let buf = RingBuffer::new(
            Config::new(1)
                .pages_per_ring(PAGES)
                .page_size(4096)
                .mode(Mode::ProducerConsumer),
        )
        .expect("a valid configuration");
        let mut w = buf.writer(0).expect("ring 0 is free");
        let mut errors = 0u64;
        b.iter_custom(|iters| {
            batched(
                iters,
                || errors += u64::from(w.write(1_000, black_box(&payload)).is_err()),
                || {
                    let mut r = buf.consumer(0).expect("one reader");
                    while let Ok(Some(e)) = r.consume() {
                        black_box(e.payload.len());
                    }
                },
            )
        });
        assert_eq!(errors, 0, "batches fit: no write fails");
    });
    g.bench_function("per_cpu_ring_write", |b| {
        let ring = match PerCpuRing::new(PerCpuConfig::new(PAGES)) {
            Ok(r) => r,
            Err(e) => panic!("per-CPU rings need rseq here: {e}"),
        };
        let mut errors = 0u64;
        b.iter_custom(|iters| {
            batched(
                iters,
                || errors += u64::from(ring.write(|| 1_000, black_box(&payload)).is_err()),
                || {
                    for cpu in 0..ring.cpus() {
                        let mut r = ring.consumer(cpu).expect("one reader");
                        r.consume(|e| {
                            black_box(e.payload.len());
                        })
                        .expect("a valid ring");
                    }
                },
            )
        });
        assert_eq!(errors, 0, "batches fit: no write fails");
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    group::<8>(c);
    group::<32>(c);
    group::<128>(c);
}

criterion_group! {
    name = percpu;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(percpu);
