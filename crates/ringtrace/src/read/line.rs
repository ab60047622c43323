//! Rendering recorded events as ftrace `trace` text lines.
//!
//! ```text
//!             comm-tid     [CPU] flags  timestamp: name: text
//!           worker-4242    [001] .....  1234.567890: src/main.rs:12: a=1 b=2     <- trace! (bprint)
//!           worker-4242    [001] ..h1.  1234.567891: tracing_mark_write: hi      <- marker, in a handler
//!           worker-4242    [001] .....  1234.567892: sample: cpu=1 value=7       <- typed event
//! ```
//!
//! The `CPU` column is the context (ring) number. `comm` comes from the
//! tracer's thread-name table (`<...>` when unknown). Binary printk records
//! are formatted here, at read time, and named by their call site
//! (`file:line`, where the kernel shows the calling function). Typed events
//! print their fields as `name=value` pairs, which is their `print fmt` when
//! it is derived from the fields (an explicit `print_fmt` is not evaluated).
//! Time stamps are raw counts for `counter` and `x86-tsc` and `secs.usecs`
//! for `mono`, as the kernel prints them; [`TextOptions::ns_timestamps`]
//! converts TSC counts to ns first.
//!
//! This module only formats; reading the rings is [`crate::reader`].

use std::borrow::Cow;
use std::fmt::{self, Write};

use crate::event::{write_lossy, CommonFields, Registry};
use crate::fmt::typed::TypeCache;
use crate::printk::{
    format_bprint, format_print, site_by_fmt_addr, write_record, write_site, BprintFields,
    FormatCache, FormatError, BPRINT_ID, FMT_ADDR_BASE, PRINT_ID,
};
use crate::sync::{AtomicU64, Ordering};
use crate::text::{
    write_context, write_context_head, write_lost_events, write_timestamp, FixedWriter,
    LineContext, Style, TimeFormat,
};
use crate::tracer::{Inner, Tracer};
use std::sync::Arc;

/// How event lines are written.
///
/// ```
/// let o = ringtrace::output::TextOptions::default();
/// assert!(!o.ns_timestamps);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TextOptions {
    /// Line style (modern with the irq-info flag block by default).
    pub style: Style,
    /// Convert time stamps of the `x86-tsc` clock to ns and print
    /// `secs.usecs` (the kernel prints raw counts).
    pub ns_timestamps: bool,
}

/// An event's name and text, as the `trace` line shows them after the
/// context columns.
///
/// ```
/// use ringtrace::event::Record;
/// let mut buf = [0u8; 64];
/// let n = ringtrace::printk::Print { ip: 0, text: "hi" }.encode(&Default::default(), &mut buf).unwrap();
/// let (name, text) = ringtrace::output::event_text(&buf[..n]);
/// assert_eq!((&*name, &*text), ("tracing_mark_write", "hi"));
/// ```
#[doc(hidden)]
#[must_use]
pub fn event_text(payload: &[u8]) -> (Cow<'static, str>, String) {
    let Some((ty, _)) = CommonFields::read(payload) else {
        return (Cow::Borrowed("<truncated record>"), String::new());
    };
    // The function tracers' records, as their graph lines.
    if let Some((name, text)) = crate::fmt::funcgraph::record_text(ty, payload) {
        return (Cow::Borrowed(name), text);
    }
    match ty {
        BPRINT_ID => match format_bprint(payload) {
            Ok((site, text)) => (Cow::Owned(format!("{}:{}", site.file(), site.line())), text),
            Err(e) => (Cow::Borrowed("bprint"), format!("[FAILED TO PARSE] {e}")),
        },
        PRINT_ID => match format_print(payload) {
            Ok(text) => (Cow::Borrowed("tracing_mark_write"), text),
            Err(e) => (Cow::Borrowed("print"), format!("[FAILED TO PARSE] {e}")),
        },
        id => match Registry::global().get(id) {
            Some(t) => match t.render_fields(payload) {
                Ok(text) => match level_of(t.system, t.print_fmt) {
                    Some(l) => (Cow::Borrowed(t.name), format!("{l} {text}")),
                    None => (Cow::Borrowed(t.name), text),
                },
                Err(e) => (Cow::Borrowed(t.name), format!("[FAILED TO PARSE] {e}")),
            },
            None => (Cow::Owned(format!("Unknown type {id}")), String::new()),
        },
    }
}

