//! Turning the records of a `trace.dat` file into what people read: the
//! live reader's ftrace text lines ([`crate::output`]) and the values the
//! JSON export needs, using only what the file carries (its event formats,
//! its `printk_formats` and kallsyms sections, its thread names), never the
//! process's own registries.
//!
//! What each kind of record becomes, matching [`crate::output::event_text`]
//! for the live tracer:
//!
//! ```text
//! ftrace/bprint   name = the kallsyms name of `ip` ("file:line"), text = the
//!                 format (from printk_formats, by the `fmt` address) applied
//!                 to the packed arguments
//! ftrace/print    name = "tracing_mark_write", text = the bytes after `ip`
//! ftrace/funcgraph_entry, funcgraph_exit, function
//!                 name = the event's, text = its function-graph line
//!                 (`render/funcgraph.rs`; the leaf merge of an entry and
//!                 its exit is `FileRenderer::write_leaf_line`)
//! anything else   name = the format's name, text = "field=value ..." of its
//!                 own fields (fixed arrays as hex bytes, like render_fields)
//! ```
//!
//! This module only formats; it does not read the file ([`super::read`]).

mod funcgraph;
pub use funcgraph::{Leaves, WithLeaf};

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;

use super::error::TraceDatError;
use super::read::{DecodedRecord, FieldValue, TraceDatInfo, TraceDatRecord};
use super::walk::RecordRef;
use crate::printk::{format_record, BPRINT_ARGS_OFFSET};
use crate::text::{
    write_context, write_event_line, write_lost_events, LineContext, Style, TimeFormat,
};

/// A decoded record with the name and text the live reader would print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventView<'a> {
    /// The decoded fields (format, common fields, own fields).
    pub decoded: DecodedRecord<'a>,
    /// The name shown on the line (`file:line` for binary printk).
    pub name: Cow<'a, str>,
    /// The formatted message of a `bprint` or `print` record.
    pub message: Option<String>,
}

impl EventView<'_> {
    /// The event's system (`ftrace` for print and bprint).
    pub fn system(&self) -> &str {
        &self.decoded.format.system
    }

    /// The text after `name: `: the message, or the fields as `name=value`.
    pub fn text(&self) -> String {
        match &self.message {
            Some(m) => m.clone(),
            None => fields_text(&self.decoded.fields),
        }
    }
}

/// `name=value` pairs of `fields`, separated by spaces; byte arrays as
/// space-separated hex bytes (as [`crate::event::EventType::render_fields`]).
#[doc(hidden)]
pub fn fields_text(fields: &[(&str, FieldValue)]) -> String {
    let mut out = String::new();
    fields_text_into(&mut out, fields);
    out
}

/// [`fields_text`] written into `out` (cleared first), so that a caller
/// reuses one buffer.
pub(crate) fn fields_text_into(out: &mut String, fields: &[(&str, FieldValue)]) {
    out.clear();
    for (name, v) in fields {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(name);
        out.push('=');
        match v {
            FieldValue::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    match x {
                        FieldValue::Unsigned(u) if *u <= 0xff => {
                            let _ = write!(out, "{u:02x}");
                        }
                        other => {
                            let _ = write!(out, "{other}");
                        }
                    }
                }
            }
            FieldValue::Bytes(b) => {
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    let _ = write!(out, "{x:02x}");
                }
            }
            // Integers without the formatting machinery (same digits).
            FieldValue::Unsigned(u) => out.push_str(itoa::Buffer::new().format(*u)),
            FieldValue::Signed(i) => out.push_str(itoa::Buffer::new().format(*i)),
            other => {
                let _ = write!(out, "{other}");
            }
        }
    }
}

/// Undoes the kernel's escaping of a `printk_formats` entry.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some('"') => out.push('"'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Renders the records of one file. Built once per file: it indexes the
/// printk formats and kallsyms by address.
#[derive(Debug)]
pub struct FileRenderer<'a> {
    info: &'a TraceDatInfo,
    printk: HashMap<u64, String>,
    symbols: HashMap<u64, &'a str>,
    stack: super::stack_text::StackSymbols<'a>,
}

