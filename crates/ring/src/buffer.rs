//! The public buffer type: configuration, creation, writers, readers, stats.

use crate::layout::{link, Geometry, Region, RingMeta, WriteGeometry, HEAD, NORMAL, NO_SLOT};
use crate::read::Consumer;
use crate::sync::Ordering::*;
use crate::write::Writer;
use crate::{format, ConfigError, RingError};

/// What a writer does when its ring is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Flight recorder: the writer pushes the head page forward; the events
    /// on the lost page are counted as overrun.
    #[default]
    Overwrite,
    /// The writer drops its event and counts it as dropped; nothing written
    /// and unread is ever lost.
    ProducerConsumer,
}

/// Shape of a [`RingBuffer`]: rings, pages per ring, page size, mode, and
/// an optional shared pool that full rings grow from.
///
/// ```
/// use ringtrace_ring::{Config, Mode, RingBuffer};
/// let cfg = Config::new(2).pages_per_ring(4).page_size(4096).mode(Mode::ProducerConsumer);
/// let buf = RingBuffer::new(cfg).unwrap();
/// assert_eq!((buf.rings(), buf.config().page_size), (2, 4096));
/// // A page size that is not a power of two is refused, naming it.
/// let err = RingBuffer::new(Config::new(1).page_size(3000)).unwrap_err();
/// assert!(err.to_string().contains("3000"), "{err}");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Number of rings, one per writer context.
    pub rings: usize,
    /// Pages in each ring, not counting the reader's page (at least 2).
    pub pages_per_ring: usize,
    /// Most pages a ring may be resized to; `None`: four times
    /// `pages_per_ring`. The region reserves page slots for them up front;
    /// on the heap and in shared memory, slots never used cost address
    /// space, not memory.
    pub max_pages_per_ring: Option<usize>,
    /// Page (sub-buffer) size: a power of two from 4096 to 1048576 bytes.
    pub page_size: usize,
    /// Overwrite or producer/consumer.
    pub mode: Mode,
    /// Pages of the shared pool (see [`Config::pool_pages`]); 0: none.
    pub pool_pages: usize,
}

impl Config {
    /// `rings` rings of 16 pages of 4096 bytes, overwrite mode.
    pub fn new(rings: usize) -> Config {
        Config {
            rings,
            pages_per_ring: 16,
            max_pages_per_ring: None,
            page_size: 4096,
            mode: Mode::Overwrite,
            pool_pages: 0,
        }
    }

    /// Sets the pages of a pool shared by all rings. A writer whose ring is
    /// full takes a page from the pool and splices it into its ring,
    /// instead of overwriting its oldest page (overwrite mode) or dropping
    /// the event (producer/consumer mode); only once the pool is empty does
    /// it overwrite or drop. A page taken stays in its ring for good (also
    /// when another thread later writes that ring). So with small rings and
    /// a large pool, the memory goes to the rings that write, in
    /// proportion to what they write, whatever their number: the flight
    /// recorder of a few busy threads among many possible ones.
    ///
    /// Resizing and snapshot swaps ([`RingBuffer::resize`],
    /// [`RingBuffer::swap_ring`]) are refused on a buffer with a pool.
    ///
    /// ```
    /// use ringtrace_ring::{Config, Mode, RingBuffer};
    /// // 4 rings of 2 pages each, and 12 pages for whichever rings need them.
    /// let buf = RingBuffer::new(Config::new(4).pages_per_ring(2).pool_pages(12)
    ///     .mode(Mode::ProducerConsumer)).unwrap();
    /// let mut w = buf.writer(0).unwrap();
    /// let mut n = 0u64;
    /// while w.write(n, &[7; 100]).is_ok() {
    ///     n += 1;
    /// }
    /// // Ring 0 took the whole pool before it dropped: 14 pages of events.
    /// assert_eq!(buf.ring_pages(0).unwrap(), 14);
    /// assert_eq!(buf.pool_free_pages(), 0);
    /// let s = buf.stats(0).unwrap();
    /// assert_eq!(s.dropped, 1);
    /// assert_eq!(s.entries, n);
    /// assert_eq!(s.written, s.read + s.overrun + s.dropped + s.commit_overrun + s.entries);
    /// ```
    pub fn pool_pages(mut self, pages: usize) -> Config {
        self.pool_pages = pages;
        self
    }

