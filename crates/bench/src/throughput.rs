//! One writer thread and one reader thread: events per second and events
//! lost, ringtrace in both modes against the SPSC queues.
//!
//! The writer writes 8-byte payloads (a sequence number; the time stamp is
//! the sequence number too, no clock) for a fixed time; the reader consumes
//! without pause and drains what is left once the writer stops: ringtrace
//! with `Consumer::consume_batch` (every committed event it finds, in one
//! call; one row with `consume`, one event per call), the peers one record
//! per call. Every peer has 256 KiB of storage. "Lossy" writers never wait: a
//! full queue drops (ringtrace producer/consumer, rtrb, ringbuf) or
//! overwrites (ringtrace overwrite, `ArrayQueue::force_push`). "Lossless"
//! writers spin until the record fits.

use crate::record::Record;
use crate::stats::Summary;
use crate::Settings;
use crossbeam_queue::ArrayQueue;
use ringbuf::traits::{Consumer as _, Producer as _, Split as _};
use ringtrace_ring::{Config, Mode, RingBuffer};
use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// Storage of every peer in this test.
pub const BYTES: usize = 256 * 1024;
const REC: usize = Record::<8>::BYTES;

/// One repetition.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rep {
    /// Distinct events the writer tried to store.
    pub attempted: u64,
    /// Events the reader consumed.
    pub read: u64,
    /// Seconds the writer ran.
    pub writer_secs: f64,
    /// Seconds from the writer's start to the reader's last event.
    pub total_secs: f64,
    /// CPUs the process obtained meanwhile (CPU time ÷ wall time): near 2
    /// when writer and reader really ran in parallel.
    pub cpus: f64,
}

/// Figures of one peer over all repetitions.
#[derive(Debug, Clone)]
pub struct Row {
    /// Who and how.
    pub name: String,
    /// Whether the writer waits for room (no loss).
    pub lossless: bool,
    /// Events consumed per second.
    pub delivered: Summary,
    /// Percent of attempted events lost.
    pub lost_pct: Summary,
    /// Events lost, median.
    pub lost: Summary,
    /// Writer's ns per attempted event while the reader polls.
    pub writer_ns: Summary,
    /// CPUs obtained (see [`Rep::cpus`]).
    pub cpus: Summary,
}

/// Throughput results.
#[derive(Debug, Clone)]
pub struct ThroughputReport {
    /// Rows, lossy ones first.
    pub rows: Vec<Row>,
    /// Accounting mismatches found in ringtrace's counters.
    pub problems: Vec<String>,
}

struct Ctl {
    start: Barrier,
    done: AtomicBool,
    run: Duration,
}

/// Runs `writer` and `reader` on two threads; the writer gets `one(i)` per
/// event until the time is up.
fn run_pair(
    run: Duration,
    writer: impl FnOnce(&dyn Fn() -> bool) -> u64 + Send,
    reader: impl FnOnce(&AtomicBool) -> u64 + Send,
) -> Rep {
    let ctl = Ctl {
        start: Barrier::new(2),
        done: AtomicBool::new(false),
        run,
    };
    let cpu0 = crate::machine::process_cpu_secs();
    let wall0 = Instant::now();
    let mut rep = std::thread::scope(|s| {
        let w = s.spawn(|| {
            ctl.start.wait();
            let start = Instant::now();
            let deadline = start + ctl.run;
            let n = writer(&|| Instant::now() >= deadline);
            let writer_secs = start.elapsed().as_secs_f64();
            // Release: pairs with the reader's Acquire load, so its final
            // drain sees every event written.
            ctl.done.store(true, Release);
            (n, start, writer_secs)
        });
        let r = s.spawn(|| {
            ctl.start.wait();
            let n = reader(&ctl.done);
            (n, Instant::now())
        });
        let (attempted, start, writer_secs) = w.join().expect("writer thread");
        let (read, end) = r.join().expect("reader thread");
        Rep {
            attempted,
            read,
            writer_secs,
            total_secs: end.duration_since(start).as_secs_f64(),
            cpus: 0.0,
        }
    });
    rep.cpus = (crate::machine::process_cpu_secs() - cpu0) / wall0.elapsed().as_secs_f64();
    rep
}

