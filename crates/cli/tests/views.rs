//! Live views of sessions, with real processes: `ringtrace show` and
//! `ringtrace snapshot` read a session whose writers never stop (this test
//! binary, re-run as `views prog seq THREADS`, each thread writing events
//! numbered 0, 1, 2, ... as fast as it can), in overwrite mode (no reader:
//! the writers lap the views) and in producer/consumer mode (a live
//! `ringtrace record -o` consumes meanwhile). Every view is checked: within
//! a context, sequence numbers and time stamps strictly increase, and the
//! sequence numbers missing between two events shown are exactly the
//! losses the view reports before the second (a `CPU:N [LOST n EVENTS]`
//! line in `show`, a flagged page in the snapshot's trace.dat). The views
//! consume nothing and leave each ring's accounting identity intact.
//!
//! A large session that is mostly empty is read without a temporary file
//! and with memory and I/O far below the session's size (ratios of the
//! child's peak RSS and of its read/written bytes to the file size).
//!
//! `harness = false`: `main` runs the tests, or the traced program.

mod common;
mod harness;

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{kill, ok, record_piped, ringtrace_bin, text, wait_exit, Recording, HANG_GUARD};

use ringtrace::tracedat::{DecodedRecord, FieldValue, TraceDatReader, TraceItem};

ringtrace::declare_event! {
    /// One write of a writer that never stops: its worker and number.
    pub struct Seq: "views" / "seq" = 1800 { worker: u32, seq: u64 }
}

// --- the traced program -----------------------------------------------------

fn prog(args: &[String]) {
    match args.first().map(String::as_str) {
        Some("seq") => {
            let threads: u32 = args[1].parse().unwrap();
            std::thread::scope(|s| {
                for w in 0..threads {
                    s.spawn(move || {
                        // Every attempt gets the next number, written or
                        // not (a refused write is a gap the ring counts).
                        let mut seq = 0u64;
                        loop {
                            ringtrace::trace_event!(Seq { worker: w, seq });
                            seq += 1;
                        }
                    });
                }
            });
        }
        Some("fill") => {
            // A large session holding few events, made in a process of its
            // own: creating it touches the rings' metadata, which would
            // count in the test process's RSS, which its children start
            // from.
            let mut cfg = ringtrace::session::SessionConfig::new("views-large");
            cfg.dir = Some(PathBuf::from(&args[1]));
            cfg.contexts = 16;
            cfg.bytes_per_context = 16 << 20;
            cfg.mode = ringtrace::Mode::Overwrite;
            let s = ringtrace::session::Session::create(&cfg).unwrap();
            println!("{}", s.path().display());
            let t = ringtrace::Tracer::attach_session(s).unwrap();
            for seq in 0..300u64 {
                ringtrace::trace_event!(&t, Seq { worker: 7, seq });
            }
        }
        other => panic!("unknown prog mode {other:?}"),
    }
}

// --- helpers ------------------------------------------------------------------

/// One context's stream as a view showed it.
#[derive(Debug, Default)]
struct Stream {
    worker: Option<u64>,
    last: Option<(u64, u64)>,
    events: u64,
    /// Losses reported and not yet matched with an event.
    pending: u64,
    /// Losses reported before an event (matched with a gap).
    lost: u64,
}

impl Stream {
    /// Checks the next event of this context: same worker, strictly later
    /// sequence number and time, and a gap of exactly the losses reported
    /// since the previous event. `ts_exact`: `ts` is the raw stamp (a
    /// trace.dat's), not text at microsecond resolution (`show`'s), where
    /// two events a few nanoseconds apart print the same time.
    fn push(&mut self, what: &str, cpu: u64, worker: u64, seq: u64, ts: u64, ts_exact: bool) {
        assert_eq!(
            *self.worker.get_or_insert(worker),
            worker,
            "{what}: context {cpu} shows two workers"
        );
        if let Some((s0, t0)) = self.last {
            assert!(
                seq > s0 && (ts > t0 || (!ts_exact && ts == t0)),
                "{what}: context {cpu} goes back: seq {s0} -> {seq}, time {t0} -> {ts}"
            );
            assert_eq!(
                seq - s0 - 1,
                self.pending,
                "{what}: context {cpu}: {} sequence numbers missing between {s0} and {seq}, \
                 {} reported lost",
                seq - s0 - 1,
                self.pending
            );
            self.lost += self.pending;
        }
        self.pending = 0;
        self.last = Some((seq, ts));
        self.events += 1;
    }
}

