//! The TSC start-up checks and calibration are quick: measured on the first
//! call in a fresh process (this file holds a single test for that reason).

use std::time::{Duration, Instant};

#[test]
fn first_tsc_probe_is_quick() {
    let t = Instant::now();
    let info = ringtrace::clock::tsc_info();
    let took = t.elapsed();
    if info.is_err() {
        return; // no TSC on this machine: nothing was measured
    }
    // Designed for about 12 ms (10 ms calibration interval plus a ping-pong
    // of at most 5 ms); the bound leaves room for a loaded 2-core machine.
    assert!(took < Duration::from_millis(40), "tsc probe took {took:?}");
    // And a second call is free.
    let t = Instant::now();
    let _ = ringtrace::clock::tsc_info();
    assert!(t.elapsed() < Duration::from_millis(1));
}
