//! `ringtrace record`'s lifecycle, with real processes: the output is made
//! before the program starts, spooled next to it as it is read, recovered
//! after a `kill -9` of `record` or a write error (with exact accounting
//! against what the program wrote), signals sent to `record` reach the
//! program, the exit status is the program's, `ringtrace demo` can be
//! recorded, and the small command-line failures say what went wrong.
//!
//! `harness = false`: `main` runs the tests, or the traced program (this
//! binary re-run as `record prog MODE ...`).

mod common;
mod harness;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{
    accounting, install_handler, kill, me, ok, record_command, record_ok, ringtrace_bin, run,
    session_of, text, wait_exit, wait_for_file, HANG_GUARD,
};

// --- the traced program -----------------------------------------------------

static GOT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(sig: libc::c_int) {
    let _s = ringtrace::signal_scope();
    ringtrace::trace!("got signal %d", sig);
    GOT.store(true, Ordering::SeqCst);
}

/// Waits (bounded by the hang guard) until `path` exists.
fn wait_for(path: &Path) {
    wait_for_file(path, "never came");
}

/// `threads` threads each record `n` events `t<w> i=<seq>` from `from`.
fn burst(threads: u32, from: u64, n: u64) {
    std::thread::scope(|s| {
        for w in 0..threads {
            std::thread::Builder::new()
                .name(format!("rw{w}"))
                .spawn_scoped(s, move || {
                    for i in from..from + n {
                        ringtrace::trace!("t%u i=%llu", w, i);
                    }
                })
                .unwrap();
        }
    });
}

fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("phases") => prog_phases(args),
        Some("signals") => prog_signals(args),
        Some("crash") => prog_crash(args),
        Some("burst") => prog_burst(args),
        Some("touch") => std::fs::write(&args[1], b"").unwrap(),
        other => panic!("unknown prog mode {other:?}"),
    }
}

/// `phases DIR T N1 N2`: T threads write N1 events each, then N2 more
/// once the test says go (see below).
fn prog_phases(args: &[String]) {
    // Phase 1, then `DIR/phase1`, then wait for `DIR/go`, phase 2,
    // then `DIR/done`. Threads are spawned per phase, so each
    // phase's thread w may use another context: the sequence
    // numbers tell the events apart.
    let dir = Path::new(&args[1]);
    let threads: u32 = args[2].parse().unwrap();
    let (n1, n2): (u64, u64) = (args[3].parse().unwrap(), args[4].parse().unwrap());
    burst(threads, 0, n1);
    std::fs::write(dir.join("phase1"), b"").unwrap();
    wait_for(&dir.join("go"));
    burst(threads, n1, n2);
    std::fs::write(dir.join("done"), b"").unwrap();
}

/// `signals DIR [stay]`: records each SIGINT/SIGTERM/SIGHUP it gets.
fn prog_signals(args: &[String]) {
    // Records each SIGINT/SIGTERM/SIGHUP; exits after one unless
    // told to stay.
    let dir = Path::new(&args[1]);
    let stay = args.get(2).map(String::as_str) == Some("stay");
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // The handler records and stores an atomic
        // (async-signal-safe).
        install_handler(sig, on_stop_signal);
    }
    ringtrace::trace!("ready %d", 1);
    std::fs::write(dir.join("ready"), b"").unwrap();
    let start = Instant::now();
    while (stay || !GOT.load(Ordering::SeqCst)) && start.elapsed() < HANG_GUARD {
        std::thread::sleep(Duration::from_millis(2));
    }
    ringtrace::trace!("leaving %d", 2);
}

/// `crash`: records an event, then dies of SIGSEGV (no core file).
fn prog_crash(_: &[String]) {
    ringtrace::trace!("about to crash %d", 11);
    // SAFETY: no core file, then the default action of SIGSEGV.
    unsafe {
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::raise(libc::SIGSEGV);
    }
}

