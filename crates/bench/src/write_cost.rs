//! Single-thread write cost, ns per event, every peer in the same run.

use crate::clock;
use crate::lttng::Lttng;
use crate::record::Record;
use crate::sinks::{
    bench_ring, ns_per_event, ArrayQueueSink, Memcpy, MutexDeque, RingReserve, RingWrite,
    RingWriteClocked, RingbufBytes, RingbufTyped, RtrbBytes, Sink, SyncChannel,
};
use crate::stats::Summary;
use crate::Settings;
use ringtrace_ring::Mode;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// One contender's figures, one per payload size (8, 32, 128 bytes).
#[derive(Debug, Clone)]
pub struct Row {
    /// Who and how.
    pub name: String,
    /// ns per event for each payload size; `None` when not measured.
    pub cost: [Option<Summary>; 3],
    /// Per-repetition values for each payload size, in round order (round
    /// `i` of every row ran back to back), for paired ratios.
    pub raw: [Vec<f64>; 3],
}

/// A figure that does not depend on the payload size.
#[derive(Debug, Clone)]
pub struct Single {
    /// Who and how.
    pub name: String,
    /// ns per event (or per operation), or why it was not measured.
    pub cost: Result<Summary, String>,
    /// Remarks (lines lost, clock read per event, ...).
    pub note: String,
    /// Per-repetition values in round order.
    pub raw: Vec<f64>,
}

/// The write-cost tables.
#[derive(Debug, Clone)]
pub struct WriteCost {
    /// Record writers; the first row is ringtrace `write`, the reference.
    pub rows: Vec<Row>,
    /// Tracers, each with its own clock read per event.
    pub tracers: Vec<Single>,
    /// Floors: memcpy is in `rows`; these are the atomic and the clocks.
    pub floors: Vec<Single>,
    /// Problems seen (write errors where none are expected).
    pub problems: Vec<String>,
}

/// Times a closure called in batches of 1024; the median over batches of
/// ns per call (see [`crate::sinks::ns_per_event`]).
fn op_ns(budget: std::time::Duration, mut op: impl FnMut()) -> f64 {
    let mut batches = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget {
        let t = Instant::now();
        for _ in 0..1024 {
            op();
        }
        batches.push(t.elapsed().as_nanos() as f64 / 1024.0);
    }
    Summary::of(&batches).map_or(f64::NAN, |s| s.median)
}

/// A contender: one call measures one repetition, in ns per event.
type Contender<'a> = (&'static str, Box<dyn FnMut() -> f64 + 'a>);

/// Runs the contenders round-robin, repetition by repetition, so that the
/// machine's load drifts over all of them alike; one warm-up round first.
fn interleaved(s: &Settings, contenders: &mut [Contender<'_>]) -> Vec<Vec<f64>> {
    let mut values = vec![Vec::with_capacity(s.reps); contenders.len()];
    for rep in 0..=s.reps {
        for (i, (_, f)) in contenders.iter_mut().enumerate() {
            let v = f();
            if rep > 0 {
                values[i].push(v);
            }
        }
    }
    values
}

fn summary(raw: &[f64]) -> Summary {
    Summary::of(raw).unwrap_or_else(Summary::nan)
}

fn sink<'a, const N: usize, S: Sink<N> + 'a>(
    s: &Settings,
    mut sink: S,
) -> Box<dyn FnMut() -> f64 + 'a> {
    let budget = s.rep_time;
    Box::new(move || ns_per_event::<N, S>(&mut sink, budget))
}

