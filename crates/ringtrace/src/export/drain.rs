//! Streaming export of a live tracer to `trace.dat` (v6 or v7) or Chrome
//! JSON: a [`Drain`] consumes the rings as they fill, so a recording of any
//! length needs no more memory than a few pages per context.
//!
//! # Data flow and memory
//!
//! ```text
//!  ring i ──read_page──> lent page i ──as is──> spool i (temp file, or OUT.cpui
//!           (pull_pages)    (zero-copy swap)       next to the output: see below)
//!                                                  64 KiB write buffer
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
//! # Never losing what was consumed
//!
//! A drain consumes: a page it read is gone from the ring. With
//! [`Drain::spool_next_to`] the spools are named files next to the output
//! ([`SpoolFiles`]: `OUT.cpuN`, plus `OUT.meta` with the metadata the pages
//! need, and a placeholder in `OUT`), handed to the kernel after every
//! poll. If the drain's process dies before [`Drain::finish_spooled`],
//! [`recover`] (`ringtrace recover OUT`) writes the output from them: a
//! `kill -9` loses at most the pages of the poll it interrupted, a full
//! disk the pages whose write failed. `ringtrace record` and `extract`
//! always spool this way.
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
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ringtrace_ring::format::{decode, PageRecord};
use ringtrace_ring::format::{
    event_size, header, MAX_SMALL_DATA, MISSED_EVENTS, MISSED_STORED, PAGE_HEADER_SIZE,
    TS_DELTA_MAX, TS_SHIFT, TYPE_TIME_EXTEND,
};
use ringtrace_ring::{Consumer, ReadError, ReadPage, RingError};

use crate::event::{CommonFields, EventType, Registry};
use crate::json::{JsonError, JsonOptions, JsonStats};
use crate::printk;
use crate::tracedat::page::{parse_page, PageLayout};
use crate::tracedat::{
    TraceDatError, TraceDatMeta, TraceDatReader, TraceDatVersion, TraceDatWriter,
};
use crate::tracer::Tracer;

