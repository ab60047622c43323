//! The write path: reserve, fill, commit, discard; lockless and nestable.
//!
//! # Contract
//!
//! One thread writes a ring at a time, holding its [`Writer`]. Signal handlers
//! that interrupt that thread may write the same ring through a nested writer
//! ([`crate::RingBuffer::nested_writer`]); such writes nest like a stack, as
//! interrupts nest in the kernel: a nested write runs to completion before the
//! write it interrupted resumes. A write never locks, allocates, makes a
//! system call, blocks or waits for a reader: it is async-signal-safe.
//!
//! # Time stamps
//!
//! The outermost write on a ring (depth 0) stores the delta from the previous
//! event, with a time extend in front when it does not fit in 27 bits. A
//! nested write stores delta 0: it is reported with the time stamp of the
//! event it interrupted (the kernel's 2009 choice). This keeps the delta chain
//! exact without the modern before/after-stamp dance: a nested writer never
//! changes `write_stamp`, so whatever point it interrupts, the running time at
//! its position is the time the outer writer reserved (or the previous one).
//! A time stamp smaller than the previous event's is raised to it, so time
//! never goes backwards within a ring.
//!
//! # The steps, and what a nested write does between them
//!
//! Reserve (`reserve_in_ring`):
//!
//! ```text
//! E  depth = committing; committing = depth + 1; then load record_disabled
//!      nested before E: it completed and restored `committing`; we see the
//!      same depth and proceed as if it never ran.
//!      The disabled check comes after the store: a control operation
//!      (resize, reset, swap) sets record_disabled, runs the heavy barrier
//!      (`sync::heavy_barrier`) and then waits for `committing == 0`; either
//!      it sees our store, or we see its flag and leave without writing.
//! A  tail = tail_page; after = write_stamp; delta = ts - after (outer only)
//! B  pending_stamp = after + delta                          (outer only)
//!      nested between A and C: it reserves first, at the old tail, with
//!      delta 0 (its time = `after`), and does not touch write_stamp, so our
//!      delta is still right; if it moved the tail, our add lands on a
//!      full page and we retry.
//! C  old = tail.write += size + 1 entry                      -- the only RMW
//!      the reservation point: [old, old + size) is ours. A local add
//!      (`sync::local_fetch_add`, the kernel's local_add_return): one
//!      instruction, so indivisible for nested writers, and no `lock`, so
//!      it does not wait for the stores before it (the event bytes and
//!      `commit`, whose lines the reader reads) to reach the other core.
//!      nested after C: it lands after us with delta 0, so its time is ours.
//! D  write_stamp = after + delta; first event on a page stamps the page
//!      nested between C and D, moving the tail: it stamps the new page
//!      with max(write_stamp, pending_stamp) = our time, the same value we
//!      store at D, so D cannot make time go backwards.
//! W  (caller fills the payload; the reservation is between reserve and commit)
//! ```
//!
//! Slow path when the event does not fit (`move_tail`, the kernel's
//! `rb_move_tail`):
//!
//! ```text
//! F  give back what we took: the writer that crossed the page end writes a
//!    filler over the rest and records real_end; others subtract their size.
//! G  next = tail.link. next == commit page -> commit overrun (drop).
//!    link carries HEAD/UPDATE: producer/consumer mode drops; overwrite mode
//!    pushes the head page (`handle_head_page`):
//!      P0 if tail.link carries HEAD: announce the counts the push makes
//!         (`push_target`: overrun + the head page's entries, bytes, one
//!         page, its noted drops), read while the page is still the head.
//!      P1 tail.link HEAD -> UPDATE (cmpxchg). HEAD: ours. UPDATE: we
//!         interrupted the owner and help. NORMAL/MOVED: retry.
//!      PC count the push: raise the counters to the announced targets
//!         (`count_push`, fetch_max: idempotent). Owner and helpers all do
//!         it, before P2, so the count is in `overrun` before any reader
//!         can find the new head and read what was written after the loss.
//!         nested between P0 and P1: it sees HEAD too, announces the same
//!         values (nothing changed the head page) and owns the push; our
//!         P1 then fails. Nested between P1 and PC: it sees UPDATE and
//!         counts for us. A kill anywhere after P1 leaves UPDATE and the
//!         targets: `recover_dead_writer` counts again, idempotently.
//!      P2 next.link NORMAL -> HEAD (new head); undo if nested writers have
//!         since lapped past it.
//!      P3 owner only: tail.link UPDATE -> NORMAL.
//!    The announced values are never stale when used: a link carries UPDATE
//!    only after an owner announced them, and while the owner is in flight
//!    the commit point pins the tail, so no nested writer can lap the ring
//!    and make the same link carry HEAD again (no ABA).
//!    With a shared page pool (`Config::pool_pages`, `pool.rs`), a link
//!    into the head page that carries HEAD (not UPDATE: then we help the
//!    push) first grows the ring (`splice_pool_page`), in both modes; only
//!    an empty pool goes on to the drop or the push above:
//!      S0 pop a page X off the pool (a compare-and-swap on the pool's
//!         tagged top). X is ours alone: in no ring, in no pool. Prepare it:
//!         owner = this ring, emptied, X.link = head|HEAD, X.prev = tail.
//!      S1 cmpxchg tail.link: head|HEAD (the exact word step G loaded,
//!         tag included) -> X. This is the word the reader's swap
//!         compare-and-swaps (`Consumer::swap`), so exactly one of the two
//!         wins: if the reader swapped the head out first, or a nested
//!         writer spliced or pushed first, ours fails, X goes back to the
//!         pool, and the write retries from A. If ours wins, the reader's
//!         fails and it looks for the head again: it finds HEAD on X.link
//!         (`pool::link_into` walks on from the head's stale `prev`).
//!      S2 head.prev = X (`fix_prev`: a compare-and-swap from the value
//!         loaded before walking from X to the page that links to head).
//!      then ring_pages += 1, and T1-T3 move the tail onto X.
//!         nested between S0 and S1: it splices its own page (or pushes)
//!         and our S1 fails. Nested between S1 and S2: it sees a NORMAL
//!         link to X and moves the tail there; filling X it may splice Y
//!         before head and fix head.prev to Y; our S2 then finds head.prev
//!         == Y at the end of its walk (X -> Y -> head) and leaves it.
//!         Nested after S2: our T1-T3 find the tail moved and leave it.
//!         Killed between S0 and S1: X is leaked (one page of memory, no
//!         event; see `pool.rs`). Killed after S1: X is in the ring and
//!         holds nothing; `recover_dead_writer` fixes prev and the page
//!         count from the links (`control::relink_prevs`).
//!    The fast path never gets here: it never consults the pool.
//! T1 next.write += 1 generation
//! T2 if tail_page is still ours: cmpxchg next.write to offset 0, entries 0;
//!    on success stamp the page with max(write_stamp, pending_stamp) and
//!    reset its notes with a cmpxchg from the notes word loaded before,
//!    tagged with our generation: a nested writer between our two
//!    cmpxchgs prepares the page again (its T1 bumps past ours), retags
//!    the notes and may note drops there; our notes cmpxchg then fails
//!    instead of wiping them (a plain store lost them: reported totals
//!    fell short of the counters under commit overruns)
//!    nested between T1 and T2 did the same with a newer generation; our
//!    cmpxchg fails and we do not reset the page it filled. Nested between
//!    T2 and T3 computes the same stamp (no nested writer changes either
//!    input), so both stores agree.
//! T3 cmpxchg tail_page: tail -> next (whoever is first wins); retry from A.
//! ```
//!
//! Counting a loss (`count_loss`): every event a writer loses (ring full
//! in producer/consumer mode and commit overrun at step G, nesting too
//! deep at step E, an inconsistency, the retry bound) is counted in the
//! ring's `dropped` or `commit_overrun` and then noted on the tail page's
//! `lost_at_end`, where readers find it in order (after that page's
//! events). Two words: no one instruction changes both.
//!
//! ```text
//!    dropped (or commit_overrun) += 1
//! M  counted, not yet noted
//!    tail.lost_at_end += 1
//!      nested at M: it counts and notes its own loss whole before we
//!      resume; the pairs do not mix.
//!      killed at M: one loss counted and never noted (readers would never
//!      report it). Every loss counted is also noted, so the counts and
//!      the notes (on pages, taken by the reader, carried by pushed pages
//!      in `overrun_noted`) differ only by the writes killed at M, one per
//!      level in flight; `recover_dead_writer` finds the difference
//!      (`control::unnoted_losses`) and notes it on the commit page, with
//!      the dead write's own losses. Counting first makes the difference
//!      never negative: a loss is never noted without being counted. The
//!      kernel has no such window to care about (no post-mortem repair);
//!      the order is the kernel's. The fast path loses nothing and is
//!      unchanged.
//! ```
//!
//! Closing a page in the commit walk (`close_commit_page`): the page's
//! events are added to `closed_entries` (and its bytes and the page to
//! `closed_bytes`, `closed_pages`), then the commit point moves off it.
//!
//! ```text
//!    closed_entries += entries(cp), closed_bytes, closed_pages
//! N  counted as closed, commit_page still cp
//!    commit_page = next
//!      nested at N: it does not walk (only the outermost writer does).
//!      killed at N: the stats count cp's events twice (closed, and as
//!      the commit page's), and the next walk would add them again.
//!      `recover_dead_writer` finds that case exactly: with no write in
//!      flight, `closed_entries` is what was read, overrun, and what is
//!      unread on closed pages (the reader's, then the ring's from the
//!      head up to the commit page); one commit page's worth more is this
//!      window, and is taken back (`control::closed_twice`).
//! ```
//!
//! Commit (`end`, the kernel's `rb_end_commit`): only the outermost writer
//! moves the commit point. It stores the end of its own reservation as its
//! page's `commit`, with Release (`end_outer`). When the re-check below
//! finds more, or the commit point behind the tail (after a page move), it
//! walks `commit_page` to `tail_page`, storing each page's `commit`
//! (`rb_set_commit_to_write`).
//!
//! ```text
//! K  commit stored (or the walk done)
//!      nested between C and K: it reserved after us and saw depth 1, so
//!      it left its event past our end, uncommitted; the re-check at L
//!      finds it.
//! L  committing = 0; then re-check tail/write against the commit
//!      nested between C and L left bytes past the commit: the re-check
//!      finds them and walks, after taking `committing` back as step E
//!      does (store, then load `record_disabled`): while it was 0 a control
//!      operation may have begun quiescing the ring, and then the ring is
//!      the control side's and the walk is not done (the operation commits
//!      those bytes). Nested after L is outermost itself and commits on its
//!      own.
//! ```

