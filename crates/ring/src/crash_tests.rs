//! Crash-point enumeration: a writer killed at every labelled step of the
//! write path, then `recover_dead_writer`, a drain, and exact checks.
//!
//! # How a kill is made, and why it is one
//!
//! The ring lives in a shared mapping of a temporary file
//! (`RingBuffer::create_shared`). The test forks; the child writes a known
//! workload with the step hook (`write::hook`) installed, and at the chosen
//! firing of the chosen label the hook calls `raise(SIGKILL)`: a real
//! SIGKILL, delivered synchronously to the writing thread at that point of
//! the write path. The kernel then tears the process down without running
//! another instruction of it, so the shared pages hold exactly what the
//! writer had stored when the signal was raised, which is what a `kill -9`
//! landing at that instruction leaves. (A step hook fires after the step's
//! stores; the windows between stores of one step have no label and are
//! not enumerated.) The parent waits for the child, maps the file afresh
//! (`open_shared`, as another process would), repairs the ring, drains it
//! and checks:
//!
//! - the accounting identity, `written == read + overrun + dropped +
//!   commit_overrun + entries`, with `entries == 0` and `committed == read +
//!   overrun` after the drain, and `written` against the child's own count
//!   of the writes it finished (at most the writes in flight more);
//! - every loss reported exactly once: the reported `lost_events` plus the
//!   pending losses equal `overrun + dropped + commit_overrun`, and each
//!   event's sequence number is the previous one plus one plus the losses
//!   reported with it (the child's own reads included);
//! - every payload byte;
//! - then writing goes on after the repair: the ring takes more writes, and
//!   the change of `written` and `committed` is exactly what was written
//!   (no phantom events), with the same loss and sequence checks.
//!
//! The fork happens in a multi-threaded test process: the child allocates
//! nothing (payloads are built on the stack, the hook state is in
//! const-initialised thread-locals, the log is a shared anonymous mapping
//! made before the fork) and leaves with `_exit`.
//!
//! # What is enumerated
//!
//! Ring sizes of 2, 3 and 16 pages of 4096 bytes; overwrite and
//! producer/consumer modes; a child that never reads and one that drains
//! the ring every few writes (so the reader page is often the commit page,
//! read to its end); and these shapes of the fatal write:
//!
//! - flat: the outermost write is killed at the Nth firing of a label;
//! - nested: at the Nth firing of label Y in an outermost write, a nested
//!   write (a signal handler's) runs and is killed at its first firing of
//!   label X, for every pair (Y, X);
//! - burst: at the Nth firing of a label, nested writes run until the Kth
//!   firing of label X among them kills the process; many nested writes
//!   with the outer one uncommitted lap the ring (commit overruns, pushes
//!   inside nested writes);
//! - deep: writes nested to the deepest level; the one past `MAX_NEST` is
//!   refused and killed between counting its drop and noting it (step M),
//!   or the deepest accepted one is killed at a label.
//!
//! N runs over 1, 2, 3, 5, 9, 17, ... until the child finishes its workload
//! without reaching the label.

use crate::layout::MAX_NEST;
use crate::sync::{AtomicU64, Ordering::SeqCst};
use crate::write::{hook, Label};
use crate::{Config, Mode, RingBuffer, WriteError};
use std::cell::Cell;

const LABELS: [Label; 20] = [
    Label::E,
    Label::A,
    Label::B,
    Label::C,
    Label::D,
    Label::F,
    Label::G,
    Label::M,
    Label::N,
    Label::P0,
    Label::P1,
    Label::P2,
    Label::S0,
    Label::S1,
    Label::S2,
    Label::T1,
    Label::R,
    Label::T2,
    Label::K,
    Label::L,
];

/// Writes of the child's workload when it is not killed first.
const WORKLOAD: u64 = 1500;
/// Nested writes of a burst, at most: enough to lap a ring of 16 pages.
const BURST: u32 = 600;
/// Sequence numbers of the writes made after the repair start here.
const AFTER_BASE: u64 = 1 << 40;