/// Checks `show` output; returns (events, losses matched with gaps).
fn check_show(what: &str, out: &str) -> (u64, u64, BTreeMap<u64, Stream>) {
    let mut streams: BTreeMap<u64, Stream> = BTreeMap::new();
    for l in out.lines().filter(|l| !l.starts_with('#')) {
        if let Some(rest) = l.strip_prefix("CPU:") {
            // `CPU:N [LOST n EVENTS]`
            let (cpu, rest) = rest.split_once(' ').unwrap();
            let n = rest
                .strip_prefix("[LOST ")
                .and_then(|r| r.strip_suffix(" EVENTS]"))
                .unwrap_or_else(|| panic!("{what}: bad line {l:?}"));
            streams.entry(cpu.parse().unwrap()).or_default().pending += n.parse::<u64>().unwrap();
            continue;
        }
        // `  comm-tid  [CPU] flags  TIME: seq: worker=W seq=S`
        let cpu = l
            .split_once(" [")
            .and_then(|(_, r)| r.split_once(']'))
            .map(|(c, _)| c.parse::<u64>().unwrap())
            .unwrap_or_else(|| panic!("{what}: no CPU in {l:?}"));
        let field = |name: &str| -> u64 {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("{what}: no {name} in {l:?}"))
                .parse()
                .unwrap()
        };
        // The time stamp: the token before the event name, `SECS.FRAC:`.
        let ts = l
            .split_whitespace()
            .find(|w| w.ends_with(':') && w.contains('.'))
            .map(|w| w.trim_end_matches(':').replace('.', ""))
            .unwrap_or_else(|| panic!("{what}: no time in {l:?}"))
            .parse::<u64>()
            .unwrap();
        streams
            .entry(cpu)
            .or_default()
            .push(what, cpu, field("worker="), field("seq="), ts, false);
    }
    let events = streams.values().map(|s| s.events).sum();
    let lost = streams.values().map(|s| s.lost).sum();
    (events, lost, streams)
}

/// The unsigned field `name` of a decoded record (names are unique in a
/// format), if it has one.
fn unsigned(d: &DecodedRecord, name: &str) -> Option<u64> {
    let (_, v) = d.fields.iter().find(|(n, _)| *n == name)?;
    match v {
        FieldValue::Unsigned(u) => Some(*u),
        _ => None,
    }
}

/// Checks a snapshot's trace.dat; returns (events, losses matched).
fn check_dat(what: &str, dat: &Path) -> (u64, u64) {
    let f = std::fs::File::open(dat).unwrap();
    let mut r = TraceDatReader::new(BufReader::new(f)).unwrap();
    let info = r.info().clone();
    let mut streams: BTreeMap<u64, Stream> = BTreeMap::new();
    for item in r.records() {
        match item.unwrap_or_else(|e| panic!("{what}: {e}")) {
            TraceItem::Lost { cpu, count, .. } => {
                let n = count.unwrap_or_else(|| panic!("{what}: a loss without its count"));
                streams.entry(u64::from(cpu)).or_default().pending += n;
            }
            TraceItem::Event(rec) => {
                let d = info.decode(&rec).unwrap();
                let field = |name: &str| {
                    unsigned(&d, name)
                        .unwrap_or_else(|| panic!("{what}: no {name} in {:?}", d.fields))
                };
                let cpu = u64::from(rec.cpu);
                streams.entry(cpu).or_default().push(
                    what,
                    cpu,
                    field("worker"),
                    field("seq"),
                    rec.ts,
                    true,
                );
            }
        }
    }
    (
        streams.values().map(|s| s.events).sum(),
        streams.values().map(|s| s.lost).sum(),
    )
}

/// Each ring's accounting identity, and no event read by anyone but the
/// consumer `consumed` says there is.
fn check_accounting(path: &Path, consumed: bool) {
    let s = ringtrace::session::Session::open(path).unwrap();
    let buf = s.ring_buffer();
    for r in 0..buf.rings() {
        // SAFETY: the writer process was killed and reaped, and `record`
        // has exited: no writer holds a reservation in any ring.
        let in_flight = unsafe { buf.recover_dead_writer(r) }.unwrap();
        let st = buf.stats(r).unwrap();
        assert_eq!(
            st.written,
            st.read + st.overrun + st.dropped + st.commit_overrun + st.entries,
            "context {r}: {st:?} ({in_flight} in flight)"
        );
        if !consumed {
            assert_eq!(st.read, 0, "context {r}: a view consumed: {st:?}");
        }
    }
}

