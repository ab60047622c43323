//! trace.dat files of other machines: big-endian, and 32-bit kernels
//! (4-byte `long`: a 12-byte page header, a 4-byte lost count). The
//! fixtures are made here: one known trace serialized by a page encoder
//! written from the kernel's rules for each byte order and long size (C
//! bit-fields flip with the byte order: `type_len` is the top 5 bits of a
//! big-endian event header). The real `trace-cmd report` prints each
//! fixture exactly as the little-endian 64-bit one, and ringtrace reads,
//! renders and converts them (compressed too) with the same events.
//!
//! These tests FAIL (never skip) when `trace-cmd` is not on PATH.
mod tracedat_common;

use std::io::Cursor;
use std::path::Path;

use ringtrace::tracedat::{
    convert_with, Compression, ConvertOptions, FieldValue, TraceDatMeta, TraceDatReader,
    TraceDatVersion, TraceDatWriter, TraceItem,
};
use tracedat_common::{formats, trace_cmd_ok, ID_FIXED, ID_MSG, PAGE_SIZE};

/// A machine's encoding: byte order and `long` size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Machine {
    big: bool,
    long: usize,
}

const MACHINES: [Machine; 4] = [
    Machine {
        big: false,
        long: 8,
    },
    Machine { big: true, long: 8 },
    Machine {
        big: false,
        long: 4,
    },
    Machine { big: true, long: 4 },
];

impl Machine {
    fn int(self, v: u64, n: usize) -> Vec<u8> {
        let le = v.to_le_bytes();
        let mut b = le[..n].to_vec();
        if self.big {
            b.reverse();
        }
        b
    }

    /// An event header word: `type_len` and `time_delta` as C bit-fields.
    fn header(self, type_len: u32, delta: u32) -> Vec<u8> {
        let w = if self.big {
            (type_len << 27) | delta
        } else {
            type_len | (delta << 5)
        };
        self.int(u64::from(w), 4)
    }

    fn common(self, id: u16, pid: i32) -> Vec<u8> {
        let mut p = self.int(u64::from(id), 2);
        p.extend_from_slice(&[1, 2]); // flags, preempt count
        p.extend(self.int(pid as u32 as u64, 4));
        p
    }

    /// `demo_msg`: `__data_loc char[] msg` at 8, `int level` at 12.
    fn msg(self, pid: i32, level: i32, text: &str) -> Vec<u8> {
        let mut p = self.common(ID_MSG, pid);
        let len = text.len() as u64 + 1;
        p.extend(self.int((len << 16) | 16, 4));
        p.extend(self.int(level as u32 as u64, 4));
        p.extend_from_slice(text.as_bytes());
        p.push(0);
        p
    }

    /// `demo_fixed`: `u64 seq` at 8, `u32 value` at 16, `s16 delta` at 20.
    fn fixed(self, pid: i32, seq: u64, value: u32, delta: i16) -> Vec<u8> {
        let mut p = self.common(ID_FIXED, pid);
        p.extend(self.int(seq, 8));
        p.extend(self.int(u64::from(value), 4));
        p.extend(self.int(delta as u16 as u64, 2));
        p.extend_from_slice(&[0, 0]);
        p
    }

    /// One page: `time_stamp`, `commit` (a long, with the missed-events
    /// flags), then the events; `lost` stores a count after them.
    /// Events are `(delta, payload)`; a delta of 2^27 or more is preceded
    /// by a time extend.
    fn page(self, ts: u64, events: &[(u64, Vec<u8>)], lost: Option<Option<u64>>) -> Vec<u8> {
        let mut data = Vec::new();
        for (delta, payload) in events {
            let mut d = *delta as u32;
            if *delta >= 1 << 27 {
                data.extend(self.header(30, (*delta & ((1 << 27) - 1)) as u32));
                data.extend(self.int(delta >> 27, 4));
                d = 0;
            }
            let padded = payload.len().div_ceil(4) * 4;
            if padded <= 112 {
                data.extend(self.header((padded / 4) as u32, d));
            } else {
                data.extend(self.header(0, d));
                data.extend(self.int(padded as u64 + 4, 4));
            }
            data.extend_from_slice(payload);
            data.resize(data.len().next_multiple_of(4), 0);
        }
        let mut commit = data.len() as u64;
        match lost {
            Some(Some(n)) => {
                commit |= 3 << 30;
                data.extend(self.int(n, self.long));
            }
            Some(None) => commit |= 1 << 31,
            None => {}
        }
        let mut p = self.int(ts, 8);
        p.extend(self.int(commit, self.long));
        p.extend(data);
        p.resize(PAGE_SIZE, 0);
        p
    }

