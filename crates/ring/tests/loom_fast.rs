//! Loom models of `Writer::write_with_fast`'s start-over protocol: the fast
//! path stops (the event did not fit, the time stamp needs the general loop,
//! recording is off), leaves the ring as an ended write would, returns
//! `None`, and the caller starts over with `write_with`, as the tracer's
//! record path does (`record` below). On a ring of 2 tiny pages (two 8-byte
//! events each) plus the reader's page.
//!
//! Nested writes (a signal handler's, on the writer's own thread) run where
//! a caller of the public API can put them: between the fast path's `None`
//! and the start over, and inside the fill of the write that starts over
//! (where they move the tail again). The windows inside `move_on` and
//! between step E and a stop need the library's step hook, which exists
//! only in its unit tests (`src/tests.rs`).
//!
//! Every model checks, in every interleaving: the events read are, in ring
//! order, a subsequence of those written (nothing read twice, nothing out of
//! order), the losses reported with each event are the entries skipped
//! before it, `written == read + overrun + dropped + commit_overrun +
//! entries` with `written` our own count, and refusals are counted once.
//! And once the writer thread is done: its last write (or the control
//! operation) left the commit point on the tail page with all of that page
//! committed, as every outermost write must; a fast write that stopped
//! leaves its start over nothing less. (Checked after the join: loaded on
//! the writer's thread, the state's loads race the reader's and multiply
//! the interleavings: 1.1 million instead of 4,800 for one model.)
//!
//! Run with `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test
//! --release -p ringtrace-ring --test loom_fast`.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use ringtrace_ring::format::data_capacity;
use ringtrace_ring::{Config, Mode, RingBuffer, WriteError, Writer};
use std::cell::{Cell, RefCell};

const PAGE_SIZE: usize = 32;
/// A gap that needs a time extend (more than 27 bits of delta).
const GAP: u64 = 1 << 28;
/// Writer ids in an event's tag (high half; the low half is a sequence
/// number per writer).
const OUTER: u32 = 0;
const NESTED: u32 = 1;

fn tiny(mode: Mode) -> Arc<RingBuffer> {
    Arc::new(
        RingBuffer::new_unchecked_page_size(
            Config::new(1)
                .pages_per_ring(2)
                .page_size(PAGE_SIZE)
                .mode(mode),
        )
        .unwrap(),
    )
}

fn tag(writer: u32, seq: u32) -> u32 {
    writer << 16 | seq
}

/// One attempt in ring order: an event filled (at its reservation), or a
/// loss counted when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Event(u32),
    Lost,
}

/// What the writer thread (its outer writer and the nested ones) did.
#[derive(Debug, Default)]
struct Tally {
    /// Attempts in ring order. A fill runs right after its reservation and
    /// nested writes run inside an outer one, so fills run in ring order.
    order: RefCell<Vec<Entry>>,
    landed: Cell<u64>,
    lost: Cell<u64>,
    refused: Cell<u64>,
    nested: Cell<u32>,
}

impl Tally {
    fn count(&self, r: Result<bool, WriteError>) {
        match r {
            Ok(true) => self.landed.set(self.landed.get() + 1),
            Err(WriteError::Full | WriteError::CommitOverrun) => {
                self.lost.set(self.lost.get() + 1);
                self.order.borrow_mut().push(Entry::Lost);
            }
            Err(WriteError::Disabled) => self.refused.set(self.refused.get() + 1),
            r => panic!("unexpected {r:?}"),
        }
    }
}

/// The tracer's record path: `write_with_fast`, and `write_with` when it
/// says to start over. `between` runs where a signal may land between the
/// two, `inside` in the fill once the payload is in place (a signal during
/// the write). Returns whether the fast path wrote the event (no start
/// over).
fn record(
    w: &mut Writer<'_>,
    ts: u64,
    tag: u32,
    tally: &Tally,
    between: impl FnOnce(),
    inside: impl FnOnce(),
) -> bool {
    let inside = Cell::new(Some(inside));
    let fill = |b: &mut [u8]| {
        b.copy_from_slice(&tag.to_le_bytes());
        tally.order.borrow_mut().push(Entry::Event(tag));
        if let Some(f) = inside.take() {
            f();
        }
        true
    };
    let (fast, r) = match w.write_with_fast(ts, 4, fill) {
        Some(r) => (true, r),
        None => {
            between();
            (false, w.write_with(ts, 4, fill))
        }
    };
    tally.count(r);
    fast && r.is_ok()
}

