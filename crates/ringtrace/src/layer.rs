//! A [`tracing_subscriber::Layer`] that records `tracing` events and spans
//! into ringtrace's rings (crate feature `tracing`).
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! static TRACER: std::sync::OnceLock<ringtrace::Tracer> = std::sync::OnceLock::new();
//! let t = TRACER.get_or_init(|| ringtrace::TracerConfig::new().max_contexts(1).build().unwrap());
//! let subscriber = tracing_subscriber::registry().with(ringtrace::layer::RingtraceLayer::new(t));
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("load", file = "a.txt");
//!     let _e = span.enter();
//!     tracing::info!(bytes = 512u64, "read");
//! });
//! let text = t.pipe().read_to_string().unwrap();
//! assert!(text.contains(": load: span_id=1 file=a.txt\n"), "{text}");
//! assert!(text.contains(": span_begin: id=1 name=load\n"));
//! assert!(text.contains("message=read bytes=512\n"));
//! assert!(text.contains(": span_end: id=1 name=load\n"));
//! ```
//!
//! # What is recorded
//!
//! - **Events** (`info!`, `event!`, ...): one record per event, of an event
//!   type made for its call site (system `tracing`, named after the target
//!   and line: `my_crate__db_42`), with one field per field of the call site,
//!   `message` included.
//! - **Spans**: entering a span records [`SpanBegin`], leaving it
//!   [`SpanEnd`] (system `ringtrace`, see [`crate::span`]), with the span's
//!   name and id; on one thread they nest like a stack. The span's own
//!   fields are recorded once when the span is created (and again when
//!   `Span::record` sets some), as an event of the span's call-site type
//!   whose first field, `span_id`, is the span's id.
//!
//! # Field encoding: binary now, text when read
//!
//! The field values are stored in binary and formatted only when the trace
//! is read:
//!
//! | value recorded as | stored as | `format` C type |
//! | --- | --- | --- |
//! | `u64` (and smaller unsigned) | 8 bytes | `u64` |
//! | `i64` (and smaller signed) | 8 bytes | `s64` |
//! | `bool` | 8 bytes (0 or 1) | `u64` |
//! | `f64`, `f32` | 8 bytes (IEEE 754) | `double` (trace-cmd prints the bits) |
//! | `&str`, `Debug` values, errors, `message` | `__data_loc char[]` string | `__data_loc char[]` |
//!
//! `Debug` values (the `message` is one: a `fmt::Arguments`) are formatted
//! into the record's stack buffer when the event happens: the `tracing` API
//! hands them over as `&dyn Debug`, which cannot be kept. A record holds at
//! most 1024 bytes (common header included); longer strings are cut at a
//! character boundary, and [`RingtraceLayer::truncated`] counts the cut
//! records.
//!
//! A call site's field types are fixed at its **first** event (its event
//! type is then made once: an id from [`DYNAMIC_IDS`],
//! the `format` text, registration in the global
//! [`Registry`]; that step takes a lock and
//! allocates). Later events of the call site that give a field a value of
//! another type are converted where that makes sense (integers to a float
//! field, anything to a string field by formatting it); a string given to a
//! number field stores 0 and is counted in [`RingtraceLayer::mismatched`].
//!
//! # Cost
//!
//! After a call site's first event, an event takes no lock and allocates
//! nothing in this layer: a lock-free look-up of the call site (a hash of
//! its metadata address in a fixed table), a visit of the fields into a
//! stack buffer, then the tracer's record path (one clock read, reserve,
//! copy, commit). What `tracing-subscriber`'s `Registry` itself does per
//! event and span (span storage in a slab, thread-local span stacks) is
//! outside this layer. `crates/bench/benches/layer.rs` measures it against
//! a do-nothing layer and the `fmt` layer.
//!
//! # Not async-signal-safe
//!
//! The `tracing` front end allocates and takes locks inside its own crates
//! (the dispatcher, the `Registry`'s span slab, call-site registration), so
//! **do not call `tracing` macros from a signal handler**. Use ringtrace's
//! own macros there ([`trace!`](crate::trace),
//! [`trace_event!`](crate::trace_event), with
//! [`signal_scope`](crate::signal_scope) first): they take no lock and
//! allocate nothing once the thread has its context.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record as SpanValues};
use tracing_core::{Event, Interest, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::event::{Array, EventType, Field as EvField, Registry, COMMON_HEADER_SIZE};
use crate::frontend::{static_identifier, RecordBuf};
use crate::span::{SpanBegin, SpanEnd, DYNAMIC_IDS};
use crate::tracer::Tracer;

/// The system of the event types made for `tracing` call sites.
///
/// ```
/// assert_eq!(ringtrace::layer::SYSTEM, "tracing");
/// ```
pub const SYSTEM: &str = "tracing";

/// Call sites the table can hold (events and spans together).
///
/// ```
/// assert_eq!(ringtrace::layer::MAX_CALLSITES, 4096);
/// ```
pub const MAX_CALLSITES: usize = 4096;

/// Fields a call site can have (tracing's macros allow 32).
const MAX_FIELDS: usize = 64;

/// Where the layer records.
#[derive(Debug, Clone, Copy)]
enum Dest {
    Tracer(&'static Tracer),
    /// The default tracer ([`crate::global`]), made on first use.
    Global,
}

/// Counters shared by all layers (the call-site table is process-wide).
static TRUNCATED: AtomicU64 = AtomicU64::new(0);
static MISMATCHED: AtomicU64 = AtomicU64::new(0);
static NO_TYPE: AtomicU64 = AtomicU64::new(0);

/// A `tracing-subscriber` layer recording into a [`Tracer`]'s rings; see
/// the [module docs](self).
///
/// It works beside other layers and filters:
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let sub = tracing_subscriber::registry()
///     .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
///     .with(ringtrace::layer::RingtraceLayer::default()
///         .with_filter(tracing_subscriber::filter::LevelFilter::INFO));
/// tracing::subscriber::with_default(sub, || tracing::info!(n = 1u64, "to both"));
/// let text = ringtrace::global().unwrap().pipe().read_to_string().unwrap();
/// assert!(text.contains("message=to both n=1\n"), "{text}");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RingtraceLayer {
    dest: Dest,
}

impl Default for RingtraceLayer {
    /// A layer recording into the default tracer ([`crate::global`],
    /// configured by [`crate::init`] or made with the defaults on first
    /// use).
    fn default() -> Self {
        RingtraceLayer { dest: Dest::Global }
    }
}

impl RingtraceLayer {
    /// A layer recording into `tracer`.
    ///
    /// ```
    /// let t: &'static ringtrace::Tracer =
    ///     Box::leak(Box::new(ringtrace::TracerConfig::new().build().unwrap()));
    /// let _layer = ringtrace::layer::RingtraceLayer::new(t);
    /// ```
    #[must_use]
    pub fn new(tracer: &'static Tracer) -> Self {
        RingtraceLayer {
            dest: Dest::Tracer(tracer),
        }
    }

    /// A layer recording into the default tracer; the same as
    /// [`RingtraceLayer::default`].
    ///
    /// ```
    /// let _layer = ringtrace::layer::RingtraceLayer::global();
    /// ```
    #[must_use]
    pub fn global() -> Self {
        Self::default()
    }

    /// Records (of all layers in the process) whose strings were cut to
    /// fit the 1024-byte record.
    ///
    /// ```
    /// let _ = ringtrace::layer::RingtraceLayer::truncated();
    /// ```
    #[must_use]
    pub fn truncated() -> u64 {
        TRUNCATED.load(Ordering::Relaxed)
    }

    /// Field values (of all layers) that did not fit the type their call
    /// site's first event fixed, and were stored as 0.
    ///
    /// ```
    /// let _ = ringtrace::layer::RingtraceLayer::mismatched();
    /// ```
    #[must_use]
    pub fn mismatched() -> u64 {
        MISMATCHED.load(Ordering::Relaxed)
    }

    /// Events (of all layers) not recorded because their call site got no
    /// event type: the call-site table or the id range
    /// ([`DYNAMIC_IDS`]) was full.
    ///
    /// ```
    /// assert_eq!(ringtrace::layer::RingtraceLayer::untyped(), 0);
    /// ```
    #[must_use]
    pub fn untyped() -> u64 {
        NO_TYPE.load(Ordering::Relaxed)
    }

    #[inline]
    fn record<R: crate::event::Record + ?Sized>(&self, rec: &R) {
        // Errors are counted by the tracer (see `TracerStats`).
        let _ = match self.dest {
            Dest::Tracer(t) => t.record(rec),
            Dest::Global => crate::context::record_global(rec),
        };
    }

    fn record_values(
        &self,
        meta: &'static Metadata<'static>,
        span_id: Option<u64>,
        values: &dyn RecordFields,
    ) {
        // Off: skip the field visit too (the record path would refuse).
        if let Dest::Tracer(t) = self.dest {
            if !t.is_on() {
                return;
            }
        }
        let Some(site) = site(meta) else {
            NO_TYPE.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let Some(shape) = site.shape(values, span_id.is_some()) else {
            NO_TYPE.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mut storage = crate::frontend::storage();
        let mut enc = Encoder {
            shape,
            buf: RecordBuf::new(&mut storage, shape.fixed),
            written: 0,
        };
        if let (Some(id), Some(off)) = (span_id, shape.span_id_offset) {
            enc.buf.put_u64(off, id);
        }
        values.visit(&mut enc);
        enc.finish();
        if enc.buf.truncated() {
            TRUNCATED.fetch_add(1, Ordering::Relaxed);
        }
        self.record(&enc.buf.record(shape.ty));
    }
}

impl<S> Layer<S> for RingtraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // Registration may lock; `site` inserts the call site into the
        // table so the first event only builds its type.
        let _ = site(meta);
        Interest::always()
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        self.record_values(event.metadata(), None, &EventFields(event));
    }

    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        if attrs.fields().is_empty() {
            return;
        }
        self.record_values(attrs.metadata(), Some(id.into_u64()), &AttrFields(attrs));
    }

    fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
        if let Some(meta) = ctx.metadata(id) {
            self.record_values(meta, Some(id.into_u64()), &RecordValues(values));
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let name = ctx.metadata(id).map_or("?", |m| m.name());
        self.record(&SpanBegin {
            id: id.into_u64(),
            name,
        });
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let name = ctx.metadata(id).map_or("?", |m| m.name());
        self.record(&SpanEnd {
            id: id.into_u64(),
            name,
        });
    }
}

