//! Control operations while writers keep writing: recording on/off, per-ring
//! disable, reset, resize, swap between buffers, mode switch.
//!
//! # Quiescing a ring
//!
//! The kernel changes a ring's pages after `record_disable` and
//! `synchronize_rcu`. Here (`quiesce`):
//!
//! ```text
//! Q1 record_disabled += RECORD_QUIESCE_ONE
//! Q2 heavy_barrier()                      -- membarrier: the user-space
//!                                            synchronize_rcu for step E
//! Q3 wait for committing == 0 (Acquire)   -- writes in flight finish
//! Q4 take the reader's busy word          -- readers are between calls
//! Q5 commit what a writer left past the commit point (see
//!    `Writer::retake_commit`)
//!    ... change the ring ...
//! Q6 release busy; record_disabled -= RECORD_QUIESCE_ONE (Release)
//! ```
//!
//! A writer stores `committing` and then loads `record_disabled` (step E in
//! `write.rs`) with only a compiler fence between; Q2 orders that against
//! Q1/Q3, so either Q3 sees the write in flight and waits for it, or the
//! writer sees the flag and refuses the write, counting it in `refused`. A
//! write racing with a control operation therefore either lands whole or is
//! refused and counted; none is torn. Nested writes (signal handlers) are
//! covered the same way: they are writes on the same ring.

use crate::buffer::counter_sum;
use crate::layout::{
    link, link_flag, link_page, link_tag, write_entries, Region, RingMeta, ENTRY, GENERATION,
    GENERATION_MASK, HEAD, NORMAL, NO_SLOT, RECORD_COUNT_MASK, RECORD_OFF, RECORD_QUIESCE_ONE,
};
use crate::sync::{backoff, heavy_barrier, Ordering::*};
use crate::{ControlError, Mode, RingBuffer};
use std::time::{Duration, Instant};

/// How long a control operation waits for a write in flight or a reader call
/// to finish before giving up.
#[doc(hidden)]
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

/// A quiesced ring: recording refused, no write in flight, the reader
/// between calls. Undone on drop.
struct Quiet<'a> {
    meta: &'a RingMeta,
    busy: bool,
}

impl Drop for Quiet<'_> {
    fn drop(&mut self) {
        if self.busy {
            // Release: pairs with the reader's Acquire when it takes `busy`.
            self.meta.r.busy.store(0, Release);
        }
        // Q6. Release: pairs with the writers' Acquire load of
        // `record_disabled` at step E: they see the changed ring.
        self.meta
            .w
            .record_disabled
            .fetch_sub(RECORD_QUIESCE_ONE, Release);
    }
}

