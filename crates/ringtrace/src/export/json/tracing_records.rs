//! The JSON of the records the `tracing` layer writes: call-site events
//! with their level, target, module and location, span entries as `B` /
//! `E` slices carrying the span's fields, and span lifetimes as async
//! slices (`b` / `e`, as tracing-chrome's `TraceStyle::Async` shows them)
//! with the span's entries nested inside.
//!
//! ```text
//! {"ph":"i","s":"t",...,"name":"served","cat":"tracing","args":{"level":"INFO","target":"app",
//!     "module_path":"app","file":"src/main.rs","line":42,"message":"served page","bytes":4096}}
//! {"ph":"b",...,"name":"conn","cat":"tracing","id":5,"args":{"id":5,"level":"INFO",...,"peer":"a"}}  <- creation
//! {"ph":"B",...,"name":"conn","cat":"ringtrace","args":{"id":5,"peer":"a"}}                         <- span_begin
//! {"ph":"b",...,"name":"conn","cat":"tracing","id":5,"args":{}}                                     <- the entry, in the lifetime
//! {"ph":"e",...,"name":"conn","cat":"tracing","id":5,"args":{}}
//! {"ph":"E",...,"name":"conn","cat":"ringtrace","args":{"id":5}}                                    <- span_end
//! {"ph":"e",...,"name":"conn","cat":"tracing","id":5,"args":{}}                                     <- span_close
//! ```
//!
//! Span ids follow [`spans`](super::spans): unique over the trace, strings
//! where a number would not do.

use std::io::{self, Write};
use std::sync::Arc;

use super::spans::SpanId;
use super::{JsonError, JsonWriter, SPAN_BEGIN, SPAN_CLOSE, SPAN_END, SPAN_SYSTEM, TRACING_SYSTEM};
use crate::export::callsite::{parse_head, CallsiteHead};
use crate::tracedat::{EventFormat, EventView, FieldValue};

