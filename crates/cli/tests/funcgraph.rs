//! `#[ringtrace::traced]` end to end: a program whose recursive function
//! (depth 4, then a leaf) is traced runs under `ringtrace record`; the
//! trace.dat's function graph is printed by the real `trace-cmd report`
//! (3.1.6; fails, never skips, without it: `.ci/test` installs it) and by
//! `ringtrace report`, line for line the same, with the expected shape:
//! nested entries, the leaf merged with its exit, durations that grow
//! outwards. A traced function run by a signal handler inside a traced
//! function nests one level deeper and leaves the depths as they were.
//!
//! Process tests (`harness = false`): this binary is also the traced
//! program (`BIN prog graph`).

mod common;
mod harness;

use std::path::Path;

use common::{ok, record_ok, text, trace_cmd_ok};

fn main() {
    harness::main_or_prog(
        prog,
        &[
            ("graph_as_trace_cmd_prints_it", graph_as_trace_cmd_prints_it),
            (
                "entry_only_records_function_entries",
                entry_only_records_function_entries,
            ),
        ],
    );
}

/// Recursion to depth `n`; `fib(1)` calls the leaf.
#[ringtrace::traced]
fn fib(n: u32) -> u64 {
    if n <= 1 {
        return fib_leaf(n);
    }
    fib(n - 1) + u64::from(n)
}

/// The leaf: raises SIGUSR1 when asked, whose handler runs a traced
/// function at depth 5.
#[ringtrace::traced]
fn fib_leaf(n: u32) -> u64 {
    if RAISE.load(std::sync::atomic::Ordering::Relaxed) {
        // SAFETY: raise has no memory preconditions; the handler is
        // installed first and is async-signal-safe.
        unsafe { libc::raise(libc::SIGUSR1) };
    }
    u64::from(n)
}

static RAISE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[ringtrace::traced]
fn in_handler() {}

extern "C" fn on_usr1(_: libc::c_int) {
    let _scope = ringtrace::signal_scope();
    in_handler();
}

#[ringtrace::traced(entry_only)]
fn plain() {}

#[ringtrace::traced(entry_only, name = "plain_outer")]
fn plain_outer_fn() {
    plain();
}

/// The traced program: `graph` runs `fib(4)` twice, the second time with
/// the signal raised in the leaf; `plain` runs the entry-only pair.
fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("graph") => {
            common::install_handler(libc::SIGUSR1, on_usr1);
            assert_eq!(fib(4), 10);
            RAISE.store(true, std::sync::atomic::Ordering::Relaxed);
            assert_eq!(fib(4), 10);
            assert_eq!(ringtrace::funcgraph::depth(), 0);
        }
        Some("plain") => plain_outer_fn(),
        other => panic!("unknown prog mode {other:?}"),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// The function events' lines from the event name on, trailing spaces
/// cut, as `name: text` (the columns before are checked by tracecmd_conventions). trace-cmd pads `name:` to 22 columns
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

/// The graph column of a line (after the duration bar) and its duration
/// in nanoseconds, if it has one.
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

fn graph_as_trace_cmd_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    let dat = dir.path().join("graph.dat");
    record_ok(&["-o", s(&dat)], &["graph"]);
    let theirs = function_lines(&trace_cmd_ok(&["report", "-i", s(&dat)]), true);
    let ours = function_lines(&text(&ok(&["report", s(&dat)]).stdout), false);
    assert_eq!(ours, theirs, "ringtrace report and trace-cmd report differ");

    let shape: Vec<(String, Option<u64>)> = theirs.iter().map(|l| graph(l)).collect();
    let cols: Vec<&str> = shape.iter().map(|(g, _)| g.as_str()).collect();
    let mut want = expected(false);
    want.extend(expected(true));
    assert_eq!(cols, want, "the graph's shape:\n{}", theirs.join("\n"));
    // Entries print no duration; leaves and exits do, each enclosing
    // call's at least its callee's.
    let (first, second) = shape.split_at(expected(false).len());
    for run in [first, second] {
        let durs: Vec<u64> = run.iter().filter_map(|(_, d)| *d).collect();
        assert!(durs.len() >= 5, "{run:?}");
        assert!(durs.windows(2).all(|w| w[0] <= w[1]), "{run:?}");
    }
    assert!(shape.iter().all(|(g, d)| g.ends_with('{') == d.is_none()));
}

fn entry_only_records_function_entries() {
    let dir = tempfile::tempdir().unwrap();
    let dat = dir.path().join("plain.dat");
    record_ok(&["-o", s(&dat)], &["plain"]);
    let theirs = function_lines(&trace_cmd_ok(&["report", "-i", s(&dat)]), true);
    let ours = function_lines(&text(&ok(&["report", s(&dat)]).stdout), false);
    assert_eq!(ours, theirs);
    let names: Vec<&str> = theirs
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap())
        .collect();
    assert_eq!(names, ["plain_outer", "plain"]);
    // `-R`: the parent of each, named through kallsyms.
    let raw = function_lines(&trace_cmd_ok(&["report", "-R", "-i", s(&dat)]), true);
    assert!(raw[0].contains("ip=plain_outer parent_ip=0x0"), "{raw:?}");
    assert!(raw[1].contains("ip=plain parent_ip=plain_outer"), "{raw:?}");
}