/// Size of each context's spool write buffer.
#[doc(hidden)]
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
    /// Writing the Perfetto protobuf failed.
    #[error(transparent)]
    Perfetto(#[from] crate::perfetto::PerfettoError),
    /// A file of a recording spooled next to its output failed.
    #[error("{what} {}: {source}", path.display())]
    File {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// An unfinished recording cannot be recovered as asked.
    #[error("{0}")]
    Recover(String),
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

fn file_err(what: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ExportError {
    let path = path.to_path_buf();
    move |source| ExportError::File { what, path, source }
}

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// `trace.dat` of this version.
    TraceDat(TraceDatVersion),
    /// Chrome trace-event JSON (Perfetto UI, chrome://tracing).
    Json,
    /// Native Perfetto protobuf (Perfetto UI, trace_processor).
    Perfetto,
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
            self.put_u32(header(TYPE_TIME_EXTEND, (delta & TS_DELTA_MAX) as u32));
            self.put_u32((delta >> TS_SHIFT) as u32);
            hdr_delta = 0;
        }
        let stored = size - 4 - if payload.len() > MAX_SMALL_DATA { 4 } else { 0 };
        if payload.len() > MAX_SMALL_DATA {
            self.put_u32(header(0, hdr_delta));
            self.put_u32((size - 4) as u32);
        } else {
            self.put_u32(header(((size - 4) / 4) as u32, hdr_delta));
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
    /// Bumped whenever the metadata gains what decoding needs (a type, a
    /// printk site, a type's format): the spooled metadata file is
    /// rewritten before the next page when it changed.
    gen: u64,
    /// Bumped when a thread name is learned: the metadata file is
    /// rewritten for names at most every [`NAMES_REWRITE`] (a program
    /// whose threads come and go would otherwise rewrite it per thread);
    /// a name not in it yet shows as `<...>` in a recovered trace.
    names: u64,
    /// Printk sites known and seen types whose format is known, at the
    /// last poll.
    known: (usize, usize),
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
        if self.ids[w] & (1 << b) == 0 {
            self.ids[w] |= 1 << b;
            self.gen += 1;
        }
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
                    self.names += 1;
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
                    self.names += 1;
                }
                None => {
                    self.unnamed.insert(pid);
                }
            }
        }
    }

    /// Notes formats learned since the last call (printk sites and event
    /// types imported from a session's tables, late thread names).
    fn refresh(&mut self, tracer: &Tracer) {
        if !self.unnamed.is_empty() {
            self.name_late(tracer);
        }
        let known = (
            printk::sites().count(),
            self.ids()
                .filter(|id| Registry::global().get(*id).is_some())
                .count(),
        );
        if known != self.known {
            self.known = known;
            self.gen += 1;
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
    /// The spool's name next to the output (`None`: an unnamed temporary
    /// file).
    path: Option<PathBuf>,
    pages: u64,
}

impl RingSpool<'_> {
    /// Appends the page last read to the spool file (created on first
    /// use: `OUT.cpuN` when spooling next to the output, else an unnamed
    /// temporary file); returns the page's size.
    fn spool_page(&mut self, ring: usize, files: Option<&SpoolFiles>) -> Result<u64, ExportError> {
        let spool = match &mut self.spool {
            Some(s) => s,
            None => {
                let f = match files {
                    Some(files) => {
                        let path = files.cpu(ring);
                        // create_new: never appends to another recording's
                        // spool (`spool_next_to` checked none was left).
                        let f = File::options()
                            .read(true)
                            .write(true)
                            .create_new(true)
                            .open(&path)
                            .map_err(file_err("creating the spool file", &path))?;
                        self.path = Some(path);
                        f
                    }
                    None => tempfile::tempfile().map_err(io_err("creating a spool file"))?,
                };
                self.spool.insert(BufWriter::with_capacity(SPOOL_BUFFER, f))
            }
        };
        let page = self.page.bytes();
        let written = spool.write_all(page);
        if let Err(e) = written {
            return Err(match &self.path {
                Some(p) => file_err("writing", p)(e),
                None => io_err("writing a spool file")(e),
            });
        }
        self.pages += 1;
        Ok(page.len() as u64)
    }

    /// Hands the buffered pages to the kernel (named spools only), so that
    /// a `kill -9` of the drain's process loses none of them.
    fn flush_named(&mut self) -> Result<(), ExportError> {
        if let (Some(s), Some(p)) = (&mut self.spool, &self.path) {
            s.flush().map_err(file_err("writing", p))?;
        }
        Ok(())
    }

    fn buffered(&self) -> u64 {
        self.spool.as_ref().map_or(0, |s| s.buffer().len() as u64)
    }
}

/// Where a drain's pages go and what describes them: the spool files next
/// to the output (when spooling there) and the metadata file's freshness.
struct SpoolTarget<'a> {
    tracer: &'a Tracer,
    files: Option<&'a SpoolFiles>,
    /// When the metadata file was last written, and `Seen::gen` and
    /// `Seen::names` then.
    meta_gen: &'a mut Option<MetaWritten>,
    cpus: usize,
}

/// When the metadata file was last written and what it held.
#[derive(Debug, Clone, Copy)]
struct MetaWritten {
    at: Instant,
    gen: u64,
    names: u64,
}

impl MetaWritten {
    fn now(seen: &Seen) -> Option<MetaWritten> {
        Some(MetaWritten {
            at: Instant::now(),
            gen: seen.gen,
            names: seen.names,
        })
    }
}

/// Least time between two rewrites of the spooled metadata file for new
/// thread names alone (formats are written at once).
const NAMES_REWRITE: Duration = Duration::from_secs(1);

impl SpoolTarget<'_> {
    /// Rewrites the metadata file when `seen` gained something since it
    /// was last written: before the page that needs it is spooled, so
    /// that every spooled page can be decoded after a `kill -9`.
    fn fresh_meta(&mut self, seen: &Seen) -> Result<(), ExportError> {
        let Some(files) = self.files else {
            return Ok(());
        };
        if let Some(w) = self.meta_gen {
            let names_due = w.names != seen.names && w.at.elapsed() >= NAMES_REWRITE;
            if w.gen == seen.gen && !names_due {
                return Ok(());
            }
        }
        let meta = meta_for(self.tracer, seen, self.cpus, TraceDatVersion::V6);
        files.write_meta(&meta)?;
        *self.meta_gen = MetaWritten::now(seen);
        Ok(())
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
    target: &mut SpoolTarget<'_>,
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
            if let PageRecord::Data {
                payload_offset,
                payload_len,
                ..
            } = record
            {
                seen.note(
                    target.tracer,
                    &data[payload_offset..payload_offset + payload_len],
                );
            }
            at += size;
        }
        target.fresh_meta(seen)?;
        stats.lost_events += info.lost;
        stats.page_bytes += rs.spool_page(ring, target.files)?;
        stats.pages += 1;
        moved += info.events;
    }
    if moved > 0 {
        rs.flush_named()?;
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
    /// Spooling next to the output (`spool_next_to`), else in unnamed
    /// temporary files.
    files: Option<SpoolFiles>,
    /// When the metadata file was last written, and what it held.
    meta_gen: Option<MetaWritten>,
    /// Rings the drain could not take (another live reader holds them):
    /// their events are not in the output. Said, never skipped silently.
    unread: Vec<(usize, ringtrace_ring::RingError)>,
}