/// The level of an event the `tracing` layer recorded: its `print fmt`
/// starts with it (`"INFO ..."`), so `trace-cmd report` prints it first in
/// the event's text, and so do ringtrace's text outputs. Other systems
/// (the `log` backend has a `level` field of its own) and spans: `None`.
///
/// ```
/// use ringtrace::output::level_of;
/// assert_eq!(level_of("tracing", "\"WARN message=%s\", __get_str(message)"), Some("WARN"));
/// assert_eq!(level_of("tracing", "\"INFORMAL\""), None);
/// assert_eq!(level_of("demo", "\"INFO\""), None);
/// ```
#[doc(hidden)]
#[must_use]
pub fn level_of(system: &str, print_fmt: &str) -> Option<&'static str> {
    // The layer's system name (`layer::SYSTEM`, a room above this one).
    if system != "tracing" {
        return None;
    }
    let rest = print_fmt.strip_prefix('"')?;
    ["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]
        .into_iter()
        .find(|l| {
            rest.strip_prefix(l)
                .is_some_and(|r| r.starts_with([' ', '"']))
        })
}

/// Whether the record names a format this process does not know: a
/// `bprint` whose printk site, or a type id, that is not registered here
/// (yet: a session reader imports them from the writers' tables).
pub(crate) fn format_missing(payload: &[u8]) -> bool {
    match CommonFields::read(payload) {
        Some((BPRINT_ID, _)) => crate::printk::BprintFields::parse(payload)
            .is_ok_and(|r| crate::printk::site_by_fmt_addr(r.fmt).is_none()),
        Some((PRINT_ID, _)) | None => false,
        Some((id, _)) => Registry::global().get(id).is_none(),
    }
}

/// Writes one event as the pipe prints it: a `CPU:N [LOST n EVENTS]` line
/// first when events were lost before it, then the event line.
pub(crate) fn write_event<W: LineBuf>(
    w: &mut W,
    inner: &Inner,
    opts: &TextOptions,
    ring: usize,
    timestamp: u64,
    lost_events: u64,
    payload: &[u8],
) -> fmt::Result {
    if lost_events > 0 {
        write_lost_events(w, ring as u32, Some(lost_events))?;
    }
    let common = CommonFields::read(payload).map(|x| x.1).unwrap_or_default();
    let (ts, tf) = time(inner, opts, timestamp);
    let mut comm_buf = [0u8; COMM_BUF];
    let comm = comm_into(inner, common.pid, &mut comm_buf);
    let ctx = LineContext::of(&comm, &common, ring as u32, ts);
    write_context(w, opts.style, tf, &ctx)?;
    // The function tracers' records as their graph lines (the text is
    // built in a String: not on the crash dump's path).
    let ty = CommonFields::read(payload).map_or(0, |x| x.0);
    if let Some((name, text)) = crate::fmt::funcgraph::record_text(ty, payload) {
        w.write_str(name)?;
        w.write_str(": ")?;
        w.write_str(&text)?;
        return w.write_char('\n');
    }
    write_event_body(w, payload)
}

/// The context columns of the last line of each ring (`comm-pid [CPU]
/// flags`), kept by a pipe: the next event of the ring mostly has the same
/// thread and flags, and its line then starts with a copy instead of a
/// name lookup (a lock and a hash) and the columns' formatting.
#[derive(Debug, Default)]
pub(crate) struct HeadCache {
    /// The thread-name table's change counter; `None` when the table's
    /// lock was poisoned (nothing is kept then).
    generation: Option<Arc<AtomicU64>>,
    heads: Vec<Option<CachedHead>>,
    /// Printk formats parsed once.
    formats: FormatCache,
    /// Typed events' lines prepared once.
    types: TypeCache,
}

#[derive(Debug)]
struct CachedHead {
    pid: i32,
    flags: u8,
    preempt_count: u8,
    /// The table's change counter when `text` was made.
    generation: u64,
    text: String,
}

impl HeadCache {
    /// An empty cache for a tracer's rings.
    pub(crate) fn new(inner: &Inner) -> Self {
        HeadCache {
            generation: inner.cmdlines().lock().ok().map(|c| c.generation()),
            heads: Vec::new(),
            formats: FormatCache::default(),
            types: TypeCache::default(),
        }
    }
}

