//! Binary printk: the write side stores a format id and the raw argument
//! bytes; formatting happens when the record is read, like the kernel's
//! `trace_bprintk` / `vbin_printf` / `bstr_printf`.
//!
//! # Placeholder syntax: C printf
//!
//! Formats use printf conversions, not Rust's `{}`: the same format text is
//! exported in trace.dat's `printk_formats` section and evaluated there by
//! libtraceevent (trace-cmd, KernelShark), so it must be C. Supported:
//!
//! ```text
//! %[flags][width][.precision][length]conversion
//! flags: - + space # 0      width, precision: decimal, at most 4096 (no `*`)
//! length: (none) = 32-bit, l / ll / z = 64-bit   (h, hh, j, t, L are refused)
//! conversion: d i u x X o   integers      c  char      s  string
//!             p             pointer       f F e E g G  f64
//!             %%            a percent sign
//! ```
//!
//! Width and precision count characters for `%s` and `%c` (C counts bytes;
//! the two agree on ASCII).
//!
//! Everything about a call site is checked at **compile time**: the format
//! is parsed by a `const fn` (a malformed one does not compile), the number
//! of arguments must match, and each argument's type must fit its conversion
//! (checked in an inline `const` block against [`BprintArg::FITS`], so it
//! fails at `cargo build`, naming the argument; `cargo check` alone does not
//! evaluate it): integers fit `d i u x X o p c`, `bool` fits the integer
//! conversions and `s` (as `true`/`false`), `char` fits `c` and the integer
//! conversions, `&str`/`String` fit `s`, `f32`/`f64` fit the float
//! conversions, raw pointers fit `p` and the 64-bit integer conversions.
//! Integers are cut to the conversion's width, as C's varargs would (`%d` of
//! `-1i64` stores `-1`, of `u64::MAX` too). What only a value can break is
//! checked when encoding: an integer given to `%c` must be a Unicode scalar
//! value ([`EncodeError::ArgMismatch`]).
//!
//! Cost: encoding a record with two `u64` arguments (`"a=%llu b=%llu"`) is
//! a small part of `trace!`'s cost (see the bench crate's output): the macro
//! hands the encoder the argument kinds as a constant, so
//! the per-argument checks fold away.
//!
//! # Record layout: the kernel's `bprint` entry (ftrace type 6)
//!
//! ```text
//! 0   common header (8 bytes, common_type = 6)
//! 8   u64 ip     call-site "address"  = IP_BASE + (id << 4)
//! 16  u64 fmt    format "address"     = FMT_ADDR_BASE + (id << 4)
//! 24  u32 buf[]  arguments, packed like vbin_printf:
//!       32-bit ints: 4 bytes, 4-aligned      64-bit ints, %p: 8 bytes, 4-aligned
//!       %s: the bytes up to the first NUL, then NUL, unaligned
//!       %c: u32 code point, 4-aligned         floats: f64 bits, 8 bytes, 4-aligned
//!     record length rounded up to 4, padding zeroed
//! ```
//!
//! Alignment is relative to `buf`, which sits at offset 24 of a 4-aligned
//! record, so it equals the absolute alignment libtraceevent computes.
//!
//! # What trace-cmd 3.1.6 (libtraceevent 1.7.1) can print
//!
//! trace-cmd knows this event when its format (from [`BPRINT_EVENT`]) is in
//! trace.dat's *ftrace* events section (system `ftrace`, which makes
//! libtraceevent treat `bprint` specially), and it finds the format text by
//! the `fmt` address in the `printk_formats` section
//! ([`printk_formats_text`]). The `ip` prints as `file:line` through the
//! kallsyms section ([`kallsyms_text`]). libtraceevent's `make_bprint_args`
//! then walks the format and reads the arguments with the same packing as
//! above. Checked with the Debian trace-cmd 3.1.6 on a hand-made v6 file:
//!
//! ```text
//! demo-1234 [000] 1.000000: bprint: src/main.rs:114: ints -5 7 ff -9 18446744073709551615 00042 003 end
//! demo-1234 [000] 1.000001: bprint: src/main.rs:115: strs [hello] [] 17 [ab] [   right] 0x1234
//! demo-1234 [000] 1.000002: bprint: src/main.rs:116: bool true int 0
//! demo-1234 [000] 1.000003: bprint: src/main.rs:117: flags >+<d 0x5 0377        <- "%+d %#x %#o" of 5, 255, 8
//! demo-1234 [000] 1.000004: bprint: src/main.rs:118: left [1    ] then d       <- "[%-5d] then %d" of 1, 2
//! demo-1234 [000] 1.000005: bprint: [FAILED TO PARSE] ip=... fmt=... buf=ARRAY[] <- %c
//! demo-1234 [000] 1.000006: bprint: [FAILED TO PARSE] ...                      <- %f
//! demo-1234 [000] 1.000007: bprint: [FAILED TO PARSE] ...                      <- "% d"
//! demo-1234 [000] 1.000008: print: tracing_mark_write: marker text             <- Print
//! ```
//!
//! So trace-cmd prints `d i u x X o p s` with lengths `l ll z`, the `0` flag,
//! width and precision; it misreads the `+`, `#`, `-` and space flags and
//! fails on `%c` and the float conversions (libtraceevent consumes no
//! argument for them). [`trace_cmd_compatible`] tells whether a format is in
//! the safe subset; ringtrace's own reader ([`format_record`]) handles the
//! whole syntax.
//!
//! # Call-site ids
//!
//! Each `bprintk!` call site has a `static` [`Site`] holding its format and an
//! atomic id, 0 until first use. The first use takes the next id from a global
//! counter (a bounded compare-and-swap loop), publishes the site in a fixed
//! table slot of its own, then installs the id with one compare-and-swap; a
//! thread that loses the race uses the winner's id. Only atomics are touched,
//! so even the first use is async-signal-safe; after it, getting the id is one
//! Acquire load.

use super::publish;
use crate::sync::{AtomicPtr, AtomicU32, Ordering};
use std::fmt::Write as _;
use std::marker::PhantomData;

use crate::event::{Array, CommonFields, EncodeError, EventType, Field, Record};

