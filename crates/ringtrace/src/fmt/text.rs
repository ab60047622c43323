//! ftrace's text output: the `trace` file's header lines and per-event
//! lines, `CPU:N [LOST n EVENTS]` lines, time stamps, and the per-ring
//! `stats` text.
//!
//! Pure functions over plain values. Each has a `write_*` form that writes
//! into any [`core::fmt::Write`] without allocating (usable from a crash
//! handler with a fixed buffer) and, where handy, a `String` form.
//!
//! Two line styles ([`Style`]):
//!
//! ```text
//! Modern (Linux 6.x, irq-info on; pid width 7, flag block):
//!            bash-1234    [001] d.h1.  1234.567890: name: text
//! Modern, irq-info off:
//!            bash-1234    [001]   1234.567890: name: text
//! Legacy (2.6.32, 2009; pid width 5):
//!            bash-1234  [001]  1234.567890: name: text
//! ```
//!
//! Time stamps of nanosecond clocks print as `secs.usecs`, rounded to the
//! microsecond like the kernel's `ns2usecs`; other clocks (`counter`, raw
//! `x86-tsc`) print the raw count, `%12llu`.

use core::fmt::{self, Write};

use crate::event::flags;

/// Which `trace` line format to produce.
///
/// ```
/// use ringtrace::text::Style;
/// assert_ne!(Style::Modern { irq_info: true }, Style::Legacy2009);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Linux 6.x: pid width 7, optional irq-info flag block.
    Modern {
        /// Print the five-character flag block (the `irq-info` option, on by default in the kernel).
        irq_info: bool,
    },
    /// Linux 2.6.32 (2009): pid width 5, no flag block.
    Legacy2009,
}

impl Default for Style {
    fn default() -> Self {
        Style::Modern { irq_info: true }
    }
}

/// How time stamps print.
///
/// ```
/// use ringtrace::text::{timestamp, TimeFormat};
/// assert_eq!(timestamp(1_234_567_890_499, TimeFormat::Nanoseconds), "  1234.567890");
/// assert_eq!(timestamp(42, TimeFormat::Raw), "           42");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// The clock counts nanoseconds: print `secs.usecs`.
    Nanoseconds,
    /// The clock is a raw counter: print the count.
    Raw,
}

impl TimeFormat {
    /// `Nanoseconds` if `is_ns`, else `Raw` (pass `Clock::is_nanoseconds()`).
    ///
    /// ```
    /// assert_eq!(ringtrace::text::TimeFormat::for_clock(false), ringtrace::text::TimeFormat::Raw);
    /// ```
    #[must_use]
    pub fn for_clock(is_ns: bool) -> Self {
        if is_ns {
            TimeFormat::Nanoseconds
        } else {
            TimeFormat::Raw
        }
    }
}

/// Splits ns into (seconds, microseconds), rounding to the nearest
/// microsecond like the kernel's `ns2usecs`.
fn secs_usecs(ns: u64) -> (u64, u64) {
    let us = ns.saturating_add(500) / 1000;
    (us / 1_000_000, us % 1_000_000)
}

/// Writes a time stamp as the kernel's `trace_print_time` does: `" %5lu.%06lu"`
/// for nanosecond clocks, `" %12llu"` for raw counters (leading space
/// included).
///
/// ```
/// let mut s = String::new();
/// ringtrace::text::write_timestamp(&mut s, 5_000, ringtrace::text::TimeFormat::Nanoseconds).unwrap();
/// assert_eq!(s, "     0.000005");
/// ```
pub fn write_timestamp<W: Write>(w: &mut W, ts: u64, tf: TimeFormat) -> fmt::Result {
    // Built on the stack, two digits at a time, and written at once rather
    // than through `write!`: this runs for every line the pipe prints (same
    // text as `" {s:5}.{us:06}"` and `" {ts:12}"`).
    let mut buf = [b' '; 32];
    let end = buf.len();
    let first = match tf {
        TimeFormat::Nanoseconds => {
            let (s, us) = secs_usecs(ts);
            // Always six digits: three pairs, no loop.
            let us = us as usize;
            for (k, pair) in [us / 10_000, us / 100 % 100, us % 100]
                .into_iter()
                .enumerate()
            {
                let at = end - 6 + 2 * k;
                buf[at..at + 2].copy_from_slice(&DIGIT_PAIRS[2 * pair..2 * pair + 2]);
            }
            let i = end - 6;
            buf[i - 1] = b'.';
            let i = decimal_into(&mut buf, i - 1, s, 1);
            // Width 5, spaces already there; then the leading space.
            i.min(end - 7 - 5) - 1
        }
        TimeFormat::Raw => decimal_into(&mut buf, end, ts, 1).min(end - 12) - 1,
    };
    // SAFETY: `buf` holds only ASCII digits, spaces and a point.
    w.write_str(unsafe { std::str::from_utf8_unchecked(&buf[first..]) })
}

