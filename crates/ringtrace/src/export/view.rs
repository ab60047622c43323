//! The live export of the merged view ([`Tracer::export_view`]): what the
//! non-consuming view reads, written to `trace.dat` or JSON while writers
//! keep writing (see [`crate::view`]'s module docs for the view's bounds
//! and its loss counts).
//!
//! # Contract
//!
//! Nothing is consumed, no reader lock is taken, nothing is copied first:
//! memory is one page plus the file's metadata. Each ring is read up to its
//! newest stamp when its turn comes and at most [`ring_bound`] events, so a
//! loop over shared memory always ends. Losses are counted in
//! [`ViewStats`] and marked in the output.

use crate::sync::{AtomicBool, Ordering};
use std::io::{Cursor, Seek, Write};

use crate::event::Registry;
use crate::export::{ExportError, ExportFormat, Packed, PagePacker};
use crate::json::{JsonError, JsonOptions, JsonWriter};
use crate::read::view::{empty_and_quiet, ring_bound};
use crate::tracedat::{
    FileRenderer, TraceDatMeta, TraceDatReader, TraceDatRecord, TraceDatVersion, TraceDatWriter,
    TraceItem,
};
use crate::tracer::Tracer;
use crate::view::ViewStats;

/// [`Tracer::export_view`]: `format` picks the writer.
pub(crate) fn export_view<W: Write + Seek>(
    t: &Tracer,
    out: W,
    format: ExportFormat,
    stop: &AtomicBool,
) -> Result<(W, ViewStats), ExportError> {
    match format {
        ExportFormat::TraceDat(v) => view_dat(t, out, v, stop),
        ExportFormat::Json => view_json(t, out, stop),
        ExportFormat::Perfetto => {
            // By way of a temporary trace.dat of the view, converted as a
            // drain's export is.
            let tmp = tempfile::tempfile().map_err(|source| ExportError::Io {
                context: "creating a temporary trace.dat",
                source,
            })?;
            let tmp = std::io::BufWriter::new(tmp);
            let (tmp, st) = view_dat(t, tmp, TraceDatVersion::V6, stop)?;
            let opts = crate::perfetto::PerfettoOptions::default();
            let (out, _) = crate::export::drain::perfetto_from_temp_dat(tmp, out, &opts)?;
            Ok((out, st))
        }
    }
}

/// The file's metadata, written before any event is read: every event
/// format and thread name this tracer knows (a superset of those the
/// events use), printk formats, the clock, each ring's stats now.
fn view_meta(t: &Tracer, cpus: usize, version: TraceDatVersion) -> TraceDatMeta {
    let comms: Vec<(i32, String)> = match t.inner.cmdlines().lock() {
        Ok(c) => c.iter().map(|(t, c)| (t, c.as_str().to_string())).collect(),
        Err(_) => Vec::new(),
    };
    crate::export::tracer_meta(
        t,
        cpus,
        version,
        Registry::global().iter(),
        comms.iter().map(|(t, c)| (*t, c.as_str())),
    )
}

