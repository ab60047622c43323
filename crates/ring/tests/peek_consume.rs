//! `Consumer::peek_marked` + `Consumer::consume_peeked`: consuming the
//! event just peeked without decoding it again gives exactly what
//! `consume` gives (event, time stamp, loss count, accounting), with a
//! writer thread in both modes (in overwrite mode the writer pushes the
//! head between the peek and the consume), with a signal handler nesting
//! writes, and when the mark went stale (a reset, a plain consume, another
//! ring's mark): then it consumes whatever is next, as `consume` does.

mod common;

use common::mixed::{self, size_of, stamp_of};
use common::sigwriter::serial;
use common::{assert_identity, check, fill};
use ringtrace_ring::{Config, Mode, RingBuffer, WriteError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// One writer thread, one reader that peeks with a mark then consumes the
/// mark: the consumed event is the peeked one (bytes, stamp, loss count),
/// sequence numbers continue exactly after each reported loss, the
/// accounting identity holds. Every 7th step peeks twice (the mark stays
/// good), every 13th consumes with a plain `consume` in between (the mark
/// is stale: `consume_peeked` then takes the next event, no duplicate).
fn with_writer_thread(mode: Mode) {
    const EVENTS: u64 = 200_000;
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(8).mode(mode)).unwrap();
    let done = AtomicBool::new(false);
    let (written, (read, lost, fast, stale)) = std::thread::scope(|s| {
        let w = s.spawn(|| mixed::write_all(&buf, EVENTS, &done));
        let r = s.spawn(|| {
            let mut c = buf.consumer(0).unwrap();
            let (mut next, mut read, mut lost_total) = (0u64, 0u64, 0u64);
            let (mut fast, mut stale, mut step) = (0u64, 0u64, 0u64);
            let mut last_ts = 0;
            let mut take = |ts: u64, payload: &[u8], lost: u64| {
                let d = check(payload).unwrap();
                assert_eq!(d.seq, next + lost, "continuity");
                assert_eq!(ts, stamp_of(d.seq));
                assert!(ts >= last_ts);
                last_ts = ts;
                next = d.seq + 1;
                lost_total += lost;
                read += 1;
            };
            loop {
                let finished = done.load(Ordering::Acquire);
                step += 1;
                let Some((ev, mark)) = c.peek_marked().unwrap() else {
                    if finished && c.peek_marked().unwrap().is_none() {
                        break;
                    }
                    std::hint::spin_loop();
                    continue;
                };
                let peeked = (ev.timestamp, ev.payload.to_vec(), ev.lost_events);
                if step % 7 == 0 {
                    let again = c.peek_marked().unwrap().unwrap();
                    assert_eq!(again.1, mark, "a second peek moved the mark");
                }
                if step % 13 == 0 {
                    // The peeked event goes through `consume`; the mark is
                    // then stale.
                    let ev = c.consume().unwrap().unwrap();
                    assert_eq!((ev.timestamp, ev.payload.to_vec(), ev.lost_events), peeked);
                    take(ev.timestamp, ev.payload, ev.lost_events);
                    if let Some(ev) = c.consume_peeked(mark).unwrap() {
                        assert_ne!(ev.payload, &peeked.1[..], "consumed twice");
                        take(ev.timestamp, ev.payload, ev.lost_events);
                        stale += 1;
                    }
                    continue;
                }
                let ev = c.consume_peeked(mark).unwrap().unwrap();
                assert_eq!((ev.timestamp, ev.payload.to_vec(), ev.lost_events), peeked);
                take(ev.timestamp, ev.payload, ev.lost_events);
                fast += 1;
            }
            (read, lost_total + c.pending_losses(), fast, stale)
        });
        (w.join().unwrap(), r.join().unwrap())
    });
    mixed::assert_written_and_read(&buf, EVENTS, written, read, lost);
    let s = buf.stats(0).unwrap();
    // Both paths ran: marks consumed without a decode, and stale marks
    // that fell back to `consume`.
    assert!(fast > 0 && stale > 0, "fast {fast}, stale {stale}");
    eprintln!("{mode:?}: {fast} fast, {stale} stale marks, {s:?}");
}

