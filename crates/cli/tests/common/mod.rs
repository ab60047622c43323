//! What the CLI's process tests share: the `ringtrace` binary and this
//! test binary (re-run as the traced program), running a command and
//! checking that it succeeded, `trace-cmd`, starting `record` and reading
//! the session it names on stderr, and waits bounded by a hang guard.
//!
//! Every wait here ends on the state it waits for, however slow the
//! machine; [`HANG_GUARD`] only turns a hang into a failure, it is never a
//! performance bound. Each test binary uses a part of this module (`mod
//! common;`), hence the `dead_code` allowance.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

// The ringtrace crate's test support, shared rather than copied: the real
// `trace-cmd` on PATH (failing, never skipping, without it) and session
// files written with the mode sessions have.
#[path = "../../../ringtrace/tests/session_common.rs"]
mod session_common;
#[path = "../../../ringtrace/tests/tracedat_common.rs"]
pub mod tracedat_common;
// Each test binary uses a part of these too.
#[allow(unused_imports)]
pub use session_common::write_0600;
#[allow(unused_imports)]
pub use tracedat_common::{trace_cmd, trace_cmd_ok};

/// Longest wait for a state a test needs (a child started, a file made, a
/// command ended): a hang guard only, never a performance bound.
pub const HANG_GUARD: Duration = Duration::from_secs(300);

/// The `ringtrace` binary cargo built for these tests.
pub fn ringtrace_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringtrace")
}

/// This test binary: run as `BIN prog MODE ...`, it is the traced program.
pub fn me() -> PathBuf {
    std::env::current_exe().unwrap()
}

/// A process's output as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `ringtrace ARGS` (stdin empty) under the hang guard.
pub fn run(args: &[&str]) -> Output {
    let child = Command::new(ringtrace_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, HANG_GUARD, &format!("ringtrace {args:?}"))
}

/// Runs `ringtrace ARGS` and fails unless it succeeded, showing its stderr.
pub fn ok(args: &[&str]) -> Output {
    let o = run(args);
    assert!(
        o.status.success(),
        "ringtrace {args:?} failed: {}\nstderr: {}",
        o.status,
        text(&o.stderr)
    );
    o
}

/// Waits for `child` to end, killing it and failing after `limit` (a hang
/// guard). Returns its output, read as it comes (a full pipe would stop
/// the child).
pub fn wait_output(mut child: Child, limit: Duration, what: &str) -> Output {
    fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut v);
            }
            v
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let err = err.join().unwrap();
            panic!(
                "{what} hangs: killed after {limit:?}\nstderr: {}",
                text(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Waits for `child` to exit under the hang guard; kills it and fails past
/// it. Its pipes are left to the caller.
pub fn wait_exit(child: &mut Child, what: &str) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} hangs: killed after {HANG_GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits (bounded by the hang guard) until `path` exists.
pub fn wait_for_file(path: &Path, what: &str) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < HANG_GUARD,
            "hung: {what}: no {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The session path and program pid of `record`'s line
/// `ringtrace: session PATH recording pid N`, if `line` is it.
pub fn session_line(line: &str) -> Option<(PathBuf, u32)> {
    let rest = line.trim_end().split("session ").nth(1)?;
    let (p, pid) = rest.split_once(" recording pid ")?;
    Some((PathBuf::from(p), pid.trim().parse().ok()?))
}

/// The session path and program pid `record` printed in `stderr`.
pub fn session_of(stderr: &str) -> (PathBuf, u32) {
    stderr
        .lines()
        .find_map(session_line)
        .unwrap_or_else(|| panic!("no session line in: {stderr}"))
}

/// A running `ringtrace record`, its stderr read up to the line naming
/// its session.
#[derive(Debug)]
pub struct Recording {
    /// The `record` process (the caller waits for it).
    pub child: Child,
    /// The rest of its stderr.
    pub err: BufReader<ChildStderr>,
    /// The session file.
    pub path: PathBuf,
    /// The program's pid.
    pub pid: u32,
}

/// The command `ringtrace record ARGS -- <this binary> prog PROG...`.
pub fn record_command(
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    prog: impl IntoIterator<Item = impl AsRef<OsStr>>,
) -> Command {
    let mut c = Command::new(ringtrace_bin());
    c.arg("record")
        .args(args)
        .arg("--")
        .arg(me())
        .arg("prog")
        .args(prog);
    c
}

/// Starts `ringtrace record ARGS -- <this binary> prog PROG...` with
/// stderr piped, and reads until it names its session.
// The caller waits for the child it is given.
#[allow(clippy::zombie_processes)]
pub fn record_piped(
    args: impl IntoIterator<Item = impl AsRef<OsStr>>,
    prog: impl IntoIterator<Item = impl AsRef<OsStr>>,
) -> Recording {
    let mut child = record_command(args, prog)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap_or(0) > 0,
            "record ended before it named its session"
        );
        if let Some((path, pid)) = session_line(&line) {
            return Recording {
                child,
                err,
                path,
                pid,
            };
        }
    }
}

