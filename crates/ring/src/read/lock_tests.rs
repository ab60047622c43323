//! The reader lock's holder: recorded, named when it blocks a second
//! consumer, taken over when it died (killed, a zombie, a recycled pid, a
//! fork's copy), and never waited for without bound. Real processes: the
//! holders are forked children of the test, killed with SIGKILL.

use super::lock::{holder_word, own_start, proc_stat};
use crate::sync::Ordering::*;
use crate::{Config, RingBuffer, RingError};
use std::time::{Duration, Instant};

/// A shared buffer of one ring in a temporary file, with `n` events of 8
/// bytes (payload = their index).
fn shared(n: u64) -> (tempfile::NamedTempFile, RingBuffer) {
    let f = tempfile::NamedTempFile::new().unwrap();
    let buf = RingBuffer::create_shared(f.as_file(), 0, Config::new(1)).unwrap();
    let mut w = buf.writer(0).unwrap();
    for i in 0..n {
        w.write(i + 1, &i.to_le_bytes()).unwrap();
    }
    drop(w);
    (f, buf)
}

fn lock_word(buf: &RingBuffer) -> u64 {
    buf.region().ring(0).r.lock.load(Acquire)
}

/// Reads the rest of ring 0 and checks the payloads continue from `next`,
/// then the accounting identity, with nothing lost.
fn drain_and_check(buf: &RingBuffer, mut next: u64, total: u64) {
    let mut c = buf.consumer(0).unwrap();
    while let Some(ev) = c.consume().unwrap() {
        assert_eq!(ev.payload, &next.to_le_bytes());
        assert_eq!(ev.lost_events, 0);
        next += 1;
    }
    assert_eq!(next, total);
    let s = buf.stats(0).unwrap();
    assert_eq!(
        s.written,
        s.read + s.overrun + s.dropped + s.commit_overrun + s.entries
    );
    assert_eq!((s.read, s.entries, s.corruptions), (total, 0, 0), "{s:?}");
}

/// A forked child that runs `f` (with the buffer mapped shared), then
/// writes one byte to a pipe and sleeps until killed. Returns its pid
/// once the byte arrived.
fn child_holding(f: impl FnOnce()) -> i32 {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child runs `f` (atomics, /proc reads) and sleeps; glibc
    // makes malloc usable in a forked child of a threaded process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        f();
        // SAFETY: writes one byte from a valid buffer, then sleeps until
        // the parent kills us (10 minutes at most); `_exit` never runs the
        // parent's code.
        unsafe {
            libc::write(fds[1], b"x".as_ptr().cast(), 1);
            for _ in 0..10 {
                libc::sleep(60);
            }
            libc::_exit(0);
        }
    }
    let mut b = [0u8; 1];
    // SAFETY: reads one byte into `b`.
    assert_eq!(unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), 1) }, 1);
    // SAFETY: closes our two descriptors.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    pid
}

