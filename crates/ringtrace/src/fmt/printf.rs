//! The C printf renderer of binary printk records, the kernel's
//! `bstr_printf`.
//!
//! # Terms
//!
//! - **Format**: a C printf format, parsed by the record room's parser
//!   (`record::printk::parse`), the one the compile-time checks use.
//! - **Arguments**: the packed bytes of a `bprint` record, as the write
//!   side's `args` module packs them.
//! - **Parsed format** / **format cache**: a format's pieces kept by a
//!   reader that renders it many times (the pipe): the `compiled` module.
//!
//! # Contract
//!
//! One renderer for every reader (the pipe, the views, the trace.dat
//! report and the crash dump). It writes into any [`core::fmt::Write`] and
//! never allocates, not even on an error, so the crash dump can run it in
//! a signal handler and the pipe can run it into one reused buffer. It
//! never panics: a malformed format or record gives a [`FormatError`]
//! naming the argument and the offset.
//!
//! Padding needs the length of what it pads: integers and strings know it
//! before writing; a float's text is produced twice, once into a counter and
//! once for real, rather than into a buffer (a precision of up to
//! [`MAX_WIDTH`](crate::record::printk::MAX_WIDTH) digits would need a large one).

use core::fmt::{self, Write};

use crate::record::printk::{
    align4, next_piece, ArgKind, ParseError, Piece, Spec, F_HASH, F_MINUS, F_PLUS, F_SPACE, F_ZERO,
};

// The pipe's cache of parsed formats lives in `compiled`; named here too,
// where the crate root has always found it.
pub(crate) use super::compiled::FormatCache;

/// Why a record could not be formatted.
///
/// ```
/// let e = ringtrace::printk::format_record("%d", &[1, 2]).unwrap_err();
/// assert_eq!(e.to_string(), "argument 0 (%d) needs 4 bytes at offset 0, record has 2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The format text is malformed.
    #[error("malformed format at byte {at}: {what}")]
    BadFormat {
        /// Byte offset of the conversion.
        at: usize,
        /// What is wrong.
        what: &'static str,
    },
    /// The argument bytes end before an argument does.
    #[error("argument {index} ({conv}) needs {need} bytes at offset {at}, record has {have}")]
    Truncated {
        /// Argument index.
        index: usize,
        /// The conversion, e.g. `%d`.
        conv: ConvText,
        /// Offset of the argument in the argument bytes.
        at: usize,
        /// Bytes it needs.
        need: usize,
        /// Argument bytes present.
        have: usize,
    },
    /// A `%s` argument has no terminating NUL.
    #[error("argument {index} (%s) at offset {at} has no terminating NUL")]
    Unterminated {
        /// Argument index.
        index: usize,
        /// Offset of the string.
        at: usize,
    },
    /// A `%s` argument is not UTF-8.
    #[error("argument {index} (%s) at offset {at} is not valid UTF-8")]
    InvalidUtf8 {
        /// Argument index.
        index: usize,
        /// Offset of the string.
        at: usize,
    },
    /// A `%c` argument is not a Unicode scalar value.
    #[error("argument {index} (%c) holds {value:#x}, not a char")]
    InvalidChar {
        /// Argument index.
        index: usize,
        /// The stored value.
        value: u32,
    },
    /// More bytes follow the last argument than padding explains.
    #[error("{extra} bytes left after the last argument (at most 3 bytes of padding expected)")]
    TrailingBytes {
        /// Bytes left.
        extra: usize,
    },
    /// The record is not a bprint record or is too short for its header.
    #[error("not a bprint record: {0}")]
    NotBprint(&'static str),
    /// No registered site has this `fmt` address.
    #[error("unknown format address {0:#x}")]
    UnknownFormat(u64),
    /// The writer given to [`write_record`] refused the text (a fixed
    /// buffer is full).
    #[error("the output refused the text")]
    Output,
}

