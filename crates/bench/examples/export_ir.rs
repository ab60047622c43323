//! A callgrind harness for issue 23's exports: writes a trace.dat, then
//! converts it once to JSON, Perfetto or HTML (output to /dev/null), so
//! that `valgrind --tool=callgrind` gives instructions per record of the
//! conversion alone:
//!
//! ```text
//! valgrind --tool=callgrind --collect-atstart=no \
//!     --toggle-collect='*convert_once*' \
//!     target/release/examples/export_ir json sample
//! ```
//!
//! The first argument is the format (`json`, `perfetto`, `html`); the
//! second the input: `sample` (the `export` bench's conversion input:
//! 48-byte typed records on 4 CPUs) or `mix` (the `html` bench's mix of
//! typed events, binary printk and spans); the third, optional, a file
//! for the output (else /dev/null). The record count is printed (divide
//! callgrind's total by it), with the conversion's CPU time (a figure for
//! a quick comparison; the `export` and `html` benches are the reference).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use ringtrace::clock::Clock;
use ringtrace::export::html::{tracedat_to_html, HtmlOptions};
use ringtrace::export::{export_snapshot, ExportFormat, Packed, PagePacker};
use ringtrace::json::{tracedat_to_json, JsonOptions};
use ringtrace::perfetto::{tracedat_to_perfetto, PerfettoOptions};
use ringtrace::span::{SpanBegin, SpanEnd};
use ringtrace::tracedat::{TraceDatMeta, TraceDatReader, TraceDatVersion, TraceDatWriter};

const PAGE: usize = 4096;
/// Page bytes of the `sample` input.
const SAMPLE_SIZE: usize = 4 << 20;
/// Records of the `mix` input.
const MIX_EVENTS: u64 = 200_000;

ringtrace::declare_event! {
    /// The `export` bench's 48-byte record.
    pub struct Sample: "bench" / "export_sample" = 3901 { a: u64, b: u64, c: u64, d: u64, e: u64 }
}

ringtrace::declare_event! {
    /// The `html` bench's typed event.
    pub struct Request: "bench" / "html_request" = 3951 { id: u64, status: u32, micros: u32 }
}

/// The `export` bench's conversion input (`convert_input`), smaller.
fn sample_input(path: &Path) -> u64 {
    let cpus = 4;
    let mut meta = TraceDatMeta::new(PAGE as u32, cpus as u32, "mono");
    meta.events = vec![("bench".into(), vec![Sample::EVENT_TYPE.format_text()])];
    meta.cmdlines = (0..cpus)
        .map(|c| (1000 + c as i32, format!("worker-{c}")))
        .collect();
    let f = BufWriter::new(File::create(path).expect("create"));
    let mut w = TraceDatWriter::new(f, &meta).expect("writer");
    let mut records = 0;
    for cpu in 0..cpus {
        let mut p = PagePacker::new(PAGE);
        let mut rec = [0u8; 48];
        rec[0..2].copy_from_slice(&3901u16.to_ne_bytes());
        rec[4..8].copy_from_slice(&(1000 + cpu as i32).to_ne_bytes());
        let (mut ts, mut bytes, mut i) = (1_000_000 + cpu as u64 * 11, 0, 0u64);
        while bytes < SAMPLE_SIZE / cpus {
            ts += 37 + i % 50;
            i += 1;
            for (k, x) in [i, i * 3, ts, i % 7, u64::MAX - i].iter().enumerate() {
                rec[8 + 8 * k..16 + 8 * k].copy_from_slice(&x.to_ne_bytes());
            }
            if p.push(ts, 0, &rec) == Packed::PageFull {
                w.push_page(cpu as u32, p.finish_page()).expect("page");
                bytes += PAGE;
                assert_eq!(p.push(ts, 0, &rec), Packed::Added);
            }
            records += 1;
        }
    }
    drop(w.finish().expect("finish"));
    records
}

/// The `html` bench's mix (`make_trace`), smaller.
fn mix_input(path: &Path) -> u64 {
    let threads = 4u64;
    let t = ringtrace_bench::pc_tracer(threads as usize, 8 << 20, Clock::mono());
    t.register(Request::EVENT_TYPE).expect("register");
    ringtrace::span::register();
    std::thread::scope(|s| {
        for w in 0..threads {
            let t = &t;
            s.spawn(move || {
                let mut i = 0u64;
                while i * 5 < MIX_EVENTS / threads {
                    let name = "handle";
                    t.record(&SpanBegin { id: i, name }).expect("span");
                    let (status, micros) = (200 + (i % 3) as u32, (i % 97) as u32);
                    t.record(&Request {
                        id: i,
                        status,
                        micros,
                    })
                    .expect("event");
                    ringtrace::trace!(tracer: t, "worker %d request %d", w as i32, i as i32);
                    t.record(&Request {
                        id: i,
                        status: 0,
                        micros: 1,
                    })
                    .expect("event");
                    t.record(&SpanEnd { id: i, name }).expect("span");
                    i += 1;
                }
            });
        }
    });
    let f = File::create(path).expect("create");
    let (_, stats) =
        export_snapshot(&t, f, ExportFormat::TraceDat(TraceDatVersion::V6)).expect("export");
    stats.events
}

/// The conversion callgrind collects (`--toggle-collect='*convert_once*'`).
#[inline(never)]
fn convert_once(format: &str, src: &Path, dst: &Path) {
    let input = BufReader::with_capacity(1 << 20, File::open(src).expect("open"));
    let mut r = TraceDatReader::new(input).expect("reader");
    let out = BufWriter::with_capacity(1 << 20, File::create(dst).expect("output"));
    let out = match format {
        "json" => {
            tracedat_to_json(&mut r, out, &JsonOptions::default())
                .expect("json")
                .0
        }
        "perfetto" => {
            tracedat_to_perfetto(&mut r, out, &PerfettoOptions::default())
                .expect("perfetto")
                .0
        }
        "html" => {
            tracedat_to_html(&mut r, out, &HtmlOptions::default())
                .expect("html")
                .0
        }
        other => panic!("unknown format {other:?}: json, perfetto or html"),
    };
    out.into_inner().expect("flush").flush().expect("flush");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let format = args.first().map_or("json", String::as_str);
    let input = args.get(1).map_or("sample", String::as_str);
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("in.dat");
    let records = match input {
        "sample" => sample_input(&src),
        "mix" => mix_input(&src),
        other => panic!("unknown input {other:?}: sample or mix"),
    };
    let bytes = std::fs::metadata(&src).expect("input").len();
    let dst = args.get(2).map_or("/dev/null", String::as_str);
    let cpu = thread_cpu();
    convert_once(format, &src, Path::new(dst));
    let cpu = thread_cpu() - cpu;
    println!(
        "{format} of {input}: {records} records, {bytes} bytes of trace.dat, \
         converted in {:.1} ms of CPU ({:.0} MB/s)",
        cpu * 1e3,
        bytes as f64 / cpu / 1e6
    );
}

/// CPU seconds of the calling thread (the conversion runs on it).
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // every Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}
