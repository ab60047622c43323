//! The built `ringtrace` binary end to end: demo -> report round trip, the
//! demo's trace.dat checked by the real `trace-cmd report` and
//! `trace-cmd dump -v` (v6 and v7), the JSON parsed with serde_json, and
//! corrupted files rejected cleanly (exit status 1, a message naming the
//! problem, no panic).
//!
//! Fails (never skips) when `trace-cmd` is not on PATH
//! (Debian: `apt-get install -y trace-cmd`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Output;

fn ringtrace(args: &[&str]) -> Output {
    common::run(args)
}

/// `ringtrace ARGS`, which must succeed: its stdout.
fn ok(args: &[&str]) -> String {
    String::from_utf8(common::ok(args).stdout).expect("utf-8")
}

fn trace_cmd_ok(args: &[&str], file: &Path) -> String {
    let file = file.to_str().expect("a UTF-8 temporary path");
    common::trace_cmd_ok(&[args, &["-i", file]].concat())
}

/// Runs `ringtrace demo` with `threads` threads of `iterations` iterations
/// and the `extra` arguments, writing `dir/name`; returns its path.
fn demo(dir: &Path, name: &str, threads: u32, iterations: u32, extra: &[&str]) -> PathBuf {
    let p = dir.join(name);
    let (threads, iterations) = (threads.to_string(), iterations.to_string());
    let mut args = vec!["demo", "--output", p.to_str().unwrap()];
    args.extend_from_slice(&["--threads", &threads, "--iterations", &iterations]);
    args.extend_from_slice(extra);
    ok(&args);
    p
}

/// `(comm, pid, cpu, name, text)` of an event line of ours.
fn parse_ours(line: &str) -> Option<(String, i32, u32, String, String)> {
    let (ctx, rest) = line.split_once(" [")?;
    let (comm, pid) = ctx.trim().rsplit_once('-')?;
    let (cpu, rest) = rest.split_once("] ")?;
    // flags block, time stamp, then "name: text"
    let after_ts = rest.split_once(": ")?.1;
    let (name, text) = after_ts.split_once(": ").unwrap_or((after_ts, ""));
    Some((
        comm.to_string(),
        pid.trim().parse().ok()?,
        cpu.parse().ok()?,
        name.to_string(),
        text.to_string(),
    ))
}

#[test]
fn demo_report_round_trip_and_trace_cmd_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let dat = demo(dir.path(), "demo.dat", 3, 500, &[]);
    let ours = ok(&["report", "-i", dat.to_str().unwrap()]);
    let lines: Vec<&str> = ours.lines().collect();
    // 3 threads * (500 printk + 500 work + 63 markers + 8 signals * 4 records)
    let per_thread = 500 + 500 + 500usize.div_ceil(8) + 500usize.div_ceil(64) * 4;
    assert_eq!(
        lines.len(),
        3 * per_thread,
        "{}",
        &ours[..ours.len().min(2000)]
    );
    check_our_lines(&lines);
    trace_cmd_prints_the_same(&lines, &dat);
    time_stamps_agree_to_the_ns(&dat);
    // --cpu filters.
    let one = ok(&["report", "--cpu", "1", "-i", dat.to_str().unwrap()]);
    assert_eq!(one.lines().count(), per_thread);
    assert!(one.lines().all(|l| l.contains(" [001] ")));
    // -R prints the raw fields of binary printk too.
    let raw = ok(&["report", "-R", "-i", dat.to_str().unwrap()]);
    assert!(raw
        .lines()
        .any(|l| l.contains("bprint: ip=") && l.contains(" fmt=")));

    assert!(trace_cmd_ok(&["dump", "-v"], &dat).contains("is a valid trace-cmd file"));
    let d7 = demo(dir.path(), "demo7.dat", 2, 100, &["--format", "dat7"]);
    assert!(trace_cmd_ok(&["dump", "-v"], &d7).contains("is a valid trace-cmd file"));
    let theirs7 = trace_cmd_ok(&["report"], &d7);
    let ours7 = ok(&["report", "-i", d7.to_str().unwrap()]);
    assert_eq!(
        theirs7.lines().filter(|l| l.contains(" [0")).count(),
        ours7.lines().count()
    );
    convert_round_trips(dir.path(), &dat, &ours);

    // dump: versions, CPUs, counts.
    let dump = ok(&["dump", "-i", dat.to_str().unwrap()]);
    assert!(dump.contains("version: 6 "), "{dump}");
    assert!(dump.contains("page size: 4096"), "{dump}");
    assert!(dump.contains("clock: mono"), "{dump}");
    assert!(dump.contains("cpus: 3"), "{dump}");
    assert!(
        dump.contains(&format!("total: events {} lost 0", lines.len())),
        "{dump}"
    );
    let dump7 = ok(&["dump", "-i", d7.to_str().unwrap()]);
    assert!(dump7.contains("version: 7 "), "{dump7}");
}

