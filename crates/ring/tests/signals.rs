//! Nesting with real signals: the main thread writes in a loop while
//! `setitimer(ITIMER_REAL)` fires thousands of times a second and the
//! SIGALRM handler writes into the same ring (one-shot, re-armed by the
//! handler as it returns, so the writer always runs between two handlers
//! however loaded the machine: a periodic timer can outpace a descheduled
//! thread and starve it); a reader thread consumes
//! concurrently. Afterwards every event is intact and accounted for, each
//! nested event sits after the reservation it interrupted and before the
//! next one, and time stamps never go backwards.
//!
//! `harness = false`: the test runs on the process's main thread, and the
//! reader thread blocks SIGALRM, so the signals land on the writer.

mod common;

use common::{assert_identity, fill};
use ringtrace_ring::{Config, Mode, RingBuffer, RingStats, WriteError, Writer};
use std::cell::Cell;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicPtr, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

const OUTER: u8 = 1;
const NESTED: u8 = 2;
const NO_OUTER: u64 = u64::MAX;

static BUF: AtomicPtr<RingBuffer> = AtomicPtr::new(std::ptr::null_mut());
/// seq + 1 of the outer event between reserve and commit, or 0.
static IN_FLIGHT: AtomicU64 = AtomicU64::new(0);
static CLOCK: AtomicU64 = AtomicU64::new(1);
static NESTED_SEQ: AtomicU64 = AtomicU64::new(0);
static NESTED_FAILED: AtomicU64 = AtomicU64::new(0);
static MID_WRITE: AtomicU64 = AtomicU64::new(0);
static FOREIGN: AtomicU64 = AtomicU64::new(0);
/// The handler arms the next shot while this is set.
static TIMER_ON: AtomicBool = AtomicBool::new(false);
/// The wait between a handler's end and the next signal.
const PERIOD_US: i64 = 50;

thread_local! {
    // const-initialised, no destructor: safe to touch in a handler.
    static IS_WRITER: Cell<bool> = const { Cell::new(false) };
}

extern "C" fn on_alarm(_: libc::c_int) {
    // SAFETY: errno is thread-local; saved and restored around the handler.
    let errno = unsafe { *libc::__errno_location() };
    if !IS_WRITER.with(|w| w.get()) {
        FOREIGN.fetch_add(1, Relaxed);
    } else {
        let buf = BUF.load(Acquire);
        if !buf.is_null() {
            let outer = IN_FLIGHT.load(Relaxed);
            if outer != 0 {
                MID_WRITE.fetch_add(1, Relaxed);
            }
            let seq = NESTED_SEQ.fetch_add(1, Relaxed);
            let mut payload = [0u8; 64];
            let len = 24 + (seq % 40) as usize;
            fill(&mut payload[..len], NESTED, seq, outer.wrapping_sub(1));
            // SAFETY: BUF points to a leaked buffer; this handler interrupts
            // the thread holding ring 0's writer and completes before it resumes.
            let buf = unsafe { &*buf };
            // SAFETY: as above.
            let result = unsafe { buf.nested_writer(0) }
                .map_err(|_| ())
                .and_then(|mut w| {
                    w.write(CLOCK.fetch_add(1, Relaxed), &payload[..len])
                        .map_err(|_| ())
                });
            if result.is_err() {
                NESTED_FAILED.fetch_add(1, Relaxed);
            }
        }
    }
    // Re-armed whichever thread took the signal, so that no shot can end
    // the chain.
    if TIMER_ON.load(Relaxed) {
        arm(PERIOD_US);
    }
    // SAFETY: restore errno.
    unsafe { *libc::__errno_location() = errno };
}

/// Starts (a shot in `PERIOD_US`, re-armed by each handler) or stops the
/// writer's signals. Called by the writer thread, the only one that takes
/// SIGALRM: a handler interrupting `set_timer(false)` either sees
/// `TIMER_ON` clear and does not re-arm, or re-arms before the disarm.
fn set_timer(on: bool) {
    TIMER_ON.store(on, Relaxed);
    compiler_fence(SeqCst);
    arm(if on { PERIOD_US } else { 0 });
}

/// Blocks or unblocks SIGALRM in the calling thread.
fn sigalrm_mask(how: libc::c_int) {
    common::mask_signals(how, [libc::SIGALRM]);
}

/// One `ITIMER_REAL` shot in `us` microseconds (0 disarms).
fn arm(us: i64) {
    let it = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 0,
            tv_usec: us as libc::suseconds_t,
        },
    };
    // SAFETY: plain system call with a valid struct (async-signal-safe).
    let rc = unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
    debug_assert_eq!(rc, 0, "setitimer failed");
}

/// How many signals must land inside a write. In producer/consumer mode
/// the writer mostly waits for the reader (a full ring refuses at once), so
/// fewer signals land inside a write.
fn mid_write_wanted(mode: Mode) -> u64 {
    if mode == Mode::Overwrite {
        1000
    } else {
        100
    }
}

