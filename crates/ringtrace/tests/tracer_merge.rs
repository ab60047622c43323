//! Merge order across threads for each clock, and the live (polling) pipe.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ringtrace::clock::Clock;
use ringtrace::printk::format_bprint;
use ringtrace::Tracer;
use ringtrace_ring::Mode;

const THREADS: u32 = 3;
const EACH: u64 = 20_000;

fn tracer(clock: Clock) -> Tracer {
    common::tracer(4, 2 << 20, Mode::ProducerConsumer, Some(clock))
}

fn write_all(t: &Tracer) {
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..THREADS)
            .map(|th| {
                s.spawn(move || {
                    for i in 0..EACH {
                        ringtrace::trace!(tracer: t, "%u %llu", th, i);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
}

fn parse(payload: &[u8]) -> (u32, u64) {
    let (_, text) = format_bprint(payload).unwrap();
    let (a, b) = text.split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

fn check_merged(t: &Tracer) {
    let mut pipe = t.pipe();
    let mut last = 0u64;
    let mut per: BTreeMap<u32, u64> = BTreeMap::new();
    let mut n = 0;
    while let Some(e) = pipe.next_event().unwrap() {
        assert!(e.timestamp >= last, "{} clock: went back", t.clock().name());
        last = e.timestamp;
        let (th, i) = parse(&e.payload);
        let next = per.entry(th).or_insert(0);
        assert_eq!(*next, i, "thread {th} out of order");
        *next += 1;
        n += 1;
    }
    assert_eq!(n, u64::from(THREADS) * EACH);
    assert!(per.values().all(|&v| v == EACH));
}

/// Threads write on `clock`; the pipe merges their events in time order.
fn merged_order(clock: Clock) {
    let t = tracer(clock);
    write_all(&t);
    check_merged(&t);
}

#[test]
fn merged_order_counter() {
    merged_order(Clock::counter());
}

#[test]
fn merged_order_mono() {
    merged_order(Clock::mono());
}

#[test]
fn merged_order_tsc() {
    merged_order(Clock::tsc().expect("this test needs the x86 TSC"));
}

#[test]
fn merged_order_tsc_ordered() {
    merged_order(Clock::tsc_ordered().expect("this test needs the x86 TSC"));
}

#[test]
fn live_pipe_reads_while_threads_write_and_times_out_when_idle() {
    let t = tracer(Clock::mono());
    let done = AtomicBool::new(false);
    let mut per: BTreeMap<u32, u64> = BTreeMap::new();
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            write_all(&t);
            done.store(true, Ordering::Release);
        });
        let mut pipe = t.pipe();
        loop {
            match pipe.next_event_timeout(Duration::from_millis(50)).unwrap() {
                Some(e) => {
                    let (th, i) = parse(&e.payload);
                    let next = per.entry(th).or_insert(0);
                    assert_eq!(*next, i, "thread {th} out of order");
                    *next += 1;
                }
                None if done.load(Ordering::Acquire) => break,
                None => {}
            }
        }
        // Idle: the blocking read times out empty.
        let start = std::time::Instant::now();
        assert!(pipe
            .next_line_timeout(Duration::from_millis(30))
            .unwrap()
            .is_none());
        assert!(start.elapsed() >= Duration::from_millis(30));
        w.join().unwrap();
    });
    assert_eq!(per.len(), THREADS as usize);
    assert!(per.values().all(|&v| v == EACH), "{per:?}");
}
