//! A merged pipe whose rings another consuming reader holds fails with an
//! error naming that reader, consumes nothing, and never hangs; once the
//! reader is gone the pipe reads every event.

mod common;

use ringtrace::{Tracer, TracerConfig};
use ringtrace_ring::ReadError;

/// A tracer of two rings whose ring 0 holds the ten events `ev 0` ..
/// `ev 9`; ring 1 exists but has no writer.
fn ten_events() -> Tracer {
    let t = TracerConfig::new().max_contexts(2).build().unwrap();
    for i in 0..10u32 {
        ringtrace::trace!(tracer: &t, "ev %u", i);
    }
    t
}

#[test]
fn a_held_ring_fails_the_pipe_and_loses_nothing() {
    let t = ten_events();
    let buf = t.ring_buffer();
    // Ring 1 exists but has no writer: hold its reader lock.
    let other = buf.consumer(1).unwrap();
    let mut pipe = t.pipe();
    for _ in 0..2 {
        match pipe.next_line() {
            Err(ReadError::ReaderHeld { ring: 1, holder }) => {
                assert!(holder.this_process);
                assert_eq!(holder.pid, std::process::id());
            }
            other => panic!("expected ReaderHeld on ring 1, got {other:?}"),
        }
    }
    let e = pipe.next_line().unwrap_err().to_string();
    assert!(
        e.contains("ring 1 is being read by another reader in this process"),
        "{e}"
    );
    assert!(pipe.took_over().is_empty());
    drop(pipe);
    // Nothing was consumed: ring 0 still holds all 10.
    assert_eq!(buf.stats(0).unwrap().entries, 10);
    drop(other);
    let text = t.pipe().read_to_string().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 10, "{text}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.ends_with(&format!("ev {i}")), "{l}");
    }
    let s = buf.stats(0).unwrap();
    common::assert_identity(0, &s);
    assert_eq!((s.read, s.entries, s.overrun, s.dropped), (10, 0, 0, 0));
}

/// A drain whose ring another reader holds says so (`unread_rings`, naming
/// the holder) instead of leaving that ring's events out silently; the
/// rings it did take are drained whole.
#[test]
fn a_held_ring_is_named_by_the_drain() {
    let t = ten_events();
    let buf = t.ring_buffer();
    let other = buf.consumer(1).unwrap();
    let mut drain = t.drain();
    let unread: Vec<String> = drain
        .unread_rings()
        .iter()
        .map(|(r, e)| format!("{r}: {e}"))
        .collect();
    assert_eq!(unread.len(), 1, "{unread:?}");
    assert!(
        unread[0].starts_with("1: ") && unread[0].contains("another reader"),
        "{unread:?}"
    );
    drain.poll_all().unwrap();
    let stats = drain.stats();
    drain
        .finish(
            std::io::Cursor::new(Vec::new()),
            ringtrace::ExportFormat::Json,
        )
        .unwrap();
    assert_eq!(stats.events, 10);
    drop(other);
    let s = buf.stats(0).unwrap();
    common::assert_identity(0, &s);
    assert_eq!((s.read, s.entries), (10, 0));
}
