//! Streaming export of a live tracer to `trace.dat` (v6 or v7) or Chrome
//! JSON: a [`Drain`] consumes the rings as they fill, so a recording of any
//! length needs no more memory than a few pages per context.
//!
//! # Data flow and memory
//!
//! ```text
//!  ring i ──read_page──> lent page i ──as is──> spool i (temp file)
//!           (pull_pages)    (zero-copy swap)       64 KiB write buffer
//!
//!  finish: metadata (formats of the event types seen, printk formats,
//!          kallsyms, thread names, clock)  ──> TraceDatWriter
//!          spool 0, spool 1, ... io::copy'd (in-kernel for files) ──> CPU blocks
//!  JSON:   the trace.dat above goes to a temp file, then is read back
//!          merged by time stamp and streamed as JSON (crate::json)
//! ```
//!
//! trace.dat keeps each CPU's pages contiguous and its CPU table needs their
//! offsets, so pages cannot go to the output in arrival order; each context
//! spools its pages to an unnamed temporary file and [`Drain::finish`]
//! concatenates them. Memory held by the drain is [`DrainStats::buffered_bytes`]:
//! the spools' write buffers, at most `contexts * SPOOL_BUFFER` whatever
//! the trace length (plus a table of the thread names and event types
//! seen); the lent pages are spare slots of the ring buffer itself.
//!
//! # The page source
//!
//! Pages come from one function, `pull_pages`: the ring's whole-page read
//! ([`Consumer::read_page`], the kernel's `ring_buffer_read_page`). A
//! complete page is swapped out of the ring without a copy and spooled as
//! it is, loss flags (`RB_MISSED_EVENTS`, stored count) included. While
//! polling only complete pages are taken (as `trace-cmd record` does);
//! the final poll also takes the partly filled ones. The page is only
//! decoded to note the event types and threads it holds, for the file's
//! metadata. ([`PagePacker`] builds pages from single events, for other
//! sources.)
//!
//! # Loss
//!
//! In overwrite mode the writer may overwrite pages before the drain reads
//! them; those losses come back from the consumer with the next event and
//! land in the file as a flagged page (`CPU:n [N EVENTS DROPPED]` in
//! `trace-cmd report`). Losses after the last event of a ring are counted
//! in [`DrainStats::lost_events`] and in the file's per-CPU stats text. In
//! producer/consumer mode a drain that keeps up loses nothing.
//!
//! A drain holds every ring's reader lock while it exists (as a
//! [`Pipe`](crate::Pipe) does): other readers of the tracer wait.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use ringtrace_ring::format::{decode, Record};
use ringtrace_ring::format::{
    event_size, MAX_SMALL_DATA, MISSED_EVENTS, MISSED_STORED, PAGE_HEADER_SIZE, TS_DELTA_MAX,
    TYPE_TIME_EXTEND,
};
use ringtrace_ring::{Consumer, ReadError, ReadPage, RingError};

use crate::event::{CommonFields, Registry};
use crate::json::{JsonError, JsonOptions};
use crate::printk;
use crate::tracedat::{TraceDatError, TraceDatMeta, TraceDatVersion, TraceDatWriter, Tsc2Nsec};
use crate::tracer::Tracer;

/// Size of each context's spool write buffer.
pub const SPOOL_BUFFER: usize = 64 * 1024;
/// Bytes per progress step when spools are concatenated into the output.
const PROGRESS_STEP: u64 = 16 << 20;
/// Most polls of [`Drain::poll_all`] (and so of the final drain in
/// [`Drain::finish`]).
pub const MAX_FINAL_POLLS: usize = 8;
/// Most thread names remembered (one per distinct thread id seen); past it
/// new threads show as `<...>`.
const MAX_THREADS: usize = 1 << 16;

