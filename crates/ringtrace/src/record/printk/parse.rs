//! Parsing of C printf formats, shared by the write side (the compile-time
//! checks of `bprintk!`, which run these `const fn`s) and the read side
//! (the renderer in `fmt::printf`, which walks the same pieces).
//!
//! # Terms
//!
//! - **Piece**: what the parser finds at a position of a format: a literal
//!   run, a conversion, or the end.
//! - **Spec**: one parsed conversion: flags, width, precision, length and
//!   conversion letter.
//! - **Kind** ([`ArgKind`]): how a conversion's argument is stored in a
//!   record; **fits** bits: which kinds a Rust type may be given to.
//!
//! # Contract
//!
//! One parser for both sides, so a format that compiles is rendered with
//! the same reading of it. The parser is `const`, never allocates, never
//! panics on any input (only [`count_args`] and [`arg_kinds`] panic, on
//! purpose: in a `const` that is a compile error) and caps widths and
//! precisions at [`MAX_WIDTH`].

/// How one conversion's argument is stored.
///
/// ```
/// use ringtrace::printk::{arg_kinds, ArgKind};
/// const K: [ArgKind; 3] = arg_kinds::<3>("%d %llx %s");
/// assert_eq!(K, [ArgKind::Int32, ArgKind::Int64, ArgKind::Str]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// 32-bit integer: 4 bytes, 4-aligned.
    Int32,
    /// 64-bit integer: 8 bytes, 4-aligned.
    Int64,
    /// Pointer (`%p`): 8 bytes, 4-aligned.
    Ptr,
    /// `%c`: u32 code point, 4-aligned.
    Char,
    /// Float: f64 bits, 8 bytes, 4-aligned.
    Float,
    /// `%s`: bytes then NUL, unaligned.
    Str,
}

/// Bits saying which [`ArgKind`]s a Rust argument type fits
/// ([`BprintArg::FITS`](super::BprintArg::FITS)), checked at compile time by `bprintk!`.
///
/// ```
/// use ringtrace::printk::{fits, BprintArg};
/// assert_eq!(<&str as BprintArg>::FITS, fits::STR);
/// ```
pub mod fits {
    use super::ArgKind;

    /// `%d %i %u %x %X %o` without length modifier.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::INT32, 1);
    /// ```
    pub const INT32: u8 = ArgKind::Int32.fits_bit();
    /// The same with `l`, `ll` or `z`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::INT64, 2);
    /// ```
    pub const INT64: u8 = ArgKind::Int64.fits_bit();
    /// `%p`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::PTR, 4);
    /// ```
    pub const PTR: u8 = ArgKind::Ptr.fits_bit();
    /// `%c`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::CHAR, 8);
    /// ```
    pub const CHAR: u8 = ArgKind::Char.fits_bit();
    /// `%f %F %e %E %g %G`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::FLOAT, 16);
    /// ```
    pub const FLOAT: u8 = ArgKind::Float.fits_bit();
    /// `%s`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::STR, 32);
    /// ```
    pub const STR: u8 = ArgKind::Str.fits_bit();
    /// Every integer conversion.
    ///
    /// ```
    /// use ringtrace::printk::fits;
    /// assert_eq!(fits::INT, fits::INT32 | fits::INT64);
    /// ```
    pub const INT: u8 = INT32 | INT64;
}

impl ArgKind {
    /// The `fits` bit of this kind: one bit per kind, in declaration
    /// order (the `fits` constants are defined from it).
    ///
    /// ```
    /// use ringtrace::printk::{fits, ArgKind};
    /// assert_eq!(ArgKind::Str.fits_bit(), fits::STR);
    /// ```
    #[must_use]
    pub const fn fits_bit(self) -> u8 {
        1 << self as u8
    }

    /// Bytes the argument takes in a record (0 for `%s`, whose length is
    /// its value's).
    pub(crate) const fn fixed_size(self) -> usize {
        match self {
            ArgKind::Int32 | ArgKind::Char => 4,
            ArgKind::Int64 | ArgKind::Ptr | ArgKind::Float => 8,
            ArgKind::Str => 0,
        }
    }
}

/// Flag bits of a conversion ([`Spec::flags`]): `-`, `+`, space, `#`, `0`.
pub(crate) const F_MINUS: u8 = 1;
pub(crate) const F_PLUS: u8 = 2;
pub(crate) const F_SPACE: u8 = 4;
pub(crate) const F_HASH: u8 = 8;
pub(crate) const F_ZERO: u8 = 16;