    /// Sets the number of pages per ring.
    pub fn pages_per_ring(mut self, pages: usize) -> Config {
        self.pages_per_ring = pages;
        self
    }

    /// Sets the pages per ring from a size in bytes (rounded up, at least 2).
    pub fn bytes_per_ring(mut self, bytes: usize) -> Config {
        let cap = format::data_capacity(self.page_size.max(format::MIN_PAGE_SIZE));
        self.pages_per_ring = bytes.div_ceil(cap).max(2);
        self
    }

    /// Sets the most pages a ring may be resized to.
    pub fn max_pages_per_ring(mut self, pages: usize) -> Config {
        self.max_pages_per_ring = Some(pages);
        self
    }

    /// The most pages a ring may be resized to.
    pub fn max_pages(&self) -> usize {
        self.max_pages_per_ring
            .unwrap_or(self.pages_per_ring.saturating_mul(4))
            .max(self.pages_per_ring)
    }

    /// The most pages one ring can link: [`Config::max_pages`] plus every
    /// page of the shared pool ([`Config::pool_pages`]), which one ring
    /// may take alone.
    pub fn max_ring_pages(&self) -> usize {
        self.max_pages().saturating_add(self.pool_pages)
    }

    /// Sets the page size.
    pub fn page_size(mut self, page_size: usize) -> Config {
        self.page_size = page_size;
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: Mode) -> Config {
        self.mode = mode;
        self
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.page_size.is_power_of_two()
            || !(format::MIN_PAGE_SIZE..=format::MAX_PAGE_SIZE).contains(&self.page_size)
        {
            return Err(ConfigError::PageSize(self.page_size));
        }
        Ok(())
    }
}

/// Counters of one ring (the kernel's `per_cpu/cpuN/stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingStats {
    /// Events in the ring not yet read.
    pub entries: u64,
    /// Events lost to overwrite (pages pushed by the writer).
    pub overrun: u64,
    /// Events dropped because nested writes lapped the ring up to an
    /// uncommitted reservation.
    pub commit_overrun: u64,
    /// Unread bytes, padding included.
    pub bytes: u64,
    /// Events dropped: ring full (producer/consumer), nesting too deep, or
    /// the ring disabled after an inconsistency.
    pub dropped: u64,
    /// Events consumed by readers.
    pub read: u64,
    /// Events committed by writers.
    pub committed: u64,
    /// Every attempted write: `committed + dropped + commit_overrun`.
    ///
    /// `entries` is derived (`committed - read - overrun`), so
    /// `written == read + overrun + dropped + commit_overrun + entries`
    /// holds by construction; what checks the ring is
    /// `committed == read + overrun` once it is drained, or against a count
    /// of your own of what is still buffered.
    pub written: u64,
    /// Internal inconsistencies found (corrupt pages or links).
    pub corruptions: u64,
    /// Writes refused because recording was off or the ring disabled (not
    /// attempts: not part of `written`).
    pub refused: u64,
    /// Time stamp of the oldest unread page (`oldest event ts`); `None`
    /// when nothing is unread.
    pub oldest_ts: Option<u64>,
    /// Time stamp of the newest event written (`now ts`).
    pub now_ts: u64,
    /// Pages in the ring now.
    pub pages: u64,
}

