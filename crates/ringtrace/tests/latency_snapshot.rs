//! Latency snapshots (`update_max_tr`) under load: a section that is
//! usually fast and sometimes slow (a sleep injected at random), while
//! other threads write and a timer signal storm records from handlers on
//! the section's thread. The kept snapshot must hold the slowest instance
//! and the events leading up to it, in order, the live rings what came
//! after; and every record the test made must be accounted for exactly
//! once: in the live rings, the snapshot, a replaced snapshot, or a
//! counted refusal.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ringtrace::latency::{Latency, LatencyStats};
use ringtrace::{Tracer, TracerConfig};
use ringtrace_ring::{Mode, RingStats};

static TRACER: OnceLock<Tracer> = OnceLock::new();
static HANDLER_RUNS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's timer (a `timer_t`, of which 0 is a valid one);
    /// `NO_TIMER`: none. Const, no destructor.
    static TIMER: Cell<usize> = const { Cell::new(NO_TIMER) };
    static ARMED: Cell<bool> = const { Cell::new(false) };
}

const NO_TIMER: usize = usize::MAX;
const SECTIONS: u64 = 300;
const OTHER_WRITERS: u32 = 2;
const PERIOD_NS: i64 = 40_000;
/// Handler records at most: 8000 records of 40 bytes fill a third of a
/// 1 MiB ring.
const MAX_SIGNALS: u64 = 8000;

extern "C" fn on_alarm(_sig: libc::c_int) {
    // SAFETY: errno's location is always valid; restored at the end.
    let errno = unsafe { *libc::__errno_location() };
    if ARMED.get() {
        if let Some(t) = TRACER.get() {
            let n = HANDLER_RUNS.fetch_add(1, Ordering::Relaxed);
            let _scope = ringtrace::signal_scope();
            ringtrace::trace!(tracer: t, "sig %llu", n);
        }
        // A bounded storm: it can never fill the worker's ring (whose
        // earlier events would then be overwritten, counted but gone), nor
        // starve a descheduled worker on a loaded machine.
        if HANDLER_RUNS.load(Ordering::Relaxed) < MAX_SIGNALS {
            arm(TIMER.get(), PERIOD_NS);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

fn arm(timer: usize, ns: i64) {
    if timer == NO_TIMER {
        return;
    }
    let shot = libc::itimerspec {
        it_interval: libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: libc::timespec {
            tv_sec: 0,
            tv_nsec: ns,
        },
    };
    // SAFETY: `timer` is this thread's, from timer_create, not deleted yet.
    unsafe { libc::timer_settime(timer as libc::timer_t, 0, &shot, std::ptr::null_mut()) };
}

/// A one-shot timer aimed at this thread, re-armed by each handler.
fn start_signals() {
    // SAFETY: plain system calls with valid structs, for this thread.
    let timer = unsafe {
        let mut sev: libc::sigevent = std::mem::zeroed();
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = libc::SIGALRM;
        sev.sigev_notify_thread_id = libc::gettid();
        let mut id: libc::timer_t = std::mem::zeroed();
        let rc = libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id);
        assert_eq!(rc, 0, "timer_create: {}", std::io::Error::last_os_error());
        id as usize
    };
    TIMER.set(timer);
    ARMED.set(true);
    arm(timer, PERIOD_NS);
}

fn stop_signals() {
    ARMED.set(false);
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    let timer = TIMER.replace(NO_TIMER);
    arm(timer, 0);
    // SAFETY: created by `start_signals` on this thread, disarmed, and no
    // handler re-arms it any more (ARMED is clear).
    unsafe { libc::timer_delete(timer as libc::timer_t) };
}

/// xorshift64*: the injected sleeps, from a seed printed on failure.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Runs the sections; returns each one's duration in ns.
fn run_sections(t: &Tracer, lat: &Latency, seed: u64) -> Vec<u64> {
    let mut rng = seed | 1;
    let mut ds = Vec::new();
    ringtrace::trace!(tracer: t, "worker starts");
    start_signals();
    for i in 0..SECTIONS {
        ringtrace::trace!(tracer: t, "step %llu", i);
        let r = next(&mut rng);
        let start = Instant::now();
        if r % 8 == 0 {
            std::thread::sleep(Duration::from_micros(100 + r / 8 % 3000));
        }
        let d = start.elapsed();
        lat.end(d);
        ds.push(d.as_nanos() as u64);
    }
    stop_signals();
    ds
}

/// A printk line's time stamp and text: `COMM-TID [CPU] FLAGS TS: FILE:LINE: TEXT`.
fn parse_line(l: &str) -> Option<(u64, &str)> {
    let (_, rest) = l.split_once("] ")?;
    let ts = rest
        .split_whitespace()
        .nth(1)?
        .trim_end_matches(':')
        .parse()
        .ok()?;
    let (_, after_file) = rest.split_once(".rs:")?;
    Some((ts, after_file.split_once(": ")?.1))
}

/// The worker's lines (`step I`, `latency: NAME D ns`) in read order, as
/// (step, None) or (latest step, Some(D)).
fn worker_lines(text: &str) -> Vec<(u64, Option<u64>)> {
    let mut out = Vec::new();
    let mut step = u64::MAX;
    for (_, s) in text.lines().filter_map(parse_line) {
        if let Some(n) = s.strip_prefix("step ") {
            step = n.trim().parse().unwrap();
            out.push((step, None));
        } else if let Some(rest) = s.strip_prefix("latency: db_commit ") {
            let ns = rest.trim_end_matches(" ns").trim().parse().unwrap();
            out.push((step, Some(ns)));
        }
    }
    out
}

fn sum_stats(buf: &ringtrace::ring::RingBuffer) -> (u64, u64) {
    let (mut attempts, mut committed) = (0, 0);
    for r in 0..buf.rings() {
        let s: RingStats = buf.stats(r).unwrap();
        assert_eq!(
            s.written,
            s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
            "ring {r}: {s:?}"
        );
        attempts += s.written + s.refused;
        committed += s.committed;
    }
    (attempts, committed)
}

/// Runs the sections on a thread of their own while `OTHER_WRITERS`
/// threads write (counted in `others`); returns the sections' durations.
fn run_under_load(t: &'static Tracer, lat: &Latency, seed: u64, others: &AtomicU64) -> Vec<u64> {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        for th in 0..OTHER_WRITERS {
            let stop = &stop;
            s.spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    ringtrace::trace!(tracer: t, "other %u %llu", th, i);
                    others.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    if i % 64 == 0 {
                        std::thread::yield_now();
                    }
                }
            });
        }
        let ds = s.spawn(|| run_sections(t, lat, seed)).join();
        // Before a panic of the worker propagates: the scope waits for
        // the other writers.
        stop.store(true, Ordering::Relaxed);
        ds.unwrap()
    })
}

