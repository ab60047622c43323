//! The non-consuming iterator of one ring (the kernel's `ring_buffer_iter`
//! as it is since 5.7): it walks from the oldest unread event to the newest
//! committed one without consuming anything, while writers keep writing.
//!
//! # How it reads pages a writer may overwrite
//!
//! The consumer's page is stable under the reader lock. Pages in the ring
//! are not: in overwrite mode the writer pushes the head page and rewrites
//! it. Before it rewrites a page it bumps the page's generation (step T1 of
//! `Writer::tail_page_update`), and it only ever writes above `commit` within
//! one generation. So the iterator reads a page like a seqlock:
//!
//! ```text
//!  g0 = gen(page.write)        Acquire
//!  c  = page.commit            Acquire (pairs with the writer's Release store
//!                              of `commit`: the bytes below it are written)
//!  copy the record at `off < c` into the iterator's own buffer
//!  g1 = gen(page.write += 0)   AcqRel read-modify-write: reads the newest
//!                              generation; the copy's loads stay before it
//!  g0 == g1: the copy is of generation g0, below its commit: not torn
//!  g0 != g1: the writer lapped the iterator: drop the copy and resync
//! ```
//!
//! The copy is racy by design (like every seqlock): its result is used only
//! once the generation check says no writer entered the page meanwhile. The
//! writer-side partner of the second read is the generation bump (T1): on
//! x86-64 (TSO) the bump, a locked read-modify-write, is ordered before the
//! page's new bytes. On weakly ordered machines (AArch64) the bump must also
//! keep the stores after it from moving before it: T1 needs `Acquire`
//! instead of `Relaxed` (slow path, once per page). `write.rs` is not this
//! module's to change; that one-word change is left to its owner.
//! ThreadSanitizer reports the racy copy (`copy_racy`) when a writer laps
//! the iterator; `crates/ring/tsan-suppressions.txt` names it.
//!
//! # Counting what it skipped
//!
//! The iterator keeps the *ordinal* of its next event: the number of
//! events before it in write order, where "events" are committed events plus
//! writes dropped and noted at the end of a page (`PageMeta::lost_at_end`).
//! Two positions have exactly known ordinals:
//!
//! - the consumer's: `read + lost_known` (everything before it was read or
//!   reported lost);
//! - the head page's first event: `overrun + overrun_noted` (pushed pages)
//!   plus the events on pages the consumer has taken (`read`, the unread
//!   events of its page, drops noted on its pages). The head is found and
//!   the counters sampled with the reader lock held, and a no-op
//!   compare-and-swap on the link that marks the head checks that no push
//!   of that head started meanwhile (see `RingIter::head_snapshot`).
//!
//! Walking forward adds one per event returned and the drops noted at each
//! page end. When the iterator jumps (the writer lapped it and it restarts
//! at the head, or a consuming reader passed it and it continues at the
//! consumer's position), the difference of the ordinals is what it skipped.
//!
//! # Coexisting with a consuming reader
//!
//! Each [`RingIter::next`] holds the ring's `busy` word for the call, as
//! the kernel's iterator takes `reader_lock`, so the consumer (whose calls
//! hold it too) cannot swap the reader page, and no control operation
//! (resize, reset) can change the ring, while the iterator copies. Between
//! calls the consumer may consume: if it passes the iterator, the iterator
//! continues at the consumer's position and counts the events it did not
//! see as skipped. A [`crate::Consumer`] of the ring may exist on the same
//! thread: the word is held per call, not per reader.

use crate::buffer::{counter_sum, RingBuffer};
use crate::format::{decode, PageRecord, PAGE_HEADER_SIZE, TIME_EXTEND_MAX};
use crate::layout::{
    link_flag, link_page, write_entries, PageMeta, Region, RingMeta, GENERATION_MASK, HEAD, UPDATE,
};
use crate::sync::{backoff, Ordering::*};
use crate::{ReadError, RingError};

/// Bound on attempts to find the head page while writers move it.
#[cfg(not(loom))]
const HEAD_ATTEMPTS: u32 = 10_000;
/// Loom explores every retry as a new branch: keep the models small.
#[cfg(loom)]
const HEAD_ATTEMPTS: u32 = 3;

