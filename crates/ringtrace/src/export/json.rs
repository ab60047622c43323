//! Chrome trace-event JSON (the format the Perfetto UI and chrome://tracing
//! open), written as a stream: one event at a time to any [`io::Write`],
//! never a whole-trace value in memory.
//!
//! ```text
//! {"traceEvents":[
//!  {"ph":"M","name":"process_name","pid":1,"tid":0,"args":{"name":"ringtrace"}},
//!  {"ph":"M","name":"thread_name","pid":1,"tid":4242,"args":{"name":"worker"}},   <- first sight of a thread
//!  {"ph":"i","s":"t","pid":1,"tid":4242,"ts":1234.5,"name":"sample","cat":"demo","args":{"cpu":1,"value":7}},
//!  {"ph":"B","pid":1,"tid":4242,"ts":1235.0,"name":"load","cat":"ringtrace","args":{"id":3}},   <- ringtrace/span_begin
//!  {"ph":"E","pid":1,"tid":4242,"ts":1240.0,"name":"load","cat":"ringtrace","args":{"id":3}},   <- ringtrace/span_end
//!  {"ph":"i","s":"g","pid":1,"tid":0,"ts":1241.0,"name":"lost events","args":{"cpu":0,"count":12}}
//! ],"displayTimeUnit":"ns"}
//! ```
//!
//! - `ts` is in microseconds (a float: ns precision is kept in the fraction).
//! - Events are instant events on their thread's track with their decoded
//!   fields as args; binary printk and marker records carry their formatted
//!   text as `args.message` (binary printk events are named by their call
//!   site, `file:line`, as in the text output).
//! - Spans: records of system `ringtrace` named `span_begin` / `span_end`
//!   (fields `__data_loc char[] name` and `u64 id`, as the `tracing` layer
//!   writes them) become `B` / `E` slices named by their `name` field, with
//!   the span's id and fields as args. An `E` whose `B` is not open on its
//!   thread (overwritten, lost) is dropped and counted
//!   ([`JsonStats::orphan_ends`]): an `E` ends whatever slice is innermost.
//! - The `tracing` layer's own records (see `tracing_records.rs`): call-site
//!   events carry their level, target, module path, file and line as args
//!   (from the call site's `print fmt` head,
//!   [`callsite`](crate::export::callsite)); a span's creation and its
//!   `span_close` become an async slice (`b` / `e`) of its lifetime with
//!   its entries nested inside; span ids are unique over the trace (a
//!   generation tells apart spans that reused an id) and strings where a
//!   JSON number would not hold them.
//! - `double` fields are JSON numbers (NaN and infinities, which JSON
//!   lacks, are strings).
//! - Lost events become global instant events named `lost events`.
//!
//! Strings and numbers are written by `serde_json`, so every string is
//! escaped correctly whatever it holds.

use std::collections::BTreeMap;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::sync::Arc;

use crate::export::callsite::CallsiteHead;

use crate::export::records::ItemSink;
use crate::tracedat::render::FileRenderer;
use crate::tracedat::{FieldValue, ItemRef, TraceDatError, TraceDatReader, TraceItem};

/// System of the span event types (see the module docs).
#[doc(hidden)]
pub const SPAN_SYSTEM: &str = "ringtrace";
/// Name of the span-begin event type.
#[doc(hidden)]
pub const SPAN_BEGIN: &str = "span_begin";
/// Name of the span-end event type.
#[doc(hidden)]
pub const SPAN_END: &str = "span_end";
/// Name of the span-close event type (the end of a span's lifetime).
#[doc(hidden)]
pub const SPAN_CLOSE: &str = "span_close";
/// System of the event types the `tracing` layer makes per call site.
#[doc(hidden)]
pub const TRACING_SYSTEM: &str = "tracing";

mod out;
mod spans;
mod tracing_records;

/// Why a JSON export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Writing the output failed.
    #[error("I/O error while writing JSON: {0}")]
    Io(#[from] io::Error),
    /// Reading the trace.dat source failed.
    #[error(transparent)]
    TraceDat(#[from] TraceDatError),
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        JsonError::Io(io::Error::other(e))
    }
}

