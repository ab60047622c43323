//! The columnar encoding of a trace for the HTML timeline: one column per
//! attribute (time, lane, CPU, name, kind, end of its detail text), typed
//! arrays the page decodes once from base64, and string tables written once.
//!
//! ```text
//! events  t f64 (ns since the first item)  lane u32  cpu u32  name u32  kind u8  detail_end u32
//! spans   start f64  end f64  lane u32  name u32  depth u32  flags u8  event u32 (its begin, or end)
//! lost    t f64  cpu u32  count f64 (-1: not stored in the page)
//! ```
//!
//! An event's detail text (its fields as `name=value`, or its message) is
//! `detail[detail_end[i-1]..detail_end[i]]` of one UTF-8 blob, streamed to
//! the output as the records are read; only the fixed-size columns stay in
//! memory. Spans are paired here, per thread, from the span begin and end
//! records (see [`crate::json`]'s module docs): a begin whose end is not in
//! the trace ends at the trace's last item (flag [`SPAN_NO_END`]), an end
//! whose begin is not (overwritten) starts at its thread's first record in
//! the trace (flag [`SPAN_NO_BEGIN`]); both are counted.

use foldhash::{HashMap, HashMapExt as _};
use std::borrow::Cow;
use std::io::{self, Write};

use crate::export::records::ItemSink;
use crate::json::{SPAN_BEGIN, SPAN_END, SPAN_SYSTEM};
use crate::tracedat::render::{fields_text_into, FileRenderer};
use crate::tracedat::{FieldValue, ItemRef, TraceDatError};

/// Kind of an event: a typed event.
pub const KIND_EVENT: u8 = 0;
/// Kind of an event: a binary printk (`ftrace/bprint`).
pub const KIND_PRINTK: u8 = 1;
/// Kind of an event: a marker (`ftrace/print`).
pub const KIND_MARKER: u8 = 2;
/// Kind of an event: a span begin.
pub const KIND_SPAN_BEGIN: u8 = 3;
/// Kind of an event: a span end.
pub const KIND_SPAN_END: u8 = 4;
/// Span flag: its begin is not in the trace.
pub const SPAN_NO_BEGIN: u8 = 1;
/// Span flag: its end is not in the trace.
pub const SPAN_NO_END: u8 = 2;

/// A span begun and not yet ended on a thread.
#[derive(Debug)]
struct Open {
    id: u64,
    name: u32,
    start: f64,
    event: u32,
}

/// The event columns.
#[derive(Debug, Default)]
pub struct Events {
    pub(super) t: Vec<f64>,
    pub(super) lane: Vec<u32>,
    pub(super) cpu: Vec<u32>,
    pub(super) name: Vec<u32>,
    pub(super) kind: Vec<u8>,
    pub(super) detail_end: Vec<u32>,
}

/// The span columns.
#[derive(Debug, Default)]
pub struct Spans {
    pub(super) start: Vec<f64>,
    pub(super) end: Vec<f64>,
    pub(super) lane: Vec<u32>,
    pub(super) name: Vec<u32>,
    pub(super) depth: Vec<u32>,
    pub(super) flags: Vec<u8>,
    pub(super) event: Vec<u32>,
}

/// The lost-events columns.
#[derive(Debug, Default)]
pub struct Lost {
    pub(super) t: Vec<f64>,
    pub(super) cpu: Vec<u32>,
    pub(super) count: Vec<f64>,
}

/// The whole encoded trace but the detail blob (streamed to `detail`).
#[derive(Debug)]
pub struct Encoder<D> {
    pub(super) events: Events,
    pub(super) spans: Spans,
    pub(super) lost: Lost,
    /// Thread lanes in order of first sight: (tid, name).
    pub(super) threads: Vec<(i32, String)>,
    /// Time of each thread lane's first record.
    lane_start: Vec<f64>,
    lane_of: HashMap<i32, u32>,
    /// CPU lanes in order of first sight.
    pub(super) cpus: Vec<u32>,
    cpu_lane: HashMap<u32, u32>,
    /// Event and span names: (system, name).
    pub(super) names: Vec<(String, String)>,
    name_of: HashMap<String, HashMap<String, u32>>,
    /// Name of the records of a format (all but printk and spans), by id.
    by_format: HashMap<u32, u32>,
    open: HashMap<u32, Vec<Open>>,
    /// Raw time stamp (ns) of the first item: the time origin.
    pub(super) t0: Option<u64>,
    /// Time (relative ns) of the last item.
    pub(super) t_last: f64,
    detail: D,
    detail_len: u64,
    /// Scratch: the text of the record being added (reused).
    text: String,
    /// Records whose fields could not be decoded (skipped, counted).
    pub(super) undecodable: u64,
    /// Damaged pages skipped.
    pub(super) damaged_pages: u64,
    /// The first skipped record or page, and why.
    pub(super) first_skipped: Option<String>,
}

