//! Several threads each get a timer signal about every 50 µs, whose
//! handler records `trace!` and typed events into the thread's own ring; the
//! merged pipe must return every event intact, in time-stamp order, with the
//! right thread ids, names and flags, and every ring's accounting must
//! balance.
//!
//! Each writer thread has its own `timer_create(CLOCK_MONOTONIC,
//! SIGEV_THREAD_ID)` timer aimed at itself, one-shot, and the handler arms
//! the next shot as it returns. So the thread always runs for a while
//! between two handlers, however loaded the machine: a periodic
//! process-wide timer (`ITIMER_REAL`) can deliver signals faster than a
//! descheduled thread handles them, and then the thread never runs its own
//! code again (a livelock seen on a loaded two-CPU machine).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{compiler_fence, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ringtrace::event::{flags, Record};
use ringtrace::printk::{format_bprint, BPRINT_ID};
use ringtrace::{Tracer, TracerConfig};
use ringtrace_ring::Mode;

ringtrace::declare_event! {
    /// Ordinary work item.
    pub struct Work: "test" / "work" = 2001 { thread: u32, seq: u64 }
}
ringtrace::declare_event! {
    /// Recorded by the signal handler.
    pub struct SigEvent: "test" / "sig_event" = 2002 { seq: u64, tid: i32, guarded: u8 }
}

static TRACER: OnceLock<Tracer> = OnceLock::new();
static HANDLER_RUNS: AtomicU64 = AtomicU64::new(0);
/// Signals that arrived after their thread stopped recording.
static LATE: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised, no destructor: safe to touch in a handler.
    static IS_WRITER: Cell<bool> = const { Cell::new(false) };
    /// This thread's timer (a `timer_t`), or null.
    static TIMER: Cell<usize> = const { Cell::new(0) };
}

const WRITERS: u32 = 4;
const PER_WRITER: u64 = 30_000;
const PACE: Duration = Duration::from_micros(15);
/// The wait between a handler's end and the next signal.
const PERIOD_NS: i64 = 50_000;

