//! Accounting in both modes, with a reader thread consuming while writers
//! write: every payload byte is checked, sequence numbers continue exactly
//! after each reported loss, time stamps never go backwards, and
//! `written == read + overrun + dropped + commit_overrun + still buffered`.

mod common;

use common::{assert_identity, check, drain, fill};
use ringtrace_ring::{Config, Mode, RingBuffer, WriteError};
use std::sync::atomic::{AtomicBool, Ordering};

const EVENTS: u64 = 60_000;

fn size_of(seq: u64) -> usize {
    24 + (seq.wrapping_mul(2654435761) % 300) as usize
}

/// Writes EVENTS events to `ring`, returning (written ok, refused).
fn writer(buf: &RingBuffer, ring: usize) -> (u64, u64) {
    let mut w = buf.writer(ring).unwrap();
    let mut scratch = [0u8; 400];
    let (mut ok, mut refused) = (0, 0);
    for seq in 0..EVENTS {
        let p = &mut scratch[..size_of(seq)];
        fill(p, 1, seq, ring as u64);
        match w.write(seq * 3 + 1, p) {
            Ok(()) => ok += 1,
            Err(WriteError::Full) => refused += 1,
            Err(e) => panic!("unexpected write error {e}"),
        }
    }
    (ok, refused)
}

/// Reads ring `ring` until `done` and the ring is empty; checks continuity.
fn reader(buf: &RingBuffer, rings: usize, done: &AtomicBool) -> Vec<(u64, u64)> {
    let mut last: Vec<Option<(u64, u64)>> = vec![None; rings];
    let mut totals = vec![(0u64, 0u64); rings]; // (read, lost)
    loop {
        let finished = done.load(Ordering::Acquire);
        let mut any = false;
        for (ring, total) in totals.iter_mut().enumerate() {
            let mut c = buf.consumer(ring).unwrap();
            for _ in 0..64 {
                let Some(ev) = c.consume().unwrap() else {
                    break;
                };
                any = true;
                let d = check(ev.payload).unwrap();
                assert_eq!(d.reference, ring as u64);
                let expected = last[ring].map_or(0, |(s, _)| s + 1) + ev.lost_events;
                assert_eq!(
                    d.seq, expected,
                    "ring {ring}: seq continues after {} lost",
                    ev.lost_events
                );
                if let Some((_, ts)) = last[ring] {
                    assert!(ev.timestamp >= ts, "time went backwards");
                }
                assert_eq!(ev.timestamp, d.seq * 3 + 1, "time stamp of seq {}", d.seq);
                last[ring] = Some((d.seq, ev.timestamp));
                total.0 += 1;
                total.1 += ev.lost_events;
            }
        }
        if finished && !any {
            for (ring, total) in totals.iter_mut().enumerate() {
                // Drops after the last event are not carried by any event.
                total.1 += buf.consumer(ring).unwrap().pending_losses();
            }
            return totals;
        }
        if !any {
            std::thread::yield_now();
        }
    }
}

fn run(mode: Mode, rings: usize, pages: usize) {
    let buf = RingBuffer::new(Config::new(rings).pages_per_ring(pages).mode(mode)).unwrap();
    let done = AtomicBool::new(false);
    let (results, totals) = std::thread::scope(|s| {
        let writers: Vec<_> = (0..rings)
            .map(|ring| {
                s.spawn({
                    let buf = &buf;
                    move || writer(buf, ring)
                })
            })
            .collect();
        let r = s.spawn(|| reader(&buf, rings, &done));
        let results: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        done.store(true, Ordering::Release);
        (results, r.join().unwrap())
    });
    for ring in 0..rings {
        let s = buf.stats(ring).unwrap();
        assert_identity(&s, 0);
        assert_eq!(s.written, EVENTS, "ring {ring}: {s:?}");
        assert_eq!(s.entries, 0, "drained: {s:?}");
        assert_eq!(s.bytes, 0, "drained: {s:?}");
        assert_eq!(totals[ring].0, s.read);
        assert_eq!(
            totals[ring].1,
            s.overrun + s.dropped + s.commit_overrun,
            "every loss reported: {s:?}"
        );
        let (ok, refused) = results[ring];
        assert_eq!(refused, s.dropped);
        assert_eq!(ok, s.committed);
        match mode {
            Mode::Overwrite => assert_eq!(s.dropped, 0),
            Mode::ProducerConsumer => assert_eq!(s.overrun, 0),
        }
    }
}

#[test]
fn overwrite_with_a_concurrent_reader() {
    run(Mode::Overwrite, 1, 4);
}

#[test]
fn producer_consumer_with_a_concurrent_reader() {
    run(Mode::ProducerConsumer, 1, 4);
}

#[test]
fn two_writer_threads_each_with_its_ring() {
    run(Mode::Overwrite, 2, 8);
    run(Mode::ProducerConsumer, 2, 8);
}

#[test]
fn single_threaded_both_modes() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(3).mode(mode)).unwrap();
        let (ok, refused) = writer(&buf, 0);
        let before = buf.stats(0).unwrap();
        let got = drain(&buf, 0);
        // What the test drained is the buffered part of the snapshot.
        assert_identity(&before, got.len() as u64);
        let after = buf.stats(0).unwrap();
        assert_identity(&after, 0);
        assert_eq!(after.written, ok + refused);
        let mut prev: Option<u64> = None;
        for (d, ts, lost) in &got {
            assert_eq!(d.seq, prev.map_or(0, |p| p + 1) + lost);
            assert_eq!(*ts, d.seq * 3 + 1);
            prev = Some(d.seq);
        }
        if mode == Mode::ProducerConsumer {
            assert_eq!(got.len() as u64, ok, "nothing written and unread is lost");
        }
    }
}