/// Options of the JSON output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonOptions {
    /// The `pid` of the threads [`processes`](Self::processes) does not
    /// place (all of them when it is empty).
    pub pid: u32,
    /// The process name shown for `pid`.
    pub process_name: String,
    /// The process of each thread where it is known: thread id to the
    /// process's pid and name. Each process gets its own track group
    /// (`process_name` metadata), as forked processes and sessions of
    /// several processes need.
    pub processes: BTreeMap<i32, (u32, String)>,
}

impl Default for JsonOptions {
    /// `pid` 1, named `ringtrace`; no thread placed.
    fn default() -> Self {
        JsonOptions {
            pid: 1,
            process_name: "ringtrace".to_string(),
            processes: BTreeMap::new(),
        }
    }
}

impl JsonOptions {
    /// The options of an export of this process's own tracer: its real
    /// pid, named after its executable.
    ///
    /// ```
    /// let o = ringtrace::json::JsonOptions::this_process();
    /// assert_eq!(o.pid, std::process::id());
    /// ```
    #[must_use]
    pub fn this_process() -> Self {
        let name = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "ringtrace".to_string());
        JsonOptions {
            pid: std::process::id(),
            process_name: name,
            processes: BTreeMap::new(),
        }
    }

    /// These options with [`processes`](Self::processes) taken from the
    /// trace.dat's record of each thread's process when they place no
    /// thread themselves.
    #[must_use]
    pub fn with_processes_of(&self, info: &crate::tracedat::read::TraceDatInfo) -> Self {
        let mut o = self.clone();
        if o.processes.is_empty() {
            o.processes = info
                .processes
                .iter()
                .map(|(tid, pid, name)| (*tid, (*pid, name.clone())))
                .collect();
        }
        o
    }
}

/// Counters of a JSON export.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JsonStats {
    /// Instant events written.
    pub instants: u64,
    /// `B` events written.
    pub begins: u64,
    /// `E` events written.
    pub ends: u64,
    /// Threads named (`thread_name` metadata).
    pub threads: u64,
    /// Lost-event markers written.
    pub lost_markers: u64,
    /// Records skipped because the file's formats cannot decode them (an
    /// unknown event id, fields past the record's end): not in the
    /// output, as `trace-cmd report` shows them only as `[UNKNOWN EVENT]`.
    pub undecodable: u64,
    /// Damaged pages skipped (a header or an event past the page's data):
    /// their records are not in the output; the export goes on with the
    /// next page.
    pub damaged_pages: u64,
    /// The first record or page skipped, and why (for the note a caller
    /// prints when anything was skipped).
    pub first_skipped: Option<String>,
    /// Span lifetimes begun (async `b` events: a span's creation).
    pub lifetimes: u64,
    /// `span_end` records dropped: their span was not entered on that
    /// thread in the trace (its `span_begin` was overwritten or lost).
    pub orphan_ends: u64,
    /// `span_close` records dropped: their span's creation is not in the
    /// trace.
    pub orphan_closes: u64,
}

impl JsonStats {
    /// Records, pages and span ends skipped, for a caller's note: `None`
    /// when nothing was, else a sentence such as "2 record(s) could not be
    /// decoded and were skipped (the first: ...)".
    pub fn skipped_note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.undecodable > 0 {
            parts.push(format!(
                "{} record(s) could not be decoded and were skipped",
                self.undecodable
            ));
        }
        if self.damaged_pages > 0 {
            parts.push(format!(
                "{} damaged page(s) were skipped",
                self.damaged_pages
            ));
        }
        if let Some(first) = &self.first_skipped {
            if let Some(last) = parts.last_mut() {
                last.push_str(&format!(" (the first: {first})"));
            }
        }
        if self.orphan_ends + self.orphan_closes > 0 {
            parts.push(format!(
                "{} span end(s) and {} span close(s) were dropped: their span's \
                 begin or creation is not in the trace (overwritten or lost)",
                self.orphan_ends, self.orphan_closes
            ));
        }
        if parts.is_empty() {
            return None;
        }
        Some(parts.join("; "))
    }
}

