//! Loom models of the registry protocol (`src/record/publish.rs`, the code
//! the event-type registry and the printk site table run, compiled here on
//! loom's atomics):
//!
//! - two registrants publishing items in one slot (two event types with
//!   one id, or a session reader importing a site) against a reader: one
//!   item wins, both registrants get it, and the reader sees null or a
//!   whole item, never a half-filled one;
//! - two threads giving one printk site its id on first use, each with an
//!   id of its own from the counter, against a reader that follows a
//!   record's id to its site: one id for the site, and an id a reader sees
//!   always leads to the site.
//!
//! Items are filled through a `loom::cell::UnsafeCell` before they are
//! published, as a leaked site is: loom reports a reader that is not
//! ordered after the filling.
//!
//! Built with `RUSTFLAGS="--cfg ringtrace_loom"` (see `.ci/loom`): the
//! protocol module is the only code on loom's atomics; the crate around it
//! is built as usual.
#![cfg(ringtrace_loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicPtr, AtomicU32};
use loom::sync::Arc;
use loom::thread;

/// The facade's names, mapped to loom's, for the included protocol module
/// (it imports `crate::sync`).
mod sync {
    pub(crate) use loom::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
}

#[allow(dead_code)]
#[path = "../src/record/publish.rs"]
mod publish;

use loom::sync::atomic::Ordering::Relaxed;

/// A registered item: a name filled before it is published, and an id word
/// (0 until given an id).
struct Item {
    name: UnsafeCell<u32>,
    id: AtomicU32,
}

/// A new item named `name`, filled as a leaked site is (plain writes).
fn item(name: u32) -> *mut Item {
    let p = Box::into_raw(Box::new(Item {
        name: UnsafeCell::new(0),
        id: AtomicU32::new(0),
    }));
    // SAFETY: `p` is fresh and not yet shared.
    unsafe { (*p).name.with_mut(|n| *n = name) };
    p
}

/// The name of a published item.
///
/// # Safety
///
/// `p` points at an item from [`item`] that is not freed yet.
unsafe fn name_of(p: *mut Item) -> u32 {
    // SAFETY: the caller's promise; loom checks the read is ordered after
    // the filling.
    unsafe { (*p).name.with(|n| *n) }
}

/// Frees items made by [`item`] once every thread is joined.
fn free(items: &[*mut Item]) {
    for &p in items {
        // SAFETY: made by `Box::into_raw` in `item`, freed once, no thread
        // left that reads it.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// `Send` wrapper for an item pointer handed to a thread.
#[derive(Clone, Copy)]
struct Ptr(*mut Item);
// SAFETY: the items are shared read-only after publishing (the name is
// written before, through loom's checked cell).
unsafe impl Send for Ptr {}

#[test]
fn one_item_per_slot_and_never_half_published() {
    loom::model(|| {
        let slot = Arc::new(AtomicPtr::new(std::ptr::null_mut()));
        // Each registrant fills its own item (as a session reader leaks an
        // imported site) and publishes it: the other registrant and the
        // reader see the winner's only through the slot.
        let registrants: Vec<_> = [1, 2]
            .into_iter()
            .map(|name| {
                let slot = slot.clone();
                thread::spawn(move || {
                    let mine = item(name);
                    let got = match publish::publish_once(&slot, mine) {
                        Ok(()) => mine,
                        Err(held) => {
                            // SAFETY: `held` is the other registrant's,
                            // freed after join.
                            let n = unsafe { name_of(held) };
                            assert!(n == 1 || n == 2, "half-published holder: {n}");
                            held
                        }
                    };
                    (mine as usize, got as usize)
                })
            })
            .collect();
        let p = publish::published(&slot);
        if !p.is_null() {
            // SAFETY: a registrant's item, freed after join.
            let n = unsafe { name_of(p) };
            assert!(n == 1 || n == 2, "reader saw a half-published item: {n}");
        }
        let got: Vec<(usize, usize)> = registrants.into_iter().map(|t| t.join().unwrap()).collect();
        let winner = publish::published(&slot) as usize;
        assert!(got.iter().any(|&(mine, _)| mine == winner));
        assert!(
            got.iter().all(|&(_, g)| g == winner),
            "both registrants get the one item"
        );
        free(
            &got.iter()
                .map(|&(mine, _)| mine as *mut Item)
                .collect::<Vec<_>>(),
        );
    });
}

/// The printk site table: `slots[id]` points at the site given `id`.
struct Table {
    slots: [AtomicPtr<Item>; 3],
    next_id: AtomicU32,
}

/// Gives `site` its id on first use, as `register_site` does: a new id
/// from the counter, then `assign_id`.
fn register(t: &Table, site: *mut Item) -> u32 {
    // Relaxed: ids order nothing (as `next_id`); slots publish the site.
    let new = t.next_id.fetch_add(1, Relaxed);
    // SAFETY: `site` lives until every thread is joined.
    let id_word = unsafe { &(*site).id };
    publish::assign_id(&t.slots[new as usize], id_word, site, new)
}

/// What a reader of a record carrying `id` finds: the site, if `id` is
/// its own (`site_by_id`).
fn lookup(t: &Table, id: u32) -> Option<*mut Item> {
    let p = publish::published(&t.slots[id as usize]);
    if p.is_null() {
        return None;
    }
    // SAFETY: a published site lives until every thread is joined.
    publish::owns_id(unsafe { &(*p).id }, id).then_some(p)
}

#[test]
fn one_id_per_site_and_an_id_always_finds_its_site() {
    loom::model(|| {
        let site = item(42);
        let t = Arc::new(Table {
            slots: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            next_id: AtomicU32::new(1),
        });
        let registrants: Vec<_> = (0..2)
            .map(|_| {
                let (t, site) = (t.clone(), Ptr(site));
                thread::spawn(move || {
                    let site = site;
                    register(&t, site.0)
                })
            })
            .collect();
        // A reader that got the id from a record (the site's id word, as
        // a record written after `Site::id` carries it).
        // SAFETY: `site` is freed after join.
        let seen = publish::assigned(unsafe { &(*site).id });
        if seen != 0 {
            let p = lookup(&t, seen).expect("an id whose slot is empty");
            // SAFETY: as above.
            assert_eq!(unsafe { name_of(p) }, 42, "a half-published site");
        }
        let ids: Vec<u32> = registrants.into_iter().map(|r| r.join().unwrap()).collect();
        assert_eq!(ids[0], ids[1], "one id per site");
        assert_eq!(lookup(&t, ids[0]), Some(site));
        let lost = 3 - ids[0];
        assert_eq!(lookup(&t, lost), None, "the lost id names no site");
        free(&[site]);
    });
}