impl RingStats {
    /// The kernel's `per_cpu/cpuN/stats` lines (eight of them, then
    /// ringtrace's own: committed, written, refused, corruptions). Time
    /// stamps are printed as seconds with microseconds when `ns` says the
    /// clock counts nanoseconds, else as raw counts.
    ///
    /// ```
    /// use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// buf.writer(0).unwrap().write(1_500_000_000, b"x").unwrap();
    /// let text = buf.stats(0).unwrap().kernel_text(true);
    /// assert!(text.starts_with("entries: 1\noverrun: 0\n"));
    /// assert!(text.contains("oldest event ts:     1.500000\n"));
    /// ```
    pub fn kernel_text(&self, ns: bool) -> String {
        let ts = |t: u64| {
            if ns {
                format!("{:5}.{:06}", t / 1_000_000_000, t % 1_000_000_000 / 1000)
            } else {
                format!("{t}")
            }
        };
        format!(
            "entries: {}\noverrun: {}\ncommit overrun: {}\nbytes: {}\n\
             oldest event ts: {}\nnow ts: {}\ndropped events: {}\nread events: {}\n\
             committed: {}\nwritten: {}\nrefused: {}\ncorruptions: {}\n",
            self.entries,
            self.overrun,
            self.commit_overrun,
            self.bytes,
            ts(self.oldest_ts.unwrap_or(0)),
            ts(self.now_ts),
            self.dropped,
            self.read,
            self.committed,
            self.written,
            self.refused,
            self.corruptions,
        )
    }
}

/// A buffer of rings, one per writer context, in one position-independent
/// memory region.
///
/// ```
/// use ringtrace_ring::{Config, Mode, RingBuffer, WriteError};
///
/// // One ring of 2 pages, producer/consumer: it fills up, then drops.
/// let buf = RingBuffer::new(Config::new(1).pages_per_ring(2).mode(Mode::ProducerConsumer)).unwrap();
/// let mut w = buf.writer(0).unwrap();
/// let mut n = 0u64;
/// let full = loop {
///     match w.write(n, &n.to_le_bytes()) {
///         Ok(()) => n += 1,
///         Err(e) => break e,
///     }
/// };
/// assert_eq!(full, WriteError::Full);
/// assert_eq!(buf.stats(0).unwrap().dropped, 1);
///
/// // Too large is an error, not a panic.
/// assert!(matches!(w.write(0, &[0; 5000]), Err(WriteError::TooLarge { .. })));
///
/// // Read everything back; then the ring is empty.
/// let mut r = buf.consumer(0).unwrap();
/// let mut read = 0u64;
/// while let Some(ev) = r.consume().unwrap() {
///     assert_eq!(ev.payload, &read.to_le_bytes());
///     read += 1;
/// }
/// assert_eq!(read, n);
/// assert!(buf.is_empty(0).unwrap());
/// ```
#[derive(Debug)]
pub struct RingBuffer {
    region: Region,
    config: Config,
}

impl RingBuffer {
    /// Creates the buffer on the heap.
    pub fn new(config: Config) -> Result<RingBuffer, ConfigError> {
        config.validate()?;
        Self::build(config)
    }

    /// Creates a buffer with tiny pages, for loom models and unit tests of
    /// the protocol (pages must hold at least one 8-byte event).
    #[cfg(any(test, loom))]
    #[doc(hidden)]
    pub fn new_unchecked_page_size(config: Config) -> Result<RingBuffer, ConfigError> {
        if !config.page_size.is_power_of_two() || config.page_size < 32 {
            return Err(ConfigError::PageSize(config.page_size));
        }
        Self::build(config)
    }

    fn build(config: Config) -> Result<RingBuffer, ConfigError> {
        let geometry = Self::geometry(&config)?;
        let region =
            Region::allocate(geometry).ok_or(ConfigError::OutOfMemory(geometry.total_size))?;
        Ok(Self::init(region, config))
    }

    /// Creates the buffer in `file` at byte `offset` (a multiple of 4096),
    /// mapped shared, so that other processes can map it with
    /// [`RingBuffer::open_shared`] and read (or write) it with the same
    /// lockless protocol. The file (a fresh one: `/dev/shm`, a memfd) is
    /// extended to fit; [`RingBuffer::region_size`] tells how much.
    ///
    /// ```
    /// use ringtrace_ring::{Config, RingBuffer};
    /// let file = tempfile::tempfile().unwrap();
    /// let writer_side = RingBuffer::create_shared(&file, 0, Config::new(2)).unwrap();
    /// writer_side.writer(1).unwrap().write(7, b"hello").unwrap();
    /// // Another process would open the same file; a second mapping here.
    /// let reader_side = RingBuffer::open_shared(&file, 0).unwrap();
    /// let mut c = reader_side.consumer(1).unwrap();
    /// assert_eq!(&c.consume().unwrap().unwrap().payload[..5], b"hello");
    /// ```
    #[cfg(not(loom))]
    pub fn create_shared(
        file: &std::fs::File,
        offset: u64,
        config: Config,
    ) -> Result<RingBuffer, crate::OpenError> {
        if offset % 4096 != 0 {
            return Err(crate::OpenError::Layout(
                "offset must be a multiple of 4096",
            ));
        }
        config
            .validate()
            .map_err(|_| crate::OpenError::Layout("invalid configuration"))?;
        let geometry = Self::geometry(&config)
            .map_err(|_| crate::OpenError::Layout("invalid configuration"))?;
        let region = Region::create_mapped(file, offset, geometry)?;
        region.state().shared.store(1, Relaxed);
        let buf = Self::init(region, config);
        buf.region.publish();
        Ok(buf)
    }

