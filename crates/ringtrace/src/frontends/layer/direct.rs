//! Small call sites' records, encoded straight into the ring's
//! reservation.
//!
//! A call site without strings whose numbers fit [`SMALL`] bytes has a
//! record length fixed by its shape, so the record path can reserve first
//! and the fields be visited into the reserved bytes: no staging buffer,
//! no copy. The visit runs inside the reservation; it runs no user code
//! (`tracing`'s `Value` is sealed: numbers are handed over as they are,
//! and a string or `Debug` value given to a number field is counted, never
//! formatted), takes no lock and allocates nothing, so a signal handler
//! interrupting it nests in the ring as it would in any record. Should the
//! visit unwind all the same, the ring discards the reservation (padding).
//!
//! Owns: the [`Direct`] record and its field visitor. Must not touch: the
//! call-site table or the shapes' making (the parent module).

use std::fmt;

use tracing_core::field::{Field, Visit};

use super::{Kind, Num, RecordFields, Shape, Slot, MISMATCHED};
use crate::event::{CommonFields, EncodeError, EventType, Record, COMMON_HEADER_SIZE};
use crate::sync::Ordering;

/// Largest fixed part (after the common header) a [`Direct`] record has:
/// eight numbers (or a span id and seven).
pub(super) const SMALL: usize = 64;

/// The record of a small call site (see the [module docs](self)): the
/// common header, the body zeroed (fields the event leaves unset stay 0),
/// the span id, then the visit of `values` into the reservation.
pub(super) struct Direct<'a, V: ?Sized> {
    pub(super) shape: &'static Shape,
    /// Stored at the shape's `span_id_offset`, if it has one.
    pub(super) span_id: u64,
    pub(super) values: &'a V,
}

impl<V: RecordFields + ?Sized> Record for Direct<'_, V> {
    #[inline(always)]
    fn event_type(&self) -> &'static EventType {
        self.shape.ty
    }

    #[inline(always)]
    fn encoded_len(&self) -> usize {
        self.shape.fixed
    }

    /// Registered when the shape was made.
    #[inline(always)]
    fn needs_registration(&self) -> bool {
        false
    }

    #[inline(always)]
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let total = self.shape.fixed;
        let have = out.len();
        let Some(out) = out.get_mut(..total) else {
            return Err(EncodeError::BufferTooSmall { need: total, have });
        };
        common.write(self.shape.ty.id, out);
        if let Some(body) = out.get_mut(COMMON_HEADER_SIZE..) {
            zero_words(body);
        }
        let mut enc = DirectEncoder {
            slots: &self.shape.slots,
            out,
        };
        if let Some(off) = self.shape.span_id_offset {
            enc.put(off, self.span_id);
        }
        self.values.visit(&mut enc);
        Ok(total)
    }
}

/// Zeroes `dst` (a multiple of 8 bytes, at most [`SMALL`]) with 8-byte
/// stores, as head and tail runs that may overlap, the way small `memset`s
/// work inside: a call to `memset` would cost more than the stores, and a
/// length known only at run time makes `fill(0)` such a call.
#[inline(always)]
pub(super) fn zero_words(dst: &mut [u8]) {
    #[inline(always)]
    fn word(dst: &mut [u8], at: usize) {
        if let Some(d) = dst.get_mut(at..at.wrapping_add(8)) {
            d.copy_from_slice(&0u64.to_ne_bytes());
        }
    }
    let n = dst.len();
    // Shorter than a word: no field (a body is a multiple of 8 bytes).
    if n < 8 {
        return;
    }
    // The usual bodies (one or two numbers) take two stores and two
    // compares.
    word(dst, 0);
    word(dst, n - 8);
    if n > 16 {
        word(dst, 8);
        word(dst, n - 16);
        if n > 32 {
            for at in [16, 24] {
                word(dst, at);
            }
            for back in [32, 24] {
                word(dst, n - back);
            }
        }
    }
}

/// Visits numbers into a [`Direct`] record (the reserved bytes).
struct DirectEncoder<'a> {
    slots: &'a [Slot],
    /// The whole record, `shape.fixed` bytes.
    out: &'a mut [u8],
}

impl DirectEncoder<'_> {
    /// Stores `v` at record offset `off`.
    #[inline(always)]
    fn put(&mut self, off: usize, v: u64) {
        if let Some(d) = self.out.get_mut(off..off.wrapping_add(8)) {
            d.copy_from_slice(&v.to_ne_bytes());
        }
    }

    /// An integer (`signed`: an `i64`'s bits) into an integer field, the
    /// usual case, is stored as it is after one bounds check (`int_at`
    /// says both the kind and the room); anything else is converted out
    /// of line.
    #[inline(always)]
    fn int(&mut self, f: &Field, v: u64, signed: bool) {
        let Some(&s) = self.slots.get(f.index()) else {
            return;
        };
        let at = usize::from(s.int_at);
        match self.out.get_mut(at..at + 8) {
            Some(d) => d.copy_from_slice(&v.to_ne_bytes()),
            None => self.convert_int(s, v, signed),
        }
    }

    /// An integer for a float or bool field (scalar arguments: a `Num`
    /// would go through memory, and its set-up into the fast path).
    #[cold]
    #[inline(never)]
    fn convert_int(&mut self, s: Slot, v: u64, signed: bool) {
        let n = if signed { Num::I(v as i64) } else { Num::U(v) };
        self.convert(s, n);
    }

    /// A number for a field of another kind: converted (see
    /// [`Num::bits`]).
    #[inline]
    fn convert(&mut self, s: Slot, n: Num) {
        // Small shapes have no string fields.
        if s.kind != Kind::Str {
            self.put(usize::from(s.offset), n.bits(s.kind));
        }
    }

    /// A float: into a float field as it is, converted for other kinds.
    fn float(&mut self, f: &Field, v: f64) {
        if let Some(&s) = self.slots.get(f.index()) {
            self.convert(s, Num::F(v));
        }
    }

    /// A string, `Debug` value or error for a number field: stored as 0
    /// (the field stays zeroed) and counted; nothing is formatted.
    #[inline]
    fn text(&mut self, f: &Field) {
        if self.slots.get(f.index()).is_some() {
            MISMATCHED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Visit for DirectEncoder<'_> {
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.float(f, v);
    }
    #[inline]
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.int(f, v as u64, true);
    }
    #[inline]
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.int(f, v, false);
    }
    fn record_bool(&mut self, f: &Field, v: bool) {
        if let Some(&s) = self.slots.get(f.index()) {
            self.convert(s, Num::U(u64::from(v)));
        }
    }
    #[inline]
    fn record_str(&mut self, f: &Field, _: &str) {
        self.text(f);
    }
    fn record_error(&mut self, f: &Field, _: &(dyn std::error::Error + 'static)) {
        self.text(f);
    }
    #[inline]
    fn record_debug(&mut self, f: &Field, _: &dyn fmt::Debug) {
        self.text(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_words_zeroes_every_length_and_nothing_else() {
        for n in (0..=SMALL).step_by(8) {
            let mut buf = [0xa5u8; SMALL + 8];
            zero_words(&mut buf[..n]);
            assert!(buf[..n].iter().all(|&b| b == 0), "{n}");
            assert!(buf[n..].iter().all(|&b| b == 0xa5), "{n}");
        }
    }
}