/// Our report of the demo: 3 threads, each keeping its pid and context;
/// every kind of event counted; the handler flags of nested signals.
fn check_our_lines(lines: &[&str]) {
    let mut threads: BTreeMap<String, (i32, u32)> = BTreeMap::new();
    let mut kinds: HashMap<String, usize> = HashMap::new();
    for l in lines {
        let (comm, pid, cpu, name, text) = parse_ours(l).unwrap_or_else(|| panic!("{l}"));
        assert!(comm.starts_with("demo-w"), "{l}");
        let e = threads.entry(comm).or_insert((pid, cpu));
        assert_eq!(*e, (pid, cpu), "a thread keeps its pid and context: {l}");
        let kind = if name.contains("demo.rs:") {
            "printk"
        } else {
            name.as_str()
        };
        *kinds.entry(kind.to_string()).or_default() += 1;
        if name == "signal" && text.ends_with("depth=2") {
            assert!(l.contains(" ..Z2. "), "nested handler flags: {l}");
        }
        if name.contains("demo.rs:") && text.contains("in handler") {
            assert!(l.contains(" ..h1. "), "{l}");
        }
    }
    assert_eq!(threads.len(), 3);
    assert_eq!(kinds["work"], 1500);
    assert_eq!(kinds["tracing_mark_write"], 3 * 63);
    assert_eq!(kinds["signal"], 3 * 8 * 2);
    assert_eq!(kinds["printk"], 3 * (500 + 8 * 2));
}

/// trace-cmd prints the same events as our `lines` of `dat`, in the same
/// order, with the same thread, pid, CPU and text.
fn trace_cmd_prints_the_same(lines: &[&str], dat: &Path) {
    let theirs = trace_cmd_ok(&["report"], dat);
    let theirs: Vec<&str> = theirs.lines().filter(|l| l.contains(" [0")).collect();
    assert_eq!(theirs.len(), lines.len());
    for (a, b) in lines.iter().zip(&theirs) {
        let (comm, pid, cpu, name, text) = parse_ours(a).unwrap();
        let head = format!("{comm}-{pid}");
        assert!(b.trim_start().starts_with(&head), "{a}\n{b}");
        assert!(b.contains(&format!("[{cpu:03}]")), "{a}\n{b}");
        let want = match name.as_str() {
            n if n.contains("demo.rs:") => format!("bprint: {n}: {text}"),
            "tracing_mark_write" => format!("print: tracing_mark_write: {text}"),
            n => format!("{n}: "),
        };
        let tail = b.split_once("]").unwrap().1;
        let tail = tail.split_once(": ").unwrap().1;
        let tail_squeezed = tail.split_whitespace().collect::<Vec<_>>().join(" ");
        let want_squeezed = want.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            tail_squeezed.starts_with(&want_squeezed),
            "ours:   {a}\ntheirs: {b}"
        );
        if !name.contains("demo.rs:") && name != "tracing_mark_write" {
            assert!(tail_squeezed.ends_with(&text), "ours:   {a}\ntheirs: {b}");
        }
    }
}

/// `report -t` of `dat`, ours and trace-cmd's: the time stamps agree to
/// the ns.
fn time_stamps_agree_to_the_ns(dat: &Path) {
    let ours_t = ok(&["report", "-t", "-i", dat.to_str().unwrap()]);
    let theirs_t = trace_cmd_ok(&["report", "-t"], dat);
    let stamp = |l: &str| -> String {
        let after = l.split_once("] ").unwrap().1;
        let before_colon = after.split_once(": ").unwrap().0;
        before_colon.split_whitespace().last().unwrap().to_string()
    };
    let theirs_t: Vec<&str> = theirs_t.lines().filter(|l| l.contains(" [0")).collect();
    for (a, b) in ours_t.lines().zip(&theirs_t) {
        assert_eq!(stamp(a), stamp(b), "ours:   {a}\ntheirs: {b}");
        assert_eq!(stamp(a).split_once('.').unwrap().1.len(), 9, "{a}");
    }
}