/// Why an export failed. Every variant names what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading a ring failed (the ring reported an inconsistency).
    #[error("reading context {ring}: {source}")]
    Read {
        /// The context (ring).
        ring: usize,
        /// The ring's error.
        #[source]
        source: ReadError,
    },
    /// The ring refused an operation.
    #[error("ring buffer: {0}")]
    Ring(#[from] RingError),
    /// A temporary (spool) file failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Writing or reading the trace.dat failed.
    #[error(transparent)]
    TraceDat(#[from] TraceDatError),
    /// Writing the JSON failed.
    #[error(transparent)]
    Json(#[from] JsonError),
    /// An event does not fit an empty page (cannot happen with the ring's
    /// own page size; reported rather than dropped).
    #[error("event of {len} bytes on context {ring} does not fit a {page_size}-byte page")]
    EventTooLarge {
        /// The context.
        ring: usize,
        /// Payload bytes.
        len: usize,
        /// Page size.
        page_size: usize,
    },
}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> ExportError {
    move |source| ExportError::Io { context, source }
}

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `trace.dat` of this version.
    TraceDat(TraceDatVersion),
    /// Chrome trace-event JSON (Perfetto UI, chrome://tracing).
    Json,
}

impl Default for ExportFormat {
    fn default() -> Self {
        ExportFormat::TraceDat(TraceDatVersion::V6)
    }
}

/// Progress of an export, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExportProgress {
    /// Page bytes spooled so far (grows while draining).
    pub spooled: u64,
    /// Bytes of the output written so far (grows during finish).
    pub written: u64,
    /// Page bytes the output will hold, once known (at finish), else 0.
    pub total: u64,
}

/// Counters of a [`Drain`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DrainStats {
    /// Events moved into pages.
    pub events: u64,
    /// Whole pages spooled.
    pub pages: u64,
    /// Page bytes spooled.
    pub page_bytes: u64,
    /// Losses reported by the rings: stored in the pages (before the
    /// event that followed them) plus those still pending at finish.
    pub lost_events: u64,
    /// Bytes the drain holds in memory now: events in pages being filled
    /// plus spool write buffers not yet flushed.
    pub buffered_bytes: u64,
    /// Largest `buffered_bytes` seen after any poll.
    pub max_buffered_bytes: u64,
}

/// Builds kernel-format pages (`buffer_data_page`, 64-bit, native byte
/// order) from events, as the ring's writer lays them out: a page stamp
/// equal to the first event's time, 27-bit deltas, a time extend before an
/// event whose delta does not fit, the long form (`type_len` 0) above 112
/// payload bytes, and `RB_MISSED_EVENTS | RB_MISSED_STORED` with the count
/// after the data when events were lost before the page's first event.
///
/// ```
/// use ringtrace::export::{PagePacker, Packed};
/// use ringtrace::tracedat::page::{parse_page, PageLayout};
/// let mut p = PagePacker::new(4096);
/// assert_eq!(p.push(1_000, 3, &[1, 0, 0, 0, 7, 0, 0, 0]), Packed::Added);
/// assert_eq!(p.push(1_000 + (1 << 30), 0, &[2; 8]), Packed::Added); // needs a time extend
/// let (h, ev) = parse_page(p.finish_page(), PageLayout::NATIVE_64).unwrap();
/// assert_eq!(h.lost_count, Some(3));
/// let ts: Vec<u64> = ev.map(|e| e.unwrap().ts).collect();
/// assert_eq!(ts, [1_000, 1_000 + (1 << 30)]);
/// ```
#[derive(Debug, Clone)]
pub struct PagePacker {
    page: Vec<u8>,
    /// Data bytes used after the 16-byte header.
    len: usize,
    last_ts: u64,
    events: u64,
    /// Loss flag of this page: `Some(count)` if events were lost before it.
    lost: Option<u64>,
    /// The count does not fit: only the flag is set.
    lost_flag_only: bool,
}

/// Result of [`PagePacker::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packed {
    /// The event is on the page.
    Added,
    /// The page is full, or the event reports losses and the page already
    /// has events: finish the page and push again.
    PageFull,
    /// The event does not fit even an empty page.
    TooLarge,
}

impl PagePacker {
    /// An empty packer for pages of `page_size` bytes.
    pub fn new(page_size: usize) -> Self {
        PagePacker {
            page: vec![0; page_size],
            len: 0,
            last_ts: 0,
            events: 0,
            lost: None,
            lost_flag_only: false,
        }
    }

    /// Whether the page holds no event and no loss.
    pub fn is_empty(&self) -> bool {
        self.events == 0 && self.lost.is_none()
    }