#[test]
fn peek_consume_with_writer_thread() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        with_writer_thread(mode);
    }
}

/// Byte accounting: the same writes read by `consume` from one buffer and
/// by `peek_marked` + `consume_peeked` from another give the same events
/// and the same counters, `read_bytes` included, across page swaps, losses
/// and time extends.
#[test]
fn peek_consume_same_as_consume() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let config = || Config::new(1).pages_per_ring(4).mode(mode);
        let a = RingBuffer::new(config()).unwrap();
        let b = RingBuffer::new(config()).unwrap();
        let mut seq = 0u64;
        let (mut seen_a, mut seen_b) = (Vec::new(), Vec::new());
        for round in 0..30u64 {
            let n = [3, 40, 170, 9, 400][round as usize % 5];
            for buf in [&a, &b] {
                let mut w = buf.writer(0).unwrap();
                let mut scratch = [0u8; 512];
                for s in seq..seq + n {
                    let p = &mut scratch[..size_of(s)];
                    fill(p, 1, s, 0);
                    match w.write(stamp_of(s), p) {
                        Ok(()) | Err(WriteError::Full) => {}
                        Err(e) => panic!("unexpected write error {e}"),
                    }
                }
            }
            seq += n;
            let mut ca = a.consumer(0).unwrap();
            while let Some(ev) = ca.consume().unwrap() {
                seen_a.push((ev.timestamp, ev.payload.to_vec(), ev.lost_events));
            }
            let mut cb = b.consumer(0).unwrap();
            while let Some((_, mark)) = cb.peek_marked().unwrap() {
                let ev = cb.consume_peeked(mark).unwrap().unwrap();
                seen_b.push((ev.timestamp, ev.payload.to_vec(), ev.lost_events));
            }
            assert_eq!(a.stats(0).unwrap(), b.stats(0).unwrap(), "round {round}");
        }
        assert_eq!(seen_a, seen_b);
        let sb = b.stats(0).unwrap();
        assert_identity(&sb, 0);
        assert!(sb.overrun + sb.dropped > 0, "no loss in {mode:?}: {sb:?}");
        let lost: u64 = seen_b.iter().map(|e| e.2).sum();
        let pending = b.consumer(0).unwrap().pending_losses();
        assert_eq!(lost + pending, sb.overrun + sb.dropped + sb.commit_overrun);
        for (ts, payload, _) in &seen_b {
            assert_eq!(*ts, stamp_of(check(payload).unwrap().seq));
        }
    }
}

/// A reset between the peek and the consume: the reader page was cleared
/// while the position (page, offset 0, pages read) looks the same. The
/// mark is not trusted: nothing is consumed from the cleared page, and the
/// events written after the reset are read next, with exact accounting.
#[test]
fn consume_peeked_after_reset() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let mut scratch = [0u8; 64];
    let mut w = buf.writer(0).unwrap();
    for seq in 0..3 {
        fill(&mut scratch[..40], 1, seq, 0);
        w.write(stamp_of(seq), &scratch[..40]).unwrap();
    }
    let mut c = buf.consumer(0).unwrap();
    let (ev, mark) = c.peek_marked().unwrap().unwrap();
    assert_eq!(check(ev.payload).unwrap().seq, 0);
    buf.reset(0).unwrap();
    assert!(
        c.consume_peeked(mark).unwrap().is_none(),
        "read a reset page"
    );
    let s = buf.stats(0).unwrap();
    assert_eq!(s.read, 0, "{s:?}");
    assert_identity(&s, 0);
    for seq in 10..12 {
        fill(&mut scratch[..40], 1, seq, 0);
        w.write(stamp_of(seq), &scratch[..40]).unwrap();
    }
    let ev = c.consume_peeked(mark).unwrap().unwrap();
    assert_eq!(check(ev.payload).unwrap().seq, 10);
    let ev = c.consume().unwrap().unwrap();
    assert_eq!(check(ev.payload).unwrap().seq, 11);
    assert!(c.consume().unwrap().is_none());
    assert_identity(&buf.stats(0).unwrap(), 0);
}

