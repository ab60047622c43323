//! Loom models of the tracer's lease protocol (`src/tracer/lease.rs`, the
//! code the tracer and the session run, compiled here on loom's atomics):
//!
//! - two writers leasing one slot, each writing the ring and handing it
//!   back: a slot is leased to one writer at a time, and the next
//!   leaseholder finds the previous one's events intact;
//! - two reclaimers taking back the slot of a dead writer while a new
//!   process takes over the dead one's process-table entry and leases the
//!   ring: one reclaimer repairs the ring, once; the new leaseholder finds
//!   it repaired with the dead writer's events intact; a reclaimer whose
//!   view is stale never takes the new, live lease (the generation bits).
//!
//! The ring is a `loom::cell::UnsafeCell` of plain events: loom reports any
//! two accesses that the protocol leaves unordered, so a claim that is not
//! a compare-and-swap, or a hand-over without Release/Acquire, fails the
//! model.
//!
//! Built with `RUSTFLAGS="--cfg ringtrace_loom"` (see `.ci/loom`): the
//! protocol module is the only code on loom's atomics; the crate around it
//! is built as usual.
#![cfg(ringtrace_loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::{AtomicBool, AtomicU32};
use loom::sync::Arc;
use loom::thread;

/// The facade's names, mapped to loom's, for the included protocol module
/// (it imports `crate::sync`).
mod sync {
    pub(crate) use loom::sync::atomic::{AtomicU32, Ordering};
}

#[allow(dead_code)]
#[path = "../src/tracer/lease.rs"]
mod lease;

use lease::{slot_owner, slot_state, EXITED, FREE, LEASED};
use loom::sync::atomic::Ordering::{Acquire, Relaxed, Release};

/// A ring as the protocol sees it: events, and whether a write was in
/// flight when its writer died (the repair turns it into a counted drop).
#[derive(Default)]
struct Ring {
    events: Vec<u32>,
    in_flight: bool,
    repairs: u32,
}

/// One slot with its ring, and a count of current leaseholders.
struct Shared {
    slot: AtomicU32,
    ring: UnsafeCell<Ring>,
    holders: AtomicU32,
    /// Whether process-table entry 1 names a live process (the dead
    /// writer's until a new process takes the entry over).
    entry_alive: AtomicBool,
}

impl Shared {
    fn new(slot: u32, ring: Ring) -> Arc<Shared> {
        Arc::new(Shared {
            slot: AtomicU32::new(slot),
            ring: UnsafeCell::new(ring),
            holders: AtomicU32::new(0),
            entry_alive: AtomicBool::new(false),
        })
    }

    /// Writes the ring as its leaseholder: checks what the earlier
    /// leaseholders left (`check`), then appends two events of `tag`.
    fn write_as_holder(&self, tag: u32, check: impl FnOnce(&Ring)) {
        // Relaxed: read-modify-writes of one word see each other in any
        // case, so a second holder at once shows; a stronger ordering
        // would order the holders by itself and hide a hand-over that
        // lacks its Release.
        assert_eq!(self.holders.fetch_add(1, Relaxed), 0, "two leaseholders");
        self.ring.with_mut(|r| {
            // SAFETY: only the leaseholder touches the ring; loom checks
            // that the lease orders this access after every earlier one.
            let r = unsafe { &mut *r };
            check(r);
            r.events.extend([tag, tag]);
        });
        assert_eq!(self.holders.fetch_sub(1, Relaxed), 1);
    }
}

/// The tracer's lease: a free slot, else a handed-back one (taken as it is,
/// as a takeover does); bounded, as `lease_free_or_drained` is.
fn lease_any(slot: &AtomicU32, owner: usize) -> bool {
    for _ in 0..2 {
        let v = slot.load(Relaxed);
        if !matches!(slot_state(v), FREE | EXITED) {
            return false;
        }
        if lease::claim(slot, v, owner) {
            return true;
        }
    }
    false
}

/// Every event of the ring comes in whole pairs: no leaseholder's writes
/// were lost or interleaved with another's.
fn whole_pairs(r: &Ring) {
    assert_eq!(r.events.len() % 2, 0, "{:?}", r.events);
    for p in r.events.chunks(2) {
        assert_eq!(p[0], p[1], "{:?}", r.events);
    }
}

