//! Latency snapshots: the kernel's `update_max_tr`, `tracing_max_latency`
//! and `tracing_thresh` for sections of user code.
//!
//! # Terms
//!
//! - **section**: code measured by a guard ([`Latency::section`], or
//!   [`crate::latency()`] on the default tracer); its end records a
//!   `latency` line (`NAME NS ns`) in the tracer.
//! - **max snapshot**: the trace leading up to the end of the slowest
//!   section seen so far (or, with a threshold, of the last section above
//!   it), kept beside the live trace with its latency, name and thread.
//!
//! # How a snapshot is taken
//!
//! ```text
//!  live rings  [events ... NAME N ns]      spare rings [empty]
//!        \___ swap_ring, one ring at a time, writers keep writing ___/
//!  live rings  [empty, writing goes on]      kept        [events ... NAME N ns]
//! ```
//!
//! Each ring is exchanged with the spare's (`RingBuffer::swap_ring`, the
//! kernel's `ring_buffer_swap_cpu`): pages and counters move together, no
//! event is copied, a write in flight on a ring only delays that ring's
//! swap. The protocol in `max.rs` lets one section at a time take a
//! snapshot: a concurrent new max never waits and never tears the kept
//! one; it is counted as beaten.
//!
//! # Contract
//!
//! - The guard's end is ordinary code: it may allocate (the next spare set)
//!   and wait for a write in flight on another thread (bounded by
//!   [`ringtrace_ring::CONTROL_TIMEOUT`]). In a signal handler the section
//!   is only recorded, never snapshotted (counted in `in_handler`).
//! - Nothing is lost silently: the events of a snapshot replaced by a
//!   newer max are counted in [`LatencyStats::replaced`], a failed swap
//!   (a reader holds a ring) in `failed` and said once on stderr.

mod global;
mod max;
mod spec;

pub use global::{global_tracker, global_trackers, latency, MAX_NAMES};
pub use spec::{LatencySpec, SpecError};

/// The environment variable naming the sections to snapshot in a traced
/// program (`NAME[>THRESHOLD],...`): set by `ringtrace record --latency`.
pub const ENV: &str = "RINGTRACE_LATENCY";

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ringtrace_ring::{ConfigError, ControlError, RingBuffer};

use crate::sync::{AtomicU64, Ordering};
use crate::tracer::context::{current_tid, nested};
use crate::tracer::{Tracer, TracerError};
use max::{MaxWord, Offer};

/// What is known of the kept max snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxInfo {
    /// The section's duration, in ns.
    pub latency_ns: u64,
    /// The section's name.
    pub name: String,
    /// The thread that ran it.
    pub tid: i32,
    /// Snapshots kept before this one (0 for the first).
    pub seq: u64,
}

/// Counters of a [`Latency`]; see [`Latency::stats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LatencyStats {
    /// Sections ended.
    pub sections: u64,
    /// Snapshots kept.
    pub kept: u64,
    /// New maxima that found another snapshot in progress: not kept.
    pub beaten: u64,
    /// New maxima in a signal handler: recorded, not snapshotted.
    pub in_handler: u64,
    /// Snapshots that could not be taken (a reader holds a ring, a write
    /// stayed in flight, the spare rings could not be allocated).
    pub failed: u64,
    /// Events of kept snapshots that a newer one replaced before anyone
    /// took them (their counters summed).
    pub replaced: RingTotals,
}

/// Ring counters summed over the rings of a replaced snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingTotals {
    /// Writes attempted.
    pub written: u64,
    /// Events committed.
    pub committed: u64,
    /// Events still unread when the snapshot was replaced (lost with it).
    pub entries: u64,
    /// Writes refused (recording off, or during a swap): not attempts.
    pub refused: u64,
}

/// Why a [`Latency`] could not be made.
#[derive(Debug, thiserror::Error)]
pub enum LatencyError {
    /// The spare rings could not be allocated.
    #[error("latency {name:?}: cannot allocate the spare rings: {source}")]
    Alloc {
        /// The section's name.
        name: String,
        /// Why.
        #[source]
        source: ConfigError,
    },
    /// The spare tracer could not be made.
    #[error("latency {name:?}: {source}")]
    Tracer {
        /// The section's name.
        name: String,
        /// Why.
        #[source]
        source: TracerError,
    },
}

/// A kept max snapshot, taken out of its [`Latency`] by
/// [`Latency::take_max`]: a tracer of its own (heap flavor) holding the
/// swapped-out rings, with the live tracer's thread names, so that every
/// reader and export of [`Tracer`] works on it (`pipe`, `drain`, trace.dat).
#[derive(Debug)]
pub struct MaxSnapshot {
    /// What the snapshot is of.
    pub info: MaxInfo,
    /// The snapshot's events.
    pub tracer: Tracer,
}