    /// Maps a buffer created by [`RingBuffer::create_shared`] (in this
    /// process or another), checking its header: magic, layout version,
    /// struct sizes, geometry and file length. A corrupt or foreign file
    /// gives an [`crate::OpenError`] saying what is wrong.
    #[cfg(not(loom))]
    pub fn open_shared(file: &std::fs::File, offset: u64) -> Result<RingBuffer, crate::OpenError> {
        let region = Region::open_mapped(file, offset)?;
        let g = *region.geometry();
        let config = Config {
            rings: g.nr_rings as usize,
            pages_per_ring: g.pages_per_ring as usize,
            max_pages_per_ring: Some(g.max_pages_per_ring as usize),
            page_size: g.page_size as usize,
            pool_pages: g.pool_pages as usize,
            mode: if region.state().mode.load(Relaxed) == 0 {
                Mode::Overwrite
            } else {
                Mode::ProducerConsumer
            },
        };
        Ok(RingBuffer { region, config })
    }

    /// Bytes the region of `config` takes (what `create_shared` maps).
    pub fn region_size(config: &Config) -> Result<u64, ConfigError> {
        config.validate()?;
        Ok(Self::geometry(config)?.total_size)
    }

    /// Releases the reader locks of every ring, whoever holds them: the
    /// body of [`crate::repair::force_release_readers`], whose safety
    /// contract its callers keep.
    pub(crate) fn force_release_readers(&self) {
        for r in 0..self.config.rings as u32 {
            let meta = self.region.ring(r);
            meta.r.lock.store(0, Release);
            meta.r.busy.store(0, Release);
        }
    }

    fn geometry(config: &Config) -> Result<Geometry, ConfigError> {
        if config.rings == 0 {
            return Err(ConfigError::NoRings);
        }
        if config.pages_per_ring < 2 {
            return Err(ConfigError::TooFewPages(config.pages_per_ring));
        }
        let too_large = || ConfigError::TooLarge {
            rings: config.rings,
            pages: config.pages_per_ring,
            page_size: config.page_size,
        };
        Geometry::new(
            u32::try_from(config.rings).map_err(|_| too_large())?,
            u32::try_from(config.pages_per_ring).map_err(|_| too_large())?,
            u32::try_from(config.max_pages()).map_err(|_| too_large())?,
            config.page_size as u32,
            u32::try_from(config.pool_pages).map_err(|_| too_large())?,
        )
        .ok_or_else(too_large)
    }

    fn init(region: Region, config: Config) -> RingBuffer {
        let geometry = *region.geometry();
        let buf = RingBuffer { region, config };
        buf.region
            .state()
            .mode
            .store(u32::from(config.mode == Mode::ProducerConsumer), Relaxed);
        for ring in 0..geometry.nr_rings {
            buf.init_ring(ring);
        }
        crate::pool::init(&buf.region);
        buf
    }