/// Something holding field values to visit: an event, a new span's
/// attributes, or values recorded later.
trait RecordFields {
    fn visit(&self, v: &mut dyn Visit);
}

struct EventFields<'a, 'b>(&'a Event<'b>);
impl RecordFields for EventFields<'_, '_> {
    #[inline]
    fn visit(&self, v: &mut dyn Visit) {
        self.0.record(v);
    }
}

struct AttrFields<'a, 'b>(&'a Attributes<'b>);
impl RecordFields for AttrFields<'_, '_> {
    fn visit(&self, v: &mut dyn Visit) {
        self.0.record(v);
    }
}

struct RecordValues<'a, 'b>(&'a SpanValues<'b>);
impl RecordFields for RecordValues<'_, '_> {
    fn visit(&self, v: &mut dyn Visit) {
        self.0.record(v);
    }
}

// ---------------------------------------------------------------------------
// Call-site table.

/// How a field is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    U64,
    I64,
    Bool,
    F64,
    Str,
}

impl Kind {
    fn c_type(self) -> &'static str {
        match self {
            Kind::U64 | Kind::Bool => "u64",
            Kind::I64 => "s64",
            Kind::F64 => "double",
            Kind::Str => "__data_loc char[]",
        }
    }
}

/// Where field `i` of a call site goes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    kind: Kind,
    /// Offset of the value (or `__data_loc` word) in the record.
    offset: u16,
}

