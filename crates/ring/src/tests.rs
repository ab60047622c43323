//! Deterministic nesting at each labelled step of the write path, through
//! the test-only hook, plus discard, time extend and commit-overrun cases.

use crate::write::{hook, Label};
use crate::{Config, Mode, RingBuffer, WriteError};
use std::cell::Cell;

/// Payload: seq (8 bytes), declared length (4 bytes), then a pattern.
fn payload(seq: u64, len: usize) -> Vec<u8> {
    assert!(len >= 12);
    let mut p = vec![0u8; len];
    p[..8].copy_from_slice(&seq.to_le_bytes());
    p[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    for (i, b) in p.iter_mut().enumerate().skip(12) {
        *b = (seq as usize).wrapping_mul(31).wrapping_add(i) as u8;
    }
    p
}

/// Checks a payload read back and returns its seq.
fn verify(read: &[u8]) -> u64 {
    let seq = u64::from_le_bytes(read[..8].try_into().unwrap());
    let len = u32::from_le_bytes(read[8..12].try_into().unwrap()) as usize;
    assert_eq!(read.len(), (len + 3) & !3, "rounded length of seq {seq}");
    assert_eq!(&read[..len], &payload(seq, len)[..], "payload of seq {seq}");
    assert!(
        read[len..].iter().all(|&b| b == 0),
        "alignment tail of seq {seq} is zeroed"
    );
    seq
}

fn drain(buf: &RingBuffer, ring: usize) -> Vec<(u64, u64, u64)> {
    let mut c = buf.consumer(ring).unwrap();
    let mut out = vec![];
    while let Some(ev) = c.consume().unwrap() {
        out.push((verify(ev.payload), ev.timestamp, ev.lost_events));
    }
    out
}

/// Called after a full drain: what the writer's pages committed was all
/// read or overrun, and every attempt is accounted for. Independent counts
/// (`entries` is derived from them, so it is checked, not used).
fn assert_accounting(buf: &RingBuffer, ring: usize) {
    let s = buf.stats(ring).unwrap();
    assert_eq!(s.committed, s.read + s.overrun, "{s:?}");
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun,
        "{s:?}"
    );
    assert_eq!(s.entries, 0, "{s:?}");
    assert_eq!(s.corruptions, 0, "{s:?}");
}

/// One ring of 2 pages in producer/consumer mode.
fn two_page_producer_consumer() -> RingBuffer {
    RingBuffer::new(
        Config::new(1)
            .pages_per_ring(2)
            .mode(Mode::ProducerConsumer),
    )
    .unwrap()
}

/// Writes 100-byte events (sequence numbers from 0, time stamps from
/// `ts0` on) until a write fails (the ring is full, in producer/consumer
/// mode); returns how many landed.
fn fill_until_full(w: &mut crate::Writer<'_>, ts0: u64) -> u64 {
    let mut seq = 0;
    while w.write(ts0 + seq, &payload(seq, 100)).is_ok() {
        seq += 1;
    }
    seq
}

thread_local! {
    static ARMED: Cell<Option<Label>> = const { Cell::new(None) };
    static BUF: Cell<*const RingBuffer> = const { Cell::new(std::ptr::null()) };
    static FIRED: Cell<u32> = const { Cell::new(0) };
}

const NESTED_SEQ: u64 = 1_000_000;

/// The hook: at the armed label, perform one nested write (as a signal
/// handler would), once.
fn nest_once(label: Label) {
    fire_once(label, |buf| {
        // SAFETY: this nested write completes before the interrupted one
        // resumes.
        let mut w = unsafe { buf.nested_writer(0) }.unwrap();
        w.write(999_999, &payload(NESTED_SEQ, 16)).unwrap();
    });
}

/// Inside a hook: at the armed label, once (counted in `FIRED`), runs
/// `nested` on the buffer under test, as a signal handler would.
fn fire_once(label: Label, nested: impl FnOnce(&RingBuffer)) {
    if ARMED.with(|a| a.get()) != Some(label) {
        return;
    }
    ARMED.with(|a| a.set(None));
    FIRED.with(|f| f.set(f.get() + 1));
    let buf = BUF.with(|b| b.get());
    // SAFETY: the test keeps the buffer alive while the hook is installed;
    // we are "inside a handler" of the thread that holds ring 0's writer.
    nested(unsafe { &*buf });
}

fn with_hook<R>(buf: &RingBuffer, label: Label, f: impl FnOnce() -> R) -> R {
    BUF.with(|b| b.set(buf));
    ARMED.with(|a| a.set(Some(label)));
    FIRED.with(|f| f.set(0));
    hook::HOOK.with(|h| h.set(Some(nest_once)));
    let r = f();
    hook::HOOK.with(|h| h.set(None));
    assert_eq!(
        FIRED.with(|f| f.get()),
        1,
        "the nested write at {label:?} ran"
    );
    r
}

/// A ring of four pages with event 0 written at `first` (time stamp,
/// payload length), then event 1 at `second` with the nested write of
/// [`with_hook`] armed at `label`.
fn two_events_nested_at(label: Label, first: (u64, usize), second: (u64, usize)) -> RingBuffer {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let mut w = buf.writer(0).unwrap();
    w.write(first.0, &payload(0, first.1)).unwrap();
    with_hook(&buf, label, || {
        w.write(second.0, &payload(1, second.1)).unwrap()
    });
    drop(w);
    buf
}

/// Fast-path labels: the outer event fits on the tail page.
#[test]
fn nested_write_at_each_fast_path_step() {
    for (label, nested_first) in [
        (Label::E, true),
        (Label::A, true),
        (Label::B, true),
        (Label::C, false),
        (Label::D, false),
        (Label::K, false),
        (Label::L, false),
    ] {
        let buf = two_events_nested_at(label, (1000, 40), (2000, 40));
        // Both events are committed as soon as the outer write returns.
        let got = drain(&buf, 0);
        let seqs: Vec<u64> = got.iter().map(|e| e.0).collect();
        let expect = if nested_first {
            vec![0, NESTED_SEQ, 1]
        } else {
            vec![0, 1, NESTED_SEQ]
        };
        assert_eq!(seqs, expect, "order with a nested write at {label:?}");
        // Nested events carry the time of the event they interrupted (or of
        // the one before, if the outer had not reserved yet).
        let times: Vec<u64> = got.iter().map(|e| e.1).collect();
        let expect = match label {
            // After L the outer write has ended: the "nested" one is outermost
            // and carries its own stamp.
            Label::L => vec![1000, 2000, 999_999],
            _ if nested_first => vec![1000, 1000, 2000],
            _ => vec![1000, 2000, 2000],
        };
        assert_eq!(
            times, expect,
            "time stamps with a nested write at {label:?}"
        );
        assert_accounting(&buf, 0);
        assert_eq!(buf.stats(0).unwrap().written, 3);
    }
}

