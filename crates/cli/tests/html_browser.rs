//! `ringtrace html` in a real browser: headless Chromium loads the page of
//! a recorded trace, and what its script counted after drawing (the
//! `data-*` attributes on `<body>`, the summary's rows) must equal what the
//! trace.dat holds, counted here independently from the file; a screenshot
//! must show a drawn timeline (several distinct colours in its region).
//!
//! Chromium is required: `.ci/test` installs it with apt when missing;
//! without it these tests fail, naming the package, never skip.
//! `RINGTRACE_UPDATE_SCREENSHOT=1` copies the spans test's screenshot to
//! docs/html-timeline.png (the README's picture).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ringtrace::export::{export_snapshot, ExportFormat};
use ringtrace::span::{SpanBegin, SpanEnd};
use ringtrace::tracedat::{FieldValue, FileRenderer, TraceDatReader, TraceDatVersion, TraceItem};

/// Hang guard of one browser run (never a performance bound).
const HANG_GUARD: Duration = Duration::from_secs(180);

fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-headless-shell", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("chromium is not on PATH: the HTML tests need it (`.ci/test` installs the apt package `chromium`)");
}

/// Runs headless Chromium on `page` with `extra` arguments, in a fresh
/// profile, with no network of its own; returns its output.
fn browse(page: &Path, extra: &[String]) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut cmd = Command::new(chromium());
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(extra)
    .arg(format!("file://{}", page.display()))
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait chromium").is_some() {
            return child.wait_with_output().expect("chromium output");
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            panic!(
                "chromium did not finish within {HANG_GUARD:?} on {}",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The page's DOM after its script ran.
fn dump_dom(page: &Path) -> String {
    let out = browse(
        page,
        &["--dump-dom".into(), "--virtual-time-budget=10000".into()],
    );
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 DOM")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The attributes of each `<tag` element in `html` carrying `marker`.
fn attrs_of_elements(html: &str, tag: &str, marker: &str) -> Vec<HashMap<String, String>> {
    let mut out = Vec::new();
    let open = format!("<{tag} ");
    let mut rest = html;
    while let Some(p) = rest.find(&open) {
        let end = rest[p..].find('>').map(|e| p + e).expect("tag end");
        let text = &rest[p + open.len()..end];
        rest = &rest[end..];
        if !text.contains(marker) {
            continue;
        }
        let mut m = HashMap::new();
        let mut t = text;
        while let Some(eq) = t.find("=\"") {
            let key = t[..eq].trim().to_string();
            let vend = t[eq + 2..].find('"').expect("attribute end") + eq + 2;
            m.insert(key, unescape(&t[eq + 2..vend]));
            t = &t[vend + 1..];
        }
        out.push(m);
    }
    out
}

fn body_attr(dom: &str, key: &str) -> String {
    let body = &attrs_of_elements(dom, "body", "data-")[0];
    body.get(key)
        .unwrap_or_else(|| panic!("<body> has no {key}: {body:?}"))
        .clone()
}

/// What the trace.dat holds, counted here from the file.
#[derive(Debug, Default)]
struct Expected {
    events: u64,
    threads: HashSet<i32>,
    cpus: HashSet<u32>,
    types: BTreeMap<String, u64>,
    spans: u64,
    spans_per_name: BTreeMap<String, u64>,
    lost_per_cpu: BTreeMap<u32, (u64, u64)>,
}

fn expected(dat: &Path) -> Expected {
    let mut r = TraceDatReader::new(BufReader::new(std::fs::File::open(dat).unwrap())).unwrap();
    let info = r.info().clone();
    let render = FileRenderer::new(&info);
    let mut x = Expected::default();
    let mut open: HashMap<i32, Vec<(u64, String)>> = HashMap::new();
    let count_span = |x: &mut Expected, name: &str| {
        x.spans += 1;
        *x.spans_per_name
            .entry(format!("ringtrace:{name}"))
            .or_default() += 1;
    };
    for item in r.records() {
        match item.expect("a clean trace") {
            TraceItem::Lost { cpu, count, .. } => {
                x.cpus.insert(cpu);
                let e = x.lost_per_cpu.entry(cpu).or_default();
                e.0 += count.unwrap_or(0);
                e.1 += 1;
            }
            TraceItem::Event(rec) => {
                let v = render.view(&rec).expect("decodes");
                let d = &v.decoded;
                x.events += 1;
                x.threads.insert(d.pid);
                x.cpus.insert(rec.cpu);
                let field = |n: &str| {
                    d.fields
                        .iter()
                        .find(|(k, _)| *k == n)
                        .map(|(_, v)| v.clone())
                };
                match (v.system(), d.format.name.as_str()) {
                    ("ringtrace", edge @ ("span_begin" | "span_end")) => {
                        let Some(FieldValue::Str(name)) = field("name") else {
                            panic!("span name")
                        };
                        let Some(FieldValue::Unsigned(id)) = field("id") else {
                            panic!("span id")
                        };
                        let stack = open.entry(d.pid).or_default();
                        if edge == "span_begin" {
                            stack.push((id, name));
                        } else {
                            if let Some(p) = stack.iter().rposition(|o| *o == (id, name.clone())) {
                                stack.remove(p);
                            }
                            count_span(&mut x, &name);
                        }
                    }
                    (sys, _) => *x.types.entry(format!("{sys}:{}", v.name)).or_default() += 1,
                }
            }
        }
    }
    for stack in open.values() {
        for (_, name) in stack {
            count_span(&mut x, name);
        }
    }
    x
}

fn check_dom(dom: &str, x: &Expected) {
    assert_eq!(body_attr(dom, "data-events"), x.events.to_string());
    assert_eq!(body_attr(dom, "data-lanes"), x.threads.len().to_string());
    assert_eq!(body_attr(dom, "data-cpus"), x.cpus.len().to_string());
    assert_eq!(body_attr(dom, "data-spans"), x.spans.to_string());
    assert_eq!(body_attr(dom, "data-types"), x.types.len().to_string());
    let lost: u64 = x.lost_per_cpu.values().map(|v| v.0).sum();
    let markers: u64 = x.lost_per_cpu.values().map(|v| v.1).sum();
    assert_eq!(body_attr(dom, "data-lost"), lost.to_string());
    assert_eq!(body_attr(dom, "data-lost-markers"), markers.to_string());
    let drawn: f64 = body_attr(dom, "data-drawn-ms").parse().expect("drawn mark");
    assert!(drawn > 0.0);
    // The summary: events per type, span counts per name, loss per context
    // (read from its section: the page's script holds the same markup).
    let from = dom.find("id=\"rt-summary\"").expect("summary section");
    let dom = &dom[from..from + dom[from..].find("</section>").expect("summary end")];
    let types: BTreeMap<String, u64> = attrs_of_elements(dom, "tr", "data-type=")
        .into_iter()
        .map(|a| (a["data-type"].clone(), a["data-count"].parse().unwrap()))
        .collect();
    assert_eq!(types, x.types);
    let spans: BTreeMap<String, u64> = attrs_of_elements(dom, "div", "data-span-name=")
        .into_iter()
        .map(|a| (a["data-span-name"].clone(), a["data-n"].parse().unwrap()))
        .collect();
    // The page draws the 8 most frequent names.
    assert_eq!(spans.len(), x.spans_per_name.len().min(8));
    for (name, n) in &spans {
        assert_eq!(x.spans_per_name.get(name), Some(n), "spans named {name}");
    }
    let loss: BTreeMap<u32, (u64, u64)> = attrs_of_elements(dom, "tr", "data-cpu=")
        .into_iter()
        .map(|a| {
            let c = a["data-cpu"].parse().unwrap();
            (
                c,
                (
                    a["data-lost"].parse().unwrap(),
                    a["data-markers"].parse().unwrap(),
                ),
            )
        })
        .filter(|(_, v)| *v != (0, 0))
        .collect();
    assert_eq!(loss, x.lost_per_cpu);
}

/// Screenshots `page` and checks the timeline region is drawn: at least
/// `min_colours` distinct colours there. Returns the PNG's path.
fn screenshot(page: &Path, dir: &Path, min_colours: usize) -> PathBuf {
    let png = dir.join("shot.png");
    let out = browse(
        page,
        &[
            format!("--screenshot={}", png.display()),
            "--window-size=1400,900".into(),
            "--virtual-time-budget=10000".into(),
        ],
    );
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let bpp = info.line_size / info.width as usize;
    assert!(bpp >= 3, "colour PNG");
    // The timeline's plot: right of the lane labels, below the header and
    // the time axis, left of the detail panel.
    let mut colours = HashSet::new();
    for y in 70..(info.height as usize).min(400) {
        for x in 190..(info.width as usize).saturating_sub(380) {
            let p = y * info.line_size + x * bpp;
            colours.insert((buf[p], buf[p + 1], buf[p + 2]));
        }
    }
    assert!(
        colours.len() >= min_colours,
        "timeline region has only {} colours: not drawn?",
        colours.len()
    );
    png
}

fn ringtrace(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_ringtrace"))
        .args(args)
        .output()
        .expect("run ringtrace");
    assert!(
        out.status.success(),
        "ringtrace {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn self_contained(html: &Path) {
    let text = std::fs::read_to_string(html).unwrap();
    for needle in [
        "<link", " src=", "url(", "@import", "http://", "https://", "<iframe",
    ] {
        assert!(
            !text.contains(needle),
            "the page refers outside itself: {needle}"
        );
    }
}

#[test]
fn demo_trace_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let dat = dir.path().join("demo.dat");
    let html = dir.path().join("demo.html");
    let (d, h) = (dat.to_str().unwrap(), html.to_str().unwrap());
    ringtrace(&["demo", "-o", d, "--iterations", "400"]);
    ringtrace(&["html", d, "-o", h]);
    self_contained(&html);
    let x = expected(&dat);
    assert!(x.events > 1000 && x.threads.len() == 4, "{x:?}");
    check_dom(&dump_dom(&html), &x);
    screenshot(&html, dir.path(), 6);
}

ringtrace::declare_event! {
    /// A typed event between the spans.
    pub struct Step: "html_test" / "step" = 3301 { i: u64, level: u32 }
}

/// Busy work of `units` (spans of varied lengths; no clock involved).
fn spin(units: u64) {
    let mut x = 1u64;
    for k in 0..units * 2000 {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(k));
    }
}

/// Two threads of nested spans in small overwrite rings: the first pages
/// are overwritten (lost events, spans whose begin is gone).
fn spans_trace(dat: &Path) {
    let t = ringtrace::TracerConfig::new()
        .max_contexts(2)
        .bytes_per_context(24 * 4096)
        .mode(ringtrace::Mode::Overwrite)
        .build()
        .unwrap();
    t.register(Step::EVENT_TYPE).unwrap();
    ringtrace::span::register();
    std::thread::scope(|s| {
        for w in 0..2u64 {
            let t = &t;
            std::thread::Builder::new()
                .name(format!("spans-{w}"))
                .spawn_scoped(s, move || {
                    for i in 0..4000u64 {
                        t.record(&SpanBegin {
                            id: i,
                            name: "request",
                        })
                        .unwrap();
                        t.record(&SpanBegin {
                            id: i,
                            name: "parse",
                        })
                        .unwrap();
                        t.record(&Step {
                            i,
                            level: (i % 5) as u32,
                        })
                        .unwrap();
                        spin(i * (w + 3) % 11);
                        t.record(&SpanEnd {
                            id: i,
                            name: "parse",
                        })
                        .unwrap();
                        if i % 3 == 0 {
                            t.record(&SpanBegin {
                                id: i,
                                name: "store",
                            })
                            .unwrap();
                            t.marker("flush");
                            t.record(&SpanEnd {
                                id: i,
                                name: "store",
                            })
                            .unwrap();
                        }
                        t.record(&SpanEnd {
                            id: i,
                            name: "request",
                        })
                        .unwrap();
                    }
                })
                .unwrap();
        }
    });
    let f = std::fs::File::create(dat).unwrap();
    export_snapshot(&t, f, ExportFormat::TraceDat(TraceDatVersion::V6)).unwrap();
}

#[test]
fn spans_and_losses_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let dat = dir.path().join("spans.dat");
    let html = dir.path().join("spans.html");
    spans_trace(&dat);
    ringtrace(&["html", dat.to_str().unwrap(), "-o", html.to_str().unwrap()]);
    self_contained(&html);
    let x = expected(&dat);
    assert!(x.spans > 100, "{x:?}");
    assert!(
        !x.lost_per_cpu.is_empty(),
        "the rings should have overwritten: {x:?}"
    );
    check_dom(&dump_dom(&html), &x);
    let png = screenshot(&html, dir.path(), 8);
    if std::env::var_os("RINGTRACE_UPDATE_SCREENSHOT").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/html-timeline.png");
        std::fs::copy(&png, docs).unwrap();
    }
}

#[test]
fn search_marks_matching_events() {
    // The search box's count, driven from the page itself: a page whose
    // URL fragment names a query runs it (see timeline.js).
    let dir = tempfile::tempdir().unwrap();
    let dat = dir.path().join("demo.dat");
    let html = dir.path().join("demo.html");
    let (d, h) = (dat.to_str().unwrap(), html.to_str().unwrap());
    ringtrace(&["demo", "-o", d, "--iterations", "200"]);
    ringtrace(&["html", d, "-o", h]);
    let x = expected(&dat);
    let want: u64 = x
        .types
        .iter()
        .filter(|(k, _)| k.to_lowercase().contains("work"))
        .map(|(_, v)| v)
        .sum();
    assert!(want > 0);
    let page = dir.path().join("demo.html#search=work");
    let dom = dump_dom(&page);
    assert_eq!(body_attr(&dom, "data-matches"), want.to_string());
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.dat");
    std::fs::write(&bad, b"not a trace").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ringtrace"))
        .args(["html", bad.to_str().unwrap(), "-o"])
        .arg(dir.path().join("o.html"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.dat"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_ringtrace"))
        .args(["html", dir.path().join("missing.dat").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.dat"));
}
