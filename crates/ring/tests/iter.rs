//! The non-consuming iterator (`RingBuffer::iter`) against live writers.
//!
//! Every payload carries its sequence number and a byte pattern derived from
//! it (`common::fill`), so a torn copy fails `common::check`. Writers number
//! every attempted write (a refused write uses up its number too), so the
//! iterator's loss reports can be checked exactly: each returned event's
//! sequence number is the previous one's plus one plus its `lost_events`.

mod common;

use common::{assert_identity, check, drain, fill};
use ringtrace_ring::{Config, Mode, RingBuffer, RingIter};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Arc;
use std::time::Duration;

/// How much each live run does, counted rather than timed: passes of the
/// iterator, and writes attempted.
const PASSES: u64 = 200;
const WRITES: u64 = 300_000;

fn size_of(seq: u64) -> usize {
    24 + (seq.wrapping_mul(2654435761) % 300) as usize
}

/// Time stamp of event `seq`; every 97th jumps far ahead, so time extends
/// (and their reconstruction) are exercised.
fn ts_of(seq: u64) -> u64 {
    seq * 3 + 1 + (seq / 97) * (1 << 28)
}

/// Writes events numbered from 0 until `stop` (or `limit` attempts);
/// returns (attempted, refused).
fn write_loop(buf: &RingBuffer, stop: &AtomicBool, limit: u64) -> (u64, u64) {
    let mut w = buf.writer(0).unwrap();
    let mut scratch = [0u8; 400];
    let (mut seq, mut refused) = (0u64, 0u64);
    while seq < limit && !stop.load(Relaxed) {
        let p = &mut scratch[..size_of(seq)];
        fill(p, 1, seq, 0);
        common::refused_if_full(w.write(ts_of(seq), p), &mut refused, || {
            format!("write {seq}")
        });
        seq += 1;
    }
    (seq, refused)
}

/// What one pass of an iterator saw.
#[derive(Debug, Default)]
struct Pass {
    seen: u64,
    lost: u64,
    first: Option<u64>,
    last: Option<u64>,
}

/// Iterates until caught up (or `max` events), checking every event: the
/// payload is intact, the time stamp is the writer's, and the sequence
/// number continues exactly after the reported losses.
fn pass(it: &mut RingIter<'_>, max: u64) -> Pass {
    let mut p = Pass::default();
    let skipped_before = it.skipped();
    while p.seen < max {
        let Some(ev) = it.next().unwrap() else { break };
        let d = check(ev.payload).unwrap_or_else(|e| panic!("torn or corrupt event: {e}"));
        assert_eq!(ev.timestamp, ts_of(d.seq), "time stamp of seq {}", d.seq);
        if let Some(last) = p.last {
            assert_eq!(
                d.seq,
                last + 1 + ev.lost_events,
                "seq after {last} with {} lost",
                ev.lost_events
            );
            p.lost += ev.lost_events;
        } else {
            p.first = Some(d.seq);
        }
        p.last = Some(d.seq);
        p.seen += 1;
    }
    // seen + skipped covers the range from the first to the last seen.
    if let (Some(first), Some(last)) = (p.first, p.last) {
        assert_eq!(p.seen + p.lost, last - first + 1, "{p:?}");
        let skipped = it.skipped() - skipped_before;
        // `skipped` also counts the losses before this pass's first event
        // when the iterator is reused.
        assert!(skipped >= p.lost, "skipped {skipped} < reported {}", p.lost);
    }
    p
}

