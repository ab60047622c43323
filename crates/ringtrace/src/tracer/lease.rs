//! The lease protocol: which writer owns which ring, one `u32` slot word
//! per ring, changed only by the operations of this module.
//!
//! # Terms
//!
//! - **Slot**: the lease word of one ring, in the tracer (heap flavor) or
//!   in a session's shared memory (every process of the session leases
//!   from one table).
//! - **Leaseholder**: the one writer (a thread with its signal handlers,
//!   or a `ContextHandle`) that may write the slot's ring.
//! - **Owner**: the session's process-table entry + 1 of the leaseholder's
//!   process (0: none; always 0 in an in-process tracer).
//! - **Reclaimer**: a session process that takes back the slot of a
//!   process found dead (it repairs the ring, `recover_dead_writer`).
//!
//! ```text
//!            claim (AcqRel CAS)                 release (Release CAS, only
//!   FREE ───────────────────────> LEASED ─────────────────────> EXITED
//!                                  │  ^       by the leaseholder)   │
//!                 begin_reclaim    │  │  claim (AcqRel CAS): once    │
//!     (AcqRel CAS, the owner dead) │  └──────────────────────────────┘
//!                                  v     drained, or taken over
//!                              RECLAIMING ─────────────────────> EXITED
//!                                  finish_reclaim (Release store)
//! ```
//!
//! # The contract
//!
//! - A slot is leased to one writer at a time: every change of state is a
//!   compare-and-swap on the word as last seen, so of two claimants of one
//!   word one wins, and a reclaimer whose view is stale fails.
//! - A ring changes hands with its events intact: the leaseholder's
//!   `release` (Release) and the reclaimer's `finish_reclaim` (Release)
//!   pair with the next `claim` (Acquire half of its AcqRel), so the next
//!   writer sees every write of the previous one (or of the repair).
//! - The generation bits change on every claim, so a word seen `LEASED`
//!   before a reclaim, a hand-back and a new lease by the same owner is not
//!   equal to the new lease's word (no ABA): a stale reclaimer leaves the
//!   live lease alone.
//! - Only the leaseholder releases; a reclaimer takes only the slots whose
//!   owner it found dead. Deciding who is dead, and repairing the ring, is
//!   the session's job; choosing which slot to claim is the tracer's.
//!
//! This module depends on nothing but `crate::sync`, so that the loom
//! model (`tests/loom_lease.rs`) compiles it alone, on loom's atomics.
//!
//! # Slot word layout
//!
//! ```text
//!   bits 0-1    state: FREE, LEASED, EXITED or RECLAIMING
//!   bits 2-12   owner: the session's process-table entry + 1 of the process
//!               that leased it (0: none: always for an in-process tracer;
//!               in a session, a ring handed back by a process whose entry
//!               was taken over since, see `session::orphaned_rings`)
//!   bits 13-31  lease generation, bumped by every lease (wraps), so that a
//!               reclaimer's compare-and-swap fails on a slot leased again
//!               since it looked (ABA), even by a process that got the same
//!               process-table entry.
//! ```

use crate::sync::{AtomicU32, Ordering};

/// Slot state: never leased.
pub(crate) const FREE: u32 = 0;
/// Slot state: a thread or handle writes this ring.
pub(crate) const LEASED: u32 = 1;
/// Slot state: the writer is gone; the ring is reused once drained.
pub(crate) const EXITED: u32 = 2;
/// Slot state: its leasing process died; a reader of the session repairs
/// the ring (`recover_dead_writer`) and then marks it `EXITED`.
pub(crate) const RECLAIMING: u32 = 3;
/// The state bits of a slot word.
pub(crate) const SLOT_STATE: u32 = 3;
const SLOT_OWNER_SHIFT: u32 = 2;
const SLOT_OWNER_MASK: u32 = 0x7ff;
const SLOT_GEN_ONE: u32 = 1 << 13;

/// Most process-table entries a slot word can name.
pub(crate) const MAX_SLOT_OWNERS: usize = SLOT_OWNER_MASK as usize;

/// The state of slot word `v`.
#[inline]
pub(crate) fn slot_state(v: u32) -> u32 {
    v & SLOT_STATE
}

/// The owner (process-table entry + 1, 0 for none) of slot word `v`.
#[inline]
pub(crate) fn slot_owner(v: u32) -> usize {
    ((v >> SLOT_OWNER_SHIFT) & SLOT_OWNER_MASK) as usize
}

/// Slot word `v` with state `state` (owner and generation kept).
#[inline]
pub(crate) fn slot_with_state(v: u32, state: u32) -> u32 {
    (v & !SLOT_STATE) | state
}