impl std::fmt::Debug for Drain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Drain")
            .field("rings", &self.rings.len())
            .field("stats", &self.stats)
            .finish()
    }
}

impl<'t> Drain<'t> {
    /// A drain of every ring of `tracer` ([`Tracer::drain`]).
    pub(crate) fn new(tracer: &'t Tracer) -> Drain<'t> {
        let n = tracer.max_contexts();
        let buf = tracer.ring_buffer();
        let mut consumers = Vec::with_capacity(n);
        let mut rings = Vec::with_capacity(n);
        let mut unread = Vec::new();
        for r in 0..n {
            let taken = buf
                .consumer(r)
                .and_then(|c| Ok((c, buf.read_page_buffer(r)?)));
            match taken {
                Ok((c, page)) => {
                    consumers.push(c);
                    rings.push(RingSpool {
                        page,
                        spool: None,
                        path: None,
                        pages: 0,
                    });
                }
                Err(e) => unread.push((r, e)),
            }
        }
        Drain {
            tracer,
            consumers,
            rings,
            seen: Seen::default(),
            stats: DrainStats::default(),
            progress: None,
            json: JsonOptions::default(),
            files: None,
            meta_gen: None,
            unread,
        }
    }
}

impl<'t> Drain<'t> {
    /// The rings this drain could not take, and why (another live reader
    /// holds them): their events are missing from the output.
    pub fn unread_rings(&self) -> &[(usize, ringtrace_ring::RingError)] {
        &self.unread
    }

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
        let max_pages = self.tracer.ring_buffer().config().max_ring_pages() as u64;
        if self.files.is_some() {
            self.seen.refresh(self.tracer);
        }
        let mut target = SpoolTarget {
            tracer: self.tracer,
            files: self.files.as_ref(),
            meta_gen: &mut self.meta_gen,
            cpus: self.rings.len(),
        };
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
                &mut target,
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

    /// Spools the pages next to `out` instead of in unnamed temporary
    /// files, so that what was consumed is on disk as soon as it is
    /// consumed and survives a `kill -9` of this process (see
    /// [`SpoolFiles`]): checks that no unfinished recording to `out` is
    /// left (it would be mixed in), writes the placeholder into `out` (so a
    /// bad directory fails now, not at the end) and the first metadata
    /// file. Call it before the first poll; finish with
    /// [`finish_spooled`](Self::finish_spooled).
    pub fn spool_next_to(&mut self, out: &Path) -> Result<(), ExportError> {
        if self.stats.pages > 0 || self.files.is_some() {
            return Err(ExportError::Recover(format!(
                "spooling next to {}: the drain has spooled pages already",
                out.display()
            )));
        }
        let files = SpoolFiles::new(out);
        files.prepare()?;
        self.seen.refresh(self.tracer);
        let meta = meta_for(
            self.tracer,
            &self.seen,
            self.rings.len(),
            TraceDatVersion::V6,
        );
        if let Err(e) = files.write_meta(&meta) {
            let _ = std::fs::remove_file(out);
            return Err(e);
        }
        self.meta_gen = MetaWritten::now(&self.seen);
        self.files = Some(files);
        Ok(())
    }

    /// The spool files next to the output, when [`spool_next_to`](Self::spool_next_to)
    /// was called.
    pub fn spool_files(&self) -> Option<&SpoolFiles> {
        self.files.as_ref()
    }

