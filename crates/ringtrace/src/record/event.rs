//! Static event-type metadata, its ftrace `format` text, typed event encoders
//! and the event-type registry.
//!
//! # Terms
//!
//! - **Record**: the payload of one ring-buffer event. It starts with ftrace's
//!   8-byte common header ([`CommonFields`]) and goes on with the event's own
//!   fields, laid out like a C struct, then the bytes of any `__data_loc`
//!   strings.
//! - **Event type** ([`EventType`]): name, system, numeric id (the record's
//!   `common_type`), field list and `print fmt`, all `'static` and
//!   `const`-constructible.
//! - **Registry** ([`Registry`]): id to event type, for readers and exporters.
//!
//! # Record layout (as the kernel writes it)
//!
//! ```text
//! offset 0   u16 common_type            = EventType::id
//!        2   u8  common_flags           = flags::*
//!        3   u8  common_preempt_count   = signal nesting depth
//!        4   i32 common_pid             = thread id
//!        8   fields, each at the next multiple of its alignment
//!            (C struct rules; the fixed part is padded to its largest alignment)
//!   sizeof   __data_loc string bytes, NUL-terminated, in field order
//! ```
//!
//! A `__data_loc char[]` field is a `u32` holding `(len << 16) | offset`, offset
//! from the start of the record, `len` counting the NUL. Integers are stored in
//! native byte order; trace.dat records the byte order once per file.
//!
//! # Id assignment: at declaration
//!
//! Ids are chosen by whoever declares the event (`id = 1001` in
//! [`declare_event!`](crate::declare_event)) rather than handed out at first
//! registration. The id is then a constant folded into the encoder, so the
//! record path touches no shared state at all (nothing to initialise, nothing
//! to race with in a signal handler), and ids are stable across runs, which
//! keeps `trace.dat` files from different runs comparable. The price is that
//! two declarations can pick the same id: [`Registry::register`] refuses the
//! second one with [`RegistryError::IdTaken`], and the macro rejects ids
//! outside [`FIRST_USER_ID`]`..=`[`MAX_EVENT_ID`] at compile time. Ids below
//! [`FIRST_USER_ID`] are kept for ftrace's built-in types (`print` = 5,
//! `bprint` = 6, see [`crate::printk`]).
//!
//! # What this module must not touch
//!
//! Rings, clocks and threads: it only describes and encodes bytes.

use super::publish;
use crate::sync::AtomicPtr;
use std::fmt;

/// Size of ftrace's common header (`struct trace_entry`, modern 64-bit kernels).
///
/// ```
/// assert_eq!(ringtrace::event::COMMON_HEADER_SIZE, 8);
/// ```
#[doc(hidden)]
pub const COMMON_HEADER_SIZE: usize = 8;

/// Smallest id a user-declared event may use; `1..FIRST_USER_ID` are reserved
/// for ftrace's built-in types (the kernel's `TRACE_*` entry types are below 32).
///
/// ```
/// assert!(ringtrace::event::FIRST_USER_ID > ringtrace::printk::BPRINT_ID);
/// ```
pub const FIRST_USER_ID: u16 = 32;

/// Largest event id a [`Registry`] can hold.
///
/// ```
/// assert_eq!(ringtrace::event::MAX_EVENT_ID, 4095);
/// ```
pub const MAX_EVENT_ID: u16 = 4095;

/// Bits of `common_flags`.
///
/// They reuse the kernel's `TRACE_FLAG_*` bits (`kernel/trace/trace.h`) so that
/// `trace-cmd report -l`, KernelShark and our [`crate::text`] output show them
/// in the usual columns. The user-space meaning:
///
/// | constant | kernel bit | shown as | meaning here |
/// | --- | --- | --- | --- |
/// | [`SIGNALS_BLOCKED`](flags::SIGNALS_BLOCKED) | `IRQS_OFF` 0x01 | `d` | signals were blocked at the write (optional, costs a syscall to know) |
/// | [`NO_SIGNAL_INFO`](flags::NO_SIGNAL_INFO) | `IRQS_NOSUPPORT` 0x02 | `X` | the writer does not track the signal mask |
/// | [`IN_SIGNAL_HANDLER`](flags::IN_SIGNAL_HANDLER) | `HARDIRQ` 0x08 | `h` | written from a signal handler |
/// | [`NESTED_SIGNAL`](flags::NESTED_SIGNAL) | `NMI` 0x40 | `z` (`Z` with 0x08) | written from a handler that interrupted another handler |
///
/// `common_preempt_count` carries the signal nesting depth (0 = thread
/// context), so its low nibble prints as the preempt-depth column.
///
/// ```
/// use ringtrace::event::flags;
/// assert_eq!(flags::IN_SIGNAL_HANDLER, 0x08);
/// ```
#[doc(hidden)]
pub mod flags {
    /// Signals were blocked when the event was written (kernel `TRACE_FLAG_IRQS_OFF`).
    ///
    /// ```
    /// assert_eq!(ringtrace::event::flags::SIGNALS_BLOCKED, 0x01);
    /// ```
    pub const SIGNALS_BLOCKED: u8 = 0x01;
    /// The writer does not know the signal mask (kernel `TRACE_FLAG_IRQS_NOSUPPORT`).
    ///
    /// ```
    /// assert_eq!(ringtrace::event::flags::NO_SIGNAL_INFO, 0x02);
    /// ```
    pub const NO_SIGNAL_INFO: u8 = 0x02;
    /// Kernel `TRACE_FLAG_NEED_RESCHED`; unused by ringtrace, listed for decoding.
    ///
    /// ```
    /// assert_eq!(ringtrace::event::flags::NEED_RESCHED, 0x04);
    /// ```
    pub const NEED_RESCHED: u8 = 0x04;
    /// Written from a signal handler (kernel `TRACE_FLAG_HARDIRQ`).
    ///
    /// ```
    /// assert_eq!(ringtrace::event::flags::IN_SIGNAL_HANDLER, 0x08);
    /// ```
    pub const IN_SIGNAL_HANDLER: u8 = 0x08;
    /// Kernel `TRACE_FLAG_SOFTIRQ`; unused by ringtrace, listed for decoding.
    ///
    /// ```
    /// assert_eq!(ringtrace::event::flags::SOFTIRQ, 0x10);
    /// ```
    pub const SOFTIRQ: u8 = 0x10;
    /// Kernel `TRACE_FLAG_PREEMPT_RESCHED`; unused by ringtrace, listed for decoding.
    ///
    /// ```
    /// assert_eq!(ringtrace::event::flags::PREEMPT_RESCHED, 0x20);
    /// ```
    pub const PREEMPT_RESCHED: u8 = 0x20;
    /// Written from a handler that interrupted another handler (kernel `TRACE_FLAG_NMI`).
    ///
    /// ```
    /// assert_eq!(ringtrace::event::flags::NESTED_SIGNAL, 0x40);
    /// ```
    pub const NESTED_SIGNAL: u8 = 0x40;
    /// Kernel `TRACE_FLAG_BH_OFF`; unused by ringtrace, listed for decoding.
    ///
    /// ```
    /// assert_eq!(ringtrace::event::flags::BH_OFF, 0x80);
    /// ```
    pub const BH_OFF: u8 = 0x80;
}

/// The per-record context fields of ftrace's common header, minus the type id
/// (which comes from the event type).
///
/// ```
/// use ringtrace::event::{flags, CommonFields};
/// let c = CommonFields { flags: flags::IN_SIGNAL_HANDLER, preempt_count: 1, pid: 42 };
/// let mut buf = [0u8; 8];
/// c.write(7, &mut buf);
/// assert_eq!(CommonFields::read(&buf), Some((7, c)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CommonFields {
    /// `common_flags`: see [`flags`].
    pub flags: u8,
    /// `common_preempt_count`: signal nesting depth (0 = thread context).
    pub preempt_count: u8,
    /// `common_pid`: the writer's thread id.
    pub pid: i32,
}