#[test]
fn kept_snapshot_holds_the_slowest_section_and_what_led_up_to_it() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("seed {seed}");
    let t = TRACER.get_or_init(|| {
        TracerConfig::new()
            .max_contexts(4)
            .bytes_per_context(1 << 20)
            .mode(Mode::Overwrite)
            .build()
            .unwrap()
    });
    // SAFETY: the handler only records (async-signal-safe) and re-arms a
    // timer.
    unsafe {
        ringtrace::signal::install(
            libc::SIGALRM,
            ringtrace::signal::Handler::Plain(on_alarm),
            libc::SA_RESTART,
        )
    }
    .unwrap();
    let lat = Latency::new(t, "db_commit", None).unwrap();
    let others = AtomicU64::new(0);
    let ds = run_under_load(t, &lat, seed, &others);
    let st: LatencyStats = lat.stats();
    assert_eq!(st.failed, 0, "{st:?}");
    assert_eq!(st.beaten, 0, "one thread ends sections: {st:?}");
    assert_eq!(st.sections, SECTIONS);
    let (k, &max) = ds.iter().enumerate().max_by_key(|(_, &d)| d).unwrap();
    let snap = lat.take_max().expect("a snapshot is kept");
    assert_eq!(snap.info.latency_ns, max, "the slowest section is kept");
    assert_eq!(lat.max_ns(), max);
    // The snapshot began where the previous one (the max before k) ended.
    let first = ds[..k]
        .iter()
        .enumerate()
        .max_by_key(|(_, &d)| d)
        .map_or(0, |(p, _)| p as u64 + 1);
    let (snap_attempts, _) = sum_stats(snap.tracer.ring_buffer());
    let text = snap.tracer.pipe().read_to_string().unwrap();
    let lines = worker_lines(&text);
    let expect: Vec<(u64, Option<u64>)> = (first..=k as u64)
        .flat_map(|i| [(i, None), (i, Some(ds[i as usize]))])
        .collect();
    let head: Vec<&str> = text.lines().take(6).collect();
    assert_eq!(
        lines, expect,
        "the worker's lines in the snapshot, in order: {head:#?}"
    );
    assert_in_order(&text);
    // The live rings hold what came after, from step k + 1.
    let (live_attempts, _) = sum_stats(t.ring_buffer());
    let live = t.pipe().read_to_string().unwrap();
    let after = worker_lines(&live);
    let expect_after: Vec<(u64, Option<u64>)> = (k as u64 + 1..SECTIONS)
        .flat_map(|i| [(i, None), (i, Some(ds[i as usize]))])
        .collect();
    assert_eq!(after, expect_after, "the worker's lines after the max");
    assert_in_order(&live);
    // Exact accounting over the live rings, the snapshot and the ones it
    // replaced: every record attempted once, refusals counted.
    let ts = t.stats();
    let made =
        1 + 2 * SECTIONS + others.load(Ordering::Relaxed) + HANDLER_RUNS.load(Ordering::Relaxed);
    let refused = ts.refused_no_context + ts.refused_in_signal_handler + ts.refused_other;
    assert_eq!(
        live_attempts + snap_attempts + st.replaced.written + st.replaced.refused + refused,
        made,
        "{st:?} {ts:?}"
    );
    eprintln!(
        "handler records {}, {st:?}",
        HANDLER_RUNS.load(Ordering::Relaxed)
    );
    assert!(
        HANDLER_RUNS.load(Ordering::Relaxed) > 0,
        "the signal storm ran"
    );
    assert!(st.kept >= 1 && st.kept as usize <= ds.len());
}