mod render;
pub use render::write_record;
pub(crate) use render::{write_site, FormatCache};

/// ftrace's type id of `print` events (kernel `TRACE_PRINT`).
///
/// ```
/// assert_eq!(ringtrace::printk::PRINT_ID, 5);
/// ```
pub const PRINT_ID: u16 = 5;

/// ftrace's type id of `bprint` events (kernel `TRACE_BPRINT`).
///
/// ```
/// assert_eq!(ringtrace::printk::BPRINT_ID, 6);
/// ```
pub const BPRINT_ID: u16 = 6;

/// Offset of the packed arguments in a bprint record.
///
/// ```
/// assert_eq!(ringtrace::printk::BPRINT_ARGS_OFFSET, 24);
/// ```
pub const BPRINT_ARGS_OFFSET: usize = 24;

/// Base of the fake "addresses" of interned formats (`fmt` field).
///
/// ```
/// assert_eq!(ringtrace::printk::fmt_addr(1), ringtrace::printk::FMT_ADDR_BASE + 16);
/// ```
pub const FMT_ADDR_BASE: u64 = 0xffff_ffff_f000_0000;

/// Base of the fake "addresses" of call sites (`ip` field).
///
/// ```
/// assert_eq!(ringtrace::printk::ip_addr(2), ringtrace::printk::IP_BASE + 32);
/// ```
pub const IP_BASE: u64 = 0xffff_ffff_e000_0000;

/// The `ip` stored in marker ([`Print`]) records; [`kallsyms_text`] names it
/// `tracing_mark_write`, as the kernel's marker events show.
///
/// ```
/// assert!(ringtrace::printk::MARKER_IP < ringtrace::printk::IP_BASE + 16);
/// ```
pub const MARKER_IP: u64 = IP_BASE;

/// How many `bprintk!` call sites a process can have.
///
/// ```
/// assert_eq!(ringtrace::printk::MAX_SITES, 4096);
/// ```
pub const MAX_SITES: usize = 4096;

/// The `fmt` address of site `id`.
///
/// ```
/// assert_eq!(ringtrace::printk::fmt_addr(0), ringtrace::printk::FMT_ADDR_BASE);
/// ```
#[must_use]
pub const fn fmt_addr(id: u32) -> u64 {
    FMT_ADDR_BASE + ((id as u64) << 4)
}

/// The `ip` address of site `id`.
///
/// ```
/// assert_eq!(ringtrace::printk::ip_addr(0), ringtrace::printk::IP_BASE);
/// ```
#[must_use]
pub const fn ip_addr(id: u32) -> u64 {
    IP_BASE + ((id as u64) << 4)
}

static BPRINT_FIELDS: [Field; 3] = [
    Field {
        name: "ip",
        c_type: "unsigned long",
        offset: 8,
        size: 8,
        signed: false,
        array: Array::None,
    },
    Field {
        name: "fmt",
        c_type: "const char *",
        offset: 16,
        size: 8,
        signed: false,
        array: Array::None,
    },
    Field {
        name: "buf",
        c_type: "u32",
        offset: 24,
        size: 0,
        signed: false,
        array: Array::Flexible,
    },
];

/// The kernel's `ftrace/bprint` event type; its `format_text()` is the text of
/// `events/ftrace/bprint/format`.
///
/// ```
/// let t = ringtrace::printk::BPRINT_EVENT.format_text();
/// assert!(t.ends_with("print fmt: \"%ps: %s\", (void *)REC->ip, REC->fmt\n"));
/// ```
pub static BPRINT_EVENT: &EventType = &EventType {
    name: "bprint",
    system: "ftrace",
    id: BPRINT_ID,
    fields: &BPRINT_FIELDS,
    print_fmt: "\"%ps: %s\", (void *)REC->ip, REC->fmt",
};

static PRINT_FIELDS: [Field; 2] = [
    Field {
        name: "ip",
        c_type: "unsigned long",
        offset: 8,
        size: 8,
        signed: false,
        array: Array::None,
    },
    Field {
        name: "buf",
        c_type: "char",
        offset: 16,
        size: 0,
        signed: true,
        array: Array::Flexible,
    },
];

/// The kernel's `ftrace/print` event type (trace_marker writes and
/// non-constant trace_printk).
///
/// ```
/// let t = ringtrace::printk::PRINT_EVENT.format_text();
/// assert!(t.contains("\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:1;\n"));
/// ```
pub static PRINT_EVENT: &EventType = &EventType {
    name: "print",
    system: "ftrace",
    id: PRINT_ID,
    fields: &PRINT_FIELDS,
    print_fmt: "\"%ps: %s\", (void *)REC->ip, REC->buf",
};

// ---------------------------------------------------------------------------
// Format parsing (shared by the compile-time checks and the reader).

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
/// ([`BprintArg::FITS`]), checked at compile time by `bprintk!`.
///
/// ```
/// use ringtrace::printk::{fits, BprintArg};
/// assert_eq!(<&str as BprintArg>::FITS, fits::STR);
/// ```
pub mod fits {
    /// `%d %i %u %x %X %o` without length modifier.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::INT32, 1);
    /// ```
    pub const INT32: u8 = 1;
    /// The same with `l`, `ll` or `z`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::INT64, 2);
    /// ```
    pub const INT64: u8 = 2;
    /// `%p`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::PTR, 4);
    /// ```
    pub const PTR: u8 = 4;
    /// `%c`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::CHAR, 8);
    /// ```
    pub const CHAR: u8 = 8;
    /// `%f %F %e %E %g %G`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::FLOAT, 16);
    /// ```
    pub const FLOAT: u8 = 16;
    /// `%s`.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::fits::STR, 32);
    /// ```
    pub const STR: u8 = 32;
    /// Every integer conversion.
    ///
    /// ```
    /// use ringtrace::printk::fits;
    /// assert_eq!(fits::INT, fits::INT32 | fits::INT64);
    /// ```
    pub const INT: u8 = INT32 | INT64;
}

