//! Which contexts record (the kernel's `tracing_cpumask`): a context
//! masked off records nothing, its writes (a signal handler's included)
//! are refused and counted, never lost silently; the mask changes while
//! writers run, in process and on a live session through another mapping
//! of its file (as `ringtrace contexts` does from another process).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};

use ringtrace::session::{Session, SessionConfig};
use ringtrace::{RecordError, Target, Tracer, TracerConfig};
use ringtrace_ring::Mode;

const WRITERS: usize = 3;
const PER_PHASE: u64 = 2000;

static HANDLER_TRACER: std::sync::OnceLock<&'static Tracer> = std::sync::OnceLock::new();
static HANDLER_MASKED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_usr1(_: libc::c_int) {
    if let Some(t) = HANDLER_TRACER.get() {
        let _scope = ringtrace::signal_scope();
        if t.record(&ringtrace::bprintk!("in handler")) == Err(RecordError::Masked) {
            HANDLER_MASKED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Per writer: (context, recorded, refused as masked), recorded in phases
/// 0 (all record), 1 (writer 1's context masked off), 2 (all again).
type Counts = Vec<(usize, [u64; 3], [u64; 3])>;

/// Runs `WRITERS` threads through three phases; before each, the main
/// thread calls `mask(phase, context of each writer)`. With `signals`,
/// each writer raises SIGUSR1 at the end of each phase (its handler
/// records into the handler's tracer).
fn run_phases(t: &Tracer, signals: bool, mask: impl Fn(usize, &[usize])) -> Counts {
    let start = Barrier::new(WRITERS + 1);
    let done = Barrier::new(WRITERS + 1);
    let rings = Mutex::new(vec![usize::MAX; WRITERS]);
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (start, done, rings) = (&start, &done, &rings);
                s.spawn(move || {
                    // The first record leases this thread's context.
                    t.record(&ringtrace::bprintk!("hello")).unwrap();
                    let tid = ringtrace::context::current_tid();
                    let ring = (0..t.max_contexts())
                        .find(|&r| t.context_tid(r) == Some(tid))
                        .unwrap();
                    rings.lock().unwrap()[w] = ring;
                    let (mut ok, mut masked) = ([0u64; 3], [0u64; 3]);
                    for phase in 0..3 {
                        start.wait();
                        for i in 0..PER_PHASE {
                            let r = t.record(&ringtrace::bprintk!(
                                "w %u p %u i %llu",
                                w as u32,
                                phase as u32,
                                i
                            ));
                            match r {
                                Ok(()) => ok[phase] += 1,
                                Err(RecordError::Masked) => masked[phase] += 1,
                                Err(e) => panic!("writer {w}: {e}"),
                            }
                        }
                        if signals {
                            // SAFETY: delivers SIGUSR1 to this thread;
                            // its handler only records.
                            assert_eq!(unsafe { libc::raise(libc::SIGUSR1) }, 0);
                        }
                        done.wait();
                    }
                    (ring, ok, masked)
                })
            })
            .collect();
        for phase in 0..3 {
            if phase == 0 {
                // Wait for every writer's lease: `start` is its first wait.
                while rings.lock().unwrap().contains(&usize::MAX) {
                    std::thread::yield_now();
                }
            }
            mask(phase, &rings.lock().unwrap());
            start.wait();
            done.wait();
        }
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// Checks what was read against what each writer saw, and the counters.
fn check(t: &Tracer, counts: &Counts) {
    let text = t.pipe().read_to_string().unwrap();
    let mut read = 0u64;
    for (w, (ring, ok, masked)) in counts.iter().enumerate() {
        let s = t.ring_stats(*ring).unwrap();
        assert_eq!(
            s.written,
            s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
            "ring {ring}: {s:?}"
        );
        // "hello", the writes that landed, one handler record per phase
        // but the masked one.
        let handler_ok = if w == 1 { 2 } else { 3 };
        assert_eq!(
            s.committed,
            1 + ok.iter().sum::<u64>() + handler_ok,
            "writer {w}"
        );
        assert_eq!(
            s.overrun + s.dropped + s.commit_overrun,
            0,
            "ring {ring}: {s:?}"
        );
        for (phase, &n) in ok.iter().enumerate() {
            let lines = text
                .lines()
                .filter(|l| l.contains(&format!("w {w} p {phase} i ")))
                .count() as u64;
            assert_eq!(lines, n, "writer {w} phase {phase}");
        }
        if w == 1 {
            assert_eq!(ok[1], 0, "a masked-off context records nothing");
            assert_eq!(masked[1], PER_PHASE);
        } else {
            assert_eq!(masked.iter().sum::<u64>(), 0);
        }
        assert_eq!(ok[0] + ok[2], 2 * PER_PHASE);
        read += s.read;
    }
    let refused: u64 = counts.iter().map(|c| c.2.iter().sum::<u64>()).sum();
    assert_eq!(
        HANDLER_MASKED.load(Ordering::Relaxed),
        1,
        "the handler's refusal"
    );
    assert_eq!(t.stats().refused_masked, refused + 1);
    let w = WRITERS as u64;
    assert_eq!(read, w * (1 + 3 * PER_PHASE + 3) - PER_PHASE - 1);
}

fn install_handler(t: &'static Tracer) {
    assert!(
        HANDLER_TRACER.set(t).is_ok(),
        "one tracer per test binary for the handler"
    );
    // SAFETY: the handler only records (async-signal-safe).
    unsafe {
        ringtrace::signal::install(libc::SIGUSR1, ringtrace::signal::Handler::Plain(on_usr1), 0)
    }
    .unwrap();
}

#[test]
fn masked_off_contexts_record_nothing_and_their_writes_are_counted() {
    // In process, then on a session changed through another mapping:
    // one handler tracer per binary, so both run in one test.
    let t: &'static Tracer = Box::leak(Box::new(
        TracerConfig::new()
            .max_contexts(WRITERS + 1)
            .bytes_per_context(1 << 20)
            .mode(Mode::ProducerConsumer)
            .build()
            .unwrap(),
    ));
    install_handler(t);
    assert_eq!(t.recording_contexts(), (0..=WRITERS).collect::<Vec<_>>());
    let counts = run_phases(t, true, |phase, rings| match phase {
        1 => t.set_contexts(&[rings[0], rings[2]]),
        2 => t.set_contexts(&(0..=WRITERS).collect::<Vec<_>>()),
        _ => {}
    });
    check(t, &counts);
}

