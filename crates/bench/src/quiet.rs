//! A reader that does not disturb the writer (`--only quiet`): `trace!`
//! measured NanoLog's way, with and without a reader draining the ring,
//! every pair in the same run.
//!
//! - **back to back**: one thread calls `trace!` with two u64 and the
//!   `tsc` clock without pause (batches of 1024 timed with `Instant`, the
//!   median batch per repetition), on a tracer of one 1 MiB context in
//!   overwrite mode; once with no reader, once while a second thread runs
//!   a [`ringtrace::Drain`] that polls without pause and spools whole
//!   pages to a file on tmpfs, as `ringtrace record` does. Beside them,
//!   the floor: the ring's `write` of 8 bytes plus one `rdtsc`, no reader.
//! - **spaced calls** (NanoLog's method): `rdtsc` before and after each
//!   call, a fixed pause between calls (the module's constants); median and
//!   p99.9 of the per-call latency, with and without the reader.
//! - **drops**: producer/consumer mode, 1 MiB per context, one writer
//!   calling `trace!` back to back and the reader draining to tmpfs: the
//!   rate the reader delivers and the share of events the full ring
//!   dropped. Every repetition checks the ring's accounting identity.
//!
//! Ratios are taken per repetition (the two figures of a pair ran one
//! after the other) and their median is reported.

use crate::clock::tsc;
use crate::sinks::{bench_ring, ns_per_event, RingWriteClocked};
use crate::stats::Summary;
use crate::Settings;
use ringtrace::clock::Clock;
use ringtrace::{Mode, Tracer};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Bytes per context of every tracer here (the 1 MiB).
pub const CONTEXT_BYTES: usize = 1 << 20;
/// Calls per repetition of the spaced figures (NanoLog's count).
const SPACED_CALLS: usize = 100_000;
/// Pause between spaced calls, in ns (NanoLog's).
const SPACED_GAP_NS: f64 = 100.0;

/// One figure measured without and with the reader.
#[derive(Debug, Clone)]
pub struct Pair {
    /// What is measured.
    pub name: &'static str,
    /// Per repetition, no reader.
    pub without: Vec<f64>,
    /// Per repetition, with the reader draining.
    pub with: Vec<f64>,
}

impl Pair {
    fn new(name: &'static str) -> Pair {
        Pair {
            name,
            without: Vec::new(),
            with: Vec::new(),
        }
    }

    /// Median over repetitions of with ÷ without.
    pub fn ratio(&self) -> Summary {
        let r: Vec<f64> = self
            .with
            .iter()
            .zip(&self.without)
            .map(|(w, wo)| w / wo)
            .collect();
        Summary::of(&r).unwrap_or_else(Summary::nan)
    }
}

/// The section's figures.
#[derive(Debug, Clone)]
pub struct QuietReport {
    /// Where the spool files went.
    pub dir: String,
    /// ns per back-to-back `trace!`; ns per spaced call, median and p99.9.
    pub pairs: Vec<Pair>,
    /// ns per `write` 8 B + `rdtsc`, no reader, per repetition.
    pub floor: Vec<f64>,
    /// Producer/consumer: ns per back-to-back `trace!` with the reader.
    pub pc_cost: Vec<f64>,
    /// Producer/consumer: events per second the reader delivered.
    pub pc_rate: Vec<f64>,
    /// Producer/consumer: percent of the calls dropped (ring full).
    pub pc_dropped_pct: Vec<f64>,
    /// Overwrite mode with the reader: percent of events overwritten
    /// before the reader took them.
    pub overrun_pct: Vec<f64>,
    /// Accounting mismatches and errors.
    pub problems: Vec<String>,
}

/// A one-context `tsc` tracer of [`CONTEXT_BYTES`] in `mode`.
fn tracer(mode: Mode) -> Result<Tracer, String> {
    let clock = Clock::tsc().map_err(|e| format!("no tsc clock: {e}"))?;
    ringtrace::TracerConfig::new()
        .max_contexts(1)
        .bytes_per_context(CONTEXT_BYTES)
        .mode(mode)
        .clock(clock)
        .build()
        .map_err(|e| format!("tracer: {e}"))
}