impl CommonFields {
    /// Writes the 8-byte common header (type id first) into `out[..8]`.
    ///
    /// Does nothing if `out` is shorter than 8 bytes; encoders check the length
    /// before calling.
    ///
    /// ```
    /// let mut b = [0u8; 8];
    /// ringtrace::event::CommonFields { flags: 0, preempt_count: 0, pid: 1 }.write(40, &mut b);
    /// assert_eq!(u16::from_ne_bytes([b[0], b[1]]), 40);
    /// ```
    #[inline]
    pub fn write(&self, type_id: u16, out: &mut [u8]) {
        if let Some(h) = out.get_mut(..COMMON_HEADER_SIZE) {
            // Assembled in a register, then one 8-byte store: the native
            // byte order of type (2 bytes), flags, preempt count, pid.
            let (t, f, p, pid) = (
                u64::from(type_id),
                u64::from(self.flags),
                u64::from(self.preempt_count),
                u64::from(self.pid as u32),
            );
            let word = if cfg!(target_endian = "little") {
                t | f << 16 | p << 24 | pid << 32
            } else {
                t << 48 | f << 40 | p << 32 | pid
            };
            h.copy_from_slice(&word.to_ne_bytes());
        }
    }

    /// Reads `(type id, fields)` from the first 8 bytes of a record, `None` if
    /// it is shorter.
    ///
    /// ```
    /// assert_eq!(ringtrace::event::CommonFields::read(&[0u8; 3]), None);
    /// ```
    #[must_use]
    pub fn read(record: &[u8]) -> Option<(u16, CommonFields)> {
        let h = record.get(..COMMON_HEADER_SIZE)?;
        Some((
            u16::from_ne_bytes([h[0], h[1]]),
            CommonFields {
                flags: h[2],
                preempt_count: h[3],
                pid: i32::from_ne_bytes([h[4], h[5], h[6], h[7]]),
            },
        ))
    }
}

/// Whether a field is a scalar, a fixed array (`name[N]`) or a flexible array
/// (`name[]`, the rest of the record).
///
/// ```
/// use ringtrace::event::Array;
/// assert_ne!(Array::Fixed(4), Array::Flexible);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Array {
    /// A scalar (or `__data_loc`) field.
    None,
    /// A fixed-size array of the given number of elements.
    Fixed(u16),
    /// A flexible array member (size 0 in the format text).
    Flexible,
}

/// One field of an event record, as the `format` file describes it.
///
/// `offset` counts from the start of the record (the common header included).
///
/// ```
/// use ringtrace::event::{Array, Field};
/// let f = Field { name: "seq", c_type: "u64", offset: 8, size: 8, signed: false, array: Array::None };
/// assert_eq!(f.format_line(), "\tfield:u64 seq;\toffset:8;\tsize:8;\tsigned:0;\n");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Field name (`REC->name` in `print fmt`).
    pub name: &'static str,
    /// C type as the kernel prints it (`unsigned int`, `__data_loc char[]`, ...);
    /// for arrays the element type, the brackets come from `array`.
    pub c_type: &'static str,
    /// Byte offset from the start of the record.
    pub offset: u16,
    /// Size in bytes (4 for `__data_loc`, 0 for a flexible array).
    pub size: u16,
    /// Whether the C type is signed.
    pub signed: bool,
    /// Array shape.
    pub array: Array,
}

impl Field {
    /// A placeholder used to build field arrays in `const` code.
    ///
    /// ```
    /// assert_eq!(ringtrace::event::Field::EMPTY.size, 0);
    /// ```
    pub const EMPTY: Field = Field {
        name: "",
        c_type: "",
        offset: 0,
        size: 0,
        signed: false,
        array: Array::None,
    };

    /// The field's line of the `format` text, tab-separated, newline-terminated.
    ///
    /// ```
    /// use ringtrace::event::{Array, Field};
    /// let f = Field { name: "comm", c_type: "char", offset: 8, size: 16, signed: true, array: Array::Fixed(16) };
    /// assert_eq!(f.format_line(), "\tfield:char comm[16];\toffset:8;\tsize:16;\tsigned:1;\n");
    /// ```
    #[must_use]
    pub fn format_line(&self) -> String {
        let mut s = String::new();
        let _ = self.write_format_line(&mut s);
        s
    }

    fn write_format_line<W: fmt::Write + ?Sized>(&self, s: &mut W) -> fmt::Result {
        write!(s, "\tfield:{} {}", self.c_type, self.name)?;
        match self.array {
            Array::None => {}
            Array::Fixed(n) => write!(s, "[{n}]")?,
            Array::Flexible => s.write_str("[]")?,
        }
        writeln!(
            s,
            ";\toffset:{};\tsize:{};\tsigned:{};",
            self.offset,
            self.size,
            u8::from(self.signed)
        )
    }

    /// Whether this is a `__data_loc` (dynamic) field.
    ///
    /// ```
    /// use ringtrace::event::{Array, Field};
    /// let f = Field { name: "msg", c_type: "__data_loc char[]", offset: 8, size: 4, signed: false, array: Array::None };
    /// assert!(f.is_data_loc());
    /// ```
    #[must_use]
    pub fn is_data_loc(&self) -> bool {
        self.c_type.starts_with("__data_loc")
    }

    /// Whether this is an 8-byte IEEE 754 float (C type `double`), which
    /// ringtrace's readers print as a float. (The kernel has no float
    /// fields; trace-cmd prints the raw bits.)
    ///
    /// ```
    /// use ringtrace::event::{Array, Field};
    /// let f = Field { name: "x", c_type: "double", offset: 8, size: 8, signed: true, array: Array::None };
    /// assert!(f.is_float());
    /// ```
    #[must_use]
    pub fn is_float(&self) -> bool {
        self.c_type == "double" && self.size == 8 && self.array == Array::None
    }
}

/// The common header's four fields, exactly as the kernel's `format` files list them.
///
/// ```
/// assert_eq!(ringtrace::event::COMMON_FIELDS[3].name, "common_pid");
/// ```
#[doc(hidden)]
pub const COMMON_FIELDS: [Field; 4] = [
    field("common_type", "unsigned short", 0, 2, false, Array::None),
    field("common_flags", "unsigned char", 2, 1, false, Array::None),
    field(
        "common_preempt_count",
        "unsigned char",
        3,
        1,
        false,
        Array::None,
    ),
    field("common_pid", "int", 4, 4, true, Array::None),
];

/// A [`Field`] from its parts, one line per field in the tables of
/// ftrace's fixed layouts.
const fn field(
    name: &'static str,
    c_type: &'static str,
    offset: u16,
    size: u16,
    signed: bool,
    array: Array,
) -> Field {
    Field {
        name,
        c_type,
        offset,
        size,
        signed,
        array,
    }
}

/// Static metadata of one event type.
///
/// `print_fmt` is the text after `print fmt: ` in the kernel's `format` file
/// (a quoted C format followed by its arguments). An empty `print_fmt` means
/// "derive one from the fields" (see [`EventType::effective_print_fmt`]).
///
/// ```
/// use ringtrace::event::{Array, EventType, Field};
/// static FIELDS: [Field; 1] = [Field { name: "value", c_type: "unsigned int", offset: 8, size: 4, signed: false, array: Array::None }];
/// static DEMO: EventType = EventType {
///     name: "demo_value", system: "demo", id: 1000, fields: &FIELDS,
///     print_fmt: "\"value=%u\", REC->value",
/// };
/// assert!(DEMO.format_text().starts_with("name: demo_value\nID: 1000\nformat:\n"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// Event name (`events/<system>/<name>`).
    pub name: &'static str,
    /// Event system (directory); `ftrace` for the built-in types.
    pub system: &'static str,
    /// Numeric id, stored in every record's `common_type`.
    pub id: u16,
    /// The event's own fields (the common header is implicit).
    pub fields: &'static [Field],
    /// `print fmt` text, or empty to derive it from the fields.
    pub print_fmt: &'static str,
}