/// [`write_event`] into a `String`, the context columns taken from `cache`
/// when the ring's last line had the same thread, flags and thread name.
#[allow(clippy::too_many_arguments)]
pub(crate) fn write_event_cached(
    w: &mut String,
    inner: &Inner,
    opts: &TextOptions,
    cache: &mut HeadCache,
    ring: usize,
    timestamp: u64,
    lost_events: u64,
    payload: &[u8],
) -> fmt::Result {
    // Acquire: pairs with the Release increment in `Cmdlines::insert`.
    let Some(generation) = cache.generation.as_ref().map(|g| g.load(Ordering::Acquire)) else {
        return write_event(w, inner, opts, ring, timestamp, lost_events, payload);
    };
    if lost_events > 0 {
        write_lost_events(w, ring as u32, Some(lost_events))?;
    }
    let common = CommonFields::read(payload).map(|x| x.1).unwrap_or_default();
    if cache.heads.len() <= ring {
        cache.heads.resize_with(ring + 1, || None);
    }
    let slot = &mut cache.heads[ring];
    let hit = slot.as_ref().is_some_and(|h| {
        h.pid == common.pid
            && h.flags == common.flags
            && h.preempt_count == common.preempt_count
            && h.generation == generation
    });
    if !hit {
        let mut comm_buf = [0u8; COMM_BUF];
        let comm = comm_into(inner, common.pid, &mut comm_buf);
        let ctx = LineContext::of(&comm, &common, ring as u32, 0);
        let mut text = slot.take().map(|h| h.text).unwrap_or_default();
        text.clear();
        write_context_head(&mut text, opts.style, &ctx)?;
        *slot = Some(CachedHead {
            pid: common.pid,
            flags: common.flags,
            preempt_count: common.preempt_count,
            generation,
            text,
        });
    }
    if let Some(h) = slot {
        w.push_str(&h.text);
    }
    let (ts, tf) = time(inner, opts, timestamp);
    write_timestamp(w, ts, tf)?;
    w.push_str(": ");
    write_event_body_with(w, payload, Some((&mut cache.formats, &mut cache.types)))
}

/// A text buffer an event line goes into, whose end can be cut back: a
/// record found malformed halfway through is shown as `[FAILED TO PARSE]`
/// instead of its partial text.
pub(crate) trait LineBuf: Write {
    /// Bytes in the buffer.
    fn len(&self) -> usize;
    /// Drops the bytes after the first `len`.
    fn truncate(&mut self, len: usize);
    /// Whether the last byte is a newline.
    fn ends_with_newline(&self) -> bool;
}

impl LineBuf for String {
    fn len(&self) -> usize {
        String::len(self)
    }
    fn truncate(&mut self, len: usize) {
        // Only ever cut back to a length it had: a character boundary.
        if self.is_char_boundary(len) {
            String::truncate(self, len);
        }
    }
    fn ends_with_newline(&self) -> bool {
        self.ends_with('\n')
    }
}

impl LineBuf for FixedWriter<'_> {
    fn len(&self) -> usize {
        FixedWriter::len(self)
    }
    fn truncate(&mut self, len: usize) {
        FixedWriter::truncate(self, len);
    }
    fn ends_with_newline(&self) -> bool {
        self.as_bytes().last() == Some(&b'\n')
    }
}

/// Writes an event's `name: text` and a newline (not doubled when the
/// text ends with one, as binary printk formats often do): the text that
/// [`event_text`] gives, written in place without allocating (the pipe
/// into its reused buffer, the crash dump into a fixed one).
pub(crate) fn write_event_body<W: LineBuf>(w: &mut W, payload: &[u8]) -> fmt::Result {
    write_event_body_with(w, payload, None)
}

