//! The `tracing` layer and the `log` backend end to end: a program using
//! `tracing`'s `info!`, `span!` with fields and `log`'s `warn!` records into
//! one tracer; its events must appear, with their field values and the span
//! begin/end nesting, in ringtrace's text output and in a trace.dat file as
//! printed by the real `trace-cmd report` (Debian `trace-cmd` 3.1.6; the
//! test FAILS when it is missing: `apt-get install -y trace-cmd`).
mod layer_common;

use layer_common::{drain, leak_tracer, pipe_lines, text_lines, trace_cmd_report, trace_dat};
use ringtrace::layer::RingtraceLayer;
use tracing::Level;
use tracing_subscriber::prelude::*;

/// Runs a `tracing` macro and returns the line its call site records
/// (`line!` in nested macros gives the line of the outermost invocation).
macro_rules! at_line {
    ($e:expr) => {{
        $e;
        line!()
    }};
}

/// Evaluates a `tracing` macro and returns its value and the line its
/// call site records.
macro_rules! with_line {
    ($e:expr) => {{
        let v = $e;
        (v, line!())
    }};
}

/// The head trace-cmd prints for a call site of this file at `line` (see
/// `ringtrace::export::callsite`).
fn site(level: &str, span: bool, line: u32) -> String {
    let span = if span { " span" } else { "" };
    format!("{level}{span} {} {}:{line}:", module_path!(), file!())
}

/// What the program recorded: `(event name, fields)` in order, as the
/// reader must show them, and the lines of its call sites.
struct Expected {
    lines: Vec<(String, String)>,
    sites: Vec<u32>,
}

/// The program: nested spans with fields, events with fields of every
/// stored kind, a `log` warning inside the inner span.
fn program() -> Expected {
    let t = module_path!();
    let (outer, ls) = with_line!(tracing::info_span!(
        "request",
        path = "/a b",
        attempt = 2u64
    ));
    let o = outer.id().expect("span enabled").into_u64();
    let mut lines = vec![(
        "request".to_string(),
        format!("INFO span_id={o} path=/a b attempt=2"),
    )];
    let mut sites = Vec::new();
    {
        let _o = outer.enter();
        lines.push(("span_begin".into(), format!("id={o} name=request")));
        let l1 = at_line!(tracing::info!(
            bytes = 4096u64,
            ok = true,
            ratio = 0.5,
            delta = -3i64,
            "served {}",
            "page"
        ));
        lines.push((
            "served_page".into(),
            "INFO message=served page bytes=4096 ok=1 ratio=0.5 delta=-3".into(),
        ));
        let (inner, ld) = with_line!(tracing::span!(
            Level::DEBUG,
            "db",
            table = "users",
            shard = tracing::field::Empty
        ));
        let i = inner.id().expect("span enabled").into_u64();
        lines.push(("db".into(), format!("DEBUG span_id={i} table=users shard=")));
        {
            let _i = inner.enter();
            lines.push(("span_begin".into(), format!("id={i} name=db")));
            log::warn!("slow query: {} ms", 12);
            lines.push((
                "log".into(),
                format!("level=WARN target={t} message=slow query: 12 ms"),
            ));
            inner.record("shard", 7u64);
            // Recorded later: a string field gets the value formatted.
            lines.push(("db".into(), format!("DEBUG span_id={i} table= shard=7")));
            let l2 = at_line!(tracing::info!(rows = 3u64));
            // No name and no message: the default name.
            lines.push(("event".into(), "INFO rows=3".into()));
            sites.extend([ls, l1, ld, l2]);
            lines.push(("span_end".into(), format!("id={i} name=db")));
        }
        let l3 = at_line!(tracing::error!(err = ?Some("x"), "done"));
        lines.push(("done".into(), "ERROR message=done err=Some(\"x\")".into()));
        // `inner` closes, then `outer` is left (drop order).
        lines.push(("span_close".into(), format!("id={i} name=db")));
        lines.push(("span_end".into(), format!("id={o} name=request")));
        sites.push(l3);
    }
    lines.push(("span_close".into(), format!("id={o} name=request")));
    Expected { lines, sites }
}