impl<D: Write> Encoder<D> {
    /// An empty encoding whose detail text goes to `detail`.
    pub fn new(detail: D) -> Self {
        Encoder {
            events: Events::default(),
            spans: Spans::default(),
            lost: Lost::default(),
            threads: Vec::new(),
            lane_start: Vec::new(),
            lane_of: HashMap::new(),
            cpus: Vec::new(),
            cpu_lane: HashMap::new(),
            names: Vec::new(),
            name_of: HashMap::new(),
            by_format: HashMap::new(),
            open: HashMap::new(),
            t0: None,
            t_last: 0.0,
            detail,
            detail_len: 0,
            text: String::new(),
            undecodable: 0,
            damaged_pages: 0,
            first_skipped: None,
        }
    }

    /// Counts a record or page skipped, remembering the first reason.
    pub fn skipped(&mut self, page: bool, why: &TraceDatError) {
        if page {
            self.damaged_pages += 1;
        } else {
            self.undecodable += 1;
        }
        self.first_skipped.get_or_insert_with(|| why.to_string());
    }

    fn rel(&mut self, ns: u64) -> f64 {
        let t0 = *self.t0.get_or_insert(ns);
        // Merged items come in time order; a stamp before the origin (a
        // damaged page) is clamped rather than drawn before the axis.
        let t = ns.saturating_sub(t0) as f64;
        if t > self.t_last {
            self.t_last = t;
        }
        t
    }

    fn cpu_lane(&mut self, cpu: u32) -> u32 {
        let n = self.cpus.len() as u32;
        *self.cpu_lane.entry(cpu).or_insert_with(|| {
            self.cpus.push(cpu);
            n
        })
    }

    fn name_id(&mut self, system: &str, name: &str) -> u32 {
        if let Some(id) = self.name_of.get(system).and_then(|m| m.get(name)) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push((system.to_string(), name.to_string()));
        self.name_of
            .entry(system.to_string())
            .or_default()
            .insert(name.to_string(), id);
        id
    }

    fn push_detail(&mut self, text: &str) -> Result<u32, io::Error> {
        self.detail.write_all(text.as_bytes())?;
        self.detail_len += text.len() as u64;
        u32::try_from(self.detail_len).map_err(|_| {
            io::Error::other("the trace's event texts pass 4 GiB: too large for one HTML page")
        })
    }

    /// Adds one item of the merged records. A record that cannot be decoded
    /// gives the error before anything of it is added.
    pub fn item(
        &mut self,
        render: &FileRenderer<'_>,
        item: ItemRef<'_>,
    ) -> Result<(), EncodeError> {
        let info = render.info();
        match item {
            ItemRef::Lost { cpu, ts, count, .. } => {
                let t = self.rel(info.ts_ns(ts));
                self.cpu_lane(cpu);
                self.lost.t.push(t);
                self.lost.cpu.push(cpu);
                self.lost.count.push(count.map_or(-1.0, |c| c as f64));
            }
            ItemRef::Event(rec) => {
                let view = render.view(rec)?;
                let d = &view.decoded;
                let t = self.rel(info.ts_ns(rec.ts));
                let lane = self.thread_lane(d.pid, render, t);
                let cpu = self.cpu_lane(rec.cpu);
                let system = view.system();
                let span = system == SPAN_SYSTEM
                    && (d.format.name == SPAN_BEGIN || d.format.name == SPAN_END);
                let (kind, name, text) = if span {
                    let begin = d.format.name == SPAN_BEGIN;
                    let name = str_field(&d.fields, "name").unwrap_or("?");
                    let rest: Vec<(&str, FieldValue)> = d
                        .fields
                        .iter()
                        .filter(|(n, _)| *n != "name")
                        .cloned()
                        .collect();
                    let kind = if begin {
                        KIND_SPAN_BEGIN
                    } else {
                        KIND_SPAN_END
                    };
                    let mut text = std::mem::take(&mut self.text);
                    fields_text_into(&mut text, &rest);
                    (kind, self.name_id(system, name), Cow::Owned(text))
                } else {
                    let kind = match (system, d.format.name.as_str()) {
                        (crate::tracedat::FTRACE_SYSTEM, "bprint") => KIND_PRINTK,
                        (crate::tracedat::FTRACE_SYSTEM, "print") => KIND_MARKER,
                        _ => KIND_EVENT,
                    };
                    // A printk is named by its call site; any other record
                    // by its format alone: looked up by the format's id.
                    let name = match (kind, self.by_format.get(&d.format.id)) {
                        (KIND_PRINTK, _) | (_, None) => {
                            let id = self.name_id(system, &view.name);
                            if kind != KIND_PRINTK {
                                self.by_format.insert(d.format.id, id);
                            }
                            id
                        }
                        (_, Some(id)) => *id,
                    };
                    let text = match &view.message {
                        Some(m) => Cow::Borrowed(m.as_str()),
                        None => {
                            let mut text = std::mem::take(&mut self.text);
                            fields_text_into(&mut text, &d.fields);
                            Cow::Owned(text)
                        }
                    };
                    (kind, name, text)
                };
                let end = self.push_detail(&text)?;
                if let Cow::Owned(buf) = text {
                    // Kept for the next record's text.
                    self.text = buf;
                }
                let index = u32::try_from(self.events.t.len()).map_err(|_| {
                    io::Error::other("the trace has more than 2^32 events: too many for one page")
                })?;
                let e = &mut self.events;
                e.t.push(t);
                e.lane.push(lane);
                e.cpu.push(cpu);
                e.name.push(name);
                e.kind.push(kind);
                e.detail_end.push(end);
                if span {
                    let id = u64_field(&d.fields, "id").unwrap_or(0);
                    self.span_edge(kind == KIND_SPAN_BEGIN, lane, id, name, t, index);
                }
            }
        }
        Ok(())
    }