use crate::format::{
    event_size, write_data_header, write_padding, write_time_extend, PAGE_HEADER_SIZE,
    TIME_EXTEND_MAX, TIME_EXTEND_SIZE, TS_DELTA_MAX,
};
use crate::layout::{
    link, link_flag, link_page, link_tag, notes, write_entries, write_offset, PageMeta, Region,
    RingMeta, WriteGeometry, WriterState, ENTRY, GENERATION, GENERATION_MASK, HEAD, MAX_NEST,
    MOVED, NORMAL, PUSH_OVERRUN, PUSH_OVERRUN_BYTES, PUSH_OVERRUN_NOTED, PUSH_OVERRUN_PAGES,
    RECORD_CORRUPT, RECORD_QUIESCE_MASK, UPDATE,
};
use crate::sync::{
    light_barrier, local_fetch_add, prefetch_for_write, signal_fence, AtomicU64, Ordering::*,
};
use crate::{Mode, WriteError};
use std::marker::PhantomData;

/// How far past the start of an event the fast path prefetches for writing:
/// the line after the next. One or two lines ahead did best in the bench's
/// one-writer / one-reader run (`examples/tput_ab.rs` in the bench crate).
const PREFETCH_AHEAD: usize = 128;
/// Bound on reserve retries, as the kernel's 1000 loops of -EAGAIN.
const MAX_RETRIES: u32 = 1000;

/// Labels of the racy steps, for the test hook that performs a nested write
/// at each of them (unit tests, and loom models through
/// [`crate::loom_hook`]).
#[cfg(any(test, loom))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum Label {
    E,
    A,
    B,
    C,
    D,
    F,
    G,
    P0,
    M,
    N,
    P1,
    P2,
    /// Pool splice: a page taken from the pool, not spliced yet.
    S0,
    /// Pool splice: the page linked in after the tail, the head page's
    /// `prev` not fixed yet.
    S1,
    /// Pool splice: `prev` fixed, the ring's page count not raised yet.
    S2,
    T1,
    /// Inside T2: the write word's reset won, the page's other fields not
    /// reset yet.
    R,
    T2,
    K,
    L,
}

/// The hook: a function called at each labelled step on the current
/// thread (loom's thread-locals under loom, so each model thread has its
/// own).
#[cfg(any(test, loom))]
pub(crate) mod hook {
    use super::Label;
    use std::cell::Cell;
    #[cfg(not(loom))]
    thread_local! {
        pub(crate) static HOOK: Cell<Option<fn(Label)>> = const { Cell::new(None) };
    }
    #[cfg(loom)]
    loom::thread_local! {
        pub(crate) static HOOK: Cell<Option<fn(Label)>> = Cell::new(None);
    }
    pub(crate) fn fire(label: Label) {
        if let Some(f) = HOOK.with(|h| h.get()) {
            f(label);
        }
    }
}

macro_rules! step {
    ($label:ident) => {
        #[cfg(any(test, loom))]
        hook::fire(Label::$label);
    };
}

/// The writing end of one ring.
///
/// Obtained from [`crate::RingBuffer::writer`] (claims the ring for the
/// current thread) or [`crate::RingBuffer::nested_writer`] (inside a signal
/// handler of the owning thread). Not `Send`: a writer context is a thread.
pub struct Writer<'a, G: GeometrySource = WriteGeometry> {
    region: &'a Region,
    meta: &'a RingMeta,
    /// The region's write geometry (computed once per region): a copy in a
    /// long-lived writer, the region's own in a writer made per record.
    geometry: G,
    ring: u32,
    claimed: bool,
    _not_send: PhantomData<*const ()>,
}

impl<G: GeometrySource> std::fmt::Debug for Writer<'_, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("ring", &self.ring)
            .field("claimed", &self.claimed)
            .finish()
    }
}

/// Where a reservation lives.
///
/// Word-sized fields only, with no padding and no `bool`: a `bool` gives the
/// compiler a niche for the discriminants of `Option<Result<Slot, _>>`, and
/// moving such a value then used overlapping, misaligned partial copies
/// whose store-to-load forwarding failed (measured: `reserve` + `commit` cost
/// three times `write`). Whether a time extend precedes the event is
/// [`Slot::extended`], derived from the sizes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// Page index.
    page: u32,
    /// Write depth of this reservation (0 = outermost).
    depth: u32,
    /// Offset in the data area of the first byte (the time extend, if any).
    start: usize,
    /// Total bytes reserved (extend + event).
    size: usize,
    /// Delta the event carries in total (0 for nested events).
    delta: u64,
    /// The payload.
    payload: *mut u8,
    /// Payload length asked for.
    len: usize,
}

impl Slot {
    /// Whether a time extend precedes the event: the reservation is larger
    /// than the event alone.
    fn extended(&self) -> bool {
        self.size != event_size(self.len)
    }
}

/// Where the fast path of a reservation stopped (see `Writer::fast_steps`).
#[derive(Clone, Copy)]
enum Detour {
    /// Before step E: nothing was done.
    NotTaken,
    /// At step E: recording is off. The write is entered (depth 1).
    Disabled,
    /// After step E, before step C: the tail index is out of range, or the
    /// time stamp needs the general loop (a time extend, or a stamp below
    /// the previous one). Nothing is reserved.
    General,
    /// At step C: the event did not fit on page `tail`, where it was
    /// reserved from offset `start`.
    Overflow { tail: u32, start: usize },
}

/// A reserved event: `len` writable bytes, published by [`Reservation::commit`].
///
/// Dropping it without committing discards it, like
/// [`Reservation::discard`]: the kernel's `ring_buffer_discard_commit`.
#[must_use = "a reservation is discarded unless committed"]
pub struct Reservation<'w, 'a, G: GeometrySource = WriteGeometry> {
    writer: &'w mut Writer<'a, G>,
    slot: Slot,
}

impl<G: GeometrySource> std::fmt::Debug for Reservation<'_, '_, G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("len", &self.slot.len)
            .finish()
    }
}

impl<'a> Writer<'a> {
    /// A writer that keeps its own copy of the geometry: for a writer that
    /// lives across many writes, which then reads it with no indirection.
    #[inline(always)]
    pub(crate) fn new(region: &'a Region, ring: u32, claimed: bool) -> Writer<'a> {
        Writer {
            region,
            meta: region.ring(ring),
            geometry: *region.write_geometry(),
            ring,
            claimed,
            _not_send: PhantomData,
        }
    }
}

impl<'a> Writer<'a, &'a WriteGeometry> {
    /// A writer that reads the region's geometry: for a writer made per
    /// record, which then skips copying it to the stack; a long-lived writer
    /// keeps its own copy instead, since it reads it on every write (the
    /// bench crate's `trace!` and `write` rows compare the two).
    #[inline(always)]
    pub(crate) fn transient(region: &'a Region, ring: u32) -> Writer<'a, &'a WriteGeometry> {
        Writer {
            region,
            meta: region.ring(ring),
            geometry: region.write_geometry(),
            ring,
            claimed: false,
            _not_send: PhantomData,
        }
    }
}

/// Which of the two kinds of [`Writer`] this is; sealed. The kinds differ
/// in where they read the ring's write geometry and in whether the fast
/// path prefetches ahead:
///
/// - the default, a writer that lives across writes
///   ([`crate::RingBuffer::writer`], [`crate::RingBuffer::nested_writer`]),
///   holds a copy of the geometry and prefetches the line after next;
/// - a writer made per record ([`crate::RingBuffer::transient_writer`])
///   reads the region's geometry in place and does not prefetch: its
///   caller reads a clock per record, which outlasts the prefetch's gain.
#[doc(hidden)] // a benchmark seam of the tracer's record path, not for users
pub trait GeometrySource: sealed::Sealed {}