/// `burst T N`: T threads write N events each.
fn prog_burst(args: &[String]) {
    let threads: u32 = args[1].parse().unwrap();
    burst(threads, 0, args[2].parse().unwrap());
}

// --- helpers ------------------------------------------------------------------

/// A session name of this test run (a failed earlier run may have left
/// its sessions).
fn uniq(base: &str) -> String {
    format!("{base}-{}", std::process::id())
}

/// `record ARGS -- this binary prog PROG...`, stderr to `DIR/err`.
fn spawn_record(dir: &Path, args: &[&str], prog: &[&str]) -> Child {
    record_to_err(dir, args, prog).spawn().unwrap()
}

/// The command of [`spawn_record`], to start.
fn record_to_err(dir: &Path, args: &[&str], prog: &[&str]) -> Command {
    let err = std::fs::File::create(dir.join("err")).unwrap();
    let mut c = record_command(args, prog);
    c.stderr(err);
    c
}

fn stderr_of(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("err")).unwrap()
}

fn wait_child(c: &mut Child) -> std::process::ExitStatus {
    wait_exit(c, "record")
}

/// The events of a trace.dat as their text (`ringtrace report`), and the
/// lost-event lines' counts.
fn report_lines(dat: &Path) -> Vec<String> {
    let o = ok(&["report", "-i", dat.to_str().unwrap()]);
    text(&o.stdout).lines().map(str::to_string).collect()
}

/// `(thread, seq)` of every `t<w> i=<seq>` event, in file order.
fn seqs(lines: &[String]) -> Vec<(u32, u64)> {
    lines
        .iter()
        .filter_map(|l| {
            let (before, seq) = l.rsplit_once(" i=")?;
            let (_, w) = before.rsplit_once(" t")?;
            Some((w.parse().ok()?, seq.trim().parse().ok()?))
        })
        .collect()
}

/// Each thread's sequence numbers, sorted, with duplicates failing.
fn by_thread(events: &[(u32, u64)]) -> BTreeMap<u32, Vec<u64>> {
    let mut m: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (w, i) in events {
        m.entry(*w).or_default().push(*i);
    }
    for v in m.values_mut() {
        v.sort_unstable();
        let n = v.len();
        v.dedup();
        assert_eq!(n, v.len(), "an event appears twice");
    }
    m
}

/// Sum over the contexts of each `key: N` line of `ringtrace stat`.
fn stat_sums(session: &Path) -> BTreeMap<String, u64> {
    let o = ok(&["stat", session.to_str().unwrap()]);
    let mut m = BTreeMap::new();
    for l in text(&o.stdout).lines() {
        if let Some((k, v)) = l.split_once(": ") {
            if let Ok(n) = v.trim().parse::<u64>() {
                *m.entry(k.to_string()).or_insert(0) += n;
            }
        }
    }
    m
}

