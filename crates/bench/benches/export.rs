//! Issue 5's export throughput: GB/s of page data written to a trace.dat
//! file, measured in the same run as `cp` of a file of the same size (the
//! floor any file-writing export is judged against; target >= 1 GB/s).
//!
//! Contenders, each moving `SIZE` bytes of page data into a file in a temp
//! directory (page cache, like `cp`):
//!
//! - `tracedat_push`: page images in memory (built once, realistic events)
//!   written by `TraceDatWriter::push_pages` in 256 KiB batches (every page
//!   header checked), then `finish`.
//! - `tracedat_copy`: the same pages from a file, by `TraceDatWriter::copy_pages`
//!   (`io::copy`: in-kernel `copy_file_range`): what a drain's `finish` does
//!   with its spool files.
//! - `drain_full`: a tracer whose one context holds `SIZE` bytes of events
//!   (filled outside the timed section); timed: the drain consumes and
//!   re-packs every event into pages, spools them, and writes the trace.dat.
//! - `cp`: `cp` of a `SIZE`-byte file, process start included (small
//!   against `SIZE`).
//!
//! After criterion's groups a summary prints the medians (in GB/s) and
//! each ratio to `cp`, all from this run.
//!
//! Issue 23's conversion throughput, in MB/s of trace.dat input on one
//! core (target >= 500 MB/s each): a `CONVERT_SIZE`-byte trace.dat of
//! `Sample` records on `CONVERT_CPUS` CPUs (one thread each, fields varying)
//! read from a file (page cache) and written to a file:
//!
//! - `json`: `tracedat_to_json` (Chrome trace-event JSON).
//! - `perfetto`: `tracedat_to_perfetto` (native Perfetto, batches deflated).
//! - `perfetto_plain`: the same without compression.
//!
//! A second summary prints their medians and output sizes.
//!
//! Run: `cargo bench -p ringtrace-bench --bench export` (add `-- --quick`).

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringtrace::clock::Clock;
use ringtrace::export::{ExportFormat, Packed, PagePacker};
use ringtrace::json::{tracedat_to_json, JsonOptions};
use ringtrace::perfetto::{tracedat_to_perfetto, PerfettoOptions};
use ringtrace::tracedat::{TraceDatMeta, TraceDatReader, TraceDatVersion, TraceDatWriter};
use ringtrace::Tracer;

/// Page data per run.
const SIZE: usize = 64 << 20;
const PAGE: usize = 4096;

ringtrace::declare_event! {
    /// A 48-byte record.
    pub struct Sample: "bench" / "export_sample" = 3901 { a: u64, b: u64, c: u64, d: u64, e: u64 }
}

/// `SIZE` bytes of pages holding `Sample` records.
fn pages() -> Vec<u8> {
    let mut out = Vec::with_capacity(SIZE);
    let mut p = PagePacker::new(PAGE);
    let mut rec = [0u8; 48];
    let mut ts = 1_000_000u64;
    while out.len() < SIZE {
        ts += 37;
        rec[0..2].copy_from_slice(&3901u16.to_ne_bytes());
        rec[8..16].copy_from_slice(&ts.to_ne_bytes());
        if p.push(ts, 0, &rec) == Packed::PageFull {
            out.extend_from_slice(p.finish_page());
            assert_eq!(p.push(ts, 0, &rec), Packed::Added);
        }
    }
    out.truncate(SIZE);
    out
}

fn write_dat(pages: &[u8], path: &Path) -> Duration {
    let start = Instant::now();
    let f = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let meta = TraceDatMeta::new(PAGE as u32, 1, "mono");
    let mut w = TraceDatWriter::new(f, &meta).expect("writer");
    for chunk in pages.chunks(256 * 1024) {
        w.push_pages(0, chunk).expect("pages");
    }
    let f = w.finish().expect("finish");
    drop(f);
    start.elapsed()
}

