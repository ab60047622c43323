//! The registry protocol: publish-once pointer slots and first-use ids,
//! shared by the event-type registry (`event::Registry`) and the binary
//! printk site table (`printk`).
//!
//! # Terms
//!
//! - **Slot**: an `AtomicPtr` that is null until an item is published in
//!   it. Items are `'static` and immutable once published (statics, or
//!   leaked boxes filled before they are published).
//! - **Id word**: an item's own `AtomicU32`, 0 until the item is given an
//!   id on first use (a printk site).
//!
//! ```text
//!   publish_once:  slot null ──CAS (Release)──> item        (one winner;
//!                                                           the loser gets
//!                                                           the winner's)
//!   assign_id:     slots[new] = item (Release), then
//!                  id word 0 ──CAS (AcqRel)──> new          (one winner;
//!                                                           every caller
//!                                                           gets its id)
//!   reader:        id = id word (Acquire); item = slots[id] (Acquire);
//!                  item's id word == id, or the item lost that id
//! ```
//!
//! # The contract
//!
//! - One item per slot and one id per item: every change is a
//!   compare-and-swap from the empty value, so of two registrants one wins
//!   and both get the winner's answer.
//! - Readers never see a half-published entry: a slot's item is published
//!   with Release after it was filled, and read with Acquire; an item's id
//!   is published only after its slot holds the item, so a record carrying
//!   an id always finds its item.
//! - Lock-free and allocation-free: a registration and a lookup may run in
//!   a signal handler.
//!
//! This module depends on nothing but `crate::sync`, so that the loom
//! model (`tests/loom_registry.rs`) compiles it alone, on loom's atomics.

use crate::sync::{AtomicPtr, AtomicU32, Ordering};

/// Publishes `item` in the empty `slot`; when the slot already holds an
/// item, `Err` with it (which the caller may read: the Acquire below).
#[inline]
pub(crate) fn publish_once<T>(slot: &AtomicPtr<T>, item: *mut T) -> Result<(), *mut T> {
    // Release on success: pairs with the Acquire load in `published`: the
    // item's contents are visible with the pointer. Acquire on failure:
    // pairs with the winner's Release: the holder's contents are visible.
    slot.compare_exchange(
        std::ptr::null_mut(),
        item,
        Ordering::Release,
        Ordering::Acquire,
    )
    .map(|_| ())
}

/// The item published in `slot` (null: none yet).
#[inline]
pub(crate) fn published<T>(slot: &AtomicPtr<T>) -> *mut T {
    // Acquire: pairs with the Release of `publish_once`, `assign_id` and
    // `replace`: the item's contents are visible.
    slot.load(Ordering::Acquire)
}

/// Publishes `item` in `slot` over whatever it held (an id found used for
/// two items: the caller puts a marker item there). The old item stays
/// valid (it is `'static`), only no longer found.
#[inline]
pub(crate) fn replace<T>(slot: &AtomicPtr<T>, item: *mut T) {
    // Release: pairs with the Acquire load in `published`.
    slot.store(item, Ordering::Release);
}

/// Gives `item`, whose id word is `id_word`, the id `new` (taken from an id
/// counter, so `slot`, its slot, is the caller's alone) unless another
/// caller gave it one first; returns the item's id either way. When the
/// race is lost, `slot` keeps pointing at the item, which does not own that
/// id: [`owns_id`] tells.
#[inline]
pub(crate) fn assign_id<T>(
    slot: &AtomicPtr<T>,
    id_word: &AtomicU32,
    item: *mut T,
    new: u32,
) -> u32 {
    // Release: pairs with the Acquire load in `published`; stored before
    // the id is published, so a record never carries an id whose slot is
    // still empty.
    slot.store(item, Ordering::Release);
    // AcqRel: the Release half orders the slot store above before the id
    // (pairs with the Acquire load in `assigned`); the Acquire half (and
    // Acquire on failure) pairs with the winner's Release.
    match id_word.compare_exchange(0, new, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => new,
        Err(winner) => winner,
    }
}

/// The id in `id_word`, 0 when none was assigned yet.
#[inline]
pub(crate) fn assigned(id_word: &AtomicU32) -> u32 {
    // Acquire: pairs with the Release half of `assign_id`'s
    // compare-and-swap: the slot of the id is filled.
    id_word.load(Ordering::Acquire)
}

/// Whether the item whose id word is `id_word`, found in slot `id`, owns
/// that id (it may have lost the race for it, see [`assign_id`]).
#[inline]
pub(crate) fn owns_id(id_word: &AtomicU32, id: u32) -> bool {
    assigned(id_word) == id
}
