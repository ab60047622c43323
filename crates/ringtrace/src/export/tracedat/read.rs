//! `trace.dat` reader (versions 6 and 7, v7 uncompressed or compressed
//! with zstd or zlib, either byte order, 4- or 8-byte longs): metadata, CPU
//! table, per-CPU record iteration and the merge of all CPUs by time stamp.
//!
//! Compressed v7 files (layout in [`compress`]): a
//! compressed section is decompressed whole (capped) and parsed as an
//! uncompressed one; a CPU's chunk table is read with the metadata (its
//! entries are checked to lie within the CPU's data), and its pages are
//! read through one decompressed chunk per CPU at a time. A chunk that
//! does not decompress costs the pages it holds, as a damaged page does.
//!
//! Every length read from the file is checked against the bytes left in the
//! file before anything is allocated, so a hostile file costs at most about
//! its own size in memory; loops advance at least one byte per step, and the
//! v7 option chain refuses to revisit a section, so nothing hangs.
//! Pages are decoded one at a time per CPU; an uncompressed CPU's pages are
//! read in blocks of `READ_BLOCK` bytes (or one page, if larger), so at
//! most one block or chunk and one page's records are held per CPU.
//!
//! Semantics follow `trace-cmd report` (trace-dat-format.md §6): per CPU,
//! records in file order; across CPUs, the smallest time stamp first, ties
//! to the lower CPU table index. A page flagged `RB_MISSED_EVENTS` yields a
//! [`TraceItem::Lost`] before its first record; unlike trace-cmd 3.1.6 we
//! report it even when the page starts with a time extend or padding.
//! Time stamps stay raw; [`TraceDatInfo::ts_ns`] applies TSC2NSEC.
//!
//! Damage costs only what it touches, as in `trace-cmd report`: a page
//! whose header or events cannot be parsed yields one
//! [`TraceDatError::Page`] in its place (after the records read before the
//! bad event), and the iterators go on with the next page; a record that
//! does not match its format fails [`TraceDatInfo::decode`] alone. A reader
//! counts these ([`TraceDatError::is_skippable`]) and goes on. Errors of the
//! file itself (I/O, data cut short) end the iteration.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use std::sync::Arc;

use super::compress::{self, Chunk, Compression};
use super::error::{PageError, TraceDatError};
use super::format::{parse_format, EventFormat, FieldFormat};
use super::layout::{self, opt, Enc};
use super::page::PageLayout;
use super::plan::{DecodePlan, FieldPlan, Float, IdTable};
use super::walk::{PageSlots, RecordRef, Walk};
use super::write::Tsc2Nsec;

/// Largest page size the reader accepts.
#[doc(hidden)]
pub const MAX_READ_PAGE_SIZE: u32 = 1 << 24;
/// Most v7 OPTIONS sections followed through the DONE chain.
const MAX_OPTION_SECTIONS: usize = 256;
/// Longest NUL-terminated string read from the file (names, versions).
const MAX_STR0: u64 = 1 << 20;

/// One CPU's entry in the flyrecord / BUFFER table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuData {
    /// CPU number.
    pub cpu: u32,
    /// File offset of the CPU's first page (compressed files: of its
    /// chunk table).
    pub offset: u64,
    /// Bytes of page data (0 = no data); in a compressed file, the bytes
    /// once decompressed.
    pub size: u64,
}

/// Everything in a `trace.dat` file except the records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceDatInfo {
    /// File version: 6 or 7.
    pub version: u32,
    /// `true` if the file (and its pages) are big-endian.
    pub big_endian: bool,
    /// The header's user-space `long` size byte (informational).
    pub user_long_size: u8,
    /// Trace page size.
    pub page_size: u32,
    /// `long` size of the pages (size of `commit` in header_page).
    pub long_size: usize,
    /// Raw `header_page` text.
    pub header_page: String,
    /// Raw `header_event` text.
    pub header_event: String,
    /// All event formats; `system` is `ftrace` for the ftrace section.
    pub events: Vec<EventFormat>,
    /// Raw kallsyms text.
    pub kallsyms: String,
    /// printk formats `(address, format without the quotes)`.
    pub printk: Vec<(u64, String)>,
    /// Saved thread names `(pid, comm)`, in file order.
    pub cmdlines: Vec<(i32, String)>,
    /// Trace clock name (the bracketed name), if recorded.
    pub clock: Option<String>,
    /// TSC-to-ns conversion, if recorded.
    pub tsc2nsec: Option<Tsc2Nsec>,
    /// Trace id, if recorded.
    pub trace_id: Option<u64>,
    /// `uname` text, if recorded.
    pub uname: Option<String>,
    /// Writer version text, if recorded.
    pub writer_version: Option<String>,
    /// CPUSTAT texts, in file order.
    pub cpu_stats: Vec<String>,
    /// The top buffer's CPU table.
    pub cpus: Vec<CpuData>,
    /// Wall-clock time of the trace's start (ringtrace's option).
    pub wall_start: Option<crate::clock::WallStart>,
    /// The process of each thread `(tid, pid, process name)`, when
    /// recorded (ringtrace's option).
    pub processes: Vec<(i32, u32, String)>,
    /// Ids of options this reader does not interpret, in file order.
    pub unknown_options: Vec<u16>,
    /// Names of other buffer instances (v7); their data is not read.
    pub instances: Vec<String>,
    /// The codec of a compressed v7 file.
    pub compression: Option<Compression>,
    /// Per entry of `cpus`: the chunks of its compressed data (empty when
    /// the data is not compressed).
    chunks: Vec<Arc<[Chunk]>>,
    event_by_id: HashMap<u32, usize>,
    /// `event_by_id` for 16-bit ids (a record's `common_type`).
    id_table: IdTable,
    /// Per entry of `events`: its decode plan.
    plans: Vec<DecodePlan>,
    comm_by_pid: foldhash::HashMap<i32, usize>,
}

/// A data record of one CPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceDatRecord {
    /// CPU number.
    pub cpu: u32,
    /// Raw time stamp (clock units; see [`TraceDatInfo::ts_ns`]).
    pub ts: u64,
    /// Page index within the CPU's data.
    pub page: u64,
    /// File offset of the event header (compressed files: the CPU's
    /// [`CpuData::offset`] plus its offset in the decompressed data).
    pub file_offset: u64,
    /// Payload bytes (`common_type` onwards; rounded up to 4).
    pub data: Vec<u8>,
}

/// What a CPU stream yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceItem {
    /// A data record.
    Event(TraceDatRecord),
    /// Events were lost before this page (`RB_MISSED_EVENTS`).
    Lost {
        /// CPU number.
        cpu: u32,
        /// The page's time stamp.
        ts: u64,
        /// Page index.
        page: u64,
        /// Lost count, when the page stored it (`RB_MISSED_STORED`).
        count: Option<u64>,
    },
}

impl TraceItem {
    /// The item's raw time stamp.
    #[must_use]
    pub fn ts(&self) -> u64 {
        match self {
            TraceItem::Event(r) => r.ts,
            TraceItem::Lost { ts, .. } => *ts,
        }
    }

    /// The item's CPU.
    #[must_use]
    pub fn cpu(&self) -> u32 {
        match self {
            TraceItem::Event(r) => r.cpu,
            TraceItem::Lost { cpu, .. } => *cpu,
        }
    }
}

/// Bounded reads from the file.
struct Src<'r, R> {
    r: &'r mut R,
    len: u64,
    pos: u64,
    enc: Enc,
}