/// Options of [`FileRenderer::write_line`], like `trace-cmd report`'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// Line style (as the live reader's [`crate::output::TextOptions`]).
    pub style: Style,
    /// Print every record's own fields raw (`-R`): `name=value` pairs, even
    /// for binary printk.
    pub raw: bool,
    /// Print time stamps in nanoseconds (`-t`; TSC values are converted).
    pub ns_timestamps: bool,
    /// Name stack trace callers as `symbol+0xOFFSET` (trace.c's
    /// `sym-offset` option).
    pub sym_offset: bool,
}

impl<'a> FileRenderer<'a> {
    /// A renderer for the records of the file `info` describes.
    pub fn new(info: &'a TraceDatInfo) -> Self {
        let printk = info
            .printk
            .iter()
            .map(|(addr, fmt)| (*addr, unescape(fmt)))
            .collect();
        let mut symbols = HashMap::new();
        for line in info.kallsyms.lines() {
            let mut parts = line.split_whitespace();
            let (Some(addr), Some(_kind), Some(name)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if let Ok(a) = u64::from_str_radix(addr, 16) {
                symbols.insert(a, name);
            }
        }
        FileRenderer {
            info,
            printk,
            symbols,
            stack: super::stack_text::StackSymbols::from_kallsyms(&info.kallsyms),
        }
    }

    /// The file's metadata.
    pub fn info(&self) -> &'a TraceDatInfo {
        self.info
    }

