//! Binary printk and marker records read back: a record's fields, its
//! text, and the two texts trace.dat carries so that trace-cmd can format
//! the records itself (`printk_formats`, `kallsyms`).
//!
//! # Terms
//!
//! - **Bprint fields** ([`BprintFields`]): a `bprint` record split into
//!   its common header, `ip`, `fmt` address and packed arguments.
//! - **printk_formats**: one `0x<fmt addr> : "<format>"` line per known
//!   site, the format escaped as the kernel escapes it ([`escape`]).
//! - **kallsyms**: one `<ip> t <name>` line per known site, naming its
//!   `ip` `file:line`, so trace-cmd prints that for `%ps`.
//!
//! # Contract
//!
//! Reads records that may come from anywhere (a ring, a file, a crash):
//! a short, foreign or malformed record gives a [`FormatError`], never a
//! panic. The arguments are rendered by [`super::printf`], the one
//! renderer. Imports the record room's printk, never the reverse.

use std::fmt::Write as _;

use super::printf::{format_record, FormatError};
use crate::event::CommonFields;
use crate::record::funcgraph::{func_addr, is_symbol};
use crate::record::printk::{
    fmt_addr, ip_addr, site_by_fmt_addr, sites, Site, BPRINT_ARGS_OFFSET, BPRINT_ID, MARKER_IP,
    PRINT_ID,
};

/// The `printk_formats` text for trace.dat: one `0x<fmt addr> : "<format>"`
/// line per registered site, the format escaped as the kernel does (`\n`,
/// `\t`, `\r`, `\\`, `\"`).
///
/// ```
/// use ringtrace::event::Record;
/// let _ = ringtrace::bprintk!("a\tb").encode(&Default::default(), &mut [0u8; 32]);
/// assert!(ringtrace::printk::printk_formats_text().contains(" : \"a\\tb\"\n"));
/// ```
#[must_use]
pub fn printk_formats_text() -> String {
    let mut s = String::new();
    for (id, site) in sites() {
        let _ = writeln!(s, "0x{:x} : \"{}\"", fmt_addr(id), escape(site.format()));
    }
    s
}

/// A `printk_formats` entry escaped as the kernel escapes it (`\n`, `\t`,
/// `\r`, `\\`, `\"`).
pub(crate) fn escape(fmt: &str) -> String {
    let mut s = String::with_capacity(fmt.len());
    for c in fmt.chars() {
        match c {
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            c => s.push(c),
        }
    }
    s
}

/// The kallsyms text for trace.dat: names the `ip` of each site `file:line`
/// and [`MARKER_IP`] `tracing_mark_write`, so trace-cmd prints them for `%ps`;
/// names the `fmt` address of a site whose format is one word (a
/// `#[traced]` function's site) with that word, the `func` of its
/// `funcgraph_*` records.
///
/// ```
/// use ringtrace::event::Record;
/// let _ = ringtrace::bprintk!("k").encode(&Default::default(), &mut [0u8; 32]);
/// let k = ringtrace::printk::kallsyms_text();
/// assert!(k.starts_with("ffffffffe0000000 t tracing_mark_write\n"));
/// ```
#[must_use]
pub fn kallsyms_text() -> String {
    let mut s = String::new();
    let _ = writeln!(s, "{MARKER_IP:016x} t tracing_mark_write");
    for (id, site) in sites() {
        let name: String = site
            .file()
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        let _ = writeln!(s, "{:016x} t {}:{}", ip_addr(id), name, site.line());
        // A function site (`#[traced]`) is named at its `fmt` address,
        // the `func` of its function records.
        if is_symbol(site.format()) {
            let _ = writeln!(s, "{:016x} t {}", func_addr(id), site.format());
        }
    }
    s
}

/// The fields of a bprint record.
///
/// ```
/// use ringtrace::event::Record;
/// let mut buf = [0u8; 64];
/// let n = ringtrace::bprintk!("%u", 9u32).encode(&Default::default(), &mut buf).unwrap();
/// let r = ringtrace::printk::BprintFields::parse(&buf[..n]).unwrap();
/// assert_eq!(r.args.len(), 4);
/// ```
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BprintFields<'r> {
    /// The common header.
    pub common: CommonFields,
    /// The `ip` field.
    pub ip: u64,
    /// The `fmt` field (an address from [`fmt_addr`]).
    pub fmt: u64,
    /// The packed arguments.
    pub args: &'r [u8],
}