    /// Events on the current page.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Bytes of event data on the current page.
    pub fn data_len(&self) -> usize {
        self.len
    }

    fn capacity(&self) -> usize {
        self.page.len() - PAGE_HEADER_SIZE
    }

    fn put_u32(&mut self, w: u32) {
        let at = PAGE_HEADER_SIZE + self.len;
        self.page[at..at + 4].copy_from_slice(&w.to_ne_bytes());
        self.len += 4;
    }

    /// Adds an event stamped `ts` that follows `lost` lost events; `payload`
    /// as the ring stores it (its length a multiple of 4). Time stamps must
    /// not decrease within a page.
    pub fn push(&mut self, ts: u64, lost: u64, payload: &[u8]) -> Packed {
        let cap = self.capacity();
        let size = event_size(payload.len());
        if lost > 0 && self.events > 0 {
            return Packed::PageFull;
        }
        if self.events == 0 {
            if lost > 0 {
                self.lost = Some(self.lost.unwrap_or(0) + lost);
            }
            // The stored count takes 8 bytes after the data; an event that
            // fills the page alone keeps the flag without the count.
            let reserve = if self.lost.is_some() { 8 } else { 0 };
            if size > cap {
                return Packed::TooLarge;
            }
            self.lost_flag_only = size + reserve > cap;
            self.page[..8].copy_from_slice(&ts.to_ne_bytes());
            self.last_ts = ts;
        }
        let delta = ts.saturating_sub(self.last_ts);
        let extend = if delta > TS_DELTA_MAX { 8 } else { 0 };
        let reserve = if self.lost.is_some() && !self.lost_flag_only {
            8
        } else {
            0
        };
        if self.len + extend + size + reserve > cap {
            return Packed::PageFull;
        }
        let mut hdr_delta = delta as u32;
        if extend > 0 {
            self.put_u32(TYPE_TIME_EXTEND | (((delta & TS_DELTA_MAX) as u32) << 5));
            self.put_u32((delta >> 27) as u32);
            hdr_delta = 0;
        }
        let stored = size - 4 - if payload.len() > MAX_SMALL_DATA { 4 } else { 0 };
        if payload.len() > MAX_SMALL_DATA {
            self.put_u32(hdr_delta << 5);
            self.put_u32((size - 4) as u32);
        } else {
            self.put_u32(((size - 4) / 4) as u32 | (hdr_delta << 5));
        }
        let at = PAGE_HEADER_SIZE + self.len;
        let n = payload.len().min(stored);
        self.page[at..at + n].copy_from_slice(&payload[..n]);
        self.page[at + n..at + stored].fill(0);
        self.len += stored;
        self.last_ts = ts;
        self.events += 1;
        Packed::Added
    }

    /// Writes the page header (commit, loss flags, stored count), zeroes the
    /// unused tail and returns the page image; the packer starts a new page
    /// at the next push.
    pub fn finish_page(&mut self) -> &[u8] {
        let mut commit = self.len as u64;
        let data_end = PAGE_HEADER_SIZE + self.len;
        self.page[data_end..].fill(0);
        if let Some(n) = self.lost {
            commit |= MISSED_EVENTS;
            if !self.lost_flag_only {
                commit |= MISSED_STORED;
                self.page[data_end..data_end + 8].copy_from_slice(&n.to_ne_bytes());
            }
        }
        self.page[8..16].copy_from_slice(&commit.to_ne_bytes());
        self.len = 0;
        self.events = 0;
        self.lost = None;
        self.lost_flag_only = false;
        &self.page
    }
}

/// Event types and threads seen, for the file's metadata.
#[derive(Debug, Default)]
struct Seen {
    /// Bit `id` set: event type `id` occurred.
    ids: Vec<u64>,
    /// Thread names at first sight (a later exit or eviction keeps them).
    comms: HashMap<i32, String>,
    /// Threads seen before their name was known (a session reader learns
    /// names from the tables, which it imports now and then): looked up
    /// again when the metadata is written.
    unnamed: HashSet<i32>,
    /// The pid of the previous event: runs of one thread skip the map.
    last_pid: i32,
}