/// A quiet ring: the iterator returns exactly what was written, with the
/// consumer's time stamps, and consumes nothing.
#[test]
fn quiet_ring_returns_exactly_what_was_written() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(16).mode(mode)).unwrap();
        let stop = AtomicBool::new(false);
        let (n, refused) = write_loop(&buf, &stop, 300);
        assert_eq!((n, refused), (300, 0));
        for _ in 0..2 {
            let mut it = buf.iter(0).unwrap();
            let p = pass(&mut it, u64::MAX);
            assert_eq!(
                (p.first, p.last, p.seen, p.lost),
                (Some(0), Some(299), 300, 0)
            );
            assert!(it.next().unwrap().is_none());
        }
        let read = drain(&buf, 0);
        assert_eq!(read.len(), 300);
        for (i, (d, ts, lost)) in read.iter().enumerate() {
            assert_eq!((d.seq, *ts, *lost), (i as u64, ts_of(i as u64), 0));
        }
        assert_identity(&buf.stats(0).unwrap(), 0);
        // After the consumer drained it, the iterator has nothing.
        assert!(buf.iter(0).unwrap().next().unwrap().is_none());
    }
}

/// Overwrite mode, writer stopped after lapping the ring: the iterator
/// starts at the oldest surviving event, exactly where the consumer starts.
#[test]
fn lapped_quiet_ring_starts_at_the_oldest_event() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let stop = AtomicBool::new(false);
    write_loop(&buf, &stop, 5000);
    let mut it = buf.iter(0).unwrap();
    let p = pass(&mut it, u64::MAX);
    assert_eq!(p.lost, 0);
    assert_eq!(p.last, Some(4999));
    let read = drain(&buf, 0);
    assert_eq!(read.first().map(|r| r.0.seq), p.first);
    assert_eq!(read.len() as u64, p.seen);
    assert_identity(&buf.stats(0).unwrap(), 0);
}

/// The iterator follows a consumer that passes it, and counts the events
/// it consumed meanwhile as skipped.
#[test]
fn consumer_passing_the_iterator_is_counted() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(16)).unwrap();
    let stop = AtomicBool::new(false);
    write_loop(&buf, &stop, 250);
    assert_eq!(buf.stats(0).unwrap().overrun, 0);
    let mut it = buf.iter(0).unwrap();
    let first = check(it.next().unwrap().unwrap().payload).unwrap().seq;
    assert_eq!(first, 0);
    {
        let mut c = buf.consumer(0).unwrap();
        for _ in 0..150 {
            c.consume().unwrap().unwrap();
        }
    }
    let ev = it.next().unwrap().unwrap();
    let d = check(ev.payload).unwrap();
    assert_eq!((d.seq, ev.lost_events), (150, 149));
    assert_eq!(it.skipped(), 149);
    // A consumer behind the iterator does not move it.
    let mut c = buf.consumer(0).unwrap();
    assert_eq!(
        check(c.consume().unwrap().unwrap().payload).unwrap().seq,
        150
    );
    drop(c);
    let ev = it.next().unwrap().unwrap();
    assert_eq!((check(ev.payload).unwrap().seq, ev.lost_events), (151, 0));
}

