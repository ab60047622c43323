//! The reader side's two targets, on one core:
//!
//! - **drain** (`--only drain`): `ringtrace record` moves ring data to a
//!   file on tmpfs at 1 GB/s or more. A tracer's one context is filled
//!   with `trace!` events (producer/consumer mode, filled until the ring
//!   refuses; outside the timed section), then a [`ringtrace::Drain`]
//!   does what `record` does: `spool_next_to` an output in a temporary
//!   directory under `/dev/shm`, `poll` until the ring is empty (each
//!   poll swaps whole pages out of the ring and appends them to the spool
//!   file). Timed: from the drain's creation to the ring being empty. GB/s
//!   = page bytes spooled ÷ time. The `finish_spooled` that writes the
//!   trace.dat at the end is timed apart. A second figure drains while a
//!   writer thread keeps writing (as `record` polls a live program):
//!   bytes spooled ÷ drain-thread CPU time, with the loss the ring counted.
//! - **pipe** (`--only pipe`): `ringtrace pipe` formats 3 million events
//!   per second or more. A tracer shaped as a default session (64
//!   contexts, `mono` clock) holds a mix of events written by 4 threads
//!   (outside the timed section, [`mixed_event`]): `trace!` with two and
//!   with three arguments, a typed event, markers. Timed: the merged
//!   consuming pipe turning all of them into ftrace text, as `ringtrace
//!   pipe` does (batches of lines in one reused buffer, each batch written
//!   at once), into `/dev/null` and into a file on tmpfs.
//!
//! Every figure is the median of several repetitions, each on freshly
//! filled rings. Both the wall-clock figure and the figure per CPU second
//! of the reading thread are given: on a shared machine the second leaves
//! out the time other processes held the CPU. Every repetition checks the
//! ring's accounting identity and that every event written was read.

use crate::machine::thread_cpu_secs;
use crate::stats::Summary;
use crate::Settings;
use ringtrace::clock::Clock;
use ringtrace::export::ExportFormat;
use ringtrace::tracedat::TraceDatVersion;
use ringtrace::Tracer;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The drain target, GB/s of ring data on one core.
pub const DRAIN_TARGET_GBS: f64 = 1.0;
/// The pipe target, events per second on one core.
pub const PIPE_TARGET_EPS: f64 = 3e6;

/// Ring size of the filled drain (one context).
pub const DRAIN_BYTES: usize = 64 << 20;
/// Ring size per writer context of the live drain.
pub const LIVE_BYTES: usize = 4 << 20;
/// Writer threads of the pipe section.
const PIPE_THREADS: usize = 4;
/// Events each pipe writer writes.
const PIPE_EVENTS: u64 = 200_000;

/// The drain section's figures.
#[derive(Debug, Clone)]
pub struct DrainReport {
    /// Where the spool files went.
    pub dir: String,
    /// Page bytes spooled per repetition (median).
    pub bytes: Summary,
    /// GB/s of ring data spooled, by wall time.
    pub wall: Summary,
    /// GB/s of ring data spooled per CPU second of the draining thread.
    pub cpu: Summary,
    /// GB/s of ring data for `finish_spooled` alone (the trace.dat), by
    /// wall time.
    pub finish: Summary,
    /// Live drain: GB/s spooled per CPU second of the draining thread
    /// while a writer thread writes.
    pub live_cpu: Summary,
    /// Live drain: GB/s spooled by wall time.
    pub live_wall: Summary,
    /// Live drain: percent of the writer's events the ring dropped (it was
    /// full: the drain fell behind).
    pub live_lost_pct: Summary,
    /// Time the live writer wrote, per repetition, in ms.
    pub live_ms: u128,
    /// Accounting mismatches and errors.
    pub problems: Vec<String>,
}

/// The pipe section's figures.
#[derive(Debug, Clone)]
pub struct PipeReport {
    /// Events formatted per repetition.
    pub events: u64,
    /// Bytes of text per repetition (median).
    pub text_bytes: Summary,
    /// Where the file sink went.
    pub dir: String,
    /// Into `/dev/null`: events per second by wall time.
    pub wall: Summary,
    /// Into `/dev/null`: events per CPU second of the reading thread.
    pub cpu: Summary,
    /// Into a file on tmpfs: events per second by wall time.
    pub file_wall: Summary,
    /// Into a file on tmpfs: events per CPU second of the reading thread.
    pub file_cpu: Summary,
    /// Accounting mismatches and errors.
    pub problems: Vec<String>,
}

ringtrace::declare_event! {
    /// The typed event of the pipe section's mix.
    pub struct RequestDone: "bench" / "request_done" = 1801 { id: u64, status: u32, micros: u32 }
}