/// The shape of the fatal write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// The outermost write dies at the `n`th firing of `kill`.
    Flat,
    /// At the `n`th firing of `trigger` a nested write runs and dies at its
    /// first firing of `kill`.
    Nested,
    /// At the `n`th firing of `trigger` nested writes run; the `kill_n`th
    /// firing of `kill` among them kills.
    Burst,
    /// At the `n`th firing of `trigger`, writes nest down to the refused
    /// level; it dies at M, or the deepest accepted one at `kill`.
    Deep,
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    shape: Shape,
    trigger: Label,
    n: u32,
    kill: Label,
    kill_n: u32,
}

/// What the child did, in a shared anonymous mapping.
#[repr(C)]
#[derive(Debug)]
struct Log {
    /// Next sequence number (every write, nested ones included, takes one
    /// when it starts).
    seq: AtomicU64,
    /// Writes that returned (any result but `TooLarge` or `Disabled`).
    finished: AtomicU64,
    /// Writes in flight now (the fatal chain's levels at the kill).
    in_flight: AtomicU64,
    /// The child's reader: events read, losses reported, next expected seq.
    read: AtomicU64,
    lost: AtomicU64,
    next_seq: AtomicU64,
    /// Non-zero: the child's own check that failed first.
    bad: AtomicU64,
}

thread_local! {
    static PLAN: Cell<Option<Plan>> = const { Cell::new(None) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static FIRED: Cell<u32> = const { Cell::new(0) };
    static KILL_FIRED: Cell<u32> = const { Cell::new(0) };
    static BUF: Cell<*const RingBuffer> = const { Cell::new(std::ptr::null()) };
    static LOG: Cell<*const Log> = const { Cell::new(std::ptr::null()) };
}

/// Payload length of write `seq`: small and large events, so that pages
/// fill and the tail moves often.
fn len_of(seq: u64) -> usize {
    const LENS: [usize; 9] = [12, 20, 100, 36, 1000, 16, 60, 300, 24];
    LENS[(seq % LENS.len() as u64) as usize]
}

fn byte_at(seq: u64, i: usize) -> u8 {
    (seq as usize).wrapping_mul(31).wrapping_add(i) as u8
}

/// Fills `out` with the payload of `seq` (seq, length, pattern).
fn fill(out: &mut [u8], seq: u64) {
    out[..8].copy_from_slice(&seq.to_le_bytes());
    let len = out.len() as u32;
    out[8..12].copy_from_slice(&len.to_le_bytes());
    for (i, b) in out.iter_mut().enumerate().skip(12) {
        *b = byte_at(seq, i);
    }
}

/// The seq of a payload read back, if every byte is as written.
fn check(read: &[u8]) -> Option<u64> {
    let seq = u64::from_le_bytes(read.get(..8)?.try_into().ok()?);
    let len = u32::from_le_bytes(read.get(8..12)?.try_into().ok()?) as usize;
    if read.len() != (len + 3) & !3 {
        return None;
    }
    let ok = read[12..len]
        .iter()
        .enumerate()
        .all(|(i, &b)| b == byte_at(seq, i + 12))
        && read[len..].iter().all(|&b| b == 0);
    ok.then_some(seq)
}

fn log() -> &'static Log {
    // SAFETY: set before the workload runs to a mapping that outlives the
    // child (it never unmaps it).
    unsafe { &*LOG.with(|l| l.get()) }
}

fn buf() -> &'static RingBuffer {
    // SAFETY: set before the workload runs to the buffer, which the child
    // never drops (it leaves with `_exit`).
    unsafe { &*BUF.with(|b| b.get()) }
}

fn die() -> ! {
    // SAFETY: raise(2) of a signal that cannot be caught: the process ends
    // here (see the module docs).
    unsafe { libc::raise(libc::SIGKILL) };
    // SAFETY: not reached; `_exit` in case the signal were blocked.
    unsafe { libc::_exit(99) }
}

/// The nested writes ran without reaching the kill: the case does not
/// exist. Leaves at once (the writes the handler made would be read out of
/// sequence order, which the checks do not model).
fn not_reached() -> ! {
    // SAFETY: leaves the child without unwinding into the test harness.
    unsafe { libc::_exit(0) }
}