fn spool_bytes(out: &Path) -> u64 {
    let dir = out.parent().unwrap();
    let name = out.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&format!("{name}.cpu")))
        })
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Recovery after the recording stopped early: what `recover` wrote plus
/// what `extract` finds in the session plus what the recorder read but
/// could not write (in flight) is, exactly, every event of the program;
/// each thread's recovered events are the start of its sequence and the
/// extracted ones its end.
fn check_recovery(dir: &Path, out: &Path, session: &Path, threads: u32, total_per_thread: u64) {
    // The placeholder is not taken for a trace: the error names the fix.
    let o = run(&["report", "-i", out.to_str().unwrap()]);
    assert!(!o.status.success());
    let e = text(&o.stderr);
    assert!(
        e.contains(&format!("ringtrace recover {}", out.display())),
        "{e}"
    );
    let o = ok(&["recover", out.to_str().unwrap()]);
    println!("  {}", text(&o.stderr).trim());
    assert!(
        !dir.join("t.dat.meta").exists(),
        "the spool stays after recover"
    );
    assert_eq!(spool_bytes(out), 0);
    let recovered = seqs(&report_lines(out));
    let sums = stat_sums(session);
    let rest = dir.join("rest.dat");
    // --force: the killed recorder still holds the reader locks.
    ok(&[
        "extract",
        session.to_str().unwrap(),
        "--force",
        "-o",
        rest.to_str().unwrap(),
    ]);
    let extracted = seqs(&report_lines(&rest));
    ok(&["remove", session.to_str().unwrap()]);

    let written = u64::from(threads) * total_per_thread;
    let lost = sums["overrun"] + sums["dropped events"] + sums["commit overrun"];
    // The accounting identity against what the program wrote, before the
    // extract read the rest.
    assert_eq!(
        written,
        sums["read events"] + lost + sums["entries"],
        "{sums:?}"
    );
    assert_eq!(extracted.len() as u64, sums["entries"]);
    let read = sums["read events"];
    assert!(read >= recovered.len() as u64);
    let in_flight = read - recovered.len() as u64;
    assert!(!recovered.is_empty(), "nothing was recovered");
    let rec = by_thread(&recovered);
    let ext = by_thread(&extracted);
    let mut gap = 0;
    for w in 0..threads {
        let r = rec.get(&w).cloned().unwrap_or_default();
        let x = ext.get(&w).cloned().unwrap_or_default();
        assert!(
            r.iter().chain(&x).all(|s| *s < total_per_thread),
            "thread {w}: an event the program did not write"
        );
        // What was read comes before what was left.
        if let (Some(a), Some(b)) = (r.last(), x.first()) {
            assert!(a < b, "thread {w}: recovered {a} after extracted {b}");
        }
        let first = x.first().copied().unwrap_or(total_per_thread);
        gap += first - r.len() as u64;
        if lost == 0 {
            // Nothing dropped: the recovered events are the start of the
            // thread's sequence and the extracted ones its end, each
            // without a hole.
            assert!(
                r.iter().enumerate().all(|(i, s)| *s == i as u64),
                "thread {w}: recovered events are not the start of its sequence"
            );
            assert!(
                x.iter().enumerate().all(|(i, s)| *s == first + i as u64),
                "thread {w}: extracted events are not contiguous"
            );
            assert_eq!(first + x.len() as u64, total_per_thread, "thread {w}");
        }
    }
    if lost == 0 {
        assert_eq!(gap, in_flight, "events read but not written = the gap");
    }
    println!(
        "  written {written}: recovered {}, in flight {in_flight}, dropped {lost}, left in \
         the session {}",
        recovered.len(),
        extracted.len()
    );
}

/// Once the `phases` program's phase 1 is written (`DIR/phase1`), waits
/// until `record` spooled some of its pages next to `out` (phase 1 filled
/// whole pages; no timing: the recorder takes complete pages as it finds
/// them); returns the session `record` named.
fn phase1_spooled(dir: &Path, out: &Path) -> PathBuf {
    wait_for(&dir.join("phase1"));
    let start = Instant::now();
    while spool_bytes(out) < 16 * 4096 {
        assert!(start.elapsed() < HANG_GUARD, "nothing spooled");
        std::thread::sleep(Duration::from_millis(5));
    }
    wait_session(dir).0
}