/// Slot word `v` naming `owner` (state and generation kept).
#[inline]
pub(crate) fn slot_with_owner(v: u32, owner: usize) -> u32 {
    (v & !(SLOT_OWNER_MASK << SLOT_OWNER_SHIFT))
        | ((owner as u32 & SLOT_OWNER_MASK) << SLOT_OWNER_SHIFT)
}

/// The word that leases a slot whose word was `v` to `owner`: the next
/// generation.
#[inline]
pub(crate) fn slot_leased(v: u32, owner: usize) -> u32 {
    let gen =
        (v & !((SLOT_OWNER_MASK << SLOT_OWNER_SHIFT) | SLOT_STATE)).wrapping_add(SLOT_GEN_ONE);
    gen | ((owner as u32 & SLOT_OWNER_MASK) << SLOT_OWNER_SHIFT) | LEASED
}

/// Leases `slot`, seen as `seen`, to a writer of `owner`, if nobody
/// changed it since. The caller chose `seen` (a `FREE` word, an `EXITED`
/// one whose ring is drained or is taken over as it is); true when the
/// caller is now the leaseholder.
#[inline]
pub(crate) fn claim(slot: &AtomicU32, seen: u32, owner: usize) -> bool {
    // AcqRel: the Acquire half pairs with the Release of `release` and of
    // `finish_reclaim`: the new writer sees every write of the ring's
    // previous writer (or of the repair). One of two claimants of one word
    // wins.
    slot.compare_exchange(
        seen,
        slot_leased(seen, owner),
        Ordering::AcqRel,
        Ordering::Relaxed,
    )
    .is_ok()
}

/// Ends the caller's lease of `slot` (the caller is its leaseholder): the
/// ring stays readable and is leased again once drained. Does nothing to
/// a slot not `LEASED` (a reclaimer took it: the process was judged dead).
#[inline]
pub(crate) fn release(slot: &AtomicU32) {
    let v = slot.load(Ordering::Relaxed);
    if slot_state(v) == LEASED {
        // Release: pairs with the AcqRel compare-and-swap in `claim`: the
        // next writer of this ring sees every write of this one. A CAS,
        // not a store: a reclaimer may have taken the word meanwhile.
        let _ = slot.compare_exchange(
            v,
            slot_with_state(v, EXITED),
            Ordering::Release,
            Ordering::Relaxed,
        );
    }
}

/// Whether `slot`'s lease ended (its writer is gone: the ring gets no
/// more events until it is leased again).
#[inline]
pub(crate) fn handed_back(slot: &AtomicU32) -> bool {
    // Relaxed: a report, ordering nothing.
    slot_state(slot.load(Ordering::Relaxed)) == EXITED
}

/// Starts taking back `slot`, seen `LEASED` as `seen` by a leaseholder
/// whose process the caller found dead; true when the caller is its only
/// reclaimer and may repair the ring, then must call [`finish_reclaim`]
/// (or leave the slot `RECLAIMING` for good, when the ring cannot be
/// repaired). False when the slot changed since `seen` (leased again:
/// the generation differs) or another reclaimer won.
#[inline]
pub(crate) fn begin_reclaim(slot: &AtomicU32, seen: u32) -> bool {
    // AcqRel: the Acquire half sees the dead writer's stores as far as
    // they reached memory (its process's end, which the caller found, is
    // what orders them); one reclaimer wins.
    slot_state(seen) == LEASED
        && slot
            .compare_exchange(
                seen,
                slot_with_state(seen, RECLAIMING),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
}

/// Ends a reclaim started by [`begin_reclaim`] with the same `seen`: the
/// repaired ring is handed back (`EXITED`), its events kept for readers.
#[inline]
pub(crate) fn finish_reclaim(slot: &AtomicU32, seen: u32) {
    // Release: pairs with the AcqRel lease in `claim`: the next
    // leaseholder sees the repaired ring.
    slot.store(slot_with_state(seen, EXITED), Ordering::Release);
}

/// Makes `slot`, seen `EXITED` as `seen`, name no process (owner 0), when
/// its owner's process-table entry is taken over: the ring then counts as
/// handed back by a gone process (`orphaned_rings`), never as the new
/// process's. False when the slot changed since.
#[inline]
pub(crate) fn disown(slot: &AtomicU32, seen: u32) -> bool {
    // AcqRel: as any slot change (pairs with `claim`'s AcqRel).
    slot_state(seen) == EXITED
        && slot
            .compare_exchange(
                seen,
                slot_with_owner(seen, 0),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .is_ok()
}