    /// The last drain, then the stats and names only known at the end;
    /// with named spools, the final metadata file and every page handed
    /// to the kernel. Lets other readers in.
    fn settle(&mut self) -> Result<(), ExportError> {
        self.poll_all()?;
        for c in &self.consumers {
            self.stats.lost_events += c.pending_losses();
        }
        // Names published after their threads' first events were drained.
        self.tracer.import_session_tables();
        self.seen.name_late(self.tracer);
        // The rings are no longer needed: let other readers in.
        self.consumers.clear();
        if let Some(files) = &self.files {
            let meta = meta_for(
                self.tracer,
                &self.seen,
                self.rings.len(),
                TraceDatVersion::V6,
            );
            files.write_meta(&meta)?;
            for r in &mut self.rings {
                r.flush_named()?;
            }
        }
        Ok(())
    }

    /// Drains what is left, then writes the export to `out` and returns it.
    /// With named spools ([`spool_next_to`](Self::spool_next_to)) they are
    /// deleted once `out` is written; the placeholder in the output path
    /// is left to the caller ([`finish_spooled`](Self::finish_spooled)
    /// replaces it).
    pub fn finish<W: Write + Seek>(self, out: W, format: ExportFormat) -> Result<W, ExportError> {
        match format {
            ExportFormat::TraceDat(v) => self.finish_dat(out, v),
            ExportFormat::Json => self.finish_json(out),
            ExportFormat::Perfetto => self.finish_perfetto(out),
        }
    }