/// Waits until `record` printed its session line; returns it parsed.
fn wait_session(dir: &Path) -> (PathBuf, u32) {
    let start = Instant::now();
    loop {
        let e = stderr_of(dir);
        if e.contains(" recording pid ") {
            return session_of(&e);
        }
        assert!(start.elapsed() < HANG_GUARD, "no session line: {e}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// --- tests --------------------------------------------------------------------

/// `kill -9` of `record` mid-recording: the events it had read are on disk
/// next to the output; `ringtrace recover` writes them; with what the
/// session still holds, every event is accounted for.
fn kill9_of_record_then_recover() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.dat");
    let dir = d.path().to_str().unwrap();
    let (threads, n1, n2) = (2u32, 20_000u64, 5_000u64);
    let mut rec = spawn_record(
        d.path(),
        &[
            "-o",
            out.to_str().unwrap(),
            "--contexts",
            "8",
            "-b",
            "2048",
            "--name",
            &uniq("rec-kill9"),
        ],
        &[
            "phases",
            dir,
            &threads.to_string(),
            &n1.to_string(),
            &n2.to_string(),
        ],
    );
    let session = phase1_spooled(d.path(), &out);
    rec.kill().unwrap();
    rec.wait().unwrap();
    // The program goes on without its reader.
    std::fs::write(d.path().join("go"), b"").unwrap();
    wait_for(&d.path().join("done"));
    let start = Instant::now();
    while !text(&ok(&["stat", session.to_str().unwrap()]).stdout).contains("state: exited") {
        assert!(start.elapsed() < HANG_GUARD, "the program never detached");
        std::thread::sleep(Duration::from_millis(10));
    }
    check_recovery(d.path(), &out, &session, threads, n1 + n2);
}

/// A write error (here the file size limit, lowered while `record` runs,
/// as a disk that fills up would) stops the reading, never the program;
/// `record` keeps the session, prints the recover and extract commands and
/// exits non-zero; both commands then give back every event.
fn write_error_keeps_the_session_and_says_how_to_save_it() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.dat");
    let dir = d.path().to_str().unwrap();
    let (threads, n1, n2) = (2u32, 20_000u64, 5_000u64);
    let name = uniq("rec-efbig");
    let args = [
        "-o",
        out.to_str().unwrap(),
        "--contexts",
        "4",
        "-b",
        "2048",
        "--name",
        &name,
    ];
    let (threads_s, n1_s, n2_s) = (threads.to_string(), n1.to_string(), n2.to_string());
    let mut cmd = record_to_err(d.path(), &args, &["phases", dir, &threads_s, &n1_s, &n2_s]);
    // SAFETY: between fork and exec: signal is async-signal-safe. With
    // SIGXFSZ ignored a write past the size limit fails with EFBIG instead
    // of killing.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut rec = cmd.spawn().unwrap();
    let session = phase1_spooled(d.path(), &out);
    // From now on `record`'s writes past 64 KiB of a file fail (its
    // stderr file stays below that); phase 2 writes 200 KB per thread.
    let lim = libc::rlimit {
        rlim_cur: 64 << 10,
        rlim_max: 64 << 10,
    };
    // SAFETY: prlimit on our own child with a valid rlimit.
    let rc = unsafe {
        libc::prlimit(
            rec.id() as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    // Phase 2 fills more pages: their write fails.
    std::fs::write(d.path().join("go"), b"").unwrap();
    let status = wait_child(&mut rec);
    let e = stderr_of(d.path());
    assert_eq!(status.code(), Some(1), "{status}: {e}");
    assert!(e.contains("File too large"), "{e}");
    assert!(e.contains("reading stopped (the program goes on"), "{e}");
    assert!(e.contains("could not be written"), "{e}");
    assert!(session.exists(), "the session was not kept");
    let extract = e
        .lines()
        .find(|l| l.trim_start().starts_with("ringtrace extract "))
        .unwrap_or_else(|| panic!("no extract command in: {e}"));
    assert!(extract.contains(session.to_str().unwrap()), "{extract}");
    assert!(
        e.contains(&format!("ringtrace recover {}", out.display())),
        "{e}"
    );
    assert!(d.path().join("done").exists());
    check_recovery(d.path(), &out, &session, threads, n1 + n2);
}

/// SIGTERM sent to `record` alone reaches the program, which records it
/// and exits; `record` writes the file and exits with the program's 0.
/// SIGHUP (a closed terminal's) likewise. Two SIGINTs: the first reaches
/// the program (which stays), the second stops the waiting: the file is
/// written, the status is 130.
fn signals_to_record_reach_the_program() {
    let lines = one_signal_reaches_the_program(libc::SIGTERM, "rec-term");
    assert!(lines.contains("leaving 2"), "{lines}");
    one_signal_reaches_the_program(libc::SIGHUP, "rec-hup");
    a_second_sigint_stops_the_waiting();
}

/// `record -o DIR/t.dat` of the `signals` program (which stays after a
/// signal when `stay`), once the program is ready for signals.
fn record_signals(d: &Path, name: &str, stay: bool) -> Child {
    let out = d.join("t.dat");
    let dir = d.to_str().unwrap();
    let mut prog = vec!["signals", dir];
    if stay {
        prog.push("stay");
    }
    let name = uniq(name);
    let args = [
        "-o",
        out.to_str().unwrap(),
        "--contexts",
        "4",
        "--name",
        &name,
    ];
    let rec = spawn_record(d, &args, &prog);
    wait_for(&d.join("ready"));
    rec
}

/// `sig` sent to `record` alone reaches the program, which records it and
/// exits; `record` exits 0. Returns the trace's lines.
fn one_signal_reaches_the_program(sig: libc::c_int, name: &str) -> String {
    let d = tempfile::tempdir().unwrap();
    let mut rec = record_signals(d.path(), name, false);
    kill(rec.id(), sig);
    let status = wait_child(&mut rec);
    let e = stderr_of(d.path());
    assert_eq!(status.code(), Some(0), "{e}");
    let lines = report_lines(&d.path().join("t.dat")).join("\n");
    assert!(lines.contains(&format!("got signal {sig}")), "{lines}\n{e}");
    lines
}

/// Two SIGINTs to `record`: the first reaches the program (which stays),
/// the second stops the waiting: the file is written, the status is 130.
fn a_second_sigint_stops_the_waiting() {
    let d = tempfile::tempdir().unwrap();
    let mut rec = record_signals(d.path(), "rec-int", true);
    let (session, pid) = wait_session(d.path());
    kill(rec.id(), libc::SIGINT);
    // The program recorded the forwarded signal (its own ring, read live).
    let start = Instant::now();
    loop {
        let s = stat_sums(&session);
        let get = |k: &str| s.get(k).copied().unwrap_or(0);
        if get("entries") + get("read events") >= 2 {
            break;
        }
        assert!(
            start.elapsed() < HANG_GUARD,
            "SIGINT never reached the program"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(rec.id(), libc::SIGINT);
    let status = wait_child(&mut rec);
    let e = stderr_of(d.path());
    assert_eq!(status.code(), Some(130), "{e}");
    assert!(e.contains("not waiting for"), "{e}");
    let lines = report_lines(&d.path().join("t.dat")).join("\n");
    assert!(lines.contains("ready 1"), "{lines}");
    assert!(lines.contains("got signal 2"), "{lines}\n{e}");
    // Ends the program we left running (our grandchild).
    kill(pid, libc::SIGKILL);
}

/// A program killed by a signal: named, and 128 + its number; the events
/// it wrote are in the file.
fn a_crashed_program_is_named_and_its_status_kept() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("t.dat");
    let mut rec = spawn_record(
        d.path(),
        &[
            "-o",
            out.to_str().unwrap(),
            "--contexts",
            "4",
            "--name",
            &uniq("rec-crash"),
        ],
        &["crash"],
    );
    let status = wait_child(&mut rec);
    let e = stderr_of(d.path());
    assert_eq!(status.code(), Some(128 + libc::SIGSEGV), "{e}");
    assert!(e.contains("killed by SIGSEGV"), "{e}");
    let lines = report_lines(&out).join("\n");
    assert!(lines.contains("about to crash 11"), "{lines}");
}

/// `ringtrace record -o t.dat -- ringtrace demo`: the demo's events are in
/// the file, every one (counted from its loop), none lost.
fn the_demo_can_be_recorded() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("d.dat");
    let (threads, it) = (2u64, 640u64);
    let o = Command::new(ringtrace_bin())
        .args(["record", "-o", out.to_str().unwrap(), "--contexts", "8"])
        .args(["--name", &uniq("rec-demo"), "--", ringtrace_bin(), "demo"])
        .args(["--threads", &threads.to_string()])
        .args(["--iterations", &it.to_string()])
        .output()
        .unwrap();
    let e = text(&o.stderr);
    assert!(o.status.success(), "{e}");
    // Per iteration a printk and a typed event; a marker every 8th; every
    // 64th a SIGUSR1 whose handlers record 3 + 1 events.
    let expected = threads * (2 * it + it.div_ceil(8) + 4 * it.div_ceil(64));
    let f = std::fs::File::open(&out).unwrap();
    let mut r = ringtrace::tracedat::TraceDatReader::new(BufReader::new(f)).unwrap();
    let n = r
        .records()
        .filter(|i| matches!(i, Ok(ringtrace::tracedat::TraceItem::Event(_))))
        .count() as u64;
    assert_eq!(n, expected, "{e}");
    assert!(e.contains(&format!("{expected} events, 0 lost")), "{e}");
    let a = accounting(&e);
    assert_eq!((a.written, a.read), (expected, expected), "{e}");
}

/// Records `n` events of one thread into a kept session of `-b kb` (no
/// reader while it runs, so the loss is exact), extracts it; returns
/// the extract's stderr.
fn burst_then_extract(dir: &Path, mode: &str, kb: u64, n: u64) -> String {
    let name = uniq(&format!("rec-loss-{mode}-{kb}"));
    let o = record_ok(
        &[
            "--mode",
            mode,
            "-b",
            &kb.to_string(),
            "--contexts",
            "2",
            "--name",
            &name,
        ],
        &["burst", "1", &n.to_string()],
    );
    let (session, _) = session_of(&text(&o.stderr));
    let out = dir.join(format!("{name}.dat"));
    let o = ok(&[
        "extract",
        session.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    ok(&["remove", session.to_str().unwrap()]);
    text(&o.stderr)
}

/// The summary explains each context's loss (why, in each mode) and names
/// the `-b` that holds everything; recording again with it loses nothing.
fn the_summary_explains_loss_and_what_holds_it() {
    let d = tempfile::tempdir().unwrap();
    let n = 50_000u64;
    for (mode, why) in [
        ("pc", "dropped: the ring ("),
        (
            "overwrite",
            "overwritten by newer events (overwrite mode keeps the newest ",
        ),
    ] {
        let e = burst_then_extract(d.path(), mode, 64, n);
        // One thread, no reader while it ran: everything it wrote was
        // either extracted or lost to the full ring, in this mode's way.
        let a = accounting(&e);
        assert_eq!(a.written, n, "{e}");
        assert_eq!(a.commit_overruns + a.buffered, 0, "{e}");
        let (lost, other) = if mode == "pc" {
            (a.dropped, a.overwritten)
        } else {
            (a.overwritten, a.dropped)
        };
        assert!(lost > 0 && other == 0, "{e}");
        // The summary's counts are the accounting's (the drain itself
        // sees an overwrite as lost events, a full ring's drops not).
        let drained = if mode == "pc" { 0 } else { lost };
        let summary = format!(
            "{} events, {drained} lost (ring counters: {lost} lost)",
            a.read
        );
        assert!(e.contains(&summary), "{e}");
        let line = e
            .lines()
            .find(|l| l.contains(" lost: "))
            .unwrap_or_else(|| panic!("no loss line: {e}"));
        assert!(line.contains(&format!("{n} written")), "{line}");
        assert!(line.contains(why), "{line}");
        assert_eq!(mode == "pc", line.contains("--mode overwrite"), "{line}");
        let kb: u64 = line
            .split("; -b ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|k| k.parse().ok())
            .unwrap_or_else(|| panic!("no -b in: {line}"));
        println!("  {mode}: {line}");
        let e = burst_then_extract(d.path(), mode, kb, n);
        assert!(e.contains(&format!("{n} events, 0 lost")), "-b {kb}: {e}");
        let a = accounting(&e);
        assert_eq!((a.written, a.read), (n, n), "-b {kb}: {e}");
        assert!(!e.contains(" lost: "), "{e}");
    }
}

/// `record --flight-recorder MB -o OUT` of `threads` threads writing
/// `n` events each, far more than MB megabytes; returns the trace's size
/// in bytes and each thread's kept sequence numbers.
fn flight_record(dir: &Path, mb: u64, threads: u32, n: u64) -> (u64, BTreeMap<u32, Vec<u64>>) {
    let out = dir.join(format!("fr-{threads}.dat"));
    record_ok(
        &[
            "--flight-recorder",
            &mb.to_string(),
            "-o",
            out.to_str().unwrap(),
        ],
        &["burst", &threads.to_string(), &n.to_string()],
    );
    let size = std::fs::metadata(&out).unwrap().len();
    (size, by_thread(&seqs(&report_lines(&out))))
}

/// `--flight-recorder N` keeps about N MB in total over the contexts in
/// use, whatever their number: with 4 threads of the 64 possible
/// contexts, and with 1, the trace holds close to N MB of pages (split
/// over 64 contexts, 4 threads kept 4/64 = 1/16 of it, 1 thread 1/64),
/// and each thread's newest events, without a gap.
fn flight_recorder_keeps_n_mb_over_the_contexts_in_use() {
    let d = tempfile::tempdir().unwrap();
    let mb = 4u64;
    let asked = mb << 20;
    for (threads, n) in [(4u32, 250_000u64), (1, 1_000_000)] {
        let (size, kept) = flight_record(d.path(), mb, threads, n);
        let events: usize = kept.values().map(Vec::len).sum();
        println!(
            "  {threads} threads: trace of {size} bytes for {mb} MB asked ({events} events \
             kept; split over 64 contexts it would hold {} bytes of pages)",
            asked * u64::from(threads) / 64
        );
        // The trace holds the pages kept plus some KB of formats and
        // metadata; the pages are N MB less the 2-page rings of the
        // contexts not in use and the pages being written.
        assert!(size >= asked * 3 / 4, "{threads} threads: {size} bytes");
        assert!(size <= asked + (1 << 20), "{threads} threads: {size} bytes");
        assert_eq!(kept.len(), threads as usize);
        for (w, seqs) in &kept {
            assert_eq!(*seqs.last().unwrap(), n - 1, "thread {w}: the newest kept");
            let first = seqs[0];
            assert_eq!(
                seqs.len() as u64,
                n - first,
                "thread {w}: no gap from {first} on"
            );
        }
    }
}

/// No session file's name holds `name` (the file is `ringtrace-PID-NAME`,
/// perhaps with a random suffix).
fn no_session_named(name: &str) -> bool {
    !std::fs::read_dir("/dev/shm")
        .map(|rd| {
            rd.flatten().any(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with("ringtrace-") && n.contains(name))
            })
        })
        .unwrap_or(false)
}

/// The small failures: each a clear error, no program started when the
/// output cannot be made, no session file left behind.
fn command_line_failures_are_clear() {
    let d = tempfile::tempdir().unwrap();
    let me = me();
    let me = me.to_str().unwrap();
    let out = d.path().join("t.dat");
    let out = out.to_str().unwrap();
    an_unknown_option_is_not_a_program(me, out);
    a_bad_output_directory_starts_nothing(d.path(), me);
    a_program_that_cannot_start_leaves_nothing(out);
    a_name_in_use_is_refused(out);
    a_program_that_never_attached_is_said(out);
}

/// `ringtrace ARGS` fails with status 1; returns its stderr.
fn fails(args: &[&str]) -> String {
    let o = run(args);
    let e = text(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{e}");
    e
}

/// An unknown option is clap's error, not a program to run.
fn an_unknown_option_is_not_a_program(me: &str, out: &str) {
    let o = run(&[
        "record", "--bogus", "x", "-o", out, "--", me, "prog", "touch",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("unexpected argument '--bogus'"),
        "{}",
        text(&o.stderr)
    );
}

/// A bad output directory: the program is not started, no session left.
fn a_bad_output_directory_starts_nothing(d: &Path, me: &str) {
    let started = d.join("started");
    let bad = d.join("no/such/dir/t.dat");
    let e = fails(&[
        "record",
        "--name",
        &uniq("rec-baddir"),
        "-o",
        bad.to_str().unwrap(),
        "--",
        me,
        "prog",
        "touch",
        started.to_str().unwrap(),
    ]);
    assert!(
        e.contains("no/such/dir/t.dat") && e.contains("was not started"),
        "{e}"
    );
    assert!(!started.exists(), "the program ran");
    assert!(
        no_session_named(&uniq("-rec-baddir")),
        "session left behind"
    );
}

/// A program that cannot be started: a clear error, no session left, with
/// `-o` (no placeholder left either) and without.
fn a_program_that_cannot_start_leaves_nothing(out: &str) {
    let name = uniq("rec-nostart");
    let e = fails(&["record", "--name", &name, "-o", out, "--", "/no/such/prog"]);
    assert!(e.contains("cannot start /no/such/prog"), "{e}");
    assert!(
        no_session_named(&uniq("-rec-nostart")),
        "session left behind"
    );
    assert!(!Path::new(out).exists(), "the placeholder stayed");
    // Without -o (a session to keep) too.
    fails(&[
        "record",
        "--name",
        &uniq("rec-nostart2"),
        "--",
        "/no/such/prog",
    ]);
    assert!(
        no_session_named(&uniq("-rec-nostart2")),
        "session left behind"
    );
}

/// A name in use is refused.
fn a_name_in_use_is_refused(out: &str) {
    let o = ok(&["record", "--name", &uniq("rec-taken"), "--", "true"]);
    let (kept, _) = session_of(&text(&o.stderr));
    let e = fails(&[
        "record",
        "--name",
        &uniq("rec-taken"),
        "-o",
        out,
        "--",
        "true",
    ]);
    assert!(
        e.contains(&format!("{:?} is in use", uniq("rec-taken"))),
        "{e}"
    );
    ok(&["remove", kept.to_str().unwrap()]);
}

/// A program that never attached: said, with the reason to check.
fn a_program_that_never_attached_is_said(out: &str) {
    let o = ok(&[
        "record",
        "--name",
        &uniq("rec-never"),
        "-o",
        out,
        "--",
        "true",
    ]);
    let e = text(&o.stderr);
    assert!(e.contains("true never attached to the session"), "{e}");
    assert!(no_session_named(&uniq("-rec-never")));
}

fn main() {
    let tests: &[(&str, fn())] = &[
        (
            "command_line_failures_are_clear",
            command_line_failures_are_clear,
        ),
        ("the_demo_can_be_recorded", the_demo_can_be_recorded),
        (
            "flight_recorder_keeps_n_mb_over_the_contexts_in_use",
            flight_recorder_keeps_n_mb_over_the_contexts_in_use,
        ),
        (
            "the_summary_explains_loss_and_what_holds_it",
            the_summary_explains_loss_and_what_holds_it,
        ),
        (
            "a_crashed_program_is_named_and_its_status_kept",
            a_crashed_program_is_named_and_its_status_kept,
        ),
        (
            "signals_to_record_reach_the_program",
            signals_to_record_reach_the_program,
        ),
        ("kill9_of_record_then_recover", kill9_of_record_then_recover),
        (
            "write_error_keeps_the_session_and_says_how_to_save_it",
            write_error_keeps_the_session_and_says_how_to_save_it,
        ),
    ];
    harness::main_or_prog(prog, tests);
}
