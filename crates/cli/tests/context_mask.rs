//! Which contexts record (`tracing_cpumask`) from the command line:
//! `record --context-mask LIST` before the program starts, and
//! `ringtrace contexts SESSION LIST` on the live session from another
//! process. A masked-off context records nothing; its events are counted
//! and said, never lost silently.
//!
//! The traced program (this binary, re-run as `context_mask prog phases
//! GATE N`) records N events `phase_a` on its main thread (context 0) and
//! N `other_a` on a second thread (context 1), waits at a gate, then N
//! `phase_b` and N `other_b`, so the test switches the mask at a known
//! point. `harness = false`: `main` runs the tests, or the program.

mod common;
mod harness;

use std::path::Path;
use std::process::Stdio;

use common::{ok, record_command, session_line, text, wait_exit, wait_for_file};

const N: u32 = 300;

fn prog(args: &[String]) {
    assert_eq!(args.first().map(String::as_str), Some("phases"));
    let gate = Path::new(&args[1]);
    let n: u32 = args[2].parse().unwrap();
    let other = |phase: &'static str| {
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..n {
                    if phase == "a" {
                        ringtrace::trace!("other_a %u", i);
                    } else {
                        ringtrace::trace!("other_b %u", i);
                    }
                }
            });
        });
    };
    // The main thread records first: it leases context 0, and keeps it.
    for i in 0..n {
        ringtrace::trace!("phase_a %u", i);
    }
    other("a");
    std::fs::write(gate.join("a_done"), b"").unwrap();
    wait_for_file(&gate.join("go_b"), "the test never opened gate b");
    for i in 0..n {
        ringtrace::trace!("phase_b %u", i);
    }
    other("b");
}

/// Lines of `ringtrace report` of `dat` containing `word` and a space.
fn count_in_report(dat: &Path, word: &str) -> usize {
    let o = ok(&["report", "-i", dat.to_str().unwrap()]);
    let pat = format!("{word} ");
    text(&o.stdout).lines().filter(|l| l.contains(&pat)).count()
}

/// `record --context-mask 1`: the main thread (context 0) records
/// nothing, the other thread everything; then `ringtrace contexts
/// SESSION 0` from this process turns it around for phase b.
fn mask_at_start_then_changed_live() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path();
    let dat = gate.join("t.dat");
    let mut child = record_command(
        [
            "--context-mask",
            "1",
            "--contexts",
            "4",
            "-o",
            dat.to_str().unwrap(),
        ],
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
            "no session named"
        );
        if let Some((path, _)) = session_line(&line) {
            break path.to_str().unwrap().to_string();
        }
    };
    wait_for_file(&gate.join("a_done"), "phase a");
    let shown = text(&ok(&["contexts", &session]).stdout);
    assert!(shown.contains("contexts recording: 1 of 4"), "{shown}");
    assert!(
        shown.contains(&format!("refused as masked: {N}")),
        "{shown}"
    );
    let changed = text(&ok(&["contexts", &session, "0"]).stdout);
    assert!(changed.contains("contexts recording: 0 of 4"), "{changed}");
    let bad = common::run(&["contexts", &session, "0-9"]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("context 4 does not exist"),
        "{}",
        text(&bad.stderr)
    );
    std::fs::write(gate.join("go_b"), b"").unwrap();
    assert!(wait_exit(&mut child, "record").success());
    let mut rest = String::new();
    let _ = err.read_to_string(&mut rest);
    assert_eq!(
        count_in_report(&dat, "phase_a"),
        0,
        "context 0 was masked off"
    );
    assert_eq!(count_in_report(&dat, "other_a"), N as usize);
    assert_eq!(count_in_report(&dat, "phase_b"), N as usize);
    assert_eq!(
        count_in_report(&dat, "other_b"),
        0,
        "context 1 was masked off"
    );
    assert!(
        rest.contains(&format!(
            "{} event(s) not recorded: their context was masked off",
            2 * N
        )),
        "record says what the mask refused: {rest}"
    );
}

/// A bad list is refused before anything is created or started.
fn a_bad_mask_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let o = record_command(
        ["--context-mask", "2-1", "--contexts", "4"],
        ["phases", "x", "1"],
    )
    .env("RINGTRACE_SHM_DIR", dir.path())
    .output()
    .unwrap();
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("runs backwards"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no session made"
    );
}

fn main() {
    harness::main_or_prog(
        prog,
        &[
            (
                "mask_at_start_then_changed_live",
                mask_at_start_then_changed_live,
            ),
            (
                "a_bad_mask_is_refused_up_front",
                a_bad_mask_is_refused_up_front,
            ),
        ],
    );
}