/// The text of one conversion (`%-08llx`), held inline so that a
/// [`FormatError`] never allocates (the crash dump formats in a signal
/// handler). A conversion is ASCII; one longer than 24 bytes (repeated
/// flags) keeps its first 21 and `...`.
///
/// ```
/// use ringtrace::printk::ConvText;
/// assert_eq!(ConvText::new("%-08llx").as_str(), "%-08llx");
/// let long = format!("%{}d", "-".repeat(30));
/// assert_eq!(ConvText::new(&long).as_str(), format!("%{}...", "-".repeat(20)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvText {
    bytes: [u8; 24],
    len: u8,
}

impl ConvText {
    /// `conv`, cut to 24 bytes as said above.
    #[must_use]
    pub fn new(conv: &str) -> Self {
        let mut bytes = [0u8; 24];
        let src = conv.as_bytes();
        let len = if src.len() <= bytes.len() && conv.is_ascii() {
            bytes[..src.len()].copy_from_slice(src);
            src.len()
        } else {
            let mut n = 0;
            for &b in src.iter().filter(|b| b.is_ascii()).take(21) {
                bytes[n] = b;
                n += 1;
            }
            bytes[n..n + 3].copy_from_slice(b"...");
            n + 3
        };
        ConvText {
            bytes,
            len: len as u8,
        }
    }

    /// The text.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::ConvText::new("%d").as_str(), "%d");
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes are stored.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("%?")
    }
}

impl std::fmt::Display for ConvText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Formats the packed argument bytes `args` with the C format `fmt`, as the
/// kernel's `bstr_printf` does. Never panics: a malformed format or record
/// gives a [`FormatError`].
///
/// ```
/// let mut args = Vec::new();
/// args.extend_from_slice(&(-7i32).to_ne_bytes());
/// args.extend_from_slice(b"ok\0");
/// assert_eq!(ringtrace::printk::format_record("%+04d %-4s|", &args).unwrap(), "-007 ok  |");
/// ```
#[doc(hidden)]
pub fn format_record(fmt: &str, args: &[u8]) -> Result<String, FormatError> {
    let mut out = String::with_capacity(fmt.len() + 16);
    write_record(&mut out, fmt, args)?;
    Ok(out)
}

/// Formats the packed argument bytes `args` with the C format `fmt` into
/// `w`, as the kernel's `bstr_printf` does, without allocating. Never
/// panics: a malformed format or record gives a [`FormatError`], and `w`
/// then holds the text written before the fault (callers that show the
/// error instead cut it off). A writer that refuses text (a full fixed
/// buffer) gives [`FormatError::Output`].
///
/// ```
/// let mut args = Vec::new();
/// args.extend_from_slice(&(-7i32).to_ne_bytes());
/// args.extend_from_slice(b"ok\0");
/// let mut s = String::new();
/// ringtrace::printk::write_record(&mut s, "%+04d %-4s|", &args).unwrap();
/// assert_eq!(s, "-007 ok  |");
/// ```
pub fn write_record<W: Write + ?Sized>(
    w: &mut W,
    fmt: &str,
    args: &[u8],
) -> Result<(), FormatError> {
    let f = fmt.as_bytes();
    let mut i = 0;
    let mut pos = 0;
    let mut index = 0;
    loop {
        let (piece, next) = next_piece(f, i).map_err(bad_format)?;
        match piece {
            Piece::End => break,
            Piece::Literal(a, b) => out(w.write_str(&fmt[a..b]))?,
            Piece::Conv(spec) => {
                write_conv(w, &spec, &fmt[i..next], args, &mut pos, index)?;
                index += 1;
            }
        }
        i = next;
    }
    let extra = args.len().saturating_sub(pos);
    if extra > 3 {
        return Err(FormatError::TrailingBytes { extra });
    }
    Ok(())
}