    fn thread_lane(&mut self, tid: i32, render: &FileRenderer<'_>, t: f64) -> u32 {
        let n = self.threads.len() as u32;
        if let Some(l) = self.lane_of.get(&tid) {
            return *l;
        }
        self.threads.push((tid, render.comm(tid).to_string()));
        self.lane_start.push(t);
        self.lane_of.insert(tid, n);
        n
    }

    /// Opens or closes a span on `lane`. An end closes the innermost open
    /// span of the same id and name; one with no such span started before
    /// the trace (its begin was overwritten or never read): it is drawn from
    /// the thread's first record.
    fn span_edge(&mut self, begin: bool, lane: u32, id: u64, name: u32, t: f64, event: u32) {
        let stack = self.open.entry(lane).or_default();
        if begin {
            stack.push(Open {
                id,
                name,
                start: t,
                event,
            });
            return;
        }
        let depth = stack.len();
        match stack.iter().rposition(|o| o.id == id && o.name == name) {
            Some(p) => {
                let o = stack.remove(p);
                push_span(&mut self.spans, o.start, t, lane, name, p, 0, o.event);
            }
            None => {
                let from = self.lane_start[lane as usize];
                push_span(
                    &mut self.spans,
                    from,
                    t,
                    lane,
                    name,
                    depth,
                    SPAN_NO_BEGIN,
                    event,
                )
            }
        }
    }

    /// Ends the spans still open at the trace's last item; returns the
    /// detail sink.
    pub fn finish(&mut self) -> Result<&mut D, io::Error> {
        let end = self.t_last;
        let mut lanes: Vec<u32> = self.open.keys().copied().collect();
        lanes.sort_unstable();
        for lane in lanes {
            let stack = self.open.remove(&lane).unwrap_or_default();
            for (depth, o) in stack.into_iter().enumerate() {
                let s = &mut self.spans;
                push_span(s, o.start, end, lane, o.name, depth, SPAN_NO_END, o.event);
            }
        }
        self.detail.flush()?;
        Ok(&mut self.detail)
    }
}

#[allow(clippy::too_many_arguments)] // one span's columns, named
fn push_span(
    s: &mut Spans,
    start: f64,
    end: f64,
    lane: u32,
    name: u32,
    depth: usize,
    flags: u8,
    event: u32,
) {
    s.start.push(start);
    s.end.push(end);
    s.lane.push(lane);
    s.name.push(name);
    s.depth.push(depth as u32);
    s.flags.push(flags);
    s.event.push(event);
}

fn str_field<'a>(fields: &'a [(&str, FieldValue)], name: &str) -> Option<&'a str> {
    fields.iter().find_map(|(n, v)| match v {
        FieldValue::Str(s) if *n == name => Some(s.as_str()),
        _ => None,
    })
}

fn u64_field(fields: &[(&str, FieldValue)], name: &str) -> Option<u64> {
    fields.iter().find_map(|(n, v)| match v {
        FieldValue::Unsigned(u) if *n == name => Some(*u),
        FieldValue::Signed(s) if *n == name => Some(*s as u64),
        _ => None,
    })
}

/// Why an item could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The record does not match its format (skippable).
    #[error(transparent)]
    TraceDat(#[from] TraceDatError),
    /// Writing the detail text failed, or the trace is too large.
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl<D: Write> ItemSink for Encoder<D> {
    type Error = EncodeError;

    fn item(&mut self, render: &FileRenderer<'_>, item: ItemRef<'_>) -> Result<(), EncodeError> {
        Encoder::item(self, render, item)
    }

    fn skipped(&mut self, page: bool, why: &TraceDatError) {
        Encoder::skipped(self, page, why);
    }

    fn decode_error(e: EncodeError) -> Result<TraceDatError, EncodeError> {
        match e {
            EncodeError::TraceDat(e) => Ok(e),
            e => Err(e),
        }
    }
}