/// Sends `sig` to `pid`, a process this test started (directly or not).
pub fn kill(pid: u32, sig: libc::c_int) {
    // SAFETY: kill takes plain integers and has no memory preconditions.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Installs `handler` for `sig` in the traced program (`SA_RESTART`, empty
/// mask). The handler must do only async-signal-safe work (record, store
/// an atomic).
pub fn install_handler(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags) and is
    // filled in before use; the caller vouches that `handler` is
    // async-signal-safe.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut())
    };
    assert_eq!(
        rc,
        0,
        "sigaction({sig}): {}",
        std::io::Error::last_os_error()
    );
}

/// The events of trace.dat `dat`, counted with ringtrace's reader; `None`
/// while the file is not whole yet (being written).
pub fn count_events_maybe(dat: &Path) -> Option<u64> {
    let f = std::fs::File::open(dat).ok()?;
    let mut r = ringtrace::tracedat::TraceDatReader::new(BufReader::new(f)).ok()?;
    let mut n = 0;
    for i in r.records() {
        if matches!(i.ok()?, ringtrace::tracedat::TraceItem::Event(_)) {
            n += 1;
        }
    }
    Some(n)
}

/// Runs `ringtrace record ARGS -- <this binary> prog PROG...` to its end
/// (under the hang guard) and fails unless it succeeded and, where it
/// wrote an output, its summary's accounting identity holds.
pub fn record_ok(args: &[&str], prog: &[&str]) -> Output {
    let me = me();
    let mut all = vec!["record"];
    all.extend_from_slice(args);
    all.extend(["--", me.to_str().unwrap(), "prog"]);
    all.extend_from_slice(prog);
    let o = ok(&all);
    let err = text(&o.stderr);
    if err.contains(ACCOUNTING) {
        accounting(&err);
    }
    o
}

/// What introduces the accounting line of a summary.
const ACCOUNTING: &str = ": accounting: ";

/// The rings' counters summed over contexts, from a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accounting {
    pub written: u64,
    pub read: u64,
    pub overwritten: u64,
    pub dropped: u64,
    pub commit_overruns: u64,
    pub buffered: u64,
}

/// Parses the accounting line of a `record` or `extract` summary in
/// `stderr` (`accounting: W written = R read + O overwritten + D dropped +
/// C commit overruns + B still buffered`) and fails unless it is there,
/// says `=`, and its numbers add up.
pub fn accounting(stderr: &str) -> Accounting {
    let line = stderr
        .lines()
        .find(|l| l.contains(ACCOUNTING))
        .unwrap_or_else(|| panic!("no accounting line in:\n{stderr}"));
    let rest = &line[line.find(ACCOUNTING).unwrap() + ACCOUNTING.len()..];
    let words: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| -> u64 {
        words
            .get(i)
            .and_then(|w| w.parse().ok())
            .unwrap_or_else(|| panic!("word {i} of {line:?} is not a count"))
    };
    // W written = R read + O overwritten + D dropped + C commit overruns + B still buffered
    assert_eq!(
        words.get(2),
        Some(&"="),
        "the identity does not hold: {line}"
    );
    let a = Accounting {
        written: num(0),
        read: num(3),
        overwritten: num(6),
        dropped: num(9),
        commit_overruns: num(12),
        buffered: num(16),
    };
    assert_eq!(
        a.written,
        a.read + a.overwritten + a.dropped + a.commit_overruns + a.buffered,
        "{line}"
    );
    a
}