impl Seen {
    fn note(&mut self, tracer: &Tracer, payload: &[u8]) {
        let Some((id, common)) = CommonFields::read(payload) else {
            return;
        };
        let (w, b) = (usize::from(id) / 64, usize::from(id) % 64);
        if self.ids.len() <= w {
            self.ids.resize(w + 1, 0);
        }
        self.ids[w] |= 1 << b;
        if common.pid == self.last_pid {
            return;
        }
        self.last_pid = common.pid;
        if common.pid != 0
            && self.comms.len() < MAX_THREADS
            && !self.comms.contains_key(&common.pid)
        {
            match tracer.comm(common.pid) {
                Some(c) => {
                    self.unnamed.remove(&common.pid);
                    self.comms.insert(common.pid, c);
                }
                None if self.unnamed.len() < MAX_THREADS => {
                    self.unnamed.insert(common.pid);
                }
                None => {}
            }
        }
    }

    /// Names the threads seen unnamed whose names are known by now.
    fn name_late(&mut self, tracer: &Tracer) {
        for pid in std::mem::take(&mut self.unnamed) {
            match tracer.comm(pid) {
                Some(c) => {
                    self.comms.insert(pid, c);
                }
                None => {
                    self.unnamed.insert(pid);
                }
            }
        }
    }

    fn ids(&self) -> impl Iterator<Item = u16> + '_ {
        self.ids.iter().enumerate().flat_map(|(w, bits)| {
            (0..64)
                .filter(move |b| bits & (1u64 << b) != 0)
                .map(move |b| (w * 64 + b) as u16)
        })
    }
}

/// One context's lent page and spool.
struct RingSpool<'t> {
    page: ReadPage<'t>,
    spool: Option<BufWriter<File>>,
    pages: u64,
}

impl RingSpool<'_> {
    /// Appends the page last read to the spool file (created on first
    /// use); returns the page's size.
    fn spool_page(&mut self) -> Result<u64, ExportError> {
        let spool = match &mut self.spool {
            Some(s) => s,
            None => {
                let f = tempfile::tempfile().map_err(io_err("creating a spool file"))?;
                self.spool.insert(BufWriter::with_capacity(SPOOL_BUFFER, f))
            }
        };
        let page = self.page.bytes();
        spool
            .write_all(page)
            .map_err(io_err("writing a spool file"))?;
        self.pages += 1;
        Ok(page.len() as u64)
    }

    fn buffered(&self) -> u64 {
        self.spool.as_ref().map_or(0, |s| s.buffer().len() as u64)
    }
}

/// Moves the pages available now from `consumer` to the spool: the page
/// source. With `full`, only complete pages; at most `max_pages` pages per
/// call so a fast writer cannot keep the drain on one ring. Returns the
/// events moved.
#[allow(clippy::too_many_arguments)]
fn pull_pages(
    ring: usize,
    consumer: &mut Consumer<'_>,
    rs: &mut RingSpool<'_>,
    tracer: &Tracer,
    seen: &mut Seen,
    stats: &mut DrainStats,
    max_pages: u64,
    full: bool,
) -> Result<u64, ExportError> {
    let mut moved = 0;
    for _ in 0..max_pages {
        let info = consumer
            .read_page(&mut rs.page, full)
            .map_err(|source| ExportError::Read { ring, source })?;
        let Some(info) = info else { break };
        // Note the event types and threads on the page, for the metadata.
        let bytes = rs.page.bytes();
        let data = &bytes[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + info.data_len];
        let mut at = 0;
        while at < data.len() {
            let Ok((record, size)) = decode(data, at) else {
                break;
            };
            if let Record::Data {
                payload_offset,
                payload_len,
                ..
            } = record
            {
                seen.note(tracer, &data[payload_offset..payload_offset + payload_len]);
            }
            at += size;
        }
        stats.lost_events += info.lost;
        stats.page_bytes += rs.spool_page()?;
        stats.pages += 1;
        moved += info.events;
    }
    Ok(moved)
}

type ProgressFn<'a> = Box<dyn FnMut(ExportProgress) + 'a>;