/// Writes a JSON value of a decoded field.
fn write_value<W: Write>(w: &mut W, v: &FieldValue) -> Result<(), JsonError> {
    match v {
        FieldValue::Unsigned(u) => out::write_int(w, *u)?,
        FieldValue::Signed(s) => out::write_int(w, *s)?,
        FieldValue::Str(s) => out::write_str(w, s)?,
        FieldValue::Array(a) => {
            w.write_all(b"[")?;
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                write_value(w, x)?;
            }
            w.write_all(b"]")?;
        }
        FieldValue::Float(bits) => {
            let x = f64::from_bits(*bits);
            if x.is_finite() {
                serde_json::to_writer(&mut *w, &x)?;
            } else {
                // JSON has no NaN or infinity: write them as strings.
                serde_json::to_writer(&mut *w, &x.to_string())?;
            }
        }
        FieldValue::Bytes(b) => {
            let mut s = String::with_capacity(2 + 2 * b.len());
            s.push_str("0x");
            for x in b {
                s.push_str(&format!("{x:02x}"));
            }
            serde_json::to_writer(&mut *w, &s)?;
        }
    }
    Ok(())
}

/// The streaming writer. Call [`finish`](Self::finish) to close the JSON.
#[derive(Debug)]
pub struct JsonWriter<W: Write> {
    out: BufWriter<W>,
    pid: u32,
    /// The process of each placed thread (see [`JsonOptions::processes`]).
    processes: BTreeMap<i32, (u32, String)>,
    /// Processes named so far (`process_name` metadata written).
    named: foldhash::HashSet<u32>,
    threads: foldhash::HashSet<i32>,
    stats: JsonStats,
    /// The spans followed so far (lifetimes, entries, generations).
    spans: spans::Spans,
    /// The call-site head of each event format id seen (`None`: not a
    /// `tracing` call site).
    heads: foldhash::HashMap<u32, Option<Arc<CallsiteHead>>>,
    /// Per event id: the escaped name, category and arg keys of its
    /// format, made on first use.
    typed: Vec<Option<out::TypedHead>>,
    /// The trace's wall-clock start and its `ts` here, for the metadata.
    wall_start: Option<(crate::clock::WallStart, f64)>,
}

impl<W: Write> JsonWriter<W> {
    /// Starts the document and names the process.
    pub fn new(out: W, opts: &JsonOptions) -> Result<Self, JsonError> {
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        write!(
            out,
            "{{\"traceEvents\":[\n{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{},\"tid\":0,\"args\":{{\"name\":",
            opts.pid
        )?;
        serde_json::to_writer(&mut out, &opts.process_name)?;
        out.write_all(b"}}")?;
        Ok(JsonWriter {
            out,
            pid: opts.pid,
            processes: opts.processes.clone(),
            named: [opts.pid].into_iter().collect(),
            threads: foldhash::HashSet::default(),
            stats: JsonStats::default(),
            spans: spans::Spans::default(),
            heads: foldhash::HashMap::default(),
            typed: Vec::new(),
            wall_start: None,
        })
    }

    /// Puts the trace's wall-clock start `w` in the document's metadata,
    /// with `ts_us`, its time on the events' `ts` scale, so that a
    /// viewer maps any `ts` to a wall-clock time:
    /// `"metadata":{"ringtrace-wall-clock-start-ns":N,
    /// "ringtrace-wall-clock-start-ts-us":T}` (ns since the Unix epoch).
    pub fn wall_start(&mut self, w: crate::clock::WallStart, ts_us: f64) {
        self.wall_start = Some((w, ts_us));
    }

    /// Counters so far.
    pub fn stats(&self) -> JsonStats {
        JsonStats {
            orphan_ends: self.spans.orphan_ends,
            orphan_closes: self.spans.orphan_closes,
            ..self.stats.clone()
        }
    }

