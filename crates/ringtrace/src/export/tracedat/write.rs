//! Streaming `trace.dat` writer (versions 6 and 7; v7 optionally
//! compressed with zstd or zlib, as trace-cmd compresses it: see
//! [`compress`]; either byte order, 4- or 8-byte longs).
//!
//! # Bounded memory
//!
//! The writer needs `Write + Seek`. Metadata is written first; then the
//! pages, CPU after CPU, go straight to the output, one page at a time; the
//! only thing not known up front — each CPU block's offset and size — is
//! back-patched by [`TraceDatWriter::finish`]:
//!
//! ```text
//! v6: header | header_page/event | formats | kallsyms | printk | cmdlines
//!     | u32 cpus | "options  " options u16 0 | "flyrecord" | CPU table (patched)
//!     | trace clock | pad | CPU0 pages | pad | CPU1 pages ...
//!     (the pad after the clock is there without pages too)
//! v7: header (options offset patched) | STRINGS | HEADER_INFO | FTRACE_EVENTS
//!     | EVENT_FORMATS | KALLSYMS | PRINTK | CMDLINES
//!     | BUFFER section header (size patched) | pad | CPU0 pages | pad | CPU1 ...
//!     | OPTIONS section (written last: it holds the BUFFER option's CPU table)
//! ```
//!
//! Memory is O(number of CPUs + metadata), whatever the number of pages
//! (compressed: plus one chunk of pages being compressed).
//! The price: pages must be pushed grouped by CPU in ascending CPU order
//! (a CPU's block is contiguous in the file). Every CPU block starts at a
//! multiple of `max(page_size, 4096)` (trace-dat-format.md §5.2).

use std::io::{Seek, SeekFrom, Write};

use super::compress::{self, Compression};
use super::error::TraceDatError;
use super::format::parse_format;
use super::layout::{self, opt, Enc};
use super::page::{parse_page, PageLayout};

/// Which `trace.dat` version to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TraceDatVersion {
    /// Version 6: one linear stream; the recommended default.
    #[default]
    V6,
    /// Version 7: sections and an options list (uncompressed).
    V7,
}

/// TSC-to-nanoseconds conversion (`TRACECMD_OPTION_TSC2NSEC`, id 14): the
/// clock's own [`crate::clock::Tsc2Nsec`], re-exported under the file's name.
pub use crate::clock::Tsc2Nsec;

/// File-level metadata for [`TraceDatWriter::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceDatMeta {
    /// File version to write.
    pub version: TraceDatVersion,
    /// Trace page size in bytes: a power of two, 64 ..= 1 MiB. Every page
    /// pushed must have exactly this length.
    pub page_size: u32,
    /// Number of CPUs (contexts) in the CPU table.
    pub cpus: u32,
    /// Trace clock name, e.g. `mono` or `local` (decides how trace-cmd
    /// prints stamps: see trace-dat-format.md §7).
    pub clock: String,
    /// Optional TSC-to-ns conversion (written in v6 and v7: trace-cmd 3.1.6
    /// parses options the same way in both).
    pub tsc2nsec: Option<Tsc2Nsec>,
    /// Optional trace id (`TRACEID` option).
    pub trace_id: Option<u64>,
    /// Optional `uname` text (`report --uname`).
    pub uname: Option<String>,
    /// Optional writer version text (`report --version`).
    pub writer_version: Option<String>,
    /// Event format texts grouped by system. The system named `ftrace` goes
    /// to the "ftrace events" section, the others to "event formats".
    pub events: Vec<(String, Vec<String>)>,
    /// Optional `/proc/kallsyms`-style text.
    pub kallsyms: String,
    /// printk formats `(address, format)`; the format is written between
    /// double quotes as given (escape it as the kernel does).
    pub printk: Vec<(u64, String)>,
    /// Thread names `(pid, comm)`.
    pub cmdlines: Vec<(i32, String)>,
    /// Per-CPU stats text (`CPUSTAT` option, one per CPU, in CPU order);
    /// empty for none.
    pub cpu_stats: Vec<String>,
    /// Wall-clock time of the trace's start (a ringtrace option).
    pub wall_start: Option<crate::clock::WallStart>,
    /// Compress the file (v7 only): its metadata sections, and its pages
    /// in chunks of 10.
    pub compression: Option<Compression>,
    /// Byte order of the file and of the pages pushed: this machine's by
    /// default (a conversion keeps its input's).
    pub big_endian: bool,
    /// Size of a `long` in the pages pushed (their `commit` word): 8 by
    /// default, 4 for pages of a 32-bit kernel.
    pub long_size: usize,
    /// The process of each thread `(tid, pid, process name)` (a ringtrace
    /// option); empty for none.
    pub processes: Vec<(i32, u32, String)>,
}

