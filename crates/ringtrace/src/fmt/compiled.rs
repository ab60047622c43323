//! Printk formats parsed once, for a reader that renders each of them many
//! times (the pipe).
//!
//! # Terms
//!
//! - **Parsed format**: a format's steps: literal text (the call site's
//!   `file:line: ` merged with the literal after it, so a line starts
//!   with one copy) and conversions, each with its **fast form** when it
//!   has one.
//! - **Fast form**: a conversion without flags, width or precision that
//!   prints only its argument: `%d %i %u` (any length) as plain digits,
//!   `%s` as its bytes. Most `trace!` formats are made of these.
//!
//! # Contract
//!
//! A parsed format renders the text and the errors of
//! [`write_record`](super::printf::write_record), byte for byte: a fast
//! form that meets anything but the plain case (an argument cut short, a
//! string without its NUL or not UTF-8) hands the conversion to the
//! general renderer, which writes the same text or names the fault.
//! Rendering never allocates; parsing (once per format) does.

use core::fmt::Write;

use crate::record::printk::{align4, next_piece, Piece, Site, Spec, MAX_SITES};

use super::printf::{out, write_conv, write_record, write_site, FormatError};

/// How a conversion is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fast {
    /// `%d` / `%i` / `%u` without flags, width or precision: the digits
    /// (and sign) of a 4-byte (`wide` false) or 8-byte argument.
    Dec { signed: bool, wide: bool },
    /// `%s` without flags, width or precision: the string's bytes.
    Str,
    /// Anything else: the general renderer.
    General,
}

impl Fast {
    fn of(spec: &Spec) -> Fast {
        if spec.flags != 0 || spec.width.is_some() || spec.precision.is_some() {
            return Fast::General;
        }
        let wide = spec.length != 0;
        match spec.conv {
            b'd' | b'i' => Fast::Dec { signed: true, wide },
            b'u' => Fast::Dec {
                signed: false,
                wide,
            },
            b's' => Fast::Str,
            _ => Fast::General,
        }
    }
}

/// One step of a parsed format.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// `text[start..end]` of the parsed format.
    Lit { start: u32, end: u32 },
    /// A conversion; `at..next` is its text in the format (for errors).
    Conv {
        spec: Spec,
        fast: Fast,
        at: u32,
        next: u32,
    },
}

/// A format parsed once: literal text and conversions.
#[derive(Debug)]
pub(crate) struct ParsedFormat {
    /// The format it was parsed from.
    fmt: &'static str,
    /// The literal text of every `Lit` step, one after the other.
    text: String,
    steps: Box<[Step]>,
}

impl ParsedFormat {
    /// `fmt` parsed, `head` written before it (a call site's `file:line: `,
    /// or nothing). `None` for a malformed format (rendering it gives the
    /// error) or one longer than 4 GiB.
    pub(crate) fn parse(head: &str, fmt: &'static str) -> Option<ParsedFormat> {
        u32::try_from(fmt.len().checked_add(head.len())?).ok()?;
        let mut text = String::from(head);
        let mut steps = Vec::new();
        // Where the literal text not yet in a step starts.
        let mut mark = 0;
        let mut i = 0;
        loop {
            let (piece, next) = next_piece(fmt.as_bytes(), i).ok()?;
            match piece {
                Piece::End => break,
                Piece::Literal(a, b) => text.push_str(&fmt[a..b]),
                Piece::Conv(spec) => {
                    lit_step(&text, &mut mark, &mut steps);
                    steps.push(Step::Conv {
                        spec,
                        fast: Fast::of(&spec),
                        // In range: checked above.
                        at: i as u32,
                        next: next as u32,
                    });
                }
            }
            i = next;
        }
        lit_step(&text, &mut mark, &mut steps);
        Some(ParsedFormat {
            fmt,
            text,
            steps: steps.into_boxed_slice(),
        })
    }

