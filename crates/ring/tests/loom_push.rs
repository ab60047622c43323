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

use loom::sync::Arc;
use loom::thread;
use ringtrace_ring::loom_hook::{self, Label};
use ringtrace_ring::{Config, RingBuffer};
use std::cell::Cell;

/// Sequence number marking the nested event.
const NESTED: u32 = 1000;

loom::thread_local! {
    static ARMED: Cell<Option<Label>> = Cell::new(None);
    static BUF: Cell<*const RingBuffer> = Cell::new(std::ptr::null());
}

/// At the armed label, once: a nested write. The outer write is moving the
/// tail because the tail page is full, so the nested one must move too.
fn nest(label: Label) {
    if ARMED.with(|a| a.get()) != Some(label) {
        return;
    }
    ARMED.with(|a| a.set(None));
    // SAFETY: the model's writer thread keeps the buffer alive while its
    // hook is set, and the hook runs on that thread only.
    let buf = unsafe { &*BUF.with(|b| b.get()) };
    // SAFETY: this nested write completes before the interrupted one
    // resumes: it plays a signal handler of the thread holding the writer.
    let mut w = unsafe { buf.nested_writer(0) }.unwrap();
    w.write(100, &NESTED.to_le_bytes()).unwrap();
}

fn model(label: Label) {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    builder.check(move || {
        let buf = Arc::new(
            RingBuffer::new_unchecked_page_size(Config::new(1).pages_per_ring(2).page_size(32))
                .unwrap(),
        );
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                // Events 0-3 fill both pages; event 4 pushes the head.
                for seq in 0..4u32 {
                    w.write(u64::from(seq) + 1, &seq.to_le_bytes()).unwrap();
                }
                BUF.with(|b| b.set(&*buf));
                ARMED.with(|a| a.set(Some(label)));
                loom_hook::set(Some(nest));
                let _ = w.write(5, &4u32.to_le_bytes());
                loom_hook::set(None);
            })
        };
        // (seq, lost) of each event read.
        let mut seen: Vec<(u32, u64)> = Vec::new();
        let read = |c: &mut ringtrace_ring::Consumer<'_>, seen: &mut Vec<(u32, u64)>| {
            if let Some(ev) = c.consume().unwrap() {
                let seq = u32::from_le_bytes(ev.payload.try_into().unwrap());
                seen.push((seq, ev.lost_events));
                true
            } else {
                false
            }
        };
        let pending = {
            let mut c = buf.consumer(0).unwrap();
            for _ in 0..2 {
                read(&mut c, &mut seen);
            }
            drop(c);
            writer.join().unwrap();
            let mut c = buf.consumer(0).unwrap();
            while read(&mut c, &mut seen) {}
            c.pending_losses()
        };
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
        let s = buf.stats(0).unwrap();
        assert_eq!(
            reported + pending,
            s.overrun + s.dropped + s.commit_overrun,
            "{label:?}: {seen:?} {s:?}"
        );
        assert_eq!(s.written, s.read + s.overrun + s.dropped + s.commit_overrun);
        assert_eq!(s.read, seen.len() as u64, "{s:?}");
        assert_eq!(s.entries, 0, "{s:?}");
    });
}

#[test]
fn nested_write_before_the_push_compare_and_swap() {
    model(Label::P0);
}

#[test]
fn nested_write_after_the_push_compare_and_swap() {
    model(Label::P1);
}

#[test]
fn nested_write_after_the_new_head_is_marked() {
    model(Label::P2);
}
