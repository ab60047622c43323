//! The merged non-consuming view (the kernel's `trace` file): it shows what
//! the pipe would, consumes nothing, and reads safely while threads write
//! and overwrite (every event intact, per-thread order kept, gaps reported).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use ringtrace::clock::Clock;
use ringtrace::printk::format_bprint;
use ringtrace_ring::Mode;

fn parse(payload: &[u8]) -> (u32, u64) {
    let (_, text) = format_bprint(payload).unwrap();
    let (a, b) = text.split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

#[test]
fn view_shows_what_the_pipe_consumes() {
    let t = common::tracer(
        4,
        256 * 1024,
        Mode::ProducerConsumer,
        Some(Clock::counter()),
    );
    common::write_on_threads(3, 500, |th, i| {
        ringtrace::trace!(tracer: &t, "%u %llu", th, i);
    });
    let first = t.view().read_to_string().unwrap();
    let second = t.view().read_to_string().unwrap();
    assert_eq!(first, second, "the view consumes nothing");
    assert_eq!(first.lines().count(), 1500);
    let piped = t.pipe().read_to_string().unwrap();
    assert_eq!(first, piped, "same lines, same merge order as the pipe");
    assert_eq!(
        t.view().read_to_string().unwrap(),
        "",
        "the pipe consumed them"
    );
}

#[test]
fn view_reads_while_threads_overwrite() {
    let t = common::tracer(3, 16 << 10, Mode::Overwrite, Some(Clock::counter()));
    let done = AtomicBool::new(false);
    let (mut seen, mut skipped_lines, mut passes) = (0u64, 0u64, 0u64);
    std::thread::scope(|s| {
        let t = &t;
        common::spawn_until_stopped(s, 2, &done, move |th, i| {
            ringtrace::trace!(tracer: t, "%u %llu", th, i);
        });
        // Until enough passes have seen enough events: counted, not timed
        // (a loaded machine only makes the run longer); the guard is a
        // hang guard only.
        let start = std::time::Instant::now();
        while passes < 20 || seen <= 1000 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(300),
                "hung: {passes} passes, {seen} events after 300 s"
            );
            let mut view = t.view();
            let mut last: BTreeMap<u32, u64> = BTreeMap::new();
            let mut last_ts: BTreeMap<u32, u64> = BTreeMap::new();
            while let Some((th, i, lost, ts)) = view
                .next_with(|e| {
                    let (th, i) = parse(e.payload);
                    (th, i, e.lost_events, e.timestamp)
                })
                .unwrap()
            {
                // Per thread: strictly increasing, each gap reported.
                if let Some(&prev) = last.get(&th) {
                    assert_eq!(
                        i,
                        prev + 1 + lost,
                        "thread {th}: {prev} then {i}, lost {lost}"
                    );
                }
                last.insert(th, i);
                // Each thread has its own context, and the counter clock
                // gives its events strictly increasing stamps.
                if let Some(&prev) = last_ts.get(&th) {
                    assert!(ts > prev, "thread {th}: time {ts} after {prev}");
                }
                last_ts.insert(th, ts);
                seen += 1;
                skipped_lines += u64::from(lost > 0);
            }
            passes += 1;
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(passes > 3 && seen > 1000, "{passes} passes, {seen} events");
    // The view consumed nothing: the pipe still reads the rings' contents.
    assert!(t.pipe().read_to_string().unwrap().lines().count() > 100);
    eprintln!("{passes} passes, {seen} events seen, {skipped_lines} gaps reported");
}

#[test]
fn raw_pipe_hands_out_kernel_pages_with_loss_counts() {
    use ringtrace_ring::format::{decode, PageRecord};
    let t = common::tracer(1, 16 << 10, Mode::Overwrite, Some(Clock::counter()));
    let mut raw = t.raw_pipe(0).unwrap();
    let (mut next, mut seen, mut lost_total) = (0u64, 0u64, 0u64);
    for round in 0..20u64 {
        // Lap the ring now and then: the next page carries the loss count.
        let n = if round % 4 == 3 { 3000 } else { 100 };
        for _ in 0..n {
            ringtrace::trace!(tracer: &t, "%u %llu", 0u32, next);
            next += 1;
        }
        let mut expect = seen + lost_total;
        while let Some((info, page)) = raw.next_page(false).unwrap() {
            let commit = u64::from_le_bytes(page[8..16].try_into().unwrap());
            let len = (commit & 0xfff_ffff) as usize;
            if info.lost > 0 {
                assert_ne!(commit & (1 << 31), 0, "missed-events flag");
                assert_ne!(commit & (1 << 30), 0, "count stored");
                let stored = u64::from_le_bytes(page[16 + len..24 + len].try_into().unwrap());
                assert_eq!(stored, info.lost);
                lost_total += stored;
                expect += stored;
            }
            let data = &page[16..16 + len];
            let mut at = 0;
            while at < data.len() {
                let (rec, size) = decode(data, at).unwrap();
                if let PageRecord::Data {
                    payload_offset,
                    payload_len,
                    ..
                } = rec
                {
                    let (_, i) = parse(&data[payload_offset..payload_offset + payload_len]);
                    assert_eq!(i, expect, "event order and loss counts");
                    expect += 1;
                    seen += 1;
                }
                at += size;
            }
        }
    }
    assert_eq!(seen + lost_total, next, "every event read or counted lost");
    assert!(lost_total > 0);
}

#[test]
fn snapshots_while_threads_write_account_for_everything() {
    let t = common::tracer(3, 256 << 10, Mode::ProducerConsumer, Some(Clock::counter()));
    const EACH: u64 = 200_000;
    let mut last: BTreeMap<u32, u64> = BTreeMap::new();
    let (mut read, mut dropped, mut refused, mut snaps) = (0u64, 0u64, 0u64, 0u64);
    // Reads a snapshot: per thread, sequence numbers strictly increase
    // across snapshots (a gap only where the full ring dropped events).
    let mut take = |buf: &ringtrace_ring::RingBuffer, pipe: &mut ringtrace::Pipe<'_>| {
        while let Some(e) = pipe.next_event().unwrap() {
            let (th, i) = parse(&e.payload);
            if let Some(&prev) = last.get(&th) {
                assert!(i > prev, "thread {th}: {i} after {prev}");
            }
            last.insert(th, i);
            read += 1;
        }
        for r in 0..buf.rings() {
            let s = buf.stats(r).unwrap();
            assert_eq!(s.entries, 0);
            assert_eq!(s.committed, s.read, "{s:?}");
            dropped += s.dropped;
            // Writes that raced with a swap: refused and counted.
            refused += s.refused;
        }
    };
    // The writers write in PHASES steps and start step k only once k
    // snapshots were taken, so that swaps happen while they write however
    // fast they are.
    const PHASES: u64 = 8;
    let taken = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u32)
            .map(|th| {
                let (t, taken) = (&t, &taken);
                s.spawn(move || {
                    for i in 0..EACH {
                        if i % (EACH / PHASES) == 0 {
                            let phase = i / (EACH / PHASES);
                            while taken.load(std::sync::atomic::Ordering::Acquire) < phase {
                                std::thread::yield_now();
                            }
                        }
                        ringtrace::trace!(tracer: t, "%u %llu", th, i);
                        if i % 1000 == 0 {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        while !writers.iter().all(|w| w.is_finished()) {
            let snap = t.snapshot().unwrap();
            take(snap.ring_buffer(), &mut snap.pipe());
            snaps += 1;
            taken.store(snaps, std::sync::atomic::Ordering::Release);
        }
    });
    let snap = t.snapshot().unwrap();
    take(snap.ring_buffer(), &mut snap.pipe());
    assert!(snaps >= PHASES, "{snaps} snapshots");
    assert_eq!(
        read + dropped + refused,
        2 * EACH,
        "read {read} + dropped {dropped} + refused {refused}"
    );
    eprintln!("{snaps} snapshots: read {read}, dropped {dropped}, refused {refused}");
    assert_eq!(last.len(), 2, "both threads seen");
    // A ring with a reader cannot be swapped: a clear error, nothing lost.
    t.marker("kept");
    let pipe = t.pipe();
    let err = t.snapshot().unwrap_err();
    assert!(err.to_string().contains("context 0"), "{err}");
    drop(pipe);
    assert!(t.pipe().read_to_string().unwrap().contains("kept"));
}

/// The view shows what was written before it was made, and ends: events
/// written while it is read, in a ring it reads or in one it has not
/// reached, are not shown (writers faster than the view kept it going for
/// as long as they wrote).
#[test]
fn the_view_ends_at_what_was_written_when_it_was_made() {
    for clock in [Clock::counter(), Clock::mono()] {
        let t = common::tracer(3, 256 * 1024, Mode::Overwrite, Some(clock));
        // This thread writes ring 0; another thread ring 1, and exits (its
        // undrained ring is not reused).
        for i in 0..10u64 {
            ringtrace::trace!(tracer: &t, "%u %llu", 0u32, i);
        }
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 0..10u64 {
                    ringtrace::trace!(tracer: &t, "%u %llu", 1u32, i);
                }
            });
        });
        let mut view = t.view();
        let mut seen = Vec::new();
        let mut i = 10u64;
        while let Some(e) = view.next_with(|e| parse(e.payload)).unwrap() {
            seen.push(e);
            // Writers go on: into ring 0, which the view reads, and once
            // into ring 2, empty when the view was made.
            // At most 10 more, so that a view without its end fails here
            // rather than runs for ever.
            if i < 20 {
                ringtrace::trace!(tracer: &t, "%u %llu", 0u32, i);
            }
            if i == 10 {
                std::thread::scope(|s| {
                    s.spawn(|| ringtrace::trace!(tracer: &t, "%u %llu", 2u32, i));
                });
            }
            i += 1;
        }
        seen.sort_unstable();
        let want: Vec<(u32, u64)> = (0..2)
            .flat_map(|th| (0..10).map(move |i| (th, i)))
            .collect();
        assert_eq!(seen, want, "{}", t.clock().name());
        // They were written: a new view shows them.
        assert_eq!(
            t.view().read_to_string().unwrap().lines().count(),
            10 + 10 + 10 + 1
        );
        // Nothing lost, nothing consumed: every ring still holds all it took.
        let mut entries = 0;
        for r in 0..3 {
            let st = t.ring_stats(r).unwrap();
            common::assert_identity(r, &st);
            assert_eq!(
                st.read + st.overrun + st.dropped + st.commit_overrun,
                0,
                "{st:?}"
            );
            entries += st.entries;
        }
        assert_eq!(entries, 31);
    }
}