/// A call site's event type and record layout, fixed at its first event.
#[derive(Debug)]
struct Shape {
    ty: &'static EventType,
    /// Indexed by `tracing` field index.
    slots: Box<[Slot]>,
    /// Size of the fixed part (common header included).
    fixed: usize,
    /// Offset of the leading `span_id` field of span call sites.
    span_id_offset: Option<usize>,
    /// Whether any field is a string (unset ones must get an empty one).
    has_str: bool,
}

/// One call site.
#[derive(Debug)]
struct Site {
    meta: &'static Metadata<'static>,
    /// Made at the first event; `None` when no id was left.
    shape: OnceLock<Option<Shape>>,
}

impl Site {
    #[inline]
    fn shape(&self, values: &dyn RecordFields, span: bool) -> Option<&Shape> {
        if let Some(s) = self.shape.get() {
            return s.as_ref();
        }
        self.shape
            .get_or_init(|| make_shape(self.meta, values, span))
            .as_ref()
    }
}

/// Open-addressing table from metadata address to call site. Slots are
/// written once (null to a leaked `Site`), under `INSERT`; look-ups are
/// lock-free.
static TABLE: [AtomicPtr<Site>; MAX_CALLSITES] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_CALLSITES];
static INSERT: Mutex<()> = Mutex::new(());

