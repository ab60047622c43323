//! The consuming reader: peek and consume events of one ring, swapping the
//! reader's spare page with the head page when its own page is used up.
//! `consume_batch` consumes many events per call: one `busy` acquisition,
//! one load of the page's commit per stretch of committed records and one
//! store of the reader's counters per stretch, instead of one each per event.
//!
//! # Contract
//!
//! Readers of a ring are serialized by the reader lock (a word in the ring's
//! metadata that writers never touch). A reader never stops or slows a
//! writer: it only ever changes the ring with one compare-and-swap on the
//! link that carries HEAD, and it retries while a writer is moving the head.
//!
//! ```text
//!  before:   prev --HEAD--> head --> after          reader: [R]
//!  splice:   R.link = after|HEAD, R.prev = prev
//!  swap:     cmpxchg(prev.link, head|HEAD -> R)     (fails on UPDATE or a
//!                                                    pushed head: retry)
//!  after:    prev --> R --HEAD--> after             reader: [head]
//! ```
//!
//! Only committed bytes are read: the page's `commit` (Release by the
//! outermost writer, Acquire here) bounds what is decoded, so reserved but
//! uncommitted data is never exposed. The reader may own the page the writer
//! is still filling (head == tail); it reads up to the commit and waits for
//! the commit to move on before swapping again.

use crate::format::{decode, decode_small_data, PageRecord};
use crate::layout::{link, link_flag, link_page, link_tag, Region, RingMeta, HEAD, NORMAL};
use crate::sync::{backoff, fence, Ordering::*};
use crate::{ReadError, RingError};

mod lock;
#[cfg(all(test, not(loom)))]
mod lock_tests;

/// Bound on swap attempts before giving up for this call (a writer keeps
/// moving the head); the next call tries again.
#[cfg(not(loom))]
const SWAP_ATTEMPTS: u32 = 10_000;
/// Loom explores every retry as a new branch: keep the models small.
#[cfg(loom)]
const SWAP_ATTEMPTS: u32 = 3;

/// One event read from a ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'r> {
    /// Time stamp: the page's stamp plus the deltas before the event.
    pub timestamp: u64,
    /// Events lost since the previous event this reader returned: events on
    /// pages overwritten before this one (overrun), and events dropped
    /// (ring full, nested too deep, commit overrun) while an earlier page was
    /// the tail. Every loss is reported before an event that was written
    /// after it; drops are reported once the reader moves past their page.
    pub lost_events: u64,
    /// The payload, rounded up to a multiple of 4 bytes as the format stores
    /// it (the tail bytes past the written length are zero).
    pub payload: &'r [u8],
}

/// Where a peeked event lies on the reader's page, to consume exactly that
/// event later without decoding it again ([`Consumer::peek_marked`],
/// [`Consumer::consume_peeked`]). Opaque; a mark of another consumer, or
/// one the ring has moved past, is recognised and not trusted.
#[doc(hidden)] // the merged pipe's seam (ringtrace's Pipe), not part of the API
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeekMark {
    /// The consumer's buffer, by the address of its region in this
    /// process: told apart from another buffer's ring at the same position.
    region: usize,
    /// The consumer's ring.
    ring: u32,
    /// The reader page the event is on.
    page: u32,
    /// `pages_read` at the peek: a swap since (by this reader, or by one
    /// that took its lock over) changes it.
    pages_read: u64,
    /// The event's record: `[offset, end)` of the page's data area.
    offset: u32,
    end: u32,
    /// The payload: `[payload_offset, payload_offset + payload_len)`.
    payload_offset: u32,
    payload_len: u32,
    /// The running stamp the event's delta was added to (the page's stamp
    /// at offset 0, else `read_stamp`).
    stamp_before: u64,
    /// The event's time stamp.
    timestamp: u64,
}

/// The consuming reader of one ring; holds the ring's reader lock.
pub struct Consumer<'a> {
    region: &'a Region,
    meta: &'a RingMeta,
    ring: u32,
    /// The lock word this reader stored (`holder_word`).
    word: u64,
    /// This process's id: stored in `busy` for each call.
    pid: u32,
    /// The dead reader whose lock this one took over, if any.
    took_over: Option<u32>,
}

impl std::fmt::Debug for Consumer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("ring", &self.ring)
            .field("took_over", &self.took_over)
            .finish()
    }
}

