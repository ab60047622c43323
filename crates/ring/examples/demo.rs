//! ringtrace-ring demo: three writer threads, a SIGALRM handler nesting
//! writes into the main writer's ring, and a reader thread consuming all
//! rings while they are written. Prints what was read and each ring's
//! counters, and checks the accounting identity.
//!
//! Run: `cargo run --release -p ringtrace-ring --example demo`

use ringtrace_ring::{Config, Mode, RingBuffer};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering::*};
use std::time::{Duration, Instant};

static BUF: AtomicPtr<RingBuffer> = AtomicPtr::new(std::ptr::null_mut());
static NESTED: AtomicU64 = AtomicU64::new(0);
static START: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static IS_RING0_WRITER: Cell<bool> = const { Cell::new(false) };
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime is async-signal-safe and fills `ts`.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64).saturating_sub(START.load(Relaxed))
}

extern "C" fn on_alarm(_: libc::c_int) {
    // SAFETY: errno is thread-local; saved and restored.
    let errno = unsafe { *libc::__errno_location() };
    let buf = BUF.load(Acquire);
    if IS_RING0_WRITER.with(|w| w.get()) && !buf.is_null() {
        let n = NESTED.fetch_add(1, Relaxed);
        let mut msg = *b"signal handler write #0000000";
        let mut v = n;
        for b in msg[21..].iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
        // SAFETY: BUF is leaked and lives forever; this handler interrupts
        // the thread that holds ring 0's writer and finishes before it resumes.
        if let Ok(mut w) = unsafe { (*buf).nested_writer(0) } {
            let _ = w.write(now_ns(), &msg);
        }
    }
    // SAFETY: restore errno.
    unsafe { *libc::__errno_location() = errno };
}

fn set_alarm_blocked(blocked: bool) {
    // SAFETY: changes this thread's signal mask only.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        let how = if blocked {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

fn main() {
    START.store(now_ns(), Relaxed);
    let rings = 3;
    let buf: &'static RingBuffer = Box::leak(Box::new(
        RingBuffer::new(Config::new(rings).pages_per_ring(8).mode(Mode::Overwrite)).unwrap(),
    ));
    BUF.store(buf as *const _ as *mut _, Release);
    install_handler();
    // Block SIGALRM everywhere (threads inherit the mask); ring 0's writer
    // unblocks it, so the process-directed signal always lands on it.
    set_alarm_blocked(true);
    let done = AtomicBool::new(false);
    let run_for = Duration::from_millis(500);
    let mut written = vec![0u64; rings];
    let mut read = vec![0u64; rings];
    let mut samples: Vec<String> = Vec::new();
    std::thread::scope(|s| {
        let reader = s.spawn(|| read_rings(buf, rings, &done));
        let writers: Vec<_> = (0..rings)
            .map(|ring| s.spawn(move || write_ring(buf, ring, run_for)))
            .collect();
        for (ring, w) in writers.into_iter().enumerate() {
            written[ring] = w.join().unwrap();
        }
        done.store(true, Release);
        let (counts, s) = reader.join().unwrap();
        read = counts;
        samples = s;
    });
    println!("A few of the events read:");
    for line in &samples {
        println!("  {line}");
    }
    println!();
    let ok = print_stats(buf, &read);
    println!(
        "\n{} events written by threads, {} by the signal handler on ring 0; accounting identity {}",
        written.iter().sum::<u64>(),
        NESTED.load(Relaxed),
        if ok { "holds on every ring" } else { "BROKEN" }
    );
    if !ok {
        std::process::exit(1);
    }
}

/// Installs `on_alarm` for SIGALRM.
fn install_handler() {
    // SAFETY: the handler only touches atomics, a const thread-local and the
    // ring's async-signal-safe write path.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_alarm as extern "C" fn(libc::c_int) as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGALRM, &sa, std::ptr::null_mut());
    }
}

/// The reader thread: consumes every ring until the writers are `done` and
/// the rings are empty; returns each ring's count of events read and a few
/// sample lines.
fn read_rings(buf: &RingBuffer, rings: usize, done: &AtomicBool) -> (Vec<u64>, Vec<String>) {
    let mut counts = vec![0u64; rings];
    let mut lost = vec![0u64; rings];
    let mut samples = Vec::new();
    loop {
        let finished = done.load(Acquire);
        let mut any = false;
        for ring in 0..rings {
            let mut c = buf.consumer(ring).unwrap();
            while let Some(ev) = c.consume().unwrap() {
                any = true;
                counts[ring] += 1;
                lost[ring] += ev.lost_events;
                if counts[ring] % 50_000 == 1
                    || ev.payload.starts_with(b"signal") && samples.len() < 12
                {
                    samples.push(sample_line(ring, &ev));
                }
            }
        }
        if finished && !any {
            return (counts, samples);
        }
        if !any {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// One event of ring `ring` as a sample line, with its loss note.
fn sample_line(ring: usize, ev: &ringtrace_ring::Event<'_>) -> String {
    let text = String::from_utf8_lossy(ev.payload)
        .trim_end_matches('\0')
        .to_string();
    let lost_note = if ev.lost_events > 0 {
        format!(" [LOST {} EVENTS]", ev.lost_events)
    } else {
        String::new()
    };
    format!("ring {ring} {:>12} ns: {text}{lost_note}", ev.timestamp)
}

/// A writer thread: writes ring `ring` for `run_for` (ring 0's with the
/// timer armed, so the handler nests writes into it); returns how many
/// writes landed.
fn write_ring(buf: &RingBuffer, ring: usize, run_for: Duration) -> u64 {
    let mut w = buf.writer(ring).unwrap();
    if ring == 0 {
        IS_RING0_WRITER.with(|f| f.set(true));
        set_alarm_blocked(false);
        set_timer(100);
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < run_for {
        let msg = format!("thread {ring} event {n:08}");
        if w.write(now_ns(), msg.as_bytes()).is_ok() {
            n += 1;
        }
    }
    if ring == 0 {
        set_timer(0);
    }
    n
}

/// Arms the process timer to fire every `usec` microseconds (0 disarms it).
fn set_timer(usec: libc::suseconds_t) {
    let t = libc::timeval {
        tv_sec: 0,
        tv_usec: usec,
    };
    let it = libc::itimerval {
        it_interval: t,
        it_value: t,
    };
    // SAFETY: arms (or disarms) the process timer; SIGALRM is blocked
    // elsewhere or ignored by the handler on other threads.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
}

/// Prints each ring's counters; true when the accounting identity holds on
/// every ring and each ring's reader count (`read`) agrees.
fn print_stats(buf: &RingBuffer, read: &[u64]) -> bool {
    println!(
        "{:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "ring", "written", "read", "overrun", "dropped", "c-overrun", "buffered"
    );
    let mut ok = true;
    for (ring, &read) in read.iter().enumerate() {
        let s = buf.stats(ring).unwrap();
        println!(
            "{:<6} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
            ring, s.written, s.read, s.overrun, s.dropped, s.commit_overrun, s.entries
        );
        // Drained: the writer's committed count equals what the reader read
        // plus what was overwritten, and the reader's own count agrees.
        ok &= s.committed == s.read + s.overrun && s.entries == 0 && s.read == read;
    }
    ok
}