    /// Lays out ring `ring`: slots 0..P in a circle, slot 0 the head, tail
    /// and commit page; slot P the reader's page; the other slots free.
    fn init_ring(&self, ring: u32) {
        let g = *self.region.geometry();
        let p = g.pages_per_ring;
        let first = g.page_index(ring, 0);
        let last = g.page_index(ring, p - 1);
        for i in 0..p {
            let page = g.page_index(ring, i);
            let next = g.page_index(ring, (i + 1) % p);
            let prev = g.page_index(ring, (i + p - 1) % p);
            let flag = if next == first { HEAD } else { NORMAL };
            self.region
                .page(page)
                .link
                .store(link(next, 0, flag), Relaxed);
            self.region.page(page).prev.store(prev, Relaxed);
        }
        let reader = g.page_index(ring, p);
        self.region
            .page(reader)
            .link
            .store(link(first, 0, NORMAL), Relaxed);
        self.region.page(reader).prev.store(last, Relaxed);
        let meta = self.region.ring(ring);
        meta.w.tail_page.store(first, Relaxed);
        meta.w.commit_page.store(first, Relaxed);
        meta.r.head_page.store(first, Relaxed);
        meta.r.reader_page.store(reader, Relaxed);
        meta.ctl.ring_pages.store(p, Relaxed);
        let mut free = NO_SLOT;
        for i in (p + 1..g.slots_per_ring).rev() {
            let slot = g.page_index(ring, i);
            self.region
                .page(slot)
                .link
                .store(link(free, 0, NORMAL), Relaxed);
            free = slot;
        }
        meta.ctl.free_head.store(free, Relaxed);
    }

    /// Pages left in the shared pool ([`Config::pool_pages`]): a snapshot,
    /// which writers taking pages make stale at once.
    pub fn pool_free_pages(&self) -> usize {
        crate::pool::free_pages(&self.region) as usize
    }

    pub(crate) fn region(&self) -> &Region {
        &self.region
    }

    pub(crate) fn check(&self, ring: usize) -> Result<u32, RingError> {
        if ring < self.config.rings {
            Ok(ring as u32)
        } else {
            Err(RingError::NoSuchRing {
                ring,
                rings: self.config.rings,
            })
        }
    }

