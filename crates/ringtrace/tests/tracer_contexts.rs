//! Context leasing: past `max_contexts` writes are refused and counted;
//! rings of exited threads stay readable until drained, then are reused;
//! thread churn keeps the number of rings bounded and attributes every event
//! to its thread.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

use ringtrace::clock::Clock;
use ringtrace::printk::format_bprint;
use ringtrace::{RecordError, TracerConfig};
use ringtrace_ring::Mode;

#[test]
fn past_max_contexts_writes_are_refused_then_drained_rings_are_reused() {
    let tracer = common::tracer(3, 64 * 1024, Mode::Overwrite, Some(Clock::mono()));
    let t = &tracer;
    let holding = Arc::new(Barrier::new(4));
    let release = Arc::new(Barrier::new(4));
    std::thread::scope(|s| {
        let mut hs = Vec::new();
        for i in 0..3u32 {
            let (holding, release) = (holding.clone(), release.clone());
            hs.push(s.spawn(move || {
                t.record(&ringtrace::bprintk!("holder %u", i)).unwrap();
                holding.wait();
                release.wait();
                ringtrace::context::current_tid()
            }));
        }
        holding.wait();
        assert_eq!(t.leased_contexts(), 3);
        // A fourth thread: refused and counted, every time it tries.
        s.spawn(|| {
            for _ in 0..5 {
                assert_eq!(
                    t.record(&ringtrace::bprintk!("extra")),
                    Err(RecordError::NoContext { max: 3 })
                );
            }
            // The macro form is refused and counted the same way.
            ringtrace::trace!(tracer: t, "extra via macro");
        })
        .join()
        .unwrap();
        assert_eq!(t.stats().refused_no_context, 6);
        release.wait();
        for h in hs {
            h.join().unwrap();
        }
    });
    // All three exited; their rings are not drained: still refused.
    assert_eq!(t.leased_contexts(), 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(
                t.record(&ringtrace::bprintk!("too early")),
                Err(RecordError::NoContext { .. })
            ));
        })
        .join()
        .unwrap()
    });
    assert_eq!(t.stats().refused_no_context, 7);

    // The exited threads' events are still there, with their names.
    let mut pipe = t.pipe();
    let text = pipe.read_to_string().unwrap();
    drop(pipe);
    assert_eq!(text.lines().count(), 3, "{text}");
    for i in 0..3 {
        assert!(text.contains(&format!(": holder {i}\n")), "{text}");
    }
    // Drained: a new thread reuses a ring.
    let ring = std::thread::scope(|s| {
        s.spawn(|| {
            t.record(&ringtrace::bprintk!("reuser")).unwrap();
            t.used_contexts()
        })
        .join()
        .unwrap()
    });
    assert_eq!(ring, 3, "no new ring: the drained one was reused");
    let st = t.stats();
    assert_eq!((st.leases, st.reuses), (4, 1), "{st:?}");
    // Refusals are counted, never lost silently: per-ring accounting of what
    // was accepted still balances.
    // Independent counts: what the writers' pages committed, minus what the
    // reader consumed and what was overwritten, is exactly the reuser's one
    // unread event.
    let mut buffered = 0u64;
    for r in 0..3 {
        let s = t.ring_stats(r).unwrap();
        buffered += s
            .committed
            .checked_sub(s.read + s.overrun)
            .unwrap_or_else(|| panic!("ring {r} read more than committed: {s:?}"));
        assert_eq!(
            s.written,
            s.committed + s.dropped + s.commit_overrun,
            "{s:?}"
        );
    }
    assert_eq!(buffered, 1);
}

/// Reads every event of `t` (consuming), each a `bprintk!("%u %u", th, k)`,
/// checks that it is attributed to thread `th` (whose id `tids` holds) and
/// appends `k` to `seen[th]`.
fn read_attributed(
    t: &ringtrace::Tracer,
    tids: &BTreeMap<u32, i32>,
    seen: &mut BTreeMap<u32, Vec<u32>>,
) {
    let mut p = t.pipe();
    while let Some(e) = p.next_event().unwrap() {
        let (_, c) = e.common().unwrap();
        let (_, text) = format_bprint(&e.payload).unwrap();
        let mut it = text.split(' ');
        let th: u32 = it.next().unwrap().parse().unwrap();
        let k: u32 = it.next().unwrap().parse().unwrap();
        assert_eq!(
            tids.get(&th),
            Some(&c.pid),
            "event of thread {th} misattributed"
        );
        seen.entry(th).or_default().push(k);
    }
}

