//! Unit tests of the session as a whole: create and open, the page pool,
//! full tables, the take-over switch; and the configuration the session
//! room's other unit tests share.

use super::*;
use crate::tracer::Tracer;
use ringtrace_ring::Config;

/// A new small session ([`cfg`]) in a new directory, its configuration
/// first changed by `adjust`.
pub(super) fn session_with(
    adjust: impl FnOnce(&mut SessionConfig),
) -> (tempfile::TempDir, Session) {
    let d = tempfile::tempdir().unwrap();
    let mut c = cfg(d.path());
    adjust(&mut c);
    let s = Session::create(&c).unwrap();
    (d, s)
}

/// A thread-name table record.
fn comm(tid: i32, comm: &str) -> TableEntry {
    TableEntry::Comm {
        tid,
        comm: comm.into(),
    }
}

/// The pid of a process that has exited and been waited for: gone.
pub(super) fn dead_pid() -> u32 {
    let mut kid = std::process::Command::new("true").spawn().unwrap();
    let pid = kid.id();
    kid.wait().unwrap();
    pid
}

/// A small session (2 contexts of 8 KiB) in `dir`.
pub(super) fn cfg(dir: &Path) -> SessionConfig {
    SessionConfig {
        contexts: 2,
        bytes_per_context: 8192,
        dir: Some(dir.to_path_buf()),
        ..SessionConfig::new("unit")
    }
}

#[test]
fn create_open_tables_and_processes() {
    let (d, s) = session_with(|_| {});
    assert_eq!(s.state(), SessionState::Waiting);
    assert!(s.append(table::KIND_COMM, &[&7i32.to_le_bytes(), b"worker"]));
    let o = Session::open(s.path()).unwrap();
    assert_eq!(o.layout(), s.layout());
    let mut r = o.table_reader();
    assert_eq!(r.poll(), vec![comm(7, "worker")]);
    assert!(r.poll().is_empty());
    assert!(s.register_process());
    assert_eq!(o.state(), SessionState::Alive);
    s.mark_exited();
    assert_eq!(o.state(), SessionState::Exited);
    // The rings have no room to grow: all of the file is reserved.
    let rings = Config::new(2).bytes_per_ring(8192);
    let fixed = rings.max_pages_per_ring(rings.pages_per_ring);
    assert_eq!(
        s.layout().ring_size,
        RingBuffer::region_size(&fixed).unwrap()
    );
    assert!(s.layout().ring_size < RingBuffer::region_size(&rings).unwrap());
    // The same name again: another file (a random suffix, O_EXCL).
    let again = Session::create(&cfg(d.path())).unwrap();
    assert_ne!(again.path(), s.path());
}

/// A session with a page pool: the pool is in the ring region, whose
/// every byte is reserved with the rest; a process that opens the
/// session sees it, and one context can take all of it.
#[test]
fn pool_bytes_are_reserved_and_shared() {
    use std::os::unix::fs::MetadataExt as _;
    let cap = ringtrace_ring::format::data_capacity(4096);
    let (_d, s) = session_with(|c| {
        c.pool_bytes = 10 * cap;
        c.mode = Mode::ProducerConsumer;
    });
    let rings = Config::new(2)
        .bytes_per_ring(8192)
        .pool_pages(10)
        .mode(Mode::ProducerConsumer);
    let fixed = rings.max_pages_per_ring(rings.pages_per_ring);
    assert_eq!(
        s.layout().ring_size,
        RingBuffer::region_size(&fixed).unwrap()
    );
    let meta = s.file().metadata().unwrap();
    assert!(
        meta.blocks() * 512 >= meta.len(),
        "all of the file is reserved"
    );
    let o = Session::open(s.path()).unwrap();
    let buf = o.ring_buffer();
    assert_eq!(buf.config().pool_pages, 10);
    let own = buf.ring_pages(1).unwrap();
    let mut w = buf.writer(1).unwrap();
    let mut n = 0u64;
    while w.write(n, &[9; 200]).is_ok() {
        n += 1;
    }
    assert_eq!(buf.ring_pages(1).unwrap(), own + 10);
    assert_eq!(s.ring_buffer().pool_free_pages(), 0);
    drop(w);
    let mut c = buf.consumer(1).unwrap();
    let mut read = 0;
    while let Some(ev) = c.consume().unwrap() {
        assert_eq!((ev.timestamp, &ev.payload[..200]), (read, &[9u8; 200][..]));
        read += 1;
    }
    assert_eq!(read, n);
    let st = buf.stats(1).unwrap();
    assert_eq!((st.committed, st.read, st.dropped), (n, n, 1));
    assert_eq!(
        st.written,
        st.read + st.overrun + st.dropped + st.commit_overrun + st.entries
    );
}

#[test]
fn full_tables_refuse_and_count_and_bad_entries_are_skipped() {
    let (_d, s) = session_with(|c| c.table_entries = 3);
    assert!(s.append(KIND_COMM, &[&1i32.to_le_bytes(), b"a"]));
    assert!(s.append(KIND_COMM, &[&2i32.to_le_bytes(), b"b"]));
    assert!(s.append(KIND_PRINTK, &[&[1, 0, 0, 0], &[0; 4], &[200, 0, 0, 0]]));
    assert!(!s.append(KIND_COMM, &[&3i32.to_le_bytes(), b"c"]));
    assert!(!s.append(KIND_EVENT, &[&vec![0u8; table::MAX_RECORD + 1]]));
    assert_eq!(s.table_full(), 2);
    // Entry 1 points outside the data area.
    s.map.index()[1].offset_for_test(u32::MAX - 2);
    let mut r = s.table_reader();
    assert_eq!(r.poll(), vec![comm(1, "a")]);
    // The printk record claims a 200-byte format it does not have.
    assert_eq!(r.malformed(), 2);
}

#[test]
fn the_takeover_switch_is_kept_in_the_header_and_followed_by_attached_writers() {
    let (d, s) = session_with(|c| {
        c.mode = Mode::Overwrite;
        c.take_over_exited = true;
    });
    let o = Session::open(s.path()).unwrap();
    assert!(o.layout().take_over_exited);
    let t: &'static Tracer = Box::leak(Box::new(Tracer::attach_session(s).unwrap()));
    assert!(t.config().take_over_exited);
    // Two contexts, five threads one after another, nothing read.
    for i in 0..5u32 {
        std::thread::spawn(move || {
            t.record(&crate::bprintk!("thread %u", i)).unwrap();
        })
        .join()
        .unwrap();
    }
    let st = t.stats();
    assert_eq!(
        (st.leases, st.takeovers, st.refused_no_context),
        (5, 3, 0),
        "{st:?}"
    );
    // All five events are in the two rings (none read, none overwritten).
    let mut buffered = 0;
    for r in 0..2 {
        let s = t.ring_stats(r).unwrap();
        assert_eq!(
            s.written,
            s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
            "ring {r}: {s:?}"
        );
        assert_eq!(
            s.committed,
            s.read + s.overrun + s.entries,
            "ring {r}: {s:?}"
        );
        buffered += s.entries;
    }
    assert_eq!(buffered, 5);
    // Off by default, and unknown bits are refused.
    let plain = Session::create(&SessionConfig {
        name: "plain".into(),
        ..cfg(d.path())
    })
    .unwrap();
    assert!(!plain.layout().take_over_exited);
    plain.map.header().flags.store(2, Ordering::Relaxed);
    let e = Session::open(plain.path()).unwrap_err().to_string();
    assert!(e.contains("unknown flags 0x2"), "{e}");
}
