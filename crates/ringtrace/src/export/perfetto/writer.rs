//! [`PerfettoWriter`]: tracks, interning and `TrackEvent` packets, one
//! sequence for the whole file.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use super::encode::ProtoBuf;
use super::intern::Interner;
use super::stream::{PacketStream, TRACE_PACKET};
use super::{PerfettoError, PerfettoOptions, PerfettoStats};
use crate::tracedat::{FieldValue, TraceDatError};

/// The one `trusted_packet_sequence_id` of the file (any non-zero value).
pub const SEQUENCE_ID: u64 = 1;
/// The process track's uuid; thread and loss tracks count up from it.
pub const PROCESS_UUID: u64 = 1;
/// `SEQ_INCREMENTAL_STATE_CLEARED`.
const SEQ_CLEARED: u64 = 1;
/// `SEQ_NEEDS_INCREMENTAL_STATE`.
const SEQ_NEEDS_STATE: u64 = 2;

/// `TracePacket` fields.
mod packet {
    pub const TIMESTAMP: u32 = 8;
    pub const SEQUENCE_ID: u32 = 10;
    pub const TRACK_EVENT: u32 = 11;
    pub const INTERNED_DATA: u32 = 12;
    pub const SEQUENCE_FLAGS: u32 = 13;
    pub const TRACK_DESCRIPTOR: u32 = 60;
}

/// `TrackDescriptor`, `ProcessDescriptor`, `ThreadDescriptor` fields.
mod track {
    pub const UUID: u32 = 1;
    pub const NAME: u32 = 2;
    pub const PROCESS: u32 = 3;
    pub const THREAD: u32 = 4;
    pub const PARENT_UUID: u32 = 5;
    pub const COUNTER: u32 = 8;
    pub const PID: u32 = 1;
    pub const PROCESS_NAME: u32 = 6;
    pub const TID: u32 = 2;
    pub const THREAD_NAME: u32 = 5;
}

/// `TrackEvent` fields and types, `DebugAnnotation` fields.
mod event {
    pub const CATEGORY_IIDS: u32 = 3;
    pub const DEBUG_ANNOTATIONS: u32 = 4;
    pub const TYPE: u32 = 9;
    pub const NAME_IID: u32 = 10;
    pub const TRACK_UUID: u32 = 11;
    pub const COUNTER_VALUE: u32 = 30;
    pub const SLICE_BEGIN: u64 = 1;
    pub const SLICE_END: u64 = 2;
    pub const INSTANT: u64 = 3;
    pub const COUNTER: u64 = 4;
    pub const ANN_NAME_IID: u32 = 1;
    pub const ANN_UINT: u32 = 3;
    pub const ANN_INT: u32 = 4;
    pub const ANN_DOUBLE: u32 = 5;
    pub const ANN_STRING: u32 = 6;
    pub const ANN_ARRAY: u32 = 12;
}

/// Which `TrackEvent.Type` an event gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `TYPE_INSTANT`.
    Instant,
    /// `TYPE_SLICE_BEGIN`.
    Begin,
    /// `TYPE_SLICE_END`.
    End,
}

/// The tracks of one CPU's losses: instants at each loss, and a counter of
/// the events lost so far.
#[derive(Debug, Clone, Copy)]
struct LossTracks {
    marks: u64,
    counter: u64,
    total: u64,
}

/// The interned ids of one event format's instants.
#[derive(Debug)]
struct TypedIids {
    name: u64,
    category: u64,
    /// The annotation-name iid of each field a record of it lists.
    fields: Vec<u64>,
}

/// The streaming writer. Call [`finish`](Self::finish) to flush the file.
#[derive(Debug)]
pub struct PerfettoWriter<W: Write> {
    stream: PacketStream<W>,
    pid: u32,
    /// The process of each placed thread ([`PerfettoOptions::processes`]).
    processes: BTreeMap<i32, (u32, String)>,
    /// The track of each process described so far (`pid` is
    /// [`PROCESS_UUID`]'s).
    process_tracks: HashMap<u32, u64>,
    threads: HashMap<i32, u64>,
    losses: HashMap<u32, LossTracks>,
    next_uuid: u64,
    intern: Interner,
    /// Scratch: the annotation-name iids of the event being written.
    ann_iids: Vec<u64>,
    /// Per event id: the iids of its format's name, system and fields.
    typed: Vec<Option<TypedIids>>,
    pub(super) stats: PerfettoStats,
}