mod sealed {
    use crate::layout::WriteGeometry;

    pub trait Sealed {
        /// Whether the fast path prefetches ahead for writing (see
        /// `Writer::reserve_fast`).
        const PREFETCH: bool;
        fn get(&self) -> &WriteGeometry;
    }

    impl Sealed for WriteGeometry {
        const PREFETCH: bool = true;
        #[inline(always)]
        fn get(&self) -> &WriteGeometry {
            self
        }
    }

    impl Sealed for &WriteGeometry {
        const PREFETCH: bool = false;
        #[inline(always)]
        fn get(&self) -> &WriteGeometry {
            self
        }
    }
}

impl GeometrySource for WriteGeometry {}
impl GeometrySource for &WriteGeometry {}

impl<'a, G: GeometrySource> Writer<'a, G> {
    /// The region's write geometry.
    #[inline(always)]
    fn geo(&self) -> &WriteGeometry {
        sealed::Sealed::get(&self.geometry)
    }

    /// This writer's ring, for a call off the fast path (see [`Cold`]).
    #[inline(always)]
    fn cold(&self) -> Cold<'a> {
        Cold {
            region: self.region,
            ring: self.ring,
        }
    }

    /// The metadata of page `page`.
    #[inline(always)]
    fn page(&self, page: u32) -> &'a PageMeta {
        debug_assert!(page < self.geo().nr_pages);
        // SAFETY: every caller checked `page < nr_pages` (an index read from
        // the shared state is range-checked where it is loaded), and the
        // array lives as long as the region.
        unsafe { &*self.geo().pages.add(page as usize) }
    }

    /// Pointer to the first byte of page `page`.
    #[inline(always)]
    fn page_bytes(&self, page: u32) -> *mut u8 {
        debug_assert!(page < self.geo().nr_pages);
        // SAFETY: as in `page`: the page lies inside the data area.
        unsafe {
            self.geo()
                .data
                .add((page as usize) << self.geo().page_shift)
        }
    }

    /// Index of the ring this writer writes.
    pub fn ring(&self) -> usize {
        self.ring as usize
    }

    /// Writes `data` as one event stamped `ts`: reserve, copy and commit.
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// let mut w = buf.writer(0).unwrap();
    /// w.write(100, b"hello").unwrap();
    /// let mut r = buf.consumer(0).unwrap();
    /// let ev = r.consume().unwrap().unwrap();
    /// assert_eq!(ev.timestamp, 100);
    /// assert_eq!(&ev.payload[..5], b"hello");
    /// ```
    #[inline(always)]
    pub fn write(&mut self, ts: u64, data: &[u8]) -> Result<(), WriteError> {
        match self.reserve_fast(ts, data.len()) {
            Some(Ok(slot)) => {
                // SAFETY: `slot.payload` has `data.len()` reserved bytes that
                // nobody else touches until we commit.
                unsafe { copy_payload(slot.payload, data) };
                self.commit_slot(&slot);
                Ok(())
            }
            Some(Err(e)) => Err(e),
            None => self.write_general(ts, data),
        }
    }

    /// Reserves `len` bytes stamped `ts` and lets `fill` write them in
    /// place: the encoder writes straight into the ring, with no staging
    /// copy and no [`Reservation`] value to move around. `fill` returns
    /// `true` to commit, `false` to discard (see [`Reservation::discard`]);
    /// the result says which happened. If `fill` panics, the event is
    /// discarded. The bytes are zeroed only in the alignment tail: fill all
    /// of them.
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// let mut w = buf.writer(0).unwrap();
    /// let committed = w.write_with(7, 4, |b| { b.copy_from_slice(b"abcd"); true }).unwrap();
    /// assert!(committed);
    /// assert!(!w.write_with(8, 4, |_| false).unwrap()); // discarded
    /// let mut r = buf.consumer(0).unwrap();
    /// assert_eq!(&r.consume().unwrap().unwrap().payload[..4], b"abcd");
    /// assert!(r.consume().unwrap().is_none());
    /// ```
    #[inline(always)]
    pub fn write_with(
        &mut self,
        ts: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> Result<bool, WriteError> {
        let slot = match self.reserve_fast(ts, len) {
            Some(r) => r?,
            None => self.cold().reserve_slot(ts, len)?,
        };
        Ok(self.fill_slot(slot, fill))
    }

    /// Lets `fill` write the reserved bytes, then commits (`fill` returned
    /// `true`) or discards; discards if `fill` unwinds. Returns `fill`'s
    /// answer.
    #[inline(always)]
    fn fill_slot(&mut self, slot: Slot, fill: impl FnOnce(&mut [u8]) -> bool) -> bool {
        // SAFETY: `slot.payload` has `slot.len` reserved bytes that nobody
        // else touches until we commit or discard, and `self` is borrowed
        // mutably for the duration.
        let bytes = unsafe { std::slice::from_raw_parts_mut(slot.payload, slot.len) };
        // Discards the reservation if `fill` unwinds. It holds the slot by
        // value: a reference would force the slot out of registers into
        // memory on the fast path.
        let guard = DiscardOnUnwind {
            writer: self.cold(),
            slot,
        };
        let keep = fill(bytes);
        let slot = guard.disarm();
        if keep {
            self.commit_slot(&slot);
        } else {
            self.cold().discard_slot(slot);
        }
        keep
    }

    /// [`write_with`](Writer::write_with) for the case its fast path
    /// handles, and nothing else: an outermost write of a valid length,
    /// recording on, no time extend, room on the tail page. `None` when the
    /// write is not that case: then nothing was written or counted, and
    /// `write_with` does the whole write. When the event did not fit, the
    /// tail page has moved on first (the loss, if the move failed, is
    /// counted, and its error returned).
    ///
    /// For a caller with a general path of its own: that path starts over
    /// instead of joining this one after the reservation, so the fast one
    /// keeps its constants. In `write_with` the two reservations join
    /// before the fill, and the fill and commit then carry the size and
    /// depth as run-time values (the tracer's record path, measured: 142.7
    /// instructions per `trace!` with `write_with`, 125.7 with this).
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// let mut w = buf.writer(0).unwrap();
    /// let fill = |b: &mut [u8]| { b.copy_from_slice(b"abcd"); true };
    /// let done = match w.write_with_fast(7, 4, fill) {
    ///     Some(r) => r,
    ///     None => w.write_with(7, 4, fill),
    /// };
    /// assert!(done.unwrap());
    /// assert!(w.write_with_fast(8, 0, |_| true).is_none()); // not a valid length
    /// ```
    #[doc(hidden)] // the tracer's record path; users call `write_with`
    #[inline(always)]
    pub fn write_with_fast(
        &mut self,
        ts: u64,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> bool,
    ) -> Option<Result<bool, WriteError>> {
        let slot = match self.fast_steps(ts, len) {
            Ok(slot) => slot,
            Err(Detour::NotTaken) => return None,
            Err(Detour::Disabled) => {
                self.cold().leave_fast();
                return None;
            }
            Err(Detour::General) => {
                self.cold().end_slow();
                return None;
            }
            Err(Detour::Overflow { tail, start }) => {
                return self.cold().move_on(tail, start, event_size(len));
            }
        };
        Some(Ok(self.fill_slot(slot, fill)))
    }

    /// `write` for everything the fast path does not take: nested writes,
    /// invalid lengths, disabled recording.
    #[inline(never)]
    fn write_general(&self, ts: u64, data: &[u8]) -> Result<(), WriteError> {
        let slot = self.reserve_slot(ts, data.len())?;
        // SAFETY: as in `write`.
        unsafe { copy_payload(slot.payload, data) };
        self.commit_slot(&slot);
        Ok(())
    }

    /// Reserves an event of exactly `len` payload bytes stamped `ts`.
    ///
    /// The bytes are zeroed only in the alignment tail; fill all of them.
    /// Commit with [`Reservation::commit`]; dropping discards.
    #[inline(always)]
    pub fn reserve(&mut self, ts: u64, len: usize) -> Result<Reservation<'_, 'a, G>, WriteError> {
        let slot = match self.reserve_fast(ts, len) {
            Some(r) => r?,
            None => self.cold().reserve_slot(ts, len)?,
        };
        Ok(Reservation { writer: self, slot })
    }

    /// The fast path of a reservation: an outermost write of a valid length
    /// with recording on. `None` when it does not apply (nothing was done);
    /// otherwise the result of the whole reservation.
    #[inline(always)]
    fn reserve_fast(&self, ts: u64, len: usize) -> Option<Result<Slot, WriteError>> {
        match self.fast_steps(ts, len) {
            Ok(slot) => Some(Ok(slot)),
            Err(Detour::NotTaken) => None,
            Err(Detour::Disabled) => Some(Err(self.cold().refuse(0))),
            Err(Detour::General) => Some(self.cold().reserve_retry(ts, len, 0)),
            Err(Detour::Overflow { tail, start }) => {
                Some(
                    self.cold()
                        .overflowed(ts, len, tail, start, event_size(len)),
                )
            }
        }
    }

    /// The steps of the fast path, which stop at the first condition it
    /// does not handle and say which (see [`Detour`]); the caller decides
    /// how to go on.
    #[inline(always)]
    fn fast_steps(&self, ts: u64, len: usize) -> Result<Slot, Detour> {
        let w = &self.meta.w;
        if len.wrapping_sub(1) >= self.geo().max_payload || w.committing.load(Relaxed) != 0 {
            return Err(Detour::NotTaken);
        }
        // Step E for depth 0. A nested writer between the load above and
        // this store restores 0 before we resume.
        w.committing.store(1, Relaxed);
        // Keeps the store before the load below, in the compiler; the CPU's
        // half is the control side's heavy barrier (see the module docs).
        light_barrier();
        // Acquire: pairs with the Release that re-enables recording at the
        // end of a control operation, so its changes to the ring are seen.
        if w.record_disabled.load(Acquire) != 0 {
            return Err(Detour::Disabled);
        }
        step!(E);
        // Step A.
        let tail = w.tail_page.load(Acquire);
        if tail >= self.geo().nr_pages {
            return Err(Detour::General);
        }
        let after = w.write_stamp.load(Relaxed);
        // A stamp below the previous one wraps to a huge delta and, like a
        // delta that needs a time extend, goes to the general loop, which
        // raises it to the previous one: one test for both.
        let delta = ts.wrapping_sub(after);
        let event = event_size(len);
        if delta > TS_DELTA_MAX {
            return Err(Detour::General);
        }
        let full = ts;
        step!(A);
        // Step B.
        w.pending_stamp.store(full, Relaxed);
        signal_fence();
        step!(B);
        // Step C: the reservation point. A local add (see
        // `local_fetch_add`): indivisible for the handlers nested on this
        // thread, with no barrier that would wait for the reader's lines.
        let page = self.page(tail);
        let old = local_fetch_add(&page.write, event as u64 + ENTRY);
        signal_fence();
        let start = write_offset(old);
        step!(C);
        if start + event > self.geo().cap {
            return Err(Detour::Overflow { tail, start });
        }
        // Step D.
        let mut delta = delta;
        if start == 0 {
            // The first event on a page: its time is the page's.
            page.time_stamp.store(full, Relaxed);
            delta = 0;
        }
        w.write_stamp.store(full, Relaxed);
        signal_fence();
        step!(D);
        // SAFETY: [start, start + event) of this page is ours (step C) and
        // inside the page (checked above), so is the address.
        let at = unsafe { self.page_bytes(tail).add(PAGE_HEADER_SIZE + start) };
        // SAFETY: as above.
        let slot = unsafe { fill_headers_at(at, tail, start, event, false, delta, 0, len) };
        // Not a step, a hint: asks for the line after the next one for
        // writing (`sync::prefetch_for_write`), so that taking it back from
        // the reader, which read it a lap ago, overlaps the events written
        // before it. Near the page's end the line is in the next page in
        // memory, which is not the next one in the ring and may be the
        // reader's: then the reader loses that line once, for the page's
        // last two lines, a cost too small to measure next to a bounds
        // test that every write would pay. A long-lived writer only:
        // one made per record (the tracer's) reads a clock per event,
        // which takes longer than the reader's lines take to come back, and
        // the hint adds to the record's cost instead.
        if <G as sealed::Sealed>::PREFETCH {
            prefetch_for_write::<PREFETCH_AHEAD>(at);
        }
        Ok(slot)
    }

    /// The general reservation loop, entered after step E.
    #[inline(never)]
    fn reserve_retry(&self, ts: u64, len: usize, depth: u32) -> Result<Slot, WriteError> {
        match self.reserve_in_ring(ts, len, depth) {
            Ok(slot) => Ok(slot),
            Err(e) => {
                self.end(depth);
                Err(e)
            }
        }
    }

    #[inline]
    fn reserve_slot(&self, ts: u64, len: usize) -> Result<Slot, WriteError> {
        if len.wrapping_sub(1) >= self.geo().max_payload {
            return Err(self.too_large(len));
        }
        let w = &self.meta.w;
        // Step E: enter. Plain load and store: a nested writer restores the
        // depth it found before we resume.
        let depth = w.committing.load(Relaxed);
        if depth as usize >= MAX_NEST {
            self.count_loss(&self.meta.slow.dropped, w.tail_page.load(Relaxed));
            return Err(WriteError::NestTooDeep);
        }
        w.committing.store(depth + 1, Relaxed);
        light_barrier();
        // Acquire: as in `reserve_fast`.
        if w.record_disabled.load(Acquire) != 0 {
            return Err(self.refuse(depth));
        }
        step!(E);
        self.reserve_retry(ts, len, depth)
    }

    #[inline]
    fn reserve_in_ring(&self, ts: u64, len: usize, depth: u32) -> Result<Slot, WriteError> {
        let w = &self.meta.w;
        let outer = depth == 0;
        let event = event_size(len);
        let nr_pages = self.geo().nr_pages;
        for _ in 0..MAX_RETRIES {
            // Step A. Acquire: pairs with the Release cmpxchg at T3, so the
            // page preparation of a tail moved by another context is visible
            // (only this thread moves it, but readers in shared memory may
            // have rewritten the page we get to).
            let tail = w.tail_page.load(Acquire);
            if tail >= nr_pages {
                return Err(self.corrupt("tail page index out of range"));
            }
            let after = w.write_stamp.load(Relaxed);
            // A stamp below the previous one is raised to it; a gap beyond
            // 59 bits is clamped unless the event starts a page.
            let full = if outer { ts.max(after) } else { after };
            let delta = (full - after).min(TIME_EXTEND_MAX);
            let extended = delta > TS_DELTA_MAX;
            let size = event + if extended { TIME_EXTEND_SIZE } else { 0 };
            step!(A);
            // Step B.
            if outer {
                w.pending_stamp.store(full, Relaxed);
            }
            signal_fence();
            step!(B);
            // Step C: the reservation point (a local add, as in
            // `reserve_fast`).
            let page = self.page(tail);
            let old = local_fetch_add(&page.write, size as u64 | ENTRY);
            signal_fence();
            let start = write_offset(old);
            step!(C);
            if start + size <= self.geo().cap {
                // Step D.
                let mut delta = delta;
                if outer {
                    if start == 0 {
                        // The first event on a page: its time is the page's.
                        page.time_stamp.store(full, Relaxed);
                        w.write_stamp.store(full, Relaxed);
                        delta = 0;
                    } else {
                        w.write_stamp.store(after + delta, Relaxed);
                    }
                }
                signal_fence();
                step!(D);
                // SAFETY: [start, start + size) of this page's data area is
                // ours (step C) and inside the page (checked above).
                let slot = unsafe {
                    let at = self.page_bytes(tail).add(PAGE_HEADER_SIZE + start);
                    fill_headers_at(at, tail, start, size, extended, delta, depth, len)
                };
                return Ok(slot);
            }
            self.move_tail(tail, start, size)?;
        }
        self.count_loss(&self.meta.slow.dropped, w.tail_page.load(Relaxed));
        Err(WriteError::Corrupt("reserve retried 1000 times"))
    }

    /// The slow path: the event did not fit on the tail page.
    #[cold]
    #[inline(never)]
    fn move_tail(&self, tail: u32, start: usize, size: usize) -> Result<(), WriteError> {
        let w = &self.meta.w;
        let page = self.page(tail);
        // Step F: give back what we took from the full page.
        if start < self.geo().cap {
            let filler = self.geo().cap - start;
            // SAFETY: [start, cap) is ours: we crossed the end, so every later
            // reservation on this page starts at or after the end.
            unsafe {
                write_padding(
                    self.page_bytes(tail).add(PAGE_HEADER_SIZE + start),
                    filler,
                    1,
                )
            };
            page.real_end.store(start as u32, Relaxed);
            signal_fence();
            page.write
                .fetch_sub((size - filler) as u64 | ENTRY, Relaxed);
        } else {
            page.write.fetch_sub(size as u64 | ENTRY, Relaxed);
        }
        signal_fence();
        step!(F);

        // Step G. Acquire: pairs with the reader's Release cmpxchg that may
        // have spliced its page in after us.
        let l = page.link.load(Acquire);
        let next = link_page(l);
        if next >= self.region.geometry().nr_pages {
            return Err(self.corrupt("page link out of range"));
        }
        let commit_page = w.commit_page.load(Relaxed);
        if next == commit_page {
            self.count_loss(&self.meta.slow.commit_overrun, tail);
            return Err(WriteError::CommitOverrun);
        }
        if link_flag(l) != NORMAL {
            // `next` is the head page (or a writer we interrupted is moving it).
            if !self.is_reader_page(commit_page) {
                // The ring is full: grow it from the pool first (steps S),
                // and lose nothing. Not while a writer we interrupted moves
                // the head (UPDATE): we help it instead, below.
                if link_flag(l) == HEAD && self.region.geometry().pool_pages != 0 {
                    match self.splice_pool_page(tail, l) {
                        Splice::Done(page) => {
                            step!(G);
                            self.tail_page_update(tail, page);
                            return Ok(());
                        }
                        Splice::Lost => return Ok(()), // Retry from step A.
                        Splice::Empty => {}
                    }
                }
                if self.mode() == Mode::ProducerConsumer {
                    self.count_loss(&self.meta.slow.dropped, tail);
                    return Err(WriteError::Full);
                }
                if !self.handle_head_page(tail, next)? {
                    return Ok(());
                }
            } else if commit_page != tail {
                // The commit is still on the reader's page and nested writes
                // lapped the whole ring: nothing may be overwritten.
                self.count_loss(&self.meta.slow.commit_overrun, tail);
                return Err(WriteError::CommitOverrun);
            }
        }
        step!(G);
        self.tail_page_update(tail, next);
        Ok(())
    }

    /// Pushes the head page forward (overwrite mode). Returns `Ok(true)` when
    /// the tail may move onto `next`, `Ok(false)` to retry from step A.
    fn handle_head_page(&self, tail: u32, next: u32) -> Result<bool, WriteError> {
        let tail_link = &self.page(tail).link;
        let next_page = self.page(next);
        let slow = &self.meta.slow;
        // P0: announce what the counters reach once `next` is counted, while
        // its events and notes are still those of the head page: only a
        // push of `next` or the reader's swap of it changes them (writers
        // note drops on the tail page), and either makes our P1 fail. A
        // nested writer that pushes `next` between here and P1 announces
        // the same values and makes our P1 fail; one that finds UPDATE
        // after our P1 raises the counters to these values before it marks
        // the new head, so no reader can pass the push before it is counted.
        let seen = tail_link.load(Acquire);
        if link_page(seen) == next && link_flag(seen) == HEAD {
            let entries = write_entries(next_page.write.load(Relaxed));
            let bytes = u64::from(next_page.commit.load(Relaxed));
            let noted = notes(next_page.lost_at_end.load(Relaxed));
            let t = &slow.push_target;
            let target = |counter: &AtomicU64, add: u64| counter.load(Relaxed).saturating_add(add);
            t[PUSH_OVERRUN].store(target(&slow.overrun, entries), Relaxed);
            t[PUSH_OVERRUN_BYTES].store(target(&slow.overrun_bytes, bytes), Relaxed);
            t[PUSH_OVERRUN_PAGES].store(target(&slow.overrun_pages, 1), Relaxed);
            t[PUSH_OVERRUN_NOTED].store(target(&slow.overrun_noted, noted), Relaxed);
        }
        signal_fence();
        step!(P0);
        // P1: HEAD -> UPDATE on the link into the head page.
        let kind = head_page_set(tail_link, next, HEAD, UPDATE);
        match kind {
            HEAD => {}   // We own the move: the events on the head page are lost.
            UPDATE => {} // We interrupted the owner of the move; help it.
            NORMAL | MOVED => return Ok(false), // Done by a nested writer, or the reader swapped it.
            _ => return Err(self.corrupt("unexpected link flags")),
        }
        signal_fence();
        step!(P1);
        // PC: count the push (owner or helper; idempotent), before P2 lets
        // a reader find the page after it.
        count_push(slow);
        // P2: the page after the old head becomes the head.
        let new_head = link_page(next_page.link.load(Acquire));
        if new_head >= self.region.geometry().nr_pages {
            return Err(self.corrupt("page link out of range"));
        }
        let ret = head_page_set(&next_page.link, new_head, NORMAL, HEAD);
        // HEAD: a nested writer helping this push already set it.
        // MOVED: a nested writer set it and the reader has since swapped
        // `new_head` out, so the head is already past it (the kernel warns
        // here; the ring is consistent). UPDATE: an interrupted writer below
        // us is moving the head past `next`; it finishes that move.
        // NORMAL: we set it.
        if ret == NORMAL {
            // Nested writers may have pushed the head past `new_head` after
            // we marked it: then our HEAD flag is stale; clear it.
            let now = self.meta.w.tail_page.load(Relaxed);
            if now != tail && now != next {
                head_page_set(&next_page.link, new_head, HEAD, NORMAL);
            }
        }
        self.meta.r.head_page.store(new_head, Relaxed);
        signal_fence();
        step!(P2);
        // P3: only the owner clears UPDATE.
        if kind == HEAD && head_page_set(tail_link, next, UPDATE, NORMAL) != UPDATE {
            return Err(self.corrupt("UPDATE flag lost during a head push"));
        }
        Ok(true)
    }

    /// Grows the full ring by a page from the shared pool, spliced in
    /// between the tail page and the head page (steps S0 to S2 in the
    /// module docs). `seen` is the tail page's link as step G loaded it:
    /// into the head page, with HEAD.
    #[cold]
    #[inline(never)]
    fn splice_pool_page(&self, tail: u32, seen: u64) -> Splice {
        let head = link_page(seen);
        let Some(page) = crate::pool::pop(self.region) else {
            return Splice::Empty;
        };
        signal_fence();
        step!(S0);
        // The page is ours alone until the splice: nobody else can reach
        // it (it left the pool, and no link points to it yet).
        let pm = self.page(page);
        pm.pool_owner.store(self.ring + 1, Relaxed);
        pm.clear();
        pm.link
            .store(link(head, link_tag(seen).wrapping_add(1), HEAD), Relaxed);
        pm.prev.store(tail, Relaxed);
        signal_fence();
        // S1: the link into the head page, from HEAD to our page. The same
        // word the reader's swap compares and swaps: exactly one of the two
        // wins. If the reader won (the head left the ring) or a nested
        // writer changed the link (spliced or pushed first), ours fails,
        // the page goes back to the pool and the write retries from A.
        // AcqRel: Release publishes the page's preparation (its link to the
        // head, `prev`, the cleared fields) to the reader that follows the
        // link (its Acquire load in `find_head`); Acquire pairs with the
        // reader's Release compare-and-swap of the same link.
        let tail_link = &self.page(tail).link;
        if tail_link
            .compare_exchange(seen, link(page, link_tag(seen), NORMAL), AcqRel, Acquire)
            .is_err()
        {
            crate::pool::push(self.region, page);
            return Splice::Lost;
        }
        signal_fence();
        step!(S1);
        // S2: the head page's predecessor is now our page (or a page a
        // nested writer spliced after it).
        fix_prev(self.region, page, head);
        signal_fence();
        step!(S2);
        self.meta.ctl.ring_pages.fetch_add(1, Relaxed);
        Splice::Done(page)
    }

    /// Moves the tail onto `next` (the kernel's `rb_tail_page_update`).
    fn tail_page_update(&self, tail: u32, next: u32) {
        let w = &self.meta.w;
        let np = self.page(next);
        // T1: a new generation, so an interrupted preparer cannot reset a
        // page that a nested writer prepared and filled meanwhile.
        // Acquire: the seqlock writer's half for the iterator (`iter.rs`):
        // the page's new bytes cannot be written before the bump, so an
        // iterator whose copy saw them sees the new generation on its
        // second read. Free on x86-64 (a locked instruction either way).
        let bumped = np
            .write
            .fetch_add(GENERATION, Acquire)
            .wrapping_add(GENERATION);
        signal_fence();
        step!(T1);
        if w.tail_page.load(Relaxed) != tail {
            return;
        }
        // T2: reset the page unless somebody did since T1. The notes word is
        // loaded first: a nested writer that prepares the page after our
        // compare-and-swap changes its tag, so our reset of it below fails
        // rather than wipe the drops that writer noted on the page.
        let notes_seen = np.lost_at_end.load(Relaxed);
        signal_fence();
        if np
            .write
            .compare_exchange(bumped, bumped & GENERATION_MASK, Relaxed, Relaxed)
            .is_ok()
        {
            signal_fence();
            step!(R);
            let stamp = w
                .write_stamp
                .load(Relaxed)
                .max(w.pending_stamp.load(Relaxed));
            np.time_stamp.store(stamp, Relaxed);
            np.real_end.store(0, Relaxed);
            np.commit.store(0, Relaxed);
            let _ = np.lost_at_end.compare_exchange(
                notes_seen,
                bumped & GENERATION_MASK,
                Relaxed,
                Relaxed,
            );
            w.write_stamp.store(stamp, Relaxed);
        }
        signal_fence();
        step!(T2);
        // T3. Release: publishes the page preparation to readers and other
        // processes that load `tail_page` with Acquire.
        let _ = w.tail_page.compare_exchange(tail, next, Release, Relaxed);
    }

    /// Whether `page` is the reader's page: a page whose ring predecessor
    /// no longer links to it is outside the ring (`rb_is_reader_page`).
    fn is_reader_page(&self, page: u32) -> bool {
        // Acquire: pairs with the Release stores of `prev` in
        // `Consumer::swap`: seeing a new `prev` means seeing the link the
        // reader wrote before it. Without it a stale link of a fresh `prev`
        // makes a ring page look like the reader's (found by the loom model).
        let prev = self.page(page).prev.load(Acquire);
        if prev >= self.region.geometry().nr_pages {
            return false;
        }
        link_page(self.page(prev).link.load(Acquire)) != page
    }

    /// Counts a lost event in `counter` (`dropped` or `commit_overrun`),
    /// then notes it on page `page` (step M between the two): every loss a
    /// writer counts it also notes, so that recovery can tell a loss
    /// counted but not noted by a writer killed at M (see the module docs).
    #[cold]
    #[inline(never)]
    fn count_loss(&self, counter: &AtomicU64, page: u32) {
        counter.fetch_add(1, Relaxed);
        signal_fence();
        step!(M);
        self.note_loss(page);
    }

    /// Notes a dropped event on the tail page, so that readers report it
    /// after that page's events: everything written later was written after
    /// the drop. The outermost commit publishes it with the page.
    #[cold]
    fn note_loss(&self, page: u32) {
        if page < self.region.geometry().nr_pages {
            self.page(page).lost_at_end.fetch_add(1, Relaxed);
        }
    }

    fn mode(&self) -> Mode {
        if self.region.state().mode.load(Relaxed) == 0 {
            Mode::Overwrite
        } else {
            Mode::ProducerConsumer
        }
    }

    /// Leaves a write refused at step E (recording off or the ring
    /// disabled): restores the depth and counts the refusal.
    #[cold]
    #[inline(never)]
    fn refuse(&self, depth: u32) -> WriteError {
        self.meta.slow.refused.fetch_add(1, Relaxed);
        signal_fence();
        // Release: pairs with the Acquire load of `committing` in
        // `control::quiesce`.
        self.meta.w.committing.store(depth, Release);
        WriteError::Disabled
    }

    #[cold]
    fn too_large(&self, len: usize) -> WriteError {
        WriteError::TooLarge {
            len,
            max: self.geo().max_payload,
        }
    }

    /// Disables the ring after an internal inconsistency, once. The write
    /// is dropped: counted and noted like any other drop, so that it is
    /// reported too.
    #[cold]
    fn corrupt(&self, what: &'static str) -> WriteError {
        self.meta.slow.corruptions.fetch_add(1, Relaxed);
        self.count_loss(&self.meta.slow.dropped, self.meta.w.tail_page.load(Relaxed));
        self.meta
            .w
            .record_disabled
            .fetch_or(RECORD_CORRUPT, Relaxed);
        WriteError::Corrupt(what)
    }

    #[inline(always)]
    fn commit_slot(&self, slot: &Slot) {
        // Nothing to count here: the commit walk counts a page's events when
        // the commit point leaves it (`WriterState::closed_entries`).
        if slot.depth == 0 {
            self.end_outer(slot.page, slot.start + slot.size);
        } else {
            self.end(slot.depth);
        }
    }

    /// Ends a write at `depth`: nested writes restore the depth; the
    /// outermost one moves the commit point to the tail.
    #[inline(always)]
    fn end(&self, depth: u32) {
        let w = &self.meta.w;
        if depth != 0 {
            signal_fence();
            w.committing.store(depth, Relaxed);
            return;
        }
        // The outermost end of a write that reserved nothing (refused,
        // dropped) or gave its space back (discarded): off the fast path,
        // so the commit walk does it.
        self.cold().end_slow();
    }

    /// Ends the outermost write, whose reservation ends at offset `end` of
    /// page `tail`: steps K and L. The commit walk runs only when the
    /// re-check finds more to commit.
    ///
    /// The commit is stored before anything says `tail` is the commit page.
    /// It almost always is: every end of an outermost write leaves the
    /// commit point on the tail page, and so does every control operation,
    /// and only the outermost writer moves it. It is not after this write
    /// moved the tail (a reservation by the general path), or where that
    /// rule was broken (a writer killed in the middle of its commit, a
    /// corrupt buffer). Then the re-check sees the commit point behind and
    /// walks it to the tail, which commits `tail` whole again. Storing
    /// early is harmless: no reader reads past the commit page, so none
    /// reads `tail`'s commit before the walk has closed the pages before it.
    #[inline(always)]
    fn end_outer(&self, tail: u32, end: usize) {
        let w = &self.meta.w;
        let page = self.page(tail);
        // Everything up to `end` is final: the outer writes before ours
        // committed themselves, and a nested write that ran before our step
        // C reserved below us. A nested write that ran after it lies past
        // `end`, and the re-check below finds it. (If one moved the tail off
        // `tail`, the re-check finds that too.)
        // Release: pairs with the Acquire load of `commit` in
        // `Consumer::next_record`: the event bytes are visible first.
        page.commit.store(end as u32, Release);
        signal_fence();
        step!(K);
        // Release: pairs with the Acquire load of `committing` in
        // `control::quiesce`: a control operation that sees 0 sees the
        // whole write.
        w.committing.store(0, Release);
        signal_fence();
        step!(L);
        // A nested write after our step C, before the store above, saw
        // depth 1 and left its event uncommitted: catch it. (The tail test
        // also catches a nested overflow of a full page, which gives its
        // bytes back but moves the tail; a nested discard that gave its
        // space back left nothing to commit.) The commit page test catches
        // a commit point behind the tail (see above).
        if w.tail_page.load(Relaxed) == tail
            && w.commit_page.load(Relaxed) == tail
            && write_offset(page.write.load(Relaxed)) == end
        {
            self.wake_waiters(w);
            return;
        }
        if self.retake_commit() {
            signal_fence();
            self.cold().end_slow();
        }
    }

    /// Takes `committing` back after the re-check of step L found bytes
    /// reserved past the commit (a nested write that landed after our step
    /// C and saw depth 1). `committing` was 0 for a moment, so a control
    /// operation may have seen that (`control::quiesce`, Q3) and begun
    /// changing the ring: step E's handshake again, store then load, so
    /// that either the control side waits for this commit, or this writer
    /// sees the operation's count in `record_disabled` and leaves the ring
    /// to it; the operation commits those bytes first
    /// ([`commit_quiesced`]). A plain `record_off` or `disable_ring` changes
    /// nothing in the ring, so the writer commits them as usual; a quiesce
    /// that begins after our store waits for that at Q3. Without this, the
    /// commit walk ran during a reset, and their read-modify-writes of the
    /// page counters lost an update (found by ThreadSanitizer's timing:
    /// `control::reset_while_writing` saw one committed event too few).
    #[inline]
    fn retake_commit(&self) -> bool {
        let w = &self.meta.w;
        w.committing.store(1, Relaxed);
        // As at step E: the compiler keeps the store before the load; the
        // CPU's half is the control side's heavy barrier.
        light_barrier();
        // Acquire: pairs with the Release that ends a control operation.
        // A ring disabled after an inconsistency is left alone too.
        if w.record_disabled.load(Acquire) & (RECORD_QUIESCE_MASK | RECORD_CORRUPT) == 0 {
            return true;
        }
        // Release: pairs with the Acquire load of `committing` in
        // `control::quiesce`.
        w.committing.store(0, Release);
        false
    }

    /// The commit walk across pages, and its retries (steps K and L).
    #[cold]
    #[inline(never)]
    fn end_slow(&self) {
        let w = &self.meta.w;
        for _ in 0..MAX_RETRIES {
            self.set_commit_to_write();
            step!(K);
            signal_fence();
            // Release: as in `end_outer`.
            w.committing.store(0, Release);
            signal_fence();
            step!(L);
            if self.fully_committed() {
                self.wake_waiters(w);
                return;
            }
            if !self.retake_commit() {
                return;
            }
            signal_fence();
        }
        w.committing.store(0, Release);
    }

    /// After an outermost commit: wakes the ring's blocked readers, if any
    /// wait. One load when nobody waits; see `wait.rs` for why the waiter's
    /// heavy barrier makes a plain load enough. `w` is the ring's writer
    /// state, which the caller has at hand (loading it again costs an
    /// instruction on every write).
    #[inline(always)]
    fn wake_waiters(&self, w: &WriterState) {
        light_barrier();
        if w.wake_armed.load(Relaxed) != 0 {
            crate::wait::wake_waiters(self.region, self.ring);
        }
    }

    /// Whether the commit point is on the tail page and covers all that is
    /// reserved there. A tail index out of range (a corrupt shared buffer,
    /// which the walk has reported) counts as done: there is nothing the
    /// walk could commit.
    #[inline(always)]
    fn fully_committed(&self) -> bool {
        let w = &self.meta.w;
        let tail = w.tail_page.load(Relaxed);
        if w.commit_page.load(Relaxed) != tail {
            return false;
        }
        if tail >= self.geo().nr_pages {
            return true;
        }
        let page = self.page(tail);
        page.commit.load(Relaxed) == self.written(page)
    }

    /// The bytes reserved on `page` so far, at most its capacity (a writer
    /// that crossed the end gives the excess back at step F): what
    /// committing the page whole stores.
    #[inline(always)]
    fn written(&self, page: &PageMeta) -> u32 {
        write_offset(page.write.load(Relaxed)).min(self.geo().cap) as u32
    }

    /// Walks the commit point to the tail (`rb_set_commit_to_write`). Only
    /// the outermost writer runs it; everything nested has finished; or a
    /// control operation on a quiesced ring ([`commit_quiesced`]).
    fn set_commit_to_write(&self) {
        let w = &self.meta.w;
        let bound = self.geo().nr_pages * 2 + 4;
        for _ in 0..bound {
            let cp = w.commit_page.load(Relaxed);
            let tp = w.tail_page.load(Relaxed);
            if cp != tp {
                if !self.close_commit_page(cp) {
                    return;
                }
                continue;
            }
            if cp >= self.geo().nr_pages {
                self.corrupt("commit page index out of range");
                return;
            }
            // Release: pairs with the Acquire load of `commit` in
            // `Consumer::next_record`: the event bytes are visible first.
            let page = self.page(cp);
            page.commit.store(self.written(page), Release);
            signal_fence();
            if w.tail_page.load(Relaxed) == tp {
                return;
            }
        }
    }

    /// Commits page `cp`, the commit page, whole and moves the commit point
    /// to the page after it; `false` (and the ring disabled) when the ring
    /// is inconsistent.
    fn close_commit_page(&self, cp: u32) -> bool {
        let w = &self.meta.w;
        if cp >= self.geo().nr_pages {
            self.corrupt("commit page index out of range");
            return false;
        }
        let page = self.page(cp);
        let committed = self.written(page);
        // Release: pairs with the Acquire load of `commit` in
        // `Consumer::next_record`: the event bytes are visible first.
        page.commit.store(committed, Release);
        let next = link_page(page.link.load(Acquire));
        if next >= self.geo().nr_pages {
            self.corrupt("page link out of range");
            return false;
        }
        // The page is final: count its events and bytes. Wrapping: a write
        // never panics, whatever a scribbled shared counter holds (readers
        // check these sums, `buffer::counter_sum`).
        let entries = write_entries(page.write.load(Relaxed));
        w.closed_entries.store(
            w.closed_entries.load(Relaxed).wrapping_add(entries),
            Relaxed,
        );
        w.closed_bytes.store(
            w.closed_bytes
                .load(Relaxed)
                .wrapping_add(u64::from(committed)),
            Relaxed,
        );
        w.closed_pages
            .store(w.closed_pages.load(Relaxed).wrapping_add(1), Relaxed);
        signal_fence();
        step!(N);
        // Release: pairs with the Acquire load of `commit_page` in
        // `Consumer::next_record`: the page's final commit is visible.
        w.commit_page.store(next, Release);
        true
    }
}

