//! Rings in shared memory, across processes: a child process writes into a
//! buffer in `/dev/shm` while this process reads it live; a child killed
//! with SIGKILL in the middle of writing leaves every committed event
//! readable; corrupt and foreign files give clear errors, never a panic or
//! a hang.
//!
//! `harness = false`: the binary re-runs itself as the child writer.

mod common;

use common::load::Checker;
use common::{check, fill};
use ringtrace_ring::{Config, Mode, OpenError, RingBuffer};
use std::fs::File;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const CHILD_EVENTS: u64 = 200_000;

/// The child: writes `CHILD_EVENTS` verified events into ring `ring`, then
/// (with "hang") loops writing until killed.
fn child(path: &str, ring: usize, hang: bool) {
    let file = File::options().read(true).write(true).open(path).unwrap();
    let buf = RingBuffer::open_shared(&file, 4096).unwrap();
    let mut w = buf.writer(ring).unwrap();
    let mut payload = [0u8; 120];
    let mut seq = 0u64;
    loop {
        let len = 24 + (seq % 96) as usize;
        fill(&mut payload[..len], 1, seq, 0);
        // Overwrite mode never refuses; producer/consumer may be full: retry.
        while w.write(seq + 1, &payload[..len]).is_err() {
            std::thread::yield_now();
        }
        seq += 1;
        if !hang && seq == CHILD_EVENTS {
            return;
        }
    }
}

fn spawn_child(path: &std::path::Path, ring: usize, hang: bool) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .arg("child")
        .arg(path)
        .arg(ring.to_string())
        .arg(if hang { "hang" } else { "finish" })
        .spawn()
        .unwrap()
}

fn shm_file() -> tempfile::NamedTempFile {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    tempfile::Builder::new()
        .prefix("ringtrace-test-")
        .tempfile_in(dir)
        .unwrap()
}

/// Another process writes; this one reads live, in producer/consumer mode:
/// every event arrives, in order, intact.
fn live_cross_process() {
    let f = shm_file();
    // A non-zero offset: a session keeps its own tables before the rings.
    let buf = RingBuffer::create_shared(
        f.as_file(),
        4096,
        Config::new(2).mode(Mode::ProducerConsumer),
    )
    .unwrap();
    let mut kid = spawn_child(f.path(), 1, false);
    let mut check_ = Checker::default();
    let start = Instant::now();
    let mut c = buf.consumer(1).unwrap();
    while check_.total < CHILD_EVENTS {
        assert!(
            start.elapsed() < common::HANG_GUARD,
            "stalled at {}",
            check_.total
        );
        match c.consume().unwrap() {
            Some(ev) => {
                let d = check_.event(ev.payload, ev.timestamp, ev.lost_events);
                assert_eq!(d.seq + 1, check_.total, "lost or reordered");
                assert_eq!(ev.timestamp, d.seq + 1);
            }
            None => std::thread::yield_now(),
        }
    }
    assert!(kid.wait().unwrap().success());
    let s = buf.stats(1).unwrap();
    assert_eq!(
        (s.committed, s.read, s.dropped, s.corruptions),
        (CHILD_EVENTS, CHILD_EVENTS, s.dropped, 0)
    );
    println!(
        "live_cross_process: {} events from pid {}, {s:?}",
        check_.total,
        kid.id()
    );
}

