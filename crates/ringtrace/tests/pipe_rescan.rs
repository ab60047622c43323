//! The merged pipe peeks rings it found empty only every
//! `reader::RESCAN_STEPS` steps: an event that arrives in such a ring is
//! still merged, and the pipe says "empty" only after peeking every ring.

mod common;

use ringtrace::{Mode, Tracer, TracerConfig};

fn tracer() -> &'static Tracer {
    Box::leak(Box::new(
        TracerConfig::new()
            .max_contexts(8)
            .mode(Mode::ProducerConsumer)
            .build()
            .expect("tracer"),
    ))
}

/// Writes `text` from a new thread (so into a context of its own).
fn from_new_thread(t: &'static Tracer, text: &'static str, n: u32) {
    std::thread::spawn(move || {
        for i in 0..n {
            ringtrace::trace!(tracer: t, "%s %u", text, i);
        }
    })
    .join()
    .expect("writer thread");
}

fn check_accounting(t: &Tracer) {
    for r in 0..t.max_contexts() {
        let s = t.ring_stats(r).expect("stats");
        common::assert_identity(r, &s);
        assert_eq!(s.entries, 0, "ring {r} left unread: {s:?}");
    }
}

#[test]
fn an_event_in_a_ring_found_empty_is_merged_and_empty_means_every_ring_empty() {
    let t = tracer();
    from_new_thread(t, "early", 300);
    let mut pipe = t.pipe();
    let mut text = String::new();
    // The first step peeks every ring: all but the early writer's are empty.
    assert!(pipe.next_line_into(&mut text).unwrap());
    // A ring found empty gets an event while the pipe reads another ring.
    from_new_thread(t, "late", 1);
    let mut lines = 1;
    while pipe.next_line_into(&mut text).unwrap() {
        lines += 1;
    }
    assert_eq!(lines, 301, "{text}");
    for i in 0..300 {
        assert!(
            text.contains(&format!(": early {i}\n")),
            "early {i} missing"
        );
    }
    assert!(text.contains(": late 0\n"), "the late event was not merged");
    // Right after "empty", a ring that was empty at every step so far gets
    // an event: the very next step returns it (no step is skipped).
    from_new_thread(t, "after", 1);
    let mut last = String::new();
    assert!(pipe.next_line_into(&mut last).unwrap(), "event after empty");
    assert!(last.ends_with(": after 0\n"), "{last}");
    assert!(!pipe.next_line_into(&mut last).unwrap());
    drop(pipe);
    check_accounting(t);
}

#[test]
fn writers_that_stopped_merge_in_time_stamp_order_across_many_rings() {
    let t = tracer();
    // Six writers, one after another: their time stamps do not overlap,
    // so the merged order is the writing order whatever ring holds what.
    for w in ["a", "b", "c", "d", "e", "f"] {
        from_new_thread(t, w, 100);
    }
    let text = t.pipe().read_to_string().unwrap();
    let got: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit(": ").next().unwrap_or(""))
        .collect();
    let want: Vec<String> = ["a", "b", "c", "d", "e", "f"]
        .iter()
        .flat_map(|w| (0..100).map(move |i| format!("{w} {i}")))
        .collect();
    assert_eq!(got, want);
    check_accounting(t);
}

/// The live merge's bound (see `RESCAN_STEPS`): an event committed to a
/// ring the pipe found empty, while another ring keeps getting events, is
/// shown after at most `RESCAN_STEPS` events stamped later than it, and
/// after every event stamped earlier.
#[test]
fn a_late_event_in_a_ring_found_empty_is_at_most_rescan_steps_late() {
    use std::sync::mpsc;
    let t = tracer();
    let (go, wait) = mpsc::channel::<u32>();
    let (done, written) = mpsc::channel::<()>();
    // One writer thread, so one ring that stays busy: it writes a batch
    // each time it is told to.
    let busy = std::thread::spawn(move || {
        let mut next = 0;
        while let Ok(n) = wait.recv() {
            for _ in 0..n {
                ringtrace::trace!(tracer: t, "busy %u", next);
                next += 1;
            }
            done.send(()).unwrap();
        }
    });
    go.send(100).unwrap();
    written.recv().unwrap();
    let mut pipe = t.pipe();
    let mut text = String::new();
    // Read part of the batch: every other ring is found empty by now.
    for _ in 0..90 {
        assert!(pipe.next_line_into(&mut text).unwrap());
    }
    // A ring found empty gets an event, then the busy ring 200 more, all
    // stamped after it.
    from_new_thread(t, "late", 1);
    go.send(200).unwrap();
    written.recv().unwrap();
    drop(go);
    busy.join().unwrap();
    while pipe.next_line_into(&mut text).unwrap() {}
    let bodies: Vec<&str> = text
        .lines()
        .map(|l| l.rsplit(": ").next().unwrap_or(""))
        .collect();
    assert_eq!(bodies.len(), 301, "{text}");
    let late = bodies
        .iter()
        .position(|b| *b == "late 0")
        .expect("the late event was merged");
    // Every event stamped before it goes first, in order.
    let busy_seen: Vec<&str> = bodies.iter().filter(|b| **b != "late 0").copied().collect();
    let want: Vec<String> = (0..300).map(|i| format!("busy {i}")).collect();
    assert_eq!(busy_seen, want);
    assert!(
        late >= 100,
        "late at {late}, before an earlier-stamped event"
    );
    // At most RESCAN_STEPS events stamped after it went before it.
    assert!(
        late - 100 <= ringtrace::reader::RESCAN_STEPS as usize,
        "late at {late}: {} later events before it",
        late - 100
    );
    drop(pipe);
    check_accounting(t);
}