/// One conversion (`conv` is its text, for errors) of the argument at
/// `*pos`, which it moves past the argument.
pub(crate) fn write_conv<W: Write + ?Sized>(
    w: &mut W,
    spec: &Spec,
    conv: &str,
    args: &[u8],
    pos: &mut usize,
    index: usize,
) -> Result<(), FormatError> {
    let kind = spec.kind();
    if kind == ArgKind::Str {
        let at = *pos;
        let rest = args.get(at..).unwrap_or(&[]);
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(FormatError::Unterminated { index, at })?;
        let s = core::str::from_utf8(&rest[..nul])
            .map_err(|_| FormatError::InvalidUtf8 { index, at })?;
        out(write_str_spec(w, spec, s))?;
        *pos = at + nul + 1;
    } else {
        let at = align4(*pos);
        let n = kind.fixed_size();
        let b = args.get(at..at + n).ok_or_else(|| FormatError::Truncated {
            index,
            conv: ConvText::new(conv),
            at,
            need: n,
            have: args.len(),
        })?;
        let raw = if n == 4 {
            u64::from(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        } else {
            u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        };
        write_scalar(w, spec, raw, index)?;
        *pos = at + n;
    }
    Ok(())
}

/// `file:line: `, the name of a binary printk's line.
pub(crate) fn write_site<W: Write + ?Sized>(w: &mut W, file: &str, line: u32) -> fmt::Result {
    let mut d = Digits::new();
    w.write_str(file)?;
    w.write_char(':')?;
    w.write_str(d.radix(u64::from(line), 10, false, false))?;
    w.write_str(": ")
}

pub(crate) fn out(r: fmt::Result) -> Result<(), FormatError> {
    r.map_err(|_| FormatError::Output)
}

fn bad_format(e: ParseError) -> FormatError {
    let (at, what) = match e {
        ParseError::Truncated(at) => (at, "format ends inside a conversion"),
        ParseError::BadConversion(at) => (at, "unknown conversion"),
        ParseError::Unsupported(at) => (at, "unsupported conversion"),
        ParseError::TooWide(at) => (at, "width or precision above MAX_WIDTH"),
    };
    FormatError::BadFormat { at, what }
}

/// One integer, pointer, char or float conversion of the stored `raw` bits.
fn write_scalar<W: Write + ?Sized>(
    w: &mut W,
    spec: &Spec,
    raw: u64,
    index: usize,
) -> Result<(), FormatError> {
    let wide = spec.length != 0;
    let mut d = Digits::new();
    let r = match spec.conv {
        b'd' | b'i' => {
            let v: i64 = if wide {
                raw as i64
            } else {
                i64::from(raw as u32 as i32)
            };
            let sign = sign(spec, v < 0);
            pad_number(
                w,
                spec,
                sign,
                "",
                d.radix(v.unsigned_abs(), 10, false, false),
            )
        }
        b'u' | b'x' | b'X' | b'o' => {
            let v = if wide { raw } else { u64::from(raw as u32) };
            let alt = spec.flags & F_HASH != 0 && v != 0;
            let (base, prefix) = match spec.conv {
                b'u' => (10, ""),
                b'x' => (16, if alt { "0x" } else { "" }),
                b'X' => (16, if alt { "0X" } else { "" }),
                _ => (8, ""),
            };
            // `%#o` puts its 0 among the digits (C's rule: the precision
            // counts it).
            let digits = d.radix(v, base, spec.conv == b'X', alt && base == 8);
            pad_number(w, spec, "", prefix, digits)
        }
        b'p' => {
            let s = spec.without_precision();
            pad_number(w, &s, "", "0x", d.radix(raw, 16, false, false))
        }
        b'c' => {
            let v = raw as u32;
            let c = char::from_u32(v).ok_or(FormatError::InvalidChar { index, value: v })?;
            let mut buf = [0u8; 4];
            let s = spec.without_precision();
            write_str_spec(w, &s, c.encode_utf8(&mut buf))
        }
        _ => write_float(w, spec, f64::from_bits(raw)),
    };
    out(r)
}

/// Digits of an integer in base 8, 10 or 16, formatted on the stack.
struct Digits {
    /// A u64 in octal is 22 digits, plus the `%#o` zero.
    buf: [u8; 24],
}

impl Digits {
    fn new() -> Self {
        Digits { buf: [0; 24] }
    }

    /// `v` in `base`; `lead_zero` adds a 0 in front.
    fn radix(&mut self, mut v: u64, base: u64, upper: bool, lead_zero: bool) -> &str {
        let set: &[u8; 16] = if upper {
            b"0123456789ABCDEF"
        } else {
            b"0123456789abcdef"
        };
        let mut i = self.buf.len();
        loop {
            i -= 1;
            self.buf[i] = set[(v % base) as usize];
            v /= base;
            if v == 0 {
                break;
            }
        }
        if lead_zero {
            i -= 1;
            self.buf[i] = b'0';
        }
        // SAFETY: only ASCII digits were stored from `i` on. Unchecked: this
        // runs for every integer of every line the pipe prints.
        unsafe { core::str::from_utf8_unchecked(&self.buf[i..]) }
    }
}

/// `n` copies of `c` (a space or a zero).
fn fill<W: Write + ?Sized>(w: &mut W, mut n: usize, c: u8) -> fmt::Result {
    const SPACES: &str = "                                ";
    const ZEROS: &str = "00000000000000000000000000000000";
    let run = if c == b'0' { ZEROS } else { SPACES };
    while n > 0 {
        let k = n.min(run.len());
        w.write_str(&run[..k])?;
        n -= k;
    }
    Ok(())
}

/// Writes `sign`, `prefix` and a body of `body_len` bytes (written by
/// `body`) padded to the width: spaces after with `-`, zeros between the
/// prefix and the body with `0` (and no precision), spaces before
/// otherwise.
fn pad_with<W: Write + ?Sized>(
    w: &mut W,
    spec: &Spec,
    sign: &str,
    prefix: &str,
    body_len: usize,
    body: impl FnOnce(&mut W) -> fmt::Result,
) -> fmt::Result {
    let len = sign.len() + prefix.len() + body_len;
    let gap = (spec.width.unwrap_or(0) as usize).saturating_sub(len);
    if spec.flags & F_MINUS != 0 {
        w.write_str(sign)?;
        w.write_str(prefix)?;
        body(w)?;
        fill(w, gap, b' ')
    } else if spec.flags & F_ZERO != 0 && spec.precision.is_none() {
        w.write_str(sign)?;
        w.write_str(prefix)?;
        fill(w, gap, b'0')?;
        body(w)
    } else {
        fill(w, gap, b' ')?;
        w.write_str(sign)?;
        w.write_str(prefix)?;
        body(w)
    }
}

/// An integer: the precision is a minimum of digits (a zero with
/// precision 0 prints nothing), then the width.
fn pad_number<W: Write + ?Sized>(
    w: &mut W,
    spec: &Spec,
    sign: &str,
    prefix: &str,
    digits: &str,
) -> fmt::Result {
    let (zeros, digits) = match spec.precision {
        Some(0) if digits == "0" => (0, ""),
        Some(p) => ((p as usize).saturating_sub(digits.len()), digits),
        None => (0, digits),
    };
    pad_with(w, spec, sign, prefix, zeros + digits.len(), |w| {
        fill(w, zeros, b'0')?;
        w.write_str(digits)
    })
}

/// `%s` / `%c`: the precision cuts (in characters), the width pads with
/// spaces.
fn write_str_spec<W: Write + ?Sized>(w: &mut W, spec: &Spec, s: &str) -> fmt::Result {
    let s = match spec.precision {
        Some(p) => match s.char_indices().nth(p as usize) {
            Some((cut, _)) => &s[..cut],
            None => s,
        },
        None => s,
    };
    let width = spec.width.unwrap_or(0) as usize;
    let gap = if width == 0 {
        0
    } else {
        width.saturating_sub(s.chars().count())
    };
    if spec.flags & F_MINUS != 0 {
        w.write_str(s)?;
        fill(w, gap, b' ')
    } else {
        fill(w, gap, b' ')?;
        w.write_str(s)
    }
}

/// The sign a signed conversion prints: `-` for a negative value, else
/// `+` with the `+` flag, a space with the space flag, or nothing.
#[inline]
fn sign(spec: &Spec, negative: bool) -> &'static str {
    if negative {
        "-"
    } else if spec.flags & F_PLUS != 0 {
        "+"
    } else if spec.flags & F_SPACE != 0 {
        " "
    } else {
        ""
    }
}