    /// Claims ring `ring` for the current thread and returns its writer.
    /// Fails if another writer holds it; the claim ends when the writer drops.
    pub fn writer(&self, ring: usize) -> Result<Writer<'_>, RingError> {
        let index = self.check(ring)?;
        let token = thread_token();
        // Acquire: pairs with the Release store in `Writer::drop`.
        self.region
            .ring(index)
            .w
            .owner
            .compare_exchange(0, token, Acquire, Relaxed)
            .map_err(|_| RingError::Busy { ring })?;
        Ok(Writer::new(&self.region, index, true))
    }

    /// A writer for ring `ring` without claiming it: for a signal handler
    /// that interrupts the thread holding the ring's [`Writer`].
    ///
    /// # Safety
    /// Either the current thread holds the ring's writer and this runs inside
    /// a signal handler that interrupted it (so this write completes before
    /// the interrupted one resumes), or no other thread writes the ring while
    /// this writer is alive. Two threads writing one ring at once corrupt it.
    pub unsafe fn nested_writer(&self, ring: usize) -> Result<Writer<'_>, RingError> {
        Ok(Writer::new(&self.region, self.check(ring)?, false))
    }

    /// Like [`RingBuffer::nested_writer`], for a writer made per write, as
    /// a tracer makes one per record: it reads the buffer's geometry where
    /// it lies instead of copying it, which makes it cheaper to make and a
    /// little slower per write than a long-lived writer, and it does not
    /// prefetch ahead (see [`crate::GeometrySource`]). The ring index is
    /// the caller's to check (a tracer checked it once, when it leased the
    /// ring).
    ///
    /// # Safety
    /// As for [`RingBuffer::nested_writer`], and `ring` must be less than
    /// [`RingBuffer::rings`].
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// assert!(0 < buf.rings());
    /// // SAFETY: ring 0 exists and no other writer of it exists.
    /// let mut w = unsafe { buf.transient_writer(0) };
    /// w.write(1, b"x").unwrap();
    /// assert_eq!(buf.stats(0).unwrap().entries, 1);
    /// ```
    #[doc(hidden)] // the tracer's record path; users call `writer`
    #[inline(always)]
    pub unsafe fn transient_writer(&self, ring: usize) -> Writer<'_, &WriteGeometry> {
        debug_assert!(ring < self.config.rings, "ring {ring} out of range");
        Writer::transient(&self.region, ring as u32)
    }

    /// The consuming reader of ring `ring`: it holds the ring's reader
    /// lock until dropped (one consuming reader per ring; writers never
    /// take the lock and never wait for readers). The lock records its
    /// holder (process id and start time), and no wait here is unbounded:
    ///
    /// - free: taken;
    /// - held by a reader that died (killed or crashed holding it, in any
    ///   process; a recycled pid is told apart by its start time): taken
    ///   over; [`Consumer::took_over`] names the dead reader's pid, to be
    ///   reported;
    /// - held by a live reader of another process:
    ///   [`RingError::ReaderHeld`] at once, naming it (pid and command);
    /// - held in this process (another thread's `Consumer` about to be
    ///   dropped), or by an unnamed holder (a ring swap in progress, which
    ///   stores no name; a damaged word): waited for up to 2 seconds, then
    ///   `ReaderHeld` naming it.
    ///
    /// ```
    /// # use ringtrace_ring::{Config, RingBuffer, RingError};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// let first = buf.consumer(0).unwrap();
    /// assert!(buf.try_consumer(0).unwrap().is_none());
    /// drop(first);
    /// let c = buf.consumer(0).unwrap();
    /// assert_eq!(c.took_over(), None);
    /// ```
    pub fn consumer(&self, ring: usize) -> Result<Consumer<'_>, RingError> {
        Consumer::lock(&self.region, self.check(ring)?)
    }

    /// The consuming reader of ring `ring`, or `None` if any reader (even a
    /// dead one) holds its lock. Never waits and allocates nothing: usable
    /// in a signal handler (the crash dump).
    pub fn try_consumer(&self, ring: usize) -> Result<Option<Consumer<'_>>, RingError> {
        Ok(Consumer::try_lock(&self.region, self.check(ring)?))
    }

    /// Counters of ring `ring`.
    pub fn stats(&self, ring: usize) -> Result<RingStats, RingError> {
        let meta = self.region.ring(self.check(ring)?);
        // Read the reader's counters first: they can only grow, and only
        // after the writer counters they depend on, so entries stay >= 0.
        let read = meta.r.read.load(Acquire);
        let read_bytes = meta.r.read_bytes.load(Acquire);
        let overrun = meta.slow.overrun.load(Acquire);
        let overrun_bytes = meta.slow.overrun_bytes.load(Acquire);
        // Closed pages, then the page the commit point is on (the writer
        // may move on meanwhile: the totals are a snapshot, exact when the
        // ring is quiet). Closed counters first: a page is added to them
        // before the commit page moves off it, so nothing is counted twice.
        let closed_entries = meta.w.closed_entries.load(Acquire);
        let closed_bytes = meta.w.closed_bytes.load(Acquire);
        let commit_page = meta.w.commit_page.load(Acquire);
        let (open_entries, open_bytes) = if commit_page < self.region.geometry().nr_pages {
            let page = self.region.page(commit_page);
            let entries = crate::layout::write_entries(page.write.load(Acquire));
            (entries, u64::from(page.commit.load(Acquire)))
        } else {
            (0, 0)
        };
        // Checked sums (`counter_sum`): in shared memory the counters may
        // have been scribbled on; a reader must not panic or wrap on them.
        let committed = counter_sum(meta, &[closed_entries, open_entries]);
        let bytes = counter_sum(meta, &[closed_bytes, open_bytes]);
        let dropped = meta.slow.dropped.load(Acquire);
        let commit_overrun = meta.slow.commit_overrun.load(Acquire);
        let entries = committed.saturating_sub(counter_sum(meta, &[read, overrun]));
        let gone_bytes = counter_sum(meta, &[read_bytes, overrun_bytes]);
        let written = counter_sum(meta, &[committed, dropped, commit_overrun]);
        Ok(RingStats {
            entries,
            refused: meta.slow.refused.load(Relaxed),
            oldest_ts: if entries > 0 {
                Some(self.oldest_ts(meta))
            } else {
                None
            },
            now_ts: meta.w.write_stamp.load(Relaxed),
            pages: u64::from(meta.ctl.ring_pages.load(Relaxed)),
            overrun,
            commit_overrun,
            bytes: bytes.saturating_sub(gone_bytes),
            dropped,
            read,
            committed,
            written,
            // Loaded after the sums: includes what they found.
            corruptions: meta.slow.corruptions.load(Acquire),
        })
    }

    /// Time stamp of the oldest unread data: the reader page's running
    /// stamp when it has unread events, else the head page's stamp (as the
    /// kernel's `ring_buffer_oldest_event_ts`). A snapshot: the writer may
    /// move the head meanwhile.
    fn oldest_ts(&self, meta: &crate::layout::RingMeta) -> u64 {
        let g = self.region.geometry();
        let rp = meta.r.reader_page.load(Relaxed);
        if rp < g.nr_pages {
            let off = meta.r.read_offset.load(Relaxed);
            if off < self.region.page(rp).commit.load(Acquire) {
                return if off == 0 {
                    self.region.page(rp).time_stamp.load(Relaxed)
                } else {
                    meta.r.read_stamp.load(Relaxed)
                };
            }
        }
        let head = meta.r.head_page.load(Relaxed);
        if head < g.nr_pages {
            self.region.page(head).time_stamp.load(Relaxed)
        } else {
            0
        }
    }

    /// Whether ring `ring` has no unread events.
    pub fn is_empty(&self, ring: usize) -> Result<bool, RingError> {
        Ok(self.stats(ring)?.entries == 0)
    }

    /// Internal state of a ring (pages, links, flags, offsets), for
    /// diagnosing a stuck or inconsistent ring.
    #[doc(hidden)]
    pub fn debug_state(&self, ring: usize) -> String {
        use crate::layout::{link_flag, link_page, write_offset};
        let g = self.region.geometry();
        let m = self.region.ring(ring as u32);
        let mut out = format!(
            "tail {} commit {} reader {} head-hint {} read_off {} |",
            m.w.tail_page.load(Relaxed),
            m.w.commit_page.load(Relaxed),
            m.r.reader_page.load(Relaxed),
            m.r.head_page.load(Relaxed),
            m.r.read_offset.load(Relaxed)
        );
        // Its own slots, then the pool pages it took.
        let pool = (g.pool_first()..g.nr_pages).filter(|&p| self.region.owns(ring as u32, p));
        for p in (0..g.slots_per_ring)
            .map(|i| g.page_index(ring as u32, i))
            .chain(pool)
        {
            let pm = self.region.page(p);
            let l = pm.link.load(Relaxed);
            out += &format!(
                " P{p}: ->{}{} prev {} write {} commit {} |",
                link_page(l),
                ["", "H", "U", "?"][link_flag(l) as usize],
                pm.prev.load(Relaxed),
                write_offset(pm.write.load(Relaxed)),
                pm.commit.load(Relaxed)
            );
        }
        out
    }

    /// Number of rings.
    pub fn rings(&self) -> usize {
        self.config.rings
    }

    /// The configuration the buffer was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Largest payload one event can carry.
    pub fn max_payload(&self) -> usize {
        format::max_payload(self.config.page_size)
    }
}

/// The sum of counters read from ring `meta`'s shared memory, checked: a
/// sum that overflows (a counter scribbled on) saturates at `u64::MAX` and
/// is counted as a corruption of the ring, so that no reader panics (with
/// overflow checks) or wraps (without) on any counter value.
pub(crate) fn counter_sum(meta: &RingMeta, parts: &[u64]) -> u64 {
    match parts.iter().try_fold(0u64, |s, &p| s.checked_add(p)) {
        Some(sum) => sum,
        None => {
            meta.slow.corruptions.fetch_add(1, Relaxed);
            u64::MAX
        }
    }
}

/// A non-zero token unique to the current thread while it lives, across
/// processes sharing a buffer: the address of a thread-local
/// (const-initialised, no destructor, so taking it is async-signal-safe and
/// allocates nothing) mixed with the process id.
fn thread_token() -> u64 {
    thread_local! {
        static TOKEN: u8 = const { 0 };
    }
    let addr = TOKEN.with(|t| t as *const u8 as u64);
    (addr ^ (u64::from(std::process::id()) << 48)).max(1)
}
