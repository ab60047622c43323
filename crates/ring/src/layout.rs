//! The buffer's memory: one contiguous, position-independent region.
//!
//! This module owns where everything lives and nothing else. Pages, links and
//! counters refer to each other by index, never by pointer, so the same bytes
//! work on the heap, in shared memory mapped at another address, or in a file.
//!
//! ```text
//! region (aligned to 4096):
//!   RegionHeader   magic, layout version, struct sizes, geometry, buffer state
//!   RingMeta  x nr_rings      per-ring writer state, counters, reader state
//!   PageMeta  x nr_pages      per-page link, write word, commit, real_end, stamp
//!   (padding to 4096)
//!   page data x nr_pages      page_size bytes each: 16-byte header + events
//! ```
//!
//! Under `cfg(loom)` the metadata structs are built with loom's atomics, which
//! cannot live in raw bytes, so they sit in ordinary boxed slices; the page
//! data is raw bytes in both builds. The protocol code only sees the accessor
//! methods of [`Region`], which are the same in both builds.

use crate::sync::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::ptr::NonNull;

/// `b"RINGTRC1"` read as a little-endian u64: identifies a ringtrace region.
pub(crate) const REGION_MAGIC: u64 = u64::from_le_bytes(*b"RINGTRC1");
/// Layout version; bump on any change to the structs below.
pub(crate) const LAYOUT_VERSION: u32 = 8;
/// Page slots each ring keeps beyond its maximum ring size and its reader
/// page, to lend to page readers (`RingBuffer::read_page_buffer`).
pub(crate) const SPARE_SLOTS: u32 = 2;
/// End of a ring's free-slot list.
pub(crate) const NO_SLOT: u32 = u32::MAX;
/// Deepest nesting of writes on one ring (a thread plus nested signal
/// handlers). The kernel allows 5 levels (task, softirq, irq, NMI, and one
/// transition); signals can nest deeper, so ringtrace allows 8.
pub const MAX_NEST: usize = 8;

// ---- page links -------------------------------------------------------------
//
// A link is one u64: the index of the next page in the high 32 bits, a tag in
// bits 2..32, and two flag bits in the low bits, exactly as the kernel keeps
// HEAD and UPDATE in the low bits of `list_head.next`:
//
//   NORMAL (0): plain link.
//   HEAD   (1): the page this link points to is the head page (next to read).
//   UPDATE (2): a writer is moving the head forward past this link.
//
// MOVED is not a flag: it is what a compare-and-swap reports when the link no
// longer points to the page the caller expected (a reader swapped it out).
//
// The tag is bumped every time HEAD is set on a link. The kernel compares
// pointers, so a writer that laps the ring between the reader's look at the
// head and its swap recreates the same "page|HEAD" value (ABA) and the reader
// swaps with a stale overrun count; the loom model found this. With the tag,
// the reader's compare-and-swap fails and it looks again.

/// Flag value: plain link.
pub(crate) const NORMAL: u64 = 0;
/// Flag value: the target is the head page.
pub(crate) const HEAD: u64 = 1;
/// Flag value: a writer is moving the head page.
pub(crate) const UPDATE: u64 = 2;
/// Pseudo flag: the link no longer points where the caller expected.
pub(crate) const MOVED: u64 = 4;
const FLAG_MASK: u64 = 3;
const TAG_MASK: u64 = ((1 << 32) - 1) & !FLAG_MASK;

/// Builds a link word.
#[inline(always)]
pub(crate) const fn link(page: u32, tag: u64, flag: u64) -> u64 {
    ((page as u64) << 32) | ((tag << 2) & TAG_MASK) | flag
}
/// The page a link points to.
#[inline(always)]
pub(crate) const fn link_page(link: u64) -> u32 {
    (link >> 32) as u32
}
/// The flag bits of a link.
#[inline(always)]
pub(crate) const fn link_flag(link: u64) -> u64 {
    link & FLAG_MASK
}
/// The tag of a link.
#[inline(always)]
pub(crate) const fn link_tag(link: u64) -> u64 {
    (link & TAG_MASK) >> 2
}

// ---- page write word ----------------------------------------------------------
//
// One u64 per page, changed only by the ring's writers (a thread and the signal
// handlers nested on it) and reset by the reader while the page is its own:
//
//   bits  0..24  write offset into the data area. Reservations add to it with
//                one local add (`sync::local_fetch_add`: indivisible for the
//                nested handlers, not `lock`ed); a reservation that overflows
//                the page leaves it past the end until that writer subtracts
//                its overshoot (the kernel's rb_reset_tail). 24 bits hold a
//                1 MiB page plus MAX_NEST overshooting events.
//   bits 24..44  entries: events reserved on the page (discards subtract).
//   bits 44..64  generation: bumped each time a writer prepares the page as the
//                new tail, so a preparer interrupted by a nested writer that
//                already prepared and filled it does not reset it again (the
//                kernel's RB_WRITE_INTCNT in the top bits of `write`).

/// Mask of the write offset.
pub(crate) const OFFSET_MASK: u64 = (1 << 24) - 1;
/// One entry in the write word.
pub(crate) const ENTRY: u64 = 1 << 24;
const ENTRY_MASK: u64 = (1 << 20) - 1;
/// One generation in the write word.
pub(crate) const GENERATION: u64 = 1 << 44;
/// Mask of the generation bits.
pub(crate) const GENERATION_MASK: u64 = !((1 << 44) - 1);