/// A signal handler's write on the writer's thread, through the same
/// record path (its fast path does not apply when it interrupts a write).
fn nested(buf: &RingBuffer, ts: u64, tally: &Tally) {
    let seq = tally.nested.get();
    tally.nested.set(seq + 1);
    // SAFETY: this thread holds the ring's writer and the nested write
    // completes before the outer one resumes, as a signal handler's.
    let mut n = unsafe { buf.nested_writer(0) }.unwrap();
    record(&mut n, ts, tag(NESTED, seq), tally, || (), || ());
}

/// Checks that the commit point is on the tail page and that page is
/// committed to its end, as the last outermost write (or control
/// operation) leaves them (`debug_state`'s fields; readers change none of
/// them). Only once the writer thread is done.
fn assert_committed(buf: &RingBuffer) {
    let state = buf.debug_state(0);
    let field = |s: &str, key: &str| -> u64 {
        let rest = s.split(key).nth(1).unwrap_or_else(|| panic!("{state}"));
        rest.split_whitespace().next().unwrap().parse().unwrap()
    };
    let tail = field(&state, "tail ");
    assert_eq!(field(&state, "commit "), tail, "commit page: {state}");
    let page = state
        .split('|')
        .find(|p| p.starts_with(&format!(" P{tail}:")))
        .unwrap_or_else(|| panic!("{state}"));
    let written = field(page, "write ").min(data_capacity(PAGE_SIZE) as u64);
    assert_eq!(field(page, "commit "), written, "tail page commit: {state}");
}

/// An event as read: tag, time stamp, losses reported with it.
type Seen = (u32, u64, u64);

fn consume(c: &mut ringtrace_ring::Consumer<'_>, seen: &mut Vec<Seen>) -> bool {
    match c.consume().unwrap() {
        Some(ev) => {
            let t = u32::from_le_bytes(ev.payload.try_into().unwrap());
            seen.push((t, ev.timestamp, ev.lost_events));
            true
        }
        None => false,
    }
}

/// The checks every model ends with, on a drained ring. `ts_of` gives an
/// outer event's time stamp (nested ones take the time of what they
/// interrupted). `exact_losses`: each event reports exactly the entries
/// skipped before it (not after a reset, which discards without a place).
fn check(
    buf: &RingBuffer,
    tally: &Tally,
    seen: &[Seen],
    pending: u64,
    ts_of: impl Fn(u32) -> u64,
    exact_losses: bool,
) {
    let order = tally.order.borrow();
    let mut at = 0;
    let mut last_ts = 0;
    let mut reported = 0;
    for &(t, ts, lost) in seen {
        let mut skipped = 0;
        loop {
            match order.get(at) {
                None => panic!("{t:#x} read out of order or twice: {seen:?} {order:?}"),
                Some(&Entry::Event(e)) if e == t => break,
                Some(_) => skipped += 1,
            }
            at += 1;
        }
        at += 1;
        if exact_losses {
            assert_eq!(lost, skipped, "losses before {t:#x}: {seen:?} {order:?}");
        }
        reported += lost;
        if t >> 16 == OUTER {
            assert_eq!(ts, ts_of(t & 0xffff), "stamp of {t:#x}: {seen:?}");
        }
        assert!(ts >= last_ts, "time went backwards: {seen:?}");
        last_ts = ts;
    }
    if exact_losses {
        assert_eq!(pending, (order.len() - at) as u64, "{seen:?} {order:?}");
    }
    let s = buf.stats(0).unwrap();
    let (landed, lost) = (tally.landed.get(), tally.lost.get());
    assert_eq!(s.written, landed + lost, "{s:?} {order:?}");
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
        "{s:?}"
    );
    // Drained: what was committed was read or overwritten.
    assert_eq!(s.entries, 0, "{s:?} {seen:?} {}", buf.debug_state(0));
    assert_eq!(s.committed, landed, "{s:?}");
    assert_eq!(s.dropped + s.commit_overrun, lost, "{s:?}");
    assert_eq!(s.read, seen.len() as u64, "{s:?}");
    assert_eq!(
        s.refused,
        tally.refused.get(),
        "refusals counted once: {s:?}"
    );
    assert_eq!(reported + pending, s.overrun + s.dropped + s.commit_overrun);
    assert_eq!(s.corruptions, 0);
    if buf.mode() == Mode::ProducerConsumer {
        assert_eq!(s.overrun, 0, "{s:?}");
    }
}