/// Figures for payload size `N`, in the row order of [`run`].
fn per_size<const N: usize>(
    s: &Settings,
    lttng: Option<&Lttng>,
    problems: &mut Vec<String>,
) -> Vec<(&'static str, Vec<f64>)> {
    let ring_w = bench_ring(Mode::Overwrite);
    let ring_r = bench_ring(Mode::Overwrite);
    let errors = std::cell::Cell::new(0u64);
    let mut w = RingWrite::new(ring_w.writer(0).expect("fresh ring"));
    let mut r = RingReserve::new(ring_r.writer(0).expect("fresh ring"));
    let budget = s.rep_time;
    let mut contenders: Vec<Contender<'_>> = vec![
        (
            "ringtrace `write`",
            Box::new(|| {
                let v = ns_per_event::<N, _>(&mut w, budget);
                errors.set(errors.get() + std::mem::take(&mut w.errors));
                v
            }),
        ),
        (
            "ringtrace `reserve`/`commit`",
            Box::new(|| {
                let v = ns_per_event::<N, _>(&mut r, budget);
                errors.set(errors.get() + std::mem::take(&mut r.errors));
                v
            }),
        ),
        (
            "rtrb `RingBuffer<u8>`, chunk per record",
            sink::<N, _>(s, RtrbBytes::new(Record::<N>::BYTES)),
        ),
        (
            "ringbuf `HeapRb<u8>`, `push_slice`",
            sink::<N, _>(s, RingbufBytes::new(Record::<N>::BYTES)),
        ),
        (
            "ringbuf `HeapRb<Record>`, `try_push`",
            sink::<N, _>(s, RingbufTyped::<N>::new()),
        ),
        (
            "crossbeam `ArrayQueue<Record>`, `force_push`",
            sink::<N, _>(s, ArrayQueueSink::<N>::new()),
        ),
        (
            "std `mpsc::sync_channel`, `try_send`",
            sink::<N, _>(s, SyncChannel::<N>::new()),
        ),
        (
            "`Mutex<VecDeque<Record>>`, `push_back`",
            sink::<N, _>(s, MutexDeque::<N>::new()),
        ),
    ];
    let lttng_sink = lttng.and_then(|l| l.bytes_sink::<N>());
    let has_lttng = lttng_sink.is_some();
    if let Some(l) = lttng_sink {
        contenders.push((LTTNG_BYTES, sink::<N, _>(s, l)));
    }
    contenders.push((
        "floor: `memcpy` of the record",
        sink::<N, _>(s, Memcpy::new()),
    ));
    let names: Vec<&'static str> = contenders.iter().map(|c| c.0).collect();
    let figures = interleaved(s, &mut contenders);
    drop(contenders);
    if errors.get() > 0 {
        problems.push(format!(
            "ringtrace {N} B: {} write errors in overwrite mode",
            errors.get()
        ));
    }
    let mut out: Vec<(&'static str, Vec<f64>)> = names.into_iter().zip(figures).collect();
    if !has_lttng {
        let at = out.len() - 1;
        out.insert(at, (LTTNG_BYTES, Vec::new()));
    }
    out
}

const LTTNG_BYTES: &str = "LTTng-UST tracepoint, byte array (own clock read)";

const TRACING: &str =
    "`tracing` `info!(v)` (u64 field), fmt layer, `tracing-appender` non-blocking file";
const LTTNG_U64: &str = "LTTng-UST tracepoint, one u64 field";
/// The `trace!` rows (the first is the reference of the tracer table).
pub const TRACE_TSC: &str = "ringtrace `trace!`, two u64, `tsc` clock";
const TRACE_MONO: &str = "ringtrace `trace!`, two u64, `mono` clock";

/// A one-context tracer in overwrite mode with 64 KiB, as the rings above.
fn tracer(
    clock: Result<ringtrace::clock::Clock, ringtrace::clock::ClockError>,
) -> Result<ringtrace::Tracer, String> {
    let clock = clock.map_err(|e| format!("no clock: {e}"))?;
    ringtrace::TracerConfig::new()
        .max_contexts(1)
        .bytes_per_context(64 << 10)
        .mode(Mode::Overwrite)
        .clock(clock)
        .build()
        .map_err(|e| format!("tracer: {e}"))
}

/// A figure that could not be measured, and why.
fn failed(name: &str, why: String) -> Single {
    Single {
        name: name.into(),
        cost: Err(why),
        note: String::new(),
        raw: Vec::new(),
    }
}

