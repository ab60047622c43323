//! Argument encoding of binary printk: which Rust values a call site may
//! pass, and how each is packed into a bprint record's argument bytes,
//! as the kernel's `vbin_printf` packs them.
//!
//! # Terms
//!
//! - **Argument** ([`BprintArg`]): a Rust value `bprintk!` accepts; its
//!   [`FITS`](BprintArg::FITS) bits say which conversions it may be given
//!   to, checked at compile time ([`first_misfit`]).
//! - **Argument list** ([`ArgList`]): the tuple of a call's arguments,
//!   packed by [`ArgList::encode_args`].
//! - **Packing** (the kernel's `vbin_printf`): 32-bit integers and `%c`
//!   4 bytes, 64-bit integers, `%p` and floats 8 bytes, each 4-aligned
//!   relative to the arguments' start ([`BPRINT_ARGS_OFFSET`] in the
//!   record); `%s` the bytes up to the first NUL, then a NUL, unaligned.
//!
//! # Contract
//!
//! Encoding is the write path's: it never allocates, never panics and
//! never formats. With the kinds a constant (what `bprintk!` gives), the
//! per-argument checks fold away and the packing compiles to plain stores;
//! what only a value can break (an integer given to `%c` that is not a
//! Unicode scalar value, a buffer too small) is an
//! [`EncodeError`], never a panic. Alignment gaps are zeroed, so a record's
//! bytes depend only on its values.

use super::parse::{fits, ArgKind};
use crate::event::{CommonFields, EncodeError};

/// Offset of the packed arguments in a bprint record.
///
/// ```
/// assert_eq!(ringtrace::printk::BPRINT_ARGS_OFFSET, 24);
/// ```
pub const BPRINT_ARGS_OFFSET: usize = 24;

/// An argument's value as the encoder sees it.
///
/// ```
/// use ringtrace::printk::{ArgValue, BprintArg};
/// assert_eq!((-3i8).value(), ArgValue::Signed(-3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArgValue<'a> {
    /// A signed integer.
    Signed(i64),
    /// An unsigned integer.
    Unsigned(u64),
    /// A float (f32 widened, as C varargs do).
    Float(f64),
    /// A char.
    Char(char),
    /// A bool.
    Bool(bool),
    /// A string.
    Str(&'a str),
    /// A pointer's address.
    Ptr(usize),
}

/// A type `bprintk!` accepts as an argument: integers, floats, `char`, `bool`,
/// `str`/`String`, raw pointers, and references to any of these.
///
/// ```
/// use ringtrace::printk::{ArgValue, BprintArg};
/// assert_eq!("hi".value(), ArgValue::Str("hi"));
/// ```
pub trait BprintArg {
    /// The conversions this type fits (`fits` bits).
    const FITS: u8;
    /// The value to encode.
    fn value(&self) -> ArgValue<'_>;
}

macro_rules! arg_impl {
    ($variant:ident as $wide:ty, $fits:expr; $($t:ty),*) => {$(
        impl BprintArg for $t {
            const FITS: u8 = $fits;
            #[inline]
            fn value(&self) -> ArgValue<'_> {
                ArgValue::$variant(*self as $wide)
            }
        }
    )*};
}
arg_impl!(Signed as i64, fits::INT | fits::PTR | fits::CHAR; i8, i16, i32, i64, isize);
arg_impl!(Unsigned as u64, fits::INT | fits::PTR | fits::CHAR; u8, u16, u32, u64, usize);
arg_impl!(Float as f64, fits::FLOAT; f32, f64);

impl BprintArg for char {
    const FITS: u8 = fits::CHAR | fits::INT;
    #[inline]
    fn value(&self) -> ArgValue<'_> {
        ArgValue::Char(*self)
    }
}
impl BprintArg for bool {
    const FITS: u8 = fits::INT | fits::STR;
    #[inline]
    fn value(&self) -> ArgValue<'_> {
        ArgValue::Bool(*self)
    }
}
impl BprintArg for str {
    const FITS: u8 = fits::STR;
    #[inline]
    fn value(&self) -> ArgValue<'_> {
        ArgValue::Str(self)
    }
}
impl BprintArg for String {
    const FITS: u8 = fits::STR;
    #[inline]
    fn value(&self) -> ArgValue<'_> {
        ArgValue::Str(self)
    }
}
impl<T> BprintArg for *const T {
    const FITS: u8 = fits::PTR | fits::INT64;
    #[inline]
    fn value(&self) -> ArgValue<'_> {
        ArgValue::Ptr(*self as usize)
    }
}
impl<T> BprintArg for *mut T {
    const FITS: u8 = fits::PTR | fits::INT64;
    #[inline]
    fn value(&self) -> ArgValue<'_> {
        ArgValue::Ptr(*self as usize)
    }
}
impl<T: BprintArg + ?Sized> BprintArg for &T {
    const FITS: u8 = T::FITS;
    #[inline]
    fn value(&self) -> ArgValue<'_> {
        (**self).value()
    }
}