#[inline]
fn hash(meta: &'static Metadata<'static>) -> usize {
    let addr = meta as *const Metadata<'static> as usize as u64;
    // Fibonacci hashing of the address (metadata are 8-aligned statics).
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize % MAX_CALLSITES
}

/// The call site of `meta`, inserted on first sight. `None` if the table
/// is full.
#[inline]
fn site(meta: &'static Metadata<'static>) -> Option<&'static Site> {
    let start = hash(meta);
    for i in 0..MAX_CALLSITES {
        let slot = &TABLE[(start + i) % MAX_CALLSITES];
        // Acquire: pairs with the Release store in `insert`, so the Site's
        // fields are visible.
        let p = slot.load(Ordering::Acquire);
        if p.is_null() {
            return insert(meta);
        }
        // SAFETY: non-null slots hold leaked `Site`s, never freed.
        let s = unsafe { &*p };
        if std::ptr::eq(s.meta, meta) {
            return Some(s);
        }
    }
    None
}

#[cold]
#[inline(never)]
fn insert(meta: &'static Metadata<'static>) -> Option<&'static Site> {
    let _g = INSERT.lock().unwrap_or_else(|p| p.into_inner());
    let start = hash(meta);
    for i in 0..MAX_CALLSITES {
        let slot = &TABLE[(start + i) % MAX_CALLSITES];
        // Relaxed: only inserters (serialised by INSERT) store.
        let p = slot.load(Ordering::Relaxed);
        if p.is_null() {
            let site: &'static Site = Box::leak(Box::new(Site {
                meta,
                shape: OnceLock::new(),
            }));
            // Release: pairs with the Acquire load in `site`.
            slot.store(site as *const Site as *mut Site, Ordering::Release);
            return Some(site);
        }
        // SAFETY: as in `site`.
        let s = unsafe { &*p };
        if std::ptr::eq(s.meta, meta) {
            return Some(s);
        }
    }
    None
}

/// Learns the field kinds from the first values.
struct Probe {
    kinds: Vec<Option<Kind>>,
}

impl Probe {
    fn set(&mut self, f: &Field, k: Kind) {
        if let Some(slot) = self.kinds.get_mut(f.index()) {
            *slot = Some(k);
        }
    }
}

impl Visit for Probe {
    fn record_f64(&mut self, f: &Field, _: f64) {
        self.set(f, Kind::F64);
    }
    fn record_i64(&mut self, f: &Field, _: i64) {
        self.set(f, Kind::I64);
    }
    fn record_u64(&mut self, f: &Field, _: u64) {
        self.set(f, Kind::U64);
    }
    fn record_bool(&mut self, f: &Field, _: bool) {
        self.set(f, Kind::Bool);
    }
    fn record_str(&mut self, f: &Field, _: &str) {
        self.set(f, Kind::Str);
    }
    fn record_debug(&mut self, f: &Field, _: &dyn fmt::Debug) {
        self.set(f, Kind::Str);
    }
}

static NEXT_ID: Mutex<u16> = Mutex::new(*DYNAMIC_IDS.end());

