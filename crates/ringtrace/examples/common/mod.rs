//! Helpers shared by the cost examples (`trace_cost`, `layer_cost`): the
//! summary of their timed rounds and the accounting identity they check.
#![allow(dead_code)]

use ringtrace::ring::RingStats;

/// Prints `what`'s cost per event from `per` (nanoseconds per event, one
/// entry a round of `n` events): median, min and max.
pub fn print_rounds(what: &str, per: &mut [f64], n: u64) {
    per.sort_by(f64::total_cmp);
    let rounds = per.len();
    println!(
        "{what}: median {:.1} ns (min {:.1}, max {:.1}) over {rounds} rounds of {n}",
        per[rounds / 2],
        per[0],
        per[rounds - 1]
    );
}

/// Checks `written == read + overrun + dropped + commit_overrun + entries`.
pub fn assert_accounts(s: &RingStats) {
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
        "{s:?}"
    );
}