/// One parsed conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    /// `F_*` bits.
    pub(crate) flags: u8,
    /// At most [`MAX_WIDTH`].
    pub(crate) width: Option<u32>,
    /// At most [`MAX_WIDTH`]; a bare `.` is `Some(0)`.
    pub(crate) precision: Option<u32>,
    /// 0 = none, 1 = l/z, 2 = ll.
    pub(crate) length: u8,
    /// The conversion letter.
    pub(crate) conv: u8,
}

impl Spec {
    /// How the conversion's argument is stored.
    pub(crate) const fn kind(&self) -> ArgKind {
        match self.conv {
            b'd' | b'i' | b'u' | b'x' | b'X' | b'o' => {
                if self.length == 0 {
                    ArgKind::Int32
                } else {
                    ArgKind::Int64
                }
            }
            b'p' => ArgKind::Ptr,
            b'c' => ArgKind::Char,
            b's' => ArgKind::Str,
            _ => ArgKind::Float,
        }
    }

    /// The same conversion without a precision: for `%p` and `%c`, which
    /// take none, and for a float's padding, once its digits are written.
    pub(crate) const fn without_precision(&self) -> Spec {
        Spec {
            precision: None,
            ..*self
        }
    }
}

/// What the parser found at a position.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Piece {
    /// The format ends.
    End,
    /// Literal bytes `start..end` (a `%%` yields a one-byte literal `%`).
    Literal(usize, usize),
    /// A conversion.
    Conv(Spec),
}

/// Why a format is malformed (offset of the offending `%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParseError {
    /// The format ends inside a conversion.
    Truncated(usize),
    /// An unknown conversion letter, or a length it does not take.
    BadConversion(usize),
    /// `*`, or a length modifier other than `l`, `ll`, `z`.
    Unsupported(usize),
    /// A width or precision above [`MAX_WIDTH`].
    TooWide(usize),
}

/// Largest width or precision accepted, so that formatting a hostile format
/// cannot allocate without bound (the kernel caps them too).
pub const MAX_WIDTH: u32 = 4096;

const fn parse_num(f: &[u8], mut i: usize) -> (Option<u32>, usize) {
    let mut n: u32 = 0;
    let mut any = false;
    while i < f.len() && f[i] >= b'0' && f[i] <= b'9' {
        n = n.saturating_mul(10).saturating_add((f[i] - b'0') as u32);
        any = true;
        i += 1;
    }
    (if any { Some(n) } else { None }, i)
}

const fn too_wide(v: Option<u32>) -> bool {
    match v {
        Some(v) => v > MAX_WIDTH,
        None => false,
    }
}

/// Parses the piece starting at `i`; returns it and the next position.
pub(crate) const fn next_piece(f: &[u8], i: usize) -> Result<(Piece, usize), ParseError> {
    if i >= f.len() {
        return Ok((Piece::End, i));
    }
    if f[i] != b'%' {
        let mut j = i;
        while j < f.len() && f[j] != b'%' {
            j += 1;
        }
        return Ok((Piece::Literal(i, j), j));
    }
    let start = i;
    let mut j = i + 1;
    if j < f.len() && f[j] == b'%' {
        return Ok((Piece::Literal(j, j + 1), j + 1));
    }
    let mut flags = 0u8;
    while j < f.len() {
        let bit = match f[j] {
            b'-' => F_MINUS,
            b'+' => F_PLUS,
            b' ' => F_SPACE,
            b'#' => F_HASH,
            b'0' => F_ZERO,
            _ => 0,
        };
        if bit == 0 {
            break;
        }
        flags |= bit;
        j += 1;
    }
    if j < f.len() && f[j] == b'*' {
        return Err(ParseError::Unsupported(start));
    }
    let (width, after_w) = parse_num(f, j);
    j = after_w;
    let mut precision = None;
    if j < f.len() && f[j] == b'.' {
        j += 1;
        if j < f.len() && f[j] == b'*' {
            return Err(ParseError::Unsupported(start));
        }
        let (p, after_p) = parse_num(f, j);
        precision = match p {
            Some(p) => Some(p),
            None => Some(0),
        };
        j = after_p;
    }
    let mut length = 0u8;
    if j < f.len() && f[j] == b'l' {
        length = 1;
        j += 1;
        if j < f.len() && f[j] == b'l' {
            length = 2;
            j += 1;
        }
    } else if j < f.len() && f[j] == b'z' {
        length = 1;
        j += 1;
    } else if j < f.len()
        && (f[j] == b'h' || f[j] == b'j' || f[j] == b't' || f[j] == b'L' || f[j] == b'q')
    {
        return Err(ParseError::Unsupported(start));
    }
    if too_wide(width) || too_wide(precision) {
        return Err(ParseError::TooWide(start));
    }
    if j >= f.len() {
        return Err(ParseError::Truncated(start));
    }
    let conv = f[j];
    let ok = match conv {
        b'd' | b'i' | b'u' | b'x' | b'X' | b'o' => true,
        b'p' | b'c' | b's' | b'f' | b'F' | b'e' | b'E' | b'g' | b'G' => length == 0,
        _ => false,
    };
    if !ok {
        return Err(ParseError::BadConversion(start));
    }
    Ok((
        Piece::Conv(Spec {
            flags,
            width,
            precision,
            length,
            conv,
        }),
        j + 1,
    ))
}

