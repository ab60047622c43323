//! Native Perfetto export, decoded with Perfetto's own message types
//! (`perfetto_protos`) and with `protoc --decode` against Perfetto's
//! descriptor: every thread is a track, every span a slice with the
//! trace.dat's duration, every event present with its fields, loss markers
//! and counters equal to the trace.dat's losses, and the sequence and
//! interning rules kept (every iid defined before its first use).

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{Cursor, Read as _};
use std::process::{Command, Stdio};

use perfetto_protos::trace::Trace;
use perfetto_protos::trace_packet::TracePacket;
use perfetto_protos::track_event::track_event::Type;
use protobuf::Message as _;
use ringtrace::clock::Clock;
use ringtrace::export::{export_snapshot, ExportFormat};
use ringtrace::perfetto::{tracedat_to_perfetto, PerfettoOptions};
use ringtrace::ring::Mode;
use ringtrace::span::{SpanBegin, SpanEnd};
use ringtrace::tracedat::render::FileRenderer;
use ringtrace::tracedat::{FieldValue, TraceDatReader, TraceDatVersion, TraceItem};
use ringtrace::Tracer;

ringtrace::declare_event! {
    /// A typed event with a signed field and a string.
    pub struct Sample<'a>: "pfdemo" / "pf_sample" = 3301 { n: u32, value: i64, label: &'a str }
}

ringtrace::declare_event! {
    /// A fixed-size event, packed by hand in `placed_dat`.
    pub struct Tick: "pfdemo" / "pf_tick" = 3302 { n: u32 }
}

const PER_THREAD: u32 = 40;
const THREADS: [&str; 3] = ["pf-a", "pf-b", "pf-c"];

/// Per iteration: an outer span around a sample, a printk, a marker and
/// an inner span.
fn record(t: &Tracer, thread: &str) -> i32 {
    for i in 0..PER_THREAD {
        let outer = format!("{thread}-outer-{i}");
        t.record(&SpanBegin {
            id: u64::from(i),
            name: &outer,
        })
        .unwrap();
        t.record(&Sample {
            n: i,
            value: -i64::from(i),
            label: "quote\" and \\ backslash",
        })
        .unwrap();
        ringtrace::trace!(tracer: t, "printk %s %d", thread, i);
        t.record(&SpanBegin {
            id: 1000,
            name: "inner",
        })
        .unwrap();
        t.marker(&format!("mark {i}"));
        t.record(&SpanEnd {
            id: 1000,
            name: "inner",
        })
        .unwrap();
        t.record(&SpanEnd {
            id: u64::from(i),
            name: &outer,
        })
        .unwrap();
    }
    ringtrace::context::current_tid()
}

/// A trace.dat of `THREADS` recording, and the tids with their names.
fn traced_dat() -> (Vec<u8>, HashMap<i32, String>) {
    let t = common::tracer(4, 256 * 1024, Mode::Overwrite, Some(Clock::mono()));
    let mut tids = HashMap::new();
    std::thread::scope(|s| {
        let hs: Vec<_> = THREADS
            .iter()
            .map(|name| {
                let t = &t;
                std::thread::Builder::new()
                    .name(name.to_string())
                    .spawn_scoped(s, move || (record(t, name), name.to_string()))
                    .unwrap()
            })
            .collect();
        for h in hs {
            let (tid, name) = h.join().unwrap();
            tids.insert(tid, name);
        }
    });
    let fmt = ExportFormat::TraceDat(TraceDatVersion::V6);
    let (dat, _) = export_snapshot(&t, Cursor::new(Vec::new()), fmt).unwrap();
    (dat.into_inner(), tids)
}

fn to_perfetto(dat: &[u8], compress: bool) -> (Vec<u8>, ringtrace::perfetto::PerfettoStats) {
    let mut r = TraceDatReader::new(Cursor::new(dat.to_vec())).unwrap();
    let opts = PerfettoOptions {
        compress,
        ..PerfettoOptions::default()
    };
    tracedat_to_perfetto(&mut r, Vec::new(), &opts).unwrap()
}

