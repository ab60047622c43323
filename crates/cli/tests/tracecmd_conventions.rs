//! `ringtrace` follows trace-cmd's conventions where its users expect
//! them, checked against the real `trace-cmd` wherever both should agree:
//! the input file (positional, `-i`, `trace.dat` by default), `--cpu`
//! lists, `report --stat`, TSC stamps in seconds, `-R` marker text, `-F`
//! filters; the file lists only the contexts used; `tracing` levels in the
//! text; and a closed stdout ends every command quietly with status 0.
//!
//! Process tests (`harness = false`): this binary is also the traced
//! program (`BIN prog threads N`). Fails, never skips, without `trace-cmd`
//! (`.ci/test` installs it).

mod common;
mod harness;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{ok, run, text, trace_cmd_ok, tracedat_common};

fn main() {
    harness::main_or_prog(
        prog,
        &[
            (
                "input_file_as_trace_cmd_takes_it",
                input_file_as_trace_cmd_takes_it,
            ),
            ("cpu_lists_as_trace_cmd", cpu_lists_as_trace_cmd),
            ("stat_block_as_trace_cmd", stat_block_as_trace_cmd),
            (
                "file_lists_only_the_contexts_used",
                file_lists_only_the_contexts_used,
            ),
            (
                "tsc_stamps_in_seconds_as_trace_cmd",
                tsc_stamps_in_seconds_as_trace_cmd,
            ),
            ("raw_marker_text_as_trace_cmd", raw_marker_text_as_trace_cmd),
            ("filters_agree_with_trace_cmd", filters_agree_with_trace_cmd),
            ("levels_in_report_text", levels_in_report_text),
            ("closed_stdout_exits_zero", closed_stdout_exits_zero),
        ],
    );
}

/// The traced program: `threads N` starts N threads, each recording 40
/// binary printk records and 4 markers into the default tracer (the
/// session `record` made); the main thread records nothing.
fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("threads") => {
            let n: u32 = args[1].parse().unwrap();
            let hs: Vec<_> = (0..n)
                .map(|t| {
                    std::thread::Builder::new()
                        .name(format!("conv-{t}"))
                        .spawn(move || {
                            for i in 0..40u32 {
                                ringtrace::trace!("thread %u step %u", t, i);
                                if i % 10 == 0 {
                                    ringtrace::trace_marker(&format!("mark {t} {i}"));
                                }
                            }
                        })
                        .unwrap()
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        }
        other => panic!("unknown prog mode {other:?}"),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temporary path")
}

/// Runs `ringtrace demo` into `dir/name` with `threads` threads.
fn demo(dir: &Path, name: &str, threads: u32) -> PathBuf {
    let p = dir.join(name);
    let t = threads.to_string();
    ok(&["demo", "-o", s(&p), "--threads", &t, "--iterations", "60"]);
    p
}

/// `ringtrace ARGS` run in `dir`, which must succeed: its stdout.
fn ok_in(dir: &Path, args: &[&str]) -> String {
    let child = Command::new(common::ringtrace_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let o = common::wait_output(child, common::HANG_GUARD, &format!("{args:?}"));
    assert!(o.status.success(), "{args:?}: {}", text(&o.stderr));
    text(&o.stdout)
}

/// `trace-cmd ARGS` run in `dir`: its stdout.
fn trace_cmd_in(dir: &Path, args: &[&str]) -> String {
    let o = Command::new(common::trace_cmd())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "trace-cmd {args:?}: {}",
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// `(cpu, time stamp)` of each event line (ours or trace-cmd's).
fn cpu_ts(out: &str) -> Vec<(u32, String)> {
    out.lines()
        .filter_map(|l| {
            let (_, rest) = l.split_once(" [")?;
            let (cpu, rest) = rest.split_once(']')?;
            let ts = rest.split(": ").next()?.split_whitespace().last()?;
            Some((cpu.parse().ok()?, ts.to_string()))
        })
        .collect()
}

fn failing(args: &[&str], says: &str) {
    let o = run(args);
    assert!(!o.status.success(), "{args:?} succeeded");
    let err = text(&o.stderr);
    assert!(err.contains(says), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{args:?}: {err}");
}

fn input_file_as_trace_cmd_takes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dat = demo(d, "trace.dat", 2);
    let by_i = ok(&["report", "-i", s(&dat)]).stdout;
    let by_pos = ok(&["report", s(&dat)]).stdout;
    let by_default = ok_in(d, &["report"]);
    assert!(!by_i.is_empty());
    assert_eq!(by_pos, by_i);
    assert_eq!(by_default.as_bytes(), by_i.as_slice());
    // trace-cmd reads the same file with no argument.
    let theirs = trace_cmd_in(d, &["report"]);
    assert_eq!(cpu_ts(&theirs).len(), cpu_ts(&by_default).len());
    // dump and convert take it the same way.
    let body = |t: String| t.split_once('\n').map(|(_, b)| b.to_string()).unwrap();
    assert_eq!(
        body(ok_in(d, &["dump"])),
        body(text(&ok(&["dump", s(&dat)]).stdout))
    );
    ok_in(d, &["convert", "-o", "t.json"]);
    ok(&[
        "convert",
        s(&dat),
        "-o",
        s(&d.join("t7.dat")),
        "--format",
        "dat7",
    ]);
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("t.json")).unwrap()).unwrap();
    assert!(json["traceEvents"].as_array().unwrap().len() > 100);
    assert_eq!(
        trace_cmd_in(d, &["report", "t7.dat"]).lines().count(),
        theirs.lines().count()
    );
    failing(&["report", s(&dat), "-i", "other.dat"], "two input files");
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(common::ringtrace_bin())
        .arg("report")
        .current_dir(empty.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains("trace.dat"), "{}", text(&o.stderr));
}

fn cpu_lists_as_trace_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let dat = demo(dir.path(), "four.dat", 4);
    for list in [vec!["0,2-3"], vec!["1-2"], vec!["3,1"], vec!["0", "2"]] {
        // trace-cmd reads no option after the file: they go first.
        let mut ours = vec!["report", s(&dat)];
        let mut theirs = vec!["report"];
        for l in &list {
            ours.extend(["--cpu", l]);
            theirs.extend(["--cpu", l]);
        }
        theirs.push(s(&dat));
        let o = cpu_ts(&text(&ok(&ours).stdout));
        let t = cpu_ts(&trace_cmd_ok(&theirs));
        assert!(!o.is_empty(), "{list:?}");
        assert_eq!(o, t, "--cpu {list:?}: same CPUs, same events, same order");
    }
    for (bad, says) in [
        ("0,x", "`x` is not a CPU number"),
        ("3-1", "runs backwards"),
        ("", "empty CPU list"),
    ] {
        failing(&["report", s(&dat), "--cpu", bad], says);
    }
    failing(&["report", s(&dat), "--cpu", "0-9"], "--cpu 4");
}