/// Time stamps never go back in a merged read, and every line parses.
fn assert_in_order(text: &str) {
    let mut last = 0;
    // `CPU:N [LOST K EVENTS]` lines report overwritten (counted) events.
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.contains("[LOST "))
    {
        let (ts, _) = parse_line(l).unwrap_or_else(|| panic!("unexpected line {l:?}"));
        assert!(ts >= last, "time went back at {l:?}");
        last = ts;
    }
}

/// The kept snapshot exports to trace.dat as any tracer does: its events
/// and the thread names of the live tracer, read back by the trace.dat
/// reader.
#[test]
fn the_kept_snapshot_exports_to_trace_dat() {
    use ringtrace::tracedat::{TraceDatReader, TraceDatVersion, TraceItem};
    let t = TracerConfig::new().max_contexts(2).build().unwrap();
    let lat = Latency::new(&t, "export_me", None).unwrap();
    for i in 0..10u64 {
        ringtrace::trace!(tracer: &t, "before %llu", i);
    }
    lat.end(Duration::from_millis(3));
    ringtrace::trace!(tracer: &t, "after");
    let snap = lat.take_max().unwrap();
    assert_eq!(snap.info.latency_ns, 3_000_000);
    assert_eq!(snap.info.tid, ringtrace::context::current_tid());
    let entries: u64 = (0..2)
        .map(|r| snap.tracer.ring_stats(r).unwrap().entries)
        .sum();
    assert_eq!(entries, 11, "10 before, and the section's own line");
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("max.dat");
    let f = std::fs::File::create(&path).unwrap();
    snap.tracer
        .drain()
        .finish(f, ringtrace::ExportFormat::TraceDat(TraceDatVersion::V6))
        .unwrap();
    let mut r = TraceDatReader::open(&path).unwrap();
    let tid = ringtrace::context::current_tid();
    assert!(
        r.info().cmdlines.iter().any(|(p, _)| *p == tid),
        "the thread's name is in the file: {:?}",
        r.info().cmdlines
    );
    let mut events = 0;
    for item in r.records() {
        match item.unwrap() {
            TraceItem::Event(_) => events += 1,
            other => panic!("nothing lost in a snapshot: {other:?}"),
        }
    }
    assert_eq!(events, 11);
    // What came after the section stayed live.
    let live = t.pipe().read_to_string().unwrap();
    assert!(live.ends_with(": after\n"), "{live}");
}