impl<W: Write> PerfettoWriter<W> {
    /// Starts the file: the sequence's first packet (incremental state
    /// cleared) with the process track.
    pub fn new(out: W, opts: &PerfettoOptions) -> Result<Self, PerfettoError> {
        let mut stream = PacketStream::new(out, opts.compress);
        stream.plain(|p| {
            p.uint(packet::SEQUENCE_ID, SEQUENCE_ID);
            p.uint(packet::SEQUENCE_FLAGS, SEQ_CLEARED);
            let d = p.begin(packet::TRACK_DESCRIPTOR);
            p.uint(track::UUID, PROCESS_UUID);
            let pr = p.begin(track::PROCESS);
            p.uint(track::PID, u64::from(opts.pid));
            p.str(track::PROCESS_NAME, &opts.process_name);
            p.end(pr);
            p.end(d);
        })?;
        Ok(PerfettoWriter {
            stream,
            pid: opts.pid,
            processes: opts.processes.clone(),
            process_tracks: HashMap::from([(opts.pid, PROCESS_UUID)]),
            threads: HashMap::new(),
            losses: HashMap::new(),
            next_uuid: PROCESS_UUID + 1,
            intern: Interner::default(),
            ann_iids: Vec::new(),
            typed: Vec::new(),
            stats: PerfettoStats::default(),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> PerfettoStats {
        self.stats.clone()
    }

    /// Counts a record that could not be decoded (skipped, not written).
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

    fn uuid(&mut self) -> u64 {
        let u = self.next_uuid;
        self.next_uuid += 1;
        u
    }

    /// Whether thread `tid` has its track already.
    pub fn has_thread(&self, tid: i32) -> bool {
        self.threads.contains_key(&tid)
    }

    /// The track of thread `tid`, described (named `name`) on first sight.
    pub fn thread(&mut self, tid: i32, name: &str) -> Result<u64, PerfettoError> {
        if let Some(&u) = self.threads.get(&tid) {
            return Ok(u);
        }
        let (pid, parent) = self.process_track(tid)?;
        let uuid = self.uuid();
        self.stream.plain(|p| {
            p.uint(packet::SEQUENCE_ID, SEQUENCE_ID);
            let d = p.begin(packet::TRACK_DESCRIPTOR);
            p.uint(track::UUID, uuid);
            p.uint(track::PARENT_UUID, parent);
            let t = p.begin(track::THREAD);
            p.uint(track::PID, u64::from(pid));
            // The tid as the kernel's pid_t: int32 on the wire.
            p.int(track::TID, i64::from(tid));
            p.str(track::THREAD_NAME, name);
            p.end(t);
            p.end(d);
        })?;
        self.threads.insert(tid, uuid);
        self.stats.threads += 1;
        Ok(uuid)
    }

    /// The pid of thread `tid`'s process and the process's track,
    /// described on first sight.
    fn process_track(&mut self, tid: i32) -> Result<(u32, u64), PerfettoError> {
        let (pid, name) = match self.processes.get(&tid) {
            Some((pid, name)) => (*pid, name.as_str()),
            None => (self.pid, ""),
        };
        if let Some(&u) = self.process_tracks.get(&pid) {
            return Ok((pid, u));
        }
        let uuid = self.next_uuid;
        self.next_uuid += 1;
        self.stream.plain(|p| {
            p.uint(packet::SEQUENCE_ID, SEQUENCE_ID);
            let d = p.begin(packet::TRACK_DESCRIPTOR);
            p.uint(track::UUID, uuid);
            let pr = p.begin(track::PROCESS);
            p.uint(track::PID, u64::from(pid));
            p.str(track::PROCESS_NAME, name);
            p.end(pr);
            p.end(d);
        })?;
        self.process_tracks.insert(pid, uuid);
        Ok((pid, uuid))
    }

    /// The loss tracks of `cpu`, described on first use.
    fn loss_tracks(&mut self, cpu: u32) -> Result<LossTracks, PerfettoError> {
        if let Some(&t) = self.losses.get(&cpu) {
            return Ok(t);
        }
        let t = LossTracks {
            marks: self.uuid(),
            counter: self.uuid(),
            total: 0,
        };
        for (uuid, name, counter) in [
            (t.marks, format!("lost events (cpu {cpu})"), false),
            (t.counter, format!("lost events so far (cpu {cpu})"), true),
        ] {
            self.stream.plain(|p| {
                p.uint(packet::SEQUENCE_ID, SEQUENCE_ID);
                let d = p.begin(packet::TRACK_DESCRIPTOR);
                p.uint(track::UUID, uuid);
                p.uint(track::PARENT_UUID, PROCESS_UUID);
                p.str(track::NAME, &name);
                if counter {
                    let c = p.begin(track::COUNTER);
                    p.end(c);
                }
                p.end(d);
            })?;
        }
        self.losses.insert(cpu, t);
        Ok(t)
    }

    /// Emits the interned entries made since the last call, if any, in a
    /// plain packet before the packets that use them.
    fn emit_interned(&mut self) -> io::Result<()> {
        let Some(body) = self.intern.pending() else {
            return Ok(());
        };
        let body = body.to_vec();
        self.intern.clear_pending();
        self.stream.plain(|p| {
            p.uint(packet::SEQUENCE_ID, SEQUENCE_ID);
            p.uint(packet::SEQUENCE_FLAGS, SEQ_NEEDS_STATE);
            let m = p.begin(packet::INTERNED_DATA);
            // The entries are complete fields already.
            p.raw(&body);
            p.end(m);
        })
    }

    /// A `TrackEvent` on `track` at `ts_ns`, with `extra` string
    /// annotations first, then `fields`.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &mut self,
        kind: Kind,
        track: u64,
        ts_ns: u64,
        name: &str,
        category: &str,
        extra: &[(&str, &str)],
        fields: &[(&str, FieldValue)],
    ) -> Result<(), PerfettoError> {
        let name_iid = self.intern.name(name);
        let cat_iid = self.intern.category(category);
        self.ann_iids.clear();
        for (n, _) in extra {
            let iid = self.intern.annotation(n);
            self.ann_iids.push(iid);
        }
        for (n, _) in fields {
            let iid = self.intern.annotation(n);
            self.ann_iids.push(iid);
        }
        self.write_event(kind, track, ts_ns, (name_iid, cat_iid), extra, fields)
    }

    /// [`Self::event`] of an instant of a record decoded by `format`
    /// (named by it, with its fields and no extra annotations), its iids
    /// looked up once per format.
    pub(super) fn typed_instant(
        &mut self,
        track: u64,
        ts_ns: u64,
        format: &crate::tracedat::EventFormat,
        fields: &[(&str, FieldValue)],
    ) -> Result<(), PerfettoError> {
        let id = format.id as usize;
        if self.typed.get(id).is_none_or(|t| t.is_none()) {
            if self.typed.len() <= id {
                self.typed.resize_with(id + 1, || None);
            }
            let t = TypedIids {
                name: self.intern.name(&format.name),
                category: self.intern.category(&format.system),
                // Interned in the order `event` interns them, so that the
                // file is the same either way.
                fields: (fields.iter())
                    .map(|(n, _)| self.intern.annotation(n))
                    .collect(),
            };
            self.typed[id] = Some(t);
        }
        let Some(Some(t)) = self.typed.get(id) else {
            unreachable!("made above");
        };
        // Every record of a format decodes to the same field list.
        if t.fields.len() != fields.len() {
            let (name, system) = (format.name.as_str(), format.system.as_str());
            return self.event(Kind::Instant, track, ts_ns, name, system, &[], fields);
        }
        self.ann_iids.clear();
        self.ann_iids.extend_from_slice(&t.fields);
        let iids = (t.name, t.category);
        self.write_event(Kind::Instant, track, ts_ns, iids, &[], fields)
    }

    /// Writes an event whose name and category iids are `iids` and whose
    /// annotations' name iids are in `ann_iids`.
    fn write_event(
        &mut self,
        kind: Kind,
        track: u64,
        ts_ns: u64,
        (name_iid, cat_iid): (u64, u64),
        extra: &[(&str, &str)],
        fields: &[(&str, FieldValue)],
    ) -> Result<(), PerfettoError> {
        self.emit_interned()?;
        let b = &mut self.stream.batch;
        let p = b.begin(TRACE_PACKET);
        b.uint(packet::TIMESTAMP, ts_ns);
        b.uint(packet::SEQUENCE_ID, SEQUENCE_ID);
        b.uint(packet::SEQUENCE_FLAGS, SEQ_NEEDS_STATE);
        let e = b.begin(packet::TRACK_EVENT);
        let ty = match kind {
            Kind::Instant => event::INSTANT,
            Kind::Begin => event::SLICE_BEGIN,
            Kind::End => event::SLICE_END,
        };
        b.uint(event::TYPE, ty);
        b.uint(event::TRACK_UUID, track);
        b.uint(event::NAME_IID, name_iid);
        b.uint(event::CATEGORY_IIDS, cat_iid);
        let mut iids = self.ann_iids.iter();
        for ((_, v), iid) in extra.iter().zip(&mut iids) {
            let a = b.begin(event::DEBUG_ANNOTATIONS);
            b.uint(event::ANN_NAME_IID, *iid);
            b.str(event::ANN_STRING, v);
            b.end(a);
        }
        for ((_, v), iid) in fields.iter().zip(iids) {
            let a = b.begin(event::DEBUG_ANNOTATIONS);
            b.uint(event::ANN_NAME_IID, *iid);
            annotation_value(b, v);
            b.end(a);
        }
        b.end(e);
        b.end(p);
        match kind {
            Kind::Instant => self.stats.instants += 1,
            Kind::Begin => self.stats.begins += 1,
            Kind::End => self.stats.ends += 1,
        }
        Ok(self.stream.maybe_flush()?)
    }

    /// A loss on `cpu` at `ts_ns`: an instant on the CPU's loss track
    /// (with the count when the page stored it), and, when the count is
    /// known, the CPU's counter of events lost so far.
    pub fn lost(&mut self, cpu: u32, ts_ns: u64, count: Option<u64>) -> Result<(), PerfettoError> {
        let mut t = self.loss_tracks(cpu)?;
        let cpu_v = FieldValue::Unsigned(u64::from(cpu));
        match count {
            Some(n) => {
                let fields = [("cpu", cpu_v), ("count", FieldValue::Unsigned(n))];
                self.event(
                    Kind::Instant,
                    t.marks,
                    ts_ns,
                    "lost events",
                    "ringtrace",
                    &[],
                    &fields,
                )?;
                t.total += n;
                self.counter(t.counter, ts_ns, t.total)?;
                self.losses.insert(cpu, t);
            }
            None => {
                let fields = [("cpu", cpu_v)];
                self.event(
                    Kind::Instant,
                    t.marks,
                    ts_ns,
                    "lost events",
                    "ringtrace",
                    &[],
                    &fields,
                )?;
            }
        }
        // `event` counted the marker as an instant: it is a loss marker.
        self.stats.instants -= 1;
        self.stats.lost_markers += 1;
        Ok(())
    }

    /// A counter value on counter track `track`.
    fn counter(&mut self, track: u64, ts_ns: u64, value: u64) -> Result<(), PerfettoError> {
        let b = &mut self.stream.batch;
        let p = b.begin(TRACE_PACKET);
        b.uint(packet::TIMESTAMP, ts_ns);
        b.uint(packet::SEQUENCE_ID, SEQUENCE_ID);
        let e = b.begin(packet::TRACK_EVENT);
        b.uint(event::TYPE, event::COUNTER);
        b.uint(event::TRACK_UUID, track);
        b.int(event::COUNTER_VALUE, value as i64);
        b.end(e);
        b.end(p);
        Ok(self.stream.maybe_flush()?)
    }

    /// Flushes the file and returns the output.
    pub fn finish(self) -> Result<W, PerfettoError> {
        Ok(self.stream.finish()?)
    }

    /// Bytes written to the output so far.
    pub fn written(&self) -> u64 {
        self.stream.written
    }
}

/// The value of a `DebugAnnotation` for a decoded field: integers as
/// `uint_value` / `int_value`, floats as `double_value`, strings as
/// `string_value`, arrays as `array_values`, other bytes as a `0x..` hex
/// string (as the JSON export writes them).
fn annotation_value(b: &mut ProtoBuf, v: &FieldValue) {
    match v {
        FieldValue::Unsigned(u) => b.uint(event::ANN_UINT, *u),
        FieldValue::Signed(s) => b.int(event::ANN_INT, *s),
        FieldValue::Float(bits) => b.double(event::ANN_DOUBLE, f64::from_bits(*bits)),
        FieldValue::Str(s) => b.str(event::ANN_STRING, s),
        FieldValue::Array(a) => {
            for x in a {
                let m = b.begin(event::ANN_ARRAY);
                annotation_value(b, x);
                b.end(m);
            }
        }
        FieldValue::Bytes(x) => {
            let mut s = String::with_capacity(2 + 2 * x.len());
            s.push_str("0x");
            for byte in x {
                use std::fmt::Write as _;
                let _ = write!(s, "{byte:02x}");
            }
            b.str(event::ANN_STRING, &s);
        }
    }
}