/// Between reserve and commit (the caller filling its payload).
#[test]
fn nested_write_between_reserve_and_commit() {
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    let mut w = buf.writer(0).unwrap();
    let mut r = w.reserve(500, 24).unwrap();
    r.copy_from_slice(&payload(7, 24));
    // A nested write lands after the reservation...
    {
        // SAFETY: completes before the outer reservation is touched again.
        let mut n = unsafe { buf.nested_writer(0) }.unwrap();
        n.write(9_999, &payload(8, 12)).unwrap();
    }
    // ...and is not visible while the outer write is uncommitted.
    assert!(buf.consumer(0).unwrap().consume().unwrap().is_none());
    r.commit();
    let got = drain(&buf, 0);
    assert_eq!(
        got.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(),
        vec![(7, 500), (8, 500)]
    );
    assert_accounting(&buf, 0);
}

/// Slow-path labels: the outer event overflows the tail page (F, G, T1,
/// T2) or also pushes the head (P1, P2).
#[test]
fn nested_write_at_each_slow_path_step() {
    for label in [Label::F, Label::G, Label::T1, Label::T2] {
        // 2100 bytes do not fit after 2008: the slow path runs.
        let buf = two_events_nested_at(label, (10, 2000), (20, 2100));
        let got = drain(&buf, 0);
        let seqs: Vec<u64> = got.iter().map(|e| e.0).collect();
        // The outer write had not reserved yet: the nested one lands first.
        assert_eq!(
            seqs,
            vec![0, NESTED_SEQ, 1],
            "order with a nested write at {label:?}"
        );
        let times: Vec<u64> = got.iter().map(|e| e.1).collect();
        assert!(
            times.windows(2).all(|t| t[0] <= t[1]),
            "{label:?}: {times:?}"
        );
        assert_eq!(times[2], 20);
        assert_accounting(&buf, 0);
    }
    for label in [Label::P0, Label::P1, Label::P2] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(3)).unwrap();
        let mut w = buf.writer(0).unwrap();
        for seq in 0..3 {
            w.write(10 + seq, &payload(seq, 3000)).unwrap();
        }
        // The 4th big event overflows the last page into the head: push.
        with_hook(&buf, label, || w.write(20, &payload(3, 3000)).unwrap());
        let got = drain(&buf, 0);
        let seqs: Vec<u64> = got.iter().map(|e| e.0).collect();
        let s = buf.stats(0).unwrap();
        assert_accounting(&buf, 0);
        // Page 0 was overwritten by the push the nested write helped finish;
        // both the nested and the outer event then fit on it.
        assert_eq!(seqs, vec![1, 2, NESTED_SEQ, 3], "{label:?}");
        assert_eq!(s.overrun, 1, "{label:?}: {s:?}");
        assert_eq!(got[0].2, 1, "the reader is told 1 event was lost");
    }
}

#[test]
fn discard_gives_space_back_or_pads() {
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    let mut w = buf.writer(0).unwrap();
    w.write(100, &payload(0, 20)).unwrap();
    // Nothing after it: the space is reclaimed (an 8-byte extend keeps the
    // delta), and later time stamps stay exact.
    let r = w.reserve(150, 20).unwrap();
    assert_eq!(r.stored_delta(), 50);
    r.discard();
    // Dropped without commit: discarded too.
    drop(w.reserve(160, 32).unwrap());
    w.write(200, &payload(1, 20)).unwrap();
    // A discard after a nested write cannot reclaim: it becomes padding.
    let r = w.reserve(300, 20).unwrap();
    {
        // SAFETY: completes before the reservation is touched again.
        let mut n = unsafe { buf.nested_writer(0) }.unwrap();
        n.write(0, &payload(2, 12)).unwrap();
    }
    r.discard();
    w.write(400, &payload(3, 12)).unwrap();
    let got = drain(&buf, 0);
    assert_eq!(
        got.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(),
        vec![(0, 100), (1, 200), (2, 300), (3, 400)]
    );
    let s = buf.stats(0).unwrap();
    assert_eq!(s.written, 4, "discarded events are not attempts: {s:?}");
    assert_accounting(&buf, 0);
    assert_eq!(s.bytes, 0, "all bytes accounted for after draining: {s:?}");
}

#[test]
fn time_extends_and_large_first_stamp() {
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    let mut w = buf.writer(0).unwrap();
    let base = 1_700_000_000_000_000_000u64;
    let stamps = [
        base,
        base + 1,
        base + 1 + ((1 << 27) - 1),
        base + 1 + ((1 << 27) - 1) + (1 << 27),
        base + (1 << 40),
        base + (1 << 40), // equal stamps: delta 0
        base + 5,         // going backwards: raised to the previous stamp
    ];
    for (i, ts) in stamps.iter().enumerate() {
        w.write(*ts, &payload(i as u64, 12)).unwrap();
    }
    let got = drain(&buf, 0);
    let times: Vec<u64> = got.iter().map(|e| e.1).collect();
    let mut expect = stamps.to_vec();
    expect[6] = base + (1 << 40);
    assert_eq!(times, expect);
}

#[test]
fn commit_overrun_when_nested_writes_lap_the_ring() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(3)).unwrap();
    let mut w = buf.writer(0).unwrap();
    let mut outer = w.reserve(1, 100).unwrap();
    outer.copy_from_slice(&payload(0, 100));
    // SAFETY: the nested writes all complete before the outer commit.
    let mut n = unsafe { buf.nested_writer(0) }.unwrap();
    let mut seq = 1;
    let err = loop {
        match n.write(2, &payload(seq, 1000)) {
            Ok(()) => seq += 1,
            Err(e) => break e,
        }
        assert!(
            seq < 100,
            "nested writes never hit the uncommitted outer event"
        );
    };
    assert_eq!(err, WriteError::CommitOverrun);
    outer.commit();
    let got = drain(&buf, 0);
    let seqs: Vec<u64> = got.iter().map(|e| e.0).collect();
    assert_eq!(
        seqs,
        (0..seq).collect::<Vec<_>>(),
        "the outer event and every nested one survive"
    );
    let s = buf.stats(0).unwrap();
    assert_eq!(s.commit_overrun, 1);
    assert_accounting(&buf, 0);
}