impl TraceDatMeta {
    /// Metadata with the required fields and everything optional empty.
    pub fn new(page_size: u32, cpus: u32, clock: impl Into<String>) -> Self {
        TraceDatMeta {
            version: TraceDatVersion::V6,
            page_size,
            cpus,
            clock: clock.into(),
            tsc2nsec: None,
            trace_id: None,
            uname: None,
            writer_version: None,
            events: Vec::new(),
            kallsyms: String::new(),
            printk: Vec::new(),
            cmdlines: Vec::new(),
            cpu_stats: Vec::new(),
            wall_start: None,
            compression: None,
            big_endian: cfg!(target_endian = "big"),
            long_size: 8,
            processes: Vec::new(),
        }
    }
}

/// Largest page size the writer accepts (the kernel's largest sub-buffer).
#[doc(hidden)]
pub const MAX_PAGE_SIZE: u32 = 1 << 20;
/// Largest CPU count the writer accepts.
#[doc(hidden)]
pub const MAX_CPUS: u32 = 4096;

/// v7 section description strings, in STRINGS-section order.
const V7_STRINGS: [&str; 8] = [
    "headers",
    "ftrace events",
    "events format",
    "kallsyms",
    "printk",
    "command lines",
    "options",
    "flyrecord",
];

fn string_offset(name: &str) -> u32 {
    let mut off = 0;
    for s in V7_STRINGS {
        if s == name {
            return off;
        }
        off += s.len() as u32 + 1;
    }
    0
}

#[derive(Debug, Clone, Copy, Default)]
struct CpuBlock {
    offset: u64,
    size: u64,
}

/// Streaming writer; see the module docs for the layout and the ordering
/// contract. Dropping it without [`finish`](Self::finish) leaves an
/// incomplete file.
#[derive(Debug)]
pub struct TraceDatWriter<W: Write + Seek> {
    out: W,
    enc: Enc,
    version: TraceDatVersion,
    page_size: u32,
    align: u64,
    clock: String,
    /// Bytes written so far (= current position, relative to `base`).
    pos: u64,
    /// Stream position of the file's first byte.
    base: u64,
    blocks: Vec<CpuBlock>,
    /// CPU whose block is open, if any; pages for lower CPUs are refused.
    current: Option<u32>,
    /// v6: position of the CPU table. v7: position of the BUFFER section header.
    table_pos: u64,
    /// v7: position of the u64 "first options section" in the file header.
    options_ptr_pos: u64,
    /// v7: positions of the metadata sections, by option id.
    sections: Vec<(u16, u64)>,
    /// Options other than BUFFER / DONE, encoded (id, data).
    options: Vec<(u16, Vec<u8>)>,
    /// Size of a `long` in the pages (4 or 8).
    long_size: usize,
    /// The compression state of a compressed file.
    z: Option<ZState>,
}

/// A compressed file's state: the codec, and the open CPU block's chunk
/// being filled.
#[derive(Debug)]
struct ZState {
    codec: Compression,
    /// Pages of the open block not yet compressed (fewer than a chunk).
    pending: Vec<u8>,
    /// Chunks written in the open block.
    chunks: u32,
    /// Position of the open block's u32 chunk count, if a block is open.
    count_pos: Option<u64>,
}