    /// Drains what is left and writes `trace.dat` to `out`.
    pub fn finish_dat<W: Write + Seek>(
        mut self,
        out: W,
        version: TraceDatVersion,
    ) -> Result<W, ExportError> {
        self.settle()?;
        if let Some(files) = self.files.take() {
            drop(self);
            let (w, _) = assemble(&files, out, version)?;
            files.remove_spools();
            return Ok(w);
        }
        // The file lists the contexts used (up to the last one with pages),
        // not every context the tracer could lease: CPU N is context N.
        let cpus = self
            .rings
            .iter()
            .rposition(|r| r.pages > 0)
            .map_or(0, |i| i + 1);
        let meta = meta_for(self.tracer, &self.seen, cpus, version);
        let total = self.stats.page_bytes;
        let mut w = TraceDatWriter::new(out, &meta)?;
        let mut written = 0u64;
        for cpu in 0..cpus {
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
    /// temporary trace.dat read back merged by time stamp (next to the
    /// output with named spools, else in the temporary directory). Records
    /// the JSON cannot decode are skipped and counted:
    /// [`finish_json_counted`](Self::finish_json_counted) returns the count.
    pub fn finish_json<W: Write>(self, out: W) -> Result<W, ExportError> {
        Ok(self.finish_json_counted(out)?.0)
    }

    /// [`finish_json`](Self::finish_json), returning the export's counters
    /// too: records that could not be decoded (skipped, not in the output)
    /// are in [`JsonStats::undecodable`], the first named in
    /// [`JsonStats::first_skipped`].
    pub fn finish_json_counted<W: Write>(self, out: W) -> Result<(W, JsonStats), ExportError> {
        let opts = self.json.clone();
        let tmp = temp_dat(self.files.as_ref().map(|f| f.dir()).as_deref())?;
        let tmp = self.finish_dat(tmp, TraceDatVersion::V6)?;
        json_from_temp_dat(tmp, out, &opts)
    }

    /// Drains what is left and writes native Perfetto protobuf to `out`,
    /// by way of a temporary trace.dat as [`finish_json`](Self::finish_json)
    /// (the process named by the JSON options). Records it cannot decode
    /// are skipped and counted, as the JSON's.
    pub fn finish_perfetto<W: Write>(self, out: W) -> Result<W, ExportError> {
        let opts = crate::perfetto::PerfettoOptions::from(&self.json);
        let tmp = temp_dat(self.files.as_ref().map(|f| f.dir()).as_deref())?;
        let tmp = self.finish_dat(tmp, TraceDatVersion::V6)?;
        Ok(perfetto_from_temp_dat(tmp, out, &opts)?.0)
    }

    /// Drains what is left and writes the output named by
    /// [`spool_next_to`](Self::spool_next_to) in `format`, as
    /// [`recover`] does: the file is written under a temporary name and
    /// renamed over the placeholder, then the spools are deleted. On an
    /// error the spools stay, and `ringtrace recover OUT` (or [`recover`])
    /// writes the output later.
    pub fn finish_spooled(mut self, format: ExportFormat) -> Result<Recovered, ExportError> {
        let Some(out) = self.files.as_ref().map(|f| f.output().to_path_buf()) else {
            return Err(ExportError::Recover(
                "finish_spooled: the drain does not spool next to an output".into(),
            ));
        };
        self.settle()?;
        let opts = self.json.clone();
        drop(self);
        recover_with(&out, format, &opts)
    }
}

/// The file metadata for what `seen` noted, with `cpus` CPUs.
fn meta_for(tracer: &Tracer, seen: &Seen, cpus: usize, version: TraceDatVersion) -> TraceDatMeta {
    let types = seen.ids().filter_map(|id| Registry::global().get(id));
    let comms = seen.comms.iter().map(|(p, c)| (*p, c.as_str()));
    tracer_meta(tracer, cpus, version, types, comms)
}

/// A tracer's trace.dat metadata: the formats of the event types `types`
/// grouped by system, the printk formats, the thread names `comms` (sorted;
/// a newline in a name would end its cmdlines line, so it becomes a space),
/// the clock and its TSC conversion, and the stats of the first `cpus`
/// rings now. The one builder for drains and views.
pub(crate) fn tracer_meta<'c>(
    tracer: &Tracer,
    cpus: usize,
    version: TraceDatVersion,
    types: impl Iterator<Item = &'static EventType>,
    comms: impl Iterator<Item = (i32, &'c str)>,
) -> TraceDatMeta {
    let clock = tracer.clock();
    let mut m = TraceDatMeta::new(tracer.config().page_size as u32, cpus as u32, clock.name());
    m.version = version;
    m.tsc2nsec = clock.tsc2nsec();
    m.wall_start = tracer.wall_start();
    let mut systems: Vec<(String, Vec<String>)> = Vec::new();
    let mut stacks = false;
    for ty in types {
        stacks |= ty.id == crate::stack::USER_STACK_ID;
        match systems.iter_mut().find(|(s, _)| s == ty.system) {
            Some((_, v)) => v.push(ty.format_text()),
            None => systems.push((ty.system.to_string(), vec![ty.format_text()])),
        }
    }
    m.events = systems;
    m.kallsyms = printk::kallsyms_text();
    m.kallsyms
        .push_str(&super::symbols::for_tracer(tracer, stacks));
    m.printk = printk::sites()
        .map(|(id, site)| (printk::fmt_addr(id), escape(site.format())))
        .collect();
    let mut comms: Vec<(i32, String)> = comms.map(|(p, c)| (p, c.replace('\n', " "))).collect();
    comms.sort();
    m.cmdlines = comms;
    m.processes = processes_of(tracer, &m.cmdlines);
    m.trace_id = Some(trace_id());
    m.writer_version = Some(format!("ringtrace {}", env!("CARGO_PKG_VERSION")));
    m.cpu_stats = (0..cpus)
        .map(|r| tracer.stats_text(r).unwrap_or_default())
        .collect();
    m
}

/// A temporary trace.dat for a JSON export, in `dir` (beside the spools)
/// or the system's temporary directory; deleted when closed.
fn temp_dat(dir: Option<&Path>) -> Result<BufWriter<File>, ExportError> {
    let f = match dir {
        Some(dir) => tempfile::tempfile_in(dir)
            .map_err(file_err("creating a temporary trace.dat in", dir))?,
        None => tempfile::tempfile().map_err(io_err("creating a temporary trace.dat"))?,
    };
    Ok(BufWriter::with_capacity(SPOOL_BUFFER, f))
}

/// The process (pid and name) of each thread of `comms` whose process the
/// tracer's name table holds, for the trace.dat's processes option.
fn processes_of(tracer: &Tracer, comms: &[(i32, String)]) -> Vec<(i32, u32, String)> {
    let Ok(c) = tracer.inner.cmdlines().lock() else {
        return Vec::new();
    };
    comms
        .iter()
        .filter_map(|(tid, _)| c.process_of(*tid).map(|(p, n)| (*tid, p, n.to_string())))
        .collect()
}

/// Flushes the temporary trace.dat `tmp` and converts it to JSON in `out`.
fn json_from_temp_dat<W: Write>(
    tmp: BufWriter<File>,
    out: W,
    opts: &JsonOptions,
) -> Result<(W, JsonStats), ExportError> {
    let tmp = tmp
        .into_inner()
        .map_err(|e| io_err("flushing the temporary trace.dat")(e.into_error()))?;
    json_from_dat(tmp, out, opts)
}

/// Reads the trace.dat in `dat` back merged by time stamp and writes it to
/// `out` as Chrome JSON; records it cannot decode are skipped and counted
/// in the returned stats.
fn json_from_dat<W: Write>(
    mut dat: File,
    out: W,
    opts: &JsonOptions,
) -> Result<(W, JsonStats), ExportError> {
    dat.seek(SeekFrom::Start(0))
        .map_err(io_err("rewinding the temporary trace.dat"))?;
    let mut r = TraceDatReader::new(io::BufReader::new(dat))?;
    Ok(crate::json::tracedat_to_json(&mut r, out, opts)?)
}

/// Flushes the temporary trace.dat `tmp` and converts it to Perfetto
/// protobuf in `out` (as [`json_from_temp_dat`] does to JSON).
pub(crate) fn perfetto_from_temp_dat<W: Write>(
    tmp: BufWriter<File>,
    out: W,
    opts: &crate::perfetto::PerfettoOptions,
) -> Result<(W, crate::perfetto::PerfettoStats), ExportError> {
    let mut dat = tmp
        .into_inner()
        .map_err(|e| io_err("flushing the temporary trace.dat")(e.into_error()))?;
    dat.seek(SeekFrom::Start(0))
        .map_err(io_err("rewinding the temporary trace.dat"))?;
    let mut r = TraceDatReader::new(io::BufReader::new(dat))?;
    Ok(crate::perfetto::tracedat_to_perfetto(&mut r, out, opts)?)
}

/// First line of the placeholder an output holds while its recording is
/// spooled next to it (see [`SpoolFiles`]).
pub const UNFINISHED_MAGIC: &[u8] = b"ringtrace: unfinished recording\n";

/// Whether `path` holds the placeholder of an unfinished recording: the
/// recorder was stopped before it wrote the file (`ringtrace recover PATH`
/// writes it from the spool files).
#[doc(hidden)]
pub fn is_unfinished(path: &Path) -> bool {
    let mut head = [0u8; UNFINISHED_MAGIC.len()];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| head == UNFINISHED_MAGIC)
}

/// The files of a recording spooled next to its output `OUT`
/// ([`Drain::spool_next_to`]), in the output's directory so that they
/// live on the disk the user chose:
///
/// ```text
/// OUT         the placeholder (UNFINISHED_MAGIC, then how to recover) while
///             recording; the finished trace.dat or JSON at the end
/// OUT.meta    a trace.dat without pages holding the metadata (event formats,
///             printk formats, thread names, clock, CPUs); rewritten under a
///             temporary name and renamed, before any page whose formats it
///             lacks (new thread names: at most every second)
/// OUT.cpuN    context N's pages, appended as they are consumed and handed
///             to the kernel after every poll
/// ```
///
/// A `kill -9` of the recorder therefore loses only the pages of the poll
/// it interrupted; a full disk loses the page being written. [`recover`]
/// (`ringtrace recover OUT`) writes `OUT` from the others and deletes them.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolFiles {
    out: PathBuf,
}

impl SpoolFiles {
    /// The spool files of output `out`.
    pub fn new(out: &Path) -> SpoolFiles {
        SpoolFiles {
            out: out.to_path_buf(),
        }
    }