/// `"00"` to `"99"`, for two digits per division.
const DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut i = 0;
    while i < 100 {
        t[2 * i] = b'0' + (i / 10) as u8;
        t[2 * i + 1] = b'0' + (i % 10) as u8;
        i += 1;
    }
    t
};

/// Writes `v` in decimal into `buf`, ending just before `end`, with at
/// least `min` digits (zeros in front); returns where the digits start.
/// `buf` has room: a `u64` has 20 digits, and callers leave 20 below `end`
/// and ask for fewer.
#[inline(always)]
fn decimal_into(buf: &mut [u8; 32], end: usize, mut v: u64, min: usize) -> usize {
    let mut i = end;
    while v >= 100 {
        let p = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[p..p + 2]);
    }
    if v >= 10 {
        let p = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[p..p + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    while end - i < min {
        i -= 1;
        buf[i] = b'0';
    }
    i
}

/// Decimal digits of an integer, formatted without the `fmt` machinery.
struct Digits {
    buf: [u8; 24],
}

impl Digits {
    fn new() -> Self {
        Digits { buf: [0; 24] }
    }

    /// `v` in decimal.
    fn unsigned(&mut self, mut v: u64) -> &str {
        let mut i = self.buf.len();
        loop {
            i -= 1;
            self.buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.text(i)
    }

    /// The digits from `i` on as text.
    fn text(&self, i: usize) -> &str {
        // SAFETY: `unsigned` and `signed` store only ASCII digits and `-`
        // from `i` on, and ASCII is valid UTF-8. Unchecked because this runs
        // several times for every line the pipe prints.
        unsafe { std::str::from_utf8_unchecked(&self.buf[i..]) }
    }

    /// `v` in decimal, with a `-` when negative.
    fn signed(&mut self, v: i64) -> &str {
        let len = self.unsigned(v.unsigned_abs()).len();
        let mut i = self.buf.len() - len;
        if v < 0 {
            i -= 1;
            self.buf[i] = b'-';
        }
        self.text(i)
    }
}

/// `n` copies of `fill`.
fn fill<W: Write>(w: &mut W, mut n: usize, fill: char) -> fmt::Result {
    const SPACES: &str = "                                ";
    const ZEROS: &str = "00000000000000000000000000000000";
    let run = if fill == '0' { ZEROS } else { SPACES };
    while n > 0 {
        let k = n.min(run.len());
        w.write_str(&run[..k])?;
        n -= k;
    }
    Ok(())
}

/// `s` right-aligned in `width` characters (as `{:>width$}`; `{:0width$}`
/// for a non-negative number with `fill` `0`).
fn pad_left<W: Write>(w: &mut W, s: &str, width: usize, pad: char) -> fmt::Result {
    let chars = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    fill(w, width.saturating_sub(chars), pad)?;
    w.write_str(s)
}

/// `s` left-aligned in `width` characters (as `{:<width$}`).
fn pad_right<W: Write>(w: &mut W, s: &str, width: usize) -> fmt::Result {
    let chars = if s.is_ascii() {
        s.len()
    } else {
        s.chars().count()
    };
    w.write_str(s)?;
    fill(w, width.saturating_sub(chars), ' ')
}

/// [`write_timestamp`] into a new `String`.
///
/// ```
/// assert_eq!(ringtrace::text::timestamp(999, ringtrace::text::TimeFormat::Nanoseconds), "     0.000001");
/// ```
#[must_use]
pub fn timestamp(ts: u64, tf: TimeFormat) -> String {
    let mut s = String::new();
    let _ = write_timestamp(&mut s, ts, tf);
    s
}

/// The five-character irq-info flag block of `common_flags` and
/// `common_preempt_count`, as `trace_print_lat_fmt` prints it:
/// irqs-off (`D` `d` `b` `X` `.`), need-resched (`N` `n` `p` `.`),
/// hard/soft irq (`Z` `z` `H` `h` `s` `.`), preempt depth (hex of the low
/// nibble or `.`), migrate-disable (hex of the high nibble or `.`). With
/// ringtrace's mapping a write from a signal handler at depth 1 shows `..h1.`.
///
/// ```
/// use ringtrace::event::flags;
/// assert_eq!(&ringtrace::text::flag_block(flags::IN_SIGNAL_HANDLER, 1), b"..h1.");
/// assert_eq!(&ringtrace::text::flag_block(0, 0), b".....");
/// ```
#[must_use]
pub fn flag_block(f: u8, preempt_count: u8) -> [u8; 5] {
    let irqs_off = f & flags::SIGNALS_BLOCKED != 0;
    let bh_off = f & flags::BH_OFF != 0;
    let a = match (irqs_off, bh_off) {
        (true, true) => b'D',
        (true, false) => b'd',
        (false, true) => b'b',
        _ if f & flags::NO_SIGNAL_INFO != 0 => b'X',
        _ => b'.',
    };
    let b = match (
        f & flags::NEED_RESCHED != 0,
        f & flags::PREEMPT_RESCHED != 0,
    ) {
        (true, true) => b'N',
        (true, false) => b'n',
        (false, true) => b'p',
        (false, false) => b'.',
    };
    let nmi = f & flags::NESTED_SIGNAL != 0;
    let hard = f & flags::IN_SIGNAL_HANDLER != 0;
    let soft = f & flags::SOFTIRQ != 0;
    let c = match (nmi, hard, soft) {
        (true, true, _) => b'Z',
        (true, false, _) => b'z',
        (false, true, true) => b'H',
        (false, true, false) => b'h',
        (false, false, true) => b's',
        _ => b'.',
    };
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let lo = preempt_count & 0xf;
    let hi = preempt_count >> 4;
    let d = if lo != 0 { HEX[usize::from(lo)] } else { b'.' };
    let e = if hi != 0 { HEX[usize::from(hi)] } else { b'.' };
    [a, b, c, d, e]
}

/// The context of one event line.
///
/// ```
/// let c = ringtrace::text::LineContext { comm: "worker", pid: 7, cpu: 0, flags: 0, preempt_count: 0, ts: 0 };
/// assert_eq!(c.comm, "worker");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineContext<'a> {
    /// Thread name (`<...>` when unknown, `<idle>` for pid 0, as the kernel does).
    pub comm: &'a str,
    /// Thread id.
    pub pid: i32,
    /// Context (ring) number, shown as the CPU column.
    pub cpu: u32,
    /// `common_flags`.
    pub flags: u8,
    /// `common_preempt_count` (signal nesting depth).
    pub preempt_count: u8,
    /// Time stamp in the clock's unit.
    pub ts: u64,
}

impl<'a> LineContext<'a> {
    /// The context of a record with common fields `common`, written by
    /// thread `comm` into ring `cpu` at `ts`.
    #[must_use]
    pub fn of(comm: &'a str, common: &crate::event::CommonFields, cpu: u32, ts: u64) -> Self {
        LineContext {
            comm,
            pid: common.pid,
            cpu,
            flags: common.flags,
            preempt_count: common.preempt_count,
            ts,
        }
    }
}

/// Writes the context part of an event line, up to and including `": "`
/// (`trace_print_context`).
///
/// ```
/// use ringtrace::text::{write_context, LineContext, Style, TimeFormat};
/// let c = LineContext { comm: "bash", pid: 1234, cpu: 1, flags: 0, preempt_count: 0, ts: 1_234_567_890_000 };
/// let mut s = String::new();
/// write_context(&mut s, Style::Modern { irq_info: true }, TimeFormat::Nanoseconds, &c).unwrap();
/// assert_eq!(s, "            bash-1234    [001] .....  1234.567890: ");
/// ```
pub fn write_context<W: Write>(
    w: &mut W,
    style: Style,
    tf: TimeFormat,
    c: &LineContext<'_>,
) -> fmt::Result {
    write_context_head(w, style, c)?;
    write_timestamp(w, c.ts, tf)?;
    w.write_str(": ")
}

/// The part of [`write_context`] before the time stamp: it depends only on
/// the thread, the ring and the flags, so a reader may keep it for the
/// next event of the same ring.
///
/// ```
/// use ringtrace::text::{write_context_head, LineContext, Style};
/// let c = LineContext { comm: "bash", pid: 1234, cpu: 1, flags: 0, preempt_count: 0, ts: 0 };
/// let mut s = String::new();
/// write_context_head(&mut s, Style::Modern { irq_info: true }, &c).unwrap();
/// assert_eq!(s, "            bash-1234    [001] .....");
/// ```
pub fn write_context_head<W: Write>(w: &mut W, style: Style, c: &LineContext<'_>) -> fmt::Result {
    // By hand, as `write_timestamp`: the same text as
    // `"{:>16}-{:<7} [{:03}] "` (modern) and `"{:>16}-{:<5} [{:03}]"`.
    let pid_width = match style {
        Style::Modern { .. } => 7,
        Style::Legacy2009 => 5,
    };
    let mut d = Digits::new();
    pad_left(w, c.comm, 16, ' ')?;
    w.write_char('-')?;
    pad_right(w, d.signed(i64::from(c.pid)), pid_width)?;
    w.write_str(" [")?;
    pad_left(w, d.unsigned(u64::from(c.cpu)), 3, '0')?;
    w.write_char(']')?;
    if let Style::Modern { irq_info } = style {
        w.write_char(' ')?;
        if irq_info {
            let block = flag_block(c.flags, c.preempt_count);
            // The flag block is ASCII.
            w.write_str(std::str::from_utf8(&block).unwrap_or("....."))?;
        }
    }
    Ok(())
}

/// Writes one whole event line: context, `name: `, the text, and a newline
/// (not doubled if the text already ends with one, as binary printk formats
/// often do).
///
/// ```
/// use ringtrace::text::{write_event_line, LineContext, Style, TimeFormat};
/// let c = LineContext { comm: "demo", pid: 9, cpu: 0, flags: 0, preempt_count: 0, ts: 1_500 };
/// let mut s = String::new();
/// write_event_line(&mut s, Style::Legacy2009, TimeFormat::Nanoseconds, &c, "demo_msg", "level=1\n").unwrap();
/// assert_eq!(s, "            demo-9     [000]     0.000002: demo_msg: level=1\n");
/// ```
pub fn write_event_line<W: Write>(
    w: &mut W,
    style: Style,
    tf: TimeFormat,
    c: &LineContext<'_>,
    name: &str,
    text: &str,
) -> fmt::Result {
    write_context(w, style, tf, c)?;
    w.write_str(name)?;
    w.write_str(": ")?;
    w.write_str(text)?;
    if !text.ends_with('\n') {
        w.write_char('\n')?;
    }
    Ok(())
}

/// [`write_event_line`] into a new `String`.
///
/// ```
/// use ringtrace::text::{event_line, LineContext, Style, TimeFormat};
/// let c = LineContext { comm: "w", pid: 1, cpu: 2, flags: 0, preempt_count: 0, ts: 77 };
/// assert_eq!(
///     event_line(Style::Modern { irq_info: false }, TimeFormat::Raw, &c, "tick", "n=1"),
///     "               w-1       [002]            77: tick: n=1\n"
/// );
/// ```
#[must_use]
pub fn event_line(
    style: Style,
    tf: TimeFormat,
    c: &LineContext<'_>,
    name: &str,
    text: &str,
) -> String {
    let mut s = String::with_capacity(64 + name.len() + text.len());
    let _ = write_event_line(&mut s, style, tf, c, name, text);
    s
}

/// What the `trace` file header shows above the events.
///
/// ```
/// let h = ringtrace::text::Header { tracer: "nop", entries: 3, written: 5, contexts: 2 };
/// assert_eq!(h.tracer, "nop");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// Tracer name (`nop` for plain event tracing).
    pub tracer: &'a str,
    /// Events in the buffer now.
    pub entries: u64,
    /// Events ever written (entries plus overwritten ones).
    pub written: u64,
    /// Number of contexts (the kernel's `#P:` online CPUs).
    pub contexts: u32,
}

