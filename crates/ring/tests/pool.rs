//! The shared page pool (`Config::pool_pages`): a full ring grows from the
//! pool before it overwrites or drops; the pool is shared by the rings that
//! write, whatever their number; accounting stays exact and every payload
//! byte reads back, with a reader consuming while the rings grow.

mod common;

use common::{assert_identity, check, drain, fill};
use ringtrace_ring::{Config, ControlError, Mode, RingBuffer, WriteError};
use std::sync::atomic::{AtomicBool, Ordering};

/// `rings` rings of 2 pages in producer/consumer mode, with a pool of
/// `pool` pages (0: none).
fn pc_two_page_rings(rings: usize, pool: usize) -> RingBuffer {
    RingBuffer::new(
        Config::new(rings)
            .pages_per_ring(2)
            .pool_pages(pool)
            .mode(Mode::ProducerConsumer),
    )
    .unwrap()
}

fn size_of(seq: u64) -> usize {
    24 + (seq.wrapping_mul(2654435761) % 300) as usize
}

/// Writes events `0..` to `ring` until `stop(seq, result)` says so; returns
/// how many were attempted.
fn write_until(
    buf: &RingBuffer,
    ring: usize,
    mut stop: impl FnMut(u64, &Result<(), WriteError>) -> bool,
) -> u64 {
    let mut w = buf.writer(ring).unwrap();
    let mut scratch = [0u8; 400];
    for seq in 0.. {
        let p = &mut scratch[..size_of(seq)];
        fill(p, 1, seq, ring as u64);
        let r = w.write(seq + 1, p);
        if stop(seq, &r) {
            return seq + 1;
        }
    }
    unreachable!()
}

/// Producer/consumer: one ring takes every pool page before it drops, and
/// holds every event written before the first drop.
#[test]
fn pc_ring_takes_the_whole_pool_before_it_drops() {
    let buf = pc_two_page_rings(4, 20);
    let attempted = write_until(&buf, 2, |_, r| match r {
        Ok(()) => false,
        Err(WriteError::Full) => true,
        Err(e) => panic!("{e}"),
    });
    assert_eq!(buf.ring_pages(2).unwrap(), 22);
    assert_eq!(buf.pool_free_pages(), 0);
    for other in [0, 1, 3] {
        assert_eq!(buf.ring_pages(other).unwrap(), 2);
    }
    let s = buf.stats(2).unwrap();
    assert_eq!(s.dropped, 1);
    assert_eq!(s.written, attempted);
    let events = drain(&buf, 2);
    assert_eq!(events.len() as u64, attempted - 1);
    for (i, (d, ts, lost)) in events.iter().enumerate() {
        assert_eq!(
            (d.seq, d.reference, *ts, *lost),
            (i as u64, 2, i as u64 + 1, 0)
        );
    }
    assert_eq!(buf.consumer(2).unwrap().pending_losses(), 1);
    assert_identity(&buf.stats(2).unwrap(), 0);
    buf.check_quiet_ring(2).unwrap();
}

/// Without a pool the same ring drops after 2 pages: what the test above
/// shows is the pool's doing.
#[test]
fn pc_ring_without_pool_drops_early() {
    let buf = pc_two_page_rings(4, 0);
    let without = write_until(&buf, 2, |_, r| r.is_err());
    assert_eq!(buf.ring_pages(2).unwrap(), 2);
    let pooled = pc_two_page_rings(4, 20);
    let with = write_until(&pooled, 2, |_, r| r.is_err());
    // 2 ring pages (and the reader's) against 22: at least 5 times more.
    assert!(with > 5 * without, "{with} vs {without}");
}

/// Two rings share the pool: the one that writes more gets more, and the
/// pages add up to what was configured.
#[test]
fn rings_share_the_pool() {
    let buf = pc_two_page_rings(3, 12);
    // Ring 0: about 4 pages of events; ring 1: until full.
    let cap = 4096 - 16;
    let mut bytes = 0;
    let a = write_until(&buf, 0, |seq, r| {
        assert!(r.is_ok());
        bytes += size_of(seq) + 8;
        bytes > 4 * cap
    });
    let b = write_until(&buf, 1, |_, r| r.is_err());
    let (pa, pb) = (buf.ring_pages(0).unwrap(), buf.ring_pages(1).unwrap());
    assert!((4..=6).contains(&pa), "{pa}");
    assert_eq!(pa + pb + buf.ring_pages(2).unwrap(), 2 * 3 + 12);
    assert_eq!(buf.pool_free_pages(), 0);
    assert_eq!(drain(&buf, 0).len() as u64, a);
    assert_eq!(drain(&buf, 1).len() as u64, b - 1);
    for ring in 0..3 {
        assert_identity(&buf.stats(ring).unwrap(), 0);
        buf.check_quiet_ring(ring).unwrap();
    }
}