impl<R: Read + Seek> Src<'_, R> {
    fn seek(&mut self, to: u64, section: &'static str) -> Result<(), TraceDatError> {
        if to > self.len {
            return Err(TraceDatError::invalid(
                section,
                self.pos,
                format!("offset {to} is beyond the file end {}", self.len),
            ));
        }
        self.r
            .seek(SeekFrom::Start(to))
            .map_err(TraceDatError::io("seeking in trace.dat"))?;
        self.pos = to;
        Ok(())
    }

    fn need(&self, n: u64, section: &'static str) -> Result<(), TraceDatError> {
        if n > self.len.saturating_sub(self.pos) {
            return Err(TraceDatError::Truncated {
                section,
                offset: self.pos,
                needed: n,
                file_len: self.len,
            });
        }
        Ok(())
    }

    fn fill(&mut self, buf: &mut [u8], section: &'static str) -> Result<(), TraceDatError> {
        self.need(buf.len() as u64, section)?;
        self.r.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                TraceDatError::Truncated {
                    section,
                    offset: self.pos,
                    needed: buf.len() as u64,
                    file_len: self.len,
                }
            } else {
                TraceDatError::Io {
                    context: "reading trace.dat",
                    source: e,
                }
            }
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn bytes(&mut self, n: u64, section: &'static str) -> Result<Vec<u8>, TraceDatError> {
        self.need(n, section)?;
        let mut v = vec![0; n as usize];
        self.fill(&mut v, section)?;
        Ok(v)
    }

    fn text(&mut self, n: u64, section: &'static str) -> Result<String, TraceDatError> {
        let b = self.bytes(n, section)?;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    fn arr<const N: usize>(&mut self, section: &'static str) -> Result<[u8; N], TraceDatError> {
        let mut b = [0; N];
        self.fill(&mut b, section)?;
        Ok(b)
    }

    fn u8(&mut self, section: &'static str) -> Result<u8, TraceDatError> {
        Ok(self.arr::<1>(section)?[0])
    }

    fn u16(&mut self, section: &'static str) -> Result<u16, TraceDatError> {
        let b = self.arr(section)?;
        Ok(self.enc.read_u16(b))
    }

    fn u32(&mut self, section: &'static str) -> Result<u32, TraceDatError> {
        let b = self.arr(section)?;
        Ok(self.enc.read_u32(b))
    }

    fn u64(&mut self, section: &'static str) -> Result<u64, TraceDatError> {
        let b = self.arr(section)?;
        Ok(self.enc.read_u64(b))
    }

    fn str0(&mut self, section: &'static str) -> Result<String, TraceDatError> {
        let start = self.pos;
        let mut v = Vec::new();
        loop {
            let c = self.u8(section)?;
            if c == 0 {
                break;
            }
            if v.len() as u64 >= MAX_STR0 {
                return Err(TraceDatError::invalid(
                    section,
                    start,
                    "string longer than 1 MiB",
                ));
            }
            v.push(c);
        }
        Ok(String::from_utf8_lossy(&v).into_owned())
    }

    fn expect(&mut self, lit: &[u8], section: &'static str) -> Result<(), TraceDatError> {
        let at = self.pos;
        let got = self.bytes(lit.len() as u64, section)?;
        if got != lit {
            return Err(TraceDatError::invalid(
                section,
                at,
                format!(
                    "expected {:?}, found {:?}",
                    String::from_utf8_lossy(lit),
                    String::from_utf8_lossy(&got)
                ),
            ));
        }
        Ok(())
    }
}

/// Reads bytes out of an option's data.
struct OptData<'a> {
    d: &'a [u8],
    at: usize,
    enc: Enc,
    offset: u64,
}