#[test]
fn tracing_and_log_events_in_text_and_trace_cmd() {
    let t = leak_tracer();
    ringtrace::log_backend::init_with(t, log::LevelFilter::Trace).expect("logger");
    let sub = tracing_subscriber::registry().with(RingtraceLayer::new(t));
    let want = tracing::subscriber::with_default(sub, program);

    let events = drain(t);
    // ringtrace's own text output.
    let lines = text_lines(&events);
    assert_eq!(lines, want.lines);

    // Span nesting: begins and ends pair up like a stack.
    let mut stack = Vec::new();
    for (name, fields) in &lines {
        match name.as_str() {
            "span_begin" => stack.push(fields.clone()),
            "span_end" => assert_eq!(stack.pop().as_ref(), Some(fields), "end without begin"),
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed spans: {stack:?}");

    // The real trace-cmd reads the same events from a trace.dat.
    let dat = trace_dat(t, &events);
    let report = trace_cmd_report(&dat);
    let o = &want.lines[1].1; // "id=N name=request"
    let i = &want.lines[4].1;
    let tc: Vec<(&str, &str)> = report
        .iter()
        .map(|(n, x)| (n.as_str(), x.as_str()))
        .collect();
    let t_mod = module_path!();
    let [ls, l1, ld, l2, l3] = want.sites[..] else {
        panic!("{:?}", want.sites)
    };
    let oid = o.split(' ').next().unwrap().trim_start_matches("id=");
    let iid = i.split(' ').next().unwrap().trim_start_matches("id=");
    let expect: Vec<(&str, String)> = vec![
        (
            "request",
            format!(
                "{} span_id={oid} path=/a b attempt=2",
                site("INFO", true, ls)
            ),
        ),
        ("span_begin", o.clone()),
        (
            "served_page",
            format!(
                "{} served page bytes=4096 ok=1 ratio=0x3fe0000000000000 delta=-3",
                site("INFO", false, l1)
            ),
        ),
        (
            "db",
            format!(
                "{} span_id={iid} table=users shard=",
                site("DEBUG", true, ld)
            ),
        ),
        ("span_begin", i.clone()),
        ("log", format!("WARN {t_mod}: slow query: 12 ms")),
        (
            "db",
            format!("{} span_id={iid} table= shard=7", site("DEBUG", true, ld)),
        ),
        ("event", format!("{} rows=3", site("INFO", false, l2))),
        ("span_end", i.clone()),
        (
            "done",
            format!("{} done err=Some(\"x\")", site("ERROR", false, l3)),
        ),
        ("span_close", i.clone()),
        ("span_end", o.clone()),
        ("span_close", o.clone()),
    ];
    let expect: Vec<(&str, &str)> = expect.iter().map(|(n, x)| (*n, x.as_str())).collect();
    assert_eq!(tc, expect, "trace-cmd report");

    json_of_the_file(dat);
}

/// The JSON export of the program's trace.dat: spans become B/E slices on
/// the thread's track, nested; fields become args with their types.
fn json_of_the_file(dat: Vec<u8>) {
    let mut r = ringtrace::tracedat::TraceDatReader::new(std::io::Cursor::new(dat)).unwrap();
    let (json, _) =
        ringtrace::json::tracedat_to_json(&mut r, Vec::new(), &Default::default()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    let evs = v["traceEvents"].as_array().unwrap();
    let slices: Vec<(&str, &str)> = evs
        .iter()
        .filter(|e| e["ph"] == "B" || e["ph"] == "E")
        .map(|e| (e["ph"].as_str().unwrap(), e["name"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        slices,
        [("B", "request"), ("B", "db"), ("E", "db"), ("E", "request")]
            .iter()
            .map(|(p, n)| (*p, *n))
            .collect::<Vec<_>>(),
        "span slices"
    );
    let served = evs
        .iter()
        .find(|e| e["name"] == "served_page")
        .expect("the info! event");
    assert_eq!(served["args"]["bytes"], 4096);
    assert_eq!(served["args"]["ratio"], 0.5);
    assert_eq!(served["args"]["delta"], -3);
    assert_eq!(served["args"]["message"], "served page");
    // Every event is on the thread that wrote it, named by metadata.
    let tid = served["tid"].as_i64().unwrap();
    assert!(evs
        .iter()
        .any(|e| e["ph"] == "M" && e["tid"].as_i64() == Some(tid)));
}

#[test]
fn pipe_text_and_beside_fmt_layer() {
    let t = leak_tracer();
    let fmt_out = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let w = fmt_out.clone();
    let sub = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(move || Sink(w.clone())),
        )
        .with(RingtraceLayer::new(t).with_filter(tracing_subscriber::filter::LevelFilter::INFO));
    tracing::subscriber::with_default(sub, || {
        tracing::info!(n = 1u64, "kept");
        tracing::debug!(n = 2u64, "filtered by the per-layer filter");
        // The same call site with a value of another type.
        for v in ["x", "y"] {
            tracing::info!(v, "strs");
        }
    });
    let lines = pipe_lines(t, 3);
    assert!(lines[0].ends_with(": INFO message=kept n=1"), "{lines:?}");
    assert!(lines[1].ends_with("message=strs v=x"), "{lines:?}");
    assert!(lines[2].ends_with("message=strs v=y"), "{lines:?}");
    // The pipe prints the usual ftrace columns.
    assert!(lines[0].contains("[000] ....."), "{lines:?}");
    let fmt = String::from_utf8(fmt_out.lock().unwrap().clone()).unwrap();
    assert!(fmt.contains("kept n=1"), "fmt layer saw the event: {fmt}");
    assert!(fmt.contains("filtered by the per-layer filter"), "{fmt}");
}

#[test]
fn values_of_another_type_are_converted_or_counted() {
    let t = leak_tracer();
    let sub = tracing_subscriber::registry().with(RingtraceLayer::new(t));
    let before = RingtraceLayer::mismatched();
    tracing::subscriber::with_default(sub, || {
        let values: [&dyn tracing::Value; 4] = [&5u64, &-1i64, &2.5f64, &"text"];
        for v in values {
            // One call site: its first event fixes `v` as a u64.
            tracing::info!(v);
        }
        let long = "é".repeat(2000);
        tracing::info!(s = long.as_str());
    });
    let lines = pipe_lines(t, 5);
    assert!(lines[0].ends_with(": INFO v=5"), "{lines:?}");
    // An i64 in a u64 field keeps its bits; a float is converted.
    assert!(
        lines[1].ends_with(": INFO v=18446744073709551615"),
        "{lines:?}"
    );
    assert!(lines[2].ends_with(": INFO v=2"), "{lines:?}");
    // A string cannot go to a number field: 0, and counted.
    assert!(lines[3].ends_with(": INFO v=0"), "{lines:?}");
    assert!(RingtraceLayer::mismatched() > before);
    let s = lines[4].split_once(" s=").expect("s field").1;
    assert!(s.len() < 1024 && s.starts_with("éé"), "{}", s.len());
    assert!(!s.contains('\u{fffd}'), "cut inside a character");
    assert!(RingtraceLayer::truncated() >= 1);
}

/// Call sites with numbers only (at most eight, a span id counting as one)
/// take the small-record path: encoded into a small stack array, no
/// staging buffer. Their values must read back the same in the pipe text
/// and in trace-cmd's report as those of the staged path.
#[test]
fn number_only_events_and_spans() {
    let t = leak_tracer();
    let sub = tracing_subscriber::registry().with(RingtraceLayer::new(t));
    let (id, line) = tracing::subscriber::with_default(sub, || {
        let (span, line) = with_line!(tracing::info_span!("nums", a = 1u64, b = -2i64));
        let id = span.id().expect("enabled").into_u64();
        let _e = span.enter();
        tracing::info!(x = 7u64, ok = false, r = 1.5f64);
        // Nine numbers: staged.
        tracing::info!(
            n1 = 1,
            n2 = 2,
            n3 = 3,
            n4 = 4,
            n5 = 5,
            n6 = 6,
            n7 = 7,
            n8 = 8,
            n9 = 9
        );
        (id, line)
    });
    let events = drain(t);
    let lines = text_lines(&events);
    let texts: Vec<&str> = lines.iter().map(|(_, x)| x.as_str()).collect();
    assert_eq!(
        texts,
        [
            format!("INFO span_id={id} a=1 b=-2").as_str(),
            format!("id={id} name=nums").as_str(),
            "INFO x=7 ok=0 r=1.5",
            "INFO n1=1 n2=2 n3=3 n4=4 n5=5 n6=6 n7=7 n8=8 n9=9",
            format!("id={id} name=nums").as_str(),
            format!("id={id} name=nums").as_str(),
        ]
    );
    let report = trace_cmd_report(&trace_dat(t, &events));
    let texts: Vec<&str> = report.iter().map(|(_, x)| x.as_str()).collect();
    let span_site = site("INFO", true, line);
    assert_eq!(texts[0], format!("{span_site} span_id={id} a=1 b=-2"));
    assert!(
        texts[2].ends_with(": x=7 ok=0 r=0x3ff8000000000000"),
        "{}",
        texts[2]
    );
    assert!(
        texts[3].ends_with(": n1=1 n2=2 n3=3 n4=4 n5=5 n6=6 n7=7 n8=8 n9=9"),
        "{}",
        texts[3]
    );
}

#[derive(Clone)]
struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
impl std::io::Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