impl<G: GeometrySource> Drop for Writer<'_, G> {
    // Inline: nested writers (claimed == false) are made and dropped per
    // event by the tracer, and the check folds away there.
    #[inline]
    fn drop(&mut self) {
        if self.claimed {
            // Release: the next owner sees everything this one did.
            self.meta.w.owner.store(0, Release);
        }
    }
}

/// Writes the event headers of a fresh reservation whose first byte (the
/// time extend, if any) is at `base`, and zeroes the alignment tail of its
/// payload.
///
/// # Safety
/// `[base, base + size)` must be reserved by the caller and lie within the
/// data area of page `page`, at offset `start`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn fill_headers_at(
    base: *mut u8,
    page: u32,
    start: usize,
    size: usize,
    extended: bool,
    delta: u64,
    depth: u32,
    len: usize,
) -> Slot {
    let mut at = base;
    let mut data_delta = delta;
    if extended {
        // SAFETY: the first 8 reserved bytes hold the extend.
        unsafe { write_time_extend(at, delta) };
        // SAFETY: still inside the reservation.
        at = unsafe { at.add(TIME_EXTEND_SIZE) };
        data_delta = 0;
    }
    // SAFETY: the rest of the reservation holds the event.
    let payload = unsafe { at.add(write_data_header(at, len, data_delta)) };
    if len % 4 != 0 {
        // SAFETY: zero the last, partial word of the payload (inside the
        // reservation; the payload starts 4-byte aligned) so readers
        // never see stale bytes in the alignment tail. The caller's copy
        // overwrites its first bytes.
        unsafe { payload.add(len & !3).cast::<u32>().write(0) };
    }
    debug_assert_eq!(extended, size != event_size(len));
    Slot {
        page,
        start,
        size,
        delta,
        depth,
        payload,
        len,
    }
}