#[test]
fn a_live_session_mask_is_changed_from_another_mapping() {
    let d = tempfile::tempdir().unwrap();
    let cfg = SessionConfig {
        contexts: WRITERS + 1,
        bytes_per_context: 1 << 20,
        mode: Mode::ProducerConsumer,
        clock: ringtrace::clock::ClockKind::Mono,
        dir: Some(d.path().to_path_buf()),
        ..SessionConfig::new("mask")
    };
    let s = Session::create(&cfg).unwrap();
    let path = s.path().to_path_buf();
    let t = Tracer::attach_session(s).unwrap();
    let other = Session::open(&path).unwrap();
    let counts = run_phases(&t, false, |phase, rings| match phase {
        1 => other.set_contexts(&[rings[0], rings[2]]),
        2 => other.set_contexts(&(0..=WRITERS).collect::<Vec<_>>()),
        _ => {}
    });
    assert_eq!(
        other.recording_contexts(),
        (0..=WRITERS).collect::<Vec<_>>()
    );
    let refused: u64 = counts.iter().map(|c| c.2.iter().sum::<u64>()).sum();
    assert_eq!(other.refused().masked, refused, "seen by the other mapping");
    assert_eq!(other.refused().events(), 0, "masked is not a loss");
    for (w, (ring, ok, _)) in counts.iter().enumerate() {
        let st = t.ring_stats(*ring).unwrap();
        assert_eq!(st.committed, 1 + ok.iter().sum::<u64>(), "writer {w}");
    }
    assert_eq!(counts[1].1[1], 0);
    assert_eq!(counts[1].2[1], PER_PHASE);
    assert_eq!(t.stats().refused_masked, refused);
}
