//! Blocking readers: wait until a ring (or any ring) has data, or until a
//! watermark of filled pages is reached (the kernel's `buffer_percent`).
//!
//! # Protocol
//!
//! A waiter never makes a writer slower than one load per write:
//!
//! ```text
//! waiter                                   writer (outermost commit)
//!   seq = wake_seq                           store commit (Release)
//!   wake_pages = min(wake_pages, need)       signal_fence
//!   wake_armed = 1                           if wake_armed != 0:   <- the one load
//!   heavy_barrier (membarrier)                 wake_waiters():
//!   if condition: return                         need met? else keep armed
//!   futex_wait(wake_seq, seq, slice)             wake_armed = 0
//!                                                wake_pages = MAX
//!                                                wake_seq += 1; futex_wake
//!                                                any_seq += 1; futex_wake
//! ```
//!
//! The store-then-load on each side is the store-buffering pattern; the
//! waiter's heavy barrier (`sync::heavy_barrier`) orders it against the
//! writer's compiler-only fence: either the waiter's condition check sees the
//! commit, or the writer's load sees `wake_armed`. A writer that wakes bumps
//! the sequence before the futex call, so a waiter between its check and its
//! `futex_wait` finds the word changed and does not sleep.
//!
//! Waiting sleeps in slices of at most [`WAIT_SLICE`] and re-checks: the
//! only case the barrier does not cover is a writer in another process when
//! the global barrier is unavailable.
//!
//! `futex` wake is a plain system call, async-signal-safe, so a writer in a
//! signal handler wakes waiters like any other.

use crate::layout::Region;
use crate::sync::{heavy_barrier, AtomicU32, Ordering::*};
use crate::{RingBuffer, RingError};
use std::time::{Duration, Instant};

/// Longest sleep between two checks of the condition.
#[doc(hidden)]
pub const WAIT_SLICE: Duration = Duration::from_millis(50);

/// What a waiter waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// At least one unread event.
    Data,
    /// At least this percentage (1..=100) of the ring's pages filled and
    /// committed, as the kernel's `buffer_percent`; 0 means [`WaitFor::Data`].
    Percent(u8),
}

impl RingBuffer {
    /// Waits until ring `ring` satisfies `what`, or `timeout` passes
    /// (`None`: no limit). Returns whether the condition holds.
    ///
    /// ```
    /// use ringtrace_ring::{Config, RingBuffer, WaitFor};
    /// use std::time::Duration;
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// // Nothing yet: times out.
    /// assert!(!buf.wait(0, WaitFor::Data, Some(Duration::from_millis(5))).unwrap());
    /// std::thread::scope(|s| {
    ///     s.spawn(|| buf.writer(0).unwrap().write(1, b"data").unwrap());
    ///     assert!(buf.wait(0, WaitFor::Data, None).unwrap());
    /// });
    /// ```
    pub fn wait(
        &self,
        ring: usize,
        what: WaitFor,
        timeout: Option<Duration>,
    ) -> Result<bool, RingError> {
        let ring = self.check(ring)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let region = self.region();
        let ctl = &region.ring(ring).ctl;
        let need = self.pages_needed(ring, what);
        loop {
            let seq = ctl.wake_seq.load(Acquire);
            arm(region, ring, need);
            heavy_barrier(self.is_shared());
            if self.ready(ring, what) {
                return Ok(true);
            }
            if !sleep(&ctl.wake_seq, seq, deadline) {
                return Ok(self.ready(ring, what));
            }
        }
    }