/// The record every figure here times: `trace!` with two u64.
#[inline(always)]
fn one(t: &Tracer, i: u64) {
    ringtrace::trace!(tracer: t, "a=%llu b=%llu", black_box(i), black_box(i ^ 0x5555));
}

/// Back-to-back calls for `budget`: the median over batches of 1024 of
/// ns per call, and the calls made.
fn back_to_back(t: &Tracer, budget: Duration) -> (f64, u64) {
    let mut batches = Vec::new();
    let mut i = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        let b = Instant::now();
        for _ in 0..1024 {
            i += 1;
            one(t, i);
        }
        batches.push(b.elapsed().as_nanos() as f64 / 1024.0);
    }
    let ns = Summary::of(&batches).map_or(f64::NAN, |s| s.median);
    (ns, i)
}

/// TSC ticks per ns, measured against `Instant` over 20 ms.
fn ticks_per_ns() -> f64 {
    let (t0, i0) = (tsc(), Instant::now());
    std::thread::sleep(Duration::from_millis(20));
    (tsc() - t0) as f64 / i0.elapsed().as_nanos() as f64
}

/// NanoLog's method: `rdtsc` around each call, `gap` ticks from one
/// call's start to the next; the median and p99.9 in ns.
fn spaced(t: &Tracer, tpn: f64) -> (f64, f64) {
    let gap = (SPACED_GAP_NS * tpn) as u64;
    let mut lat = Vec::with_capacity(SPACED_CALLS);
    for i in 0..SPACED_CALLS as u64 {
        let a = tsc();
        one(t, i);
        let b = tsc();
        lat.push(b.wrapping_sub(a));
        while tsc().wrapping_sub(a) < gap {
            std::hint::spin_loop();
        }
    }
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / tpn;
    (at(0.5), at(0.999))
}

/// What the reader thread saw.
struct Drained {
    events: u64,
    error: Option<String>,
}

/// Runs `work` on this thread while another drains `t` to `file`
/// (polling without pause, then the rest once `work` is done).
fn with_reader<R>(t: &Tracer, file: &Path, work: impl FnOnce() -> R) -> (R, Drained) {
    let stop = AtomicBool::new(false);
    let ready = AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut d = t.drain();
            let mut error = d.spool_next_to(file).err().map(|e| e.to_string());
            ready.store(true, Relaxed);
            while error.is_none() && !stop.load(Relaxed) {
                error = d.poll().err().map(|e| e.to_string());
            }
            if error.is_none() {
                error = d.poll_all().err().map(|e| e.to_string());
            }
            Drained {
                events: d.stats().events,
                error,
            }
        });
        while !ready.load(Relaxed) {
            std::hint::spin_loop();
        }
        let r = work();
        stop.store(true, Relaxed);
        let drained = reader.join().unwrap_or(Drained {
            events: 0,
            error: Some("the reader thread panicked".into()),
        });
        (r, drained)
    })
}

/// Checks ring 0's accounting identity; returns its stats.
fn check(t: &Tracer, what: &str, problems: &mut Vec<String>) -> Option<ringtrace::ring::RingStats> {
    match t.ring_stats(0) {
        Ok(s) => {
            let sum = s.read + s.overrun + s.dropped + s.commit_overrun + s.entries;
            if s.written != sum {
                problems.push(format!(
                    "{what}: written {} != read {} + overrun {} + dropped {} + commit_overrun {} + entries {}",
                    s.written, s.read, s.overrun, s.dropped, s.commit_overrun, s.entries
                ));
            }
            Some(s)
        }
        Err(e) => {
            problems.push(format!("{what}: stats: {e}"));
            None
        }
    }
}

