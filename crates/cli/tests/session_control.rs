//! Controlling a running session from another process, with a real writer
//! process: `ringtrace stop` / `start` (the kernel's `tracing_on`) and
//! `ringtrace reset`, and what `ringtrace list` shows of a session.
//!
//! The traced program (this binary, re-run as `session_control prog
//! phases GATE N`) records N events in each of three phases and waits at a
//! gate file between them, so each test switches the session at a known
//! point of the program, never guessing from the time.
//!
//! `harness = false`: `main` runs the tests, or the traced program.

mod common;
mod harness;

use std::path::Path;
use std::process::Stdio;

use common::{ok, record_command, session_line, text, wait_exit, wait_for_file};

// --- the traced program -----------------------------------------------------

fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("phases") => prog_phases(args),
        Some("named") => prog_named(),
        other => panic!("unknown prog mode {other:?}"),
    }
}

/// `phases GATE N`: N events `phase_a`, then GATE/a_done, wait for
/// GATE/go_b; N events `phase_b`, GATE/b_done, wait for GATE/go_c; N
/// events `phase_c`.
fn prog_phases(args: &[String]) {
    let gate = Path::new(&args[1]);
    let n: u32 = args[2].parse().unwrap();
    for i in 0..n {
        ringtrace::trace!("phase_a %u", i);
    }
    std::fs::write(gate.join("a_done"), b"").unwrap();
    wait_for_file(&gate.join("go_b"), "the test never opened gate b");
    for i in 0..n {
        ringtrace::trace!("phase_b %u", i);
    }
    std::fs::write(gate.join("b_done"), b"").unwrap();
    wait_for_file(&gate.join("go_c"), "the test never opened gate c");
    for i in 0..n {
        ringtrace::trace!("phase_c %u", i);
    }
}

/// A thread name longer than the kernel's 15-byte comm.
const LONG_NAME: &str = "tokio-runtime-worker";

/// `named`: a thread named [`LONG_NAME`] records one event.
fn prog_named() {
    std::thread::Builder::new()
        .name(LONG_NAME.into())
        .spawn(|| ringtrace::trace!("from_named %u", 1u32))
        .unwrap()
        .join()
        .unwrap();
}

// --- helpers ------------------------------------------------------------------

/// Events per phase: more than one page holds, so a phase spans pages.
const N: u32 = 500;

/// A `record` of the phases program with `args`, its session in `gate`
/// (`RINGTRACE_SHM_DIR`, so that a failed test leaves nothing in
/// /dev/shm), its session path read from stderr; the rest of stderr is
/// read to its end by a thread (`err` gives it).
struct Phases {
    child: std::process::Child,
    session: String,
    err: std::thread::JoinHandle<String>,
}

fn record_phases(args: &[&str], gate: &Path) -> Phases {
    use std::io::{BufRead, BufReader, Read};
    let mut child = record_command(args, ["phases", gate.to_str().unwrap(), &N.to_string()])
        .env("RINGTRACE_SHM_DIR", gate)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let session = loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap_or(0) > 0,
            "record ended before it named its session"
        );
        if let Some((path, _)) = session_line(&line) {
            break path.to_str().unwrap().to_string();
        }
    };
    let err = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        rest
    });
    Phases {
        child,
        session,
        err,
    }
}

/// Opens gate `name` (`go_b`, `go_c`).
fn open_gate(gate: &Path, name: &str) {
    std::fs::write(gate.join(name), b"").unwrap();
}

/// Lines of `ringtrace report` of `dat` with `word` followed by a space.
fn count_in_report(dat: &Path, word: &str) -> usize {
    let o = ok(&["report", "-i", dat.to_str().unwrap()]);
    let pat = format!("{word} ");
    text(&o.stdout).lines().filter(|l| l.contains(&pat)).count()
}

// --- tests --------------------------------------------------------------------

