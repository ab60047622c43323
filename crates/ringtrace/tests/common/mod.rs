//! Helpers shared by ringtrace's integration tests: the tracer most tests
//! build, and the accounting identity every test that uses the rings
//! checks. Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use ringtrace::clock::Clock;
use ringtrace::{Tracer, TracerConfig};
use ringtrace_ring::{Mode, RingStats};

/// The configuration most tests start from: `contexts` rings of `bytes`
/// each in `mode`, on `clock` (`None`: the preferred clock, picked when
/// the tracer is built).
pub fn config(contexts: usize, bytes: usize, mode: Mode, clock: Option<Clock>) -> TracerConfig {
    TracerConfig {
        clock,
        ..TracerConfig::new()
            .max_contexts(contexts)
            .bytes_per_context(bytes)
            .mode(mode)
    }
}

/// [`config`], built.
pub fn tracer(contexts: usize, bytes: usize, mode: Mode, clock: Option<Clock>) -> Tracer {
    config(contexts, bytes, mode, clock).build().unwrap()
}

/// Checks `written == read + overrun + dropped + commit_overrun + entries`
/// on the stats `s` of ring `ring`.
pub fn assert_identity(ring: usize, s: &RingStats) {
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
        "ring {ring}: {s:?}"
    );
}

/// [`assert_identity`] on every ring of `t`; returns the events read in
/// all.
pub fn assert_accounts(t: &Tracer) -> u64 {
    let mut read = 0;
    for r in 0..t.max_contexts() {
        let s = t.ring_stats(r).unwrap();
        assert_identity(r, &s);
        read += s.read;
    }
    read
}