#[test]
fn producer_consumer_drops_and_resumes_after_reading() {
    let buf = two_page_producer_consumer();
    let mut w = buf.writer(0).unwrap();
    let seq = fill_until_full(&mut w, 0);
    assert_eq!(w.write(seq, &payload(seq, 100)), Err(WriteError::Full));
    let first = drain(&buf, 0);
    assert_eq!(
        first.len() as u64,
        seq,
        "nothing written and unread is lost"
    );
    assert_eq!(first[0].2, 0);
    // Reading made room again; the reader is told about the 2 drops.
    w.write(500, &payload(seq, 100)).unwrap();
    let got = drain(&buf, 0);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, 2);
    let s = buf.stats(0).unwrap();
    assert_eq!(s.dropped, 2);
    assert_accounting(&buf, 0);
}

#[test]
fn overwrite_keeps_the_newest_and_counts_the_rest() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let mut w = buf.writer(0).unwrap();
    let n = 10_000u64;
    for seq in 0..n {
        w.write(seq * 10, &payload(seq, 12 + (seq % 100) as usize))
            .unwrap();
    }
    let got = drain(&buf, 0);
    let s = buf.stats(0).unwrap();
    assert_eq!(s.read + s.overrun, n, "{s:?}");
    assert_eq!(got.last().unwrap().0, n - 1, "the newest event is kept");
    // Sequence numbers continue exactly after the reported loss.
    assert_eq!(got[0].0, got[0].2);
    for pair in got.windows(2) {
        assert_eq!(pair[1].0, pair[0].0 + 1 + pair[1].2);
        assert!(pair[0].1 <= pair[1].1);
    }
    assert_accounting(&buf, 0);
}

#[test]
fn writers_are_exclusive_and_errors_are_clear() {
    let buf = RingBuffer::new(Config::new(2)).unwrap();
    let w = buf.writer(0).unwrap();
    assert!(matches!(
        buf.writer(0),
        Err(crate::RingError::Busy { ring: 0 })
    ));
    drop(w);
    assert!(buf.writer(0).is_ok());
    assert!(matches!(
        buf.writer(2),
        Err(crate::RingError::NoSuchRing { .. })
    ));
    let mut w = buf.writer(1).unwrap();
    assert_eq!(
        w.write(0, &[]),
        Err(WriteError::TooLarge { len: 0, max: 4072 })
    );
    assert_eq!(
        w.write(0, &[0; 4073]),
        Err(WriteError::TooLarge {
            len: 4073,
            max: 4072
        })
    );
    w.write(0, &[7; 4072]).unwrap();
    let mut c = buf.consumer(1).unwrap();
    assert_eq!(c.consume().unwrap().unwrap().payload, &[7; 4072][..]);
    assert!(matches!(
        RingBuffer::new(Config::new(1).page_size(5000)),
        Err(crate::ConfigError::PageSize(5000))
    ));
    assert!(matches!(
        RingBuffer::new(Config::new(1).pages_per_ring(1)),
        Err(crate::ConfigError::TooFewPages(1))
    ));
    for page_size in [8192, 1 << 20] {
        let big = RingBuffer::new(Config::new(1).page_size(page_size).pages_per_ring(2)).unwrap();
        let max = big.max_payload();
        let mut w = big.writer(0).unwrap();
        w.write(1, &vec![3; max]).unwrap();
        w.write(2, &vec![4; max]).unwrap();
        let got: Vec<u8> = {
            let mut c = big.consumer(0).unwrap();
            let a = c.consume().unwrap().unwrap().payload[0];
            let b = c.consume().unwrap().unwrap().payload[0];
            vec![a, b]
        };
        assert_eq!(got, vec![3, 4]);
    }
}

/// `write_with`: the fill commits or discards; a nested write inside the
/// fill lands after the reservation and is published by the outer commit;
/// a fill that panics leaves the ring usable, its event discarded.
#[test]
fn write_with_commits_discards_nests_and_survives_a_panic() {
    for pages in [2, 8] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(pages)).unwrap();
        let mut w = buf.writer(0).unwrap();
        let mut expect = vec![];
        let mut seq = 0u64;
        for round in 0..300u64 {
            let len = 12 + (round as usize * 7) % 200;
            let ts = 1000 + round * 10;
            match round % 5 {
                // Commit.
                0 | 1 => {
                    let p = payload(seq, len);
                    assert!(w
                        .write_with(ts, len, |b| {
                            b.copy_from_slice(&p);
                            true
                        })
                        .unwrap());
                    expect.push((seq, ts));
                    seq += 1;
                }
                // Discard: nothing shows, nothing counts.
                2 => {
                    assert!(!w
                        .write_with(ts, len, |b| {
                            b.fill(0xee);
                            false
                        })
                        .unwrap());
                }
                // A nested write while the fill runs (as a signal handler
                // would): it lands after ours, with our time.
                3 => {
                    let (outer, inner) = (payload(seq, len), payload(seq + 1, 16));
                    assert!(w
                        .write_with(ts, len, |b| {
                            b.copy_from_slice(&outer);
                            // SAFETY: completes before the fill returns.
                            let mut n = unsafe { buf.nested_writer(0) }.unwrap();
                            n.write(ts + 5, &inner).unwrap();
                            true
                        })
                        .unwrap());
                    expect.push((seq, ts));
                    expect.push((seq + 1, ts));
                    seq += 2;
                }
                // The fill panics: the event is discarded and the ring goes on.
                _ => {
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        w.write_with(ts, len, |_| panic!("fill failed"))
                    }));
                    assert!(r.is_err());
                }
            }
        }
        let got = drain(&buf, 0);
        let s = buf.stats(0).unwrap();
        assert_accounting(&buf, 0);
        assert_eq!(s.written, seq, "discards are not attempts: {s:?}");
        // Overwrite mode keeps the newest: what was read is the tail of what
        // was written, in order, with its time stamps; the rest is overrun.
        let kept = &expect[expect.len() - got.len()..];
        assert_eq!(
            got.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(),
            kept.to_vec(),
            "{pages} pages"
        );
        assert_eq!(s.overrun as usize, expect.len() - got.len());
    }
}

/// `Consumer::readable` decides that a reader caught up in the middle of a
/// page is caught up with the writer, without loading `commit_page`, from
/// `0 < commit < cap`: it relies on every page the commit point has left
/// being committed to its end (the filler of step F) or empty.
fn assert_left_pages_committed_to_the_end(buf: &RingBuffer, what: &str) {
    use crate::sync::Ordering::Relaxed;
    let region = buf.region();
    let g = *region.geometry();
    let cap = crate::format::data_capacity(g.page_size as usize) as u32;
    let cp = region.ring(0).w.commit_page.load(Relaxed);
    for i in 0..g.slots_per_ring {
        let p = g.page_index(0, i);
        let c = region.page(p).commit.load(Relaxed);
        assert!(
            p == cp || c == 0 || c == cap,
            "{what}: page {p} (commit page {cp}) has commit {c} of {cap}"
        );
    }
}

