//! The function-graph text: what `trace-cmd report` prints for ftrace's
//! `funcgraph_entry`, `funcgraph_exit` and `function` records (its
//! `lib/trace-cmd/trace-ftrace.c` handlers, which follow the kernel's
//! `trace_functions_graph.c`), as plain functions of the fields.
//!
//! ```text
//! nested entry   "  " + "           |  " + indent + "name() {"
//! leaf           mark + duration + indent + "name();"        (entry and its exit merged)
//! exit           mark + duration + indent + "}"
//! function       "name"    (trace-cmd 3.1.6 prints the parent only with
//!                          its `-O` option; `-R` shows `parent_ip`)
//! indent         2 spaces per depth
//! duration       usecs, '.', nsecs cut so the number stays within 7 characters,
//!                " us ", padded to the width, "|  "
//! mark           "$ " > 1 s, "# " > 1 ms, "! " > 100 us, "+ " > 10 us, else "  "
//! ```
//!
//! The line functions take plain values; [`record_text`] decodes a live
//! record (the record room's layout) for the pipe and the view, which show
//! each record alone (entries as `name() {`: the leaf merge needs the next
//! record, which `ringtrace report` has).

use std::fmt::Write as _;

use crate::record::funcgraph::{func_name, FUNCGRAPH_ENTRY_ID, FUNCGRAPH_EXIT_ID, FUNCTION_ID};

/// Spaces per level of depth (the kernel's `TRACE_GRAPH_INDENT`).
const INDENT: usize = 2;

/// The overhead mark of a duration in nanoseconds.
fn mark(ns: u64) -> &'static str {
    match ns {
        n if n > 1_000_000_000 => "$ ",
        n if n > 1_000_000 => "# ",
        n if n > 100_000 => "! ",
        n if n > 10_000 => "+ ",
        _ => "  ",
    }
}

/// The mark, the duration column and the bar, for `ns`.
fn duration(out: &mut String, ns: u64) {
    out.push_str(mark(ns));
    let start = out.len();
    let _ = write!(out, "{}", ns / 1000);
    let digits = out.len() - start;
    if digits < 7 {
        // As the kernel's snprintf into a buffer of min(5, 8 - digits):
        // at most 7 - digits characters of the 3-digit remainder.
        let rem = format!("{:03}", ns % 1000);
        let keep = rem.len().min(7 - digits).min(4);
        out.push('.');
        out.push_str(&rem[..keep]);
    }
    let width = out.len() - start;
    out.push_str(" us ");
    for _ in width..7 {
        out.push(' ');
    }
    out.push_str("|  ");
}

fn indent(out: &mut String, depth: u32) {
    let n = (depth as usize).saturating_mul(INDENT).min(4096);
    out.extend(std::iter::repeat_n(' ', n));
}

/// A `funcgraph_entry` whose exit is not the next record: `name() {`.
#[must_use]
pub fn nested_entry(depth: u32, name: &str) -> String {
    let mut out = String::from("  ");
    out.push_str("           |  ");
    indent(&mut out, depth);
    let _ = write!(out, "{name}() {{");
    out
}

/// A `funcgraph_entry` merged with its exit (the next record): `name();`
/// with the duration `rettime - calltime`.
#[must_use]
pub fn leaf(depth: u32, name: &str, calltime: u64, rettime: u64) -> String {
    let mut out = String::new();
    duration(&mut out, rettime.wrapping_sub(calltime));
    indent(&mut out, depth);
    let _ = write!(out, "{name}();");
    out
}

/// A `funcgraph_exit`: `}` with the duration.
#[must_use]
pub fn exit(depth: u32, calltime: u64, rettime: u64) -> String {
    let mut out = String::new();
    duration(&mut out, rettime.wrapping_sub(calltime));
    indent(&mut out, depth);
    out.push('}');
    out
}

/// A `function` record: the function's name.
#[must_use]
pub fn function(name: &str) -> String {
    name.to_string()
}

/// A function's address as trace-cmd prints one it cannot name.
#[must_use]
pub fn unnamed(addr: u64) -> String {
    format!("0x{addr:x}")
}

/// The `u64` at `at` of a record, native order.
fn u64_at(rec: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(rec.get(at..at + 8)?.try_into().ok()?))
}

/// The `u32` at `at` of a record, native order.
fn u32_at(rec: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(rec.get(at..at + 4)?.try_into().ok()?))
}

/// The name of the function at `addr`, as trace-cmd prints it.
fn name_of(addr: u64) -> String {
    match func_name(addr) {
        Some(n) => n.to_string(),
        None => unnamed(addr),
    }
}

/// The event name and text of a function record of type `ty` (a
/// `funcgraph_entry`, `funcgraph_exit` or `function`), `None` for other
/// types; a record too short for its fields says so.
pub(crate) fn record_text(ty: u16, rec: &[u8]) -> Option<(&'static str, String)> {
    let short = |name| (name, "[FAILED TO PARSE] record too short".to_string());
    Some(match ty {
        FUNCGRAPH_ENTRY_ID => match (u64_at(rec, 8), u32_at(rec, 16)) {
            (Some(f), Some(d)) => ("funcgraph_entry", nested_entry(d, &name_of(f))),
            _ => short("funcgraph_entry"),
        },
        FUNCGRAPH_EXIT_ID => match (u32_at(rec, 16), u64_at(rec, 24), u64_at(rec, 32)) {
            (Some(d), Some(c), Some(r)) => ("funcgraph_exit", exit(d, c, r)),
            _ => short("funcgraph_exit"),
        },
        FUNCTION_ID => match u64_at(rec, 8) {
            Some(ip) => ("function", function(&name_of(ip))),
            None => short("function"),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fit_the_kernels_column() {
        assert_eq!(exit(0, 0, 412), "  0.412 us   |  }");
        assert_eq!(exit(1, 0, 12_345), "+ 12.345 us  |    }");
        assert_eq!(exit(0, 0, 123_456_789), "# 123456.7 us |  }");
        assert_eq!(exit(0, 0, 12_345_678_901), "$ 12345678 us |  }");
        assert_eq!(leaf(2, "f", 10, 1_010), "  1.000 us   |      f();");
        assert_eq!(nested_entry(1, "g"), "             |    g() {");
    }
}
