//! A trace as one self-contained HTML page: a timeline drawn on a canvas
//! (one lane per CPU and per thread, spans as nested slices, events as
//! ticks, lost events in red), with zoom, pan, hover detail, search by name
//! and a summary (events per type, rate over time, span durations per name,
//! loss per context).
//!
//! ```text
//! <style> timeline.css </style>                 the page's look, inlined
//! <script id="rt-detail">  base64 UTF-8         every event's detail text, streamed
//! <script id="rt-meta">    JSON                 names, threads, CPUs, counts
//! <script id="rt-ev-t"> ... <script id="rt-lo-count">   base64 typed arrays (encode.rs)
//! <script> timeline.js </script>                decodes, draws, sets data-* on <body>
//! ```
//!
//! The page loads nothing: no network, no external script, font or style.
//! Events are read through the same merged iteration and renderer as the
//! JSON export ([`crate::json`]); a record that cannot be decoded, or a
//! damaged page, is skipped and counted ([`HtmlStats`]), as there. Memory:
//! the fixed-size columns (about 25 bytes an event, 41 a span); the detail
//! text streams to the output.
//!
//! After drawing, the page's script sets on `<body>`: `data-events`,
//! `data-lanes` (thread lanes), `data-cpus`, `data-spans`, `data-lost`
//! (lost events whose count is known), `data-lost-markers`, `data-types`
//! and `data-drawn-ms` (time from navigation start to the first full
//! draw): what the browser tests and the bench read.

mod encode;

use std::io::{self, BufWriter, Read, Seek, Write};

use base64::engine::general_purpose::STANDARD;
use base64::write::EncoderWriter;

use crate::tracedat::render::FileRenderer;
use crate::tracedat::{TraceDatError, TraceDatReader};
use encode::{EncodeError, Encoder};
pub use encode::{
    KIND_EVENT, KIND_MARKER, KIND_PRINTK, KIND_SPAN_BEGIN, KIND_SPAN_END, SPAN_NO_BEGIN,
    SPAN_NO_END,
};

const CSS: &str = include_str!("timeline.css");
const JS: &str = include_str!("timeline.js");

/// Why an HTML export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HtmlError {
    /// Writing the output failed (or the trace is too large for one page).
    #[error("I/O error while writing HTML: {0}")]
    Io(#[from] io::Error),
    /// Reading the trace.dat source failed.
    #[error(transparent)]
    TraceDat(#[from] TraceDatError),
}

/// Options of the HTML page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlOptions {
    /// The page's title (the trace's file name, say).
    pub title: String,
}

impl Default for HtmlOptions {
    /// Titled `ringtrace`.
    fn default() -> Self {
        HtmlOptions {
            title: "ringtrace".to_string(),
        }
    }
}

/// Counters of an HTML export.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct HtmlStats {
    /// Records on the timeline (span begins and ends included).
    pub events: u64,
    /// Spans drawn (paired, or cut at the trace's ends).
    pub spans: u64,
    /// Spans whose begin is not in the trace (drawn from its start).
    pub spans_without_begin: u64,
    /// Spans whose end is not in the trace (drawn to its end).
    pub spans_without_end: u64,
    /// Lost-event markers (pages flagged "events were missed before").
    pub lost_markers: u64,
    /// Lost events counted in the pages that stored the count.
    pub lost_events: u64,
    /// Thread lanes.
    pub threads: u64,
    /// CPU (context) lanes.
    pub cpus: u64,
    /// Records skipped because they cannot be decoded (as in the JSON).
    pub undecodable: u64,
    /// Damaged pages skipped.
    pub damaged_pages: u64,
    /// The first record or page skipped, and why.
    pub first_skipped: Option<String>,
}

impl HtmlStats {
    /// What was skipped, for a caller's note; `None` when nothing was.
    pub fn skipped_note(&self) -> Option<String> {
        let first = self.first_skipped.as_deref()?;
        Some(format!(
            "{} record(s) could not be decoded and {} damaged page(s) were skipped \
             (the first: {first})",
            self.undecodable, self.damaged_pages
        ))
    }
}

/// Escapes text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes the page of a trace.dat file; returns the output and counters.
/// Only an error that leaves nothing to read past it (a damaged file
/// header, an I/O error) stops it: bad records and pages are skipped and
/// counted, the page shows every other record.
pub fn tracedat_to_html<R: Read + Seek, W: Write>(
    reader: &mut TraceDatReader<R>,
    out: W,
    opts: &HtmlOptions,
) -> Result<(W, HtmlStats), HtmlError> {
    let info = reader.info().clone();
    let render = FileRenderer::new(&info);
    let mut out = BufWriter::with_capacity(256 * 1024, out);
    write_head(&mut out, opts)?;
    out.write_all(b"<script type=\"application/octet-stream\" id=\"rt-detail\">")?;
    let mut enc = Encoder::new(EncoderWriter::new(out, &STANDARD));
    if let Err(e) = crate::export::records::export_items(reader, &render, &mut enc) {
        return Err(match e {
            EncodeError::TraceDat(e) => e.into(),
            EncodeError::Io(e) => e.into(),
        });
    }
    let mut out = enc.finish()?.finish()?;
    out.write_all(b"</script>\n")?;
    let stats = stats(&enc);
    write_meta(&mut out, &enc, &info, opts, &stats)?;
    write_columns(&mut out, &enc)?;
    write!(out, "<script>\n{JS}\n</script>\n</body>\n</html>\n")?;
    let out = out
        .into_inner()
        .map_err(|e| HtmlError::Io(e.into_error()))?;
    Ok((out, stats))
}