impl EventType {
    /// The kernel's `format` file text for this event (§3.3 of the trace.dat
    /// reference): name, ID, the common fields, an empty line, the event's
    /// fields, an empty line, `print fmt:`.
    ///
    /// ```
    /// use ringtrace::event::{Array, EventType, Field};
    /// static F: [Field; 1] = [Field { name: "level", c_type: "int", offset: 8, size: 4, signed: true, array: Array::None }];
    /// static E: EventType = EventType { name: "lvl", system: "demo", id: 40, fields: &F, print_fmt: "" };
    /// let text = E.format_text();
    /// assert!(text.contains("\n\n\tfield:int level;\toffset:8;\tsize:4;\tsigned:1;\n\nprint fmt: \"level=%d\", REC->level\n"));
    /// ```
    #[must_use]
    pub fn format_text(&self) -> String {
        let mut s = String::with_capacity(512);
        let _ = self.write_format(&mut s);
        s
    }

    /// [`EventType::format_text`] into any writer, without allocating (a
    /// session publishes a type's format from a signal handler this way).
    ///
    /// ```
    /// let mut s = String::new();
    /// ringtrace::printk::BPRINT_EVENT.write_format(&mut s).unwrap();
    /// assert_eq!(s, ringtrace::printk::BPRINT_EVENT.format_text());
    /// ```
    pub fn write_format<W: fmt::Write + ?Sized>(&self, s: &mut W) -> fmt::Result {
        writeln!(s, "name: {}", self.name)?;
        writeln!(s, "ID: {}", self.id)?;
        s.write_str("format:\n")?;
        for f in &COMMON_FIELDS {
            f.write_format_line(s)?;
        }
        s.write_str("\n")?;
        for f in self.fields {
            f.write_format_line(s)?;
        }
        s.write_str("\nprint fmt: ")?;
        self.write_print_fmt(s)?;
        s.write_str("\n")
    }

    /// `print_fmt`, or when it is empty one derived from the fields:
    /// `"a=%u b=%s", REC->a, __get_str(b)`; byte arrays print with
    /// `__print_hex`.
    ///
    /// ```
    /// use ringtrace::event::{Array, EventType, Field};
    /// static F: [Field; 2] = [
    ///     Field { name: "seq", c_type: "u64", offset: 8, size: 8, signed: false, array: Array::None },
    ///     Field { name: "msg", c_type: "__data_loc char[]", offset: 16, size: 4, signed: false, array: Array::None },
    /// ];
    /// static E: EventType = EventType { name: "m", system: "demo", id: 41, fields: &F, print_fmt: "" };
    /// assert_eq!(E.effective_print_fmt(), "\"seq=%llu msg=%s\", REC->seq, __get_str(msg)");
    /// ```
    #[must_use]
    pub fn effective_print_fmt(&self) -> String {
        let mut s = String::new();
        let _ = self.write_print_fmt(&mut s);
        s
    }

    /// [`EventType::effective_print_fmt`] into a writer, without allocating:
    /// the format string in one pass over the fields, the arguments in a
    /// second.
    fn write_print_fmt<W: fmt::Write + ?Sized>(&self, s: &mut W) -> fmt::Result {
        if !self.print_fmt.is_empty() {
            return s.write_str(self.print_fmt);
        }
        s.write_str("\"")?;
        for (i, f) in self.fields.iter().enumerate() {
            if i > 0 {
                s.write_str(" ")?;
            }
            let spec = if f.is_data_loc() || f.array != Array::None {
                "%s"
            } else {
                match (f.size, f.signed) {
                    (8, false) => "%llu",
                    (8, true) => "%lld",
                    (_, false) => "%u",
                    (_, true) => "%d",
                }
            };
            write!(s, "{}={spec}", f.name)?;
        }
        s.write_str("\"")?;
        for f in self.fields {
            if f.is_data_loc() {
                write!(s, ", __get_str({})", f.name)?;
            } else if f.array != Array::None {
                write!(s, ", __print_hex(REC->{}, {})", f.name, f.size)?;
            } else {
                write!(s, ", REC->{}", f.name)?;
            }
        }
        Ok(())
    }

    /// The field called `name`, common fields included.
    ///
    /// ```
    /// assert_eq!(ringtrace::printk::BPRINT_EVENT.field("fmt").map(|f| f.offset), Some(16));
    /// ```
    #[must_use]
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        COMMON_FIELDS
            .iter()
            .chain(self.fields.iter())
            .find(|f| f.name == name)
    }

    /// Renders a record's own fields as `name=value` pairs separated by
    /// spaces, like `trace-cmd report -R`: unsigned integers in decimal, signed
    /// ones with their sign, `__data_loc` strings as text, arrays as hex bytes.
    /// Flexible arrays are skipped.
    ///
    /// ```
    /// use ringtrace::event::{Array, CommonFields, EventType, Field};
    /// static F: [Field; 1] = [Field { name: "v", c_type: "int", offset: 8, size: 4, signed: true, array: Array::None }];
    /// static E: EventType = EventType { name: "v", system: "demo", id: 42, fields: &F, print_fmt: "" };
    /// let mut rec = [0u8; 12];
    /// CommonFields::default().write(42, &mut rec);
    /// rec[8..12].copy_from_slice(&(-5i32).to_ne_bytes());
    /// assert_eq!(E.render_fields(&rec).unwrap(), "v=-5");
    /// ```
    pub fn render_fields(&self, record: &[u8]) -> Result<String, DecodeError> {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = self.write_fields(&mut out, record)?;
        Ok(out)
    }

    /// [`EventType::render_fields`] into `w`, without allocating (the pipe
    /// writes into its line buffer, the crash dump into a fixed one). The
    /// record is checked first: on a [`DecodeError`] nothing was written.
    /// The inner result is `w`'s.
    ///
    /// ```
    /// use ringtrace::event::{Array, CommonFields, EventType, Field};
    /// static F: [Field; 1] = [Field { name: "v", c_type: "u8", offset: 8, size: 1, signed: false, array: Array::None }];
    /// static E: EventType = EventType { name: "v", system: "demo", id: 42, fields: &F, print_fmt: "" };
    /// let mut rec = [0u8; 12];
    /// CommonFields::default().write(42, &mut rec);
    /// rec[8] = 200;
    /// let mut s = String::from("v: ");
    /// E.write_fields(&mut s, &rec).unwrap().unwrap();
    /// assert_eq!(s, "v: v=200");
    /// assert!(E.write_fields(&mut s, &rec[..8]).is_err());
    /// assert_eq!(s, "v: v=200");
    /// ```
    pub fn write_fields<W: fmt::Write + ?Sized>(
        &self,
        w: &mut W,
        record: &[u8],
    ) -> Result<fmt::Result, DecodeError> {
        for f in self.fields {
            if f.array != Array::Flexible {
                check_field(f, record)?;
            }
        }
        let mut first = true;
        for f in self.fields {
            if f.array == Array::Flexible {
                continue;
            }
            if !first {
                if let Err(e) = w.write_char(' ') {
                    return Ok(Err(e));
                }
            }
            first = false;
            match field_text(f, record, w) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Ok(Err(e)),
                // Checked above.
                Err(e) => return Err(e),
            }
        }
        Ok(Ok(()))
    }
}