    /// The output.
    pub fn output(&self) -> &Path {
        &self.out
    }

    fn with_suffix(&self, suffix: &str) -> PathBuf {
        let mut s = self.out.as_os_str().to_os_string();
        s.push(suffix);
        PathBuf::from(s)
    }

    /// The metadata file, `OUT.meta`.
    pub fn meta(&self) -> PathBuf {
        self.with_suffix(".meta")
    }

    /// Context `n`'s pages, `OUT.cpuN`.
    pub fn cpu(&self, n: usize) -> PathBuf {
        self.with_suffix(&format!(".cpu{n}"))
    }

    /// Where the output is written before it is renamed over `OUT`.
    fn part(&self) -> PathBuf {
        self.with_suffix(".part")
    }

    /// The output's directory.
    pub fn dir(&self) -> PathBuf {
        match self.out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// The page spools present, `(context, path)` by context; an
    /// unreadable directory lists none.
    pub fn cpus_present(&self) -> Vec<(u32, PathBuf)> {
        let Some(name) = self.out.file_name() else {
            return Vec::new();
        };
        let mut prefix = name.to_os_string();
        prefix.push(".cpu");
        let prefix = prefix.to_string_lossy().into_owned();
        let Ok(rd) = std::fs::read_dir(self.dir()) else {
            return Vec::new();
        };
        let mut found: Vec<(u32, PathBuf)> = rd
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let digits = n.strip_prefix(&prefix)?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some((digits.parse().ok()?, e.path()))
            })
            .collect();
        found.sort();
        found
    }