#[test]
fn pages_the_commit_left_are_committed_to_the_end() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(3).mode(mode)).unwrap();
        let mut w = buf.writer(0).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for seq in 0..3000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 12 + (x % 1500) as usize;
            let _ = w.write(seq, &payload(seq, len));
            assert_left_pages_committed_to_the_end(&buf, &format!("{mode:?} seq {seq}"));
            if x % 7 == 0 {
                let mut c = buf.consumer(0).unwrap();
                for _ in 0..x % 5 {
                    let _ = c.consume().unwrap();
                }
                assert_left_pages_committed_to_the_end(&buf, "after reading");
            }
        }
    }
    // A nested write at each step of the slow path (the outer event
    // overflows the page, the nested one lands first).
    for label in [Label::F, Label::G, Label::T1, Label::T2] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
        let mut w = buf.writer(0).unwrap();
        w.write(10, &payload(0, 2000)).unwrap();
        with_hook(&buf, label, || w.write(20, &payload(1, 2100)).unwrap());
        assert_left_pages_committed_to_the_end(&buf, &format!("{label:?}"));
    }
    // And while the outer write pushes the head (overwrite mode).
    for label in [Label::P1, Label::P2] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(3)).unwrap();
        let mut w = buf.writer(0).unwrap();
        for seq in 0..3 {
            w.write(10 + seq, &payload(seq, 3000)).unwrap();
        }
        with_hook(&buf, label, || w.write(20, &payload(3, 3000)).unwrap());
        assert_left_pages_committed_to_the_end(&buf, &format!("{label:?}"));
    }
}

/// A reset after a dropped write (producer/consumer mode: the dropped
/// write's stamp stays in `pending_stamp`, above `write_stamp`) keeps the
/// time stamps exact, also when the first event on the reset ring is a
/// nested one (it takes the page's stamp, which the reset set) and the
/// outer event after it stores a delta from `write_stamp`: time never goes
/// back and the outer event has its own stamp.
#[test]
fn reset_after_a_drop_keeps_time_stamps_exact() {
    let buf = two_page_producer_consumer();
    let mut w = buf.writer(0).unwrap();
    let seq = fill_until_full(&mut w, 1000);
    // Dropped, 5000 ticks later than the last event written.
    assert_eq!(
        w.write(1000 + seq + 5000, &payload(seq, 100)),
        Err(WriteError::Full)
    );
    buf.reset(0).unwrap();
    let t = 1000 + seq + 6000;
    with_hook(&buf, Label::E, || {
        w.write(t, &payload(seq + 1, 100)).unwrap()
    });
    // Enough to fill the page, so the next one is stamped by the writer.
    let mut next = t;
    for s in seq + 2..seq + 60 {
        next += 10;
        if w.write(next, &payload(s, 100)).is_err() {
            break;
        }
    }
    let got = drain(&buf, 0);
    assert!(got.len() > 40, "{} events", got.len());
    assert_eq!(got[0].0, NESTED_SEQ, "the nested event comes first");
    assert_eq!(got[1], (seq + 1, t, 0), "the outer event has its stamp");
    let mut prev = 0;
    for &(s, ts, _) in &got[1..] {
        assert!(ts >= prev, "time went back at seq {s}: {ts} after {prev}");
        prev = ts;
    }
    // Each event after the first has its own stamp, 10 apart.
    for pair in got[1..].windows(2) {
        assert_eq!(pair[1].1, pair[0].1 + 10, "{pair:?}");
    }
}

/// Writes `len`-byte events on ring 0 (sequence numbers from 0) until the
/// ring has wrapped and the tail page is full: the next write pushes the
/// head. Returns the next sequence number.
fn fill_until_the_next_write_pushes(
    buf: &RingBuffer,
    w: &mut crate::Writer<'_>,
    len: usize,
) -> u64 {
    use crate::layout::write_offset;
    use crate::sync::Ordering::Relaxed;
    let region = buf.region();
    let meta = region.ring(0);
    let cap = crate::format::data_capacity(region.geometry().page_size as usize);
    let event = crate::format::event_size(len);
    let mut seq = 0u64;
    loop {
        w.write(seq + 1, &payload(seq, len)).unwrap();
        seq += 1;
        let tail = meta.w.tail_page.load(Relaxed);
        let off = write_offset(region.page(tail).write.load(Relaxed));
        if meta.slow.overrun.load(Relaxed) > 0 && off + event > cap {
            return seq;
        }
    }
}

/// A head push whose owner is interrupted right after winning P1, before it
/// counts the overrun: the nested writer finds UPDATE, counts the push from
/// the owner's announced targets, helps with P2 and moves the tail onto the
/// pushed page. The iterator, lapped on the pushed page, must not report a
/// page's worth of skipped events too few. The owner's steps (P0's
/// announcement, P1, then its own idempotent count) are played by hand.
#[test]
fn iterator_counts_a_push_whose_owner_is_interrupted_before_counting() {
    use crate::layout::{
        link_flag, link_page, write_entries, GENERATION, HEAD, NORMAL, PUSH_OVERRUN,
        PUSH_OVERRUN_BYTES, PUSH_OVERRUN_NOTED, PUSH_OVERRUN_PAGES, UPDATE,
    };
    use crate::sync::Ordering::Relaxed;
    use crate::write::{count_push, head_page_set};
    const LEN: usize = 1000; // 1008-byte events: 4 on a 4096-byte page.
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let region = buf.region();
    let meta = region.ring(0);
    let mut w = buf.writer(0).unwrap();
    let mut seq = fill_until_the_next_write_pushes(&buf, &mut w, LEN);
    // The iterator stands on the head page after its first event.
    let mut it = buf.iter(0).unwrap();
    let mut last = verify(it.next().unwrap().unwrap().payload);
    let x = meta.w.tail_page.load(Relaxed);
    let l = region.page(x).link.load(Relaxed);
    assert_eq!(link_flag(l), HEAD, "the tail page links to the head");
    let y = link_page(l);
    // The owner's P0 and P1, then the signal: nothing counted yet.
    let entries = write_entries(region.page(y).write.load(Relaxed));
    let lost_bytes = u64::from(region.page(y).commit.load(Relaxed));
    let slow = &meta.slow;
    let (overrun, bytes) = (slow.overrun.load(Relaxed), slow.overrun_bytes.load(Relaxed));
    let t = &slow.push_target;
    t[PUSH_OVERRUN].store(overrun + entries, Relaxed);
    t[PUSH_OVERRUN_BYTES].store(bytes + lost_bytes, Relaxed);
    t[PUSH_OVERRUN_PAGES].store(slow.overrun_pages.load(Relaxed) + 1, Relaxed);
    t[PUSH_OVERRUN_NOTED].store(
        slow.overrun_noted.load(Relaxed)
            + crate::layout::notes(region.page(y).lost_at_end.load(Relaxed)),
        Relaxed,
    );
    assert_eq!(head_page_set(&region.page(x).link, y, HEAD, UPDATE), HEAD);
    {
        // SAFETY: this thread holds ring 0's writer, which is not in a write.
        let mut n = unsafe { buf.nested_writer(0) }.unwrap();
        n.write(seq + 1, &payload(seq, LEN)).unwrap();
        seq += 1;
    }
    assert_eq!(
        meta.w.tail_page.load(Relaxed),
        y,
        "the nested write moved on"
    );
    let mut check = |ev: crate::IterEvent<'_>| {
        let s = verify(ev.payload);
        assert!(
            s - last - 1 <= ev.lost_events,
            "{} missing between {last} and {s}, {} reported",
            s - last - 1,
            ev.lost_events
        );
        last = s;
    };
    // The iterator finds its page rewritten while the push is unfinished.
    while let Some(ev) = it.next().unwrap() {
        check(ev);
    }
    assert_eq!(
        slow.overrun.load(Relaxed),
        overrun + entries,
        "the nested writer counted the push it helped"
    );
    // The owner resumes: counts the push again (no change), clears UPDATE
    // (P3), and its T1 bumps the page's generation once more (the tail has
    // moved: it stops there and retries).
    count_push(slow);
    assert_eq!(
        slow.overrun.load(Relaxed),
        overrun + entries,
        "counted once"
    );
    assert_eq!(
        head_page_set(&region.page(x).link, y, UPDATE, NORMAL),
        UPDATE
    );
    region.page(y).write.fetch_add(GENERATION, Relaxed);
    for _ in 0..6 {
        w.write(seq + 1, &payload(seq, LEN)).unwrap();
        seq += 1;
    }
    while let Some(ev) = it.next().unwrap() {
        check(ev);
    }
    assert_eq!(last, seq - 1, "the iterator reached the newest event");
    drop(it);
    drop(w);
    drain(&buf, 0);
    assert_accounting(&buf, 0);
}