/// `prefill` plain records made before the threads start, then the writer
/// thread's one record, whose fast path must stop (the event does not fit,
/// or needs the general loop), with the nested writes asked for. Outer
/// record `i` is stamped `ts_of(i)`: `i + 1`, plus [`GAP`] from `gap_at`
/// on.
#[derive(Clone, Copy)]
struct Script {
    mode: Mode,
    prefill: u32,
    gap_at: Option<u32>,
    /// A nested write between the fast path's `None` and the start over,
    /// stamped as the record before (it is outermost there).
    nest_between: bool,
    /// A nested write in the fill of the record.
    nest_inside: bool,
    /// Reader calls made while the writer runs.
    reads: u32,
}

/// The scripts of model 1 and 2 vary this one: page 0 full, nested writes
/// between and inside, two reader calls.
const AGAINST_READER: Script = Script {
    mode: Mode::Overwrite,
    prefill: 2,
    gap_at: None,
    nest_between: true,
    nest_inside: true,
    reads: 2,
};

impl Script {
    fn ts_of(self, i: u32) -> u64 {
        let gap = match self.gap_at {
            Some(g) if i >= g => GAP,
            _ => 0,
        };
        u64::from(i) + 1 + gap
    }
}

/// A writer thread against a reader thread (models 1 and 2).
fn reader_model(script: Script) {
    let mut model = loom::model::Builder::new();
    // Each reader call takes the ring's `busy` word: more branches than
    // loom's default bound of 1000.
    model.max_branches = 20_000;
    model.check(move || {
        let buf = tiny(script.mode);
        let tally = Tally::default();
        {
            let mut w = buf.writer(0).unwrap();
            for i in 0..script.prefill {
                let ts = script.ts_of(i);
                record(&mut w, ts, tag(OUTER, i), &tally, || (), || ());
            }
        }
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                let i = script.prefill;
                let ts = script.ts_of(i);
                let fast = record(
                    &mut w,
                    ts,
                    tag(OUTER, i),
                    &tally,
                    || {
                        if script.nest_between {
                            nested(&buf, script.ts_of(i - 1), &tally);
                        }
                    },
                    || {
                        if script.nest_inside {
                            nested(&buf, ts, &tally);
                        }
                    },
                );
                assert!(!fast, "the fast path wrote it");
                tally
            })
        };
        let mut seen = Vec::new();
        {
            let mut c = buf.consumer(0).unwrap();
            for _ in 0..script.reads {
                consume(&mut c, &mut seen);
            }
        }
        let tally = writer.join().unwrap();
        assert_committed(&buf);
        let mut c = buf.consumer(0).unwrap();
        while consume(&mut c, &mut seen) {}
        let pending = c.pending_losses();
        drop(c);
        check(&buf, &tally, &seen, pending, |i| script.ts_of(i), true);
    });
}

// Model 1: an outermost write whose event does not fit on the tail page
// takes `move_on` (moves the tail, runs the commit walk, says to start
// over), racing a reader that swaps pages, with nested writes where a
// signal can land in the record path.

/// Page 0 full: the third event's fast path moves the tail to page 1 while
/// the reader swaps page 0 (the head, and the commit page until the move's
/// commit walk) out. A nested write lands between `None` and the start
/// over, on page 1; another inside the start over's fill finds page 1 full
/// and moves the tail onto the head page (pushing it) or onto the reader's
/// old page.
#[test]
fn move_on_against_reader() {
    reader_model(AGAINST_READER);
}

/// The same in producer/consumer mode: the nested write inside the fill
/// finds the ring full (its loss counted once) unless the reader freed
/// page 0 first.
#[test]
fn move_on_against_reader_producer_consumer() {
    reader_model(Script {
        mode: Mode::ProducerConsumer,
        ..AGAINST_READER
    });
}

