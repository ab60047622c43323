//! The storage seam: where a tracer's rings and lease slots live.
//!
//! # Terms
//!
//! - **Heap flavor**: an in-process tracer. Its ring buffer is on the heap
//!   and its lease slots are boxes of its own ([`SlotArray::Owned`]).
//! - **Shared flavor**: a tracer on a session. Its rings, lease slots,
//!   process table and type tables are in one shared-memory file, so that
//!   every process of the session leases from one table and readers in
//!   other processes decode what it writes. `crate::session` implements
//!   it through [`SharedStorage`].
//!
//! # Contract
//!
//! This room defines the seam and never names the session: the session
//! depends on the tracer, never the reverse. The methods of
//! [`SharedStorage`] that the record path calls (`before_write`,
//! `count_refused`) are async-signal-safe: atomics only, no lock, no
//! allocation. The others run on the lease path, in ordinary code.

use crate::sync::{AtomicU32, Ordering};
use std::any::Any;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use ringtrace_ring::RingBuffer;

use super::Refusal;

/// The shared flavor's side of a tracer: what the tracer asks of the
/// shared memory its rings live in. One per tracer on a session.
pub(crate) trait SharedStorage: Any + Send + Sync + fmt::Debug {
    /// Lease state of each ring (the tracer's slot words), in the shared
    /// memory, so that all the processes of the session lease from one
    /// table.
    fn slot_states(&self) -> &[AtomicU32];
    /// Thread id of each ring's current or last writer, in the shared
    /// memory.
    fn slot_tids(&self) -> &[AtomicU32];
    /// The session's recording switch ([`Switch`]'s word, nonzero: off),
    /// in the shared memory, so that one store reaches every writer
    /// process.
    fn tracing_off(&self) -> &AtomicU32;
    /// The session's context mask (bit set: the context does not record),
    /// in the shared memory (`mask::ContextMask`).
    fn context_mask_off(&self) -> &[crate::sync::AtomicU64];
    /// The wall-clock anchor of the storage's start, if it has one.
    fn wall_start(&self) -> Option<crate::clock::WallStart>;
    /// Whether this process writes into the storage (registers itself and
    /// publishes its formats) rather than only reading it.
    fn is_writer(&self) -> bool;
    /// Whether this process found the process table full and runs
    /// untraced.
    fn is_untraced(&self) -> bool;
    /// Makes this process run untraced (said once on stderr).
    fn run_untraced(&self);
    /// This process's owner number for the slot words (0: none).
    fn owner(&self) -> usize;
    /// Takes back the slots of processes that died holding them, repairing
    /// their rings; how many (`None` when not due yet).
    fn reclaim_dead_slots(&self, buf: &RingBuffer) -> Option<usize>;
    /// Rings handed back by processes that are gone, with their slot
    /// words, for a takeover by owner `own`.
    fn orphaned_rings(&self, rings: usize, own: usize) -> Vec<(usize, u32)>;
    /// Counts a refused event where the storage's readers see it.
    fn count_refused(&self, why: Refusal);
    /// Registers this process anew when it is not the one that registered
    /// (a forked child).
    fn check_process(&self);
    /// Publishes thread `tid`'s name and its process's pid and name.
    fn put_comm(&self, tid: i32, comm: &str, process: (u32, &str));
    /// Publishes event type `id`'s format (and any new printk site) before
    /// a record of it is written, so that a reader that sees the record
    /// finds its format. Async-signal-safe.
    fn before_write(&self, id: u16, depth: u32);
    /// The implementing type, for the shared flavor's own methods.
    fn as_any(&self) -> &dyn Any;
}

/// A tracer's lease slots: its own memory (heap flavor), or the shared
/// storage's (shared flavor).
#[derive(Debug)]
pub(crate) enum SlotArray {
    /// In-process tracer.
    Owned(Box<[AtomicU32]>),
    /// The shared storage's lease states.
    States(Arc<dyn SharedStorage>),
    /// The shared storage's writer tids.
    Tids(Arc<dyn SharedStorage>),
}

impl SlotArray {
    /// `n` slots of the heap flavor, all 0 (`FREE`, no tid).
    pub(crate) fn owned(n: usize) -> SlotArray {
        SlotArray::Owned((0..n).map(|_| AtomicU32::new(0)).collect())
    }
}