/// A streaming exporter attached to a live tracer; see the module docs.
///
/// ```
/// use ringtrace::export::ExportFormat;
/// use ringtrace::tracedat::{TraceDatReader, TraceDatVersion};
/// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
/// let mut drain = t.drain();
/// for i in 0..1000u32 {
///     ringtrace::trace!(tracer: &t, "i=%u", i);
///     if i % 100 == 0 {
///         drain.poll().unwrap(); // as the rings fill
///     }
/// }
/// let file = drain
///     .finish(std::io::Cursor::new(Vec::new()), ExportFormat::TraceDat(TraceDatVersion::V6))
///     .unwrap()
///     .into_inner();
/// let mut r = TraceDatReader::new(std::io::Cursor::new(file)).unwrap();
/// assert_eq!(r.records().count(), 1000);
/// ```
pub struct Drain<'t> {
    tracer: &'t Tracer,
    consumers: Vec<Consumer<'t>>,
    rings: Vec<RingSpool<'t>>,
    seen: Seen,
    stats: DrainStats,
    progress: Option<ProgressFn<'t>>,
    json: JsonOptions,
}

impl std::fmt::Debug for Drain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("rings", &self.rings.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl Tracer {
    /// A [`Drain`] of this tracer: takes every ring's reader lock (waits
    /// for other readers to finish).
    pub fn drain(&self) -> Drain<'_> {
        let n = self.max_contexts();
        let buf = self.ring_buffer();
        let mut consumers = Vec::with_capacity(n);
        let mut rings = Vec::with_capacity(n);
        for r in 0..n {
            if let (Ok(c), Ok(page)) = (buf.consumer(r), buf.read_page_buffer(r)) {
                consumers.push(c);
                rings.push(RingSpool {
                    page,
                    spool: None,
                    pages: 0,
                });
            }
        }
        Drain {
            tracer: self,
            consumers,
            rings,
            seen: Seen::default(),
            stats: DrainStats::default(),
            progress: None,
            json: JsonOptions::default(),
        }
    }
}

impl<'t> Drain<'t> {
    /// Calls `f` with the progress after each poll and during finish.
    pub fn on_progress(&mut self, f: impl FnMut(ExportProgress) + 't) {
        self.progress = Some(Box::new(f));
    }

    /// Options of the JSON output ([`ExportFormat::Json`]).
    pub fn json_options(&mut self, opts: JsonOptions) {
        self.json = opts;
    }

    /// Counters so far.
    pub fn stats(&self) -> DrainStats {
        self.stats
    }

    fn report(&mut self, written: u64, total: u64) {
        let spooled = self.stats.page_bytes;
        if let Some(p) = &mut self.progress {
            p(ExportProgress {
                spooled,
                written,
                total,
            });
        }
    }

    fn update_buffered(&mut self) {
        let b: u64 = self.rings.iter().map(RingSpool::buffered).sum();
        self.stats.buffered_bytes = b;
        self.stats.max_buffered_bytes = self.stats.max_buffered_bytes.max(b);
    }

    /// Moves what the rings hold now into pages (at most one ring's worth
    /// of pages per ring per call); returns the events moved. Call it
    /// often enough that the rings do not fill (producer/consumer mode
    /// drops, overwrite mode overwrites).
    pub fn poll(&mut self) -> Result<u64, ExportError> {
        self.poll_pages(true)
    }

    fn poll_pages(&mut self, full: bool) -> Result<u64, ExportError> {
        let max_pages = self.tracer.ring_buffer().config().max_pages() as u64;
        let mut moved = 0;
        for (i, c) in self.consumers.iter_mut().enumerate() {
            // A ring whose writer is gone (lease handed back, or taken back
            // from a dead process) gets no more events: take its partial
            // page too, so that it drains and its context can be leased
            // again (a session with many short-lived writer processes).
            let full = full && !self.tracer.inner.ring_handed_back(i);
            moved += pull_pages(
                i,
                c,
                &mut self.rings[i],
                self.tracer,
                &mut self.seen,
                &mut self.stats,
                max_pages,
                full,
            )?;
        }
        self.stats.events += moved;
        self.update_buffered();
        self.report(0, 0);
        Ok(moved)
    }

