//! Loom model of the shared page pool: a writer whose ring is full takes a
//! page from the pool and splices it in after its tail, while a reader
//! swaps the head page; the splice and the swap compare-and-swap the same
//! link (the one into the head page, which carries HEAD), so exactly one
//! wins and the other retries (steps S0-S2 in `write.rs`).
//!
//! A ring of 2 tiny pages (two 8-byte events each) and a pool of 1 page, in
//! both modes. In the nested variants, a nested write plays a signal
//! handler at a step of the splice (the write path's hook, `loom_hook`):
//! between the pop and the splice it splices first (the outer splice then
//! fails and gives its page back), after the splice it moves the tail onto
//! the spliced page before the outer writer does.
//!
//! In every interleaving: sequence numbers read continue exactly after
//! each reported loss; the losses reported plus the pending ones equal
//! `overrun + dropped + commit_overrun`; `written == read + overrun +
//! dropped + commit_overrun` once drained; no page is lost or linked twice
//! (the ring's pages plus the pool's free ones are all the pages; the
//! links close a ring with one HEAD and every `prev` right).
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test
//! --release -p ringtrace-ring --test loom_pool`.
#![cfg(loom)]

#[path = "common/loom_nest.rs"]
mod loom_nest;

use loom::sync::Arc;
use loom::thread;
use ringtrace_ring::loom_hook::Label;
use ringtrace_ring::{Config, Mode, RingBuffer, WriteError};

/// Sequence numbers of nested events start here.
const NESTED: u32 = 1000;

/// At the armed label, once: a nested write of two events (enough to fill
/// a page and make the nested writer move the tail itself).
fn nest(label: Label) {
    loom_nest::fire(label, |w| {
        for i in 0..2 {
            match w.write(100, &(NESTED + i).to_le_bytes()) {
                Ok(()) | Err(WriteError::Full | WriteError::CommitOverrun) => {}
                Err(e) => panic!("nested write: {e}"),
            }
        }
    });
}

fn model(mode: Mode, label: Option<Label>, writes: u32) {
    loom_nest::builder().check(move || {
        let buf = Arc::new(
            RingBuffer::new_unchecked_page_size(
                Config::new(1)
                    .pages_per_ring(2)
                    .pool_pages(1)
                    .page_size(32)
                    .mode(mode),
            )
            .unwrap(),
        );
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                loom_nest::arm(&buf, label, nest);
                for seq in 0..writes {
                    match w.write(u64::from(seq) + 1, &seq.to_le_bytes()) {
                        Ok(()) | Err(WriteError::Full | WriteError::CommitOverrun) => {}
                        Err(e) => panic!("write: {e}"),
                    }
                }
                loom_nest::disarm();
            })
        };
        // (seq, lost) of each event read.
        let (seen, pending) = loom_nest::read_around(&buf, 1, writer);
        // Outer events are read in order, each after the losses before it.
        let mut next = 0u64;
        for &(seq, _) in &seen {
            if seq < NESTED {
                assert!(
                    u64::from(seq) >= next,
                    "{mode:?} {label:?}: {seq} after {next}: {seen:?}"
                );
                next = u64::from(seq) + 1;
            }
        }
        loom_nest::assert_totals(&buf, &seen, pending, &format!("{mode:?} {label:?}"));
        let s = buf.stats(0).unwrap();
        assert_eq!(s.corruptions, 0, "{s:?}");
        // No page lost or linked twice: the ring's pages and the pool's
        // free ones are all 3, and the links close a ring with one HEAD,
        // every `prev` right.
        assert_eq!(
            buf.ring_pages(0).unwrap() + buf.pool_free_pages(),
            3,
            "{}",
            buf.debug_state(0)
        );
        buf.check_quiet_ring(0)
            .unwrap_or_else(|e| panic!("{e}: {}", buf.debug_state(0)));
    });
}

/// The writer fills its 2 pages, splices the pool page and fills it while
/// the reader swaps the head.
#[test]
fn splice_against_reader_swap_overwrite() {
    model(Mode::Overwrite, None, 6);
}

#[test]
fn splice_against_reader_swap_producer_consumer() {
    model(Mode::ProducerConsumer, None, 6);
}

/// A nested write between the pop and the splice: it takes the splice
/// (or finds the pool empty and pushes or drops), the outer one gives its
/// page back or finds the link moved.
#[test]
fn nested_write_between_pop_and_splice() {
    model(Mode::Overwrite, Some(Label::S0), 5);
}

/// A nested write after the splice, before the head's `prev` is fixed.
#[test]
fn nested_write_after_splice() {
    model(Mode::Overwrite, Some(Label::S1), 5);
}

/// A nested write after `prev` is fixed, before the tail moves.
#[test]
fn nested_write_after_prev_fixed() {
    model(Mode::ProducerConsumer, Some(Label::S2), 5);
}