    /// The known trace: CPU 0 with a string, a fixed event, a gap that
    /// needs a time extend and a 150-byte string (type_len 0); CPU 1 with
    /// 3 lost events stored before its second page.
    fn pages(self) -> Vec<Vec<Vec<u8>>> {
        let t0 = 7_000_000_000;
        let long = "x".repeat(150);
        let cpu0 = vec![self.page(
            t0,
            &[
                (0, self.msg(10, -3, "hello")),
                (1_500, self.fixed(10, 1, 4_000_000_000, -2)),
                (400_000_000, self.msg(11, 9, &long)),
            ],
            None,
        )];
        let cpu1 = vec![
            self.page(t0 + 700, &[(0, self.fixed(20, 2, 22, 5))], None),
            self.page(t0 + 9_000, &[(0, self.fixed(20, 6, 66, 6))], Some(Some(3))),
            self.page(
                t0 + 19_000,
                &[(7, self.msg(21, 0, "flag only"))],
                Some(None),
            ),
        ];
        vec![cpu0, cpu1]
    }

    fn meta(self, version: TraceDatVersion) -> TraceDatMeta {
        let mut m = TraceDatMeta::new(PAGE_SIZE as u32, 2, "mono");
        m.version = version;
        m.big_endian = self.big;
        m.long_size = self.long;
        m.events = vec![("demo".to_string(), formats())];
        m.cmdlines = vec![(10, "ten".into()), (20, "twenty".into())];
        m
    }

    fn file(self, version: TraceDatVersion) -> Vec<u8> {
        let mut w = TraceDatWriter::new(Cursor::new(Vec::new()), &self.meta(version)).unwrap();
        for (cpu, pages) in self.pages().iter().enumerate() {
            w.write_cpu(cpu as u32, pages).unwrap();
        }
        w.finish().unwrap().into_inner()
    }
}

fn report(file: &Path) -> String {
    trace_cmd_ok(&["report", "-t", "-R", "-l", "-i", file.to_str().unwrap()])
}

/// What ringtrace reads: each item rendered, with its decoded fields.
fn ours(file: Vec<u8>) -> Vec<String> {
    let mut r = TraceDatReader::new(Cursor::new(file)).unwrap();
    let info = r.info().clone();
    r.records()
        .map(|i| {
            let i = i.unwrap();
            let mut line = info.render(&i).unwrap();
            if let TraceItem::Event(rec) = &i {
                let d = info.decode(rec).unwrap();
                line += &format!(" flags={} preempt={}", d.flags, d.preempt_count);
            }
            line
        })
        .collect()
}

#[test]
fn trace_cmd_reports_every_fixture_as_the_little_endian_64_bit_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut reports = Vec::new();
    for m in MACHINES {
        for v in [TraceDatVersion::V6, TraceDatVersion::V7] {
            let p = dir.path().join(format!("{m:?}-{v:?}.dat"));
            std::fs::write(&p, m.file(v)).unwrap();
            reports.push((m, v, report(&p)));
        }
    }
    let want = &reports[0].2;
    assert_eq!(want.lines().count(), 1 + 6 + 2, "{want}");
    for (m, v, got) in &reports {
        assert_eq!(got, want, "{m:?} {v:?}");
    }
}