/// Builds and registers the event type of a call site (once per call site).
fn make_shape(
    meta: &'static Metadata<'static>,
    values: &dyn RecordFields,
    span: bool,
) -> Option<Shape> {
    let names = meta.fields();
    if names.len() > MAX_FIELDS {
        return None;
    }
    let mut probe = Probe {
        kinds: vec![None; names.len()],
    };
    values.visit(&mut probe);

    let mut fields: Vec<EvField> = Vec::with_capacity(names.len() + 1);
    let mut slots = Vec::with_capacity(names.len());
    let mut off = COMMON_HEADER_SIZE;
    let mut span_id_offset = None;
    if span {
        // 8 is 8-aligned.
        span_id_offset = Some(off);
        fields.push(field("span_id", Kind::U64, off));
        off += 8;
    }
    // Declaration order, C alignment: numbers 8, __data_loc words 4.
    for (f, k) in names.iter().zip(&probe.kinds) {
        let k = k.unwrap_or(Kind::Str);
        let (size, align) = if k == Kind::Str { (4, 4) } else { (8, 8) };
        off = off.div_ceil(align) * align;
        slots.push(Slot {
            kind: k,
            offset: off as u16,
        });
        fields.push(field(static_identifier(f.name()), k, off));
        off += size;
    }
    let fixed = off.div_ceil(8) * 8;
    let name = event_name(meta);
    let print_fmt = print_fmt(meta, &fields, span);
    let fields: &'static [EvField] = Box::leak(fields.into_boxed_slice());
    let ty = register(name, fields, print_fmt)?;
    let has_str = slots.iter().any(|s| s.kind == Kind::Str);
    Some(Shape {
        ty,
        slots: slots.into_boxed_slice(),
        fixed,
        span_id_offset,
        has_str,
    })
}

fn field(name: &'static str, k: Kind, off: usize) -> EvField {
    EvField {
        name,
        c_type: k.c_type(),
        offset: off as u16,
        size: if k == Kind::Str { 4 } else { 8 },
        signed: matches!(k, Kind::I64 | Kind::F64),
        array: Array::None,
    }
}

/// `target_line` for events (`my_crate::db` line 42: `my_crate__db_42`),
/// the span's name for spans, as C identifiers.
fn event_name(meta: &'static Metadata<'static>) -> &'static str {
    let raw = if meta.is_span() {
        meta.name().to_string()
    } else {
        match meta.line() {
            Some(l) => format!("{}_{l}", meta.target()),
            None => meta.name().to_string(),
        }
    };
    let s = crate::frontend::c_identifier(&raw).unwrap_or(raw);
    Box::leak(s.into_boxed_str())
}

/// A `print fmt` libtraceevent can evaluate: the level, the message bare,
/// the other fields as `name=value` (floats as their bits: libtraceevent has
/// no float conversion).
fn print_fmt(meta: &'static Metadata<'static>, fields: &[EvField], span: bool) -> &'static str {
    let mut fmt = String::from("\"");
    let mut args = String::new();
    if !span {
        let lvl = match *meta.level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        fmt.push_str(lvl);
    }
    // The message first, bare, as tracing's fmt layer prints it.
    let mut ordered: Vec<&EvField> = fields.iter().filter(|f| f.name == "message").collect();
    ordered.extend(fields.iter().filter(|f| f.name != "message"));
    for f in ordered {
        if fmt.len() > 1 {
            fmt.push(' ');
        }
        if f.is_data_loc() {
            if f.name != "message" {
                let _ = write!(fmt, "{}=", f.name);
            }
            fmt.push_str("%s");
            let _ = write!(args, ", __get_str({})", f.name);
        } else {
            let spec = match f.c_type {
                "s64" => "%lld",
                "double" => "0x%llx",
                _ => "%llu",
            };
            let _ = write!(fmt, "{}={spec}", f.name);
            let _ = write!(args, ", REC->{}", f.name);
        }
    }
    fmt.push('"');
    fmt.push_str(&args);
    Box::leak(fmt.into_boxed_str())
}

/// Gives the type the next free id of [`DYNAMIC_IDS`] (top down) and
/// registers it.
fn register(
    name: &'static str,
    fields: &'static [EvField],
    print_fmt: &'static str,
) -> Option<&'static EventType> {
    let reg = Registry::global();
    let mut next = NEXT_ID.lock().unwrap_or_else(|p| p.into_inner());
    while *next >= *DYNAMIC_IDS.start() {
        let id = *next;
        *next -= 1;
        if reg.get(id).is_some() {
            continue;
        }
        let ty: &'static EventType = Box::leak(Box::new(EventType {
            name,
            system: SYSTEM,
            id,
            fields,
            print_fmt,
        }));
        if reg.register(ty).is_ok() {
            return Some(ty);
        }
    }
    None
}