/// Writes the `trace` file header lines (the kernel's `s_show` for the first
/// entry: `# tracer:`, then `print_func_help_header[_irq]`).
///
/// ```
/// use ringtrace::text::{write_header, Header, Style};
/// let mut s = String::new();
/// write_header(&mut s, Style::Legacy2009, &Header { tracer: "nop", entries: 0, written: 0, contexts: 1 }).unwrap();
/// assert_eq!(s, "# tracer: nop\n#\n#           TASK-PID    CPU#    TIMESTAMP  FUNCTION\n#              | |       |          |         |\n");
/// ```
pub fn write_header<W: Write>(w: &mut W, style: Style, h: &Header<'_>) -> fmt::Result {
    writeln!(w, "# tracer: {}", h.tracer)?;
    w.write_str("#\n")?;
    match style {
        Style::Legacy2009 => {
            w.write_str("#           TASK-PID    CPU#    TIMESTAMP  FUNCTION\n")?;
            w.write_str("#              | |       |          |         |\n")
        }
        Style::Modern { irq_info } => {
            writeln!(
                w,
                "# entries-in-buffer/entries-written: {}/{}   #P:{}",
                h.entries, h.written, h.contexts
            )?;
            w.write_str("#\n")?;
            if irq_info {
                w.write_str("#                                _-----=> irqs-off/BH-disabled\n")?;
                w.write_str("#                               / _----=> need-resched\n")?;
                w.write_str("#                              | / _---=> hardirq/softirq\n")?;
                w.write_str("#                              || / _--=> preempt-depth\n")?;
                w.write_str("#                              ||| / _-=> migrate-disable\n")?;
                w.write_str("#                              |||| /     delay\n")?;
                w.write_str("#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION\n")?;
                w.write_str("#              | |         |   |||||     |         |\n")
            } else {
                w.write_str("#           TASK-PID     CPU#     TIMESTAMP  FUNCTION\n")?;
                w.write_str("#              | |         |         |         |\n")
            }
        }
    }
}