impl OptData<'_> {
    fn bad(&self, what: &str) -> TraceDatError {
        TraceDatError::invalid(
            "options",
            self.offset,
            format!("option data too short for {what}"),
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], TraceDatError> {
        let s = self
            .d
            .get(self.at..self.at + n)
            .ok_or_else(|| self.bad(what))?;
        self.at += n;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32, TraceDatError> {
        let e = self.enc;
        let b = self.take(4, what)?;
        Ok(e.read_u32([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, TraceDatError> {
        let e = self.enc;
        let b = self.take(8, what)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(e.read_u64(a))
    }

    fn str0(&mut self, what: &str) -> Result<String, TraceDatError> {
        let rest = self.d.get(self.at..).unwrap_or_default();
        let n = rest
            .iter()
            .position(|&c| c == 0)
            .ok_or_else(|| self.bad(what))?;
        let s = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.at += n + 1;
        Ok(s)
    }
}

fn option_str(d: &[u8]) -> String {
    let end = d.iter().position(|&c| c == 0).unwrap_or(d.len());
    String::from_utf8_lossy(&d[..end]).into_owned()
}

/// The bracketed clock name of a `trace_clock` text (`"local [mono] boot"`).
fn bracketed_clock(text: &str) -> Option<String> {
    let start = text.find('[')? + 1;
    let end = start + text[start..].find(']')?;
    let name = text[start..end].trim();
    (!name.is_empty()).then(|| name.to_string())
}

#[derive(Default)]
struct Options {
    cpucount: Option<u32>,
    has_traceclock: bool,
    traceclock_text: Option<String>,
    sections: Vec<(u16, u64)>,
    /// Top instance: BUFFER section offset and CPU table.
    buffer: Option<(u64, Vec<CpuData>)>,
}

/// A `trace.dat` reader over any `Read + Seek` source.
#[derive(Debug)]
pub struct TraceDatReader<R> {
    src: R,
    file_len: u64,
    info: TraceDatInfo,
}

impl TraceDatReader<BufReader<File>> {
    /// Opens and parses the metadata of the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TraceDatError> {
        let f = File::open(path).map_err(TraceDatError::io("opening trace.dat"))?;
        Self::new(BufReader::new(f))
    }
}

impl<R: Read + Seek> TraceDatReader<R> {
    /// Parses the metadata (everything but the pages) from `src`.
    pub fn new(mut src: R) -> Result<Self, TraceDatError> {
        let file_len = src
            .seek(SeekFrom::End(0))
            .map_err(TraceDatError::io("finding the file length"))?;
        src.seek(SeekFrom::Start(0))
            .map_err(TraceDatError::io("seeking to the start"))?;
        let info = parse_info(&mut src, file_len)?;
        Ok(TraceDatReader {
            src,
            file_len,
            info,
        })
    }

    /// The file's metadata.
    pub fn info(&self) -> &TraceDatInfo {
        &self.info
    }

    /// Returns the underlying source.
    pub fn into_inner(self) -> R {
        self.src
    }

    /// The records of one CPU table entry (by index into
    /// [`TraceDatInfo::cpus`]), in file order.
    pub fn cpu_records(&mut self, index: usize) -> Result<CpuRecords<'_, R>, TraceDatError> {
        self.info.cpus.get(index).ok_or_else(|| {
            TraceDatError::Usage(format!(
                "CPU index {index} out of range ({} CPUs)",
                self.info.cpus.len()
            ))
        })?;
        let cursor = CpuCursor::new(index, &self.info);
        Ok(CpuRecords {
            src: &mut self.src,
            file_len: self.file_len,
            cursor,
            done: false,
        })
    }

    /// All CPUs merged by time stamp (ties: lower CPU table index first, as
    /// trace-cmd does).
    pub fn records(&mut self) -> MergedRecords<'_, R> {
        MergedRecords { walk: self.walk() }
    }

    /// All CPUs merged by time stamp, as [`records`](Self::records), each
    /// record borrowed from its page until the next call: nothing is
    /// allocated per record.
    pub fn walk(&mut self) -> Walk<'_, R> {
        let cursors = (0..self.info.cpus.len())
            .map(|i| CpuCursor::new(i, &self.info))
            .collect();
        Walk::new(&mut self.src, self.file_len, cursors)
    }
}

fn parse_info<R: Read + Seek>(r: &mut R, file_len: u64) -> Result<TraceDatInfo, TraceDatError> {
    let mut s = Src {
        r,
        len: file_len,
        pos: 0,
        enc: Enc::NATIVE,
    };
    let magic = s
        .bytes(10, "file header")
        .map_err(|_| TraceDatError::BadMagic)?;
    if magic != layout::MAGIC {
        return Err(TraceDatError::BadMagic);
    }
    let version_text = s.str0("file header")?;
    let version = match version_text.as_str() {
        "6" => 6,
        "7" => 7,
        _ => return Err(TraceDatError::UnsupportedVersion(version_text)),
    };
    let at = s.pos;
    let big_endian = match s.u8("file header")? {
        0 => false,
        1 => true,
        b => {
            return Err(TraceDatError::invalid(
                "file header",
                at,
                format!("endianness byte {b}"),
            ))
        }
    };
    s.enc = Enc { big_endian };
    let user_long_size = s.u8("file header")?;
    let at = s.pos;
    let page_size = s.u32("file header")?;
    if !page_size.is_power_of_two() || !(32..=MAX_READ_PAGE_SIZE).contains(&page_size) {
        return Err(TraceDatError::invalid(
            "file header",
            at,
            format!("page size {page_size} is not a power of two in 32..={MAX_READ_PAGE_SIZE}"),
        ));
    }
    let mut info = TraceDatInfo {
        version,
        big_endian,
        user_long_size,
        page_size,
        long_size: 8,
        header_page: String::new(),
        header_event: String::new(),
        events: Vec::new(),
        kallsyms: String::new(),
        printk: Vec::new(),
        cmdlines: Vec::new(),
        clock: None,
        tsc2nsec: None,
        trace_id: None,
        uname: None,
        writer_version: None,
        cpu_stats: Vec::new(),
        cpus: Vec::new(),
        wall_start: None,
        processes: Vec::new(),
        unknown_options: Vec::new(),
        instances: Vec::new(),
        compression: None,
        chunks: Vec::new(),
        event_by_id: HashMap::new(),
        id_table: IdTable::default(),
        plans: Vec::new(),
        comm_by_pid: foldhash::HashMap::default(),
    };
    if version == 6 {
        parse_v6(&mut s, &mut info)?;
    } else {
        parse_v7(&mut s, &mut info)?;
    }
    for (i, e) in info.events.iter().enumerate() {
        info.event_by_id.entry(e.id).or_insert(i);
    }
    info.id_table = IdTable::new(&info.events);
    info.plans = info.events.iter().map(DecodePlan::new).collect();
    for (i, (pid, _)) in info.cmdlines.iter().enumerate() {
        info.comm_by_pid.insert(*pid, i);
    }
    Ok(info)
}

fn parse_header_info<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    const SEC: &str = "header_page";
    s.expect(b"header_page\0", SEC)?;
    let n = s.u64(SEC)?;
    let at = s.pos;
    info.header_page = s.text(n, SEC)?;
    let mut ts_size = None;
    let mut commit = None;
    for line in info.header_page.lines() {
        let attr = |key: &str| {
            line.split(';').find_map(|p| {
                p.trim()
                    .strip_prefix(key)
                    .and_then(|v| v.trim().parse::<usize>().ok())
            })
        };
        if line.contains(" timestamp;") {
            ts_size = attr("size:");
        } else if line.contains(" commit;") {
            commit = attr("offset:").zip(attr("size:"));
        }
    }
    match (ts_size, commit) {
        (Some(8), Some((8, l))) if l == 4 || l == 8 => info.long_size = l,
        _ => {
            return Err(TraceDatError::invalid(
                SEC,
                at,
                "expected a u64 timestamp at 0 and a 4- or 8-byte commit at 8",
            ))
        }
    }
    const SEC_E: &str = "header_event";
    s.expect(b"header_event\0", SEC_E)?;
    let n = s.u64(SEC_E)?;
    info.header_event = s.text(n, SEC_E)?;
    Ok(())
}

fn parse_one_format<R: Read + Seek>(
    s: &mut Src<'_, R>,
    system: &str,
    index: usize,
    section: &'static str,
) -> Result<EventFormat, TraceDatError> {
    let n = s.u64(section)?;
    let offset = s.pos;
    let text = s.text(n, section)?;
    parse_format(system, &text).map_err(|source| TraceDatError::Format {
        system: system.to_string(),
        index,
        offset,
        source,
    })
}

fn parse_ftrace_events<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    parse_system_formats(s, layout::FTRACE_SYSTEM, "ftrace events", info)
}

fn parse_event_formats<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    const SEC: &str = "event formats";
    let systems = s.u32(SEC)?;
    for _ in 0..systems {
        let system = s.str0(SEC)?;
        parse_system_formats(s, &system, SEC, info)?;
    }
    Ok(())
}

/// A count, then that many formats of `system`, into `info.events`.
fn parse_system_formats<R: Read + Seek>(
    s: &mut Src<'_, R>,
    system: &str,
    section: &'static str,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    let count = s.u32(section)?;
    for i in 0..count as usize {
        let f = parse_one_format(s, system, i, section)?;
        info.events.push(f);
    }
    Ok(())
}

fn parse_kallsyms<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    let n = s.u32("kallsyms")?;
    info.kallsyms = s.text(u64::from(n), "kallsyms")?;
    Ok(())
}

fn parse_printk<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    const SEC: (&str, &str) = ("printk formats", "printk line");
    let n = s.u32(SEC.0)?;
    let blank = |l: &str| l.trim().is_empty();
    text_lines(s, u64::from(n), SEC, blank, |line| {
        let (addr, fmt) = line.split_once(':')?;
        let addr = addr.trim();
        let addr = u64::from_str_radix(addr.strip_prefix("0x").unwrap_or(addr), 16).ok()?;
        let fmt = fmt.trim();
        let fmt = fmt
            .strip_prefix('"')
            .and_then(|f| f.strip_suffix('"'))
            .unwrap_or(fmt);
        info.printk.push((addr, fmt.to_string()));
        Some(())
    })
}

fn parse_cmdlines<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    let n = s.u64("cmdlines")?;
    text_lines(s, n, ("cmdlines", "cmdline"), str::is_empty, |line| {
        let (pid, comm) = line.split_once(' ').unwrap_or((line, ""));
        let pid = pid.trim().parse::<i32>().ok()?;
        info.cmdlines.push((pid, comm.to_string()));
        Some(())
    })
}

