//! Shared by the loom models that play a signal handler: a nested write
//! armed at one label of the write path (through `loom_hook`), and a
//! reader of rings whose events are `u32` sequence numbers; also the tiny
//! ring and the plain writes of such models.
#![allow(dead_code)]

use loom::thread::JoinHandle;
use ringtrace_ring::loom_hook::{self, Label};
use ringtrace_ring::{Consumer, RingBuffer};
use std::cell::Cell;

loom::thread_local! {
    static ARMED: Cell<Option<Label>> = Cell::new(None);
    static BUF: Cell<*const RingBuffer> = Cell::new(std::ptr::null());
}

/// One ring of `pages` tiny pages (32 bytes: two 8-byte events each).
pub fn tiny_ring(pages: usize) -> loom::sync::Arc<RingBuffer> {
    loom::sync::Arc::new(
        RingBuffer::new_unchecked_page_size(
            ringtrace_ring::Config::new(1)
                .pages_per_ring(pages)
                .page_size(32),
        )
        .unwrap(),
    )
}

/// Writes events `seqs` with `w`, each one's payload its `u32` sequence
/// number, stamped `seq + 1`; every write must land.
pub fn write_seqs(w: &mut ringtrace_ring::Writer<'_>, seqs: std::ops::Range<u32>) {
    for seq in seqs {
        w.write(u64::from(seq) + 1, &seq.to_le_bytes()).unwrap();
    }
}

/// A model builder with room for the write path's atomics: more per path
/// than loom's default bound of 1000 branches allows.
pub fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.max_branches = 20_000;
    builder
}

/// On the writer's thread, which keeps `buf` alive until [`disarm`]: from
/// now on `nest` runs at every label, and [`fire`] lets it write once at
/// `label` (never when `None`).
pub fn arm(buf: &RingBuffer, label: Option<Label>, nest: fn(Label)) {
    BUF.with(|b| b.set(buf));
    ARMED.with(|a| a.set(label));
    loom_hook::set(Some(nest));
}

/// Ends what [`arm`] started.
pub fn disarm() {
    loom_hook::set(None);
}

/// Inside the hook: at the armed label, once, runs `write` with a nested
/// writer of ring 0 (it plays a signal handler of the writer's thread).
pub fn fire(label: Label, write: impl FnOnce(&mut ringtrace_ring::Writer<'_>)) {
    if ARMED.with(|a| a.get()) != Some(label) {
        return;
    }
    ARMED.with(|a| a.set(None));
    // SAFETY: the model's writer thread keeps the buffer alive while its
    // hook is set (`arm`), and the hook runs on that thread only.
    let buf = unsafe { &*BUF.with(|b| b.get()) };
    // SAFETY: the nested write completes before the interrupted one
    // resumes: it plays a signal handler of the thread holding the writer.
    let mut w = unsafe { buf.nested_writer(0) }.unwrap();
    write(&mut w);
}

/// The sequence number an event carries.
pub fn seq_of(payload: &[u8]) -> u32 {
    u32::from_le_bytes(payload.try_into().unwrap())
}

/// Consumes one event into `seen` as (sequence number, losses before it);
/// false when the ring is empty.
pub fn read_one(c: &mut Consumer<'_>, seen: &mut Vec<(u32, u64)>) -> bool {
    match c.consume().unwrap() {
        Some(ev) => {
            seen.push((seq_of(ev.payload), ev.lost_events));
            true
        }
        None => false,
    }
}

/// The reader of a model: `attempts` reads while `writer` writes, then,
/// once it is joined, every event left. Returns what was read and the
/// losses still pending at the end.
pub fn read_around(
    buf: &RingBuffer,
    attempts: usize,
    writer: JoinHandle<()>,
) -> (Vec<(u32, u64)>, u64) {
    let mut seen = Vec::new();
    let mut c = buf.consumer(0).unwrap();
    for _ in 0..attempts {
        read_one(&mut c, &mut seen);
    }
    drop(c);
    writer.join().unwrap();
    let mut c = buf.consumer(0).unwrap();
    while read_one(&mut c, &mut seen) {}
    let pending = c.pending_losses();
    (seen, pending)
}

/// The totals once drained: every loss reported (`reported` with the
/// events `seen`, plus `pending`), and the accounting identity.
pub fn assert_totals(buf: &RingBuffer, seen: &[(u32, u64)], pending: u64, what: &str) {
    let reported: u64 = seen.iter().map(|&(_, lost)| lost).sum();
    let s = buf.stats(0).unwrap();
    assert_eq!(
        reported + pending,
        s.overrun + s.dropped + s.commit_overrun,
        "{what}: {seen:?} {s:?}"
    );
    assert_eq!(s.written, s.read + s.overrun + s.dropped + s.commit_overrun);
    assert_eq!(s.read, seen.len() as u64, "{s:?}");
    assert_eq!(s.entries, 0, "{s:?}");
}