/// Kills the writer program and the recorder if a check fails midway (they
/// would otherwise write forever), and removes the session file.
struct Cleanup {
    prog: u32,
    rec: Option<Child>,
    path: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // The writer program this test started (through `record`).
        kill(self.prog, libc::SIGKILL);
        if let Some(mut rec) = self.rec.take() {
            let _ = rec.kill();
            let _ = rec.wait();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

// --- tests --------------------------------------------------------------------

/// 10 `show`s and 10 `snapshot`s of a session whose 2 writers never stop.
fn live_views_never_tear(mode: &str) {
    let d = tempfile::tempdir().unwrap();
    let name = format!("views-{mode}-{}", std::process::id());
    let rec_out = d.path().join("rec.dat");
    let mut args: Vec<String> = ["--mode", mode, "--name", &name, "--keep"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--contexts", "4", "-b", "64"].map(String::from));
    if mode == "pc" {
        // A live consumer: the views follow it.
        args.extend(["-o".to_string(), rec_out.display().to_string()]);
    }
    let Recording {
        child: rec,
        mut err,
        path,
        pid,
    } = record_piped(&args, ["seq", "2"]);
    let mut cleanup = Cleanup {
        prog: pid,
        rec: Some(rec),
        path: path.clone(),
    };
    // Drain record's stderr so it never blocks on a full pipe.
    let err_thread = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut rest);
        rest
    });
    let p = path.to_str().unwrap();
    wait_until_both_writers_show(p);
    views_until_each_kind_lost(mode, d.path(), p);
    // Kills the writer program (our grandchild).
    kill(pid, libc::SIGKILL);
    let mut rec = cleanup.rec.take().unwrap();
    wait_exit(&mut rec, "record after its program was killed");
    let rest = err_thread.join().unwrap();
    views_of_a_dead_writer(mode, d.path(), p);
    check_accounting(&path, mode == "pc");
    drop(cleanup);
    if mode == "pc" {
        assert!(rec_out.exists(), "record wrote nothing: {rest}");
    }
}

/// Waits until both writers show in a view of session `p` (hang guard
/// only).
fn wait_until_both_writers_show(p: &str) {
    let start = Instant::now();
    loop {
        let (_, _, streams) = check_show("warm-up", &text(&ok(&["show", p]).stdout));
        if streams.values().filter(|s| s.events >= 100).count() >= 2 {
            break;
        }
        assert!(start.elapsed() < HANG_GUARD, "the writers never show");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `show`s and `snapshot`s (into `dir`) of live session `p`: 10 of each,
/// and more until each kind of view had a loss to count (overwritten or
/// consumed under it); the limit is a hang guard. Each is checked whole.
fn views_until_each_kind_lost(mode: &str, dir: &Path, p: &str) {
    let (mut shown, mut lost_shown, mut snapped, mut lost_snapped) = (0, 0, 0, 0);
    let start = Instant::now();
    let mut k = 0;
    while k < 10 || lost_shown == 0 || lost_snapped == 0 {
        assert!(
            start.elapsed() < HANG_GUARD,
            "{mode}: no view ever lost an event"
        );
        let what = format!("{mode} show {k}");
        let o = ok(&["show", p]);
        let (n, l, streams) = check_show(&what, &text(&o.stdout));
        assert!(streams.len() >= 2 && n > 0, "{what}: {streams:?}");
        shown += n;
        lost_shown += l;

        let what = format!("{mode} snapshot {k}");
        let dat = dir.join(format!("s{k}.dat"));
        ok(&["snapshot", p, "-o", dat.to_str().unwrap()]);
        let (n, l) = check_dat(&what, &dat);
        assert!(n > 0, "{what}: no events");
        snapped += n;
        lost_snapped += l;
        k += 1;
    }
    println!(
        "  {mode}: {k} shows: {shown} events, {lost_shown} lost between them; \
         {k} snapshots: {snapped} events, {lost_snapped} lost between them"
    );
}

/// The session `p` of a killed writer: the views still read it, alike,
/// and say so when the session counts as dead.
fn views_of_a_dead_writer(mode: &str, dir: &Path, p: &str) {
    let dead = text(&ok(&["stat", p]).stdout).contains("state: dead");
    let o = ok(&["show", p]);
    let (n, _, _) = check_show(&format!("{mode} show, writer dead"), &text(&o.stdout));
    assert_eq!(
        text(&o.stderr).contains("died without detaching"),
        dead,
        "{}",
        text(&o.stderr)
    );
    let dat = dir.join("dead.dat");
    ok(&["snapshot", p, "-o", dat.to_str().unwrap()]);
    let (m, _) = check_dat(&format!("{mode} snapshot, writer dead"), &dat);
    assert_eq!(n, m, "show and snapshot of a quiet session differ");
    if mode == "overwrite" {
        // Nothing consumed them: the rings' last events are all there.
        assert!(n > 0, "no events after the writer died");
    }
}

fn live_views_overwrite() {
    live_views_never_tear("overwrite");
}

fn live_views_producer_consumer_under_record() {
    live_views_never_tear("pc");
}

/// What a finished child used, read before it is reaped.
struct Usage {
    /// Peak resident set, bytes (`ru_maxrss`: mapped session pages it
    /// touched included).
    max_rss: u64,
    /// Bytes it read and wrote through system calls (`rchar + wchar` of
    /// `/proc/PID/io`: a copy of the session would count twice its size).
    io: u64,
}

/// Runs `ringtrace ARGS` with `TMPDIR` set and measures it.
// The child is reaped by `wait4` (for its resource usage), not `wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str], tmpdir: &Path) -> Usage {
    let child = Command::new(ringtrace_bin())
        .args(args)
        .env("TMPDIR", tmpdir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut err = child.stderr.unwrap();
    let err_thread = std::thread::spawn(move || {
        let mut e = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut e);
        e
    });
    // Wait for the exit but leave the zombie, to read its I/O counters.
    // SAFETY: `info` is a valid siginfo_t to fill; `pid` is our child.
    let r = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(r, 0, "waitid: {}", std::io::Error::last_os_error());
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap();
    let counter = |name: &str| -> u64 {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let io = counter("rchar:") + counter("wchar:");
    let mut status = 0;
    // SAFETY: reaps our child; `status` and `ru` are valid to fill.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        assert_eq!(libc::wait4(pid, &mut status, 0, &mut ru), pid);
        ru
    };
    let e = err_thread.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "ringtrace {args:?}: status {status}\n{e}"
    );
    Usage {
        max_rss: ru.ru_maxrss as u64 * 1024,
        io,
    }
}

