//! Sessions in one process: a writer tracer attached to a session and a
//! reader tracer on a second mapping of it; and the fuzz target of the
//! attach-and-read path: session files with bytes overwritten at random
//! places (header, tables, ring metadata, pages) are opened, their tables
//! imported and their rings read (a bounded number of events) and
//! counted; each step gives data or an error, never a panic or a hang.

mod common;
mod session_common;

use proptest::prelude::*;
use ringtrace::session::{Session, SessionConfig, SessionState};
use ringtrace::Tracer;
use session_common::{check_accounting, write_0600};
use std::path::Path;

ringtrace::declare_event! {
    /// A sample.
    pub struct Sample: "fuzz" / "sample" = 1800 { a: u32, b: u64 }
}

/// 3 contexts of 3 pages.
fn config(dir: &Path, name: &str) -> SessionConfig {
    session_common::config(dir, name, 3, 3 * 4096)
}

/// A session file with events of two threads, printk and typed.
fn sample_session(dir: &Path) -> Vec<u8> {
    let s = Session::create(&config(dir, "sample")).unwrap();
    let path = s.path().to_path_buf();
    let w = Tracer::attach_session(s).unwrap();
    common::write_on_threads(2, 150, |t, i| {
        ringtrace::trace!(tracer: &w, "t%u i=%llu", t, i);
        w.record(&Sample { a: t, b: i }).unwrap();
    });
    drop(w);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    bytes
}

/// The attach-and-read path; returns the events read, or the open error.
fn attach_and_read(path: &Path) -> Result<u64, String> {
    let s = Session::open(path).map_err(|e| e.to_string())?;
    let _ = s.state();
    let t = Tracer::read_session(s).map_err(|e| e.to_string())?;
    let buf = t.ring_buffer();
    // SAFETY: this process alone opened the private copy, and reads it
    // below with one reader at a time.
    unsafe { ringtrace::ring::repair::force_release_readers(buf) };
    for r in 0..buf.rings() {
        // SAFETY: nothing writes this private file.
        let _ = unsafe { buf.recover_dead_writer(r) };
    }
    t.import_session_tables();
    for r in 0..t.max_contexts() {
        let _ = t.stats_text(r);
    }
    let mut pipe = t.pipe();
    let mut n = 0;
    // Bounded: a 3 x 3-page session holds far fewer events.
    while n < 100_000 {
        match pipe.next_line() {
            Ok(Some(_)) => n += 1,
            Ok(None) | Err(_) => break,
        }
    }
    Ok(n)
}

#[test]
fn writer_and_reader_tracers_share_a_session() {
    let d = tempfile::tempdir().unwrap();
    let s = Session::create(&config(d.path(), "pair")).unwrap();
    let path = s.path().to_path_buf();
    let w = Tracer::attach_session(s).unwrap();
    let r = Tracer::read_session(Session::open(&path).unwrap()).unwrap();
    assert_eq!(r.session_state().unwrap().0, SessionState::Alive);
    ringtrace::trace!(tracer: &w, "hello %d", 42);
    w.record(&Sample { a: 1, b: 2 }).unwrap();
    let st = r.import_session_tables();
    assert!(st.events >= 1 && st.sites >= 1 && st.comms >= 1, "{st:?}");
    let text = r.pipe().read_to_string().unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with(": hello 42"), "{text}");
    assert!(lines[1].ends_with("sample: a=1 b=2"), "{text}");
    // The thread name came through the table.
    let me = std::fs::read_to_string("/proc/thread-self/comm").unwrap();
    assert!(lines[0].trim_start().starts_with(me.trim()), "{text}");
    // Both events written once and read by the reader, nothing left.
    assert_eq!(check_accounting(&r), 0);
    assert_eq!(session_common::written_and_read(&r), (2, 2));
    drop(w);
    assert_eq!(r.session_state().unwrap().0, SessionState::Exited);
}

#[test]
fn intact_sample_reads_fully() {
    let d = tempfile::tempdir().unwrap();
    let bytes = sample_session(d.path());
    let p = d.path().join("ringtrace-0-copy");
    write_0600(&p, &bytes);
    // 3 pages of 4 KiB per context hold only the latest events of each
    // thread (overwrite is not the mode here: producer/consumer drops).
    let n = attach_and_read(&p).unwrap();
    assert!(n > 100, "{n}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scribbled_sessions_never_panic(
        hits in prop::collection::vec((any::<u64>(), any::<u64>(), 0u8..4), 1..12)
    ) {
        let d = tempfile::tempdir().unwrap();
        let mut bytes = sample_session(d.path());
        let ring_off = {
            let p = d.path().join("ringtrace-0-probe");
            write_0600(&p, &bytes);
            Session::open(&p).unwrap().layout().ring_offset as usize
        };
        let len = bytes.len();
        for (pos, val, region) in hits {
            let at = match region {
                0 => (pos as usize) % 4096,
                1 => 4096 + (pos as usize) % (ring_off - 4096),
                2 => ring_off + (pos as usize) % 65536.min(len - ring_off),
                _ => (pos as usize) % len,
            }
            .min(len - 8) & !7;
            bytes[at..at + 8].copy_from_slice(&val.to_le_bytes());
        }
        let p = d.path().join("ringtrace-0-fuzz");
        write_0600(&p, &bytes);
        let _ = attach_and_read(&p);
    }
}