/// The writer's loop: calls `one(i)` with a check of the clock every 1024
/// events; returns the number of events.
#[inline(always)]
pub(crate) fn write_loop(time_up: &dyn Fn() -> bool, mut one: impl FnMut(u64)) -> u64 {
    let mut i = 0u64;
    loop {
        for _ in 0..1024 {
            one(i);
            i += 1;
        }
        if time_up() {
            return i;
        }
    }
}

/// Waits a little for the other thread: spins 64 times, then yields the
/// CPU (so that a writer and a reader sharing one CPU still make progress;
/// every peer waits the same way).
#[inline(always)]
fn pause(tries: &mut u32) {
    if *tries < 64 {
        spin_loop();
    } else {
        std::thread::yield_now();
    }
    *tries += 1;
}

/// One record's write: `try_push` tries once and says whether the record
/// went in. With `retry` a full buffer is waited out, backing off with
/// [`pause`], until it does; without, the record is given up (lost).
#[inline(always)]
fn push(retry: bool, mut try_push: impl FnMut() -> bool) {
    let mut tries = 0u32;
    while !try_push() && retry {
        pause(&mut tries);
    }
}

/// The writer's loop of the peers that store a [`Record`] (the event's
/// number as time stamp and payload): `try_push` tries once to store it,
/// as [`push`] says.
#[inline(always)]
fn write_records(
    time_up: &dyn Fn() -> bool,
    retry: bool,
    mut try_push: impl FnMut(&Record<8>) -> bool,
) -> u64 {
    write_loop(time_up, |i| {
        let rec = Record::<8>::new(i, &i.to_le_bytes());
        push(retry, || try_push(&rec));
    })
}

/// The reader's loop: `poll` returns how many records it consumed (the
/// peers one at a time, ringtrace's `consume_batch` all it finds).
#[inline(always)]
fn read_loop(done: &AtomicBool, mut poll: impl FnMut() -> u64) -> u64 {
    let mut n = 0u64;
    let mut tries = 0u32;
    loop {
        let finished = done.load(Acquire);
        let got = poll();
        if got > 0 {
            n += got;
            tries = 0;
        } else if finished {
            return n;
        } else {
            pause(&mut tries);
        }
    }
}

/// A batch below this many events means the reader caught up with the
/// writer.
const SMALL_BATCH: u64 = 64;
/// Spin-loop hints the batch reader waits after catching up.
const CAUGHT_UP_SPINS: u32 = 256;

/// How the ringtrace reader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reader {
    /// `Consumer::consume_batch(usize::MAX, ..)`: every committed event
    /// found, in one call.
    Batch,
    /// `Consumer::consume`: one event per call.
    PerEvent,
}

fn ringtrace(
    mode: Mode,
    retry: bool,
    reader: Reader,
    run: Duration,
    problems: &mut Vec<String>,
) -> Rep {
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(BYTES / 4096).mode(mode))
        .expect("valid configuration");
    let rep = run_pair(
        run,
        |time_up| {
            let mut w = buf.writer(0).expect("fresh ring");
            write_loop(time_up, |i| {
                push(retry, || w.write(i, &i.to_le_bytes()).is_ok());
            })
        },
        |done| {
            let mut c = buf.consumer(0).expect("ring 0");
            read_loop(done, || match reader {
                Reader::Batch => {
                    let n = c
                        .consume_batch(usize::MAX, |ev| {
                            black_box(ev.payload);
                        })
                        .map_or(0, |n| n as u64);
                    // Caught up (a small batch): give the writer a moment
                    // before polling again, so that the reader does not read
                    // the cache line the writer is filling. Without it the
                    // writer ran twice as slow here (44 M/s end to end).
                    if n > 0 && n < SMALL_BATCH {
                        for _ in 0..CAUGHT_UP_SPINS {
                            std::hint::spin_loop();
                        }
                    }
                    n
                }
                Reader::PerEvent => match c.consume() {
                    Ok(Some(ev)) => {
                        black_box(ev.payload);
                        1
                    }
                    Ok(None) | Err(_) => 0,
                },
            })
        },
    );
    let st = buf.stats(0).expect("ring 0");
    let mut why = Vec::new();
    if st.read != rep.read {
        why.push(format!("stats.read {} != consumed {}", st.read, rep.read));
    }
    // Drained (checked below): committed by the writer's pages must equal
    // read plus overwritten. (`entries` is derived from these, so an
    // identity written with it could not fail.)
    if st.committed != st.read + st.overrun {
        why.push(format!("accounting identity broken: {st:?}"));
    }
    if !retry && st.written != rep.attempted {
        why.push(format!(
            "stats.written {} != attempted {}",
            st.written, rep.attempted
        ));
    }
    if st.entries != 0 {
        why.push(format!(
            "{} entries left unread after the drain",
            st.entries
        ));
    }
    if !why.is_empty() {
        problems.push(format!(
            "ringtrace {mode:?}{}: {}",
            if retry { " retry" } else { "" },
            why.join("; ")
        ));
    }
    rep
}

