//! A drain exports to trace.dat while writer threads write far more than the
//! rings hold (producer/consumer mode: a writer retries a full ring, so
//! every event lands). The file is read back with every event and payload
//! checked, `trace-cmd report` must print the same events in the same
//! per-thread order, and the drain's own buffered bytes must stay under
//! its documented bound.
//!
//! Fails (never skips) when `trace-cmd` is not on PATH
//! (Debian: `apt-get install -y trace-cmd`).

mod common;

mod tracedat_common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tracedat_common::trace_cmd_ok;

use ringtrace::clock::Clock;
use ringtrace::context::RecordError;
use ringtrace::event::EventType;
use ringtrace::export::{DrainStats, ExportFormat, SPOOL_BUFFER};
use ringtrace::tracedat::{FieldValue, TraceDatReader, TraceDatVersion, TraceItem};
use ringtrace_ring::{Mode, WriteError};

ringtrace::declare_event! {
    /// One checked record: writer, sequence number, a message whose length
    /// varies with `seq` (long ones take the `type_len` 0 form) and a
    /// checksum of all of it.
    pub struct DrainRec<'a>: "drain" / "drain_rec" = 2101 {
        writer: u32,
        seq: u64,
        msg: &'a str,
        check: u64,
    }
}

const WRITERS: u32 = 2;
const PER_WRITER: u64 = 40_000;
const PAGE_SIZE: usize = 4096;
const RING_BYTES: usize = 4 * PAGE_SIZE;

fn message(writer: u32, seq: u64) -> String {
    let len = (seq * 7 + u64::from(writer)) % 150;
    (0..len)
        .map(|i| char::from(b'a' + ((seq + i) % 26) as u8))
        .collect()
}

fn checksum(writer: u32, seq: u64, msg: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ u64::from(writer);
    for b in seq.to_le_bytes().iter().chain(msg.as_bytes()) {
        h = (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A tracer of `contexts` rings of `RING_BYTES` in pages of `PAGE_SIZE`
/// in `mode`, on the monotonic clock, with `event` registered.
fn drain_tracer(contexts: usize, mode: Mode, event: &'static EventType) -> ringtrace::Tracer {
    let t = common::config(contexts, RING_BYTES, mode, Some(Clock::mono()))
        .page_size(PAGE_SIZE)
        .build()
        .unwrap();
    t.register(event).unwrap();
    t
}

#[test]
fn drain_exports_a_trace_far_larger_than_the_rings() {
    let t = drain_tracer(
        WRITERS as usize,
        Mode::ProducerConsumer,
        DrainRec::EVENT_TYPE,
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drain.dat");
    let (stats, retries) = write_while_draining(&t, &path);

    // Far more than the rings hold went through, with bounded buffering.
    let ring_total = (WRITERS as usize * RING_BYTES) as u64;
    assert!(
        stats.page_bytes > 50 * ring_total,
        "only {} page bytes for rings of {ring_total}",
        stats.page_bytes
    );
    let bound = (WRITERS as usize * (PAGE_SIZE + SPOOL_BUFFER)) as u64;
    assert!(
        stats.max_buffered_bytes <= bound,
        "drain buffered {} bytes, bound {bound}",
        stats.max_buffered_bytes
    );
    assert!(stats.max_buffered_bytes > 0);
    assert_eq!(stats.events, u64::from(WRITERS) * PER_WRITER);

    // Losses: the full-ring attempts the writers retried are what the
    // rings counted as dropped, and the file carries exactly those; drops
    // after a ring's last page are still pending in the ring.
    let lost = read_back_every_event(&path);
    let pending: u64 = (0..WRITERS as usize)
        .map(|i| t.ring_buffer().consumer(i).unwrap().pending_losses())
        .sum();
    assert_eq!(
        lost + pending,
        retries,
        "losses in the file + pending = retried full-ring writes"
    );
    assert_eq!(
        common::assert_accounts(&t),
        stats.events,
        "the drain read all"
    );

    let dropped_lines = trace_cmd_shows_every_event(&path);
    // Every loss page starts with a data event, so trace-cmd shows each
    // (it does not when a page starts otherwise: trace-dat-format.md
    // pitfall 5).
    let ours = {
        let mut r = TraceDatReader::open(&path).unwrap();
        r.records()
            .filter(|i| matches!(i, Ok(TraceItem::Lost { .. })))
            .count()
    };
    assert_eq!(dropped_lines, ours);
    eprintln!(
        "{} events, {} page bytes, {retries} retried writes, {ours} loss pages, \
         max buffered {} bytes",
        stats.events, stats.page_bytes, stats.max_buffered_bytes
    );
    if retries > 0 {
        assert!(dropped_lines > 0, "trace-cmd shows the drops");
    }
}

/// Runs the writer threads while a drain polls, then finishes the drain
/// into a v6 trace.dat at `path`. Returns the drain's stats and the
/// writers' full-ring retries.
fn write_while_draining(t: &ringtrace::Tracer, path: &Path) -> (DrainStats, u64) {
    let done = AtomicU32::new(0);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let done = &done;
                std::thread::Builder::new()
                    .name(format!("drain-w{w}"))
                    .spawn_scoped(s, move || {
                        let retries = write_records(t, w);
                        // Release: pairs with the drain loop's Acquire load.
                        done.fetch_add(1, Ordering::Release);
                        retries
                    })
                    .unwrap()
            })
            .collect();
        let mut drain = t.drain();
        let mut last_progress = 0u64;
        drain.on_progress(|p| last_progress = p.spooled.max(last_progress));
        // Acquire: pairs with each writer's Release increment.
        while done.load(Ordering::Acquire) < WRITERS {
            drain.poll().unwrap();
            std::thread::sleep(Duration::from_micros(200));
        }
        let retries = handles.into_iter().map(|h| h.join().unwrap()).sum();
        drain.poll_all().unwrap();
        let stats = drain.stats();
        let f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        drain
            .finish(f, ExportFormat::TraceDat(TraceDatVersion::V6))
            .unwrap();
        (stats, retries)
    })
}