thread_local! {
    /// What [`nest_at_k_control_at_l`] does at step L.
    static AT_L: Cell<Option<fn(&RingBuffer)>> = const { Cell::new(None) };
}

/// The hook for the step-L tests: at step K (the outermost commit has
/// stored the page's commit, `committing` is still 1) a nested write lands
/// past the commit and, at depth 1, leaves it to the outer write; at step L
/// (`committing` is 0) a control operation begins (`AT_L`): with
/// `committing` at 0, `control::quiesce` would pass its Q3 now.
fn nest_at_k_control_at_l(label: Label) {
    if ARMED.with(|a| a.get()) != Some(label) {
        return;
    }
    FIRED.with(|f| f.set(f.get() + 1));
    // SAFETY: as in `fire_once`.
    let buf = unsafe { &*BUF.with(|b| b.get()) };
    match label {
        Label::K => {
            ARMED.with(|a| a.set(Some(Label::L)));
            // SAFETY: as in `nest_once`.
            let mut w = unsafe { buf.nested_writer(0) }.unwrap();
            w.write(999_999, &payload(NESTED_SEQ, 16)).unwrap();
        }
        _ => {
            ARMED.with(|a| a.set(None));
            if let Some(op) = AT_L.with(|o| o.get()) {
                op(buf);
            }
        }
    }
}

/// A ring of four pages holding events 0..203, all of page one but its
/// last event: 16-byte payloads make 20-byte events, and 204 fill a
/// 4096-byte page's 4080 data bytes.
fn page_one_but_its_last_event() -> RingBuffer {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let mut w = buf.writer(0).unwrap();
    for seq in 0..203 {
        w.write(1000, &payload(seq, 16)).unwrap();
    }
    drop(w);
    buf
}

/// Runs `write` with [`nest_at_k_control_at_l`] armed, `at_l` as the
/// control operation, and checks that the hook ran at both steps.
fn with_k_then_l(buf: &RingBuffer, at_l: fn(&RingBuffer), write: impl FnOnce()) {
    BUF.with(|b| b.set(buf));
    AT_L.with(|o| o.set(Some(at_l)));
    ARMED.with(|a| a.set(Some(Label::K)));
    FIRED.with(|f| f.set(0));
    hook::HOOK.with(|h| h.set(Some(nest_at_k_control_at_l)));
    write();
    hook::HOOK.with(|h| h.set(None));
    assert_eq!(FIRED.with(|f| f.get()), 2, "the hook ran at steps K and L");
}

/// Raises `record_disabled` as `control::quiesce` does at Q1, without the
/// rest of a control operation: the state a writer sees while a quiescing
/// operation on another thread is between Q1 and Q6.
fn begin_quiesce(buf: &RingBuffer) {
    buf.region().ring(0).w.record_disabled.fetch_add(
        crate::layout::RECORD_QUIESCE_ONE,
        crate::sync::Ordering::SeqCst,
    );
}

/// A control operation that begins quiescing while the outermost commit has
/// let go of `committing` owns the ring: the writer's re-check finds the
/// nested event's bytes but does not walk the commit to them while the
/// control side holds the ring (it used to, racing with a reset's page
/// counters). Once the operation ends, the next commit publishes the nested
/// event.
#[test]
fn the_commit_walk_waits_for_a_control_operation_begun_at_step_l() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let mut w = buf.writer(0).unwrap();
    with_k_then_l(&buf, begin_quiesce, || {
        w.write(1000, &payload(1, 16)).unwrap()
    });
    let meta = buf.region().ring(0);
    assert_eq!(
        meta.w.committing.load(crate::sync::Ordering::Relaxed),
        0,
        "the writer let go of the ring for the control operation"
    );
    // Only the outer event is published: the writer left the ring alone.
    let seen: Vec<u64> = drain(&buf, 0).iter().map(|e| e.0).collect();
    assert_eq!(seen, vec![1], "nothing past the commit is readable");
    // The control operation ends (Q6); the next outermost commit walks to
    // the end of the page, the nested event included.
    meta.w.record_disabled.fetch_sub(
        crate::layout::RECORD_QUIESCE_ONE,
        crate::sync::Ordering::Release,
    );
    w.write(3000, &payload(2, 16)).unwrap();
    let seen: Vec<u64> = drain(&buf, 0).iter().map(|e| e.0).collect();
    assert_eq!(seen, vec![NESTED_SEQ, 2]);
    assert_accounting(&buf, 0);
}