/// Stops a run that cannot reach its count (a hang, not a slow machine).
const HANG_GUARD: Duration = Duration::from_secs(600);

struct Read {
    kind: u8,
    seq: u64,
    reference: u64,
    ts: u64,
    lost: u64,
}

/// How the main thread writes its events.
#[derive(Clone, Copy, Debug)]
enum Api {
    /// `reserve`, fill, `commit`.
    Reserve,
    /// `write_with_fast`, and `write_with` when it says to start over (the
    /// tracer's record path): its page moves end the write and start again.
    Fast,
}

fn run(mode: Mode, api: Api, duration: Duration) -> Result<String, String> {
    let ptr = Box::into_raw(Box::new(
        RingBuffer::new(Config::new(1).pages_per_ring(8).mode(mode)).unwrap(),
    ));
    // SAFETY: `ptr` stays valid until it is freed below.
    let result = run_on(unsafe { &*ptr }, mode, api, duration);
    // The timer is stopped; a late signal on this thread sees null.
    BUF.store(std::ptr::null_mut(), Release);
    // SAFETY: nothing refers to the buffer any more.
    drop(unsafe { Box::from_raw(ptr) });
    result
}

fn run_on(buf: &RingBuffer, mode: Mode, api: Api, duration: Duration) -> Result<String, String> {
    NESTED_SEQ.store(0, Relaxed);
    NESTED_FAILED.store(0, Relaxed);
    MID_WRITE.store(0, Relaxed);
    BUF.store(buf as *const RingBuffer as *mut RingBuffer, Release);
    let done = AtomicBool::new(false);
    let (outer_written, outer_failed, read) = std::thread::scope(|s| {
        // The reader starts with SIGALRM blocked (a new thread inherits the
        // mask), so every shot lands on the writer.
        sigalrm_mask(libc::SIG_BLOCK);
        let reader = s.spawn(|| read_until_done(buf, &done));
        sigalrm_mask(libc::SIG_UNBLOCK);
        let (seq, failed) = write_outer(buf, mode, api, duration);
        done.store(true, Release);
        (seq, failed, reader.join().unwrap())
    });
    let (events, pending) = read;
    let s = buf.stats(0).unwrap();
    assert_identity(&s, 0);
    let nested_written = NESTED_SEQ.load(Relaxed);
    check_counts(&s, outer_written, outer_failed, &events, pending)?;
    let checked = check_order(&events)?;
    let mid = MID_WRITE.load(Relaxed);
    if mid < mid_write_wanted(mode) {
        return Err(format!("only {mid} signals landed mid-write"));
    }
    Ok(format!(
        "{mode:?}: {outer_written} outer + {nested_written} nested writes, {mid} signals mid-write \
         ({checked} order-checked), read {}, overrun {}, dropped {}, commit overrun {}, foreign {}",
        s.read, s.overrun, s.dropped, s.commit_overrun, FOREIGN.load(Relaxed)
    ))
}

/// The reader thread: consumes (and checks) every event until the writer
/// is `done` and the ring is empty; returns the events and the losses
/// still pending at the end.
fn read_until_done(buf: &RingBuffer, done: &AtomicBool) -> (Vec<Read>, u64) {
    let mut out = Vec::new();
    let pending = common::consume_until_done(
        buf,
        done,
        256,
        |ev, d| {
            out.push(Read {
                kind: d.kind,
                seq: d.seq,
                reference: d.reference,
                ts: ev.timestamp,
                lost: ev.lost_events,
            })
        },
        |any| {
            if !any {
                // An empty ring while the writer writes: a reader that
                // missed events shows in the final accounting.
                std::thread::yield_now();
            }
        },
    );
    (out, pending)
}

/// The writer (this thread, which the timer's signals interrupt): writes
/// outer events through `api` for at least `duration` and until enough
/// signals landed mid-write; returns the writes attempted and the failed.
fn write_outer(buf: &RingBuffer, mode: Mode, api: Api, duration: Duration) -> (u64, u64) {
    IS_WRITER.with(|w| w.set(true));
    let mut w = buf.writer(0).unwrap();
    set_timer(true);
    let start = Instant::now();
    let mut scratch = [0u8; 600];
    let (mut seq, mut failed) = (0u64, 0u64);
    // Write for at least `duration`, and on until enough signals
    // landed inside a write: a loaded machine gives the writer less
    // CPU, so the end is a count, not a time (the hang guard only
    // stops a run that can never get there).
    let wanted = mid_write_wanted(mode);
    while start.elapsed() < duration || MID_WRITE.load(Relaxed) < wanted {
        assert!(
            start.elapsed() < HANG_GUARD,
            "hang guard: {} signals mid-write after {:?}",
            MID_WRITE.load(Relaxed),
            HANG_GUARD
        );
        for _ in 0..256 {
            let len = 24 + (seq.wrapping_mul(2654435761) % 500) as usize;
            let ts = CLOCK.fetch_add(1, Relaxed);
            let written = write_one(&mut w, api, ts, seq, &mut scratch[..len]);
            compiler_fence(SeqCst);
            IN_FLIGHT.store(0, Relaxed);
            // A signal every 50 us and a slow (sanitized) handler: the
            // helper yields on `Full`, never sleeps.
            common::refused_if_full(written, &mut failed, || "outer write".into());
            seq += 1;
        }
    }
    set_timer(false);
    drop(w);
    (seq, failed)
}