/// A debug annotation's value.
#[derive(Debug, Clone, PartialEq)]
enum Ann {
    U(u64),
    I(i64),
    S(String),
    D(f64),
    Other,
}

/// A decoded `TrackEvent`.
#[derive(Debug, Clone)]
struct Ev {
    ts: u64,
    track: u64,
    ty: Type,
    name: String,
    cat: String,
    ann: Vec<(String, Ann)>,
}

/// A decoded track descriptor.
#[derive(Debug, Clone, Default)]
struct Track {
    parent: u64,
    name: String,
    pid: Option<i32>,
    process_name: String,
    tid: Option<i32>,
    thread_name: String,
    counter: bool,
}

/// The file as Perfetto's types read it, checked against the writer rules
/// on the way.
#[derive(Debug, Default)]
struct Decoded {
    tracks: HashMap<u64, Track>,
    events: Vec<Ev>,
    counters: Vec<(u64, u64, i64)>,
    names: HashMap<u64, String>,
    cats: HashMap<u64, String>,
    ann_names: HashMap<u64, String>,
    packets: usize,
    compressed: usize,
}

impl Decoded {
    fn from_file(bytes: &[u8]) -> Decoded {
        let trace = Trace::parse_from_bytes(bytes).expect("a perfetto.protos.Trace");
        let mut d = Decoded::default();
        d.packets(&trace.packet);
        d
    }

    fn packets(&mut self, packets: &[TracePacket]) {
        for p in packets {
            if p.has_compressed_packets() {
                self.compressed += 1;
                let mut raw = Vec::new();
                flate2::read::ZlibDecoder::new(p.compressed_packets())
                    .read_to_end(&mut raw)
                    .expect("compressed_packets is zlib data");
                let inner = Trace::parse_from_bytes(&raw).expect("compressed packets");
                self.packets(&inner.packet);
                continue;
            }
            self.packet(p);
        }
    }

    fn packet(&mut self, p: &TracePacket) {
        if self.packets == 0 {
            assert_eq!(p.sequence_flags() & 1, 1, "first packet clears the state");
        }
        self.packets += 1;
        assert_eq!(p.trusted_packet_sequence_id(), 1, "one sequence");
        let d = p.interned_data.as_ref();
        if let Some(i) = d {
            assert_eq!(p.sequence_flags() & 2, 2, "interned data needs state");
            for e in &i.event_names {
                assert!(self.names.insert(e.iid(), e.name().into()).is_none());
            }
            for e in &i.event_categories {
                assert!(self.cats.insert(e.iid(), e.name().into()).is_none());
            }
            for e in &i.debug_annotation_names {
                assert!(self.ann_names.insert(e.iid(), e.name().into()).is_none());
            }
        }
        if p.has_track_descriptor() {
            self.track(p.track_descriptor());
        }
        if p.has_track_event() {
            self.event(p, p.track_event());
        }
    }

    fn track(&mut self, t: &perfetto_protos::track_descriptor::TrackDescriptor) {
        let mut tr = Track {
            parent: t.parent_uuid(),
            name: t.name().to_string(),
            counter: t.counter.is_some(),
            ..Track::default()
        };
        if let Some(p) = t.process.as_ref() {
            tr.pid = Some(p.pid());
            tr.process_name = p.process_name().to_string();
        }
        if let Some(th) = t.thread.as_ref() {
            tr.pid = Some(th.pid());
            tr.tid = Some(th.tid());
            tr.thread_name = th.thread_name().to_string();
        }
        if tr.parent != 0 {
            assert!(
                self.tracks.contains_key(&tr.parent),
                "parent described first"
            );
        }
        assert!(self.tracks.insert(t.uuid(), tr).is_none(), "uuid unique");
    }

