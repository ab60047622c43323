//! Helpers shared by the session tests (`session_*`): a small session's
//! configuration, a session file written as a reader would find it, every
//! ring's accounting identity, reading a session to its end, and running
//! this test binary again as a child process.
//! Compiled on its own too (it has no tests then).
#![allow(dead_code)]

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;

use ringtrace::session::{Session, SessionConfig};
use ringtrace::Tracer;

/// A session named `name` in `dir` of `contexts` rings of
/// `bytes_per_context` bytes, on the monotonic clock, the other settings
/// as [`SessionConfig::new`] has them.
pub fn config(dir: &Path, name: &str, contexts: usize, bytes_per_context: usize) -> SessionConfig {
    SessionConfig {
        contexts,
        bytes_per_context,
        clock: ringtrace::clock::ClockKind::Mono,
        dir: Some(dir.to_path_buf()),
        ..SessionConfig::new(name)
    }
}

/// Writes `bytes` to a new file `p` of mode 0600, as sessions are (a
/// session file of another mode is refused).
pub fn write_0600(p: &Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .unwrap();
    std::io::Write::write_all(&mut f, bytes).unwrap();
}

/// Checks every ring's accounting identity (`written == read + overrun +
/// dropped + commit_overrun + entries`); returns the events still
/// buffered.
pub fn check_accounting(t: &Tracer) -> u64 {
    let mut buffered = 0;
    for r in 0..t.max_contexts() {
        let s = t.ring_stats(r).unwrap();
        assert_eq!(
            s.written,
            s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
            "ring {r}: {s:?}"
        );
        buffered += s.entries;
    }
    buffered
}

/// Events written into and read from all of `t`'s rings.
pub fn written_and_read(t: &Tracer) -> (u64, u64) {
    (0..t.max_contexts())
        .map(|r| t.ring_stats(r).unwrap())
        .fold((0, 0), |(w, rd), s| (w + s.written, rd + s.read))
}

/// All text lines of the session at `path`, read (consumed) by a reader
/// in this process after its writers are done, with the reader.
pub fn read_all(path: &Path) -> (Tracer, Vec<String>) {
    let t = Tracer::read_session(Session::open(path).unwrap()).unwrap();
    t.import_session_tables();
    let mut lines = Vec::new();
    {
        let mut p = t.pipe();
        while let Some(l) = p.next_line().unwrap() {
            lines.push(l);
        }
    }
    (t, lines)
}

/// Runs the test `test` of this test binary in a child process with `env`
/// set to `value`, and fails (with the child's stderr) unless it passes.
pub fn run_child_test(test: &str, env: &str, value: &Path) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(env, value)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child {test} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