/// `%f %F %e %E %g %G` of `v`, as C prints them.
fn write_float<W: Write + ?Sized>(w: &mut W, spec: &Spec, v: f64) -> fmt::Result {
    let upper = spec.conv.is_ascii_uppercase();
    let sign = sign(spec, v.is_sign_negative() && !v.is_nan());
    let a = v.abs();
    if !a.is_finite() {
        let t = match (a.is_nan(), upper) {
            (true, false) => "nan",
            (true, true) => "NAN",
            (false, false) => "inf",
            (false, true) => "INF",
        };
        // Zero padding does not apply to inf/nan.
        let s = Spec {
            flags: spec.flags & !F_ZERO,
            ..spec.without_precision()
        };
        return pad_number(w, &s, sign, "", t);
    }
    let p = spec.precision.unwrap_or(6) as usize;
    let hash = spec.flags & F_HASH != 0;
    let mut count = Count(0);
    float_body(&mut count, a, spec.conv, p, hash, upper)?;
    let s = spec.without_precision();
    pad_with(w, &s, sign, "", count.0, |w| {
        float_body(w, a, spec.conv, p, hash, upper)
    })
}

/// The digits of a finite, non-negative float: `%f` as Rust's `{:.p}`,
/// `%e` with C's exponent (sign and at least two digits), `%g` choosing
/// between them by the exponent after rounding and dropping trailing
/// zeros unless `#`.
fn float_body<W: Write + ?Sized>(
    w: &mut W,
    a: f64,
    conv: u8,
    p: usize,
    hash: bool,
    upper: bool,
) -> fmt::Result {
    match conv {
        b'f' | b'F' => write!(w, "{a:.p$}"),
        b'e' | b'E' => {
            let mut s = FloatSink::new(w, false, true, upper);
            write!(s, "{a:.p$e}")?;
            s.finish()
        }
        _ => {
            let p = p.max(1);
            // The exponent after rounding to p significant digits.
            let exp = if a == 0.0 {
                0
            } else {
                let mut discard = Discard;
                let mut e = FloatSink::new(&mut discard, false, true, upper);
                write!(e, "{:.*e}", p - 1, a)?;
                e.exponent()
            };
            if exp < -4 || exp >= p as i32 {
                let mut s = FloatSink::new(w, !hash, true, upper);
                write!(s, "{:.*e}", p - 1, a)?;
                s.finish()
            } else {
                let decimals = (p as i32 - 1 - exp).max(0) as usize;
                let mut s = FloatSink::new(w, !hash, false, upper);
                write!(s, "{a:.decimals$}")?;
                s.finish()
            }
        }
    }
}

