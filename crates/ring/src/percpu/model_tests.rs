//! An exhaustive small-state model of the per-CPU protocol.
//!
//! The kernel's abort cannot run under loom, so this enumerates it: on one
//! CPU of a ring of two 64-byte pages, writer A's section is stopped before
//! each of its steps (K, T, C1-C3, each S store, P: `cs::Steps`, in the
//! asm's order), as a preemption, migration or signal would; writer B (a
//! handler or another thread on that CPU) then runs, itself stopped before
//! each of its steps or not at all; then both restart from the top, as the
//! real write path does. The reader (`consume`, the real one) runs between
//! any two steps of the whole run. Before that, 0 to 6 events prefill the
//! ring, read or not, so that the sections cross pages, find the ring full,
//! and carry time extends and absolute stamps.
//!
//! Checked in every run: the reader gets exactly the committed events, in
//! commit order, each once, with its exact payload and time stamp; nothing
//! aborted is ever read; `attempts == committed + dropped`.

use super::cs::{Outcome, Plan, Steps};
use super::storage::PerCpuRing;
use super::write::{plan_event, snapshot};
use super::PerCpuConfig;

const SIZES: [usize; 7] = [4, 20, 8, 13, 28, 1, 40];

fn payload(id: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| id.wrapping_mul(37) ^ (i as u8).wrapping_mul(11) | 1)
        .collect()
}

/// One run's bookkeeping.
struct Run {
    ring: PerCpuRing,
    clock: u64,
    ticks: usize,
    reader_at: usize,
    committed: Vec<(u8, u64, Vec<u8>)>,
    read: Vec<(u64, Vec<u8>)>,
    dropped: usize,
    attempts: usize,
}

/// One attempt in progress.
struct Attempt {
    plan: Box<Plan>,
    ts: u64,
}

impl Run {
    fn new(reader_at: usize) -> Self {
        let config = PerCpuConfig {
            pages: 2,
            page_size: 64,
        };
        Run {
            ring: PerCpuRing::build(config, 1, None).unwrap(),
            clock: 1,
            ticks: 0,
            reader_at,
            committed: Vec::new(),
            read: Vec::new(),
            dropped: 0,
            attempts: 0,
        }
    }

    fn now(&mut self) -> u64 {
        self.clock += match self.clock % 7 {
            3 => (1 << 27) + 5,
            5 => 1 << 40,
            _ => 3,
        };
        self.clock
    }

    fn consume(&mut self) {
        let mut got = Vec::new();
        let mut c = self.ring.consumer(0).unwrap();
        c.consume(|e| got.push((e.timestamp, e.payload.to_vec())))
            .unwrap();
        drop(c);
        self.read.extend(got);
    }

    /// Before every step: the reader runs here if this is its turn.
    fn tick(&mut self) {
        if self.ticks == self.reader_at {
            self.consume();
        }
        self.ticks += 1;
    }

    /// Plans an attempt; `None` when the ring is full (counted as dropped).
    fn plan(&mut self, data: &[u8]) -> Option<Attempt> {
        let snap = snapshot(&self.ring.slots[0]);
        let ts = self.now();
        let mut plan = Box::new(Plan::new());
        match plan_event(&self.ring, 0, &snap, ts, data, &mut plan) {
            Ok(()) => Some(Attempt { plan, ts }),
            Err(_) => None,
        }
    }

    /// Runs an attempt, stopped before step `stop` if it gets there.
    fn run(&mut self, id: u8, data: &[u8], a: &Attempt, stop: usize) -> Outcome {
        let mut steps = Steps::new(&a.plan);
        for s in 0.. {
            if s == stop {
                return Outcome::Aborted;
            }
            self.tick();
            // SAFETY: the plan was made by `plan_event` for this ring and
            // `data`, which outlives the steps.
            if let Some(out) = unsafe { steps.step(true) } {
                if out == Outcome::Committed {
                    self.committed.push((id, a.ts, data.to_vec()));
                }
                return out;
            }
        }
        unreachable!()
    }

