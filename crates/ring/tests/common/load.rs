//! A writer thread for integration tests of the ring's operations under
//! load: it writes verified events (kind `OUTER`, increasing sequence
//! numbers, lengths 24..200) through `write` and `reserve`/`commit` while a
//! signaller nests handler writes into it (see `sigwriter`), and counts
//! every outcome, so that a test can check the accounting exactly.
#![allow(dead_code)]

use super::sigwriter::{self, Signaller, CLOCK};
use super::{check, fill, Decoded};
use ringtrace_ring::{Config, Consumer, Mode, RingBuffer, RingStats, WriteError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

/// Payload kind of events written by the writer thread.
pub const OUTER: u8 = 1;

/// What the writers did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Outcome {
    /// Writes that landed (thread + handler).
    pub ok: u64,
    /// Writes refused (recording off, ring disabled).
    pub refused: u64,
    /// Writes dropped (full, commit overrun, nesting).
    pub lost: u64,
    /// Signals sent.
    pub signals: u64,
    /// Events the thread wrote (its next sequence number).
    pub outer_written: u64,
    /// Events the handler attempted.
    pub nested_attempted: u64,
}

/// The writer thread plus its signaller.
pub struct Load {
    stop: Arc<AtomicBool>,
    /// Writes the thread has attempted so far (its next sequence number).
    outer: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<(u64, u64, u64, u64)>>,
    signaller: Option<Signaller>,
}