/// The write offset of a write word.
#[inline(always)]
pub(crate) const fn write_offset(word: u64) -> usize {
    (word & OFFSET_MASK) as usize
}
/// The entry count of a write word.
#[inline(always)]
pub(crate) const fn write_entries(word: u64) -> u64 {
    (word >> 24) & ENTRY_MASK
}

/// Plain description of the region's shape. Copied into the region header so
/// that a reader in another process can validate what it maps.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Number of rings (writer contexts).
    pub nr_rings: u32,
    /// Pages in each ring's circular list at creation, not counting the
    /// reader's page (the live count is `ControlState::ring_pages`).
    pub pages_per_ring: u32,
    /// Most pages a ring's circular list may grow to (resize).
    pub max_pages_per_ring: u32,
    /// Page slots per ring: `max_pages_per_ring + 1 + SPARE_SLOTS`. Ring
    /// `r` owns slots `r * slots_per_ring ..`; pages not in the ring, not
    /// the reader's and not lent to a page reader are on its free list.
    pub slots_per_ring: u32,
    /// Bytes per page, a power of two.
    pub page_size: u32,
    /// Total page slots: `nr_rings * slots_per_ring + pool_pages`.
    pub nr_pages: u32,
    /// Pages of the shared pool (`crate::pool`), after every ring's slots:
    /// indices `nr_rings * slots_per_ring .. nr_pages`. A writer whose ring
    /// is full takes one and splices it into its ring for good.
    pub pool_pages: u32,
    _pad: u32,
    /// Byte offset of the `RingMeta` array.
    pub ring_meta_offset: u64,
    /// Byte offset of the `PageMeta` array.
    pub page_meta_offset: u64,
    /// Byte offset of the first page (4096-aligned).
    pub data_offset: u64,
    /// Total bytes of the region.
    pub total_size: u64,
}

impl Geometry {
    pub(crate) fn new(
        nr_rings: u32,
        pages_per_ring: u32,
        max_pages_per_ring: u32,
        page_size: u32,
        pool_pages: u32,
    ) -> Option<Geometry> {
        let max_pages_per_ring = max_pages_per_ring.max(pages_per_ring);
        let slots_per_ring = max_pages_per_ring.checked_add(1 + SPARE_SLOTS)?;
        let nr_pages = nr_rings
            .checked_mul(slots_per_ring)?
            .checked_add(pool_pages)?;
        if nr_pages >= 1 << 30 {
            return None;
        }
        // RingMeta's own alignment (128: see `WriterState`).
        let ring_meta_offset = round_up(
            std::mem::size_of::<RegionHeader>() as u64,
            std::mem::align_of::<RingMeta>() as u64,
        );
        let page_meta_offset = round_up(
            ring_meta_offset + u64::from(nr_rings) * std::mem::size_of::<RingMeta>() as u64,
            64,
        );
        let data_offset = round_up(
            page_meta_offset + u64::from(nr_pages) * std::mem::size_of::<PageMeta>() as u64,
            4096,
        );
        let total_size = data_offset.checked_add(u64::from(nr_pages) * u64::from(page_size))?;
        usize::try_from(total_size).ok()?;
        Some(Geometry {
            nr_rings,
            pages_per_ring,
            max_pages_per_ring,
            slots_per_ring,
            page_size,
            nr_pages,
            pool_pages,
            _pad: 0,
            ring_meta_offset,
            page_meta_offset,
            data_offset,
            total_size,
        })
    }

    /// Index of slot `i` (< slots_per_ring) of ring `ring`.
    #[inline]
    pub(crate) fn page_index(&self, ring: u32, i: u32) -> u32 {
        ring * self.slots_per_ring + i
    }

    /// Whether page index `page` is one of ring `ring`'s own slots (not a
    /// pool page: see [`Region::owns`]).
    #[inline]
    pub(crate) fn owns_slot(&self, ring: u32, page: u32) -> bool {
        page < self.pool_first() && page / self.slots_per_ring == ring
    }

    /// Index of the first pool page (`nr_pages` when there is no pool).
    #[inline]
    pub(crate) fn pool_first(&self) -> u32 {
        self.nr_pages - self.pool_pages
    }

    /// Whether `page` is a pool page.
    #[inline]
    pub(crate) fn is_pool_page(&self, page: u32) -> bool {
        page >= self.pool_first() && page < self.nr_pages
    }

    /// Bound on the pages one ring can link: its own slots plus every pool
    /// page (walks of a ring's links are bounded by it).
    #[inline]
    pub(crate) fn ring_bound(&self) -> u32 {
        self.slots_per_ring + self.pool_pages
    }
}

const fn round_up(n: u64, to: u64) -> u64 {
    n.div_ceil(to) * to
}

/// First bytes of the region: identification and shape.
#[repr(C)]
pub(crate) struct RegionHeader {
    /// `REGION_MAGIC`, stored last (Release) when the region is ready, so a
    /// process that maps a region being created sees it incomplete.
    pub magic: AtomicU64,
    pub version: u32,
    pub header_size: u32,
    pub ring_meta_size: u32,
    pub page_meta_size: u32,
    pub geometry: Geometry,
    pub state: BufferState,
}

