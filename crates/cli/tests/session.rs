//! Sessions end to end, with real processes: `ringtrace record` runs a
//! program (this test binary, re-run as `session prog MODE ...`) that
//! writes from several threads and a signal handler; the trace.dat goes
//! through the real `trace-cmd report`; `pipe` reads a running program;
//! a program killed with SIGKILL mid-storm is read afterwards with exact
//! accounting against counters it keeps in a shared file; a forking
//! program's events are attributed to each process; corrupted sessions
//! never crash or hang `show` and `stat`.
//!
//! `harness = false`: `main` runs the tests, or the traced program.
//! These tests FAIL (never skip) when `trace-cmd` is not on PATH
//! (Debian: `apt-get install -y trace-cmd`).

mod common;
mod harness;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{
    count_events_maybe, install_handler, kill, me, ok, record_ok, record_piped, ringtrace_bin, run,
    session_of, text, trace_cmd, wait_exit, wait_for_file, write_0600, Recording, HANG_GUARD,
};

ringtrace::declare_event! {
    /// A unit of work.
    pub struct Job: "sess" / "job" = 1700 { worker: u32, seq: u64 }
}

// --- the traced program -----------------------------------------------------

extern "C" fn on_usr1(_: libc::c_int) {
    let _s = ringtrace::signal_scope();
    ringtrace::trace!("sig on %d", ringtrace::context::current_tid());
}

fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("threads") => prog_threads(args),
        Some("churn") => prog_churn(args),
        Some("storm") => prog_storm(args),
        Some("fork") => prog_fork(args),
        Some("forkmany") => prog_forkmany(args),
        Some("orphan") => prog_orphan(args),
        Some("register") => prog_register(args),
        Some("slow") => prog_slow(args),
        other => panic!("unknown prog mode {other:?}"),
    }
}

/// `threads T N`: T named threads each record N events, printk and typed
/// in turn, and raise SIGUSR1 (its handler records) every 100th; then a
/// `done` marker.
fn prog_threads(args: &[String]) {
    let threads: u32 = args[1].parse().unwrap();
    let n: u64 = args[2].parse().unwrap();
    // The handler only records (async-signal-safe).
    install_handler(libc::SIGUSR1, on_usr1);
    std::thread::scope(|s| {
        for w in 0..threads {
            std::thread::Builder::new()
                .name(format!("wk{w}"))
                .spawn_scoped(s, move || {
                    for i in 0..n {
                        if i % 2 == 0 {
                            ringtrace::trace!("w%u i=%llu", w, i);
                        } else {
                            ringtrace::trace_event!(Job { worker: w, seq: i });
                        }
                        if i % 100 == 50 {
                            // SAFETY: raise delivers to this thread.
                            unsafe { libc::raise(libc::SIGUSR1) };
                        }
                    }
                })
                .unwrap();
        }
    });
    ringtrace::trace_marker("done");
}

/// `churn T N`: T threads one after another, each recording N events;
/// then a `done` marker.
fn prog_churn(args: &[String]) {
    // Threads one after another, each joined before the next.
    let threads: u32 = args[1].parse().unwrap();
    let n: u32 = args[2].parse().unwrap();
    for c in 0..threads {
        std::thread::spawn(move || {
            for k in 0..n {
                ringtrace::trace!("c%u k=%u", c, k);
            }
        })
        .join()
        .unwrap();
    }
    ringtrace::trace_marker("done");
}

/// `storm FILE`: two threads write until killed, counting the start and
/// the end of each write in FILE's shared counters (the pid in the last).
fn prog_storm(args: &[String]) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&args[1])
        .unwrap();
    let map = memmap2::MmapOptions::new().len(64).map_raw(&f).unwrap();
    // SAFETY: a 64-byte shared file mapping, page-aligned; AtomicU64
    // is valid for any bits; the test reads it only after we died.
    let c: &[AtomicU64; 8] = unsafe { &*(map.as_ptr() as *const [AtomicU64; 8]) };
    c[7].store(u64::from(std::process::id()), Ordering::SeqCst);
    std::thread::scope(|s| {
        for w in 0..2usize {
            let c = &c;
            s.spawn(move || {
                let mut i = 0u64;
                loop {
                    c[2 * w].fetch_add(1, Ordering::SeqCst);
                    ringtrace::trace!("storm %u %llu", w as u32, i);
                    c[2 * w + 1].fetch_add(1, Ordering::SeqCst);
                    i += 1;
                }
            });
        }
    });
}

/// `fork`: forks; each process records 100 events and 10 from a call site
/// first used after the fork; the parent prints both pids.
fn prog_fork(_: &[String]) {
    ringtrace::trace_marker("before fork");
    // SAFETY: single-threaded here; the child only records and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    let who = if pid == 0 { "child" } else { "parent" };
    for i in 0..100u32 {
        ringtrace::trace!("%s %u", who, i);
    }
    // Call sites first used after the fork, one in each process:
    // their printk ids come from the session, so they differ.
    for i in 0..10u32 {
        if pid == 0 {
            ringtrace::trace!("solo-c %u", i);
        } else {
            ringtrace::trace!("solo-p %u", i);
        }
    }
    if pid == 0 {
        std::process::exit(0);
    }
    let mut st = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut st, 0) };
    println!("parent {} child {pid}", std::process::id());
}