    fn event(&mut self, p: &TracePacket, e: &perfetto_protos::track_event::TrackEvent) {
        assert!(
            self.tracks.contains_key(&e.track_uuid()),
            "track described first"
        );
        if e.type_() == Type::TYPE_COUNTER {
            self.counters
                .push((e.track_uuid(), p.timestamp(), e.counter_value()));
            return;
        }
        assert_eq!(p.sequence_flags() & 2, 2, "iids need state");
        let iid = |m: &HashMap<u64, String>, i: u64| {
            m.get(&i)
                .unwrap_or_else(|| panic!("iid {i} used before it was defined"))
                .clone()
        };
        assert_eq!(e.category_iids.len(), 1);
        let ann = e
            .debug_annotations
            .iter()
            .map(|a| {
                let v = if a.has_uint_value() {
                    Ann::U(a.uint_value())
                } else if a.has_int_value() {
                    Ann::I(a.int_value())
                } else if a.has_string_value() {
                    Ann::S(a.string_value().to_string())
                } else if a.has_double_value() {
                    Ann::D(a.double_value())
                } else {
                    Ann::Other
                };
                (iid(&self.ann_names, a.name_iid()), v)
            })
            .collect();
        self.events.push(Ev {
            ts: p.timestamp(),
            track: e.track_uuid(),
            ty: e.type_(),
            name: iid(&self.names, e.name_iid()),
            cat: iid(&self.cats, e.category_iids[0]),
            ann,
        });
    }
}

/// What the trace.dat holds, read with the crate's own reader: per
/// record (ts in ns, tid, kind, name), spans as (tid, name, begin, end).
#[derive(Debug, Default)]
struct Expected {
    records: Vec<(u64, i32, Type, String)>,
    spans: Vec<(i32, String, u64, u64)>,
    lost_items: usize,
    lost_counts: HashMap<u32, u64>,
}

fn expected(dat: &[u8]) -> Expected {
    let mut r = TraceDatReader::new(Cursor::new(dat.to_vec())).unwrap();
    let info = r.info().clone();
    let render = FileRenderer::new(&info);
    let mut x = Expected::default();
    let mut open: HashMap<i32, Vec<(String, u64)>> = HashMap::new();
    for item in r.records() {
        match item.unwrap() {
            TraceItem::Lost { cpu, count, .. } => {
                x.lost_items += 1;
                *x.lost_counts.entry(cpu).or_default() += count.unwrap_or(0);
            }
            TraceItem::Event(rec) => {
                let v = render.view(&rec).unwrap();
                let d = &v.decoded;
                let ts = info.ts_ns(rec.ts);
                let span_name = d.fields.iter().find_map(|(n, v)| match v {
                    FieldValue::Str(s) if *n == "name" => Some(s.clone()),
                    _ => None,
                });
                let (ty, name) = match (d.format.system.as_str(), d.format.name.as_str()) {
                    ("ringtrace", "span_begin") => {
                        let name = span_name.unwrap();
                        open.entry(d.pid).or_default().push((name.clone(), ts));
                        (Type::TYPE_SLICE_BEGIN, name)
                    }
                    ("ringtrace", "span_end") => {
                        let (name, begin) = open.get_mut(&d.pid).unwrap().pop().unwrap();
                        x.spans.push((d.pid, name.clone(), begin, ts));
                        (Type::TYPE_SLICE_END, name)
                    }
                    _ => (Type::TYPE_INSTANT, v.name.to_string()),
                };
                x.records.push((ts, d.pid, ty, name));
            }
        }
    }
    x
}

/// Slices of the decoded file per thread: (tid, name, begin, end), by
/// matching each SLICE_END with the last open SLICE_BEGIN of its track.
fn slices(d: &Decoded) -> Vec<(i32, String, u64, u64)> {
    let mut open: HashMap<u64, Vec<(String, u64)>> = HashMap::new();
    let mut out = Vec::new();
    for e in &d.events {
        match e.ty {
            Type::TYPE_SLICE_BEGIN => open
                .entry(e.track)
                .or_default()
                .push((e.name.clone(), e.ts)),
            Type::TYPE_SLICE_END => {
                let (name, begin) = open
                    .get_mut(&e.track)
                    .and_then(Vec::pop)
                    .expect("END with an open BEGIN");
                let tid = d.tracks[&e.track].tid.expect("slices on thread tracks");
                out.push((tid, name, begin, e.ts));
            }
            _ => {}
        }
    }
    assert!(open.values().all(Vec::is_empty), "every slice closed");
    out
}