/// Buffer-wide switches.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct BufferState {
    /// 0 = overwrite, 1 = producer/consumer. Read by writers in the slow path.
    pub mode: AtomicU32,
    /// Futex word of the waiters for any ring: bumped by a writer that wakes
    /// waiters (`wait.rs`).
    pub any_seq: AtomicU32,
    /// 1 while recording is off for the whole buffer (also set as
    /// `RECORD_OFF` in every ring's `record_disabled`).
    pub record_off: AtomicU32,
    /// 1 when the region is shared with other processes: control operations
    /// then use the global memory barrier.
    pub shared: AtomicU32,
    /// The shared page pool's free stack (`crate::pool`): the index of the
    /// top free pool page in the low 32 bits (`NO_SLOT`: empty), a tag in
    /// the high 32 bits bumped by every change, so that a compare-and-swap
    /// prepared against an older top fails (ABA). Changed by writers of
    /// every ring, with compare-and-swap only.
    pub pool_top: AtomicU64,
}

/// Writer-side state of a ring, touched by its writer thread and the signal
/// handlers nested on it. Readers only load from it.
///
/// Two parts, 128 bytes apart: what the writer stores on every event
/// (`committing`, the stamps) first, and what readers load (the tail and
/// commit pages, the closed-page counts, the wake flag) from offset 128.
/// A reader polling for a complete page then never takes the line of the
/// writer's per-event stores, which would cost the writer a miss on its
/// next event; the writer only loads the readers' part on every event, and
/// stores to it once per page. 128, not 64: x86's spatial prefetcher
/// fetches lines in aligned pairs, so a neighbouring line is shared as
/// well (crossbeam's `CachePadded` pads to 128 on x86_64 for this reason).
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct WriterState {
    /// Depth of writes in flight on this ring (0 = none). A writer loads it,
    /// stores depth+1, and stores depth back when it ends: nested writers
    /// always restore what they found, so plain loads and stores suffice.
    pub committing: AtomicU32,
    /// Non-zero refuses writes (see `RECORD_*`). Loaded once per write,
    /// after the write has entered (step E), so that a control operation that
    /// sets it and then sees `committing == 0` knows no write is in flight.
    pub record_disabled: AtomicU32,
    /// Running time stamp at the tail: the time of the newest reserved event,
    /// or the stamp of a freshly prepared page. Written by the outermost
    /// writer after it reserves, and by whoever prepares a new tail page.
    pub write_stamp: AtomicU64,
    /// Time the outermost writer in flight will have once reserved; lets a
    /// nested writer that moves the tail stamp the new page correctly.
    pub pending_stamp: AtomicU64,
    /// Token of the thread that claimed this ring as its writer (0 = free).
    pub owner: AtomicU64,
    /// Keeps the readers' part below 128 bytes away (see above).
    _pad_writer: [AtomicU64; 12],
    /// Page the next reservation goes to. Moved forward by writers with a
    /// compare-and-swap (nested writers race to move it); read by readers.
    pub tail_page: AtomicU32,
    /// Last page with committed data. Written only by the outermost writer;
    /// loaded with Acquire by readers.
    pub commit_page: AtomicU32,
    /// Non-zero while a reader waits for data on this ring: the outermost
    /// commit loads it (one load) and wakes waiters when it is set. Here,
    /// not beside `committing`: the reader stores it.
    pub wake_armed: AtomicU32,
    _pad32: AtomicU32,
    /// Events on pages the commit point has moved past: added by the
    /// outermost writer's commit walk (a plain load and store: only the
    /// outermost writer walks, so updates never overlap). With the entries
    /// of the commit page, the number of events committed, counted on the
    /// writer's side without any work on the fast path.
    pub closed_entries: AtomicU64,
    /// Bytes (events and padding) of those pages.
    pub closed_bytes: AtomicU64,
    /// Number of those pages (for the `buffer_percent` watermark).
    pub closed_pages: AtomicU64,
}

/// `record_disabled` bits: a nestable count of per-ring disables in the low
/// 16 bits, a count of control operations quiescing the ring in the next 14
/// (`control::quiesce`), the buffer-wide switch, and the latch set after an
/// internal inconsistency. Writers refuse while any bit is set; a writer's
/// commit tells a quiescing operation, which takes the ring over, from a
/// plain disable, which does not (`Writer::retake_commit`).
pub(crate) const RECORD_COUNT_MASK: u32 = (1 << 16) - 1;
/// `record_disabled`: one control operation quiescing the ring.
pub(crate) const RECORD_QUIESCE_ONE: u32 = 1 << 16;
/// `record_disabled`: the count of control operations quiescing the ring.
pub(crate) const RECORD_QUIESCE_MASK: u32 = ((1 << 14) - 1) << 16;
/// `record_disabled` bit: recording is off for the whole buffer.
pub(crate) const RECORD_OFF: u32 = 1 << 30;
/// `record_disabled` bit: the ring was disabled after an inconsistency.
pub(crate) const RECORD_CORRUPT: u32 = 1 << 31;