#[test]
fn thread_churn_keeps_rings_bounded_and_events_attributed() {
    const MAX: usize = 4;
    const THREADS: u32 = 2000;
    const EACH: u32 = 5;
    let t = common::config(MAX, 16 * 1024, Mode::ProducerConsumer, None)
        .saved_cmdlines(THREADS as usize)
        .build()
        .unwrap();
    let mut tids = BTreeMap::new();
    let mut seen: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    // Batches of MAX threads at once, drained between batches. Handles
    // are joined (pthread_join waits for the thread-exit destructors, which
    // hand the rings back).
    for batch in 0..THREADS / MAX as u32 {
        std::thread::scope(|s| {
            let hs: Vec<_> = (0..MAX as u32)
                .map(|j| {
                    let th = batch * MAX as u32 + j;
                    let t = &t;
                    std::thread::Builder::new()
                        .name(format!("churn{th}"))
                        .spawn_scoped(s, move || {
                            for k in 0..EACH {
                                t.record(&ringtrace::bprintk!("%u %u", th, k)).unwrap();
                            }
                            (th, ringtrace::context::current_tid())
                        })
                        .unwrap()
                })
                .collect();
            for h in hs {
                let (th, tid) = h.join().unwrap();
                tids.insert(th, tid);
            }
        });
        assert!(t.used_contexts() <= MAX);
        read_attributed(&t, &tids, &mut seen);
    }
    assert_eq!(seen.len(), THREADS as usize);
    for (th, ks) in &seen {
        assert_eq!(ks, &(0..EACH).collect::<Vec<_>>(), "thread {th}");
    }
    let st = t.stats();
    assert_eq!(st.refused_no_context, 0, "{st:?}");
    assert_eq!(st.leases, u64::from(THREADS));
    assert_eq!(st.reuses, u64::from(THREADS) - MAX as u64);
    // Exited threads keep their names (table sized for all of them).
    assert_eq!(t.comm(tids[&1234]).as_deref(), Some("churn1234"));
}

#[test]
fn handler_on_a_thread_without_context_is_refused_and_counted() {
    let t = TracerConfig::new().max_contexts(2).build().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // As a signal handler would: enter the scope first. The thread
            // has no context, so nothing is leased (no allocation, no lock).
            {
                let _scope = ringtrace::signal_scope();
                assert_eq!(ringtrace::context::current_depth(), 1);
                assert_eq!(
                    t.record(&ringtrace::bprintk!("in handler")),
                    Err(RecordError::NoContextInSignalHandler)
                );
                t.marker("also refused");
            }
            assert_eq!(t.used_contexts(), 0);
            assert_eq!(t.stats().refused_in_signal_handler, 2);
            // Ordinary code leases; then a handler on this thread records.
            t.record(&ringtrace::bprintk!("ordinary")).unwrap();
            let _scope = ringtrace::signal_scope();
            t.record(&ringtrace::bprintk!("handler")).unwrap();
        })
        .join()
        .unwrap();
    });
    let text = t.pipe().read_to_string().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains(" ..... ") && lines[0].ends_with(": ordinary"));
    assert!(lines[1].contains(" ..h1. ") && lines[1].ends_with(": handler"));
}

#[test]
fn writes_while_off_are_not_attempts() {
    let t = TracerConfig::new().max_contexts(1).build().unwrap();
    t.record(&ringtrace::bprintk!("on")).unwrap();
    t.set_on(false);
    assert_eq!(t.record(&ringtrace::bprintk!("off")), Err(RecordError::Off));
    t.set_on(true);
    let s = t.ring_stats(0).unwrap();
    assert_eq!((s.written, s.entries), (1, 1));
    assert_eq!(
        t.stats(),
        ringtrace::TracerStats {
            leases: 1,
            ..Default::default()
        }
    );
}

#[test]
fn long_markers_are_split_into_events() {
    let t = TracerConfig::new().max_contexts(1).build().unwrap();
    let long = "x".repeat(10_000);
    t.marker(&long);
    let mut pipe = t.pipe();
    let mut total = 0;
    let mut n = 0;
    while let Some(e) = pipe.next_event().unwrap() {
        total += ringtrace::printk::format_print(&e.payload).unwrap().len();
        n += 1;
    }
    assert_eq!(total, 10_000);
    assert_eq!(n, 3);
}