fn check_against_dat(d: &Decoded, dat: &[u8], tids: &HashMap<i32, String>) {
    let x = expected(dat);
    // The default process track, and this test's own process (the file's
    // processes option places every thread in it), with one child track
    // per thread, named.
    let default: Vec<_> = d
        .tracks
        .values()
        .filter(|t| t.process_name == "ringtrace")
        .collect();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0].pid, Some(1));
    let me = std::process::id() as i32;
    let process: Vec<_> = d
        .tracks
        .iter()
        .filter(|(_, t)| t.tid.is_none() && t.pid == Some(me))
        .collect();
    assert_eq!(process.len(), 1, "one track for this process");
    let (&puuid, p) = process[0];
    assert!(!p.process_name.is_empty(), "the process is named");
    let threads: HashMap<i32, &Track> = d
        .tracks
        .values()
        .filter_map(|t| Some((t.tid?, t)))
        .collect();
    assert_eq!(threads.len(), tids.len(), "one track per thread");
    for (tid, name) in tids {
        let t = threads[tid];
        assert_eq!(&t.thread_name, name);
        assert_eq!(t.parent, puuid);
        assert_eq!(t.pid, Some(me), "the thread's real pid");
    }
    // Every record present once, at its time, on its thread, named.
    let mut got: Vec<(u64, i32, Type, String)> = d
        .events
        .iter()
        .filter(|e| d.tracks[&e.track].tid.is_some())
        .map(|e| (e.ts, d.tracks[&e.track].tid.unwrap(), e.ty, e.name.clone()))
        .collect();
    let mut want = x.records.clone();
    got.sort_by(|a, b| (a.0, a.1, a.3.as_str()).cmp(&(b.0, b.1, b.3.as_str())));
    want.sort_by(|a, b| (a.0, a.1, a.3.as_str()).cmp(&(b.0, b.1, b.3.as_str())));
    assert_eq!(got.len(), want.len(), "event count equals the trace.dat's");
    assert_eq!(got, want);
    // Every span a slice with the trace.dat's begin and duration.
    let mut s = slices(d);
    let mut ws = x.spans.clone();
    s.sort();
    ws.sort();
    assert_eq!(s, ws);
}

#[test]
fn every_thread_a_track_every_span_a_slice_every_event_present() {
    let (dat, tids) = traced_dat();
    for compress in [true, false] {
        let (pf, stats) = to_perfetto(&dat, compress);
        let d = Decoded::from_file(&pf);
        assert_eq!(d.compressed > 0, compress);
        let per_thread = u64::from(PER_THREAD);
        assert_eq!(stats.threads, 3);
        assert_eq!(stats.begins, 3 * 2 * per_thread);
        assert_eq!(stats.ends, 3 * 2 * per_thread);
        assert_eq!(stats.instants, 3 * 3 * per_thread);
        assert_eq!((stats.undecodable, stats.damaged_pages), (0, 0));
        check_against_dat(&d, &dat, &tids);
        // Fields as debug annotations, with their types.
        let samples: Vec<&Ev> = d.events.iter().filter(|e| e.name == "pf_sample").collect();
        assert_eq!(samples.len(), 3 * PER_THREAD as usize);
        for e in &samples {
            assert_eq!(e.cat, "pfdemo");
            let Ann::U(n) = e.ann[0].1 else {
                panic!("n: {e:?}")
            };
            assert_eq!(e.ann[0].0, "n");
            assert_eq!(e.ann[1], ("value".to_string(), Ann::I(-(n as i64))));
            let label = Ann::S("quote\" and \\ backslash".into());
            assert_eq!(e.ann[2], ("label".to_string(), label));
        }
        let marks = d.events.iter().filter(|e| e.name == "tracing_mark_write");
        let mut texts: Vec<String> = marks
            .map(|e| match &e.ann[..] {
                [(k, Ann::S(m))] if k == "message" => m.clone(),
                other => panic!("marker annotations {other:?}"),
            })
            .collect();
        texts.sort();
        texts.dedup();
        assert_eq!(texts.len(), PER_THREAD as usize);
        let printk = d
            .events
            .iter()
            .filter(|e| e.name.contains("perfetto_decode.rs:"));
        assert_eq!(printk.clone().count(), 3 * PER_THREAD as usize);
        assert!(printk
            .clone()
            .all(|e| matches!(&e.ann[..], [(k, Ann::S(m))] if k == "message" && m.starts_with("printk pf-"))));
        // Span fields (all but the name) on the slice.
        let begin = d
            .events
            .iter()
            .find(|e| e.ty == Type::TYPE_SLICE_BEGIN)
            .unwrap();
        assert!(
            matches!(&begin.ann[..], [(k, Ann::U(_))] if k == "id"),
            "{begin:?}"
        );
        assert!(!d.events.iter().any(|e| e
            .ann
            .iter()
            .any(|a| a.1 == Ann::Other || matches!(a.1, Ann::D(_)))));
    }
}