fn quiesce(buf: &RingBuffer, ring: u32) -> Result<Quiet<'_>, ControlError> {
    let meta = buf.region().ring(ring);
    // Q1. Its own count, apart from `disable_ring`'s: a commit that saw
    // `committing` drop to 0 leaves the ring to a quiescing operation only
    // (`Writer::retake_commit`).
    meta.w.record_disabled.fetch_add(RECORD_QUIESCE_ONE, SeqCst);
    let mut quiet = Quiet { meta, busy: false };
    // Q2.
    heavy_barrier(buf.is_shared());
    // Q3. Acquire: pairs with the Release stores of `committing` when a
    // write ends (`end_outer`, `end_slow`, `refuse`).
    let start = Instant::now();
    let mut round = 0;
    while meta.w.committing.load(Acquire) != 0 {
        if start.elapsed() > CONTROL_TIMEOUT {
            return Err(ControlError::WriteInFlight {
                ring: ring as usize,
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        backoff(round);
        round = round.saturating_add(1);
    }
    // Q4. Acquire: pairs with the reader's Release when it drops `busy`.
    while meta
        .r
        .busy
        .compare_exchange(0, 1, Acquire, Relaxed)
        .is_err()
    {
        if start.elapsed() > CONTROL_TIMEOUT {
            return Err(ControlError::ReaderBusy {
                ring: ring as usize,
                what: "a reader call did not finish",
            });
        }
        backoff(round);
        round = round.saturating_add(1);
    }
    quiet.busy = true;
    // Q5. A writer that found a nested write's bytes past the commit while
    // Q1-Q3 ran left them to us (`Writer::retake_commit`): commit them, so
    // that the operation below sees a fully committed ring ("nothing is in
    // flight") and counts every write that returned `Ok`.
    crate::write::commit_quiesced(buf.region(), ring);
    Ok(quiet)
}

/// Resets a page for reuse; a new generation tells iterators it changed.
fn reset_page(region: &Region, page: u32) {
    let p = region.page(page);
    p.clear();
    p.write.fetch_add(GENERATION, Relaxed);
    p.time_stamp.store(0, Relaxed);
}

/// The ring's pages in link order from the head page, and the tag of the
/// link that marks the head. Only on a quiesced ring.
fn ring_list(buf: &RingBuffer, ring: u32) -> Result<(Vec<u32>, u64), ControlError> {
    let region = buf.region();
    let g = region.geometry();
    let meta = region.ring(ring);
    let corrupt = |what| {
        meta.slow.corruptions.fetch_add(1, Relaxed);
        ControlError::Corrupt {
            ring: ring as usize,
            what,
        }
    };
    // Any ring page leads to the head; start from the hint.
    let mut p = meta.r.head_page.load(Relaxed);
    let mut head = None;
    for _ in 0..=g.ring_bound() {
        if !region.owns(ring, p) {
            return Err(corrupt("page link out of range"));
        }
        let l = region.page(p).link.load(Acquire);
        if link_flag(l) == HEAD {
            head = Some((link_page(l), link_tag(l)));
            break;
        }
        p = link_page(l);
    }
    let (head, tag) = head.ok_or_else(|| corrupt("no page carries the HEAD flag"))?;
    if !region.owns(ring, head) {
        return Err(corrupt("page link out of range"));
    }
    let mut list = vec![head];
    let mut p = head;
    for _ in 0..=g.ring_bound() {
        let next = link_page(region.page(p).link.load(Acquire));
        if !region.owns(ring, next) {
            return Err(corrupt("page link out of range"));
        }
        if next == head {
            return Ok((list, tag));
        }
        list.push(next);
        p = next;
    }
    Err(corrupt("page links do not close the ring"))
}

/// Every page ring `ring` owns: its own slots (in the ring, the reader's,
/// free or lent) and the pool pages spliced into it.
fn ring_pages_all(region: &Region, ring: u32) -> impl Iterator<Item = u32> + '_ {
    let g = *region.geometry();
    (0..g.slots_per_ring)
        .map(move |i| g.page_index(ring, i))
        .chain((g.pool_first()..g.nr_pages).filter(move |&p| region.owns(ring, p)))
}

/// Links `list` into a circle with HEAD (tag `tag`) on the link into
/// `list[0]`.
fn link_circle(region: &Region, list: &[u32], tag: u64) {
    let n = list.len();
    for i in 0..n {
        let next = list[(i + 1) % n];
        let (flag, t) = if next == list[0] {
            (HEAD, tag)
        } else {
            (NORMAL, 0)
        };
        region
            .page(list[i])
            .link
            .store(link(next, t, flag), Relaxed);
        region.page(next).prev.store(list[i], Relaxed);
    }
}

/// Takes a slot off ring `ring`'s free list (under `busy`). A list head
/// that is not one of the ring's slots (shared memory scribbled on) is
/// counted as a corruption and the list forgotten: never followed.
pub(crate) fn pop_free(meta: &RingMeta, region: &Region, ring: u32) -> Option<u32> {
    let head = meta.ctl.free_head.load(Relaxed);
    if head == NO_SLOT {
        return None;
    }
    if !region.geometry().owns_slot(ring, head) {
        meta.slow.corruptions.fetch_add(1, Relaxed);
        meta.ctl.free_head.store(NO_SLOT, Relaxed);
        return None;
    }
    let next = link_page(region.page(head).link.load(Relaxed));
    meta.ctl.free_head.store(next, Relaxed);
    Some(head)
}

pub(crate) fn push_free(meta: &RingMeta, region: &Region, slot: u32) {
    let head = meta.ctl.free_head.load(Relaxed);
    region.page(slot).link.store(link(head, 0, NORMAL), Relaxed);
    meta.ctl.free_head.store(slot, Relaxed);
}

impl RingBuffer {
    /// Whether the region is mapped by other processes.
    pub(crate) fn is_shared(&self) -> bool {
        self.region().state().shared.load(Relaxed) != 0
    }

    /// Turns recording off for the whole buffer (`ring_buffer_record_off`):
    /// writes are refused and counted in [`crate::RingStats::refused`].
    ///
    /// ```
    /// use ringtrace_ring::{Config, RingBuffer, WriteError};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// let mut w = buf.writer(0).unwrap();
    /// buf.record_off();
    /// assert_eq!(w.write(1, b"x"), Err(WriteError::Disabled));
    /// buf.record_on();
    /// w.write(2, b"y").unwrap();
    /// assert_eq!(buf.stats(0).unwrap().refused, 1);
    /// ```
    pub fn record_off(&self) {
        self.region().state().record_off.store(1, Relaxed);
        // Release: pairs with the writers' Acquire at step E.
        self.each_record_disabled(|d| d.fetch_or(RECORD_OFF, Release));
    }

    /// Turns recording back on for the whole buffer (`ring_buffer_record_on`).
    pub fn record_on(&self) {
        self.region().state().record_off.store(0, Relaxed);
        // Release: pairs with the writers' Acquire at step E.
        self.each_record_disabled(|d| d.fetch_and(!RECORD_OFF, Release));
    }

    /// Applies `op` to every ring's `record_disabled` word, in ring order.
    fn each_record_disabled(&self, op: impl Fn(&crate::sync::AtomicU32) -> u32) {
        for r in 0..self.rings() as u32 {
            op(&self.region().ring(r).w.record_disabled);
        }
    }

    /// Whether recording is on for the whole buffer.
    pub fn is_recording(&self) -> bool {
        self.region().state().record_off.load(Relaxed) == 0
    }

    /// Disables recording on one ring; nestable: each call needs its
    /// [`RingBuffer::enable_ring`] (`ring_buffer_record_disable_cpu`).
    pub fn disable_ring(&self, ring: usize) -> Result<(), ControlError> {
        let r = self.check(ring)?;
        self.region()
            .ring(r)
            .w
            .record_disabled
            .fetch_update(Release, Relaxed, |v| {
                (v & RECORD_COUNT_MASK != RECORD_COUNT_MASK).then(|| v + 1)
            })
            .map_err(|_| ControlError::DisabledTooOften {
                ring,
                max: RECORD_COUNT_MASK,
            })?;
        Ok(())
    }

    /// Undoes one [`RingBuffer::disable_ring`]; does nothing when the ring
    /// is not disabled.
    pub fn enable_ring(&self, ring: usize) -> Result<(), ControlError> {
        let r = self.check(ring)?;
        let word = &self.region().ring(r).w.record_disabled;
        // Release: pairs with the writers' Acquire at step E.
        let _ = word.fetch_update(Release, Relaxed, |v| {
            (v & RECORD_COUNT_MASK != 0).then(|| v - 1)
        });
        Ok(())
    }

    /// Whether writes to `ring` are refused now (buffer off, ring disabled,
    /// or disabled after an inconsistency).
    pub fn is_ring_disabled(&self, ring: usize) -> Result<bool, ControlError> {
        let r = self.check(ring)?;
        Ok(self.region().ring(r).w.record_disabled.load(Relaxed) != 0)
    }

    /// The mode writers follow now.
    pub fn mode(&self) -> Mode {
        if self.region().state().mode.load(Relaxed) == 0 {
            Mode::Overwrite
        } else {
            Mode::ProducerConsumer
        }
    }

    /// Switches between overwrite and producer/consumer while writers write.
    /// A writer that meets the head page follows whichever mode it loads
    /// then; either way the event is accounted (overrun or dropped).
    pub fn set_mode(&self, mode: Mode) {
        self.region()
            .state()
            .mode
            .store(u32::from(mode == Mode::ProducerConsumer), Relaxed);
    }

    /// Pages in ring `ring`'s circle now.
    pub fn ring_pages(&self, ring: usize) -> Result<usize, ControlError> {
        let r = self.check(ring)?;
        Ok(self.region().ring(r).ctl.ring_pages.load(Relaxed) as usize)
    }

    /// Empties ring `ring` (`ring_buffer_reset_cpu`) while writers keep
    /// writing. The unread events are counted as overrun and reported to
    /// the reader as lost, so `committed == read + overrun + entries`
    /// still holds; time stamps continue from where they were.
    pub fn reset(&self, ring: usize) -> Result<(), ControlError> {
        let r = self.check(ring)?;
        let _quiet = quiesce(self, r)?;
        self.reset_quiet(r)
    }

    /// [`RingBuffer::reset`] for every ring.
    pub fn reset_all(&self) -> Result<(), ControlError> {
        (0..self.rings()).try_for_each(|r| self.reset(r))
    }

    fn reset_quiet(&self, ring: u32) -> Result<(), ControlError> {
        let region = self.region();
        let meta = region.ring(ring);
        let (list, tag) = ring_list(self, ring)?;
        // Close the commit page into the writer-side totals: its events are
        // committed (nothing is in flight).
        let cp = meta.w.commit_page.load(Relaxed);
        if !region.owns(ring, cp) || !region.owns(ring, meta.r.reader_page.load(Relaxed)) {
            meta.slow.corruptions.fetch_add(1, Relaxed);
            return Err(ControlError::Corrupt {
                ring: ring as usize,
                what: "commit or reader page out of range",
            });
        }
        let cpm = region.page(cp);
        let entries = write_entries(cpm.write.load(Relaxed));
        let bytes = u64::from(cpm.commit.load(Relaxed));
        // Checked sums: the counters may have been scribbled on (shared
        // memory); they saturate and count a corruption (`counter_sum`).
        let closed = counter_sum(meta, &[meta.w.closed_entries.load(Relaxed), entries]);
        let closed_bytes = counter_sum(meta, &[meta.w.closed_bytes.load(Relaxed), bytes]);
        let closed_pages = counter_sum(meta, &[meta.w.closed_pages.load(Relaxed), 1]);
        meta.w.closed_entries.store(closed, Relaxed);
        meta.w.closed_bytes.store(closed_bytes, Relaxed);
        meta.w.closed_pages.store(closed_pages, Relaxed);
        // Unread events and bytes become overrun.
        let read = meta.r.read.load(Relaxed);
        let read_bytes = meta.r.read_bytes.load(Relaxed);
        let overrun = closed.saturating_sub(read);
        let overrun_bytes = closed_bytes.saturating_sub(read_bytes);
        meta.slow.overrun.store(overrun, Relaxed);
        meta.slow.overrun_bytes.store(overrun_bytes, Relaxed);
        let overrun_pages = closed_pages.saturating_sub(meta.r.pages_read.load(Relaxed));
        meta.slow.overrun_pages.store(overrun_pages, Relaxed);
        // Drops noted on pages not yet read past are reported now.
        let rp = meta.r.reader_page.load(Relaxed);
        let notes: Vec<u64> = list
            .iter()
            .chain(std::iter::once(&rp))
            .map(|&p| crate::layout::notes(region.page(p).lost_at_end.load(Relaxed)))
            .collect();
        let noted = counter_sum(meta, &notes);
        let total = counter_sum(meta, &[overrun, meta.slow.overrun_noted.load(Relaxed)]);
        let before = meta.r.overrun_at_swap.load(Relaxed);
        meta.r.overrun_at_swap.store(total, Relaxed);
        meta.r.lost_known.store(
            counter_sum(
                meta,
                &[
                    meta.r.lost_known.load(Relaxed),
                    total.saturating_sub(before),
                    noted,
                ],
            ),
            Relaxed,
        );
        // Fresh pages, same circle, head = tail = commit = first.
        for &p in list.iter().chain(std::iter::once(&rp)) {
            reset_page(region, p);
        }
        link_circle(region, &list, tag + 1);
        let first = list[0];
        // Time goes on: a nested write that is the first on the page takes
        // the page's stamp, and `write_stamp` moves with it, as
        // `tail_page_update` (T2) does: the running stamp is the page's, so
        // an outer write's delta is from the page's stamp. (A dropped
        // write leaves its stamp in `pending_stamp`, above `write_stamp`;
        // with the page stamped from one and deltas taken from the other,
        // the events after a nested first one came out late by the
        // difference, and time went back on the next page.)
        let now = meta
            .w
            .write_stamp
            .load(Relaxed)
            .max(meta.w.pending_stamp.load(Relaxed));
        region.page(first).time_stamp.store(now, Relaxed);
        meta.w.write_stamp.store(now, Relaxed);
        meta.w.pending_stamp.store(now, Relaxed);
        region.page(rp).link.store(link(first, 0, NORMAL), Relaxed);
        region.page(rp).prev.store(list[list.len() - 1], Relaxed);
        meta.r.read_offset.store(0, Relaxed);
        meta.r.head_page.store(first, Relaxed);
        meta.w.commit_page.store(first, Relaxed);
        meta.w.tail_page.store(first, Relaxed);
        Ok(())
    }

    /// Resizes ring `ring` to `pages` pages (2..=`Config::max_pages`) while
    /// writers keep writing (`ring_buffer_resize`). Growing keeps every
    /// event; shrinking first removes pages that hold nothing unread, then
    /// the oldest pages, whose events are counted as overrun (as the
    /// kernel's `rb_remove_pages` does).
    ///
    /// ```
    /// use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1).pages_per_ring(4).max_pages_per_ring(16)).unwrap();
    /// buf.writer(0).unwrap().write(1, b"kept").unwrap();
    /// buf.resize(0, 16).unwrap();
    /// assert_eq!(buf.ring_pages(0).unwrap(), 16);
    /// let mut r = buf.consumer(0).unwrap();
    /// assert_eq!(&r.consume().unwrap().unwrap().payload[..4], b"kept");
    /// assert!(buf.resize(0, 17).is_err());
    /// ```
    pub fn resize(&self, ring: usize, pages: usize) -> Result<(), ControlError> {
        let r = self.check(ring)?;
        let g = *self.region().geometry();
        if g.pool_pages != 0 {
            return Err(ControlError::HasPool {
                ring,
                what: "resize",
            });
        }
        let lent = self.region().ring(r).ctl.lent.load(Relaxed) as usize;
        let max = (g.max_pages_per_ring as usize)
            .saturating_sub(lent.saturating_sub(crate::layout::SPARE_SLOTS as usize));
        if !(2..=max).contains(&pages) {
            return Err(ControlError::BadSize { ring, pages, max });
        }
        let _quiet = quiesce(self, r)?;
        self.resize_quiet(r, pages)
    }

    /// [`RingBuffer::resize`] for every ring.
    pub fn resize_all(&self, pages: usize) -> Result<(), ControlError> {
        (0..self.rings()).try_for_each(|r| self.resize(r, pages))
    }

    fn resize_quiet(&self, ring: u32, pages: usize) -> Result<(), ControlError> {
        let region = self.region();
        let meta = region.ring(ring);
        let (list, tag) = ring_list(self, ring)?;
        let m = list.len();
        let tail = meta.w.tail_page.load(Relaxed);
        if pages > m {
            let mut added = Vec::with_capacity(pages - m);
            for _ in m..pages {
                match pop_free(meta, region, ring) {
                    Some(s) => added.push(s),
                    None => {
                        for s in added {
                            push_free(meta, region, s);
                        }
                        return Err(ControlError::BadSize {
                            ring: ring as usize,
                            pages,
                            max: m,
                        });
                    }
                }
            }
            for &s in &added {
                reset_page(region, s);
            }
            // New, empty pages go just before the head: between the tail
            // and the oldest data, where the writer goes next.
            let mut new_list = list.clone();
            new_list.extend_from_slice(&added);
            link_circle(region, &new_list, tag + 1);
        } else if pages < m {
            let t = list.iter().position(|&p| p == tail);
            // Pages after the tail hold nothing unread (read and returned,
            // or never written); with the tail on the reader's page, all do
            // but the head, which the reader's page links to.
            let free_from = t.map_or(1, |t| t + 1);
            let mut remove = vec![false; m];
            let mut k = m - pages;
            for i in (free_from..m).rev() {
                if k == 0 {
                    break;
                }
                remove[i] = true;
                k -= 1;
            }
            // Then the oldest data, never the tail.
            let data_end = t.unwrap_or(0);
            for i in 0..data_end {
                if k == 0 {
                    break;
                }
                remove[i] = true;
                k -= 1;
                let p = region.page(list[i]);
                meta.slow
                    .overrun
                    .fetch_add(write_entries(p.write.load(Relaxed)), Relaxed);
                meta.slow
                    .overrun_bytes
                    .fetch_add(u64::from(p.commit.load(Relaxed)), Relaxed);
                meta.slow.overrun_pages.fetch_add(1, Relaxed);
                meta.slow
                    .overrun_noted
                    .fetch_add(crate::layout::notes(p.lost_at_end.load(Relaxed)), Relaxed);
            }
            if k != 0 {
                return Err(ControlError::BadSize {
                    ring: ring as usize,
                    pages,
                    max: m,
                });
            }
            let kept: Vec<u32> = list
                .iter()
                .zip(&remove)
                .filter(|(_, &r)| !r)
                .map(|(&p, _)| p)
                .collect();
            for (&p, _) in list.iter().zip(&remove).filter(|(_, &r)| r) {
                reset_page(region, p);
                push_free(meta, region, p);
            }
            link_circle(region, &kept, tag + 1);
            meta.r.head_page.store(kept[0], Relaxed);
            if t.is_none() {
                // The tail is on the reader's page, which links to the head.
                let rp = meta.r.reader_page.load(Relaxed);
                // Checked: shared memory may have been scribbled on.
                if region.geometry().owns_slot(ring, rp) {
                    region
                        .page(rp)
                        .link
                        .store(link(kept[0], 0, NORMAL), Relaxed);
                }
            }
        }
        meta.ctl.ring_pages.store(pages as u32, Relaxed);
        Ok(())
    }

    /// Exchanges ring `ring` of this buffer with ring `ring` of `other`
    /// (`ring_buffer_swap_cpu`, the basis of snapshots): pages, positions
    /// and counters move together, so each buffer's identity still holds.
    /// Writers keep writing into their buffer's ring; a write in flight
    /// delays the swap, and one still in flight after [`CONTROL_TIMEOUT`]
    /// refuses it. Refused too while a `Consumer` of either ring exists or
    /// a page reader holds one of their pages.
    ///
    /// ```
    /// use ringtrace_ring::{Config, RingBuffer};
    /// let live = RingBuffer::new(Config::new(1)).unwrap();
    /// let snap = RingBuffer::new(Config::new(1)).unwrap();
    /// live.writer(0).unwrap().write(1, b"before").unwrap();
    /// live.swap_ring(&snap, 0).unwrap();
    /// assert!(live.is_empty(0).unwrap());
    /// let mut r = snap.consumer(0).unwrap();
    /// assert_eq!(&r.consume().unwrap().unwrap().payload[..6], b"before");
    /// ```
    pub fn swap_ring(&self, other: &RingBuffer, ring: usize) -> Result<(), ControlError> {
        let r = self.check(ring)?;
        other.check(ring)?;
        let (ga, gb) = (self.region().geometry(), other.region().geometry());
        if ga.pool_pages != 0 || gb.pool_pages != 0 {
            return Err(ControlError::HasPool { ring, what: "swap" });
        }
        if ga.slots_per_ring != gb.slots_per_ring || ga.page_size != gb.page_size {
            return Err(ControlError::Mismatch {
                ring,
                what: "page size or slots per ring",
            });
        }
        if std::ptr::eq(self, other) {
            return Ok(());
        }
        let (ma, mb) = (self.region().ring(r), other.region().ring(r));
        let stamp = |m: &RingMeta| {
            m.w.write_stamp
                .load(Relaxed)
                .max(m.w.pending_stamp.load(Relaxed))
        };
        let _owner_a = OwnerLock::take(ma, ring)?;
        let _owner_b = OwnerLock::take(mb, ring)?;
        if ma.ctl.lent.load(Relaxed) != 0 || mb.ctl.lent.load(Relaxed) != 0 {
            return Err(ControlError::ReaderBusy {
                ring,
                what: "a page reader holds pages of this ring",
            });
        }
        let _qa = quiesce(self, r)?;
        let _qb = quiesce(other, r)?;
        // Time never goes back on either ring: the newer of the two running
        // stamps carries on (writers write to the ring they had).
        let now = stamp(ma).max(stamp(mb));
        swap_meta(ma, mb);
        let first = ga.page_index(r, 0);
        let page_size = ga.page_size as usize;
        // Page bytes move only for slots holding pages (ring or reader page)
        // in either buffer: free slots' bytes mean nothing, and untouched
        // slots cost no memory until used.
        let mut used = vec![false; ga.slots_per_ring as usize];
        for (buf, m) in [(self, ma), (other, mb)] {
            let (list, _) = ring_list(buf, r)?;
            let reader = m.r.reader_page.load(Relaxed);
            for p in list.into_iter().chain(std::iter::once(reader)) {
                if ga.owns_slot(r, p) {
                    used[(p - first) as usize] = true;
                }
            }
        }
        for slot in first..first + ga.slots_per_ring {
            let (pa, pb) = (self.region().page(slot), other.region().page(slot));
            macro_rules! swap_fields {
                ($($f:ident),*) => {$(
                    let t = pa.$f.load(Relaxed);
                    pa.$f.store(pb.$f.load(Relaxed), Relaxed);
                    pb.$f.store(t, Relaxed);
                )*};
            }
            swap_fields!(link, prev, commit, real_end, write, time_stamp, lost_at_end);
            if !used[(slot - first) as usize] {
                continue;
            }
            // SAFETY: both rings are quiesced (no writer in flight, none can
            // start: record_disabled is raised) and have no reader (owner
            // and busy words held), so nobody else touches these page
            // bytes; the two regions are distinct allocations.
            unsafe {
                std::ptr::swap_nonoverlapping(
                    self.region().page_bytes(slot),
                    other.region().page_bytes(slot),
                    page_size,
                );
            }
        }
        advance_time(self.region(), ma, now);
        advance_time(other.region(), mb, now);
        Ok(())
    }
}

impl RingBuffer {
    /// Post-mortem repair of ring `ring` whose writer died in the middle of
    /// a write (its process was killed): the events it had reserved, and
    /// those nested after them, were never committed and never will be.
    /// They are counted as dropped and reported to the reader as lost (after
    /// the last committed event), the ring is made consistent (tail back on
    /// the commit point, the writer's claim released), and writing can go on
    /// from another thread or process. Returns the number of events lost;
    /// 0 when no write was in flight.
    ///
    /// Exact for a writer killed at any labelled step of the write path,
    /// nested writes included (the crash-point tests): the commit page is
    /// closed with padding after its last committed event, so writing
    /// resumes on the next page and every loss is reported before any
    /// event written after the repair; drops noted on the pages past the
    /// commit page are moved onto it; a loss the writer counted but had
    /// not noted yet (step M in `write.rs`) is noted too.
    ///
    /// # Safety
    /// No writer of the ring may be alive (check the writer's process is
    /// gone): a live writer's reservation would be overwritten.
    pub unsafe fn recover_dead_writer(&self, ring: usize) -> Result<u64, ControlError> {
        let r = self.check(ring)?;
        let region = self.region();
        let g = *region.geometry();
        let meta = region.ring(r);
        let _busy = crate::read::Busy::take(meta);
        let cap = crate::format::data_capacity(g.page_size as usize);
        if meta.w.committing.load(Acquire) == 0 {
            meta.w.owner.store(0, Release);
            return Ok(0);
        }
        let corrupt = |what| {
            meta.slow.corruptions.fetch_add(1, Relaxed);
            ControlError::Corrupt { ring, what }
        };
        let cp = meta.w.commit_page.load(Acquire);
        let tail = meta.w.tail_page.load(Acquire);
        if !region.owns(r, cp) || !region.owns(r, tail) {
            return Err(corrupt("commit or tail page out of range"));
        }
        let page = region.page(cp);
        let commit = (page.commit.load(Acquire) as usize).min(cap);
        // SAFETY: the writer is gone (our caller's contract).
        let committed_here = unsafe { committed_on(region, cp, commit) }.map_err(corrupt)?;
        let word = page.write.load(Acquire);
        let mut lost = write_entries(word).saturating_sub(committed_here);
        count_cut_push(region, meta, r, cp).map_err(corrupt)?;
        // Losses counted by a writer killed before it noted them (step M),
        // found before anything below changes the notes.
        let (unnoted, stale) = unnoted_losses(region, meta, r, cp, tail);
        if let Some(p) = stale {
            // Already counted with the push (see `unnoted_losses`), and the
            // page is no longer next to the tail once the tail is moved
            // back: forget them, or they would be counted twice.
            region.page(p).lost_at_end.store(0, Relaxed);
        }
        let (past, moved) = clear_pages_past_commit(region, r, cp, tail).map_err(corrupt)?;
        lost += past;
        // SAFETY: the writer is gone (our caller's contract) and we hold
        // `busy`.
        unsafe { close_commit_page(region, cp, commit, cap, word, committed_here) };
        finish_cut_push(region, r, cp).map_err(corrupt)?;
        // A commit walk killed at step N counted the commit page's events as
        // closed without moving the commit point off the page.
        if closed_twice(region, meta, r, cp, write_entries(word)) {
            let w = &meta.w;
            let less = |c: &crate::sync::AtomicU64, by: u64| {
                c.store(c.load(Relaxed).saturating_sub(by), Relaxed)
            };
            less(&w.closed_entries, write_entries(word));
            less(&w.closed_bytes, commit as u64);
            less(&w.closed_pages, 1);
        }
        // A pool splice cut short after its S1 (the head page's `prev` not
        // fixed, the page count not raised): fix both from the links.
        relink_prevs(region, meta, r);
        page.lost_at_end
            .fetch_add(lost.saturating_add(moved).saturating_add(unnoted), Relaxed);
        meta.slow.dropped.fetch_add(lost, Relaxed);
        meta.w.tail_page.store(cp, Release);
        meta.w.committing.store(0, Release);
        meta.w.owner.store(0, Release);
        Ok(lost)
    }
}

/// `recover_dead_writer`: the events committed on the commit page `cp`:
/// decoded up to its commit `commit`.
///
/// # Safety
/// The ring's writer is gone; readers only read `[0, commit)`.
unsafe fn committed_on(region: &Region, cp: u32, commit: usize) -> Result<u64, &'static str> {
    // SAFETY: `commit` was capped at the page's capacity by the caller;
    // [0, commit) of the page is committed, the writer is gone (caller's
    // contract), and readers only read it.
    let data = unsafe { region.committed_data(cp, commit) };
    let mut at = 0;
    let mut committed_here = 0u64;
    while at < commit {
        match crate::format::decode(data, at) {
            Ok((crate::format::PageRecord::Data { .. }, size)) => {
                committed_here += 1;
                at += size;
            }
            Ok((_, size)) => at += size,
            Err(_) => return Err("committed event does not decode"),
        }
    }
    Ok(committed_here)
}