/// The three tracers and the floor's ring, alive for the whole section.
struct Bench {
    plain: Tracer,
    read: Tracer,
    pc: Tracer,
    tpn: f64,
}

/// One repetition of every figure, in `out`'s order.
fn one_round(b: &Bench, s: &Settings, dir: &Path, rep: usize, out: &mut QuietReport) {
    let floor_ring = bench_ring(Mode::Overwrite);
    let mut floor = RingWriteClocked::new(floor_ring.writer(0).expect("fresh ring"), tsc);
    out.floor.push(ns_per_event::<8, _>(&mut floor, s.rep_time));
    let file = dir.join(format!("quiet-{rep}.dat"));
    // Back to back, overwrite mode.
    out.pairs[0]
        .without
        .push(back_to_back(&b.plain, s.rep_time).0);
    let before = check(&b.read, "overwrite", &mut out.problems);
    let ((ns, _), d) = with_reader(&b.read, &file, || back_to_back(&b.read, s.rep_time));
    out.pairs[0].with.push(ns);
    let after = check(&b.read, "overwrite", &mut out.problems);
    if let (Some(a), Some(z)) = (before, after) {
        let lost = z.overrun - a.overrun;
        let total = lost + d.events;
        out.overrun_pct
            .push(100.0 * lost as f64 / total.max(1) as f64);
    }
    note_error(d.error, "overwrite reader", &mut out.problems);
    empty(dir);
    // Spaced calls.
    let (med, p999) = spaced(&b.plain, b.tpn);
    out.pairs[1].without.push(med);
    out.pairs[2].without.push(p999);
    let ((med, p999), d) = with_reader(&b.read, &file, || spaced(&b.read, b.tpn));
    out.pairs[1].with.push(med);
    out.pairs[2].with.push(p999);
    note_error(d.error, "spaced reader", &mut out.problems);
    empty(dir);
    // Producer/consumer: drops and the delivered rate.
    let before = check(&b.pc, "producer/consumer", &mut out.problems);
    let t0 = Instant::now();
    let ((ns, calls), d) = with_reader(&b.pc, &file, || back_to_back(&b.pc, s.thread_rep_time));
    let secs = t0.elapsed().as_secs_f64();
    note_error(d.error, "producer/consumer reader", &mut out.problems);
    let after = check(&b.pc, "producer/consumer", &mut out.problems);
    if let (Some(a), Some(z)) = (before, after) {
        let dropped = z.dropped - a.dropped;
        if d.events + dropped != calls || z.entries != 0 {
            out.problems.push(format!(
                "producer/consumer: {} drained + {dropped} dropped != {calls} written ({} left)",
                d.events, z.entries
            ));
        }
        out.pc_dropped_pct
            .push(100.0 * dropped as f64 / calls.max(1) as f64);
    }
    out.pc_cost.push(ns);
    out.pc_rate.push(d.events as f64 / secs);
    empty(dir);
}

fn note_error(e: Option<String>, what: &str, problems: &mut Vec<String>) {
    if let Some(e) = e {
        problems.push(format!("{what}: {e}"));
    }
}