    /// Counts a record that `item` could not decode (skipped, not written).
    pub fn skipped_record(&mut self, why: &TraceDatError) {
        self.stats.undecodable += 1;
        self.stats
            .first_skipped
            .get_or_insert_with(|| why.to_string());
    }

    /// Counts a damaged page the reader skipped.
    pub fn skipped_page(&mut self, why: &TraceDatError) {
        self.stats.damaged_pages += 1;
        self.stats
            .first_skipped
            .get_or_insert_with(|| why.to_string());
    }

    /// Names thread `tid` (once: later calls for the same tid do nothing).
    pub fn thread_name(&mut self, tid: i32, name: &str) -> Result<(), JsonError> {
        if !self.threads.insert(tid) {
            return Ok(());
        }
        let pid = self.pid_of(tid);
        if self.named.insert(pid) {
            let pname = self.processes.get(&tid).map_or("", |p| p.1.as_str());
            write!(
                self.out,
                ",\n{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":"
            )?;
            serde_json::to_writer(&mut self.out, pname)?;
            self.out.write_all(b"}}")?;
        }
        write!(
            self.out,
            ",\n{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{pid},\"tid\":{tid},\"args\":{{\"name\":"
        )?;
        serde_json::to_writer(&mut self.out, name)?;
        self.out.write_all(b"}}")?;
        self.stats.threads += 1;
        Ok(())
    }

    /// The pid of thread `tid`'s process.
    fn pid_of(&self, tid: i32) -> u32 {
        self.processes.get(&tid).map_or(self.pid, |p| p.0)
    }

    /// Whether `tid` was named already.
    pub fn has_thread(&self, tid: i32) -> bool {
        self.threads.contains(&tid)
    }

    /// `,\n{"ph":PH,["s":"t",]"pid":P,"tid":T,"ts":TS,"name":N,"cat":C`.
    fn head(&mut self, ph: &str, tid: i32, ts_us: f64, name: &str, cat: &str) -> io::Result<()> {
        let pid = self.pid_of(tid);
        let o = &mut self.out;
        o.write_all(b",\n{\"ph\":\"")?;
        o.write_all(ph.as_bytes())?;
        o.write_all(if ph == "i" {
            b"\",\"s\":\"t\",\"pid\":"
        } else {
            b"\",\"pid\":"
        })?;
        out::write_int(o, pid)?;
        o.write_all(b",\"tid\":")?;
        out::write_int(o, tid)?;
        o.write_all(b",\"ts\":")?;
        serde_json::to_writer(&mut *o, &ts_us).map_err(io::Error::other)?;
        o.write_all(b",\"name\":")?;
        out::write_str(o, name)?;
        o.write_all(b",\"cat\":")?;
        out::write_str(o, cat)
    }

    fn args(&mut self, extra: &[(&str, &str)], fields: &[(&str, FieldValue)]) -> io::Result<()> {
        self.out.write_all(b",\"args\":{")?;
        let mut first = true;
        for (k, v) in extra {
            if !first {
                self.out.write_all(b",")?;
            }
            first = false;
            out::write_str(&mut self.out, k)?;
            self.out.write_all(b":")?;
            out::write_str(&mut self.out, v)?;
        }
        for (k, v) in fields {
            if !first {
                self.out.write_all(b",")?;
            }
            first = false;
            out::write_str(&mut self.out, k)?;
            self.out.write_all(b":")?;
            write_value(&mut self.out, v).map_err(|e| match e {
                JsonError::Io(e) => e,
                other => io::Error::other(other.to_string()),
            })?;
        }
        self.out.write_all(b"}}")
    }

    /// An instant event on `tid`'s track: `extra` string args first (such
    /// as `message`), then `fields`.
    pub fn instant(
        &mut self,
        tid: i32,
        ts_us: f64,
        name: &str,
        cat: &str,
        extra: &[(&str, &str)],
        fields: &[(&str, FieldValue)],
    ) -> Result<(), JsonError> {
        self.head("i", tid, ts_us, name, cat)?;
        self.args(extra, fields)?;
        self.stats.instants += 1;
        Ok(())
    }