/// Records the result of a write that returned.
fn finished(r: Result<(), WriteError>) {
    let log = log();
    match r {
        Ok(()) | Err(WriteError::Full | WriteError::CommitOverrun | WriteError::NestTooDeep) => {
            log.finished.fetch_add(1, SeqCst);
        }
        Err(_) => {
            log.bad.fetch_add(1000, SeqCst);
        }
    }
    log.in_flight.fetch_sub(1, SeqCst);
}

/// One nested write (as a signal handler on the writing thread makes).
fn nested_write(depth: u32) {
    let seq = log().seq.fetch_add(1, SeqCst);
    log().in_flight.fetch_add(1, SeqCst);
    let mut p = [0u8; 1024];
    let len = len_of(seq);
    fill(&mut p[..len], seq);
    let before = DEPTH.with(|d| d.replace(depth));
    // SAFETY: runs inside the hook on the thread holding the ring's writer,
    // and completes before the interrupted write resumes.
    let r = unsafe { buf().nested_writer(0) }
        .map_err(|_| WriteError::Corrupt("no ring"))
        .and_then(|mut w| w.write(u64::MAX, &p[..len]));
    DEPTH.with(|d| d.set(before));
    finished(r);
}

/// The hook: counts firings and runs the plan.
fn on_step(label: Label) {
    let Some(plan) = PLAN.with(|p| p.get()) else {
        return;
    };
    let depth = DEPTH.with(|d| d.get());
    let bump = |c: &'static std::thread::LocalKey<Cell<u32>>| {
        c.with(|c| {
            c.set(c.get() + 1);
            c.get()
        })
    };
    match plan.shape {
        Shape::Flat => {
            if depth == 0 && label == plan.kill && bump(&FIRED) == plan.n {
                die();
            }
        }
        Shape::Nested | Shape::Burst => {
            if depth == 0 && label == plan.trigger && bump(&FIRED) == plan.n {
                let writes = if plan.shape == Shape::Nested {
                    1
                } else {
                    BURST
                };
                for _ in 0..writes {
                    nested_write(1);
                }
                not_reached();
            } else if depth == 1 && label == plan.kill && bump(&KILL_FIRED) == plan.kill_n {
                die();
            }
        }
        Shape::Deep => {
            let deepest = MAX_NEST as u32 - 1;
            if depth == 0 && label == plan.trigger && bump(&FIRED) == plan.n {
                nested_write(1);
                not_reached();
            } else if depth >= 1 && depth <= deepest && label == Label::E {
                nested_write(depth + 1);
            } else if label == plan.kill {
                // The refused level dies at M; the deepest accepted one at
                // any other label.
                let at = if plan.kill == Label::M {
                    deepest + 1
                } else {
                    deepest
                };
                if depth == at {
                    die();
                }
            }
        }
    }
}

/// The child's reader: consumes everything, checking as the parent does.
fn child_drain() {
    let log = log();
    let Ok(mut c) = buf().consumer(0) else {
        log.bad.fetch_add(1, SeqCst);
        return;
    };
    // Nothing fires while reading (the hook only watches writes).
    loop {
        match c.consume() {
            Ok(Some(ev)) => {
                let Some(seq) = check(ev.payload) else {
                    log.bad.fetch_add(2, SeqCst);
                    return;
                };
                if seq != log.next_seq.load(SeqCst) + ev.lost_events {
                    log.bad.fetch_add(4, SeqCst);
                }
                log.next_seq.store(seq + 1, SeqCst);
                log.read.fetch_add(1, SeqCst);
                log.lost.fetch_add(ev.lost_events, SeqCst);
            }
            Ok(None) => return,
            Err(_) => {
                log.bad.fetch_add(8, SeqCst);
                return;
            }
        }
    }
}