/// `show` and `snapshot` of a session of 16 contexts of 16 MiB (more
/// with its room to grow) holding 300 events: no
/// temporary file, and memory and I/O a small fraction of the session.
fn large_empty_session_is_read_in_place() {
    let d = tempfile::tempdir().unwrap();
    let o = Command::new(std::env::current_exe().unwrap())
        .args(["prog", "fill"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let path = PathBuf::from(text(&o.stdout).trim());
    let size = std::fs::metadata(&path).unwrap().len();
    let p = path.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let dat = out.join("s.dat");
    let json = out.join("s.json");
    for args in [
        vec!["show", p],
        vec!["snapshot", p, "-o", dat.to_str().unwrap()],
        vec!["snapshot", p, "-o", json.to_str().unwrap()],
    ] {
        let u = run_measured(&args, tmp.path());
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} left files in TMPDIR: {left:?}");
        println!(
            "  {}: session {} MiB, peak RSS {:.2}% of it, I/O {:.3}% of it",
            args[0],
            size >> 20,
            100.0 * u.max_rss as f64 / size as f64,
            100.0 * u.io as f64 / size as f64
        );
        // Ratios, not times: reading in place touches a page or two of the
        // one context written (the peak is mostly the program itself); a
        // copy reads and writes the whole file.
        assert!(
            u.max_rss * 32 < size,
            "{args:?}: peak RSS {} for a {size}-byte session",
            u.max_rss
        );
        assert!(
            u.io * 64 < size,
            "{args:?}: {} bytes read and written for a {size}-byte session",
            u.io
        );
    }
    let (n, lost) = check_dat("large snapshot", &dat);
    assert_eq!((n, lost), (300, 0));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let seqs: Vec<u64> = v["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["name"] == "seq")
        .map(|e| e["args"]["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..300).collect::<Vec<_>>());
    let (n, _, _) = check_show("large show", &text(&ok(&["show", p]).stdout));
    assert_eq!(n, 300);
}

fn main() {
    let tests: &[(&str, fn())] = &[
        ("live_views_overwrite", live_views_overwrite),
        (
            "live_views_producer_consumer_under_record",
            live_views_producer_consumer_under_record,
        ),
        (
            "large_empty_session_is_read_in_place",
            large_empty_session_is_read_in_place,
        ),
    ];
    harness::main_or_prog(prog, tests);
}
