//! `report`, `dump` and `convert`: everything that reads a trace.dat file.
//!
//! They take the file as trace-cmd does ([`InputArg`]: FILE, `-i FILE`,
//! else `trace.dat`). `report` narrows the records by CPU lists
//! ([`crate::cpulist`]) and filters ([`crate::filter`]), prints `--stat`
//! ([`crate::report_stat`]), and shows a TSC file's stamps in seconds
//! through the file's TSC2NSEC, as trace-cmd does.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use ringtrace::json::{tracedat_to_json, JsonError, JsonOptions};
use ringtrace::tracedat::{
    CpuData, FileRenderer, RenderOptions, TraceDatInfo, TraceDatReader, TraceDatVersion, TraceItem,
};

use crate::filter::{RecordFilter, Subject};
use crate::{CliError, Format};

type Reader = TraceDatReader<BufReader<File>>;

fn open(path: &Path) -> Result<Reader, CliError> {
    // Open the file ourselves so a missing file names the path.
    let f = File::open(path).map_err(|source| CliError::File {
        what: "opening",
        path: path.display().to_string(),
        source,
    })?;
    TraceDatReader::new(BufReader::new(f)).map_err(|source| CliError::TraceDat {
        path: path.display().to_string(),
        source,
    })
}

fn bad(path: &Path) -> impl Fn(ringtrace::tracedat::TraceDatError) -> CliError + '_ {
    move |source| CliError::TraceDat {
        path: path.display().to_string(),
        source,
    }
}

/// `report`'s help after the options: the filter language's subset.
pub const REPORT_HELP: &str = "FILE (or -i FILE) defaults to trace.dat, as in trace-cmd.

Filters (trace-cmd's -F subset): EVENTS[:COND], EVENTS a comma list of
[system/]name regular expressions (anchored, case-insensitive); COND compares
fields (an event field, common_pid, COMM, CPU) with == != < <= > >= or ~ (a
glob on text), joined with && || ! and parentheses. A record shows when it
passes any -F (-v negates them all), and every -e, --pid and --comm list.

Examples:
  ringtrace report                          (reads trace.dat)
  ringtrace report t.dat --cpu 0,2-3 -e 'job*'
  ringtrace report t.dat -F 'job: worker == 1 && common_pid != 0'
  ringtrace report t.dat --stat";

/// The input file of `report`, `dump` and `convert`: positional or `-i`,
/// `trace.dat` by default, as trace-cmd takes it.
#[derive(Debug, clap::Args)]
pub struct InputArg {
    /// Input trace.dat (v6 or v7) [default: trace.dat].
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// The input file, as trace-cmd's `-i` (the same as FILE).
    #[arg(short, long = "input", value_name = "FILE")]
    input: Option<PathBuf>,
}

impl InputArg {
    /// The file to read: FILE, `-i FILE`, or `trace.dat`.
    pub fn path(&self) -> Result<PathBuf, CliError> {
        match (&self.file, &self.input) {
            (Some(a), Some(b)) if a != b => Err(CliError::Usage(format!(
                "two input files, {} and -i {}: give one",
                a.display(),
                b.display()
            ))),
            (Some(p), _) | (None, Some(p)) => Ok(p.clone()),
            (None, None) => Ok(PathBuf::from("trace.dat")),
        }
    }
}

/// `ringtrace convert`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// The input.
    #[command(flatten)]
    pub input: InputArg,
    /// Output file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format (overrides the extension).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Compress a trace.dat output as trace-cmd does (it is then version
    /// 7).
    #[arg(long, value_enum)]
    pub compression: Option<crate::dat_convert::CompressionArg>,
}

/// One `--cpu` list.
#[derive(Debug, Clone)]
pub struct CpuList(Vec<u32>);

fn parse_cpus(s: &str) -> Result<CpuList, String> {
    crate::cpulist::parse_cpu_list(s).map(CpuList)
}