/// SIGKILL in the middle of writing: whatever was committed is read intact
/// by a process that maps the buffer afterwards.
fn survives_kill_9() {
    for round in 0..6 {
        let f = shm_file();
        let buf =
            RingBuffer::create_shared(f.as_file(), 4096, Config::new(1).pages_per_ring(8)).unwrap();
        let mut kid = spawn_child(f.path(), 0, true);
        // Killed once it has written (however long a loaded machine takes
        // to start it), at a point that varies with the round.
        let hang = common::Hang::guard("the child's first writes");
        while buf.stats(0).unwrap().written < 1000 {
            hang.check(|| format!("{:?}", buf.stats(0)));
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(round * 20));
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(kid.id() as i32, libc::SIGKILL) };
        let status = kid.wait().unwrap();
        assert!(!status.success());
        drop(buf);
        // A fresh mapping, as `ringtrace` would after the crash. The child
        // may have died mid-write (an event reserved, not committed) or in
        // the middle of pushing the head page: repair first.
        let buf = RingBuffer::open_shared(f.as_file(), 4096).unwrap();
        let before = buf.stats(0).unwrap();
        // SAFETY: the child (the ring's only writer) is dead and reaped.
        let recovered = unsafe { buf.recover_dead_writer(0) }.unwrap();
        assert!(
            recovered <= 1,
            "the child's writes do not nest: {recovered}"
        );
        let mut c = buf.consumer(0).unwrap();
        let mut seen = Checker::default();
        let mut last = None;
        while let Some(ev) = c.consume().unwrap() {
            let d = seen.event(ev.payload, ev.timestamp, ev.lost_events);
            if let Some(l) = last {
                assert_eq!(d.seq, l + 1 + ev.lost_events, "gap not reported");
            }
            last = Some(d.seq);
        }
        let s = buf.stats(0).unwrap();
        assert_eq!(s.corruptions, 0);
        assert!(s.committed > 0, "child wrote nothing: {s:?}");
        // Exact accounting: what the writer side counted as committed
        // before the repair is read, overwritten, or the event in flight.
        // The writer side counts the event in flight only when it was
        // reserved on the commit page: a child killed after a page move,
        // before its commit walk closed the old page, had reserved it on
        // the next page, which the counters reach only at that walk.
        assert!(
            before.committed == s.read + s.overrun + recovered
                || before.committed == s.read + s.overrun,
            "before {before:?}, after {s:?}, recovered {recovered}"
        );
        assert_eq!(s.committed, s.read + s.overrun, "{s:?}");
        assert_eq!(s.dropped, recovered, "{s:?}");
        // Nothing committed is lost: the last event read is the newest one.
        assert_eq!(last.unwrap() + 1, s.read + s.overrun, "{s:?}");
        assert_eq!(c.pending_losses(), recovered);
        drop(c);
        // The ring can be written again (the dead claim is released), and
        // the loss is reported.
        buf.writer(0)
            .unwrap()
            .write(u64::MAX >> 8, &[7; 24])
            .unwrap();
        let mut c = buf.consumer(0).unwrap();
        let ev = c.consume().unwrap().unwrap();
        assert_eq!(ev.payload, &[7; 24]);
        // Reported with the first event past the page, or pending.
        assert_eq!(ev.lost_events + c.pending_losses(), recovered);
        assert!(c.consume().unwrap().is_none());
        println!(
            "kill -9 round {round}: read {} of {} committed, {s:?}",
            seen.total, s.committed
        );
    }
}

/// Foreign, truncated and corrupt files: errors that say what is wrong.
fn corrupt_files() {
    let f = shm_file();
    // Empty file.
    assert!(matches!(
        RingBuffer::open_shared(f.as_file(), 0),
        Err(OpenError::Truncated { .. })
    ));
    // Not a buffer.
    std::fs::write(f.path(), vec![0x5a; 8192]).unwrap();
    let e = RingBuffer::open_shared(f.as_file(), 0).unwrap_err();
    assert!(matches!(e, OpenError::NotABuffer { .. }), "{e}");
    assert!(e.to_string().contains("not a ringtrace buffer"), "{e}");
    // A real buffer, then damaged in turn.
    let good = {
        let f2 = shm_file();
        let b = RingBuffer::create_shared(f2.as_file(), 0, Config::new(2)).unwrap();
        let mut w = b.writer(0).unwrap();
        for i in 0..1000u64 {
            let mut p = [0u8; 40];
            fill(&mut p, 1, i, 0);
            w.write(i, &p).unwrap();
        }
        drop(w);
        drop(b);
        std::fs::read(f2.path()).unwrap()
    };
    let try_bytes = |bytes: &[u8]| -> Result<u64, String> {
        std::fs::write(f.path(), bytes).unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .open(f.path())
            .unwrap();
        let buf = RingBuffer::open_shared(&file, 0).map_err(|e| e.to_string())?;
        // Reading a damaged ring ends (errors or events), never hangs.
        let mut n = 0u64;
        for ring in 0..buf.rings() {
            let mut c = buf.consumer(ring).unwrap();
            for _ in 0..100_000 {
                match c.consume() {
                    Ok(Some(ev)) => {
                        let _ = check(ev.payload);
                        n += 1
                    }
                    Ok(None) => break,
                    Err(_) => n += 1_000_000,
                }
            }
        }
        let _ = buf.stats(0);
        Ok(n)
    };
    assert_eq!(try_bytes(&good), Ok(1000));
    // Version.
    let mut b = good.clone();
    b[8] = 99;
    assert!(try_bytes(&b).unwrap_err().contains("layout version 99"));
    // Geometry fields that disagree.
    let mut b = good.clone();
    b[24] ^= 1; // nr_rings 2 -> 3: the offsets no longer match
    let e = try_bytes(&b).unwrap_err();
    assert!(
        e.contains("corrupt buffer header") || e.contains("truncated"),
        "{e}"
    );
    // Truncated.
    let e = try_bytes(&good[..good.len() - 4096]).unwrap_err();
    assert!(e.contains("truncated"), "{e}");
    // Garbage in the metadata and pages: any outcome but a panic or hang.
    let mut rng = 0x9e3779b97f4a7c15u64;
    for _ in 0..200 {
        let mut b = good.clone();
        for _ in 0..16 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let at = 256 + (rng as usize % (b.len() - 256));
            b[at] = (rng >> 32) as u8;
        }
        let _ = try_bytes(&b);
    }
    println!("corrupt_files: ok");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2], args[3].parse().unwrap(), args[4] == "hang");
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    live_cross_process();
    survives_kill_9();
    corrupt_files();
}