impl ArgKind {
    /// The [`fits`] bit of this kind.
    ///
    /// ```
    /// use ringtrace::printk::{fits, ArgKind};
    /// assert_eq!(ArgKind::Str.fits_bit(), fits::STR);
    /// ```
    #[must_use]
    pub const fn fits_bit(self) -> u8 {
        match self {
            ArgKind::Int32 => fits::INT32,
            ArgKind::Int64 => fits::INT64,
            ArgKind::Ptr => fits::PTR,
            ArgKind::Char => fits::CHAR,
            ArgKind::Float => fits::FLOAT,
            ArgKind::Str => fits::STR,
        }
    }

    const fn fixed_size(self) -> usize {
        match self {
            ArgKind::Int32 | ArgKind::Char => 4,
            ArgKind::Int64 | ArgKind::Ptr | ArgKind::Float => 8,
            ArgKind::Str => 0,
        }
    }
}

const F_MINUS: u8 = 1;
const F_PLUS: u8 = 2;
const F_SPACE: u8 = 4;
const F_HASH: u8 = 8;
const F_ZERO: u8 = 16;

/// One parsed conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    flags: u8,
    width: Option<u32>,
    precision: Option<u32>,
    /// 0 = none, 1 = l/z, 2 = ll.
    length: u8,
    conv: u8,
}

impl Spec {
    const fn kind(&self) -> ArgKind {
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
}

/// What the parser found at a position.
#[derive(Debug, Clone, Copy)]
enum Piece {
    /// The format ends.
    End,
    /// Literal bytes `start..end` (a `%%` yields a one-byte literal `%`).
    Literal(usize, usize),
    /// A conversion.
    Conv(Spec),
}

/// Why a format is malformed (offset of the offending `%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParseError {
    Truncated(usize),
    BadConversion(usize),
    Unsupported(usize),
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
const fn next_piece(f: &[u8], i: usize) -> Result<(Piece, usize), ParseError> {
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

// ---------------------------------------------------------------------------
// Call sites.

/// One `bprintk!` call site: its format, the storage kind of each argument,
/// where it is, and its id (0 until first use).
///
/// ```
/// use ringtrace::printk::{ArgKind, Site};
/// static S: Site = Site::new("x=%d", &[ArgKind::Int32], file!(), line!());
/// let id = S.id().unwrap();
/// assert_ne!(id, 0);
/// assert_eq!(S.id().unwrap(), id);
/// assert!(std::ptr::eq(ringtrace::printk::site_by_id(id).unwrap(), &S));
/// ```
#[derive(Debug)]
pub struct Site {
    fmt: &'static str,
    kinds: &'static [ArgKind],
    file: &'static str,
    line: u32,
    /// 0 = not yet assigned; otherwise fixed forever. Written once by the
    /// compare-and-swap in `register` (AcqRel), read by `id` (Acquire): pairs
    /// with the Release store of the table slot done before the CAS.
    id: AtomicU32,
}

/// `SITES[id]` points at the site that owns `id`, or at a site that lost the
/// race for its first id (whose own id is then different: lookups check).
/// Stores happen once per slot (the slot index comes from `NEXT_ID`).
static SITES: [AtomicPtr<Site>; MAX_SITES] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_SITES];

/// Next id to hand out; ids start at 1 (0 means "unassigned").
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// The id counter of the session this process writes into, if any (set by
/// [`share_ids`]): ids are then taken from it, so that the processes of a
/// session (a parent and the children it forks after attaching) never
/// hand out one id for two formats. Points into a session mapping that is
/// kept for the rest of the process.
static SHARED_NEXT_ID: AtomicPtr<AtomicU32> = AtomicPtr::new(std::ptr::null_mut());

/// Makes this process take printk ids from `counter` from now on (ids it
/// already handed out stay below it). The counter is a session's shared
/// one; its owner keeps it mapped for the rest of the process, which the
/// `'static` states. Taking the counter, not the session, keeps this room
/// free of sessions.
pub(crate) fn share_ids(counter: &'static AtomicU32) {
    // Relaxed: ids order nothing; the table append publishes each site.
    counter.fetch_max(NEXT_ID.load(Ordering::Relaxed), Ordering::Relaxed);
    // Release: pairs with the Acquire load in `register`.
    SHARED_NEXT_ID.store(
        counter as *const AtomicU32 as *mut AtomicU32,
        Ordering::Release,
    );
}

/// Takes the next id from `counter` (ids 1 to `MAX_SITES - 1`).
fn next_id(counter: &AtomicU32) -> Result<u32, EncodeError> {
    counter
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            if n >= 1 && (n as usize) < MAX_SITES {
                Some(n + 1)
            } else {
                None
            }
        })
        .map_err(|_| EncodeError::NoFormatId { max: MAX_SITES })
}

impl Site {
    /// A new, unregistered site. `kinds` must be `arg_kinds(fmt)`; the macro
    /// guarantees it.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("hi", &[], "f.rs", 1);
    /// assert_eq!(S.format(), "hi");
    /// ```
    #[must_use]
    pub const fn new(
        fmt: &'static str,
        kinds: &'static [ArgKind],
        file: &'static str,
        line: u32,
    ) -> Site {
        Site {
            fmt,
            kinds,
            file,
            line,
            id: AtomicU32::new(0),
        }
    }