    /// [`write_record`] of this format (after its head): the same text and
    /// errors.
    pub(crate) fn write<W: Write + ?Sized>(
        &self,
        w: &mut W,
        args: &[u8],
    ) -> Result<(), FormatError> {
        let mut pos = 0;
        let mut index = 0;
        for step in self.steps.iter() {
            match *step {
                Step::Lit { start, end } => {
                    let lit = self.text.get(start as usize..end as usize).unwrap_or("");
                    out(w.write_str(lit))?;
                }
                Step::Conv {
                    spec,
                    fast,
                    at,
                    next,
                } => {
                    if !write_fast(w, fast, args, &mut pos)? {
                        let conv = self.fmt.get(at as usize..next as usize).unwrap_or("%?");
                        write_conv(w, &spec, conv, args, &mut pos, index)?;
                    }
                    index += 1;
                }
            }
        }
        let extra = args.len().saturating_sub(pos);
        if extra > 3 {
            return Err(FormatError::TrailingBytes { extra });
        }
        Ok(())
    }
}

/// Ends the literal text gathered since `*mark` with a `Lit` step (none
/// when there is no such text).
fn lit_step(text: &str, mark: &mut u32, steps: &mut Vec<Step>) {
    // In range: `parse` checked the total length.
    let end = text.len() as u32;
    if end > *mark {
        steps.push(Step::Lit { start: *mark, end });
        *mark = end;
    }
}

/// The fast form of one conversion, of the argument at `*pos` (moved past
/// it). False, with nothing written and `*pos` unmoved, when the
/// conversion has no fast form or its argument is not the plain case:
/// the general renderer then writes it or names the fault.
#[inline]
fn write_fast<W: Write + ?Sized>(
    w: &mut W,
    fast: Fast,
    args: &[u8],
    pos: &mut usize,
) -> Result<bool, FormatError> {
    match fast {
        Fast::Dec { signed, wide } => {
            let at = align4(*pos);
            let mut digits = itoa::Buffer::new();
            let text = if wide {
                let Some(b) = args.get(at..at + 8) else {
                    return Ok(false);
                };
                let raw = u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                *pos = at + 8;
                if signed {
                    digits.format(raw as i64)
                } else {
                    digits.format(raw)
                }
            } else {
                let Some(b) = args.get(at..at + 4) else {
                    return Ok(false);
                };
                let raw = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
                *pos = at + 4;
                if signed {
                    digits.format(raw as i32)
                } else {
                    digits.format(raw)
                }
            };
            out(w.write_str(text))?;
            Ok(true)
        }
        Fast::Str => {
            let rest = args.get(*pos..).unwrap_or(&[]);
            let Some(nul) = rest.iter().position(|&b| b == 0) else {
                return Ok(false);
            };
            let bytes = &rest[..nul];
            let s = if bytes.is_ascii() {
                // SAFETY: every byte is below 0x80: ASCII, valid UTF-8.
                // Unchecked: the full check costs more than the rest of
                // the conversion, and most strings are ASCII.
                unsafe { core::str::from_utf8_unchecked(bytes) }
            } else {
                match core::str::from_utf8(bytes) {
                    Ok(s) => s,
                    Err(_) => return Ok(false),
                }
            };
            out(w.write_str(s))?;
            *pos += nul + 1;
            Ok(true)
        }
        Fast::General => Ok(false),
    }
}