impl Load {
    /// Starts writing ring `ring` of `buf` (which must outlive the load)
    /// from a new thread, with a handler write every `signal_period`.
    pub fn start(buf: &'static RingBuffer, ring: usize, signal_period: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let outer = Arc::new(AtomicU64::new(0));
        let progress = outer.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut w = buf.writer(ring).unwrap();
            tx.send(sigwriter::become_writer() as usize).unwrap();
            let (mut seq, mut ok, mut refused, mut lost) = (0u64, 0u64, 0u64, 0u64);
            let mut payload = [0u8; 200];
            while !s.load(Relaxed) {
                let len = 24 + (seq * 7 % 176) as usize;
                fill(&mut payload[..len], OUTER, seq, 0);
                let r = if seq % 2 == 0 {
                    w.write(CLOCK.fetch_add(1, Relaxed), &payload[..len])
                } else {
                    w.reserve(CLOCK.fetch_add(1, Relaxed), len).map(|mut res| {
                        res.copy_from_slice(&payload[..len]);
                        res.commit();
                    })
                };
                match r {
                    Ok(()) => ok += 1,
                    Err(WriteError::Disabled) => refused += 1,
                    Err(WriteError::Full | WriteError::CommitOverrun | WriteError::NestTooDeep) => {
                        lost += 1
                    }
                    Err(e) => panic!("unexpected write error {e}"),
                }
                seq += 1;
                progress.store(seq, Relaxed);
                if seq % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            (seq, ok, refused, lost)
        });
        let target = rx.recv().unwrap() as libc::pthread_t;
        let signaller = Signaller::start(buf, ring, target, signal_period);
        Load {
            stop,
            outer,
            thread: Some(thread),
            signaller: Some(signaller),
        }
    }

    /// What the writers have done so far: (writes the thread attempted,
    /// writes its signal handler attempted). A test runs its operations
    /// until these reach the load it needs, instead of for a fixed time.
    pub fn progress(&self) -> (u64, u64) {
        (self.outer.load(Relaxed), sigwriter::SEQ.load(Relaxed))
    }

    /// Stops the signaller, then the writer; returns what they did.
    pub fn stop(mut self) -> Outcome {
        let signals = self.signaller.take().map_or(0, |s| s.stop());
        self.stop.store(true, Relaxed);
        let (seq, ok, refused, lost) = self.thread.take().unwrap().join().unwrap();
        assert_eq!(
            sigwriter::OTHER.load(Relaxed),
            0,
            "unexpected handler errors"
        );
        Outcome {
            ok: ok + sigwriter::OK.load(Relaxed),
            refused: refused + sigwriter::REFUSED.load(Relaxed),
            lost: lost + sigwriter::LOST.load(Relaxed),
            signals,
            outer_written: seq,
            nested_attempted: sigwriter::SEQ.load(Relaxed),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.signaller.take();
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Checks events read (in order) from one ring: every payload intact, each
/// writer's sequence numbers strictly increasing, no duplicates, time
/// stamps never going backwards. Returns how many events of each kind.
#[derive(Debug, Default)]
pub struct Checker {
    last_seq: HashMap<u8, u64>,
    last_ts: u64,
    /// Events seen per kind.
    pub seen: HashMap<u8, u64>,
    /// Events seen in total.
    pub total: u64,
    /// Losses reported with events.
    pub lost_reported: u64,
}

impl Checker {
    /// Checks one event.
    pub fn event(&mut self, payload: &[u8], ts: u64, lost: u64) -> Decoded {
        let d = check(payload).unwrap_or_else(|e| panic!("torn or corrupt event: {e}"));
        if let Some(&prev) = self.last_seq.get(&d.kind) {
            assert!(d.seq > prev, "kind {} seq {} after {}", d.kind, d.seq, prev);
        }
        self.last_seq.insert(d.kind, d.seq);
        assert!(
            ts >= self.last_ts,
            "time went back: {ts} after {}",
            self.last_ts
        );
        self.last_ts = ts;
        *self.seen.entry(d.kind).or_default() += 1;
        self.total += 1;
        self.lost_reported += lost;
        d
    }
}

/// After a load on ring 0 was stopped and its reader drained the ring:
/// every write that landed was committed and read (or overwritten), the
/// losses match, the accounting identity holds with nothing buffered, and
/// every loss was reported to the reader or is still pending on it.
pub fn assert_drained(s: &RingStats, out: &Outcome, check: &Checker, pending_losses: u64) {
    assert_eq!(s.committed, out.ok, "{s:?} {out:?}");
    assert_eq!(s.read, check.total);
    assert_eq!(s.dropped + s.commit_overrun, out.lost);
    super::assert_identity(s, 0);
    assert_eq!(
        check.lost_reported + pending_losses,
        s.overrun + s.dropped + s.commit_overrun,
        "{s:?}"
    );
}

/// A writer thread with a signal handler nesting writes into it, on ring 0
/// of a static 6-page ring in `mode`, read in rounds by `round` (which
/// returns how many units, events or batches, it read) until `enough`
/// units were read and the writers did a run's worth (counted, not timed;
/// `what` names the hang guard); then the load stops, `drain` empties the
/// ring and [`assert_drained`] checks the accounts. Returns the units read
/// and the checker.
pub fn read_under_signal_load(
    mode: Mode,
    what: &'static str,
    enough: u64,
    pause: Duration,
    mut round: impl FnMut(&mut Consumer<'_>, &mut Checker) -> u64,
    drain: impl FnOnce(&mut Consumer<'_>, &mut Checker),
) -> (u64, Checker) {
    let owned = super::Static::new(Config::new(1).pages_per_ring(6).mode(mode));
    let buf = owned.get();
    let load = Load::start(buf, 0, Duration::from_micros(100));
    let mut check = Checker::default();
    let hang = super::Hang::guard(what);
    let mut units = 0u64;
    while units < enough || load.progress().0 < 200_000 || load.progress().1 < 2_000 {
        hang.check(|| format!("{units} read, load {:?}", load.progress()));
        let mut c = buf.consumer(0).unwrap();
        units += round(&mut c, &mut check);
        drop(c);
        std::thread::sleep(pause);
    }
    let out = load.stop();
    let mut c = buf.consumer(0).unwrap();
    drain(&mut c, &mut check);
    let s = buf.stats(0).unwrap();
    assert_drained(&s, &out, &check, c.pending_losses());
    eprintln!("{mode:?}, {what}: {units} read, {s:?}, {out:?}");
    (units, check)
}