    /// The format text.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("%s!", &[ringtrace::printk::ArgKind::Str], "f.rs", 1);
    /// assert_eq!(S.format(), "%s!");
    /// ```
    pub fn format(&self) -> &'static str {
        self.fmt
    }

    /// Source file of the call site.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("", &[], "a.rs", 3);
    /// assert_eq!((S.file(), S.line()), ("a.rs", 3));
    /// ```
    pub fn file(&self) -> &'static str {
        self.file
    }

    /// Source line of the call site.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("", &[], "a.rs", 9);
    /// assert_eq!(S.line(), 9);
    /// ```
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The storage kind of each argument.
    ///
    /// ```
    /// let b = ringtrace::bprintk!("%d %s", 1, "a");
    /// assert_eq!(b.site().kinds().len(), 2);
    /// ```
    pub fn kinds(&self) -> &'static [ArgKind] {
        self.kinds
    }

    /// The site's id, assigning it on first use. Async-signal-safe (atomics
    /// only); fails only when [`MAX_SITES`] sites exist.
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("", &[], "a.rs", 1);
    /// assert!(S.id().is_ok());
    /// ```
    #[inline]
    pub fn id(&'static self) -> Result<u32, EncodeError> {
        // The table slot stored before the id is visible to whoever reads
        // the records we write (`publish::assigned`'s Acquire).
        let id = publish::assigned(&self.id);
        if id != 0 {
            return Ok(id);
        }
        match register_site(self) {
            0 => Err(EncodeError::NoFormatId { max: MAX_SITES }),
            id => Ok(id),
        }
    }

    /// The id if already assigned (does not assign one).
    ///
    /// ```
    /// static S: ringtrace::printk::Site = ringtrace::printk::Site::new("", &[], "a.rs", 1);
    /// assert_eq!(S.assigned_id(), None);
    /// ```
    pub fn assigned_id(&self) -> Option<u32> {
        match publish::assigned(&self.id) {
            0 => None,
            id => Some(id),
        }
    }
}

/// Assigns `site` its id on first use: 0 when all [`MAX_SITES`] ids are
/// taken.
///
/// `extern "C"` so that the compiler knows it cannot unwind (a panic in it
/// would abort; nothing here panics): `Site::id` is called while the ring
/// holds a reservation, and a callee that may unwind would make the record
/// path keep an unwind guard in memory.
#[cold]
extern "C" fn register_site(site: &'static Site) -> u32 {
    // Bounded: each failed CAS means another thread (or process) took
    // an id.
    // Acquire: pairs with the Release store in `share_ids`.
    let shared = SHARED_NEXT_ID.load(Ordering::Acquire);
    // SAFETY: a non-null pointer was made by `share_ids` from a counter
    // in a session mapping leaked there: valid for the whole process.
    let new = match unsafe { shared.as_ref() } {
        Some(counter) => match next_id(counter) {
            Ok(id) => {
                // `site_count` tells session links a site registered.
                NEXT_ID.fetch_max(id + 1, Ordering::Relaxed);
                id
            }
            Err(_) => return 0,
        },
        None => match next_id(&NEXT_ID) {
            Ok(id) => id,
            Err(_) => return 0,
        },
    };
    let Some(slot) = SITES.get(new as usize) else {
        return 0;
    };
    // Slot `new` is ours alone; filled before the id is published, so a
    // record never carries an id whose slot is still empty. Lost the race:
    // slot `new` stays pointing at us, but our id is the winner's, so
    // `site_by_id(new)` reports nothing.
    publish::assign_id(slot, &site.id, site as *const Site as *mut Site, new)
}

/// The site that owns `id`, if any.
///
/// ```
/// assert!(ringtrace::printk::site_by_id(0).is_none());
/// ```
pub fn site_by_id(id: u32) -> Option<&'static Site> {
    let p = publish::published(SITES.get(id as usize)?);
    // SAFETY: every non-null pointer in SITES was made from a `&'static Site`
    // in `Site::register` and is never written through, so it is valid for
    // shared access for the rest of the program.
    let site: &'static Site = unsafe { p.as_ref() }?;
    publish::owns_id(&site.id, id).then_some(site)
}

/// Number of site ids handed out so far plus one (the next id): a cheap
/// "did any site register since" check for session tracers.
#[inline(always)]
pub(crate) fn site_count() -> u32 {
    NEXT_ID.load(Ordering::Relaxed)
}

/// The format an imported site gets when two processes of a session used
/// one id for different formats (sites registered in both a parent and
/// its forked child after the fork): its records then say so instead of
/// being formatted with the wrong text.
pub const AMBIGUOUS_FORMAT: &str =
    "[printk format ambiguous: processes of the session used this id for different formats]";

/// Makes a site of another process known here under its `id`, so that
/// records carrying that id format here (the reader of a session imports
/// the writer's sites). The site's strings are leaked: a reader imports
/// each site once, from a bounded table. False when `id` is out of range,
/// or already known with a different format: the id then formats as
/// [`AMBIGUOUS_FORMAT`] (never with a wrong format).
///
/// ```
/// use ringtrace::printk::{import_site, site_by_id, AMBIGUOUS_FORMAT};
/// assert!(import_site(4000, "v=%d", "prog.rs", 7));
/// let s = site_by_id(4000).unwrap();
/// assert_eq!((s.format(), s.file(), s.line()), ("v=%d", "prog.rs", 7));
/// assert!(import_site(4000, "v=%d", "prog.rs", 7));
/// assert!(!import_site(4000, "other", "prog.rs", 7));
/// assert_eq!(site_by_id(4000).unwrap().format(), AMBIGUOUS_FORMAT);
/// ```
pub fn import_site(id: u32, fmt: &str, file: &str, line: u32) -> bool {
    if id == 0 || id as usize >= MAX_SITES {
        return false;
    }
    let leak = |fmt: &str| -> &'static Site {
        Box::leak(Box::new(Site {
            fmt: Box::leak(fmt.to_string().into_boxed_str()),
            kinds: &[],
            file: Box::leak(file.to_string().into_boxed_str()),
            line,
            id: AtomicU32::new(id),
        }))
    };
    if let Some(s) = site_by_id(id) {
        if s.fmt == fmt || s.fmt == AMBIGUOUS_FORMAT {
            return s.fmt == fmt;
        }
        // The old site stays valid (leaked or static), only no longer
        // found.
        publish::replace(
            &SITES[id as usize],
            leak(AMBIGUOUS_FORMAT) as *const Site as *mut Site,
        );
        return false;
    }
    let site = leak(fmt);
    // The site's fields are visible with the pointer (`publish_once`).
    let ok = publish::publish_once(&SITES[id as usize], site as *const Site as *mut Site).is_ok();
    if ok {
        // Later local sites take ids above the imported ones.
        NEXT_ID.fetch_max(id + 1, Ordering::Relaxed);
    }
    ok
}