/// The `trace!` rows, one per tracer that could be built; the others'
/// reasons go to `errs`.
fn push_trace<'a>(
    budget: std::time::Duration,
    tracers: [(&'static str, &'a Result<ringtrace::Tracer, String>); 2],
    contenders: &mut Vec<Contender<'a>>,
    notes: &mut Vec<String>,
    errs: &mut Vec<(&'static str, String)>,
) {
    for (name, t) in tracers {
        match t {
            Ok(t) => {
                let mut i = 0u64;
                contenders.push((
                    name,
                    Box::new(move || {
                        op_ns(budget, || {
                            i += 1;
                            ringtrace::trace!(tracer: t, "a=%llu b=%llu", black_box(i), black_box(i ^ 0x5555));
                        })
                    }),
                ));
                notes.push(format!(
                    "`trace!(tracer: t, \"a=%llu b=%llu\", i, j)`: binary printk, {} clock",
                    t.clock().name()
                ));
            }
            Err(e) => errs.push((name, e.clone())),
        }
    }
}

/// What the `tracing` row keeps alive while it is measured: the default
/// subscriber's guard, the appender's worker guard and its drop counter.
type TracingState = (
    tracing::subscriber::DefaultGuard,
    tracing_appender::non_blocking::WorkerGuard,
    tracing_appender::non_blocking::ErrorCounter,
);

/// The `tracing` row: the subscriber is this thread's default while we
/// measure, writing to `bench.log` in `dir`.
fn push_tracing(
    budget: std::time::Duration,
    dir: &std::path::Path,
    contenders: &mut Vec<Contender<'_>>,
    notes: &mut Vec<String>,
) -> TracingState {
    let appender = tracing_appender::rolling::never(dir, "bench.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let dropped = writer.error_counter();
    let subscriber = tracing_subscriber::fmt().with_writer(writer).finish();
    let default = tracing::subscriber::set_default(subscriber);
    contenders.push((
        TRACING,
        Box::new(move || {
            op_ns(budget, || {
                let v = black_box(42u64);
                tracing::info!(v);
            })
        }),
    ));
    notes.push(String::new());
    (default, guard, dropped)
}

/// Ends the `tracing` row's subscriber (flushing its appender) and notes
/// what the appender dropped and wrote.
fn finish_tracing(state: TracingState, dir: &std::path::Path, out: &mut [Single]) {
    let (default, guard, dropped) = state;
    drop(default);
    drop(guard); // Flushes and joins the appender's worker.
    let bytes = std::fs::metadata(dir.join("bench.log")).map_or(0, |m| m.len());
    if let Some(t) = out.iter_mut().find(|t| t.name == TRACING) {
        t.note = format!(
            "formats on the calling thread and reads the wall clock; default lossy appender: {} lines dropped, {} MiB written",
            dropped.dropped_lines(),
            bytes >> 20
        );
    }
}

/// The LTTng-UST row, or why there is none.
fn push_lttng<'a>(
    s: &Settings,
    lttng: &'a Result<Lttng, String>,
    contenders: &mut Vec<Contender<'a>>,
    notes: &mut Vec<String>,
) -> Option<String> {
    match lttng {
        Ok(l) => match l.u64_sink() {
            Some(sink) => {
                contenders.push((LTTNG_U64, self::sink::<8, _>(s, sink)));
                notes.push(l.describe());
                None
            }
            None => Some("tracepoint not enabled".to_string()),
        },
        Err(why) => Some(why.clone()),
    }
}

