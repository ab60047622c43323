//! The shared page pool: free pages that any ring's writer may take when its
//! ring is full, instead of overwriting (overwrite mode) or dropping
//! (producer/consumer mode).
//!
//! # What it owns
//!
//! The pool pages (indices `Geometry::pool_first() .. nr_pages`, after every
//! ring's own slots) while they are free, and the stack word
//! `BufferState::pool_top`. A page taken from the pool is spliced into the
//! ring of the writer that took it (`Writer::splice_pool_page` in
//! `write.rs`) and stays in that ring for good: a ring whose context is
//! reused by another thread keeps its pages, and nothing returns pages to
//! the pool but a writer whose splice lost its race (below). So a buffer of
//! `R` rings of `P` pages and a pool of `N` pages holds `R * P + N` pages in
//! all, shared by the rings that write, in proportion to what they write.
//!
//! # The stack
//!
//! A Treiber stack of page indices, lock-free and async-signal-safe
//! (writers of every ring, and signal handlers nested in them, take pages
//! at once). One 64-bit word: the top index in the low 32 bits
//! (`NO_SLOT` when empty) and a tag in the high 32 bits, bumped by every
//! change. A free page's `link` word holds the index of the page below it.
//!
//! ```text
//! pop:   top = (i, t); below = link(i); cmpxchg(top, (i, t) -> (below, t+1))
//! push:  top = (j, t); link(i) = j;     cmpxchg(top, (j, t) -> (i, t+1))
//! ```
//!
//! A pop reads `link(i)` of a page that another writer may have popped and
//! spliced meanwhile (its link then changed): the value read is stale, but
//! the top then changed too, so the tag makes the compare-and-swap fail
//! (ABA: `i` popped, something popped, `i` pushed back would otherwise
//! recreate the word `(i, ..)` with a different page below).
//!
//! # Crash safety
//!
//! A page popped but not yet spliced is held by its writer alone. A writer
//! killed (SIGKILL) between its pop and its splice, or between a lost
//! splice race and the push that gives the page back, leaks that one page:
//! it is in no ring and not in the pool. That costs memory (one page), never
//! an event, and leaves every ring and the stack consistent; the buffer
//! cannot tell it from a page that a live writer of another ring holds in
//! the same window, so nothing reclaims it.

use crate::layout::{link, link_page, Region, NORMAL, NO_SLOT};
use crate::sync::Ordering::*;

/// Bound on compare-and-swap retries: each failure means another writer
/// changed the top, which it does once per page taken or given back.
const MAX_RETRIES: u32 = 1000;

const INDEX_MASK: u64 = u32::MAX as u64;

/// Builds a stack word.
#[inline]
fn word(index: u32, tag: u64) -> u64 {
    (tag << 32) | u64::from(index)
}

/// Links the pool pages into the free stack, all free. At creation only.
pub(crate) fn init(region: &Region) {
    let g = *region.geometry();
    let mut top = NO_SLOT;
    for page in (g.pool_first()..g.nr_pages).rev() {
        let pm = region.page(page);
        pm.link.store(link(top, 0, NORMAL), Relaxed);
        pm.pool_owner.store(0, Relaxed);
        top = page;
    }
    region.state().pool_top.store(word(top, 0), Relaxed);
}

/// Takes a page off the pool; `None` when it is empty (or its top word is
/// not a pool page: a scribbled shared buffer, counted by the caller as
/// an empty pool, never followed).
pub(crate) fn pop(region: &Region) -> Option<u32> {
    let g = region.geometry();
    let top = &region.state().pool_top;
    // Acquire: pairs with the Release of the push that put the page there
    // (its `link`, the page below, is seen).
    let mut cur = top.load(Acquire);
    for _ in 0..MAX_RETRIES {
        let index = (cur & INDEX_MASK) as u32;
        if index == NO_SLOT || !g.is_pool_page(index) {
            return None;
        }
        // Possibly stale when another writer took `index` meanwhile: then
        // the top's tag changed and the compare-and-swap fails.
        let below = link_page(region.page(index).link.load(Relaxed));
        let next = word(below, (cur >> 32).wrapping_add(1) & INDEX_MASK);
        // AcqRel: Acquire as above for the retry's value; Release is not
        // needed for the pop itself but keeps the pair symmetric with push.
        match top.compare_exchange(cur, next, AcqRel, Acquire) {
            Ok(_) => return Some(index),
            Err(actual) => cur = actual,
        }
    }
    None
}

/// Gives page `page` back to the pool (a writer whose splice lost its race).
pub(crate) fn push(region: &Region, page: u32) {
    let top = &region.state().pool_top;
    let pm = region.page(page);
    pm.pool_owner.store(0, Relaxed);
    let mut cur = top.load(Relaxed);
    for _ in 0..MAX_RETRIES {
        pm.link
            .store(link((cur & INDEX_MASK) as u32, 0, NORMAL), Relaxed);
        let next = word(page, (cur >> 32).wrapping_add(1) & INDEX_MASK);
        // Release: pairs with the Acquire load in `pop`: the link to the
        // page below is seen before the page is.
        match top.compare_exchange(cur, next, Release, Relaxed) {
            Ok(_) => return,
            Err(actual) => cur = actual,
        }
    }
    // Retried out (other writers kept changing the top): the page is leaked
    // as a killed writer's would be (see the module docs); nothing is lost.
}

/// Free pages in the pool (walks the stack: tests and stats, not writers).
/// A concurrent pop or push may make it off by the pages they move.
pub(crate) fn free_pages(region: &Region) -> u32 {
    let g = region.geometry();
    let mut index = (region.state().pool_top.load(Acquire) & INDEX_MASK) as u32;
    let mut n = 0;
    while index != NO_SLOT && g.is_pool_page(index) && n < g.pool_pages {
        n += 1;
        index = link_page(region.page(index).link.load(Relaxed));
    }
    n
}

/// The page whose link points to `page`, and that link: `page`'s `prev`
/// (`from`) when it is right, else the first page along the links from
/// `from` that points to `page`. A pool splice links a page in before the
/// head page and only then fixes the head's `prev` (step S2 in `write.rs`),
/// so a reader may find `prev` one splice behind (or one per write level
/// in flight, nested: each level's own S2 is pending at most once); the
/// walk covers those. `None` when no page within that reach links to
/// `page`.
pub(crate) fn link_into(region: &Region, page: u32, from: u32) -> Option<(u32, u64)> {
    let nr_pages = region.geometry().nr_pages;
    let mut q = from;
    for _ in 0..crate::layout::MAX_NEST + 2 {
        if q >= nr_pages {
            return None;
        }
        // Acquire: pairs with the Release compare-and-swap that made the
        // link (the writer's splice or head push, the reader's swap).
        let l = region.page(q).link.load(Acquire);
        if link_page(l) == page {
            return Some((q, l));
        }
        q = link_page(l);
    }
    None
}