fn kill_and_reap(pid: i32) {
    // SAFETY: kills and reaps our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

/// The command name of this process (its main thread's), or of the
/// calling thread (which a child forked by it inherits).
fn comm_of(what: &str) -> String {
    std::fs::read_to_string(format!("/proc/{what}/comm"))
        .unwrap()
        .trim_end()
        .to_owned()
}

fn own_comm() -> String {
    comm_of("self")
}

#[test]
fn the_lock_records_its_holder() {
    let (_f, buf) = shared(3);
    assert_eq!(lock_word(&buf), 0);
    let c = buf.consumer(0).unwrap();
    let (_, start) = proc_stat(std::process::id()).unwrap();
    assert_ne!(start as u32, 0);
    assert_eq!(own_start(), start as u32);
    assert_eq!(
        lock_word(&buf),
        holder_word(std::process::id(), start as u32)
    );
    drop(c);
    assert_eq!(lock_word(&buf), 0);
    // The heap buffer records this process too.
    let heap = RingBuffer::new(Config::new(1)).unwrap();
    let c = heap.consumer(0).unwrap();
    assert_eq!(
        heap.region().ring(0).r.lock.load(Acquire) >> 32,
        u64::from(std::process::id())
    );
    drop(c);
    drain_and_check(&buf, 0, 3);
}

#[test]
fn a_reader_of_this_process_is_waited_for_a_bounded_time_then_named() {
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    let first = buf.consumer(0).unwrap();
    let t = Instant::now();
    let e = buf.consumer(0).unwrap_err();
    // A lower bound: it did wait for a handover, and then gave up.
    assert!(t.elapsed() >= super::lock::IN_PROCESS_WAIT);
    let RingError::ReaderHeld { ring: 0, holder } = e else {
        panic!("{e:?}")
    };
    assert!(holder.this_process);
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(holder.command(), own_comm());
    assert!(
        e.to_string().contains("another reader in this process"),
        "{e}"
    );
    drop(first);
    assert!(buf.consumer(0).is_ok());
}

#[test]
fn a_live_reader_of_another_process_is_named_at_once() {
    let (_f, buf) = shared(5);
    let child = child_holding(|| {
        let mut c = buf.consumer(0).unwrap();
        assert_eq!(c.consume().unwrap().unwrap().payload, &0u64.to_le_bytes());
        std::mem::forget(c); // Holds the lock until killed.
    });
    let e = buf.consumer(0).unwrap_err();
    let RingError::ReaderHeld { ring: 0, holder } = e else {
        panic!("{e:?}")
    };
    assert_eq!(holder.pid, child as u32);
    assert!(!holder.this_process);
    // The child's command name is this thread's (fork keeps it).
    let comm = comm_of("thread-self");
    assert_eq!(holder.command(), comm);
    let text = e.to_string();
    assert!(
        text.contains(&format!("process {child} ({comm})")),
        "{text}"
    );
    assert!(buf.try_consumer(0).unwrap().is_none());
    kill_and_reap(child);
    // Dead now: taken over, and named.
    let c = buf.consumer(0).unwrap();
    assert_eq!(c.took_over(), Some(child as u32));
    drop(c);
    drain_and_check(&buf, 1, 5);
}

/// A child process that took ring 0's consumer and stopped inside a reader
/// call: `busy` holds its pid (as if killed there), and the lock too.
fn child_inside_a_call(buf: &RingBuffer) -> i32 {
    child_holding(|| {
        let c = buf.consumer(0).unwrap();
        std::mem::forget(c.busy());
        std::mem::forget(c);
    })
}

#[test]
fn a_reader_killed_inside_a_call_leaves_nothing_that_blocks() {
    let (_f, buf) = shared(4);
    let child = child_inside_a_call(&buf);
    assert_eq!(
        buf.region().ring(0).r.busy.load(Acquire),
        child as u32,
        "the child's call holds busy"
    );
    // Killed but not reaped: a zombie is dead too.
    // SAFETY: kills our own child (reaped below).
    unsafe { libc::kill(child, libc::SIGKILL) };
    let start = Instant::now();
    while proc_stat(child as u32).map(|(s, _)| s) != Some('Z') {
        assert!(start.elapsed() < Duration::from_secs(60), "no zombie");
        std::thread::sleep(Duration::from_millis(5));
    }
    let c = buf.consumer(0).unwrap();
    assert_eq!(c.took_over(), Some(child as u32));
    // The dead call's `busy` was released with the lock: no stale-word
    // takeover (which counts a corruption) is needed to read.
    assert_eq!(buf.region().ring(0).r.busy.load(Acquire), 0);
    drop(c);
    drain_and_check(&buf, 0, 4);
    // SAFETY: reaps our own child.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
}

#[test]
fn a_recycled_pid_is_not_the_holder() {
    let (_f, buf) = shared(2);
    // A live process standing for one that got the dead holder's pid.
    let child = child_holding(|| {});
    let (_, start) = proc_stat(child as u32).unwrap();
    let lock = &buf.region().ring(0).r.lock;
    // Its real start time: the holder lives.
    lock.store(holder_word(child as u32, start as u32), Release);
    let e = buf.consumer(0).unwrap_err();
    assert!(
        matches!(e, RingError::ReaderHeld { holder, .. } if holder.pid == child as u32),
        "{e:?}"
    );
    // Another start time: the pid was recycled, the holder is dead.
    lock.store(holder_word(child as u32, start as u32 + 1), Release);
    let c = buf.consumer(0).unwrap();
    assert_eq!(c.took_over(), Some(child as u32));
    drop(c);
    // This process's own pid with another start time: an earlier process
    // with our pid held it.
    lock.store(holder_word(std::process::id(), own_start() + 1), Release);
    let c = buf.consumer(0).unwrap();
    assert_eq!(c.took_over(), Some(std::process::id()));
    drop(c);
    kill_and_reap(child);
    drain_and_check(&buf, 0, 2);
}

#[test]
fn a_private_buffer_copied_by_fork_is_taken_over() {
    let buf = RingBuffer::new(Config::new(1)).unwrap();
    buf.writer(0)
        .unwrap()
        .write(1, &0u64.to_le_bytes())
        .unwrap();
    // The copy of a heap buffer the parent held when it forked.
    let lock = &buf.region().ring(0).r.lock;
    lock.store(holder_word(std::process::id() + 1, 7), Release);
    let c = buf.consumer(0).unwrap();
    assert_eq!(c.took_over(), Some(std::process::id() + 1));
    drop(c);
    drain_and_check(&buf, 0, 1);
}

#[test]
fn a_consumer_releases_only_its_own_lock() {
    let (_f, buf) = shared(1);
    let old = buf.consumer(0).unwrap();
    // Taken over by another process that judged us dead (a scribble, or
    // `force_release_readers` there): our drop leaves its word alone.
    let theirs = holder_word(std::process::id() + 1, 9);
    buf.region().ring(0).r.lock.store(theirs, Release);
    drop(old);
    assert_eq!(lock_word(&buf), theirs, "the new holder keeps its lock");
    // SAFETY: the holder named in the lock word is made up; no reader runs.
    unsafe { crate::repair::force_release_readers(&buf) };
    assert_eq!(lock_word(&buf), 0);
    drain_and_check(&buf, 0, 1);
}

#[test]
fn an_iterator_does_not_wait_for_a_reader_that_died_inside_a_call() {
    let (_f, buf) = shared(3);
    let child = child_inside_a_call(&buf);
    kill_and_reap(child);
    // The iterator takes only `busy`: it finds the dead consumer's pid in
    // it and takes it over, not after the stale-word timeout, and without
    // counting a corruption.
    let mut it = buf.iter(0).unwrap();
    let mut n = 0u64;
    while let Some(ev) = it.next().unwrap() {
        assert_eq!(ev.payload, &n.to_le_bytes());
        n += 1;
    }
    assert_eq!(n, 3);
    assert_eq!(buf.stats(0).unwrap().corruptions, 0);
    drop(it);
    drain_and_check(&buf, 0, 3);
}

#[test]
fn an_unnamed_holder_is_waited_for_a_bounded_time_then_reported() {
    // A ring swap holds the word without a name (or the word was damaged).
    let (_f, buf) = shared(1);
    buf.region().ring(0).r.lock.store(1, Release);
    let e = buf.consumer(0).unwrap_err();
    let RingError::ReaderHeld { ring: 0, holder } = e else {
        panic!("{e:?}")
    };
    assert_eq!((holder.pid, holder.this_process), (0, false));
    assert!(e.to_string().contains("an unnamed holder"), "{e}");
    // SAFETY: the lock word was scribbled; no reader runs.
    unsafe { crate::repair::force_release_readers(&buf) };
    drain_and_check(&buf, 0, 1);
}
