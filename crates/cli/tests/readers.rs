//! Readers that never wait forever nor block the next one, end to end with
//! real processes (issue 18, items 2, 10 and 14):
//!
//! - the examples that read their own pipe (`tracer_demo`,
//!   `tracing_layer`) finish under `ringtrace record -o t.dat` with their
//!   events in the file (they used to spin forever on the reader lock);
//! - a second consuming reader of a live session fails at once, naming
//!   the reader that holds it (pid and command);
//! - a reader killed with SIGKILL leaves nothing that blocks the next one:
//!   no `--force`, and the takeover is said;
//! - `ringtrace clear` on a session whose writer was killed mid-write
//!   works: the dead write is counted as lost, not waited for.
//!
//! `harness = false`: `main` runs the tests, or the traced program (this
//! binary re-run as `readers prog MODE ...`). Every wait is a hang guard
//! of 60 s or more, never a performance bound.

mod common;
mod harness;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    kill, me, ok, record_piped, ringtrace_bin, run, text, wait_output, Recording, HANG_GUARD,
};

// --- the traced program -----------------------------------------------------

fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("slow") => {
            // Events until killed (bounded: about 20 minutes).
            for i in 0..100_000u32 {
                ringtrace::trace!("tick %u", i);
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Some("hold") => {
            // Some events, then a write reserved and never committed (as
            // if killed in the middle of it), then wait to be killed.
            for i in 0..20u32 {
                ringtrace::trace!("before %u", i);
            }
            let t = ringtrace::global().unwrap();
            let buf = t.ring_buffer();
            let mut w = buf.writer(buf.rings() - 1).unwrap();
            let r = w.reserve(1, 16).unwrap();
            std::fs::write(&args[1], b"holding").unwrap();
            std::thread::sleep(Duration::from_secs(600));
            drop(r);
        }
        other => panic!("unknown prog mode {other:?}"),
    }
}

// --- helpers ------------------------------------------------------------------

/// Kills `pid` and waits until it is gone or a zombie: SIGKILL takes effect
/// only when the process next runs, and until then a session counts it as a
/// live writer (so `remove` would refuse).
fn kill_and_wait_dead(pid: u32) {
    kill(pid, libc::SIGKILL);
    let start = Instant::now();
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.chars().next())
            });
        // A zombie leader whose other threads still exit counts as live.
        let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.take(2).count())
            .unwrap_or(0);
        if state.is_none() || (matches!(state, Some('Z' | 'X')) && threads <= 1) {
            return;
        }
        assert!(start.elapsed() < HANG_GUARD, "process {pid} never died");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The `target/<profile>` directory this test binary was built in.
fn profile_dir() -> PathBuf {
    // target/<profile>/deps/readers-HASH
    me().parent().unwrap().parent().unwrap().to_path_buf()
}

/// The examples, built (with the `tracing` feature) by cargo if needed.
fn example(name: &str) -> PathBuf {
    let dir = profile_dir();
    // The directory is named after the profile, but for `dev`'s.
    let profile = match dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(name) => name,
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-q",
        "-p",
        "ringtrace",
        "--examples",
        "--features",
        "tracing",
        "--profile",
        profile,
    ]);
    let child = cmd
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Compiling the examples on a loaded machine: a generous guard.
    let out = wait_output(child, Duration::from_secs(1800), "cargo build --examples");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let p = dir.join("examples").join(name);
    assert!(p.is_file(), "{} not built", p.display());
    p
}