/// One event copied out of a ring by a [`RingIter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IterEvent<'i> {
    /// Time stamp: the page's stamp plus the deltas before the event, as the
    /// consumer computes it.
    pub timestamp: u64,
    /// Events between the previous event this iterator returned and this
    /// one that it did not return: overwritten by the writer or consumed by
    /// a consuming reader under it, or dropped by writers (ring full, commit
    /// overrun) and noted at the end of an earlier page. 0 on the first
    /// event returned.
    pub lost_events: u64,
    /// The payload, rounded up to 4 bytes as the format stores it; a copy
    /// owned by the iterator, valid until its next call.
    pub payload: &'i [u8],
}

/// Where the iterator stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    /// Page index.
    page: u32,
    /// The page's generation (write word & GENERATION_MASK) when entered.
    gen: u64,
    /// Offset of the next record in the page's data area.
    off: usize,
    /// Running time stamp at `off` (unused at offset 0: the page's stamp).
    stamp: u64,
}

/// The consumer's state when the iterator last looked, to notice that it
/// moved (then the iterator may have to follow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct ConsumerMark {
    reader_page: u32,
    read: u64,
    read_offset: u32,
}

/// What one step of the walk found.
enum Step {
    /// A data event copied into the buffer: time stamp, payload length.
    Event(u64, usize),
    /// Nothing more is committed.
    End,
}

/// The non-consuming iterator of one ring (the kernel's `ring_buffer_iter`).
///
/// It walks from the consumer's position (the oldest unread event) over the
/// consumer's page and then from the head page on, to the newest committed
/// event, while writers keep writing. Each event is copied into a buffer the
/// iterator owns, and the page's generation is checked after the copy, as a
/// seqlock reader does: if the writer rewrote the page meanwhile, the copy
/// is dropped and the iterator restarts at the head page, counting what it
/// skipped ([`RingIter::skipped`], [`IterEvent::lost_events`]). If a
/// consumer passes it, it continues at the consumer's position. Each call
/// of [`RingIter::next`] holds the ring's reader lock, so the consumer
/// cannot swap or reset the page being copied; do not call it on a thread
/// that holds the same ring's [`crate::Consumer`] (it would wait forever).
///
/// ```
/// use ringtrace_ring::{Config, RingBuffer};
///
/// let buf = RingBuffer::new(Config::new(1)).unwrap();
/// let mut w = buf.writer(0).unwrap();
/// w.write(10, b"one!").unwrap();
/// w.write(20, b"two!").unwrap();
///
/// let mut it = buf.iter(0).unwrap();
/// let ev = it.next().unwrap().unwrap();
/// assert_eq!((ev.timestamp, ev.payload), (10, &b"one!"[..]));
/// assert_eq!(it.next().unwrap().unwrap().payload, b"two!");
/// assert!(it.next().unwrap().is_none());
///
/// // Nothing was consumed.
/// let mut c = buf.consumer(0).unwrap();
/// assert_eq!(c.consume().unwrap().unwrap().payload, b"one!");
/// ```
pub struct RingIter<'a> {
    region: &'a Region,
    meta: &'a RingMeta,
    ring: u32,
    /// Data capacity of a page.
    cap: usize,
    pos: Option<Pos>,
    /// Ordinal of the next event (see the module notes).
    ord_next: u64,
    mark: ConsumerMark,
    /// Lost events not yet reported with an event.
    pending_lost: u64,
    /// Lost events reported or pending, since the first event.
    skipped: u64,
    /// Whether an event was returned yet (losses before the first event are
    /// not the iterator's to report).
    started: bool,
    /// Owned copy of the current record (one page's data area at most).
    buf: Vec<u8>,
}

impl std::fmt::Debug for RingIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingIter")
            .field("ring", &self.ring)
            .field("pos", &self.pos)
            .field("ord_next", &self.ord_next)
            .field("skipped", &self.skipped)
            .finish()
    }
}

impl RingBuffer {
    /// A non-consuming iterator over ring `ring`, starting at the oldest
    /// unread event. It tolerates writers writing meanwhile (see
    /// [`RingIter`]). Allocates one page-sized buffer for its copies.
    pub fn iter(&self, ring: usize) -> Result<RingIter<'_>, RingError> {
        if ring >= self.rings() {
            return Err(RingError::NoSuchRing {
                ring,
                rings: self.rings(),
            });
        }
        let region = self.region();
        let cap = crate::format::data_capacity(region.geometry().page_size as usize);
        Ok(RingIter {
            region,
            meta: region.ring(ring as u32),
            ring: ring as u32,
            cap,
            pos: None,
            ord_next: 0,
            mark: ConsumerMark::default(),
            pending_lost: 0,
            skipped: 0,
            started: false,
            buf: vec![0; cap],
        })
    }
}