/// A tuple of [`BprintArg`]s (up to 16), walked in order by the encoder.
///
/// ```
/// use ringtrace::printk::ArgList;
/// let mut seen = Vec::new();
/// (1u8, "a").for_each(|i, v| { seen.push(format!("{i}:{v:?}")); Ok(()) }).unwrap();
/// assert_eq!(seen, ["0:Unsigned(1)", "1:Str(\"a\")"]);
/// ```
pub trait ArgList {
    /// Number of arguments.
    const LEN: usize;
    /// [`BprintArg::FITS`] of each argument, in order.
    const FITS: &'static [u8];
    /// Calls `f(index, value)` for each argument, stopping at the first error.
    fn for_each<F>(&self, f: F) -> Result<(), EncodeError>
    where
        F: FnMut(usize, ArgValue<'_>) -> Result<(), EncodeError>;
    /// Packs the arguments into `out` as `kinds` say (the bprint layout),
    /// returning the bytes used. Written out per tuple, with no closure, so
    /// that the whole encoder inlines and, with `kinds` a constant, folds to
    /// plain stores.
    ///
    /// ```
    /// use ringtrace::printk::{ArgKind, ArgList};
    /// let mut out = [0xffu8; 16];
    /// let n = (7u32, "ab").encode_args(&[ArgKind::Int32, ArgKind::Str], &mut out).unwrap();
    /// assert_eq!(&out[..n], &[7, 0, 0, 0, b'a', b'b', 0]);
    /// ```
    fn encode_args(&self, kinds: &[ArgKind], out: &mut [u8]) -> Result<usize, EncodeError>;
}

macro_rules! tuple_args {
    ($( ($($t:ident $i:tt),*) )*) => {$(
        impl<$($t: BprintArg),*> ArgList for ($($t,)*) {
            const LEN: usize = 0 $(+ { let _ = $i; 1 })*;
            const FITS: &'static [u8] = &[$($t::FITS),*];
            #[inline]
            #[allow(unused_variables, unused_mut)]
            fn for_each<Visit>(&self, mut f: Visit) -> Result<(), EncodeError>
            where
                Visit: FnMut(usize, ArgValue<'_>) -> Result<(), EncodeError>,
            {
                $( f($i, self.$i.value())?; )*
                Ok(())
            }
            #[inline(always)]
            #[allow(unused_variables, unused_mut)]
            fn encode_args(&self, kinds: &[ArgKind], out: &mut [u8]) -> Result<usize, EncodeError> {
                let mut pos = 0usize;
                $(
                    let kind = *kinds.get($i).ok_or(EncodeError::ArgMismatch {
                        index: $i,
                        expected: "no argument",
                    })?;
                    pos = put_arg(out, pos, kind, &self.$i.value(), $i)?;
                )*
                Ok(pos)
            }
        }
    )*};
}

tuple_args! {
    ()
    (A 0)
    (A 0, B 1)
    (A 0, B 1, C 2)
    (A 0, B 1, C 2, D 3)
    (A 0, B 1, C 2, D 3, E 4)
    (A 0, B 1, C 2, D 3, E 4, F 5)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14)
    (A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15)
}

/// The string bytes a `%s` argument stores (without the NUL).
#[inline(always)]
pub(super) fn str_bytes<'v>(v: &ArgValue<'v>) -> Option<&'v [u8]> {
    let s: &[u8] = match v {
        ArgValue::Str(s) => s.as_bytes(),
        ArgValue::Bool(true) => b"true",
        ArgValue::Bool(false) => b"false",
        _ => return None,
    };
    // C strings end at the first NUL; the reader would stop there anyway.
    Some(match s.iter().position(|&b| b == 0) {
        Some(n) => &s[..n],
        None => s,
    })
}

/// The first `total` bytes of `out` (the record), with the common header
/// (`type_id`) and the `ip` word at offset 8 written: how both printk
/// records begin. `total` is at least 16 (both records are longer).
#[inline(always)]
pub(super) fn record_head<'o>(
    out: &'o mut [u8],
    total: usize,
    type_id: u16,
    common: &CommonFields,
    ip: u64,
) -> Result<&'o mut [u8], EncodeError> {
    let have = out.len();
    let out = out
        .get_mut(..total)
        .ok_or(EncodeError::BufferTooSmall { need: total, have })?;
    common.write(type_id, out);
    out[8..16].copy_from_slice(&ip.to_ne_bytes());
    Ok(out)
}