/// `ringtrace report`'s arguments.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// The input.
    #[command(flatten)]
    pub input: InputArg,
    /// Only these CPUs (contexts): `0,1`, `0-3`, `0,2-3`; repeatable.
    #[arg(long = "cpu", value_name = "CPUS", value_parser = parse_cpus)]
    cpus: Vec<CpuList>,
    /// Only events whose name (or system/name) matches NAME or the glob;
    /// repeatable.
    #[arg(short = 'e', long = "event", value_name = "NAME|GLOB")]
    events: Vec<String>,
    /// trace-cmd's filter: `EVENTS[:COND]` (see below); repeatable.
    #[arg(short = 'F', long = "filter", value_name = "FILTER")]
    filters: Vec<String>,
    /// Negate the -F filters (show what they do not match).
    #[arg(short = 'v')]
    negate: bool,
    /// Only these thread ids (`--pid 12,13`); repeatable.
    #[arg(long, value_name = "PID", value_delimiter = ',')]
    pid: Vec<i32>,
    /// Only threads of this name; repeatable.
    #[arg(long, value_name = "NAME")]
    comm: Vec<String>,
    /// Print the per-CPU stats recorded in the file (as `trace-cmd report
    /// --stat`) instead of the events.
    #[arg(long)]
    stat: bool,
    /// Raw fields: `name=value` of every field, binary printk included.
    #[arg(short = 'R', long)]
    raw: bool,
    /// Time stamps to the nanosecond (`secs.nsecs`).
    #[arg(short = 't')]
    ns: bool,
    /// Raw time stamps, without the file's TSC-to-ns conversion.
    #[arg(long)]
    raw_ts: bool,
    /// Stack trace callers as `symbol+0xOFFSET` (trace.c's sym-offset).
    #[arg(long)]
    sym_offset: bool,
    /// Write Chrome JSON to stdout instead of text.
    #[arg(long)]
    json: bool,
    /// Start each line with the event's wall-clock time (UTC, RFC 3339),
    /// from the trace's start stored in the file.
    #[arg(long, conflicts_with = "json")]
    wall: bool,
    /// Kernel events and program events: see `crate::kernel_cmd::Side`.
    #[command(flatten)]
    side: crate::kernel_cmd::Side,
}