/// A ring of four pages in `mode`, and a thread running [`write_loop`] on
/// it until `stop` is set.
fn ring_with_writer(
    mode: Mode,
) -> (
    Arc<RingBuffer>,
    Arc<AtomicBool>,
    std::thread::JoinHandle<(u64, u64)>,
) {
    let buf = Arc::new(RingBuffer::new(Config::new(1).pages_per_ring(4).mode(mode)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (buf, stop) = (buf.clone(), stop.clone());
        std::thread::spawn(move || write_loop(&buf, &stop, u64::MAX))
    };
    (buf, stop, writer)
}

/// A writer thread writes without pause while passes of the iterator walk
/// the ring; afterwards a consumer still reads everything not overrun.
fn live_writer(mode: Mode) {
    let (buf, stop, writer) = ring_with_writer(mode);
    // Until enough passes have seen events while the writer wrote: in
    // overwrite mode a run's worth, having lapped the iterator at least
    // once; in producer/consumer mode until the ring was full and refused
    // a write (nothing is consumed, so nothing changes after that, and a
    // writer that yields at each refusal makes slow progress on a loaded
    // machine). Counted, not timed: a descheduled writer only makes the
    // run longer.
    let hang = common::Hang::guard("the iterator's passes over a live writer");
    let (mut passes, mut seen, mut lost, mut laps) = (0u64, 0u64, 0u64, 0u64);
    let mut it = buf.iter(0).unwrap();
    loop {
        let s = buf.stats(0).unwrap();
        let written = s.written;
        let wrote = if mode == Mode::Overwrite {
            written >= WRITES && laps > 0
        } else {
            s.dropped > 0
        };
        if passes >= PASSES && seen > 0 && wrote {
            break;
        }
        hang.check(|| format!("{passes} passes, {seen} seen, {laps} laps, {written} written"));
        let p = pass(&mut it, 20_000);
        seen += p.seen;
        lost += p.lost;
        laps += u64::from(p.lost > 0);
        passes += 1;
        if passes % 3 == 0 {
            it = buf.iter(0).unwrap();
        }
    }
    stop.store(true, Relaxed);
    let (written, refused) = writer.join().unwrap();
    let s = buf.stats(0).unwrap();
    assert_eq!(s.written, written);
    assert_eq!(s.dropped, refused);
    assert_eq!(s.read, 0, "the iterator consumed: {s:?}");
    // Everything still buffered is read by a consumer, in order.
    let read = drain(&buf, 0);
    let mut next = None;
    for (d, ts, lost) in &read {
        assert_eq!(*ts, ts_of(d.seq));
        if let Some(n) = next {
            assert_eq!(d.seq, n + lost);
        }
        next = Some(d.seq + 1);
    }
    assert_identity(&buf.stats(0).unwrap(), 0);
    if mode == Mode::ProducerConsumer {
        // Nothing is ever overwritten: the consumer reads all that was
        // committed, from the very first event.
        assert_eq!(read.first().map(|r| r.0.seq), Some(0));
        assert_eq!(read.len() as u64, written - refused);
    } else {
        assert!(laps > 0, "the writer never lapped the iterator");
    }
    assert!(seen > 0);
    eprintln!("{mode:?}: {passes} passes, {seen} events seen, {lost} skipped in {laps} lapped passes, written {written}");
}

common::cases::test_cases! { live_writer:
    live_writer_overwrite => (Mode::Overwrite);
    live_writer_producer_consumer => (Mode::ProducerConsumer);
}

/// Writer, consumer and iterator all at once. The consumer checks its own
/// continuity; the iterator follows or falls behind it; afterwards the
/// accounting identity holds.
fn with_consumer(mode: Mode) {
    let (buf, stop, writer) = ring_with_writer(mode);
    let consumer_done = Arc::new(AtomicBool::new(false));
    let consumer = {
        let (buf, done) = (buf.clone(), consumer_done.clone());
        std::thread::spawn(move || {
            let (mut read, mut lost) = (0u64, 0u64);
            let mut next: Option<u64> = None;
            let pending = common::consume_until_done(
                &buf,
                &done,
                64,
                |ev, d| {
                    assert_eq!(ev.timestamp, ts_of(d.seq));
                    if let Some(n) = next {
                        assert_eq!(d.seq, n + ev.lost_events);
                    }
                    next = Some(d.seq + 1);
                    read += 1;
                    lost += ev.lost_events;
                },
                // Sleep, not yield: the reader lock is a spin lock without
                // fairness, and a consumer re-taking it at once can starve
                // the iterator on a loaded machine.
                |_| std::thread::sleep(Duration::from_micros(20)),
            );
            (read, lost + pending)
        })
    };
    // Until enough passes have seen events while the writer wrote and the
    // consumer read a run's worth (a tenth of the lone writer's: in
    // producer/consumer mode the writer yields at each refusal, slow on a
    // loaded machine): counted, not timed.
    let hang = common::Hang::guard("the iterator's passes beside a consumer");
    let mut it = buf.iter(0).unwrap();
    let (mut passes, mut seen, mut skipped) = (0u64, 0, 0);
    loop {
        let s = buf.stats(0).unwrap();
        if passes >= PASSES && seen > 0 && s.written >= WRITES / 10 && s.read >= WRITES / 100 {
            break;
        }
        hang.check(|| format!("{passes} passes, {seen} seen, {s:?}"));
        let p = pass(&mut it, 5_000);
        seen += p.seen;
        skipped += p.lost;
        passes += 1;
    }
    stop.store(true, Relaxed);
    let (written, refused) = writer.join().unwrap();
    consumer_done.store(true, Release);
    let (read, lost) = consumer.join().unwrap();
    let s = buf.stats(0).unwrap();
    assert_identity(&s, 0);
    assert_eq!(s.read, read);
    assert_eq!(s.written, written);
    assert_eq!(s.dropped, refused);
    assert_eq!(lost, s.overrun + s.dropped + s.commit_overrun, "{s:?}");
    assert!(seen > 0);
    eprintln!("{mode:?}: iterator saw {seen}, skipped {skipped}; consumer read {read}; {s:?}");
}

common::cases::test_cases! { with_consumer:
    iterator_and_consumer_overwrite => (Mode::Overwrite);
    iterator_and_consumer_producer_consumer => (Mode::ProducerConsumer);
}

// ---- a signal handler writing nested events ---------------------------------

/// Payload kind of the outer writer's events (the handler's are
/// `sigwriter::NESTED`).
const OUTER: u8 = 1;

/// The outer writer of `nested_signal_writes`: writes events of kind
/// `OUTER` until `stop`; returns the writes attempted and the refused.
fn write_outer_until(w: &mut ringtrace_ring::Writer<'_>, stop: &AtomicBool) -> (u64, u64) {
    use common::sigwriter::CLOCK;
    let mut scratch = [0u8; 400];
    let (mut seq, mut refused) = (0u64, 0u64);
    while !stop.load(Relaxed) {
        let len = size_of(seq);
        let reserved = w.reserve(CLOCK.fetch_add(1, Relaxed), len);
        if let Some(mut r) =
            common::refused_if_full(reserved, &mut refused, || "outer write".into())
        {
            fill(&mut scratch[..len], OUTER, seq, 0);
            r.copy_from_slice(&scratch[..len]);
            r.commit();
        }
        seq += 1;
    }
    (seq, refused)
}

/// The consumer of `nested_signal_writes` in producer/consumer mode: makes
/// room until `stop`, checking each event; returns how many it read.
fn consume_until(buf: &RingBuffer, stop: &AtomicBool) -> u64 {
    let mut read = 0u64;
    while !stop.load(Relaxed) {
        let mut c = buf.consumer(0).unwrap();
        for _ in 0..16 {
            let Some(ev) = c.consume().unwrap() else {
                break;
            };
            check(ev.payload).unwrap();
            read += 1;
        }
        drop(c);
        std::thread::sleep(Duration::from_micros(200));
    }
    read
}

/// One pass of the iterator in `nested_signal_writes`: every event intact,
/// time never backwards, each writer kind's numbers increasing with every
/// gap covered by the losses reported since. Returns the events seen and
/// the nested ones among them.
fn nested_pass(it: &mut RingIter<'_>) -> (u64, u64) {
    use common::sigwriter::NESTED;
    let (mut seen, mut nested_seen) = (0u64, 0u64);
    // Per writer kind: last number seen and losses reported since.
    let mut last: [Option<(u64, u64)>; 3] = [None; 3];
    let mut last_ts = 0;
    for _ in 0..20_000 {
        let Some(ev) = it.next().unwrap() else { break };
        let d = check(ev.payload).unwrap_or_else(|e| panic!("torn or corrupt event: {e}"));
        assert!(ev.timestamp >= last_ts, "time went backwards");
        last_ts = ev.timestamp;
        for slot in last.iter_mut().flatten() {
            slot.1 += ev.lost_events;
        }
        let k = d.kind as usize;
        if let Some((prev, lost_since)) = last[k] {
            assert!(d.seq > prev, "kind {k}: {} after {prev}", d.seq);
            assert!(
                d.seq - prev - 1 <= lost_since,
                "kind {k}: {} missing between {prev} and {}, {lost_since} reported",
                d.seq - prev - 1,
                d.seq
            );
        }
        last[k] = Some((d.seq, 0));
        seen += 1;
        nested_seen += u64::from(d.kind == NESTED);
    }
    (seen, nested_seen)
}

/// A thread writes while a signal handler (`common::sigwriter`, signalled
/// every 50 us) writes nested events into the same ring; the iterator walks
/// it meanwhile. Every event is intact,
/// each writer's numbers strictly increase, and every number missing between
/// two events of one writer is covered by the losses reported in between.
fn nested_signal_writes(mode: Mode) {
    use common::sigwriter::{self, Signaller};
    let _serial = sigwriter::serial();
    let buf = Arc::new(RingBuffer::new(Config::new(1).pages_per_ring(4).mode(mode)).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let writer = {
        let (buf, stop) = (buf.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut w = buf.writer(0).unwrap();
            tid_tx.send(sigwriter::become_writer() as usize).unwrap();
            write_outer_until(&mut w, &stop)
        })
    };
    let tid = tid_rx.recv().unwrap() as libc::pthread_t;
    let signaller = Signaller::start(&buf, 0, tid, Duration::from_micros(50));
    // In producer/consumer mode a consumer makes room (the iterator alone
    // would see a full ring and nothing new).
    let consumer = (mode == Mode::ProducerConsumer).then(|| {
        let (buf, stop) = (buf.clone(), stop.clone());
        std::thread::spawn(move || consume_until(&buf, &stop))
    });
    let mut it = buf.iter(0).unwrap();
    let (mut passes, mut seen, mut nested_seen) = (0u64, 0u64, 0u64);
    // Until the iterator has returned a nested event, the handler has
    // written 2,000 and the writer a tenth of a run's worth (it yields at
    // each refusal in producer/consumer mode): counted, not timed (on a
    // loaded machine the writer gets few time slices, and a nested event
    // may be overwritten before the iterator's turn).
    let hang = common::Hang::guard("a nested event seen by the iterator");
    loop {
        let (nested, written) = (sigwriter::SEQ.load(Relaxed), buf.stats(0).unwrap().written);
        if passes >= PASSES && nested_seen > 0 && nested >= 2_000 && written >= WRITES / 10 {
            break;
        }
        hang.check(|| format!("{passes} passes, {seen} seen ({nested_seen} nested); {nested} nested and {written} in all written"));
        passes += 1;
        let (s, n) = nested_pass(&mut it);
        seen += s;
        nested_seen += n;
    }
    stop.store(true, Relaxed);
    // No signal after this: the writer thread is joined only then.
    signaller.stop();
    let (outer, refused) = writer.join().unwrap();
    let consumed = consumer.map_or(0, |c| c.join().unwrap());
    let nested = sigwriter::SEQ.load(Relaxed);
    let s = buf.stats(0).unwrap();
    assert_eq!(s.written, outer + nested, "{s:?}");
    assert_eq!(
        (
            sigwriter::REFUSED.load(Relaxed),
            sigwriter::OTHER.load(Relaxed)
        ),
        (0, 0)
    );
    assert_eq!(
        s.dropped + s.commit_overrun,
        refused + sigwriter::LOST.load(Relaxed)
    );
    assert_eq!(s.read, consumed, "the iterator consumed");
    let read = drain(&buf, 0);
    assert_identity(&buf.stats(0).unwrap(), 0);
    if mode == Mode::ProducerConsumer {
        assert_eq!(consumed + read.len() as u64, s.committed);
    }
    assert!(nested > 100, "only {nested} nested writes");
    assert!(nested_seen > 0, "the iterator saw no nested event");
    eprintln!("{mode:?}: {outer} outer + {nested} nested written, iterator saw {seen} ({nested_seen} nested)");
}

common::cases::test_cases! { nested_signal_writes:
    nested_signal_writes_overwrite => (Mode::Overwrite);
    nested_signal_writes_producer_consumer => (Mode::ProducerConsumer);
}