/// The site whose `fmt` address is `addr`.
///
/// ```
/// use ringtrace::event::Record;
/// let b = ringtrace::bprintk!("hello");
/// let mut buf = [0u8; 64];
/// b.encode(&Default::default(), &mut buf).unwrap();
/// let id = b.site().assigned_id().unwrap();
/// assert_eq!(ringtrace::printk::site_by_fmt_addr(ringtrace::printk::fmt_addr(id)).unwrap().format(), "hello");
/// ```
#[must_use]
pub fn site_by_fmt_addr(addr: u64) -> Option<&'static Site> {
    let off = addr.checked_sub(FMT_ADDR_BASE)?;
    if off & 0xf != 0 {
        return None;
    }
    site_by_id(u32::try_from(off >> 4).ok()?)
}

/// All sites that have an id, in id order.
///
/// ```
/// use ringtrace::event::Record;
/// let _ = ringtrace::bprintk!("x").encode(&Default::default(), &mut [0u8; 32]);
/// assert!(ringtrace::printk::sites().any(|(_, s)| s.format() == "x"));
/// ```
pub fn sites() -> impl Iterator<Item = (u32, &'static Site)> {
    (1..MAX_SITES as u32).filter_map(|id| site_by_id(id).map(|s| (id, s)))
}

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
        let _ = writeln!(s, "0x{:x} : \"{}\"", fmt_addr(id), escape(site.fmt));
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
/// and [`MARKER_IP`] `tracing_mark_write`, so trace-cmd prints them for `%ps`.
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
            .file
            .chars()
            .map(|c| if c.is_whitespace() { '_' } else { c })
            .collect();
        let _ = writeln!(s, "{:016x} t {}:{}", ip_addr(id), name, site.line);
    }
    s
}

// ---------------------------------------------------------------------------
// Arguments.

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
    /// The conversions this type fits ([`fits`] bits).
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
fn str_bytes<'v>(v: &ArgValue<'v>) -> Option<&'v [u8]> {
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

#[inline]
const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The argument kinds of one call site as a type-level constant (the
/// `bprintk!` macro implements it for a local type per call site), so that
/// argument types are checked against them at compile time.
///
/// ```
/// use ringtrace::printk::{ArgKind, SiteKinds};
/// struct K;
/// impl SiteKinds for K {
///     const KINDS: &'static [ArgKind] = &[ArgKind::Str];
/// }
/// assert_eq!(K::KINDS.len(), 1);
/// ```
pub trait SiteKinds {
    /// The kinds, in argument order.
    const KINDS: &'static [ArgKind];
}

/// Where a [`Bprint`] finds its argument kinds: a [`SiteKinds`] type (what
/// `bprintk!` uses; the kinds and the record length are then constants in
/// every function the record passes through, so the encoder's per-argument
/// `match`es fold away even where the compiler does not inline the record
/// path into the call site), or [`FromSite`] (read from the [`Site`] at run
/// time, for hand-made sites).
///
/// ```
/// use ringtrace::printk::{ArgKind, FromSite, KindsSource, Site};
/// static S: Site = Site::new("%d", &[ArgKind::Int32], "f.rs", 1);
/// assert_eq!(FromSite::kinds(&S), &[ArgKind::Int32]);
/// assert_eq!(FromSite::fixed_len(&S), Some(28));
/// ```
pub trait KindsSource {
    /// The kinds of `site`'s arguments.
    fn kinds(site: &Site) -> &'static [ArgKind];
    /// The encoded record length if no argument is a `%s` (then it does not
    /// depend on the values).
    fn fixed_len(site: &Site) -> Option<usize>;
}

/// [`KindsSource`] reading the kinds from the [`Site`] (what [`Bprint::new`]
/// uses).
///
/// ```
/// use ringtrace::printk::{ArgKind, FromSite, KindsSource, Site};
/// static S: Site = Site::new("%s", &[ArgKind::Str], "f.rs", 1);
/// assert_eq!(FromSite::fixed_len(&S), None);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FromSite;

impl KindsSource for FromSite {
    #[inline]
    fn kinds(site: &Site) -> &'static [ArgKind] {
        site.kinds
    }

    #[inline]
    fn fixed_len(site: &Site) -> Option<usize> {
        as_fixed(fixed_len(site.kinds))
    }
}

impl<K: SiteKinds> KindsSource for K {
    #[inline(always)]
    fn kinds(_: &Site) -> &'static [ArgKind] {
        K::KINDS
    }

    #[inline(always)]
    fn fixed_len(_: &Site) -> Option<usize> {
        const { as_fixed(fixed_len(K::KINDS)) }
    }
}