impl<W: Write + Seek> TraceDatWriter<W> {
    /// Validates `meta` and writes everything before the CPU data.
    pub fn new(mut out: W, meta: &TraceDatMeta) -> Result<Self, TraceDatError> {
        if !meta.page_size.is_power_of_two() || !(64..=MAX_PAGE_SIZE).contains(&meta.page_size) {
            return Err(TraceDatError::Usage(format!(
                "page size {} is not a power of two in 64..={MAX_PAGE_SIZE}",
                meta.page_size
            )));
        }
        if meta.cpus > MAX_CPUS {
            return Err(TraceDatError::Usage(format!(
                "{} CPUs (at most {MAX_CPUS})",
                meta.cpus
            )));
        }
        if meta.clock.is_empty()
            || meta
                .clock
                .contains(|c: char| c.is_whitespace() || c == '[' || c == ']' || c == '\0')
        {
            return Err(TraceDatError::Usage(format!(
                "bad clock name {:?}",
                meta.clock
            )));
        }
        if meta.cpu_stats.len() > meta.cpus as usize {
            return Err(TraceDatError::Usage(format!(
                "{} CPU stats for {} CPUs",
                meta.cpu_stats.len(),
                meta.cpus
            )));
        }
        for (system, formats) in &meta.events {
            if system.is_empty() || system.contains('\0') {
                return Err(TraceDatError::Usage(format!("bad system name {system:?}")));
            }
            for (i, text) in formats.iter().enumerate() {
                // A format libtraceevent cannot parse shows its events as
                // unknown; refuse it here instead.
                parse_format(system, text).map_err(|e| {
                    TraceDatError::Usage(format!("format #{i} of system {system:?}: {e}"))
                })?;
            }
        }
        let too_big = |what: &str| TraceDatError::Usage(format!("{what} text exceeds 4 GiB"));
        if u32::try_from(meta.kallsyms.len()).is_err() {
            return Err(too_big("kallsyms"));
        }
        if u32::try_from(printk_text(meta).len()).is_err() {
            return Err(too_big("printk"));
        }
        for (_, comm) in &meta.cmdlines {
            if comm.contains('\n') {
                return Err(TraceDatError::Usage(format!(
                    "comm {comm:?} contains a newline"
                )));
            }
        }
        let base = out
            .stream_position()
            .map_err(TraceDatError::io("finding the start position"))?;
        check_encoding(meta)?;
        let enc = Enc {
            big_endian: meta.big_endian,
        };
        let mut w = TraceDatWriter {
            out,
            enc,
            version: meta.version,
            page_size: meta.page_size,
            align: u64::from(meta.page_size).max(layout::MMAP_ALIGN),
            clock: meta.clock.clone(),
            pos: 0,
            base,
            blocks: vec![CpuBlock::default(); meta.cpus as usize],
            current: None,
            table_pos: 0,
            options_ptr_pos: 0,
            sections: Vec::new(),
            options: build_options(meta, enc),
            long_size: meta.long_size,
            z: meta.compression.map(|codec| ZState {
                codec,
                pending: Vec::new(),
                chunks: 0,
                count_pos: None,
            }),
        };
        match meta.version {
            TraceDatVersion::V6 => w.start_v6(meta)?,
            TraceDatVersion::V7 => w.start_v7(meta)?,
        }
        Ok(w)
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), TraceDatError> {
        self.out
            .write_all(bytes)
            .map_err(TraceDatError::io("writing trace.dat"))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, align: u64) -> Result<(), TraceDatError> {
        let pad = (align - self.pos % align) % align;
        const ZEROS: [u8; 4096] = [0; 4096];
        let mut left = pad;
        while left > 0 {
            let n = left.min(ZEROS.len() as u64) as usize;
            self.put(&ZEROS[..n])?;
            left -= n as u64;
        }
        Ok(())
    }

