//! `Consumer::nothing_to_read`, the merged pipe's cheap look at a ring it
//! found empty: it never says "nothing" where a peek finds an event, and
//! once a peek has refreshed the reader's head hint it answers exactly as
//! the peek does; with a writer thread, no event committed before a
//! "nothing" is read after it. Both modes, across page swaps, head pushes
//! (overwrite) and drops (producer/consumer); every payload byte and the
//! accounting identity checked.

mod common;

use common::{assert_identity, check, fill, Hang};
use ringtrace_ring::{Config, Consumer, Mode, RingBuffer, WriteError};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Payload length of event `seq`: 24 to 400 bytes, so a 4 KiB page holds
/// a few dozen and pages are crossed often.
fn size_of(seq: u64) -> usize {
    24 + (seq * 37 % 377) as usize
}

/// Writes event `seq`; true when it was committed.
fn write(w: &mut ringtrace_ring::Writer<'_>, seq: u64) -> bool {
    let mut scratch = [0u8; 512];
    let p = &mut scratch[..size_of(seq)];
    fill(p, 1, seq, 0);
    match w.write(seq * 3, p) {
        Ok(()) => true,
        Err(WriteError::Full) => false,
        Err(e) => panic!("unexpected write error {e}"),
    }
}

/// What a reader has read: the next sequence number expected (after the
/// losses reported), the events read, the losses reported.
#[derive(Default)]
struct Seen {
    next: u64,
    read: u64,
    lost: u64,
    /// The writer retries refused writes: a loss reported is a refused
    /// attempt, and no sequence number is missing.
    retried: bool,
}

impl Seen {
    /// Consumes one event, if any, checking its bytes, stamp and continuity.
    fn consume(&mut self, c: &mut Consumer<'_>) -> Option<u64> {
        let ev = c.consume().unwrap()?;
        let d = check(ev.payload).unwrap();
        let gap = if self.retried { 0 } else { ev.lost_events };
        assert_eq!(d.seq, self.next + gap, "continuity");
        assert_eq!(ev.timestamp, d.seq * 3);
        self.next = d.seq + 1;
        self.read += 1;
        self.lost += ev.lost_events;
        Some(d.seq)
    }
}

/// One thread writes and reads in random steps (xorshift): before each
/// step, `nothing_to_read` is compared with a peek.
fn step_by_step(mode: Mode) {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(3).mode(mode)).unwrap();
    let mut w = buf.writer(0).unwrap();
    let mut c = buf.consumer(0).unwrap();
    let mut seen = Seen::default();
    let (mut seq, mut x) = (0u64, 0x9e37_79b9_7f4a_7c15u64);
    let (mut said_nothing, mut unsure, mut had_events) = (0u64, 0u64, 0u64);
    for _ in 0..20_000 {
        let first = c.nothing_to_read();
        let none = c.peek().unwrap().is_none();
        assert!(!first || none, "said nothing where a peek found an event");
        // The peek refreshed the head hint; nothing moved since.
        assert_eq!(c.nothing_to_read(), none, "after a peek");
        match (first, none) {
            (true, _) => said_nothing += 1,
            (false, true) => unsure += 1,
            (false, false) => had_events += 1,
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = 1 + x % 24;
        if x & 0x100 == 0 {
            for _ in 0..n {
                write(&mut w, seq);
                seq += 1;
            }
        } else {
            for _ in 0..n {
                if seen.consume(&mut c).is_none() {
                    break;
                }
            }
        }
    }
    while seen.consume(&mut c).is_some() {}
    assert!(c.nothing_to_read(), "drained");
    let s = buf.stats(0).unwrap();
    assert_eq!(s.written, seq);
    assert_eq!(s.read, seen.read);
    assert_identity(&s, 0);
    assert_eq!(
        seen.lost + c.pending_losses(),
        s.overrun + s.dropped + s.commit_overrun
    );
    // The cheap answer was the one given on empty rings, not only false.
    assert!(
        said_nothing > 0 && had_events > 0,
        "{said_nothing} {had_events}"
    );
    eprintln!("{mode:?}: {said_nothing} nothing, {unsure} unsure (a peek told), {had_events} with events, {s:?}");
}

#[test]
fn agrees_with_a_peek_step_by_step() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        step_by_step(mode);
    }
}

/// A writer thread publishes, after each committed event, one past its
/// sequence number; the reader loads that, then asks `nothing_to_read`:
/// after a "nothing", no event with a smaller sequence number may be read.
/// In producer/consumer mode the writer retries a write the full ring
/// refused, so every event is committed and read while it writes.
fn with_writer_thread(mode: Mode) {
    const EVENTS: u64 = 50_000;
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4).mode(mode)).unwrap();
    let (started, done) = (AtomicBool::new(false), AtomicBool::new(false));
    let committed = AtomicU64::new(0);
    let (attempts, (seen, nothing)) = std::thread::scope(|s| {
        let w = s.spawn(|| {
            let mut w = buf.writer(0).unwrap();
            let hang = Hang::guard("the reader to start, or to make room");
            while !started.load(Ordering::Acquire) {
                hang.check(String::new);
                std::thread::yield_now();
            }
            let mut attempts = 0;
            for seq in 0..EVENTS {
                attempts += 1;
                while !write(&mut w, seq) {
                    assert_eq!(mode, Mode::ProducerConsumer, "only a full ring refuses");
                    hang.check(|| format!("seq {seq}"));
                    std::thread::yield_now();
                    attempts += 1;
                }
                // Release: pairs with the reader's Acquire load below.
                committed.store(seq + 1, Ordering::Release);
                if seq % 64 == 0 {
                    std::thread::yield_now();
                }
            }
            done.store(true, Ordering::Release);
            attempts
        });
        let r = s.spawn(|| {
            let mut c = buf.consumer(0).unwrap();
            started.store(true, Ordering::Release);
            let mut seen = Seen {
                retried: mode == Mode::ProducerConsumer,
                ..Seen::default()
            };
            let hang = Hang::guard("the writer thread to finish");
            // Sequence numbers below this were committed before the last
            // "nothing": none of them may be read now.
            let mut floor = 0u64;
            let mut nothing = 0u64;
            loop {
                let finished = done.load(Ordering::Acquire);
                let before = committed.load(Ordering::Acquire);
                if c.nothing_to_read() {
                    nothing += 1;
                    floor = before;
                    if finished {
                        break;
                    }
                    hang.check(|| format!("{} read", seen.read));
                    std::hint::spin_loop();
                    continue;
                }
                if let Some(seq) = seen.consume(&mut c) {
                    assert!(
                        seq >= floor,
                        "event {seq} was hidden by a nothing after {floor}"
                    );
                }
            }
            assert!(
                c.peek().unwrap().is_none(),
                "nothing left after the last check"
            );
            seen.lost += c.pending_losses();
            (seen, nothing)
        });
        (w.join().unwrap(), r.join().unwrap())
    });
    let s = buf.stats(0).unwrap();
    assert_eq!(s.written, attempts, "{s:?}");
    assert_eq!(s.read, seen.read);
    assert_identity(&s, 0);
    assert_eq!(seen.lost, s.overrun + s.dropped + s.commit_overrun, "{s:?}");
    if mode == Mode::ProducerConsumer {
        // Every event committed (after retries) and read.
        assert_eq!((s.committed, s.read), (EVENTS, EVENTS), "{s:?}");
    }
    assert!(nothing > 0);
    eprintln!("{mode:?}: {nothing} nothing answers, {s:?}");
}

#[test]
fn never_hides_an_event_from_a_writer_thread() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        with_writer_thread(mode);
    }
}