/// The child: the workload, with the plan armed. Never returns.
fn child(buf: &RingBuffer, log: &Log, plan: Plan, drain_every: u64) -> ! {
    BUF.with(|b| b.set(buf));
    LOG.with(|l| l.set(log));
    let Ok(mut w) = buf.writer(0) else {
        // SAFETY: leaves the child without unwinding into the test harness.
        unsafe { libc::_exit(3) }
    };
    PLAN.with(|p| p.set(Some(plan)));
    hook::HOOK.with(|h| h.set(Some(on_step)));
    let mut p = [0u8; 1024];
    for i in 0..WORKLOAD {
        let seq = log.seq.fetch_add(1, SeqCst);
        log.in_flight.fetch_add(1, SeqCst);
        let len = len_of(seq);
        fill(&mut p[..len], seq);
        // Mostly small deltas, now and then one that needs a time extend.
        let ts = seq * 10 + ((i / 50) << 28);
        let r = match i % 3 {
            0 => w.write(ts, &p[..len]),
            1 => w
                .write_with(ts, len, |b| {
                    b.copy_from_slice(&p[..len]);
                    true
                })
                .map(|_| ()),
            _ => {
                let f = |b: &mut [u8]| {
                    b.copy_from_slice(&p[..len]);
                    true
                };
                match w.write_with_fast(ts, len, f) {
                    Some(r) => r.map(|_| ()),
                    None => w.write_with(ts, len, f).map(|_| ()),
                }
            }
        };
        finished(r);
        if drain_every != 0 && i % drain_every == drain_every - 1 {
            child_drain();
        }
    }
    // SAFETY: as above: the workload ended without reaching the plan.
    unsafe { libc::_exit(0) }
}

/// A zeroed shared anonymous mapping for the log.
fn shared_log() -> &'static Log {
    // SAFETY: a fresh anonymous shared mapping of the log's size; zero is a
    // valid value of every atomic in it. It is never unmapped (a few pages
    // per case, for the test process's lifetime).
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            std::mem::size_of::<Log>(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(p, libc::MAP_FAILED, "mmap of the log");
        &*p.cast::<Log>()
    }
}

/// How a case ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The child died at the planned step; the checks passed.
    Killed,
    /// The child finished its workload first.
    NotReached,
}

#[derive(Debug, Clone, Copy)]
struct Case {
    pages: usize,
    /// Pages of the shared pool (`Config::pool_pages`).
    pool: usize,
    mode: Mode,
    drain_every: u64,
    plan: Plan,
}

