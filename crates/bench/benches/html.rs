//! Issue 23's HTML figures: the HTML export's speed in MB/s of trace.dat
//! input (target >= 200 MB/s), beside the JSON export of the same file in
//! the same run (the peer: same reader, same renderer), and how long
//! headless Chromium takes to draw the page of a 1M-event trace (target
//! < 3 s), from navigation start to the page's "drawn" mark
//! (`data-drawn-ms` on `<body>`, set by timeline.js after the first full
//! draw).
//!
//! The trace: 4 threads, each recording `EVENTS / 4` records, a mix of
//! typed events (half), binary printk (a third) and span begin/end pairs,
//! filled outside the timed section and exported once to a trace.dat in a
//! temp directory (page cache).
//!
//! Speeds are given on the wall clock and on the exporting thread's CPU
//! clock (the one that holds on a machine shared with other jobs).
//!
//! Run: `cargo bench -p ringtrace-bench --bench html` (add `-- --quick`).
//! Chromium must be installed (`.ci/test` installs it); without it the
//! draw time is reported as not measured.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringtrace::clock::Clock;
use ringtrace::export::html::{tracedat_to_html, HtmlOptions};
use ringtrace::export::{export_snapshot, ExportFormat};
use ringtrace::json::{tracedat_to_json, JsonOptions};
use ringtrace::span::{SpanBegin, SpanEnd};
use ringtrace::tracedat::{TraceDatReader, TraceDatVersion};

/// Records in the trace (the "1M events").
const EVENTS: u64 = 1_000_000;
const THREADS: u64 = 4;

ringtrace::declare_event! {
    /// The typed event of the mix.
    pub struct Request: "bench" / "html_request" = 3951 { id: u64, status: u32, micros: u32 }
}

fn make_trace(path: &Path) -> u64 {
    let t = ringtrace_bench::pc_tracer(THREADS as usize, 24 << 20, Clock::mono());
    t.register(Request::EVENT_TYPE).expect("register");
    ringtrace::span::register();
    std::thread::scope(|s| {
        for w in 0..THREADS {
            let t = &t;
            s.spawn(move || {
                let mut n = 0u64;
                let mut i = 0u64;
                while n < EVENTS / THREADS {
                    t.record(&SpanBegin {
                        id: i,
                        name: "handle",
                    })
                    .expect("span");
                    t.record(&Request {
                        id: i,
                        status: 200 + (i % 3) as u32,
                        micros: (i % 97) as u32,
                    })
                    .expect("event");
                    ringtrace::trace!(tracer: t, "worker %d request %d", w as i32, i as i32);
                    t.record(&Request {
                        id: i,
                        status: 0,
                        micros: 1,
                    })
                    .expect("event");
                    t.record(&SpanEnd {
                        id: i,
                        name: "handle",
                    })
                    .expect("span");
                    n += 5;
                    i += 1;
                }
            });
        }
    });
    let f = File::create(path).expect("create trace.dat");
    let (_, stats) =
        export_snapshot(&t, f, ExportFormat::TraceDat(TraceDatVersion::V6)).expect("export");
    stats.events
}

/// CPU time of the calling thread: the exports run on it, so on a loaded
/// machine this is the figure that does not depend on the other jobs.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant
    // every Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f`; returns its wall and on-CPU times.
fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let (w, c) = (Instant::now(), thread_cpu());
    f();
    (w.elapsed(), thread_cpu() - c)
}

fn html(src: &Path, out: &Path) -> Duration {
    let start = Instant::now();
    let mut r = TraceDatReader::new(BufReader::new(File::open(src).expect("open"))).expect("read");
    let f = BufWriter::with_capacity(1 << 20, File::create(out).expect("create"));
    let (f, _) = tracedat_to_html(&mut r, f, &HtmlOptions::default()).expect("html");
    drop(f);
    start.elapsed()
}

fn json(src: &Path, out: &Path) -> Duration {
    let start = Instant::now();
    let mut r = TraceDatReader::new(BufReader::new(File::open(src).expect("open"))).expect("read");
    let f = BufWriter::with_capacity(1 << 20, File::create(out).expect("create"));
    let (f, _) = tracedat_to_json(&mut r, f, &JsonOptions::default()).expect("json");
    drop(f);
    start.elapsed()
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-headless-shell", "google-chrome"]
        .iter()
        .flat_map(|n| std::env::split_paths(&path).map(move |d| d.join(n)))
        .find(|p| p.is_file())
}

/// The page's `data-drawn-ms` in headless Chromium, or why not measured.
fn drawn_ms(page: &Path) -> Result<f64, String> {
    let bin = chromium().ok_or("chromium not on PATH (.ci/test installs it)")?;
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("file://{}", page.display()))
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("chromium: {e}"))?;
    let dom = String::from_utf8_lossy(&out.stdout);
    let key = "data-drawn-ms=\"";
    let at = dom.find(key).ok_or("no drawn mark in the DOM")? + key.len();
    let end = dom[at..].find('"').ok_or("bad drawn mark")?;
    dom[at..at + end].parse().map_err(|e| format!("{e}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("trace.dat");
    let events = make_trace(&src);
    let size = std::fs::metadata(&src).expect("size").len();
    let (out_html, out_json) = (dir.path().join("t.html"), dir.path().join("t.json"));

    let mut g = c.benchmark_group("export_1M_events__html_vs_json");
    g.throughput(Throughput::Bytes(size));
    g.sample_size(10);
    g.bench_function("html", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| html(&src, &out_html)).sum())
    });
    g.bench_function("json", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| json(&src, &out_json)).sum())
    });
    g.finish();

    let mbs = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
    let runs = |f: &dyn Fn()| -> (f64, f64) {
        let t: Vec<(Duration, Duration)> = (0..3).map(|_| timed(f)).collect();
        (
            median(t.iter().map(|x| mbs(x.0)).collect()),
            median(t.iter().map(|x| mbs(x.1)).collect()),
        )
    };
    let (h, hc) = runs(&|| {
        html(&src, &out_html);
    });
    let (j, jc) = runs(&|| {
        json(&src, &out_json);
    });
    let page = std::fs::metadata(&out_html).expect("page").len();
    let drawn = match drawn_ms(&out_html) {
        Ok(ms) => format!("{ms:.0} ms"),
        Err(why) => format!("not measured: {why}"),
    };
    eprintln!(
        "html summary ({events} events, trace.dat {:.1} MB, page {:.1} MB; MB/s of trace.dat \
         input, median of 3, wall / on-CPU): html {h:.0} / {hc:.0} MB/s ({:.2}x json on CPU), \
         json {j:.0} / {jc:.0} MB/s; Chromium drew the page in {drawn} (target < 3000 ms)",
        size as f64 / 1e6,
        page as f64 / 1e6,
        hc / jc
    );
}

criterion_group! {
    name = html_export;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(html_export);