/// `recover_dead_writer`: a head push cut short after its P1 (a link still
/// carries UPDATE): count the pushed page first, idempotently, whether or
/// not the killed writer had counted it, so that the notes' reconciliation
/// sees the push's notes in `overrun_noted`.
fn count_cut_push(region: &Region, meta: &RingMeta, r: u32, cp: u32) -> Result<(), &'static str> {
    let mut p = cp;
    for _ in 0..region.geometry().ring_bound() {
        let l = region.page(p).link.load(Acquire);
        if link_flag(l) == crate::layout::UPDATE {
            crate::write::count_push(&meta.slow);
            break;
        }
        p = link_page(l);
        if !region.owns(r, p) {
            return Err("page link out of range");
        }
        if p == cp {
            break;
        }
    }
    Ok(())
}

/// `recover_dead_writer`: the pages the tail reached past the commit page
/// `cp` hold nothing committed: their events are lost (the first number),
/// and the drops noted on them are moved onto the commit page (the second;
/// the writer resets a page's notes when it next prepares it).
fn clear_pages_past_commit(
    region: &Region,
    r: u32,
    cp: u32,
    tail: u32,
) -> Result<(u64, u64), &'static str> {
    let mut lost = 0u64;
    let mut moved = 0u64;
    let mut p = cp;
    for _ in 0..region.geometry().ring_bound() {
        if p == tail {
            break;
        }
        p = link_page(region.page(p).link.load(Acquire));
        if !region.owns(r, p) {
            return Err("page link out of range");
        }
        lost += write_entries(region.page(p).write.load(Relaxed));
        let w = region.page(p).write.load(Relaxed);
        region.page(p).write.store(w & GENERATION_MASK, Relaxed);
        region.page(p).commit.store(0, Relaxed);
        region.page(p).real_end.store(0, Relaxed);
        moved = moved.saturating_add(crate::layout::notes(
            region.page(p).lost_at_end.swap(0, Relaxed),
        ));
    }
    Ok((lost, moved))
}