#[test]
fn losses_are_marked_and_counted_per_cpu() {
    // A small overwrite-mode ring lapped many times: pages flagged lost.
    let t = common::tracer(1, 8 * 4096, Mode::Overwrite, Some(Clock::mono()));
    for i in 0..20_000u32 {
        t.record(&Sample {
            n: i,
            value: 0,
            label: "lapped",
        })
        .unwrap();
    }
    let fmt = ExportFormat::TraceDat(TraceDatVersion::V6);
    let (dat, _) = export_snapshot(&t, Cursor::new(Vec::new()), fmt).unwrap();
    let dat = dat.into_inner();
    let x = expected(&dat);
    assert!(x.lost_items > 0, "the test needs losses in the trace.dat");
    let (pf, stats) = to_perfetto(&dat, true);
    let d = Decoded::from_file(&pf);
    assert_eq!(stats.lost_markers as usize, x.lost_items);
    let marks: Vec<&Ev> = d
        .events
        .iter()
        .filter(|e| e.name == "lost events")
        .collect();
    assert_eq!(marks.len(), x.lost_items);
    for (cpu, total) in &x.lost_counts {
        let (marks_uuid, _) = d
            .tracks
            .iter()
            .find(|(_, t)| t.name == format!("lost events (cpu {cpu})"))
            .expect("a loss track per CPU");
        assert!(marks.iter().all(|e| e.track == *marks_uuid));
        let (counter_uuid, c) = d
            .tracks
            .iter()
            .find(|(_, t)| t.name == format!("lost events so far (cpu {cpu})"))
            .expect("a loss counter per CPU");
        assert!(c.counter);
        let last = d.counters.iter().rev().find(|c| c.0 == *counter_uuid);
        assert_eq!(
            last.map(|c| c.2 as u64),
            Some(*total),
            "counter ends at the losses"
        );
    }
    check_against_dat(
        &d,
        &dat,
        &HashMap::from([(
            d.tracks.values().find_map(|t| t.tid).unwrap(),
            d.tracks
                .values()
                .find(|t| t.tid.is_some())
                .unwrap()
                .thread_name
                .clone(),
        )]),
    );
}

/// Perfetto's descriptor, from the crate's compiled-in file descriptors.
fn descriptor_set() -> Vec<u8> {
    fn walk(
        f: &protobuf::reflect::FileDescriptor,
        seen: &mut HashSet<String>,
        out: &mut Vec<protobuf::descriptor::FileDescriptorProto>,
    ) {
        if !seen.insert(f.proto().name().to_string()) {
            return;
        }
        for dep in f.deps() {
            walk(dep, seen, out);
        }
        out.push(f.proto().clone());
    }
    let mut set = protobuf::descriptor::FileDescriptorSet::new();
    walk(
        perfetto_protos::trace::file_descriptor(),
        &mut HashSet::new(),
        &mut set.file,
    );
    set.write_to_bytes().unwrap()
}