/// [`write_event_body`], printk formats and typed events' lines prepared
/// once in `caches` (a reader's; the crash dump, which must not allocate,
/// has none).
pub(crate) fn write_event_body_with<W: LineBuf>(
    w: &mut W,
    payload: &[u8],
    caches: Option<(&mut FormatCache, &mut TypeCache)>,
) -> fmt::Result {
    let Some((ty, _)) = CommonFields::read(payload) else {
        return w.write_str("<truncated record>: \n");
    };
    let start = w.len();
    // The function tracers' records as their graph lines; readers only
    // (the text is built in a String: the crash dump prints the fields).
    let graph = match caches {
        Some(_) => crate::fmt::funcgraph::record_text(ty, payload),
        None => None,
    };
    if let Some((name, text)) = graph {
        w.write_str(name)?;
        w.write_str(": ")?;
        w.write_str(&text)?;
        return w.write_char('\n');
    }
    match ty {
        BPRINT_ID => {
            let r = BprintFields::parse(payload).and_then(|f| {
                let site = site_by_fmt_addr(f.fmt).ok_or(FormatError::UnknownFormat(f.fmt))?;
                match caches {
                    // The id is in range: `site_by_fmt_addr` found it.
                    Some((c, _)) => c.write(w, ((f.fmt - FMT_ADDR_BASE) >> 4) as u32, site, f.args),
                    None => {
                        write_site(w, site.file(), site.line()).map_err(|_| FormatError::Output)?;
                        write_record(w, site.format(), f.args)
                    }
                }
            });
            match r {
                Ok(()) => {}
                Err(FormatError::Output) => return Err(fmt::Error),
                Err(e) => {
                    w.truncate(start);
                    write!(w, "bprint: [FAILED TO PARSE] {e}")?;
                }
            }
        }
        PRINT_ID => match payload.get(16..) {
            Some(text) => {
                let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
                w.write_str("tracing_mark_write: ")?;
                write_lossy(w, &text[..end])?;
            }
            None => write!(
                w,
                "print: [FAILED TO PARSE] {}",
                FormatError::NotBprint("shorter than 16 bytes")
            )?,
        },
        id => match Registry::global().get(id) {
            Some(t) => {
                let level = level_of(t.system, t.print_fmt);
                // The prepared lines carry no level: a `tracing` event's
                // line takes the general path.
                let prepared = match caches {
                    Some((_, types)) if level.is_none() => types.write(w, t, payload)?,
                    _ => false,
                };
                if !prepared {
                    w.write_str(t.name)?;
                    w.write_str(": ")?;
                    if let Some(l) = level {
                        w.write_str(l)?;
                        w.write_char(' ')?;
                    }
                    match t.write_fields(w, payload) {
                        Ok(r) => r?,
                        Err(e) => write!(w, "[FAILED TO PARSE] {e}")?,
                    }
                }
            }
            None => write!(w, "Unknown type {id}: ")?,
        },
    }
    if !w.ends_with_newline() {
        w.write_char('\n')?;
    }
    Ok(())
}

/// Room for a thread name copied out of the name table without an
/// allocation (longer names are allocated).
const COMM_BUF: usize = 64;

/// The name of thread `pid` as the pipe prints it (`<idle>` for 0, `<...>`
/// when unknown), copied into `buf` while the name table is locked.
fn comm_into<'b>(inner: &Inner, pid: i32, buf: &'b mut [u8; COMM_BUF]) -> Cow<'b, str> {
    if pid == 0 {
        return Cow::Borrowed("<idle>");
    }
    let Ok(c) = inner.cmdlines().lock() else {
        return Cow::Borrowed("<...>");
    };
    let Some(name) = c.get(pid) else {
        return Cow::Borrowed("<...>");
    };
    let name = name.as_str();
    if name.len() > buf.len() {
        return Cow::Owned(name.to_string());
    }
    buf[..name.len()].copy_from_slice(name.as_bytes());
    // A copy of a whole `str`: still valid UTF-8.
    Cow::Borrowed(std::str::from_utf8(&buf[..name.len()]).unwrap_or("<...>"))
}

/// The time stamp to print and how.
pub(crate) fn time(inner: &Inner, opts: &TextOptions, ts: u64) -> (u64, TimeFormat) {
    let clock = inner.clock();
    if opts.ns_timestamps && clock.tsc2nsec().is_some() {
        (clock.to_ns(ts), TimeFormat::Nanoseconds)
    } else {
        (ts, TimeFormat::for_clock(clock.is_nanoseconds()))
    }
}

/// [`Tracer::header_text`].
pub(crate) fn header_text(tracer: &Tracer, style: Style) -> String {
    let mut entries = 0;
    let mut written = 0;
    for r in 0..tracer.max_contexts() {
        if let Ok(s) = tracer.inner.buf().stats(r) {
            entries += s.entries;
            // The kernel's `entries-written`: unread plus overwritten
            // (`get_total_entries`); events already read are not counted.
            written += s.entries + s.overrun;
        }
    }
    crate::text::header(
        style,
        &crate::text::Header {
            tracer: "nop",
            entries,
            written,
            contexts: tracer.max_contexts() as u32,
        },
    )
}