    fn file_header(&self, version: &str) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(layout::MAGIC);
        self.enc.str0(&mut b, version);
        b.push(u8::from(self.enc.big_endian));
        b.push(self.long_size as u8); // pages use header_page's size, which agrees
        self.enc.u32(&mut b, self.page_size);
        b
    }

    fn start_v6(&mut self, meta: &TraceDatMeta) -> Result<(), TraceDatError> {
        let enc = self.enc;
        let mut b = self.file_header("6");
        b.extend_from_slice(&header_info(enc, meta.page_size, meta.long_size));
        b.extend_from_slice(&ftrace_events(enc, meta));
        b.extend_from_slice(&event_formats(enc, meta));
        b.extend_from_slice(&kallsyms(enc, meta));
        b.extend_from_slice(&printk(enc, meta));
        b.extend_from_slice(&cmdlines(enc, meta));
        enc.u32(&mut b, meta.cpus);
        b.extend_from_slice(b"options  \0");
        for (id, data) in &self.options {
            enc.u16(&mut b, *id);
            enc.u32(&mut b, data.len() as u32);
            b.extend_from_slice(data);
        }
        enc.u16(&mut b, opt::DONE); // v6: a bare u16 0 ends the list (§9.8)
        b.extend_from_slice(b"flyrecord\0");
        self.put(&b)?;
        self.table_pos = self.pos;
        // Placeholder CPU table (patched by finish), then the trace clock.
        let mut t = vec![0u8; 16 * meta.cpus as usize];
        let clock = format!("[{}]", meta.clock);
        enc.u64(&mut t, clock.len() as u64);
        t.extend_from_slice(clock.as_bytes());
        self.put(&t)
    }

    fn section(&mut self, id: u16, desc: &str, body: &[u8]) -> Result<(), TraceDatError> {
        // As trace-cmd: every section but OPTIONS is compressed.
        let (flags, body) = match &self.z {
            Some(z) if id != opt::DONE => (
                layout::SECTION_COMPRESSED,
                std::borrow::Cow::Owned(compress::encode_block(z.codec, self.enc, body, desc)?),
            ),
            _ => (0, std::borrow::Cow::Borrowed(body)),
        };
        let mut h = Vec::with_capacity(16);
        self.enc.u16(&mut h, id);
        self.enc.u16(&mut h, flags);
        self.enc.u32(&mut h, string_offset(desc));
        self.enc.u64(&mut h, body.len() as u64);
        if id != opt::STRINGS {
            self.sections.push((id, self.pos));
        }
        self.put(&h)?;
        self.put(&body)
    }

    fn start_v7(&mut self, meta: &TraceDatMeta) -> Result<(), TraceDatError> {
        let enc = self.enc;
        let mut b = self.file_header("7");
        match &self.z {
            Some(z) => {
                enc.str0(&mut b, z.codec.name());
                enc.str0(&mut b, z.codec.version());
            }
            None => {
                enc.str0(&mut b, "none");
                enc.str0(&mut b, "");
            }
        }
        self.put(&b)?;
        self.options_ptr_pos = self.pos;
        self.put(&[0; 8])?;
        let mut strings = Vec::new();
        for s in V7_STRINGS {
            enc.str0(&mut strings, s);
        }
        self.section(opt::STRINGS, "", &strings)?;
        self.section(
            opt::HEADER_INFO,
            "headers",
            &header_info(enc, meta.page_size, meta.long_size),
        )?;
        self.section(
            opt::FTRACE_EVENTS,
            "ftrace events",
            &ftrace_events(enc, meta),
        )?;
        self.section(
            opt::EVENT_FORMATS,
            "events format",
            &event_formats(enc, meta),
        )?;
        self.section(opt::KALLSYMS, "kallsyms", &kallsyms(enc, meta))?;
        self.section(opt::PRINTK, "printk", &printk(enc, meta))?;
        self.section(opt::CMDLINES, "command lines", &cmdlines(enc, meta))?;
        // BUFFER section header; its size is patched by finish.
        self.table_pos = self.pos;
        let mut h = Vec::with_capacity(16);
        enc.u16(&mut h, opt::BUFFER);
        let flags = if self.z.is_some() {
            layout::SECTION_COMPRESSED
        } else {
            0
        };
        enc.u16(&mut h, flags);
        enc.u32(&mut h, string_offset("flyrecord"));
        enc.u64(&mut h, 0);
        self.put(&h)
    }

    /// Appends one page image to `cpu`'s block. Pages of one CPU must be
    /// pushed together, CPUs in ascending order; `page.len()` must equal the
    /// page size. The page header is checked (`commit` within the page, a
    /// stored lost count inside it); the events are not.
    pub fn push_page(&mut self, cpu: u32, page: &[u8]) -> Result<(), TraceDatError> {
        if page.len() != self.page_size as usize {
            return Err(TraceDatError::Usage(format!(
                "page of {} bytes for CPU {cpu}, page size is {}",
                page.len(),
                self.page_size
            )));
        }
        // trace-cmd only rejects commit > page size; anything between shows
        // as thousands of bogus events (trace-dat-format.md §5, pitfall 9.4).
        if let Err(e) = parse_page(page, self.page_layout()) {
            return Err(TraceDatError::Usage(format!("bad page for CPU {cpu}: {e}")));
        }
        if cpu as usize >= self.blocks.len() {
            return Err(TraceDatError::Usage(format!(
                "CPU {cpu} out of range ({} CPUs)",
                self.blocks.len()
            )));
        }
        match self.current {
            Some(c) if c == cpu => {}
            Some(c) if c > cpu => {
                return Err(TraceDatError::Usage(format!(
                    "page for CPU {cpu} after CPU {c}: push CPUs in ascending order"
                )))
            }
            _ => {
                self.z_close_block()?;
                self.pad_to(self.align)?;
                self.blocks[cpu as usize].offset = self.pos;
                self.current = Some(cpu);
                self.z_open_block()?;
            }
        }
        if self.z.is_some() {
            return self.z_push(page);
        }
        self.put(page)?;
        self.blocks[cpu as usize].size += page.len() as u64;
        Ok(())
    }

    /// Appends several whole pages of `cpu` at once (`pages.len()` a
    /// multiple of the page size), with one write: the fast path of a bulk
    /// copy. Each page header is checked as [`push_page`](Self::push_page)
    /// checks it.
    pub fn push_pages(&mut self, cpu: u32, pages: &[u8]) -> Result<(), TraceDatError> {
        let ps = self.page_size as usize;
        if pages.len() % ps != 0 {
            return Err(TraceDatError::Usage(format!(
                "{} bytes of pages for CPU {cpu} is not a multiple of the page size {ps}",
                pages.len()
            )));
        }
        for (i, page) in pages.chunks_exact(ps).enumerate() {
            if let Err(e) = parse_page(page, self.page_layout()) {
                return Err(TraceDatError::Usage(format!(
                    "bad page {i} of a batch for CPU {cpu}: {e}"
                )));
            }
        }
        match pages.chunks_exact(ps).next() {
            // Opens the block (alignment, order checks) with the first page.
            Some(first) => self.push_page(cpu, first)?,
            None => return Ok(()),
        }
        let rest = &pages[ps..];
        if self.z.is_some() {
            return rest.chunks_exact(ps).try_for_each(|p| self.z_push(p));
        }
        self.put(rest)?;
        self.blocks[cpu as usize].size += rest.len() as u64;
        Ok(())
    }

    /// Appends `len` bytes of whole pages of `cpu` read from `pages` with
    /// [`io::copy`](std::io::copy) (a file-to-file copy stays in the kernel:
    /// `copy_file_range`). The first page is read and checked like
    /// [`push_page`](Self::push_page); the rest are copied as they are: use
    /// it for pages that were checked when they were made (a drain's spool).
    pub fn copy_pages<R: std::io::Read>(
        &mut self,
        cpu: u32,
        pages: &mut R,
        len: u64,
    ) -> Result<(), TraceDatError> {
        let ps = u64::from(self.page_size);
        if len % ps != 0 {
            return Err(TraceDatError::Usage(format!(
                "{len} bytes of pages for CPU {cpu} is not a multiple of the page size {ps}"
            )));
        }
        if len == 0 {
            return Ok(());
        }
        let mut first = vec![0u8; self.page_size as usize];
        pages
            .read_exact(&mut first)
            .map_err(TraceDatError::io("reading pages to copy"))?;
        self.push_page(cpu, &first)?;
        if self.z.is_some() {
            return self.z_copy(pages, len - ps);
        }
        let rest = len - ps;
        let mut limited = <&mut R as std::io::Read>::take(pages, rest);
        let copied = std::io::copy(&mut limited, &mut self.out)
            .map_err(TraceDatError::io("copying pages"))?;
        self.pos += copied;
        self.blocks[cpu as usize].size += copied;
        if copied != rest {
            return Err(TraceDatError::Usage(format!(
                "CPU {cpu}: {copied} of {rest} page bytes could be read"
            )));
        }
        Ok(())
    }

    /// Appends all pages of `cpu` (see [`push_page`](Self::push_page)).
    pub fn write_cpu<I>(&mut self, cpu: u32, pages: I) -> Result<(), TraceDatError>
    where
        I: IntoIterator,
        I::Item: AsRef<[u8]>,
    {
        for p in pages {
            self.push_page(cpu, p.as_ref())?;
        }
        Ok(())
    }

    fn patch(&mut self, at: u64, bytes: &[u8]) -> Result<(), TraceDatError> {
        self.out
            .seek(SeekFrom::Start(self.base + at))
            .map_err(TraceDatError::io("seeking to back-patch"))?;
        self.out
            .write_all(bytes)
            .map_err(TraceDatError::io("back-patching"))
    }

    /// Writes what remains (v7: the options), back-patches the CPU table,
    /// flushes, and returns the output positioned at the end of the file.
    pub fn finish(mut self) -> Result<W, TraceDatError> {
        let enc = self.enc;
        let end;
        match self.version {
            TraceDatVersion::V6 => {
                // The data starts at the next aligned offset after the
                // trace clock, even when there is no page: `trace-cmd dump`
                // reads up to it (an empty file ending at the clock "cannot
                // read the rest of the header").
                if self.current.is_none() {
                    self.pad_to(self.align)?;
                }
                end = self.pos;
                let mut t = Vec::with_capacity(16 * self.blocks.len());
                for b in &self.blocks {
                    enc.u64(&mut t, b.offset);
                    enc.u64(&mut t, b.size);
                }
                let at = self.table_pos;
                self.patch(at, &t)?;
            }
            TraceDatVersion::V7 => {
                self.z_close_block()?;
                let buffer_body = self.pos - (self.table_pos + 16);
                let options_pos = self.pos;
                let body = self.v7_options();
                self.section(opt::DONE, "options", &body)?;
                end = self.pos;
                let at = self.options_ptr_pos;
                self.patch(at, &enc.u64_bytes(options_pos))?;
                let at = self.table_pos + 8;
                self.patch(at, &enc.u64_bytes(buffer_body))?;
            }
        }
        self.out
            .seek(SeekFrom::Start(self.base + end))
            .map_err(TraceDatError::io("seeking to the end"))?;
        self.out
            .flush()
            .map_err(TraceDatError::io("flushing trace.dat"))?;
        Ok(self.out)
    }

    fn v7_options(&self) -> Vec<u8> {
        let enc = self.enc;
        let mut b = Vec::new();
        let put = |b: &mut Vec<u8>, id: u16, data: &[u8]| {
            enc.u16(b, id);
            enc.u32(b, data.len() as u32);
            b.extend_from_slice(data);
        };
        for (id, off) in &self.sections {
            put(&mut b, *id, &enc.u64_bytes(*off));
        }
        let mut buf = Vec::new();
        enc.u64(&mut buf, self.table_pos);
        enc.str0(&mut buf, "");
        enc.str0(&mut buf, &self.clock);
        enc.u32(&mut buf, self.page_size);
        enc.u32(&mut buf, self.blocks.len() as u32);
        for (cpu, blk) in self.blocks.iter().enumerate() {
            enc.u32(&mut buf, cpu as u32);
            enc.u64(&mut buf, blk.offset);
            enc.u64(&mut buf, blk.size);
        }
        put(&mut b, opt::BUFFER, &buf);
        let mut cpus = Vec::new();
        enc.u32(&mut cpus, self.blocks.len() as u32);
        put(&mut b, opt::CPUCOUNT, &cpus);
        for (id, data) in &self.options {
            put(&mut b, *id, data);
        }
        put(&mut b, opt::DONE, &[0; 8]);
        b
    }
}