impl ReportArgs {
    fn cpus(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.cpus.iter().flat_map(|c| c.0.iter().copied()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn filter(&self) -> Result<RecordFilter, CliError> {
        RecordFilter::new(
            &self.events,
            &self.pid,
            &self.comm,
            &self.filters,
            self.negate.then_some(0),
        )
        .map_err(CliError::Usage)
    }

    /// `--json` and `--stat` write everything: refuse the options that
    /// would not apply.
    fn check_whole(&self) -> Result<(), CliError> {
        let narrowed = !self.cpus.is_empty()
            || !self.events.is_empty()
            || !self.filters.is_empty()
            || !self.pid.is_empty()
            || !self.comm.is_empty();
        let styled = self.raw || self.ns || self.raw_ts;
        if self.json && self.stat {
            return Err(CliError::Usage("--json and --stat: give one".into()));
        }
        if self.json && (narrowed || styled) {
            return Err(CliError::Usage(
                "--json writes every event: it takes no --cpu, -e, -F, --pid, --comm, -R, -t \
                 or --raw-ts"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// A JSON error, a closed stdout kept apart (it ends the command quietly).
fn json_err(path: &Path) -> impl Fn(JsonError) -> CliError + '_ {
    move |source| match source {
        JsonError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => CliError::Output(e),
        source => CliError::Json {
            path: path.display().to_string(),
            source,
        },
    }
}

/// `ringtrace report`.
pub fn report(path: &Path, a: &ReportArgs) -> Result<(), CliError> {
    a.check_whole()?;
    let mut r = open(path)?;
    let stdout = std::io::stdout();
    if a.json {
        let (mut out, stats) = tracedat_to_json(&mut r, stdout.lock(), &JsonOptions::default())
            .map_err(json_err(path))?;
        out.flush().map_err(CliError::Output)?;
        // As the text report: what was skipped is a note, and the rest is
        // in the output.
        if let Some(note) = stats.skipped_note() {
            eprintln!("ringtrace: report {}: {note}", path.display());
        }
        return Ok(());
    }
    if a.stat {
        return crate::report_stat::print(r.info());
    }
    let cpus = a.side.cpus(r.info(), a.cpus()).map_err(CliError::Usage)?;
    if let Some(c) = cpus
        .iter()
        .find(|c| !r.info().cpus.iter().any(|d| d.cpu == **c))
    {
        return Err(CliError::Usage(format!(
            "--cpu {c}: {} has CPUs 0..{}",
            path.display(),
            r.info().cpus.len()
        )));
    }
    let filter = a.filter()?;
    let file = r.info().clone();
    // With a TSC clock and its conversion in the file, the lines show
    // seconds, as trace-cmd's do: the stamps are converted here and the
    // renderer is told the clock counts nanoseconds (`--raw-ts` keeps them).
    let mut shown = file.clone();
    let to_ns = !a.raw_ts && shown.tsc2nsec.take().is_some();
    if to_ns {
        shown.clock = Some("local".into());
    }
    let render = FileRenderer::new(&shown);
    let wall = a
        .wall
        .then(|| crate::wall::Wall::of(&file, path))
        .transpose()?;
    let opts = RenderOptions {
        raw: a.raw,
        ns_timestamps: a.ns,
        sym_offset: a.sym_offset,
        ..RenderOptions::default()
    };
    let pick = Pick {
        cpus: &cpus,
        filter: &filter,
        render: &render,
    };
    let mut out = BufWriter::new(stdout.lock());
    let mut line = String::with_capacity(256);
    // As `trace-cmd report`: a record that cannot be decoded, or a damaged
    // page, is skipped and counted, and the report goes on.
    let mut skipped = Skipped::default();
    // trace-cmd's leaf merge needs every record: not under a filter.
    let merge = !a.raw && filter.is_empty() && cpus.is_empty();
    for (item, leaf) in render.leaves(r.records(), merge) {
        let mut item = match item {
            Ok(item) => item,
            Err(e) if e.is_skippable() => {
                skipped.page(e);
                continue;
            }
            Err(e) => return Err(bad(path)(e)),
        };
        line.clear();
        if let (Some(w), TraceItem::Event(rec)) = (&wall, &item) {
            // The file's own stamp: the wall clock converts it itself.
            w.prefix(&mut line, rec.ts);
        }
        if to_ns {
            if let TraceItem::Event(rec) = &mut item {
                rec.ts = file.ts_ns(rec.ts);
            }
        }
        match pick.write(&mut line, &item, leaf.as_ref(), &opts) {
            Ok(true) => skipped.printed += u64::from(matches!(item, TraceItem::Event(_))),
            Ok(false) => continue,
            Err(e) => {
                skipped.record(e);
                continue;
            }
        }
        out.write_all(line.as_bytes()).map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    drop(out);
    skipped.finish(path)
}

/// Which records `report` prints, and how.
struct Pick<'a> {
    cpus: &'a [u32],
    filter: &'a RecordFilter,
    render: &'a FileRenderer<'a>,
}

impl Pick<'_> {
    /// Writes `item`'s line into `line` if it is to be printed: false when
    /// filtered out. `leaf`: the exit merged into a leaf entry. Lost-event lines are filtered by CPU only: a loss is
    /// never hidden by an event filter.
    fn write(
        &self,
        line: &mut String,
        item: &TraceItem,
        leaf: Option<&ringtrace::tracedat::TraceDatRecord>,
        opts: &RenderOptions,
    ) -> Result<bool, ringtrace::tracedat::TraceDatError> {
        if !self.cpus.is_empty() && !self.cpus.contains(&item.cpu()) {
            return Ok(false);
        }
        match item {
            TraceItem::Lost { cpu, count, .. } => self.render.write_lost(line, *cpu, *count),
            TraceItem::Event(rec) => {
                if !self.filter.is_empty() {
                    let info = self.render.info();
                    let decoded = info.decode(rec)?;
                    let subject = Subject {
                        rec: &decoded,
                        comm: self.render.comm(decoded.pid),
                        cpu: rec.cpu,
                    };
                    if !self.filter.passes(&subject) {
                        return Ok(false);
                    }
                }
                match leaf {
                    Some(exit) => self.render.write_leaf_line(line, rec, exit, opts)?,
                    None => self.render.write_line(line, rec, opts)?,
                }
            }
        }
        Ok(true)
    }
}

/// What `report` skipped: records it could not decode and damaged pages,
/// with the first of each kind.
#[derive(Debug, Default)]
struct Skipped {
    printed: u64,
    records: u64,
    first_record: Option<ringtrace::tracedat::TraceDatError>,
    pages: u64,
    first_page: Option<ringtrace::tracedat::TraceDatError>,
}

impl Skipped {
    fn record(&mut self, e: ringtrace::tracedat::TraceDatError) {
        self.records += 1;
        self.first_record.get_or_insert(e);
    }

    fn page(&mut self, e: ringtrace::tracedat::TraceDatError) {
        self.pages += 1;
        self.first_page.get_or_insert(e);
    }

    /// Says what was skipped, after the records. Undecodable records are a
    /// note on stderr (trace-cmd too prints them and goes on); damaged
    /// pages make the report fail, naming the first, once everything
    /// readable was printed.
    fn finish(self, path: &Path) -> Result<(), CliError> {
        let records = match &self.first_record {
            Some(first) => format!(
                "{} record(s) could not be decoded and were skipped (the first: {first})",
                self.records
            ),
            None => String::new(),
        };
        match self.first_page {
            Some(first) => Err(CliError::Usage(format!(
                "{}: {first}; {} damaged page(s) skipped{}{}, {} record(s) printed",
                path.display(),
                self.pages,
                if records.is_empty() { "" } else { "; " },
                records,
                self.printed
            ))),
            None => {
                if !records.is_empty() {
                    eprintln!("ringtrace: report {}: {records}", path.display());
                }
                Ok(())
            }
        }
    }
}

/// Per-CPU counts for `dump`.
#[derive(Debug, Default)]
struct CpuCounts {
    events: u64,
    loss_pages: u64,
    lost: u64,
    lost_unknown: u64,
    /// Damaged pages skipped (their records are not counted).
    damaged: u64,
    first: Option<u64>,
    last: u64,
}

impl CpuCounts {
    /// Counts CPU `i`'s records of `r`. A damaged page is counted and
    /// skipped (the first damage kept in `first_damage`): the rest is
    /// dumped.
    fn of_cpu(
        r: &mut Reader,
        path: &Path,
        i: usize,
        first_damage: &mut Option<ringtrace::tracedat::TraceDatError>,
    ) -> Result<CpuCounts, CliError> {
        let mut c = CpuCounts::default();
        for item in r.cpu_records(i).map_err(bad(path))? {
            let item = match item {
                Ok(item) => item,
                Err(e) if e.is_skippable() => {
                    c.damaged += 1;
                    first_damage.get_or_insert(e);
                    continue;
                }
                Err(e) => return Err(bad(path)(e)),
            };
            match item {
                TraceItem::Event(rec) => {
                    c.events += 1;
                    c.first.get_or_insert(rec.ts);
                    c.last = rec.ts;
                }
                TraceItem::Lost { count, .. } => {
                    c.loss_pages += 1;
                    match count {
                        Some(n) => c.lost += n,
                        None => c.lost_unknown += 1,
                    }
                }
            }
        }
        Ok(c)
    }

    /// The line of CPU section `d` (of `page_size`-byte pages).
    fn write_line(&self, s: &mut String, d: &CpuData, page_size: u32) {
        let pages = d.size.div_ceil(u64::from(page_size));
        let _ = write!(
            s,
            "  cpu {}: offset {} size {} ({} pages) events {} lost {}",
            d.cpu, d.offset, d.size, pages, self.events, self.lost
        );
        if self.lost_unknown > 0 {
            let _ = write!(s, " (+{} pages with an unknown count)", self.lost_unknown);
        }
        if self.damaged > 0 {
            let _ = write!(s, " damaged pages {} (skipped)", self.damaged);
        }
        if let Some(f) = self.first {
            let _ = write!(s, " ts {}..{}", f, self.last);
        }
        s.push('\n');
    }

    /// Adds `c`'s counts (not its time stamps) to these totals.
    fn add(&mut self, c: &CpuCounts) {
        self.events += c.events;
        self.lost += c.lost;
        self.loss_pages += c.loss_pages;
        self.lost_unknown += c.lost_unknown;
        self.damaged += c.damaged;
    }
}

/// `ringtrace dump`.
pub fn dump(path: &Path) -> Result<(), CliError> {
    let mut r = open(path)?;
    let info = r.info().clone();
    let mut s = String::new();
    dump_header(&mut s, path, &info);
    dump_sections(&mut s, &info);
    let _ = writeln!(s, "cpus: {}", info.cpus.len());
    let mut total = CpuCounts::default();
    let mut first_damage = None;
    for (i, d) in info.cpus.iter().enumerate() {
        let c = CpuCounts::of_cpu(&mut r, path, i, &mut first_damage)?;
        c.write_line(&mut s, d, info.page_size);
        total.add(&c);
    }
    let _ = writeln!(
        s,
        "total: events {} lost {} (in {} flagged pages{})",
        total.events,
        total.lost,
        total.loss_pages,
        if total.lost_unknown > 0 {
            format!(", {} without a count", total.lost_unknown)
        } else {
            String::new()
        }
    );
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes()).map_err(CliError::Output)?;
    out.flush().map_err(CliError::Output)?;
    match first_damage {
        Some(first) => Err(CliError::Usage(format!(
            "{}: {first}; {} damaged page(s) skipped, counted above as damaged",
            path.display(),
            total.damaged
        ))),
        None => Ok(()),
    }
}

/// `dump`'s first lines: the file, its version, byte order, sizes, clock
/// and the optional identity fields.
fn dump_header(s: &mut String, path: &Path, info: &TraceDatInfo) {
    let _ = writeln!(s, "file: {}", path.display());
    let _ = writeln!(
        s,
        "version: {}  endian: {}  page size: {}  long size: {} (header byte {})",
        info.version,
        if info.big_endian { "big" } else { "little" },
        info.page_size,
        info.long_size,
        info.user_long_size
    );
    if let Some(c) = info.compression {
        let _ = writeln!(s, "compression: {c}");
    }
    let _ = writeln!(s, "clock: {}", info.clock.as_deref().unwrap_or("(none)"));
    if let Some(t) = info.tsc2nsec {
        let _ = writeln!(
            s,
            "tsc2nsec: mult {} shift {} offset {}",
            t.mult, t.shift, t.offset
        );
    }
    if let Some(id) = info.trace_id {
        let _ = writeln!(s, "trace id: 0x{id:016x}");
    }
    if let Some(v) = &info.writer_version {
        let _ = writeln!(s, "writer: {v}");
    }
    if let Some(u) = &info.uname {
        let _ = writeln!(s, "uname: {u}");
    }
}

/// `dump`'s `sections:` block: the size or count of each section, event
/// formats by system.
fn dump_sections(s: &mut String, info: &TraceDatInfo) {
    let _ = writeln!(s, "sections:");
    let _ = writeln!(
        s,
        "  header_page: {} bytes, header_event: {} bytes",
        info.header_page.len(),
        info.header_event.len()
    );
    let mut systems: Vec<(&str, usize)> = Vec::new();
    for e in &info.events {
        match systems.iter_mut().find(|(n, _)| *n == e.system) {
            Some((_, c)) => *c += 1,
            None => systems.push((&e.system, 1)),
        }
    }
    let list: Vec<String> = systems.iter().map(|(n, c)| format!("{n} {c}")).collect();
    let _ = writeln!(
        s,
        "  event formats: {} ({})",
        info.events.len(),
        list.join(", ")
    );
    let _ = writeln!(
        s,
        "  kallsyms: {} symbols",
        info.kallsyms
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    );
    let _ = writeln!(s, "  printk formats: {}", info.printk.len());
    let _ = writeln!(s, "  cmdlines: {}", info.cmdlines.len());
    let _ = writeln!(s, "  cpu stats: {}", info.cpu_stats.len());
    if !info.unknown_options.is_empty() {
        let _ = writeln!(s, "  unknown options: {:?}", info.unknown_options);
    }
    if !info.instances.is_empty() {
        let _ = writeln!(s, "  other instances (not read): {:?}", info.instances);
    }
}

/// `ringtrace convert` to JSON (to trace.dat: `dat_convert`).
pub fn convert(input: &Path, output: &Path, format: Format) -> Result<(), CliError> {
    let version = match format {
        Format::Json | Format::Perfetto => None,
        Format::Dat => Some(TraceDatVersion::V6),
        Format::Dat7 => Some(TraceDatVersion::V7),
    };
    if let Some(v) = version {
        return crate::dat_convert::convert_dat(input, output, v, None);
    }
    let mut r = open(input)?;
    let f = File::create(output).map_err(|source| CliError::File {
        what: "creating",
        path: output.display().to_string(),
        source,
    })?;
    let f = match format {
        Format::Json | Format::Dat | Format::Dat7 => {
            let (f, stats) =
                tracedat_to_json(&mut r, f, &JsonOptions::default()).map_err(|source| {
                    CliError::Json {
                        path: input.display().to_string(),
                        source,
                    }
                })?;
            if let Some(note) = stats.skipped_note() {
                eprintln!("ringtrace: convert {}: {note}", input.display());
            }
            f
        }
        Format::Perfetto => {
            let opts = ringtrace::perfetto::PerfettoOptions::default();
            let out = BufWriter::with_capacity(1 << 20, f);
            let (out, stats) = ringtrace::perfetto::tracedat_to_perfetto(&mut r, out, &opts)
                .map_err(|e| CliError::Export(e.into()))?;
            if let Some(note) = stats.skipped_note() {
                eprintln!("ringtrace: convert {}: {note}", input.display());
            }
            out.into_inner().map_err(|e| CliError::File {
                what: "writing",
                path: output.display().to_string(),
                source: e.into_error(),
            })?
        }
    };
    f.sync_all().map_err(|source| CliError::File {
        what: "writing",
        path: output.display().to_string(),
        source,
    })
}