fn rtrb(retry: bool, run: Duration) -> Rep {
    let (mut p, mut c) = rtrb::RingBuffer::<u8>::new(BYTES);
    run_pair(
        run,
        move |time_up| {
            write_records(time_up, retry, |rec| {
                let Ok(mut chunk) = p.write_chunk_uninit(REC) else {
                    return false;
                };
                let (a, b) = chunk.as_mut_slices();
                let (x, y) = rec.as_bytes().split_at(a.len());
                for (d, s) in a.iter_mut().zip(x).chain(b.iter_mut().zip(y)) {
                    d.write(*s);
                }
                // SAFETY: every byte of the chunk was written above.
                unsafe { chunk.commit_all() };
                true
            })
        },
        move |done| {
            read_loop(done, || match c.read_chunk(REC) {
                Ok(chunk) => {
                    black_box(chunk.as_slices());
                    chunk.commit_all();
                    1
                }
                Err(_) => 0,
            })
        },
    )
}

fn ringbuf_typed(retry: bool, run: Duration) -> Rep {
    let (mut p, mut c) = ringbuf::HeapRb::<Record<8>>::new(BYTES / REC).split();
    run_pair(
        run,
        move |time_up| write_records(time_up, retry, |rec| p.try_push(*rec).is_ok()),
        move |done| read_loop(done, || u64::from(black_box(c.try_pop()).is_some())),
    )
}

fn ringbuf_bytes(retry: bool, run: Duration) -> Rep {
    let (mut p, mut c) = ringbuf::HeapRb::<u8>::new(BYTES).split();
    run_pair(
        run,
        move |time_up| {
            use ringbuf::traits::Observer as _;
            write_records(time_up, retry, |rec| {
                let room = p.vacant_len() >= REC;
                if room {
                    p.push_slice(rec.as_bytes());
                }
                room
            })
        },
        move |done| {
            let mut rec = [0u8; REC];
            read_loop(done, || {
                use ringbuf::traits::Observer as _;
                if c.occupied_len() >= REC {
                    c.pop_slice(&mut rec);
                    black_box(&rec);
                    1
                } else {
                    0
                }
            })
        },
    )
}

fn array_queue(retry: bool, run: Duration) -> Rep {
    let q = ArrayQueue::<Record<8>>::new(BYTES / REC);
    run_pair(
        run,
        |time_up| {
            write_records(time_up, retry, |rec| {
                if retry {
                    q.push(*rec).is_ok()
                } else {
                    // Overwrites the oldest when full: always stored.
                    black_box(q.force_push(*rec));
                    true
                }
            })
        },
        |done| read_loop(done, || u64::from(black_box(q.pop()).is_some())),
    )
}

