//! Each process under its real pid in the JSON export: a program that
//! forks (this test binary, re-run as `json_processes prog fork`), both
//! processes writing from their main thread and a named thread into one
//! session, recorded with `ringtrace record`; the trace.dat converted to
//! JSON (`convert`, `report --json`, and `record -o x.json`) puts each
//! process's threads under its pid, each pid with its `process_name`, and
//! the events of each pid are those it wrote; `trace-cmd report` still
//! reads the trace.dat (which carries ringtrace's processes option).
//!
//! `harness = false`: `main` runs the tests, or the traced program.
//! These tests FAIL (never skip) when `trace-cmd` is not on PATH
//! (Debian: `apt-get install -y trace-cmd`).

mod common;
mod harness;

use std::collections::BTreeMap;
use std::path::Path;

use common::{me, ok, record_ok, text, trace_cmd};

/// Events the parent writes: (main thread, its `p-side` thread).
const PARENT: (u32, u32) = (30, 20);
/// Events the child writes: (main thread, its `c-side` thread).
const CHILD: (u32, u32) = (40, 15);

fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("fork") => prog_fork(),
        other => panic!("unknown prog mode {other:?}"),
    }
}

/// Writes `main` events on this thread and `side` on a thread named
/// `name`, each message `jp WHO N`.
fn write_events(who: &str, (main, side): (u32, u32), name: &str) {
    let w = who.to_string();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            for i in 0..side {
                ringtrace::trace!("jp %s %u", w.as_str(), i);
            }
        })
        .unwrap()
        .join()
        .unwrap();
    for i in 0..main {
        ringtrace::trace!("jp %s %u", who, i);
    }
}

/// `fork`: forks while single-threaded; each process writes its events;
/// the parent waits for the child and prints both pids.
fn prog_fork() {
    // SAFETY: single-threaded here (no thread started yet), so the child
    // holds no lock another thread had taken.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        write_events("child", CHILD, "c-side");
        std::process::exit(0);
    }
    write_events("parent", PARENT, "p-side");
    let mut st = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    assert!(
        libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0,
        "child status {st}"
    );
    println!("parent {} child {pid}", std::process::id());
}

/// What a JSON export says of the processes: pid to process name, the
/// `jp` events per pid and message writer, and the thread names per pid.
#[derive(Debug, Default)]
struct Seen {
    names: BTreeMap<u64, String>,
    events: BTreeMap<(u64, String), u32>,
    threads: BTreeMap<u64, Vec<String>>,
}

fn seen_in(json: &str) -> Seen {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let mut s = Seen::default();
    for e in v["traceEvents"].as_array().expect("traceEvents") {
        let pid = e["pid"].as_u64().expect("pid");
        match (e["ph"].as_str(), e["name"].as_str()) {
            (Some("M"), Some("process_name")) => {
                let name = e["args"]["name"].as_str().unwrap().to_string();
                assert!(s.names.insert(pid, name).is_none(), "pid {pid} named twice");
            }
            (Some("M"), Some("thread_name")) => {
                let name = e["args"]["name"].as_str().unwrap().to_string();
                s.threads.entry(pid).or_default().push(name);
            }
            _ => {
                let msg = e["args"]["message"].as_str().unwrap_or("");
                if let Some(rest) = msg.strip_prefix("jp ") {
                    let who = rest.split(' ').next().unwrap().to_string();
                    *s.events.entry((pid, who)).or_default() += 1;
                }
            }
        }
    }
    s
}

/// Checks one export: each process under its pid, named, with its events.
fn check(json: &str, parent: u64, child: u64, how: &str) {
    let s = seen_in(json);
    let exe = me().file_name().unwrap().to_str().unwrap().to_string();
    for pid in [parent, child] {
        assert_eq!(
            s.names.get(&pid),
            Some(&exe),
            "{how}: process_name of {pid}: {s:?}"
        );
    }
    let want = BTreeMap::from([
        ((parent, "parent".to_string()), PARENT.0 + PARENT.1),
        ((child, "child".to_string()), CHILD.0 + CHILD.1),
    ]);
    assert_eq!(s.events, want, "{how}: jp events per pid");
    let has = |pid: u64, t: &str| {
        s.threads
            .get(&pid)
            .is_some_and(|v| v.iter().any(|n| n == t))
    };
    assert!(
        has(parent, "p-side") && has(child, "c-side"),
        "{how}: threads {s:?}"
    );
    assert!(
        !has(parent, "c-side") && !has(child, "p-side"),
        "{how}: threads {s:?}"
    );
}

/// The pids the program printed.
fn pids(stdout: &[u8]) -> (u64, u64) {
    let out = text(stdout);
    let l = out
        .lines()
        .find(|l| l.starts_with("parent "))
        .unwrap_or_else(|| panic!("{out}"));
    let w: Vec<&str> = l.split_whitespace().collect();
    (w[1].parse().unwrap(), w[3].parse().unwrap())
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `record -o f.dat`, then `convert` and `report --json`: each process
/// under its own pid; trace-cmd reads the file without complaint.
fn forked_processes_get_their_own_pids_in_json() {
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("f.dat");
    let (parent, child) = pids(&record_ok(&["-o", path(&dat)], &["fork"]).stdout);
    assert_ne!(parent, child);
    let json = d.path().join("f.json");
    ok(&["convert", path(&dat), "-o", path(&json)]);
    check(
        &std::fs::read_to_string(&json).unwrap(),
        parent,
        child,
        "convert",
    );
    let rep = ok(&["report", "-i", path(&dat), "--json"]);
    check(&text(&rep.stdout), parent, child, "report --json");
    let tc = std::process::Command::new(trace_cmd())
        .args(["report", "-i", path(&dat)])
        .output()
        .expect("running trace-cmd");
    let (out, err) = (text(&tc.stdout), text(&tc.stderr));
    assert!(tc.status.success(), "trace-cmd report: {err}");
    assert!(err.trim().is_empty(), "trace-cmd report warned: {err}");
    let n = out.lines().filter(|l| l.contains(" jp ")).count() as u32;
    assert_eq!(n, PARENT.0 + PARENT.1 + CHILD.0 + CHILD.1, "{out}");
    println!("  parent {parent} and child {child} under their own pids");
}

/// `record -o f.json` (the drain's JSON output): the same.
fn record_to_json_places_each_process() {
    let d = tempfile::tempdir().unwrap();
    let json = d.path().join("f.json");
    let (parent, child) = pids(&record_ok(&["-o", path(&json)], &["fork"]).stdout);
    check(
        &std::fs::read_to_string(&json).unwrap(),
        parent,
        child,
        "record -o .json",
    );
}

fn main() {
    harness::main_or_prog(
        prog,
        &[
            (
                "forked_processes_get_their_own_pids_in_json",
                forked_processes_get_their_own_pids_in_json,
            ),
            (
                "record_to_json_places_each_process",
                record_to_json_places_each_process,
            ),
        ],
    );
}