    /// [`Self::instant`] of a record decoded by `format` (named by it,
    /// with its fields and no extra args), through the bytes of its name,
    /// category and arg keys, escaped once per format.
    fn typed_instant(
        &mut self,
        tid: i32,
        ts_us: f64,
        format: &crate::tracedat::EventFormat,
        fields: &[(&str, FieldValue)],
    ) -> Result<(), JsonError> {
        let pid = self.pid_of(tid);
        let id = format.id as usize;
        if self.typed.get(id).is_none_or(|t| t.is_none()) {
            if self.typed.len() <= id {
                self.typed.resize_with(id + 1, || None);
            }
            self.typed[id] = Some(out::TypedHead::new(format)?);
        }
        let Some(Some(t)) = self.typed.get(id) else {
            unreachable!("made above");
        };
        let o = &mut self.out;
        o.write_all(b",\n{\"ph\":\"i\",\"s\":\"t\",\"pid\":")?;
        out::write_int(o, pid)?;
        o.write_all(b",\"tid\":")?;
        out::write_int(o, tid)?;
        o.write_all(b",\"ts\":")?;
        serde_json::to_writer(&mut *o, &ts_us)?;
        o.write_all(&t.name_cat_args)?;
        // The fields are the format's own, in order, less the unlisted
        // ones: find each key by name past the last one used.
        let mut k = 0;
        for (i, (name, v)) in fields.iter().enumerate() {
            while t.keys.get(k).is_some_and(|(n, _)| n != name) {
                k += 1;
            }
            if i > 0 {
                o.write_all(b",")?;
            }
            match t.keys.get(k) {
                Some((_, key)) => o.write_all(key)?,
                None => {
                    out::write_str(o, name)?;
                    o.write_all(b":")?;
                }
            }
            k += 1;
            write_value(o, v)?;
        }
        o.write_all(b"}}")?;
        self.stats.instants += 1;
        Ok(())
    }

    /// Begins a slice `name` on `tid`'s track.
    pub fn begin(
        &mut self,
        tid: i32,
        ts_us: f64,
        name: &str,
        cat: &str,
        fields: &[(&str, FieldValue)],
    ) -> Result<(), JsonError> {
        self.slice_edge("B", tid, ts_us, name, cat, fields)?;
        self.stats.begins += 1;
        Ok(())
    }

    /// Ends the innermost open slice on `tid`'s track.
    pub fn end(
        &mut self,
        tid: i32,
        ts_us: f64,
        name: &str,
        cat: &str,
        fields: &[(&str, FieldValue)],
    ) -> Result<(), JsonError> {
        self.slice_edge("E", tid, ts_us, name, cat, fields)?;
        self.stats.ends += 1;
        Ok(())
    }

    /// One edge of a slice (`ph` "B" or "E") with its fields as args.
    fn slice_edge(
        &mut self,
        ph: &str,
        tid: i32,
        ts_us: f64,
        name: &str,
        cat: &str,
        fields: &[(&str, FieldValue)],
    ) -> io::Result<()> {
        self.head(ph, tid, ts_us, name, cat)?;
        self.args(&[], fields)
    }

    /// A global marker: `count` events (if known) were lost on `cpu`.
    pub fn lost(&mut self, cpu: u32, ts_us: f64, count: Option<u64>) -> Result<(), JsonError> {
        write!(
            self.out,
            ",\n{{\"ph\":\"i\",\"s\":\"g\",\"pid\":{},\"tid\":0,\"ts\":",
            self.pid
        )?;
        serde_json::to_writer(&mut self.out, &ts_us)?;
        write!(
            self.out,
            ",\"name\":\"lost events\",\"args\":{{\"cpu\":{cpu}"
        )?;
        if let Some(n) = count {
            write!(self.out, ",\"count\":{n}")?;
        }
        self.out.write_all(b"}}")?;
        self.stats.lost_markers += 1;
        Ok(())
    }