/// `recover_dead_writer`: the commit page `cp` ends at its commit, with its
/// committed events, and is closed there: the rest is padding, as when a
/// writer leaves a full page (step F). Writing resumes on the next page,
/// so the losses noted on this one are reported after its events and
/// before anything written after the repair. Left open, events written
/// later on this page came before the losses, which readers report at the
/// page's end (found by the crash-point tests).
///
/// # Safety
/// The ring's writer is gone and the caller holds the ring's `busy`.
unsafe fn close_commit_page(
    region: &Region,
    cp: u32,
    commit: usize,
    cap: usize,
    word: u64,
    committed_here: u64,
) {
    let page = region.page(cp);
    let mut end = commit;
    if commit < cap {
        // SAFETY: [commit, cap) of the page's data area lies past its
        // commit: no reader reads it (and the caller holds `busy`), and its
        // writer is gone (caller's contract).
        unsafe {
            crate::format::write_padding(
                region
                    .page_bytes(cp)
                    .add(crate::format::PAGE_HEADER_SIZE + commit),
                cap - commit,
                1,
            )
        };
        page.real_end.store(commit as u32, Relaxed);
        end = cap;
    }
    page.write.store(
        (word & GENERATION_MASK) | (committed_here * ENTRY) | end as u64,
        Relaxed,
    );
    // Release: pairs with the readers' Acquire load of `commit`: the
    // padding is written first.
    page.commit.store(end as u32, Release);
}