/// The pipe section's mix, by `i % 4`: `trace!` with two arguments, with
/// three (a string among them), a typed event, a marker.
pub fn mixed_event(t: &Tracer, i: u64) -> Result<(), ringtrace::RecordError> {
    match i % 4 {
        0 => t.record(&ringtrace::bprintk!(
            "request %llu took %u us",
            i,
            (i % 977) as u32
        )),
        1 => t.record(&ringtrace::bprintk!(
            "request %llu status=%d path=%s",
            i,
            200i32,
            "/api/v1/items"
        )),
        2 => t.record(&RequestDone {
            id: i,
            status: 200,
            micros: (i % 977) as u32,
        }),
        _ => {
            t.marker("checkpoint reached");
            Ok(())
        }
    }
}

/// One `trace!` with the arguments a server logs: a request id, a
/// duration, a status and a short string.
fn one_event(t: &Tracer, i: u64) -> Result<(), ringtrace::RecordError> {
    t.record(&ringtrace::bprintk!(
        "request %llu took %u us status=%d path=%s",
        i,
        (i % 977) as u32,
        200i32,
        "/api/v1/items"
    ))
}

/// Checks ring `r`'s accounting identity and that nothing is left.
fn check_ring(t: &Tracer, r: usize, problems: &mut Vec<String>, what: &str) {
    match t.ring_stats(r) {
        Ok(s) => {
            let sum = s.read + s.overrun + s.dropped + s.commit_overrun + s.entries;
            if s.written != sum {
                problems.push(format!(
                    "{what}: ring {r}: written {} != read {} + overrun {} + dropped {} + commit_overrun {} + entries {}",
                    s.written, s.read, s.overrun, s.dropped, s.commit_overrun, s.entries
                ));
            }
            if s.entries != 0 {
                problems.push(format!(
                    "{what}: ring {r}: {} events left unread",
                    s.entries
                ));
            }
        }
        Err(e) => problems.push(format!("{what}: ring {r}: stats: {e}")),
    }
}

/// A directory on tmpfs for the spool files (`/dev/shm`), else the
/// temporary directory (said in the report).
fn spool_dir() -> (tempfile::TempDir, String) {
    match tempfile::Builder::new()
        .prefix("ringtrace-bench-")
        .tempdir_in("/dev/shm")
    {
        Ok(d) => (d, "/dev/shm (tmpfs)".into()),
        Err(e) => {
            let d = tempfile::tempdir().expect("a temporary directory");
            let s = format!(
                "{} (/dev/shm unusable: {e})",
                std::env::temp_dir().display()
            );
            (d, s)
        }
    }
}

/// A tracer of one producer/consumer context of `DRAIN_BYTES`, filled
/// with events until the ring refuses one; returns it and the events
/// stored.
fn filled_tracer() -> (Tracer, u64) {
    let t = crate::pc_tracer(1, DRAIN_BYTES, Clock::counter());
    let mut n = 0u64;
    // Bounded: a ring of DRAIN_BYTES holds fewer events than bytes.
    while n < DRAIN_BYTES as u64 && one_event(&t, n).is_ok() {
        n += 1;
    }
    (t, n)
}

struct DrainRep {
    bytes: u64,
    secs: f64,
    cpu_secs: f64,
    finish_secs: f64,
}

fn drain_once(dir: &Path, rep: usize, problems: &mut Vec<String>) -> Option<DrainRep> {
    let (t, stored) = filled_tracer();
    let out = dir.join(format!("filled-{rep}.dat"));
    let cpu0 = thread_cpu_secs();
    let t0 = Instant::now();
    let mut d = t.drain();
    if let Err(e) = d.spool_next_to(&out) {
        problems.push(format!("drain: spool_next_to {}: {e}", out.display()));
        return None;
    }
    loop {
        match d.poll() {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                problems.push(format!("drain: poll: {e}"));
                return None;
            }
        }
    }
    // What `record` does once the program ended: the partial last page.
    if let Err(e) = d.poll_all() {
        problems.push(format!("drain: poll_all: {e}"));
        return None;
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = thread_cpu_secs() - cpu0;
    let stats = d.stats();
    let f0 = Instant::now();
    let finished = d.finish_spooled(ExportFormat::TraceDat(TraceDatVersion::V6));
    let finish_secs = f0.elapsed().as_secs_f64();
    if let Err(e) = finished {
        problems.push(format!("drain: finish_spooled: {e}"));
        return None;
    }
    if stats.events != stored {
        problems.push(format!(
            "drain: {} events drained of {stored} stored",
            stats.events
        ));
    }
    check_ring(&t, 0, problems, "drain");
    empty_dir(dir);
    Some(DrainRep {
        bytes: stats.page_bytes,
        secs,
        cpu_secs,
        finish_secs,
    })
}