/// Options shared by v6 and v7, encoded: TRACECLOCK, UNAME, VERSION,
/// TRACEID, TSC2NSEC, CPUSTAT.
fn build_options(meta: &TraceDatMeta, enc: Enc) -> Vec<(u16, Vec<u8>)> {
    let str0 = |s: &str| {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        v
    };
    let mut o = vec![(opt::TRACECLOCK, str0(&format!("[{}]", meta.clock)))];
    if let Some(u) = &meta.uname {
        o.push((opt::UNAME, str0(u)));
    }
    if let Some(v) = &meta.writer_version {
        o.push((opt::VERSION, str0(v)));
    }
    if let Some(id) = meta.trace_id {
        o.push((opt::TRACEID, enc.u64_bytes(id).to_vec()));
    }
    if let Some(t) = meta.tsc2nsec {
        let mut d = Vec::new();
        enc.u32(&mut d, t.mult);
        enc.u32(&mut d, t.shift);
        enc.u64(&mut d, t.offset);
        o.push((opt::TSC2NSEC, d));
    }
    for s in &meta.cpu_stats {
        o.push((opt::CPUSTAT, str0(s)));
    }
    if let Some(w) = meta.wall_start {
        let mut d = Vec::new();
        enc.u64(&mut d, w.realtime_ns);
        enc.u64(&mut d, w.clock_ts);
        o.push((opt::RINGTRACE_WALL_START, d));
    }
    if !meta.processes.is_empty() {
        o.push((
            opt::RINGTRACE_PROCESSES,
            super::processes::encode(&meta.processes),
        ));
    }
    o
}