/// The errors `field_text` can meet, found without writing.
fn check_field(f: &Field, record: &[u8]) -> Result<(), DecodeError> {
    let start = usize::from(f.offset);
    let bytes = record
        .get(start..start + usize::from(f.size))
        .ok_or(DecodeError::Truncated {
            field: f.name,
            need: start + usize::from(f.size),
            have: record.len(),
        })?;
    if f.is_data_loc() {
        read_data_loc(record, bytes, f.name)?;
    } else if !matches!(f.array, Array::Fixed(_))
        && !f.is_float()
        && ![1, 2, 4, 8].contains(&bytes.len())
    {
        return Err(DecodeError::BadFieldSize {
            field: f.name,
            size: bytes.len(),
        });
    }
    Ok(())
}

/// `v` in decimal, with its sign, without the `fmt` machinery (this runs
/// for every field of every typed event the pipe prints).
fn write_decimal<W: fmt::Write + ?Sized>(w: &mut W, v: u64, negative: bool) -> fmt::Result {
    if negative {
        w.write_char('-')?;
    }
    w.write_str(itoa::Buffer::new().format(v))
}

/// Writes `name=value` of field `f` of `record`.
fn field_text<W: fmt::Write + ?Sized>(
    f: &Field,
    record: &[u8],
    out: &mut W,
) -> Result<fmt::Result, DecodeError> {
    let start = usize::from(f.offset);
    let bytes = record
        .get(start..start + usize::from(f.size))
        .ok_or(DecodeError::Truncated {
            field: f.name,
            need: start + usize::from(f.size),
            have: record.len(),
        })?;
    let text = |out: &mut W| -> Result<fmt::Result, DecodeError> {
        if let Err(e) = out.write_str(f.name).and_then(|()| out.write_char('=')) {
            return Ok(Err(e));
        }
        if f.is_data_loc() {
            let s = read_data_loc(record, bytes, f.name)?;
            return Ok(write_lossy(out, s));
        }
        if let Array::Fixed(_) = f.array {
            for (j, b) in bytes.iter().enumerate() {
                if j > 0 {
                    if let Err(e) = out.write_char(' ') {
                        return Ok(Err(e));
                    }
                }
                if let Err(e) = write!(out, "{b:02x}") {
                    return Ok(Err(e));
                }
            }
            return Ok(Ok(()));
        }
        if f.is_float() {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(bytes);
            return Ok(write!(out, "{}", f64::from_ne_bytes(raw)));
        }
        let mut raw = [0u8; 8];
        raw[..bytes.len().min(8)].copy_from_slice(&bytes[..bytes.len().min(8)]);
        let unsigned = match bytes.len() {
            1 => u64::from(raw[0]),
            2 => u64::from(u16::from_ne_bytes([raw[0], raw[1]])),
            4 => u64::from(u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]])),
            8 => u64::from_ne_bytes(raw),
            n => {
                return Err(DecodeError::BadFieldSize {
                    field: f.name,
                    size: n,
                })
            }
        };
        Ok(if f.signed {
            let shift = 64 - 8 * bytes.len() as u32;
            let v = ((unsigned << shift) as i64) >> shift;
            write_decimal(out, v.unsigned_abs(), v < 0)
        } else {
            write_decimal(out, unsigned, false)
        })
    };
    text(out)
}

/// Bytes as text, each invalid UTF-8 sequence replaced by U+FFFD as
/// `String::from_utf8_lossy` does, without allocating.
///
/// ```
/// let mut s = String::new();
/// ringtrace::event::write_lossy(&mut s, b"a\xffb\xe2\x82").unwrap();
/// assert_eq!(s, String::from_utf8_lossy(b"a\xffb\xe2\x82"));
/// ```
#[doc(hidden)]
pub fn write_lossy<W: fmt::Write + ?Sized>(w: &mut W, mut b: &[u8]) -> fmt::Result {
    if b.is_ascii() {
        // SAFETY: every byte is below 0x80: ASCII, valid UTF-8. Checked
        // this way first: most texts are ASCII (markers, names), and the
        // check costs far less than `from_utf8`'s.
        return w.write_str(unsafe { std::str::from_utf8_unchecked(b) });
    }
    while !b.is_empty() {
        match std::str::from_utf8(b) {
            Ok(s) => return w.write_str(s),
            Err(e) => {
                let good = e.valid_up_to();
                w.write_str(std::str::from_utf8(&b[..good]).unwrap_or(""))?;
                w.write_char('\u{fffd}')?;
                b = &b[good + e.error_len().unwrap_or(b.len() - good)..];
            }
        }
    }
    Ok(())
}

fn read_data_loc<'r>(
    record: &'r [u8],
    word: &[u8],
    field: &'static str,
) -> Result<&'r [u8], DecodeError> {
    let w = u32::from_ne_bytes([word[0], word[1], word[2], word[3]]);
    let off = (w & 0xffff) as usize;
    let len = (w >> 16) as usize;
    let s = record.get(off..off + len).ok_or(DecodeError::BadDataLoc {
        field,
        offset: off,
        len,
        record: record.len(),
    })?;
    // `len` counts the NUL; stop at the first NUL like `__get_str` does.
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    Ok(&s[..end])
}

/// Errors while encoding a record.
///
/// ```
/// use ringtrace::event::EncodeError;
/// let e = EncodeError::BufferTooSmall { need: 16, have: 8 };
/// assert_eq!(e.to_string(), "record needs 16 bytes, buffer has 8");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The caller's buffer is shorter than the record.
    #[error("record needs {need} bytes, buffer has {have}")]
    BufferTooSmall {
        /// Bytes the record needs.
        need: usize,
        /// Bytes the buffer has.
        have: usize,
    },
    /// A `__data_loc` offset or length does not fit its 16 bits.
    #[error("record too large for a __data_loc field ({size} bytes, at most 65535)")]
    RecordTooLarge {
        /// The offending record size or string length.
        size: usize,
    },
    /// A binary-printk argument does not fit its conversion.
    #[error("argument {index} does not match its conversion (expected {expected})")]
    ArgMismatch {
        /// Zero-based argument index.
        index: usize,
        /// What the conversion wants.
        expected: &'static str,
    },
    /// The format call site could not get an id (the site table is full).
    #[error("no format id left: more than {max} binary printk call sites")]
    NoFormatId {
        /// Table capacity.
        max: usize,
    },
}

/// Errors while decoding a record.
///
/// ```
/// use ringtrace::event::DecodeError;
/// let e = DecodeError::Truncated { field: "seq", need: 16, have: 12 };
/// assert!(e.to_string().contains("seq"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The record ends before a field does.
    #[error("record truncated: field `{field}` needs {need} bytes, record has {have}")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A `__data_loc` word points outside the record.
    #[error("field `{field}`: __data_loc {offset}+{len} outside a {record}-byte record")]
    BadDataLoc {
        /// The field being read.
        field: &'static str,
        /// Offset from the word.
        offset: usize,
        /// Length from the word.
        len: usize,
        /// Record length.
        record: usize,
    },
    /// A scalar field has a size other than 1, 2, 4 or 8.
    #[error("field `{field}` has unsupported size {size}")]
    BadFieldSize {
        /// The field.
        field: &'static str,
        /// Its size.
        size: usize,
    },
}

