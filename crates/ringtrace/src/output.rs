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

use crate::event::{CommonFields, Registry};
use crate::printk::{format_bprint, format_print, BPRINT_ID, PRINT_ID};
use crate::text::{
    write_context, write_event_line, write_lost_events, LineContext, Style, TimeFormat,
};
use crate::tracer::{Inner, Tracer};

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
#[must_use]
pub fn event_text(payload: &[u8]) -> (Cow<'static, str>, String) {
    let Some((ty, _)) = CommonFields::read(payload) else {
        return (Cow::Borrowed("<truncated record>"), String::new());
    };
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
                Ok(text) => (Cow::Borrowed(t.name), text),
                Err(e) => (Cow::Borrowed(t.name), format!("[FAILED TO PARSE] {e}")),
            },
            None => (Cow::Owned(format!("Unknown type {id}")), String::new()),
        },
    }
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
pub(crate) fn write_event<W: Write>(
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
    let ctx = LineContext {
        comm: &comm,
        pid: common.pid,
        cpu: ring as u32,
        flags: common.flags,
        preempt_count: common.preempt_count,
        ts,
    };
    // A binary printk, the common case, is named by its call site: written
    // in place rather than through a `file:line` String (the same text as
    // `event_text` gives).
    if let Some((BPRINT_ID, _)) = CommonFields::read(payload) {
        if let Ok((site, text)) = format_bprint(payload) {
            write_context(w, opts.style, tf, &ctx)?;
            write!(w, "{}:{}: ", site.file(), site.line())?;
            w.write_str(&text)?;
            if !text.ends_with('\n') {
                w.write_char('\n')?;
            }
            return Ok(());
        }
    }
    let (name, text) = event_text(payload);
    write_event_line(w, opts.style, tf, &ctx, &name, &text)
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

impl Tracer {
    /// The `trace` file header for this tracer (`# tracer: nop`, the
    /// entries line, the column legend), with the current counters.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(3).build().unwrap();
    /// assert!(t.header_text(ringtrace::text::Style::default()).contains("#P:3\n"));
    /// ```
    #[must_use]
    pub fn header_text(&self, style: Style) -> String {
        let mut entries = 0;
        let mut written = 0;
        for r in 0..self.max_contexts() {
            if let Ok(s) = self.inner.buf().stats(r) {
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
                contexts: self.max_contexts() as u32,
            },
        )
    }
}