/// Commits what is reserved past the commit point of a quiesced ring (no
/// write in flight: `committing` is 0 and `record_disabled` is raised), as
/// the outermost writer's walk would have. A writer whose re-check found a
/// nested write's bytes (maybe on a page the nested write moved the tail
/// to) leaves them when a control operation has begun
/// ([`Writer::retake_commit`]); the control operation commits them here
/// before it changes or counts the ring, so that every write that returned
/// `Ok` is counted.
pub(crate) fn commit_quiesced(region: &Region, ring: u32) {
    Writer::transient(region, ring).set_commit_to_write();
}

/// A ring to write, by value, for the calls the fast paths make off their
/// path (retries, page moves, refusals, discards, the commit walk).
///
/// Those calls take this pair in two registers and rebuild a writer on
/// their side. Were they to take `&Writer`, every record made by the
/// tracer would first store its (per-record) writer to the stack for a call
/// it almost never makes.
#[derive(Clone, Copy)]
struct Cold<'a> {
    region: &'a Region,
    ring: u32,
}

impl<'a> Cold<'a> {
    /// The writer the call runs as: same ring, same region; a transient
    /// writer, so dropping it releases no claim.
    #[inline(always)]
    fn writer(self) -> Writer<'a, &'a WriteGeometry> {
        Writer::transient(self.region, self.ring)
    }

