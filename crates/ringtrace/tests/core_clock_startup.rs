//! The TSC start-up checks and calibration run once per process: the first
//! call probes, every later call returns that same result (this file holds
//! a single test so that its first call is the process's first).
//!
//! How long the probe takes is a figure for a benchmark, not for a test:
//! no test here asserts a time budget (the suite runs on loaded machines).

#[test]
fn the_tsc_probe_runs_once() {
    let first = ringtrace::clock::tsc_info();
    let again = ringtrace::clock::tsc_info();
    match (first, again) {
        (Ok(a), Ok(b)) => {
            assert!(std::ptr::eq(a, b), "probed twice: {a:?} then {b:?}");
            // The ping-pong stops at its turn count (2000) or its budget.
            assert!(a.turns_checked <= 2000, "{a:?}");
            assert!(a.hz > 0, "{a:?}");
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("the probe changed its verdict: {a:?} then {b:?}"),
    }
}
