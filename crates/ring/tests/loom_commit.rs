//! Loom models of the commit protocol against readers, on rings of 2 tiny
//! pages (two 8-byte events each) plus the reader's page.
//!
//! 1. The design document's special case: the reader swaps out a page that
//!    is also the commit page while a nested writer commits. The writer
//!    thread reserves an outer event, writes a nested one through
//!    `nested_writer` (a signal handler's write, modelled on the same
//!    thread: it runs to completion inside the outer write), then commits
//!    the outer event, while the reader thread consumes. No event may be
//!    lost or read twice, and once drained `committed == read + overrun`.
//! 2. The iterator's overwrite check: a writer laps a 2-page ring while the
//!    iterator copies events out of it. Every event returned is one that was
//!    written, with its own time stamp, in order, and the sequence numbers
//!    continue exactly after the reported losses.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test
//! --release -p ringtrace-ring --test loom_commit`.
#![cfg(loom)]

#[path = "common/cases.rs"]
mod cases;

use loom::sync::Arc;
use loom::thread;
use ringtrace_ring::{Config, Mode, RingBuffer};

fn tiny(mode: Mode) -> Arc<RingBuffer> {
    Arc::new(
        RingBuffer::new_unchecked_page_size(
            Config::new(1).pages_per_ring(2).page_size(32).mode(mode),
        )
        .unwrap(),
    )
}

fn seq_of(payload: &[u8]) -> u32 {
    u32::from_le_bytes(payload.try_into().unwrap())
}

/// What the writer thread does: `before` plain writes, then an outer
/// reservation with one nested write inside it, then `after` plain writes.
/// Sequence numbers follow ring order: the outer event precedes the nested
/// one (it reserved first).
fn writer_script(buf: &RingBuffer, before: u32, after: u32) -> u32 {
    let mut w = buf.writer(0).unwrap();
    let mut seq = 0u32;
    for _ in 0..before {
        w.write(u64::from(seq) + 1, &seq.to_le_bytes()).unwrap();
        seq += 1;
    }
    let outer = seq;
    let mut r = w.reserve(u64::from(outer) + 1, 4).unwrap();
    r.copy_from_slice(&outer.to_le_bytes());
    {
        // SAFETY: this thread holds the ring's writer and the nested write
        // completes before the outer one resumes, as a signal handler's.
        let mut n = unsafe { buf.nested_writer(0) }.unwrap();
        n.write(u64::from(outer) + 1, &(outer + 1).to_le_bytes())
            .unwrap();
    }
    r.commit();
    seq += 2;
    for _ in 0..after {
        w.write(u64::from(seq) + 1, &seq.to_le_bytes()).unwrap();
        seq += 1;
    }
    seq
}

fn commit_model(before: u32, after: u32, reader_attempts: u32, mode: Mode, batch: bool) {
    loom::model(move || {
        let buf = tiny(mode);
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || writer_script(&buf, before, after))
        };
        let mut seen: Vec<(u32, u64, u64)> = Vec::new();
        {
            let mut c = buf.consumer(0).unwrap();
            for _ in 0..reader_attempts {
                if batch {
                    c.consume_batch(2, |ev| {
                        seen.push((seq_of(ev.payload), ev.timestamp, ev.lost_events))
                    })
                    .unwrap();
                } else if let Some(ev) = c.consume().unwrap() {
                    seen.push((seq_of(ev.payload), ev.timestamp, ev.lost_events));
                }
            }
        }
        let written = writer.join().unwrap();
        let pending = {
            let mut c = buf.consumer(0).unwrap();
            if batch {
                c.consume_batch(usize::MAX, |ev| {
                    seen.push((seq_of(ev.payload), ev.timestamp, ev.lost_events))
                })
                .unwrap();
                assert_eq!(c.consume_batch(usize::MAX, |_| ()).unwrap(), 0);
            } else {
                while let Some(ev) = c.consume().unwrap() {
                    seen.push((seq_of(ev.payload), ev.timestamp, ev.lost_events));
                }
            }
            c.pending_losses()
        };
        let mut next = 0u64;
        let mut last_ts = 0;
        let mut lost_total = 0;
        for &(seq, ts, lost) in &seen {
            assert_eq!(
                u64::from(seq),
                next + lost,
                "seq after {lost} lost: {seen:?}"
            );
            assert!(ts >= last_ts, "time went backwards: {seen:?}");
            last_ts = ts;
            next = u64::from(seq) + 1;
            lost_total += lost;
        }
        let s = buf.stats(0).unwrap();
        assert_eq!(s.written, u64::from(written), "{s:?}");
        if s.dropped + s.commit_overrun == 0 {
            // Nothing refused: the newest event was committed and read.
            assert_eq!(next, u64::from(written), "{seen:?} {s:?}");
        }
        // Drained: what the writer's pages committed was read or overrun.
        assert_eq!(s.committed, s.read + s.overrun, "{s:?} {seen:?}");
        assert_eq!(s.entries, 0);
        assert_eq!(s.read, seen.len() as u64);
        assert_eq!(s.corruptions, 0);
        assert_eq!(
            lost_total + pending,
            s.overrun + s.dropped + s.commit_overrun,
            "{s:?} {seen:?}"
        );
        if mode == Mode::ProducerConsumer {
            // Nothing overwritten: every committed event was read.
            assert_eq!(s.overrun, 0);
        }
    });
}