    /// Decodes `rec` and names it; formats binary printk and marker records.
    /// A printk record whose format is not in the file gets a
    /// `[FAILED TO PARSE]` message (as the live reader prints), not an error;
    /// a record that does not match its format is an error.
    ///
    /// `rec` is a [`TraceDatRecord`] or a [`RecordRef`] of a walk.
    pub fn view<'r>(&self, rec: impl Into<RecordRef<'r>>) -> Result<EventView<'a>, TraceDatError> {
        let rec = rec.into();
        let (decoded, plan) = self.info.decode_planned(&rec)?;
        let format = decoded.format;
        let u64_field = |name: &str| {
            decoded.fields.iter().find_map(|(n, v)| match v {
                FieldValue::Unsigned(u) if *n == name => Some(*u),
                _ => None,
            })
        };
        if format.system == super::layout::FTRACE_SYSTEM && format.name == "bprint" {
            let ip = u64_field("ip").unwrap_or(0);
            let fmt = u64_field("fmt").unwrap_or(0);
            let name = match self.symbols.get(&ip) {
                Some(s) => Cow::Borrowed(*s),
                None => Cow::Owned(format!("0x{ip:x}")),
            };
            let args = rec.data.get(BPRINT_ARGS_OFFSET..).unwrap_or_default();
            let message = match self.printk.get(&fmt) {
                Some(f) => match format_record(f, args) {
                    Ok(m) => m,
                    Err(e) => format!("[FAILED TO PARSE] {e}"),
                },
                None => format!("[FAILED TO PARSE] no printk format at 0x{fmt:x}"),
            };
            return Ok(EventView {
                decoded,
                name,
                message: Some(message),
            });
        }
        if format.system == super::layout::FTRACE_SYSTEM && format.name == "print" {
            let text = format
                .field("buf")
                .and_then(|f| rec.data.get(f.offset..))
                .unwrap_or_default();
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            let message = String::from_utf8_lossy(&text[..end]).into_owned();
            return Ok(EventView {
                decoded,
                name: Cow::Borrowed("tracing_mark_write"),
                message: Some(message),
            });
        }
        if let Some(message) = self.function_text(&decoded) {
            return Ok(EventView {
                name: Cow::Borrowed(format.name.as_str()),
                decoded,
                message: Some(message),
            });
        }
        let mut decoded = decoded;
        // Flexible arrays (size 0) carry nothing a field list can show.
        // `fields` holds one value per field of the format, in order.
        if plan.any_unlisted {
            let mut listed = plan.fields.iter().map(|p| p.listed);
            decoded.fields.retain(|_| listed.next().unwrap_or(true));
        }
        Ok(EventView {
            name: Cow::Borrowed(format.name.as_str()),
            decoded,
            message: None,
        })
    }

    /// The thread name of `pid` as the text output shows it.
    pub fn comm(&self, pid: i32) -> &'a str {
        match (pid, self.info.comm(pid)) {
            (0, _) => "<idle>",
            (_, Some(c)) => c,
            (_, None) => "<...>",
        }
    }

    /// How time stamps of this file print, and the value to print for `ts`.
    pub fn time(&self, ts: u64, ns: bool) -> (u64, TimeFormat) {
        let clock = self.info.clock.as_deref().unwrap_or("mono");
        let ns_clock = matches!(
            clock,
            "local" | "global" | "uptime" | "perf" | "mono" | "mono_raw" | "tai" | "boot"
        );
        if ns && (ns_clock || self.info.tsc2nsec.is_some()) {
            (self.info.ts_ns(ts), TimeFormat::Nanoseconds)
        } else {
            (ts, TimeFormat::for_clock(ns_clock))
        }
    }

    /// Writes one record as the live reader prints it (a record whose
    /// fields cannot be decoded is an error naming the record).
    pub fn write_line(
        &self,
        out: &mut String,
        rec: &TraceDatRecord,
        opts: &RenderOptions,
    ) -> Result<(), TraceDatError> {
        let view = self.view(rec)?;
        self.write_view_line(out, rec, view, opts);
        Ok(())
    }

    /// Writes the line of `rec`, whose view is `view`.
    fn write_view_line(
        &self,
        out: &mut String,
        rec: &TraceDatRecord,
        view: EventView<'_>,
        opts: &RenderOptions,
    ) {
        let (ts, tf) = self.time(rec.ts, opts.ns_timestamps);
        let d = &view.decoded;
        let ctx = LineContext {
            comm: self.comm(d.pid),
            pid: d.pid,
            cpu: rec.cpu,
            flags: d.flags,
            preempt_count: d.preempt_count,
            ts,
        };
        let (name, text) = if opts.raw {
            (Cow::Borrowed(d.format.name.as_str()), self.raw_text(&view))
        } else if let Some(t) = self.stack.user_stack_text(d, opts.sym_offset) {
            (view.name.clone(), t)
        } else {
            match crate::output::level_of(&d.format.system, &d.format.print_fmt) {
                // As trace-cmd prints a `tracing` event: its level first.
                Some(l) => (view.name.clone(), format!("{l} {}", view.text())),
                None => (view.name.clone(), view.text()),
            }
        };
        if opts.ns_timestamps && tf == TimeFormat::Nanoseconds {
            // `secs.nsecs`, as `trace-cmd report -t` prints (the live
            // reader's formats stop at microseconds).
            let _ = write_context(
                out,
                opts.style,
                TimeFormat::Raw,
                &LineContext { ts: 0, ..ctx },
            );
            // Replace the raw zero stamp (" {:12}: ") by the ns stamp.
            let cut = out.len() - ": ".len() - 13;
            out.truncate(cut);
            let _ = write!(out, " {:5}.{:09}: ", ts / 1_000_000_000, ts % 1_000_000_000);
            out.push_str(&name);
            out.push_str(": ");
            out.push_str(&text);
            if !text.ends_with('\n') {
                out.push('\n');
            }
        } else {
            let _ = write_event_line(out, opts.style, tf, &ctx, &name, &text);
        }
    }

    /// The `-R` text of a record: its own fields as `name=value`; for a
    /// marker (`ftrace/print`) as `trace-cmd report -R` prints it, the
    /// `ip` as its symbol and the text (`buf`, a flexible array the field
    /// list leaves out) in full.
    fn raw_text(&self, view: &EventView<'_>) -> String {
        let d = &view.decoded;
        let marker = d.format.system == super::layout::FTRACE_SYSTEM && d.format.name == "print";
        match (&view.message, marker) {
            (Some(message), true) => {
                let ip = d.fields.iter().find_map(|(n, v)| match v {
                    FieldValue::Unsigned(u) if *n == "ip" => Some(*u),
                    _ => None,
                });
                let ip = match ip.and_then(|a| self.symbols.get(&a)) {
                    Some(sym) => (*sym).to_string(),
                    None => format!("0x{:x}", ip.unwrap_or(0)),
                };
                format!("ip={ip} buf={}", message.trim_end_matches('\n'))
            }
            _ => fields_text(&d.fields),
        }
    }

    /// Writes a lost-events line (`CPU:N [LOST n EVENTS]`).
    pub fn write_lost(&self, out: &mut String, cpu: u32, count: Option<u64>) {
        let _ = write_lost_events(out, cpu, count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_kernel_escapes() {
        assert_eq!(unescape(r#"a\n\t\"q\"\\ \x"#), "a\n\t\"q\"\\ \\x");
    }
}
