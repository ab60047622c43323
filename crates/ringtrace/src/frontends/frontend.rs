//! What the `tracing` layer and the `log` backend share: a record built on
//! the stack ([`RecordBuf`]) and handed to the ordinary record path as a
//! [`Record`] ([`Encoded`]).
//!
//! These front ends learn their field values one at a time (through a
//! visitor, or from `fmt::Arguments`), so the record's length is known only
//! at the end. They build the record in a bounded stack buffer first, then
//! the tracer's record path ([`Target::record`](crate::Target::record))
//! reserves, copies and commits as it does for every event. The extra copy
//! is of the record's own bytes (tens of bytes for typical events). (The
//! `tracing` layer skips this buffer for call sites with a few numbers and
//! no strings, whose length is fixed: see its `Small` record.)
//!
//! ```text
//! buf:  [0..8)        header, left to the record path (CommonFields)
//!       [8..fixed)    fixed part: 8-byte numbers, 4-byte __data_loc words
//!       [fixed..len)  string bytes, each NUL-terminated, in write order
//! ```
//!
//! Strings that do not fit are cut at a character boundary (never split
//! inside a UTF-8 sequence); [`RecordBuf::truncated`] says so.

use std::fmt;
use std::mem::MaybeUninit;

use crate::event::{
    CommonFields, EncodeError, EventType, Record, COMMON_HEADER_SIZE, FIRST_USER_ID,
};

/// Largest record a front end builds (common header included).
pub(crate) const MAX_RECORD: usize = 1024;

/// Stack storage of a [`RecordBuf`]: the caller owns it so the buffer is
/// never moved (a move copies all of it).
pub(crate) type Storage = [MaybeUninit<u8>; MAX_RECORD];

/// Uninitialised storage (free: nothing is written).
#[inline(always)]
pub(crate) const fn storage() -> Storage {
    [MaybeUninit::uninit(); MAX_RECORD]
}

/// A record built in caller-owned stack storage.
///
/// Invariant: `buf[..max(len, 64)]` is initialised, and
/// `fixed <= len <= MAX_RECORD`.
pub(crate) struct RecordBuf<'s> {
    buf: &'s mut Storage,
    len: usize,
    truncated: bool,
}

impl<'s> RecordBuf<'s> {
    /// A buffer in `storage` whose fixed part (`8..fixed`, `fixed` rounded
    /// up to 8 and clamped to [`MAX_RECORD`]) is zeroed and whose string
    /// area starts right after it.
    #[inline(always)]
    pub(crate) fn new(storage: &'s mut Storage, fixed: usize) -> Self {
        let fixed = fixed.div_ceil(8) * 8;
        let fixed = fixed.clamp(COMMON_HEADER_SIZE, MAX_RECORD);
        // The first 64 bytes with a constant-size copy (two vector stores,
        // no call to memset: most fixed parts are a few words), the rest
        // if any with a loop.
        const HEAD: usize = 64;
        storage[..HEAD].copy_from_slice(&[MaybeUninit::new(0); HEAD]);
        for b in storage.iter_mut().take(fixed).skip(HEAD) {
            b.write(0);
        }
        RecordBuf {
            buf: storage,
            len: fixed,
            truncated: false,
        }
    }

    /// The initialised prefix.
    #[inline]
    fn init(&self) -> &[u8] {
        // SAFETY: `buf[..len]` is initialised (the invariant: `new` writes
        // `..fixed`, `push` writes each byte before moving `len` past it),
        // and `MaybeUninit<u8>` has the layout of `u8`.
        unsafe { std::slice::from_raw_parts(self.buf.as_ptr().cast::<u8>(), self.len) }
    }

    /// The initialised prefix, writable.
    #[inline]
    fn init_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `init`; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.buf.as_mut_ptr().cast::<u8>(), self.len) }
    }

    /// Whether a string was cut to fit.
    #[inline]
    pub(crate) fn truncated(&self) -> bool {
        self.truncated
    }

    /// Writes `v` at fixed offset `off` (ignored if outside the fixed part).
    #[inline]
    pub(crate) fn put_u64(&mut self, off: usize, v: u64) {
        if let Some(d) = self.init_mut().get_mut(off..off + 8) {
            d.copy_from_slice(&v.to_ne_bytes());
        }
    }

    /// Appends bytes to the string area, as many as fit (leaving room for
    /// the NUL); returns how many were taken.
    #[inline]
    fn push(&mut self, bytes: &[u8]) -> usize {
        // One byte stays free for the terminating NUL.
        let room = (MAX_RECORD - 1).saturating_sub(self.len);
        let n = bytes.len().min(room);
        for (d, s) in self.buf[self.len..self.len + n].iter_mut().zip(bytes) {
            d.write(*s);
        }
        self.len += n;
        n
    }

    /// Starts a string: returns its start, to hand to [`RecordBuf::end_str`].
    #[inline]
    pub(crate) fn begin_str(&self) -> usize {
        self.len
    }

    /// Appends text to the string begun at `begin_str`, cut at a character
    /// boundary when it does not fit. `false` when it was cut.
    #[inline]
    pub(crate) fn push_str(&mut self, s: &str) -> bool {
        let room = (MAX_RECORD - 1).saturating_sub(self.len);
        if s.len() <= room {
            self.push(s.as_bytes());
            return true;
        }
        let mut end = room;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        self.push(&s.as_bytes()[..end]);
        self.truncated = true;
        false
    }

    /// Ends the string begun at `start`: appends the NUL and stores the
    /// `__data_loc` word (`len << 16 | offset`, len counting the NUL) at
    /// `loc_off` in the fixed part.
    #[inline]
    pub(crate) fn end_str(&mut self, loc_off: usize, start: usize) {
        // `push` always leaves room for this byte.
        if self.len < MAX_RECORD {
            self.buf[self.len].write(0);
            self.len += 1;
        }
        let len = self.len - start;
        let loc = ((len as u32) << 16) | (start as u32 & 0xffff);
        if let Some(d) = self.init_mut().get_mut(loc_off..loc_off + 4) {
            d.copy_from_slice(&loc.to_ne_bytes());
        }
    }

    /// Writes a whole string field.
    #[inline]
    #[cfg_attr(not(feature = "log"), allow(dead_code))]
    pub(crate) fn put_str(&mut self, loc_off: usize, s: &str) {
        let start = self.begin_str();
        self.push_str(s);
        self.end_str(loc_off, start);
    }

    /// The record of type `ty` in this buffer, ready for the record path.
    #[inline]
    pub(crate) fn record(&self, ty: &'static EventType) -> Encoded<'_> {
        Encoded {
            ty,
            body: self.init().get(COMMON_HEADER_SIZE..).unwrap_or(&[]),
            registered: false,
        }
    }

    /// [`RecordBuf::record`] of a type the caller already registered in
    /// the global [`Registry`](crate::event::Registry): the record path
    /// skips its registration check.
    #[inline]
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn record_registered(&self, ty: &'static EventType) -> Encoded<'_> {
        Encoded {
            registered: true,
            ..self.record(ty)
        }
    }
}

/// `fmt::Write` into the string area: stops (with an error, which ends the
/// formatting early) once the buffer is full.
impl fmt::Write for RecordBuf<'_> {
    #[inline]
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if self.push_str(s) {
            Ok(())
        } else {
            Err(fmt::Error)
        }
    }
}