impl<'a> RingIter<'a> {
    /// Index of the ring this iterator walks.
    pub fn ring(&self) -> usize {
        self.ring as usize
    }

    /// Events the iterator skipped since its first event: overwritten by the
    /// writer lapping it, consumed by a consuming reader that passed it, or
    /// dropped by writers at the end of a page (the sum of the
    /// [`IterEvent::lost_events`] returned so far).
    ///
    /// Exact when writers and the consumer follow the ring protocol, with
    /// two documented approximations: a write dropped in the middle of a
    /// page (nesting too deep) is counted at that page's end, and a write
    /// reserved on the consumer's page that is still in flight when the
    /// iterator jumps to the head, and is later discarded, is counted once.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Events skipped since the last event returned and not reported yet:
    /// they are reported with the next event, or are lost at the end of
    /// what the iterator returned (a view that stops here reports them).
    /// 0 before the first event.
    pub fn pending_lost(&self) -> u64 {
        if self.started {
            self.pending_lost
        } else {
            0
        }
    }

    /// Restarts at the consumer's position (the oldest unread event).
    pub fn reset(&mut self) {
        self.pos = None;
        self.ord_next = 0;
        self.mark = ConsumerMark::default();
        self.pending_lost = 0;
        self.skipped = 0;
        self.started = false;
    }

