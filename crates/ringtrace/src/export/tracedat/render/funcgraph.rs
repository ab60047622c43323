//! The function tracers' records of a trace.dat file as their graph lines
//! (`crate::fmt::funcgraph`), their functions named by the file's kallsyms
//! section, as `trace-cmd report` prints them; and the leaf merge: an entry
//! whose exit is the next record prints once, as `name();` with the
//! duration.

use std::borrow::Cow;

use super::{FileRenderer, RenderOptions};
use crate::export::tracedat::error::TraceDatError;
use crate::export::tracedat::layout::FTRACE_SYSTEM;
use crate::export::tracedat::read::{DecodedRecord, FieldValue, TraceDatRecord, TraceItem};
use crate::fmt::funcgraph::{exit, function, leaf, nested_entry, unnamed};

/// The value of the unsigned field `name` of `d`.
fn unsigned(d: &DecodedRecord<'_>, name: &str) -> Option<u64> {
    d.fields.iter().find_map(|(n, v)| match v {
        FieldValue::Unsigned(u) if *n == name => Some(*u),
        _ => None,
    })
}

/// Whether `d` is the `ftrace` event `name`.
fn is(d: &DecodedRecord<'_>, name: &str) -> bool {
    d.format.system == FTRACE_SYSTEM && d.format.name == name
}

impl FileRenderer<'_> {
    /// The name of the function at `addr`, as trace-cmd prints it.
    fn func(&self, addr: u64) -> Cow<'_, str> {
        match self.symbols.get(&addr) {
            Some(s) => Cow::Borrowed(*s),
            None => Cow::Owned(unnamed(addr)),
        }
    }

    /// The graph text of a `funcgraph_entry` (nested form),
    /// `funcgraph_exit` or `function` record; `None` for other records.
    pub(super) fn function_text(&self, d: &DecodedRecord<'_>) -> Option<String> {
        if d.format.system != FTRACE_SYSTEM {
            return None;
        }
        let f = |name| unsigned(d, name).unwrap_or(0);
        match d.format.name.as_str() {
            "funcgraph_entry" => Some(nested_entry(f("depth") as u32, &self.func(f("func")))),
            "funcgraph_exit" => Some(exit(f("depth") as u32, f("calltime"), f("rettime"))),
            "function" => Some(function(&self.func(f("ip")))),
            _ => None,
        }
    }

    /// Whether `next` is the exit of the `funcgraph_entry` `entry` (same
    /// thread, same function): trace-cmd then prints the pair as one leaf
    /// line. Records that do not decode are no pair.
    #[must_use]
    pub fn is_leaf_pair(&self, entry: &TraceDatRecord, next: &TraceDatRecord) -> bool {
        // Most records are no entry: their type says so without a decode.
        let type_of = |r: &TraceDatRecord| {
            let b = [*r.data.first()?, *r.data.get(1)?];
            Some(u32::from(if self.info.big_endian {
                u16::from_be_bytes(b)
            } else {
                u16::from_le_bytes(b)
            }))
        };
        let named = |r, name: &str| {
            type_of(r)
                .and_then(|id| self.info.event_by_id(id))
                .is_some_and(|f| f.system == FTRACE_SYSTEM && f.name == name)
        };
        if !named(entry, "funcgraph_entry") || !named(next, "funcgraph_exit") {
            return false;
        }
        let (Ok(e), Ok(x)) = (self.info.decode(entry), self.info.decode(next)) else {
            return false;
        };
        is(&e, "funcgraph_entry")
            && is(&x, "funcgraph_exit")
            && e.pid == x.pid
            && unsigned(&e, "func") == unsigned(&x, "func")
    }

    /// Writes the line of `entry` merged with its exit `exit` (a pair
    /// [`is_leaf_pair`](Self::is_leaf_pair) accepted): the entry's context
    /// columns, then `name();` with the exit's duration.
    pub fn write_leaf_line(
        &self,
        out: &mut String,
        entry: &TraceDatRecord,
        exit: &TraceDatRecord,
        opts: &RenderOptions,
    ) -> Result<(), TraceDatError> {
        let mut view = self.view(entry)?;
        let x = self.info.decode(exit)?;
        let f = |d: &DecodedRecord<'_>, name| unsigned(d, name).unwrap_or(0);
        let name = self.func(f(&view.decoded, "func"));
        let text = leaf(
            f(&view.decoded, "depth") as u32,
            &name,
            f(&x, "calltime"),
            f(&x, "rettime"),
        );
        view.message = Some(text);
        self.write_view_line(out, entry, view, opts);
        Ok(())
    }
}

/// One record of a report, and the exit merged into it when it is a leaf
/// entry (print it with [`FileRenderer::write_leaf_line`]).
pub type WithLeaf = (Result<TraceItem, TraceDatError>, Option<TraceDatRecord>);

/// The records of a file with each leaf entry paired with its exit, as
/// `trace-cmd report` pairs them: a `funcgraph_entry` whose next record
/// (in the merged time order) is its own exit takes that exit along;
/// every other record passes alone. Made by [`FileRenderer::leaves`].
#[derive(Debug)]
pub struct Leaves<'r, I> {
    inner: I,
    render: &'r FileRenderer<'r>,
    on: bool,
    /// A record read to look at and not yet given out.
    peeked: Option<Result<TraceItem, TraceDatError>>,
}

impl<'r> FileRenderer<'r> {
    /// `records` (a reader's [`records`](crate::tracedat::TraceDatReader::records))
    /// with leaf entries paired with their exits when `on`; off, each
    /// record alone (for a filtered report, which could hide one of a
    /// pair).
    pub fn leaves<I>(&'r self, records: I, on: bool) -> Leaves<'r, I> {
        Leaves {
            inner: records,
            render: self,
            on,
            peeked: None,
        }
    }
}

impl<I: Iterator<Item = Result<TraceItem, TraceDatError>>> Iterator for Leaves<'_, I> {
    type Item = WithLeaf;

    fn next(&mut self) -> Option<WithLeaf> {
        let item = self.peeked.take().or_else(|| self.inner.next())?;
        if !self.on {
            return Some((item, None));
        }
        if let Ok(TraceItem::Event(entry)) = &item {
            match self.inner.next() {
                Some(Ok(TraceItem::Event(next))) if self.render.is_leaf_pair(entry, &next) => {
                    return Some((item, Some(next)));
                }
                other => self.peeked = other,
            }
        }
        Some((item, None))
    }
}