    #[inline(never)]
    fn reserve_slot(self, ts: u64, len: usize) -> Result<Slot, WriteError> {
        self.writer().reserve_slot(ts, len)
    }

    #[cold]
    #[inline(never)]
    fn reserve_retry(self, ts: u64, len: usize, depth: u32) -> Result<Slot, WriteError> {
        self.writer().reserve_retry(ts, len, depth)
    }

    /// The fast path's reservation did not fit: move the tail, then retry
    /// with the general loop.
    #[cold]
    #[inline(never)]
    fn overflowed(
        self,
        ts: u64,
        len: usize,
        tail: u32,
        start: usize,
        size: usize,
    ) -> Result<Slot, WriteError> {
        let w = self.writer();
        if let Err(e) = w.move_tail(tail, start, size) {
            w.end(0);
            return Err(e);
        }
        w.reserve_retry(ts, len, 0)
    }

    /// Leaves a fast write stopped at step E by disabled recording, with
    /// nothing counted: the caller starts over, and the refusal is counted
    /// there. Release: as in `refuse`.
    #[cold]
    #[inline(never)]
    fn leave_fast(self) {
        self.writer().meta.w.committing.store(0, Release);
    }

    /// A fast write whose event did not fit on page `tail`: moves the tail
    /// on, ends the write with nothing reserved, and says to start over
    /// (`None`), or returns the error of a move that failed (its loss is
    /// counted: the write is done).
    #[cold]
    #[inline(never)]
    fn move_on(self, tail: u32, start: usize, size: usize) -> Option<Result<bool, WriteError>> {
        let w = self.writer();
        let moved = w.move_tail(tail, start, size);
        w.end(0);
        match moved {
            Ok(()) => None,
            Err(e) => Some(Err(e)),
        }
    }

