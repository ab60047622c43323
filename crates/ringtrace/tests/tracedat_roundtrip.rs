//! Our reader reads what our writer wrote (v6 and v7): metadata, each
//! CPU's records exactly as the independent test encoder stored them,
//! lost-event markers, the merge order, typed field values and text; and the
//! writer refuses misuse.
mod tracedat_common;

use ringtrace::tracedat::{
    FieldKind, FieldValue, TraceDatError, TraceDatMeta, TraceDatReader, TraceDatVersion,
    TraceDatWriter, TraceItem,
};
use std::io::Cursor;
use tracedat_common::*;

fn reader(v: TraceDatVersion) -> TraceDatReader<Cursor<Vec<u8>>> {
    TraceDatReader::new(Cursor::new(write_file(&meta(v), &sample()))).unwrap()
}

#[test]
fn metadata_round_trips() {
    for v in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let m = meta(v);
        let r = reader(v);
        let info = r.info();
        assert_eq!(info.version, if v == TraceDatVersion::V6 { 6 } else { 7 });
        assert!(!info.big_endian);
        assert_eq!((info.page_size, info.long_size), (4096, 8));
        assert_eq!(info.clock.as_deref(), Some("mono"));
        assert_eq!(info.cmdlines, m.cmdlines);
        assert_eq!(info.printk, m.printk);
        assert_eq!(info.uname, m.uname);
        assert_eq!(info.writer_version, m.writer_version);
        assert_eq!(info.trace_id, m.trace_id);
        assert_eq!(info.cpu_stats, m.cpu_stats);
        assert_eq!(info.tsc2nsec, None);
        assert!(
            info.unknown_options.is_empty(),
            "{:?}",
            info.unknown_options
        );
        let names: Vec<_> = info
            .events
            .iter()
            .map(|e| (e.system.as_str(), e.name.as_str(), e.id))
            .collect();
        assert_eq!(
            names,
            [
                ("demo", "demo_msg", u32::from(ID_MSG)),
                ("demo", "demo_fixed", u32::from(ID_FIXED)),
                ("demo", "demo_big", u32::from(ID_BIG))
            ]
        );
        let msg = info.event_by_id(u32::from(ID_MSG)).unwrap();
        assert_eq!(msg.field("msg").unwrap().kind, FieldKind::DataLoc);
        assert_eq!(
            msg.print_fmt,
            "\"level=%d msg=%s\", REC->level, __get_str(msg)"
        );
        // CPU table: 4 entries, CPU 2 empty, others page-aligned.
        let sizes: Vec<u64> = info.cpus.iter().map(|c| c.size).collect();
        assert_eq!(sizes, [8192, 4096, 0, 12288]);
        assert!(info
            .cpus
            .iter()
            .all(|c| c.size == 0 || c.offset % 4096 == 0));
    }
}

#[test]
fn per_cpu_records_are_what_the_encoder_stored() {
    let s = sample();
    for v in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let mut r = reader(v);
        for cpu in 0..4u32 {
            let items: Vec<TraceItem> = r
                .cpu_records(cpu as usize)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let got = events_of(&items);
            let want: Vec<Expected> = s.records.iter().filter(|e| e.cpu == cpu).cloned().collect();
            assert_eq!(got, want, "{v:?} CPU {cpu}");
            if cpu == 3 {
                // Lost markers come first on their page, with the page stamp.
                assert!(matches!(
                    items[1],
                    TraceItem::Lost { cpu: 3, page: 1, count: Some(7), ts } if ts == T0 + 900_000
                ));
                assert!(matches!(
                    items[3],
                    TraceItem::Lost {
                        cpu: 3,
                        page: 2,
                        count: None,
                        ..
                    }
                ));
            }
        }
        assert!(r.cpu_records(4).is_err());
    }
}

#[test]
fn merge_orders_by_time_then_cpu() {
    let mut r = reader(TraceDatVersion::V7);
    let items: Vec<TraceItem> = r.records().collect::<Result<_, _>>().unwrap();
    let keys: Vec<(u64, u32)> = items.iter().map(|i| (i.ts(), i.cpu())).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(items.len(), sample().records.len() + 2);
}

#[test]
fn fields_decode_to_typed_values() {
    let mut r = reader(TraceDatVersion::V6);
    let items: Vec<TraceItem> = r.records().collect::<Result<_, _>>().unwrap();
    let info = r.info();
    let decoded: Vec<_> = items
        .iter()
        .filter_map(|i| match i {
            TraceItem::Event(rec) => Some(info.decode(rec).unwrap()),
            TraceItem::Lost { .. } => None,
        })
        .collect();
    let d = &decoded[0];
    assert_eq!((d.format.name.as_str(), d.pid), ("demo_msg", 100));
    assert_eq!(
        d.fields,
        [
            ("msg", FieldValue::Str("hello world".into())),
            ("level", FieldValue::Signed(3))
        ]
    );
    let fixed = decoded
        .iter()
        .find(|d| d.format.name == "demo_fixed" && d.pid == 100)
        .unwrap();
    assert_eq!(
        fixed.fields,
        [
            ("seq", FieldValue::Unsigned(7)),
            ("value", FieldValue::Unsigned(4_000_000_000)),
            ("delta", FieldValue::Signed(-5)),
        ]
    );
    let big = decoded
        .iter()
        .find(|d| d.format.name == "demo_big")
        .unwrap();
    assert_eq!(big.fields[0], ("name", FieldValue::Str("bigname".into())));
    assert_eq!(big.fields[1], ("seq", FieldValue::Unsigned(99)));
    let blob: Vec<FieldValue> = (0..120u64).map(FieldValue::Unsigned).collect();
    assert_eq!(big.fields[2], ("blob", FieldValue::Array(blob)));
}