/// The kept snapshot and the next spare set; changed only under the claim.
#[derive(Debug, Default)]
struct Slot {
    kept: Option<MaxSnapshot>,
    spare: Option<Tracer>,
}

/// A latency tracker on one tracer: sections of one name, the max (or
/// above-threshold) snapshot kept.
///
/// ```
/// use std::time::Duration;
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// let lat = ringtrace::latency::Latency::new(&t, "commit", None).unwrap();
/// ringtrace::trace!(tracer: &t, "before");
/// drop(lat.section());
/// let snap = lat.take_max().expect("the first section is a new max");
/// assert_eq!(snap.info.name, "commit");
/// let text = snap.tracer.pipe().read_to_string().unwrap();
/// assert!(text.contains("before") && text.contains("latency: commit "), "{text}");
/// assert!(lat.take_max().is_none(), "taken");
/// ```
#[derive(Debug)]
pub struct Latency {
    live: Tracer,
    name: String,
    thresh_ns: u64,
    word: MaxWord,
    slot: Mutex<Slot>,
    seq: AtomicU64,
    sections: AtomicU64,
    kept: AtomicU64,
    in_handler: AtomicU64,
    failed: AtomicU64,
    replaced: Mutex<RingTotals>,
    /// Holds the last kept snapshot's info, for [`Latency::max`] without
    /// the claim. Changed under the claim only.
    info: Mutex<Option<MaxInfo>>,
}

/// A running section; its end is measured when dropped.
#[derive(Debug)]
#[must_use = "the section ends when the guard is dropped"]
pub struct LatencyGuard<'a> {
    /// `None`: a section that is not measured (no tracker for it).
    lat: Option<&'a Latency>,
    start: Instant,
}

impl<'a> LatencyGuard<'a> {
    fn new(lat: Option<&'a Latency>) -> LatencyGuard<'a> {
        LatencyGuard {
            lat,
            start: Instant::now(),
        }
    }
}

impl Drop for LatencyGuard<'_> {
    fn drop(&mut self) {
        if let Some(l) = self.lat {
            l.end(self.start.elapsed());
        }
    }
}