    #[cold]
    #[inline(never)]
    fn refuse(self, depth: u32) -> WriteError {
        self.writer().refuse(depth)
    }

    #[cold]
    #[inline(never)]
    fn end_slow(self) {
        self.writer().end_slow()
    }

    /// Gives a reservation back (the kernel's `rb_try_to_discard`), or turns
    /// it into padding when something was reserved after it.
    #[inline(always)]
    fn discard_slot(self, slot: Slot) {
        self.discard_parts(
            slot.page, slot.depth, slot.start, slot.size, slot.delta, slot.len,
        );
    }

    /// [`Cold::discard_slot`] out of line, the slot as scalars: passed in
    /// registers, so the fill path does not keep a copy of the slot in
    /// memory for this rarely taken call.
    #[inline(never)]
    fn discard_parts(
        self,
        page: u32,
        depth: u32,
        start: usize,
        size: usize,
        delta: u64,
        len: usize,
    ) {
        let w = self.writer();
        let slot = Slot {
            page,
            depth,
            start,
            size,
            delta,
            payload: std::ptr::null_mut(),
            len,
        };
        let page = w.page(slot.page);
        // SAFETY: the slot lies within its page (reserve_in_ring).
        let base = unsafe {
            w.region
                .page_bytes(slot.page)
                .add(PAGE_HEADER_SIZE + slot.start)
        };
        let end = slot.start + slot.size;
        // Keep an 8-byte time extend when the event carried a delta, so the
        // running time readers compute stays equal to write_stamp.
        let keep = if slot.delta > 0 { TIME_EXTEND_SIZE } else { 0 };
        let cur = page.write.load(Relaxed);
        let mut reclaimed = false;
        if write_offset(cur) == end {
            if keep > 0 {
                // SAFETY: the first 8 bytes of the slot are ours.
                unsafe { write_time_extend(base, slot.delta) };
            }
            signal_fence();
            let give_back = (slot.size - keep) as u64 + ENTRY;
            reclaimed = page
                .write
                .compare_exchange(cur, cur - give_back, Relaxed, Relaxed)
                .is_ok();
        }
        if !reclaimed {
            // Something was reserved after us: turn the event into padding.
            // SAFETY: the slot is ours until `end`; padding covers it exactly.
            unsafe {
                if slot.extended() {
                    write_time_extend(base, slot.delta);
                    write_padding(base.add(TIME_EXTEND_SIZE), slot.size - TIME_EXTEND_SIZE, 1);
                } else {
                    write_padding(base, slot.size, slot.delta.max(1));
                }
            }
            page.write.fetch_sub(ENTRY, Relaxed);
        }
        signal_fence();
        w.end(slot.depth);
    }
}