/// A typed event that can be written as a record: implemented by
/// [`declare_event!`](crate::declare_event) and by [`crate::printk::Bprint`].
///
/// The tracer asks [`encoded_len`](Record::encoded_len), reserves that many
/// bytes in the ring, then calls [`encode`](Record::encode) on the reserved
/// slice. Neither allocates.
///
/// ```
/// use ringtrace::event::{CommonFields, Record};
/// ringtrace::declare_event! {
///     /// A demo event.
///     pub struct Tick: "demo" / "tick" = 900 { n: u32 }
/// }
/// let t = Tick { n: 3 };
/// let mut buf = [0u8; 64];
/// let len = t.encode(&CommonFields::default(), &mut buf).unwrap();
/// assert_eq!(len, t.encoded_len());
/// ```
pub trait Record {
    /// The record's event type.
    fn event_type(&self) -> &'static EventType;
    /// Bytes [`encode`](Record::encode) will write (common header included).
    fn encoded_len(&self) -> usize;
    /// Writes the record into `out`, returning the bytes written.
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError>;
    /// Whether the record path must make sure the type is in the global
    /// [`Registry`] (readers need it to decode): true for user types (id
    /// [`FIRST_USER_ID`] and up). The built-in `print` and `bprint` say
    /// false without reading their type, which saves the hot path a load.
    #[inline]
    fn needs_registration(&self) -> bool {
        self.event_type().id >= FIRST_USER_ID
    }
    /// Assigns whatever ids [`encode`](Record::encode) will write that
    /// readers must look up elsewhere (a `bprint`'s printk site id), so
    /// that a session tracer publishes them in its tables before the
    /// record is written: a reader that sees the record then finds its
    /// format. Nothing by default.
    #[inline(always)]
    fn prepare(&self) {}
}

/// A Rust type usable as a field of [`declare_event!`](crate::declare_event):
/// `u8..u64`, `i8..i64`, `bool`, `[u8; N]` and `&str` (as `__data_loc char[]`).
///
/// ```
/// use ringtrace::event::EventField;
/// assert_eq!(<u64 as EventField>::C_TYPE, "u64");
/// assert_eq!(<&str as EventField>::SIZE, 4);
/// ```
pub trait EventField {
    /// C type for the `format` text (element type for arrays).
    const C_TYPE: &'static str;
    /// Size of the fixed part in bytes.
    const SIZE: usize;
    /// Alignment of the fixed part.
    const ALIGN: usize;
    /// Whether the C type is signed.
    const SIGNED: bool;
    /// Array shape.
    const ARRAY: Array;
    /// Bytes appended after the fixed part (string bytes plus NUL), 0 for
    /// fixed-size fields.
    fn dynamic_len(&self) -> usize {
        0
    }
    /// Writes the field: fixed part at `out[at..at + SIZE]`, dynamic part (if
    /// any) at `*dyn_at`, which it then advances. `out` is exactly the record.
    fn write_field(&self, out: &mut [u8], at: usize, dyn_at: &mut usize)
        -> Result<(), EncodeError>;
}

macro_rules! int_field {
    ($($t:ty => $c:literal, $signed:literal;)*) => {$(
        impl EventField for $t {
            const C_TYPE: &'static str = $c;
            const SIZE: usize = core::mem::size_of::<$t>();
            const ALIGN: usize = core::mem::size_of::<$t>();
            const SIGNED: bool = $signed;
            const ARRAY: Array = Array::None;
            #[inline]
            fn write_field(&self, out: &mut [u8], at: usize, _dyn_at: &mut usize) -> Result<(), EncodeError> {
                put(out, at, &self.to_ne_bytes())
            }
        }
    )*};
}

int_field! {
    u8 => "u8", false;
    u16 => "u16", false;
    u32 => "u32", false;
    u64 => "u64", false;
    i8 => "s8", true;
    i16 => "s16", true;
    i32 => "int", true;
    i64 => "s64", true;
}

impl EventField for bool {
    const C_TYPE: &'static str = "bool";
    const SIZE: usize = 1;
    const ALIGN: usize = 1;
    const SIGNED: bool = false;
    const ARRAY: Array = Array::None;
    #[inline]
    fn write_field(
        &self,
        out: &mut [u8],
        at: usize,
        _dyn_at: &mut usize,
    ) -> Result<(), EncodeError> {
        put(out, at, &[u8::from(*self)])
    }
}

impl<const N: usize> EventField for [u8; N] {
    const C_TYPE: &'static str = "unsigned char";
    const SIZE: usize = N;
    const ALIGN: usize = 1;
    const SIGNED: bool = false;
    const ARRAY: Array = Array::Fixed(if N > u16::MAX as usize {
        u16::MAX
    } else {
        N as u16
    });
    #[inline]
    fn write_field(
        &self,
        out: &mut [u8],
        at: usize,
        _dyn_at: &mut usize,
    ) -> Result<(), EncodeError> {
        put(out, at, self)
    }
}

impl EventField for &str {
    const C_TYPE: &'static str = "__data_loc char[]";
    const SIZE: usize = 4;
    const ALIGN: usize = 4;
    const SIGNED: bool = false;
    const ARRAY: Array = Array::None;
    #[inline]
    fn dynamic_len(&self) -> usize {
        self.len() + 1
    }
    #[inline]
    fn write_field(
        &self,
        out: &mut [u8],
        at: usize,
        dyn_at: &mut usize,
    ) -> Result<(), EncodeError> {
        let len = self.len() + 1;
        let off = *dyn_at;
        if len > 0xffff || off > 0xffff {
            return Err(EncodeError::RecordTooLarge { size: off + len });
        }
        let loc = ((len as u32) << 16) | off as u32;
        put(out, at, &loc.to_ne_bytes())?;
        put(out, off, self.as_bytes())?;
        put(out, off + len - 1, &[0])?;
        *dyn_at = off + len;
        Ok(())
    }
}

/// Copies `bytes` to `out[at..]`, or reports how much room was missing.
#[inline]
fn put(out: &mut [u8], at: usize, bytes: &[u8]) -> Result<(), EncodeError> {
    let have = out.len();
    match out.get_mut(at..at + bytes.len()) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(EncodeError::BufferTooSmall {
            need: at + bytes.len(),
            have,
        }),
    }
}

/// One field as declared (before offsets are known); built by
/// [`declare_event!`](crate::declare_event).
///
/// ```
/// let d = ringtrace::event::FieldDecl::of::<u32>("value");
/// assert_eq!(d.size, 4);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FieldDecl {
    /// Field name.
    pub name: &'static str,
    /// C type.
    pub c_type: &'static str,
    /// Size of the fixed part.
    pub size: usize,
    /// Alignment of the fixed part.
    pub align: usize,
    /// Signedness.
    pub signed: bool,
    /// Array shape.
    pub array: Array,
}

impl FieldDecl {
    /// The declaration of a field of type `T` called `name`.
    ///
    /// ```
    /// let d = ringtrace::event::FieldDecl::of::<&str>("msg");
    /// assert_eq!(d.c_type, "__data_loc char[]");
    /// ```
    #[must_use]
    pub const fn of<T: EventField>(name: &'static str) -> FieldDecl {
        FieldDecl {
            name,
            c_type: T::C_TYPE,
            size: T::SIZE,
            align: T::ALIGN,
            signed: T::SIGNED,
            array: T::ARRAY,
        }
    }
}

/// Fields with their offsets, and the size of the fixed part of the record
/// (C `sizeof`, common header included).
///
/// ```
/// use ringtrace::event::{layout, FieldDecl};
/// let l = layout([FieldDecl::of::<u8>("a"), FieldDecl::of::<u64>("b")]);
/// assert_eq!((l.fields[0].offset, l.fields[1].offset, l.size), (8, 16, 24));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Layout<const N: usize> {
    /// The fields, offsets filled in.
    pub fields: [Field; N],
    /// Size of the fixed part, padded to the largest alignment.
    pub size: usize,
}