fn row(name: &str, lossless: bool, reps: &[Rep]) -> Row {
    let f = |g: &dyn Fn(&Rep) -> f64| {
        Summary::of(&reps.iter().map(g).collect::<Vec<_>>()).expect("at least one repetition")
    };
    Row {
        name: name.to_string(),
        lossless,
        delivered: f(&|r| r.read as f64 / r.total_secs),
        lost_pct: f(&|r| 100.0 * r.attempted.saturating_sub(r.read) as f64 / r.attempted as f64),
        lost: f(&|r| r.attempted.saturating_sub(r.read) as f64),
        writer_ns: f(&|r| r.writer_secs * 1e9 / r.attempted as f64),
        cpus: f(&|r| r.cpus),
    }
}

/// Who a peer is: ringtrace in a mode, with a reader, or a queue crate.
#[derive(Debug, Clone, Copy)]
enum Who {
    Ring(Mode, Reader),
    Rtrb,
    RingbufTyped,
    RingbufBytes,
    ArrayQueue,
}

const OVERWRITE: Who = Who::Ring(Mode::Overwrite, Reader::Batch);
const PC: Who = Who::Ring(Mode::ProducerConsumer, Reader::Batch);
const PC_EACH: Who = Who::Ring(Mode::ProducerConsumer, Reader::PerEvent);

/// The peers in the report's order: name, whether it retries when full
/// (lossless), who.
#[rustfmt::skip] // a table: one peer a line
const PEERS: [(&str, bool, Who); 11] = [
    ("ringtrace, overwrite (overrun when full)", false, OVERWRITE),
    ("ringtrace, producer/consumer (drop when full)", false, PC),
    ("rtrb `u8`, chunk per record (drop when full)", false, Who::Rtrb),
    ("ringbuf `HeapRb<Record>` (drop when full)", false, Who::RingbufTyped),
    ("crossbeam `ArrayQueue`, `force_push` (overwrite)", false, Who::ArrayQueue),
    ("ringtrace, producer/consumer, retry when full", true, PC),
    ("ringtrace, producer/consumer, retry, reader `consume` per event", true, PC_EACH),
    ("rtrb `u8`, chunk per record, retry", true, Who::Rtrb),
    ("ringbuf `HeapRb<Record>`, retry", true, Who::RingbufTyped),
    ("ringbuf `HeapRb<u8>`, `push_slice`, retry", true, Who::RingbufBytes),
    ("crossbeam `ArrayQueue`, `push`, retry", true, Who::ArrayQueue),
];

/// Runs every peer `s.reps` times after one warm-up round, round-robin, so
/// that the machine's load drifts over all of them alike.
pub fn run(s: &Settings) -> ThroughputReport {
    let mut problems = Vec::new();
    let t = s.thread_rep_time;
    let mut one = |who: Who, retry: bool| match who {
        Who::Ring(mode, reader) => ringtrace(mode, retry, reader, t, &mut problems),
        Who::Rtrb => rtrb(retry, t),
        Who::RingbufTyped => ringbuf_typed(retry, t),
        Who::RingbufBytes => ringbuf_bytes(retry, t),
        Who::ArrayQueue => array_queue(retry, t),
    };
    let mut reps: Vec<Vec<Rep>> = vec![Vec::new(); PEERS.len()];
    for rep in 0..=s.reps {
        for (i, &(_, retry, who)) in PEERS.iter().enumerate() {
            let r = one(who, retry);
            if rep > 0 {
                reps[i].push(r);
            }
        }
    }
    let rows = PEERS
        .iter()
        .zip(&reps)
        .map(|((name, lossless, _), r)| row(name, *lossless, r))
        .collect();
    ThroughputReport { rows, problems }
}

/// One repetition of one of the two lossless pairs compared:
/// ringtrace (producer/consumer, retry when full, `consume_batch` reader)
/// when `ringtrace` is true, else ringbuf's typed `HeapRb`, retry. For
/// A/B runs of just these two (`examples/tput_ab.rs`); the accounting
/// check is the same as in [`run`].
pub fn lossless_rep(ringtrace_side: bool, run: Duration) -> (Rep, Vec<String>) {
    let mut problems = Vec::new();
    let rep = if ringtrace_side {
        ringtrace(
            Mode::ProducerConsumer,
            true,
            Reader::Batch,
            run,
            &mut problems,
        )
    } else {
        ringbuf_typed(true, run)
    };
    (rep, problems)
}