impl std::ops::Deref for SlotArray {
    type Target = [AtomicU32];
    fn deref(&self) -> &[AtomicU32] {
        match self {
            SlotArray::Owned(b) => b,
            SlotArray::States(s) => s.slot_states(),
            SlotArray::Tids(s) => s.slot_tids(),
        }
    }
}

/// A tracer's recording switch (`tracing_on`): one word, 0 while recording
/// is on, in the tracer's own memory (heap flavor) or in the shared
/// storage (shared flavor), so that `ringtrace stop` in another process
/// reaches every writer of a session. Mirrored into the tracer's rings
/// ([`set_switch`]): the record path's fast path reads the rings' copy,
/// in the word it loads anyway, and only the general path reads this one,
/// with one Relaxed load through one pointer, the same in both flavors.
/// A record racing a switch is recorded or not, never torn.
pub(crate) struct Switch {
    /// Points at `own` or into `storage`'s memory, both held by `self`.
    word: NonNull<AtomicU32>,
    /// The heap flavor's word. An `Arc`, not a `Box`: moving a `Box`
    /// asserts it is unique, which would void `word` under Rust's aliasing
    /// rules; an `Arc` may be moved with pointers into it alive.
    _own: Option<Arc<AtomicU32>>,
    /// Keeps the shared flavor's memory mapped.
    _storage: Option<Arc<dyn SharedStorage>>,
}

// SAFETY: `word` points at an `AtomicU32` (itself Send and Sync) that the
// switch keeps alive (its own `Arc`, or the storage it holds an `Arc` of);
// only shared references to it are ever made.
unsafe impl Send for Switch {}
// SAFETY: as for Send.
unsafe impl Sync for Switch {}

impl Switch {
    /// The switch of a tracer on `storage`, or its own (on) when `None`.
    pub(crate) fn new(storage: Option<Arc<dyn SharedStorage>>) -> Switch {
        match storage {
            Some(s) => Switch {
                word: NonNull::from(s.tracing_off()),
                _own: None,
                _storage: Some(s),
            },
            None => {
                let own = Arc::new(AtomicU32::new(0));
                Switch {
                    word: NonNull::from(&*own),
                    _own: Some(own),
                    _storage: None,
                }
            }
        }
    }

    fn word(&self) -> &AtomicU32 {
        // SAFETY: the pointee lives as long as `self` (see the fields).
        unsafe { self.word.as_ref() }
    }

    /// Whether recording is on: the record path's one load.
    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        self.word().load(Ordering::Relaxed) == 0
    }

    /// Turns recording on or off, on the tracer's rings `buf` too (see
    /// [`set_switch`]).
    pub(crate) fn set(&self, on: bool, buf: &RingBuffer) {
        set_switch(self.word(), buf, on);
    }
}

/// Rounds [`set_switch`] makes at most to bring the rings' switch in line
/// with the word while other setters race it.
const MIRROR_ROUNDS: usize = 8;

/// Sets a recording switch `word` (nonzero: off) and mirrors it into the
/// ring buffer `buf` it governs (`RingBuffer::record_off`, a bit in each
/// ring's `record_disabled`), which every write loads anyway: so the
/// record path needs no load of its own for the switch. It loads the
/// word only after the ring refused a write, to tell a switch turned off
/// (`RecordError::Off`, not counted) from a disabled ring.
///
/// The rings never refuse while the word says on, outside a racing
/// setter: turning on clears the rings' bit before the word, turning off
/// sets the word first. Setters that race each other converge: each
/// applies the word's value it loads and stops only once the word still
/// holds that value after the rings have it, so the last setter to stop
/// leaves the rings as the word says (a setter applies the word's value
/// to every ring after its own store, so no store to the word follows the
/// last check unseen). Bounded by `MIRROR_ROUNDS` against a storm of
/// setters. Atomics only: async-signal-safe (the crash dump turns
/// recording off from a signal handler). SeqCst on the word: the check
/// must see the stores of setters whose ring updates it may have undone.
pub(crate) fn set_switch(word: &AtomicU32, buf: &RingBuffer, on: bool) {
    if on {
        buf.record_on();
    }
    word.store(u32::from(!on), Ordering::SeqCst);
    for _ in 0..MIRROR_ROUNDS {
        let off = word.load(Ordering::SeqCst) != 0;
        if off {
            buf.record_off();
        } else {
            buf.record_on();
        }
        if (word.load(Ordering::SeqCst) != 0) == off {
            return;
        }
    }
}

impl fmt::Debug for Switch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Switch").field("on", &self.is_on()).finish()
    }
}