/// [`write_header`] into a new `String`.
///
/// ```
/// use ringtrace::text::{header, Header, Style};
/// let h = header(Style::default(), &Header { tracer: "nop", entries: 1, written: 2, contexts: 4 });
/// assert!(h.contains("# entries-in-buffer/entries-written: 1/2   #P:4\n"));
/// ```
#[must_use]
pub fn header(style: Style, h: &Header<'_>) -> String {
    let mut s = String::new();
    let _ = write_header(&mut s, style, h);
    s
}

/// Writes a lost-events line: `CPU:N [LOST n EVENTS]`, or
/// `CPU:N [LOST EVENTS]` when the count is unknown.
///
/// ```
/// let mut s = String::new();
/// ringtrace::text::write_lost_events(&mut s, 3, Some(17)).unwrap();
/// ringtrace::text::write_lost_events(&mut s, 0, None).unwrap();
/// assert_eq!(s, "CPU:3 [LOST 17 EVENTS]\nCPU:0 [LOST EVENTS]\n");
/// ```
pub fn write_lost_events<W: Write>(w: &mut W, cpu: u32, lost: Option<u64>) -> fmt::Result {
    match lost {
        Some(n) => writeln!(w, "CPU:{cpu} [LOST {n} EVENTS]"),
        None => writeln!(w, "CPU:{cpu} [LOST EVENTS]"),
    }
}

