//! Test support shared by the `tracedat_*` tests: an independent page
//! encoder (written from the kernel's rules, not from `tracedat::page`), the
//! demo event formats, and a sample trace covering the interesting cases.
//! Compiled on its own too (it has no tests then).
#![allow(dead_code)]

use ringtrace::tracedat::{TraceDatMeta, TraceDatVersion, TraceDatWriter, TraceItem};
use std::io::Cursor;

/// The `trace-cmd` on PATH; panics (fails the test) when there is none:
/// `.ci/test` installs it, and a test that needs it must not skip.
pub fn trace_cmd() -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("trace-cmd"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`trace-cmd` is not on PATH: this test needs the real trace-cmd \
                 (Debian: apt-get install -y trace-cmd)"
            )
        })
}

/// Runs the `trace-cmd` on PATH with `args`; fails the test, with
/// trace-cmd's stderr, unless it succeeds; returns its standard output.
pub fn trace_cmd_ok(args: &[&str]) -> String {
    let out = std::process::Command::new(trace_cmd())
        .args(args)
        .output()
        .expect("running trace-cmd");
    assert!(
        out.status.success(),
        "trace-cmd {args:?} failed: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Page size of the sample trace.
pub const PAGE_SIZE: usize = 4096;
const TYPE_PADDING: u32 = 29;
const TYPE_TIME_EXTEND: u32 = 30;

/// Builds one page in the 64-bit little-endian kernel layout.
#[derive(Debug)]
pub struct PageBuilder {
    buf: Vec<u8>,
    len: usize,
    last_ts: u64,
    flags: u64,
    lost: Option<u64>,
}

impl PageBuilder {
    /// An empty page whose `time_stamp` is `page_ts`.
    pub fn new(page_ts: u64) -> Self {
        let mut buf = vec![0u8; PAGE_SIZE];
        buf[0..8].copy_from_slice(&page_ts.to_le_bytes());
        PageBuilder {
            buf,
            len: 0,
            last_ts: page_ts,
            flags: 0,
            lost: None,
        }
    }

    fn word(&mut self, w: u32) {
        let at = 16 + self.len;
        self.buf[at..at + 4].copy_from_slice(&w.to_le_bytes());
        self.len += 4;
    }

    /// Adds a data event at absolute time `ts`, with a time extend first
    /// when the delta needs more than 27 bits. Returns the stored payload
    /// (rounded up to 4 bytes).
    pub fn event(&mut self, ts: u64, payload: &[u8]) -> Vec<u8> {
        let delta = ts - self.last_ts;
        self.last_ts = ts;
        let mut delta_hdr = delta as u32;
        if delta >= 1 << 27 {
            self.word(TYPE_TIME_EXTEND | ((delta as u32 & ((1 << 27) - 1)) << 5));
            self.word((delta >> 27) as u32);
            delta_hdr = 0;
        }
        let padded = payload.len().div_ceil(4) * 4;
        if payload.len() <= 112 {
            self.word((padded / 4) as u32 | (delta_hdr << 5));
        } else {
            self.word(delta_hdr << 5);
            self.word(padded as u32 + 4);
        }
        let at = 16 + self.len;
        self.buf[at..at + payload.len()].copy_from_slice(payload);
        self.len += padded;
        let mut stored = payload.to_vec();
        stored.resize(padded, 0);
        stored
    }

    /// Adds a discarded event (padding with a non-zero delta) of `bytes`
    /// bytes after its header, at absolute time `ts`.
    pub fn discarded(&mut self, ts: u64, bytes: u32) {
        let delta = (ts - self.last_ts) as u32;
        self.last_ts = ts;
        self.word(TYPE_PADDING | (delta << 5));
        self.word(bytes);
        self.len += bytes as usize - 4;
    }

    /// Marks the page: events were lost before it (and their count).
    pub fn missed(&mut self, count: Option<u64>) {
        self.flags = 1 << 31;
        if count.is_some() {
            self.flags |= 1 << 30;
        }
        self.lost = count;
    }

    /// Writes `commit` (with flags) and the stored lost count; returns the page.
    pub fn finish(mut self) -> Vec<u8> {
        let commit = self.len as u64 | self.flags;
        self.buf[8..16].copy_from_slice(&commit.to_le_bytes());
        if let Some(n) = self.lost {
            let at = 16 + self.len;
            self.buf[at..at + 8].copy_from_slice(&n.to_le_bytes());
        }
        self.buf
    }
}

const COMMON: &str = "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";

/// Event id of `demo_msg` (string + int).
pub const ID_MSG: u16 = 1001;
/// Event id of `demo_fixed` (u64, u32, s16).
pub const ID_FIXED: u16 = 1002;
/// Event id of `demo_big` (152-byte payload: type_len 0).
pub const ID_BIG: u16 = 1003;

/// The format texts of the three demo events.
pub fn formats() -> Vec<String> {
    vec![
        format!(
            "name: demo_msg\nID: {ID_MSG}\nformat:\n{COMMON}\
\tfield:__data_loc char[] msg;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:int level;\toffset:12;\tsize:4;\tsigned:1;\n\n\
print fmt: \"level=%d msg=%s\", REC->level, __get_str(msg)\n"
        ),
        format!(
            "name: demo_fixed\nID: {ID_FIXED}\nformat:\n{COMMON}\
\tfield:u64 seq;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:u32 value;\toffset:16;\tsize:4;\tsigned:0;\n\
\tfield:s16 delta;\toffset:20;\tsize:2;\tsigned:1;\n\n\
print fmt: \"seq=%llu value=%u delta=%d\", REC->seq, REC->value, REC->delta\n"
        ),
        format!(
            "name: demo_big\nID: {ID_BIG}\nformat:\n{COMMON}\
\tfield:char name[16];\toffset:8;\tsize:16;\tsigned:0;\n\
\tfield:u64 seq;\toffset:24;\tsize:8;\tsigned:0;\n\
\tfield:unsigned char blob[120];\toffset:32;\tsize:120;\tsigned:0;\n\n\
print fmt: \"name=%s seq=%llu\", REC->name, REC->seq\n"
        ),
    ]
}

fn common(id: u16, pid: i32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&id.to_le_bytes());
    p.push(0); // flags
    p.push(0); // preempt count
    p.extend_from_slice(&pid.to_le_bytes());
    p
}

/// A `demo_msg` payload.
pub fn msg(pid: i32, level: i32, text: &str) -> Vec<u8> {
    let mut p = common(ID_MSG, pid);
    let len = text.len() as u32 + 1;
    p.extend_from_slice(&((len << 16) | 16).to_le_bytes());
    p.extend_from_slice(&level.to_le_bytes());
    p.extend_from_slice(text.as_bytes());
    p.push(0);
    p
}

/// A `demo_fixed` payload.
pub fn fixed(pid: i32, seq: u64, value: u32, delta: i16) -> Vec<u8> {
    let mut p = common(ID_FIXED, pid);
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&value.to_le_bytes());
    p.extend_from_slice(&delta.to_le_bytes());
    p.extend_from_slice(&[0, 0]);
    p
}