fn stat_block_as_trace_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let dat = demo(dir.path(), "s.dat", 3);
    let d7 = dir.path().join("s7.dat");
    ok(&["convert", s(&dat), "-o", s(&d7), "--format", "dat7"]);
    // A file without stats, written by the library.
    let bare = dir.path().join("bare.dat");
    let mut meta = tracedat_common::meta(ringtrace::tracedat::TraceDatVersion::V6);
    meta.cpu_stats.clear();
    let sample = tracedat_common::sample();
    std::fs::write(&bare, tracedat_common::write_file(&meta, &sample)).unwrap();
    for f in [&dat, &d7, &bare] {
        let ours = text(&ok(&["report", s(f), "--stat"]).stdout);
        let theirs = trace_cmd_ok(&["report", "--stat", s(f)]);
        assert_eq!(ours, theirs, "{}", f.display());
    }
    assert!(text(&ok(&["report", s(&dat), "--stat"]).stdout).contains("read events: "));
}

/// `ringtrace record ARGS -o OUT -- <this binary> prog threads N`.
fn record(dir: &Path, name: &str, args: &[&str], threads: u32) -> PathBuf {
    let out = dir.join(name);
    let n = threads.to_string();
    let mut all = args.to_vec();
    all.extend(["-o", s(&out)]);
    common::record_ok(&all, &["threads", &n]);
    out
}

fn file_lists_only_the_contexts_used() {
    let dir = tempfile::tempdir().unwrap();
    let dat = record(dir.path(), "ctx.dat", &[], 2);
    let dump = text(&ok(&["dump", s(&dat)]).stdout);
    assert!(dump.contains("cpus: 2\n"), "{dump}");
    let stat = trace_cmd_ok(&["report", "--stat", s(&dat)]);
    assert!(stat.starts_with("cpus=2\n"), "{stat}");
    let cpus: Vec<&str> = stat.lines().filter(|l| l.starts_with("CPU")).collect();
    assert_eq!(cpus.len(), 2, "{stat}");
    // Every event is there: 2 threads x (40 printk + 4 markers).
    assert_eq!(cpu_ts(&trace_cmd_ok(&["report", s(&dat)])).len(), 88);
    // extract and snapshot of a kept session list the used ones too.
    let o = common::record_ok(&[], &["threads", "3"]);
    let (session, _) = common::session_of(&text(&o.stderr));
    let snap = dir.path().join("snap.dat");
    ok(&["snapshot", s(&session), "-o", s(&snap)]);
    let ext = dir.path().join("ext.dat");
    ok(&["extract", s(&session), "-o", s(&ext)]);
    ok(&["remove", s(&session)]);
    for f in [&snap, &ext] {
        let d = text(&ok(&["dump", s(f)]).stdout);
        assert!(d.contains("cpus: 3\n"), "{}: {d}", f.display());
        let t = trace_cmd_ok(&["report", s(f)]);
        assert_eq!(cpu_ts(&t).len(), 3 * 44, "{}", f.display());
    }
}