extern "C" fn on_alarm(_sig: libc::c_int) {
    // SAFETY: errno location is always valid; saved and restored around
    // the handler so the interrupted code never sees it change.
    let errno = unsafe { *libc::__errno_location() };
    if !IS_WRITER.get() {
        // Delivered after the thread disarmed its timer.
        LATE.fetch_add(1, Ordering::Relaxed);
    } else if let Some(t) = TRACER.get() {
        let seq = HANDLER_RUNS.fetch_add(1, Ordering::Relaxed);
        let tid = ringtrace::context::current_tid();
        // One handler in four does not enter a signal scope: it is still
        // detected as a handler when it interrupted a write.
        if seq % 4 == 3 {
            ringtrace::trace_event!(
                t,
                SigEvent {
                    seq,
                    tid,
                    guarded: 0
                }
            );
        } else {
            let _scope = ringtrace::signal_scope();
            if seq % 2 == 0 {
                ringtrace::trace!(tracer: t, "sig %llu tid %d", seq, tid);
            } else {
                ringtrace::trace_event!(
                    t,
                    SigEvent {
                        seq,
                        tid,
                        guarded: 1
                    }
                );
            }
        }
        // The next shot, counted from now (timer_settime is
        // async-signal-safe).
        arm(TIMER.get(), PERIOD_NS);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Arms `timer` (a `timer_t`) for one shot in `ns`, or disarms it (0).
fn arm(timer: usize, ns: i64) {
    if timer == 0 {
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
    // SAFETY: `timer` came from timer_create on this thread and is deleted
    // only by this thread after IS_WRITER is cleared; valid struct.
    unsafe { libc::timer_settime(timer as libc::timer_t, 0, &shot, std::ptr::null_mut()) };
}

/// Starts recording in signal handlers on this thread: a one-shot timer
/// aimed at it, re-armed by each handler.
fn start_signals() {
    // SAFETY: plain system calls with valid structs; the thread id is the
    // caller's own.
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
    IS_WRITER.set(true);
    arm(timer, PERIOD_NS);
}

/// Stops this thread's signals: a signal still pending is counted as late.
fn stop_signals() {
    IS_WRITER.set(false);
    // Keep the store above the disarm: a handler that runs after it must
    // see the thread stopped (same thread: a compiler barrier suffices).
    compiler_fence(Ordering::SeqCst);
    let timer = TIMER.get();
    arm(timer, 0);
    TIMER.set(0);
    // SAFETY: created by `start_signals` on this thread, disarmed above,
    // and no handler uses it any more (IS_WRITER is clear).
    unsafe { libc::timer_delete(timer as libc::timer_t) };
}

fn writer(t: &'static Tracer, index: u32) -> i32 {
    let tid = ringtrace::context::current_tid();
    let start = Instant::now();
    for seq in 0..PER_WRITER {
        // Pace the writer (about 0.45 s in all) so that many timer signals
        // land while it writes.
        while start.elapsed() < PACE * seq as u32 {
            std::hint::spin_loop();
        }
        if seq % 2 == 0 {
            ringtrace::trace!(tracer: t, "w %u %llu", index, seq);
        } else {
            ringtrace::trace_event!(t, Work { thread: index, seq });
        }
        if seq == 0 {
            // The thread has its context: handlers may record now.
            start_signals();
        }
    }
    stop_signals();
    tid
}

/// The bprint text "w %u %llu" -> (thread, seq).
fn parse_w(text: &str) -> Option<(u32, u64)> {
    let mut it = text.strip_prefix("w ")?.split(' ');
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

#[test]
fn threads_and_sigalrm_merge_exactly() {
    let tracer = TRACER.get_or_init(|| {
        TracerConfig::new()
            .max_contexts(8)
            .bytes_per_context(4 << 20)
            .mode(Mode::ProducerConsumer)
            .build()
            .expect("tracer")
    });
    // `SigEvent` is recorded only in the handler: its first record
    // registers its type from there (the registry is lock-free).
    assert!(ringtrace::event::Registry::global()
        .get(SigEvent::EVENT_TYPE.id)
        .is_none());
    let (tids, test_seq) = run_writers_under_signals(tracer);
    let main_tid = ringtrace::context::current_tid();

    // Read everything through the merged pipe, in time-stamp order.
    let mut pipe = tracer.pipe();
    let mut events = Vec::new();
    while let Some(e) = pipe.next_event().unwrap() {
        events.push(e);
    }
    drop(pipe);
    for w in events.windows(2) {
        assert!(
            w[0].timestamp <= w[1].timestamp,
            "out of order: {:?} then {:?}",
            (w[0].ring, w[0].timestamp),
            (w[1].ring, w[1].timestamp)
        );
    }

    let mut tally = Tally::default();
    for e in &events {
        tally.check(e, &tids, main_tid);
    }
    tally.check_complete(tracer, &tids, test_seq);
    check_accounting(tracer, events.len() as u64);
    eprintln!(
        "{} events, {} handler runs ({} late signals ignored; unguarded: {} nested in a write, {} not), {} main-thread events",
        events.len(),
        HANDLER_RUNS.load(Ordering::Relaxed),
        LATE.load(Ordering::Relaxed),
        tally.nested_unguarded,
        tally.plain_unguarded,
        test_seq
    );
    let _ = Work::EVENT_TYPE.id;
    let _ = SigEvent {
        seq: 0,
        tid: 0,
        guarded: 0,
    }
    .encoded_len();
}

/// Installs the handler, runs the writer threads under their timer
/// signals while the test thread (signalled too) records its own
/// numbered events; returns the writers' thread ids and the test thread's
/// event count.
fn run_writers_under_signals(tracer: &'static Tracer) -> (Vec<i32>, u64) {
    // The test thread is a writer too.
    ringtrace::trace!(tracer: tracer, "test thread up");
    // SAFETY: installs a handler that only uses async-signal-safe calls.
    unsafe {
        ringtrace::signal::install(
            libc::SIGALRM,
            ringtrace::signal::Handler::Plain(on_alarm),
            libc::SA_RESTART,
        )
        .unwrap();
    }
    start_signals();
    let handles: Vec<_> = (0..WRITERS)
        .map(|i| {
            std::thread::Builder::new()
                .name(format!("w{i}"))
                .spawn(move || writer(tracer, i))
                .unwrap()
        })
        .collect();
    let mut test_seq = 0u64;
    while !handles.iter().all(|h| h.is_finished()) {
        ringtrace::trace!(tracer: tracer, "main %llu", test_seq);
        test_seq += 1;
        std::thread::sleep(Duration::from_micros(100));
    }
    let tids: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    stop_signals();
    (tids, test_seq)
}

/// What the merged events showed, per kind of writer.
#[derive(Default)]
struct Tally {
    /// Writer thread index -> its sequence numbers, in read order.
    per_thread: BTreeMap<u32, Vec<u64>>,
    /// Sequence numbers of the handlers' events.
    handler_seqs: BTreeSet<u64>,
    /// The test thread's numbered events, in read order.
    main_seqs: Vec<u64>,
    /// Unguarded handler events that interrupted a write (flagged anyway).
    nested_unguarded: u64,
    /// Unguarded handler events that interrupted no write.
    plain_unguarded: u64,
    /// Thread id -> the ring its events went to.
    ring_of_tid: BTreeMap<i32, usize>,
}

impl Tally {
    /// Checks one event: no loss, one ring per thread, consistent handler
    /// flags, attributed to the right thread; and notes its sequence.
    fn check(&mut self, e: &ringtrace::reader::OwnedEvent, tids: &[i32], main_tid: i32) {
        assert_eq!(e.lost_events, 0, "no event may be lost");
        let (ty, c) = e.common().expect("common header");
        // A thread's ordinary events and its handlers' events all go to
        // the thread's one ring.
        let ring = *self.ring_of_tid.entry(c.pid).or_insert(e.ring);
        assert_eq!(ring, e.ring, "thread {} wrote two rings", c.pid);
        let in_handler = c.flags & flags::IN_SIGNAL_HANDLER != 0;
        assert_eq!(in_handler, c.preempt_count > 0, "flag and depth disagree");
        assert_eq!(
            c.flags & !flags::IN_SIGNAL_HANDLER,
            0,
            "no nested handlers here"
        );
        match ty {
            BPRINT_ID => self.check_bprint(e, c.pid, in_handler, c.preempt_count, tids, main_tid),
            2001 => {
                assert!(!in_handler);
                let thread = u32::from_ne_bytes(e.payload[8..12].try_into().unwrap());
                let seq = u64::from_ne_bytes(e.payload[16..24].try_into().unwrap());
                assert_eq!(c.pid, tids[thread as usize], "misattributed");
                self.per_thread.entry(thread).or_default().push(seq);
            }
            2002 => {
                let seq = u64::from_ne_bytes(e.payload[8..16].try_into().unwrap());
                let tid = i32::from_ne_bytes(e.payload[16..20].try_into().unwrap());
                let guarded = e.payload[20];
                assert_eq!(tid, c.pid, "handler event attributed to another thread");
                if guarded == 1 {
                    assert!(in_handler);
                    assert_eq!(c.preempt_count, 1);
                } else if in_handler {
                    // Interrupted a write: detected by the nesting word.
                    assert_eq!(c.preempt_count, 1);
                    self.nested_unguarded += 1;
                } else {
                    self.plain_unguarded += 1;
                }
                assert!(
                    self.handler_seqs.insert(seq),
                    "duplicate handler event {seq}"
                );
            }
            other => panic!("unexpected type {other}"),
        }
    }

    /// A `trace!` event: a handler's (`sig`), a writer's (`w`), the test
    /// thread's (`main`) or its first.
    fn check_bprint(
        &mut self,
        e: &ringtrace::reader::OwnedEvent,
        pid: i32,
        in_handler: bool,
        depth: u8,
        tids: &[i32],
        main_tid: i32,
    ) {
        let (_, text) = format_bprint(&e.payload).unwrap();
        if let Some(rest) = text.strip_prefix("sig ") {
            assert!(in_handler, "guarded handler event not flagged: {text}");
            assert_eq!(depth, 1);
            let mut it = rest.split(" tid ");
            let seq: u64 = it.next().unwrap().parse().unwrap();
            let tid: i32 = it.next().unwrap().parse().unwrap();
            assert_eq!(tid, pid, "handler event attributed to another thread");
            assert!(
                self.handler_seqs.insert(seq),
                "duplicate handler event {seq}"
            );
        } else if let Some((thread, seq)) = parse_w(&text) {
            assert!(!in_handler);
            assert_eq!(pid, tids[thread as usize], "misattributed");
            self.per_thread.entry(thread).or_default().push(seq);
        } else if let Some(n) = text.strip_prefix("main ") {
            assert!(!in_handler);
            assert_eq!(pid, main_tid);
            self.main_seqs.push(n.parse::<u64>().unwrap());
        } else {
            assert_eq!(text, "test thread up");
        }
    }

    /// Every writer event, in order, on the right (named) thread; every
    /// test-thread event; every handler that ran recorded exactly one.
    fn check_complete(&self, tracer: &Tracer, tids: &[i32], test_seq: u64) {
        assert_eq!(self.per_thread.len(), WRITERS as usize);
        for (thread, seqs) in &self.per_thread {
            assert_eq!(
                seqs,
                &(0..PER_WRITER).collect::<Vec<_>>(),
                "thread {thread} events incomplete or out of order"
            );
            let name = tracer.comm(tids[*thread as usize]).unwrap();
            assert_eq!(name, format!("w{thread}"));
        }
        assert_eq!(self.main_seqs, (0..test_seq).collect::<Vec<_>>());
        let runs = HANDLER_RUNS.load(Ordering::Relaxed);
        assert_eq!(self.handler_seqs.len() as u64, runs);
        assert_eq!(
            self.handler_seqs.iter().copied().collect::<Vec<_>>(),
            (0..runs).collect::<Vec<_>>()
        );
        assert!(runs > 100, "only {runs} handler runs");
    }
}

/// Accounting: every attempt read, nothing else, and no refusal.
fn check_accounting(tracer: &Tracer, events_read: u64) {
    let mut total_read = 0;
    for r in 0..tracer.max_contexts() {
        let s = tracer.ring_stats(r).unwrap();
        // Drained: the writer's committed count is what the reader read
        // plus what was overwritten (`entries` is derived, so not used).
        assert_eq!(s.committed, s.read + s.overrun, "ring {r}: {s:?}");
        assert_eq!(
            (s.overrun, s.dropped, s.commit_overrun, s.entries),
            (0, 0, 0, 0),
            "ring {r}: {s:?}"
        );
        total_read += s.read;
    }
    assert_eq!(total_read, events_read);
    let ts = tracer.stats();
    assert_eq!(
        (
            ts.refused_no_context,
            ts.refused_in_signal_handler,
            ts.refused_other
        ),
        (0, 0, 0),
        "{ts:?}"
    );
}

ringtrace::declare_event! {
    /// Recorded only by `on_usr1`, never by ordinary code.
    pub struct FirstInHandler: "test" / "first_in_handler" = 2003 { value: u64 }
}

static USR1_TRACER: OnceLock<Tracer> = OnceLock::new();

extern "C" fn on_usr1(_sig: libc::c_int) {
    if let Some(t) = USR1_TRACER.get() {
        let _scope = ringtrace::signal_scope();
        ringtrace::trace_event!(t, FirstInHandler { value: 77 });
    }
}

/// A typed event whose first record ever is made inside a signal handler
/// is decoded by the reader: the handler registers its type.
#[test]
fn a_type_first_recorded_in_a_handler_is_readable() {
    let t =
        USR1_TRACER.get_or_init(|| TracerConfig::new().max_contexts(2).build().expect("tracer"));
    assert!(ringtrace::event::Registry::global()
        .get(FirstInHandler::EVENT_TYPE.id)
        .is_none());
    // The thread needs its context before the handler runs (a handler
    // cannot lease one).
    ringtrace::trace!(tracer: t, "before");
    // SAFETY: installs a handler that only uses async-signal-safe calls;
    // `raise` runs it on this thread before returning.
    unsafe {
        ringtrace::signal::install(libc::SIGUSR1, ringtrace::signal::Handler::Plain(on_usr1), 0)
            .unwrap();
        assert_eq!(libc::raise(libc::SIGUSR1), 0);
    }
    let mut p = t.pipe();
    let first = p.next_line().unwrap().unwrap();
    assert!(first.ends_with(": before\n"), "{first}");
    let second = p.next_line().unwrap().unwrap();
    assert!(
        second.ends_with("first_in_handler: value=77\n"),
        "the handler's event: {second}"
    );
    assert!(
        second.contains(" ..h1. "),
        "flagged as in a handler: {second}"
    );
}
