//! Blocking readers: waiting for data, for a watermark of filled pages, for
//! any ring, with timeouts, and woken by a write from a signal handler.

mod common;

use common::sigwriter::{self, serial, Signaller};
use ringtrace_ring::{Config, RingBuffer, WaitFor};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::time::{Duration, Instant};

/// Longest wait for a wake-up that must come: a hang guard, never a
/// performance bound.
const HANG_GUARD: Duration = common::HANG_GUARD;

/// A waiter is woken by a commit, whether it was already asleep or not yet
/// waiting. (That the wake comes from the writer, not from the waiter's
/// periodic re-check, is shown without a clock by the unit test
/// `wait::tests::a_commit_wakes_an_armed_waiter`.)
#[test]
fn wait_for_data_wakes_on_commit() {
    let _g = serial();
    let buf = RingBuffer::new(Config::new(2)).unwrap();
    for round in 0..200u64 {
        std::thread::scope(|s| {
            let waiter = s.spawn(|| buf.wait(1, WaitFor::Data, Some(HANG_GUARD)));
            if round % 2 == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
            buf.writer(1)
                .unwrap()
                .write(round, &round.to_le_bytes())
                .unwrap();
            assert!(
                waiter.join().unwrap().unwrap(),
                "round {round}: no wake-up within the hang guard"
            );
        });
        let mut c = buf.consumer(1).unwrap();
        assert_eq!(c.consume().unwrap().unwrap().payload, &round.to_le_bytes());
    }
}

#[test]
fn timeout_without_data() {
    let _g = serial();
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    let start = Instant::now();
    assert!(!buf
        .wait(0, WaitFor::Data, Some(Duration::from_millis(120)))
        .unwrap());
    assert!(start.elapsed() >= Duration::from_millis(120));
    assert_eq!(
        buf.wait_any(WaitFor::Data, Some(Duration::from_millis(30)))
            .unwrap(),
        None
    );
    // No ring 5: an error, not a hang.
    assert!(buf.wait(5, WaitFor::Data, None).is_err());
}

#[test]
fn watermark_waits_for_filled_pages() {
    let _g = serial();
    let buf = common::one_ring_producer_consumer(8);
    let payload = [7u8; 1000];
    let woke = AtomicBool::new(false);
    std::thread::scope(|s| {
        let waiter = s.spawn(|| {
            let r = buf.wait(0, WaitFor::Percent(50), Some(HANG_GUARD));
            woke.store(true, SeqCst);
            r
        });
        let mut w = buf.writer(0).unwrap();
        // Three pages (about four events of 1000 bytes each): below 50 %.
        for i in 0..12 {
            w.write(i, &payload).unwrap();
        }
        // Below the watermark, checked now rather than after a sleep: a
        // wait that may not sleep finds the condition unmet.
        assert!(!buf
            .wait(0, WaitFor::Percent(50), Some(Duration::ZERO))
            .unwrap());
        assert!(!woke.load(SeqCst), "woke below the watermark");
        // Fill a fifth page: 4 full pages = 50 % of 8.
        for i in 12..20 {
            w.write(i, &payload).unwrap();
        }
        assert!(waiter.join().unwrap().unwrap());
    });
    assert!(buf.stats(0).unwrap().pages == 8);
}

#[test]
fn wait_any_reports_the_ring() {
    let _g = serial();
    let buf = RingBuffer::new(Config::new(4)).unwrap();
    for ring in [3usize, 0, 2] {
        std::thread::scope(|s| {
            let waiter = s.spawn(|| buf.wait_any(WaitFor::Data, Some(HANG_GUARD)));
            std::thread::sleep(Duration::from_millis(5));
            buf.writer(ring).unwrap().write(1, b"data").unwrap();
            assert_eq!(waiter.join().unwrap().unwrap(), Some(ring));
        });
        let mut c = buf.consumer(ring).unwrap();
        while c.consume().unwrap().is_some() {}
    }
}

#[test]
fn woken_by_a_signal_handler_write() {
    let _g = serial();
    let owned = common::Static::new(Config::new(1));
    let buf = owned.get();
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        // A thread that holds the ring's writer and only sleeps: every
        // event comes from its signal handler.
        let stop = &stop;
        let holder = s.spawn(move || {
            let _w = buf.writer(0).unwrap();
            tx.send(sigwriter::become_writer() as usize).unwrap();
            while !stop.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        let target = rx.recv().unwrap() as libc::pthread_t;
        let mut woken = 0;
        let sig = Signaller::start(buf, 0, target, Duration::from_millis(20));
        for _ in 0..10 {
            assert!(buf.wait(0, WaitFor::Data, Some(HANG_GUARD)).unwrap());
            let mut c = buf.consumer(0).unwrap();
            while let Some(ev) = c.consume().unwrap() {
                assert_eq!(common::check(ev.payload).unwrap().kind, sigwriter::NESTED);
                woken += 1;
            }
        }
        sig.stop();
        stop.store(true, Relaxed);
        holder.join().unwrap();
        assert!(woken >= 10);
    });
}