/// Both pages full: the fifth event's fast path overflows onto the head
/// page, and `move_on` pushes it while the reader tries to swap it in; a
/// nested write lands on the pushed page before the start over.
#[test]
fn move_on_pushes_the_head_against_reader() {
    reader_model(Script {
        prefill: 4,
        nest_inside: false,
        ..AGAINST_READER
    });
}

/// The same in producer/consumer mode: `move_on` fails, the loss counted
/// once and the error returned with no start over, unless the reader
/// swapped the head page out first.
#[test]
fn move_on_meets_a_full_ring_against_reader() {
    reader_model(Script {
        mode: Mode::ProducerConsumer,
        prefill: 4,
        ..AGAINST_READER
    });
}

// Model 2: a fast write that stops with the general detour (its stamp needs
// a time extend): it ends its write with the commit walk and starts over.

/// Page 0 full; the third event is stamped 2^28 after the second, so its
/// fast path stops after step E. A nested write between `None` and the
/// start over is outermost there: its own fast path overflows page 0 and
/// takes `move_on`, and it lands on page 1. The outer start over stops at
/// the detour again, and the general loop moves the tail (pushing the head
/// page, or onto the reader's old page) for it and for a nested write
/// inside its fill. Every one is committed when the outer write returns.
#[test]
fn general_detour_against_reader() {
    reader_model(Script {
        gap_at: Some(2),
        ..AGAINST_READER
    });
}

/// The same in producer/consumer mode: the general loop finds the ring full
/// unless the reader freed page 0.
#[test]
fn general_detour_against_reader_producer_consumer() {
    reader_model(Script {
        mode: Mode::ProducerConsumer,
        gap_at: Some(2),
        ..AGAINST_READER
    });
}

// Model 3: fast writes that meet disabled recording, from a control
// operation in another thread.

/// Page 0 full (before the threads start); the writer records `writes`
/// events through the record path (the first does not fit on page 0 and
/// takes `move_on`, or meets the operation at step E) while `op` runs.
/// `keeps_pages`: the operation changes no page (recording off and on), so
/// the first record cannot fit and each loss has its place.
fn control_model(writes: u32, op: fn(&RingBuffer), keeps_pages: bool) {
    let mut model = loom::model::Builder::new();
    model.max_branches = 20_000;
    model.check(move || {
        let buf = tiny(Mode::Overwrite);
        let tally = Tally::default();
        let ts_of = |i: u32| u64::from(i) + 1;
        {
            let mut w = buf.writer(0).unwrap();
            for i in 0..2 {
                record(&mut w, ts_of(i), tag(OUTER, i), &tally, || (), || ());
            }
        }
        let writer = {
            let buf = buf.clone();
            thread::spawn(move || {
                let mut w = buf.writer(0).unwrap();
                for i in 2..2 + writes {
                    let fast = record(&mut w, ts_of(i), tag(OUTER, i), &tally, || (), || ());
                    if i == 2 && keeps_pages {
                        assert!(!fast, "the fast path wrote it");
                    }
                }
                tally
            })
        };
        op(&buf);
        let tally = writer.join().unwrap();
        // Whoever ended last, the writer or the operation, left the commit
        // point on the tail page.
        assert_committed(&buf);
        let mut seen = Vec::new();
        let mut c = buf.consumer(0).unwrap();
        while consume(&mut c, &mut seen) {}
        let pending = c.pending_losses();
        drop(c);
        let attempts = u64::from(2 + writes);
        assert_eq!(
            tally.landed.get() + tally.lost.get() + tally.refused.get(),
            attempts
        );
        check(&buf, &tally, &seen, pending, ts_of, keeps_pages);
    });
}

/// Recording off and on while the page-crossing write runs: its fast path
/// may meet recording off at step E (nothing counted) and its start over
/// find it on again (written, never also refused), or both off (refused
/// once); or the fast path moves the tail and the start over is refused,
/// which must leave the commit point on the new tail page.
#[test]
fn fast_write_meets_recording_off() {
    control_model(
        1,
        |b| {
            b.record_off();
            b.record_on();
        },
        true,
    );
}

/// A reset (which quiesces the ring: record_disabled raised, waits for
/// `committing == 0`) while two records run, the first crossing a page.
#[test]
fn fast_write_meets_a_reset() {
    control_model(2, |b| b.reset(0).unwrap(), false);
}