/// Removes the spool files of one repetition.
fn empty(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Runs the section.
pub fn run(s: &Settings) -> Result<QuietReport, String> {
    let dir = tempfile::Builder::new()
        .prefix("ringtrace-bench-quiet-")
        .tempdir_in("/dev/shm")
        .map_err(|e| format!("/dev/shm (tmpfs) unusable: {e}"))?;
    let b = Bench {
        plain: tracer(Mode::Overwrite)?,
        read: tracer(Mode::Overwrite)?,
        pc: tracer(Mode::ProducerConsumer)?,
        tpn: ticks_per_ns(),
    };
    let mut out = QuietReport {
        dir: "/dev/shm (tmpfs)".into(),
        pairs: vec![
            Pair::new("back to back, ns per call"),
            Pair::new("spaced calls, median ns"),
            Pair::new("spaced calls, p99.9 ns"),
        ],
        floor: Vec::new(),
        pc_cost: Vec::new(),
        pc_rate: Vec::new(),
        pc_dropped_pct: Vec::new(),
        overrun_pct: Vec::new(),
        problems: Vec::new(),
    };
    // One warm-up round, then the repetitions.
    one_round(&b, s, dir.path(), 0, &mut out);
    let problems = std::mem::take(&mut out.problems);
    out = QuietReport {
        problems,
        pairs: out.pairs.iter().map(|p| Pair::new(p.name)).collect(),
        floor: Vec::new(),
        pc_cost: Vec::new(),
        pc_rate: Vec::new(),
        pc_dropped_pct: Vec::new(),
        overrun_pct: Vec::new(),
        ..out
    };
    for rep in 1..=s.reps {
        one_round(&b, s, dir.path(), rep, &mut out);
    }
    Ok(out)
}

fn summary(v: &[f64]) -> Summary {
    Summary::of(v).unwrap_or_else(Summary::nan)
}

/// Median over repetitions of `a[i] ÷ b[i]`.
fn paired(a: &[f64], b: &[f64]) -> Summary {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    summary(&r)
}

impl QuietReport {
    /// The section as markdown.
    pub fn markdown(&self) -> String {
        use std::fmt::Write as _;
        let mut o = String::new();
        let _ = writeln!(o, "\n## A reader that does not disturb the writer\n");
        let _ = writeln!(
            o,
            "`trace!(tracer: t, \"a=%llu b=%llu\", i, j)`, `tsc` clock, one context of 1 MiB. The reader is a `Drain` on its own thread polling without pause and spooling whole pages to {}, as `ringtrace record` does. Back to back: overwrite mode, batches of 1024 calls. Spaced: NanoLog's method, `rdtsc` around each call, 100 ns between calls, {SPACED_CALLS} calls per repetition. Ratios are medians of per-repetition ratios (both figures of a pair ran one after the other). Targets (issue 26): with ÷ without at most 1.10× back to back and 1.20× at p99.9; `trace!` ÷ floor at most 1.10× without a reader, 1.20× with one; no drops.\n",
            self.dir
        );
        let _ = writeln!(
            o,
            "| figure | no reader | with the reader | with ÷ without |"
        );
        let _ = writeln!(o, "| --- | --- | --- | --- |");
        for p in &self.pairs {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                p.name,
                summary(&p.without),
                summary(&p.with),
                p.ratio()
            );
        }
        let b2b = &self.pairs[0];
        let _ = writeln!(
            o,
            "| floor: ring `write` 8 B + `rdtsc`, ns | {} | | |",
            summary(&self.floor)
        );
        let _ = writeln!(
            o,
            "| back to back ÷ floor | {} | {} | |",
            paired(&b2b.without, &self.floor),
            paired(&b2b.with, &self.floor)
        );
        let _ = writeln!(
            o,
            "| overwrite mode: % of events overwritten before the reader took them | | {} | |",
            summary(&self.overrun_pct)
        );
        let _ = writeln!(
            o,
            "\nProducer/consumer mode, 1 MiB, one writer back to back for the threaded repetition time, the reader draining:\n"
        );
        let _ = writeln!(o, "| figure | value |\n| --- | --- |");
        let _ = writeln!(o, "| writer, ns per call | {} |", summary(&self.pc_cost));
        let _ = writeln!(
            o,
            "| writer ÷ back to back with no reader | {} |",
            paired(&self.pc_cost, &b2b.without)
        );
        let _ = writeln!(
            o,
            "| events delivered per second | {} |",
            summary(&self.pc_rate)
        );
        let _ = writeln!(
            o,
            "| % of calls dropped (ring full) | {} |",
            summary(&self.pc_dropped_pct)
        );
        for p in &self.problems {
            let _ = writeln!(o, "\n**problem:** {p}");
        }
        o
    }
}