/// A commit point left behind the tail with no write in flight (here: a
/// quiescing operation that took the ring at step L ends without
/// committing, as when a writer dies in that window) loses nothing: the
/// next outermost commit finds it behind at its re-check and walks it to
/// the tail, and every event is read, in order.
#[test]
fn a_commit_point_left_behind_is_mended_by_the_next_commit() {
    let buf = page_one_but_its_last_event();
    let mut w = buf.writer(0).unwrap();
    // Event 203 fills page one, and the nested write at its K goes to
    // page two.
    with_k_then_l(&buf, begin_quiesce, || {
        w.write(1000, &payload(203, 16)).unwrap()
    });
    let meta = buf.region().ring(0);
    meta.w.record_disabled.fetch_sub(
        crate::layout::RECORD_QUIESCE_ONE,
        crate::sync::Ordering::Release,
    );
    let at = |what: &crate::sync::AtomicU32| what.load(crate::sync::Ordering::Relaxed);
    assert_ne!(
        at(&meta.w.commit_page),
        at(&meta.w.tail_page),
        "the commit point is behind the tail"
    );
    // Readers see page one only.
    let seen: Vec<u64> = drain(&buf, 0).iter().map(|e| e.0).collect();
    assert_eq!(seen, (0..204).collect::<Vec<_>>());
    // The next write on page two commits, sees the commit point behind and
    // walks it: the nested event and its own are readable.
    w.write(1000, &payload(204, 16)).unwrap();
    assert_eq!(at(&meta.w.commit_page), at(&meta.w.tail_page));
    let seen: Vec<u64> = drain(&buf, 0).iter().map(|e| e.0).collect();
    assert_eq!(seen, vec![NESTED_SEQ, 204]);
    assert_accounting(&buf, 0);
}

/// A plain disable (`disable_ring`, `record_off`) in the window of step L
/// changes nothing in the ring: the writer commits the nested event as
/// usual, and readers see it while writes are refused.
#[test]
fn a_disable_at_step_l_does_not_hold_back_the_nested_event() {
    for off in [false, true] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
        let mut w = buf.writer(0).unwrap();
        let at_l: fn(&RingBuffer) = if off {
            |b| b.record_off()
        } else {
            |b| b.disable_ring(0).unwrap()
        };
        with_k_then_l(&buf, at_l, || w.write(1000, &payload(1, 16)).unwrap());
        let seen: Vec<u64> = drain(&buf, 0).iter().map(|e| e.0).collect();
        assert_eq!(seen, vec![1, NESTED_SEQ], "record_off: {off}");
        assert_eq!(w.write(2000, &payload(2, 16)), Err(WriteError::Disabled));
        let s = buf.stats(0).unwrap();
        assert_eq!((s.committed, s.refused), (2, 1), "{s:?}");
        assert_accounting(&buf, 0);
    }
}

/// `disable_ring` nests up to its count's width, then says so.
#[test]
fn disable_ring_refuses_past_its_count() {
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    let meta = buf.region().ring(0);
    meta.w.record_disabled.store(
        crate::layout::RECORD_COUNT_MASK - 1,
        crate::sync::Ordering::Relaxed,
    );
    buf.disable_ring(0).unwrap();
    let e = buf.disable_ring(0).unwrap_err();
    assert!(
        e.to_string()
            .contains("disabled 65535 times without enable_ring"),
        "{e}"
    );
    // The quiesce count next to it is untouched.
    assert_eq!(
        meta.w.record_disabled.load(crate::sync::Ordering::Relaxed),
        crate::layout::RECORD_COUNT_MASK
    );
}

/// A control operation that begins in the window of step L counts the
/// events a nested write left past the commit point, even on the next page:
/// every write that returned `Ok` is committed (read or overrun).
#[test]
fn a_reset_in_the_step_l_window_counts_a_nested_write_on_the_next_page() {
    let buf = page_one_but_its_last_event();
    let mut w = buf.writer(0).unwrap();
    // At K the nested write does not fit on the page and moves the tail
    // to the next one; at L a reset runs to completion, as another
    // thread's would in that window.
    with_k_then_l(
        &buf,
        |b| b.reset(0).unwrap(),
        || w.write(1000, &payload(203, 16)).unwrap(),
    );
    let s = buf.stats(0).unwrap();
    assert_eq!(s.committed, 205, "all 205 writes that returned Ok: {s:?}");
    assert_eq!(s.overrun, 205, "the reset discarded them all: {s:?}");
    // The ring goes on after the reset.
    w.write(2000, &payload(7, 16)).unwrap();
    let seen: Vec<u64> = drain(&buf, 0).iter().map(|e| e.0).collect();
    assert_eq!(seen, vec![7]);
    assert_accounting(&buf, 0);
}

/// `write_with_fast` then, when it says to start over, `write_with`: the
/// tracer's record path.
fn write_fast_or_general(
    w: &mut crate::Writer<'_>,
    ts: u64,
    p: &[u8],
) -> (bool, Result<bool, WriteError>) {
    let fill = |b: &mut [u8]| {
        b.copy_from_slice(p);
        true
    };
    match w.write_with_fast(ts, p.len(), fill) {
        Some(r) => (true, r),
        None => (false, w.write_with(ts, p.len(), fill)),
    }
}

/// The counters a start-over must leave alone.
fn counts(buf: &RingBuffer) -> [u64; 5] {
    let s = buf.stats(0).unwrap();
    [s.written, s.dropped, s.refused, s.commit_overrun, s.overrun]
}