const fn parse_panic(e: ParseError) -> ! {
    match e {
        ParseError::Truncated(_) => panic!("bprintk!: format ends inside a conversion"),
        ParseError::BadConversion(_) => panic!("bprintk!: unknown conversion in format"),
        ParseError::Unsupported(_) => {
            panic!("bprintk!: unsupported conversion (`*`, h, hh, j, t, L are not supported)")
        }
        ParseError::TooWide(_) => panic!("bprintk!: width or precision above MAX_WIDTH"),
    }
}

/// Number of arguments `fmt` takes. Panics on a malformed format, which in a
/// `const` (as `bprintk!` uses it) is a compile error.
///
/// ```
/// assert_eq!(ringtrace::printk::count_args("%d%% of %s"), 2);
/// ```
#[must_use]
pub const fn count_args(fmt: &str) -> usize {
    let f = fmt.as_bytes();
    let mut i = 0;
    let mut n = 0;
    loop {
        match next_piece(f, i) {
            Ok((Piece::End, _)) => return n,
            Ok((Piece::Conv(_), next)) => {
                n += 1;
                i = next;
            }
            Ok((Piece::Literal(..), next)) => i = next,
            Err(e) => parse_panic(e),
        }
    }
}

/// Storage kinds of `fmt`'s `N` arguments. Panics (compile error in a
/// `const`) on a malformed format or if `N` is not the argument count.
///
/// ```
/// use ringtrace::printk::{arg_kinds, ArgKind};
/// assert_eq!(arg_kinds::<2>("%5.2f %c"), [ArgKind::Float, ArgKind::Char]);
/// ```
#[must_use]
pub const fn arg_kinds<const N: usize>(fmt: &str) -> [ArgKind; N] {
    let f = fmt.as_bytes();
    let mut out = [ArgKind::Int32; N];
    let mut i = 0;
    let mut n = 0;
    loop {
        match next_piece(f, i) {
            Ok((Piece::End, _)) => break,
            Ok((Piece::Conv(s), next)) => {
                assert!(n < N, "bprintk!: more conversions than arguments");
                out[n] = s.kind();
                n += 1;
                i = next;
            }
            Ok((Piece::Literal(..), next)) => i = next,
            Err(e) => parse_panic(e),
        }
    }
    assert!(n == N, "bprintk!: fewer conversions than arguments");
    out
}

/// Whether trace-cmd 3.1.6 / libtraceevent 1.7 can evaluate `fmt` in a
/// `bprint` record: only `d i u x X o p s`, lengths `l ll z`, the `0` flag and
/// width/precision digits. (See the module docs for why.)
///
/// ```
/// use ringtrace::printk::trace_cmd_compatible;
/// assert!(trace_cmd_compatible("n=%d id=%08llx name=%s"));
/// assert!(!trace_cmd_compatible("%-5d"));
/// assert!(!trace_cmd_compatible("%c"));
/// assert!(!trace_cmd_compatible("%f"));
/// ```
#[must_use]
pub fn trace_cmd_compatible(fmt: &str) -> bool {
    let f = fmt.as_bytes();
    let mut i = 0;
    loop {
        match next_piece(f, i) {
            Ok((Piece::End, _)) => return true,
            Ok((Piece::Literal(..), next)) => i = next,
            Ok((Piece::Conv(s), next)) => {
                let conv_ok = matches!(
                    s.conv,
                    b'd' | b'i' | b'u' | b'x' | b'X' | b'o' | b'p' | b's'
                );
                if !conv_ok || s.flags & !F_ZERO != 0 {
                    return false;
                }
                i = next;
            }
            Err(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_cmd_subset() {
        assert!(trace_cmd_compatible("plain"));
        assert!(trace_cmd_compatible("%d %5u %08lx %.3s %p %zu %%"));
        for bad in ["%-d", "% d", "%c", "%f", "%g", "%hd", "%*d"] {
            assert!(!trace_cmd_compatible(bad), "{bad}");
        }
    }
}
