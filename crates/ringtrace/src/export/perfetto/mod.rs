//! Native Perfetto protobuf (`.perfetto-trace`, `.pftrace`): the format the
//! Perfetto UI and `trace_processor` read natively, written as a stream,
//! one packet at a time, to any [`io::Write`].
//!
//! ```text
//! packet { seq 1, flags CLEARED, track_descriptor { uuid 1, process { pid, process_name } } }
//! packet { seq 1, track_descriptor { uuid 2, parent 1, thread { pid, tid, thread_name } } }  <- first sight of a thread
//! packet { seq 1, flags NEEDS_STATE, interned_data { event_names, event_categories,
//!          debug_annotation_names } }                                 <- before the first use of a name
//! packet { compressed_packets: deflate of                              <- events, batched
//!   packet { ts, seq 1, flags NEEDS_STATE, track_event { INSTANT, track 2, name_iid, category_iids,
//!            debug_annotations { name_iid, uint_value | int_value | double_value | string_value } } }
//!   packet { ..., track_event { SLICE_BEGIN, track 2, name_iid, ... } }  <- ringtrace/span_begin
//!   packet { ..., track_event { SLICE_END, track 2, name_iid, ... } }    <- ringtrace/span_end
//!   packet { ..., track_event { INSTANT, track "lost events (cpu N)", cpu, count } }
//!   packet { ..., track_event { COUNTER, track "lost events so far (cpu N)", counter_value } }
//! }
//! ```
//!
//! - One track per process (`pid` and name from [`PerfettoOptions`], and
//!   each process of the file's processes option, as the JSON's) and one
//!   per thread, the child of its process's, named from the file's thread
//!   names; per CPU with losses, a track of loss markers and a
//!   counter track of the events lost so far.
//! - What each record becomes is what the JSON export makes of it
//!   ([`crate::json`]): the same iteration over the trace.dat (merged by
//!   time stamp, decoded by the file's formats through
//!   [`FileRenderer`]), spans as slices named by their `name` field,
//!   everything else as instants with their fields (or the printk and
//!   marker message) as debug annotations.
//! - Event names, categories and annotation names are interned on the one
//!   sequence (`trusted_packet_sequence_id` 1); its first packet sets
//!   `SEQ_INCREMENTAL_STATE_CLEARED`, every packet using iids sets
//!   `SEQ_NEEDS_INCREMENTAL_STATE`.
//! - Time stamps are the trace's, in ns, on Perfetto's default trace clock.
//! - Event packets are deflated in batches ([`PerfettoOptions::compress`],
//!   on by default; Perfetto's `compressed_packets`), which keeps the file
//!   well under the trace.dat; descriptors and interned names stay plain.

mod encode;
mod intern;
mod stream;
mod writer;

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, Write};

pub use writer::{Kind, PerfettoWriter};

use crate::export::records::ItemSink;
use crate::json::{JsonOptions, JsonStats, SPAN_BEGIN, SPAN_END, SPAN_SYSTEM};
use crate::tracedat::render::FileRenderer;
use crate::tracedat::{FieldValue, ItemRef, TraceDatError, TraceDatReader, TraceItem};

/// Why a Perfetto export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerfettoError {
    /// Writing the output failed.
    #[error("I/O error while writing the Perfetto trace: {0}")]
    Io(#[from] io::Error),
    /// Reading the trace.dat source failed.
    #[error(transparent)]
    TraceDat(#[from] TraceDatError),
}

/// Options of the Perfetto output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerfettoOptions {
    /// The pid of the process track.
    pub pid: u32,
    /// The process track's name.
    pub process_name: String,
    /// The process of each thread where it is known: thread id to the
    /// process's pid and name (as [`JsonOptions::processes`]). Each process
    /// gets its own track, its threads' tracks its children; an export of
    /// a trace.dat takes them from the file when this is empty.
    pub processes: BTreeMap<i32, (u32, String)>,
    /// Deflate the event packets in batches (`compressed_packets`).
    pub compress: bool,
}

impl Default for PerfettoOptions {
    /// `pid` 1, named `ringtrace`, compressed.
    fn default() -> Self {
        PerfettoOptions::from(&JsonOptions::default())
    }
}