    /// One write: attempts with a stop at `stop` for the first, then to the
    /// end. Returns false when the first attempt was stopped (not ended).
    fn write(&mut self, id: u8, data: &[u8], stop: usize) -> bool {
        self.attempts += 1;
        let mut first = true;
        loop {
            let Some(a) = self.plan(data) else {
                self.dropped += 1;
                return true;
            };
            let stop = if first { stop } else { usize::MAX };
            match self.run(id, data, &a, stop) {
                Outcome::Committed => return true,
                Outcome::Aborted if first => return false,
                _ => first = false,
            }
        }
    }

    /// Restarts a write stopped by `write` (not counted again).
    fn restart(&mut self, id: u8, data: &[u8]) {
        self.attempts -= 1;
        assert!(self.write(id, data, usize::MAX));
    }

    fn check(mut self, what: &str) {
        self.consume();
        assert_eq!(self.attempts, self.committed.len() + self.dropped, "{what}");
        assert_eq!(self.read.len(), self.committed.len(), "{what}");
        for ((ts, got), (id, want_ts, want)) in self.read.iter().zip(&self.committed) {
            assert_eq!(ts, want_ts, "{what}: event {id} time stamp");
            assert_eq!(&got[..want.len()], &want[..], "{what}: event {id} payload");
            assert!(
                got[want.len()..].iter().all(|&b| b == 0),
                "{what}: event {id}"
            );
            assert_eq!(got.len(), want.len().max(1).next_multiple_of(4), "{what}");
        }
    }
}

/// One scenario; returns false when the reader's turn came after the end
/// (then later turns are pointless).
fn scenario(
    prefill: usize,
    read_prefill: bool,
    stop_a: usize,
    stop_b: usize,
    reader_at: usize,
) -> bool {
    let mut run = Run::new(usize::MAX);
    for i in 0..prefill {
        let data = payload(i as u8, SIZES[i % SIZES.len()]);
        assert!(run.write(i as u8, &data, usize::MAX));
    }
    if read_prefill {
        run.consume();
    }
    run.reader_at = reader_at;
    let a = payload(100, SIZES[(prefill + 1) % SIZES.len()]);
    let b = payload(200, SIZES[(prefill + 4) % SIZES.len()]);
    let a_done = run.write(100, &a, stop_a);
    let b_done = run.write(200, &b, stop_b);
    if !a_done {
        run.restart(100, &a);
    }
    if !b_done {
        run.restart(200, &b);
    }
    let reached = run.ticks > reader_at;
    let what = format!("prefill {prefill} read {read_prefill} stop A {stop_a} stop B {stop_b} reader at {reader_at}");
    run.check(&what);
    reached
}

#[test]
fn every_abort_point_against_every_reader_point() {
    let mut runs = 0;
    for prefill in 0..=6 {
        for read_prefill in [false, true] {
            for stop_a in 0..=12 {
                for stop_b in (0..=12).chain([usize::MAX]) {
                    for reader_at in 0.. {
                        runs += 1;
                        if !scenario(prefill, read_prefill, stop_a, stop_b, reader_at) {
                            break;
                        }
                    }
                }
            }
        }
    }
    assert!(runs > 10_000, "{runs} runs");
}

/// The model's checks catch a broken protocol: publishing the tail before
/// the copy (a commit that is not the final store), then an abort, shows
/// the reader bytes that were never written.
#[test]
fn model_catches_a_commit_before_the_copy() {
    let mut run = Run::new(usize::MAX);
    let data = payload(1, 20);
    let a = run.plan(&data).unwrap();
    // SAFETY: the plan's tail pointer is this ring's tail word.
    unsafe { a.plan.tail.write(a.plan.new) };
    let mut got = Vec::new();
    let result = run
        .ring
        .consumer(0)
        .unwrap()
        .consume(|e| got.push(e.payload.to_vec()));
    assert!(
        result.is_err() || got != vec![data],
        "the broken section went unnoticed"
    );
}