/// `write_with_fast` writes the fast case and nothing else: every other
/// case returns `None` having written and counted nothing, and the
/// `write_with` that follows writes it (or refuses it, counted once).
#[test]
fn write_with_fast_writes_its_case_or_starts_over() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let mut w = buf.writer(0).unwrap();
    let mut expect = vec![];
    // The fast case.
    assert_eq!(
        write_fast_or_general(&mut w, 1000, &payload(0, 40)),
        (true, Ok(true))
    );
    expect.push((0, 1000));
    // Lengths it does not take: nothing done.
    let before = counts(&buf);
    assert!(w.write_with_fast(1001, 0, |_| true).is_none());
    assert!(w.write_with_fast(1001, 1 << 20, |_| true).is_none());
    assert_eq!(counts(&buf), before);
    // A discard by the fill.
    assert_eq!(w.write_with_fast(1002, 16, |_| false), Some(Ok(false)));
    assert_eq!(counts(&buf), before);
    // A stamp that needs a time extend, and one below the previous: the
    // general path writes them (the second raised to the first).
    let big = 1000 + (1 << 30);
    assert_eq!(
        write_fast_or_general(&mut w, big, &payload(1, 24)),
        (false, Ok(true))
    );
    assert_eq!(
        write_fast_or_general(&mut w, 5, &payload(2, 24)),
        (false, Ok(true))
    );
    expect.extend([(1, big), (2, big)]);
    // Recording off: the fast path counts nothing; the refusal counts once.
    buf.record_off();
    let before = counts(&buf);
    assert_eq!(
        write_fast_or_general(&mut w, big + 1, &payload(99, 24)),
        (false, Err(WriteError::Disabled))
    );
    let after = counts(&buf);
    assert_eq!(after[2], before[2] + 1, "one refusal");
    assert_eq!(after[0], before[0], "a refusal is not a write");
    buf.record_on();
    // Inside a fill (as a signal handler would be): the nested writer's
    // fast path does not apply; its general path writes after ours.
    let (outer, nested) = (payload(3, 32), payload(4, 20));
    let r = w.write_with_fast(big + 2, 32, |b| {
        b.copy_from_slice(&outer);
        // SAFETY: completes before the fill returns.
        let mut n = unsafe { buf.nested_writer(0) }.unwrap();
        assert!(n.write_with_fast(big + 3, 20, |_| true).is_none());
        n.write(big + 3, &nested).unwrap();
        true
    });
    assert_eq!(r, Some(Ok(true)));
    expect.extend([(3, big + 2), (4, big + 2)]);
    // Page moves: events that do not fit move the tail and start over.
    let mut moved = 0;
    for seq in 5..200u64 {
        let (fast, r) = write_fast_or_general(&mut w, big + 10 + seq, &payload(seq, 100));
        assert_eq!(r, Ok(true));
        moved += u32::from(!fast);
        expect.push((seq, big + 10 + seq));
    }
    assert!(moved >= 4, "{moved} page moves");
    let got = drain(&buf, 0);
    let s = buf.stats(0).unwrap();
    assert_accounting(&buf, 0);
    // The newest events in order, with their stamps; the rest overwritten.
    let kept: Vec<(u64, u64)> = got.iter().map(|e| (e.0, e.1)).collect();
    assert_eq!(kept.as_slice(), &expect[expect.len() - kept.len()..]);
    assert_eq!(s.written, expect.len() as u64, "{s:?}");
    assert_eq!(s.overrun + s.read, expect.len() as u64, "{s:?}");
}

/// A nested write at step E of a fast write that then stops (a time
/// extend) is committed when `write_with_fast` returns, before the start
/// over: the fast path ends its write with the commit walk.
#[test]
fn a_fast_write_that_stops_commits_the_nested_write_it_met() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let mut w = buf.writer(0).unwrap();
    w.write(1000, &payload(0, 40)).unwrap();
    let r = with_hook(&buf, Label::E, || {
        w.write_with_fast(1000 + (1 << 30), 16, |_| true)
    });
    assert!(r.is_none());
    let got = drain(&buf, 0);
    let seqs: Vec<u64> = got.iter().map(|e| e.0).collect();
    assert_eq!(seqs, vec![0, NESTED_SEQ]);
    assert_eq!(buf.stats(0).unwrap().written, 2);
    assert_accounting(&buf, 0);
}

/// In producer/consumer mode, a fast write that cannot move the tail (the
/// ring is full) returns the error, counted once: it does not start over.
#[test]
fn a_fast_write_that_cannot_move_the_tail_fails_once() {
    let buf = two_page_producer_consumer();
    let mut w = buf.writer(0).unwrap();
    let (mut seq, mut moves) = (0, 0);
    loop {
        let p = payload(seq, 100);
        let fill = |b: &mut [u8]| {
            b.copy_from_slice(&p);
            true
        };
        match w.write_with_fast(seq, 100, fill) {
            Some(Ok(true)) => seq += 1,
            Some(r) => {
                assert_eq!(r, Err(WriteError::Full));
                break;
            }
            None => {
                // The tail moved on: the start over writes on the next page.
                moves += 1;
                assert_eq!(w.write_with(seq, 100, fill), Ok(true));
                seq += 1;
            }
        }
    }
    assert!(moves >= 1);
    let s = buf.stats(0).unwrap();
    assert_eq!((s.dropped, s.written), (1, seq + 1), "{s:?}");
    assert_eq!(drain(&buf, 0).len() as u64, seq);
    assert_accounting(&buf, 0);
}

thread_local! {
    /// Events the reader inside [`nest_push_then_read`] got: (seq, lost).
    static READ_IN_HOOK: std::cell::RefCell<Vec<(u64, u64)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// The hook for the late-report tests: at the armed step of a head push, a
/// nested write too large for the tail page pushes the head itself (or
/// helps the push it interrupted) and moves on; then, still before the
/// interrupted writer resumes, a reader swaps in the new head and reads
/// its first event.
fn nest_push_then_read(label: Label) {
    fire_once(label, |buf| push_then_read(label, buf));
}

/// `nest_push_then_read`'s nested write and read.
fn push_then_read(label: Label, buf: &RingBuffer) {
    {
        // SAFETY: as in `nest_once`.
        let mut w = unsafe { buf.nested_writer(0) }.unwrap();
        let r = w.write(999_999, &payload(NESTED_SEQ, 2000));
        assert_eq!(r, Ok(()), "{label:?}: {}", buf.debug_state(0));
    }
    // One event: enough to pass the push. (Draining up to the commit page
    // would leave the outer write, whose tail now holds the nested event,
    // facing the commit page on the reader's side: a commit overrun.)
    let mut c = buf.consumer(0).unwrap();
    let ev = c.consume().unwrap().expect("the new head holds an event");
    let got = (verify(ev.payload), ev.lost_events);
    READ_IN_HOOK.with(|r| r.borrow_mut().push(got));
}

/// Issue: a loss reported late. A nested write at each step of a head push
/// (P0 before the HEAD -> UPDATE compare-and-swap, P1 right after it, P2
/// after the new head is marked), then a reader that swaps in the new head
/// before the interrupted writer resumes: the pushed page's event is
/// already counted, so the first event the reader gets carries the loss.
/// Counting the push only in its owner, after P1, fails this at P1: the
/// nested writer marks the new head and the reader passes the push before
/// the owner resumes to count it.
#[test]
fn a_push_is_counted_before_a_reader_can_pass_it() {
    for label in [Label::P0, Label::P1, Label::P2] {
        READ_IN_HOOK.with(|r| r.borrow_mut().clear());
        // One 3000-byte event a page; the 4th pushes the head (event 0).
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(3)).unwrap();
        let mut w = buf.writer(0).unwrap();
        for seq in 0..3 {
            w.write(10 + seq, &payload(seq, 3000)).unwrap();
        }
        BUF.with(|b| b.set(&buf));
        ARMED.with(|a| a.set(Some(label)));
        FIRED.with(|f| f.set(0));
        hook::HOOK.with(|h| h.set(Some(nest_push_then_read)));
        w.write(20, &payload(3, 3000)).unwrap();
        hook::HOOK.with(|h| h.set(None));
        assert_eq!(FIRED.with(|f| f.get()), 1, "{label:?}: the hook ran");
        let mut got = READ_IN_HOOK.with(|r| r.borrow().clone());
        got.extend(drain(&buf, 0).iter().map(|e| (e.0, e.2)));
        assert!(!got.is_empty(), "{label:?}: nothing read");
        // Every loss before the first event read: events 0 (and, at P0 and
        // P1 where the nested write pushes again, more) are gone; whatever
        // the reader got first, the events written before it that it never
        // read are reported with it.
        let mut reported = 0;
        let mut outer_read = 0;
        for &(seq, lost) in &got {
            reported += lost;
            if seq != NESTED_SEQ {
                assert!(
                    reported >= seq - outer_read,
                    "{label:?}: event {seq} read with {reported} losses reported, \
                     {} events lost before it: {got:?}",
                    seq - outer_read
                );
                outer_read += 1;
            }
        }
        let s = buf.stats(0).unwrap();
        assert_eq!(
            reported,
            s.overrun + s.dropped + s.commit_overrun,
            "{label:?}: {got:?} {s:?}"
        );
        assert_eq!(s.written, 5, "{label:?}: {s:?}");
        assert_accounting(&buf, 0);
    }
}