fn stats<D>(enc: &Encoder<D>) -> HtmlStats {
    let flags = &enc.spans.flags;
    HtmlStats {
        events: enc.events.t.len() as u64,
        spans: enc.spans.start.len() as u64,
        spans_without_begin: flags.iter().filter(|f| **f & SPAN_NO_BEGIN != 0).count() as u64,
        spans_without_end: flags.iter().filter(|f| **f & SPAN_NO_END != 0).count() as u64,
        lost_markers: enc.lost.t.len() as u64,
        lost_events: enc.lost.count.iter().filter(|c| **c >= 0.0).sum::<f64>() as u64,
        threads: enc.threads.len() as u64,
        cpus: enc.cpus.len() as u64,
        undecodable: enc.undecodable,
        damaged_pages: enc.damaged_pages,
        first_skipped: enc.first_skipped.clone(),
    }
}

fn write_head<W: Write>(out: &mut W, opts: &HtmlOptions) -> io::Result<()> {
    let title = escape(&opts.title);
    write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} - ringtrace</title>\n<style>\n{CSS}\n</style>\n</head>\n<body>\n\
         <header><h1>{title}</h1><span id=\"rt-info\"></span>\
         <input id=\"rt-search\" type=\"search\" placeholder=\"search event name\" \
         aria-label=\"search event name\"><span id=\"rt-matches\"></span>\
         <button id=\"rt-reset\" type=\"button\">reset zoom</button></header>\n\
         <main><section id=\"rt-timeline\"><canvas id=\"rt-canvas\"></canvas></section>\n\
         <aside id=\"rt-side\"><h2>Detail</h2><div id=\"rt-detail-view\" class=\"detail\">\
         Hover an event or a span; click to pin. Wheel: zoom. Drag: pan. \
         Shift+drag: zoom to a range. Double-click: reset.</div></aside></main>\n\
         <section id=\"rt-summary\"></section>\n"
    )
}

fn write_meta<W: Write, D>(
    out: &mut W,
    enc: &Encoder<D>,
    info: &crate::tracedat::TraceDatInfo,
    opts: &HtmlOptions,
    stats: &HtmlStats,
) -> io::Result<()> {
    let names: Vec<[&str; 2]> = enc
        .names
        .iter()
        .map(|(s, n)| [s.as_str(), n.as_str()])
        .collect();
    let threads: Vec<serde_json::Value> = enc
        .threads
        .iter()
        .map(|(tid, name)| serde_json::json!({ "tid": tid, "name": name }))
        .collect();
    let meta = serde_json::json!({
        "format": 1,
        "title": opts.title,
        "clock": info.clock.as_deref().unwrap_or("mono"),
        "t0": enc.t0.unwrap_or(0),
        "duration": enc.t_last,
        "names": names,
        "threads": threads,
        "cpus": enc.cpus,
        "events": stats.events,
        "spans": stats.spans,
        "lost": stats.lost_markers,
        "skipped": stats.undecodable + stats.damaged_pages,
        "kinds": ["event", "printk", "marker", "span begin", "span end"],
    });
    // '<' only occurs inside JSON strings, where \u003c means the same and
    // cannot close the script element.
    let text = meta.to_string().replace('<', "\\u003c");
    writeln!(
        out,
        "<script type=\"application/json\" id=\"rt-meta\">{text}</script>"
    )
}

/// Writes `values` as one base64 column in a script element `id`.
fn column<W: Write, T: Copy, const N: usize>(
    out: &mut W,
    id: &str,
    values: &[T],
    le: fn(T) -> [u8; N],
) -> io::Result<()> {
    write!(
        out,
        "<script type=\"application/octet-stream\" id=\"{id}\">"
    )?;
    let mut b64 = EncoderWriter::new(&mut *out, &STANDARD);
    // A multiple of 3 bytes: each chunk encodes without a partial group.
    let mut buf = Vec::with_capacity(48 * 1024);
    for v in values {
        buf.extend_from_slice(&le(*v));
        if buf.len() >= 48 * 1024 - 8 {
            b64.write_all(&buf)?;
            buf.clear();
        }
    }
    b64.write_all(&buf)?;
    b64.finish()?.write_all(b"</script>\n")
}

fn write_columns<W: Write, D>(out: &mut W, enc: &Encoder<D>) -> io::Result<()> {
    let (e, s, l) = (&enc.events, &enc.spans, &enc.lost);
    column(out, "rt-ev-t", &e.t, f64::to_le_bytes)?;
    column(out, "rt-ev-lane", &e.lane, u32::to_le_bytes)?;
    column(out, "rt-ev-cpu", &e.cpu, u32::to_le_bytes)?;
    column(out, "rt-ev-name", &e.name, u32::to_le_bytes)?;
    column(out, "rt-ev-kind", &e.kind, u8::to_le_bytes)?;
    column(out, "rt-ev-detail", &e.detail_end, u32::to_le_bytes)?;
    column(out, "rt-sp-start", &s.start, f64::to_le_bytes)?;
    column(out, "rt-sp-end", &s.end, f64::to_le_bytes)?;
    column(out, "rt-sp-lane", &s.lane, u32::to_le_bytes)?;
    column(out, "rt-sp-name", &s.name, u32::to_le_bytes)?;
    column(out, "rt-sp-depth", &s.depth, u32::to_le_bytes)?;
    column(out, "rt-sp-flags", &s.flags, u8::to_le_bytes)?;
    column(out, "rt-sp-event", &s.event, u32::to_le_bytes)?;
    column(out, "rt-lo-t", &l.t, f64::to_le_bytes)?;
    column(out, "rt-lo-cpu", &l.cpu, u32::to_le_bytes)?;
    column(out, "rt-lo-count", &l.count, f64::to_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