/// `n` rounded up to a multiple of 4 (arguments and records are 4-aligned).
#[inline]
pub(crate) const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Index of the first argument whose type (its [`BprintArg::FITS`]) does
/// not fit its conversion's kind, if any.
///
/// ```
/// use ringtrace::printk::{first_misfit, fits, ArgKind};
/// assert_eq!(first_misfit(&[ArgKind::Int32, ArgKind::Str], &[fits::INT, fits::INT]), Some(1));
/// assert_eq!(first_misfit(&[ArgKind::Int32], &[fits::INT]), None);
/// ```
#[must_use]
pub const fn first_misfit(kinds: &[ArgKind], fits: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < kinds.len() && i < fits.len() {
        if fits[i] & kinds[i].fits_bit() == 0 {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// The compile error of [`Bprint::checked`](super::Bprint::checked) when
/// argument `i` does not fit (a `const` panic takes a literal message).
pub(super) const fn misfit_message(i: usize) -> &'static str {
    match i {
        0 => "bprintk!: argument 1 does not fit its conversion",
        1 => "bprintk!: argument 2 does not fit its conversion",
        2 => "bprintk!: argument 3 does not fit its conversion",
        3 => "bprintk!: argument 4 does not fit its conversion",
        4 => "bprintk!: argument 5 does not fit its conversion",
        5 => "bprintk!: argument 6 does not fit its conversion",
        6 => "bprintk!: argument 7 does not fit its conversion",
        7 => "bprintk!: argument 8 does not fit its conversion",
        _ => "bprintk!: an argument after the 8th does not fit its conversion",
    }
}

/// Stores one argument at `pos` (aligning first), returns the next position.
#[inline(always)]
fn put_arg(
    out: &mut [u8],
    pos: usize,
    kind: ArgKind,
    v: &ArgValue<'_>,
    index: usize,
) -> Result<usize, EncodeError> {
    let mismatch = |expected| EncodeError::ArgMismatch { index, expected };
    let have = out.len();
    let too_small = |need| EncodeError::BufferTooSmall {
        need: BPRINT_ARGS_OFFSET + need,
        have: BPRINT_ARGS_OFFSET + have,
    };
    if kind == ArgKind::Str {
        let s = str_bytes(v).ok_or(mismatch("a string or bool for %s"))?;
        let end = pos + s.len() + 1;
        let dst = out.get_mut(pos..end).ok_or(too_small(end))?;
        dst[..s.len()].copy_from_slice(s);
        dst[s.len()] = 0;
        return Ok(end);
    }
    let start = align4(pos);
    let (bytes, n): ([u8; 8], usize) = match kind {
        ArgKind::Int32 => {
            let x = match *v {
                ArgValue::Signed(x) => x as u32,
                ArgValue::Unsigned(x) => x as u32,
                ArgValue::Bool(b) => u32::from(b),
                ArgValue::Char(c) => c as u32,
                _ => return Err(mismatch("an integer")),
            };
            (widen(&x.to_ne_bytes()), 4)
        }
        ArgKind::Int64 | ArgKind::Ptr => {
            let x = match *v {
                ArgValue::Signed(x) => x as u64,
                ArgValue::Unsigned(x) => x,
                ArgValue::Bool(b) => u64::from(b),
                ArgValue::Char(c) => u64::from(c),
                ArgValue::Ptr(p) => p as u64,
                _ => return Err(mismatch("an integer or pointer")),
            };
            (x.to_ne_bytes(), 8)
        }
        ArgKind::Char => {
            let c = match *v {
                ArgValue::Char(c) => Some(c),
                ArgValue::Unsigned(x) => u32::try_from(x).ok().and_then(char::from_u32),
                ArgValue::Signed(x) => u32::try_from(x).ok().and_then(char::from_u32),
                _ => None,
            };
            let c = c.ok_or(mismatch("a char or a code point"))?;
            (widen(&(c as u32).to_ne_bytes()), 4)
        }
        ArgKind::Float => match *v {
            ArgValue::Float(f) => (f.to_bits().to_ne_bytes(), 8),
            _ => return Err(mismatch("a float")),
        },
        ArgKind::Str => unreachable_str(),
    };
    let end = start + n;
    let dst = out.get_mut(pos..end).ok_or(too_small(end))?;
    let gap = start - pos;
    dst[..gap].fill(0);
    dst[gap..].copy_from_slice(&bytes[..n]);
    Ok(end)
}

#[inline(always)]
fn widen(b: &[u8; 4]) -> [u8; 8] {
    [b[0], b[1], b[2], b[3], 0, 0, 0, 0]
}

/// `ArgKind::Str` is handled before the match; this keeps the match
/// exhaustive without a panic path.
#[inline]
fn unreachable_str() -> ([u8; 8], usize) {
    ([0; 8], 0)
}