    /// Closes the document, flushes, and returns the output.
    pub fn finish(mut self) -> Result<W, JsonError> {
        self.out.write_all(b"\n],\"displayTimeUnit\":\"ns\"")?;
        if let Some((w, ts_us)) = self.wall_start {
            let ns = w.realtime_ns;
            write!(
                self.out,
                ",\"metadata\":{{\"ringtrace-wall-clock-start-ns\":{ns}"
            )?;
            self.out
                .write_all(b",\"ringtrace-wall-clock-start-ts-us\":")?;
            serde_json::to_writer(&mut self.out, &ts_us)?;
            self.out.write_all(b"}")?;
        }
        self.out.write_all(b"}\n")?;
        self.out
            .into_inner()
            .map_err(|e| JsonError::Io(e.into_error()))
    }
}

/// Writes every record of a trace.dat file as JSON (merged by time stamp,
/// decoded through the file's own event formats); returns the output and
/// the counters. As `trace-cmd report` does, a record that cannot be
/// decoded, or a damaged page, is skipped, counted in
/// [`JsonStats::undecodable`] or [`JsonStats::damaged_pages`] (the first
/// named in [`JsonStats::first_skipped`]), and the export goes on: the
/// output is complete JSON with every other record. Only an error that
/// leaves nothing to read past it (a damaged file header, an I/O error)
/// stops it.
pub fn tracedat_to_json<R: Read + Seek, W: Write>(
    reader: &mut TraceDatReader<R>,
    out: W,
    opts: &JsonOptions,
) -> Result<(W, JsonStats), JsonError> {
    let info = reader.info().clone();
    let render = FileRenderer::new(&info);
    let mut w = JsonWriter::new(out, &opts.with_processes_of(&info))?;
    if let Some(ws) = info.wall_start {
        w.wall_start(ws, info.ts_ns(ws.clock_ts) as f64 / 1000.0);
    }
    crate::export::records::export_items(reader, &render, &mut w)?;
    let stats = w.stats();
    Ok((w.finish()?, stats))
}

impl<W: Write> JsonWriter<W> {
    /// Writes one record or lost-events item, decoded through `render`'s
    /// file formats (names its thread first, on first sight). A record
    /// that cannot be decoded gives [`JsonError::TraceDat`] before anything
    /// of it is written, so a caller may skip it and go on.
    pub fn item(&mut self, render: &FileRenderer<'_>, item: &TraceItem) -> Result<(), JsonError> {
        self.item_ref(render, item.into())
    }

    /// [`Self::item`] of a walk's item (its record borrowed).
    pub fn item_ref(
        &mut self,
        render: &FileRenderer<'_>,
        item: ItemRef<'_>,
    ) -> Result<(), JsonError> {
        let info = render.info();
        let w = self;
        match item {
            ItemRef::Lost { cpu, ts, count, .. } => {
                w.lost(cpu, info.ts_ns(ts) as f64 / 1000.0, count)?;
            }
            ItemRef::Event(rec) => {
                let view = render.view(rec)?;
                let d = &view.decoded;
                let ts_us = info.ts_ns(rec.ts) as f64 / 1000.0;
                if !w.has_thread(d.pid) {
                    w.thread_name(d.pid, render.comm(d.pid))?;
                }
                if w.tracing_record(&view, ts_us)? {
                    return Ok(());
                }
                let system = view.system();
                match &view.message {
                    Some(m) => {
                        w.instant(d.pid, ts_us, &view.name, system, &[("message", m)], &[])?
                    }
                    None => w.typed_instant(d.pid, ts_us, d.format, &d.fields)?,
                }
            }
        }
        Ok(())
    }
}

impl<W: Write> ItemSink for JsonWriter<W> {
    type Error = JsonError;

    fn item(&mut self, render: &FileRenderer<'_>, item: ItemRef<'_>) -> Result<(), JsonError> {
        self.item_ref(render, item)
    }

    fn skipped(&mut self, page: bool, why: &TraceDatError) {
        if page {
            self.skipped_page(why);
        } else {
            self.skipped_record(why);
        }
    }

    fn decode_error(e: JsonError) -> Result<TraceDatError, JsonError> {
        match e {
            JsonError::TraceDat(e) => Ok(e),
            e => Err(e),
        }
    }
}