/// `trace.dat`: ring after ring (the file keeps each CPU's pages
/// together), each read by its own iterator up to its newest stamp when
/// its turn comes, packed into pages as the ring's writer lays them out.
fn view_dat<W: Write + Seek>(
    t: &Tracer,
    out: W,
    version: TraceDatVersion,
    stop: &AtomicBool,
) -> Result<(W, ViewStats), ExportError> {
    let buf = t.ring_buffer();
    // The file lists the contexts holding events now (up to the last one;
    // CPU N is context N), not every context the tracer could lease.
    let cpus = (0..t.max_contexts())
        .rposition(|r| !empty_and_quiet(buf, r))
        .map_or(0, |i| i + 1);
    let meta = view_meta(t, cpus, version);
    let mut w = TraceDatWriter::new(out, &meta)?;
    let page_size = t.config().page_size;
    let mut packer = PagePacker::new(page_size);
    let mut st = ViewStats::default();
    let per_ring = ring_bound(buf);
    for ring in 0..cpus {
        if stop.load(Ordering::Relaxed) {
            st.stopped = true;
            break;
        }
        if empty_and_quiet(buf, ring) {
            continue;
        }
        let Ok(mut it) = buf.iter(ring) else {
            continue;
        };
        // After the iterator: an event it starts on is older than this.
        let mut until = buf.stats(ring).map_or(u64::MAX, |s| s.now_ts);
        let mut n = 0u64;
        while n < per_ring {
            if stop.load(Ordering::Relaxed) {
                st.stopped = true;
                break;
            }
            let e = match it.next() {
                Err(e) => {
                    st.damaged.push((ring, e.to_string()));
                    break;
                }
                Ok(None) => break,
                Ok(Some(e)) => e,
            };
            if e.timestamp > until && n == 0 {
                // Lapped before the view reached the ring: as in
                // `View::next_with`, its part starts at the oldest
                // surviving event and ends at its newest stamp now.
                until = buf
                    .stats(ring)
                    .map_or(u64::MAX, |s| s.now_ts)
                    .max(e.timestamp);
            }
            if e.timestamp > until {
                st.skipped_at_end += e.lost_events;
                break;
            }
            let (ts, lost) = (e.timestamp, e.lost_events);
            let mut packed = packer.push(ts, lost, e.payload);
            if packed == Packed::PageFull {
                w.push_page(ring as u32, packer.finish_page())?;
                packed = packer.push(ts, lost, e.payload);
            }
            if packed != Packed::Added {
                return Err(ExportError::EventTooLarge {
                    ring,
                    len: e.payload.len(),
                    page_size,
                });
            }
            n += 1;
            st.events += 1;
            st.lost += lost;
        }
        st.skipped_at_end += it.pending_lost();
        if !packer.is_empty() {
            w.push_page(ring as u32, packer.finish_page())?;
        }
    }
    Ok((w.finish()?, st))
}

/// JSON: the merged view, each event decoded through the formats of a
/// metadata-only `trace.dat` built in memory (the same decoding as a
/// file's), streamed out one event at a time.
fn view_json<W: Write>(
    t: &Tracer,
    out: W,
    stop: &AtomicBool,
) -> Result<(W, ViewStats), ExportError> {
    let meta = view_meta(t, t.max_contexts(), TraceDatVersion::V6);
    let header = TraceDatWriter::new(Cursor::new(Vec::new()), &meta)?
        .finish()?
        .into_inner();
    let reader = TraceDatReader::new(Cursor::new(header))?;
    let info = reader.info().clone();
    let render = FileRenderer::new(&info);
    let mut jw = JsonWriter::new(out, &JsonOptions::default().with_processes_of(&info))?;
    if let Some(ws) = info.wall_start {
        jw.wall_start(ws, info.ts_ns(ws.clock_ts) as f64 / 1000.0);
    }
    let mut st = ViewStats::default();
    let mut view = t.view();
    // Each ring fails at most once (it is then not read again).
    let mut failures = 0;
    loop {
        if stop.load(Ordering::Relaxed) {
            st.stopped = true;
            break;
        }
        let next = view.next_with(|e| (e.ring, e.timestamp, e.lost_events, e.payload.to_vec()));
        let (ring, ts, lost, data) = match next {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(e) => {
                st.damaged
                    .push((view.last_failed().unwrap_or(usize::MAX), e.to_string()));
                failures += 1;
                if failures > t.max_contexts() {
                    break;
                }
                continue;
            }
        };
        let cpu = ring as u32;
        if lost > 0 {
            let item = TraceItem::Lost {
                cpu,
                ts,
                page: 0,
                count: Some(lost),
            };
            jw.item(&render, &item)?;
        }
        let item = TraceItem::Event(TraceDatRecord {
            cpu,
            ts,
            page: 0,
            file_offset: 0,
            data,
        });
        match jw.item(&render, &item) {
            Ok(()) => {}
            // Decoding failed before anything was written: skip it.
            Err(JsonError::TraceDat(_)) => st.undecodable += 1,
            Err(e) => return Err(e.into()),
        }
        st.events += 1;
        st.lost += lost;
    }
    st.skipped_at_end = (0..t.max_contexts()).map(|r| view.skipped_at_end(r)).sum();
    Ok((jw.finish()?, st))
}