/// Overwrite mode: nothing is overwritten while the pool has pages; then
/// the grown ring overwrites as a ring of its new size, and the reader gets
/// the newest events, continuous, with the loss counted.
#[test]
fn overwrite_ring_grows_then_overwrites() {
    let buf = RingBuffer::new(Config::new(2).pages_per_ring(2).pool_pages(6)).unwrap();
    let mut first_overrun = None;
    let attempted = write_until(&buf, 0, |seq, r| {
        assert!(r.is_ok());
        if first_overrun.is_none() && buf.stats(0).unwrap().overrun > 0 {
            first_overrun = Some(seq);
            assert_eq!(buf.pool_free_pages(), 0, "overwrote with pages left");
        }
        seq == 5_000
    });
    assert_eq!(buf.ring_pages(0).unwrap(), 8);
    // About 8 pages (minus the reader's and the tail's) held before the
    // first overwrite: at least 5 pages' worth of these events.
    let first = first_overrun.unwrap();
    assert!(first > 5 * 4080 / 200, "{first}");
    let s = buf.stats(0).unwrap();
    let events = drain(&buf, 0);
    assert_eq!(events[0].2, s.overrun, "loss reported with the first event");
    assert_eq!(events[0].0.seq, s.overrun);
    for w in events.windows(2) {
        assert_eq!(w[1].0.seq, w[0].0.seq + 1);
        assert_eq!(w[1].2, 0);
    }
    assert_eq!(events.last().unwrap().0.seq, attempted - 1);
    assert_identity(&buf.stats(0).unwrap(), 0);
    buf.check_quiet_ring(0).unwrap();
}

/// A reader consuming while the ring grows, in both modes: every byte,
/// exact continuity after each reported loss, exact totals.
#[test]
fn reader_during_growth() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let buf =
            RingBuffer::new(Config::new(2).pages_per_ring(2).pool_pages(30).mode(mode)).unwrap();
        let done = AtomicBool::new(false);
        const EVENTS: u64 = 200_000;
        let (written, read, lost) = std::thread::scope(|s| {
            let w = s.spawn(|| {
                let mut n = 0;
                write_until(&buf, 1, |seq, r| {
                    match r {
                        Ok(()) => n += 1,
                        Err(WriteError::Full) => {}
                        Err(e) => panic!("{e}"),
                    }
                    seq + 1 == EVENTS
                });
                done.store(true, Ordering::Release);
                n
            });
            let mut c = buf.consumer(1).unwrap();
            let (mut read, mut lost, mut next) = (0u64, 0u64, 0u64);
            loop {
                let finished = done.load(Ordering::Acquire);
                let mut any = false;
                while let Some(ev) = c.consume().unwrap() {
                    any = true;
                    let d = check(ev.payload).unwrap();
                    assert_eq!(d.seq, next + ev.lost_events, "{mode:?}");
                    assert_eq!(ev.timestamp, d.seq + 1);
                    next = d.seq + 1;
                    read += 1;
                    lost += ev.lost_events;
                }
                if finished && !any {
                    lost += c.pending_losses();
                    break;
                }
                std::thread::yield_now();
            }
            (w.join().unwrap(), read, lost)
        });
        let s = buf.stats(1).unwrap();
        assert_identity(&s, 0);
        assert_eq!(s.written, EVENTS);
        assert_eq!(read, s.read);
        assert_eq!(written, s.committed);
        assert_eq!(lost, s.overrun + s.dropped, "{mode:?}: every loss reported");
        assert_eq!(buf.ring_pages(1).unwrap() + buf.pool_free_pages(), 32);
        buf.check_quiet_ring(1).unwrap();
    }
}

/// Reset keeps the pool pages a ring took; resize and swap are refused
/// with a clear error.
#[test]
fn reset_keeps_pool_pages_and_resize_is_refused() {
    let buf = pc_two_page_rings(1, 4);
    write_until(&buf, 0, |_, r| r.is_err());
    assert_eq!(buf.ring_pages(0).unwrap(), 6);
    buf.reset(0).unwrap();
    buf.check_quiet_ring(0).unwrap();
    assert_eq!(buf.ring_pages(0).unwrap(), 6);
    let n = write_until(&buf, 0, |_, r| r.is_err());
    assert_eq!(drain(&buf, 0).len() as u64, n - 1);
    let e = buf.resize(0, 4).unwrap_err();
    assert!(matches!(e, ControlError::HasPool { .. }), "{e}");
    assert!(e.to_string().contains("pool"), "{e}");
    let other = RingBuffer::new(Config::new(1).pages_per_ring(2)).unwrap();
    let e = buf.swap_ring(&other, 0).unwrap_err();
    assert!(matches!(e, ControlError::HasPool { .. }), "{e}");
}

/// In shared memory: the pool's size is in the header; a second mapping
/// sees the pages a writer took through the first.
#[test]
fn shared_buffer_with_pool() {
    let file = tempfile::tempfile().unwrap();
    let config = Config::new(2)
        .pages_per_ring(2)
        .pool_pages(5)
        .mode(Mode::ProducerConsumer);
    let a = RingBuffer::create_shared(&file, 0, config).unwrap();
    let n = write_until(&a, 1, |_, r| r.is_err());
    let b = RingBuffer::open_shared(&file, 0).unwrap();
    assert_eq!(b.config().pool_pages, 5);
    assert_eq!(b.ring_pages(1).unwrap(), 7);
    assert_eq!(b.pool_free_pages(), 0);
    b.check_quiet_ring(1).unwrap();
    assert_eq!(drain(&b, 1).len() as u64, n - 1);
    assert_identity(&b.stats(1).unwrap(), 0);
}