fn copy_dat(src: &Path, path: &Path) -> Duration {
    let start = Instant::now();
    let f = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let meta = TraceDatMeta::new(PAGE as u32, 1, "mono");
    let mut w = TraceDatWriter::new(f, &meta).expect("writer");
    let mut input = File::open(src).expect("open");
    w.copy_pages(0, &mut input, SIZE as u64).expect("copy");
    drop(w.finish().expect("finish"));
    start.elapsed()
}

fn filled_tracer() -> Tracer {
    let t = ringtrace_bench::pc_tracer(1, SIZE, Clock::counter());
    t.register(Sample::EVENT_TYPE).expect("register");
    let s = Sample {
        a: 1,
        b: 2,
        c: 3,
        d: 4,
        e: 5,
    };
    // Fill the ring but leave a little room: P/C mode refuses the rest.
    let events = SIZE / 60 * 9 / 10;
    for _ in 0..events {
        let _ = t.record(&s);
    }
    t
}

fn drain_dat(t: &Tracer, path: &Path) -> (Duration, u64) {
    let start = Instant::now();
    let mut d = t.drain();
    d.poll_all().expect("poll");
    let f = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let stats = d.stats();
    d.finish(f, ExportFormat::TraceDat(TraceDatVersion::V6))
        .expect("finish");
    (start.elapsed(), stats.page_bytes)
}

fn cp(src: &Path, dst: &Path) -> Duration {
    let start = Instant::now();
    let st = Command::new("cp").arg(src).arg(dst).status().expect("cp");
    assert!(st.success());
    start.elapsed()
}

/// trace.dat bytes of page data in the conversion group's input.
const CONVERT_SIZE: usize = 16 << 20;
/// CPUs (contexts) of the conversion input, merged by time stamp.
const CONVERT_CPUS: usize = 4;

/// Writes the conversion group's input to `path`: `Sample` records of one
/// thread per CPU, interleaved in time, their fields varying.
fn convert_input(path: &Path) {
    let mut meta = TraceDatMeta::new(PAGE as u32, CONVERT_CPUS as u32, "mono");
    meta.events = vec![("bench".into(), vec![Sample::EVENT_TYPE.format_text()])];
    meta.cmdlines = (0..CONVERT_CPUS)
        .map(|c| (1000 + c as i32, format!("worker-{c}")))
        .collect();
    let f = BufWriter::with_capacity(1 << 20, File::create(path).expect("create"));
    let mut w = TraceDatWriter::new(f, &meta).expect("writer");
    for cpu in 0..CONVERT_CPUS {
        let mut p = PagePacker::new(PAGE);
        let mut rec = [0u8; 48];
        rec[0..2].copy_from_slice(&3901u16.to_ne_bytes());
        rec[4..8].copy_from_slice(&(1000 + cpu as i32).to_ne_bytes());
        let (mut ts, mut bytes, mut i) = (1_000_000 + cpu as u64 * 11, 0, 0u64);
        while bytes < CONVERT_SIZE / CONVERT_CPUS {
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
        }
    }
    drop(w.finish().expect("finish"));
}

/// Which converter.
#[derive(Clone, Copy)]
enum Conv {
    Json,
    Perfetto(bool),
}

/// Converts `src` to `out`; the time and the output's size.
fn convert(src: &Path, out: &Path, conv: Conv) -> (Duration, u64) {
    let start = Instant::now();
    let input = BufReader::with_capacity(1 << 20, File::open(src).expect("open"));
    let mut r = TraceDatReader::new(input).expect("reader");
    let f = BufWriter::with_capacity(1 << 20, File::create(out).expect("create"));
    let undecodable = match conv {
        Conv::Json => {
            let (f, st) = tracedat_to_json(&mut r, f, &JsonOptions::default()).expect("json");
            drop(f);
            st.undecodable
        }
        Conv::Perfetto(compress) => {
            let opts = PerfettoOptions {
                compress,
                ..PerfettoOptions::default()
            };
            let (f, st) = tracedat_to_perfetto(&mut r, f, &opts).expect("perfetto");
            drop(f);
            st.undecodable
        }
    };
    let took = start.elapsed();
    assert_eq!(undecodable, 0, "every record decodes");
    (took, std::fs::metadata(out).expect("output").len())
}