/// A `demo_big` payload.
pub fn big(pid: i32, name: &str, seq: u64) -> Vec<u8> {
    let mut p = common(ID_BIG, pid);
    let mut n = [0u8; 16];
    n[..name.len()].copy_from_slice(name.as_bytes());
    p.extend_from_slice(&n);
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend((0..120).map(|i| i as u8));
    p
}

/// A payload of event type `id`, which the demo formats do not describe.
pub fn unknown_type(pid: i32, id: u16) -> Vec<u8> {
    let mut p = common(id, pid);
    p.extend_from_slice(&[0xab; 8]);
    p
}

/// One record as the encoder stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// CPU.
    pub cpu: u32,
    /// Absolute time stamp.
    pub ts: u64,
    /// Payload, rounded up to 4 bytes.
    pub data: Vec<u8>,
}

/// The data events of `items` as [`Expected`] records (losses left out).
pub fn events_of(items: &[TraceItem]) -> Vec<Expected> {
    items
        .iter()
        .filter_map(|i| match i {
            TraceItem::Event(rec) => Some(Expected {
                cpu: rec.cpu,
                ts: rec.ts,
                data: rec.data.clone(),
            }),
            TraceItem::Lost { .. } => None,
        })
        .collect()
}

/// The sample trace: 4 CPUs (CPU 2 empty), pages per CPU, and the records
/// the encoder stored (per CPU, in order).
#[derive(Debug)]
pub struct Sample {
    /// Page images per CPU.
    pub pages: Vec<Vec<Vec<u8>>>,
    /// Records, grouped by CPU, in page order.
    pub records: Vec<Expected>,
}