/// Lays fields out like a C struct that starts with the 8-byte common header
/// (alignment 4). Panics (at compile time, when used in a `const`) if the
/// record would not fit 16-bit offsets.
///
/// ```
/// use ringtrace::event::{layout, FieldDecl};
/// let l = layout([FieldDecl::of::<u16>("a"), FieldDecl::of::<&str>("s"), FieldDecl::of::<[u8; 3]>("t")]);
/// assert_eq!((l.fields[1].offset, l.fields[2].offset, l.size), (12, 16, 20));
/// ```
#[must_use]
pub const fn layout<const N: usize>(decls: [FieldDecl; N]) -> Layout<N> {
    let mut fields = [Field::EMPTY; N];
    let mut off = COMMON_HEADER_SIZE;
    let mut max_align = 4;
    let mut i = 0;
    while i < N {
        let d = decls[i];
        let align = if d.align == 0 { 1 } else { d.align };
        off = off.div_ceil(align) * align;
        if align > max_align {
            max_align = align;
        }
        assert!(off + d.size <= u16::MAX as usize, "event record too large");
        fields[i] = Field {
            name: d.name,
            c_type: d.c_type,
            offset: off as u16,
            size: d.size as u16,
            signed: d.signed,
            array: d.array,
        };
        off += d.size;
        i += 1;
    }
    let size = off.div_ceil(max_align) * max_align;
    Layout { fields, size }
}

/// Checks at compile time that a declared id is in the user range.
///
/// ```
/// assert!(ringtrace::event::valid_user_id(1001));
/// assert!(!ringtrace::event::valid_user_id(6));
/// ```
#[must_use]
pub const fn valid_user_id(id: u16) -> bool {
    id >= FIRST_USER_ID && id <= MAX_EVENT_ID
}