/// `ringtrace convert -i input -o output EXTRA...`, which must succeed;
/// returns its output.
fn convert(input: &Path, output: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "convert",
        "-i",
        input.to_str().unwrap(),
        "-o",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    ok(&args)
}

/// convert v6 -> v7 -> v6 (in `dir`): the same report as `ours` of `dat`,
/// valid for trace-cmd, which reads the converted files alike.
fn convert_round_trips(dir: &Path, dat: &Path, ours: &str) {
    let c7 = dir.join("conv7.dat");
    let c6 = dir.join("conv6.dat");
    convert(dat, &c7, &["--format", "dat7"]);
    convert(&c7, &c6, &[]);
    for c in [&c7, &c6] {
        assert_eq!(ok(&["report", "-i", c.to_str().unwrap()]), ours);
        assert!(trace_cmd_ok(&["dump", "-v"], c).contains("is a valid trace-cmd file"));
        let theirs_c = trace_cmd_ok(&["report"], c);
        let theirs_o = trace_cmd_ok(&["report"], dat);
        assert_eq!(
            theirs_c, theirs_o,
            "trace-cmd reads the converted file alike"
        );
    }
    assert!(ok(&["dump", "-i", c7.to_str().unwrap()]).contains("version: 7 "));
}

#[test]
fn demo_json_and_converted_json_have_every_event_with_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    for (direct, path) in [
        (true, demo(dir.path(), "demo.json", 2, 200, &[])),
        (false, {
            let dat = demo(dir.path(), "c.dat", 2, 200, &[]);
            let out = dir.path().join("c.json");
            convert(&dat, &out, &[]);
            let via_report = ok(&["report", "--json", "-i", dat.to_str().unwrap()]);
            assert_eq!(via_report.as_bytes(), std::fs::read(&out).unwrap());
            out
        }),
    ] {
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("valid JSON");
        let events = v["traceEvents"].as_array().unwrap();
        let mut names: HashMap<i64, String> = HashMap::new();
        let mut count: HashMap<String, usize> = HashMap::new();
        for e in events {
            let tid = e["tid"].as_i64().unwrap();
            if e["ph"] == "M" {
                if e["name"] == "thread_name" {
                    names.insert(tid, e["args"]["name"].as_str().unwrap().into());
                }
                continue;
            }
            assert_eq!(e["ph"], "i", "{e}");
            let thread = names
                .get(&tid)
                .unwrap_or_else(|| panic!("event without its thread: {e}"));
            *count.entry(thread.clone()).or_default() += 1;
        }
        let per_thread = 200 + 200 + 25 + 4 * 4;
        let want: HashMap<String, usize> = [
            ("demo-w0".to_string(), per_thread),
            ("demo-w1".to_string(), per_thread),
        ]
        .into_iter()
        .collect();
        assert_eq!(count, want, "direct={direct}");
    }
}