/// First time stamp of the sample (5 s).
pub const T0: u64 = 5_000_000_000;

/// Builds the sample trace.
pub fn sample() -> Sample {
    let mut records = Vec::new();
    let mut rec = |cpu: u32, ts: u64, data: Vec<u8>| records.push(Expected { cpu, ts, data });

    // CPU 0: a string event and a fixed event on one page, a big
    // (type_len 0) event on the next page.
    let mut p = PageBuilder::new(T0);
    rec(0, T0, p.event(T0, &msg(100, 3, "hello world")));
    rec(
        0,
        T0 + 1_500,
        p.event(T0 + 1_500, &fixed(100, 7, 4_000_000_000, -5)),
    );
    let p0 = p.finish();
    let mut p = PageBuilder::new(T0 + 20_000);
    rec(
        0,
        T0 + 20_000,
        p.event(T0 + 20_000, &big(100, "bigname", 99)),
    );
    let p1 = p.finish();
    let cpu0 = vec![p0, p1];

    // CPU 1: a gap of 0.75 s inside one page needs a time extend; a
    // discarded event whose delta counts (trace-cmd adds it).
    let mut p = PageBuilder::new(T0 + 1_000);
    rec(1, T0 + 1_000, p.event(T0 + 1_000, &fixed(200, 1, 11, 0)));
    rec(
        1,
        T0 + 750_001_000,
        p.event(T0 + 750_001_000, &msg(200, -1, "after the gap")),
    );
    p.discarded(T0 + 750_002_000, 12);
    rec(
        1,
        T0 + 750_003_000,
        p.event(T0 + 750_003_000, &fixed(201, 2, 22, 1)),
    );
    let cpu1 = vec![p.finish()];

    // CPU 2: empty.
    // CPU 3: events lost before page 2 (count stored) and page 3 (flag only).
    let mut p = PageBuilder::new(T0 + 500);
    rec(3, T0 + 500, p.event(T0 + 500, &fixed(300, 1, 1, 0)));
    let q0 = p.finish();
    let mut p = PageBuilder::new(T0 + 900_000);
    p.missed(Some(7));
    rec(3, T0 + 900_000, p.event(T0 + 900_000, &fixed(300, 9, 9, 0)));
    let q1 = p.finish();
    let mut p = PageBuilder::new(T0 + 1_900_000);
    p.missed(None);
    rec(
        3,
        T0 + 1_900_000,
        p.event(T0 + 1_900_000, &msg(301, 0, "after drops")),
    );
    let q2 = p.finish();
    let cpu3 = vec![q0, q1, q2];

    Sample {
        pages: vec![cpu0, cpu1, Vec::new(), cpu3],
        records,
    }
}

/// The sample's metadata for `version`.
pub fn meta(version: TraceDatVersion) -> TraceDatMeta {
    let mut m = TraceDatMeta::new(PAGE_SIZE as u32, 4, "mono");
    m.version = version;
    m.events = vec![("demo".to_string(), formats())];
    m.cmdlines = vec![
        (100, "writer-a".into()),
        (200, "worker two".into()),
        (300, "w3".into()),
    ];
    m.printk = vec![(0xffff_0000_1000, "hello %d\\n".into())];
    m.uname = Some("Linux testhost 6.1.0 #1 SMP x86_64".into());
    m.writer_version = Some("ringtrace-test 0.1".into());
    m.trace_id = Some(0x1234_5678_9abc_def0);
    m.cpu_stats = (0..4)
        .map(|c| format!("CPU: {c}\nentries: {c}\n"))
        .collect();
    m
}

/// Writes `sample` with `meta` into memory.
pub fn write_file(meta: &TraceDatMeta, sample: &Sample) -> Vec<u8> {
    let mut w = TraceDatWriter::new(Cursor::new(Vec::new()), meta).expect("writer");
    for (cpu, pages) in sample.pages.iter().enumerate() {
        w.write_cpu(cpu as u32, pages).expect("pages");
    }
    w.finish().expect("finish").into_inner()
}
