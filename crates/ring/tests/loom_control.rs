//! Loom model of quiescing a ring (`control.rs`): a control operation
//! (reset, or a resize that adds a page) against a writer, on a ring of 2
//! tiny pages. In every interleaving each write either lands whole or is
//! refused and counted, nothing is torn, and the accounting adds up:
//! `committed == read + overrun` after draining, and committed + refused
//! equals the writes attempted.
//!
//! A third model puts a nested write (a signal handler's, on the writer's
//! own thread) inside the first write, so that the outermost commit's
//! re-check at step L finds bytes past its own: the commit takes the ring
//! back, or leaves it to a reset that began meanwhile, which commits them.
//!
//! Under loom the writer's compiler fence at step E is the `SeqCst` fence
//! that the control side's membarrier stands for (`sync::light_barrier`).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ringtrace_ring::{Config, RingBuffer, WriteError};

/// A ring of 2 tiny pages (two 8-byte events each) that may grow to 3.
fn tiny() -> Arc<RingBuffer> {
    Arc::new(
        RingBuffer::new_unchecked_page_size(
            Config::new(1)
                .pages_per_ring(2)
                .max_pages_per_ring(3)
                .page_size(32),
        )
        .unwrap(),
    )
}

/// Consumes every event (a u32 sequence number below `writes`), checking
/// the order; returns how many were read.
fn read_in_order(buf: &RingBuffer, writes: u32, check_time: bool) -> u64 {
    let mut c = buf.consumer(0).unwrap();
    let mut last = None;
    let mut read = 0;
    while let Some(ev) = c.consume().unwrap() {
        let seq = u32::from_le_bytes(ev.payload.try_into().unwrap());
        assert!(seq < writes);
        if check_time {
            assert_eq!(ev.timestamp, u64::from(seq) + 1, "torn time stamp");
        }
        assert!(last.is_none_or(|l| seq > l), "order");
        last = Some(seq);
        read += 1;
    }
    read
}

/// 1 when a write landed, 0 when it was refused.
fn counted(r: Result<(), WriteError>) -> u64 {
    match r {
        Ok(()) => 1,
        Err(WriteError::Disabled) => 0,
        Err(e) => panic!("{e}"),
    }
}

fn check_model(writes: u32, op: fn(&RingBuffer)) {
    let mut model = loom::model::Builder::new();
    model.max_branches = 20_000;
    model.check(move || {
        let buf = tiny();
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                (0..writes)
                    .map(|seq| counted(w.write(u64::from(seq) + 1, &seq.to_le_bytes())))
                    .sum::<u64>()
            })
        };
        op(&buf);
        let landed = writer.join().unwrap();
        let read = read_in_order(&buf, writes, true);
        let s = buf.stats(0).unwrap();
        assert_eq!(s.committed, landed, "{s:?}");
        assert_eq!(s.committed + s.refused, u64::from(writes), "{s:?}");
        assert_eq!(s.read, read);
        assert_eq!(s.committed, s.read + s.overrun, "{s:?}");
        assert_eq!(s.corruptions, 0);
    });
}

/// Reset racing with two writes.
#[test]
fn reset_against_writer() {
    check_model(2, |b| b.reset(0).unwrap());
}

/// Growing the ring racing with three writes (the third crosses a page).
#[test]
fn resize_against_writer() {
    check_model(3, |b| b.resize(0, 3).unwrap());
}

/// A reset racing with two writes, the second with a nested write inside
/// it that does not fit on the page and moves the tail to the next one.
/// Every write that returned `Ok` is committed (read or overrun), whichever
/// side committed the nested one: the writer's walk, or the reset (Q5)
/// when it began while the writer's commit had let go of the ring.
#[test]
fn reset_against_a_commit_with_a_nested_write() {
    let mut model = loom::model::Builder::new();
    model.max_branches = 20_000;
    model.check(|| {
        let buf = tiny();
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                // Two 8-byte events fill a page's 16 data bytes.
                let mut landed = counted(w.write(1, &0u32.to_le_bytes()));
                match w.reserve(2, 4) {
                    Ok(mut r) => {
                        r.copy_from_slice(&1u32.to_le_bytes());
                        // SAFETY: this thread holds the ring's writer and
                        // the nested write completes before the outer one
                        // resumes, as a signal handler's.
                        let mut n = unsafe { buf.nested_writer(0) }.unwrap();
                        landed += counted(n.write(2, &2u32.to_le_bytes()));
                        drop(n);
                        r.commit();
                        landed += 1;
                    }
                    Err(e) => landed += counted(Err(e)),
                }
                landed
            })
        };
        buf.reset(0).unwrap();
        let landed = writer.join().unwrap();
        // The nested event carries the outer one's time stamp.
        let read = read_in_order(&buf, 3, false);
        let s = buf.stats(0).unwrap();
        assert_eq!(s.committed, landed, "{s:?}");
        assert_eq!(s.read, read);
        assert_eq!(s.committed, s.read + s.overrun, "{s:?}");
        assert_eq!(s.corruptions, 0);
    });
}