/// Slow-path counters, changed with atomic read-modify-writes.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct SlowCounters {
    /// Events lost when a writer pushed the head page (overwrite mode).
    pub overrun: AtomicU64,
    /// Bytes lost with those pages.
    pub overrun_bytes: AtomicU64,
    /// Events dropped because nested writers lapped the ring up to an
    /// uncommitted reservation.
    pub commit_overrun: AtomicU64,
    /// Events dropped because the ring was full (producer/consumer mode), the
    /// nesting was too deep, or the retry bound was hit.
    pub dropped: AtomicU64,
    /// Internal inconsistencies detected (the ring is then disabled).
    pub corruptions: AtomicU64,
    /// Drops noted on pages that were later overwritten (see
    /// `PageMeta::lost_at_end`); reported to the reader with the overrun.
    pub overrun_noted: AtomicU64,
    /// Pages lost to overwrite (for the watermark).
    pub overrun_pages: AtomicU64,
    /// Writes refused because recording was off or the ring disabled. Not
    /// part of `written`: a refused write never reached the ring.
    pub refused: AtomicU64,
    /// The head push in flight (overwrite mode): the values `overrun`,
    /// `overrun_bytes`, `overrun_pages` and `overrun_noted` reach once the
    /// pushed page is counted. The writer that is about to push stores them
    /// before its HEAD -> UPDATE compare-and-swap (step P0 of
    /// `Writer::handle_head_page`); whoever passes that step, the owner, a
    /// nested writer helping it or `recover_dead_writer` after a kill,
    /// raises the counters to them with `fetch_max`, which is idempotent,
    /// before the new head is marked (P2). Meaningful only while a link
    /// carries UPDATE; stale otherwise, and never read then.
    pub push_target: [AtomicU64; 4],
}

/// Indices into `SlowCounters::push_target`.
pub(crate) const PUSH_OVERRUN: usize = 0;
/// See [`PUSH_OVERRUN`].
pub(crate) const PUSH_OVERRUN_BYTES: usize = 1;
/// See [`PUSH_OVERRUN`].
pub(crate) const PUSH_OVERRUN_PAGES: usize = 2;
/// See [`PUSH_OVERRUN`].
pub(crate) const PUSH_OVERRUN_NOTED: usize = 3;

/// Reader-side state, changed only under the reader lock.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct ReaderState {
    /// Held (non-zero) by the reader for the length of each call that
    /// reads or swaps pages, and by control operations (resize, reset) and
    /// iterators while they look at the ring: a short lock between them,
    /// never held by writers. A `Consumer` stores its process id (so that
    /// the next reader can release the word of one that died in a call,
    /// `read::take_over`); the others store 1.
    pub busy: AtomicU32,
    /// The page the reader owns, outside the ring. Read by writers only
    /// through the links (see `Ring::is_reader_page`).
    pub reader_page: AtomicU32,
    /// Offset of the next unread record in the reader page's data area.
    pub read_offset: AtomicU32,
    /// Hint of the head page, kept by reader and writers; the truth is the
    /// HEAD flag in the links.
    pub head_page: AtomicU32,
    /// The reader lock word: 0 free, else the holder of the consuming
    /// reader role for a `Consumer`'s lifetime, as its process id (high 32
    /// bits) and the low 32 bits of its start time (low bits; see
    /// `read::holder_word`). Writers never touch it.
    pub lock: AtomicU64,
    /// Running time stamp of the reader within its page.
    pub read_stamp: AtomicU64,
    /// Events consumed.
    pub read: AtomicU64,
    /// Bytes consumed (events, padding and time records).
    pub read_bytes: AtomicU64,
    /// `overrun + overrun_noted` sampled at the last page swap.
    pub overrun_at_swap: AtomicU64,
    /// Losses known to lie before the reader's position: overruns sampled at
    /// swaps plus drops noted on pages already read past.
    pub lost_known: AtomicU64,
    /// Part of `lost_known` already reported with an event.
    pub lost_reported: AtomicU64,
    /// Pages the reader has taken from the ring (for the watermark).
    pub pages_read: AtomicU64,
}

/// Ring shape and waiting, changed by control operations and waiters.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct ControlState {
    /// Pages in the ring's circular list now (resize changes it).
    pub ring_pages: AtomicU32,
    /// First slot of the free list (`NO_SLOT` when empty); the list runs
    /// through the free slots' `link` words. Changed under `busy`.
    pub free_head: AtomicU32,
    /// Slots lent to page readers.
    pub lent: AtomicU32,
    /// Futex word of this ring's waiters, bumped by a writer that wakes them.
    pub wake_seq: AtomicU32,
    /// Fewest filled pages any armed waiter needs (0: any data).
    pub wake_pages: AtomicU32,
    _pad: AtomicU32,
}

/// All per-ring state.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RingMeta {
    pub w: WriterState,
    pub slow: SlowCounters,
    pub r: ReaderState,
    pub ctl: ControlState,
}