/// Copies a payload into its reservation; small payloads without a call.
///
/// # Safety
/// `dst` must be valid for `src.len()` bytes of writes, not overlapping `src`.
#[inline(always)]
unsafe fn copy_payload(dst: *mut u8, src: &[u8]) {
    let len = src.len();
    let s = src.as_ptr();
    // SAFETY: every access stays within [0, len) of both buffers.
    unsafe {
        if (8..=16).contains(&len) {
            let a = s.cast::<u64>().read_unaligned();
            let b = s.add(len - 8).cast::<u64>().read_unaligned();
            dst.cast::<u64>().write_unaligned(a);
            dst.add(len - 8).cast::<u64>().write_unaligned(b);
        } else if (4..8).contains(&len) {
            let a = s.cast::<u32>().read_unaligned();
            let b = s.add(len - 4).cast::<u32>().read_unaligned();
            dst.cast::<u32>().write_unaligned(a);
            dst.add(len - 4).cast::<u32>().write_unaligned(b);
        } else {
            std::ptr::copy_nonoverlapping(s, dst, len);
        }
    }
}

/// Raises the overrun counters to the targets of the head push in flight
/// (`SlowCounters::push_target`): the push's count, done by its owner, by a
/// nested writer that helps it, or by `recover_dead_writer` for a writer
/// killed inside it. `fetch_max` makes it idempotent: applying it twice, or
/// after a helper already did, counts the page once; a kill anywhere in it
/// leaves targets that the recovery applies again. The counters only grow
/// while a push is in flight (only pushes add to them; control operations
/// that rewrite them wait until no write is in flight).
pub(crate) fn count_push(slow: &crate::layout::SlowCounters) {
    let t = &slow.push_target;
    slow.overrun
        .fetch_max(t[PUSH_OVERRUN].load(Relaxed), Relaxed);
    slow.overrun_bytes
        .fetch_max(t[PUSH_OVERRUN_BYTES].load(Relaxed), Relaxed);
    slow.overrun_pages
        .fetch_max(t[PUSH_OVERRUN_PAGES].load(Relaxed), Relaxed);
    slow.overrun_noted
        .fetch_max(t[PUSH_OVERRUN_NOTED].load(Relaxed), Relaxed);
    signal_fence();
}

/// What `Writer::splice_pool_page` did.
enum Splice {
    /// Page spliced in after the tail: move the tail onto it.
    Done(u32),
    /// The pool is empty: overwrite or drop as without a pool.
    Empty,
    /// The link changed under us (the reader swapped the head, or a nested
    /// writer spliced or pushed): the page went back; retry from step A.
    Lost,
}

/// Sets `head`'s `prev` to the page that links to it, found from `from`
/// (a page spliced in before `head`) along the links: step S2 of the pool
/// splice, also run by whoever finds `prev` stale.
///
/// A compare-and-swap from the value loaded before the walk: a nested
/// writer that splices again before `head` between our walk and our
/// store fixes `prev` itself, and our compare-and-swap then fails and we
/// walk again, rather than store our stale answer over its right one. The
/// reader's swap sets `prev` of the page after the old head with a
/// compare-and-swap from the old head, so neither side overwrites the
/// other's newer answer. When the walk does not find `head` (the reader
/// swapped it out of the ring: its `prev` then matters to nobody until the
/// reader splices it back, and sets it), nothing is stored. Bounded walk:
/// pages between `from` and `head` were spliced by nested writes that
/// interrupted us, each of which fixed `prev` itself (the last one's walk
/// is one link); a walk that does not reach `head` within the bound
/// leaves their answer.
pub(crate) fn fix_prev(region: &Region, from: u32, head: u32) {
    let nr_pages = region.geometry().nr_pages;
    let hp = region.page(head);
    for _ in 0..MAX_RETRIES {
        let seen = hp.prev.load(Acquire);
        let mut q = from;
        let mut found = false;
        for _ in 0..MAX_NEST + 2 {
            // Acquire: pairs with the Release compare-and-swap that made
            // this link (a splice, or the reader's swap).
            let l = region.page(q).link.load(Acquire);
            if link_page(l) == head {
                found = true;
                break;
            }
            q = link_page(l);
            if q >= nr_pages {
                return;
            }
        }
        if !found || seen == q {
            return;
        }
        // Release: pairs with the Acquire load of `prev` in
        // `Writer::is_reader_page`: the link of `q` into `head` is seen.
        if hp.prev.compare_exchange(seen, q, Release, Relaxed).is_ok() {
            return;
        }
    }
}

/// Changes the flag of a link from `old` to `new` if it points at `target`
/// with flag `old`; setting HEAD bumps the tag. Returns `old` on success, the
/// flag found when the link still points at `target`, or `MOVED` when it
/// points elsewhere (the kernel's `rb_head_page_set`).
///
/// AcqRel: pairs with the other side's compare-and-swap on the same link
/// (the writer's head push, the reader's swap in `Consumer::swap`),
/// publishing the overrun count and page states across.
pub(crate) fn head_page_set(l: &AtomicU64, target: u32, old: u64, new: u64) -> u64 {
    let mut cur = l.load(Acquire);
    // Bounded: each failure means the link changed, which only the reader
    // (once per swap) or a nested writer on this thread does.
    for _ in 0..MAX_RETRIES {
        if link_page(cur) != target {
            return MOVED;
        }
        if link_flag(cur) != old {
            return link_flag(cur);
        }
        let tag = link_tag(cur) + u64::from(new == HEAD);
        match l.compare_exchange(cur, link(target, tag, new), AcqRel, Acquire) {
            Ok(_) => return old,
            Err(actual) => cur = actual,
        }
    }
    MOVED
}

/// `Writer::write_with`'s unwind guard: discards the slot if the fill
/// closure panics, so the ring is not left mid-write.
struct DiscardOnUnwind<'a> {
    writer: Cold<'a>,
    slot: Slot,
}

impl DiscardOnUnwind<'_> {
    /// The fill returned: hand the slot back without discarding it.
    #[inline(always)]
    fn disarm(self) -> Slot {
        let slot = self.slot;
        std::mem::forget(self);
        slot
    }
}

impl Drop for DiscardOnUnwind<'_> {
    fn drop(&mut self) {
        self.writer.discard_slot(self.slot);
    }
}

impl<G: GeometrySource> Reservation<'_, '_, G> {
    /// Publishes the event. Outermost commits make it (and every nested
    /// event written meanwhile) visible to readers.
    #[inline(always)]
    pub fn commit(self) {
        // Ends the reservation in place: no `done` flag to store and no move
        // of the value (a flag write made the compiler copy the reservation
        // to a new stack slot in wide loads that missed store forwarding).
        let this = std::mem::ManuallyDrop::new(self);
        this.writer.commit_slot(&this.slot);
    }

    /// Withdraws the event: the space is given back when nothing was
    /// reserved after it, otherwise it becomes padding that readers skip.
    pub fn discard(self) {
        let this = std::mem::ManuallyDrop::new(self);
        this.writer.cold().discard_slot(this.slot);
    }

    /// Time delta stored with the event (0 for nested or page-first events).
    pub fn stored_delta(&self) -> u64 {
        self.slot.delta
    }
}

impl<G: GeometrySource> std::ops::Deref for Reservation<'_, '_, G> {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: the reservation owns `len` bytes at `payload` until it ends.
        unsafe { std::slice::from_raw_parts(self.slot.payload, self.slot.len) }
    }
}

impl<G: GeometrySource> std::ops::DerefMut for Reservation<'_, '_, G> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.slot.payload, self.slot.len) }
    }
}

impl<G: GeometrySource> Drop for Reservation<'_, '_, G> {
    #[inline(always)]
    fn drop(&mut self) {
        // Neither committed nor discarded (those skip the drop).
        self.writer.cold().discard_slot(self.slot);
    }
}