/// Formats parsed once, by site id, kept by a reader (the pipe) so that
/// a format is not parsed again for every record, nor its line's
/// `file:line: ` written again. Looked up by index; the entry is checked
/// to be the site's (an id's site may be replaced, see `import_site`).
#[derive(Debug, Default)]
pub(crate) struct FormatCache {
    by_id: Vec<Option<(&'static Site, ParsedFormat)>>,
}

impl FormatCache {
    /// `file:line: ` of site `id`, then [`write_record`] of its format.
    pub(crate) fn write<W: Write + ?Sized>(
        &mut self,
        w: &mut W,
        id: u32,
        site: &'static Site,
        args: &[u8],
    ) -> Result<(), FormatError> {
        let i = id as usize;
        if i < MAX_SITES {
            if self.by_id.len() <= i {
                self.by_id.resize_with(i + 1, || None);
            }
            let slot = &mut self.by_id[i];
            if !slot.as_ref().is_some_and(|(s, _)| core::ptr::eq(*s, site)) {
                let mut head = String::new();
                // Writing to a String cannot fail.
                let _ = write_site(&mut head, site.file(), site.line());
                *slot = ParsedFormat::parse(&head, site.format()).map(|p| (site, p));
            }
            if let Some((_, p)) = slot {
                return p.write(w, args);
            }
        }
        out(write_site(w, site.file(), site.line()))?;
        write_record(w, site.format(), args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64).
    struct Gen(u64);

    impl Gen {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    const INTS: [u64; 9] = [
        0,
        9,
        10,
        0x7fff_ffff,
        0x8000_0000,
        u32::MAX as u64,
        i64::MAX as u64,
        1 << 63,
        u64::MAX,
    ];
    /// Strings stored for `%s`: ASCII, other UTF-8, not UTF-8, empty.
    const STRS: [&[u8]; 6] = [
        b"/api/v1/items",
        "h\u{e9}llo w\u{f6}rld".as_bytes(),
        b"a\xffb",
        b"\xe2\x82",
        b"",
        b"x",
    ];

    /// A format of conversions that have a fast form (and, one time in
    /// eight, one that has none) with its packed arguments.
    fn case(g: &mut Gen) -> (String, Vec<u8>) {
        let mut fmt = String::new();
        let mut args = Vec::new();
        for _ in 0..=g.below(4) {
            fmt.push_str(["", "x=", " ", "%%", "\u{e9}: "][g.below(5) as usize]);
            let conv = [
                "%d", "%i", "%u", "%ld", "%llu", "%zu", "%lli", "%s", "%5d", "%x",
            ][g.below(10) as usize];
            fmt.push_str(conv);
            if conv == "%s" {
                args.extend_from_slice(STRS[g.below(STRS.len() as u64) as usize]);
                args.push(0);
                continue;
            }
            args.resize(align4(args.len()), 0);
            let v = INTS[g.below(INTS.len() as u64) as usize];
            if conv.contains('l') || conv.contains('z') {
                args.extend_from_slice(&v.to_ne_bytes());
            } else {
                args.extend_from_slice(&(v as u32).to_ne_bytes());
            }
        }
        fmt.push_str(["", "\n", "]"][g.below(3) as usize]);
        args.resize(align4(args.len()), 0);
        (fmt, args)
    }

    /// A parsed format renders as `write_record` does, text and errors,
    /// for records whole, cut short and grown: plain integers of every
    /// length and sign, strings ASCII, UTF-8, not UTF-8 and cut before
    /// their NUL; a head goes in front.
    #[test]
    fn parsed_formats_render_as_write_record() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        let mut fast_errors = 0;
        for _ in 0..20_000 {
            let (fmt, mut args) = case(&mut g);
            match g.below(3) {
                0 => args.truncate(g.below(args.len() as u64 + 1) as usize),
                1 => args.extend_from_slice(&[0; 8][..g.below(9) as usize]),
                _ => {}
            }
            let mut want = String::from("f.rs:7: ");
            let want = write_record(&mut want, &fmt, &args).map(|()| want);
            let fmt: &'static str = Box::leak(fmt.into_boxed_str());
            let p = ParsedFormat::parse("f.rs:7: ", fmt).unwrap();
            let mut got = String::new();
            let got = p.write(&mut got, &args).map(|()| got);
            assert_eq!(got, want, "{fmt:?} with {args:?}");
            if matches!(
                want,
                Err(FormatError::InvalidUtf8 { .. }
                    | FormatError::Unterminated { .. }
                    | FormatError::Truncated { .. })
            ) {
                fast_errors += 1;
            }
        }
        assert!(fast_errors > 1000, "faults met: {fast_errors}");
        assert!(ParsedFormat::parse("", "%q").is_none());
    }

    /// Literal text around the conversions is gathered into as few steps
    /// as there can be: the head and the literal after it are one.
    #[test]
    fn literals_are_merged_with_the_head() {
        let p = ParsedFormat::parse("a.rs:1: ", "request %llu took %u us%%\n").unwrap();
        let lits: Vec<&str> = p
            .steps
            .iter()
            .filter_map(|s| match *s {
                Step::Lit { start, end } => Some(&p.text[start as usize..end as usize]),
                Step::Conv { .. } => None,
            })
            .collect();
        assert_eq!(lits, ["a.rs:1: request ", " took ", " us%\n"]);
        assert_eq!(p.steps.len(), 5);
        let fasts: Vec<Fast> = p
            .steps
            .iter()
            .filter_map(|s| match *s {
                Step::Conv { fast, .. } => Some(fast),
                Step::Lit { .. } => None,
            })
            .collect();
        assert_eq!(
            fasts,
            [
                Fast::Dec {
                    signed: false,
                    wide: true
                },
                Fast::Dec {
                    signed: false,
                    wide: false
                }
            ]
        );
    }
}