/// Per-page metadata. The kernel's `buffer_page` minus the list pointers'
/// `prev` half, which lives here as an index too.
///
/// Two cache lines: the write word, the one word writers change with a
/// read-modify-write on every event, has the first to itself; everything a
/// reader loads (the commit above all, which a caught-up reader polls) is
/// on the second. A polling reader then never takes the line of the
/// writer's add, which would wait for it (a load as well as a store); it
/// takes the commit's line, whose next store by the writer is a plain one
/// that retires through the store buffer.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct PageMeta {
    /// The write word (see above).
    pub write: AtomicU64,
    _pad_line: [AtomicU64; 7],
    /// Link to the next page with a tag and HEAD/UPDATE flags (see above).
    pub link: AtomicU64,
    /// Index of the previous page in the ring. Maintained by the reader.
    pub prev: AtomicU32,
    /// Committed bytes of the data area. Stored with Release by the outermost
    /// writer; loaded with Acquire by readers.
    pub commit: AtomicU32,
    /// Where the events end when the page was closed with a filler (0 = the
    /// page ends at `commit`). Handed-out pages use it as their commit.
    pub real_end: AtomicU32,
    /// For a pool page: 1 + the ring it was spliced into (stored by the
    /// writer that took it, before its splice), 0 while it is in the pool.
    /// Always 0 for a ring's own slots. A pool page stays with its ring for
    /// good.
    pub pool_owner: AtomicU32,
    /// Full time stamp of the page's first event (the page header's
    /// `time_stamp`, written into the bytes when a page is handed out).
    pub time_stamp: AtomicU64,
    /// Events dropped (full, commit overrun, nesting) while this page was
    /// the tail, in the low 44 bits ([`notes`]); readers report them once
    /// past the page. The high 20 bits hold the generation (the write
    /// word's, `GENERATION_MASK`) of the preparation that last reset it: a
    /// writer preparing the page resets it with a compare-and-swap from the
    /// value it loaded before winning the write word, so a preparer that a
    /// nested writer interrupted after that win, and that prepared the page
    /// again and noted drops on it, fails instead of wiping those notes.
    pub lost_at_end: AtomicU64,
}

/// The drops noted in a `PageMeta::lost_at_end` word, without its tag.
#[inline]
pub(crate) fn notes(word: u64) -> u64 {
    word & !GENERATION_MASK
}

impl PageMeta {
    /// Empties a page that is out of writers' reach (the reader's, a lent
    /// one, or one in a quiesced ring): no data, no entries, no noted
    /// losses; the generation is kept (callers that must tell iterators the
    /// page changed bump it).
    pub(crate) fn clear(&self) {
        self.write
            .store(self.write.load(Relaxed) & GENERATION_MASK, Relaxed);
        self.commit.store(0, Relaxed);
        self.real_end.store(0, Relaxed);
        self.lost_at_end.store(0, Relaxed);
    }
}

#[cfg(not(loom))]
const _: () = {
    assert!(std::mem::size_of::<PageMeta>() == 128);
    assert!(std::mem::offset_of!(PageMeta, write) == 0);
    assert!(std::mem::offset_of!(PageMeta, link) == 64);
    assert!(std::mem::align_of::<RingMeta>() == 128);
    assert!(std::mem::offset_of!(WriterState, tail_page) == 128);
    assert!(std::mem::size_of::<WriterState>() == 256);
    assert!(std::mem::offset_of!(RingMeta, w) == 0);
    assert!(std::mem::size_of::<ReaderState>() == 128);
    assert!(std::mem::offset_of!(ReaderState, busy) == 0);
    assert!(std::mem::offset_of!(ReaderState, lock) == 16);
};

/// Where a region's bytes live.
#[cfg(not(loom))]
#[derive(Debug)]
enum Backing {
    /// `alloc_zeroed` with `region_layout`.
    Heap,
    /// A shared mapping of a file (`/dev/shm`, a memfd), kept mapped while
    /// the region lives.
    Mapped(#[allow(dead_code)] memmap2::MmapRaw),
}

/// The geometry as the write path uses it, computed once per mapping so
/// that a writer is a few words to build (a writer is made per record by the
/// tracer): the page metadata and data addresses, the page shift, the page
/// count, the data capacity of a page and the largest payload.
///
/// `pub` in this private module only so that the sealed
/// [`crate::write::GeometrySource`] can name it; not reachable from outside.
#[derive(Debug, Clone, Copy)]
pub struct WriteGeometry {
    /// The ring metadata array: a writer finds its ring's with one add.
    pub(crate) rings: *const RingMeta,
    pub(crate) pages: *const PageMeta,
    pub(crate) data: *mut u8,
    pub(crate) page_shift: u32,
    pub(crate) nr_pages: u32,
    pub(crate) cap: usize,
    pub(crate) max_payload: usize,
}

impl WriteGeometry {
    /// The write geometry of `geometry` with the page metadata at `pages`
    /// and the page data at `data`.
    fn new(
        geometry: &Geometry,
        rings: *const RingMeta,
        pages: *const PageMeta,
        data: *mut u8,
    ) -> WriteGeometry {
        let page_size = geometry.page_size as usize;
        WriteGeometry {
            rings,
            pages,
            data,
            page_shift: page_size.trailing_zeros(),
            nr_pages: geometry.nr_pages,
            cap: crate::format::data_capacity(page_size),
            max_payload: crate::format::max_payload(page_size),
        }
    }

    /// The write geometry of a region laid out as `geometry` from `base`
    /// (a heap allocation or a mapping).
    ///
    /// # Safety
    /// `base` must start the region's `geometry.total_size` bytes.
    #[cfg(not(loom))]
    unsafe fn at(geometry: &Geometry, base: NonNull<u8>) -> WriteGeometry {
        let base = base.as_ptr();
        // SAFETY: the ring and page metadata arrays and the page data start
        // at these offsets inside the region (the caller's contract).
        unsafe {
            WriteGeometry::new(
                geometry,
                base.add(geometry.ring_meta_offset as usize).cast(),
                base.add(geometry.page_meta_offset as usize).cast(),
                base.add(geometry.data_offset as usize),
            )
        }
    }
}

/// The region: metadata plus page data.
pub(crate) struct Region {
    geometry: Geometry,
    /// What the write path needs, derived from `geometry` and the mapping
    /// once (see [`WriteGeometry`]).
    write_geo: WriteGeometry,
    /// Start of the page data (page 0's header).
    data: NonNull<u8>,
    #[cfg(not(loom))]
    base: NonNull<u8>,
    #[cfg(not(loom))]
    backing: Backing,
    #[cfg(loom)]
    loom: LoomParts,
}

#[cfg(loom)]
struct LoomParts {
    state: Box<BufferState>,
    rings: Box<[RingMeta]>,
    pages: Box<[PageMeta]>,
}

// SAFETY: all shared mutable state in the region is atomics, or page bytes
// whose access is ordered by the ring protocol (commit Release/Acquire).
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("geometry", &self.geometry)
            .finish()
    }
}