fn protoc_decode(file: &[u8], desc: &std::path::Path) -> String {
    let mut child = Command::new("protoc")
        .arg(format!("--descriptor_set_in={}", desc.display()))
        .arg("--decode=perfetto.protos.Trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("protoc not found: install protobuf-compiler (.ci/test does)");
    let mut stdin = child.stdin.take().unwrap();
    let file = file.to_vec();
    let feed = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &file));
    let out = child.wait_with_output().unwrap();
    feed.join().unwrap().unwrap();
    assert!(
        out.status.success(),
        "protoc --decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn protoc_decodes_the_file_against_perfettos_descriptor() {
    let (dat, tids) = traced_dat();
    let dir = tempfile::tempdir().unwrap();
    let desc = dir.path().join("perfetto_trace.desc");
    std::fs::write(&desc, descriptor_set()).unwrap();
    let (pf, stats) = to_perfetto(&dat, true);
    let text = protoc_decode(&pf, &desc);
    // Names stay readable in the compressed file: tracks and interned data
    // are plain packets.
    assert!(text.contains("process_name: \"ringtrace\""), "{text}");
    for name in tids.values() {
        assert!(text.contains(&format!("thread_name: \"{name}\"")), "{name}");
    }
    for name in ["pf_sample", "tracing_mark_write", "pf-a-outer-0", "inner"] {
        assert!(text.contains(&format!("name: \"{name}\"")), "{name}");
    }
    assert!(text.contains("compressed_packets: "));
    // Uncompressed, every event is visible to protoc with its type.
    let (pf, _) = to_perfetto(&dat, false);
    let text = protoc_decode(&pf, &desc);
    let count = |s: &str| text.matches(s).count() as u64;
    assert_eq!(count("type: TYPE_INSTANT"), stats.instants);
    assert_eq!(count("type: TYPE_SLICE_BEGIN"), stats.begins);
    assert_eq!(count("type: TYPE_SLICE_END"), stats.ends);
    assert!(text.contains("string_value: \"mark 0\""));
}

/// `ringtrace::layer::file("x.pftrace")`: the guard writes, when it drops, a
/// Perfetto file that Perfetto's own types decode, with every event of the
/// layer in it.
#[test]
fn layer_file_writes_perfetto_by_extension() {
    use tracing_subscriber::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.pftrace");
    let (layer, guard) = ringtrace::layer::file(&path).unwrap();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..10u64 {
            tracing::info!(n = i, "tick");
        }
    });
    drop(guard);
    let d = Decoded::from_file(&std::fs::read(&path).unwrap());
    let ticks: Vec<&Ev> = d.events.iter().filter(|e| e.name == "tick").collect();
    assert_eq!(ticks.len(), 10, "{:?}", d.events);
    let ns: Vec<Ann> = ticks
        .iter()
        .filter_map(|e| e.ann.iter().find(|(k, _)| k == "n").map(|(_, v)| v.clone()))
        .collect();
    assert_eq!(ns, (0..10u64).map(Ann::U).collect::<Vec<_>>());
}

/// A trace.dat of one `Tick` per thread: threads 100 and 101 of process
/// 100 (`server`), 200 of process 200 (`client`), 300 of no known process.
fn placed_dat() -> Vec<u8> {
    use ringtrace::export::{Packed, PagePacker};
    use ringtrace::tracedat::{TraceDatMeta, TraceDatWriter};
    let mut meta = TraceDatMeta::new(4096, 1, "mono");
    meta.events = vec![("pfdemo".into(), vec![Tick::EVENT_TYPE.format_text()])];
    meta.cmdlines = [100, 101, 200, 300]
        .iter()
        .map(|t| (*t, format!("t{t}")))
        .collect();
    meta.processes = vec![
        (100, 100, "server".into()),
        (101, 100, "server".into()),
        (200, 200, "client".into()),
    ];
    let mut w = TraceDatWriter::new(Cursor::new(Vec::new()), &meta).unwrap();
    let mut p = PagePacker::new(4096);
    for (i, tid) in [100i32, 200, 101, 300].iter().enumerate() {
        let mut rec = [0u8; 12];
        rec[0..2].copy_from_slice(&3302u16.to_ne_bytes());
        rec[4..8].copy_from_slice(&tid.to_ne_bytes());
        rec[8..12].copy_from_slice(&(i as u32).to_ne_bytes());
        assert_eq!(p.push(1000 + i as u64, 0, &rec), Packed::Added);
    }
    w.push_page(0, p.finish_page()).unwrap();
    w.finish().unwrap().into_inner()
}

