//! `ringtrace record -e`: kernel events beside the program's, against the
//! real tracefs. A program that writes an event, sleeps, spins, over and
//! over is recorded with sched_switch and sched_wakeup; the one trace.dat
//! is read by the real `trace-cmd report` (all of it and each CPU alone)
//! and by `ringtrace report` (merged, `--kernel-only`, `--user-only`).
//! Every "about to sleep" is followed, in time order, by a sched_switch
//! away from that thread, with a positive gap; instances never outlive
//! their `record`, and one left by a killed `record` is removed by the
//! next. Without tracefs the program is traced alone, with one line.
//!
//! Kernel-event tests skip (with a message) only where
//! /sys/kernel/tracing does not exist; every other failure fails.
//! `harness = false`: the binary is also the traced program.

mod common;
mod harness;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{ok, record_command, run, text, wait_exit, wait_for_file, wait_output, HANG_GUARD};
use harness::Ran;

const TRACEFS: &str = "/sys/kernel/tracing";

// --- the traced program -----------------------------------------------------

fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("sleeper") => {
            let n: u32 = args[1].parse().unwrap();
            for i in 0..n {
                ringtrace::trace!("about to sleep %u", i);
                std::thread::sleep(Duration::from_micros(100));
                ringtrace::trace!("woke %u", i);
                // Spin a little: the thread runs without switching.
                let mut x = 0u64;
                for k in 0..2000u64 {
                    x = std::hint::black_box(x.wrapping_add(k));
                }
            }
        }
        Some("wait") => {
            ringtrace::trace!("waiting");
            std::fs::write(&args[1], b"").unwrap();
            while !Path::new(&args[2]).exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        other => panic!("unknown prog mode {other:?}"),
    }
}

// --- helpers ------------------------------------------------------------------