const fn as_fixed(len: usize) -> Option<usize> {
    if len == VARIABLE {
        None
    } else {
        Some(len)
    }
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

const fn misfit_message(i: usize) -> &'static str {
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

/// A `bprintk!` record ready to encode: its call site and its arguments.
///
/// ```
/// use ringtrace::event::{CommonFields, Record};
/// let b = ringtrace::bprintk!("%s=%d", "x", -4);
/// let mut buf = [0u8; 64];
/// let n = b.encode(&CommonFields::default(), &mut buf).unwrap();
/// assert_eq!(ringtrace::printk::format_bprint(&buf[..n]).unwrap().1, "x=-4");
/// ```
#[derive(Debug)]
pub struct Bprint<A, K = FromSite> {
    site: &'static Site,
    args: A,
    /// Where the argument kinds come from (see [`KindsSource`]).
    kinds: PhantomData<K>,
}

/// `fixed_len` of a site with a `%s` argument.
const VARIABLE: usize = usize::MAX;

/// The encoded length of a bprint record whose arguments are `kinds`, if
/// it does not depend on the values (no `%s`), else [`VARIABLE`].
const fn fixed_len(kinds: &[ArgKind]) -> usize {
    let mut pos = 0;
    let mut i = 0;
    while i < kinds.len() {
        if matches!(kinds[i], ArgKind::Str) {
            return VARIABLE;
        }
        pos = align4(pos) + kinds[i].fixed_size();
        i += 1;
    }
    align4(BPRINT_ARGS_OFFSET + pos)
}

impl<A: ArgList> Bprint<A> {
    /// Pairs a site with its arguments; the argument kinds are read from the
    /// site when encoding (`bprintk!` uses [`Bprint::checked`] instead).
    ///
    /// ```
    /// use ringtrace::printk::{ArgKind, Bprint, Site};
    /// static S: Site = Site::new("%d", &[ArgKind::Int32], "f.rs", 1);
    /// let b = Bprint::new(&S, (5,));
    /// assert_eq!(ringtrace::event::Record::encoded_len(&b), 28);
    /// ```
    #[inline]
    pub fn new(site: &'static Site, args: A) -> Self {
        Bprint {
            site,
            args,
            kinds: PhantomData,
        }
    }
}

impl<A: ArgList, K: KindsSource> Bprint<A, K> {
    /// What `bprintk!` uses: the kinds come from `K` (a constant), and a
    /// compile-time check refuses an argument whose type does not fit its
    /// conversion (e.g. a `&str` for `%d`).
    ///
    /// ```
    /// use ringtrace::printk::{ArgKind, Bprint, Site, SiteKinds};
    /// const K: [ArgKind; 1] = [ArgKind::Int64];
    /// struct Kinds;
    /// impl SiteKinds for Kinds {
    ///     const KINDS: &'static [ArgKind] = &K;
    /// }
    /// static S: Site = Site::new("%lld", &K, "f.rs", 1);
    /// let b = Bprint::<_, Kinds>::checked(&S, (5i64,));
    /// assert_eq!(ringtrace::event::Record::encoded_len(&b), 32);
    /// ```
    #[inline(always)]
    pub fn checked(site: &'static Site, args: A) -> Self
    where
        K: SiteKinds,
    {
        const {
            if let Some(i) = first_misfit(K::KINDS, A::FITS) {
                panic!("{}", misfit_message(i));
            }
        }
        Bprint {
            site,
            args,
            kinds: PhantomData,
        }
    }

    /// The call site.
    ///
    /// ```
    /// assert_eq!(ringtrace::bprintk!("q").site().format(), "q");
    /// ```
    pub fn site(&self) -> &'static Site {
        self.site
    }

    /// Bytes of the packed arguments (before rounding the record to 4).
    #[inline]
    fn args_len(&self) -> usize {
        let kinds = K::kinds(self.site);
        let mut pos = 0usize;
        let _ = self.args.for_each(|i, v| {
            match kinds.get(i) {
                Some(ArgKind::Str) => pos += str_bytes(&v).map_or(0, <[u8]>::len) + 1,
                Some(k) => pos = align4(pos) + k.fixed_size(),
                None => {}
            }
            Ok(())
        });
        pos
    }
}

impl<A: ArgList, K: KindsSource> Record for Bprint<A, K> {
    #[inline]
    fn event_type(&self) -> &'static EventType {
        BPRINT_EVENT
    }

    #[inline(always)]
    fn needs_registration(&self) -> bool {
        false
    }

    #[inline(always)]
    fn prepare(&self) {
        // The site id, assigned on first use (an error shows up in encode).
        let _ = self.site.id();
    }

    #[inline(always)]
    fn encoded_len(&self) -> usize {
        match K::fixed_len(self.site) {
            Some(len) => len,
            None => align4(BPRINT_ARGS_OFFSET + self.args_len()),
        }
    }

    #[inline(always)]
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let id = self.site.id()?;
        let total = self.encoded_len();
        let have = out.len();
        let out = out
            .get_mut(..total)
            .ok_or(EncodeError::BufferTooSmall { need: total, have })?;
        common.write(BPRINT_ID, out);
        out[8..16].copy_from_slice(&ip_addr(id).to_ne_bytes());
        out[16..24].copy_from_slice(&fmt_addr(id).to_ne_bytes());
        let args = &mut out[BPRINT_ARGS_OFFSET..];
        let pos = self.args.encode_args(K::kinds(self.site), args)?;
        // Zero the tail padding (alignment gaps were zeroed by put_arg).
        if let Some(tail) = args.get_mut(pos..) {
            tail.fill(0);
        }
        Ok(total)
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

/// Records a binary printk: `bprintk!("fmt", args...)` returns a [`Bprint`]
/// (a [`Record`]) that encodes the call site's format id and the raw argument
/// bytes, without allocating and without formatting. The format is a C printf
/// format (see the [module docs](crate::printk)); a malformed format or a
/// wrong argument count fails to compile.
///
/// ```
/// use ringtrace::event::{CommonFields, Record};
/// let mut buf = [0u8; 128];
/// let rec = ringtrace::bprintk!("%s: %5.1f%% done, %llu left", "copy", 42.25, 7u64);
/// let n = rec.encode(&CommonFields::default(), &mut buf).unwrap();
/// let (_, text) = ringtrace::printk::format_bprint(&buf[..n]).unwrap();
/// assert_eq!(text, "copy:  42.2% done, 7 left");
/// ```
///
/// ```compile_fail
/// let _ = ringtrace::bprintk!("%d %d", 1); // too few arguments
/// ```
///
/// ```compile_fail
/// let _ = ringtrace::bprintk!("%q", 1); // unknown conversion
/// ```
///
/// ```compile_fail
/// use ringtrace::event::Record;
/// let b = ringtrace::bprintk!("%d", "text"); // a string for %d
/// let _ = b.encoded_len();
/// ```
///
/// The format may be any constant `&str` expression, e.g. built with `concat!`:
///
/// ```
/// use ringtrace::event::Record;
/// let b = ringtrace::bprintk!(concat!("[", module_path!(), "] %d"), 1);
/// let mut buf = [0u8; 64];
/// let n = b.encode(&Default::default(), &mut buf).unwrap();
/// assert!(ringtrace::printk::format_bprint(&buf[..n]).unwrap().1.ends_with("] 1"));
/// ```
#[macro_export]
macro_rules! bprintk {
    ($fmt:expr $(, $arg:expr)* $(,)?) => {{
        const __BPRINTK_N: usize = $crate::printk::count_args($fmt);
        const __BPRINTK_KINDS: [$crate::printk::ArgKind; __BPRINTK_N] =
            $crate::printk::arg_kinds::<__BPRINTK_N>($fmt);
        const _: () = ::core::assert!(
            __BPRINTK_N == <[()]>::len(&[$($crate::__bprintk_unit!($arg)),*]),
            "bprintk!: the number of arguments does not match the format"
        );
        static __BPRINTK_SITE: $crate::printk::Site =
            $crate::printk::Site::new($fmt, &__BPRINTK_KINDS, ::core::file!(), ::core::line!());
        struct __BprintkKinds;
        impl $crate::printk::SiteKinds for __BprintkKinds {
            const KINDS: &'static [$crate::printk::ArgKind] = &__BPRINTK_KINDS;
        }
        $crate::printk::Bprint::<_, __BprintkKinds>::checked(&__BPRINTK_SITE, ($($arg,)*))
    }};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __bprintk_unit {
    ($e:expr) => {
        ()
    };
}

// ---------------------------------------------------------------------------
// Marker records (`ftrace/print`).

/// A marker write (`trace_marker`): an `ftrace/print` record holding `ip` and
/// the text, NUL-terminated. Like the kernel, a newline is not added here;
/// readers print the text as is.
///
/// ```
/// use ringtrace::event::{CommonFields, Record};
/// let p = ringtrace::printk::Print { ip: ringtrace::printk::MARKER_IP, text: "hello" };
/// let mut buf = [0u8; 32];
/// let n = p.encode(&CommonFields::default(), &mut buf).unwrap();
/// assert_eq!(n, 24);
/// assert_eq!(&buf[16..22], b"hello\0");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Print<'a> {
    /// Address shown with `%ps` (use [`MARKER_IP`] for marker writes).
    pub ip: u64,
    /// The text.
    pub text: &'a str,
}

impl Record for Print<'_> {
    fn event_type(&self) -> &'static EventType {
        PRINT_EVENT
    }

    #[inline(always)]
    fn needs_registration(&self) -> bool {
        false
    }

    #[inline]
    fn encoded_len(&self) -> usize {
        align4(16 + self.text.len() + 1)
    }

    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        let total = self.encoded_len();
        let have = out.len();
        let out = out
            .get_mut(..total)
            .ok_or(EncodeError::BufferTooSmall { need: total, have })?;
        common.write(PRINT_ID, out);
        out[8..16].copy_from_slice(&self.ip.to_ne_bytes());
        let n = self.text.len();
        out[16..16 + n].copy_from_slice(self.text.as_bytes());
        out[16 + n..].fill(0);
        Ok(total)
    }
}