/// [`write_lost_events`] into a new `String`.
///
/// ```
/// assert_eq!(ringtrace::text::lost_events(1, Some(2)), "CPU:1 [LOST 2 EVENTS]\n");
/// ```
#[must_use]
pub fn lost_events(cpu: u32, lost: Option<u64>) -> String {
    let mut s = String::new();
    let _ = write_lost_events(&mut s, cpu, lost);
    s
}

/// One ring's counters: the ring's own [`ringtrace_ring::RingStats`],
/// re-exported so the text formats name one type.
pub use ringtrace_ring::RingStats;

/// Writes the eight stats lines (`tracing_stats_read`); the two time stamps
/// print `secs.usecs` for nanosecond clocks, the raw count otherwise.
/// `oldest event ts` is 0 when nothing is unread; `now ts` is
/// [`RingStats::now_ts`], which a tracer sets to its clock's reading.
///
/// ```
/// use ringtrace::text::{stats, RingStats, TimeFormat};
/// let s = stats(&RingStats { entries: 2, oldest_ts: Some(1_000_000_000), now_ts: 2_500_000_000, ..Default::default() }, TimeFormat::Nanoseconds);
/// assert!(s.starts_with("entries: 2\noverrun: 0\n"));
/// assert!(s.contains("oldest event ts:     1.000000\nnow ts:     2.500000\n"));
/// ```
pub fn write_stats<W: Write>(w: &mut W, s: &RingStats, tf: TimeFormat) -> fmt::Result {
    writeln!(w, "entries: {}", s.entries)?;
    writeln!(w, "overrun: {}", s.overrun)?;
    writeln!(w, "commit overrun: {}", s.commit_overrun)?;
    writeln!(w, "bytes: {}", s.bytes)?;
    match tf {
        TimeFormat::Nanoseconds => {
            let (a, au) = secs_usecs(s.oldest_ts.unwrap_or(0));
            writeln!(w, "oldest event ts: {a:5}.{au:06}")?;
            let (b, bu) = secs_usecs(s.now_ts);
            writeln!(w, "now ts: {b:5}.{bu:06}")?;
        }
        TimeFormat::Raw => {
            writeln!(w, "oldest event ts: {}", s.oldest_ts.unwrap_or(0))?;
            writeln!(w, "now ts: {}", s.now_ts)?;
        }
    }
    writeln!(w, "dropped events: {}", s.dropped)?;
    writeln!(w, "read events: {}", s.read)
}

