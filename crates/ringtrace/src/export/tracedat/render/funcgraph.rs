//! The function tracers' records of a trace.dat file as their graph lines
//! (`crate::fmt::funcgraph`), their functions named by the file's kallsyms
//! section, as `trace-cmd report` prints them; and the leaf merge: an entry
//! whose exit is the next record prints once, as `name();` with the
//! duration.

use std::borrow::Cow;

use super::{FileRenderer, RenderOptions};
use crate::export::tracedat::error::TraceDatError;
use crate::export::tracedat::layout::FTRACE_SYSTEM;
use crate::export::tracedat::read::{DecodedRecord, FieldValue, TraceDatRecord};
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