    /// Waits until any ring satisfies `what`, or `timeout` passes. Returns
    /// the first ring found ready.
    ///
    /// ```
    /// use ringtrace_ring::{Config, RingBuffer, WaitFor};
    /// let buf = RingBuffer::new(Config::new(4)).unwrap();
    /// std::thread::scope(|s| {
    ///     s.spawn(|| buf.writer(2).unwrap().write(1, b"data").unwrap());
    ///     assert_eq!(buf.wait_any(WaitFor::Data, None).unwrap(), Some(2));
    /// });
    /// ```
    pub fn wait_any(
        &self,
        what: WaitFor,
        timeout: Option<Duration>,
    ) -> Result<Option<usize>, RingError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let region = self.region();
        let any = &region.state().any_seq;
        loop {
            let seq = any.load(Acquire);
            for ring in 0..self.rings() as u32 {
                arm(region, ring, self.pages_needed(ring, what));
            }
            heavy_barrier(self.is_shared());
            if let Some(r) = (0..self.rings()).find(|&r| self.ready(r as u32, what)) {
                return Ok(Some(r));
            }
            if !sleep(any, seq, deadline) {
                return Ok((0..self.rings()).find(|&r| self.ready(r as u32, what)));
            }
        }
    }

    /// Wakes every waiter of every ring now (for shutting a reader down).
    pub fn wake_all(&self) {
        for ring in 0..self.rings() as u32 {
            let ctl = &self.region().ring(ring).ctl;
            ctl.wake_seq.fetch_add(1, Release);
            futex_wake(&ctl.wake_seq);
        }
        let any = &self.region().state().any_seq;
        any.fetch_add(1, Release);
        futex_wake(any);
    }

    /// Filled pages needed for `what` on `ring` (0: any data).
    fn pages_needed(&self, ring: u32, what: WaitFor) -> u32 {
        match what {
            WaitFor::Data | WaitFor::Percent(0) => 0,
            WaitFor::Percent(p) => {
                let pages = self.region().ring(ring).ctl.ring_pages.load(Relaxed);
                (u32::from(p.min(100)) * pages).div_ceil(100).max(1)
            }
        }
    }

    fn ready(&self, ring: u32, what: WaitFor) -> bool {
        let need = self.pages_needed(ring, what);
        if need == 0 {
            // Unread events, as the stats count them (entries on the commit
            // page include a reservation in flight: a waiter may wake a
            // moment early, find nothing, and wait again).
            !self.is_empty(ring as usize).unwrap_or(true)
        } else {
            filled_pages(self.region(), ring) >= u64::from(need)
        }
    }
}

/// Arms ring `ring`'s wake-up for a waiter needing `need` filled pages.
fn arm(region: &Region, ring: u32, need: u32) {
    let meta = region.ring(ring);
    meta.ctl.wake_pages.fetch_min(need, Relaxed);
    // Ordered before the condition check by the caller's heavy barrier;
    // the writer's partner is its Relaxed load in `Writer::wake_waiters`.
    meta.w.wake_armed.store(1, Relaxed);
}

/// Pages filled and fully committed, not yet read or overwritten.
pub(crate) fn filled_pages(region: &Region, ring: u32) -> u64 {
    let meta = region.ring(ring);
    let closed = meta.w.closed_pages.load(Acquire);
    let gone = crate::buffer::counter_sum(
        meta,
        &[
            meta.r.pages_read.load(Acquire),
            meta.slow.overrun_pages.load(Acquire),
        ],
    );
    closed.saturating_sub(gone)
}

/// The writer's side, after an outermost commit found `wake_armed` set.
/// Async-signal-safe: atomics and the futex system call only.
#[cold]
#[inline(never)]
pub(crate) fn wake_waiters(region: &Region, ring: u32) {
    let meta = region.ring(ring);
    let need = meta.ctl.wake_pages.load(Relaxed);
    if need > 0 && filled_pages(region, ring) < u64::from(need) {
        return; // A watermark waiter: not yet.
    }
    if meta.w.wake_armed.swap(0, Relaxed) == 0 {
        return; // A nested or earlier commit already woke them.
    }
    meta.ctl.wake_pages.store(u32::MAX, Relaxed);
    // Release: pairs with the waiter's Acquire load of the sequence.
    meta.ctl.wake_seq.fetch_add(1, Release);
    futex_wake(&meta.ctl.wake_seq);
    let any = &region.state().any_seq;
    any.fetch_add(1, Release);
    futex_wake(any);
}

