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
    let mut child = record_command(
        args,
        ["phases", gate.to_str().unwrap(), &N.to_string()],
    )
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
    assert!(text(&o.stderr).contains("recording off"), "{}", text(&o.stderr));
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
    ];
    harness::main_or_prog(prog, tests);
}
