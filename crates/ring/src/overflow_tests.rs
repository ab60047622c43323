//! Readers on scribbled counters: every counter of a ring and every page's
//! `lost_at_end` is set in turn to 0, 1, `u64::MAX - 1` and `u64::MAX`, and
//! every reader runs on it: consume, consume_batch, the iterator, page
//! reads, stats, a wait with a watermark, and a reset. None may panic or
//! hang, and the stats may not wrap: a sum that overflows saturates and
//! counts a corruption.
//!
//! Whether an overflow panics depends on the build: with overflow checks
//! (`cargo test -p ringtrace-ring --lib scribbled`, the test profile's
//! default, or `RUSTFLAGS="-C overflow-checks=on"`) a sum that is not
//! checked panics here; without them (`--release`) it wraps, which the
//! assertions on the stats catch.

use crate::layout::RingMeta;
use crate::sync::{AtomicU64, Ordering::Relaxed};
use crate::{Config, RingBuffer, WaitFor};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Every 64-bit counter of a ring, by name.
fn counter(m: &RingMeta, i: usize) -> Option<(&'static str, &AtomicU64)> {
    Some(match i {
        0 => ("overrun", &m.slow.overrun),
        1 => ("overrun_bytes", &m.slow.overrun_bytes),
        2 => ("commit_overrun", &m.slow.commit_overrun),
        3 => ("dropped", &m.slow.dropped),
        4 => ("corruptions", &m.slow.corruptions),
        5 => ("overrun_noted", &m.slow.overrun_noted),
        6 => ("overrun_pages", &m.slow.overrun_pages),
        7 => ("refused", &m.slow.refused),
        8 => ("closed_entries", &m.w.closed_entries),
        9 => ("closed_bytes", &m.w.closed_bytes),
        10 => ("closed_pages", &m.w.closed_pages),
        11 => ("read", &m.r.read),
        12 => ("read_bytes", &m.r.read_bytes),
        13 => ("overrun_at_swap", &m.r.overrun_at_swap),
        14 => ("lost_known", &m.r.lost_known),
        15 => ("lost_reported", &m.r.lost_reported),
        16 => ("pages_read", &m.r.pages_read),
        _ => return None,
    })
}

const VALUES: [u64; 4] = [0, 1, u64::MAX - 1, u64::MAX];

/// A ring with overwritten pages, events read and events unread, and
/// drops noted on pages (a producer/consumer phase fills it up first).
fn filled() -> RingBuffer {
    let buf = RingBuffer::new(
        Config::new(1)
            .pages_per_ring(3)
            .mode(crate::Mode::ProducerConsumer),
    )
    .unwrap();
    let mut w = buf.writer(0).unwrap();
    let p = [7u8; 100];
    let mut ts = 0;
    while w.write(ts, &p).is_ok() {
        ts += 1;
    }
    buf.set_mode(crate::Mode::Overwrite);
    for _ in 0..300 {
        ts += 1;
        w.write(ts, &p).unwrap();
    }
    drop(w);
    let mut c = buf.consumer(0).unwrap();
    for _ in 0..10 {
        c.consume().unwrap().unwrap();
    }
    drop(c);
    buf
}

/// Calls `read_one` up to 2000 times, stopping at the first call that
/// read no event (an empty ring or an error).
fn read_up_to_2000(mut read_one: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if !read_one() {
            break;
        }
    }
}

/// Runs every reader; returns the stats they left, or which one panicked.
fn run_readers(buf: &RingBuffer) -> Result<crate::RingStats, &'static str> {
    let step = |what: &'static str, f: &mut dyn FnMut()| {
        catch_unwind(AssertUnwindSafe(f)).map_err(|_| what)
    };
    step("stats", &mut || {
        let _ = buf.stats(0).map(|s| s.kernel_text(true));
    })?;
    step("iter", &mut || {
        let mut it = buf.iter(0).unwrap();
        read_up_to_2000(|| matches!(it.next(), Ok(Some(_))));
        let _ = it.skipped();
    })?;
    step("wait", &mut || {
        let _ = buf.wait(0, WaitFor::Percent(50), Some(Duration::ZERO));
    })?;
    step("consume", &mut || {
        let mut c = buf.consumer(0).unwrap();
        for _ in 0..5 {
            let _ = c.consume();
        }
        let _ = c.pending_losses();
    })?;
    step("consume_batch", &mut || {
        let mut c = buf.consumer(0).unwrap();
        let _ = c.consume_batch(20, |_| {});
    })?;
    step("read_page", &mut || {
        let mut page = buf.read_page_buffer(0).unwrap();
        let mut c = buf.consumer(0).unwrap();
        for full in [true, false, false] {
            let _ = c.read_page(&mut page, full);
        }
    })?;
    step("consume to the end", &mut || {
        let mut c = buf.consumer(0).unwrap();
        read_up_to_2000(|| matches!(c.consume(), Ok(Some(_))));
    })?;
    let s = step("stats", &mut || {
        buf.stats(0).unwrap();
    })
    .map(|()| buf.stats(0).unwrap())?;
    step("reset", &mut || {
        let _ = buf.reset(0);
        let _ = buf.stats(0);
    })?;
    Ok(s)
}

/// Sums in the stats did not wrap: every total is at least its parts.
fn no_wrap(s: &crate::RingStats, closed_entries: u64, what: &str) {
    assert!(s.committed >= closed_entries, "{what}: {s:?}");
    assert!(
        s.written >= s.committed && s.written >= s.dropped && s.written >= s.commit_overrun,
        "{what}: {s:?}"
    );
}

#[test]
fn readers_never_panic_or_wrap_on_scribbled_counters() {
    let checks_on = catch_unwind(|| std::hint::black_box(u64::MAX) + 1).is_err();
    println!("overflow checks: {}", if checks_on { "on" } else { "off" });
    let mut runs = 0;
    for i in 0.. {
        let probe = filled();
        let Some((name, _)) = counter(probe.region().ring(0), i) else {
            break;
        };
        for v in VALUES {
            let buf = filled();
            let meta = buf.region().ring(0);
            let (_, c) = counter(meta, i).unwrap();
            c.store(v, Relaxed);
            let what = format!("{name} = {v}");
            let corrupt_before = meta.slow.corruptions.load(Relaxed);
            let closed = meta.w.closed_entries.load(Relaxed);
            let s = buf.stats(0).unwrap();
            no_wrap(&s, closed, &what);
            // A sum that overflowed was counted as a corruption.
            if v == u64::MAX && matches!(name, "closed_entries" | "dropped" | "commit_overrun") {
                assert!(s.corruptions > corrupt_before, "{what}: {s:?}");
                assert_eq!(s.written, u64::MAX, "{what}: saturated: {s:?}");
            }
            let s = run_readers(&buf).unwrap_or_else(|r| panic!("{what}: {r} panicked"));
            no_wrap(&s, meta.w.closed_entries.load(Relaxed), &what);
            runs += 1;
        }
    }
    // Each page's noted drops, the reader page's included.
    let slots = filled().region().geometry().slots_per_ring;
    for slot in 0..slots {
        for v in VALUES {
            let buf = filled();
            buf.region().page(slot).lost_at_end.store(v, Relaxed);
            let what = format!("lost_at_end of slot {slot} = {v}");
            let s = run_readers(&buf).unwrap_or_else(|r| panic!("{what}: {r} panicked"));
            no_wrap(
                &s,
                buf.region().ring(0).w.closed_entries.load(Relaxed),
                &what,
            );
            runs += 1;
        }
    }
    assert_eq!(runs, 17 * 4 + slots as usize * 4);
}
