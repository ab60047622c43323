//! `Consumer::consume_batch`: the same events, time stamps and loss counts
//! as `consume`, in both modes, with every payload byte checked and the
//! accounting identity `written == read + overrun + dropped +
//! commit_overrun + still buffered`; deterministically against `consume`,
//! with a writer thread, and with a signal handler nesting writes.

mod common;

use common::load::Checker;
use common::mixed::{self, size_of, stamp_of};
use common::sigwriter::serial;
use common::{assert_identity, check, fill, Decoded};
use ringtrace_ring::{Config, Consumer, Mode, RingBuffer, WriteError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a reader saw of one event.
type Seen = (Decoded, u64, u64);

/// Writes events `from..to` of the fixed sequence; every 11th one is
/// reserved and discarded (padding on the page). Returns the writes that
/// landed and those refused.
fn write_range(buf: &RingBuffer, from: u64, to: u64) -> (u64, u64) {
    let mut w = buf.writer(0).unwrap();
    let mut scratch = [0u8; 512];
    let (mut ok, mut refused) = (0, 0);
    for seq in from..to {
        let p = &mut scratch[..size_of(seq)];
        fill(p, 1, seq, 0);
        if seq % 11 == 10 {
            match w.reserve(stamp_of(seq), p.len()) {
                Ok(r) => r.discard(),
                Err(WriteError::Full) => refused += 1,
                Err(e) => panic!("unexpected reserve error {e}"),
            }
            continue;
        }
        match w.write(stamp_of(seq), p) {
            Ok(()) => ok += 1,
            Err(WriteError::Full) => refused += 1,
            Err(e) => panic!("unexpected write error {e}"),
        }
    }
    (ok, refused)
}

fn read_consume(c: &mut Consumer<'_>, out: &mut Vec<Seen>) {
    while let Some(ev) = c.consume().unwrap() {
        out.push((check(ev.payload).unwrap(), ev.timestamp, ev.lost_events));
    }
}

/// Reads everything with batches of at most `max`; checks the count.
fn read_batch(c: &mut Consumer<'_>, max: usize, out: &mut Vec<Seen>) {
    loop {
        let before = out.len();
        let n = c
            .consume_batch(max, |ev| {
                out.push((check(ev.payload).unwrap(), ev.timestamp, ev.lost_events))
            })
            .unwrap();
        assert_eq!(n, out.len() - before, "count returned");
        assert!(n <= max, "{n} events for a batch of {max}");
        if n == 0 {
            return;
        }
    }
}

/// The same writes into two buffers, read in rounds by `consume` from one
/// and `consume_batch(max)` from the other: identical events, stamps, loss
/// counts and counters.
fn same_as_consume(mode: Mode, max: usize) {
    let config = || Config::new(1).pages_per_ring(4).mode(mode);
    let a = RingBuffer::new(config()).unwrap();
    let b = RingBuffer::new(config()).unwrap();
    let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
    let (mut ok, mut refused) = (0, 0);
    // Rounds of different sizes: some fit, some overrun or fill the ring.
    let mut seq = 0;
    for round in 0..40u64 {
        let n = [3, 40, 170, 9, 400][round as usize % 5];
        let x = write_range(&a, seq, seq + n);
        assert_eq!(write_range(&b, seq, seq + n), x);
        ok += x.0;
        refused += x.1;
        seq += n;
        if round % 4 == 3 {
            // Part of the ring only: a batch that stops mid-page.
            let mut ca = a.consumer(0).unwrap();
            let mut cb = b.consumer(0).unwrap();
            for _ in 0..7 {
                if let Some(ev) = ca.consume().unwrap() {
                    seen_a.push((check(ev.payload).unwrap(), ev.timestamp, ev.lost_events));
                }
            }
            cb.consume_batch(7, |ev| {
                seen_b.push((check(ev.payload).unwrap(), ev.timestamp, ev.lost_events))
            })
            .unwrap();
            // And a peek after a batch sees the next event.
            let pa = ca
                .peek()
                .unwrap()
                .map(|e| (e.timestamp, e.payload.to_vec()));
            let pb = cb
                .peek()
                .unwrap()
                .map(|e| (e.timestamp, e.payload.to_vec()));
            assert_eq!(pa, pb);
            continue;
        }
        read_consume(&mut a.consumer(0).unwrap(), &mut seen_a);
        read_batch(&mut b.consumer(0).unwrap(), max, &mut seen_b);
        assert_eq!(seen_a.len(), seen_b.len(), "round {round}");
    }
    read_consume(&mut a.consumer(0).unwrap(), &mut seen_a);
    read_batch(&mut b.consumer(0).unwrap(), max, &mut seen_b);
    assert_eq!(seen_a, seen_b, "{mode:?} max {max}");
    let (sa, sb) = (a.stats(0).unwrap(), b.stats(0).unwrap());
    assert_eq!(sa, sb);
    assert_identity(&sb, 0);
    assert_eq!(sb.committed, ok);
    assert_eq!(sb.read, seen_b.len() as u64);
    // Losses happened, and each one was reported exactly once.
    let lost: u64 = seen_b.iter().map(|s| s.2).sum();
    let pending = b.consumer(0).unwrap().pending_losses();
    assert_eq!(
        lost + pending,
        sb.overrun + sb.dropped + sb.commit_overrun,
        "{sb:?}"
    );
    assert!(lost > 0, "no losses in {mode:?}: {sb:?}");
    if mode == Mode::ProducerConsumer {
        assert_eq!(sb.dropped, refused);
    }
    // Every written event that was not lost was read, in order.
    let mut prev = None;
    for (d, ts, lost) in &seen_b {
        assert_eq!(*ts, stamp_of(d.seq), "stamp of {}", d.seq);
        if let Some(p) = prev {
            assert!(d.seq > p);
            // Discarded reservations are not events: skip their numbers.
            let skipped = (p + 1..d.seq).filter(|s| s % 11 != 10).count() as u64;
            assert!(
                skipped <= *lost,
                "{skipped} missing before {}, {lost} reported",
                d.seq
            );
        }
        prev = Some(d.seq);
    }
}

#[test]
fn batch_same_as_consume() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        for max in [1, 2, 5, 64, usize::MAX] {
            same_as_consume(mode, max);
        }
    }
}