/// Reads a text of `n` bytes of `section` and hands `parse` each of its
/// lines but those `skip` selects; a line `parse` rejects (`None`) is an
/// error at the text's offset: `bad WHAT "line"`.
fn text_lines<R: Read + Seek>(
    s: &mut Src<'_, R>,
    n: u64,
    (section, what): (&'static str, &str),
    skip: impl Fn(&str) -> bool,
    mut parse: impl FnMut(&str) -> Option<()>,
) -> Result<(), TraceDatError> {
    let at = s.pos;
    let text = s.text(n, section)?;
    for line in text.lines().filter(|l| !skip(l)) {
        if parse(line).is_none() {
            let msg = format!("bad {what} {line:?}");
            return Err(TraceDatError::invalid(section, at, msg));
        }
    }
    Ok(())
}

/// Parses one option; `v7` selects the BUFFER layout with clock and table.
fn handle_option(
    id: u16,
    data: &[u8],
    offset: u64,
    enc: Enc,
    v7: bool,
    info: &mut TraceDatInfo,
    o: &mut Options,
) -> Result<(), TraceDatError> {
    let mut d = OptData {
        d: data,
        at: 0,
        enc,
        offset,
    };
    match id {
        opt::CPUSTAT => info.cpu_stats.push(option_str(data)),
        opt::TRACECLOCK => {
            o.has_traceclock = true;
            o.traceclock_text = Some(option_str(data));
        }
        opt::UNAME => info.uname = Some(option_str(data)),
        opt::VERSION => info.writer_version = Some(option_str(data)),
        opt::CPUCOUNT => o.cpucount = Some(d.u32("CPUCOUNT")?),
        opt::TRACEID => info.trace_id = Some(d.u64("TRACEID")?),
        opt::RINGTRACE_WALL_START => {
            info.wall_start = Some(crate::clock::WallStart {
                realtime_ns: d.u64("ringtrace wall start")?,
                clock_ts: d.u64("ringtrace wall start")?,
            })
        }
        opt::RINGTRACE_PROCESSES => info.processes = super::processes::parse(data, offset)?,
        opt::TSC2NSEC => {
            info.tsc2nsec = Some(Tsc2Nsec {
                mult: d.u32("TSC2NSEC")?,
                shift: d.u32("TSC2NSEC")?,
                offset: d.u64("TSC2NSEC")?,
            })
        }
        opt::HEADER_INFO..=opt::CMDLINES if v7 => o.sections.push((id, d.u64("section offset")?)),
        opt::BUFFER if v7 => {
            let section = d.u64("BUFFER")?;
            let name = d.str0("BUFFER name")?;
            let clock = d.str0("BUFFER clock")?;
            let page_size = d.u32("BUFFER page size")?;
            if page_size != info.page_size {
                return Err(TraceDatError::invalid(
                    "options",
                    offset,
                    format!(
                        "BUFFER page size {page_size} differs from the header's {}",
                        info.page_size
                    ),
                ));
            }
            let n = d.u32("BUFFER CPU count")?;
            let mut cpus = Vec::new();
            for _ in 0..n {
                // Each entry is 20 bytes; a short option fails here, so `n`
                // never drives an allocation bigger than the option.
                cpus.push(CpuData {
                    cpu: d.u32("BUFFER CPU id")?,
                    offset: d.u64("BUFFER CPU offset")?,
                    size: d.u64("BUFFER CPU size")?,
                });
            }
            if name.is_empty() {
                if info.clock.is_none() && !clock.is_empty() {
                    info.clock = Some(clock);
                }
                o.buffer = Some((section, cpus));
            } else {
                info.instances.push(name);
            }
        }
        _ => info.unknown_options.push(id),
    }
    Ok(())
}

/// Checks that each CPU's data lies within the file and, when `aligned`
/// (uncompressed pages, which trace-cmd mmap()s), starts on a page.
fn check_cpu_table(
    info: &TraceDatInfo,
    file_len: u64,
    at: u64,
    aligned: bool,
) -> Result<(), TraceDatError> {
    for c in &info.cpus {
        if c.size == 0 {
            continue;
        }
        let end = c.offset.checked_add(c.size);
        let past_end = match end {
            Some(e) => e > file_len,
            None => true,
        };
        if past_end {
            return Err(TraceDatError::invalid(
                "CPU table",
                at,
                format!(
                    "CPU {} data ({} bytes at offset {}) runs past the file end {file_len}",
                    c.cpu, c.size, c.offset
                ),
            ));
        }
        if aligned && c.offset % u64::from(info.page_size) != 0 {
            return Err(TraceDatError::invalid(
                "CPU table",
                at,
                format!("CPU {} data offset {} is not page aligned", c.cpu, c.offset),
            ));
        }
    }
    Ok(())
}

fn parse_v6<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    parse_header_info(s, info)?;
    parse_ftrace_events(s, info)?;
    parse_event_formats(s, info)?;
    parse_kallsyms(s, info)?;
    parse_printk(s, info)?;
    parse_cmdlines(s, info)?;
    let cpus = s.u32("CPU count")?;
    let mut o = Options::default();
    let mut tag_at = s.pos;
    let mut tag = s.bytes(10, "options")?;
    if tag.starts_with(b"options") {
        loop {
            let id = s.u16("options")?;
            if id == opt::DONE {
                break;
            }
            let size = s.u32("options")?;
            let at = s.pos;
            let data = s.bytes(u64::from(size), "options")?;
            handle_option(id, &data, at, s.enc, false, info, &mut o)?;
        }
        tag_at = s.pos;
        tag = s.bytes(10, "flyrecord")?;
    }
    if tag.starts_with(b"latency") {
        return Err(TraceDatError::invalid(
            "flyrecord",
            tag_at,
            "latency (text) traces are not supported",
        ));
    }
    if !tag.starts_with(b"flyrecord") {
        return Err(TraceDatError::invalid(
            "flyrecord",
            tag_at,
            format!(
                "expected \"flyrecord\", found {:?}",
                String::from_utf8_lossy(&tag)
            ),
        ));
    }
    // trace-cmd reads as many table entries as the CPUCOUNT option says.
    let entries = o.cpucount.unwrap_or(cpus);
    let table_at = s.pos;
    s.need(u64::from(entries) * 16, "CPU table")?;
    for cpu in 0..entries {
        let offset = s.u64("CPU table")?;
        let size = s.u64("CPU table")?;
        info.cpus.push(CpuData { cpu, offset, size });
    }
    check_cpu_table(info, s.len, table_at, true)?;
    if o.has_traceclock {
        let n = s.u64("trace clock")?;
        let text = s.text(n, "trace clock")?;
        info.clock = bracketed_clock(&text);
    }
    Ok(())
}

fn parse_v7<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    let compression = s.str0("file header")?;
    // trace-cmd accepts any zstd version, and zlib's format has not changed
    // since 1.0: the version is informational.
    let _compression_version = s.str0("file header")?;
    info.compression = Compression::from_header(&compression)?;
    let first = s.u64("file header")?;
    let mut o = Options::default();
    read_options_chain(s, info, &mut o, first)?;
    if let Some(text) = &o.traceclock_text {
        if let Some(c) = bracketed_clock(text) {
            info.clock = Some(c);
        }
    }
    parse_v7_sections(s, info, &o)?;
    let Some((section, cpus)) = o.buffer.take() else {
        return Err(TraceDatError::invalid(
            "options",
            0,
            "no BUFFER option for the top instance",
        ));
    };
    s.seek(section, "BUFFER section")?;
    let (id, flags, _) = section_header(s, "BUFFER section")?;
    if id != opt::BUFFER {
        return Err(TraceDatError::invalid(
            "BUFFER section",
            section,
            format!("section id {id}, expected {}", opt::BUFFER),
        ));
    }
    info.cpus = cpus;
    let compressed = flags & layout::SECTION_COMPRESSED != 0;
    check_cpu_table(info, s.len, section, !compressed)?;
    if compressed {
        codec_of(info, "BUFFER section", section)?;
        let max = compress::max_chunk_bytes(info.page_size);
        for i in 0..info.cpus.len() {
            let (chunks, size) = read_chunk_table(s, &info.cpus[i], max)?;
            info.cpus[i].size = size;
            info.chunks.push(chunks.into());
        }
    }
    Ok(())
}

