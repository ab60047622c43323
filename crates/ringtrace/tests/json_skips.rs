//! JSON export of a trace.dat with records no format decodes and a damaged
//! page in the middle: as `trace-cmd report` and `ringtrace report` do, the
//! export skips each, counts it, names the first, and goes on, so every
//! other record is in the output. (It used to stop at the first of them.)

mod common;
mod tracedat_common;

use ringtrace::export::{recover, ExportFormat, SpoolFiles};
use ringtrace::json::{tracedat_to_json, JsonOptions};
use ringtrace::tracedat::{TraceDatReader, TraceDatVersion, TraceDatWriter};
use serde_json::Value;
use tracedat_common::*;

/// Sequence numbers of the good records on CPU 0's damaged page (page 1).
const ON_DAMAGED_PAGE: [u64; 2] = [100, 101];

/// CPU 0: page 0 holds good `demo_fixed` records with, in the middle, one
/// of an unknown event id and one cut short (12 bytes: its fields need
/// 24); page 1 (damaged later, in the file) and page 2 hold good records.
/// CPU 1: good records. Returns the pages and the good records' sequence
/// numbers that must reach the output.
fn trace() -> (Vec<Vec<Vec<u8>>>, Vec<u64>) {
    let mut good = Vec::new();
    let mut t = T0;
    let mut p = PageBuilder::new(T0);
    for seq in 0..10u64 {
        t += 1000;
        match seq {
            4 => {
                p.event(t, &unknown_type(100, 1999));
            }
            6 => {
                p.event(t, &fixed(100, seq, 1, 0)[..12]);
            }
            _ => {
                p.event(t, &fixed(100, seq, 1, 0));
                good.push(seq);
            }
        }
    }
    let page0 = p.finish();
    let mut p = PageBuilder::new(t + 1000);
    for seq in ON_DAMAGED_PAGE {
        t += 1000;
        p.event(t, &fixed(100, seq, 1, 0));
    }
    let page1 = p.finish();
    let mut p = PageBuilder::new(t + 1000);
    for seq in 200..203u64 {
        t += 1000;
        p.event(t, &fixed(100, seq, 1, 0));
        good.push(seq);
    }
    let page2 = p.finish();
    let mut p = PageBuilder::new(T0 + 500);
    for seq in 300..305u64 {
        p.event(T0 + 500 + seq * 10, &fixed(200, seq, 2, 0));
        good.push(seq);
    }
    (vec![vec![page0, page1, page2], vec![p.finish()]], good)
}

#[test]
fn json_export_skips_counts_and_goes_on_past_undecodable_records() {
    for version in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let (pages, good) = trace();
        let mut m = meta(version);
        m.cpus = 2;
        m.cpu_stats.truncate(2);
        let mut w = TraceDatWriter::new(std::io::Cursor::new(Vec::new()), &m).unwrap();
        for (cpu, p) in pages.iter().enumerate() {
            w.write_cpu(cpu as u32, p).unwrap();
        }
        let mut bytes = w.finish().unwrap().into_inner();
        // Page 1 of CPU 0: a commit larger than a page (the writer refuses
        // such a page, so it is damaged in the file).
        let cpu0 = TraceDatReader::new(std::io::Cursor::new(bytes.clone()))
            .unwrap()
            .info()
            .cpus[0];
        let page1 = cpu0.offset as usize + PAGE_SIZE;
        bytes[page1 + 8..page1 + 16].copy_from_slice(&5000u64.to_le_bytes());

        let mut r = TraceDatReader::new(std::io::Cursor::new(bytes)).unwrap();
        let (json, stats) = tracedat_to_json(&mut r, Vec::new(), &JsonOptions::default())
            .unwrap_or_else(|e| panic!("{version:?}: the export stopped: {e}"));
        assert_eq!(
            (stats.undecodable, stats.damaged_pages),
            (2, 1),
            "{version:?}: {stats:?}"
        );
        assert_eq!(stats.instants, good.len() as u64, "{stats:?}");
        let first = stats.first_skipped.as_deref().unwrap();
        assert!(
            first.contains("1999"),
            "the first skipped is named: {first}"
        );
        let note = stats.skipped_note().unwrap();
        assert!(
            note.contains("2 record(s) could not be decoded")
                && note.contains("1 damaged page(s)")
                && note.contains(first),
            "{note}"
        );

        // The output is whole JSON, with every good record once, in order
        // per CPU, and nothing of the skipped ones.
        let doc: Value = serde_json::from_slice(&json).expect("the output parses");
        let events = doc["traceEvents"].as_array().unwrap();
        let seqs: Vec<u64> = events
            .iter()
            .filter(|e| e["ph"] == "i" && e["name"] == "demo_fixed")
            .map(|e| e["args"]["seq"].as_u64().unwrap())
            .collect();
        let mut sorted = seqs.clone();
        sorted.sort_unstable();
        let mut want = good.clone();
        want.sort_unstable();
        assert_eq!(sorted, want, "{version:?}");
        let cpu0_order: Vec<u64> = seqs.iter().copied().filter(|s| *s < 300).collect();
        assert!(cpu0_order.windows(2).all(|w| w[0] < w[1]), "{cpu0_order:?}");
        assert!(
            !seqs
                .iter()
                .any(|s| ON_DAMAGED_PAGE.contains(s) || *s == 4 || *s == 6),
            "{seqs:?}"
        );
    }
}