// ---------------------------------------------------------------------------
// The hot path: values into the stack record.

struct Encoder<'s, 'b> {
    shape: &'s Shape,
    buf: RecordBuf<'b>,
    /// Bit i: field i was written.
    written: u64,
}

impl Encoder<'_, '_> {
    #[inline]
    fn slot(&mut self, f: &Field) -> Option<Slot> {
        let i = f.index();
        let s = *self.shape.slots.get(i)?;
        self.written |= 1u64 << (i % 64);
        Some(s)
    }

    #[inline]
    fn number(&mut self, f: &Field, u: u64, i: i64, x: f64, signed: bool, float: bool) {
        let Some(s) = self.slot(f) else { return };
        let off = usize::from(s.offset);
        let v = match s.kind {
            Kind::U64 | Kind::I64 => {
                if float {
                    if s.kind == Kind::I64 {
                        x as i64 as u64
                    } else {
                        x as u64
                    }
                } else if signed {
                    i as u64
                } else {
                    u
                }
            }
            Kind::Bool => u64::from(if float { x != 0.0 } else { u != 0 }),
            Kind::F64 => {
                let x = if float {
                    x
                } else if signed {
                    i as f64
                } else {
                    u as f64
                };
                x.to_bits()
            }
            Kind::Str => {
                let start = self.buf.begin_str();
                let _ = if float {
                    write!(self.buf, "{x}")
                } else if signed {
                    write!(self.buf, "{i}")
                } else {
                    write!(self.buf, "{u}")
                };
                self.buf.end_str(off, start);
                return;
            }
        };
        self.buf.put_u64(off, v);
    }

    #[inline]
    fn text(&mut self, f: &Field, value: Text<'_>) {
        let Some(s) = self.slot(f) else { return };
        let off = usize::from(s.offset);
        if s.kind != Kind::Str {
            MISMATCHED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let start = self.buf.begin_str();
        let _ = match value {
            Text::Str(v) => {
                self.buf.push_str(v);
                Ok(())
            }
            Text::Debug(v) => write!(self.buf, "{v:?}"),
            Text::Display(v) => write!(self.buf, "{v}"),
        };
        self.buf.end_str(off, start);
    }

    /// Fields the event did not set: empty strings (a zero `__data_loc`
    /// word would point at the header), numbers stay 0.
    #[inline]
    fn finish(&mut self) {
        if !self.shape.has_str {
            return;
        }
        for (i, s) in self.shape.slots.iter().enumerate() {
            if s.kind == Kind::Str && (i >= 64 || self.written & (1u64 << i) == 0) {
                let start = self.buf.begin_str();
                self.buf.end_str(usize::from(s.offset), start);
            }
        }
    }
}

enum Text<'a> {
    Str(&'a str),
    Debug(&'a dyn fmt::Debug),
    Display(&'a dyn fmt::Display),
}

impl Visit for Encoder<'_, '_> {
    #[inline]
    fn record_f64(&mut self, f: &Field, v: f64) {
        self.number(f, 0, 0, v, false, true);
    }
    #[inline]
    fn record_i64(&mut self, f: &Field, v: i64) {
        self.number(f, v as u64, v, v as f64, true, false);
    }
    #[inline]
    fn record_u64(&mut self, f: &Field, v: u64) {
        self.number(f, v, v as i64, v as f64, false, false);
    }
    #[inline]
    fn record_bool(&mut self, f: &Field, v: bool) {
        self.number(
            f,
            u64::from(v),
            i64::from(v),
            f64::from(u8::from(v)),
            false,
            false,
        );
    }
    #[inline]
    fn record_str(&mut self, f: &Field, v: &str) {
        self.text(f, Text::Str(v));
    }
    fn record_error(&mut self, f: &Field, v: &(dyn std::error::Error + 'static)) {
        self.text(f, Text::Display(v));
    }
    #[inline]
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.text(f, Text::Debug(v));
    }
}