/// The file's codec, for a section at `offset` flagged compressed.
fn codec_of(
    info: &TraceDatInfo,
    section: &'static str,
    offset: u64,
) -> Result<Compression, TraceDatError> {
    info.compression.ok_or_else(|| {
        TraceDatError::invalid(
            section,
            offset,
            "section flagged compressed in a file whose header names no compression",
        )
    })
}

/// Reads the chunk table of one CPU's compressed data (`c.size` is its
/// size in the file) and returns it with the decompressed size. Every
/// chunk must lie within the file and declare at most `max` bytes.
///
/// The chunks are bounded by the file, not by `c.size`: trace-cmd 3.1.6
/// records a size 4 bytes short of its chunks (its reader, too, only
/// follows the chunk count).
fn read_chunk_table<R: Read + Seek>(
    s: &mut Src<'_, R>,
    c: &CpuData,
    max: u64,
) -> Result<(Vec<Chunk>, u64), TraceDatError> {
    const SEC: &str = "compressed CPU data";
    if c.size == 0 {
        return Ok((Vec::new(), 0));
    }
    let end = s.len;
    s.seek(c.offset, SEC)?;
    let count = s.u32(SEC)?;
    if u64::from(count) * 8 > end.saturating_sub(s.pos) {
        let why = format!(
            "CPU {}: {count} chunks do not fit in the {} bytes left in the file",
            c.cpu,
            end.saturating_sub(s.pos)
        );
        return Err(TraceDatError::invalid(SEC, c.offset, why));
    }
    let mut chunks = Vec::with_capacity(count as usize);
    let mut start = 0u64;
    for i in 0..count {
        let at = s.pos;
        let bad = |why: String| {
            TraceDatError::invalid(SEC, at, format!("CPU {} chunk {i}: {why}", c.cpu))
        };
        if at + 8 > end {
            return Err(bad("header runs past the file end".into()));
        }
        let zsize = s.u32(SEC)?;
        let size = s.u32(SEC)?;
        if u64::from(size) > max {
            return Err(bad(format!(
                "{size} bytes once decompressed, above the {max} accepted"
            )));
        }
        let file_offset = s.pos;
        if file_offset + u64::from(zsize) > end {
            return Err(bad(format!(
                "{zsize} compressed bytes run past the file end"
            )));
        }
        chunks.push(Chunk {
            file_offset,
            zsize,
            size,
            start,
        });
        start += u64::from(size);
        s.seek(file_offset + u64::from(zsize), SEC)?;
    }
    Ok((chunks, start))
}

/// Reads the compressed block at the position of `s` (the body of a
/// section flagged compressed) and returns its decompressed bytes.
fn read_block<R: Read + Seek>(
    s: &mut Src<'_, R>,
    codec: Compression,
    section: &'static str,
) -> Result<Vec<u8>, TraceDatError> {
    let offset = s.pos;
    let zsize = s.u32(section)?;
    let size = s.u32(section)?;
    let bad = |reason: String| TraceDatError::Decompress {
        section: section.to_string(),
        offset,
        reason,
    };
    if size > compress::MAX_SECTION_BYTES {
        return Err(bad(format!(
            "declares {size} bytes once decompressed, above the {} accepted",
            compress::MAX_SECTION_BYTES
        )));
    }
    let z = s.bytes(u64::from(zsize), section)?;
    codec.decompress(&z, size).map_err(bad)
}

/// Runs `parse` on a decompressed section body, with the file's byte
/// order; its errors say they are within the section at `offset`.
fn parse_body<T>(
    body: Vec<u8>,
    enc: Enc,
    section: &'static str,
    offset: u64,
    parse: impl FnOnce(&mut Src<'_, std::io::Cursor<Vec<u8>>>) -> Result<T, TraceDatError>,
) -> Result<T, TraceDatError> {
    let len = body.len() as u64;
    let mut cur = std::io::Cursor::new(body);
    let mut inner = Src {
        r: &mut cur,
        len,
        pos: 0,
        enc,
    };
    parse(&mut inner).map_err(|e| TraceDatError::InCompressed {
        section,
        offset,
        source: Box::new(e),
    })
}

/// Follows the chain of v7 options sections from `next` (each ends with a
/// DONE option giving the next one's offset, 0 for the last), handling
/// every option; a loop or an overlong chain is an error.
fn read_options_chain<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
    o: &mut Options,
    mut next: u64,
) -> Result<(), TraceDatError> {
    let mut seen = HashSet::new();
    while next != 0 {
        if !seen.insert(next) || seen.len() > MAX_OPTION_SECTIONS {
            return Err(TraceDatError::invalid(
                "options",
                next,
                "options sections form a loop",
            ));
        }
        next = read_options_section(s, info, o, next)?;
    }
    Ok(())
}

/// Reads the options section at `at` and returns the offset its DONE
/// option names (the next section, or 0).
fn read_options_section<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
    o: &mut Options,
    at: u64,
) -> Result<u64, TraceDatError> {
    s.seek(at, "options")?;
    let (id, flags, size) = section_header(s, "options")?;
    if id != opt::DONE {
        return Err(TraceDatError::invalid(
            "options",
            at,
            format!("section id {id}, expected 0 (options)"),
        ));
    }
    if flags & layout::SECTION_COMPRESSED != 0 {
        let codec = codec_of(info, "options", at)?;
        let body_at = s.pos;
        let body = read_block(s, codec, "options")?;
        let enc = s.enc;
        return parse_body(body, enc, "options", body_at, |inner| {
            let end = inner.len;
            read_option_list(inner, info, o, end)
        });
    }
    let body_at = s.pos;
    s.need(size, "options")?;
    read_option_list(s, info, o, body_at + size)
}

/// Reads options from the position of `s` up to `end`, handling each;
/// returns the offset the DONE option names.
fn read_option_list<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
    o: &mut Options,
    end: u64,
) -> Result<u64, TraceDatError> {
    loop {
        if s.pos >= end {
            return Err(TraceDatError::invalid(
                "options",
                s.pos,
                "options section ends without a DONE option",
            ));
        }
        let id = s.u16("options")?;
        let n = s.u32("options")?;
        let at = s.pos;
        if at + u64::from(n) > end {
            return Err(TraceDatError::invalid(
                "options",
                at,
                format!("option {id} of {n} bytes overruns its section"),
            ));
        }
        let data = s.bytes(u64::from(n), "options")?;
        if id == opt::DONE {
            let mut d = OptData {
                d: &data,
                at: 0,
                enc: s.enc,
                offset: at,
            };
            return d.u64("DONE");
        }
        handle_option(id, &data, at, s.enc, true, info, o)?;
    }
}