/// Writer `w`'s records, each retried while its ring is full; returns the
/// number of retries.
fn write_records(t: &ringtrace::Tracer, w: u32) -> u64 {
    let mut retries = 0u64;
    for seq in 0..PER_WRITER {
        // One gap longer than 2^27 ns: a time extend.
        if w == 0 && seq == PER_WRITER / 2 {
            std::thread::sleep(Duration::from_millis(150));
        }
        let msg = message(w, seq);
        let rec = DrainRec {
            writer: w,
            seq,
            msg: &msg,
            check: checksum(w, seq, &msg),
        };
        loop {
            match t.record(&rec) {
                Ok(()) => break,
                Err(RecordError::Write(WriteError::Full)) => {
                    retries += 1;
                    std::thread::yield_now();
                }
                Err(e) => panic!("record: {e}"),
            }
        }
    }
    retries
}

/// Reads the file back: every event, in merged order and in order per
/// writer, fields and checksum intact, one thread (and its name) per
/// writer. Returns the lost-event count the file carries.
fn read_back_every_event(path: &Path) -> u64 {
    let mut r = TraceDatReader::open(path).unwrap();
    let info = r.info().clone();
    let mut next = vec![0u64; WRITERS as usize];
    let mut lost = 0u64;
    let mut tids: BTreeMap<u32, i32> = BTreeMap::new();
    let mut last_ts = 0;
    for item in r.records() {
        match item.unwrap() {
            TraceItem::Lost { count, .. } => lost += count.expect("stored count"),
            TraceItem::Event(rec) => {
                assert!(rec.ts >= last_ts, "merged order");
                last_ts = rec.ts;
                let d = info.decode(&rec).unwrap();
                assert_eq!(d.format.name, "drain_rec");
                let get = |n: &str| d.fields.iter().find(|(f, _)| *f == n).unwrap().1.clone();
                let (FieldValue::Unsigned(w), FieldValue::Unsigned(seq)) =
                    (get("writer"), get("seq"))
                else {
                    panic!("field types")
                };
                let FieldValue::Str(msg) = get("msg") else {
                    panic!("msg")
                };
                let FieldValue::Unsigned(check) = get("check") else {
                    panic!("check")
                };
                let w = w as u32;
                assert_eq!(seq, next[w as usize], "writer {w} sequence");
                next[w as usize] += 1;
                assert_eq!(msg, message(w, seq));
                assert_eq!(check, checksum(w, seq, &msg));
                let tid = *tids.entry(w).or_insert(d.pid);
                assert_eq!(d.pid, tid, "one thread per writer");
                assert_eq!(info.comm(d.pid), Some(format!("drain-w{w}").as_str()));
            }
        }
    }
    assert_eq!(next, vec![PER_WRITER; WRITERS as usize]);
    lost
}