    /// The metadata file and page spools present.
    pub fn leftovers(&self) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if self.meta().exists() {
            v.push(self.meta());
        }
        v.extend(self.cpus_present().into_iter().map(|(_, p)| p));
        v
    }

    /// Makes the output before anything is recorded: refuses when an
    /// unfinished recording to it is left (it would be mixed in, or lost),
    /// then writes the placeholder, so that a bad directory fails now.
    pub fn prepare(&self) -> Result<(), ExportError> {
        if let Some(left) = self.leftovers().first() {
            return Err(ExportError::Recover(format!(
                "{} is left from an unfinished recording to {}: recover it first \
                 (`ringtrace recover {}`) or delete it",
                left.display(),
                self.out.display(),
                self.out.display()
            )));
        }
        self.write_placeholder()
    }

    fn write_placeholder(&self) -> Result<(), ExportError> {
        let mut f = File::create(&self.out).map_err(file_err("creating", &self.out))?;
        let name = self.out.display();
        let text = format!(
            "The trace is spooled in {name}.meta and {name}.cpu*; if ringtrace record was \
             stopped before it wrote this file, write it with:\n  ringtrace recover {name}\n"
        );
        f.write_all(UNFINISHED_MAGIC)
            .and_then(|()| f.write_all(text.as_bytes()))
            .map_err(file_err("writing", &self.out))
    }

    /// Writes `meta` (a trace.dat without pages) under a temporary name and
    /// renames it over `OUT.meta`: a reader sees the old or the new one,
    /// whole.
    fn write_meta(&self, meta: &TraceDatMeta) -> Result<(), ExportError> {
        let path = self.meta();
        let tmp = self.with_suffix(".meta.new");
        let f = File::create(&tmp).map_err(file_err("creating", &tmp))?;
        let w = TraceDatWriter::new(BufWriter::new(f), meta)?.finish()?;
        w.into_inner()
            .map_err(|e| file_err("writing", &tmp)(e.into_error()))?;
        std::fs::rename(&tmp, &path).map_err(file_err("renaming the metadata file to", &path))
    }

    /// Deletes the page spools, then the metadata file (whose absence says
    /// there is nothing to recover).
    fn remove_spools(&self) {
        for (_, p) in self.cpus_present() {
            let _ = std::fs::remove_file(p);
        }
        let _ = std::fs::remove_file(self.with_suffix(".meta.new"));
        let _ = std::fs::remove_file(self.meta());
    }
}

/// What [`recover`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovered {
    /// Pages written.
    pub pages: u64,
    /// Events on them.
    pub events: u64,
    /// Losses the pages report (events the rings lost before them).
    pub lost_events: u64,
    /// Pages skipped because their header is damaged (a write cut short).
    pub bad_pages: u64,
    /// Bytes at the end of spools that are not a whole page (a write cut
    /// short), skipped.
    pub partial_bytes: u64,
    /// Records the JSON output could not decode (JSON only), skipped: not
    /// in the output, counted here (as `trace-cmd report` shows them only
    /// as `[UNKNOWN EVENT]`); the trace.dat output keeps them as they are.
    pub undecodable: u64,
}

/// Writes the output of an unfinished recording (`ringtrace record` killed,
/// or stopped by a full disk) from its spool files ([`SpoolFiles`]), in
/// `format`, and deletes them. Refuses when `out` holds a finished trace.
pub fn recover(out: &Path, format: ExportFormat) -> Result<Recovered, ExportError> {
    recover_with(out, format, &JsonOptions::default())
}