/// `forkmany K N`: K children one after another, each recording N events.
fn prog_forkmany(args: &[String]) {
    // Many short-lived children, one after another, more than the
    // session's contexts: each leases a context (waiting until one
    // is free), writes, and exits; the even ones with `_exit`, as a
    // killed process would (no lease handed back, no detach).
    let kids: u32 = args[1].parse().unwrap();
    let per: u32 = args[2].parse().unwrap();
    ringtrace::trace_marker("forkmany start");
    let mut failed = 0;
    for k in 0..kids {
        // SAFETY: single-threaded; the child records and exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let start = Instant::now();
            for i in 0..per {
                while ringtrace::context::record_global(&ringtrace::bprintk!("kid %u %u", k, i))
                    .is_err()
                {
                    if start.elapsed() > HANG_GUARD {
                        // SAFETY: ends the child without unwinding
                        // into the parent's code.
                        unsafe { libc::_exit(3) };
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            if k % 2 == 0 {
                // SAFETY: as a crash would: no exit handlers.
                unsafe { libc::_exit(0) };
            }
            std::process::exit(0);
        }
        let mut st = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        if !libc::WIFEXITED(st) || libc::WEXITSTATUS(st) != 0 {
            failed += 1;
        }
    }
    println!("children failed: {failed}");
}

/// `orphan GO`: forks a child that outlives the program and writes once
/// GO exists.
fn prog_orphan(args: &[String]) {
    // The program exits at once; the child it forked writes later
    // (when the test says so) and must still be waited for.
    ringtrace::trace_marker("orphan-parent");
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: single-threaded; the child records and exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid != 0 {
        // Exit once the child is a writer of the session (its first
        // event registered it).
        let mut b = [0u8; 1];
        // SAFETY: reads one byte into `b`.
        unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) };
        std::process::exit(0);
    }
    ringtrace::trace_marker("orphan-child");
    // SAFETY: writes one byte from a valid buffer.
    unsafe { libc::write(fds[1], b"x".as_ptr().cast(), 1) };
    let go = Path::new(&args[1]);
    let start = Instant::now();
    while !go.exists() && start.elapsed() < HANG_GUARD {
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in 0..10u32 {
        ringtrace::trace!("orphan %u", i);
    }
    std::process::exit(0);
}

/// `register SESSION SECS`: registers in SESSION's process table without
/// being its program's descendant, then sleeps SECS.
fn prog_register(args: &[String]) {
    // An unrelated process that registers in a session's process
    // table (as scribbled memory could make it name any live pid).
    let s = ringtrace::session::Session::open(Path::new(&args[1])).unwrap();
    assert!(s.register_process());
    println!("registered");
    std::thread::sleep(Duration::from_secs(args[2].parse().unwrap()));
}

/// `slow N [GATE]`: N ticks, 10 ms apart, waiting at GATE (see below).
fn prog_slow(args: &[String]) {
    // `slow N [GATE]`: N ticks, 10 ms apart. With a gate directory,
    // after a third of them it makes GATE/ready and waits for
    // GATE/go: a test knows the program has written and still runs
    // without guessing from the time.
    let n: u32 = args[1].parse().unwrap();
    let gate = args.get(2).map(Path::new);
    for i in 0..n {
        if let Some(gate) = gate.filter(|_| i == n / 3) {
            std::fs::write(gate.join("ready"), b"").unwrap();
            wait_for_file(&gate.join("go"), "the test never opened the gate");
        }
        ringtrace::trace!("tick %u", i);
        std::thread::sleep(Duration::from_millis(10));
    }
}

// --- helpers ------------------------------------------------------------------

/// `N events, L lost (ring counters: R lost)` from a summary line.
fn counts(stderr: &str) -> (u64, u64, u64) {
    let l = stderr
        .lines()
        .find(|l| l.contains(" events, ") && l.contains("ring counters"))
        .unwrap_or_else(|| panic!("no summary in: {stderr}"));
    // `ringtrace: PATH: N events, L lost (ring counters: R lost) -> OUT`
    let start = l
        .rfind(": ")
        .map(|i| &l[..i])
        .and_then(|h| h.rfind(": "))
        .unwrap();
    let mid = &l[start..l.find(" -> ").unwrap()];
    let nums: Vec<u64> = mid
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 3, "{l}");
    (nums[0], nums[1], nums[2])
}

fn count_events(dat: &Path) -> u64 {
    let f = std::fs::File::open(dat).unwrap();
    let mut r = ringtrace::tracedat::TraceDatReader::new(BufReader::new(f)).unwrap();
    r.records()
        .filter(|i| matches!(i, Ok(ringtrace::tracedat::TraceItem::Event(_))))
        .count() as u64
}

// --- tests --------------------------------------------------------------------