cases::test_cases! { commit_model:
    /// One plain event, then the outer reservation fills the first page, so the
    /// nested write moves the tail to the second page while the commit page is
    /// still the first one, the page the reader wants to swap in.
    reader_swaps_the_commit_page_while_a_nested_write_moves_the_tail => (1, 0, 2, Mode::Overwrite, false);
    /// The same with the outer event first on an empty ring (head, tail, commit
    /// and the reader's target on one page) and a write after the commit.
    reader_swaps_the_only_page_while_a_nested_write_commits => (0, 1, 2, Mode::Overwrite, false);
    /// The same read in batches: the reader, caught up in the middle of the
    /// page the writers are filling, decides from the page's `commit` alone
    /// that the page is still open (`Consumer::readable`), and must still
    /// swap once the commit point leaves it.
    batch_reader_on_the_only_page_while_a_nested_write_commits => (0, 1, 2, Mode::Overwrite, true);
    /// Producer/consumer mode: the nested write and the following writes may
    /// find the ring full; nothing committed is ever lost.
    commit_page_swap_producer_consumer => (1, 1, 2, Mode::ProducerConsumer, false);
}

/// The iterator against a writer lapping it (overwrite mode): `prefill`
/// events are written before the threads start, `writes - prefill` while
/// the iterator makes `iter_calls` calls.
fn iter_model(prefill: u32, writes: u32, iter_calls: u32) {
    loom::model(move || {
        let buf = tiny(Mode::Overwrite);
        {
            let mut w = buf.writer(0).unwrap();
            for seq in 0..prefill {
                w.write(u64::from(seq) + 1, &seq.to_le_bytes()).unwrap();
            }
        }
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                for seq in prefill..writes {
                    w.write(u64::from(seq) + 1, &seq.to_le_bytes()).unwrap();
                }
            })
        };
        let mut it = buf.iter(0).unwrap();
        let mut seen: Vec<(u32, u64, u64)> = Vec::new();
        for _ in 0..iter_calls {
            if let Some(ev) = it.next().unwrap() {
                seen.push((seq_of(ev.payload), ev.timestamp, ev.lost_events));
            }
        }
        writer.join().unwrap();
        while let Some(ev) = it.next().unwrap() {
            seen.push((seq_of(ev.payload), ev.timestamp, ev.lost_events));
        }
        let mut prev: Option<u32> = None;
        let mut lost_total = 0;
        for &(seq, ts, lost) in &seen {
            assert!(seq < writes, "never written: {seen:?}");
            assert_eq!(ts, u64::from(seq) + 1, "time stamp of {seq}: {seen:?}");
            if let Some(p) = prev {
                assert_eq!(seq, p + 1 + lost as u32, "{seen:?}");
                lost_total += lost;
            } else {
                assert_eq!(lost, 0);
            }
            prev = Some(seq);
        }
        // The iterator ends at the newest event, and counted every gap.
        assert_eq!(prev, Some(writes - 1), "{seen:?}");
        assert_eq!(it.skipped(), lost_total);
        let first = seen.first().map_or(0, |s| s.0);
        assert_eq!(
            seen.len() as u64 + lost_total,
            u64::from(writes - first),
            "{seen:?}"
        );
        // It consumed nothing.
        let s = buf.stats(0).unwrap();
        assert_eq!(s.read, 0);
        assert_eq!(s.committed, u64::from(writes));
    });
}

cases::test_cases! { iter_model:
    /// A full ring (four events); the fifth write pushes the head page and
    /// rewrites it while the iterator copies its first event from it.
    iterator_lapped_once => (4, 5, 1);
    /// Two more writes after a full ring: a push, then the rewritten page fills
    /// while the iterator makes two calls.
    iterator_lapped_twice => (4, 6, 2);
}