/// A record whose fields are already encoded: the record path adds the
/// common header and copies `body` after it.
pub(crate) struct Encoded<'a> {
    ty: &'static EventType,
    /// The record from offset 8 (after the common header) on.
    body: &'a [u8],
    /// `ty` is known to be in the global registry.
    registered: bool,
}

impl Record for Encoded<'_> {
    #[inline]
    fn event_type(&self) -> &'static EventType {
        self.ty
    }

    #[inline]
    fn encoded_len(&self) -> usize {
        COMMON_HEADER_SIZE + self.body.len()
    }

    #[inline]
    fn needs_registration(&self) -> bool {
        !self.registered && self.ty.id >= FIRST_USER_ID
    }

    #[inline]
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let total = self.encoded_len();
        let have = out.len();
        let Some(out) = out.get_mut(..total) else {
            return Err(EncodeError::BufferTooSmall { need: total, have });
        };
        common.write(self.ty.id, out);
        out[COMMON_HEADER_SIZE..].copy_from_slice(self.body);
        Ok(total)
    }
}

/// Maps a name to one that ftrace's `format` grammar accepts (letters,
/// digits and `_`, not starting with a digit); `None` when `name` already is.
pub(crate) fn c_identifier(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && !name.as_bytes()[0].is_ascii_digit()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        return None;
    }
    let mut s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.is_empty() || s.as_bytes()[0].is_ascii_digit() {
        s.insert(0, '_');
    }
    Some(s)
}

/// `name` as a `'static` C identifier (leaking a copy only when it must be
/// changed; front ends call this once per call site).
pub(crate) fn static_identifier(name: &'static str) -> &'static str {
    match c_identifier(name) {
        None => name,
        Some(s) => Box::leak(s.into_boxed_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write;

    static F: [crate::event::Field; 2] = [
        crate::event::Field {
            name: "n",
            c_type: "u64",
            offset: 8,
            size: 8,
            signed: false,
            array: crate::event::Array::None,
        },
        crate::event::Field {
            name: "s",
            c_type: "__data_loc char[]",
            offset: 16,
            size: 4,
            signed: false,
            array: crate::event::Array::None,
        },
    ];
    static T: EventType = EventType {
        name: "t",
        system: "demo",
        id: 2000,
        fields: &F,
        print_fmt: "",
    };

    #[test]
    fn builds_a_record_readers_decode() {
        let mut st = storage();
        let mut b = RecordBuf::new(&mut st, 24);
        b.put_u64(8, 42);
        let start = b.begin_str();
        let (x, y) = (1, "two");
        let _ = write!(b, "x={x} y={y}");
        b.end_str(16, start);
        let r = b.record(&T);
        let mut out = [0u8; 64];
        let n = r.encode(&CommonFields::default(), &mut out).unwrap();
        assert_eq!(n, 24 + 10);
        assert_eq!(T.render_fields(&out[..n]).unwrap(), "n=42 s=x=1 y=two");
    }

    #[test]
    fn long_strings_are_cut_at_char_boundaries() {
        let mut st = storage();
        let mut b = RecordBuf::new(&mut st, 24);
        let s = "é".repeat(MAX_RECORD);
        b.put_str(16, &s);
        assert!(b.truncated());
        let r = b.record(&T);
        let mut out = vec![0u8; MAX_RECORD];
        let n = r.encode(&CommonFields::default(), &mut out).unwrap();
        assert!(n <= MAX_RECORD);
        let text = T.render_fields(&out[..n]).unwrap();
        assert!(text.starts_with("n=0 s=éé"));
        assert!(!text.contains('\u{fffd}'), "no split character");
    }

    #[test]
    fn identifiers() {
        assert_eq!(c_identifier("ok_1"), None);
        assert_eq!(c_identifier("http.method").as_deref(), Some("http_method"));
        assert_eq!(c_identifier("1x").as_deref(), Some("_1x"));
        assert_eq!(c_identifier("").as_deref(), Some("_"));
    }
}