fn tsc_stamps_in_seconds_as_trace_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let dat = record(dir.path(), "tsc.dat", &["--clock", "tsc"], 2);
    let dump = text(&ok(&["dump", s(&dat)]).stdout);
    assert!(dump.contains("clock: x86-tsc"), "{dump}");
    for (ours, theirs) in [
        (vec![], vec![]),
        (vec!["-t"], vec!["-t"]),
        (vec!["--raw-ts"], vec!["--raw-ts"]),
    ] {
        let mut a = vec!["report", s(&dat)];
        a.extend(&ours);
        let mut b = vec!["report"];
        b.extend(&theirs);
        b.push(s(&dat));
        let o = cpu_ts(&text(&ok(&a).stdout));
        let t = cpu_ts(&trace_cmd_ok(&b));
        assert_eq!(o.len(), 88);
        assert_eq!(o, t, "{ours:?}");
        let dot = !ours.contains(&"--raw-ts");
        assert!(o.iter().all(|(_, ts)| ts.contains('.') == dot), "{o:?}");
    }
}

fn raw_marker_text_as_trace_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let dat = demo(dir.path(), "r.dat", 2);
    let after = |l: &str, name: &str| -> Option<String> {
        let (_, rest) = l.split_once(&format!(": {name}:"))?;
        Some(rest.trim().to_string())
    };
    let ours: Vec<String> = text(&ok(&["report", "-R", s(&dat)]).stdout)
        .lines()
        .filter_map(|l| after(l, "print"))
        .collect();
    let theirs: Vec<String> = trace_cmd_ok(&["report", "-R", s(&dat)])
        .lines()
        .filter_map(|l| after(l, "print"))
        .collect();
    assert!(ours.len() > 10, "{ours:?}");
    assert!(
        ours[0].starts_with("ip=tracing_mark_write buf=demo-w"),
        "{ours:?}"
    );
    assert_eq!(ours, theirs);
}

fn filters_agree_with_trace_cmd() {
    let dir = tempfile::tempdir().unwrap();
    let dat = demo(dir.path(), "f.dat", 3);
    let all = text(&ok(&["report", s(&dat)]).stdout);
    let pid: i32 = all
        .lines()
        .next()
        .and_then(|l| {
            l.split_once(" [")?
                .0
                .trim()
                .rsplit_once('-')?
                .1
                .parse()
                .ok()
        })
        .unwrap();
    let pid_f = format!("work: common_pid == {pid}");
    let filters: Vec<Vec<&str>> = vec![
        vec!["-F", "print"],
        vec!["-F", "ftrace/print,work"],
        vec!["-F", "work: worker == 1"],
        vec!["-F", "work: worker == 1 || (worker >= 2 && step < 5)"],
        vec!["-F", &pid_f],
        vec!["-v", "-F", "work"],
    ];
    for f in &filters {
        let mut a = vec!["report", s(&dat)];
        a.extend(f);
        let mut b = vec!["report"];
        b.extend(f);
        b.push(s(&dat));
        let o = cpu_ts(&text(&ok(&a).stdout));
        let t = cpu_ts(&trace_cmd_ok(&b));
        assert!(!o.is_empty(), "{f:?}");
        assert!(o.len() < cpu_ts(&all).len(), "{f:?} filters nothing");
        assert_eq!(o, t, "{f:?}");
    }
    // `~`: a glob on text.
    let short = text(&ok(&["report", s(&dat), "-F", "work: label ~ \"sh*\""]).stdout);
    assert!(short.lines().count() > 2, "{short}");
    assert!(short.lines().all(|l| l.contains(" label=sh")), "{short}");
    // -e, --pid, --comm (ringtrace's own).
    let by_glob = text(&ok(&["report", s(&dat), "-e", "w*rk"]).stdout);
    let by_f = text(&ok(&["report", s(&dat), "-F", "work"]).stdout);
    assert_eq!(by_glob, by_f);
    let by_pid = text(&ok(&["report", s(&dat), "--pid", &pid.to_string()]).stdout);
    let comm = all
        .lines()
        .next()
        .unwrap()
        .split_once(" [")
        .unwrap()
        .0
        .trim();
    let comm = comm.rsplit_once('-').unwrap().0;
    let by_comm = text(&ok(&["report", s(&dat), "--comm", comm]).stdout);
    assert_eq!(by_pid, by_comm);
    let per_cpu: BTreeMap<u32, usize> = cpu_ts(&by_pid).iter().fold(BTreeMap::new(), |mut m, c| {
        *m.entry(c.0).or_default() += 1;
        m
    });
    assert_eq!(per_cpu.len(), 1, "one thread, one context: {per_cpu:?}");
    failing(
        &["report", s(&dat), "-F", "work: worker =="],
        "expected a value",
    );
    failing(
        &["report", s(&dat), "-F", "work: (worker == 1"],
        "not closed",
    );
}