/// record -> trace.dat that trace-cmd reads, with every event: 4 threads'
/// printk and typed events and their signal handlers' events.
fn record_threads_and_signals_trace_cmd() {
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("t.dat");
    let (threads, n) = (4u64, 3000u64);
    let o = record_ok(
        &["-o", dat.to_str().unwrap()],
        &["threads", &threads.to_string(), &n.to_string()],
    );
    let err = text(&o.stderr);
    let (events, lost, ring_lost) = counts(&err);
    let signals = threads * (n / 100);
    let expected = threads * n + signals + 1;
    assert_eq!((events, lost, ring_lost), (expected, 0, 0), "{err}");
    assert_eq!(count_events(&dat), expected);
    let out = Command::new(trace_cmd())
        .args(["report", "-i"])
        .arg(&dat)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rep = text(&out.stdout);
    let printk = rep.lines().filter(|l| l.contains(" i=")).count() as u64;
    let typed = rep.lines().filter(|l| l.contains(" job: ")).count() as u64;
    let sig = rep.lines().filter(|l| l.contains("sig on ")).count() as u64;
    let done = rep.lines().filter(|l| l.contains("done")).count() as u64;
    assert_eq!(
        (printk, typed, sig, done),
        (threads * n / 2, threads * n / 2, signals, 1),
        "trace-cmd report:\n{}",
        &rep[..rep.len().min(3000)]
    );
    // Thread names came through the session's tables.
    for w in 0..threads {
        assert!(
            rep.contains(&format!("wk{w}-")),
            "no thread wk{w}; lines of unnamed threads: {:?}",
            rep.lines()
                .filter(|l| l.contains("<...>"))
                .take(4)
                .collect::<Vec<_>>()
        );
    }
    // A typed event's fields, decoded by trace-cmd from our format text.
    assert!(
        rep.contains("worker=3 seq=2999"),
        "{}",
        &rep[..rep.len().min(2000)]
    );
    // Signal-handler events carry the handler flag (`h1` in the latency
    // format's flags column), ordinary ones do not.
    let lat = Command::new(trace_cmd())
        .args(["report", "-l", "-i"])
        .arg(&dat)
        .output()
        .unwrap();
    let lat = text(&lat.stdout);
    let sig_lines: Vec<&str> = lat.lines().filter(|l| l.contains("sig on ")).collect();
    assert_eq!(sig_lines.len() as u64, signals);
    assert!(
        sig_lines.iter().all(|l| l.contains("..h1.")),
        "{:?}",
        &sig_lines[..2]
    );
    assert!(lat
        .lines()
        .filter(|l| l.contains(" job: "))
        .all(|l| l.contains(".....")));
    assert!(!rep.contains("LOST") && !rep.contains("DROPPED"));
    println!("  {expected} events, trace-cmd agrees");
}

/// `pipe` shows events while the program still runs, and ends by itself
/// when it exits, having shown every tick.
fn pipe_reads_a_running_program() {
    let gate = tempfile::tempdir().unwrap();
    let Recording {
        child: mut rec,
        mut err,
        path,
        pid,
    } = record_piped(
        ["--name", "pipetest"],
        [
            OsStr::new("slow"),
            OsStr::new("200"),
            gate.path().as_os_str(),
        ],
    );
    let mut pipe = Command::new(ringtrace_bin())
        .arg("pipe")
        .arg(&path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(pipe.stdout.take().unwrap());
    let start = Instant::now();
    let mut seen_live = false;
    let mut ticks = 0;
    let mut l = String::new();
    // Every line is a tick, in order: an event shown without its format
    // (not yet imported) or a loss would be another line.
    let mut other = Vec::new();
    while out.read_line(&mut l).unwrap() > 0 {
        match l.split("tick ").nth(1).map(str::trim_end) {
            Some(n) if n == ticks.to_string() => {}
            _ => other.push(l.clone()),
        }
        if l.contains("tick ") {
            ticks += 1;
            // The program waits at its gate (tick 66) until tick 5 has
            // been seen here: it runs now, whatever the machine's load.
            // SAFETY: kill 0 only probes the pid.
            if ticks == 5 && unsafe { libc::kill(pid as i32, 0) } == 0 {
                seen_live = true;
            }
            if ticks == 5 {
                std::fs::write(gate.path().join("go"), b"").unwrap();
            }
        }
        l.clear();
        assert!(start.elapsed() < HANG_GUARD, "pipe hangs");
    }
    assert!(pipe.wait().unwrap().success());
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rec.wait().unwrap().success(), "{rest}");
    assert!(seen_live, "no event seen while the program ran");
    assert!(other.is_empty(), "lines not the next tick: {other:?}");
    assert_eq!(ticks, 200, "record: {rest}");
    ok(&["remove", path.to_str().unwrap()]);
    println!("  200 ticks piped live");
}

