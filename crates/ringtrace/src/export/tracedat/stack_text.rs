//! `user_stack` records (stack traces on events) as `ringtrace report`
//! prints them: each caller named by the nearest symbol of the file's
//! kallsyms section at or below it (the export put the traced process's
//! function symbols there: [`crate::export`]'s symbols module), as the
//! kernel prints a user stack trace:
//!
//! ```text
//! user_stack: <user stack trace>
//!  => app::handle_request            (--sym-offset: app::handle_request+0x3c)
//!  => <00005581d0a2f123>             (no symbol)
//! ```
//!
//! This module only formats.

use std::fmt::Write as _;

use super::layout::FTRACE_SYSTEM;
use super::read::{DecodedRecord, FieldValue};

/// Farthest a caller may lie past the start of the symbol that names it:
/// past that, the address is in code the symbol table does not cover.
const MAX_SYMBOL_SPAN: u64 = 1 << 20;

/// The symbols of a kallsyms text, sorted by address, for lookups by
/// nearest symbol at or below an address.
#[derive(Debug, Default)]
pub struct StackSymbols<'a> {
    sorted: Vec<(u64, &'a str)>,
}

impl<'a> StackSymbols<'a> {
    /// Indexes the `ADDR TYPE NAME` lines of `kallsyms` (others skipped).
    ///
    /// ```
    /// use ringtrace::tracedat::stack_text::StackSymbols;
    /// let s = StackSymbols::from_kallsyms("0000000000001000 t f\n0000000000001100 t g\n");
    /// assert_eq!(s.lookup(0x1042), Some(("f", 0x42)));
    /// assert_eq!(s.lookup(0x100), None);
    /// ```
    pub fn from_kallsyms(kallsyms: &'a str) -> Self {
        let mut sorted: Vec<(u64, &str)> = kallsyms
            .lines()
            .filter_map(|line| {
                let mut parts = line.split_whitespace();
                let addr = u64::from_str_radix(parts.next()?, 16).ok()?;
                let _kind = parts.next()?;
                Some((addr, parts.next()?))
            })
            .collect();
        sorted.sort_unstable_by_key(|&(a, _)| a);
        StackSymbols { sorted }
    }

    /// The symbol naming the return address `addr` and `addr`'s offset
    /// from it. The lookup is for `addr - 1`: a call that ends a function
    /// returns to the first byte of the next one.
    pub fn lookup(&self, addr: u64) -> Option<(&'a str, u64)> {
        let at = addr.checked_sub(1)?;
        let i = self
            .sorted
            .partition_point(|&(a, _)| a <= at)
            .checked_sub(1)?;
        let (start, name) = self.sorted[i];
        let off = addr - start;
        (off <= MAX_SYMBOL_SPAN).then_some((name, off))
    }

    /// The text of a `user_stack` record, `None` for another record.
    pub fn user_stack_text(&self, d: &DecodedRecord<'_>, sym_offset: bool) -> Option<String> {
        if d.format.system != FTRACE_SYSTEM || d.format.name != "user_stack" {
            return None;
        }
        let callers = d.fields.iter().find_map(|(n, v)| match v {
            FieldValue::Array(a) if *n == "caller" => Some(a),
            _ => None,
        })?;
        let mut out = String::from("<user stack trace>");
        for c in callers {
            let addr = match c {
                FieldValue::Unsigned(0) => break,
                FieldValue::Unsigned(a) => *a,
                _ => return None,
            };
            let _ = match self.lookup(addr) {
                Some((name, off)) if sym_offset => write!(out, "\n => {name}+0x{off:x}"),
                Some((name, _)) => write!(out, "\n => {name}"),
                None => write!(out, "\n => <{addr:016x}>"),
            };
        }
        Some(out)
    }
}