/// A `tracing`-layer event type (system `tracing`, the level first in its
/// print fmt, as the layer writes it) in a file: the report shows the
/// level where trace-cmd does, first in the text.
fn levels_in_report_text() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("lv.dat");
    let common = "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";
    let format = |name: &str, id: u16, level: &str| {
        format!(
            "name: {name}\nID: {id}\nformat:\n{common}\
\tfield:__data_loc char[] message;\toffset:8;\tsize:4;\tsigned:0;\n\
\tfield:u64 n;\toffset:16;\tsize:8;\tsigned:0;\n\n\
print fmt: \"{level} %s n=%llu\", __get_str(message), REC->n\n"
        )
    };
    let payload = |id: u16, msg: &str, n: u64| {
        let mut p = Vec::new();
        p.extend_from_slice(&id.to_le_bytes());
        p.extend_from_slice(&[0, 0]);
        p.extend_from_slice(&77i32.to_le_bytes());
        let len = msg.len() as u32 + 1;
        p.extend_from_slice(&((len << 16) | 24).to_le_bytes());
        p.extend_from_slice(&[0; 4]);
        p.extend_from_slice(&n.to_le_bytes());
        p.extend_from_slice(msg.as_bytes());
        p.push(0);
        p
    };
    let mut meta = ringtrace::tracedat::TraceDatMeta::new(4096, 1, "mono");
    meta.events = vec![(
        "tracing".into(),
        vec![
            format("app_warned", 900, "WARN"),
            format("app_info", 901, "INFO"),
        ],
    )];
    meta.cmdlines = vec![(77, "app".into())];
    let mut page = tracedat_common::PageBuilder::new(1_000_000_000);
    page.event(1_000_000_000, &payload(900, "disk low", 3));
    page.event(1_000_001_000, &payload(901, "served", 4));
    let mut w = ringtrace::tracedat::TraceDatWriter::new(std::fs::File::create(&f).unwrap(), &meta)
        .unwrap();
    w.push_page(0, &page.finish()).unwrap();
    w.finish().unwrap();
    let ours = text(&ok(&["report", s(&f)]).stdout);
    let theirs = trace_cmd_ok(&["report", s(&f)]);
    for (name, level, msg) in [
        ("app_warned", "WARN", "disk low"),
        ("app_info", "INFO", "served"),
    ] {
        assert!(
            ours.contains(&format!(": {name}: {level} message={msg} n=")),
            "{ours}"
        );
        assert!(theirs.contains(&format!("{level} {msg} n=")), "{theirs}");
    }
}

/// Runs `ringtrace ARGS` with stdout a pipe whose reader is gone.
fn closed_stdout(args: &[&str]) -> Output {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for pipe(2) to fill.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is the read end just made, closed once here.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is the write end just made, owned by the Stdio alone.
    let w = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]) };
    let child = Command::new(common::ringtrace_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(w))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_output(child, common::HANG_GUARD, &format!("{args:?}"))
}

fn closed_stdout_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let dat = demo(dir.path(), "p.dat", 2);
    let o = common::record_ok(&[], &["threads", "2"]);
    let (session, _) = common::session_of(&text(&o.stderr));
    let sess = s(&session);
    let f = s(&dat);
    let cmds: Vec<Vec<&str>> = vec![
        vec!["report", f],
        vec!["report", f, "-R"],
        vec!["report", f, "-t"],
        vec!["report", f, "--json"],
        vec!["report", f, "--stat"],
        vec!["dump", f],
        vec!["demo", "--threads", "1", "--iterations", "20"],
        vec!["list"],
        vec!["show", sess],
        vec!["stat", sess],
        vec!["pipe", sess],
    ];
    for c in &cmds {
        let o = closed_stdout(c);
        assert!(
            o.status.success(),
            "{c:?}: {} {}",
            o.status,
            text(&o.stderr)
        );
        assert!(!text(&o.stderr).contains("panicked"), "{c:?}");
    }
    ok(&["remove", sess]);
}
