//! Helpers shared by the front-end tests (`layer_*`): drain a tracer, read
//! its pipe line by line, write its events into a trace.dat, run the real
//! `trace-cmd report` on it (FAILS when trace-cmd is missing: `apt-get
//! install -y trace-cmd`).
//! Compiled on its own too (it has no tests then).
#![allow(dead_code)]

#[path = "tracedat_common.rs"]
mod tracedat_common;

use ringtrace::clock::Clock;
use ringtrace::event::Registry;
use ringtrace::reader::OwnedEvent;
use ringtrace::tracedat::{TraceDatMeta, TraceDatWriter};
use ringtrace::{Tracer, TracerConfig};
use tracedat_common::{PageBuilder, PAGE_SIZE};

/// What `t`'s pipe reads, line by line; fails unless there are `n` lines.
pub fn pipe_lines(t: &Tracer, n: usize) -> Vec<String> {
    let text = t.pipe().read_to_string().expect("read");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(lines.len(), n, "{text}");
    lines
}

/// A tracer of two contexts on the `mono` clock, for the whole process.
pub fn leak_tracer() -> &'static Tracer {
    Box::leak(Box::new(
        TracerConfig::new()
            .max_contexts(2)
            .clock(Clock::mono())
            .build()
            .expect("tracer"),
    ))
}

/// Every event of `t`, consumed, in time-stamp order.
pub fn drain(t: &Tracer) -> Vec<OwnedEvent> {
    let mut pipe = t.pipe();
    let mut v = Vec::new();
    while let Some(e) = pipe.next_event().expect("read") {
        v.push(e);
    }
    v
}

/// Each event's name and text as ringtrace's own text output prints them
/// after the context columns (`Pipe::next_line` calls `event_text`).
pub fn text_lines(events: &[OwnedEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .map(|e| {
            let (name, text) = ringtrace::output::event_text(&e.payload);
            (name.into_owned(), text)
        })
        .collect()
}

/// A trace.dat (v6) holding `events`, with the formats of every type in
/// the global registry.
pub fn trace_dat(t: &Tracer, events: &[OwnedEvent]) -> Vec<u8> {
    let cpus = t.max_contexts();
    let mut meta = TraceDatMeta::new(PAGE_SIZE as u32, cpus as u32, t.clock().name());
    let mut systems: Vec<(String, Vec<String>)> = Vec::new();
    for ty in Registry::global().iter() {
        match systems.iter_mut().find(|(s, _)| s == ty.system) {
            Some((_, v)) => v.push(ty.format_text()),
            None => systems.push((ty.system.to_string(), vec![ty.format_text()])),
        }
    }
    meta.events = systems;
    meta.kallsyms = ringtrace::printk::kallsyms_text();
    let mut pids: Vec<i32> = events
        .iter()
        .filter_map(|e| e.common().map(|c| c.1.pid))
        .collect();
    pids.sort_unstable();
    pids.dedup();
    meta.cmdlines = pids
        .into_iter()
        .filter_map(|p| t.comm(p).map(|c| (p, c)))
        .collect();
    let mut w = TraceDatWriter::new(std::io::Cursor::new(Vec::new()), &meta).expect("writer");
    for cpu in 0..cpus {
        let mine: Vec<&OwnedEvent> = events.iter().filter(|e| e.ring == cpu).collect();
        let mut pages = Vec::new();
        let mut page: Option<(PageBuilder, usize)> = None;
        for e in &mine {
            // Worst case per event: time extend (8) + long header (8) + payload.
            let need = 16 + e.payload.len();
            if let Some((p, used)) = page.take() {
                if used + need <= PAGE_SIZE - 16 {
                    page = Some((p, used));
                } else {
                    pages.push(p.finish());
                }
            }
            let (p, used) = page.get_or_insert_with(|| (PageBuilder::new(e.timestamp), 0));
            p.event(e.timestamp, &e.payload);
            *used += need;
        }
        if let Some((p, _)) = page {
            pages.push(p.finish());
        }
        w.write_cpu(cpu as u32, &pages).expect("pages");
    }
    w.finish().expect("finish").into_inner()
}

/// `trace-cmd report` of `dat`: the `(name, text)` of each event line.
pub fn trace_cmd_report(dat: &[u8]) -> Vec<(String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("layer.dat");
    std::fs::write(&file, dat).expect("write");
    let text = tracedat_common::trace_cmd_ok(&["report", "-i", file.to_str().expect("utf-8 path")]);
    text.lines()
        .filter(|l| l.contains("] "))
        .map(|l| {
            // `comm-tid [cpu] ts: name:   text`
            let rest = l.split_once("] ").map(|x| x.1).unwrap_or(l);
            let rest = rest.split_once(": ").map(|x| x.1).unwrap_or(rest);
            let (name, text) = rest.split_once(':').unwrap_or((rest, ""));
            (name.trim().to_string(), text.trim().to_string())
        })
        .collect()
}