/// SIGKILL in the middle of a write storm; afterwards `stat` says the
/// writer died and `extract` accounts for every write: the program's own
/// counters (in a shared file) bracket read + lost exactly.
fn sigkill_mid_storm_exact_accounting() {
    for (mode, rounds) in [("overwrite", 2), ("pc", 2)] {
        for round in 0..rounds {
            let d = tempfile::tempdir().unwrap();
            let cnt = d.path().join("counters");
            std::fs::write(&cnt, [0u8; 64]).unwrap();
            let name = format!("storm{mode}{round}");
            let Recording {
                child: mut rec,
                err: mut err_pipe,
                path,
                ..
            } = record_piped(
                ["-b", "64", "--mode", mode, "--name", &name],
                [OsStr::new("storm"), cnt.as_os_str()],
            );
            let f = std::fs::File::options()
                .read(true)
                .write(true)
                .open(&cnt)
                .unwrap();
            let map = memmap2::MmapOptions::new().len(64).map_raw(&f).unwrap();
            // SAFETY: as in the program: a shared 64-byte mapping of atomics.
            let c: &[AtomicU64; 8] = unsafe { &*(map.as_ptr() as *const [AtomicU64; 8]) };
            let start = Instant::now();
            while c[1].load(Ordering::SeqCst) + c[3].load(Ordering::SeqCst) < 200_000 {
                assert!(start.elapsed() < HANG_GUARD, "storm does not start");
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(7 * round as u64));
            let pid = c[7].load(Ordering::SeqCst) as i32;
            // SAFETY: kills the storm program (our grandchild).
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let mut err = String::new();
            err_pipe.read_to_string(&mut err).unwrap();
            // The program was killed: record exits 128 + SIGKILL.
            assert_eq!(rec.wait().unwrap().code(), Some(137), "{err}");
            assert!(err.contains("died without detaching"), "{err}");
            let stat = text(&ok(&["stat", path.to_str().unwrap()]).stdout);
            assert!(stat.contains("state: dead"), "{stat}");
            assert!(stat.contains("entries:") && stat.contains("read events:"));
            let dat = d.path().join("x.dat");
            let o = ok(&[
                "extract",
                path.to_str().unwrap(),
                "-o",
                dat.to_str().unwrap(),
            ]);
            let e = text(&o.stderr);
            let (events, _, ring_lost) = counts(&e);
            assert_eq!(count_events(&dat), events);
            let started = c[0].load(Ordering::SeqCst) + c[2].load(Ordering::SeqCst);
            let finished = c[1].load(Ordering::SeqCst) + c[3].load(Ordering::SeqCst);
            assert!(started - finished <= 2);
            assert!(
                finished <= events + ring_lost && events + ring_lost <= started,
                "{mode}: finished {finished} <= read {events} + lost {ring_lost} <= started {started}\n{err}\n{e}"
            );
            // The kernel's 8 stats lines after the extract: all read.
            ok(&["remove", path.to_str().unwrap()]);
            println!(
                "  {mode} round {round}: started {started} finished {finished}, read {events} + lost {ring_lost}"
            );
        }
    }
}

/// A program that forks: both processes' events, each with its own pid.
fn fork_attributes_events_to_each_process() {
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("f.dat");
    let o = record_ok(&["-o", dat.to_str().unwrap()], &["fork"]);
    let stdout = text(&o.stdout);
    let l = stdout
        .lines()
        .find(|l| l.starts_with("parent "))
        .unwrap_or_else(|| panic!("{stdout}\n{}", text(&o.stderr)));
    let w: Vec<&str> = l.split_whitespace().collect();
    let (parent, child): (i32, i32) = (w[1].parse().unwrap(), w[3].parse().unwrap());
    let rep = text(&ok(&["report", "-i", dat.to_str().unwrap()]).stdout);
    let mut n = [0, 0];
    for line in rep.lines() {
        let Some(who) = ["parent ", "child "].iter().position(|w| line.contains(w)) else {
            continue;
        };
        let want = if who == 0 { parent } else { child };
        assert!(
            line.contains(&format!("-{want} ")),
            "{line} (parent {parent}, child {child})"
        );
        n[who] += 1;
    }
    assert_eq!(n, [100, 100], "{rep}");
    // Sites first used after the fork in each process: distinct ids, each
    // formatted with its own text, never "ambiguous".
    assert!(!rep.contains("ambiguous"), "{rep}");
    for (tag, pid) in [("solo-c ", child), ("solo-p ", parent)] {
        let lines: Vec<&str> = rep.lines().filter(|l| l.contains(tag)).collect();
        assert_eq!(lines.len(), 10, "{tag}: {rep}");
        assert!(
            lines.iter().all(|l| l.contains(&format!("-{pid} "))),
            "{rep}"
        );
    }
    println!("  parent {parent} and child {child}: 100 events each, printk ids apart");
}

/// A program forks 80 short-lived children one after another into a
/// session of 4 contexts; half of them end with `_exit` (no lease handed
/// back, no detach: as if killed). The contexts of the dead ones are
/// reclaimed and reused: every child gets one, and every event of every
/// child is in the trace, none lost.
fn forked_children_reuse_dead_contexts() {
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("k.dat");
    let (kids, per) = (80u64, 20u64);
    let o = record_ok(
        &[
            "--contexts",
            "4",
            "-b",
            "16",
            "--keep",
            "-o",
            dat.to_str().unwrap(),
        ],
        &["forkmany", &kids.to_string(), &per.to_string()],
    );
    let stdout = text(&o.stdout);
    let stderr = text(&o.stderr);
    assert!(stdout.contains("children failed: 0"), "{stdout}\n{stderr}");
    let (events, lost, ring_lost) = counts(&stderr);
    assert_eq!((lost, ring_lost), (0, 0), "{stderr}");
    let rep = text(&ok(&["report", "-i", dat.to_str().unwrap()]).stdout);
    let kid_lines = rep.lines().filter(|l| l.contains(" kid ")).count() as u64;
    assert_eq!(kid_lines, kids * per, "{stderr}");
    assert_eq!(events, kids * per + 1, "{stderr}");
    let (path, _) = session_of(&stderr);
    let stat = text(&ok(&["stat", path.to_str().unwrap()]).stdout);
    ok(&["remove", path.to_str().unwrap()]);
    let reclaimed: u64 = stat
        .lines()
        .find_map(|l| l.strip_prefix("contexts reclaimed from dead writer processes: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stat}"));
    // 40 children died holding a context; all but the last few had to be
    // taken back for the next children to get one.
    assert!(reclaimed >= kids / 2 - 4, "{stat}");
    println!(
        "  {kids} children through 4 contexts: {kid_lines} events, {reclaimed} contexts reclaimed"
    );
}