impl<'r> BprintFields<'r> {
    /// Splits a bprint record into its fields.
    ///
    /// ```
    /// assert!(ringtrace::printk::BprintFields::parse(&[0u8; 10]).is_err());
    /// ```
    pub fn parse(record: &'r [u8]) -> Result<Self, FormatError> {
        let (ty, common) = CommonFields::read(record)
            .ok_or(FormatError::NotBprint("shorter than the common header"))?;
        if ty != BPRINT_ID {
            return Err(FormatError::NotBprint("common_type is not 6"));
        }
        let h = record
            .get(8..BPRINT_ARGS_OFFSET)
            .ok_or(FormatError::NotBprint("shorter than 24 bytes"))?;
        let word = |b: &[u8]| u64::from_ne_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        Ok(BprintFields {
            common,
            ip: word(&h[0..8]),
            fmt: word(&h[8..16]),
            args: &record[BPRINT_ARGS_OFFSET..],
        })
    }
}

/// Formats a whole bprint record: finds its site by the `fmt` address and
/// formats the arguments. Returns the site (for `file:line`) and the text.
///
/// ```
/// use ringtrace::event::Record;
/// let mut buf = [0u8; 64];
/// let n = ringtrace::bprintk!("%x", 255).encode(&Default::default(), &mut buf).unwrap();
/// assert_eq!(ringtrace::printk::format_bprint(&buf[..n]).unwrap().1, "ff");
/// ```
pub fn format_bprint(record: &[u8]) -> Result<(&'static Site, String), FormatError> {
    let r = BprintFields::parse(record)?;
    let site = site_by_fmt_addr(r.fmt).ok_or(FormatError::UnknownFormat(r.fmt))?;
    Ok((site, format_record(site.format(), r.args)?))
}