impl<'a> Consumer<'a> {
    /// Takes the reader lock of `ring` (see `RingBuffer::consumer` for the
    /// contract): free, it is taken; held by a dead reader, it is taken
    /// over; held by a live reader of another process, the error names it
    /// at once; held in this process, waited for at most
    /// `lock::IN_PROCESS_WAIT`. Every loop here is bounded.
    pub(crate) fn lock(region: &'a Region, ring: u32) -> Result<Consumer<'a>, RingError> {
        let meta = region.ring(ring);
        let pid = std::process::id();
        let word = lock::holder_word(pid, lock::own_start());
        let mut waiting = lock::InProcessWait::new();
        let mut round = 0u32;
        loop {
            // Acquire: pairs with the Release store in `Drop` (or the
            // takeover below), so this reader sees the previous reader's
            // state.
            let held = match meta.r.lock.compare_exchange(0, word, Acquire, Relaxed) {
                Ok(_) => return Ok(Consumer::new(region, ring, word, pid, None)),
                Err(held) => held,
            };
            // Only when held: the free path makes one atomic access.
            let shared = region.state().shared.load(Relaxed) != 0;
            match lock::judge(held, pid, shared) {
                lock::Holder::Dead(dead) => {
                    // Acquire: as above (whatever the dead reader stored
                    // before it died). The word is ours only if nobody
                    // took it over first.
                    if meta
                        .r
                        .lock
                        .compare_exchange(held, word, Acquire, Relaxed)
                        .is_ok()
                    {
                        // The dead reader may have died inside a call,
                        // holding `busy` (its pid): release it. A `busy`
                        // held by anything else (1: an iterator or a
                        // control operation; another pid) is left alone.
                        // Release: pairs with the Acquire in `Busy::take`.
                        let _ = meta.r.busy.compare_exchange(dead, 0, Release, Relaxed);
                        return Ok(Consumer::new(region, ring, word, pid, Some(dead)));
                    }
                }
                lock::Holder::Alive(holder) => {
                    return Err(RingError::ReaderHeld {
                        ring: ring as usize,
                        holder,
                    })
                }
                // Waited for, below.
                lock::Holder::InProcess => {}
            }
            // A reader of this process, or (rarely) another reader took a
            // dead holder's word first, and so on: bounded (only scribbled
            // memory keeps the latter up).
            if waiting.expired() {
                return Err(RingError::ReaderHeld {
                    ring: ring as usize,
                    holder: lock::named((held >> 32) as u32, pid),
                });
            }
            backoff(round);
            round = round.saturating_add(1);
        }
    }

    /// Takes the reader lock if it is free. Never waits, never takes a
    /// lock over, and allocates nothing (the crash dump calls it from a
    /// signal handler): a process that never took a lock with
    /// [`Consumer::lock`] stores its pid without a start time.
    pub(crate) fn try_lock(region: &'a Region, ring: u32) -> Option<Consumer<'a>> {
        let meta = region.ring(ring);
        let pid = std::process::id();
        let word = lock::holder_word(pid, lock::cached_start());
        // Acquire: as in `lock`.
        meta.r
            .lock
            .compare_exchange(0, word, Acquire, Relaxed)
            .ok()?;
        Some(Consumer::new(region, ring, word, pid, None))
    }

    fn new(
        region: &'a Region,
        ring: u32,
        word: u64,
        pid: u32,
        took_over: Option<u32>,
    ) -> Consumer<'a> {
        Consumer {
            region,
            meta: region.ring(ring),
            ring,
            word,
            pid,
            took_over,
        }
    }

    /// The process id of the dead reader whose reader lock this consumer
    /// took over (it was killed or crashed holding it), if it did. Tell the
    /// user: the dead reader's last call may have been cut short (an event
    /// it was handing out is then consumed but never shown).
    pub fn took_over(&self) -> Option<u32> {
        self.took_over
    }

    /// The next event without consuming it.
    pub fn peek(&mut self) -> Result<Option<Event<'_>>, ReadError> {
        let _busy = self.busy();
        Ok(self.next_record(false)?.map(|(ev, _)| ev))
    }

    /// [`peek`](Self::peek), plus a mark of where the event lies, for
    /// [`consume_peeked`](Self::consume_peeked): a merging reader that
    /// peeks every ring's next event to pick the oldest then consumes it
    /// without decoding it again.
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// buf.writer(0).unwrap().write(7, &[1, 2, 3, 4]).unwrap();
    /// let mut r = buf.consumer(0).unwrap();
    /// let (ts, mark) = r.peek_marked().unwrap().map(|(e, m)| (e.timestamp, m)).unwrap();
    /// let ev = r.consume_peeked(mark).unwrap().unwrap();
    /// assert_eq!((ev.timestamp, ev.payload), (ts, &[1u8, 2, 3, 4][..]));
    /// assert!(r.peek_marked().unwrap().is_none());
    /// assert_eq!(buf.stats(0).unwrap().read, 1);
    /// ```
    #[doc(hidden)] // the merged pipe's seam (ringtrace's Pipe), not part of the API
    pub fn peek_marked(&mut self) -> Result<Option<(Event<'_>, PeekMark)>, ReadError> {
        let _busy = self.busy();
        self.next_record(false)
    }