/// Events written while the session is stopped are not recorded and not
/// counted as lost (never attempted, as with the kernel's `tracing_off`);
/// those written after `start` are, all of them.
fn stop_and_start_reach_the_writer_process() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path();
    let dat = dir.path().join("t.dat");
    let mut p = record_phases(&["-o", dat.to_str().unwrap()], gate);
    wait_for_file(&gate.join("a_done"), "phase a");
    let o = ok(&["stop", &p.session]);
    assert!(
        text(&o.stderr).contains("recording off"),
        "{}",
        text(&o.stderr)
    );
    let st = ok(&["stat", &p.session]);
    assert!(
        text(&st.stdout).contains("recording: off"),
        "stat: {}",
        text(&st.stdout)
    );
    open_gate(gate, "go_b");
    wait_for_file(&gate.join("b_done"), "phase b");
    ok(&["start", &p.session]);
    open_gate(gate, "go_c");
    let status = wait_exit(&mut p.child, "record");
    let err = p.err.join().unwrap();
    assert!(status.success(), "record failed: {err}");
    assert_eq!(count_in_report(&dat, "phase_a"), N as usize, "{err}");
    assert_eq!(count_in_report(&dat, "phase_b"), 0, "stopped: {err}");
    assert_eq!(count_in_report(&dat, "phase_c"), N as usize, "{err}");
    let events = 2 * N as u64;
    assert!(
        err.contains(&format!("{events} events, 0 lost (ring counters: 0 lost)")),
        "the summary counts no loss: {err}"
    );
    assert!(!err.contains("refused"), "nothing refused: {err}");
}

/// `reset` empties the rings and turns recording back on: after it, only
/// what the program writes next is in the session.
fn reset_empties_and_turns_recording_on() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path();
    let mut p = record_phases(&[], gate);
    wait_for_file(&gate.join("a_done"), "phase a");
    ok(&["stop", &p.session]);
    open_gate(gate, "go_b");
    wait_for_file(&gate.join("b_done"), "phase b");
    let o = ok(&["reset", &p.session]);
    assert!(
        text(&o.stderr).contains("reset (rings emptied, recording on)"),
        "{}",
        text(&o.stderr)
    );
    let st = text(&ok(&["stat", &p.session]).stdout);
    assert!(st.contains("recording: on"), "stat: {st}");
    let entries: Vec<&str> = st.lines().filter(|l| l.starts_with("entries: ")).collect();
    assert!(!entries.is_empty(), "a context wrote: {st}");
    assert!(entries.iter().all(|l| *l == "entries: 0"), "emptied: {st}");
    open_gate(gate, "go_c");
    let status = wait_exit(&mut p.child, "record");
    assert!(status.success(), "record: {}", p.err.join().unwrap());
    let dat = dir.path().join("rest.dat");
    ok(&["extract", &p.session, "-o", dat.to_str().unwrap()]);
    assert_eq!(count_in_report(&dat, "phase_a"), 0, "emptied by reset");
    assert_eq!(count_in_report(&dat, "phase_b"), 0, "stopped");
    assert_eq!(count_in_report(&dat, "phase_c"), N as usize);
    ok(&["remove", &p.session]);
}

/// `ringtrace list` in the session directory `dir`.
fn list_in(dir: &Path) -> String {
    let o = std::process::Command::new(common::ringtrace_bin())
        .arg("list")
        .env("RINGTRACE_SHM_DIR", dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "list: {}", text(&o.stderr));
    text(&o.stdout)
}

/// The line of `list` that names `path`.
fn line_of<'l>(list: &'l str, path: &str) -> &'l str {
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(path))
        .unwrap_or_else(|| panic!("{path} not listed: {list}"))
}

/// `list`'s size text: KiB rounded up below a MiB, else MiB with one
/// decimal.
fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1}M", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{}K", bytes.div_ceil(1024))
    }
}

/// `list` shows whether a session's program is alive, the space the
/// session uses (allocated blocks, not the apparent size: a sparse file
/// of 64 MiB uses none) and its owner's user name.
fn list_shows_program_space_and_owner() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path();
    let sparse = gate.join("ringtrace-1-sparse@0123456789abcdef");
    let f = std::fs::File::create(&sparse).unwrap();
    f.set_len(64 << 20).unwrap();
    let mut p = record_phases(&[], gate);
    wait_for_file(&gate.join("a_done"), "phase a");
    let list = list_in(gate);
    let line = line_of(&list, &p.session);
    let used = std::fs::metadata(&p.session).unwrap().blocks() * 512;
    let me = text(
        &std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap()
            .stdout,
    );
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[2], "alive", "{list}");
    assert_eq!(words[3], human(used), "{list}");
    assert_eq!(words[4], me.trim(), "{list}");
    let sparse_line = line_of(&list, sparse.to_str().unwrap());
    assert_eq!(sparse_line.split_whitespace().nth(3), Some("0K"), "{list}");
    open_gate(gate, "go_b");
    open_gate(gate, "go_c");
    let status = wait_exit(&mut p.child, "record");
    assert!(status.success(), "record: {}", p.err.join().unwrap());
    let list = list_in(gate);
    let words: Vec<&str> = line_of(&list, &p.session).split_whitespace().collect();
    assert_eq!(words[2], "exited", "{list}");
    ok(&["remove", &p.session]);
}