/// Declares a typed event with fixed fields and generates its metadata and
/// its allocation-free encoder.
///
/// Syntax: `[pub] struct Name[<'a>]: "system" / "name" = ID { field: Type, ... }`
/// optionally followed by `print_fmt = "...";`. Field types: `u8..u64`,
/// `i8..i64`, `bool`, `[u8; N]`, `&'a str` (stored as `__data_loc char[]`).
/// The struct gets `Name::EVENT_TYPE` (an [`EventType`]), `Name::FIXED_SIZE`,
/// and implements [`Record`].
///
/// ```
/// use ringtrace::event::{CommonFields, Record};
/// ringtrace::declare_event! {
///     /// A message with a level.
///     pub struct DemoMsg<'a>: "demo" / "demo_msg" = 1001 {
///         msg: &'a str,
///         level: i32,
///     }
///     print_fmt = "\"level=%d msg=%s\", REC->level, __get_str(msg)";
/// }
/// let ev = DemoMsg { msg: "hi", level: -1 };
/// let mut buf = [0u8; 64];
/// let n = ev.encode(&CommonFields { flags: 0, preempt_count: 0, pid: 7 }, &mut buf).unwrap();
/// assert_eq!(n, 16 + 3);
/// assert_eq!(DemoMsg::EVENT_TYPE.render_fields(&buf[..n]).unwrap(), "msg=hi level=-1");
/// ```
///
/// Ids below [`FIRST_USER_ID`] are ftrace's and fail to compile:
///
/// ```compile_fail
/// ringtrace::declare_event! { struct Bad: "demo" / "bad" = 6 { x: u8 } }
/// let _ = Bad::EVENT_TYPE;
/// ```
#[macro_export]
macro_rules! declare_event {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lt:lifetime>)? : $system:literal / $ename:literal = $id:literal {
            $( $(#[$fmeta:meta])* $fname:ident : $fty:ty ),* $(,)?
        }
        $( print_fmt = $pfmt:expr ; )?
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        $vis struct $name $(<$lt>)? {
            $( $(#[$fmeta])* #[allow(missing_docs)] pub $fname : $fty, )*
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            const __LAYOUT: $crate::event::Layout<{ <[&str]>::len(&[$(stringify!($fname)),*]) }> =
                $crate::event::layout([$( $crate::event::FieldDecl::of::<$fty>(stringify!($fname)) ),*]);
            /// Size of the record's fixed part (C `sizeof`, common header included).
            pub const FIXED_SIZE: usize = Self::__LAYOUT.size;
            /// This event's static metadata.
            pub const EVENT_TYPE: &'static $crate::event::EventType = &$crate::event::EventType {
                name: $ename,
                system: $system,
                id: {
                    assert!($crate::event::valid_user_id($id), "event id outside FIRST_USER_ID..=MAX_EVENT_ID");
                    $id
                },
                fields: &Self::__LAYOUT.fields,
                print_fmt: $crate::__event_print_fmt!($($pfmt)?),
            };
        }

        impl $(<$lt>)? $crate::event::Record for $name $(<$lt>)? {
            #[inline]
            fn event_type(&self) -> &'static $crate::event::EventType {
                Self::EVENT_TYPE
            }

            #[inline]
            fn encoded_len(&self) -> usize {
                Self::FIXED_SIZE $( + $crate::event::EventField::dynamic_len(&self.$fname) )*
            }

            #[inline]
            // The field counter's last increment is never read; the lint
            // fires where the macro is used inside this crate.
            #[allow(unused_assignments)]
            fn encode(
                &self,
                common: &$crate::event::CommonFields,
                out: &mut [u8],
            ) -> ::core::result::Result<usize, $crate::event::EncodeError> {
                let total = $crate::event::Record::encoded_len(self);
                let have = out.len();
                let out = match out.get_mut(..total) {
                    Some(o) => o,
                    None => return Err($crate::event::EncodeError::BufferTooSmall { need: total, have }),
                };
                // Padding between fields is zeroed so records are deterministic.
                out[..Self::FIXED_SIZE].fill(0);
                common.write(Self::EVENT_TYPE.id, out);
                #[allow(unused_mut, unused_variables)]
                let mut dyn_at = Self::FIXED_SIZE;
                #[allow(unused_mut, unused_variables)]
                let mut i = 0usize;
                $(
                    $crate::event::EventField::write_field(
                        &self.$fname,
                        out,
                        Self::__LAYOUT.fields[i].offset as usize,
                        &mut dyn_at,
                    )?;
                    i += 1;
                )*
                Ok(total)
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __event_print_fmt {
    () => {
        ""
    };
    ($p:expr) => {
        $p
    };
}

// ftrace's built-in event types. They are the registry's from the start
// (`Registry::global`), so they are defined here; the printk module
// encodes records of them.

/// ftrace's type id of `print` events (kernel `TRACE_PRINT`).
///
/// ```
/// assert_eq!(ringtrace::printk::PRINT_ID, 5);
/// ```
#[doc(hidden)] // public as `printk::PRINT_ID`
pub const PRINT_ID: u16 = 5;

/// ftrace's type id of `bprint` events (kernel `TRACE_BPRINT`).
///
/// ```
/// assert_eq!(ringtrace::printk::BPRINT_ID, 6);
/// ```
#[doc(hidden)] // public as `printk::BPRINT_ID`
pub const BPRINT_ID: u16 = 6;

/// An event type of the `ftrace` system (the kernel's built-in entries).
const fn ftrace_type(
    name: &'static str,
    id: u16,
    fields: &'static [Field],
    print_fmt: &'static str,
) -> EventType {
    EventType {
        name,
        system: "ftrace",
        id,
        fields,
        print_fmt,
    }
}

/// `ip`, the first field of both: the address `%ps` prints.
const IP_FIELD: Field = field("ip", "unsigned long", 8, 8, false, Array::None);

static BPRINT_FIELDS: [Field; 3] = [
    IP_FIELD,
    field("fmt", "const char *", 16, 8, false, Array::None),
    // Offset: `printk::BPRINT_ARGS_OFFSET` (a test checks they agree).
    field("buf", "u32", 24, 0, false, Array::Flexible),
];

/// The kernel's `ftrace/bprint` event type; its `format_text()` is the text of
/// `events/ftrace/bprint/format`.
///
/// ```
/// let t = ringtrace::printk::BPRINT_EVENT.format_text();
/// assert!(t.ends_with("print fmt: \"%ps: %s\", (void *)REC->ip, REC->fmt\n"));
/// ```
#[doc(hidden)] // public as `printk::BPRINT_EVENT`
pub static BPRINT_EVENT: &EventType = &ftrace_type(
    "bprint",
    BPRINT_ID,
    &BPRINT_FIELDS,
    "\"%ps: %s\", (void *)REC->ip, REC->fmt",
);

static PRINT_FIELDS: [Field; 2] = [IP_FIELD, field("buf", "char", 16, 0, true, Array::Flexible)];

/// The kernel's `ftrace/print` event type (trace_marker writes and
/// non-constant trace_printk).
///
/// ```
/// let t = ringtrace::printk::PRINT_EVENT.format_text();
/// assert!(t.contains("\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:1;\n"));
/// ```
#[doc(hidden)] // public as `printk::PRINT_EVENT`
pub static PRINT_EVENT: &EventType = &ftrace_type(
    "print",
    PRINT_ID,
    &PRINT_FIELDS,
    "\"%ps: %s\", (void *)REC->ip, REC->buf",
);

/// Error from [`Registry::register`].
///
/// ```
/// use ringtrace::event::RegistryError;
/// assert!(RegistryError::IdOutOfRange { id: 0 }.to_string().contains("0"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// Another event type already holds this id.
    #[error("event id {id} is taken by {system}:{name}")]
    IdTaken {
        /// The id.
        id: u16,
        /// System of the holder.
        system: &'static str,
        /// Name of the holder.
        name: &'static str,
    },
    /// The id is 0 or above [`MAX_EVENT_ID`].
    #[error("event id {id} outside 1..={max}", max = MAX_EVENT_ID)]
    IdOutOfRange {
        /// The id.
        id: u16,
    },
}

const REGISTRY_SLOTS: usize = MAX_EVENT_ID as usize + 1;

/// Map from event id to event type.
///
/// Lock-free and allocation-free both ways: registering is one
/// compare-and-swap on the id's slot (the first type wins), a lookup one
/// atomic load. So a signal handler can record a typed event that ordinary
/// code never recorded, and readers, crash dumps and handlers can look types
/// up.
///
/// ```
/// use ringtrace::event::Registry;
/// static REG: Registry = Registry::new();
/// REG.register(ringtrace::printk::BPRINT_EVENT).unwrap();
/// assert_eq!(REG.get(6).map(|t| t.name), Some("bprint"));
/// ```
pub struct Registry {
    /// Slot `id` points at the type with that id, null until registered.
    /// Written once, by the compare-and-swap in `register` (Release on
    /// success), read by `get` (Acquire): the pair publishes the pointer; the
    /// `&'static EventType` it came from is immutable.
    slots: [AtomicPtr<EventType>; REGISTRY_SLOTS],
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(|t| (t.id, t.system, t.name)))
            .finish()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry (usable in a `static`).
    ///
    /// ```
    /// let r = ringtrace::event::Registry::new();
    /// assert_eq!(r.iter().count(), 0);
    /// ```
    #[must_use]
    pub const fn new() -> Self {
        Registry {
            slots: [const { AtomicPtr::new(std::ptr::null_mut()) }; REGISTRY_SLOTS],
        }
    }

    /// A registry holding just the types in `builtins`, made at compile
    /// time.
    const fn with(builtins: &[&'static EventType]) -> Self {
        let mut slots = [const { AtomicPtr::new(std::ptr::null_mut()) }; REGISTRY_SLOTS];
        let mut i = 0;
        while i < builtins.len() {
            let ty = builtins[i];
            // Never written through: `get` hands out shared references only.
            slots[ty.id as usize] = AtomicPtr::new(ty as *const EventType as *mut EventType);
            i += 1;
        }
        Registry { slots }
    }

    /// The process-wide registry, with ftrace's `print` and `bprint` types
    /// present from the start (it is made at compile time, so even the
    /// first call is a plain reference, safe in a signal handler).
    ///
    /// ```
    /// assert!(ringtrace::event::Registry::global().get(ringtrace::printk::BPRINT_ID).is_some());
    /// ```
    pub fn global() -> &'static Registry {
        static GLOBAL: Registry = Registry::with(&[
            PRINT_EVENT,
            BPRINT_EVENT,
            super::funcgraph::FUNCTION_EVENT,
            super::funcgraph::FUNCGRAPH_EXIT_EVENT,
            super::funcgraph::FUNCGRAPH_ENTRY_EVENT,
            super::stack::USER_STACK_EVENT,
        ]);
        &GLOBAL
    }

    /// Registers `ty` under its id. Registering the same type twice is fine;
    /// a different type with the same id is refused.
    ///
    /// ```
    /// use ringtrace::event::{Registry, RegistryError};
    /// let r = Registry::new();
    /// r.register(ringtrace::printk::PRINT_EVENT).unwrap();
    /// r.register(ringtrace::printk::PRINT_EVENT).unwrap();
    /// ```
    pub fn register(&self, ty: &'static EventType) -> Result<(), RegistryError> {
        let slot = match self.slots.get(usize::from(ty.id)) {
            Some(s) if ty.id != 0 => s,
            _ => return Err(RegistryError::IdOutOfRange { id: ty.id }),
        };
        let new = ty as *const EventType as *mut EventType;
        // The holder's type is visible on failure (`publish_once`).
        let held = match publish::publish_once(slot, new) {
            Ok(_) => return Ok(()),
            Err(p) => p,
        };
        // SAFETY: every non-null slot pointer was made from a
        // `&'static EventType` (here or in `with`) and is never written
        // through.
        let held: &'static EventType = unsafe { &*held };
        if std::ptr::eq(held, ty) || *held == *ty {
            Ok(())
        } else {
            Err(RegistryError::IdTaken {
                id: ty.id,
                system: held.system,
                name: held.name,
            })
        }
    }

    /// The type registered under `id`.
    ///
    /// ```
    /// assert!(ringtrace::event::Registry::new().get(1234).is_none());
    /// ```
    #[inline]
    pub fn get(&self, id: u16) -> Option<&'static EventType> {
        let p = publish::published(self.slots.get(usize::from(id))?);
        // SAFETY: as in `register`: a non-null pointer is a `&'static
        // EventType`, never written through.
        unsafe { p.as_ref() }
    }

    /// All registered types in id order.
    ///
    /// ```
    /// let ids: Vec<u16> = ringtrace::event::Registry::global().iter().map(|t| t.id).collect();
    /// assert!(ids.windows(2).any(|w| w == [5, 6]));
    /// ```
    pub fn iter(&self) -> impl Iterator<Item = &'static EventType> + '_ {
        self.slots.iter().filter_map(|s| {
            // SAFETY: as in `get`.
            unsafe { publish::published(s).as_ref() }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The common fields' lines of every event's `format` text, as the
    /// kernel prints them, then the blank line before the event's own.
    macro_rules! common_fields {
        () => {
            "\
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n\
\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n\
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\
\n"
        };
    }

    #[test]
    fn event_formats_match_the_kernel() {
        let want = concat!(
            "name: bprint\nID: 6\nformat:\n",
            common_fields!(),
            "\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:const char * fmt;\toffset:16;\tsize:8;\tsigned:0;\n\
\tfield:u32 buf[];\toffset:24;\tsize:0;\tsigned:0;\n\
\n\
print fmt: \"%ps: %s\", (void *)REC->ip, REC->fmt\n"
        );
        assert_eq!(BPRINT_EVENT.format_text(), want);
        let want = concat!(
            "name: print\nID: 5\nformat:\n",
            common_fields!(),
            "\tfield:unsigned long ip;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:char buf[];\toffset:16;\tsize:0;\tsigned:1;\n\
\n\
print fmt: \"%ps: %s\", (void *)REC->ip, REC->buf\n"
        );
        assert_eq!(PRINT_EVENT.format_text(), want);
    }

    crate::declare_event! {
        /// Fixed fields only.
        struct Fixed: "demo" / "demo_fixed" = 1002 {
            seq: u64,
            value: u32,
        }
        print_fmt = "\"seq=%llu value=%u\", REC->seq, REC->value";
    }

    crate::declare_event! {
        /// Every supported field type.
        struct All<'a>: "demo" / "demo_all" = 1003 {
            a: u8,
            b: i16,
            c: u32,
            d: i64,
            e: bool,
            f: [u8; 3],
            s: &'a str,
            g: i8,
            t: &'a str,
        }
    }

    const C: CommonFields = CommonFields {
        flags: flags::IN_SIGNAL_HANDLER,
        preempt_count: 2,
        pid: 1201,
    };

    #[test]
    fn format_text_matches_kernel_layout() {
        let want = concat!(
            "name: demo_fixed\nID: 1002\nformat:\n",
            common_fields!(),
            "\tfield:u64 seq;\toffset:8;\tsize:8;\tsigned:0;\n\
\tfield:u32 value;\toffset:16;\tsize:4;\tsigned:0;\n\
\n\
print fmt: \"seq=%llu value=%u\", REC->seq, REC->value\n"
        );
        assert_eq!(Fixed::EVENT_TYPE.format_text(), want);
        // C sizeof: 8 + 8 + 4 padded to 8.
        assert_eq!(Fixed::FIXED_SIZE, 24);
    }

    #[test]
    fn layout_follows_c_rules_for_every_type() {
        let f = All::EVENT_TYPE.fields;
        let offs: Vec<(&str, u16, u16)> = f.iter().map(|f| (f.name, f.offset, f.size)).collect();
        assert_eq!(
            offs,
            [
                ("a", 8, 1),
                ("b", 10, 2),
                ("c", 12, 4),
                ("d", 16, 8),
                ("e", 24, 1),
                ("f", 25, 3),
                ("s", 28, 4),
                ("g", 32, 1),
                ("t", 36, 4),
            ]
        );
        assert_eq!(All::FIXED_SIZE, 40);
        let text = All::EVENT_TYPE.format_text();
        assert!(
            text.contains("\tfield:unsigned char f[3];\toffset:25;\tsize:3;\tsigned:0;\n"),
            "{text}"
        );
        assert!(text.contains("\tfield:__data_loc char[] s;\toffset:28;\tsize:4;\tsigned:0;\n"));
        assert!(text.contains("\tfield:s64 d;\toffset:16;\tsize:8;\tsigned:1;\n"));
        assert!(text.ends_with(
            "print fmt: \"a=%u b=%d c=%u d=%lld e=%u f=%s s=%s g=%d t=%s\", REC->a, REC->b, REC->c, REC->d, REC->e, __print_hex(REC->f, 3), __get_str(s), REC->g, __get_str(t)\n"
        ));
    }

    #[test]
    fn encode_writes_exact_bytes() {
        let ev = All {
            a: 0xab,
            b: -2,
            c: 7,
            d: -9,
            e: true,
            f: [1, 2, 3],
            s: "hey",
            g: -1,
            t: "",
        };
        let mut buf = [0xeeu8; 128];
        let n = ev.encode(&C, &mut buf).unwrap();
        assert_eq!(n, 40 + 4 + 1);
        assert_eq!(n, ev.encoded_len());
        let r = &buf[..n];
        assert_eq!(CommonFields::read(r), Some((1003, C)));
        assert_eq!(r[8], 0xab);
        assert_eq!(r[9], 0, "padding is zeroed");
        assert_eq!(&r[10..12], &(-2i16).to_ne_bytes());
        assert_eq!(&r[12..16], &7u32.to_ne_bytes());
        assert_eq!(&r[16..24], &(-9i64).to_ne_bytes());
        assert_eq!(r[24], 1);
        assert_eq!(&r[25..28], &[1, 2, 3]);
        assert_eq!(&r[28..32], &((4u32 << 16) | 40).to_ne_bytes());
        assert_eq!(r[32], 0xff);
        assert_eq!(&r[36..40], &((1u32 << 16) | 44).to_ne_bytes());
        assert_eq!(&r[40..45], b"hey\0\0");
        assert_eq!(buf[45], 0xee, "nothing written past the record");
        assert_eq!(
            All::EVENT_TYPE.render_fields(r).unwrap(),
            "a=171 b=-2 c=7 d=-9 e=1 f=01 02 03 s=hey g=-1 t="
        );
    }

    #[test]
    fn encode_refuses_short_buffer_and_huge_strings() {
        let ev = All {
            a: 0,
            b: 0,
            c: 0,
            d: 0,
            e: false,
            f: [0; 3],
            s: "x",
            g: 0,
            t: "y",
        };
        let mut small = [0u8; 43];
        assert_eq!(
            ev.encode(&C, &mut small),
            Err(EncodeError::BufferTooSmall { need: 44, have: 43 })
        );
        let big = "z".repeat(70_000);
        let ev = All { s: &big, ..ev };
        let mut buf = vec![0u8; 80_000];
        assert!(matches!(
            ev.encode(&C, &mut buf),
            Err(EncodeError::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn render_rejects_bad_records() {
        let ev = All {
            a: 0,
            b: 0,
            c: 0,
            d: 0,
            e: false,
            f: [0; 3],
            s: "abc",
            g: 0,
            t: "",
        };
        let mut buf = [0u8; 64];
        let n = ev.encode(&C, &mut buf).unwrap();
        assert!(matches!(
            All::EVENT_TYPE.render_fields(&buf[..20]),
            Err(DecodeError::Truncated { field: "d", .. })
        ));
        // Point the string past the end.
        buf[28..32].copy_from_slice(&((4u32 << 16) | 62).to_ne_bytes());
        assert!(matches!(
            All::EVENT_TYPE.render_fields(&buf[..n]),
            Err(DecodeError::BadDataLoc { field: "s", .. })
        ));
    }

    #[test]
    fn registry_refuses_duplicate_ids() {
        static OTHER: EventType = EventType {
            name: "other",
            system: "x",
            id: 1002,
            fields: &[],
            print_fmt: "",
        };
        let r = Registry::new();
        r.register(Fixed::EVENT_TYPE).unwrap();
        r.register(Fixed::EVENT_TYPE).unwrap();
        assert_eq!(
            r.register(&OTHER),
            Err(RegistryError::IdTaken {
                id: 1002,
                system: "demo",
                name: "demo_fixed"
            })
        );
        static ZERO: EventType = EventType {
            name: "z",
            system: "x",
            id: 0,
            fields: &[],
            print_fmt: "",
        };
        assert_eq!(
            r.register(&ZERO),
            Err(RegistryError::IdOutOfRange { id: 0 })
        );
        static HIGH: EventType = EventType {
            name: "h",
            system: "x",
            id: 5000,
            fields: &[],
            print_fmt: "",
        };
        assert_eq!(
            r.register(&HIGH),
            Err(RegistryError::IdOutOfRange { id: 5000 })
        );
        assert_eq!(r.get(1002).map(|t| t.name), Some("demo_fixed"));
        assert_eq!(r.iter().count(), 1);
    }
}