    /// Polls until every ring is empty, at most [`MAX_FINAL_POLLS`] times
    /// (each poll can take a whole ring), so writers that keep writing
    /// cannot hold it forever: stop them first for a complete export.
    pub fn poll_all(&mut self) -> Result<u64, ExportError> {
        let mut total = 0;
        for _ in 0..MAX_FINAL_POLLS {
            let n = self.poll_pages(false)?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    /// The file metadata for what was drained.
    fn meta(&self, version: TraceDatVersion) -> TraceDatMeta {
        let t = self.tracer;
        let clock = t.clock();
        let mut m = TraceDatMeta::new(
            t.config().page_size as u32,
            self.rings.len() as u32,
            clock.name(),
        );
        m.version = version;
        m.tsc2nsec = clock.tsc2nsec().map(|c| Tsc2Nsec {
            mult: c.mult,
            shift: c.shift,
            offset: c.offset,
        });
        let mut systems: Vec<(String, Vec<String>)> = Vec::new();
        for id in self.seen.ids() {
            let Some(ty) = Registry::global().get(id) else {
                continue;
            };
            match systems.iter_mut().find(|(s, _)| s == ty.system) {
                Some((_, v)) => v.push(ty.format_text()),
                None => systems.push((ty.system.to_string(), vec![ty.format_text()])),
            }
        }
        m.events = systems;
        m.kallsyms = printk::kallsyms_text();
        m.printk = printk::sites()
            .map(|(id, site)| (printk::fmt_addr(id), escape(site.format())))
            .collect();
        let mut comms: Vec<(i32, String)> = self
            .seen
            .comms
            .iter()
            .map(|(p, c)| (*p, c.replace('\n', " ")))
            .collect();
        comms.sort();
        m.cmdlines = comms;
        m.trace_id = Some(trace_id());
        m.writer_version = Some(format!("ringtrace {}", env!("CARGO_PKG_VERSION")));
        m.cpu_stats = (0..self.rings.len())
            .map(|r| t.stats_text(r).unwrap_or_default())
            .collect();
        m
    }

    /// Drains what is left, then writes the export to `out` and returns it.
    pub fn finish<W: Write + Seek>(self, out: W, format: ExportFormat) -> Result<W, ExportError> {
        match format {
            ExportFormat::TraceDat(v) => self.finish_dat(out, v),
            ExportFormat::Json => self.finish_json(out),
        }
    }

    /// Drains what is left and writes `trace.dat` to `out`.
    pub fn finish_dat<W: Write + Seek>(
        mut self,
        out: W,
        version: TraceDatVersion,
    ) -> Result<W, ExportError> {
        self.poll_all()?;
        for c in &self.consumers {
            self.stats.lost_events += c.pending_losses();
        }
        // Names published after their threads' first events were drained.
        self.tracer.import_session_tables();
        self.seen.name_late(self.tracer);
        let meta = self.meta(version);
        // The rings are no longer needed: let other readers in.
        self.consumers.clear();
        let total = self.stats.page_bytes;
        let mut w = TraceDatWriter::new(out, &meta)?;
        let mut written = 0u64;
        for cpu in 0..self.rings.len() {
            let pages = self.rings[cpu].pages;
            let Some(spool) = self.rings[cpu].spool.take() else {
                continue;
            };
            let mut f = spool
                .into_inner()
                .map_err(|e| io_err("flushing a spool file")(e.into_error()))?;
            f.seek(SeekFrom::Start(0))
                .map_err(io_err("rewinding a spool file"))?;
            // In batches, for the progress callback; file to file, each
            // batch is one in-kernel copy.
            let batch_pages = (PROGRESS_STEP / u64::from(meta.page_size)).max(1);
            let mut left = pages;
            while left > 0 {
                let n = left.min(batch_pages);
                let bytes = n * u64::from(meta.page_size);
                w.copy_pages(cpu as u32, &mut f, bytes)?;
                written += bytes;
                left -= n;
                self.report(written, total);
            }
        }
        Ok(w.finish()?)
    }

    /// Drains what is left and writes Chrome JSON to `out`, by way of a
    /// temporary trace.dat read back merged by time stamp.
    pub fn finish_json<W: Write>(self, out: W) -> Result<W, ExportError> {
        let opts = self.json.clone();
        let tmp = tempfile::tempfile().map_err(io_err("creating a temporary trace.dat"))?;
        let tmp = self.finish_dat(
            BufWriter::with_capacity(SPOOL_BUFFER, tmp),
            TraceDatVersion::V6,
        )?;
        let tmp = tmp
            .into_inner()
            .map_err(|e| io_err("flushing the temporary trace.dat")(e.into_error()))?;
        let mut r = crate::tracedat::TraceDatReader::new(io::BufReader::new(tmp))?;
        let (out, _) = crate::json::tracedat_to_json(&mut r, out, &opts)?;
        Ok(out)
    }
}

/// A `printk_formats` entry escaped as the kernel escapes it.
pub(crate) fn escape(fmt: &str) -> String {
    let mut s = String::with_capacity(fmt.len());
    for c in fmt.chars() {
        match c {
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            c => s.push(c),
        }
    }
    s
}

/// A trace id: the wall clock in ns mixed with the process id.
pub(crate) fn trace_id() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    now ^ (u64::from(std::process::id()) << 48)
}

/// Exports what the rings hold now (a consuming snapshot: the events are
/// read out of the rings) to `out` in `format`; returns the output and the
/// drain's counters. Writers may keep writing meanwhile; what they write
/// after the rings were emptied once is not included.
///
/// ```
/// use ringtrace::export::{export_snapshot, ExportFormat};
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// t.marker("hello");
/// let (out, stats) = export_snapshot(&t, std::io::Cursor::new(Vec::new()), ExportFormat::Json).unwrap();
/// assert_eq!(stats.events, 1);
/// let v: serde_json::Value = serde_json::from_slice(&out.into_inner()).unwrap();
/// assert!(v["traceEvents"].as_array().unwrap().iter().any(|e| e["args"]["message"] == "hello"));
/// ```
pub fn export_snapshot<W: Write + Seek>(
    tracer: &Tracer,
    out: W,
    format: ExportFormat,
) -> Result<(W, DrainStats), ExportError> {
    let mut d = tracer.drain();
    d.poll_all()?;
    let stats = d.stats();
    let out = d.finish(out, format)?;
    Ok((out, stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tracedat::page::{parse_page, PageLayout};

    fn events(page: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let (_, ev) = parse_page(page, PageLayout::NATIVE_64).unwrap();
        ev.map(|e| {
            let e = e.unwrap();
            (e.ts, e.payload.to_vec())
        })
        .collect()
    }

    #[test]
    fn long_form_full_page_and_too_large() {
        let mut p = PagePacker::new(4096);
        let big = vec![0xabu8; 200]; // > 112 bytes: type_len 0 with a length word
        let mut n = 0u64;
        while p.push(10 + n, 0, &big) == Packed::Added {
            n += 1;
        }
        // 4080 data bytes / (8 + 200) per event = 19 events.
        assert_eq!(n, 19);
        let got = events(p.finish_page());
        assert_eq!(got.len(), 19);
        assert!(got.iter().all(|(_, d)| d == &big));
        assert_eq!(got[18].0, 28);
        assert!(p.is_empty());
        assert_eq!(p.push(1, 0, &vec![0u8; 4080]), Packed::TooLarge);
    }

    #[test]
    fn loss_starts_a_new_page_and_a_full_page_keeps_only_the_flag() {
        let mut p = PagePacker::new(4096);
        assert_eq!(p.push(5, 0, &[1; 8]), Packed::Added);
        assert_eq!(p.push(6, 4, &[2; 8]), Packed::PageFull);
        p.finish_page();
        assert_eq!(p.push(6, 4, &[2; 8]), Packed::Added);
        let (h, _) = parse_page(p.finish_page(), PageLayout::NATIVE_64).unwrap();
        assert_eq!((h.missed_events, h.lost_count), (true, Some(4)));
        // An event filling the page alone: the count has no room.
        assert_eq!(p.push(7, 9, &vec![3u8; 4072]), Packed::Added);
        let (h, ev) = parse_page(p.finish_page(), PageLayout::NATIVE_64).unwrap();
        assert_eq!((h.missed_events, h.lost_count), (true, None));
        assert_eq!(ev.count(), 1);
    }
}