/// `record` waits for a process the program forked and left behind, but
/// not for an unrelated live process that registered in the session's
/// process table (as scribbled memory could make it name any pid).
fn record_waits_only_for_its_own_processes() {
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("o.dat");
    let go = d.path().join("go");
    let Recording {
        child: mut rec,
        mut err,
        path,
        ..
    } = record_piped(
        ["-o", dat.to_str().unwrap()],
        ["orphan", go.to_str().unwrap()],
    );
    let mut line = String::new();
    let mut stranger = Command::new(me())
        .args(["prog", "register", path.to_str().unwrap(), "600"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(stranger.stdout.take().unwrap());
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "registered");
    std::fs::write(&go, b"").unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = rec.wait().unwrap();
    // The stranger still runs (it sleeps 600 s): record did not wait for it.
    assert!(stranger.try_wait().unwrap().is_none());
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert!(status.success(), "{rest}");
    assert!(
        rest.contains(&format!(
            "writer process {} was not started by this record",
            stranger.id()
        )),
        "{rest}"
    );
    let rep = text(&ok(&["report", "-i", dat.to_str().unwrap()]).stdout);
    let orphan = rep.lines().filter(|l| l.contains(" orphan ")).count();
    assert_eq!(orphan, 10, "{rep}\n{rest}");
    println!(
        "  waited for the orphan (10 events), not for pid {}",
        stranger.id()
    );
}

/// Scribbles on session memory at random places (header, tables, ring
/// metadata and pages) with many seeds; `show` and `stat` must exit
/// normally (0 or a clean error) within a timeout.
fn a_flight_recorder_takes_over_the_rings_of_exited_threads() {
    let d = tempfile::tempdir().unwrap();
    // 20 threads through 2 contexts, nothing read until the end: the newest
    // threads' events and the final marker are there.
    let fr = d.path().join("fr.dat");
    let err = text(
        &record_ok(
            &[
                "--contexts",
                "2",
                "--flight-recorder",
                "1",
                "-o",
                fr.to_str().unwrap(),
            ],
            &["churn", "20", "50"],
        )
        .stderr,
    );
    // Every event written is in the file or counted lost by the rings
    // (overwritten by the threads that took the rings over).
    let (events, _, ring_lost) = counts(&err);
    assert_eq!(events + ring_lost, 20 * 50 + 1, "{err}");
    let rep = text(&ok(&["report", "-i", fr.to_str().unwrap()]).stdout);
    assert!(
        rep.contains(" c19 k=49\n"),
        "{}",
        &rep[rep.len().saturating_sub(400)..]
    );
    assert!(
        rep.contains(" c18 k=0\n"),
        "the newest two threads are whole"
    );
    assert!(
        rep.trim_end().ends_with("done"),
        "the main thread recorded too"
    );
    // (Without the takeover the first two threads would hold both contexts
    // to the end, as a flight recorder reads nothing until then, and every
    // later thread would be refused; the library's tests check that rule.)
}

fn corrupt_sessions_never_crash_or_hang() {
    let o = record_ok(
        &["--name", "fuzzbase", "--contexts", "4", "-b", "16"],
        &["threads", "2", "400"],
    );
    let (base, _) = session_of(&text(&o.stderr));
    let pristine = std::fs::read(&base).unwrap();
    ok(&["remove", base.to_str().unwrap()]);
    let dir = tempfile::tempdir().unwrap();
    let seeds: u64 = env_or("SESSION_FUZZ_SEEDS", 400);
    let ring_off = {
        // The ring region follows the tables; find it from the header word
        // at its known place by opening the pristine copy.
        let p = dir.path().join("ringtrace-0-probe");
        write_0600(&p, &pristine);
        let s = ringtrace::session::Session::open(&p).unwrap();
        s.layout().ring_offset as usize
    };
    let mut outcomes = [0u32; 2];
    for seed in 0..seeds {
        let mut rnd = xorshift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut bytes = pristine.clone();
        let hits = 1 + rnd() % 8;
        for _ in 0..hits {
            let region = rnd() % 4;
            let len = bytes.len() as u64;
            let at = match region {
                0 => rnd() % 4096,                                               // session header
                1 => 4096 + rnd() % (ring_off as u64 - 4096),                    // slots, tables
                2 => ring_off as u64 + rnd() % 65536.min(len - ring_off as u64), // ring metadata
                _ => ring_off as u64 + rnd() % (len - ring_off as u64), // anywhere in the rings
            } as usize;
            let at = at.min(bytes.len() - 8);
            match rnd() % 3 {
                0 => bytes[at] ^= 1 << (rnd() % 8),
                1 => bytes[at..at + 4].copy_from_slice(&(rnd() as u32).to_le_bytes()),
                _ => bytes[at & !7..(at & !7) + 8].copy_from_slice(&rnd().to_le_bytes()),
            }
        }
        let p = dir.path().join(format!("ringtrace-0-fuzz{seed}"));
        write_0600(&p, &bytes);
        if let Ok(keep) = std::env::var("SESSION_FUZZ_KEEP") {
            let _ = std::fs::copy(&p, Path::new(&keep).join(format!("seed{seed}")));
        }
        let ps = p.to_str().unwrap();
        let out = dir.path().join("x.dat");
        let mut runs = vec![vec!["show", ps], vec!["stat", ps]];
        if seed % 8 == 0 {
            runs.push(vec!["extract", ps, "-o", out.to_str().unwrap()]);
        }
        if seed % 8 == 4 {
            runs.push(vec!["clear", ps]);
        }
        for args in runs {
            if bounded(&args, &format!("seed {seed}")) {
                outcomes[0] += 1;
            } else {
                outcomes[1] += 1;
            }
        }
        std::fs::remove_file(&p).unwrap();
    }
    println!(
        "  {seeds} seeds: {} runs read, {} refused with an error; slowest show/stat {} ms, \
         slowest of all {} ms",
        outcomes[0],
        outcomes[1],
        SLOWEST_READ_MS.load(Ordering::Relaxed),
        SLOWEST_MS.load(Ordering::Relaxed)
    );
}

/// The slowest run of [`bounded`] so far, in milliseconds: of the
/// read-only commands (`show`, `stat`, `snapshot`), and of all.
static SLOWEST_READ_MS: AtomicU64 = AtomicU64::new(0);
static SLOWEST_MS: AtomicU64 = AtomicU64::new(0);

/// Runs `ringtrace ARGS` with a timeout; panics if it hangs or crashes
/// (a signal, or a panic message); returns whether it succeeded.
fn bounded(args: &[&str], what: &str) -> bool {
    let mut child = Command::new(ringtrace_bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = err_pipe.read_to_string(&mut e);
        e
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > HANG_GUARD {
            // Where it hangs, for the report (gdb when installed).
            let stacks = Command::new("gdb")
                .args([
                    "-p",
                    &child.id().to_string(),
                    "-batch",
                    "-ex",
                    "thread apply all bt",
                ])
                .output()
                .map(|o| text(&o.stdout))
                .unwrap_or_default();
            let _ = child.kill();
            panic!("{what}: ringtrace {args:?} hangs\n{stacks}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = start.elapsed();
    SLOWEST_MS.fetch_max(took.as_millis() as u64, Ordering::Relaxed);
    if matches!(args[0], "show" | "stat" | "snapshot") {
        SLOWEST_READ_MS.fetch_max(took.as_millis() as u64, Ordering::Relaxed);
    }
    if took > Duration::from_secs(2) {
        println!("  slow: {what}: ringtrace {args:?} took {took:?}");
    }
    let err = reader.join().unwrap();
    assert!(
        status.code().is_some() && !err.contains("panicked"),
        "{what}: ringtrace {args:?} crashed: {status}\n{err}"
    );
    if !status.success() {
        assert!(err.contains("ringtrace: error: session"), "{what}: {err}");
    }
    status.success()
}

/// Scribbles on a *live* session's memory (a storm writes into it) through
/// a shared mapping, more with each round, and runs `show`, `stat` and
/// `snapshot` on it: they never crash or hang. (The writer itself trusts
/// the memory and may die of it; that is the program's business.)
fn corrupt_live_session_never_crashes_readers() {
    let d = tempfile::tempdir().unwrap();
    let cnt = d.path().join("counters");
    std::fs::write(&cnt, [0u8; 64]).unwrap();
    let Recording {
        child: mut rec,
        err,
        path,
        pid,
    } = record_piped(
        [
            "--name",
            "livefuzz",
            "--contexts",
            "4",
            "-b",
            "16",
            "--mode",
            "overwrite",
        ],
        [OsStr::new("storm"), cnt.as_os_str()],
    );
    std::thread::sleep(Duration::from_millis(200));
    let live = LiveMapping::of(&path);
    let snap = d.path().join("s.dat");
    let mut rnd = xorshift(live_fuzz_seed());
    let rounds: u32 = env_or("SESSION_LIVE_FUZZ_ROUNDS", 60);
    let mut ok_runs = 0;
    for round in 0..rounds {
        live.scribble(&mut rnd);
        let p = path.to_str().unwrap();
        if let Ok(keep) = std::env::var("SESSION_FUZZ_KEEP") {
            let _ = std::fs::copy(&path, Path::new(&keep).join(format!("round{round}")));
        }
        for args in [
            vec!["show", p],
            vec!["stat", p],
            vec!["snapshot", p, "-o", snap.to_str().unwrap()],
        ] {
            if bounded(&args, &format!("live round {round}")) {
                ok_runs += 1;
            }
        }
    }
    // Kills the storm program (our grandchild), if still alive, then
    // interrupts the recorder: a scribbled process table may name a live
    // pid as a writer, which `record` would wait for until interrupted.
    kill(pid, libc::SIGKILL);
    kill(rec.id(), libc::SIGINT);
    wait_exit(&mut rec, "record on SIGINT");
    drop(err);
    let _ = std::fs::remove_file(&path);
    println!(
        "  {rounds} rounds on a live session: {ok_runs} of {} runs read, the rest refused; \
         slowest show/stat/snapshot so far {} ms",
        3 * rounds,
        SLOWEST_READ_MS.load(Ordering::Relaxed)
    );
}

/// A live session file mapped shared, to scribble on under its writers.
struct LiveMapping {
    map: memmap2::MmapRaw,
    len: usize,
    /// Where the rings start (the tables end).
    ring_off: usize,
}

impl LiveMapping {
    fn of(path: &Path) -> LiveMapping {
        let f = std::fs::File::options()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let len = f.metadata().unwrap().len() as usize;
        let map = memmap2::MmapOptions::new().len(len).map_raw(&f).unwrap();
        let ring_off = ringtrace::session::Session::open(path)
            .unwrap()
            .layout()
            .ring_offset as usize;
        LiveMapping { map, len, ring_off }
    }

    /// 1 to 4 random words past the header: in the tables, the ring
    /// metadata, or anywhere in the rings.
    fn scribble(&self, rnd: &mut impl FnMut() -> u64) {
        let (len, ring_off) = (self.len, self.ring_off);
        for _ in 0..1 + rnd() % 4 {
            let at = match rnd() % 3 {
                0 => 4096 + (rnd() as usize) % (ring_off - 4096),
                1 => ring_off + (rnd() as usize) % 65536.min(len - ring_off),
                _ => ring_off + (rnd() as usize) % (len - ring_off),
            } & !7;
            let v = rnd();
            // SAFETY: `at + 8 <= len` (at is below len - 8 rounded down to 8);
            // a deliberate racy scribble on shared memory, as a hostile
            // writer would do; volatile so it is not elided.
            unsafe {
                std::ptr::write_volatile(self.map.as_mut_ptr().add(at.min(len - 8)) as *mut u64, v)
            };
        }
    }
}

/// The live fuzz's seed: `SESSION_LIVE_FUZZ_SEED` (hex), else from the
/// time; printed so that a failure can be repeated.
fn live_fuzz_seed() -> u64 {
    let mut x = 0x1234_5678_9abc_def1u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
    if let Some(seed) = std::env::var("SESSION_LIVE_FUZZ_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
    {
        x = seed;
    }
    println!("  live fuzz seed {x:#x} (SESSION_LIVE_FUZZ_SEED repeats it)");
    x
}

/// A xorshift64 generator from `x` (non-zero).
fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

/// The number in environment variable `name`, else `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Errors name the session and the cause; other users' files are refused.
fn errors_name_the_session() {
    let o = run(&["stat", "no-such-session-xyz"]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains("no session named \"no-such-session-xyz\""),
        "{e}"
    );
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("ringtrace-1-junk");
    write_0600(&p, &[7u8; 8192]);
    let o = run(&["show", p.to_str().unwrap()]);
    let e = text(&o.stderr);
    assert!(
        e.contains(p.to_str().unwrap()) && e.contains("not a ringtrace session"),
        "{e}"
    );
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let e = text(&run(&["stat", p.to_str().unwrap()]).stderr);
    assert!(e.contains("0600"), "{e}");
    // Another user's session is refused (as root, make one by chown).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        std::os::unix::fs::chown(&p, Some(1), None).unwrap();
        let e = text(&run(&["show", p.to_str().unwrap()]).stderr);
        assert!(e.contains("owned by uid 1, you are uid 0: refused"), "{e}");
    }
    for cmd in [
        "record", "list", "pipe", "show", "stat", "extract", "snapshot", "clear", "remove",
    ] {
        let h = text(&ok(&[cmd, "--help"]).stdout);
        assert!(h.contains("Example"), "{cmd} --help has no example");
    }
}

/// show and snapshot do not consume; extract does; list lists.
fn show_snapshot_extract_list_clear() {
    let d = tempfile::tempdir().unwrap();
    let o = record_ok(&["--name", "viewtest"], &["threads", "2", "200"]);
    let (path, _) = session_of(&text(&o.stderr));
    let p = path.to_str().unwrap();
    let list = text(&ok(&["list"]).stdout);
    assert!(
        list.lines().any(|l| l.contains(p) && l.contains("exited")),
        "{list}"
    );
    let show1 = text(&ok(&["show", p]).stdout);
    let show2 = text(&ok(&["show", "viewtest"]).stdout);
    let n1 = show1.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(n1, 2 * 200 + 2 * 2 + 1, "{show1}");
    assert_eq!(show1, show2, "show consumed something");
    let snap = d.path().join("s.json");
    let o = ok(&["snapshot", p, "-o", snap.to_str().unwrap()]);
    assert_eq!(counts(&text(&o.stderr)).0, 405);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&snap).unwrap()).unwrap();
    assert!(v["traceEvents"].as_array().unwrap().len() >= 405);
    let dat = d.path().join("e.dat");
    let o = ok(&["extract", p, "-o", dat.to_str().unwrap()]);
    assert_eq!(counts(&text(&o.stderr)).0, 405);
    // Consumed: a second extract finds nothing.
    let o = ok(&["extract", p, "-o", dat.to_str().unwrap()]);
    assert_eq!(counts(&text(&o.stderr)).0, 0);
    ok(&["clear", p]);
    ok(&["remove", p]);
    assert!(!path.exists());
}

/// The flight recorder keeps the newest events (older ones overwritten,
/// counted), writes them at the end, and on SIGUSR1 while the program runs.
fn flight_recorder_keeps_the_last_events_and_dumps_on_sigusr1() {
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("fr.dat");
    // 1 MB in all (a pool shared by the contexts in use), far less than
    // 60000 events.
    let o = record_ok(
        &[
            "--flight-recorder",
            "1",
            "--contexts",
            "8",
            "-o",
            dat.to_str().unwrap(),
        ],
        &["threads", "1", "60000"],
    );
    let err = text(&o.stderr);
    let (events, _, ring_lost) = counts(&err);
    assert_eq!(events + ring_lost, 60000 + 600 + 1, "{err}");
    assert!(ring_lost > 0 && events > 1000, "{err}");
    let rep = text(&ok(&["report", "-i", dat.to_str().unwrap()]).stdout);
    assert!(rep.contains("w0 i=59998"), "the newest events are kept");
    assert!(!rep.contains("w0 i=0\n"), "the oldest are overwritten");
    assert!(
        rep.trim_end().ends_with("done"),
        "{}",
        &rep[rep.len().saturating_sub(300)..]
    );

    // SIGUSR1 to ringtrace while the program runs: the file appears before
    // the program ends.
    let dump = d.path().join("dump.dat");
    let gate = tempfile::tempdir().unwrap();
    let Recording {
        child: mut rec,
        mut err,
        pid,
        ..
    } = record_piped(
        [
            "--flight-recorder",
            "1",
            "--contexts",
            "4",
            "-o",
            dump.to_str().unwrap(),
        ],
        [
            OsStr::new("slow"),
            OsStr::new("150"),
            gate.path().as_os_str(),
        ],
    );
    // The program has written its first 50 ticks and waits at its gate:
    // the dump is taken while it runs, with some of its events, whatever
    // the machine's load.
    wait_for_file(
        &gate.path().join("ready"),
        "the program never reached its gate",
    );
    // SAFETY: signals our child, the recorder.
    unsafe { libc::kill(rec.id() as i32, libc::SIGUSR1) };
    let start = Instant::now();
    while !dump.exists() || count_events_maybe(&dump).is_none() {
        assert!(start.elapsed() < HANG_GUARD, "no dump on SIGUSR1");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mid = count_events_maybe(&dump).unwrap();
    // SAFETY: kill 0 only probes the pid.
    let running = unsafe { libc::kill(pid as i32, 0) } == 0;
    std::fs::write(gate.path().join("go"), b"").unwrap();
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    assert!(rec.wait().unwrap().success(), "{rest}");
    assert!(
        running && mid > 0 && mid < 150,
        "dumped {mid} while running: {running}"
    );
    assert_eq!(count_events(&dump), 150);
    println!("  kept {events} newest of 60601 ({ring_lost} overwritten); SIGUSR1 dump had {mid}");
}

fn main() {
    let tests: &[(&str, fn())] = &[
        ("errors_name_the_session", errors_name_the_session),
        (
            "record_threads_and_signals_trace_cmd",
            record_threads_and_signals_trace_cmd,
        ),
        (
            "show_snapshot_extract_list_clear",
            show_snapshot_extract_list_clear,
        ),
        ("pipe_reads_a_running_program", pipe_reads_a_running_program),
        (
            "sigkill_mid_storm_exact_accounting",
            sigkill_mid_storm_exact_accounting,
        ),
        (
            "fork_attributes_events_to_each_process",
            fork_attributes_events_to_each_process,
        ),
        (
            "forked_children_reuse_dead_contexts",
            forked_children_reuse_dead_contexts,
        ),
        (
            "record_waits_only_for_its_own_processes",
            record_waits_only_for_its_own_processes,
        ),
        (
            "flight_recorder_keeps_the_last_events_and_dumps_on_sigusr1",
            flight_recorder_keeps_the_last_events_and_dumps_on_sigusr1,
        ),
        (
            "a_flight_recorder_takes_over_the_rings_of_exited_threads",
            a_flight_recorder_takes_over_the_rings_of_exited_threads,
        ),
        (
            "corrupt_sessions_never_crash_or_hang",
            corrupt_sessions_never_crash_or_hang,
        ),
        (
            "corrupt_live_session_never_crashes_readers",
            corrupt_live_session_never_crashes_readers,
        ),
    ];
    harness::main_or_prog(prog, tests);
}