/// One outer write of `scratch.len()` bytes through `api`, announcing it in
/// `IN_FLIGHT` once reserved (the handler's nested events refer to it).
fn write_one(
    w: &mut Writer<'_>,
    api: Api,
    ts: u64,
    seq: u64,
    scratch: &mut [u8],
) -> Result<(), WriteError> {
    let len = scratch.len();
    match api {
        Api::Reserve => w.reserve(ts, len).map(|mut r| {
            IN_FLIGHT.store(seq + 1, Relaxed);
            compiler_fence(SeqCst);
            fill(scratch, OUTER, seq, NO_OUTER);
            r.copy_from_slice(scratch);
            r.commit();
        }),
        Api::Fast => {
            let fill_in = |b: &mut [u8]| {
                IN_FLIGHT.store(seq + 1, Relaxed);
                compiler_fence(SeqCst);
                fill(b, OUTER, seq, NO_OUTER);
                true
            };
            match w.write_with_fast(ts, len, fill_in) {
                Some(r) => r,
                None => w.write_with(ts, len, fill_in),
            }
            .map(|kept| assert!(kept))
        }
    }
}

/// The totals: every write counted once, everything read, every loss
/// reported, every failed write counted as dropped.
fn check_counts(
    s: &RingStats,
    outer_written: u64,
    outer_failed: u64,
    events: &[Read],
    pending: u64,
) -> Result<(), String> {
    let nested_written = NESTED_SEQ.load(Relaxed);
    if s.written != outer_written + nested_written {
        return Err(format!(
            "written {} != {} outer + {} nested",
            s.written, outer_written, nested_written
        ));
    }
    if s.entries != 0 || events.len() as u64 != s.read {
        return Err(format!("not drained: {s:?}"));
    }
    let lost: u64 = events.iter().map(|e| e.lost).sum::<u64>() + pending;
    if lost != s.overrun + s.dropped + s.commit_overrun {
        return Err(format!("reported {lost} lost, counters say {s:?}"));
    }
    if outer_failed + NESTED_FAILED.load(Relaxed) != s.dropped + s.commit_overrun {
        return Err(format!(
            "{outer_failed} + {} failed writes vs {s:?}",
            NESTED_FAILED.load(Relaxed)
        ));
    }
    Ok(())
}

/// Order: each nested event after the reservation it interrupted and
/// before the next outer event; time never goes backwards. Returns how
/// many nested events were checked against their outer one.
fn check_order(events: &[Read]) -> Result<usize, String> {
    let mut outer_pos = std::collections::HashMap::new();
    for (i, e) in events.iter().enumerate() {
        if e.kind == OUTER {
            outer_pos.insert(e.seq, i);
        }
    }
    let mut checked = 0;
    for (i, e) in events.iter().enumerate() {
        if i > 0 && e.ts < events[i - 1].ts {
            return Err(format!("time went backwards at event {i}"));
        }
        if e.kind == NESTED && e.reference != NO_OUTER {
            if let Some(&p) = outer_pos.get(&e.reference) {
                if p >= i {
                    return Err(format!(
                        "nested {} read before the outer {} it interrupted",
                        e.seq, e.reference
                    ));
                }
                checked += 1;
            }
            if let Some(&p) = outer_pos.get(&(e.reference + 1)) {
                if p <= i {
                    return Err(format!(
                        "nested {} read after outer {}",
                        e.seq,
                        e.reference + 1
                    ));
                }
            }
        }
    }
    Ok(checked)
}

fn main() {
    // SAFETY: installing a handler that only touches atomics, const
    // thread-locals and the ring's write path (async-signal-safe).
    unsafe { common::install_handler(libc::SIGALRM, on_alarm) };
    let seconds = std::env::var("RINGTRACE_SIGNAL_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let mut failed = 0;
    let mut passed = 0;
    for api in [Api::Reserve, Api::Fast] {
        for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
            match run(mode, api, Duration::from_secs(seconds)) {
                Ok(summary) => {
                    passed += 1;
                    println!("test signals::{api:?}::{mode:?} ... ok\n  {summary}");
                }
                Err(e) => {
                    failed += 1;
                    println!("test signals::{api:?}::{mode:?} ... FAILED\n  {e}");
                }
            }
        }
    }
    println!("\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out", if failed == 0 { "ok" } else { "FAILED" });
    if failed > 0 {
        std::process::exit(1);
    }
}
