//! A drain that spools next to its output (`Drain::spool_next_to`): the
//! output is made at once, pages reach `OUT.cpuN` as they are polled, a
//! drain that never finishes (its process killed: here forgotten) leaves a
//! spool that `export::recover` turns into the trace with every polled
//! event and payload, and nothing is ever mixed with or written over
//! another recording.

mod common;

use std::io::BufReader;
use std::path::Path;

use ringtrace::export::{is_unfinished, recover, ExportFormat, SpoolFiles};
use ringtrace::tracedat::{FieldValue, TraceDatReader, TraceDatVersion, TraceItem};
use ringtrace::TracerConfig;

ringtrace::declare_event! {
    /// A numbered record.
    pub struct SpoolRec: "spool" / "spool_rec" = 2201 { seq: u64 }
}

const DAT: ExportFormat = ExportFormat::TraceDat(TraceDatVersion::V6);

/// Sequence numbers of the `spool_rec` events of a trace.dat, in order.
fn seqs(path: &Path) -> Vec<u64> {
    let f = std::fs::File::open(path).unwrap();
    let mut r = TraceDatReader::new(BufReader::new(f)).unwrap();
    let info = r.info().clone();
    let mut out = Vec::new();
    for item in r.records() {
        let TraceItem::Event(rec) = item.unwrap() else {
            continue;
        };
        let d = info.decode(&rec).unwrap();
        if d.format.name != "spool_rec" {
            continue;
        }
        let seq = d.fields.iter().find(|(n, _)| *n == "seq").map(|(_, v)| v);
        match seq {
            Some(FieldValue::Unsigned(s)) => out.push(*s),
            other => panic!("seq field: {other:?}"),
        }
    }
    out
}

#[test]
fn a_drain_that_never_finished_is_recovered_with_every_polled_event() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.dat");
    let t = common::spool_tracer(SpoolRec::EVENT_TYPE);
    let mut drain = common::spooling_drain(&t, &out);
    assert!(is_unfinished(&out), "the output is made at once");
    let files = SpoolFiles::new(&out);
    assert!(files.meta().exists());
    let n = 20_000u64;
    common::write_polling(&mut drain, n, 500, |seq| {
        ringtrace::trace_event!(&t, SpoolRec { seq });
    });
    drain.poll().unwrap();
    let polled = drain.stats().events;
    assert!(polled > 0 && polled < n, "only complete pages are polled");
    let spooled = std::fs::metadata(files.cpu(0)).unwrap().len();
    assert_eq!(
        spooled,
        drain.stats().page_bytes,
        "polled pages are on disk"
    );
    // The recording process dies: the drain never finishes.
    std::mem::forget(drain);
    let s = t.ring_stats(0).unwrap();
    assert_eq!(s.dropped + s.overrun + s.commit_overrun, 0);
    assert_eq!(s.written, s.read + s.entries, "accounting identity");
    assert_eq!(s.read, polled);

    // Another recording to the same output is refused: it would mix in.
    let t2 = TracerConfig::new().max_contexts(1).build().unwrap();
    let err = t2.drain().spool_next_to(&out).unwrap_err().to_string();
    assert!(err.contains("ringtrace recover"), "{err}");

    let r = recover(&out, DAT).unwrap();
    assert_eq!(r.events, polled);
    assert_eq!((r.bad_pages, r.partial_bytes, r.lost_events), (0, 0, 0));
    let got = seqs(&out);
    assert_eq!(
        got,
        (0..polled).collect::<Vec<_>>(),
        "every polled event, in order"
    );
    assert!(files.leftovers().is_empty(), "the spool is deleted");
    // A finished trace is never recovered over.
    std::fs::write(files.meta(), b"stale").unwrap();
    let err = recover(&out, DAT).unwrap_err().to_string();
    assert!(err.contains("finished trace already"), "{err}");
    assert_eq!(seqs(&out).len() as u64, polled);
}

#[test]
fn a_spool_cut_short_loses_only_the_cut_page() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.json");
    let t = common::spool_tracer(SpoolRec::EVENT_TYPE);
    let mut drain = common::spooling_drain(&t, &out);
    common::write_polling(&mut drain, 5_000, 200, |seq| {
        ringtrace::trace_event!(&t, SpoolRec { seq });
    });
    let pages = drain.stats().pages;
    assert!(pages >= 2);
    std::mem::forget(drain);
    // A write cut short (a full disk): half a page at the end.
    let cpu0 = SpoolFiles::new(&out).cpu(0);
    let len = std::fs::metadata(&cpu0).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&cpu0).unwrap();
    f.set_len(len - 2048).unwrap();
    let r = recover(&out, ExportFormat::Json).unwrap();
    assert_eq!(r.pages, pages - 1);
    assert_eq!(r.partial_bytes, 2048);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let n = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "spool_rec")
        .count() as u64;
    assert_eq!(n, r.events);
}

#[test]
fn a_finished_drain_leaves_only_the_output() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.dat");
    let t = TracerConfig::new().max_contexts(2).build().unwrap();
    t.register(SpoolRec::EVENT_TYPE).unwrap();
    let mut drain = common::spooling_drain(&t, &out);
    common::write_polling(&mut drain, 3_000, 100, |seq| {
        ringtrace::trace_event!(&t, SpoolRec { seq });
    });
    let r = drain.finish_spooled(DAT).unwrap();
    assert_eq!(r.events, 3_000);
    assert_eq!(seqs(&out), (0..3_000).collect::<Vec<_>>());
    let names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["t.dat"]);
    // A bad directory fails at once.
    let bad = d.path().join("no/such/t.dat");
    let err = t.drain().spool_next_to(&bad).unwrap_err().to_string();
    assert!(err.contains("no/such/t.dat"), "{err}");
}