/// [`write_stats`] into a new `String`.
///
/// ```
/// use ringtrace::text::{stats, RingStats, TimeFormat};
/// assert_eq!(stats(&RingStats::default(), TimeFormat::Raw).lines().count(), 8);
/// ```
#[must_use]
pub fn stats(s: &RingStats, tf: TimeFormat) -> String {
    let mut out = String::new();
    let _ = write_stats(&mut out, s, tf);
    out
}

/// A [`fmt::Write`] over a caller's byte buffer that never allocates:
/// writes past the end are cut and reported as [`fmt::Error`]. For crash
/// dumps and signal handlers.
///
/// ```
/// use core::fmt::Write;
/// let mut buf = [0u8; 8];
/// let mut w = ringtrace::text::FixedWriter::new(&mut buf);
/// assert!(write!(w, "CPU:{}", 1).is_ok());
/// assert!(w.write_str("12345").is_err());
/// assert_eq!(w.as_bytes(), b"CPU:1123");
/// ```
#[derive(Debug)]
pub struct FixedWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> FixedWriter<'b> {
    /// A writer filling `buf` from the start.
    ///
    /// ```
    /// let mut b = [0u8; 4];
    /// assert!(ringtrace::text::FixedWriter::new(&mut b).as_bytes().is_empty());
    /// ```
    pub fn new(buf: &'b mut [u8]) -> Self {
        FixedWriter { buf, len: 0 }
    }

    /// The bytes written so far (possibly ending mid-character after a cut).
    ///
    /// ```
    /// use core::fmt::Write;
    /// let mut b = [0u8; 4];
    /// let mut w = ringtrace::text::FixedWriter::new(&mut b);
    /// w.write_str("ab").unwrap();
    /// assert_eq!(w.as_bytes(), b"ab");
    /// ```
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Forgets what was written, to reuse the buffer.
    ///
    /// ```
    /// use core::fmt::Write;
    /// let mut b = [0u8; 4];
    /// let mut w = ringtrace::text::FixedWriter::new(&mut b);
    /// w.write_str("ab").unwrap();
    /// w.clear();
    /// assert!(w.as_bytes().is_empty());
    /// ```
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Bytes written so far.
    ///
    /// ```
    /// use core::fmt::Write;
    /// let mut b = [0u8; 4];
    /// let mut w = ringtrace::text::FixedWriter::new(&mut b);
    /// w.write_str("abc").unwrap();
    /// assert_eq!(w.len(), 3);
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    ///
    /// ```
    /// let mut b = [0u8; 4];
    /// assert!(ringtrace::text::FixedWriter::new(&mut b).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets what was written after the first `len` bytes.
    ///
    /// ```
    /// use core::fmt::Write;
    /// let mut b = [0u8; 8];
    /// let mut w = ringtrace::text::FixedWriter::new(&mut b);
    /// w.write_str("abc").unwrap();
    /// w.truncate(1);
    /// w.write_str("z").unwrap();
    /// assert_eq!(w.as_bytes(), b"az");
    /// ```
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl Write for FixedWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        if n < s.len() {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(comm: &str, pid: i32, cpu: u32, flags: u8, pc: u8, ts: u64) -> LineContext<'_> {
        LineContext {
            comm,
            pid,
            cpu,
            flags,
            preempt_count: pc,
            ts,
        }
    }

    #[test]
    fn modern_header_with_irq_info_is_exact() {
        let want = "\
# tracer: nop
#
# entries-in-buffer/entries-written: 14/20   #P:8
#
#                                _-----=> irqs-off/BH-disabled
#                               / _----=> need-resched
#                              | / _---=> hardirq/softirq
#                              || / _--=> preempt-depth
#                              ||| / _-=> migrate-disable
#                              |||| /     delay
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
#              | |         |   |||||     |         |
";
        assert_eq!(modern_nop_header(true, 14, 20, 8), want);
    }

    /// The modern header of a `nop` tracer: `entries` of `written` events
    /// on `contexts` contexts.
    fn modern_nop_header(irq_info: bool, entries: u64, written: u64, contexts: u32) -> String {
        let h = Header {
            tracer: "nop",
            entries,
            written,
            contexts,
        };
        header(Style::Modern { irq_info }, &h)
    }

    #[test]
    fn modern_header_without_irq_info_is_exact() {
        let want = "\
# tracer: nop
#
# entries-in-buffer/entries-written: 0/0   #P:1
#
#           TASK-PID     CPU#     TIMESTAMP  FUNCTION
#              | |         |         |         |
";
        assert_eq!(modern_nop_header(false, 0, 0, 1), want);
    }

    #[test]
    fn event_lines_in_all_styles_are_exact() {
        let c = ctx(
            "demo-writer",
            1201,
            0,
            flags::IN_SIGNAL_HANDLER,
            1,
            1_234_768_654_321,
        );
        let tf = TimeFormat::Nanoseconds;
        assert_eq!(
            event_line(
                Style::Modern { irq_info: true },
                tf,
                &c,
                "demo_fixed",
                "seq=0 value=3"
            ),
            "     demo-writer-1201    [000] ..h1.  1234.768654: demo_fixed: seq=0 value=3\n"
        );
        assert_eq!(
            event_line(
                Style::Modern { irq_info: false },
                tf,
                &c,
                "demo_fixed",
                "seq=0"
            ),
            "     demo-writer-1201    [000]   1234.768654: demo_fixed: seq=0\n"
        );
        assert_eq!(
            event_line(Style::Legacy2009, tf, &c, "demo_fixed", "seq=0"),
            "     demo-writer-1201  [000]  1234.768654: demo_fixed: seq=0\n"
        );
        // Long pid and a comm longer than 16 are not cut, as in the kernel.
        let c = ctx("a-very-long-thread-name", 12345678, 12, 0, 0, 0);
        assert_eq!(
            event_line(Style::Modern { irq_info: true }, tf, &c, "x", "y"),
            "a-very-long-thread-name-12345678 [012] .....     0.000000: x: y\n"
        );
    }

    #[test]
    fn raw_counter_timestamps_print_the_count() {
        let c = ctx("t", 5, 1, 0, 0, 123_456_789_012_345);
        assert_eq!(
            event_line(
                Style::Modern { irq_info: true },
                TimeFormat::Raw,
                &c,
                "e",
                "x"
            ),
            "               t-5       [001] ..... 123456789012345: e: x\n"
        );
        assert_eq!(timestamp(7, TimeFormat::Raw), "            7");
    }

    #[test]
    fn timestamps_round_to_microseconds() {
        let tf = TimeFormat::Nanoseconds;
        assert_eq!(timestamp(0, tf), "     0.000000");
        assert_eq!(timestamp(499, tf), "     0.000000");
        assert_eq!(timestamp(500, tf), "     0.000001");
        assert_eq!(timestamp(999_999_500, tf), "     1.000000");
        assert_eq!(timestamp(123_456_000_000_000, tf), " 123456.000000");
        assert_eq!(timestamp(u64::MAX, tf), " 18446744073.709551");
    }

    /// The two-digits-at-a-time time stamp is `format!`'s text, at every
    /// digit count and around each power of ten.
    #[test]
    fn timestamps_match_format_at_every_width() {
        let mut stamps = vec![0, u64::MAX, u64::MAX - 1];
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            stamps.extend([p - 1, p, p + 1, p * 7 + 3, next - 1]);
            p = next;
        }
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            stamps.push(x >> (x % 64));
        }
        for ts in stamps {
            let (s, us) = secs_usecs(ts);
            assert_eq!(
                timestamp(ts, TimeFormat::Nanoseconds),
                format!(" {s:5}.{us:06}"),
                "{ts}"
            );
            assert_eq!(timestamp(ts, TimeFormat::Raw), format!(" {ts:12}"), "{ts}");
        }
    }

    #[test]
    fn flag_block_covers_every_column() {
        assert_eq!(&flag_block(0, 0), b".....");
        assert_eq!(&flag_block(flags::SIGNALS_BLOCKED, 0), b"d....");
        assert_eq!(
            &flag_block(flags::SIGNALS_BLOCKED | flags::BH_OFF, 0),
            b"D...."
        );
        assert_eq!(&flag_block(flags::BH_OFF, 0), b"b....");
        assert_eq!(&flag_block(flags::NO_SIGNAL_INFO, 0), b"X....");
        assert_eq!(
            &flag_block(flags::NEED_RESCHED | flags::PREEMPT_RESCHED, 0),
            b".N..."
        );
        assert_eq!(&flag_block(flags::NEED_RESCHED, 0), b".n...");
        assert_eq!(&flag_block(flags::PREEMPT_RESCHED, 0), b".p...");
        assert_eq!(
            &flag_block(flags::NESTED_SIGNAL | flags::IN_SIGNAL_HANDLER, 2),
            b"..Z2."
        );
        assert_eq!(&flag_block(flags::NESTED_SIGNAL, 0), b"..z..");
        assert_eq!(
            &flag_block(flags::IN_SIGNAL_HANDLER | flags::SOFTIRQ, 0),
            b"..H.."
        );
        assert_eq!(&flag_block(flags::SOFTIRQ, 0), b"..s..");
        assert_eq!(&flag_block(0, 0x2f), b"...f2");
    }

    #[test]
    fn stats_text_is_exact() {
        let s = RingStats {
            entries: 10,
            overrun: 2,
            commit_overrun: 1,
            bytes: 4096,
            oldest_ts: Some(5_000_001_000),
            now_ts: 6_123_456_789,
            dropped: 3,
            read: 4,
            ..Default::default()
        };
        assert_eq!(
            stats(&s, TimeFormat::Nanoseconds),
            "entries: 10\noverrun: 2\ncommit overrun: 1\nbytes: 4096\n\
oldest event ts:     5.000001\nnow ts:     6.123457\ndropped events: 3\nread events: 4\n"
        );
        assert_eq!(
            stats(&s, TimeFormat::Raw),
            "entries: 10\noverrun: 2\ncommit overrun: 1\nbytes: 4096\n\
oldest event ts: 5000001000\nnow ts: 6123456789\ndropped events: 3\nread events: 4\n"
        );
    }

    /// The hand-written context columns and time stamps give exactly the
    /// text of the `format!` specs they replace, at every edge: long and
    /// non-ASCII names, negative and wide pids, wide contexts, huge stamps.
    #[test]
    fn hand_formatting_matches_the_format_specs() {
        let comms = [
            "",
            "w",
            "exactly-16-chars",
            "longer-than-sixteen-chars",
            "çé-ünï",
        ];
        let pids = [
            0,
            1,
            42,
            -1,
            -1234567,
            1234567,
            12345678,
            i32::MAX,
            i32::MIN,
        ];
        let cpus = [0, 7, 63, 999, 1000, u32::MAX];
        let stamps = [
            0,
            499,
            500,
            999_999_499,
            1_234_567_890_123,
            99_999_999_999_999_999,
            u64::MAX,
        ];
        for comm in comms {
            for pid in pids {
                for cpu in cpus {
                    for ts in stamps {
                        let c = ctx(comm, pid, cpu, 0, 0, ts);
                        for tf in [TimeFormat::Nanoseconds, TimeFormat::Raw] {
                            let stamp = match tf {
                                TimeFormat::Nanoseconds => {
                                    let (s, us) = secs_usecs(ts);
                                    format!(" {s:5}.{us:06}")
                                }
                                TimeFormat::Raw => format!(" {ts:12}"),
                            };
                            assert_eq!(timestamp(ts, tf), stamp);
                            let mut got = String::new();
                            write_context(&mut got, Style::Modern { irq_info: true }, tf, &c)
                                .unwrap();
                            let want = format!("{comm:>16}-{pid:<7} [{cpu:03}] .....{stamp}: ");
                            assert_eq!(got, want);
                            let mut got = String::new();
                            write_context(&mut got, Style::Modern { irq_info: false }, tf, &c)
                                .unwrap();
                            assert_eq!(got, format!("{comm:>16}-{pid:<7} [{cpu:03}] {stamp}: "));
                            let mut got = String::new();
                            write_context(&mut got, Style::Legacy2009, tf, &c).unwrap();
                            assert_eq!(got, format!("{comm:>16}-{pid:<5} [{cpu:03}]{stamp}: "));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn lost_lines_and_fixed_writer() {
        assert_eq!(lost_events(2, Some(0)), "CPU:2 [LOST 0 EVENTS]\n");
        let mut buf = [0u8; 200];
        let mut w = FixedWriter::new(&mut buf);
        let c = ctx("x", 1, 0, 0, 0, 1_000);
        write_event_line(
            &mut w,
            Style::default(),
            TimeFormat::Nanoseconds,
            &c,
            "e",
            "t",
        )
        .unwrap();
        assert_eq!(
            w.as_bytes(),
            event_line(Style::default(), TimeFormat::Nanoseconds, &c, "e", "t").as_bytes()
        );
        let mut small = [0u8; 10];
        let mut w = FixedWriter::new(&mut small);
        assert!(write_event_line(
            &mut w,
            Style::default(),
            TimeFormat::Nanoseconds,
            &c,
            "e",
            "t"
        )
        .is_err());
        assert_eq!(w.as_bytes().len(), 10);
    }
}