/// Formats a print (marker) record's text: the bytes after `ip` up to the
/// first NUL, invalid UTF-8 replaced.
///
/// ```
/// use ringtrace::event::Record;
/// let mut buf = [0u8; 32];
/// let p = ringtrace::printk::Print { ip: 0, text: "mark" };
/// let n = p.encode(&Default::default(), &mut buf).unwrap();
/// assert_eq!(ringtrace::printk::format_print(&buf[..n]).unwrap(), "mark");
/// ```
pub fn format_print(record: &[u8]) -> Result<String, FormatError> {
    let (ty, _) = CommonFields::read(record)
        .ok_or(FormatError::NotBprint("shorter than the common header"))?;
    if ty != PRINT_ID {
        return Err(FormatError::NotBprint("common_type is not 5"));
    }
    let text = record
        .get(16..)
        .ok_or(FormatError::NotBprint("shorter than 16 bytes"))?;
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    Ok(String::from_utf8_lossy(&text[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Record;
    use crate::record::printk::{ArgList, Bprint, KindsSource, FMT_ADDR_BASE};

    fn roundtrip<A: ArgList, K: KindsSource>(b: Bprint<A, K>) -> String {
        let mut buf = [0u8; 512];
        let c = CommonFields {
            pid: 1,
            ..CommonFields::default()
        };
        let n = b.encode(&c, &mut buf).unwrap();
        assert_eq!(n, b.encoded_len());
        assert_eq!(n % 4, 0);
        format_bprint(&buf[..n]).unwrap().1
    }

    /// `renders!(want; fmt, args..)`: `bprintk!(fmt, args..)` encoded,
    /// then formatted, gives `want`.
    macro_rules! renders {
        ($want:expr; $($args:tt)*) => {
            assert_eq!(roundtrip(crate::bprintk!($($args)*)), $want)
        };
    }

    #[test]
    fn integers_roundtrip_with_widths_and_signs() {
        renders!("-1 -2147483648 4294967295"; "%d %i %u", -1, i32::MIN, u32::MAX);
        renders!("-9223372036854775808 18446744073709551615 -5 3"; "%lld %llu %ld %zu", i64::MIN, u64::MAX, -5i64, 3usize);
        renders!("[   42|42   |-0042|+7| 7]"; "[%5d|%-5d|%05d|%+d|% d]", 42, 42, -42, 7, 7);
        renders!("ff FF 0xff 010 0 deadbeef"; "%x %X %#x %#o %o %08llx", 255, 255, 255, 8, 0, 0xdead_beefu64);
        renders!("005||    -005"; "%.3d|%.0d|%8.3d", 5, 0, -5);
        // bool and char as integers; a negative i64 truncated to %d like C.
        renders!("1 65 -1"; "%d %u %d", true, 'A', -1i64);
    }

    #[test]
    fn strings_chars_bools_pointers_roundtrip() {
        let owned = String::from("owned");
        renders!("<a> <owned> <> <true>"; "<%s> <%s> <%s> <%s>", "a", &owned, "", true);
        renders!("[   abc|abc   |ab|    ab]"; "[%6s|%-6s|%.2s|%6.2s]", "abc", "abc", "abc", "abc");
        renders!("hé😀   x|y  |"; "%c%c%c %3c|%-3c|", 'h', 'é', '😀', 'x', b'y');
        renders!("0x1000 0x0"; "%p %p", 0x1000usize, std::ptr::null::<u8>());
        // A NUL in a &str ends the C string.
        renders!("ab|3"; "%s|%d", "ab\0cd", 3);
        // Strings unaligned, then ints realigned.
        renders!("x-2yz9"; "%s%d%s%lld", "x", -2, "yz", 9i64);
        renders!("100% sure"; "100%% %s", "sure");
    }

    #[test]
    fn floats_roundtrip_like_c() {
        renders!("1.500000 -2.35    2.717 2.0     |"; "%f %.2f %8.3f %-8.1f|", 1.5, -2.345f32, 2.71728, 2.0);
        renders!("1.234568e+04 1.23E-04 0.000000e+00"; "%e %.2E %e", 12345.678, 0.000123, 0.0);
        renders!("100000 1e+06 0.0001 1.234e-05 1E-10"; "%g %g %g %g %G", 100000.0, 1000000.0, 0.0001, 0.00001234, 1e-10);
        renders!("3 2.72 2.50000"; "%g %.3g %#g", 3.0, 2.71728, 2.5);
        renders!("inf NAN +1.000000 -1.500000"; "%f %F %+f %05f", f64::INFINITY, f64::NAN, 1.0, -1.5);
        renders!("-00003.50"; "%09.2f", -3.5);
    }

    #[test]
    fn bad_records_give_errors() {
        assert!(matches!(
            format_record("%d", &[0, 0]),
            Err(FormatError::Truncated {
                index: 0,
                need: 4,
                ..
            })
        ));
        assert!(matches!(
            format_record("%lld", &[0; 4]),
            Err(FormatError::Truncated { need: 8, .. })
        ));
        assert_eq!(
            format_record("%s", b"abc"),
            Err(FormatError::Unterminated { index: 0, at: 0 })
        );
        assert_eq!(
            format_record("%s", &[0xff, 0xfe, 0]),
            Err(FormatError::InvalidUtf8 { index: 0, at: 0 })
        );
        assert_eq!(
            format_record("%c", &0xd800u32.to_ne_bytes()),
            Err(FormatError::InvalidChar {
                index: 0,
                value: 0xd800
            })
        );
        assert_eq!(
            format_record("%d", &[0; 12]),
            Err(FormatError::TrailingBytes { extra: 8 })
        );
        assert!(matches!(
            format_record("%", &[]),
            Err(FormatError::BadFormat { at: 0, .. })
        ));
        assert!(matches!(
            format_record("ab%hd", &[0; 4]),
            Err(FormatError::BadFormat { at: 2, .. })
        ));
        assert!(matches!(
            format_record("%*d", &[0; 8]),
            Err(FormatError::BadFormat { .. })
        ));
        assert!(matches!(
            format_record("%4097d", &[0; 4]),
            Err(FormatError::BadFormat { at: 0, .. })
        ));
        assert!(matches!(
            format_record("%.99999999999f", &[0; 8]),
            Err(FormatError::BadFormat { at: 0, .. })
        ));
        assert_eq!(format_record("%4096d", &[0; 4]).map(|s| s.len()), Ok(4096));
        assert!(matches!(
            format_record("%lls", &[0]),
            Err(FormatError::BadFormat { .. })
        ));
        assert!(matches!(
            format_bprint(&[0; 10]),
            Err(FormatError::NotBprint(_))
        ));
        let mut rec = [0u8; 24];
        CommonFields::default().write(BPRINT_ID, &mut rec);
        rec[16..24].copy_from_slice(&(FMT_ADDR_BASE + 0x10_0000).to_ne_bytes());
        assert!(matches!(
            format_bprint(&rec),
            Err(FormatError::UnknownFormat(_))
        ));
        // Random bytes never panic.
        let mut x = 0x1234_5678u32;
        for len in 0..64 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let _ = format_record("%d %s %lld %c %f %s %x", &bytes);
        }
    }

    #[test]
    fn printk_formats_and_kallsyms_list_used_sites() {
        let b = crate::bprintk!("line \"%d\"\n", 1);
        b.encode(&CommonFields::default(), &mut [0u8; 64]).unwrap();
        let id = b.site().assigned_id().unwrap();
        let pf = printk_formats_text();
        assert!(
            pf.contains(&format!("0x{:x} : \"line \\\"%d\\\"\\n\"\n", fmt_addr(id))),
            "{pf}"
        );
        let k = kallsyms_text();
        assert!(
            k.contains(&format!(
                "{:016x} t {}:{}\n",
                ip_addr(id),
                file!(),
                b.site().line()
            )),
            "{k}"
        );
    }
}