fn header_info(enc: Enc, page_size: u32, long_size: usize) -> Vec<u8> {
    let mut b = Vec::new();
    let hp = layout::header_page_text(page_size, long_size);
    b.extend_from_slice(b"header_page\0");
    enc.u64(&mut b, hp.len() as u64);
    b.extend_from_slice(hp.as_bytes());
    b.extend_from_slice(b"header_event\0");
    enc.u64(&mut b, layout::HEADER_EVENT_TEXT.len() as u64);
    b.extend_from_slice(layout::HEADER_EVENT_TEXT.as_bytes());
    b
}

fn ftrace_events(enc: Enc, meta: &TraceDatMeta) -> Vec<u8> {
    let formats: Vec<&String> = meta
        .events
        .iter()
        .filter(|(s, _)| s == layout::FTRACE_SYSTEM)
        .flat_map(|(_, f)| f.iter())
        .collect();
    let mut b = Vec::new();
    enc.u32(&mut b, formats.len() as u32);
    for f in formats {
        enc.u64(&mut b, f.len() as u64);
        b.extend_from_slice(f.as_bytes());
    }
    b
}

fn event_formats(enc: Enc, meta: &TraceDatMeta) -> Vec<u8> {
    let systems: Vec<_> = meta
        .events
        .iter()
        .filter(|(s, _)| s != layout::FTRACE_SYSTEM)
        .collect();
    let mut b = Vec::new();
    enc.u32(&mut b, systems.len() as u32);
    for (sys, formats) in systems {
        enc.str0(&mut b, sys);
        enc.u32(&mut b, formats.len() as u32);
        for f in formats {
            enc.u64(&mut b, f.len() as u64);
            b.extend_from_slice(f.as_bytes());
        }
    }
    b
}