// ---------------------------------------------------------------------------
// Read side.

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
pub fn format_record(fmt: &str, args: &[u8]) -> Result<String, FormatError> {
    let mut out = String::with_capacity(fmt.len() + 16);
    write_record(&mut out, fmt, args)?;
    Ok(out)
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
    Ok((site, format_record(site.fmt, r.args)?))
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

    fn roundtrip<A: ArgList, K: KindsSource>(b: Bprint<A, K>) -> String {
        let mut buf = [0u8; 512];
        let c = CommonFields {
            flags: 0,
            preempt_count: 0,
            pid: 1,
        };
        let n = b.encode(&c, &mut buf).unwrap();
        assert_eq!(n, b.encoded_len());
        assert_eq!(n % 4, 0);
        format_bprint(&buf[..n]).unwrap().1
    }

    #[test]
    fn integers_roundtrip_with_widths_and_signs() {
        assert_eq!(
            roundtrip(crate::bprintk!("%d %i %u", -1, i32::MIN, u32::MAX)),
            "-1 -2147483648 4294967295"
        );
        assert_eq!(
            roundtrip(crate::bprintk!(
                "%lld %llu %ld %zu",
                i64::MIN,
                u64::MAX,
                -5i64,
                3usize
            )),
            "-9223372036854775808 18446744073709551615 -5 3"
        );
        assert_eq!(
            roundtrip(crate::bprintk!(
                "[%5d|%-5d|%05d|%+d|% d]",
                42,
                42,
                -42,
                7,
                7
            )),
            "[   42|42   |-0042|+7| 7]"
        );
        assert_eq!(
            roundtrip(crate::bprintk!(
                "%x %X %#x %#o %o %08llx",
                255,
                255,
                255,
                8,
                0,
                0xdead_beefu64
            )),
            "ff FF 0xff 010 0 deadbeef"
        );
        assert_eq!(
            roundtrip(crate::bprintk!("%.3d|%.0d|%8.3d", 5, 0, -5)),
            "005||    -005"
        );
        // bool and char as integers; a negative i64 truncated to %d like C.
        assert_eq!(
            roundtrip(crate::bprintk!("%d %u %d", true, 'A', -1i64)),
            "1 65 -1"
        );
    }

    #[test]
    fn strings_chars_bools_pointers_roundtrip() {
        let owned = String::from("owned");
        assert_eq!(
            roundtrip(crate::bprintk!(
                "<%s> <%s> <%s> <%s>",
                "a",
                &owned,
                "",
                true
            )),
            "<a> <owned> <> <true>"
        );
        assert_eq!(
            roundtrip(crate::bprintk!(
                "[%6s|%-6s|%.2s|%6.2s]",
                "abc",
                "abc",
                "abc",
                "abc"
            )),
            "[   abc|abc   |ab|    ab]"
        );
        assert_eq!(
            roundtrip(crate::bprintk!(
                "%c%c%c %3c|%-3c|",
                'h',
                'é',
                '😀',
                'x',
                b'y'
            )),
            "hé😀   x|y  |"
        );
        assert_eq!(
            roundtrip(crate::bprintk!(
                "%p %p",
                0x1000usize,
                std::ptr::null::<u8>()
            )),
            "0x1000 0x0"
        );
        // A NUL in a &str ends the C string.
        assert_eq!(roundtrip(crate::bprintk!("%s|%d", "ab\0cd", 3)), "ab|3");
        // Strings unaligned, then ints realigned.
        assert_eq!(
            roundtrip(crate::bprintk!("%s%d%s%lld", "x", -2, "yz", 9i64)),
            "x-2yz9"
        );
        assert_eq!(roundtrip(crate::bprintk!("100%% %s", "sure")), "100% sure");
    }

    #[test]
    fn floats_roundtrip_like_c() {
        assert_eq!(
            roundtrip(crate::bprintk!(
                "%f %.2f %8.3f %-8.1f|",
                1.5,
                -2.345f32,
                2.71728,
                2.0
            )),
            "1.500000 -2.35    2.717 2.0     |"
        );
        assert_eq!(
            roundtrip(crate::bprintk!("%e %.2E %e", 12345.678, 0.000123, 0.0)),
            "1.234568e+04 1.23E-04 0.000000e+00"
        );
        assert_eq!(
            roundtrip(crate::bprintk!(
                "%g %g %g %g %G",
                100000.0,
                1000000.0,
                0.0001,
                0.00001234,
                1e-10
            )),
            "100000 1e+06 0.0001 1.234e-05 1E-10"
        );
        assert_eq!(
            roundtrip(crate::bprintk!("%g %.3g %#g", 3.0, 2.71728, 2.5)),
            "3 2.72 2.50000"
        );
        assert_eq!(
            roundtrip(crate::bprintk!(
                "%f %F %+f %05f",
                f64::INFINITY,
                f64::NAN,
                1.0,
                -1.5
            )),
            "inf NAN +1.000000 -1.500000"
        );
        assert_eq!(roundtrip(crate::bprintk!("%09.2f", -3.5)), "-00003.50");
    }

    #[test]
    fn layout_is_vbin_printf_compatible() {
        let b = crate::bprintk!("%d%s%llu%c", 1, "ab", 2u64, 'z');
        let mut buf = [0u8; 64];
        let n = b
            .encode(
                &CommonFields {
                    flags: 1,
                    preempt_count: 2,
                    pid: 3,
                },
                &mut buf,
            )
            .unwrap();
        let r = BprintFields::parse(&buf[..n]).unwrap();
        let id = b.site().assigned_id().unwrap();
        assert_eq!((r.ip, r.fmt), (ip_addr(id), fmt_addr(id)));
        let mut want = Vec::new();
        want.extend_from_slice(&1u32.to_ne_bytes());
        want.extend_from_slice(b"ab\0\0"); // string, then one byte to realign
        want.extend_from_slice(&2u64.to_ne_bytes());
        want.extend_from_slice(&('z' as u32).to_ne_bytes());
        assert_eq!(r.args, &want[..]);
        assert_eq!(n, 24 + 20);
    }

    #[test]
    fn arg_type_mismatch_is_an_error() {
        // `bprintk!` refuses these at compile time (see the compile_fail
        // doctest); `Bprint::new` with a hand-made site checks at encode time.
        static D: Site = Site::new("%d", &[ArgKind::Int32], "t.rs", 1);
        static SS: Site = Site::new("%s %s", &[ArgKind::Str, ArgKind::Str], "t.rs", 2);
        static F: Site = Site::new("%f", &[ArgKind::Float], "t.rs", 3);
        let mut buf = [0u8; 64];
        let c = CommonFields::default();
        assert_eq!(
            Bprint::new(&D, ("str",)).encode(&c, &mut buf),
            Err(EncodeError::ArgMismatch {
                index: 0,
                expected: "an integer"
            })
        );
        assert_eq!(
            Bprint::new(&SS, ("ok", 5)).encode(&c, &mut buf),
            Err(EncodeError::ArgMismatch {
                index: 1,
                expected: "a string or bool for %s"
            })
        );
        assert!(Bprint::new(&F, (1,)).encode(&c, &mut buf).is_err());
        // Too many arguments for the site's kinds.
        assert!(Bprint::new(&D, (1, 2)).encode(&c, &mut buf).is_err());
        // Fits by type, but not a char: caught when encoding.
        assert!(crate::bprintk!("%c", 0xd800u32)
            .encode(&c, &mut buf)
            .is_err());
        let mut small = [0u8; 27];
        assert_eq!(
            crate::bprintk!("%d", 1).encode(&c, &mut small),
            Err(EncodeError::BufferTooSmall { need: 28, have: 27 })
        );
        // The compile-time table agrees with what encoding accepts.
        assert_eq!(first_misfit(&[ArgKind::Int32], <(&str,)>::FITS), Some(0));
        assert_eq!(
            first_misfit(&[ArgKind::Str, ArgKind::Int64], <(bool, *const u8)>::FITS),
            None
        );
        assert_eq!(first_misfit(&[ArgKind::Ptr], <(f64,)>::FITS), Some(0));
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
    fn site_ids_are_unique_and_stable() {
        fn site_of<A: ArgList, K: KindsSource>(b: &Bprint<A, K>) -> &'static Site {
            b.site()
        }
        let mut ids = Vec::new();
        for _ in 0..3 {
            let a = crate::bprintk!("site a");
            let b = crate::bprintk!("site b");
            ids.push((site_of(&a).id().unwrap(), site_of(&b).id().unwrap()));
        }
        assert_ne!(ids[0].0, ids[0].1);
        assert!(ids.iter().all(|x| *x == ids[0]));
    }

    #[test]
    fn concurrent_first_use_agrees_on_one_id() {
        static RACE: Site = Site::new("race %d", &[ArgKind::Int32], "t.rs", 1);
        let ids: Vec<u32> = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4).map(|_| s.spawn(|| RACE.id().unwrap())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert!(ids.iter().all(|&i| i == ids[0]));
        assert!(std::ptr::eq(site_by_id(ids[0]).unwrap(), &RACE));
    }

    #[test]
    fn trace_cmd_subset() {
        assert!(trace_cmd_compatible("plain"));
        assert!(trace_cmd_compatible("%d %5u %08lx %.3s %p %zu %%"));
        for bad in ["%-d", "% d", "%c", "%f", "%g", "%hd", "%*d"] {
            assert!(!trace_cmd_compatible(bad), "{bad}");
        }
    }

    #[test]
    fn event_formats_match_the_kernel() {
        let want = "name: bprint\nID: 6\nformat:\n\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n\
\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:const char * fmt;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:u32 buf[];\toffset:24;\tsize:0;\tsigned:0;\n\
\n\
print fmt: \"%ps: %s\", (void *)REC->ip, REC->fmt\n";
        assert_eq!(BPRINT_EVENT.format_text(), want);
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
