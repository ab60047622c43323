//! Loom model of the head-page protocol: a writer pushing the head page in
//! overwrite mode against a reader swapping its page in, on a ring of 2
//! tiny pages (two 8-byte events each) plus the reader's page.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test
//! --release -p ringtrace-ring --test loom_head`. Loom explores every
//! interleaving of the atomics (within the preemption bound) and checks, in
//! each, that no page is lost or seen twice: sequence numbers read are
//! strictly increasing and continue exactly after each reported loss, and
//! `written == read + overrun + still buffered`.
#![cfg(loom)]

#[path = "common/loom_nest.rs"]
mod loom_nest;

use loom::thread;

fn check_model(writes: u32, reader_attempts: u32, pages: usize, batch: bool) {
    // Each reader call also takes the ring's `busy` word (control
    // operations' exclusion): the builder has room for it.
    loom_nest::builder().check(move || {
        let buf = loom_nest::tiny_ring(pages);
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                loom_nest::write_seqs(&mut w, 0..writes);
            })
        };
        let mut seen: Vec<(u32, u64, u64)> = Vec::new();
        {
            let mut c = buf.consumer(0).unwrap();
            for _ in 0..reader_attempts {
                if batch {
                    // One event per call, as `consume`: a batch of a whole
                    // page lets the reader swap more often than the
                    // writer's bounded commit walk retries fit in loom's
                    // branch budget (see `loom_commit` for batches of 2).
                    c.consume_batch(1, |ev| {
                        let seq = u32::from_le_bytes(ev.payload.try_into().unwrap());
                        seen.push((seq, ev.timestamp, ev.lost_events));
                    })
                    .unwrap();
                } else if let Some(ev) = c.consume().unwrap() {
                    let seq = u32::from_le_bytes(ev.payload.try_into().unwrap());
                    seen.push((seq, ev.timestamp, ev.lost_events));
                }
            }
        }
        writer.join().unwrap();
        {
            let mut c = buf.consumer(0).unwrap();
            if batch {
                c.consume_batch(usize::MAX, |ev| {
                    let seq = u32::from_le_bytes(ev.payload.try_into().unwrap());
                    seen.push((seq, ev.timestamp, ev.lost_events));
                })
                .unwrap();
                assert_eq!(c.consume_batch(usize::MAX, |_| ()).unwrap(), 0);
            } else {
                while let Some(ev) = c.consume().unwrap() {
                    let seq = u32::from_le_bytes(ev.payload.try_into().unwrap());
                    seen.push((seq, ev.timestamp, ev.lost_events));
                }
            }
        }
        let mut next = 0u64;
        for &(seq, ts, lost) in &seen {
            assert_eq!(
                u64::from(seq),
                next + lost,
                "seq after {lost} lost: {seen:?}"
            );
            assert_eq!(ts, u64::from(seq) + 1);
            next = u64::from(seq) + 1;
        }
        let s = buf.stats(0).unwrap();
        assert_eq!(
            next,
            u64::from(writes),
            "the newest event is kept: {seen:?} {s:?} {}",
            buf.debug_state(0)
        );
        let s = buf.stats(0).unwrap();
        assert_eq!(s.written, u64::from(writes));
        // Drained: committed (writer's pages) == read (reader) + overrun (pushes).
        assert_eq!(s.committed, s.read + s.overrun, "{s:?}");
        assert_eq!(s.entries, 0);
        assert_eq!(s.read, seen.len() as u64);
        assert_eq!(s.corruptions, 0);
    });
}

/// The writer fills both pages and pushes the head once while the reader
/// tries to swap.
#[test]
fn head_push_against_reader_swap() {
    check_model(5, 2, 2, false);
}

/// A longer run: two pushes, and the reader swapping in between.
#[test]
fn two_pushes_against_reader_swaps() {
    check_model(7, 1, 2, false);
}

/// `consume_batch` (one busy acquisition, one commit load per stretch,
/// counters stored once per stretch) against a writer pushing the head.
#[test]
fn head_push_against_batch_reader() {
    check_model(5, 2, 2, true);
}