/// `recover_dead_writer`: a head push cut short (step P1 done, P3 not):
/// finish it, so the reader finds exactly one HEAD link.
fn finish_cut_push(region: &Region, r: u32, cp: u32) -> Result<(), &'static str> {
    let mut updating = None;
    let mut heads = 0;
    let mut p = cp;
    for _ in 0..region.geometry().ring_bound() {
        let l = region.page(p).link.load(Acquire);
        match link_flag(l) {
            HEAD => heads += 1,
            crate::layout::UPDATE => updating = Some(p),
            _ => {}
        }
        p = link_page(l);
        if !region.owns(r, p) {
            return Err("page link out of range");
        }
        if p == cp {
            break;
        }
    }
    if let Some(u) = updating {
        let l = region.page(u).link.load(Relaxed);
        let target = link_page(l);
        if !region.owns(r, target) {
            return Err("page link out of range");
        }
        region
            .page(u)
            .link
            .store(link(target, link_tag(l), NORMAL), Release);
        if heads == 0 {
            let tl = region.page(target).link.load(Relaxed);
            region
                .page(target)
                .link
                .store(link(link_page(tl), link_tag(tl) + 1, HEAD), Release);
        }
    }
    Ok(())
}

/// Sets every ring page's `prev` to the page that links to it, and the
/// ring's page count to the pages linked, walking from the page whose link
/// carries HEAD: the repair of a writer killed inside a pool splice (steps
/// S1 and S2 in `write.rs`). Under `busy`, with the ring's writer dead.
/// Leaves the ring as it is when its links do not close a ring.
fn relink_prevs(region: &Region, meta: &RingMeta, ring: u32) {
    let g = region.geometry();
    let mut p = meta.r.head_page.load(Relaxed);
    let mut start = None;
    for _ in 0..=g.ring_bound() {
        if !region.owns(ring, p) {
            return;
        }
        let l = region.page(p).link.load(Acquire);
        if link_flag(l) == HEAD {
            start = Some(p);
            break;
        }
        p = link_page(l);
    }
    let Some(start) = start else { return };
    let mut p = start;
    let mut pages = 0u32;
    for _ in 0..=g.ring_bound() {
        let next = link_page(region.page(p).link.load(Acquire));
        if !region.owns(ring, next) {
            return;
        }
        region.page(next).prev.store(p, Release);
        pages += 1;
        if next == start {
            meta.ctl.ring_pages.store(pages, Relaxed);
            return;
        }
        p = next;
    }
}