/// A mark of another ring's consumer is not trusted.
#[test]
fn consume_peeked_mark_of_another_ring() {
    let buf = RingBuffer::new(Config::new(2)).unwrap();
    for ring in 0..2 {
        // Ring 1's events are longer: a mark of ring 0 would cut them.
        write_two(&buf, ring, ring as u8 + 1, 40 + 24 * ring);
    }
    let mut c0 = buf.consumer(0).unwrap();
    let mut c1 = buf.consumer(1).unwrap();
    let (_, mark0) = c0.peek_marked().unwrap().unwrap();
    c1.peek().unwrap().unwrap();
    let ev = c1.consume_peeked(mark0).unwrap().unwrap();
    let d = check(ev.payload).unwrap();
    assert_eq!((d.kind, d.seq), (2, 0));
    let ev = c0.consume_peeked(mark0).unwrap().unwrap();
    assert_eq!(check(ev.payload).unwrap().kind, 1);
    for ring in 0..2 {
        assert_identity(&buf.stats(ring).unwrap(), 1);
    }
}

/// A writer thread with a signal handler nesting writes into it, read with
/// marks: every event intact and in order per writer, each loss reported
/// exactly once, the identity exact.
#[test]
fn peek_consume_under_load_with_signal_writer() {
    let _g = serial();
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        common::load::read_under_signal_load(
            mode,
            "peek/consume under load",
            20_000,
            Duration::from_micros(50),
            |c, check| {
                let mut read = 0;
                for _ in 0..64 {
                    let Some((_, mark)) = c.peek_marked().unwrap() else {
                        break;
                    };
                    let ev = c.consume_peeked(mark).unwrap().unwrap();
                    check.event(ev.payload, ev.timestamp, ev.lost_events);
                    read += 1;
                }
                read
            },
            |c, check| {
                while let Some((_, mark)) = c.peek_marked().unwrap() {
                    let ev = c.consume_peeked(mark).unwrap().unwrap();
                    check.event(ev.payload, ev.timestamp, ev.lost_events);
                }
            },
        );
    }
}

/// A mark of the same ring of another buffer, at the same position, is
/// not trusted: its record there has another length.
#[test]
fn consume_peeked_mark_of_another_buffer() {
    let a = RingBuffer::new(Config::new(1)).unwrap();
    let b = RingBuffer::new(Config::new(1)).unwrap();
    for (buf, len) in [(&a, 40), (&b, 100)] {
        write_two(buf, 0, 1, len);
    }
    let mut ca = a.consumer(0).unwrap();
    let mut cb = b.consumer(0).unwrap();
    let (_, mark_a) = ca.peek_marked().unwrap().unwrap();
    cb.peek().unwrap().unwrap();
    let ev = cb.consume_peeked(mark_a).unwrap().unwrap();
    assert_eq!(ev.payload.len(), 100);
    assert_eq!(check(ev.payload).unwrap().seq, 0);
    assert_identity(&b.stats(0).unwrap(), 1);
}

/// Writes events 0 and 1 of kind `kind`, `len` bytes each, to `ring`.
fn write_two(buf: &RingBuffer, ring: usize, kind: u8, len: usize) {
    let mut w = buf.writer(ring).unwrap();
    let mut scratch = [0u8; 128];
    for seq in 0..2 {
        fill(&mut scratch[..len], kind, seq, 0);
        w.write(stamp_of(seq), &scratch[..len]).unwrap();
    }
}