#[test]
fn a_flight_recorder_takes_over_the_stalest_exited_ring_and_keeps_the_newest_events() {
    const MAX: usize = 3;
    const THREADS: u32 = 300;
    // 40 events of 36 bytes fill about a third of a page: each ring keeps
    // its newest few threads' events and overwrites older ones.
    const EACH: u32 = 40;
    let t = common::config(MAX, 8 * 1024, Mode::Overwrite, None)
        .take_over_exited(true)
        .saved_cmdlines(THREADS as usize)
        .build()
        .unwrap();
    // One thread at a time, each joined before the next starts, nothing
    // read meanwhile: every ring is undrained once all have been used.
    let mut tids = BTreeMap::new();
    for th in 0..THREADS {
        let t = &t;
        let tid = std::thread::scope(|s| {
            s.spawn(move || {
                for k in 0..EACH {
                    t.record(&ringtrace::bprintk!("%u %u", th, k)).unwrap();
                }
                ringtrace::context::current_tid()
            })
            .join()
            .unwrap()
        });
        tids.insert(th, tid);
        // The stalest ring is the one used longest ago: round robin.
        assert_eq!(t.context_tid(th as usize % MAX), Some(tid), "thread {th}");
    }
    let st = t.stats();
    assert_eq!(st.refused_no_context, 0, "{st:?}");
    assert_eq!(st.leases, u64::from(THREADS), "{st:?}");
    // The first MAX threads found free rings; every later one took over.
    assert_eq!(st.takeovers, u64::from(THREADS) - MAX as u64, "{st:?}");
    assert_eq!(st.reuses, 0, "{st:?}");

    // Read everything: each event attributed to the thread that wrote it,
    // each thread's events a gap-free run ending at its last one (the ring
    // lost only the oldest events), and the newest threads complete.
    let mut seen: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    read_attributed(&t, &tids, &mut seen);
    for (th, ks) in &seen {
        let first = ks[0];
        assert_eq!(ks, &(first..EACH).collect::<Vec<_>>(), "thread {th}");
    }
    for th in THREADS - MAX as u32..THREADS {
        assert_eq!(
            seen.get(&th).map(Vec::len),
            Some(EACH as usize),
            "thread {th}"
        );
    }
    // The losses are the ring's counted overruns, nothing else.
    let read: usize = seen.values().map(Vec::len).sum();
    let (mut written, mut overrun, mut consumed) = (0, 0, 0);
    for r in 0..MAX {
        let s = t.ring_stats(r).unwrap();
        assert_eq!(s.entries, 0, "ring {r}: {s:?}");
        common::assert_identity(r, &s);
        assert_eq!((s.dropped, s.commit_overrun), (0, 0), "ring {r}: {s:?}");
        written += s.written;
        overrun += s.overrun;
        consumed += s.read;
    }
    assert_eq!(written, u64::from(THREADS * EACH));
    assert_eq!(consumed, read as u64);
    assert_eq!(written, consumed + overrun);
    // Names of taken-over threads are kept too.
    assert!(t.comm(tids[&7]).is_some());
}

#[test]
fn takeover_does_not_apply_in_producer_consumer_mode() {
    let tracer = common::config(1, 256 * 1024, Mode::ProducerConsumer, None)
        .take_over_exited(true)
        .build()
        .unwrap();
    let t = &tracer;
    std::thread::scope(|s| {
        s.spawn(|| t.record(&ringtrace::bprintk!("kept")).unwrap())
            .join()
            .unwrap()
    });
    std::thread::scope(|s| {
        s.spawn(|| {
            assert!(matches!(
                t.record(&ringtrace::bprintk!("refused")),
                Err(RecordError::NoContext { max: 1 })
            ));
        })
        .join()
        .unwrap()
    });
    let st = t.stats();
    assert_eq!((st.takeovers, st.refused_no_context), (0, 1), "{st:?}");
    let text = t.pipe().read_to_string().unwrap();
    assert!(
        text.ends_with(": kept\n") && text.lines().count() == 1,
        "{text}"
    );
}
