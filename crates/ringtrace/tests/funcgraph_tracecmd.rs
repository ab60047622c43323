//! The function graph of a traced recursive function (depth 4, then a
//! leaf; the second time a signal handler runs a traced function inside
//! the leaf), exported to trace.dat and printed by the real `trace-cmd
//! report` (3.1.6; this test FAILS, never skips, without it: `.ci/test`
//! installs it) and by ringtrace's report renderer (`FileRenderer::leaves`
//! and its lines, what `ringtrace report` prints): the same lines, with the
//! expected shape and durations that grow outwards.
mod tracedat_common;

use std::sync::atomic::{AtomicBool, Ordering};

use ringtrace::tracedat::{RenderOptions, TraceDatReader, TraceItem};
use tracedat_common::trace_cmd_ok;

/// Recursion to depth `n`; `fib(1)` calls the leaf.
#[ringtrace::traced]
fn fib(n: u32) -> u64 {
    if n <= 1 {
        return fib_leaf(n);
    }
    fib(n - 1) + u64::from(n)
}

static RAISE: AtomicBool = AtomicBool::new(false);

/// The leaf: raises SIGUSR1 when asked; its handler runs a traced function.
#[ringtrace::traced]
fn fib_leaf(n: u32) -> u64 {
    if RAISE.load(Ordering::Relaxed) {
        // SAFETY: raise has no memory preconditions; the handler is
        // installed first and is async-signal-safe.
        unsafe { libc::raise(libc::SIGUSR1) };
    }
    u64::from(n)
}

#[ringtrace::traced]
fn in_handler() {}

extern "C" fn on_usr1(_: libc::c_int) {
    let _scope = ringtrace::signal_scope();
    in_handler();
}

fn install_handler() {
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags) and is
    // filled in before use; the handler only records (async-signal-safe).
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_usr1 as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut())
    };
    assert_eq!(rc, 0);
}

/// The function events' lines from the event name on, trailing spaces
/// cut, as `name: text` (the columns before differ only in how the clock prints). trace-cmd pads `name:` to 22 columns
/// (`trace_cmd`), ringtrace prints the kernel's `name: text`: the text,
/// which starts with the graph's own spaces, is compared exactly.
fn function_lines(out: &str, trace_cmd: bool) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let name = ["funcgraph_entry:", "funcgraph_exit:", "function:"]
                .into_iter()
                .find(|k| l.contains(&format!(" {k}")))?;
            let rest = &l[l.find(&format!(" {name}")).unwrap() + 1 + name.len()..];
            let pad = if trace_cmd { 22 - name.len() } else { 1 };
            let text = rest.get(pad..).unwrap_or("");
            assert!(
                rest[..pad.min(rest.len())].bytes().all(|b| b == b' '),
                "{l}"
            );
            Some(format!("{name} {}", text.trim_end()))
        })
        .collect()
}

/// What ringtrace's report renderer prints for the file.
fn ringtrace_report(path: &std::path::Path) -> String {
    let mut r = TraceDatReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let info = r.info().clone();
    let render = ringtrace::tracedat::FileRenderer::new(&info);
    let opts = RenderOptions::default();
    let mut out = String::new();
    for (item, leaf) in render.leaves(r.records(), true) {
        match (item.unwrap(), leaf) {
            (TraceItem::Event(e), Some(x)) => render.write_leaf_line(&mut out, &e, &x, &opts),
            (TraceItem::Event(e), None) => render.write_line(&mut out, &e, &opts),
            (TraceItem::Lost { .. }, _) => panic!("no event is lost here"),
        }
        .unwrap();
    }
    out
}

/// The graph column (after the bar) and the duration in ns, if any.
fn graph(line: &str) -> (String, Option<u64>) {
    let (head, tail) = line.split_once(" |  ").expect("a graph line has its bar");
    let dur = head.rsplit_once(" us").map(|(num, _)| {
        let num = num.rsplit(' ').next().unwrap();
        let (us, ns) = num.split_once('.').unwrap_or((num, ""));
        let scale = 10u64.pow(3 - ns.len() as u32);
        us.parse::<u64>().unwrap() * 1000 + ns.parse::<u64>().unwrap_or(0) * scale
    });
    (tail.to_string(), dur)
}

/// One `fib(4)` as the graph shows it; `handler`: with the signal's
/// function inside the leaf.
fn expected(handler: bool) -> Vec<&'static str> {
    let mut v = vec!["fib() {", "  fib() {", "    fib() {", "      fib() {"];
    if handler {
        v.extend([
            "        fib_leaf() {",
            "          in_handler();",
            "        }",
        ]);
    } else {
        v.push("        fib_leaf();");
    }
    v.extend(["      }", "    }", "  }", "}"]);
    v
}

#[test]
fn recursive_graph_as_trace_cmd_prints_it() {
    install_handler();
    assert_eq!(fib(4), 10);
    RAISE.store(true, Ordering::Relaxed);
    assert_eq!(fib(4), 10);
    assert_eq!(ringtrace::funcgraph::depth(), 0);

    let path = std::env::temp_dir().join(format!("ringtrace-fgtc-{}.dat", std::process::id()));
    let t = ringtrace::global().unwrap();
    let f = std::fs::File::create(&path).unwrap();
    ringtrace::export::export_snapshot(t, f, Default::default()).unwrap();
    let theirs_text = trace_cmd_ok(&["report", "-i", path.to_str().unwrap()]);
    let ours_text = ringtrace_report(&path);
    std::fs::remove_file(&path).unwrap();
    let theirs = function_lines(&theirs_text, true);
    let ours = function_lines(&ours_text, false);
    assert_eq!(
        ours, theirs,
        "ours:\n{ours_text}\ntrace-cmd:\n{theirs_text}"
    );

    let shape: Vec<(String, Option<u64>)> = theirs.iter().map(|l| graph(l)).collect();
    let cols: Vec<&str> = shape.iter().map(|(g, _)| g.as_str()).collect();
    let mut want = expected(false);
    want.extend(expected(true));
    assert_eq!(cols, want, "the graph's shape:\n{}", theirs.join("\n"));
    // Nested entries print no duration; leaves and exits do, each
    // enclosing call's at least its callee's.
    assert!(shape.iter().all(|(g, d)| g.ends_with('{') == d.is_none()));
    let (first, second) = shape.split_at(expected(false).len());
    for run in [first, second] {
        let durs: Vec<u64> = run.iter().filter_map(|(_, d)| *d).collect();
        assert!(durs.len() >= 5, "{run:?}");
        assert!(durs.windows(2).all(|w| w[0] <= w[1]), "{run:?}");
    }
}