/// Whether a commit walk was killed at step N (`write.rs`, "Closing a
/// page"): it added the commit page `cp`'s `entries` to the closed totals
/// without moving the commit point off it. With no walk in between, the
/// events of closed pages are those read, those overrun, and those unread
/// on closed pages (the reader's page unless it is the commit page, then
/// the ring's pages from the head up to the commit page):
///
/// ```text
/// closed_entries == read + overrun + unread(reader page)
///                 + entries(head .. commit page)       (or, when the reader
///                                                       page is the commit
///                                                       page: read - its
///                                                       events read + overrun)
/// ```
///
/// The killed walk leaves exactly `entries` more. Only that exact case is
/// taken back; a ring whose links carry UPDATE or not exactly one HEAD (a
/// push cut short), or any other difference, is left as it is.
fn closed_twice(region: &Region, meta: &RingMeta, ring: u32, cp: u32, entries: u64) -> bool {
    let g = region.geometry();
    let cap = crate::format::data_capacity(g.page_size as usize);
    let r = &meta.r;
    let rp = r.reader_page.load(Relaxed);
    if entries == 0 || !region.owns(ring, rp) {
        return false;
    }
    // Data events on the reader page before the reader's position.
    let consumed = {
        let commit = (region.page(rp).commit.load(Acquire) as usize).min(cap);
        let end = (r.read_offset.load(Relaxed) as usize).min(commit);
        // SAFETY: [0, commit) of the reader page is committed; the caller
        // holds `busy` (no reader call runs) and the writer is gone.
        let data = unsafe { region.committed_data(rp, commit) };
        let mut at = 0;
        let mut n = 0u64;
        while at < end {
            match crate::format::decode(data, at) {
                Ok((record, size)) => {
                    n += u64::from(matches!(record, crate::format::PageRecord::Data { .. }));
                    at += size;
                }
                Err(_) => return false,
            }
        }
        n
    };
    let read = r.read.load(Relaxed);
    let overrun = meta.slow.overrun.load(Relaxed);
    let expected = if rp == cp {
        read.checked_sub(consumed)
            .and_then(|x| x.checked_add(overrun))
    } else {
        // The head: the one page a HEAD link points to.
        let mut head = None;
        for p in ring_pages_all(region, ring) {
            let l = region.page(p).link.load(Relaxed);
            match link_flag(l) {
                HEAD if head.is_none() => head = Some(link_page(l)),
                NORMAL => {}
                _ => return false,
            }
        }
        let Some(mut p) = head.filter(|&h| region.owns(ring, h)) else {
            return false;
        };
        let unread = write_entries(region.page(rp).write.load(Relaxed)).saturating_sub(consumed);
        let mut sum = read
            .checked_add(overrun)
            .and_then(|x| x.checked_add(unread));
        let mut reached = false;
        for _ in 0..g.ring_bound() {
            if p == cp {
                reached = true;
                break;
            }
            let e = write_entries(region.page(p).write.load(Relaxed));
            sum = sum.and_then(|x| x.checked_add(e));
            p = link_page(region.page(p).link.load(Relaxed));
            if !region.owns(ring, p) {
                return false;
            }
        }
        sum.filter(|_| reached)
    };
    expected.and_then(|x| x.checked_add(entries)) == Some(meta.w.closed_entries.load(Relaxed))
}

