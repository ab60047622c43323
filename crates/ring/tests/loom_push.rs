//! Loom model of a nested write inside the head push, against a reader: the
//! window of issue 19's late loss reports.
//!
//! A writer thread on a ring of 2 tiny pages (two 8-byte events each) in
//! overwrite mode writes until it pushes the head. At a step of that push
//! (the write path's hook, `loom_hook`), a nested write plays a signal
//! handler: it is too large for the tail page, so it helps the push (or
//! pushes itself), moves the tail and lands on the pushed page. A reader
//! thread consumes meanwhile. In every interleaving, each thread event the
//! reader gets carries, with the losses reported before it, every thread
//! event written before it that the reader never got; and after the writer
//! is done, the losses reported plus the pending ones equal `overrun`, with
//! `written == read + overrun`.
//!
//! Counting the push only in its owner after its compare-and-swap (as the
//! kernel does) fails the model at P1: the nested writer marks the new head,
//! the reader swaps it in and reads a newer event before the owner resumes
//! to count the page it lost.
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test
//! --release -p ringtrace-ring --test loom_push`.
#![cfg(loom)]

#[path = "common/loom_nest.rs"]
mod loom_nest;

#[path = "common/cases.rs"]
mod cases;

use loom::thread;
use ringtrace_ring::loom_hook::Label;

/// Sequence number marking the nested event.
const NESTED: u32 = 1000;

/// At the armed label, once: a nested write. The outer write is moving the
/// tail because the tail page is full, so the nested one must move too.
fn nest(label: Label) {
    loom_nest::fire(label, |w| w.write(100, &NESTED.to_le_bytes()).unwrap());
}

fn model(label: Label) {
    loom_nest::builder().check(move || {
        let buf = loom_nest::tiny_ring(2);
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                // Events 0-3 fill both pages; event 4 pushes the head.
                loom_nest::write_seqs(&mut w, 0..4);
                loom_nest::arm(&buf, Some(label), nest);
                let _ = w.write(5, &4u32.to_le_bytes());
                loom_nest::disarm();
            })
        };
        // (seq, lost) of each event read.
        let (seen, pending) = loom_nest::read_around(&buf, 2, writer);
        // No late report: thread events before each one read that were not
        // read are lost, and reported by then.
        let mut reported = 0;
        let mut outer_read = 0;
        for &(seq, lost) in &seen {
            reported += lost;
            if seq != NESTED {
                assert!(
                    reported >= u64::from(seq) - outer_read,
                    "{label:?}: event {seq} read with {reported} losses reported: {seen:?}"
                );
                outer_read += 1;
            }
        }
        loom_nest::assert_totals(&buf, &seen, pending, &format!("{label:?}"));
    });
}

cases::test_cases! { model:
    nested_write_before_the_push_compare_and_swap => (Label::P0);
    nested_write_after_the_push_compare_and_swap => (Label::P1);
    nested_write_after_the_new_head_is_marked => (Label::P2);
}