/// Parses the metadata sections the options pointed at (headers, event
/// formats, kallsyms, printk, cmdlines); HEADER_INFO must be among them.
fn parse_v7_sections<R: Read + Seek>(
    s: &mut Src<'_, R>,
    info: &mut TraceDatInfo,
    o: &Options,
) -> Result<(), TraceDatError> {
    let mut have_headers = false;
    for &(id, offset) in &o.sections {
        const SEC: &str = "section header";
        s.seek(offset, SEC)?;
        let (sid, flags, _size) = section_header(s, SEC)?;
        if sid != id {
            return Err(TraceDatError::invalid(
                SEC,
                offset,
                format!("section id {sid}, the option said {id}"),
            ));
        }
        have_headers |= id == opt::HEADER_INFO;
        if flags & layout::SECTION_COMPRESSED != 0 {
            let name = section_name(id);
            let codec = codec_of(info, name, offset)?;
            let body_at = s.pos;
            let body = read_block(s, codec, name)?;
            let enc = s.enc;
            parse_body(body, enc, name, body_at, |inner| {
                parse_section(inner, id, info)
            })?;
        } else {
            parse_section(s, id, info)?;
        }
    }
    if !have_headers {
        return Err(TraceDatError::invalid(
            "options",
            0,
            "no HEADER_INFO section",
        ));
    }
    Ok(())
}

/// What an error calls the v7 metadata section `id`.
fn section_name(id: u16) -> &'static str {
    match id {
        opt::HEADER_INFO => "headers",
        opt::FTRACE_EVENTS => "ftrace events",
        opt::EVENT_FORMATS => "event formats",
        opt::KALLSYMS => "kallsyms",
        opt::PRINTK => "printk formats",
        opt::CMDLINES => "cmdlines",
        _ => "section",
    }
}

/// Parses the body of the v7 metadata section `id` at the position of `s`.
fn parse_section<R: Read + Seek>(
    s: &mut Src<'_, R>,
    id: u16,
    info: &mut TraceDatInfo,
) -> Result<(), TraceDatError> {
    match id {
        opt::HEADER_INFO => parse_header_info(s, info),
        opt::FTRACE_EVENTS => parse_ftrace_events(s, info),
        opt::EVENT_FORMATS => parse_event_formats(s, info),
        opt::KALLSYMS => parse_kallsyms(s, info),
        opt::PRINTK => parse_printk(s, info),
        opt::CMDLINES => parse_cmdlines(s, info),
        _ => Ok(()),
    }
}

fn section_header<R: Read + Seek>(
    s: &mut Src<'_, R>,
    section: &'static str,
) -> Result<(u16, u16, u64), TraceDatError> {
    let id = s.u16(section)?;
    let flags = s.u16(section)?;
    let _desc = s.u32(section)?;
    let size = s.u64(section)?;
    Ok((id, flags, size))
}

/// Per-CPU page walker.
#[derive(Debug)]
pub(super) struct CpuCursor {
    data: CpuData,
    page_size: u64,
    layout: PageLayout,
    next_page: u64,
    /// The current page and its items in file order; a damaged page's
    /// error takes the place of the records it lost.
    pub(super) slots: PageSlots,
    /// The chunks of compressed data, when the file's data is compressed.
    zdata: Option<ZData>,
    /// Uncompressed data: the block of pages last read.
    plain: PlainBlock,
}

/// The block of an uncompressed CPU's pages last read.
#[derive(Debug, Default)]
struct PlainBlock {
    buf: Vec<u8>,
    /// Offset of `buf[0]` within the CPU's data.
    start: u64,
}

/// Bytes of an uncompressed CPU's data read at once (at least a page): one
/// read per block instead of a seek and a read per page.
const READ_BLOCK: u64 = 256 << 10;

/// A CPU's compressed data and its one decompressed chunk.
#[derive(Debug)]
struct ZData {
    codec: Compression,
    chunks: Arc<[Chunk]>,
    /// The last chunk read: its index and its bytes, or why it could not
    /// be decompressed (kept, so its other pages fail without a retry).
    cached: Option<(usize, Result<Vec<u8>, String>)>,
}

impl ZData {
    /// Copies `len` bytes at `start` of the decompressed data into a page
    /// buffer, decompressing the chunks they lie in; an error names the
    /// chunk that failed.
    fn read<R: Read + Seek>(
        &mut self,
        r: &mut R,
        start: u64,
        len: usize,
    ) -> Result<Vec<u8>, PageError> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let pos = start + out.len() as u64;
            let i = self
                .chunks
                .partition_point(|c| c.start + u64::from(c.size) <= pos);
            let Some(&chunk) = self.chunks.get(i) else {
                // The chunk sizes add up to the CPU's size: not reached.
                return Err(PageError::TooShort {
                    len: out.len(),
                    header: len,
                });
            };
            if self.cached.as_ref().map(|c| c.0) != Some(i) {
                self.cached = Some((i, load_chunk(r, self.codec, &chunk)));
            }
            let bytes = match &self.cached {
                Some((_, Ok(b))) => b,
                Some((_, Err(reason))) => {
                    return Err(PageError::BadChunk {
                        chunk: i,
                        offset: chunk.file_offset - 8,
                        reason: reason.clone(),
                    })
                }
                None => unreachable!("the chunk was just cached"),
            };
            let from = (pos - chunk.start) as usize;
            let n = (len - out.len()).min(bytes.len() - from);
            out.extend_from_slice(&bytes[from..from + n]);
        }
        Ok(out)
    }
}

/// Reads and decompresses one chunk (its place in the file was checked
/// when the table was read).
fn load_chunk<R: Read + Seek>(r: &mut R, codec: Compression, c: &Chunk) -> Result<Vec<u8>, String> {
    let mut z = vec![0u8; c.zsize as usize];
    r.seek(SeekFrom::Start(c.file_offset))
        .and_then(|_| r.read_exact(&mut z))
        .map_err(|e| format!("reading it: {e}"))?;
    codec.decompress(&z, c.size)
}

impl CpuCursor {
    fn new(index: usize, info: &TraceDatInfo) -> Self {
        let zdata = match (info.compression, info.chunks.get(index)) {
            (Some(codec), Some(chunks)) => Some(ZData {
                codec,
                chunks: chunks.clone(),
                cached: None,
            }),
            _ => None,
        };
        CpuCursor {
            zdata,
            data: info.cpus[index],
            page_size: u64::from(info.page_size),
            layout: PageLayout {
                long_size: info.long_size,
                big_endian: info.big_endian,
            },
            next_page: 0,
            slots: PageSlots::default(),
            plain: PlainBlock::default(),
        }
    }
}

impl PlainBlock {
    /// The `len` bytes at `start` of an uncompressed CPU's data, through
    /// the block buffer (refilled from `start` when they are not in it).
    /// Bytes past the file's end are [`TraceDatError::Truncated`], as
    /// for a page read alone.
    fn page<R: Read + Seek>(
        &mut self,
        r: &mut R,
        data: &CpuData,
        start: u64,
        len: u64,
        file_len: u64,
    ) -> Result<&[u8], TraceDatError> {
        let offset = data.offset + start;
        if offset + len > file_len {
            return Err(TraceDatError::Truncated {
                section: "CPU data",
                offset,
                needed: len,
                file_len,
            });
        }
        let block_end = self.start + self.buf.len() as u64;
        if start < self.start || start + len > block_end {
            let want = READ_BLOCK.max(len).min(data.size - start);
            // Never past the file's end (checked above for this page).
            let want = want.min(file_len - offset);
            self.buf.resize(want as usize, 0);
            self.start = start;
            r.seek(SeekFrom::Start(offset))
                .map_err(TraceDatError::io("seeking to a page"))?;
            if let Err(e) = r.read_exact(&mut self.buf) {
                self.buf.clear();
                return Err(TraceDatError::io("reading a page")(e));
            }
        }
        let from = (start - self.start) as usize;
        Ok(&self.buf[from..from + len as usize])
    }
}