    /// True when there is nothing to read now: a [`peek`](Self::peek)
    /// would return `None`. False when there may be something: peek to
    /// know. For a reader that polls many rings, most of them empty (the
    /// merged pipe): it answers without a peek's decoding, and without
    /// the head search and the swap where its reader page is used up. A
    /// ring it cannot judge at once (a head hint out of date, a head being
    /// moved, a corrupt index) gets false, never true.
    ///
    /// It never hides an event a peek would return: it makes a peek's own
    /// loads in a peek's order and answers true only where the peek would
    /// stop with `None` at the same point. On the reader page, `readable`
    /// (caught up with the commit, or the commit point still on that page).
    /// Past it, `swap`'s "nothing committed on the head page" test on
    /// `find_head`'s first step: the hinted head, marked HEAD by the link
    /// into it (Acquire, as `link_into` loads it), is the commit page
    /// (Acquire, pairs with the Release store of `commit_page` in
    /// `set_commit_to_write`) and holds no commit (Acquire, pairs with the
    /// outermost writer's Release store of `commit`). So an event
    /// committed before the call is either reported (false) or was
    /// overwritten, and counted, while the call ran (a writer lapping the
    /// ring between the loads, as it can during a peek); one committed
    /// later is seen by the next call, since each call loads afresh.
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// let mut r = buf.consumer(0).unwrap();
    /// assert!(r.nothing_to_read());
    /// buf.writer(0).unwrap().write(7, &[1, 2, 3, 4]).unwrap();
    /// assert!(!r.nothing_to_read());
    /// r.consume().unwrap().unwrap();
    /// assert!(r.nothing_to_read());
    /// ```
    #[doc(hidden)] // the merged pipe's seam (ringtrace's Pipe), not part of the API
    pub fn nothing_to_read(&mut self) -> bool {
        let _busy = self.busy();
        let r = &self.meta.r;
        let g = self.region.geometry();
        let rp = r.reader_page.load(Relaxed);
        if rp >= g.nr_pages {
            return false; // Corrupt: a peek reports it.
        }
        let off = r.read_offset.load(Relaxed) as usize;
        let cap = crate::format::data_capacity(g.page_size as usize);
        if let Some(commit) = self.readable(rp, off, cap) {
            return off >= commit;
        }
        // The reader page is used up and the commit point has left it: a
        // peek would swap, unless the head holds nothing committed.
        let head = r.head_page.load(Relaxed);
        if head >= g.nr_pages {
            return false;
        }
        let prev = self.region.page(head).prev.load(Relaxed);
        if self.head_mark(head, prev).is_none() {
            return false;
        }
        head == self.meta.w.commit_page.load(Acquire)
            && self.region.page(head).commit.load(Acquire) == 0
    }

