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
        let (ok, turns) = monotonic_across_threads(now_of_ping_clock, 2000, Duration::from_secs(5));
        assert!(
            ok,
            "{clock:?}: went backwards across threads (or only {turns} turns)"
        );
        assert!(turns >= 100, "{clock:?}: {turns} turns");
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
    let (m0, t0) = (read_mono(), c.now());
    std::thread::sleep(Duration::from_millis(60));
    let (t1, m1) = (c.now(), read_mono());
    let tsc_ns = c.to_ns(t1) as i128 - c.to_ns(t0) as i128;
    let mono_ns = (m1 - m0) as i128;
    // Allow 0.5% plus 100 us of scheduling between the paired reads.
    let slack = mono_ns / 200 + 100_000;
    assert!(
        (tsc_ns - mono_ns).abs() < slack,
        "tsc {tsc_ns} ns vs mono {mono_ns} ns ({info:?})"
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
