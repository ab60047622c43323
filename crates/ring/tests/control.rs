//! Control operations while a writer thread and a signal handler write:
//! resize, reset, swap between buffers, record on/off, per-ring disable,
//! mode switch. A reader consumes meanwhile; every event read is verified,
//! and the accounting adds up exactly afterwards, from independent counts
//! (the writers' own tallies against the ring's counters).

mod common;

use common::load::{Checker, Load, Outcome};
use common::sigwriter::serial;
use ringtrace_ring::{Config, ControlError, Mode, RingBuffer, RingStats};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::time::Duration;

const SIGNAL_PERIOD: Duration = Duration::from_micros(100);
/// How much each run does, counted rather than timed (a loaded machine
/// takes longer, never fails): control operations, writes the thread
/// attempted, and writes its signal handler attempted.
const OPS: u64 = 500;
const OUTER_WRITES: u64 = 200_000;
const NESTED_WRITES: u64 = 2_000;

/// Whether `load` and the test's `ops` operations have reached the run's
/// counts.
fn done(load: &Load, ops: u64) -> bool {
    let (outer, nested) = load.progress();
    ops >= OPS && outer >= OUTER_WRITES && nested >= NESTED_WRITES
}

/// Reads ring 0 with a consumer until `stop`, then drains it.
fn reader(buf: &RingBuffer, stop: &AtomicBool) -> Checker {
    let mut check = Checker::default();
    loop {
        let done = stop.load(Acquire);
        {
            let mut c = buf.consumer(0).unwrap();
            while let Some(ev) = c.consume().unwrap() {
                check.event(ev.payload, ev.timestamp, ev.lost_events);
            }
        }
        if done {
            return check;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The exact accounting after a drained run.
fn assert_accounts(s: &RingStats, out: &Outcome, check: &Checker) {
    assert_eq!(s.corruptions, 0, "{s:?}");
    assert_eq!(s.entries, 0, "not drained: {s:?}");
    assert_eq!(
        s.committed, out.ok,
        "committed vs writes that landed: {s:?} {out:?}"
    );
    assert_eq!(s.read, check.total, "read vs events the test saw: {s:?}");
    assert_eq!(s.committed, s.read + s.overrun, "{s:?}");
    assert_eq!(s.dropped + s.commit_overrun, out.lost, "{s:?} {out:?}");
    assert_eq!(s.refused, out.refused, "{s:?} {out:?}");
    assert_eq!(
        out.ok + out.lost + out.refused,
        out.outer_written + out.nested_attempted,
        "every attempt has one outcome: {out:?}"
    );
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun,
        "{s:?}"
    );
    // Losses reported to the reader (positionally) never exceed the losses.
    assert!(check.lost_reported <= s.overrun + s.dropped + s.commit_overrun);
}

fn run_with(
    mode: Mode,
    pages: usize,
    max: usize,
    op: impl Fn(&'static RingBuffer, u64) + Send + Sync,
) -> (RingStats, Outcome, Checker) {
    let owned = common::Static::new(
        Config::new(1)
            .pages_per_ring(pages)
            .max_pages_per_ring(max)
            .mode(mode),
    );
    let buf = owned.get();
    let stop = AtomicBool::new(false);
    let load = Load::start(buf, 0, SIGNAL_PERIOD);
    let (check, out) = std::thread::scope(|s| {
        let r = s.spawn(|| reader(buf, &stop));
        let hang = common::Hang::guard("the control operations' run");
        let mut i = 0;
        while !done(&load, i) {
            hang.check(|| format!("{i} operations, load {:?}", load.progress()));
            op(buf, i);
            i += 1;
            std::thread::sleep(Duration::from_micros(300));
        }
        let out = load.stop();
        stop.store(true, Release);
        (r.join().unwrap(), out)
    });
    let s = buf.stats(0).unwrap();
    assert!(
        out.signals > 100 && out.ok > 1000,
        "too little load: {out:?}"
    );
    (s, out, check)
}

#[test]
fn resize_while_writing() {
    let _g = serial();
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let sizes = [2usize, 9, 3, 16, 5, 2, 12];
        let (s, out, check) = run_with(mode, 4, 16, |buf, i| {
            let pages = sizes[i as usize % sizes.len()];
            buf.resize(0, pages).unwrap();
            assert_eq!(buf.ring_pages(0).unwrap(), pages);
        });
        assert_accounts(&s, &out, &check);
        eprintln!("resize {mode:?}: {s:?} {out:?}");
    }
}

#[test]
fn resize_keeps_committed_data_when_growing() {
    let _g = serial();
    let buf = RingBuffer::new(
        Config::new(1)
            .pages_per_ring(2)
            .max_pages_per_ring(8)
            .mode(Mode::ProducerConsumer),
    )
    .unwrap();
    let mut w = buf.writer(0).unwrap();
    let mut n = 0u64;
    while w.write(n, &n.to_le_bytes()).is_ok() {
        n += 1;
    }
    buf.resize(0, 8).unwrap();
    let mut m = n;
    while w.write(m, &m.to_le_bytes()).is_ok() {
        m += 1;
    }
    assert!(m > n * 3, "grown ring took {} more events after {n}", m - n);
    let mut c = buf.consumer(0).unwrap();
    for i in 0..m {
        let ev = c.consume().unwrap().unwrap();
        assert_eq!(ev.payload, &i.to_le_bytes());
    }
    assert!(c.consume().unwrap().is_none());
    // Shrinking an idle ring with unread data drops the oldest pages, counted.
    drop(c);
    while w.write(m, &m.to_le_bytes()).is_ok() {
        m += 1;
    }
    buf.resize(0, 3).unwrap();
    let s = buf.stats(0).unwrap();
    assert!(s.overrun > 0);
    let mut c = buf.consumer(0).unwrap();
    let first = c.consume().unwrap().unwrap();
    // The shrink's overrun, plus drops noted on the pages it removed.
    assert!(
        (s.overrun..=s.overrun + s.dropped).contains(&first.lost_events),
        "shrink losses reported first: {} vs {s:?}",
        first.lost_events
    );
    let mut last = u64::from_le_bytes(first.payload.try_into().unwrap());
    while let Some(ev) = c.consume().unwrap() {
        let v = u64::from_le_bytes(ev.payload.try_into().unwrap());
        assert_eq!(v, last + 1);
        last = v;
    }
    assert_eq!(last, m - 1, "the newest events survive");
    let s = buf.stats(0).unwrap();
    assert_eq!(s.committed, s.read + s.overrun);
    assert_eq!(s.read, m - s.overrun);
    // Bad sizes are errors that say what is allowed.
    let e = buf.resize(0, 1).unwrap_err();
    assert!(
        matches!(
            e,
            ControlError::BadSize {
                pages: 1,
                max: 8,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("2..=8"), "{e}");
    assert!(buf.resize(0, 9).is_err());
}

#[test]
fn reset_while_writing() {
    let _g = serial();
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let (s, out, check) = run_with(mode, 4, 8, |buf, _| buf.reset(0).unwrap());
        assert_accounts(&s, &out, &check);
        assert!(
            s.overrun > 0,
            "resets should have discarded something: {s:?}"
        );
        eprintln!("reset {mode:?}: {s:?} {out:?}");
    }
}

#[test]
fn record_off_and_disable_while_writing() {
    let _g = serial();
    let (s, out, check) = run_with(Mode::Overwrite, 8, 8, |buf, i| match i % 4 {
        0 => buf.record_off(),
        1 => buf.record_on(),
        2 => {
            buf.disable_ring(0).unwrap();
            buf.disable_ring(0).unwrap();
            buf.enable_ring(0).unwrap();
            assert!(buf.is_ring_disabled(0).unwrap(), "nested disable");
        }
        _ => {
            buf.enable_ring(0).unwrap();
            assert!(!buf.is_ring_disabled(0).unwrap());
        }
    });
    assert!(out.refused > 0, "{out:?}");
    assert_accounts(&s, &out, &check);
}

#[test]
fn mode_switch_while_writing() {
    let _g = serial();
    let (s, out, check) = run_with(Mode::Overwrite, 3, 3, |buf, i| {
        buf.set_mode(if i % 2 == 0 {
            Mode::ProducerConsumer
        } else {
            Mode::Overwrite
        })
    });
    assert_accounts(&s, &out, &check);
}

#[test]
fn swap_while_writing() {
    let _g = serial();
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let owned = common::Static::new(Config::new(1).pages_per_ring(4).mode(mode));
        let live = owned.get();
        let spare = RingBuffer::new(Config::new(1).pages_per_ring(4).mode(mode)).unwrap();
        let load = Load::start(live, 0, SIGNAL_PERIOD);
        let mut check = Checker::default();
        let hang = common::Hang::guard("the swaps' run");
        let mut swaps = 0;
        let mut refused_with_reader = false;
        while !done(&load, swaps) {
            hang.check(|| format!("{swaps} swaps, load {:?}", load.progress()));
            live.swap_ring(&spare, 0).unwrap();
            swaps += 1;
            // The snapshot is read at leisure while the live ring fills.
            let mut c = spare.consumer(0).unwrap();
            if !refused_with_reader {
                let e = live.swap_ring(&spare, 0).unwrap_err();
                assert!(matches!(e, ControlError::ReaderBusy { .. }), "{e}");
                refused_with_reader = true;
            }
            while let Some(ev) = c.consume().unwrap() {
                check.event(ev.payload, ev.timestamp, ev.lost_events);
            }
            drop(c);
            std::thread::sleep(Duration::from_micros(500));
        }
        let out = load.stop();
        for buf in [live, &spare] {
            let mut c = buf.consumer(0).unwrap();
            while let Some(ev) = c.consume().unwrap() {
                check.event(ev.payload, ev.timestamp, ev.lost_events);
            }
        }
        let (a, b) = (live.stats(0).unwrap(), spare.stats(0).unwrap());
        let sum = |f: fn(&RingStats) -> u64| f(&a) + f(&b);
        assert_eq!(sum(|s| s.committed), out.ok, "{a:?} {b:?} {out:?}");
        assert_eq!(sum(|s| s.read), check.total);
        assert_eq!(sum(|s| s.committed), sum(|s| s.read) + sum(|s| s.overrun));
        assert_eq!(sum(|s| s.dropped) + sum(|s| s.commit_overrun), out.lost);
        assert_eq!(sum(|s| s.corruptions), 0);
        assert!(swaps > 20 && out.signals > 100, "{swaps} swaps, {out:?}");
        if mode == Mode::ProducerConsumer {
            assert_eq!(sum(|s| s.overrun), 0);
        }
        eprintln!("swap {mode:?}: {swaps} swaps, {a:?} {b:?} {out:?}");
    }
}

#[test]
fn swap_refuses_other_shapes_and_stats_lines() {
    let _g = serial();
    let a = RingBuffer::new(Config::new(1)).unwrap();
    let b = RingBuffer::new(Config::new(1).page_size(8192)).unwrap();
    let e = a.swap_ring(&b, 0).unwrap_err();
    assert!(matches!(e, ControlError::Mismatch { .. }), "{e}");
    // The eight lines of the kernel's stats file, with real values.
    let mut w = a.writer(0).unwrap();
    w.write(2_000_000_000, b"abcd").unwrap();
    w.write(3_500_000_000, b"efgh").unwrap();
    let s = a.stats(0).unwrap();
    assert_eq!(
        (s.entries, s.oldest_ts, s.now_ts),
        (2, Some(2_000_000_000), 3_500_000_000)
    );
    let text = s.kernel_text(true);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        &lines[..8],
        &[
            "entries: 2",
            "overrun: 0",
            "commit overrun: 0",
            // 8 + 8 for the events, 8 for the time extend of the second
            // (a 1.5 s gap), and 8 for a zero extend before the first: its
            // size was fixed before it knew it would start the page.
            "bytes: 32",
            "oldest event ts:     2.000000",
            "now ts:     3.500000",
            "dropped events: 0",
            "read events: 0"
        ]
    );
}