struct LiveRep {
    bytes: u64,
    wall_secs: f64,
    cpu_secs: f64,
    lost_pct: f64,
}

/// A writer thread writes for `time` while this thread polls a drain
/// without pause (no sleep between polls: the drain's own cost is what is
/// measured), then drains the rest.
fn live_once(
    dir: &Path,
    rep: usize,
    time: Duration,
    problems: &mut Vec<String>,
) -> Option<LiveRep> {
    let t = crate::pc_tracer(2, LIVE_BYTES, Clock::counter());
    let out = dir.join(format!("live-{rep}.dat"));
    let mut d = t.drain();
    if let Err(e) = d.spool_next_to(&out) {
        problems.push(format!("live drain: spool_next_to {}: {e}", out.display()));
        return None;
    }
    let done = AtomicBool::new(false);
    let mut failed = None;
    let (cpu_secs, wall_secs, attempted) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0u64;
            while !done.load(Relaxed) {
                let _ = one_event(&t, n);
                n += 1;
            }
            n
        });
        let cpu0 = thread_cpu_secs();
        let t0 = Instant::now();
        while t0.elapsed() < time {
            if let Err(e) = d.poll() {
                failed = Some(e.to_string());
                break;
            }
        }
        done.store(true, Relaxed);
        let attempted = writer.join().unwrap_or(0);
        if failed.is_none() {
            if let Err(e) = d.poll_all() {
                failed = Some(e.to_string());
            }
        }
        (
            thread_cpu_secs() - cpu0,
            t0.elapsed().as_secs_f64(),
            attempted,
        )
    });
    if let Some(e) = failed {
        problems.push(format!("live drain: {e}"));
        return None;
    }
    let stats = d.stats();
    drop(d);
    empty_dir(dir);
    let mut dropped = 0;
    for r in 0..t.max_contexts() {
        check_ring(&t, r, problems, "live drain");
        dropped += t.ring_stats(r).map(|s| s.dropped).unwrap_or(0);
    }
    if stats.events + dropped != attempted {
        problems.push(format!(
            "live drain: {} drained + {dropped} dropped != {attempted} written",
            stats.events
        ));
    }
    Some(LiveRep {
        bytes: stats.page_bytes,
        wall_secs,
        cpu_secs,
        lost_pct: 100.0 * dropped as f64 / attempted.max(1) as f64,
    })
}

/// Runs the drain section.
pub fn run_drain(settings: &Settings) -> DrainReport {
    let (dir, dir_name) = spool_dir();
    let mut problems = Vec::new();
    let reps = settings.reps.max(5);
    let mut filled = Vec::new();
    // One discarded warm-up, as `Summary::measure` does.
    for rep in 0..=reps {
        if let Some(r) = drain_once(dir.path(), rep, &mut problems) {
            if rep > 0 {
                filled.push(r);
            }
        }
    }
    let mut live = Vec::new();
    let time = settings.thread_rep_time.max(Duration::from_millis(100));
    for rep in 0..=reps {
        if let Some(r) = live_once(dir.path(), rep, time, &mut problems) {
            if rep > 0 {
                live.push(r);
            }
        }
    }
    let sum = |v: Vec<f64>| Summary::of(&v).unwrap_or_else(Summary::nan);
    // GB/s of each repetition's (bytes, seconds).
    let rate = |v: Vec<(u64, f64)>| sum(v.into_iter().map(|(b, s)| b as f64 / s / 1e9).collect());
    DrainReport {
        dir: dir_name,
        bytes: sum(filled.iter().map(|r| r.bytes as f64).collect()),
        wall: rate(filled.iter().map(|r| (r.bytes, r.secs)).collect()),
        cpu: rate(filled.iter().map(|r| (r.bytes, r.cpu_secs)).collect()),
        finish: rate(filled.iter().map(|r| (r.bytes, r.finish_secs)).collect()),
        live_cpu: rate(live.iter().map(|r| (r.bytes, r.cpu_secs)).collect()),
        live_wall: rate(live.iter().map(|r| (r.bytes, r.wall_secs)).collect()),
        live_lost_pct: sum(live.iter().map(|r| r.lost_pct).collect()),
        live_ms: time.as_millis(),
        problems,
    }
}

