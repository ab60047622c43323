//! Helpers shared by the cost examples (`trace_cost`, `layer_cost`): the
//! summary of their timed rounds, the accounting identity they check, and
//! their command line for one round under callgrind (a clock and a count).
#![allow(dead_code)]

use ringtrace::clock::Clock;
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

/// The event count of a one-round run: `arg`, or a million when absent.
pub fn count(arg: Option<String>) -> u64 {
    arg.map_or(1_000_000, |a| a.parse().expect("a count"))
}

/// The clock named `name` and the [`count`] `arg` of a one-round run.
pub fn clock_and_count(name: &str, arg: Option<String>) -> (Clock, u64) {
    (Clock::by_name(name).expect("a clock name"), count(arg))
}