fn kallsyms(enc: Enc, meta: &TraceDatMeta) -> Vec<u8> {
    let mut b = Vec::new();
    enc.u32(&mut b, meta.kallsyms.len() as u32);
    b.extend_from_slice(meta.kallsyms.as_bytes());
    b
}

fn printk_text(meta: &TraceDatMeta) -> String {
    meta.printk
        .iter()
        .map(|(addr, fmt)| format!("0x{addr:x} : \"{fmt}\"\n"))
        .collect()
}

fn printk(enc: Enc, meta: &TraceDatMeta) -> Vec<u8> {
    let text = printk_text(meta);
    let mut b = Vec::new();
    enc.u32(&mut b, text.len() as u32);
    b.extend_from_slice(text.as_bytes());
    b
}

fn cmdlines(enc: Enc, meta: &TraceDatMeta) -> Vec<u8> {
    let text: String = meta
        .cmdlines
        .iter()
        .map(|(pid, comm)| format!("{pid} {comm}\n"))
        .collect();
    let mut b = Vec::new();
    enc.u64(&mut b, text.len() as u64);
    b.extend_from_slice(text.as_bytes());
    b
}

/// Checks the encoding choices of `meta`: a 4- or 8-byte long, and
/// compression only in v7 (v6 has no place to name a codec).
fn check_encoding(meta: &TraceDatMeta) -> Result<(), TraceDatError> {
    if meta.long_size != 4 && meta.long_size != 8 {
        return Err(TraceDatError::Usage(format!(
            "long size {} (4 or 8)",
            meta.long_size
        )));
    }
    if let (Some(c), TraceDatVersion::V6) = (meta.compression, meta.version) {
        return Err(TraceDatError::Usage(format!(
            "{c} compression needs trace.dat version 7"
        )));
    }
    Ok(())
}