#[test]
fn text_lines() {
    let mut r = reader(TraceDatVersion::V6);
    let items: Vec<TraceItem> = r.records().collect::<Result<_, _>>().unwrap();
    let lines: Vec<String> = items.iter().map(|i| r.info().render(i).unwrap()).collect();
    assert_eq!(
        lines[0],
        "        writer-a-100   [000]     5.000000: demo_msg: msg=hello world level=3"
    );
    assert_eq!(
        lines[3],
        "        writer-a-100   [000]     5.000002: demo_fixed: seq=7 value=4000000000 delta=-5"
    );
    assert_eq!(lines[5], "CPU:3 [7 EVENTS DROPPED]");
    assert_eq!(lines[7], "CPU:3 [EVENTS DROPPED]");
    assert_eq!(
        lines[8],
        "           <...>-301   [003]     5.001900: demo_msg: msg=after drops level=0"
    );
    assert_eq!(
        lines[9],
        "      worker two-200   [001]     5.750001: demo_msg: msg=after the gap level=-1"
    );
}

#[test]
fn writer_refuses_misuse() {
    let m = TraceDatMeta::new(4096, 2, "mono");
    let mut w = TraceDatWriter::new(Cursor::new(Vec::new()), &m).unwrap();
    assert!(matches!(
        w.push_page(0, &[0u8; 100]),
        Err(TraceDatError::Usage(_))
    ));
    assert!(matches!(
        w.push_page(2, &[0u8; 4096]),
        Err(TraceDatError::Usage(_))
    ));
    let mut bad_commit = vec![0u8; 4096];
    bad_commit[8..16].copy_from_slice(&4081u64.to_le_bytes());
    let e = w.push_page(1, &bad_commit).unwrap_err();
    assert!(e.to_string().contains("commit 4081 exceeds"), "{e}");
    w.push_page(1, &[0u8; 4096]).unwrap();
    let e = w.push_page(0, &[0u8; 4096]).unwrap_err();
    assert!(e.to_string().contains("ascending"), "{e}");

    let mut bad_format = TraceDatMeta::new(4096, 1, "mono");
    bad_format.events = vec![("demo".into(), vec!["ID: 5\nformat:\n".into()])];
    let mut bad_comm = TraceDatMeta::new(4096, 1, "mono");
    bad_comm.cmdlines = vec![(1, "two\nlines".into())];
    for bad in [
        TraceDatMeta::new(3000, 1, "mono"),
        TraceDatMeta::new(4096, 1, "bad clock"),
        TraceDatMeta::new(4096, 100_000, "mono"),
        bad_format,
        bad_comm,
    ] {
        assert!(matches!(
            TraceDatWriter::new(Cursor::new(Vec::new()), &bad),
            Err(TraceDatError::Usage(_))
        ));
    }
}

#[test]
fn empty_trace_and_small_pages() {
    // No pages at all, and 1 KiB pages whose CPU blocks still start on
    // 4096-byte boundaries.
    for v in [TraceDatVersion::V6, TraceDatVersion::V7] {
        let mut m = TraceDatMeta::new(1024, 3, "local");
        m.version = v;
        let w = TraceDatWriter::new(Cursor::new(Vec::new()), &m).unwrap();
        let file = w.finish().unwrap().into_inner();
        let mut r = TraceDatReader::new(Cursor::new(file)).unwrap();
        assert_eq!(r.info().cpus.len(), 3);
        assert_eq!(r.records().count(), 0);

        let mut w = TraceDatWriter::new(Cursor::new(Vec::new()), &m).unwrap();
        let mut page = vec![0u8; 1024];
        page[8..16].copy_from_slice(&8u64.to_le_bytes());
        page[16..20].copy_from_slice(&1u32.to_le_bytes());
        w.write_cpu(0, [&page, &page]).unwrap();
        w.write_cpu(2, [&page]).unwrap();
        let file = w.finish().unwrap().into_inner();
        let mut r = TraceDatReader::new(Cursor::new(file)).unwrap();
        let cpus = r.info().cpus.clone();
        assert!(
            cpus[0].offset % 4096 == 0 && cpus[2].offset % 4096 == 0,
            "{cpus:?}"
        );
        assert_eq!((cpus[0].size, cpus[1].size, cpus[2].size), (2048, 0, 1024));
        assert_eq!(r.records().count(), 3);
    }
}