/// A fresh anonymous file in memory for one case's ring: tmpfs-backed, so
/// that the thousands of cases pay no disk filesystem's costs.
fn memfd() -> Result<std::fs::File, String> {
    use std::os::fd::FromRawFd;
    // SAFETY: memfd_create(2) with a NUL-terminated name; it returns a new
    // descriptor that we own, or -1.
    let fd = unsafe { libc::memfd_create(c"ringtrace-crash".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("memfd_create: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a new, valid descriptor owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

/// Runs one case: fork, kill, repair, drain, check. `Err` says what failed.
fn run(case: Case) -> Result<Outcome, String> {
    let file = memfd()?;
    let config = Config::new(1)
        .pages_per_ring(case.pages)
        .pool_pages(case.pool)
        .mode(case.mode);
    let log = shared_log();
    let status = {
        let buf = RingBuffer::create_shared(&file, 0, config).map_err(|e| e.to_string())?;
        // SAFETY: fork(2); the child only runs `child`, which allocates
        // nothing and leaves with `_exit`.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err("fork failed".into());
        }
        if pid == 0 {
            child(&buf, log, case.plan, case.drain_every);
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            return Err("waitpid failed".into());
        }
        status
    };
    if log.bad.load(SeqCst) != 0 {
        return Err(format!("child's check failed: {}", log.bad.load(SeqCst)));
    }
    if libc::WIFEXITED(status) {
        return match libc::WEXITSTATUS(status) {
            0 => Ok(Outcome::NotReached),
            c => Err(format!("child exited with {c}")),
        };
    }
    if !(libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL) {
        return Err(format!("child ended with status {status:#x}"));
    }
    let buf = RingBuffer::open_shared(&file, 0).map_err(|e| e.to_string())?;
    check_after_kill(&buf, log).map_err(|e| format!("{e}\n  state: {}", buf.debug_state(0)))?;
    Ok(Outcome::Killed)
}

fn check_after_kill(buf: &RingBuffer, log: &Log) -> Result<(), String> {
    // SAFETY: the ring's only writer, the child, is dead and reaped.
    let recovered = unsafe { buf.recover_dead_writer(0) }.map_err(|e| e.to_string())?;
    if buf.config().pool_pages != 0 {
        // A splice cut short (S1, S2) left the head's `prev` or the page
        // count behind: repaired. The ring's pages, the pool's free ones
        // and the pages writers killed between S0 and S1 held (one per
        // write level in flight, at most) add up to all pages.
        buf.check_quiet_ring(0)
            .map_err(|e| format!("after repair: {e}"))?;
        let pages = buf.ring_pages(0).map_err(|e| e.to_string())? + buf.pool_free_pages();
        let all = buf.config().pages_per_ring + buf.config().pool_pages;
        let in_flight = log.in_flight.load(SeqCst) as usize;
        if pages > all || all - pages > in_flight {
            return Err(format!(
                "{pages} pages in ring and pool of {all}, {in_flight} writes in flight"
            ));
        }
    }
    let in_flight = log.in_flight.load(SeqCst);
    let finished = log.finished.load(SeqCst);
    let s = buf.stats(0).map_err(|e| e.to_string())?;
    // Every finished write was counted (those a burst finished under the
    // killed outer write are among the `recovered`); of those in flight,
    // at most all.
    if s.written < finished || s.written > finished + in_flight {
        return Err(format!(
            "written {} for {finished} finished writes and {in_flight} in flight \
             ({recovered} recovered): {s:?}",
            s.written
        ));
    }
    let mut c = buf.consumer(0).map_err(|e| e.to_string())?;
    let mut next = log.next_seq.load(SeqCst);
    let mut read = log.read.load(SeqCst);
    let mut lost = log.lost.load(SeqCst);
    drain_checked(&mut c, &mut next, &mut read, &mut lost)?;
    let pending = c.pending_losses();
    drop(c);
    let s = buf.stats(0).map_err(|e| e.to_string())?;
    identity(&s, "after the repair and drain")?;
    if read != s.read {
        return Err(format!("{read} events read, stats say {}: {s:?}", s.read));
    }
    if lost + pending != s.overrun + s.dropped + s.commit_overrun {
        return Err(format!(
            "losses reported {lost} + pending {pending} != overrun + dropped + commit overrun: {s:?}"
        ));
    }

    // Writing goes on after the repair: exactly what is written is counted.
    let before = s;
    let mut w = buf
        .writer(0)
        .map_err(|e| format!("writer after repair: {e}"))?;
    let cap = crate::format::data_capacity(buf.config().page_size);
    let total = (buf.config().pages_per_ring * cap * 2 / 100) as u64 + 8;
    let mut ok = 0u64;
    let mut failed = 0u64;
    let mut p = [0u8; 88];
    let ts = s.now_ts;
    for i in 0..total {
        let seq = AFTER_BASE + i;
        fill(&mut p, seq);
        match w.write(ts + i, &p) {
            Ok(()) => ok += 1,
            Err(WriteError::Full | WriteError::CommitOverrun) => failed += 1,
            Err(e) => return Err(format!("write after repair: {e}")),
        }
        if i % 97 == 96 {
            // Read part of it meanwhile, as a live reader would.
            let mut c = buf.consumer(0).map_err(|e| e.to_string())?;
            after_drain(&mut c, &mut next, &mut read, &mut lost, pending)?;
        }
    }
    drop(w);
    let mut c = buf.consumer(0).map_err(|e| e.to_string())?;
    after_drain(&mut c, &mut next, &mut read, &mut lost, pending)?;
    let pending_after = c.pending_losses();
    drop(c);
    let s = buf.stats(0).map_err(|e| e.to_string())?;
    identity(&s, "after writing on")?;
    if s.written.wrapping_sub(before.written) != ok + failed
        || s.committed.wrapping_sub(before.committed) != ok
    {
        return Err(format!(
            "after the repair {ok} written and {failed} dropped, counted: before {before:?}, after {s:?}"
        ));
    }
    if read != s.read || lost + pending_after != s.overrun + s.dropped + s.commit_overrun {
        return Err(format!(
            "after writing on: read {read}, lost {lost} + pending {pending_after}: {s:?}"
        ));
    }
    if s.corruptions != 0 {
        return Err(format!("corruptions: {s:?}"));
    }
    Ok(())
}

/// `written == read + overrun + dropped + commit_overrun + entries`, with
/// nothing left.
fn identity(s: &crate::RingStats, when: &str) -> Result<(), String> {
    if s.entries != 0
        || s.committed != s.read + s.overrun
        || s.written != s.read + s.overrun + s.dropped + s.commit_overrun + s.entries
    {
        return Err(format!("identity {when}: {s:?}"));
    }
    Ok(())
}

/// Drains the events written before the kill: each one's seq is the
/// previous one plus one plus the losses reported with it.
fn drain_checked(
    c: &mut crate::Consumer<'_>,
    next: &mut u64,
    read: &mut u64,
    lost: &mut u64,
) -> Result<(), String> {
    for _ in 0..1_000_000 {
        let Some(ev) = c.consume().map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let seq = check(ev.payload).ok_or("payload damaged")?;
        if seq != *next + ev.lost_events {
            return Err(format!(
                "event {seq} after {} with {} lost reported",
                next.wrapping_sub(1),
                ev.lost_events
            ));
        }
        *next = seq + 1;
        *read += 1;
        *lost += ev.lost_events;
    }
    Err("drain did not end".into())
}

/// Drains events written after the repair. The first one carries the
/// losses pending at the repair plus those of its own writes before it.
fn after_drain(
    c: &mut crate::Consumer<'_>,
    next: &mut u64,
    read: &mut u64,
    lost: &mut u64,
    pending_at_repair: u64,
) -> Result<(), String> {
    for _ in 0..1_000_000 {
        let Some(ev) = c.consume().map_err(|e| e.to_string())? else {
            return Ok(());
        };
        let seq = check(ev.payload).ok_or("payload damaged after the repair")?;
        if seq < AFTER_BASE || seq < *next {
            return Err(format!("after the repair: event {seq} after {next}"));
        }
        let expect = if *next < AFTER_BASE {
            seq - AFTER_BASE + pending_at_repair
        } else {
            seq - *next
        };
        if ev.lost_events != expect {
            return Err(format!(
                "after the repair: event {seq} (next {next}) with {} lost reported, expected {expect}",
                ev.lost_events
            ));
        }
        *next = seq + 1;
        *read += 1;
        *lost += ev.lost_events;
    }
    Err("drain did not end".into())
}

/// Ns to try: 1, 2, 3, 5, 9, 17, ... (the caller stops at the first not
/// reached).
fn ns() -> impl Iterator<Item = u32> {
    std::iter::successors(Some(1u32), |&n| {
        (n < 1 << 20).then_some(if n < 3 { n + 1 } else { n * 2 - 1 })
    })
}

/// Every case of the enumeration whose kill label passes `want`, run in
/// turn; returns the failures, and checks every label was reached.
fn enumerate(want: fn(Label) -> bool, shapes: &[(usize, usize)], modes: &[Mode]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut reached = std::collections::BTreeSet::new();
    let mut cases = 0;
    let mut record = |case: Case, failures: &mut Vec<String>| -> bool {
        cases += 1;
        match run(case) {
            Ok(Outcome::Killed) => {
                reached.insert((format!("{:?}", case.mode), format!("{:?}", case.plan.kill)));
                true
            }
            Ok(Outcome::NotReached) => false,
            Err(e) => {
                failures.push(format!("{case:?}: {e}"));
                true
            }
        }
    };
    for &(pages, pool) in shapes {
        for &mode in modes {
            for drain_every in [0, 7] {
                let base = |shape, trigger, n, kill, kill_n| Case {
                    pages,
                    pool,
                    mode,
                    drain_every,
                    plan: Plan {
                        shape,
                        trigger,
                        n,
                        kill,
                        kill_n,
                    },
                };
                let t0 = std::time::Instant::now();
                let c0 = failures.len();
                for kill in LABELS.into_iter().filter(|&l| want(l)) {
                    for n in ns() {
                        if !record(base(Shape::Flat, kill, n, kill, 1), &mut failures) {
                            break;
                        }
                    }
                    for trigger in LABELS.into_iter().filter(|&t| pool != 0 || !is_splice(t)) {
                        for n in [1, 5, 300] {
                            let case = base(Shape::Nested, trigger, n, kill, 1);
                            if !record(case, &mut failures) && n > 1 {
                                break;
                            }
                        }
                    }
                    for trigger in [Label::C, Label::D, Label::K] {
                        for kill_n in ns() {
                            let case = base(Shape::Burst, trigger, 3, kill, kill_n);
                            if !record(case, &mut failures) {
                                break;
                            }
                        }
                    }
                    for n in [1, 40, 400] {
                        record(base(Shape::Deep, Label::C, n, kill, 1), &mut failures);
                    }
                }
                eprintln!(
                    "{pages} pages, pool {pool}, {mode:?} drain {drain_every}: {} failures, {:?}",
                    failures.len() - c0,
                    t0.elapsed()
                );
            }
        }
    }
    // Every label that can run in a mode was a kill point in it.
    for &mode in modes {
        for kill in LABELS.into_iter().filter(|&l| want(l)) {
            let possible = (mode == Mode::Overwrite || !is_push(kill))
                && (shapes.iter().any(|&(_, pool)| pool != 0) || !is_splice(kill));
            let key = (format!("{mode:?}"), format!("{kill:?}"));
            if possible && !reached.contains(&key) {
                failures.push(format!("{mode:?}: never killed at {kill:?}"));
            }
        }
    }
    println!("{cases} cases, {} failures", failures.len());
    failures
}

fn report(failures: &[String]) {
    for f in failures.iter().take(20) {
        println!("{f}");
    }
    assert!(failures.is_empty(), "{} failing cases", failures.len());
}

/// The ring shapes without a pool: (pages, pool pages).
const NO_POOL: [(usize, usize); 3] = [(2, 0), (3, 0), (16, 0)];

/// Whether `l` is a step of the pool splice.
fn is_splice(l: Label) -> bool {
    matches!(l, Label::S0 | Label::S1 | Label::S2)
}

/// Whether `l` is a step of the head push.
fn is_push(l: Label) -> bool {
    matches!(l, Label::P0 | Label::P1 | Label::P2)
}

/// Kills a writer at every step but the head push's and the splice's, in
/// `mode`, in the ring shapes without a pool, and reports the recoveries.
fn kill_at_every_step_outside_push_and_splice(mode: Mode) {
    report(&enumerate(
        |l| !is_push(l) && !is_splice(l),
        &NO_POOL,
        &[mode],
    ));
}

/// A writer killed at every step outside the head push and the splice, in
/// overwrite mode. (One test per mode, so that the test harness runs them
/// side by side.)
#[test]
fn recovery_is_exact_after_a_kill_at_every_step_overwrite() {
    kill_at_every_step_outside_push_and_splice(Mode::Overwrite);
}

/// A writer killed at every step outside the splice, in producer/consumer
/// mode (which has no head push).
#[test]
fn recovery_is_exact_after_a_kill_at_every_step_producer_consumer() {
    kill_at_every_step_outside_push_and_splice(Mode::ProducerConsumer);
}

/// A writer killed inside a pool splice (steps S0, S1 and S2; S1 lies
/// between the splice's compare-and-swap and the fix of the head's
/// `prev`), outermost and nested at every step, in rings that grow from
/// a pool and then, once it is empty, push or drop; and at the steps of
/// the head push in a ring whose pool is used up.
#[test]
fn recovery_is_exact_after_a_kill_inside_a_pool_splice() {
    report(&enumerate(
        |l| is_splice(l) || is_push(l),
        &[(2, 1), (2, 3), (3, 2)],
        &[Mode::Overwrite, Mode::ProducerConsumer],
    ));
}

/// A writer killed inside the head push (steps P0, P1 and P2; P1 lies
/// between the compare-and-swap and the push's count).
#[test]
fn recovery_is_exact_after_a_kill_inside_the_head_push() {
    report(&enumerate(
        is_push,
        &NO_POOL,
        &[Mode::Overwrite, Mode::ProducerConsumer],
    ));
}