/// The compressed CPU blocks: each is a u32 chunk count (patched when the
/// block closes) and chunks of [`compress::PAGES_PER_CHUNK`] pages, each a
/// compressed block (`tracecmd_compress_copy_from`).
impl<W: Write + Seek> TraceDatWriter<W> {
    /// The layout of the pages this writer takes.
    fn page_layout(&self) -> PageLayout {
        PageLayout {
            long_size: self.long_size,
            big_endian: self.enc.big_endian,
        }
    }

    /// Starts the current CPU's compressed block: its chunk count's place.
    fn z_open_block(&mut self) -> Result<(), TraceDatError> {
        let Some(z) = &mut self.z else {
            return Ok(());
        };
        z.count_pos = Some(self.pos);
        z.chunks = 0;
        self.put(&[0; 4])?;
        self.add_block_size(4);
        Ok(())
    }

    /// Adds `n` written bytes to the open CPU block's size.
    fn add_block_size(&mut self, n: u64) {
        if let Some(c) = self.current {
            self.blocks[c as usize].size += n;
        }
    }

    /// Queues one checked page of the open block; compresses a chunk when
    /// it is full.
    fn z_push(&mut self, page: &[u8]) -> Result<(), TraceDatError> {
        let Some(z) = &mut self.z else {
            return Ok(());
        };
        z.pending.extend_from_slice(page);
        if z.pending.len() >= compress::PAGES_PER_CHUNK * self.page_size as usize {
            self.z_flush_chunk()?;
        }
        Ok(())
    }

    /// Compresses and writes the pending pages as one chunk.
    fn z_flush_chunk(&mut self) -> Result<(), TraceDatError> {
        let Some(z) = &mut self.z else {
            return Ok(());
        };
        if z.pending.is_empty() {
            return Ok(());
        }
        let block = compress::encode_block(z.codec, self.enc, &z.pending, "a chunk of pages")?;
        z.pending.clear();
        z.chunks += 1;
        self.put(&block)?;
        self.add_block_size(block.len() as u64);
        Ok(())
    }

    /// Ends the open compressed block: its last chunk, and its count.
    fn z_close_block(&mut self) -> Result<(), TraceDatError> {
        self.z_flush_chunk()?;
        let Some(z) = &mut self.z else {
            return Ok(());
        };
        let Some(at) = z.count_pos.take() else {
            return Ok(());
        };
        let mut count = Vec::with_capacity(4);
        self.enc.u32(&mut count, z.chunks);
        self.patch(at, &count)?;
        self.out
            .seek(SeekFrom::Start(self.base + self.pos))
            .map_err(TraceDatError::io("seeking back after a chunk count"))?;
        Ok(())
    }

    /// [`copy_pages`](Self::copy_pages) for a compressed file: `len` more
    /// bytes of pages read from `pages`, one page at a time.
    fn z_copy<R: std::io::Read>(&mut self, pages: &mut R, len: u64) -> Result<(), TraceDatError> {
        let mut page = vec![0u8; self.page_size as usize];
        for _ in 0..len / u64::from(self.page_size) {
            pages
                .read_exact(&mut page)
                .map_err(TraceDatError::io("reading pages to copy"))?;
            self.z_push(&page)?;
        }
        Ok(())
    }
}