/// `N events, L lost` of record's summary line.
fn summary_events(stderr: &str) -> u64 {
    let l = stderr
        .lines()
        .find(|l| l.contains(" events, ") && l.contains(" lost"))
        .unwrap_or_else(|| panic!("no summary in: {stderr}"));
    let before = &l[..l.find(" events, ").unwrap()];
    before
        .rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Kills `reader`, a consuming reader of session `p` (its locks stay
/// behind, held by a dead process), then extracts `p` into `dat`: the
/// extract names the dead reader whose locks it took over, and reads
/// events. Returns the extract's stderr.
fn kill_reader_then_extract(reader: &mut Child, p: &str, dat: &Path) -> String {
    let dead = reader.id();
    reader.kill().unwrap();
    reader.wait().unwrap();
    let o = ok(&["extract", p, "-o", dat.to_str().unwrap()]);
    let e = text(&o.stderr);
    assert!(
        e.contains(&format!(
            "reader process {dead} died holding the reader lock"
        )),
        "{e}"
    );
    assert!(summary_events(&e) > 0, "{e}");
    e
}

// --- tests --------------------------------------------------------------------

/// `tracer_demo` and `tracing_layer` read their own pipe at the end; under
/// `record` the rings are record's: each says so and finishes, and its
/// events are in the file.
fn examples_that_read_their_pipe_finish_under_record() {
    let cases: &[(&str, &[&str])] = &[
        ("tracer_demo", &["demo start", "job:", "demo end"]),
        ("tracing_layer", &["served", "slow", "from another thread"]),
    ];
    for (name, expect) in cases {
        let exe = example(name);
        let d = tempfile::tempdir().unwrap();
        let dat = d.path().join("t.dat");
        let child = Command::new(ringtrace_bin())
            .args(["record", "-o", dat.to_str().unwrap(), "--"])
            .arg(&exe)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_output(
            child,
            Duration::from_secs(120),
            &format!("record -- {name}"),
        );
        let err = text(&out.stderr);
        assert!(out.status.success(), "{name}: {}\n{err}", out.status);
        // The program met `record`'s reader and was told who it is.
        assert!(
            err.contains("the trace is not printed here")
                && err.contains("is being read by process")
                && err.contains("(ringtrace)"),
            "{name}: {err}"
        );
        let events = summary_events(&err);
        assert!(events > 0, "{name}: {err}");
        let report = text(&ok(&["report", "-i", dat.to_str().unwrap()]).stdout);
        for e in *expect {
            assert!(
                report.contains(e),
                "{name}: no {e:?} in the report:\n{report}"
            );
        }
        println!("  {name}: finished under record, {events} events in the file");
    }
}

/// A live consuming reader is named to the next one, which fails at once;
/// killed with SIGKILL, it is taken over without `--force`, and said so.
fn a_live_reader_is_named_and_a_dead_one_taken_over() {
    let name = format!("readerslock-{}", std::process::id());
    let Recording {
        child: mut rec,
        err: mut rec_err,
        path,
        pid: prog_pid,
    } = record_piped(["--name", &name], ["slow"]);
    let p = path.to_str().unwrap();
    let mut pipe = Command::new(ringtrace_bin())
        .args(["pipe", p])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(pipe.stdout.take().unwrap());
    let mut l = String::new();
    // One line: the pipe holds the reader locks now.
    assert!(out.read_line(&mut l).unwrap() > 0, "pipe printed nothing");
    assert!(l.contains("tick "), "{l}");
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("x.dat");
    let o = run(&["extract", p, "-o", dat.to_str().unwrap()]);
    let e = text(&o.stderr);
    assert!(!o.status.success(), "a second consumer must fail: {e}");
    assert!(
        e.contains(&format!(
            "is being read by process {} (ringtrace)",
            pipe.id()
        )),
        "the error names the holder: {e}"
    );
    let o = run(&["pipe", p]);
    assert!(!o.status.success());
    assert!(text(&o.stderr).contains(&format!("process {} (ringtrace)", pipe.id())));
    // Kill the reader: its locks stay behind, held by a dead process.
    let dead = pipe.id();
    let e = kill_reader_then_extract(&mut pipe, p, &dat);
    assert!(e.contains("taken over"), "the takeover is said: {e}");
    // And the next reader finds the locks free: no message, no wait.
    let o = ok(&["extract", p, "-o", dat.to_str().unwrap()]);
    assert!(!text(&o.stderr).contains("died holding"));
    kill_and_wait_dead(prog_pid);
    let mut rest = String::new();
    rec_err.read_to_string(&mut rest).unwrap();
    let _ = rec.wait();
    ok(&["remove", p]);
    println!("  live reader named; killed reader {dead} taken over without --force");
}

/// `record` killed with SIGKILL while it drains (holding every ring's
/// reader lock): the next reader takes its locks over without `--force`
/// and reads what the program wrote.
fn a_killed_record_leaves_nothing_that_blocks() {
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("never.dat");
    let name = format!("readersrec-{}", std::process::id());
    // Its stderr stays open (unread) until the end, as a terminal would.
    let Recording {
        child: mut rec,
        err: _err,
        path,
        pid: prog_pid,
    } = record_piped(["--name", &name, "-o", dat.to_str().unwrap()], ["slow"]);
    let p = path.to_str().unwrap();
    let x = d.path().join("x.dat");
    // Until record's drain holds the locks, a reader could get them.
    let start = Instant::now();
    let held = format!("is being read by process {} (ringtrace)", rec.id());
    loop {
        let o = run(&["extract", p, "-o", x.to_str().unwrap()]);
        if !o.status.success() && text(&o.stderr).contains(&held) {
            break;
        }
        assert!(start.elapsed() < HANG_GUARD, "record never read");
        std::thread::sleep(Duration::from_millis(20));
    }
    let dead = rec.id();
    kill_reader_then_extract(&mut rec, p, &x);
    kill_and_wait_dead(prog_pid);
    ok(&["remove", p]);
    println!("  killed record {dead}: its locks taken over by the next reader");
}

/// A writer killed with a write in flight: `clear` repairs (the write is
/// counted as lost) instead of waiting for a commit that never comes. The
/// session is made here, not by `record` (whose own post-mortem would
/// repair it first), as a program that makes its own session would.
fn clear_after_a_writer_died_mid_write() {
    let d = tempfile::tempdir().unwrap();
    let flag = d.path().join("holding");
    let session = ringtrace::session::Session::create(&ringtrace::session::SessionConfig::new(
        "readersclear",
    ))
    .unwrap();
    let path = session.path().to_path_buf();
    let mut prog = Command::new(me())
        .args(["prog", "hold", flag.to_str().unwrap()])
        .env(ringtrace::session::SESSION_ENV, &path)
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !flag.exists() {
        assert!(
            prog.try_wait().unwrap().is_none(),
            "the program ended before holding its write"
        );
        assert!(
            start.elapsed() < HANG_GUARD,
            "the program never held its write"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    prog.kill().unwrap();
    prog.wait().unwrap();
    let p = path.to_str().unwrap();
    let o = ok(&["clear", p]);
    let e = text(&o.stderr);
    assert!(
        e.contains("died without detaching")
            && e.contains("1 event(s) it was writing counted as lost"),
        "{e}"
    );
    assert!(e.contains("cleared"), "{e}");
    // Empty now: nothing left to extract.
    let dat = d.path().join("after.dat");
    let o = ok(&["extract", p, "-o", dat.to_str().unwrap()]);
    assert_eq!(summary_events(&text(&o.stderr)), 0, "{}", text(&o.stderr));
    drop(session);
    ok(&["remove", p]);
    println!("  clear after a writer died mid-write: repaired, then cleared");
}

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "a_live_reader_is_named_and_a_dead_one_taken_over",
            a_live_reader_is_named_and_a_dead_one_taken_over,
        ),
        (
            "a_killed_record_leaves_nothing_that_blocks",
            a_killed_record_leaves_nothing_that_blocks,
        ),
        (
            "clear_after_a_writer_died_mid_write",
            clear_after_a_writer_died_mid_write,
        ),
        (
            "examples_that_read_their_pipe_finish_under_record",
            examples_that_read_their_pipe_finish_under_record,
        ),
    ];
    harness::main_or_prog(prog, tests);
}