impl CpuCursor {
    /// The next item of this CPU, owned (see [`Self::next_ref`]).
    fn next<R: Read + Seek>(
        &mut self,
        r: &mut R,
        file_len: u64,
    ) -> Result<Option<TraceItem>, TraceDatError> {
        Ok(self.next_ref(r, file_len)?.map(|i| i.to_item()))
    }

    /// Reads the next page into the slots: `false` at the end of the
    /// CPU's data. A damaged page is an error in its place (the next call
    /// goes on with the next page).
    pub(super) fn load_page<R: Read + Seek>(
        &mut self,
        r: &mut R,
        file_len: u64,
    ) -> Result<bool, TraceDatError> {
        let start = self.next_page.saturating_mul(self.page_size);
        if start >= self.data.size {
            return Ok(false);
        }
        let page = self.next_page;
        self.next_page += 1;
        let offset = self.data.offset + start;
        let len = self.page_size.min(self.data.size - start);
        let cpu = self.data.cpu;
        let buf = self.slots.buf_mut();
        buf.clear();
        match &mut self.zdata {
            Some(z) => {
                let bytes =
                    z.read(r, start, len as usize)
                        .map_err(|source| TraceDatError::Page {
                            cpu,
                            page,
                            offset,
                            source,
                        })?;
                *buf = bytes;
            }
            None => buf.extend_from_slice(self.plain.page(r, &self.data, start, len, file_len)?),
        }
        self.slots.split(self.layout, cpu, page, offset)?;
        Ok(true)
    }
}

/// Raw page bytes of one CPU, decompressed when the file is compressed:
/// for copying pages unchanged ([`convert`](super::convert())).
#[derive(Debug)]
pub(crate) struct CpuBytes {
    data: CpuData,
    zdata: Option<ZData>,
}

impl CpuBytes {
    /// Fills `buf` with the CPU's page data from `start` (within its
    /// [`CpuData::size`]). A chunk that does not decompress is an error
    /// naming the chunk.
    pub(crate) fn read<R: Read + Seek>(
        &mut self,
        r: &mut R,
        start: u64,
        buf: &mut [u8],
    ) -> Result<(), TraceDatError> {
        let offset = self.data.offset + start;
        match &mut self.zdata {
            Some(z) => {
                let bytes = z
                    .read(r, start, buf.len())
                    .map_err(|source| TraceDatError::Page {
                        cpu: self.data.cpu,
                        page: start / buf.len().max(1) as u64,
                        offset,
                        source,
                    })?;
                buf.copy_from_slice(&bytes);
            }
            None => {
                r.seek(SeekFrom::Start(offset))
                    .map_err(TraceDatError::io("seeking to CPU data"))?;
                r.read_exact(buf)
                    .map_err(TraceDatError::io("reading CPU data"))?;
            }
        }
        Ok(())
    }
}

impl<R: Read + Seek> TraceDatReader<R> {
    /// The raw page bytes of CPU table entry `index` (`None` when out of
    /// range), with the source to read them from.
    pub(crate) fn cpu_bytes(&mut self, index: usize) -> Option<(CpuBytes, &mut R)> {
        self.info.cpus.get(index)?;
        let c = CpuCursor::new(index, &self.info);
        let bytes = CpuBytes {
            data: c.data,
            zdata: c.zdata,
        };
        Some((bytes, &mut self.src))
    }
}

/// Records of one CPU in file order. A damaged page yields one error
/// ([`TraceDatError::is_skippable`]) and reading goes on with the next
/// page; after any other error the iterator ends.
#[derive(Debug)]
pub struct CpuRecords<'a, R> {
    src: &'a mut R,
    file_len: u64,
    cursor: CpuCursor,
    done: bool,
}

impl<R: Read + Seek> Iterator for CpuRecords<'_, R> {
    type Item = Result<TraceItem, TraceDatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.cursor.next(self.src, self.file_len) {
            Ok(Some(i)) => Some(Ok(i)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = !e.is_skippable();
                Some(Err(e))
            }
        }
    }
}

/// All CPUs merged by time stamp. A damaged page yields one error
/// ([`TraceDatError::is_skippable`]) and reading goes on; after any other
/// error the iterator ends. The owned form of [`Walk`].
#[derive(Debug)]
pub struct MergedRecords<'a, R> {
    walk: Walk<'a, R>,
}

impl<R: Read + Seek> Iterator for MergedRecords<'_, R> {
    type Item = Result<TraceItem, TraceDatError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.walk.next().map(|r| r.map(|i| i.to_item()))
    }
}

/// A decoded field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    /// An unsigned integer (1, 2, 4 or 8 bytes).
    Unsigned(u64),
    /// A signed integer (1, 2, 4 or 8 bytes).
    Signed(i64),
    /// A `char` array or `__data_loc char[]` string, up to its first NUL.
    Str(String),
    /// An array of integers.
    Array(Vec<FieldValue>),
    /// Bytes of any other shape.
    Bytes(Vec<u8>),
    /// A `double` (or `float`) field: the IEEE 754 bits of the value as an
    /// `f64` (`f64::from_bits`), kept as bits so values compare exactly.
    Float(u64),
}

impl std::fmt::Display for FieldValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldValue::Unsigned(v) => write!(f, "{v}"),
            FieldValue::Signed(v) => write!(f, "{v}"),
            FieldValue::Str(s) => f.write_str(s),
            FieldValue::Array(a) => {
                f.write_str("{")?;
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("}")
            }
            FieldValue::Bytes(b) => {
                f.write_str("0x")?;
                for x in b {
                    write!(f, "{x:02x}")?;
                }
                Ok(())
            }
            FieldValue::Float(bits) => write!(f, "{}", f64::from_bits(*bits)),
        }
    }
}

/// A record decoded by its event format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord<'a> {
    /// The record's format.
    pub format: &'a EventFormat,
    /// `common_flags`.
    pub flags: u8,
    /// `common_preempt_count`.
    pub preempt_count: u8,
    /// `common_pid`.
    pub pid: i32,
    /// The event's own (non-common) fields, in format order.
    pub fields: Vec<(&'a str, FieldValue)>,
}

impl TraceDatInfo {
    /// The format with event id `id`.
    #[must_use]
    pub fn event_by_id(&self, id: u32) -> Option<&EventFormat> {
        self.event_by_id.get(&id).map(|&i| &self.events[i])
    }

    /// The saved comm of `pid`.
    #[must_use]
    pub fn comm(&self, pid: i32) -> Option<&str> {
        self.comm_by_pid
            .get(&pid)
            .map(|&i| self.cmdlines[i].1.as_str())
    }

    /// A raw time stamp in nanoseconds: through TSC2NSEC if recorded
    /// (`(ts * mult) >> shift`, computed as trace-cmd does, which leaves the
    /// offset out), else unchanged. A file's shift past 63 is corrupt and
    /// leaves the stamp unchanged too.
    #[must_use]
    pub fn ts_ns(&self, ts: u64) -> u64 {
        match self.tsc2nsec {
            Some(t) if t.shift < 64 => t.scale(ts),
            _ => ts,
        }
    }