/// A tracer shaped as a default session (64 contexts, `mono` clock) whose
/// first `PIPE_THREADS` contexts hold `PIPE_EVENTS` events each, of the
/// mix of [`mixed_event`].
fn pipe_tracer() -> Tracer {
    let t = crate::pc_tracer(64, 16 << 20, Clock::mono());
    std::thread::scope(|s| {
        for _ in 0..PIPE_THREADS {
            s.spawn(|| {
                for i in 0..PIPE_EVENTS {
                    let _ = mixed_event(&t, i);
                }
            });
        }
    });
    t
}

struct PipeRep {
    events: u64,
    text_bytes: u64,
    secs: f64,
    cpu_secs: f64,
}

/// Bytes of text `ringtrace pipe` collects before each write.
const PIPE_BATCH: usize = 64 * 1024;

/// One repetition: a freshly filled tracer, all of it formatted into
/// `sink` (created before the timed section) as `ringtrace pipe` does.
fn pipe_once(sink: &Path, problems: &mut Vec<String>) -> Option<PipeRep> {
    let t = pipe_tracer();
    let written: u64 = (0..t.max_contexts())
        .filter_map(|r| t.ring_stats(r).ok())
        .map(|s| s.written - s.dropped)
        .sum();
    let mut out = match std::fs::File::create(sink) {
        Ok(f) => f,
        Err(e) => {
            problems.push(format!("pipe: creating {}: {e}", sink.display()));
            return None;
        }
    };
    let cpu0 = thread_cpu_secs();
    let t0 = Instant::now();
    let mut pipe = t.pipe();
    let mut events = 0u64;
    let mut text_bytes = 0u64;
    let mut text = String::with_capacity(PIPE_BATCH + 4096);
    loop {
        // What `Pipe::read_lines_into` does, written out so that this
        // section also runs against builds without it.
        text.clear();
        let mut empty = false;
        while text.len() < PIPE_BATCH {
            match pipe.next_line_into(&mut text) {
                Ok(true) => events += 1,
                Ok(false) => {
                    empty = true;
                    break;
                }
                Err(e) => {
                    problems.push(format!("pipe: reading: {e}"));
                    return None;
                }
            }
        }
        if let Err(e) = out.write_all(text.as_bytes()) {
            problems.push(format!("pipe: writing {}: {e}", sink.display()));
            return None;
        }
        text_bytes += text.len() as u64;
        if empty {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    let cpu_secs = thread_cpu_secs() - cpu0;
    drop(pipe);
    if events != written {
        problems.push(format!("pipe: {events} lines for {written} events stored"));
    }
    let on_disk = std::fs::metadata(sink).map(|m| m.len()).unwrap_or(0);
    if sink != Path::new("/dev/null") && on_disk != text_bytes {
        problems.push(format!(
            "pipe: {} holds {on_disk} bytes of {text_bytes} written",
            sink.display()
        ));
    }
    for r in 0..t.max_contexts() {
        check_ring(&t, r, problems, "pipe");
    }
    Some(PipeRep {
        events,
        text_bytes,
        secs,
        cpu_secs,
    })
}

/// Runs the pipe section: repetitions alternate between the two sinks.
pub fn run_pipe(settings: &Settings) -> PipeReport {
    let (dir, dir_name) = spool_dir();
    let file = dir.path().join("pipe.txt");
    let mut problems = Vec::new();
    let reps = settings.reps.max(5);
    let mut null = Vec::new();
    let mut to_file = Vec::new();
    // One discarded warm-up of each.
    for rep in 0..=reps {
        if let Some(r) = pipe_once(Path::new("/dev/null"), &mut problems) {
            if rep > 0 {
                null.push(r);
            }
        }
        if let Some(r) = pipe_once(&file, &mut problems) {
            if rep > 0 {
                to_file.push(r);
            }
        }
        let _ = std::fs::remove_file(&file);
    }
    let sum = |v: Vec<f64>| Summary::of(&v).unwrap_or_else(Summary::nan);
    let eps = |runs: &[PipeRep], cpu: bool| {
        sum(runs
            .iter()
            .map(|r| r.events as f64 / if cpu { r.cpu_secs } else { r.secs })
            .collect())
    };
    PipeReport {
        events: null.first().map_or(0, |r| r.events),
        text_bytes: sum(null.iter().map(|r| r.text_bytes as f64).collect()),
        dir: dir_name,
        wall: eps(&null, false),
        cpu: eps(&null, true),
        file_wall: eps(&to_file, false),
        file_cpu: eps(&to_file, true),
        problems,
    }
}

/// `met` or `missed` against a target.
pub fn verdict(median: f64, target: f64) -> &'static str {
    if median.is_nan() {
        "not measured"
    } else if median >= target {
        "met"
    } else {
        "missed"
    }
}

/// Empties `dir` (the spool files and outputs of one repetition), so that
/// repetitions do not fill the tmpfs.
fn empty_dir(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