fn tracefs_or_skip() -> Option<Ran> {
    if Path::new(TRACEFS).exists() {
        None
    } else {
        eprintln!("SKIPPED: {TRACEFS} does not exist: the kernel-event tests need tracefs");
        Some(Ran::Skipped("no tracefs"))
    }
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks the process.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Instances named `ringtrace-<pid>-*` whose pid is `pid`, or (None) whose
/// pid is dead: what a finished `record` must not leave.
fn instances_of(pid: Option<u32>) -> Vec<String> {
    std::fs::read_dir(Path::new(TRACEFS).join("instances"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            let Some(p) = n
                .strip_prefix("ringtrace-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                return false;
            };
            match pid {
                Some(want) => p == want as i32,
                None => !alive(p),
            }
        })
        .collect()
}

fn trace_cmd(args: &[&str]) -> String {
    let o = Command::new("trace-cmd")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("trace-cmd must be installed (.ci/test installs it)");
    assert!(
        o.status.success(),
        "trace-cmd {args:?}: {}",
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// One line of `trace-cmd report`: (comm-pid's pid, ts in ns, the rest).
fn parse_line(l: &str) -> Option<(i32, u64, &str)> {
    // "           comm-123   [001] 53983.377384: event: ..."
    let open = l.find(" [")?;
    let pid = l[..open].trim().rsplit('-').next()?.parse().ok()?;
    let after = &l[open + 2..];
    let close = after.find("] ")?;
    let rest = after[close + 2..].trim_start();
    let colon = rest.find(": ")?;
    let (secs, nsecs) = rest[..colon].split_once('.')?;
    let ns = secs.parse::<u64>().ok()? * 1_000_000_000 + nsecs.parse::<u64>().ok()?;
    Some((pid, ns, &rest[colon + 2..]))
}

// --- tests --------------------------------------------------------------------

fn merged_with_sched_events_in_time_order() -> Ran {
    if let Some(r) = tracefs_or_skip() {
        return r;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k.dat");
    let n = 10_000;
    let o = record_command(
        [
            "-e",
            "sched:sched_switch",
            "-e",
            "sched:sched_wakeup",
            "--kernel-pid-only",
            "-b",
            "8192",
            "-o",
            out.to_str().unwrap(),
        ],
        ["sleeper", &n.to_string()],
    )
    .stderr(Stdio::piped())
    .stdout(Stdio::null())
    .spawn()
    .unwrap();
    let o = wait_output(o, HANG_GUARD, "record -e");
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("kernel events:") && err.contains("lost by the kernel: 0"),
        "{err}"
    );
    assert!(
        instances_of(None).is_empty(),
        "left: {:?}",
        instances_of(None)
    );
    // trace-cmd's time-ordered listing, in ns (-t).
    let report = trace_cmd(&["report", "-t", out.to_str().unwrap()]);
    let lines: Vec<(i32, u64, &str)> = report.lines().filter_map(parse_line).collect();
    assert!(
        lines.windows(2).all(|w| w[0].1 <= w[1].1),
        "not in time order"
    );
    let (sleeps, mut gaps) = sleep_switch_gaps(&lines);
    assert_eq!(sleeps, n, "every sleep of the program is in the file");
    // A sleep whose timer expires before the thread blocks (a stalled
    // vCPU on a loaded machine) returns without a switch: rare, never
    // most. Every switch found lies after its sleep event and before the
    // thread's next one, which is what one clock for both sides shows.
    assert!(
        gaps.len() * 10 >= n as usize * 9,
        "only {} of {n} sleeps followed by their switch",
        gaps.len()
    );
    assert!(
        gaps.iter().all(|&g| g > 0),
        "a switch before its sleep event"
    );
    gaps.sort_unstable();
    println!(
        "clock alignment over {} of {n} sleeps: median {} ns, p99 {} ns, max {} ns",
        gaps.len(),
        gaps[gaps.len() / 2],
        gaps[gaps.len() * 99 / 100],
        gaps[gaps.len() - 1]
    );
    // Each CPU alone, as KernelShark's loader reads them: together, the
    // whole listing.
    let cpus: usize = report
        .lines()
        .next()
        .unwrap()
        .trim_start_matches("cpus=")
        .parse()
        .unwrap();
    let mut per_cpu = 0;
    for c in 0..cpus {
        let one = trace_cmd(&["report", "--cpu", &c.to_string(), out.to_str().unwrap()]);
        per_cpu += one.lines().filter(|l| parse_line(l).is_some()).count();
    }
    assert_eq!(per_cpu, lines.len());
    ringtrace_report_sides(&out);
    Ran::Done
}

/// For each "about to sleep" of the program, in the time-ordered `lines`:
/// the gap to the next sched_switch away from its thread, which must come
/// before the thread's next own event. Returns (sleeps, gaps in ns).
fn sleep_switch_gaps(lines: &[(i32, u64, &str)]) -> (u32, Vec<i64>) {
    let sleep_tid = lines
        .iter()
        .find(|l| l.2.contains("about to sleep 0"))
        .expect("the program's events")
        .0;
    // After each "about to sleep", before the thread's next own event, a
    // sched_switch away from it ("comm:TID [prio] S ==> ...").
    let away = format!(":{sleep_tid} [");
    let (mut pending, mut gaps) = (None::<u64>, Vec::new());
    let mut sleeps = 0;
    for &(pid, ts, rest) in lines {
        if rest.starts_with("sched_switch:") {
            let prev = rest.split("==>").next().unwrap_or("");
            if prev.contains(&away) {
                if let Some(at) = pending.take() {
                    gaps.push(ts as i64 - at as i64);
                }
            }
        } else if pid == sleep_tid && rest.contains("about to sleep") {
            assert!(pending.is_none(), "no switch after a sleep before: {rest}");
            pending = Some(ts);
            sleeps += 1;
        } else if pid == sleep_tid && rest.contains("woke") {
            // Woke without a switch away: the sleep did not block.
            pending = None;
        }
    }
    (sleeps, gaps)
}

/// `ringtrace report` of the merged file: both sides, and each alone.
fn ringtrace_report_sides(out: &Path) {
    let p = out.to_str().unwrap();
    let all = text(&ok(&["report", p]).stdout);
    let kernel = text(&ok(&["report", p, "--kernel-only"]).stdout);
    let user = text(&ok(&["report", p, "--user-only"]).stdout);
    let count = |t: &str, what: &str| t.lines().filter(|l| l.contains(what)).count();
    assert!(count(&all, "sched_switch:") > 0 && count(&all, "about to sleep") > 0);
    assert_eq!(count(&kernel, "about to sleep"), 0);
    assert_eq!(
        count(&kernel, "sched_switch:"),
        count(&all, "sched_switch:")
    );
    assert_eq!(
        count(&user, "sched_switch:") + count(&user, "sched_wakeup:"),
        0
    );
    assert_eq!(
        count(&user, "about to sleep"),
        count(&all, "about to sleep")
    );
    assert_eq!(
        kernel.lines().count() + user.lines().count(),
        all.lines().count()
    );
    // Both sides interleave in the merged listing.
    let mut kinds: Vec<bool> = Vec::new();
    for l in all.lines() {
        kinds.push(l.contains("sched_"));
    }
    assert!(kinds.windows(2).filter(|w| w[0] != w[1]).count() > 100);
}

fn a_killed_record_leaves_an_instance_the_next_one_removes() -> Ran {
    if let Some(r) = tracefs_or_skip() {
        return r;
    }
    let dir = tempfile::tempdir().unwrap();
    let (started, go) = (dir.path().join("started"), dir.path().join("go"));
    let out = dir.path().join("a.dat");
    let mut rec = record_command(
        ["-e", "sched:sched_switch", "-o", out.to_str().unwrap()],
        ["wait", started.to_str().unwrap(), go.to_str().unwrap()],
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for_file(&started, "the program never started");
    let left = instances_of(Some(rec.id()));
    assert_eq!(left.len(), 1, "{left:?}");
    common::kill(rec.id(), libc::SIGKILL);
    wait_exit(&mut rec, "record after SIGKILL");
    std::fs::write(&go, b"").unwrap(); // the orphaned program ends
    assert_eq!(
        instances_of(Some(rec.id())),
        left,
        "a killed record's instance stays"
    );
    // The next record removes it, and says so.
    let o = run(&[
        "record",
        "-e",
        "sched:sched_wakeup",
        "-o",
        dir.path().join("b.dat").to_str().unwrap(),
        "--",
        "true",
    ]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(&format!("removed the tracefs instance {}", left[0])),
        "{err}"
    );
    assert!(instances_of(Some(rec.id())).is_empty());
    assert!(instances_of(None).is_empty());
    for f in ["a.dat.meta", "a.dat"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    Ran::Done
}

/// Without kernel events possible, the program is still traced, with one
/// line saying why (no tracefs; an unknown event; a refused filter).
fn kernel_failures_leave_the_program_traced() -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], Option<&str>, &str); 3] = [
        (
            &["-e", "sched:sched_switch"],
            Some("/nonexistent-tracefs"),
            "no tracefs at",
        ),
        (&["-e", "sched:no_such_event"], None, "unknown kernel event"),
        (
            &["-e", "sched:sched_switch", "-f", "bogus == 1"],
            None,
            "Field not found",
        ),
    ];
    for (i, (args, tracefs, why)) in cases.iter().enumerate() {
        if tracefs.is_none() && !Path::new(TRACEFS).exists() {
            eprintln!("SKIPPED case {i}: {TRACEFS} does not exist");
            continue;
        }
        let out = dir.path().join(format!("{i}.dat"));
        let mut c = record_command(
            args.iter().copied().chain(["-o", out.to_str().unwrap()]),
            ["sleeper", "3"],
        );
        if let Some(t) = tracefs {
            c.env("RINGTRACE_TRACEFS", t);
        }
        let child = c
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let o = wait_output(child, HANG_GUARD, "record");
        let err = text(&o.stderr);
        assert!(o.status.success(), "{err}");
        let said: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("kernel events not recorded"))
            .collect();
        assert_eq!(said.len(), 1, "{err}");
        assert!(said[0].contains(why), "{err}");
        let report = text(&ok(&["report", out.to_str().unwrap()]).stdout);
        assert_eq!(
            report
                .lines()
                .filter(|l| l.contains("about to sleep"))
                .count(),
            3
        );
    }
    if Path::new(TRACEFS).exists() {
        assert!(instances_of(None).is_empty());
    }
    Ran::Done
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("prog") {
        prog(&args[2..]);
        return;
    }
    let tests: &[(&str, harness::MayApply)] = &[
        (
            "merged_with_sched_events_in_time_order",
            merged_with_sched_events_in_time_order,
        ),
        (
            "a_killed_record_leaves_an_instance_the_next_one_removes",
            a_killed_record_leaves_an_instance_the_next_one_removes,
        ),
        (
            "kernel_failures_leave_the_program_traced",
            kernel_failures_leave_the_program_traced,
        ),
    ];
    harness::run_each(&args[1..], tests);
}