    /// Decodes a record's common and own fields by its format.
    /// `rec` is a [`TraceDatRecord`] or a [`RecordRef`] of a walk.
    pub fn decode<'a, 'r>(
        &'a self,
        rec: impl Into<RecordRef<'r>>,
    ) -> Result<DecodedRecord<'a>, TraceDatError> {
        self.decode_planned(&rec.into()).map(|(d, _)| d)
    }

    /// [`Self::decode`], with the plan of the record's format.
    pub(crate) fn decode_planned<'a>(
        &'a self,
        rec: &RecordRef<'_>,
    ) -> Result<(DecodedRecord<'a>, &'a DecodePlan), TraceDatError> {
        let bad = |event: &str, reason: String| TraceDatError::Record {
            event: event.to_string(),
            cpu: rec.cpu,
            ts: rec.ts,
            reason,
        };
        let enc = Enc {
            big_endian: self.big_endian,
        };
        let d = rec.data;
        let (Some(&t0), Some(&t1)) = (d.first(), d.get(1)) else {
            return Err(bad(
                "?",
                format!("payload of {} bytes has no common_type", d.len()),
            ));
        };
        let id = enc.read_u16([t0, t1]);
        let Some(index) = self.id_table.get(id) else {
            return Err(bad(
                &format!("#{id}"),
                format!("no format for event id {id}"),
            ));
        };
        let (format, plan) = (&self.events[index], &self.plans[index]);
        let common = |i: usize| -> Result<i64, TraceDatError> {
            let Some((f, p)) = plan.common[i].and_then(|(r, p)| Some((r.get(format)?, p))) else {
                return Ok(0);
            };
            match field_value(f, &p, d, enc).map_err(|r| bad(&format.name, r))? {
                FieldValue::Unsigned(u) => Ok(u as i64),
                FieldValue::Signed(s) => Ok(s),
                _ => Ok(0),
            }
        };
        let flags = common(0)? as u8;
        let preempt_count = common(1)? as u8;
        let pid = common(2)? as i32;
        let mut fields = Vec::with_capacity(format.fields.len());
        for (f, p) in format.fields.iter().zip(&plan.fields) {
            let v = field_value(f, p, d, enc).map_err(|r| bad(&format.name, r))?;
            fields.push((f.name.as_str(), v));
        }
        let dec = DecodedRecord {
            format,
            flags,
            preempt_count,
            pid,
            fields,
        };
        Ok((dec, plan))
    }

    /// One line of text: `comm-pid [cpu] secs.usecs: name: field=value ...`
    /// for events, `CPU:n [N EVENTS DROPPED]` for lost events (as trace-cmd
    /// 3.1.6). Time stamps are in µs rounded as trace-cmd rounds them.
    pub fn render(&self, item: &TraceItem) -> Result<String, TraceDatError> {
        let rec = match item {
            TraceItem::Lost {
                cpu,
                count: Some(n),
                ..
            } => return Ok(format!("CPU:{cpu} [{n} EVENTS DROPPED]")),
            TraceItem::Lost {
                cpu, count: None, ..
            } => return Ok(format!("CPU:{cpu} [EVENTS DROPPED]")),
            TraceItem::Event(r) => r,
        };
        let dec = self.decode(rec)?;
        let comm = match (dec.pid, self.comm(dec.pid)) {
            (0, _) => "<idle>",
            (_, Some(c)) => c,
            (_, None) => "<...>",
        };
        let us = self.ts_ns(rec.ts).saturating_add(500) / 1000;
        let mut line = format!(
            "{comm:>16}-{:<5} [{:03}] {:>5}.{:06}: {}:",
            dec.pid,
            rec.cpu,
            us / 1_000_000,
            us % 1_000_000,
            dec.format.name
        );
        for (name, v) in &dec.fields {
            line.push_str(&format!(" {name}={v}"));
        }
        Ok(line)
    }
}

#[inline]
fn read_int(d: &[u8], at: usize, size: usize, signed: bool, enc: Enc) -> Option<FieldValue> {
    let b = d.get(at..at.checked_add(size)?)?;
    let u = match size {
        1 => u64::from(b[0]),
        2 => u64::from(enc.read_u16([b[0], b[1]])),
        4 => u64::from(enc.read_u32([b[0], b[1], b[2], b[3]])),
        8 => enc.read_u64([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        _ => return None,
    };
    Some(if signed {
        let shift = 64 - 8 * size as u32;
        FieldValue::Signed(((u << shift) as i64) >> shift)
    } else {
        FieldValue::Unsigned(u)
    })
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn field_value(f: &FieldFormat, p: &FieldPlan, d: &[u8], enc: Enc) -> Result<FieldValue, String> {
    use super::format::FieldKind;
    // The common case first: an integer scalar inside the payload (what
    // the general path below gives for it, without its checks).
    if f.kind == FieldKind::Scalar && p.float.is_none() {
        if let Some(v) = read_int(d, f.offset, f.size, f.signed, enc) {
            return Ok(v);
        }
    }
    let out_of_range = || {
        format!(
            "field {} ({} bytes at {}) is outside the {}-byte payload",
            f.name,
            f.size,
            f.offset,
            d.len()
        )
    };
    let raw = d
        .get(f.offset..f.offset.checked_add(f.size).ok_or_else(out_of_range)?)
        .ok_or_else(out_of_range)?;
    let float = match p.float {
        Some(Float::F64) => read_int(d, f.offset, 8, false, enc).map(|v| match v {
            FieldValue::Unsigned(u) => u,
            _ => 0,
        }),
        Some(Float::F32) => read_int(d, f.offset, 4, false, enc).map(|v| match v {
            FieldValue::Unsigned(u) => f64::from(f32::from_bits(u as u32)).to_bits(),
            _ => 0,
        }),
        None => None,
    };
    if let (FieldKind::Scalar, Some(bits)) = (&f.kind, float) {
        return Ok(FieldValue::Float(bits));
    }
    match f.kind {
        FieldKind::Scalar => Ok(read_int(d, f.offset, f.size, f.signed, enc)
            .unwrap_or_else(|| FieldValue::Bytes(raw.to_vec()))),
        FieldKind::Array { len } => {
            if p.is_char {
                return Ok(FieldValue::Str(c_string(raw)));
            }
            let elem = if f.size.checked_rem(len) == Some(0) {
                f.size / len
            } else {
                0
            };
            if matches!(elem, 1 | 2 | 4 | 8) {
                let v = (0..len)
                    .filter_map(|i| read_int(raw, i * elem, elem, f.signed, enc))
                    .collect();
                Ok(FieldValue::Array(v))
            } else {
                Ok(FieldValue::Bytes(raw.to_vec()))
            }
        }
        FieldKind::DataLoc | FieldKind::RelLoc => {
            if raw.len() != 4 {
                return Err(format!(
                    "dynamic field {} has size {}, expected 4",
                    f.name, f.size
                ));
            }
            let loc = enc.read_u32([raw[0], raw[1], raw[2], raw[3]]);
            let mut off = (loc & 0xffff) as usize;
            if f.kind == FieldKind::RelLoc {
                off += f.offset + 4;
            }
            let len = (loc >> 16) as usize;
            let body = d.get(off..off + len).ok_or_else(|| {
                format!(
                    "dynamic field {}: {len} bytes at {off} are outside the {}-byte payload",
                    f.name,
                    d.len()
                )
            })?;
            if p.is_char {
                Ok(FieldValue::Str(c_string(body)))
            } else {
                Ok(FieldValue::Bytes(body.to_vec()))
            }
        }
    }
}
