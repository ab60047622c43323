//! The reader takes a CPU's pages in blocks: two CPUs holding several
//! blocks each, their events interleaved in time, read back per CPU and
//! merged, v6 and v7: every event, in order, every field intact.
mod common;

use std::collections::HashMap;
use std::io::Cursor;

use ringtrace::clock::Clock;
use ringtrace::export::{export_snapshot, ExportFormat};
use ringtrace::ring::Mode;
use ringtrace::tracedat::{FieldValue, TraceDatReader, TraceDatVersion, TraceItem};

ringtrace::declare_event! {
    /// One numbered record of a writer.
    pub struct Numbered: "bigcpu" / "numbered" = 3401 { writer: u32, seq: u64, check: u64 }
}

/// Events each writer records: well over one read block of pages each.
const EACH: u64 = 40_000;

fn check_of(writer: u32, seq: u64) -> u64 {
    seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(writer)
}

/// Two writer threads on two contexts, exported as `v`.
fn big_file(v: TraceDatVersion) -> Vec<u8> {
    let t = common::tracer(2, 4 << 20, Mode::ProducerConsumer, Some(Clock::mono()));
    std::thread::scope(|s| {
        for writer in 0..2u32 {
            let t = &t;
            s.spawn(move || {
                for seq in 0..EACH {
                    let check = check_of(writer, seq);
                    t.record(&Numbered { writer, seq, check }).unwrap();
                }
            });
        }
    });
    let (dat, _) = export_snapshot(&t, Cursor::new(Vec::new()), ExportFormat::TraceDat(v)).unwrap();
    // Nothing was lost: every event written was taken into the file, and
    // the accounts balance.
    common::assert_accounts(&t);
    let written: u64 = (0..2)
        .map(|r| t.ring_stats(r).unwrap())
        .map(|s| {
            assert_eq!((s.overrun, s.dropped, s.commit_overrun), (0, 0, 0));
            s.written
        })
        .sum();
    assert_eq!(written, 2 * EACH);
    dat.into_inner()
}

/// The (writer, seq) of each event in `items`, its check field verified.
fn numbered(r: &TraceDatReader<Cursor<Vec<u8>>>, items: &[TraceItem]) -> Vec<(u32, u64)> {
    items
        .iter()
        .map(|i| {
            let TraceItem::Event(rec) = i else {
                panic!("a loss in a producer/consumer trace: {i:?}");
            };
            let d = r.info().decode(rec).unwrap();
            let f: HashMap<&str, &FieldValue> = d.fields.iter().map(|(k, v)| (*k, v)).collect();
            let (FieldValue::Unsigned(w), FieldValue::Unsigned(seq), FieldValue::Unsigned(c)) =
                (f["writer"], f["seq"], f["check"])
            else {
                panic!("fields of {d:?}");
            };
            let w = u32::try_from(*w).unwrap();
            assert_eq!(*c, check_of(w, *seq), "writer {w} seq {seq}");
            (w, *seq)
        })
        .collect()
}

#[test]
fn cpus_of_many_blocks_read_back_whole() {
    for v in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let file = big_file(v);
        assert!(file.len() > 2 * (1 << 20), "{v:?}: {} bytes", file.len());
        let mut r = TraceDatReader::new(Cursor::new(file)).unwrap();
        let mut writers_seen = Vec::new();
        for cpu in 0..2 {
            let items: Vec<TraceItem> = r
                .cpu_records(cpu)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let got = numbered(&r, &items);
            let writer = got[0].0;
            let want: Vec<(u32, u64)> = (0..EACH).map(|s| (writer, s)).collect();
            assert!(
                got == want,
                "{v:?} CPU {cpu}: {} events, not 0..{EACH} of one writer",
                got.len()
            );
            writers_seen.push(writer);
        }
        writers_seen.sort_unstable();
        assert_eq!(writers_seen, [0, 1], "{v:?}");
        // Merged: both CPUs' blocks read in turns, each writer still in order.
        let items: Vec<TraceItem> = r.records().collect::<Result<_, _>>().unwrap();
        let merged = numbered(&r, &items);
        assert_eq!(merged.len() as u64, 2 * EACH, "{v:?}");
        for writer in 0..2u32 {
            let seqs: Vec<u64> = merged
                .iter()
                .filter(|e| e.0 == writer)
                .map(|e| e.1)
                .collect();
            assert!(
                seqs.iter().copied().eq(0..EACH),
                "{v:?} writer {writer} merged out of order"
            );
        }
    }
}