#[test]
fn one_leaseholder_at_a_time_and_the_ring_handed_over_intact() {
    loom::model(|| {
        let sh = Shared::new(FREE, Ring::default());
        let writers: Vec<_> = (1..=2)
            .map(|tag| {
                let sh = sh.clone();
                thread::spawn(move || {
                    if !lease_any(&sh.slot, 0) {
                        return false;
                    }
                    sh.write_as_holder(tag, whole_pairs);
                    lease::release(&sh.slot);
                    true
                })
            })
            .collect();
        let leased = writers
            .into_iter()
            .map(|w| u32::from(w.join().unwrap()))
            .sum::<u32>();
        assert!(leased >= 1, "a free slot was refused to both");
        assert_eq!(slot_state(sh.slot.load(Relaxed)), EXITED);
        sh.ring.with(|r| {
            // SAFETY: every thread was joined.
            let r = unsafe { &*r };
            whole_pairs(r);
            assert_eq!(r.events.len() as u32, 2 * leased, "{:?}", r.events);
        });
    });
}

/// A reclaimer of the session: takes the slot back if it is leased by a
/// writer of entry 1 and entry 1 names a dead process, repairs the ring,
/// hands it back.
fn reclaim(sh: &Shared) {
    let v = sh.slot.load(Acquire);
    if slot_state(v) != LEASED || slot_owner(v) != 1 || sh.entry_alive.load(Acquire) {
        return;
    }
    if !lease::begin_reclaim(&sh.slot, v) {
        return;
    }
    sh.ring.with_mut(|r| {
        // SAFETY: `begin_reclaim` made this the only reclaimer, and the
        // writer is dead; loom checks the order against the new writer.
        let r = unsafe { &mut *r };
        assert_eq!(r.events, [9, 9], "the dead writer's events");
        r.in_flight = false;
        r.repairs += 1;
    });
    lease::finish_reclaim(&sh.slot, v);
}

#[test]
fn a_dead_writers_ring_is_reclaimed_once_and_handed_over_repaired() {
    let mut model = loom::model::Builder::new();
    model.preemption_bound.get_or_insert(3);
    model.check(|| {
        // The dead writer (process-table entry 1) leased the ring, wrote
        // two events and died with a third in flight.
        let sh = Shared::new(FREE, Ring::default());
        assert!(lease::claim(&sh.slot, FREE, 1));
        sh.ring.with_mut(|r| {
            // SAFETY: no other thread exists yet.
            let r = unsafe { &mut *r };
            r.events.extend([9, 9]);
            r.in_flight = true;
        });
        let reclaimers: Vec<_> = (0..2)
            .map(|_| {
                let sh = sh.clone();
                thread::spawn(move || reclaim(&sh))
            })
            .collect();
        // A new process takes entry 1 over once no slot names it leased
        // (`register_process`): it disowns the entry's handed-back ring,
        // and leases it (a takeover of a gone process's ring).
        let newcomer = {
            let sh = sh.clone();
            thread::spawn(move || {
                let v = sh.slot.load(Acquire);
                if slot_state(v) != EXITED {
                    return false;
                }
                if slot_owner(v) == 1 {
                    let _ = lease::disown(&sh.slot, v);
                }
                sh.entry_alive.store(true, Release);
                if !lease_any(&sh.slot, 1) {
                    return false;
                }
                sh.write_as_holder(7, |r| {
                    assert!(!r.in_flight, "leased before the repair");
                    assert_eq!(r.events, [9, 9], "the dead writer's events");
                });
                lease::release(&sh.slot);
                true
            })
        };
        for r in reclaimers {
            r.join().unwrap();
        }
        let leased = newcomer.join().unwrap();
        assert_eq!(slot_state(sh.slot.load(Relaxed)), EXITED);
        sh.ring.with(|r| {
            // SAFETY: every thread was joined.
            let r = unsafe { &*r };
            assert_eq!(r.repairs, 1, "reclaimed once");
            let want: &[u32] = if leased { &[9, 9, 7, 7] } else { &[9, 9] };
            assert_eq!(r.events, want);
        });
    });
}