/// Losses a dead writer counted (`dropped`, `commit_overrun`) but did not
/// note on a page: it was killed at step M, between the two (`write.rs`,
/// "Counting a loss"). Every loss a writer counts it also notes, so with
/// no writer between those steps the two totals are equal:
///
/// ```text
/// dropped + commit_overrun
///   == notes the reader took      lost_known - overrun_at_swap
///    + notes of pushed pages      overrun_noted
///    + notes still on pages       lost_at_end of every slot of the ring
/// ```
///
/// (The reader's swap adds each overrun increase to both `lost_known` and
/// `overrun_at_swap`, and a page's notes to `lost_known` alone; page reads
/// and reset keep the same difference. Free and lent slots hold no notes.)
///
/// One exception: a page whose notes a head push has added to
/// `overrun_noted` keeps them until the writer prepares it (T2). A writer
/// killed in between (P1 to T2) left it as the page after the tail, behind
/// a link that no longer carries HEAD; its notes are not counted again.
/// (Any other page after the tail without HEAD holds no notes: it was
/// emptied by the reader or never written.) A tail on the reader page links
/// to the head without the flag: then nothing is excluded.
///
/// The difference is at most one per write level in flight (each was
/// killed or interrupted at most once between the two steps); a larger or
/// negative one (counters scribbled on) is not trusted: 0. Also returns
/// the page whose notes were excluded, if any.
fn unnoted_losses(
    region: &Region,
    meta: &RingMeta,
    ring: u32,
    cp: u32,
    tail: u32,
) -> (u64, Option<u32>) {
    let counted = meta
        .slow
        .dropped
        .load(Relaxed)
        .checked_add(meta.slow.commit_overrun.load(Relaxed));
    let r = &meta.r;
    let taken = r
        .lost_known
        .load(Relaxed)
        .checked_sub(r.overrun_at_swap.load(Relaxed));
    let tail_link = region.page(tail).link.load(Relaxed);
    let after = link_page(tail_link);
    let stale = (link_flag(tail_link) != HEAD
        && tail != r.reader_page.load(Relaxed)
        && after != cp
        && region.owns(ring, after))
    .then_some(after);
    let mut on_pages = Some(0u64);
    for p in ring_pages_all(region, ring) {
        if Some(p) != stale {
            let n = crate::layout::notes(region.page(p).lost_at_end.load(Relaxed));
            on_pages = on_pages.and_then(|s| s.checked_add(n));
        }
    }
    let noted = taken
        .zip(on_pages)
        .and_then(|(t, o)| t.checked_add(o))
        .and_then(|n| n.checked_add(meta.slow.overrun_noted.load(Relaxed)));
    let unnoted = match counted.zip(noted) {
        Some((c, n)) if c >= n && c - n <= crate::layout::MAX_NEST as u64 + 1 => c - n,
        _ => 0,
    };
    (unnoted, stale)
}

impl RingBuffer {
    /// Checks the page structure of ring `ring` that nobody writes or reads
    /// (a private copy of a shared buffer, a dead session): the pages
    /// linked from the head close a ring of the ring's own slots, exactly
    /// one link carries HEAD and none UPDATE, every page's `prev` names the
    /// page before it, the reader page is outside the ring, and the commit
    /// and tail pages are in it (or the reader page). On success the head
    /// hint is set to the head page. A ring that passes is read by a
    /// [`crate::Consumer`] without the retries a live writer could cause;
    /// one that fails should not be read (see [`RingBuffer::mute_ring`]).
    ///
    /// Bounded: at most two walks of the ring's slots.
    pub fn check_quiet_ring(&self, ring: usize) -> Result<(), ControlError> {
        let r = self.check(ring)?;
        let region = self.region();
        let meta = region.ring(r);
        let corrupt = |what| {
            meta.slow.corruptions.fetch_add(1, Relaxed);
            ControlError::Corrupt { ring, what }
        };
        let (list, _) = ring_list(self, r)?;
        let mut heads = 0;
        for (i, &p) in list.iter().enumerate() {
            let l = region.page(p).link.load(Relaxed);
            match link_flag(l) {
                HEAD => heads += 1,
                NORMAL => {}
                _ => return Err(corrupt("a link carries UPDATE or a bad flag")),
            }
            let next = list[(i + 1) % list.len()];
            if region.page(next).prev.load(Relaxed) != p {
                return Err(corrupt("a page's prev does not name the page before it"));
            }
        }
        if heads != 1 || list.len() < 2 {
            return Err(corrupt("not exactly one HEAD link"));
        }
        let rp = meta.r.reader_page.load(Relaxed);
        if !region.owns(r, rp) || list.contains(&rp) {
            return Err(corrupt("reader page out of range or inside the ring"));
        }
        for (what, p) in [
            ("commit page", meta.w.commit_page.load(Relaxed)),
            ("tail page", meta.w.tail_page.load(Relaxed)),
        ] {
            if p != rp && !list.contains(&p) {
                return Err(corrupt(if what == "commit page" {
                    "commit page outside the ring"
                } else {
                    "tail page outside the ring"
                }));
            }
        }
        meta.r.head_page.store(list[0], Relaxed);
        Ok(())
    }

