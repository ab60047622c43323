//! `report`, `dump` and `convert`: everything that reads a trace.dat file.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use ringtrace::json::{tracedat_to_json, JsonOptions};
use ringtrace::tracedat::{
    CpuData, FileRenderer, RenderOptions, TraceDatInfo, TraceDatReader, TraceDatVersion, TraceItem,
};

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

/// `ringtrace report`.
pub fn report(path: &Path, cpus: &[u32], raw: bool, ns: bool, json: bool) -> Result<(), CliError> {
    if json && (!cpus.is_empty() || raw || ns) {
        return Err(CliError::Usage(
            "--json writes every event: it takes no --cpu, -R or -t".into(),
        ));
    }
    let mut r = open(path)?;
    let stdout = std::io::stdout();
    if json {
        let (mut out, stats) = tracedat_to_json(&mut r, stdout.lock(), &JsonOptions::default())
            .map_err(|source| CliError::Json {
                path: path.display().to_string(),
                source,
            })?;
        out.flush().map_err(CliError::Output)?;
        // As the text report: what was skipped is a note, and the rest is
        // in the output.
        if let Some(note) = stats.skipped_note() {
            eprintln!("ringtrace: report {}: {note}", path.display());
        }
        return Ok(());
    }
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
    let info = r.info().clone();
    let render = FileRenderer::new(&info);
    let opts = RenderOptions {
        raw,
        ns_timestamps: ns,
        ..RenderOptions::default()
    };
    let mut out = BufWriter::new(stdout.lock());
    let mut line = String::with_capacity(256);
    // As `trace-cmd report`: a record that cannot be decoded, or a damaged
    // page, is skipped and counted, and the report goes on.
    let mut skipped = Skipped::default();
    for item in r.records() {
        let item = match item {
            Ok(item) => item,
            Err(e) if e.is_skippable() => {
                skipped.page(e);
                continue;
            }
            Err(e) => return Err(bad(path)(e)),
        };
        if !cpus.is_empty() && !cpus.contains(&item.cpu()) {
            continue;
        }
        line.clear();
        match &item {
            TraceItem::Lost { cpu, count, .. } => render.write_lost(&mut line, *cpu, *count),
            TraceItem::Event(rec) => match render.write_line(&mut line, rec, &opts) {
                Ok(()) => skipped.printed += 1,
                Err(e) => {
                    skipped.record(e);
                    continue;
                }
            },
        }
        out.write_all(line.as_bytes()).map_err(CliError::Output)?;
    }
    out.flush().map_err(CliError::Output)?;
    drop(out);
    skipped.finish(path)
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

/// `ringtrace convert`.
pub fn convert(input: &Path, output: &Path, format: Format) -> Result<(), CliError> {
    let mut r = open(input)?;
    let f = File::create(output).map_err(|source| CliError::File {
        what: "creating",
        path: output.display().to_string(),
        source,
    })?;
    let f = match format {
        Format::Json => {
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
        Format::Dat | Format::Dat7 => {
            let version = match format {
                Format::Dat7 => TraceDatVersion::V7,
                _ => TraceDatVersion::V6,
            };
            let w = ringtrace::tracedat::convert(&mut r, BufWriter::new(f), version)
                .map_err(bad(input))?;
            w.into_inner().map_err(|e| CliError::File {
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