#[test]
fn batch_on_empty_and_max_zero() {
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    let mut c = buf.consumer(0).unwrap();
    assert_eq!(c.consume_batch(usize::MAX, |_| panic!("empty")).unwrap(), 0);
    drop(c);
    write_range(&buf, 0, 3);
    let mut c = buf.consumer(0).unwrap();
    assert_eq!(c.consume_batch(0, |_| panic!("max 0")).unwrap(), 0);
    assert_eq!(buf.stats(0).unwrap().read, 0);
    let mut n = 0;
    assert_eq!(c.consume_batch(usize::MAX, |_| n += 1).unwrap(), 3);
    assert_eq!(n, 3);
    assert_eq!(
        c.consume_batch(usize::MAX, |_| panic!("drained")).unwrap(),
        0
    );
    assert_identity(&buf.stats(0).unwrap(), 0);
}

/// A panicking callback consumes nothing of the stretch it was given.
#[test]
fn batch_callback_panic_consumes_nothing_of_its_stretch() {
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    write_range(&buf, 0, 5);
    let mut c = buf.consumer(0).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut k = 0;
        c.consume_batch(usize::MAX, |_| {
            k += 1;
            assert!(k < 3, "boom");
        })
    }));
    assert!(r.is_err());
    assert_eq!(buf.stats(0).unwrap().read, 0);
    let mut seen = Vec::new();
    read_batch(&mut c, usize::MAX, &mut seen);
    assert_eq!(seen.len(), 5);
    assert_identity(&buf.stats(0).unwrap(), 0);
}

/// One writer thread, one reader thread using batches: sequence numbers
/// continue exactly after each reported loss, every byte checked.
fn with_writer_thread(mode: Mode, max: usize) {
    const EVENTS: u64 = 200_000;
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(8).mode(mode)).unwrap();
    let done = AtomicBool::new(false);
    let (written, (read, lost)) = std::thread::scope(|s| {
        let w = s.spawn(|| mixed::write_all(&buf, EVENTS, &done));
        let r = s.spawn(|| {
            let mut c = buf.consumer(0).unwrap();
            let (mut next, mut read, mut lost_total) = (0u64, 0u64, 0u64);
            let mut last_ts = 0;
            loop {
                let finished = done.load(Ordering::Acquire);
                let n = c
                    .consume_batch(max, |ev| {
                        let d = check(ev.payload).unwrap();
                        assert_eq!(d.seq, next + ev.lost_events, "continuity");
                        assert_eq!(ev.timestamp, stamp_of(d.seq));
                        assert!(ev.timestamp >= last_ts);
                        last_ts = ev.timestamp;
                        next = d.seq + 1;
                        lost_total += ev.lost_events;
                        read += 1;
                    })
                    .unwrap();
                if n == 0 {
                    if finished {
                        break;
                    }
                    std::hint::spin_loop();
                }
            }
            (read, lost_total + c.pending_losses())
        });
        (w.join().unwrap(), r.join().unwrap())
    });
    mixed::assert_written_and_read(&buf, EVENTS, written, read, lost);
    let s = buf.stats(0).unwrap();
    eprintln!("{mode:?} max {max}: {s:?}");
}

#[test]
fn batch_with_writer_thread() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        for max in [3, usize::MAX] {
            with_writer_thread(mode, max);
        }
    }
}

/// A writer thread with a signal handler nesting writes into it, read in
/// batches: every event intact and in order per writer, each loss reported
/// exactly once, the identity exact.
#[test]
fn batch_under_load_with_signal_writer() {
    let _g = serial();
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let each = |ev: ringtrace_ring::Event<'_>, check: &mut Checker| {
            check.event(ev.payload, ev.timestamp, ev.lost_events);
        };
        // Until 50 batches have found events (and the writers have done a
        // run's worth).
        let (batches, check) = common::load::read_under_signal_load(
            mode,
            "50 batches under load",
            51,
            Duration::from_micros(200),
            |c, check| {
                let mut batches = 0;
                for max in [1, 7, 100, usize::MAX] {
                    let n = c.consume_batch(max, |ev| each(ev, check)).unwrap();
                    batches += u64::from(n > 0);
                }
                batches
            },
            |c, check| while c.consume_batch(usize::MAX, |ev| each(ev, check)).unwrap() > 0 {},
        );
        let nested = check.seen.get(&common::sigwriter::NESTED).copied();
        assert!(batches > 50, "{batches} batches");
        eprintln!("{mode:?}: {batches} batches, {nested:?} nested read");
    }
}