#[cfg(not(loom))]
fn region_layout(g: &Geometry) -> std::alloc::Layout {
    // Geometry::new checked that total_size fits in usize; 4096 is a power of two.
    std::alloc::Layout::from_size_align(g.total_size as usize, 4096)
        .unwrap_or_else(|_| std::alloc::Layout::new::<u8>())
}

impl Region {
    /// Allocates a zeroed region on the heap. Zeroed memory is a valid value
    /// for every atomic in the metadata; the caller initialises links.
    #[cfg(not(loom))]
    pub(crate) fn allocate(geometry: Geometry) -> Option<Region> {
        let layout = region_layout(&geometry);
        if layout.size() != geometry.total_size as usize {
            return None;
        }
        // SAFETY: the layout has a non-zero size (it holds at least a header).
        let base = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })?;
        // SAFETY: `base` starts an allocation of `total_size` bytes (checked
        // above), freed by `Drop` for `Backing::Heap`.
        let region = unsafe { Region::at(geometry, base, Backing::Heap) };
        region.write_header();
        region.publish();
        Some(region)
    }

    /// Writes the header but the magic (see `publish`).
    #[cfg(not(loom))]
    fn write_header(&self) {
        let base = self.base;
        let geometry = self.geometry;
        // SAFETY: the header sits at offset 0 of a 4096-aligned region that
        // is large enough; the creator is the only one writing it.
        unsafe {
            let h = base.as_ptr().cast::<RegionHeader>();
            std::ptr::addr_of_mut!((*h).version).write(LAYOUT_VERSION);
            std::ptr::addr_of_mut!((*h).header_size)
                .write(std::mem::size_of::<RegionHeader>() as u32);
            std::ptr::addr_of_mut!((*h).ring_meta_size)
                .write(std::mem::size_of::<RingMeta>() as u32);
            std::ptr::addr_of_mut!((*h).page_meta_size)
                .write(std::mem::size_of::<PageMeta>() as u32);
            std::ptr::addr_of_mut!((*h).geometry).write(geometry);
        }
    }

    /// Marks the region ready for other processes: the magic, with Release
    /// (pairs with the Acquire load in `open_mapped`).
    #[cfg(not(loom))]
    pub(crate) fn publish(&self) {
        self.header()
            .magic
            .store(REGION_MAGIC, crate::sync::Ordering::Release);
    }

    #[cfg(not(loom))]
    fn header(&self) -> &RegionHeader {
        // SAFETY: the header is at offset 0 of the live region.
        unsafe { &*self.base.as_ptr().cast::<RegionHeader>() }
    }

    /// Creates a region in `file` at `offset` (a multiple of 4096), sized
    /// to fit, mapped shared. The caller initialises rings, then `publish`es.
    #[cfg(not(loom))]
    pub(crate) fn create_mapped(
        file: &std::fs::File,
        offset: u64,
        geometry: Geometry,
    ) -> std::io::Result<Region> {
        let end = offset + geometry.total_size;
        if file.metadata()?.len() < end {
            file.set_len(end)?;
        }
        let map = memmap2::MmapOptions::new()
            .offset(offset)
            .len(geometry.total_size as usize)
            .map_raw(file)?;
        let base = NonNull::new(map.as_mut_ptr()).ok_or(std::io::ErrorKind::InvalidInput)?;
        // SAFETY: the metadata lies inside the mapping; the file is being
        // created, so no other process relies on its bytes yet. Zero is a
        // valid value for every atomic in it.
        unsafe { std::ptr::write_bytes(base.as_ptr(), 0, geometry.data_offset as usize) };
        // SAFETY: `base` starts the mapping of `total_size` bytes, kept
        // mapped by the region's `Backing::Mapped`.
        let region = unsafe { Region::at(geometry, base, Backing::Mapped(map)) };
        region.write_header();
        Ok(region)
    }

    /// Maps a region another process created in `file` at `offset`, after
    /// checking everything its layout depends on.
    #[cfg(not(loom))]
    pub(crate) fn open_mapped(
        file: &std::fs::File,
        offset: u64,
    ) -> Result<Region, crate::OpenError> {
        use crate::OpenError;
        let len = file.metadata()?.len();
        let header_size = std::mem::size_of::<RegionHeader>() as u64;
        if len < offset + header_size {
            return Err(OpenError::Truncated {
                need: offset + header_size,
                have: len,
            });
        }
        let head = memmap2::MmapOptions::new()
            .offset(offset)
            .len(header_size as usize)
            .map_raw_read_only(file)?;
        // SAFETY: the mapping holds a whole header; zero or garbage bytes
        // are valid values of every field (integers and atomics).
        let h = unsafe { &*head.as_ptr().cast::<RegionHeader>() };
        // Acquire: pairs with the Release in `publish`.
        let magic = h.magic.load(crate::sync::Ordering::Acquire);
        if magic != REGION_MAGIC {
            return Err(OpenError::NotABuffer { found: magic });
        }
        if h.version != LAYOUT_VERSION {
            return Err(OpenError::Version {
                found: h.version,
                expected: LAYOUT_VERSION,
            });
        }
        if h.header_size as u64 != header_size
            || h.ring_meta_size as usize != std::mem::size_of::<RingMeta>()
            || h.page_meta_size as usize != std::mem::size_of::<PageMeta>()
        {
            return Err(OpenError::Layout("struct sizes differ from this build's"));
        }
        let g = h.geometry;
        let page_ok = g.page_size.is_power_of_two()
            && (crate::format::MIN_PAGE_SIZE..=crate::format::MAX_PAGE_SIZE)
                .contains(&(g.page_size as usize));
        if !page_ok || g.nr_rings == 0 || g.pages_per_ring < 2 {
            return Err(OpenError::Layout(
                "ring count, pages or page size out of range",
            ));
        }
        let expect = Geometry::new(
            g.nr_rings,
            g.pages_per_ring,
            g.max_pages_per_ring,
            g.page_size,
            g.pool_pages,
        )
        .ok_or(OpenError::Layout("geometry too large"))?;
        if expect != g {
            return Err(OpenError::Layout("geometry fields are inconsistent"));
        }
        if len < offset + g.total_size {
            return Err(OpenError::Truncated {
                need: offset + g.total_size,
                have: len,
            });
        }
        drop(head);
        let map = memmap2::MmapOptions::new()
            .offset(offset)
            .len(g.total_size as usize)
            .map_raw(file)?;
        let base = NonNull::new(map.as_mut_ptr())
            .ok_or(std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: `base` starts the mapping of `total_size` bytes (the file
        // is long enough, checked above), kept mapped by the region's
        // `Backing::Mapped`.
        Ok(unsafe { Region::at(g, base, Backing::Mapped(map)) })
    }

    /// The region whose bytes start at `base`, before its header is written
    /// or checked.
    ///
    /// # Safety
    ///
    /// `base` starts `geometry.total_size` live bytes laid out for `geometry`
    /// (so `data_offset < total_size`), kept alive by `backing`.
    #[cfg(not(loom))]
    unsafe fn at(geometry: Geometry, base: NonNull<u8>, backing: Backing) -> Region {
        // SAFETY: data_offset < total_size, inside the bytes (the contract).
        let data =
            unsafe { NonNull::new_unchecked(base.as_ptr().add(geometry.data_offset as usize)) };
        Region {
            geometry,
            // SAFETY: `base` starts the region's bytes (the contract).
            write_geo: unsafe { WriteGeometry::at(&geometry, base) },
            data,
            base,
            backing,
        }
    }

    /// Builds the loom variant: metadata in boxed slices, data on the heap.
    #[cfg(loom)]
    pub(crate) fn allocate(geometry: Geometry) -> Option<Region> {
        fn ring_meta() -> RingMeta {
            let z32 = || AtomicU32::new(0);
            let z64 = || AtomicU64::new(0);
            RingMeta {
                w: WriterState {
                    committing: z32(),
                    record_disabled: z32(),
                    write_stamp: z64(),
                    pending_stamp: z64(),
                    owner: z64(),
                    _pad_writer: std::array::from_fn(|_| z64()),
                    tail_page: z32(),
                    commit_page: z32(),
                    wake_armed: z32(),
                    _pad32: z32(),
                    closed_entries: z64(),
                    closed_bytes: z64(),
                    closed_pages: z64(),
                },
                slow: SlowCounters {
                    overrun: z64(),
                    overrun_bytes: z64(),
                    commit_overrun: z64(),
                    dropped: z64(),
                    corruptions: z64(),
                    overrun_noted: z64(),
                    overrun_pages: z64(),
                    refused: z64(),
                    push_target: [z64(), z64(), z64(), z64()],
                },
                r: ReaderState {
                    busy: z32(),
                    reader_page: z32(),
                    read_offset: z32(),
                    head_page: z32(),
                    lock: z64(),
                    read_stamp: z64(),
                    read: z64(),
                    read_bytes: z64(),
                    overrun_at_swap: z64(),
                    lost_known: z64(),
                    lost_reported: z64(),
                    pages_read: z64(),
                },
                ctl: ControlState {
                    ring_pages: z32(),
                    free_head: z32(),
                    lent: z32(),
                    wake_seq: z32(),
                    wake_pages: z32(),
                    _pad: z32(),
                },
            }
        }
        let rings: Box<[RingMeta]> = (0..geometry.nr_rings).map(|_| ring_meta()).collect();
        let pages: Box<[PageMeta]> = (0..geometry.nr_pages)
            .map(|_| PageMeta {
                _pad_line: std::array::from_fn(|_| AtomicU64::new(0)),
                link: AtomicU64::new(0),
                prev: AtomicU32::new(0),
                commit: AtomicU32::new(0),
                real_end: AtomicU32::new(0),
                pool_owner: AtomicU32::new(0),
                write: AtomicU64::new(0),
                time_stamp: AtomicU64::new(0),
                lost_at_end: AtomicU64::new(0),
            })
            .collect();
        let bytes = geometry.nr_pages as usize * geometry.page_size as usize;
        let data: Box<[u64]> = vec![0u64; bytes / 8].into_boxed_slice();
        let data = NonNull::new(Box::into_raw(data).cast::<u8>())?;
        Some(Region {
            geometry,
            write_geo: WriteGeometry::new(&geometry, rings.as_ptr(), pages.as_ptr(), data.as_ptr()),
            data,
            loom: LoomParts {
                state: Box::new(BufferState {
                    mode: AtomicU32::new(0),
                    any_seq: AtomicU32::new(0),
                    record_off: AtomicU32::new(0),
                    shared: AtomicU32::new(0),
                    pool_top: AtomicU64::new(0),
                }),
                rings,
                pages,
            },
        })
    }

    /// The geometry as the write path uses it.
    #[inline(always)]
    pub(crate) fn write_geometry(&self) -> &WriteGeometry {
        &self.write_geo
    }

    #[inline(always)]
    pub(crate) fn geometry(&self) -> &Geometry {
        &self.geometry
    }

    /// Buffer-wide state.
    #[inline(always)]
    pub(crate) fn state(&self) -> &BufferState {
        #[cfg(not(loom))]
        // SAFETY: the header is at offset 0 of the live allocation and was
        // initialised in `allocate`; `state` holds only atomics.
        unsafe {
            &(*self.base.as_ptr().cast::<RegionHeader>()).state
        }
        #[cfg(loom)]
        &self.loom.state
    }

    /// The metadata of ring `ring` (< nr_rings).
    #[inline(always)]
    pub(crate) fn ring(&self, ring: u32) -> &RingMeta {
        debug_assert!(ring < self.geometry.nr_rings);
        #[cfg(not(loom))]
        // SAFETY: ring < nr_rings, so the struct lies inside the allocation at
        // a 64-aligned offset (`write_geo.rings` is the array's start);
        // zeroed atomics are valid values.
        unsafe {
            &*self.write_geo.rings.add(ring as usize)
        }
        #[cfg(loom)]
        &self.loom.rings[ring as usize]
    }

    /// The metadata of page `page` (< nr_pages).
    #[inline(always)]
    pub(crate) fn page(&self, page: u32) -> &PageMeta {
        debug_assert!(page < self.geometry.nr_pages);
        #[cfg(not(loom))]
        // SAFETY: page < nr_pages, so the struct lies inside the allocation,
        // 64-byte aligned (page_meta_offset is); zeroed atomics are valid values.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(self.geometry.page_meta_offset as usize)
                .cast::<PageMeta>()
                .add(page as usize)
        }
        #[cfg(loom)]
        &self.loom.pages[page as usize]
    }

    /// Whether page `page` belongs to ring `ring`: one of its own slots, or
    /// a pool page spliced into it (or taken for it). Validates indices
    /// read from shared state before they are followed.
    #[inline]
    pub(crate) fn owns(&self, ring: u32, page: u32) -> bool {
        let g = &self.geometry;
        g.owns_slot(ring, page)
            || (g.is_pool_page(page) && self.page(page).pool_owner.load(Relaxed) == ring + 1)
    }

    /// Pointer to the first byte of page `page` (its 16-byte header).
    #[inline(always)]
    pub(crate) fn page_bytes(&self, page: u32) -> *mut u8 {
        debug_assert!(page < self.geometry.nr_pages);
        // SAFETY: page < nr_pages: the page lies inside the data area.
        unsafe {
            self.data
                .as_ptr()
                .add(page as usize * self.geometry.page_size as usize)
        }
    }

    /// The committed bytes of page `page`: its data area cut at `commit`.
    /// The one place that turns a page and a commit into a slice; readers,
    /// the live iterator and the post-mortem tools all call it.
    ///
    /// # Safety
    /// `commit` must be at most the page's data capacity, and `[0, commit)`
    /// of the page's data must stay unchanged while the slice lives: the
    /// bytes are committed (writers never rewrite committed bytes of a
    /// page) and nothing may swap the page away, reset or reuse it before
    /// the caller's last use of the slice. Each caller names the lock or
    /// contract that gives it this.
    #[inline(always)]
    pub(crate) unsafe fn committed_data(&self, page: u32, commit: usize) -> &[u8] {
        debug_assert!(commit <= crate::format::data_capacity(self.geometry.page_size as usize));
        // SAFETY: `page_bytes` points inside the data area, and
        // `PAGE_HEADER_SIZE + commit <= page_size` keeps the slice inside
        // the page; the bytes are initialised (pages are zeroed at creation)
        // and stable for the slice's life by the caller's contract.
        unsafe {
            std::slice::from_raw_parts(
                self.page_bytes(page).add(crate::format::PAGE_HEADER_SIZE),
                commit,
            )
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        if let Backing::Heap = self.backing {
            // SAFETY: `base` came from `alloc_zeroed` with this exact layout.
            unsafe { std::alloc::dealloc(self.base.as_ptr(), region_layout(&self.geometry)) };
        }
        // A mapping is unmapped when `backing` drops.
        #[cfg(loom)]
        {
            let words = self.geometry.nr_pages as usize * self.geometry.page_size as usize / 8;
            // SAFETY: `data` came from `Box::<[u64]>::into_raw` with this length.
            drop(unsafe {
                Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.data.as_ptr().cast::<u64>(),
                    words,
                ))
            });
        }
    }
}