#[test]
fn each_process_of_the_file_gets_its_track_with_its_real_pid() {
    let (file, stats) = to_perfetto(&placed_dat(), false);
    assert_eq!((stats.instants, stats.undecodable), (4, 0));
    let d = Decoded::from_file(&file);
    let processes: HashMap<i32, (u64, String)> = d
        .tracks
        .iter()
        .filter(|(_, t)| t.tid.is_none() && t.pid.is_some())
        .map(|(u, t)| (t.pid.unwrap(), (*u, t.process_name.clone())))
        .collect();
    let named = |pid: i32| processes[&pid].1.clone();
    assert_eq!(processes.len(), 3, "{processes:?}");
    assert_eq!(
        (named(1), named(100), named(200)),
        ("ringtrace".into(), "server".into(), "client".into())
    );
    for (tid, pid) in [(100, 100), (101, 100), (200, 200), (300, 1)] {
        let (&uuid, t) = d
            .tracks
            .iter()
            .find(|(_, t)| t.tid == Some(tid))
            .expect("a track per thread");
        assert_eq!(t.pid, Some(pid), "thread {tid}'s pid");
        assert_eq!(t.parent, processes[&pid].0, "thread {tid}'s parent");
        assert_eq!(t.thread_name, format!("t{tid}"));
        assert_eq!(d.events.iter().filter(|e| e.track == uuid).count(), 1);
    }
}

/// The items of `dat` the owned way: each CPU's records read alone
/// (`cpu_records`) and merged here by time stamp, ties to the lower CPU.
fn merged_by_hand(dat: &[u8]) -> Vec<TraceItem> {
    let mut r = TraceDatReader::new(Cursor::new(dat.to_vec())).unwrap();
    let n = r.info().cpus.len();
    let mut per: Vec<std::collections::VecDeque<TraceItem>> = (0..n)
        .map(|i| r.cpu_records(i).unwrap().map(Result::unwrap).collect())
        .collect();
    let mut out = Vec::new();
    while let Some(i) = (0..n)
        .filter(|&i| !per[i].is_empty())
        .min_by_key(|&i| (per[i][0].ts(), i))
    {
        out.push(per[i].pop_front().unwrap());
    }
    out
}

/// The exporters' shared record loop (a walk over records borrowed from
/// their pages) writes the same JSON and Perfetto bytes as the writers fed
/// one owned item at a time in the order `merged_by_hand` finds.
#[test]
fn shared_record_loop_matches_owned_items_merged_by_hand() {
    use ringtrace::json::{tracedat_to_json, JsonOptions, JsonWriter};
    use ringtrace::perfetto::PerfettoWriter;
    let (dat, _) = traced_dat();
    let items = merged_by_hand(&dat);
    assert!(items.len() > 3 * PER_THREAD as usize, "a varied trace");
    let info = TraceDatReader::new(Cursor::new(dat.clone()))
        .unwrap()
        .info()
        .clone();
    let render = FileRenderer::new(&info);
    let jopts = JsonOptions::default().with_processes_of(&info);

    let mut w = JsonWriter::new(Vec::new(), &jopts).unwrap();
    if let Some(ws) = info.wall_start {
        w.wall_start(ws, info.ts_ns(ws.clock_ts) as f64 / 1000.0);
    }
    for it in &items {
        w.item(&render, it).unwrap();
    }
    let by_hand = String::from_utf8(w.finish().unwrap()).unwrap();
    let mut r = TraceDatReader::new(Cursor::new(dat.clone())).unwrap();
    let (looped, _) = tracedat_to_json(&mut r, Vec::new(), &JsonOptions::default()).unwrap();
    assert_eq!(String::from_utf8(looped).unwrap(), by_hand);

    let popts = PerfettoOptions {
        compress: false,
        ..PerfettoOptions::from(&jopts)
    };
    let mut w = PerfettoWriter::new(Vec::new(), &popts).unwrap();
    for it in &items {
        w.item(&render, it).unwrap();
    }
    let by_hand = w.finish().unwrap();
    assert_eq!(to_perfetto(&dat, false).0, by_hand);
}