/// `trace-cmd report` prints the same events, per writer in order, with
/// the thread names and messages; returns its count of `EVENTS DROPPED`
/// lines.
fn trace_cmd_shows_every_event(path: &Path) -> usize {
    let text = trace_cmd_ok(&["report", "-R", "-i", path.to_str().unwrap()]);
    let mut next = vec![0u64; WRITERS as usize];
    let mut dropped_lines = 0;
    for line in text.lines() {
        if line.contains("EVENTS DROPPED") {
            dropped_lines += 1;
            continue;
        }
        let Some((_, fields)) = line.split_once("drain_rec:") else {
            continue;
        };
        let field = |n: &str| {
            fields
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(n))
                .unwrap_or_else(|| panic!("{n} in {line}"))
                .to_string()
        };
        let w: usize = field("writer=").parse().unwrap();
        let seq: u64 = field("seq=").parse().unwrap();
        assert_eq!(seq, next[w], "trace-cmd order of writer {w}: {line}");
        next[w] += 1;
        assert!(line.contains(&format!("drain-w{w}-")), "{line}");
        let msg = message(w as u32, seq);
        assert!(line.contains(&format!("msg={msg} ")), "{line}");
    }
    assert_eq!(next, vec![PER_WRITER; WRITERS as usize]);
    dropped_lines
}

ringtrace::declare_event! {
    /// A numbered record for the overwrite test.
    pub struct Numbered: "drain" / "numbered" = 2102 { seq: u64, pad: [u8; 40] }
}

/// Overwrite mode with a drain that polls rarely: the writer overruns the
/// rings, the file carries the losses as flagged pages, and each stored
/// count equals exactly the gap in sequence numbers before the page's first
/// event. `trace-cmd report` shows the same drops and the same events.
#[test]
fn overwrite_drain_accounts_for_every_lost_event() {
    const N: u64 = 200_000;
    let t = drain_tracer(1, Mode::Overwrite, Numbered::EVENT_TYPE);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("overwrite.dat");
    let mut drain = t.drain();
    for seq in 0..N {
        t.record(&Numbered { seq, pad: [7; 40] }).unwrap();
        if seq % 5_000 == 0 {
            drain.poll().unwrap();
        }
    }
    let f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    drain
        .finish(f, ExportFormat::TraceDat(TraceDatVersion::V7))
        .unwrap();
    let overrun = t.ring_stats(0).unwrap().overrun;
    assert!(overrun > N / 2, "the writer must lap the drain: {overrun}");

    let mut r = TraceDatReader::open(&path).unwrap();
    let info = r.info().clone();
    let mut expect = 0u64;
    let mut pending_lost = 0u64;
    let (mut events, mut lost_total, mut loss_pages) = (0u64, 0u64, 0u64);
    for item in r.records() {
        match item.unwrap() {
            TraceItem::Lost { count, .. } => {
                pending_lost += count.expect("stored count");
                loss_pages += 1;
            }
            TraceItem::Event(rec) => {
                let d = info.decode(&rec).unwrap();
                let FieldValue::Unsigned(seq) = d.fields[0].1 else {
                    panic!("seq")
                };
                assert_eq!(seq, expect + pending_lost, "gap = stored lost count");
                lost_total += pending_lost;
                pending_lost = 0;
                expect = seq + 1;
                events += 1;
            }
        }
    }
    assert_eq!(pending_lost, 0);
    assert_eq!(expect, N, "the newest event is in the file");
    assert_eq!(events + lost_total, N);
    assert_eq!(lost_total, overrun);

    let text = trace_cmd_ok(&["report", "-i", path.to_str().unwrap()]);
    let drops: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("CPU:0 ["))
        .filter_map(|l| l.strip_suffix(" EVENTS DROPPED]"))
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(drops.len() as u64, loss_pages);
    assert_eq!(drops.iter().sum::<u64>(), lost_total);
    assert_eq!(
        text.lines().filter(|l| l.contains("numbered:")).count() as u64,
        events
    );
}
