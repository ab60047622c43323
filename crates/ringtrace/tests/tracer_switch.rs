//! The recording switch (`Tracer::set_on`) is mirrored into the tracer's
//! rings, whose write path then refuses without a load of its own for the
//! switch: records made while off are refused and not counted, on every
//! path (the fast one, a context handle, a first record), and setters that
//! race each other leave the rings as the switch says.

use ringtrace::{RecordError, Target, TracerConfig};

#[test]
fn the_switch_is_mirrored_into_the_rings_and_refusals_are_not_counted() {
    let t = TracerConfig::new().max_contexts(2).build().unwrap();
    ringtrace::trace!(tracer: &t, "on %d", 1);
    t.set_on(false);
    assert!(!t.is_on());
    assert!(
        !t.ring_buffer().is_recording(),
        "the rings keep writing while off"
    );
    // The fast path (this thread has its ring), a handle, a thread's first
    // record: all answer Off.
    assert_eq!(
        t.record(&ringtrace::bprintk!("off %d", 2)),
        Err(RecordError::Off)
    );
    let handle = t.context().unwrap();
    assert_eq!(
        handle.record(&ringtrace::bprintk!("off %d", 3)),
        Err(RecordError::Off)
    );
    std::thread::scope(|s| {
        s.spawn(|| {
            assert_eq!(
                t.record(&ringtrace::bprintk!("off %d", 4)),
                Err(RecordError::Off)
            );
        });
    });
    for r in 0..2 {
        let st = t.ring_stats(r).unwrap();
        assert_eq!(st.refused, 0, "ring {r}: a write while off was counted");
    }
    t.set_on(true);
    assert!(t.is_on() && t.ring_buffer().is_recording());
    ringtrace::trace!(tracer: &t, "on %d", 5);
    handle.record(&ringtrace::bprintk!("on %d", 6)).unwrap();
    let text = t.pipe().read_to_string().unwrap();
    let ends: Vec<&str> = text.lines().map(|l| &l[l.len() - 4..]).collect();
    assert_eq!(ends, ["on 1", "on 5", "on 6"], "{text}");
}

#[test]
fn racing_setters_leave_the_rings_as_the_switch_says() {
    let t = TracerConfig::new().max_contexts(4).build().unwrap();
    // Every ring leased by a handle, so that each ring's bit is tried.
    let handles: Vec<_> = (0..4).map(|_| t.context().unwrap()).collect();
    for round in 0..4u32 {
        std::thread::scope(|s| {
            for k in 0..2u32 {
                let t = &t;
                s.spawn(move || {
                    for i in 0..2_000u32 {
                        t.set_on((i + k + round) % 2 == 0);
                    }
                });
            }
        });
        let on = t.is_on();
        assert_eq!(on, t.ring_buffer().is_recording(), "round {round}");
        for (i, h) in handles.iter().enumerate() {
            let r = h.record(&ringtrace::bprintk!("x"));
            let want = if on { Ok(()) } else { Err(RecordError::Off) };
            assert_eq!(
                r, want,
                "round {round}, ring {i}: the ring disagrees with the switch"
            );
        }
    }
    for (i, h) in handles.iter().enumerate() {
        assert_eq!(t.ring_stats(h.ring()).unwrap().refused, 0, "ring {i}");
    }
}

/// `ringtrace stop`/`start` on a session: another handle on the session
/// file (as the command opens it) turns recording off and on; the writer's
/// records are refused, uncounted, then recorded again.
#[test]
fn a_session_switched_from_another_handle_reaches_the_writer() {
    use ringtrace::session::{Session, SessionConfig};
    let d = tempfile::tempdir().unwrap();
    let cfg = SessionConfig {
        contexts: 1,
        bytes_per_context: 8192,
        dir: Some(d.path().to_path_buf()),
        ..SessionConfig::new("switch")
    };
    let s = Session::create(&cfg).unwrap();
    let path = s.path().to_path_buf();
    let t = ringtrace::Tracer::attach_session(s).unwrap();
    ringtrace::trace!(tracer: &t, "on %d", 1);
    let control = Session::open(&path).unwrap();
    control.set_recording(false);
    assert!(!t.is_on() && !control.is_recording());
    assert_eq!(
        t.record(&ringtrace::bprintk!("off %d", 2)),
        Err(RecordError::Off)
    );
    assert_eq!(t.ring_stats(0).unwrap().refused, 0);
    control.set_recording(true);
    assert!(t.is_on());
    ringtrace::trace!(tracer: &t, "on %d", 3);
    let st = t.ring_stats(0).unwrap();
    assert_eq!((st.written, st.refused), (2, 0), "{st:?}");
}
