//! Scaling: 1 and 2 writer threads, total events per second. ringtrace gives
//! each thread its own ring; `ArrayQueue` and `Mutex<VecDeque>` are shared by
//! both threads. Overwrite semantics everywhere and **no reader thread** (the
//! machine has 2 cores: a reader would take one of them from the writers):
//! ringtrace overwrites its head page, `ArrayQueue::force_push` displaces the
//! oldest record, the deque pops its front when full. 8-byte payloads, 64
//! KiB of storage per ring / per shared queue, time stamp = sequence number.
//! A plain array per thread (no atomics, nothing shared) shows how far the
//! machine itself lets two threads scale.

use crate::record::Record;
use crate::sinks::QUEUE_BYTES;
use crate::stats::Summary;
use crate::throughput::write_loop;
use crate::Settings;
use crossbeam_queue::ArrayQueue;
use ringtrace_ring::{Config, Mode, RingBuffer};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

const REC: usize = Record::<8>::BYTES;

/// One peer's figures.
#[derive(Debug, Clone)]
pub struct Row {
    /// Who.
    pub name: String,
    /// Total events per second with 1 writer thread.
    pub one: Summary,
    /// Total events per second with 2 writer threads.
    pub two: Summary,
    /// Per-round values with 1 thread (round `i` ran 1 then 2 threads).
    pub one_raw: Vec<f64>,
    /// Per-round values with 2 threads.
    pub two_raw: Vec<f64>,
    /// CPUs the process obtained during the 2-thread runs (CPU time ÷ wall
    /// time; 2 when both writers really ran in parallel).
    pub two_cpus: Summary,
}

/// Scaling results.
#[derive(Debug, Clone)]
pub struct ScalingReport {
    /// ringtrace first.
    pub rows: Vec<Row>,
    /// Write errors seen where none are expected.
    pub problems: Vec<String>,
}

/// Runs `threads` threads of `body(thread, time_up)`; total events/s and
/// the CPUs the process obtained meanwhile.
fn run_threads(
    threads: usize,
    run: Duration,
    body: &(dyn Fn(usize, &dyn Fn() -> bool) -> u64 + Sync),
) -> (f64, f64) {
    let start = Barrier::new(threads);
    let cpu0 = crate::machine::process_cpu_secs();
    let wall0 = Instant::now();
    let results: Vec<(u64, f64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    let t0 = Instant::now();
                    let deadline = t0 + run;
                    let n = body(t, &|| Instant::now() >= deadline);
                    (n, t0.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect()
    });
    let events: u64 = results.iter().map(|r| r.0).sum();
    let secs = results.iter().map(|r| r.1).fold(0.0, f64::max);
    let cpus = (crate::machine::process_cpu_secs() - cpu0) / wall0.elapsed().as_secs_f64();
    (events as f64 / secs, cpus)
}

/// Runs every peer with 1 and 2 threads, round-robin over repetitions.
pub fn run(s: &Settings) -> ScalingReport {
    let mut problems = Vec::new();
    let buf = RingBuffer::new(
        Config::new(2)
            .pages_per_ring(QUEUE_BYTES / 4096)
            .mode(Mode::Overwrite),
    )
    .expect("valid configuration");
    let errors = std::sync::atomic::AtomicU64::new(0);
    let ring = |t: usize, time_up: &dyn Fn() -> bool| {
        let mut w = buf.writer(t).expect("each thread its own ring");
        let mut e = 0u64;
        let n = write_loop(time_up, |i| {
            if w.write(i, &i.to_le_bytes()).is_err() {
                e += 1;
            }
        });
        errors.fetch_add(e, std::sync::atomic::Ordering::Relaxed);
        n
    };
    let q = ArrayQueue::<Record<8>>::new(QUEUE_BYTES / REC);
    let aq = |_t: usize, time_up: &dyn Fn() -> bool| {
        write_loop(time_up, |i| {
            black_box(q.force_push(Record::new(i, &i.to_le_bytes())));
        })
    };
    let cap = QUEUE_BYTES / REC;
    let m = Mutex::new(VecDeque::<Record<8>>::with_capacity(cap));
    let mq = |_t: usize, time_up: &dyn Fn() -> bool| {
        write_loop(time_up, |i| {
            let mut q = m.lock().unwrap_or_else(|e| e.into_inner());
            if q.len() == cap {
                black_box(q.pop_front());
            }
            q.push_back(Record::new(i, &i.to_le_bytes()));
        })
    };
    // The machine's ceiling: each thread stores records into its own array
    // (its own allocation, nothing shared, no atomics). Whatever keeps its
    // "2 ÷ 1" below 2 (shared caches, memory, SMT siblings, the
    // hypervisor, other processes) limits every peer alike.
    let own = |_t: usize, time_up: &dyn Fn() -> bool| {
        let mut v = vec![Record::<8>::new(0, &[0; 8]); cap];
        let mut at = 0;
        let n = write_loop(time_up, |i| {
            v[at] = black_box(Record::new(i, &i.to_le_bytes()));
            at += 1;
            if at == cap {
                at = 0;
            }
        });
        black_box(&v);
        n
    };
    type Body<'a> = &'a (dyn Fn(usize, &dyn Fn() -> bool) -> u64 + Sync);
    let peers: [(&str, Body<'_>); 4] = [
        ("ringtrace, one ring per thread", &ring),
        (
            "plain array per thread, nothing shared (the machine's ceiling)",
            &own,
        ),
        ("crossbeam `ArrayQueue`, shared, `force_push`", &aq),
        ("`Mutex<VecDeque>`, shared, pop front when full", &mq),
    ];
    let mut one = vec![Vec::new(); peers.len()];
    let mut two = vec![Vec::new(); peers.len()];
    let mut cpus = vec![Vec::new(); peers.len()];
    for rep in 0..=s.reps {
        for (i, (_, body)) in peers.iter().enumerate() {
            let a = run_threads(1, s.thread_rep_time, *body);
            let b = run_threads(2, s.thread_rep_time, *body);
            if rep > 0 {
                one[i].push(a.0);
                two[i].push(b.0);
                cpus[i].push(b.1);
            }
        }
    }
    let rows = peers
        .iter()
        .enumerate()
        .map(|(i, (name, _))| Row {
            name: (*name).into(),
            one: Summary::of(&one[i]).unwrap_or_else(Summary::nan),
            two: Summary::of(&two[i]).unwrap_or_else(Summary::nan),
            one_raw: one[i].clone(),
            two_raw: two[i].clone(),
            two_cpus: Summary::of(&cpus[i]).unwrap_or_else(Summary::nan),
        })
        .collect();
    let e = errors.load(std::sync::atomic::Ordering::Relaxed);
    if e > 0 {
        problems.push(format!("ringtrace scaling: {e} write errors"));
    }
    ScalingReport { rows, problems }
}