/// Thread names are kept whole (Rust's name, not the kernel's 15-byte
/// comm) in what ringtrace shows (report text and JSON) and in the
/// trace.dat's saved cmdlines, which the real trace-cmd prints whole.
fn thread_names_are_kept_whole() {
    let dir = tempfile::tempdir().unwrap();
    let dat = dir.path().join("n.dat");
    let o = std::process::Command::new(common::ringtrace_bin())
        .args(["record", "-o", dat.to_str().unwrap(), "--"])
        .arg(common::me())
        .args(["prog", "named"])
        .env("RINGTRACE_SHM_DIR", dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "record: {}", text(&o.stderr));
    let whole = format!("{LONG_NAME}-");
    let report = text(&ok(&["report", "-i", dat.to_str().unwrap()]).stdout);
    let line = report
        .lines()
        .find(|l| l.contains("from_named 1"))
        .unwrap_or_else(|| panic!("no event: {report}"));
    assert!(line.trim_start().starts_with(&whole), "{line}");
    let json = text(&ok(&["report", "-i", dat.to_str().unwrap(), "--json"]).stdout);
    assert!(json.contains(&format!("\"{LONG_NAME}\"")), "{json}");
    let tc = common::trace_cmd_ok(&["report", dat.to_str().unwrap()]);
    let line = tc
        .lines()
        .find(|l| l.contains("from_named 1"))
        .unwrap_or_else(|| panic!("trace-cmd shows no event: {tc}"));
    assert!(line.trim_start().starts_with(&whole), "trace-cmd: {line}");
}

/// The wall-clock time of the trace's start is stored (the session's,
/// then the trace.dat's): `report --wall` starts each line with the
/// event's wall-clock time, which lies between the times before and after
/// the recording, and the JSON names the start in its metadata. The real
/// trace-cmd still reads the file.
fn wall_clock_times_are_shown() {
    use std::time::{SystemTime, UNIX_EPOCH};
    let dir = tempfile::tempdir().unwrap();
    let dat = dir.path().join("w.dat");
    let before = SystemTime::now();
    let o = std::process::Command::new(common::ringtrace_bin())
        .args([
            "record",
            "--clock",
            "mono",
            "-o",
            dat.to_str().unwrap(),
            "--",
        ])
        .arg(common::me())
        .args(["prog", "named"])
        .env("RINGTRACE_SHM_DIR", dir.path())
        .output()
        .unwrap();
    let after = SystemTime::now();
    assert!(o.status.success(), "record: {}", text(&o.stderr));
    let report = text(&ok(&["report", "--wall", "-i", dat.to_str().unwrap()]).stdout);
    let line = report
        .lines()
        .find(|l| l.contains("from_named 1"))
        .unwrap_or_else(|| panic!("no event: {report}"));
    let stamp = line.split_whitespace().next().unwrap();
    let at = humantime::parse_rfc3339(stamp).unwrap_or_else(|e| panic!("{line}: {e}"));
    assert!(
        before <= at && at <= after,
        "{line}: not within the recording"
    );
    let json = text(&ok(&["report", "--json", "-i", dat.to_str().unwrap()]).stdout);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let ns = v["metadata"]["ringtrace-wall-clock-start-ns"]
        .as_u64()
        .unwrap_or_else(|| panic!("no wall-clock start in the JSON metadata"));
    let ns_of = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    assert!(ns_of(before) <= ns && ns <= ns_of(after), "{ns}");
    assert!(v["metadata"]["ringtrace-wall-clock-start-ts-us"].is_f64());
    let tc = common::trace_cmd_ok(&["report", dat.to_str().unwrap()]);
    assert!(tc.contains("from_named 1"), "trace-cmd: {tc}");
}

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "stop_and_start_reach_the_writer_process",
            stop_and_start_reach_the_writer_process,
        ),
        (
            "reset_empties_and_turns_recording_on",
            reset_empties_and_turns_recording_on,
        ),
        (
            "list_shows_program_space_and_owner",
            list_shows_program_space_and_owner,
        ),
        ("thread_names_are_kept_whole", thread_names_are_kept_whole),
        ("wall_clock_times_are_shown", wall_clock_times_are_shown),
    ];
    harness::main_or_prog(prog, tests);
}