    /// Consumes the event `mark` was taken at (by
    /// [`peek_marked`](Self::peek_marked) on this consumer), without
    /// decoding it again, when it is still the next event: same reader
    /// page, same position, no page swapped since, its bytes still
    /// committed. Otherwise (a reset or another reader moved the ring on
    /// since, or the mark is of another ring or buffer) it is
    /// [`consume`](Self::consume): the event returned is then whatever is
    /// next. Either way the returned event, its `lost_events` and the
    /// accounting (`read`, `read_bytes`, losses reported) are exactly what
    /// `consume` would give.
    ///
    /// A writer cannot move the event in between: the reader page is out
    /// of the ring (overwrite mode's head push never reaches it) and a
    /// writer filling it (head == tail) only appends past its commit.
    #[doc(hidden)] // the merged pipe's seam (ringtrace's Pipe), not part of the API
    pub fn consume_peeked(&mut self, mark: PeekMark) -> Result<Option<Event<'_>>, ReadError> {
        let _busy = self.busy();
        let r = &self.meta.r;
        let g = self.region.geometry();
        let cap = crate::format::data_capacity(g.page_size as usize);
        let rp = r.reader_page.load(Relaxed);
        let off = r.read_offset.load(Relaxed);
        if mark.region == self.region_id()
            && mark.ring == self.ring
            && rp == mark.page
            && rp < g.nr_pages
            && off == mark.offset
            && r.pages_read.load(Relaxed) == mark.pages_read
        {
            let page = self.region.page(rp);
            let stamp = if off == 0 {
                page.time_stamp.load(Relaxed)
            } else {
                r.read_stamp.load(Relaxed)
            };
            // Acquire: pairs with the Release store of `commit` by the
            // outermost writer, as in `readable`. A reset clears the page
            // (commit 0), so a mark from before a reset fails here even
            // where the position looks the same.
            let commit = (page.commit.load(Acquire) as usize).min(cap);
            let end = mark.end as usize;
            if stamp == mark.stamp_before && end <= commit {
                let data = self.page_data(rp, end);
                let lost_total = r.lost_known.load(Relaxed);
                let reported = r.lost_reported.load(Relaxed);
                // The stores of `next_record(true)`, in the same order.
                r.read_offset.store(mark.end, Relaxed);
                r.read_stamp.store(mark.timestamp, Relaxed);
                r.read
                    .store(r.read.load(Relaxed).saturating_add(1), Relaxed);
                r.read_bytes.store(
                    r.read_bytes
                        .load(Relaxed)
                        .saturating_add(u64::from(mark.end - mark.offset)),
                    Relaxed,
                );
                r.lost_reported.store(lost_total.max(reported), Relaxed);
                let from = mark.payload_offset as usize;
                return Ok(Some(Event {
                    timestamp: mark.timestamp,
                    lost_events: lost_total.saturating_sub(reported),
                    payload: &data[from..from + mark.payload_len as usize],
                }));
            }
        }
        Ok(self.next_record(true)?.map(|(ev, _)| ev))
    }

    /// Holds the ring's `busy` word for one call: control operations
    /// (`control.rs`) change the ring only between reader calls.
    #[inline]
    pub(crate) fn busy(&self) -> Busy<'a> {
        Busy::take_as(self.meta, self.pid)
    }

    pub(crate) fn region(&self) -> &'a Region {
        self.region
    }

    /// The buffer's identity in a [`PeekMark`]: its region's address.
    #[inline(always)]
    fn region_id(&self) -> usize {
        std::ptr::from_ref(self.region) as usize
    }

    pub(crate) fn meta(&self) -> &'a RingMeta {
        self.meta
    }

    pub(crate) fn ring_index(&self) -> u32 {
        self.ring
    }

    /// The next event, consumed.
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// buf.writer(0).unwrap().write(7, &[1, 2, 3, 4]).unwrap();
    /// let mut r = buf.consumer(0).unwrap();
    /// assert_eq!(r.consume().unwrap().unwrap().payload, &[1, 2, 3, 4]);
    /// assert!(r.consume().unwrap().is_none());
    /// ```
    pub fn consume(&mut self) -> Result<Option<Event<'_>>, ReadError> {
        let _busy = self.busy();
        Ok(self.next_record(true)?.map(|(ev, _)| ev))
    }

    /// Consumes up to `max` events in order, handing each to `f`, in one
    /// reader call: one acquisition of the ring's `busy` word for the
    /// whole batch, one load of the page's `commit` per stretch of committed
    /// records (not per event), and one store of the reader's position and
    /// counters per stretch. Crosses pages (swapping the reader page with
    /// the head) as [`consume`](Self::consume) does. Returns how many events
    /// `f` was given: 0 when there is nothing to read.
    ///
    /// Each event carries the same `timestamp` and `lost_events` that
    /// `consume` would have returned for it; the accounting is the same.
    ///
    /// A reader that polls in a loop should pause briefly after a small
    /// batch: caught up, it reads the cache line the writer is filling and
    /// takes it away from the writer's core at every poll (the bench
    /// crate's one-writer / one-reader run waits 256 `spin_loop` hints
    /// after a batch of fewer than 64 events, and shows the difference).
    /// Or block in [`crate::RingBuffer::wait`] with a watermark, as the
    /// kernel's readers do.
    ///
    /// On a corrupt record the events handed to `f` before it stay consumed,
    /// the rest of that page is skipped, and the error is returned (as
    /// `consume` does). If `f` panics, the events of the stretch it was
    /// given are not consumed: a later call reads them again.
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// let mut w = buf.writer(0).unwrap();
    /// for i in 0..10u32 {
    ///     w.write(u64::from(i), &i.to_le_bytes()).unwrap();
    /// }
    /// let mut r = buf.consumer(0).unwrap();
    /// let mut seen = Vec::new();
    /// assert_eq!(r.consume_batch(4, |ev| seen.push(ev.payload[0])).unwrap(), 4);
    /// assert_eq!(r.consume_batch(usize::MAX, |ev| seen.push(ev.payload[0])).unwrap(), 6);
    /// assert_eq!(seen, (0..10).collect::<Vec<u8>>());
    /// assert_eq!(r.consume_batch(usize::MAX, |_| unreachable!()).unwrap(), 0);
    /// ```
    pub fn consume_batch<F>(&mut self, max: usize, mut f: F) -> Result<usize, ReadError>
    where
        F: FnMut(Event<'_>),
    {
        let _busy = self.busy();
        let r = &self.meta.r;
        let g = *self.region.geometry();
        let cap = crate::format::data_capacity(g.page_size as usize);
        let mut n = 0usize;
        // Bounded: each round reads a stretch or swaps a page; a writer that
        // keeps committing on our page cannot keep the reader here forever.
        for _ in 0..(g.ring_bound() * 4 + 16) {
            if n >= max {
                break;
            }
            let rp = r.reader_page.load(Relaxed);
            if rp >= g.nr_pages {
                return Err(self.corrupt_ring("reader page index out of range"));
            }
            let start = r.read_offset.load(Relaxed) as usize;
            let Some(commit) = self.readable(rp, start, cap) else {
                if !self.swap(rp)? {
                    break;
                }
                continue;
            };
            if start >= commit {
                break; // Caught up with the writer.
            }
            let stretch = self.read_stretch(rp, start, commit, max - n, &mut f);
            n += stretch.events as usize;
            // Only now, after `f` returned for each: if `f` panics, the
            // stretch is not consumed.
            self.store_stretch(start, &stretch);
            if let Some(source) = stretch.failed {
                return Err(self.skip_corrupt_page(rp, commit, source));
            }
        }
        Ok(n)
    }

    /// Decodes the committed records of the reader page `rp` from `start`
    /// up to `commit`, handing at most `max` events to `f`; stops at the
    /// first record that does not decode. Changes nothing in the ring: the
    /// caller stores the returned position and counters
    /// ([`store_stretch`](Self::store_stretch)).
    #[inline(always)]
    fn read_stretch<F>(
        &self,
        rp: u32,
        start: usize,
        commit: usize,
        max: usize,
        f: &mut F,
    ) -> Stretch
    where
        F: FnMut(Event<'_>),
    {
        let r = &self.meta.r;
        let page = self.region.page(rp);
        let data = self.page_data(rp, commit);
        let mut stamp = if start == 0 {
            page.time_stamp.load(Relaxed)
        } else {
            r.read_stamp.load(Relaxed)
        };
        let known = r.lost_known.load(Relaxed);
        let mut reported = r.lost_reported.load(Relaxed);
        let mut events = 0u64;
        // Hands out one event: the losses not reported yet go with it.
        let mut hand_out = |timestamp: u64, payload: &[u8]| {
            let lost_events = known.saturating_sub(reported);
            reported = reported.max(known);
            events += 1;
            f(Event {
                timestamp,
                lost_events,
                payload,
            });
        };
        let mut off = start;
        let mut failed = None;
        let mut handed = 0usize;
        while off < commit && handed < max {
            if let Some((delta, size)) = decode_small_data(data, off) {
                stamp = stamp.wrapping_add(delta);
                hand_out(stamp, &data[off + 4..off + size]);
                handed += 1;
                off += size;
                continue;
            }
            let (record, size) = match decode(data, off) {
                Ok(x) => x,
                Err(source) => {
                    failed = Some(source);
                    break;
                }
            };
            off += size;
            match record {
                PageRecord::Data {
                    payload_offset,
                    payload_len,
                    ..
                } => {
                    stamp = record.stamp_after(stamp, 0);
                    hand_out(stamp, &data[payload_offset..payload_offset + payload_len]);
                    handed += 1;
                }
                // Padding and time records: only the running stamp moves.
                _ => stamp = record.stamp_after(stamp, page.time_stamp.load(Relaxed)),
            }
        }
        Stretch {
            end: off,
            stamp,
            events,
            reported,
            failed,
        }
    }

    /// Consumes a stretch read from `start` on: one store per counter.
    #[inline(always)]
    fn store_stretch(&self, start: usize, s: &Stretch) {
        let r = &self.meta.r;
        r.read_offset.store(s.end as u32, Relaxed);
        r.read_stamp.store(s.stamp, Relaxed);
        r.read
            .store(r.read.load(Relaxed).saturating_add(s.events), Relaxed);
        r.read_bytes.store(
            r.read_bytes
                .load(Relaxed)
                .saturating_add((s.end - start) as u64),
            Relaxed,
        );
        r.lost_reported.store(s.reported, Relaxed);
    }

    /// Losses not yet reported with an event: those known before the
    /// reader's position plus drops noted on the reader's own page (which
    /// are reported with the first event after that page). Once a drained
    /// ring's writer has stopped, this is what no later event will carry.
    pub fn pending_losses(&self) -> u64 {
        let r = &self.meta.r;
        let rp = r.reader_page.load(Relaxed);
        let on_page = if rp < self.region.geometry().nr_pages {
            crate::layout::notes(self.region.page(rp).lost_at_end.load(Acquire))
        } else {
            0
        };
        // Saturating: the counters may have been scribbled on (shared memory).
        r.lost_known
            .load(Relaxed)
            .saturating_sub(r.lost_reported.load(Relaxed))
            .saturating_add(on_page)
    }

    /// The committed end of the reader page `rp`'s data: `Some(commit)`
    /// with `off < commit` when there is more to read, `Some(commit)` with
    /// `off >= commit` when the reader has caught up with the writer on this
    /// page, `None` when the page is used up and the commit point has left
    /// it (time to swap).
    ///
    /// Loads the page's `commit` first, and the writer's `commit_page` only
    /// when needed: a reader that is behind, or caught up in the middle of
    /// the page the writer is filling, loads one shared word per call (the
    /// commit), never the `WriterState` line the writer stores to on every
    /// event. "In the middle" is `0 < commit < cap`: a page the commit
    /// point has left always ends with `commit == cap`, because a writer
    /// leaves a page only after the event that did not fit padded it to the
    /// end (`move_tail`, step F) and the commit walk then commits the whole
    /// page (`set_commit_to_write`). So `0 < commit < cap` means the commit
    /// point was on this page when that `commit` was stored; a newer value
    /// (the page finished) shows up on a later call, as a newer
    /// `commit_page` would. An empty page (`commit == 0`: the reader's
    /// spare before its first swap, or a reset ring) and a full one still
    /// ask `commit_page`.
    #[inline(always)]
    fn readable(&self, rp: u32, off: usize, cap: usize) -> Option<usize> {
        let page = self.region.page(rp);
        // Acquire: pairs with the Release store of `commit` by the outermost
        // writer (`end_outer`, `set_commit_to_write`): the bytes below it
        // are written.
        let commit = (page.commit.load(Acquire) as usize).min(cap);
        if off < commit || (off == commit && commit != 0 && commit < cap) {
            return Some(commit);
        }
        // Acquire: pairs with the Release store of `commit_page` in
        // `set_commit_to_write`: once the commit has left our page, the
        // `commit` loaded after it is final.
        if self.meta.w.commit_page.load(Acquire) == rp {
            return Some(commit); // Caught up with the writer (off == commit).
        }
        // Acquire: as above; now final.
        let commit = (page.commit.load(Acquire) as usize).min(cap);
        if off < commit {
            Some(commit)
        } else {
            None
        }
    }

    /// The committed data of the reader page `rp`, cut at `commit`. Callers
    /// hand it out only in events that borrow `self`, and never keep it past
    /// a swap.
    #[inline(always)]
    fn page_data(&self, rp: u32, commit: usize) -> &'a [u8] {
        // SAFETY: [0, commit) of the reader page's data area is committed
        // (`readable`): writers never change it, and only this reader
        // (holding the reader lock and `busy`) can swap the page away or
        // reset it, which callers do only after the last use of the slice.
        unsafe { self.region.committed_data(rp, commit) }
    }

    /// The next event (consumed if `consume`) and the mark of where it lay.
    pub(crate) fn next_record(
        &mut self,
        consume: bool,
    ) -> Result<Option<(Event<'_>, PeekMark)>, ReadError> {
        let r = &self.meta.r;
        let nr_pages = self.region.geometry().nr_pages;
        let cap = crate::format::data_capacity(self.region.geometry().page_size as usize);
        for _ in 0..(self.region.geometry().ring_bound() * 4 + 16) {
            let rp = r.reader_page.load(Relaxed);
            if rp >= nr_pages {
                return Err(self.corrupt_ring("reader page index out of range"));
            }
            let page = self.region.page(rp);
            let off = r.read_offset.load(Relaxed) as usize;
            let Some(commit) = self.readable(rp, off, cap) else {
                if !self.swap(rp)? {
                    return Ok(None);
                }
                continue;
            };
            if off >= commit {
                return Ok(None); // Caught up with the writer.
            }
            let data = self.page_data(rp, commit);
            let mut stamp = if off == 0 {
                page.time_stamp.load(Relaxed)
            } else {
                r.read_stamp.load(Relaxed)
            };
            let (record, size) = match decode(data, off) {
                Ok(x) => x,
                Err(source) => return Err(self.skip_corrupt_page(rp, commit, source)),
            };
            match record {
                PageRecord::Data {
                    payload_offset,
                    payload_len,
                    ..
                } => {
                    let timestamp = record.stamp_after(stamp, 0);
                    let lost_total = r.lost_known.load(Relaxed);
                    let lost_events = lost_total.saturating_sub(r.lost_reported.load(Relaxed));
                    if consume {
                        r.read_offset.store((off + size) as u32, Relaxed);
                        r.read_stamp.store(timestamp, Relaxed);
                        r.read
                            .store(r.read.load(Relaxed).saturating_add(1), Relaxed);
                        r.read_bytes.store(
                            r.read_bytes.load(Relaxed).saturating_add(size as u64),
                            Relaxed,
                        );
                        r.lost_reported
                            .store(lost_total.max(r.lost_reported.load(Relaxed)), Relaxed);
                    }
                    let mark = PeekMark {
                        region: self.region_id(),
                        ring: self.ring,
                        page: rp,
                        pages_read: r.pages_read.load(Relaxed),
                        // Offsets fit: they are below the page size (u32).
                        offset: off as u32,
                        end: (off + size) as u32,
                        payload_offset: payload_offset as u32,
                        payload_len: payload_len as u32,
                        stamp_before: stamp,
                        timestamp,
                    };
                    let payload = &data[payload_offset..payload_offset + payload_len];
                    return Ok(Some((
                        Event {
                            timestamp,
                            lost_events,
                            payload,
                        },
                        mark,
                    )));
                }
                // Padding and time records: only the running stamp moves
                // (an absolute stamp takes its top bits from the page's).
                _ => stamp = record.stamp_after(stamp, page.time_stamp.load(Relaxed)),
            }
            // Padding and time records are consumed even by `peek`: they
            // are not events.
            r.read_offset.store((off + size) as u32, Relaxed);
            r.read_stamp.store(stamp, Relaxed);
            r.read_bytes.store(
                r.read_bytes.load(Relaxed).saturating_add(size as u64),
                Relaxed,
            );
        }
        Ok(None)
    }

    /// A record of the reader page `rp` did not decode: skip the rest of
    /// the page (up to `commit`) and report it once.
    #[cold]
    fn skip_corrupt_page(
        &self,
        rp: u32,
        commit: usize,
        source: crate::format::PageFormatError,
    ) -> ReadError {
        self.meta.r.read_offset.store(commit as u32, Relaxed);
        self.meta.slow.corruptions.fetch_add(1, Relaxed);
        ReadError::CorruptEvent {
            ring: self.ring as usize,
            page: rp,
            source,
        }
    }

    /// Swaps the used-up reader page `rp` with the head page. Returns false
    /// when there is nothing to read or a writer kept the head busy.
    pub(crate) fn swap(&mut self, rp: u32) -> Result<bool, ReadError> {
        self.swap_head(rp, false)
    }

    /// [`swap`](Self::swap), or with `whole`, only a head page the commit
    /// point has left: the page the writer is filling stays in the ring,
    /// as the kernel's whole-page reads want it, so that a reader that
    /// takes whole pages never reads the lines of the page being filled
    /// (its `commit`, which the writer stores on every event) while the
    /// writer is on it. Returns false when there is no such page.
    pub(crate) fn swap_head(&mut self, rp: u32, whole: bool) -> Result<bool, ReadError> {
        let r = &self.meta.r;
        // Drops noted while our page was the tail. Stable: no writer is on
        // our page once the commit has left it; writers reset it when they
        // prepare the page after we hand it back.
        let noted = crate::layout::notes(self.region.page(rp).lost_at_end.load(Acquire));
        for round in 0..SWAP_ATTEMPTS {
            let Some((head, before, head_link)) = self.find_head()? else {
                backoff(round);
                continue;
            };
            let hp = self.region.page(head);
            // Nothing committed on the head page: nothing to read. With
            // `whole`, the head page being filled is not taken either, and
            // its `commit` is not even loaded.
            let commit_page = self.meta.w.commit_page.load(Acquire);
            if head == commit_page && (whole || hp.commit.load(Acquire) == 0) {
                return Ok(false);
            }
            let after = link_page(hp.link.load(Acquire));
            if after >= self.region.geometry().nr_pages || before >= self.region.geometry().nr_pages
            {
                return Err(self.corrupt_ring("page link out of range"));
            }
            // Reset our page and splice it in where the head is.
            let mine = self.region.page(rp);
            mine.clear();
            let tag = link_tag(head_link) + 1;
            // Release: pairs with the writers' Acquire loads of this link
            // (`move_tail`, `handle_head_page`): a writer that follows it
            // to `after` sees every read this reader made of that page when
            // it was the reader's (found by ThreadSanitizer).
            mine.link.store(link(after, tag, HEAD), Release);
            // Release: pairs with the Acquire load in `is_reader_page`.
            mine.prev.store(before, Release);
            // SeqCst: as the kernel's smp_mb in rb_get_reader_page, orders
            // our splice before sampling `overrun`; pairs with the writer's
            // AcqRel cmpxchg HEAD->UPDATE in `handle_head_page`, so a push
            // that beats our cmpxchg below is either counted here or makes
            // the cmpxchg fail.
            fence(SeqCst);
            let overrun = (self.meta.slow.overrun.load(Relaxed))
                .saturating_add(self.meta.slow.overrun_noted.load(Relaxed));
            // The swap. Release publishes our page's reset and links to the
            // writers that follow the link (Acquire loads in `move_tail`).
            let swapped = self
                .region
                .page(before)
                .link
                .compare_exchange(head_link, link(rp, tag, NORMAL), AcqRel, Acquire)
                .is_ok();
            if !swapped {
                backoff(round);
                continue;
            }
            // Release: pairs with the Acquire load in `is_reader_page`: a
            // writer that sees this `prev` sees our page's link to `after`.
            // A compare-and-swap from the old head: a writer that spliced
            // a pool page in before `after` since our swap (`after` is the
            // head now) has set the true predecessor (`write::fix_prev`),
            // which we must not overwrite.
            let _ = self
                .region
                .page(after)
                .prev
                .compare_exchange(head, rp, Release, Relaxed);
            r.head_page.store(after, Relaxed);
            r.reader_page.store(head, Relaxed);
            r.pages_read
                .store(r.pages_read.load(Relaxed).wrapping_add(1), Relaxed);
            r.read_offset.store(0, Relaxed);
            let before_swap = r.overrun_at_swap.load(Relaxed);
            r.overrun_at_swap.store(overrun, Relaxed);
            // Saturating: the counters live in memory another process may
            // have scribbled on; a corrupt pair must not panic the reader.
            r.lost_known.store(
                r.lost_known
                    .load(Relaxed)
                    .saturating_add(noted)
                    .saturating_add(overrun.saturating_sub(before_swap)),
                Relaxed,
            );
            return Ok(true);
        }
        Ok(false)
    }

    /// Finds the head page: the page whose ring predecessor's link carries
    /// HEAD (`rb_set_head_page`). None while a writer is moving it.
    /// Returns the head page, the page whose link marks it and that link
    /// word (with its tag); the swap's compare-and-swap expects exactly
    /// that word. The marking page is the head's `prev`, or a pool page a
    /// writer spliced in after it (`pool::link_into`).
    fn find_head(&self) -> Result<Option<(u32, u32, u64)>, ReadError> {
        let nr_pages = self.region.geometry().nr_pages;
        let r = &self.meta.r;
        let mut p = r.head_page.load(Relaxed);
        for _ in 0..3 * self.region.geometry().ring_bound() {
            if p >= nr_pages {
                return Err(self.corrupt_ring("head page index out of range"));
            }
            let prev = self.region.page(p).prev.load(Relaxed);
            if prev >= nr_pages {
                return Err(self.corrupt_ring("page prev index out of range"));
            }
            if let Some((before, l)) = self.head_mark(p, prev) {
                r.head_page.store(p, Relaxed);
                return Ok(Some((p, before, l)));
            }
            p = link_page(self.region.page(p).link.load(Acquire));
        }
        Ok(None)
    }

    /// When page `p` (in range), whose `prev` is `prev`, is the head: the
    /// page whose link marks it HEAD and that link word (`find_head`'s test
    /// of one page). None otherwise, or where an index is out of range.
    #[inline(always)]
    fn head_mark(&self, p: u32, prev: u32) -> Option<(u32, u64)> {
        crate::pool::link_into(self.region, p, prev).filter(|&(_, l)| link_flag(l) == HEAD)
    }

    pub(crate) fn corrupt_ring(&self, what: &'static str) -> ReadError {
        self.meta.slow.corruptions.fetch_add(1, Relaxed);
        ReadError::CorruptRing {
            ring: self.ring as usize,
            what,
        }
    }
}

