//! Nesting cost: ringtrace's write cost while a `timer_create(CLOCK_MONOTONIC,
//! SIGEV_THREAD_ID)` timer fires about 20,000 times a second at the writing
//! thread, and its handler writes into the same ring through
//! `RingBuffer::nested_writer`.
//!
//! Three variants, interleaved repetition by repetition: no timer; timer with
//! a handler that only counts (the cost of signal delivery); timer with a
//! handler that writes (delivery plus the nested write). The handler touches
//! only atomics and the ring, and saves and restores `errno`.

use crate::clock;
use crate::sinks::{bench_ring, RING_PAGES};
use crate::stats::Summary;
use crate::Settings;
use ringtrace_ring::{Mode, RingBuffer};
use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

/// Timer period: short enough that many signals land inside a write.
pub const PERIOD: Duration = Duration::from_micros(50);

/// The buffer the handler writes to; null while it must not write.
static NEST_BUF: AtomicPtr<RingBuffer> = AtomicPtr::new(ptr::null_mut());
static SIGNALS: AtomicU64 = AtomicU64::new(0);
static NESTED_OK: AtomicU64 = AtomicU64::new(0);
static NESTED_FAILED: AtomicU64 = AtomicU64::new(0);
const NESTED_PAYLOAD: [u8; 8] = *b"nestedev";

/// The timer's signal handler: async-signal-safe (atomics, the ring's
/// lockless write path, `rdtsc`; no allocation, no lock, no thread-local).
extern "C" fn on_timer(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // SAFETY: `__errno_location` returns this thread's errno slot.
    let errno = unsafe { libc::__errno_location() };
    // SAFETY: the slot is valid for the thread's lifetime.
    let saved = unsafe { *errno };
    SIGNALS.fetch_add(1, Relaxed);
    // Acquire: pairs with the Release store in `measure`, so the buffer is
    // fully built before the handler uses it.
    let buf = NEST_BUF.load(Acquire);
    if !buf.is_null() {
        // SAFETY: `NEST_BUF` points at a buffer that outlives every signal
        // of the timer (it is cleared and the timer deleted before the
        // buffer drops), and the timer only interrupts the thread that holds
        // ring 0's writer: this is a handler nested in its owner, as
        // `nested_writer` requires.
        let result = unsafe { (*buf).nested_writer(0) }
            .map_err(|_| ())
            .and_then(|mut w| w.write(clock::tsc(), &NESTED_PAYLOAD).map_err(|_| ()));
        match result {
            Ok(()) => NESTED_OK.fetch_add(1, Relaxed),
            Err(()) => NESTED_FAILED.fetch_add(1, Relaxed),
        };
    }
    // SAFETY: as above.
    unsafe { *errno = saved };
}

/// The signal the timer sends.
fn timer_signal() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

/// A `timer_create` timer aimed at the calling thread.
struct ThreadTimer {
    id: libc::timer_t,
}

impl ThreadTimer {
    fn start(period: Duration) -> Result<ThreadTimer, String> {
        // SAFETY: `gettid` has no preconditions.
        let tid = unsafe { libc::syscall(libc::SYS_gettid) } as libc::pid_t;
        // SAFETY: an all-zero `sigevent` is a valid value; we fill it below.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = timer_signal();
        sev.sigev_notify_thread_id = tid;
        let mut id: libc::timer_t = ptr::null_mut();
        // SAFETY: valid pointers to a filled `sigevent` and an out slot.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut sev, &mut id) } != 0 {
            return Err(format!("timer_create: {}", std::io::Error::last_os_error()));
        }
        let ts = libc::timespec {
            tv_sec: period.as_secs() as libc::time_t,
            tv_nsec: period.subsec_nanos() as libc::c_long,
        };
        let spec = libc::itimerspec {
            it_interval: ts,
            it_value: ts,
        };
        // SAFETY: `id` is the timer just created; `spec` is valid.
        if unsafe { libc::timer_settime(id, 0, &spec, ptr::null_mut()) } != 0 {
            let e = std::io::Error::last_os_error();
            // SAFETY: deleting the timer we created.
            unsafe { libc::timer_delete(id) };
            return Err(format!("timer_settime: {e}"));
        }
        Ok(ThreadTimer { id })
    }
}

impl Drop for ThreadTimer {
    fn drop(&mut self) {
        // SAFETY: deletes the timer this value owns; it stops firing.
        unsafe { libc::timer_delete(self.id) };
    }
}

/// Installs the handler; restores the previous action on drop.
struct Handler {
    old: libc::sigaction,
}

impl Handler {
    fn install() -> Result<Handler, String> {
        // SAFETY: all-zero is a valid `sigaction`; filled below.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_timer as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        // SAFETY: `sa.sa_mask` is a valid sigset to clear.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: all-zero is a valid out value.
        let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers; the handler is async-signal-safe.
        if unsafe { libc::sigaction(timer_signal(), &sa, &mut old) } != 0 {
            return Err(format!("sigaction: {}", std::io::Error::last_os_error()));
        }
        Ok(Handler { old })
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        // SAFETY: restores the action saved in `install`.
        unsafe { libc::sigaction(timer_signal(), &self.old, ptr::null_mut()) };
    }
}