    /// Makes ring `ring` read as empty (a consumer, a page read and an
    /// iterator all find nothing), keeping its pages and counters: for a
    /// ring that failed [`RingBuffer::check_quiet_ring`] in a private copy.
    ///
    /// # Safety
    /// Nobody else writes or reads the ring (a private copy of a shared
    /// buffer): its reader and commit positions are rewritten.
    #[cfg(not(loom))]
    pub unsafe fn mute_ring(&self, ring: usize) -> Result<(), ControlError> {
        let r = self.check(ring)?;
        let region = self.region();
        let g = *region.geometry();
        let meta = region.ring(r);
        let mut rp = meta.r.reader_page.load(Relaxed);
        if !region.owns(r, rp) {
            rp = g.page_index(r, 0);
            meta.r.reader_page.store(rp, Relaxed);
        }
        let cap = crate::format::data_capacity(g.page_size as usize) as u32;
        let commit = region.page(rp).commit.load(Relaxed).min(cap);
        region.page(rp).commit.store(commit, Relaxed);
        meta.r.read_offset.store(commit, Relaxed);
        meta.w.commit_page.store(rp, Relaxed);
        meta.w.tail_page.store(rp, Relaxed);
        meta.w.committing.store(0, Relaxed);
        meta.r.head_page.store(rp, Relaxed);
        Ok(())
    }
}

/// Moves a quiesced ring's running time stamp forward to `now`: a time
/// extend on the tail page carries the events' delta chain there (or the
/// page's own stamp when it is empty), so that events written next, nested
/// ones included, are stamped no earlier than `now`.
fn advance_time(region: &Region, meta: &RingMeta, now: u64) {
    let w = &meta.w;
    let old = w.write_stamp.load(Relaxed);
    if now > old {
        let g = region.geometry();
        let tail = w.tail_page.load(Relaxed);
        if tail < g.nr_pages {
            let tp = region.page(tail);
            let word = tp.write.load(Relaxed);
            let off = crate::layout::write_offset(word);
            let cap = crate::format::data_capacity(g.page_size as usize);
            if off == 0 {
                tp.time_stamp.store(now, Relaxed);
            } else if off + crate::format::TIME_EXTEND_SIZE <= cap {
                let delta = (now - old).min(crate::format::TIME_EXTEND_MAX);
                // SAFETY: [off, off + 8) of the tail page is free (past the
                // write offset, inside the page); the ring is quiesced, so
                // no writer reserves it and readers stop at the commit.
                unsafe {
                    crate::format::write_time_extend(
                        region
                            .page_bytes(tail)
                            .add(crate::format::PAGE_HEADER_SIZE + off),
                        delta,
                    )
                };
                let new_off = off + crate::format::TIME_EXTEND_SIZE;
                tp.write
                    .store(word + crate::format::TIME_EXTEND_SIZE as u64, Relaxed);
                // Release: pairs with the reader's Acquire load of `commit`.
                tp.commit.store(new_off as u32, Release);
            }
            // (A page with no room left: the next write moves to a new page,
            // which `tail_page_update` stamps with the running stamp.)
        }
        w.write_stamp.store(now, Relaxed);
    }
    if w.pending_stamp.load(Relaxed) < now {
        w.pending_stamp.store(now, Relaxed);
    }
}

/// Swaps every field of two rings' metadata that describes their contents;
/// ownership, locks, disable counts and waiters stay with their buffer.
fn swap_meta(a: &RingMeta, b: &RingMeta) {
    // `refused` is the one counter a writer may still bump during the swap:
    // a writer that stored `committing` after the quiesce's barrier sees
    // `record_disabled` and counts its refusal while the swap runs. Moving
    // the difference with two additions keeps such an increment (a load
    // and a store would overwrite it); the total over both rings stays
    // exact, and an increment that lands after the move is counted with the
    // ring that now holds the writer's events.
    let (ra, rb) = (a.slow.refused.load(Relaxed), b.slow.refused.load(Relaxed));
    a.slow.refused.fetch_add(rb.wrapping_sub(ra), Relaxed);
    b.slow.refused.fetch_add(ra.wrapping_sub(rb), Relaxed);
    macro_rules! swap_fields {
        ($($part:ident . $f:ident),*) => {$(
            let t = a.$part.$f.load(Relaxed);
            a.$part.$f.store(b.$part.$f.load(Relaxed), Relaxed);
            b.$part.$f.store(t, Relaxed);
        )*};
    }
    swap_fields!(
        w.tail_page,
        w.commit_page,
        w.write_stamp,
        w.pending_stamp,
        w.closed_entries,
        w.closed_bytes,
        w.closed_pages,
        slow.overrun,
        slow.overrun_bytes,
        slow.commit_overrun,
        slow.dropped,
        slow.corruptions,
        slow.overrun_noted,
        slow.overrun_pages,
        r.reader_page,
        r.read_offset,
        r.head_page,
        r.read_stamp,
        r.read,
        r.read_bytes,
        r.overrun_at_swap,
        r.lost_known,
        r.lost_reported,
        r.pages_read,
        ctl.ring_pages,
        ctl.free_head,
        ctl.lent
    );
}

/// The consumer ownership word of a ring, held for a swap.
struct OwnerLock<'a>(&'a RingMeta);

impl<'a> OwnerLock<'a> {
    fn take(meta: &'a RingMeta, ring: usize) -> Result<OwnerLock<'a>, ControlError> {
        // Acquire: pairs with the Release in `Consumer::drop`.
        meta.r
            .lock
            .compare_exchange(0, 1, Acquire, Relaxed)
            .map_err(|_| ControlError::ReaderBusy {
                ring,
                what: "a Consumer of this ring exists; drop it before swapping",
            })?;
        Ok(OwnerLock(meta))
    }
}

impl Drop for OwnerLock<'_> {
    fn drop(&mut self) {
        // Release: pairs with the Acquire in `Consumer::lock`.
        self.0.r.lock.store(0, Release);
    }
}