/// Sleeps on `word` while it equals `seq`, until woken, the slice ends or
/// the deadline passes. Returns false when the deadline has passed.
fn sleep(word: &AtomicU32, seq: u32, deadline: Option<Instant>) -> bool {
    let now = Instant::now();
    let slice = match deadline {
        Some(d) if d <= now => return false,
        Some(d) => (d - now).min(WAIT_SLICE),
        None => WAIT_SLICE,
    };
    futex_wait(word, seq, slice);
    deadline.is_none_or(|d| Instant::now() < d)
}

#[cfg(not(loom))]
fn futex_wait(word: &AtomicU32, seq: u32, slice: Duration) {
    use rustix::thread::futex;
    let ts = futex::Timespec {
        tv_sec: slice.as_secs() as i64,
        tv_nsec: i64::from(slice.subsec_nanos()),
    };
    // Not FUTEX_PRIVATE: the word may be in memory shared with other
    // processes. EAGAIN (word changed), EINTR and ETIMEDOUT all mean
    // "check again", which the caller does.
    let _ = futex::wait(word, futex::Flags::empty(), seq, Some(&ts));
}

#[cfg(not(loom))]
fn futex_wake(word: &AtomicU32) {
    let _ =
        rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), i32::MAX as u32);
}

#[cfg(loom)]
fn futex_wait(word: &AtomicU32, seq: u32, _slice: Duration) {
    if word.load(Acquire) == seq {
        loom::thread::yield_now();
    }
}

#[cfg(loom)]
fn futex_wake(_word: &AtomicU32) {}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::sync::Ordering::Relaxed;
    use crate::{Config, RingBuffer, WaitFor};
    use std::time::{Duration, Instant};

    /// Hang guard for the waiter to arm: never a performance bound.
    const HANG_GUARD: Duration = Duration::from_secs(300);

    /// A commit that finds a waiter armed wakes it itself (bumps the wake
    /// sequence and calls futex wake) before the write returns, so the
    /// waiter never depends on its periodic re-check. Shown without a
    /// clock: the test waits until the waiter has armed, writes, and reads
    /// the sequence.
    #[test]
    fn a_commit_wakes_an_armed_waiter() {
        let buf = RingBuffer::new(Config::new(2)).unwrap();
        let meta = buf.region().ring(1);
        for round in 0..50u64 {
            std::thread::scope(|s| {
                let waiter = s.spawn(|| buf.wait(1, WaitFor::Data, None));
                let start = Instant::now();
                // Armed: from here on, the writer's load of `wake_armed`
                // in its commit sees 1 (read-read coherence with this load).
                while meta.w.wake_armed.load(Relaxed) == 0 {
                    assert!(start.elapsed() < HANG_GUARD, "the waiter never armed");
                    std::thread::yield_now();
                }
                let seq = meta.ctl.wake_seq.load(Relaxed);
                buf.writer(1)
                    .unwrap()
                    .write(round, &round.to_le_bytes())
                    .unwrap();
                assert_ne!(
                    meta.ctl.wake_seq.load(Relaxed),
                    seq,
                    "round {round}: the commit did not wake the armed waiter"
                );
                // Not checked: `wake_armed` is 0 here. The waiter re-arms at
                // each slice of its wait, so a slice ending just before the
                // commit re-arms after the commit cleared the word (seen on
                // a loaded machine); the sequence bump above is the wake.
                assert!(waiter.join().unwrap().unwrap());
            });
            let mut c = buf.consumer(1).unwrap();
            assert_eq!(c.consume().unwrap().unwrap().payload, &round.to_le_bytes());
        }
        let s = buf.stats(1).unwrap();
        assert_eq!(
            s.written,
            s.read + s.overrun + s.dropped + s.commit_overrun + s.entries
        );
        assert_eq!((s.written, s.read), (50, 50));
    }
}