/// The conversion group and its summary.
fn convert_benches(c: &mut Criterion, dir: &Path) {
    let src = dir.join("convert.dat");
    convert_input(&src);
    let input = std::fs::metadata(&src).expect("input").len();
    let out = dir.join("convert.out");
    let convs = [
        ("json", Conv::Json),
        ("perfetto", Conv::Perfetto(true)),
        ("perfetto_plain", Conv::Perfetto(false)),
    ];
    let mut g = c.benchmark_group("convert_16MiB_tracedat__json_vs_perfetto");
    g.throughput(Throughput::Bytes(input));
    g.sample_size(10);
    for (name, conv) in convs {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| convert(&src, &out, conv).0).sum())
        });
    }
    g.finish();
    let mut line = format!("convert summary (MB/s of {input}-byte trace.dat input, median of 5):");
    for (name, conv) in convs {
        let mut size = 0;
        let rate = median(
            (0..5)
                .map(|_| {
                    let (d, n) = convert(&src, &out, conv);
                    size = n;
                    input as f64 / d.as_secs_f64() / 1e6
                })
                .collect(),
        );
        line.push_str(&format!(" {name} {rate:.0} (output {size} bytes),"));
    }
    eprintln!("{}", line.trim_end_matches(','));
}

/// Whether the group `name` passes criterion's name filter (the first
/// argument that is not an option), so that `-- convert` runs only the
/// conversion group and its summary.
fn wanted(name: &str) -> bool {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-') && a != "--bench");
    filter.is_none_or(|f| name.contains(&f) || f.contains(name))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = pages();
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).expect("write source");
    let out = dir.path().join("out.dat");
    if wanted("convert_16MiB_tracedat__json_vs_perfetto") {
        convert_benches(c, dir.path());
    }
    if !wanted("export_64MiB_page_data__tracedat_vs_cp") {
        return;
    }

    let mut g = c.benchmark_group("export_64MiB_page_data__tracedat_vs_cp");
    g.throughput(Throughput::Bytes(SIZE as u64));
    g.sample_size(10);
    g.bench_function("tracedat_push", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| write_dat(&data, &out)).sum())
    });
    g.bench_function("tracedat_copy", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| copy_dat(&src, &out)).sum())
    });
    g.bench_function("drain_full", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    let t = filled_tracer();
                    drain_dat(&t, &out).0
                })
                .sum()
        })
    });
    g.bench_function("cp", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| cp(&src, &out)).sum())
    });
    g.finish();

    // Summary: medians of 5, same run.
    let gbs = |d: Duration, bytes: u64| bytes as f64 / d.as_secs_f64() / 1e9;
    let w = median(
        (0..5)
            .map(|_| gbs(write_dat(&data, &out), SIZE as u64))
            .collect(),
    );
    let cpy = median(
        (0..5)
            .map(|_| gbs(copy_dat(&src, &out), SIZE as u64))
            .collect(),
    );
    let dr = median(
        (0..5)
            .map(|_| {
                let t = filled_tracer();
                let (d, bytes) = drain_dat(&t, &out);
                gbs(d, bytes)
            })
            .collect(),
    );
    let k = median((0..5).map(|_| gbs(cp(&src, &out), SIZE as u64)).collect());
    eprintln!(
        "export summary (GB/s of page data, median of 5): tracedat_push {w:.2} ({:.2}x cp), \
         tracedat_copy {cpy:.2} ({:.2}x cp), drain_full {dr:.2} ({:.2}x cp), cp {k:.2}",
        w / k,
        cpy / k,
        dr / k
    );
}

criterion_group! {
    name = export;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(export);