/// Nesting results.
#[derive(Debug, Clone)]
pub struct NestingReport {
    /// Outer write, 8 bytes, no timer: thread CPU ns per outer event.
    pub quiet: Summary,
    /// Timer firing, handler only counts: ns per outer event.
    pub signals_only: Summary,
    /// Timer firing, handler writes a nested event: ns per outer event.
    pub nested: Summary,
    /// Signals received per second (all timer repetitions).
    pub signal_rate: Summary,
    /// Per-round values of `quiet`, `signals_only`, `nested` (run back to
    /// back in each round), for paired ratios.
    pub raw: [Vec<f64>; 3],
    /// Nested writes that succeeded.
    pub nested_writes: u64,
    /// Nested writes that failed.
    pub nested_failed: u64,
    /// Ring counters after the run, and whether they add up.
    pub accounting: String,
    /// Why the test could not run, if it could not.
    pub error: Option<String>,
}

/// CPU time of the calling thread, in ns: it includes the signal handlers
/// and the kernel's delivery work on this thread, but not the time other
/// processes of the shared machine ran while this thread waited.
fn thread_cpu_ns() -> f64 {
    // SAFETY: all-zero is a valid `timespec`; `clock_gettime` fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
}

/// Writes 8-byte events for `time` of wall time; returns thread CPU ns per
/// event.
fn write_for(w: &mut ringtrace_ring::Writer<'_>, time: Duration) -> f64 {
    let payload = black_box(*b"outer-ev");
    let ts = black_box(clock::tsc());
    let mut n = 0u64;
    let start = Instant::now();
    let cpu0 = thread_cpu_ns();
    while start.elapsed() < time {
        for _ in 0..1024 {
            let _ = w.write(ts, &payload);
        }
        n += 1024;
    }
    (thread_cpu_ns() - cpu0) / n as f64
}

/// [`write_for`] with the timer signal aimed at this thread; returns its
/// figure and the signals delivered per second meanwhile.
fn write_under_timer(
    w: &mut ringtrace_ring::Writer<'_>,
    time: Duration,
) -> Result<(f64, f64), String> {
    let sig0 = SIGNALS.load(Relaxed);
    let t0 = Instant::now();
    let timer = ThreadTimer::start(PERIOD)?;
    let ns = write_for(w, time);
    drop(timer);
    let rate = (SIGNALS.load(Relaxed) - sig0) as f64 / t0.elapsed().as_secs_f64();
    Ok((ns, rate))
}

fn measure(s: &Settings, buf: &RingBuffer) -> Result<NestingReport, String> {
    let mut w = buf.writer(0).map_err(|e| e.to_string())?;
    let (mut quiet, mut only, mut nested, mut rate) = (vec![], vec![], vec![], vec![]);
    let before_ok = NESTED_OK.load(Relaxed);
    let before_failed = NESTED_FAILED.load(Relaxed);
    for rep in 0..=s.reps {
        let q = write_for(&mut w, s.rep_time);

        let (o, r1) = write_under_timer(&mut w, s.rep_time)?;

        // Release: pairs with the handler's Acquire load.
        NEST_BUF.store(buf as *const RingBuffer as *mut RingBuffer, Release);
        let (n, r2) = write_under_timer(&mut w, s.rep_time)?;
        NEST_BUF.store(ptr::null_mut(), Release);

        if rep > 0 {
            quiet.push(q);
            only.push(o);
            nested.push(n);
            rate.push(r1);
            rate.push(r2);
        }
    }
    drop(w);
    // Drain what is still buffered and count it ourselves: `entries` is
    // derived from the counters, so an identity written with it could not
    // fail; the drained count is independent.
    let mut drained = 0u64;
    {
        let mut c = buf.consumer(0).map_err(|e| e.to_string())?;
        while c.consume().map_err(|e| e.to_string())?.is_some() {
            drained += 1;
        }
    }
    let st = buf.stats(0).map_err(|e| e.to_string())?;
    let adds_up = st.committed == st.read + st.overrun
        && st.written == st.read + st.overrun + st.dropped + st.commit_overrun
        && st.entries == 0
        && drained <= st.read;
    let sum = |v: &[f64]| Summary::of(v).ok_or_else(|| "no repetitions".to_string());
    Ok(NestingReport {
        quiet: sum(&quiet)?,
        signals_only: sum(&only)?,
        nested: sum(&nested)?,
        signal_rate: sum(&rate)?,
        raw: [quiet, only, nested],
        nested_writes: NESTED_OK.load(Relaxed) - before_ok,
        nested_failed: NESTED_FAILED.load(Relaxed) - before_failed,
        accounting: format!(
            "after draining {} events: written {} = read {} + overrun {} + dropped {} + commit overrun {} (entries {}): {}; corruptions {}",
            drained,
            st.written,
            st.read,
            st.overrun,
            st.dropped,
            st.commit_overrun,
            st.entries,
            if adds_up { "adds up" } else { "DOES NOT ADD UP" },
            st.corruptions
        ),
        error: None,
    })
}

/// Runs the nesting test on a thread of its own.
pub fn run(s: &Settings) -> NestingReport {
    let failed = |e: String| NestingReport {
        quiet: Summary::nan(),
        signals_only: Summary::nan(),
        nested: Summary::nan(),
        signal_rate: Summary::nan(),
        raw: [Vec::new(), Vec::new(), Vec::new()],
        nested_writes: 0,
        nested_failed: 0,
        accounting: String::new(),
        error: Some(e),
    };
    let handler = match Handler::install() {
        Ok(h) => h,
        Err(e) => return failed(e),
    };
    let buf = bench_ring(Mode::Overwrite);
    debug_assert_eq!(buf.config().pages_per_ring, RING_PAGES);
    let s = *s;
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| measure(&s, &buf))
            .join()
            .unwrap_or_else(|_| Err("nesting thread panicked".into()))
    });
    // The timer thread has exited: no signal of ours is pending any more.
    drop(handler);
    result.unwrap_or_else(failed)
}
