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

/// Runs `write(th, i)` for `i` in `0..each` on `threads` scoped threads
/// (`th` numbers them), and returns when all have finished.
pub fn write_on_threads(threads: u32, each: u64, write: impl Fn(u32, u64) + Sync) {
    std::thread::scope(|s| {
        for th in 0..threads {
            let write = &write;
            s.spawn(move || (0..each).for_each(|i| write(th, i)));
        }
    });
}

/// Spawns `threads` writers on `s` that call `write(th, i)` with
/// `i = 0, 1, ...` until `stop` is set.
pub fn spawn_until_stopped<'scope, F>(
    s: &'scope std::thread::Scope<'scope, '_>,
    threads: u32,
    stop: &'scope std::sync::atomic::AtomicBool,
    write: F,
) where
    F: Fn(u32, u64) + Copy + Send + 'scope,
{
    for th in 0..threads {
        s.spawn(move || {
            let mut i = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                write(th, i);
                i += 1;
            }
        });
    }
}

/// Calls `write(seq)` for `seq` in `0..n`, polling `drain` before every
/// `every`th event (at `seq` 0, `every`, ...): a recorder whose drain
/// keeps up now and then.
pub fn write_polling(
    drain: &mut ringtrace::export::Drain<'_>,
    n: u64,
    every: u64,
    mut write: impl FnMut(u64),
) {
    for seq in 0..n {
        write(seq);
        if seq % every == 0 {
            drain.poll().unwrap();
        }
    }
}

/// A tracer of one producer/consumer context of 64 KiB on the preferred
/// clock with `event` registered, for tests that spool a drain.
pub fn spool_tracer(event: &'static ringtrace::event::EventType) -> Tracer {
    let t = tracer(1, 64 * 1024, Mode::ProducerConsumer, None);
    t.register(event).unwrap();
    t
}

/// A drain of `t` that spools next to `out` (`Drain::spool_next_to`).
pub fn spooling_drain<'t>(t: &'t Tracer, out: &std::path::Path) -> ringtrace::export::Drain<'t> {
    let mut drain = t.drain();
    drain.spool_next_to(out).unwrap();
    drain
}