fn recover_with(
    out: &Path,
    format: ExportFormat,
    opts: &JsonOptions,
) -> Result<Recovered, ExportError> {
    let files = SpoolFiles::new(out);
    let meta = files.meta();
    if !meta.exists() {
        return Err(ExportError::Recover(format!(
            "{}: no unfinished recording to recover ({} is missing)",
            out.display(),
            meta.display()
        )));
    }
    if out.exists() && !is_unfinished(out) {
        return Err(ExportError::Recover(format!(
            "{} is a finished trace already: {} and {}.cpu* are left over from it; delete them",
            out.display(),
            meta.display(),
            out.display()
        )));
    }
    let part = files.part();
    let made = (|| {
        let f = File::create(&part).map_err(file_err("creating", &part))?;
        let rec = match format {
            ExportFormat::TraceDat(v) => {
                let (w, rec) = assemble(&files, BufWriter::with_capacity(SPOOL_BUFFER, f), v)?;
                w.into_inner()
                    .map_err(|e| file_err("writing", &part)(e.into_error()))?;
                rec
            }
            ExportFormat::Json => {
                let tmp = temp_dat(Some(&files.dir()))?;
                let (tmp, rec) = assemble(&files, tmp, TraceDatVersion::V6)?;
                let (w, stats) =
                    json_from_temp_dat(tmp, BufWriter::with_capacity(SPOOL_BUFFER, f), opts)?;
                w.into_inner()
                    .map_err(|e| file_err("writing", &part)(e.into_error()))?;
                Recovered {
                    undecodable: stats.undecodable,
                    ..rec
                }
            }
            ExportFormat::Perfetto => {
                let tmp = temp_dat(Some(&files.dir()))?;
                let (tmp, rec) = assemble(&files, tmp, TraceDatVersion::V6)?;
                let f = BufWriter::with_capacity(SPOOL_BUFFER, f);
                let (w, stats) = perfetto_from_temp_dat(tmp, f, &opts.into())?;
                w.into_inner()
                    .map_err(|e| file_err("writing", &part)(e.into_error()))?;
                Recovered {
                    undecodable: stats.undecodable,
                    ..rec
                }
            }
        };
        std::fs::rename(&part, out).map_err(file_err("renaming the finished file to", out))?;
        Ok(rec)
    })();
    match made {
        Ok(rec) => {
            files.remove_spools();
            Ok(rec)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

/// Writes a trace.dat from the spool files to `out`: the metadata file's
/// metadata, then each context's whole pages, skipping damaged ones.
fn assemble<W: Write + Seek>(
    files: &SpoolFiles,
    out: W,
    version: TraceDatVersion,
) -> Result<(W, Recovered), ExportError> {
    let meta_path = files.meta();
    let f = File::open(&meta_path).map_err(file_err("opening", &meta_path))?;
    let r = TraceDatReader::new(io::BufReader::new(f))
        .map_err(|e| ExportError::Recover(format!("metadata file {}: {e}", meta_path.display())))?;
    let info = r.info();
    let spools = files.cpus_present();
    // The contexts used (up to the last with a spool; CPU N is context N),
    // not every context the metadata lists.
    let cpus = spools.iter().map(|(c, _)| c + 1).max().unwrap_or(0);
    let mut meta = crate::tracedat::convert::meta_of(info, cpus);
    meta.cpu_stats = info.cpu_stats.iter().take(cpus as usize).cloned().collect();
    meta.version = version;
    let ps = meta.page_size as usize;
    let mut w = TraceDatWriter::new(out, &meta)?;
    let mut rec = Recovered::default();
    let mut page = vec![0u8; ps];
    for (cpu, path) in &spools {
        let f = File::open(path).map_err(file_err("opening", path))?;
        let len = f.metadata().map_err(file_err("reading", path))?.len();
        rec.partial_bytes += len % ps as u64;
        let mut rd = io::BufReader::with_capacity(SPOOL_BUFFER, f);
        for _ in 0..len / ps as u64 {
            rd.read_exact(&mut page)
                .map_err(file_err("reading", path))?;
            let Ok((h, events)) = parse_page(&page, PageLayout::NATIVE_64) else {
                rec.bad_pages += 1;
                continue;
            };
            rec.lost_events += h.lost_count.unwrap_or(0);
            rec.events += events.filter(Result::is_ok).count() as u64;
            w.push_page(*cpu, &page)?;
            rec.pages += 1;
        }
    }
    Ok((w.finish()?, rec))
}

pub(crate) use crate::printk::escape;

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