#[test]
fn ringtrace_reads_every_fixture_with_the_expected_events() {
    // (comm-pid, CPU, time and event text), merged by time.
    let want = [
        ("ten-10", "[000]", "7.000000: demo_msg: msg=hello level=-3"),
        (
            "twenty-20",
            "[001]",
            "7.000001: demo_fixed: seq=2 value=22 delta=5",
        ),
        (
            "ten-10",
            "[000]",
            "7.000002: demo_fixed: seq=1 value=4000000000 delta=-2",
        ),
        ("", "CPU:1 [3 EVENTS DROPPED]", ""),
        (
            "twenty-20",
            "[001]",
            "7.000009: demo_fixed: seq=6 value=66 delta=6",
        ),
        ("", "CPU:1 [EVENTS DROPPED]", ""),
        (
            "<...>-21",
            "[001]",
            "7.000019: demo_msg: msg=flag only level=0",
        ),
        ("<...>-11", "[000]", "7.400002: demo_msg: msg=xxxxxxxxxx"),
    ];
    for m in MACHINES {
        for v in [TraceDatVersion::V6, TraceDatVersion::V7] {
            let f = m.file(v);
            let info = TraceDatReader::new(Cursor::new(f.clone()))
                .unwrap()
                .info()
                .clone();
            assert_eq!((info.big_endian, info.long_size), (m.big, m.long));
            let got = ours(f);
            assert_eq!(got.len(), want.len(), "{m:?} {v:?}: {got:#?}");
            for (g, (a, b, c)) in got.iter().zip(want) {
                assert!(
                    g.contains(a) && g.contains(b) && g.contains(c),
                    "{m:?} {v:?}: {g:?}"
                );
            }
            assert!(got[7].contains("level=9"), "{}", got[7]);
            assert!(got[0].ends_with("flags=1 preempt=2"), "{}", got[0]);
        }
    }
}

#[test]
fn convert_keeps_byte_order_and_long_size_compressed_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.dat");
    std::fs::write(&base, MACHINES[0].file(TraceDatVersion::V6)).unwrap();
    let want = report(&base);
    for m in MACHINES {
        let input = m.file(TraceDatVersion::V6);
        let want_ours = ours(input.clone());
        for compression in [None, Some(Compression::Zstd), Some(Compression::Zlib)] {
            let opts = ConvertOptions {
                version: TraceDatVersion::V7,
                compression,
            };
            let mut r = TraceDatReader::new(Cursor::new(input.clone())).unwrap();
            let out = convert_with(&mut r, Cursor::new(Vec::new()), opts, |_, _| {})
                .unwrap()
                .into_inner();
            let info = TraceDatReader::new(Cursor::new(out.clone()))
                .unwrap()
                .info()
                .clone();
            assert_eq!(
                (info.big_endian, info.long_size, info.compression),
                (m.big, m.long, compression)
            );
            assert_eq!(ours(out.clone()), want_ours, "{m:?} {compression:?}");
            if compression != Some(Compression::Zlib) {
                // The Debian trace-cmd has no zlib.
                let p = dir.path().join("out.dat");
                std::fs::write(&p, out).unwrap();
                assert_eq!(report(&p), want, "{m:?} {compression:?}");
            }
        }
    }
}

#[test]
fn field_values_decode_in_the_files_byte_order() {
    for m in MACHINES {
        let mut r = TraceDatReader::new(Cursor::new(m.file(TraceDatVersion::V7))).unwrap();
        let info = r.info().clone();
        let first_fixed = r
            .records()
            .find_map(|i| match i.unwrap() {
                TraceItem::Event(rec)
                    if rec.cpu == 0
                        && info
                            .decode(&rec)
                            .is_ok_and(|d| d.format.name == "demo_fixed") =>
                {
                    Some(rec)
                }
                _ => None,
            })
            .unwrap();
        let d = info.decode(&first_fixed).unwrap();
        assert_eq!(d.pid, 10, "{m:?}");
        assert_eq!(
            d.fields,
            [
                ("seq", FieldValue::Unsigned(1)),
                ("value", FieldValue::Unsigned(4_000_000_000)),
                ("delta", FieldValue::Signed(-2)),
            ],
            "{m:?}"
        );
    }
}
