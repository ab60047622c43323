//! Loom model of `Consumer::nothing_to_read`, the merged pipe's cheap look
//! at a ring it found empty: a writer filling 2 tiny pages (two 8-byte
//! events each) plus the reader's page, in both modes (overwrite mode
//! pushes the head), against a reader that, at each step, loads how many
//! events the writer has committed, then asks `nothing_to_read` and reads
//! one event when it says there may be one.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test
//! --release -p ringtrace-ring --test loom_empty`. In every interleaving:
//! no event committed before a `true` answer is read after it (it would
//! have been hidden), sequence numbers continue exactly after each
//! reported loss, and `written == read + overrun + dropped + still
//! buffered` once drained.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU32, Ordering};
use loom::sync::Arc;
use loom::thread;
use ringtrace_ring::{Config, Mode, RingBuffer};

fn check_model(mode: Mode, writes: u32, reader_steps: u32) {
    let mut model = loom::model::Builder::new();
    // Each reader call takes the ring's `busy` word too: more atomics per
    // path than loom's default bound of 1000 branches allows.
    model.max_branches = 20_000;
    model.check(move || {
        let buf = Arc::new(
            RingBuffer::new_unchecked_page_size(
                Config::new(1).pages_per_ring(2).page_size(32).mode(mode),
            )
            .unwrap(),
        );
        // One past the sequence number of the last event committed (a
        // write that returned Ok; a dropped one is never read).
        let committed = Arc::new(AtomicU32::new(0));
        let writer = {
            let (buf, committed) = (buf.clone(), committed.clone());
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                for seq in 0..writes {
                    if w.write(u64::from(seq) + 1, &seq.to_le_bytes()).is_ok() {
                        // Release: pairs with the reader's Acquire load, so
                        // the event's commit happens before a
                        // `nothing_to_read` made after that load.
                        committed.store(seq + 1, Ordering::Release);
                    }
                }
            })
        };
        let mut seen: Vec<(u32, u64)> = Vec::new();
        // (sequence numbers below it were committed before the answer,
        // events read before it), for each `true`.
        let mut empty_at: Vec<(u32, usize)> = Vec::new();
        {
            let mut c = buf.consumer(0).unwrap();
            for _ in 0..reader_steps {
                let before = committed.load(Ordering::Acquire);
                if c.nothing_to_read() {
                    empty_at.push((before, seen.len()));
                } else if let Some(ev) = c.consume().unwrap() {
                    let seq = u32::from_le_bytes(ev.payload.try_into().unwrap());
                    seen.push((seq, ev.lost_events));
                }
            }
        }
        writer.join().unwrap();
        {
            let mut c = buf.consumer(0).unwrap();
            while let Some(ev) = c.consume().unwrap() {
                let seq = u32::from_le_bytes(ev.payload.try_into().unwrap());
                seen.push((seq, ev.lost_events));
            }
            assert!(c.nothing_to_read(), "drained, the writer gone");
        }
        check_outcome(&buf, writes, &seen, &empty_at);
    });
}

/// The model's checks, once every thread is done and the ring drained.
fn check_outcome(buf: &RingBuffer, writes: u32, seen: &[(u32, u64)], empty_at: &[(u32, usize)]) {
    for &(before, pos) in empty_at {
        for &(seq, _) in &seen[pos..] {
            assert!(
                seq >= before,
                "event {seq}, committed before a true answer, read after it: \
                 {seen:?} {empty_at:?}"
            );
        }
    }
    let s = buf.stats(0).unwrap();
    let mut next = 0u64;
    for &(seq, lost) in seen {
        assert_eq!(
            u64::from(seq),
            next + lost,
            "seq after {lost} lost: {seen:?}"
        );
        next = u64::from(seq) + 1;
    }
    assert_eq!(s.written, u64::from(writes), "{s:?}");
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
        "{s:?}"
    );
    // Drained: what the writer's pages hold was read or overwritten.
    assert_eq!(s.committed, s.read + s.overrun, "{s:?}");
    assert_eq!(s.entries, 0);
    assert_eq!(s.read, seen.len() as u64);
    assert_eq!(s.corruptions, 0);
}

/// Overwrite mode: the writer fills both pages and pushes the head while
/// the reader alternates between the check and reads.
#[test]
fn empty_check_against_head_push() {
    check_model(Mode::Overwrite, 5, 2);
}

/// Producer/consumer mode: the writer fills the ring (the last writes are
/// dropped) while the reader checks and reads, swapping pages.
#[test]
fn empty_check_against_filling_writer() {
    check_model(Mode::ProducerConsumer, 4, 3);
}