/// The hook that "kills" the writer at the armed label: it unwinds out of
/// the write without running any ring code on the way (the write path has
/// no unwind guard below the fill), so the ring's memory is left exactly as
/// a SIGKILL at that instruction leaves it.
fn die_at(label: Label) {
    if ARMED.with(|a| a.get()) == Some(label) {
        ARMED.with(|a| a.set(None));
        FIRED.with(|f| f.set(f.get() + 1));
        std::panic::resume_unwind(Box::new("killed"));
    }
}

/// Issue: a kill inside the head push. A writer killed at each step of a
/// head push (after announcing, after winning HEAD -> UPDATE, after
/// marking the new head), then `recover_dead_writer`: the pushed page's
/// event is counted exactly once and reported, and the ring reads and
/// writes on with exact accounting. Without the recovery's count of the
/// push, a kill between the compare-and-swap and the count leaves the
/// pushed page's events as phantom entries (`committed > read + overrun`).
#[test]
fn recovery_counts_a_push_cut_short_by_a_kill() {
    for label in [Label::P0, Label::P1, Label::P2] {
        let buf = RingBuffer::new(Config::new(1).pages_per_ring(3)).unwrap();
        let mut w = buf.writer(0).unwrap();
        for seq in 0..3 {
            w.write(10 + seq, &payload(seq, 3000)).unwrap();
        }
        ARMED.with(|a| a.set(Some(label)));
        FIRED.with(|f| f.set(0));
        hook::HOOK.with(|h| h.set(Some(die_at)));
        let died = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = w.write(20, &payload(3, 3000));
        }));
        hook::HOOK.with(|h| h.set(None));
        assert!(died.is_err() && FIRED.with(|f| f.get()) == 1, "{label:?}");
        // SAFETY: the writer "died": it never runs again on this ring.
        unsafe { buf.recover_dead_writer(0) }.unwrap();
        drop(w);
        // Another writer goes on from where the dead one stopped.
        let mut w = buf.writer(0).unwrap();
        for seq in 4..8 {
            w.write(30 + seq, &payload(seq, 3000)).unwrap();
        }
        drop(w);
        let got = drain(&buf, 0);
        let s = buf.stats(0).unwrap();
        let reported: u64 =
            got.iter().map(|e| e.2).sum::<u64>() + buf.consumer(0).unwrap().pending_losses();
        assert_eq!(
            reported,
            s.overrun + s.dropped + s.commit_overrun,
            "{label:?}: {got:?} {s:?}"
        );
        // 7 events written (the killed one never reserved), 3 pages of one
        // event each: the newest three survive, the rest are counted lost.
        assert_eq!(s.written, 7, "{label:?}: {s:?}");
        let seqs: Vec<u64> = got.iter().map(|e| e.0).collect();
        assert_eq!(seqs, vec![5, 6, 7], "{label:?}");
        assert_accounting(&buf, 0);
    }
}

/// Nested writes at [`nest_fill_and_overrun`]'s label: one too large for
/// the full tail page (it prepares the next page itself and lands there),
/// then one that no longer fits anywhere (a commit overrun, noted on that
/// page).
fn nest_fill_and_overrun(label: Label) {
    fire_once(label, |buf| {
        // SAFETY: as in `nest_once`.
        let mut w = unsafe { buf.nested_writer(0) }.unwrap();
        w.write(999_999, &payload(NESTED_SEQ, 3000)).unwrap();
        assert_eq!(
            w.write(999_999, &payload(NESTED_SEQ + 1, 3000)),
            Err(WriteError::CommitOverrun)
        );
    });
}

/// Issue: loss totals short under commit overruns. A writer moving the tail
/// onto the next page is interrupted right after its T2 compare-and-swap
/// won (label R): a nested write prepares the page again, lands on it, and
/// the next one is dropped (commit overrun) and noted on that page. The
/// interrupted writer's reset of the page's notes must not wipe that note:
/// every drop is reported. (With a plain store of 0 the note was lost and
/// 1 of the 2 losses was reported.)
#[test]
fn a_preparer_interrupted_after_its_reset_keeps_the_notes_made_since() {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(2)).unwrap();
    let mut w = buf.writer(0).unwrap();
    w.write(10, &payload(0, 3000)).unwrap();
    BUF.with(|b| b.set(&buf));
    ARMED.with(|a| a.set(Some(Label::R)));
    FIRED.with(|f| f.set(0));
    hook::HOOK.with(|h| h.set(Some(nest_fill_and_overrun)));
    // Does not fit after event 0: moves the tail, and meets the nested
    // writes at R; then the page is full and the commit point (page 0,
    // this write's own) is next: dropped.
    let r = w.write(20, &payload(1, 3000));
    hook::HOOK.with(|h| h.set(None));
    assert_eq!(FIRED.with(|f| f.get()), 1, "the hook ran");
    assert_eq!(r, Err(WriteError::CommitOverrun));
    drop(w);
    let got = drain(&buf, 0);
    let seqs: Vec<u64> = got.iter().map(|e| e.0).collect();
    assert_eq!(seqs, vec![0, NESTED_SEQ]);
    let s = buf.stats(0).unwrap();
    assert_eq!((s.written, s.commit_overrun), (4, 2), "{s:?}");
    let reported: u64 =
        got.iter().map(|e| e.2).sum::<u64>() + buf.consumer(0).unwrap().pending_losses();
    assert_eq!(reported, 2, "every drop is reported: {got:?} {s:?}");
    assert_accounting(&buf, 0);
}