/// Counts the bytes written.
struct Count(usize);

impl Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// Drops what is written.
struct Discard;

impl Write for Discard {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

/// Rewrites Rust's float text on its way to `w`: with `trim`, trailing
/// zeros after the decimal point (and a point left bare) are dropped; with
/// `fix_exp`, Rust's exponent (`e4`, `e-5`) becomes C's (`e+04`, `e-05`,
/// `E` when `upper`). Rust writes only ASCII here.
struct FloatSink<'a, W: Write + ?Sized> {
    w: &'a mut W,
    trim: bool,
    fix_exp: bool,
    upper: bool,
    /// A point was seen: zeros from here on may be trailing.
    after_point: bool,
    /// The point, held back until a non-zero digit follows it.
    point: bool,
    /// Zeros held back until a non-zero digit follows them.
    zeros: usize,
    /// In the exponent: its sign and value are collected.
    in_exp: bool,
    exp_neg: bool,
    exp: i32,
}

impl<'a, W: Write + ?Sized> FloatSink<'a, W> {
    fn new(w: &'a mut W, trim: bool, fix_exp: bool, upper: bool) -> Self {
        FloatSink {
            w,
            trim,
            fix_exp,
            upper,
            after_point: false,
            point: false,
            zeros: 0,
            in_exp: false,
            exp_neg: false,
            exp: 0,
        }
    }

    fn exponent(&self) -> i32 {
        if self.exp_neg {
            -self.exp
        } else {
            self.exp
        }
    }

