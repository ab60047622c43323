//! The max-latency protocol (the kernel's `tracing_max_latency`,
//! `tracing_thresh` and the `max_lock` around `update_max_tr`), on atomics
//! only, so that `tests/loom_latency.rs` model-checks this very code.
//!
//! # Terms
//!
//! - **offer**: a section ended with duration `d`; it is a *candidate* when
//!   `d > thresh` (a threshold is set) or `d > max` (no threshold).
//! - **claim**: the one right to take a snapshot; a candidate gets it by
//!   one compare-and-swap of `busy` from 0 to 1, never by waiting.
//!
//! # Contract
//!
//! ```text
//! offer(d):  candidate? --no--> Below
//!              | yes
//!            CAS busy 0->1 --fails--> beaten += 1 ; Beaten   (never waits)
//!              | won
//!            candidate again? --no--> busy = 0 ; Below        (a larger max
//!              | yes                                           was kept meanwhile)
//!            Won(Claim)  ... the holder swaps the rings, keeps the snapshot ...
//! Claim::keep(d): max = d ; busy = 0   (Release)
//! Claim::drop:    busy = 0             (Release; nothing kept)
//! ```
//!
//! At most one claim exists at a time, so a snapshot is never torn by a
//! concurrent new max: the loser only counts that it was beaten. A reader
//! of the kept snapshot takes the same claim (`try_claim_for_reader`),
//! retrying in ordinary code while a writer holds it.

use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// The shared words of one latency tracker.
#[derive(Debug, Default)]
pub(crate) struct MaxWord {
    /// The latency of the kept snapshot, in ns (`tracing_max_latency`).
    /// Written only by a claim holder; read by anyone (Relaxed: a hint
    /// for the candidate test, checked again under the claim).
    max: AtomicU64,
    /// 1 while a claim is held, else 0. Only a compare-and-swap from 0
    /// takes it; only the holder stores 0.
    busy: AtomicU32,
    /// Candidates that found the claim held (they kept nothing).
    beaten: AtomicU64,
}

/// The outcome of [`MaxWord::offer`].
#[derive(Debug)]
pub(crate) enum Offer<'a> {
    /// Not above the threshold or the max: nothing to keep.
    Below,
    /// A candidate, but another claim was held: nothing kept, counted.
    Beaten,
    /// The candidate holds the claim: take the snapshot, then `keep`.
    Won(Claim<'a>),
}

/// The right to change the kept snapshot; released when dropped.
#[derive(Debug)]
pub(crate) struct Claim<'a> {
    word: &'a MaxWord,
}

impl MaxWord {
    /// Whether `d` is a candidate against the current max and `thresh`
    /// (0: no threshold).
    fn is_candidate(&self, d: u64, thresh: u64) -> bool {
        if thresh > 0 {
            d > thresh
        } else {
            // Relaxed: a hint; the holder of the claim decides again.
            d > self.max.load(Ordering::Relaxed)
        }
    }

    /// A section ended after `d` ns; see the module docs. Never waits.
    pub(crate) fn offer(&self, d: u64, thresh: u64) -> Offer<'_> {
        if !self.is_candidate(d, thresh) {
            return Offer::Below;
        }
        let Some(claim) = self.try_claim() else {
            // Relaxed: a counter.
            self.beaten.fetch_add(1, Ordering::Relaxed);
            return Offer::Beaten;
        };
        // Under the claim `max` is the last holder's (its Release store of
        // `busy` published it): a larger max kept meanwhile wins.
        if !self.is_candidate(d, thresh) {
            return Offer::Below;
        }
        Offer::Won(claim)
    }

    /// Takes the claim if nobody holds it.
    pub(crate) fn try_claim(&self) -> Option<Claim<'_>> {
        // Acquire: pairs with the Release store of 0 in `Claim::drop`, so
        // the new holder sees everything the previous one kept (the max,
        // the snapshot it installed).
        self.busy
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .ok()
            .map(|_| Claim { word: self })
    }

    /// The kept snapshot's latency in ns (0: none kept yet).
    pub(crate) fn max(&self) -> u64 {
        // Relaxed: a value shown to the user; the snapshot itself is read
        // under the claim.
        self.max.load(Ordering::Relaxed)
    }

    /// Candidates beaten by a concurrent claim.
    pub(crate) fn beaten(&self) -> u64 {
        self.beaten.load(Ordering::Relaxed)
    }
}

impl Claim<'_> {
    /// Records `d` as the kept snapshot's latency; the claim is released
    /// when dropped.
    pub(crate) fn keep(&self, d: u64) {
        // Relaxed: published by the Release in `drop`.
        self.word.max.store(d, Ordering::Relaxed);
    }
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        // Release: pairs with the Acquire compare-and-swap in
        // `MaxWord::try_claim` of the next holder.
        self.word.busy.store(0, Ordering::Release);
    }
}