/// One arg: a string, or a decoded value.
enum Arg<'a> {
    Str(&'a str),
    Value(&'a FieldValue),
}

impl<W: Write> JsonWriter<W> {
    /// Writes `view` if it is one of the `tracing` layer's records (a
    /// call-site event, a span's creation or new values, an entry, an exit,
    /// a close); `false` when it is not (the caller writes it as usual).
    pub(super) fn tracing_record(
        &mut self,
        view: &EventView<'_>,
        ts: f64,
    ) -> Result<bool, JsonError> {
        let d = &view.decoded;
        let system = view.system();
        if system == SPAN_SYSTEM {
            let (Some(raw), Some(name)) =
                (u64_field(&d.fields, "id"), str_field(&d.fields, "name"))
            else {
                return Ok(false);
            };
            match d.format.name.as_str() {
                SPAN_BEGIN => self.span_enter(d.pid, ts, raw, name)?,
                SPAN_END => self.span_exit(d.pid, ts, raw)?,
                SPAN_CLOSE => {
                    if let Some(id) = self.spans.close(raw) {
                        self.async_edge("e", d.pid, ts, name, &id, None, &[])?;
                    }
                }
                _ => return Ok(false),
            }
            return Ok(true);
        }
        if system != TRACING_SYSTEM {
            return Ok(false);
        }
        let Some(head) = self.head_of(d.format) else {
            return Ok(false);
        };
        if !head.span {
            self.head("i", d.pid, ts, &view.name, system)?;
            self.args_of(None, Some(&head), &d.fields)?;
            self.stats.instants += 1;
            return Ok(true);
        }
        let Some(raw) = u64_field(&d.fields, "span_id") else {
            return Ok(false);
        };
        let fields: Vec<(&str, FieldValue)> = d
            .fields
            .iter()
            .filter(|(n, _)| *n != "span_id")
            .cloned()
            .collect();
        if let Some(id) = self.spans.record(raw, &fields) {
            self.async_edge("b", d.pid, ts, &view.name, &id, Some(&head), &fields)?;
            self.stats.lifetimes += 1;
        }
        Ok(true)
    }

    /// The call-site head of `format` (parsed once per format).
    fn head_of(&mut self, format: &EventFormat) -> Option<Arc<CallsiteHead>> {
        self.heads
            .entry(format.id)
            .or_insert_with(|| parse_head(&format.print_fmt).map(Arc::new))
            .clone()
    }

    /// A `span_begin`: a `B` slice with the span's id and fields, and the
    /// entry nested in the span's lifetime when that is open.
    fn span_enter(&mut self, tid: i32, ts: f64, raw: u64, name: &str) -> Result<(), JsonError> {
        let entered = self.spans.enter(tid, raw, name);
        let (id, alive) = (entered.id.clone(), entered.alive);
        let fields: Vec<(String, FieldValue)> = entered.fields.to_vec();
        let fields: Vec<(&str, FieldValue)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.clone()))
            .collect();
        self.head("B", tid, ts, name, SPAN_SYSTEM)?;
        self.args_of(Some(&id), None, &fields)?;
        self.stats.begins += 1;
        if alive {
            self.async_edge("b", tid, ts, name, &id, None, &[])?;
        }
        Ok(())
    }

    /// A `span_end`: `E` for it (and first for spans entered inside it
    /// whose exit is missing), or nothing when it was not entered here.
    fn span_exit(&mut self, tid: i32, ts: f64, raw: u64) -> Result<(), JsonError> {
        // The nested entry ends first, then the slice: the reverse of
        // `span_enter`.
        for (id, alive, name) in self.spans.exit(tid, raw) {
            if alive {
                self.async_edge("e", tid, ts, &name, &id, None, &[])?;
            }
            self.head("E", tid, ts, &name, SPAN_SYSTEM)?;
            self.args_of(Some(&id), None, &[])?;
            self.stats.ends += 1;
        }
        Ok(())
    }

    /// An async event (`b` or `e`) of span `id`'s lifetime track.
    #[allow(clippy::too_many_arguments)]
    fn async_edge(
        &mut self,
        ph: &str,
        tid: i32,
        ts: f64,
        name: &str,
        id: &SpanId,
        head: Option<&CallsiteHead>,
        fields: &[(&str, FieldValue)],
    ) -> io::Result<()> {
        self.head(ph, tid, ts, name, TRACING_SYSTEM)?;
        self.out.write_all(b",\"id\":")?;
        serde_json::to_writer(&mut self.out, &id.json()).map_err(io::Error::other)?;
        if ph == "b" && head.is_some() {
            self.args_of(Some(id), head, fields)
        } else {
            self.out.write_all(b",\"args\":{}}")
        }
    }

    /// `,"args":{...}}`: the span id, the call site's level, target,
    /// module, file and line, then `fields`.
    fn args_of(
        &mut self,
        id: Option<&SpanId>,
        head: Option<&CallsiteHead>,
        fields: &[(&str, FieldValue)],
    ) -> io::Result<()> {
        self.out.write_all(b",\"args\":{")?;
        let mut first = true;
        if let Some(id) = id {
            self.key(&mut first, "id")?;
            serde_json::to_writer(&mut self.out, &id.json()).map_err(io::Error::other)?;
        }
        if let Some(h) = head {
            let line = FieldValue::Unsigned(u64::from(h.line));
            let site = [
                ("level", Arg::Str(&h.level)),
                ("target", Arg::Str(&h.target)),
                ("module_path", Arg::Str(&h.module)),
                ("file", Arg::Str(&h.file)),
                ("line", Arg::Value(&line)),
            ];
            for (k, v) in site {
                self.arg(&mut first, k, v)?;
            }
        }
        for (k, v) in fields {
            self.arg(&mut first, k, Arg::Value(v))?;
        }
        self.out.write_all(b"}}")
    }

    fn key(&mut self, first: &mut bool, k: &str) -> io::Result<()> {
        if !std::mem::take(first) {
            self.out.write_all(b",")?;
        }
        serde_json::to_writer(&mut self.out, k).map_err(io::Error::other)?;
        self.out.write_all(b":")
    }

    fn arg(&mut self, first: &mut bool, k: &str, v: Arg<'_>) -> io::Result<()> {
        self.key(first, k)?;
        match v {
            Arg::Str(s) => serde_json::to_writer(&mut self.out, s).map_err(io::Error::other),
            Arg::Value(v) => super::write_value(&mut self.out, v).map_err(|e| match e {
                JsonError::Io(e) => e,
                other => io::Error::other(other.to_string()),
            }),
        }
    }
}

fn u64_field(fields: &[(&str, FieldValue)], name: &str) -> Option<u64> {
    fields.iter().find_map(|(n, v)| match v {
        FieldValue::Unsigned(u) if *n == name => Some(*u),
        _ => None,
    })
}

fn str_field<'a>(fields: &'a [(&str, FieldValue)], name: &str) -> Option<&'a str> {
    fields.iter().find_map(|(n, v)| match v {
        FieldValue::Str(s) if *n == name => Some(s.as_str()),
        _ => None,
    })
}