/// A clean file: nothing skipped, no note.
#[test]
fn json_export_of_a_clean_file_skips_nothing() {
    let s = sample();
    let bytes = write_file(&meta(TraceDatVersion::V6), &s);
    let mut r = TraceDatReader::new(std::io::Cursor::new(bytes)).unwrap();
    let (_, stats) = tracedat_to_json(&mut r, Vec::new(), &JsonOptions::default()).unwrap();
    assert_eq!((stats.undecodable, stats.damaged_pages), (0, 0));
    assert_eq!(stats.first_skipped, None);
    assert_eq!(stats.skipped_note(), None);
}

ringtrace::declare_event! {
    /// A numbered record.
    pub struct SkipRec: "skips" / "skip_rec" = 2301 { seq: u64 }
}

/// Offset in `page` (a ring page: header, then events) of the first
/// record's payload, past any time stamp events before it.
fn first_payload(page: &[u8]) -> usize {
    let mut at = 16;
    loop {
        let h = u32::from_le_bytes(page[at..at + 4].try_into().unwrap());
        match h & 31 {
            // Time extend or absolute time stamp: 8 bytes, then the event.
            30 | 31 => at += 8,
            0 => return at + 8,
            1..=28 => return at + 4,
            other => panic!("type_len {other} at {at}"),
        }
    }
}

/// A recording recovered to JSON (`ringtrace recover OUT.json`) with a
/// record no format decodes: the record is skipped and counted in
/// `Recovered::undecodable`, every other one is in the output.
#[test]
fn recovered_json_counts_a_record_it_cannot_decode() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.json");
    let t = common::spool_tracer(SkipRec::EVENT_TYPE);
    let mut drain = common::spooling_drain(&t, &out);
    common::write_polling(&mut drain, 3_000, 200, |seq| {
        ringtrace::trace_event!(&t, SkipRec { seq });
    });
    drain.poll_all().unwrap();
    let stats = drain.stats();
    assert!(stats.pages >= 3, "{stats:?}");
    // The recorder dies (the drain is never finished).
    std::mem::forget(drain);
    // The first record of the second page gets an event id no format has.
    let cpu0 = SpoolFiles::new(&out).cpu(0);
    let mut bytes = std::fs::read(&cpu0).unwrap();
    let page_size = t.config().page_size;
    let at = page_size + first_payload(&bytes[page_size..2 * page_size]);
    assert_eq!(
        u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap()),
        2301
    );
    bytes[at..at + 2].copy_from_slice(&1999u16.to_le_bytes());
    std::fs::write(&cpu0, &bytes).unwrap();

    let r = recover(&out, ExportFormat::Json).unwrap();
    assert_eq!(
        (r.undecodable, r.lost_events, r.events),
        (1, 0, 3_000),
        "{r:?}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let seqs: Vec<u64> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "skip_rec")
        .map(|e| e["args"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len() as u64 + 1, r.events, "{r:?}");
    // One number is missing, the first of the second page; the rest are all
    // there, in order.
    let missing: Vec<u64> = (0..r.events)
        .filter(|s| seqs.binary_search(s).is_err())
        .collect();
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0] > 0, "{missing:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}