/// The tracers, interleaved: ringtrace plus a clock read, `tracing` with the
/// fmt layer and a non-blocking file appender, LTTng-UST.
fn tracers(s: &Settings, lttng: &Result<Lttng, String>) -> Vec<Single> {
    let budget = s.rep_time;
    let ring_tsc = bench_ring(Mode::Overwrite);
    let ring_mono = bench_ring(Mode::Overwrite);
    let mut tsc_sink = RingWriteClocked::new(ring_tsc.writer(0).expect("fresh ring"), clock::tsc);
    let start = Instant::now();
    let mut mono_sink =
        RingWriteClocked::new(ring_mono.writer(0).expect("fresh ring"), move || {
            start.elapsed().as_nanos() as u64
        });
    let trace_tsc = tracer(ringtrace::clock::Clock::tsc());
    let trace_mono = tracer(Ok(ringtrace::clock::Clock::mono()));
    let mut contenders: Vec<Contender<'_>> = Vec::new();
    let mut notes = Vec::new();
    let mut trace_errs = Vec::new();
    let trace_rows = [(TRACE_TSC, &trace_tsc), (TRACE_MONO, &trace_mono)];
    push_trace(
        budget,
        trace_rows,
        &mut contenders,
        &mut notes,
        &mut trace_errs,
    );
    contenders.extend::<[Contender<'_>; 2]>([
        (
            "ringtrace `write` 8 B + `rdtsc` per event",
            Box::new(|| ns_per_event::<8, _>(&mut tsc_sink, budget)),
        ),
        (
            "ringtrace `write` 8 B + `Instant::now()` per event",
            Box::new(|| ns_per_event::<8, _>(&mut mono_sink, budget)),
        ),
    ]);
    notes
        .push("the ring alone, one 8-byte record + one `rdtsc`: the floor of `trace!`".to_string());
    notes.push("the same with `Instant::now()`".to_string());
    let dir = tempfile::tempdir().map_err(|e| format!("no temp dir: {e}"));
    let tracing_state = dir
        .as_ref()
        .ok()
        .map(|d| push_tracing(budget, d.path(), &mut contenders, &mut notes));
    let lttng_err = push_lttng(s, lttng, &mut contenders, &mut notes);
    let figures = interleaved(s, &mut contenders);
    let names: Vec<&'static str> = contenders.iter().map(|c| c.0).collect();
    drop(contenders);
    let mut out: Vec<Single> = names
        .into_iter()
        .zip(figures)
        .zip(notes)
        .map(|((name, raw), note)| Single {
            name: name.into(),
            cost: Ok(summary(&raw)),
            note,
            raw,
        })
        .collect();
    match (tracing_state, &dir) {
        (Some(state), Ok(d)) => finish_tracing(state, d.path(), &mut out),
        (_, Err(e)) => out.push(failed(TRACING, e.clone())),
        (None, Ok(_)) => {}
    }
    for (name, e) in trace_errs {
        out.insert(0, failed(name, e));
    }
    if let Some(e) = lttng_err {
        out.push(failed(LTTNG_U64, e));
    }
    out
}

/// Measures every write-cost figure.
pub fn run(s: &Settings, lttng: &Result<Lttng, String>) -> WriteCost {
    let mut problems = Vec::new();
    let l = lttng.as_ref().ok();
    let a = per_size::<8>(s, l, &mut problems);
    let b = per_size::<32>(s, l, &mut problems);
    let c = per_size::<128>(s, l, &mut problems);
    let rows = a
        .iter()
        .zip(&b)
        .zip(&c)
        .map(|((a, b), c)| {
            let raw = [a.1.clone(), b.1.clone(), c.1.clone()];
            Row {
                name: a.0.to_string(),
                cost: raw.clone().map(|r| Summary::of(&r)),
                raw,
            }
        })
        .collect();
    let tracers = tracers(s, lttng);

    let counter = AtomicU64::new(0);
    let budget = s.rep_time;
    let mut floors: Vec<Contender<'_>> = vec![
        (
            "uncontended `AtomicU64::fetch_add` (`lock xadd`)",
            Box::new(|| {
                op_ns(budget, || {
                    black_box(&counter).fetch_add(1, Relaxed);
                })
            }),
        ),
        (
            "`rdtsc` (`_rdtsc`)",
            Box::new(|| {
                op_ns(budget, || {
                    black_box(clock::tsc());
                })
            }),
        ),
        (
            "`Instant::now()` (vDSO `clock_gettime(CLOCK_MONOTONIC)`)",
            Box::new(|| {
                op_ns(budget, || {
                    black_box(Instant::now());
                })
            }),
        ),
    ];
    let figures = interleaved(s, &mut floors);
    let floors = floors
        .iter()
        .zip(figures)
        .map(|((name, _), raw)| Single {
            name: (*name).into(),
            cost: Ok(summary(&raw)),
            note: String::new(),
            raw,
        })
        .collect();
    WriteCost {
        rows,
        tracers,
        floors,
        problems,
    }
}
