//! Clocks: monotonic across threads, the counter strictly ordered, the TSC
//! calibration agreeing with CLOCK_MONOTONIC.

use std::time::Duration;

use ringtrace::clock::{monotonic_across_threads, read_mono, tsc_info, Clock, ClockKind};

static mut PING_CLOCK: Option<Clock> = None;

fn now_of_ping_clock() -> u64 {
    // SAFETY: written by the test only while no ping-pong thread runs;
    // read-only while they do.
    match unsafe { *std::ptr::addr_of!(PING_CLOCK) } {
        Some(c) => c.now(),
        None => 0,
    }
}

#[test]
fn every_clock_is_monotonic_across_threads() {
    let mut clocks = vec![Clock::mono(), Clock::counter()];
    if tsc_info().map(|i| i.invariant).unwrap_or(false) {
        // The fenced read: the plain one (`Clock::tsc`) does go backwards
        // across threads by a few tens of ns now and then, as documented.
        clocks.push(Clock::tsc_ordered().unwrap());
    }
    for clock in clocks {
        // SAFETY: no thread reads PING_CLOCK now; the ping-pong threads start after.
        unsafe { *std::ptr::addr_of_mut!(PING_CLOCK) = Some(clock) };
        // No time budget: every turn is taken, however loaded the machine.
        let (ok, turns) = monotonic_across_threads(now_of_ping_clock, 2000, Duration::MAX);
        assert_eq!(turns, 2000, "{clock:?}");
        assert!(ok, "{clock:?}: went backwards across threads");
    }
}

#[test]
fn counter_values_are_unique_across_threads() {
    let c = Clock::counter();
    let mut all: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(move || (0..10_000).map(|_| c.now()).collect::<Vec<_>>()))
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n);
}

#[test]
fn tsc_calibration_agrees_with_monotonic() {
    let Ok(info) = tsc_info() else { return };
    let c = Clock::tsc().unwrap();
    assert_eq!(c.tsc2nsec(), Some(info.conversion));
    assert!(info.uncertainty_ppm < 2_000, "{info:?}");
    // Each TSC read is bracketed by two monotonic reads, so the TSC
    // interval lies within the brackets' intervals whatever the scheduler
    // does between the reads (no time budget); the calibration's rate error
    // is allowed on top, as 0.5% of the interval.
    let (m0a, t0, m0b) = (read_mono(), c.now(), read_mono());
    std::thread::sleep(Duration::from_millis(60));
    let (m1a, t1, m1b) = (read_mono(), c.now(), read_mono());
    let tsc_ns = c.to_ns(t1) as i128 - c.to_ns(t0) as i128;
    let (shortest, longest) = ((m1a - m0b) as i128, (m1b - m0a) as i128);
    let rate_error = longest / 200 + 1;
    assert!(
        shortest - rate_error <= tsc_ns && tsc_ns <= longest + rate_error,
        "tsc {tsc_ns} ns vs mono {shortest}..={longest} ns ({info:?})"
    );
}

#[test]
fn preferred_follows_the_checks() {
    let p = Clock::preferred();
    match tsc_info() {
        Ok(i) if i.invariant && i.monotonic_across_threads => assert_eq!(p.kind(), ClockKind::Tsc),
        _ => assert_eq!(p.kind(), ClockKind::Mono),
    }
}