/// What [`Consumer::read_stretch`] read of a page: where it stopped, the
/// running stamp there, the events handed out, the losses reported with
/// them, and the error of a record that did not decode.
struct Stretch {
    end: usize,
    stamp: u64,
    events: u64,
    reported: u64,
    failed: Option<crate::format::PageFormatError>,
}

impl Drop for Consumer<'_> {
    fn drop(&mut self) {
        // Only our own word is released: a lock taken from us (by
        // `force_release_readers`) belongs to its new holder.
        // Release: pairs with the Acquire in `lock` and `try_lock`.
        let _ = self
            .meta
            .r
            .lock
            .compare_exchange(self.word, 0, Release, Relaxed);
    }
}

/// The ring's `busy` word, held for one reader call.
pub(crate) struct Busy<'a>(&'a RingMeta);

/// A `busy` word set this long is stale: a reader call or a control
/// operation (bounded by `CONTROL_TIMEOUT`) takes far less. Its holder died
/// in the middle (a reader process killed mid-call) or the shared memory
/// was scribbled on.
#[cfg(not(loom))]
const STALE_BUSY: std::time::Duration = std::time::Duration::from_secs(10);

impl<'a> Busy<'a> {
    /// Takes the word as an iterator or a control operation (stores 1).
    #[inline(always)]
    pub(crate) fn take(meta: &'a RingMeta) -> Busy<'a> {
        Busy::take_as(meta, 1)
    }

    /// Takes the word storing `tag`: a `Consumer` stores its pid, so that
    /// a reader that died inside a call can be told from a live one.
    #[inline(always)]
    pub(crate) fn take_as(meta: &'a RingMeta, tag: u32) -> Busy<'a> {
        // Acquire: pairs with the Release in `Drop` and in `control::Quiet`:
        // this call sees the ring as the last control operation left it.
        if meta
            .r
            .busy
            .compare_exchange(0, tag, Acquire, Relaxed)
            .is_err()
        {
            Busy::wait(meta, tag);
        }
        Busy(meta)
    }

    /// `take` when the word is held: waits (reading the clock only here,
    /// not on every reader call: it costs as much as reading an event).
    #[cold]
    #[inline(never)]
    fn wait(meta: &'a RingMeta, tag: u32) {
        let mut round = 0u32;
        #[cfg(not(loom))]
        let start = std::time::Instant::now();
        // Acquire: as in `take`.
        while let Err(held) = meta.r.busy.compare_exchange(0, tag, Acquire, Relaxed) {
            #[cfg(loom)]
            let _ = held;
            backoff(round);
            round = round.saturating_add(1);
            #[cfg(not(loom))]
            if round % 1024 == 0 {
                // A consumer's pid whose process is gone: it died inside a
                // call. Take the word over now, not after `STALE_BUSY`.
                // Acquire: as in `take`.
                if held > 1
                    && lock::process_gone(held)
                    && meta
                        .r
                        .busy
                        .compare_exchange(held, tag, Acquire, Relaxed)
                        .is_ok()
                {
                    break;
                }
                if start.elapsed() > STALE_BUSY {
                    // Take the stale word over (never spin forever on shared
                    // memory) and count it as a corruption.
                    meta.slow.corruptions.fetch_add(1, Relaxed);
                    // Acquire: pairs with the Release of a holder that did
                    // finish after all (its ring changes are then visible).
                    meta.r.busy.swap(tag, Acquire);
                    break;
                }
            }
        }
    }
}

impl Drop for Busy<'_> {
    #[inline]
    fn drop(&mut self) {
        // Release: pairs with the Acquire in `Busy::take` and `quiesce`.
        self.0.r.busy.store(0, Release);
    }
}
