//! Loom models of the max-latency protocol (`src/latency/max.rs`, the
//! code `Latency` runs, compiled here on loom's atomics):
//!
//! - two sections ending at once with new maxima, and a reader taking the
//!   kept snapshot: one claim at a time (a snapshot is never torn: its
//!   latency, thread and events are written by one holder), a beaten
//!   candidate changes nothing and is counted, every offer ends as kept,
//!   below or beaten, and what is kept is the max the word shows;
//! - the same with a threshold: every candidate above it is kept unless
//!   beaten, the last holder's wins.
//!
//! The kept snapshot is a `loom::cell::UnsafeCell` written in several
//! steps: loom reports any two accesses the claim leaves unordered, so a
//! claim that is not exclusive, or a hand-over without Release/Acquire,
//! fails the model.
//!
//! Built with `RUSTFLAGS="--cfg ringtrace_loom"` (see `.ci/loom`).
#![cfg(ringtrace_loom)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU32;
use loom::sync::Arc;
use loom::thread;

/// The facade's names, mapped to loom's, for the included protocol module.
mod sync {
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
}

#[allow(dead_code)]
#[path = "../src/latency/max.rs"]
mod max;

use loom::sync::atomic::Ordering::Relaxed;
use max::{MaxWord, Offer};

/// A kept snapshot: what a holder writes, field by field.
#[derive(Debug, Default, Clone, PartialEq)]
struct Kept {
    latency: u64,
    who: u32,
    /// Stands for the swapped rings: the holder's events.
    events: Vec<u32>,
}

struct Shared {
    word: MaxWord,
    kept: UnsafeCell<Option<Kept>>,
    /// Claim holders right now (must never exceed 1).
    holders: AtomicU32,
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum End {
    Kept,
    Below,
    Beaten,
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared {
            word: MaxWord::default(),
            kept: UnsafeCell::new(None),
            holders: AtomicU32::new(0),
        })
    }

    /// A section of thread `who` ended after `d`: `Latency::end`.
    fn end(&self, who: u32, d: u64, thresh: u64) -> End {
        match self.word.offer(d, thresh) {
            Offer::Below => End::Below,
            Offer::Beaten => End::Beaten,
            Offer::Won(claim) => {
                self.hold(|k| {
                    // The swap: the holder's view replaces the kept one.
                    *k = Some(Kept {
                        latency: d,
                        who,
                        events: vec![who, who],
                    });
                });
                claim.keep(d);
                End::Kept
            }
        }
    }

    /// Runs `f` on the kept snapshot as the one claim holder.
    fn hold<R>(&self, f: impl FnOnce(&mut Option<Kept>) -> R) -> R {
        // Relaxed: read-modify-writes of one word see each other anyway;
        // a stronger ordering would hide a hand-over that lacks its Release.
        assert_eq!(self.holders.fetch_add(1, Relaxed), 0, "two claim holders");
        let r = self.kept.with_mut(|k| {
            // SAFETY: only the claim holder touches the kept snapshot;
            // loom checks the claim orders this after every earlier access.
            f(unsafe { &mut *k })
        });
        assert_eq!(self.holders.fetch_sub(1, Relaxed), 1);
        r
    }

    /// `Latency::take_max`: waits (yielding) for the claim, takes the
    /// snapshot out.
    fn take(&self) -> Option<Kept> {
        let claim = loop {
            if let Some(c) = self.word.try_claim() {
                break c;
            }
            thread::yield_now();
        };
        let k = self.hold(|k| k.take());
        drop(claim);
        k
    }
}

/// A snapshot is whole: written by one holder.
fn whole(k: &Kept) {
    assert_eq!(k.events, vec![k.who, k.who], "{k:?}");
    assert_eq!(k.latency, u64::from(k.who) * 10, "{k:?}");
}

fn run(thresh: u64) {
    loom::model(move || {
        let sh = Shared::new();
        let sections: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|who| {
                let sh = sh.clone();
                thread::spawn(move || sh.end(who, u64::from(who) * 10, thresh))
            })
            .collect();
        let reader = {
            let sh = sh.clone();
            thread::spawn(move || sh.take())
        };
        let ends: Vec<End> = sections.into_iter().map(|t| t.join().unwrap()).collect();
        let taken = reader.join().unwrap();
        let left = sh.take();
        let kept = ends.iter().filter(|&&e| e == End::Kept).count();
        let beaten = ends.iter().filter(|&&e| e == End::Beaten).count();
        assert_eq!(sh.word.beaten() as usize, beaten, "beaten ones counted");
        for k in taken.iter().chain(left.iter()) {
            whole(k);
        }
        if kept == 0 {
            // The reader held the claim (or one section's claim beat the
            // other while the reader held it after): a new max that finds
            // the claim taken never waits; both are counted as beaten,
            // and nothing was kept.
            assert_eq!(beaten, 2, "{ends:?}");
            assert!(taken.is_none() && left.is_none(), "{ends:?}");
            return;
        }
        // The last snapshot kept is the one left (or taken after it) and
        // its latency is the word's max.
        let last = left
            .as_ref()
            .or(taken.as_ref())
            .expect("something was kept");
        assert_eq!(last.latency, sh.word.max(), "{ends:?}");
        if thresh == 0 {
            // Without a threshold a later smaller one is below, never kept
            // over a larger one; unless beaten, the larger one is kept.
            if beaten == 0 {
                assert_eq!(sh.word.max(), 20, "{ends:?}");
            }
            if ends[1] == End::Kept {
                assert_eq!(sh.word.max(), 20);
            }
        } else {
            // Above the threshold every candidate is kept unless beaten.
            assert_eq!(kept + beaten, 2, "{ends:?}");
        }
    });
}

#[test]
fn one_claim_at_a_time_new_max_never_tears_the_kept_snapshot() {
    run(0);
}

#[test]
fn above_threshold_every_candidate_kept_unless_beaten() {
    run(5);
}