#[test]
fn corrupted_files_give_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let dat = demo(dir.path(), "ok.dat", 1, 300, &[]);
    let good = std::fs::read(&dat).unwrap();
    let check = |name: &str, bytes: &[u8], cmd: &str, want: &[&str]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        let out = ringtrace(&[cmd, "-i", p.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name} {cmd}: {err}");
        assert!(err.starts_with("ringtrace: error: "), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        for w in want {
            assert!(err.contains(w), "{name} {cmd}: {err:?} lacks {w:?}");
        }
    };
    // Truncated inside the CPU data: the CPU table points past the end.
    check(
        "trunc.dat",
        &good[..good.len() - 100],
        "report",
        &["runs past the file end"],
    );
    // Truncated inside the header.
    check("short.dat", &good[..20], "dump", &["truncated", "offset"]);
    // Not a trace.dat.
    check(
        "text.dat",
        b"hello world, not a trace",
        "report",
        &["bad magic"],
    );
    // A page whose commit is larger than the page.
    let mut bad = good.clone();
    let first_page = 4096;
    bad[first_page + 8..first_page + 16].copy_from_slice(&5000u64.to_le_bytes());
    for cmd in ["report", "dump"] {
        check("commit.dat", &bad, cmd, &["CPU 0 page 0", "commit 5000"]);
    }
    // Unsupported version.
    let mut v = good.clone();
    v[10] = b'9';
    check("version.dat", &v, "dump", &["version"]);
    // A missing file names the path.
    let out = ringtrace(&["report", "-i", "/nonexistent/x.dat"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.dat"));
}

/// `ringtrace bench` runs the kernel's benchmark and prints its lines, with
/// the counts adding up (Total == Hit) and both read modes used.
#[test]
fn bench_prints_the_kernel_lines() {
    let out = ok(&["bench", "--seconds", "0.3"]);
    let field = |name: &str| -> u64 {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} line in:\n{out}"))
    };
    for line in [
        "Time:",
        "Overruns:",
        "Entries:",
        "Missed:",
        "Entries per millisec:",
    ] {
        assert!(out.contains(line), "{line} missing:\n{out}");
    }
    assert!(out.contains("ns per entry"), "{out}");
    assert!(!out.contains("ERROR"), "{out}");
    let hit = field("Hit:");
    assert!(hit > 1000, "{out}");
    assert_eq!(field("Total:"), hit, "{out}");
    assert!(out.contains("(by pages:"), "{out}");
    // Bad arguments: a clear error, exit status 1.
    let bad = ringtrace(&["bench", "--seconds", "0"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--seconds"));
}

/// `ringtrace demo` without `--output` (the README's main job): the merged
/// trace's first and last lines, one lost-event line per context whose
/// count is that context's overrun, and the kernel's stats lines per
/// context, whose entries + overrun are every event the context recorded.
#[test]
fn demo_shows_the_trace_its_losses_and_the_stats() {
    let out = ok(&["demo", "--threads", "2", "--iterations", "3000"]);
    let lines: Vec<&str> = out.lines().collect();
    let total: u64 = lines[0]
        .strip_prefix("# the merged trace (")
        .and_then(|r| r.split_once(" lines)"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("header: {}", lines[0]));
    // The first event shown is a worker's (a lost-event line may come first:
    // the oldest events were overwritten).
    let first = lines[1..].iter().find(|l| !l.starts_with("CPU:")).unwrap();
    assert!(first.contains("demo-w"), "{first}");
    // Lost-event lines: CPU -> count.
    let lost: BTreeMap<u32, u64> = lines
        .iter()
        .filter_map(|l| {
            let rest = l.strip_prefix("CPU:")?;
            let (cpu, rest) = rest.split_once(" [LOST ")?;
            let n = rest.strip_suffix(" EVENTS]")?;
            Some((cpu.parse().ok()?, n.parse().ok()?))
        })
        .collect();
    // Stats per context: entries, overrun.
    let mut stats: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    let mut ctx = None;
    for l in &lines {
        if let Some(r) = l.strip_prefix("# context ") {
            ctx = r.split_once(' ').and_then(|(n, _)| n.parse::<u32>().ok());
        } else if let (Some(c), Some(v)) = (ctx, l.strip_prefix("entries: ")) {
            stats.entry(c).or_default().0 = v.parse().unwrap();
        } else if let (Some(c), Some(v)) = (ctx, l.strip_prefix("overrun: ")) {
            stats.entry(c).or_default().1 = v.parse().unwrap();
        }
    }
    assert_eq!(stats.len(), 2, "two contexts' stats:\n{out}");
    // 3000 iterations of ~45 bytes per event overflow 64 KiB rings: each
    // context lost events, and its one lost-event line says how many.
    for (c, &(_, overrun)) in &stats {
        assert!(overrun > 0, "context {c} overflowed:\n{out}");
        assert_eq!(lost.get(c), Some(&overrun), "context {c}:\n{out}");
    }
    // Every line of the merged trace is an event the rings held, or a
    // lost-event line.
    let entries: u64 = stats.values().map(|s| s.0).sum();
    assert_eq!(total, entries + lost.len() as u64, "{out}");
    // Each worker iteration records a printk and a typed event, every 8th a
    // marker, every 64th a signal pair (3 events + 1 nested).
    let per_thread = 3000 * 2 + 3000 / 8 + 3000 / 64 * 4 + 4;
    let recorded: u64 = stats.values().map(|s| s.0 + s.1).sum();
    assert!(
        recorded >= 2 * (3000 * 2 + 3000 / 8) && recorded <= 2 * per_thread,
        "recorded {recorded}:\n{out}"
    );
    assert!(lines.last().unwrap().contains("signals handled"), "{out}");
}
