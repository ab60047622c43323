//! Chrome JSON export: the output parses with serde_json, every recorded
//! event appears once with its thread (named by `thread_name` metadata),
//! typed events carry their fields as args, binary printk and markers their
//! formatted text, and span begin/end records (system `ringtrace`, the
//! `tracing` layer's contract) become `B`/`E` slices. The same JSON comes
//! from a live snapshot and from a trace.dat file read back.

mod common;

use std::collections::HashMap;
use std::io::Cursor;

use ringtrace::clock::Clock;
use ringtrace::export::{export_snapshot, ExportFormat};
use ringtrace::json::{tracedat_to_json, JsonOptions};
use ringtrace::ring::Mode;
use ringtrace::tracedat::{TraceDatReader, TraceDatVersion};
use ringtrace::Tracer;
use serde_json::Value;

ringtrace::declare_event! {
    /// A typed event with a string.
    pub struct Sample<'a>: "demo" / "sample" = 3101 { n: u32, value: i64, label: &'a str }
}
// Equivalent of the `tracing` layer's span types (src/span.rs is written
// elsewhere); matched by system and name only.
ringtrace::declare_event! {
    /// Span begin.
    pub struct SpanBegin<'a>: "ringtrace" / "span_begin" = 3102 { name: &'a str, id: u64 }
}
ringtrace::declare_event! {
    /// Span end.
    pub struct SpanEnd<'a>: "ringtrace" / "span_end" = 3103 { name: &'a str, id: u64 }
}

const PER_THREAD: u32 = 50;

fn record(t: &Tracer, thread: &str) -> i32 {
    for i in 0..PER_THREAD {
        let span = format!("{thread}-span-{i}");
        t.record(&SpanBegin {
            name: &span,
            id: u64::from(i),
        })
        .unwrap();
        t.record(&Sample {
            n: i,
            value: -i64::from(i),
            label: "quote\" and \\ backslash",
        })
        .unwrap();
        ringtrace::trace!(tracer: t, "printk %s %d", thread, i);
        t.marker(&format!("mark {i}"));
        t.record(&SpanEnd {
            name: &span,
            id: u64::from(i),
        })
        .unwrap();
    }
    ringtrace::context::current_tid()
}

fn check(json: &[u8], tids: &HashMap<i32, String>) {
    let v: Value = serde_json::from_slice(json).expect("valid JSON");
    let events = v["traceEvents"].as_array().expect("traceEvents");
    let mut names: HashMap<i64, String> = HashMap::new();
    let mut per_tid: HashMap<i64, Vec<&Value>> = HashMap::new();
    for e in events {
        match e["ph"].as_str().unwrap() {
            "M" if e["name"] == "thread_name" => {
                let tid = e["tid"].as_i64().unwrap();
                assert!(
                    !per_tid.contains_key(&tid),
                    "thread named before its events"
                );
                names.insert(tid, e["args"]["name"].as_str().unwrap().to_string());
            }
            "M" => {}
            ph => {
                let tid = e["tid"].as_i64().unwrap();
                assert!(
                    names.contains_key(&tid),
                    "event before its thread name: {e}"
                );
                assert!(e["ts"].as_f64().is_some(), "{e}");
                assert!(["i", "B", "E"].contains(&ph), "{e}");
                per_tid.entry(tid).or_default().push(e);
            }
        }
    }
    assert_eq!(per_tid.len(), tids.len());
    for (tid, thread) in tids {
        let tid = i64::from(*tid);
        assert_eq!(names[&tid], *thread);
        let evs = &per_tid[&tid];
        assert_eq!(evs.len(), 5 * PER_THREAD as usize, "{thread}");
        let mut last = 0.0;
        for (i, chunk) in evs.chunks(5).enumerate() {
            for e in chunk {
                let ts = e["ts"].as_f64().unwrap();
                assert!(ts >= last, "time order on one thread");
                last = ts;
            }
            let span = format!("{thread}-span-{i}");
            assert_eq!(chunk[0]["ph"], "B");
            assert_eq!(chunk[0]["name"], span.as_str());
            assert_eq!(chunk[0]["args"]["id"], i as u64);
            assert_eq!(chunk[1]["ph"], "i");
            assert_eq!(chunk[1]["s"], "t");
            assert_eq!(chunk[1]["name"], "sample");
            assert_eq!(chunk[1]["cat"], "demo");
            assert_eq!(chunk[1]["args"]["n"], i as u64);
            assert_eq!(chunk[1]["args"]["value"], -(i as i64));
            assert_eq!(chunk[1]["args"]["label"], "quote\" and \\ backslash");
            assert_eq!(
                chunk[2]["args"]["message"],
                format!("printk {thread} {i}").as_str()
            );
            assert!(chunk[2]["name"]
                .as_str()
                .unwrap()
                .contains("json_export.rs:"));
            assert_eq!(chunk[3]["name"], "tracing_mark_write");
            assert_eq!(chunk[3]["args"]["message"], format!("mark {i}").as_str());
            assert_eq!(chunk[4]["ph"], "E");
            assert_eq!(chunk[4]["name"], span.as_str());
        }
    }
}

fn traced() -> (Tracer, HashMap<i32, String>) {
    let t = common::tracer(4, 256 * 1024, Mode::Overwrite, Some(Clock::mono()));
    let mut tids = HashMap::new();
    std::thread::scope(|s| {
        let hs: Vec<_> = ["json-a", "json-b", "json-c"]
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
    (t, tids)
}

#[test]
fn snapshot_json_has_every_event_with_its_thread() {
    let (t, tids) = traced();
    let (out, stats) = export_snapshot(&t, Cursor::new(Vec::new()), ExportFormat::Json).unwrap();
    assert_eq!(stats.events, 3 * 5 * u64::from(PER_THREAD));
    check(&out.into_inner(), &tids);
}

#[test]
fn json_from_a_trace_dat_file() {
    let (t, tids) = traced();
    for v in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let (t2, tids2) = if v == TraceDatVersion::V6 {
            (None, tids.clone())
        } else {
            let (t2, tids2) = traced();
            (Some(t2), tids2)
        };
        let tracer = t2.as_ref().unwrap_or(&t);
        let (dat, _) =
            export_snapshot(tracer, Cursor::new(Vec::new()), ExportFormat::TraceDat(v)).unwrap();
        let mut r = TraceDatReader::new(Cursor::new(dat.into_inner())).unwrap();
        let (json, stats) = tracedat_to_json(&mut r, Vec::new(), &JsonOptions::default()).unwrap();
        assert_eq!(stats.begins, 3 * u64::from(PER_THREAD));
        assert_eq!(stats.ends, 3 * u64::from(PER_THREAD));
        assert_eq!(stats.threads, 3);
        check(&json, &tids2);
    }
}