impl From<&JsonOptions> for PerfettoOptions {
    /// The JSON's process, compressed.
    fn from(j: &JsonOptions) -> Self {
        PerfettoOptions {
            pid: j.pid,
            process_name: j.process_name.clone(),
            processes: j.processes.clone(),
            compress: true,
        }
    }
}

/// Counters of a Perfetto export: the JSON export's, with the same
/// meaning (instants, slice begins and ends, threads, loss markers,
/// records and pages skipped).
pub type PerfettoStats = JsonStats;

/// Writes every record of a trace.dat file as Perfetto protobuf (merged by
/// time stamp, decoded through the file's own event formats); returns the
/// output and the counters. As the JSON export, a record that cannot be
/// decoded, or a damaged page, is skipped and counted, and the export goes
/// on; only an error that leaves nothing to read past it stops it.
pub fn tracedat_to_perfetto<R: Read + Seek, W: Write>(
    reader: &mut TraceDatReader<R>,
    out: W,
    opts: &PerfettoOptions,
) -> Result<(W, PerfettoStats), PerfettoError> {
    let info = reader.info().clone();
    let render = FileRenderer::new(&info);
    let mut opts = opts.clone();
    if opts.processes.is_empty() {
        opts.processes = JsonOptions::default().with_processes_of(&info).processes;
    }
    let mut w = PerfettoWriter::new(out, &opts)?;
    crate::export::records::export_items(reader, &render, &mut w)?;
    let stats = w.stats();
    Ok((w.finish()?, stats))
}

impl<W: Write> PerfettoWriter<W> {
    /// Writes one record or lost-events item, decoded through `render`'s
    /// file formats (describes its thread's track first, on first sight).
    /// A record that cannot be decoded gives [`PerfettoError::TraceDat`]
    /// before anything of it is written, so a caller may skip it.
    pub fn item(
        &mut self,
        render: &FileRenderer<'_>,
        item: &TraceItem,
    ) -> Result<(), PerfettoError> {
        self.item_ref(render, item.into())
    }

    /// [`Self::item`] of a walk's item (its record borrowed).
    pub fn item_ref(
        &mut self,
        render: &FileRenderer<'_>,
        item: ItemRef<'_>,
    ) -> Result<(), PerfettoError> {
        let info = render.info();
        match item {
            ItemRef::Lost { cpu, ts, count, .. } => self.lost(cpu, info.ts_ns(ts), count),
            ItemRef::Event(rec) => {
                let view = render.view(rec)?;
                let d = &view.decoded;
                let ts = info.ts_ns(rec.ts);
                let track = self.thread(d.pid, render.comm(d.pid))?;
                let system = view.system();
                let is_span = system == SPAN_SYSTEM
                    && (d.format.name == SPAN_BEGIN || d.format.name == SPAN_END);
                if is_span {
                    let name = d
                        .fields
                        .iter()
                        .find_map(|(n, v)| match v {
                            FieldValue::Str(s) if *n == "name" => Some(s.as_str()),
                            _ => None,
                        })
                        .unwrap_or("?");
                    let rest: Vec<(&str, FieldValue)> = d
                        .fields
                        .iter()
                        .filter(|(n, _)| *n != "name")
                        .cloned()
                        .collect();
                    let kind = if d.format.name == SPAN_BEGIN {
                        Kind::Begin
                    } else {
                        Kind::End
                    };
                    return self.event(kind, track, ts, name, system, &[], &rest);
                }
                match &view.message {
                    Some(m) => self.event(
                        Kind::Instant,
                        track,
                        ts,
                        &view.name,
                        system,
                        &[("message", m)],
                        &[],
                    ),
                    None => self.typed_instant(track, ts, d.format, &d.fields),
                }
            }
        }
    }
}

impl<W: Write> ItemSink for PerfettoWriter<W> {
    type Error = PerfettoError;

    fn item(&mut self, render: &FileRenderer<'_>, item: ItemRef<'_>) -> Result<(), PerfettoError> {
        self.item_ref(render, item)
    }

    fn skipped(&mut self, page: bool, why: &TraceDatError) {
        if page {
            self.skipped_page(why);
        } else {
            self.skipped_record(why);
        }
    }

    fn decode_error(e: PerfettoError) -> Result<TraceDatError, PerfettoError> {
        match e {
            PerfettoError::TraceDat(e) => Ok(e),
            e => Err(e),
        }
    }
}