    /// Writes the exponent, C's way; held-back zeros are trailing: dropped.
    fn finish(self) -> fmt::Result {
        if !self.in_exp {
            return Ok(());
        }
        self.w.write_char(if self.upper { 'E' } else { 'e' })?;
        self.w.write_char(if self.exp_neg { '-' } else { '+' })?;
        if self.exp < 10 {
            self.w.write_char('0')?;
        }
        let mut d = Digits::new();
        self.w
            .write_str(d.radix(u64::from(self.exp.unsigned_abs()), 10, false, false))
    }
}

impl<W: Write + ?Sized> Write for FloatSink<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if self.in_exp {
                match b {
                    b'-' => self.exp_neg = true,
                    b'0'..=b'9' => {
                        self.exp = self
                            .exp
                            .saturating_mul(10)
                            .saturating_add(i32::from(b - b'0'))
                    }
                    _ => {}
                }
                continue;
            }
            if self.fix_exp && b == b'e' {
                self.in_exp = true;
                continue;
            }
            if self.trim {
                if b == b'.' {
                    self.after_point = true;
                    self.point = true;
                    continue;
                }
                if self.after_point {
                    if b == b'0' {
                        self.zeros += 1;
                        continue;
                    }
                    if self.point {
                        self.w.write_char('.')?;
                        self.point = false;
                    }
                    fill(self.w, self.zeros, b'0')?;
                    self.zeros = 0;
                }
            }
            self.w.write_char(char::from(b))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<T: Copy>(&mut self, v: &[T]) -> T {
            v[self.below(v.len() as u64) as usize]
        }
    }

    const INTS: [u64; 12] = [
        0,
        1,
        7,
        42,
        255,
        0xdead_beef,
        u32::MAX as u64,
        0x8000_0000,
        i64::MAX as u64,
        1 << 63,
        u64::MAX,
        u64::MAX - 41,
    ];
    const FLOATS: [f64; 16] = [
        0.0,
        -0.0,
        1.0,
        1.5,
        -2.345,
        2.71728,
        0.0001,
        0.00001234,
        1e-10,
        100000.0,
        1e6,
        123456.789,
        1e300,
        -9.999999e-5,
        f64::NAN,
        f64::NEG_INFINITY,
    ];
    const STRS: [&str; 6] = ["", "a", "hello", "héllo wörld", "😀x", "/api/v1/items"];
    const CHARS: [char; 4] = ['A', 'é', '😀', ' '];

    /// A random conversion and its argument, packed as the write side does.
    fn conversion(g: &mut Gen, fmt: &mut String, args: &mut Vec<u8>) {
        for &(flag, p) in &[('-', 4), ('+', 4), (' ', 5), ('#', 4), ('0', 3)] {
            if g.below(p) == 0 {
                fmt.push(flag);
            }
        }
        match g.below(5) {
            0 => {
                let w = g.below(21);
                fmt.push_str(&w.to_string());
            }
            1 => fmt.push_str(&(g.below(300)).to_string()),
            _ => {}
        }
        match g.below(4) {
            0 => fmt.push('.'),
            1 => {
                fmt.push('.');
                fmt.push_str(&g.below(13).to_string());
            }
            _ => {}
        }
        let conv = g.pick(b"diuxXopcsfFeEgGdux");
        let pad = |args: &mut Vec<u8>| args.resize(align4(args.len()), 0);
        match conv {
            b'd' | b'i' | b'u' | b'x' | b'X' | b'o' => {
                let len = g.pick(&["", "l", "ll", "z"]);
                fmt.push_str(len);
                let v = g.pick(&INTS) ^ if g.below(3) == 0 { g.next() } else { 0 };
                pad(args);
                if len.is_empty() {
                    args.extend_from_slice(&(v as u32).to_ne_bytes());
                } else {
                    args.extend_from_slice(&v.to_ne_bytes());
                }
            }
            b'p' => {
                pad(args);
                args.extend_from_slice(&g.pick(&INTS).to_ne_bytes());
            }
            b'c' => {
                pad(args);
                args.extend_from_slice(&(g.pick(&CHARS) as u32).to_ne_bytes());
            }
            b's' => {
                args.extend_from_slice(g.pick(&STRS).as_bytes());
                args.push(0);
            }
            _ => {
                let v = if g.below(4) == 0 {
                    f64::from_bits(g.next())
                } else {
                    g.pick(&FLOATS)
                };
                pad(args);
                args.extend_from_slice(&v.to_bits().to_ne_bytes());
            }
        }
        fmt.push(char::from(conv));
    }

    fn case(g: &mut Gen) -> (String, Vec<u8>) {
        let mut fmt = String::new();
        let mut args = Vec::new();
        for _ in 0..=g.below(4) {
            fmt.push_str(g.pick(&["", "x=", " ", "[", "%%", "é: "]));
            fmt.push('%');
            conversion(g, &mut fmt, &mut args);
        }
        fmt.push_str(g.pick(&["", "\n", "]"]));
        args.resize(align4(args.len()), 0);
        (fmt, args)
    }

    fn new(fmt: &str, args: &[u8]) -> Result<String, FormatError> {
        let mut s = String::new();
        write_record(&mut s, fmt, args).map(|()| s)
    }

    /// C's own printf, on the conversions where ringtrace prints as C
    /// does: ASCII text (C pads by bytes, ringtrace by characters), no
    /// `%p` (glibc prints `(nil)`), no `#` on floats and `%o` (C keeps a
    /// bare point, and prints `0` for `%#.0o` of 0).
    fn c_printf(fmt: &str, conv: u8, long: bool, int: u64, float: f64, s: &str) -> String {
        let cfmt = std::ffi::CString::new(fmt).unwrap();
        let cs = std::ffi::CString::new(s).unwrap();
        let mut buf = vec![0u8; 8192];
        let p = buf.as_mut_ptr().cast::<libc::c_char>();
        let n = buf.len();
        // SAFETY: `buf` has `n` bytes; the format has one conversion whose
        // argument type is the one passed (checked by the match).
        let len = unsafe {
            match conv {
                b's' => libc::snprintf(p, n, cfmt.as_ptr(), cs.as_ptr()),
                b'c' => libc::snprintf(p, n, cfmt.as_ptr(), int as libc::c_int),
                b'f' | b'F' | b'e' | b'E' | b'g' | b'G' => {
                    libc::snprintf(p, n, cfmt.as_ptr(), float)
                }
                _ if long => libc::snprintf(p, n, cfmt.as_ptr(), int as libc::c_long),
                _ => libc::snprintf(p, n, cfmt.as_ptr(), int as libc::c_uint),
            }
        };
        buf.truncate(usize::try_from(len).unwrap());
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn agrees_with_c_printf() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        let ascii = ["", "a", "hello", "/api/v1/items", "x y z"];
        let mut checked = 0;
        for _ in 0..30_000 {
            let conv = g.pick(b"diuxXocsfFeEgG");
            let float = matches!(conv, b'f' | b'F' | b'e' | b'E' | b'g' | b'G');
            let mut fmt = String::from("[%");
            for &(flag, p) in &[('-', 4), ('+', 4), (' ', 5), ('#', 3), ('0', 3)] {
                if g.below(p) == 0 && !(flag == '#' && (float || conv == b'o')) {
                    fmt.push(flag);
                }
            }
            if g.below(2) == 0 {
                fmt.push_str(&g.below(25).to_string());
            }
            match g.below(3) {
                0 => fmt.push('.'),
                1 => fmt.push_str(&format!(".{}", g.below(15))),
                _ => {}
            }
            let long = !float && !matches!(conv, b'c' | b's') && g.below(2) == 0;
            if long {
                fmt.push_str(g.pick(&["l", "ll", "z"]));
            }
            fmt.push(char::from(conv));
            fmt.push(']');
            let int = g.pick(&INTS) ^ if g.below(3) == 0 { g.next() } else { 0 };
            let int = if conv == b'c' { 0x20 + int % 0x5f } else { int };
            let f = if g.below(4) == 0 {
                f64::from_bits(g.next())
            } else {
                g.pick(&FLOATS)
            };
            let s = g.pick(&ascii);
            let mut args = Vec::new();
            match conv {
                b's' => {
                    args.extend_from_slice(s.as_bytes());
                    args.push(0);
                    args.resize(align4(args.len()), 0);
                }
                _ if float => args.extend_from_slice(&f.to_bits().to_ne_bytes()),
                _ if long => args.extend_from_slice(&int.to_ne_bytes()),
                _ => args.extend_from_slice(&(int as u32).to_ne_bytes()),
            }
            let want = c_printf(&fmt, conv, long, int, f, s);
            // C prints a NaN's sign; ringtrace, as the kernel, does not.
            if float && f.is_nan() {
                continue;
            }
            assert_eq!(new(&fmt, &args).unwrap(), want, "format {fmt:?}");
            checked += 1;
        }
        assert!(checked > 25_000);
    }

    /// The crash dump renders into a fixed buffer: what it gets is the
    /// start of the text the pipe gets, or all of it; a cut record gives
    /// the same error in both, and nothing panics.
    #[test]
    fn a_fixed_buffer_gets_a_prefix_of_the_same_text() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        let mut buf = [0u8; 96];
        let mut cut_short = 0;
        for _ in 0..20_000 {
            let (fmt, mut args) = case(&mut g);
            if g.below(4) == 0 {
                args.truncate(g.below(args.len() as u64 + 1) as usize);
            }
            let whole = new(&fmt, &args);
            let room = g.below(buf.len() as u64 + 1) as usize;
            let mut w = crate::text::FixedWriter::new(&mut buf[..room]);
            let got = write_record(&mut w, &fmt, &args);
            match (&whole, got) {
                (Ok(text), Ok(())) => assert_eq!(w.as_bytes(), text.as_bytes(), "{fmt:?}"),
                (Ok(text), Err(FormatError::Output)) => {
                    assert_eq!(w.as_bytes(), &text.as_bytes()[..room], "{fmt:?}");
                    cut_short += 1;
                }
                (Err(e), Err(f)) if *e == f => {}
                // The buffer filled before the fault was reached.
                (Err(_), Err(FormatError::Output)) => assert_eq!(w.as_bytes().len(), room),
                (want, got) => panic!("{fmt:?} with {args:?}: {want:?} but {got:?}"),
            }
        }
        assert!(cut_short > 1000);
    }

    /// A format parsed once renders as `write_record` does, text and
    /// errors, for records whole, cut and grown.
    #[test]
    fn a_parsed_format_renders_as_write_record() {
        let mut g = Gen(0x1234_5678_9abc_def1);
        for _ in 0..20_000 {
            let (fmt, mut args) = case(&mut g);
            match g.below(3) {
                0 => args.truncate(g.below(args.len() as u64 + 1) as usize),
                1 => args.extend_from_slice(&[0; 8][..g.below(9) as usize]),
                _ => {}
            }
            let fmt: &'static str = Box::leak(fmt.into_boxed_str());
            let p = crate::fmt::compiled::ParsedFormat::parse("", fmt).unwrap();
            let mut got = String::new();
            let got = p.write(&mut got, &args).map(|()| got);
            assert_eq!(got, new(fmt, &args), "{fmt:?}");
        }
        assert!(crate::fmt::compiled::ParsedFormat::parse("", "%q").is_none());
    }

    #[test]
    fn malformed_formats_are_errors() {
        for (fmt, at) in [
            ("%", 0),
            ("ab%hd", 2),
            ("%*d", 0),
            ("%4097d", 0),
            ("%lls", 0),
            ("x%q", 1),
            ("%5", 0),
        ] {
            assert!(
                matches!(new(fmt, &[0; 16]), Err(FormatError::BadFormat { at: a, .. }) if a == at),
                "{fmt}"
            );
        }
    }

    #[test]
    fn a_full_writer_is_an_error_not_a_panic() {
        let mut buf = [0u8; 8];
        let mut w = crate::text::FixedWriter::new(&mut buf);
        assert_eq!(
            write_record(&mut w, "%s and more", b"long string\0"),
            Err(FormatError::Output)
        );
        assert_eq!(w.as_bytes(), b"long str");
    }
}