    /// The next event, copied out of the ring, or `None` when the iterator
    /// has caught up with the newest committed event (call again later for
    /// more; `None` is also returned when a writer lapped the iterator on
    /// every attempt of one call, or kept the head page moving, or a head
    /// push unfinished (its writer interrupted by a signal handler), through
    /// the whole retry bound). Never returns torn data: an event the writer
    /// overwrote while it was copied is not returned; the iterator restarts
    /// at the oldest page and counts what it skipped.
    ///
    /// Holds the ring's `busy` word for the duration of the call (waiting
    /// for a consumer call in progress).
    #[allow(clippy::should_implement_trait)] // A lending iterator: the event borrows `self`.
    pub fn next(&mut self) -> Result<Option<IterEvent<'_>>, ReadError> {
        let step = {
            let _busy = crate::read::Busy::take(self.meta);
            self.step()?
        };
        match step {
            Step::End => Ok(None),
            Step::Event(timestamp, len) => {
                let lost_events = if self.started { self.pending_lost } else { 0 };
                if self.started {
                    self.skipped = self.skipped.saturating_add(self.pending_lost);
                }
                self.pending_lost = 0;
                self.started = true;
                Ok(Some(IterEvent {
                    timestamp,
                    lost_events,
                    payload: &self.buf[..len],
                }))
            }
        }
    }

    fn page(&self, page: u32) -> &'a PageMeta {
        self.region.page(page)
    }

    /// Adds a jump of the ordinal to `to` to the lost count.
    fn jump_to(&mut self, to: u64) {
        self.pending_lost = self
            .pending_lost
            .saturating_add(to.saturating_sub(self.ord_next));
        self.ord_next = to;
    }

    /// Positions the iterator at the consumer's next event.
    fn go_to_consumer(&mut self) -> Result<(), ReadError> {
        let r = &self.meta.r;
        let rp = r.reader_page.load(Relaxed);
        if rp >= self.region.geometry().nr_pages {
            return Err(self.corrupt_ring("reader page index out of range"));
        }
        let off = r.read_offset.load(Relaxed) as usize;
        self.pos = Some(Pos {
            page: rp,
            gen: self.page(rp).write.load(Acquire) & GENERATION_MASK,
            off,
            stamp: r.read_stamp.load(Relaxed),
        });
        Ok(())
    }

    /// One call's walk, with the reader lock held.
    fn step(&mut self) -> Result<Step, ReadError> {
        let mark = self.follow_consumer()?;
        let bound = (self.region.geometry().ring_bound() as usize + 2) * (self.cap / 4 + 2);
        for _ in 0..bound {
            if let Some(step) = self.walk_once(mark)? {
                return Ok(step);
            }
        }
        Ok(Step::End)
    }

    /// `step`, first: takes the consumer's mark, and follows the consumer
    /// when it is ahead of us.
    fn follow_consumer(&mut self) -> Result<ConsumerMark, ReadError> {
        let r = &self.meta.r;
        // The consumer's state is stable while we hold the lock (its
        // changes were published by its unlock, Acquire in `LockGuard`).
        let mark = ConsumerMark {
            reader_page: r.reader_page.load(Relaxed),
            read: r.read.load(Relaxed),
            read_offset: r.read_offset.load(Relaxed),
        };
        // Checked: the counters may have been scribbled on (shared memory).
        let ord_consumer = counter_sum(self.meta, &[mark.read, r.lost_known.load(Relaxed)]);
        let moved = mark != self.mark;
        self.mark = mark;
        // Follow the consumer when it is ahead of us, or level with us after
        // it moved (our page may be the one it has since handed back).
        if self.pos.is_none()
            || self.ord_next < ord_consumer
            || (moved && self.ord_next == ord_consumer)
        {
            if self.pos.is_none() {
                self.ord_next = ord_consumer;
            } else {
                self.jump_to(ord_consumer);
            }
            self.go_to_consumer()?;
        }
        Ok(mark)
    }

    /// `step`, one round of the walk: the next record of our page, else the
    /// move to the next page. `None`: walk on (a new position is set).
    fn walk_once(&mut self, mark: ConsumerMark) -> Result<Option<Step>, ReadError> {
        let nr_pages = self.region.geometry().nr_pages;
        let Some(pos) = self.pos else {
            return Ok(Some(Step::End));
        };
        if pos.page >= nr_pages {
            return Err(self.corrupt_ring("iterator page index out of range"));
        }
        let pm = self.page(pos.page);
        // Acquire: pairs with the Release store of `commit_page` in the
        // commit walk: if the commit has left this page, the `commit`
        // loaded below is final.
        let commit_page = self.meta.w.commit_page.load(Acquire);
        // Acquire: keeps the loads below after it (the seqlock's first
        // read). It has no Release partner (the writer's bump at T1 is
        // an Acquire read-modify-write); the second read,
        // `same_generation`, is what decides.
        let word = pm.write.load(Acquire);
        if word & GENERATION_MASK != pos.gen {
            // The writer rewrote the page under us: restart at the head.
            return self.restart_at_head();
        }
        // Acquire: pairs with the writer's Release store of `commit`:
        // the bytes below it are written.
        let commit = (pm.commit.load(Acquire) as usize).min(self.cap);
        if pos.off < commit {
            return match self.copy_record(pos, commit)? {
                None => self.restart_at_head(),
                Some((record, size, stamp)) => self.take_record(record, size, stamp),
            };
        }
        // Everything committed on this page is behind us.
        if commit_page == pos.page || commit_page == mark.reader_page {
            // Caught up with the writer (or the commit is still on the
            // consumer's page: nothing in the ring is newer).
            return Ok(Some(Step::End));
        }
        self.leave_page(pos, mark)
    }

    /// `walk_once`: moves to the first event of the head page; `End` when
    /// writers kept moving it (see `go_to_head`).
    fn restart_at_head(&mut self) -> Result<Option<Step>, ReadError> {
        Ok((!self.go_to_head()?).then_some(Step::End))
    }

    /// `walk_once`: steps over a record copied from our page (`size` bytes,
    /// after running stamp `stamp`); a data event ends the step.
    fn take_record(
        &mut self,
        record: PageRecord,
        size: usize,
        stamp: u64,
    ) -> Result<Option<Step>, ReadError> {
        let p = self.pos.as_mut().ok_or(ReadError::CorruptRing {
            ring: self.ring as usize,
            what: "iterator lost its position",
        })?;
        p.off += size;
        match record {
            PageRecord::Data { payload_len, .. } => {
                let ts = record.stamp_after(stamp, 0);
                p.stamp = ts;
                self.ord_next = self.ord_next.saturating_add(1);
                return Ok(Some(Step::Event(ts, payload_len)));
            }
            // Already completed with the page's top bits (in
            // the copy step, inside the generation check).
            PageRecord::TimeStamp { stamp: s } => p.stamp = s,
            _ => p.stamp = record.stamp_after(stamp, 0),
        }
        Ok(None)
    }

    /// `walk_once`, at the end of what is committed on our page `pos.page`
    /// (which the commit has left): counts the drops noted on it and moves
    /// to the next page, or to the head page from the consumer's.
    fn leave_page(&mut self, pos: Pos, mark: ConsumerMark) -> Result<Option<Step>, ReadError> {
        let nr_pages = self.region.geometry().nr_pages;
        let pm = self.page(pos.page);
        let on_reader = pos.page == mark.reader_page;
        // Acquire: pairs with the writers' noting of drops, published
        // with the page by the commit walk's Release of `commit_page`.
        let noted = crate::layout::notes(pm.lost_at_end.load(Acquire));
        if on_reader {
            // The consumer's page is done: continue at the head page.
            self.ord_next = self.ord_next.saturating_add(noted);
            self.pending_lost = self.pending_lost.saturating_add(noted);
            return self.restart_at_head();
        }
        // Acquire: pairs with the Release compare-and-swaps that change
        // links (the consumer's swap, the writer's head push).
        let next = link_page(pm.link.load(Acquire));
        if next >= nr_pages {
            return Err(self.corrupt_ring("page link out of range"));
        }
        let next_gen = self.page(next).write.load(Acquire) & GENERATION_MASK;
        // The loads above belong to the generation we read unless the
        // page was rewritten meanwhile (the seqlock's second read).
        if !same_generation(pm, pos.gen) {
            return self.restart_at_head();
        }
        self.ord_next = self.ord_next.saturating_add(noted);
        self.pending_lost = self.pending_lost.saturating_add(noted);
        self.pos = Some(Pos {
            page: next,
            gen: next_gen,
            off: 0,
            stamp: 0,
        });
        Ok(None)
    }

    /// Moves to the first event of the head page, counting the events
    /// between our ordinal and the head's as lost. False when writers kept
    /// moving the head for the whole attempt bound.
    fn go_to_head(&mut self) -> Result<bool, ReadError> {
        let Some((head, gen, ord)) = self.head_snapshot()? else {
            return Ok(false);
        };
        self.jump_to(ord);
        self.pos = Some(Pos {
            page: head,
            gen,
            off: 0,
            stamp: 0,
        });
        Ok(true)
    }

    /// Finds the head page and its ordinal: the number of events (and noted
    /// drops) on pages before it in write order. Called with the reader lock
    /// held, so the consumer's state is stable.
    ///
    /// ```text
    ///  l  = prev.link (Acquire; carries HEAD -> head)
    ///  no link of the ring carries UPDATE (Acquire loads, head to head)
    ///  g  = gen(head.write)
    ///  o  = overrun + overrun_noted
    ///  cmpxchg(prev.link, l -> l)   AcqRel
    /// ```
    ///
    /// Every push of a page before `head` must be in `o`. Its owner counts
    /// the overrun after winning P1 (HEAD -> UPDATE on the link into the
    /// pushed page) and before clearing UPDATE at P3, but P2 (which makes
    /// the next page the head) is not always after the count: a nested
    /// writer that interrupts the owner between P1 and its count finds
    /// UPDATE, helps with P2 and moves the tail on, and the owner counts
    /// only when the handler returns. A head found then is past a page whose
    /// events are not in `o` yet (one page too few: the iterator reported
    /// a page's worth of skipped events too few). So the snapshot is taken
    /// only when no link carries UPDATE. That is enough: P1 of every push
    /// before `head` happens before the load of `l` (each P2 follows its
    /// P1, by the owner or by a helper whose P1 read UPDATE, and each P1
    /// read the HEAD a previous P2 set), so a later load of that link reads
    /// UPDATE (retry) or P3 or a later read-modify-write of the link, and
    /// then it synchronizes with P3 (Release) and the count is in `o`. The
    /// Acquire of those loads keeps the loads of `g` and `o` after them.
    ///
    /// The no-op compare-and-swap succeeding means the push of `head` (step
    /// P1, an AcqRel compare-and-swap on the same link) comes after it in
    /// the link's modification order, so P1 synchronizes with it and the
    /// push's overrun increment cannot be in `o`, nor its generation bump in
    /// `g`.
    fn head_snapshot(&self) -> Result<Option<(u32, u64, u64)>, ReadError> {
        let nr_pages = self.region.geometry().nr_pages;
        for round in 0..HEAD_ATTEMPTS {
            let Some((head, prev, l)) = self.find_head()? else {
                backoff(round);
                continue;
            };
            if self.push_in_flight(head)? {
                // A writer (perhaps interrupted by a nested one) has not
                // finished a push: its overrun may not be counted yet.
                backoff(round);
                continue;
            }
            let gen = self.page(head).write.load(Acquire) & GENERATION_MASK;
            let slow = &self.meta.slow;
            let overrun = slow.overrun.load(Relaxed);
            let overrun_noted = slow.overrun_noted.load(Relaxed);
            if self
                .page(prev)
                .link
                .compare_exchange(l, l, AcqRel, Acquire)
                .is_err()
            {
                backoff(round);
                continue;
            }
            // Events on the pages the consumer has taken: read, plus the
            // unread ones on its page, plus drops noted on its pages
            // (`lost_known - overrun_at_swap` are those of handed-back
            // pages; the current page's come at its end).
            let r = &self.meta.r;
            let rp = r.reader_page.load(Relaxed);
            if rp >= nr_pages {
                return Err(self.corrupt_ring("reader page index out of range"));
            }
            let rpm = self.page(rp);
            let entries = write_entries(rpm.write.load(Acquire));
            let consumed = self.consumed_on_reader_page(rp)?;
            // Checked: the counters may have been scribbled on.
            let ord = counter_sum(
                self.meta,
                &[
                    overrun,
                    overrun_noted,
                    r.read.load(Relaxed),
                    entries.saturating_sub(consumed),
                    r.lost_known
                        .load(Relaxed)
                        .saturating_sub(r.overrun_at_swap.load(Relaxed)),
                    crate::layout::notes(rpm.lost_at_end.load(Acquire)),
                ],
            );
            return Ok(Some((head, gen, ord)));
        }
        Ok(None)
    }

    /// Whether a head push is in flight: a link of the ring, walked from
    /// `head` back to it, carries UPDATE (a writer won step P1 and has not
    /// reached P3). True also when the walk does not come back to `head`
    /// within the bound. The consumer cannot change the ring's links while
    /// we hold the reader lock; writers change only their flags.
    fn push_in_flight(&self, head: u32) -> Result<bool, ReadError> {
        let nr_pages = self.region.geometry().nr_pages;
        let mut p = head;
        for _ in 0..self.region.geometry().ring_bound() {
            // Acquire: pairs with the Release half of the owner's P3
            // (UPDATE -> NORMAL), which follows its overrun count.
            let l = self.page(p).link.load(Acquire);
            if link_flag(l) == UPDATE {
                return Ok(true);
            }
            p = link_page(l);
            if p >= nr_pages {
                return Err(self.corrupt_ring("page link out of range"));
            }
            if p == head {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Data events before the consumer's position on its page. The page is
    /// the reader's: stable while we hold the reader lock.
    fn consumed_on_reader_page(&self, rp: u32) -> Result<u64, ReadError> {
        let r = &self.meta.r;
        let end = r.read_offset.load(Relaxed) as usize;
        // Acquire: pairs with the writer's Release store of `commit`.
        let commit = (self.page(rp).commit.load(Acquire) as usize).min(self.cap);
        let end = end.min(commit);
        // SAFETY: [0, commit) of the reader page is committed: writers never
        // change it, and the consumer cannot swap the page away while we
        // hold the reader lock.
        let data = unsafe { self.region.committed_data(rp, commit) };
        let mut off = 0;
        let mut n = 0;
        while off < end {
            let (record, size) = decode(data, off).map_err(|source| ReadError::CorruptEvent {
                ring: self.ring as usize,
                page: rp,
                source,
            })?;
            if matches!(record, PageRecord::Data { .. }) {
                n += 1;
            }
            off += size;
        }
        Ok(n)
    }

    /// Finds the head page as the consumer does (`rb_set_head_page`): the
    /// page whose ring predecessor's link carries HEAD. Returns the head,
    /// its predecessor and that link word; None while a writer moves it.
    fn find_head(&self) -> Result<Option<(u32, u32, u64)>, ReadError> {
        let nr_pages = self.region.geometry().nr_pages;
        let mut p = self.meta.r.head_page.load(Relaxed);
        for _ in 0..3 * self.region.geometry().ring_bound() {
            if p >= nr_pages {
                return Err(self.corrupt_ring("head page index out of range"));
            }
            let prev = self.page(p).prev.load(Relaxed);
            if prev >= nr_pages {
                return Err(self.corrupt_ring("page prev index out of range"));
            }
            // Acquire (in `link_into`): pairs with the AcqRel
            // compare-and-swap that set HEAD (writer's push P2, a pool
            // splice, or the consumer's swap). The marking page is `prev`,
            // or a pool page spliced in after it (`pool::link_into`).
            if let Some((before, l)) = crate::pool::link_into(self.region, p, prev) {
                if link_flag(l) == HEAD {
                    return Ok(Some((p, before, l)));
                }
            }
            p = link_page(self.page(p).link.load(Acquire));
        }
        Ok(None)
    }

    /// Copies the record at `pos.off` (below `commit`) out of its page and
    /// checks the page's generation afterwards. Returns the record decoded
    /// from the copy, its size and the running stamp before it; `None` when
    /// the writer rewrote the page meanwhile.
    fn copy_record(
        &mut self,
        pos: Pos,
        commit: usize,
    ) -> Result<Option<(PageRecord, usize, u64)>, ReadError> {
        let pm = self.page(pos.page);
        if pos.off % 4 != 0 || commit % 4 != 0 {
            return Err(self.corrupt_event(
                pos.page,
                crate::format::PageFormatError::Misaligned { offset: pos.off },
            ));
        }
        // The page's stamp (read before the generation check, so it belongs
        // to the generation copied). Written before the page's first event
        // is committed: the Acquire load of `commit` in `step`, pairing with
        // the writer's Release store of it, makes it visible.
        let page_stamp = pm.time_stamp.load(Relaxed);
        let stamp = if pos.off == 0 { page_stamp } else { pos.stamp };
        // SAFETY: `pos.off < commit <= cap`: inside the page's data area.
        let src = unsafe {
            self.region
                .page_bytes(pos.page)
                .add(PAGE_HEADER_SIZE + pos.off)
        };
        let avail = commit - pos.off;
        // The header (and the length word, if any).
        let head = avail.min(8);
        // SAFETY: `src` is valid for `avail >= head` bytes, 4-byte aligned
        // (page data starts 16 bytes into a 4096-aligned page; offsets and
        // commits are multiples of 4); `buf` holds `cap >= avail` bytes.
        unsafe { copy_racy(&mut self.buf[..head], src) };
        let size = match record_size(&self.buf[..head], avail) {
            Some(size) if size <= avail => size,
            _ => {
                // Either torn (the writer rewrote the page) or corrupt.
                if !same_generation(pm, pos.gen) {
                    return Ok(None);
                }
                return Err(self.corrupt_event(
                    pos.page,
                    crate::format::PageFormatError::Truncated {
                        offset: pos.off,
                        len: commit,
                    },
                ));
            }
        };
        let copied = if size > head && self.buf[0] & 31 <= 28 {
            // A data event: copy all of it.
            // SAFETY: as above; `size <= avail`.
            unsafe { copy_racy(&mut self.buf[head..size], src.add(head)) };
            size
        } else {
            head.min(size)
        };
        // The seqlock's second read (see the module notes).
        if !same_generation(pm, pos.gen) {
            return Ok(None);
        }
        // The copy is of one generation, below its commit: decode it.
        let (record, size) = self.decode_copy(pos, copied, size, avail, page_stamp)?;
        Ok(Some((record, size, stamp)))
    }

    /// `copy_record`, once the copy is known to be of one generation:
    /// decodes the `copied` bytes of the record of `size` bytes at
    /// `pos.off` (`avail` bytes to the page's commit) and returns it with
    /// the size to step over.
    fn decode_copy(
        &mut self,
        pos: Pos,
        copied: usize,
        size: usize,
        avail: usize,
        page_stamp: u64,
    ) -> Result<(PageRecord, usize), ReadError> {
        let (record, _) = decode(&self.buf[..copied], 0)
            .or_else(|e| match e {
                // Padding: only its header was copied.
                crate::format::PageFormatError::Truncated { .. } if copied < size => {
                    Ok((PageRecord::Padding { delta: 0 }, size))
                }
                e => Err(e),
            })
            .map_err(|source| self.corrupt_event(pos.page, source))?;
        let record = match record {
            // Re-decode padding deltas from the header alone.
            PageRecord::Padding { .. } if copied < size => PageRecord::Padding {
                delta: u64::from(
                    u32::from_ne_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) >> 5,
                ),
            },
            // An absolute stamp: restore its top bits from the page stamp.
            PageRecord::TimeStamp { stamp: low } => PageRecord::TimeStamp {
                stamp: (page_stamp & !TIME_EXTEND_MAX) | low,
            },
            PageRecord::Data {
                delta,
                payload_offset,
                payload_len,
            } => {
                // Move the payload to the start of the buffer.
                self.buf
                    .copy_within(payload_offset..payload_offset + payload_len, 0);
                PageRecord::Data {
                    delta,
                    payload_offset: 0,
                    payload_len,
                }
            }
            other => other,
        };
        let size = if matches!(record, PageRecord::NullPadding) {
            avail
        } else {
            size
        };
        Ok((record, size))
    }

    fn corrupt_event(&self, page: u32, source: crate::format::PageFormatError) -> ReadError {
        self.meta.slow.corruptions.fetch_add(1, Relaxed);
        ReadError::CorruptEvent {
            ring: self.ring as usize,
            page,
            source,
        }
    }

    fn corrupt_ring(&self, what: &'static str) -> ReadError {
        self.meta.slow.corruptions.fetch_add(1, Relaxed);
        ReadError::CorruptRing {
            ring: self.ring as usize,
            what,
        }
    }
}

/// The seqlock's second read: whether page `pm` is still in generation
/// `gen` after the iterator copied from it.
///
/// A read-modify-write (adding 0), not a load: it reads the newest value in
/// the write word's modification order, where a load may return an older
/// one, and its Release half keeps the copy's loads before it. (A loom model
/// found a plain load after an Acquire fence returning the old generation
/// while the bytes were already the new generation's.) Its partner is the
/// writer's generation bump at T1, a read-modify-write of the same word that
/// precedes every byte of the page's new generation: if the copy saw any of
/// those bytes, the bump is before this read-modify-write and it sees the
/// new generation. (On x86-64 the bump, a locked instruction, orders the
/// stores after it; on weakly ordered machines the bump must be Acquire or
/// followed by a fence for this to hold, see the module notes.)
///
/// The cost is that the iterator takes the write word's cache line once
/// per event it copies; writers never wait for it.
#[inline]
fn same_generation(pm: &PageMeta, gen: u64) -> bool {
    pm.write.fetch_add(0, AcqRel) & GENERATION_MASK == gen
}

/// The size of the record whose first bytes (up to 8) are `head`, with
/// `avail` committed bytes from its start; `None` if the header is invalid.
fn record_size(head: &[u8], avail: usize) -> Option<usize> {
    let word = |i: usize| -> Option<u32> {
        let b = head.get(i * 4..i * 4 + 4)?;
        Some(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    let w0 = word(0)?;
    let type_len = w0 & 31;
    let delta = w0 >> 5;
    let size = match type_len {
        1..=crate::format::TYPE_DATA_MAX => 4 + type_len as usize * 4,
        0 => {
            let a = word(1)? as usize;
            if a < 8 || a % 4 != 0 {
                return None;
            }
            a + 4
        }
        crate::format::TYPE_PADDING if delta == 0 => avail,
        crate::format::TYPE_PADDING => {
            let a = word(1)? as usize;
            if a < 4 || a % 4 != 0 {
                return None;
            }
            a + 4
        }
        _ => crate::format::TIME_EXTEND_SIZE,
    };
    Some(size)
}

/// Copies page bytes that a writer may be rewriting, word by word with
/// volatile loads (a seqlock's read side: the caller discards the result
/// unless the page's generation is unchanged afterwards).
///
/// # Safety
/// `src` must be 4-byte aligned and valid for reads of `dst.len()` bytes,
/// and `dst.len()` a multiple of 4.
unsafe fn copy_racy(dst: &mut [u8], src: *const u8) {
    debug_assert!(dst.len() % 4 == 0 && src as usize % 4 == 0);
    for (i, chunk) in dst.chunks_exact_mut(4).enumerate() {
        // SAFETY: inside the source range (caller's contract), aligned.
        let w = unsafe { std::ptr::read_volatile(src.cast::<u32>().add(i)) };
        chunk.copy_from_slice(&w.to_ne_bytes());
    }
}