impl Latency {
    /// A tracker of sections named `name` on `tracer`; with `threshold`,
    /// every section longer than it is kept (the last one wins), else
    /// every new max. Allocates the spare rings now.
    pub fn new(
        tracer: &Tracer,
        name: &str,
        threshold: Option<Duration>,
    ) -> Result<Latency, LatencyError> {
        let live = Tracer {
            inner: tracer.inner.clone(),
        };
        let spare = new_spare(&live, name)?;
        Ok(Latency {
            live,
            name: name.to_owned(),
            thresh_ns: threshold.map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64),
            word: MaxWord::default(),
            slot: Mutex::new(Slot {
                kept: None,
                spare: Some(spare),
            }),
            seq: AtomicU64::new(0),
            sections: AtomicU64::new(0),
            kept: AtomicU64::new(0),
            in_handler: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            replaced: Mutex::new(RingTotals::default()),
            info: Mutex::new(None),
        })
    }

    /// The section's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Starts a section; it ends when the guard is dropped.
    pub fn section(&self) -> LatencyGuard<'_> {
        LatencyGuard::new(Some(self))
    }

    /// Ends a section that lasted `d`: records its `latency` line, then
    /// keeps a snapshot if it is a new max (or above the threshold).
    pub fn end(&self, d: Duration) {
        let ns = d.as_nanos().min(u64::MAX as u128) as u64;
        // Relaxed: counters.
        self.sections.fetch_add(1, Ordering::Relaxed);
        crate::trace!(tracer: &self.live, "latency: %s %llu ns", self.name.as_str(), ns);
        if nested() {
            // A handler (or a record in progress) must not swap rings: it
            // could wait for the very write it interrupted.
            if ns > self.word.max().max(self.thresh_ns) {
                self.in_handler.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if let Offer::Won(claim) = self.word.offer(ns, self.thresh_ns) {
            if self.snapshot(ns) {
                claim.keep(ns);
            }
        }
    }

    /// Under the claim: swaps the live rings into the spare set and keeps
    /// it. Whether it was kept.
    fn snapshot(&self, ns: u64) -> bool {
        let mut slot = lock(&self.slot);
        let spare = match slot.spare.take() {
            Some(s) => s,
            None => match new_spare(&self.live, &self.name) {
                Ok(s) => s,
                Err(e) => return self.fail(&e.to_string()),
            },
        };
        if let Err((ring, e)) = swap_all(self.live.ring_buffer(), spare.ring_buffer()) {
            slot.spare = Some(spare);
            return self.fail(&format!("context {ring}: {e}"));
        }
        let info = MaxInfo {
            latency_ns: ns,
            name: self.name.clone(),
            tid: current_tid(),
            seq: self.seq.fetch_add(1, Ordering::Relaxed),
        };
        if let Some(old) = slot.kept.replace(MaxSnapshot {
            info: info.clone(),
            tracer: spare,
        }) {
            self.retire(&old.tracer);
        }
        *lock(&self.info) = Some(info);
        self.kept.fetch_add(1, Ordering::Relaxed);
        // The next spare now, so that the next snapshot is taken as close
        // to its section's end as this one.
        slot.spare = new_spare(&self.live, &self.name).ok();
        true
    }

    /// Counts a failed snapshot; said once on stderr.
    fn fail(&self, why: &str) -> bool {
        if self.failed.fetch_add(1, Ordering::Relaxed) == 0 {
            eprintln!(
                "ringtrace: latency {:?}: a snapshot could not be taken ({why}); \
                 failures are counted in the latency stats",
                self.name
            );
        }
        false
    }

    /// Counts the events of a kept snapshot replaced before anyone took it.
    fn retire(&self, old: &Tracer) {
        let mut r = lock(&self.replaced);
        let buf = old.ring_buffer();
        for ring in 0..buf.rings() {
            if let Ok(s) = buf.stats(ring) {
                r.written += s.written;
                r.committed += s.committed;
                r.entries += s.entries;
                r.refused += s.refused;
            }
        }
    }

    /// The kept snapshot's latency, name and thread (`None`: none kept, or
    /// taken).
    #[must_use]
    pub fn max(&self) -> Option<MaxInfo> {
        lock(&self.info).clone()
    }

    /// The max latency so far in ns (`tracing_max_latency`; with a
    /// threshold, the last kept latency); 0 before the first.
    #[must_use]
    pub fn max_ns(&self) -> u64 {
        self.word.max()
    }

    /// Takes the kept snapshot out (the max stays: only a larger one is
    /// kept next). Waits while a snapshot is being taken (bounded by a
    /// hang guard of [`ringtrace_ring::CONTROL_TIMEOUT`] times 4, then
    /// `None`).
    pub fn take_max(&self) -> Option<MaxSnapshot> {
        let start = Instant::now();
        let claim = loop {
            if let Some(c) = self.word.try_claim() {
                break c;
            }
            if start.elapsed() > ringtrace_ring::CONTROL_TIMEOUT * 4 {
                return None;
            }
            std::thread::yield_now();
        };
        let snap = lock(&self.slot).kept.take();
        *lock(&self.info) = None;
        drop(claim);
        let snap = snap?;
        copy_names(&self.live, &snap.tracer);
        Some(snap)
    }

    /// The tracker's counters.
    #[must_use]
    pub fn stats(&self) -> LatencyStats {
        LatencyStats {
            sections: self.sections.load(Ordering::Relaxed),
            kept: self.kept.load(Ordering::Relaxed),
            beaten: self.word.beaten(),
            in_handler: self.in_handler.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            replaced: *lock(&self.replaced),
        }
    }
}

/// A mutex whose holder never panics while holding it; a poisoned one is
/// still consistent.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A heap tracer with rings of the live tracer's shape, for a snapshot.
fn new_spare(live: &Tracer, name: &str) -> Result<Tracer, LatencyError> {
    let buf =
        RingBuffer::new(*live.ring_buffer().config()).map_err(|source| LatencyError::Alloc {
            name: name.to_owned(),
            source,
        })?;
    Tracer::assemble(*live.config(), buf, None).map_err(|source| LatencyError::Tracer {
        name: name.to_owned(),
        source,
    })
}

/// Swaps every ring of `live` with `spare`'s; on a failure swaps back the
/// ones done and says which ring failed.
fn swap_all(live: &RingBuffer, spare: &RingBuffer) -> Result<(), (usize, ControlError)> {
    for ring in 0..live.rings() {
        if let Err(e) = live.swap_ring(spare, ring) {
            for back in 0..ring {
                let _ = live.swap_ring(spare, back);
            }
            return Err((ring, e));
        }
    }
    Ok(())
}

/// Gives the snapshot the live tracer's thread and process names.
fn copy_names(live: &Tracer, snap: &Tracer) {
    let from = lock(live.inner.cmdlines());
    let mut to = lock(snap.inner.cmdlines());
    for (tid, comm) in from.iter() {
        match from.process_of(tid) {
            Some((pid, p)) => {
                let p = crate::tracer::Comm::new(p);
                to.insert_with_process(tid, *comm, pid, p);
            }
            None => to.insert(tid, *comm),
        }
    }
}
