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
//! assert!(text.contains(": load: INFO span_id=1 file=a.txt\n"), "{text}");
//! assert!(text.contains(": span_begin: id=1 name=load\n"));
//! assert!(text.contains("message=read bytes=512\n"));
//! assert!(text.contains(": span_end: id=1 name=load\n"));
//! ```
//!
//! # Writing a file
//!
//! [`file()`] gives a layer and a guard, as tracing-chrome does: the trace is
//! written to the file (`.json`: Chrome JSON for the Perfetto UI; `.dat`:
//! trace.dat for trace-cmd) when the guard drops, and also at the first
//! panic (a panic hook that runs the previous hook first). The layer
//! records into a tracer of its own, which a thread of the guard drains
//! every [`POLL`] into spool files, so the rings never fill for long.
//! After a panic wrote the file, recording stops (later events are
//! refused and counted) and stderr says so; an error while writing is
//! printed on stderr (a drop cannot return it).
//!
//! # What is recorded
//!
//! - **Events** (`info!`, `event!`, ...): one record per event, of an event
//!   type made for its call site (system `tracing`), with one field per
//!   field of the call site, `message` included. The type is named by the
//!   call site's `tracing` name (`info!(name: "flush", ..)`), or, when it
//!   has only `tracing`'s default name (`event file:line`), by the first
//!   words of its first message (`"served page {}"`: `served_page`), as a
//!   C identifier.
//! - **The call site**: its level, target, module path, file and line are
//!   the head of the type's `print fmt` (trace-cmd prints them; the
//!   exporters read them back: see [`crate::export::callsite`]).
//! - **Span lifetimes**: creating a span records its call site's type,
//!   whose first field, `span_id`, is the span's id, with the span's fields
//!   (for every span, with fields or not); `Span::record` records it again
//!   with the new values; closing the span (its last handle dropped)
//!   records `ringtrace/span_close` (`u64 id`, `name`).
//! - **Span entries**: entering a span records [`SpanBegin`], leaving it
//!   [`SpanEnd`] (system `ringtrace`, see [`crate::span`]), with the span's
//!   name and id; on one thread they nest like a stack. An async task's
//!   span is entered at each poll: one lifetime, many entries.
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
//! type is then made once: an id from [`DYNAMIC_IDS`](crate::span::DYNAMIC_IDS),
//! the `format` text, registration in the global
//! [`Registry`](crate::event::Registry); that step takes a lock and
//! allocates). Later events of the call site that give a field a value of
//! another type are converted where that makes sense (integers to a float
//! field, anything to a string field by formatting it); a string given to a
//! number field stores 0 and is counted in [`RingtraceLayer::mismatched`].
//!
//! # Cost
//!
//! After a call site's first event, an event takes no lock and allocates
//! nothing in this layer: a lock-free look-up of the call site's shape (a
//! multiplicative hash of its metadata address to its home slot in a fixed
//! table, one compare, one load; a call site displaced by a collision is
//! found out of line), then one of two paths:
//!
//! - numbers only, at most eight (a span's id counting as one): the record
//!   length is the shape's, so the tracer's record path reserves it (one
//!   clock read) and the fields are visited **straight into the
//!   reservation** (the body zeroed with a few 8-byte stores, each value
//!   one store), then commits: no staging buffer, no copy, no
//!   registration check (the type was registered with the shape);
//! - otherwise (strings, `Debug` values, a `message`, more numbers): the
//!   fields are visited into a 1024-byte stack record whose length is
//!   known only after the visit, which the record path copies. `Debug`
//!   values run user code, which never runs inside a reservation.
//!
//! What `tracing-subscriber`'s `Registry` itself does per event and span
//! (span storage in a slab, thread-local span stacks) is outside this
//! layer. `crates/bench/benches/layer.rs` measures it against a do-nothing
//! layer and the `fmt` layer.
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

use crate::sync::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::fmt::{self, Write as _};
use std::path::Path;
use std::sync::Mutex;

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id, Record as SpanValues};
use tracing_core::{Event, Interest, Level, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::event::{Array, EventType, Field as EvField, COMMON_HEADER_SIZE};
pub use crate::frontends::layer_file::{format_of, FileError, FileGuard, POLL};

use crate::export::callsite::{write_head, CallsiteHead};
use crate::frontends::dynamic_types;
use crate::frontends::frontend::{static_identifier, RecordBuf, Storage};
use crate::span::{SpanBegin, SpanEnd};
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

/// A layer recording into a new tracer, and the guard that writes its
/// trace to `path` (format by extension: [`format_of`]) when it drops or
/// at the first panic (see "Writing a file" in the [module docs](self)).
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("trace.json");
/// let (layer, guard) = ringtrace::layer::file(&path).unwrap();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::info!(n = 1u64, "hello");
/// });
/// drop(guard); // writes the file
/// let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
/// assert!(json["traceEvents"].as_array().unwrap().iter().any(|e| e["name"] == "hello"));
/// ```
pub fn file(path: impl AsRef<Path>) -> Result<(RingtraceLayer, FileGuard), FileError> {
    let (tracer, guard) = crate::frontends::layer_file::start(path.as_ref())?;
    Ok((RingtraceLayer::new(tracer), guard))
}

/// Counters shared by all layers (the call-site table is process-wide).
static TRUNCATED: AtomicU64 = AtomicU64::new(0);
static MISMATCHED: AtomicU64 = AtomicU64::new(0);

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
    /// ([`DYNAMIC_IDS`](crate::span::DYNAMIC_IDS)) was full.
    ///
    /// ```
    /// assert_eq!(ringtrace::layer::RingtraceLayer::untyped(), 0);
    /// ```
    #[must_use]
    pub fn untyped() -> u64 {
        dynamic_types::untyped()
    }

    /// The tracer to record into; `None` when there is none (the default
    /// tracer could not be made, or not here: see
    /// [`global_for_record`](crate::default_tracer::global_for_record)).
    #[inline(always)]
    fn tracer(&self) -> Option<&'static Tracer> {
        match self.dest {
            Dest::Tracer(t) => Some(t),
            Dest::Global => match crate::tracer::global_if_exists() {
                Some(t) => Some(t),
                None => crate::default_tracer::global_for_record(),
            },
        }
    }

    #[inline(always)]
    fn record<R: crate::event::Record + ?Sized>(&self, rec: &R) {
        if let Some(t) = self.tracer() {
            // Errors are counted by the tracer (see `TracerStats`).
            let _ = t.record(rec);
        }
    }

    #[inline(always)]
    fn record_values<V: RecordFields>(
        &self,
        meta: &'static Metadata<'static>,
        span_id: Option<u64>,
        values: &V,
    ) {
        let Some(t) = self.tracer() else { return };
        let shape = match lookup(meta) {
            Some(shape) => shape,
            None => match first_shape(t, meta, values, span_id.is_some()) {
                Some(shape) => shape,
                None => return,
            },
        };
        if !shape.small {
            return record_staged(t, shape, span_id, values);
        }
        // No strings, a few numbers: visited straight into the reservation
        // (recording off: refused before the visit). Errors are counted by
        // the tracer (see `TracerStats`).
        let _ = t.record(&Direct {
            shape,
            span_id: span_id.unwrap_or(0),
            values,
        });
    }
}

/// The shape of a call site the fast [`lookup`] did not find: made from
/// `values` on its first event (not while recording is off: nothing is
/// registered then), found further along its probe run, or none (counted
/// as untyped).
#[cold]
#[inline(never)]
fn first_shape(
    t: &Tracer,
    meta: &'static Metadata<'static>,
    values: &dyn RecordFields,
    span: bool,
) -> Option<&'static Shape> {
    if !t.is_on() {
        return None;
    }
    let shape = shape_of(meta, values, span);
    if shape.is_none() {
        dynamic_types::count_untyped();
    }
    shape
}

/// Visits `values` into a stack record of `shape` in `storage` (any
/// shape; the only way for shapes with strings).
fn encode_staged<'b>(
    shape: &Shape,
    span_id: Option<u64>,
    values: &dyn RecordFields,
    storage: &'b mut Storage,
) -> RecordBuf<'b> {
    let mut enc = Encoder {
        shape,
        buf: RecordBuf::new(storage, shape.fixed),
        written: 0,
    };
    if let Some(off) = shape.span_id_offset {
        enc.buf.put_u64(off, span_id.unwrap_or(0));
    }
    values.visit(&mut enc);
    enc.finish();
    enc.buf
}

/// Call sites with strings (or more numbers than a [`Direct`] record
/// holds): the record's length is known only after the visit, so the
/// fields go to a stack buffer first, which the record path then copies.
#[inline(never)]
fn record_staged(t: &Tracer, shape: &Shape, span_id: Option<u64>, values: &dyn RecordFields) {
    // Off: skip the visit too (the record path would refuse).
    if !t.is_on() {
        return;
    }
    let mut storage = crate::frontends::frontend::storage();
    let buf = encode_staged(shape, span_id, values, &mut storage);
    if buf.truncated() {
        TRUNCATED.fetch_add(1, Ordering::Relaxed);
    }
    // The type was registered when the shape was made. Errors are counted
    // by the tracer (see `TracerStats`).
    let _ = t.record(&buf.record_registered(shape.ty));
}

impl<S> Layer<S> for RingtraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        // Registration may lock; this inserts the call site into the
        // table so the first event only builds its type.
        let _ = insert(meta);
        Interest::always()
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        self.record_values(event.metadata(), None, &EventFields(event));
    }

    /// A span's creation: its call site's record (`span_id` and the
    /// fields), also for spans without fields: it starts the lifetime that
    /// the `span_close` record ends.
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _ctx: Context<'_, S>) {
        self.record_values(attrs.metadata(), Some(id.into_u64()), &AttrFields(attrs));
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let name = ctx.metadata(&id).map_or("?", |m| m.name());
        if let Some(t) = self.tracer() {
            crate::frontends::span_close::record(t, id.into_u64(), name);
        }
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
    /// `offset` for an integer field (`U64`, `I64`), where an integer is
    /// stored as it is; [`NOT_INT`] (past any record) for other kinds, so
    /// that one bounds check tells both the kind and the room.
    int_at: u16,
}

/// [`Slot::int_at`] of a field that is not an integer: no record reaches it.
const NOT_INT: u16 = u16::MAX;

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
    /// No strings and at most [`SMALL`] bytes of numbers: recorded as a
    /// [`Direct`] record, straight into the reservation.
    small: bool,
}

/// One slot of the call-site table: a metadata address and its shape.
///
/// `meta` is written once (null to the call site's metadata, under
/// `INSERT`), `shape` once (null to a leaked [`Shape`], under `MAKE`);
/// neither changes again, so look-ups are lock-free. 16 bytes: a slot's
/// index is the hash shifted, no multiply.
struct Entry {
    meta: AtomicPtr<Metadata<'static>>,
    shape: AtomicPtr<Shape>,
}

/// Open-addressing table from metadata address to call site.
static TABLE: [Entry; MAX_CALLSITES] = [const {
    Entry {
        meta: AtomicPtr::new(std::ptr::null_mut()),
        shape: AtomicPtr::new(std::ptr::null_mut()),
    }
}; MAX_CALLSITES];
/// `FAILED[i]`: no shape could be made for `TABLE[i]`'s call site (no id
/// left): its events are counted, not retried. Apart from the table,
/// which the fast path reads, so that its slots stay 16 bytes.
static FAILED: [AtomicBool; MAX_CALLSITES] = [const { AtomicBool::new(false) }; MAX_CALLSITES];
static INSERT: Mutex<()> = Mutex::new(());
static MAKE: Mutex<()> = Mutex::new(());

#[inline(always)]
fn hash(meta: &'static Metadata<'static>) -> usize {
    let addr = meta as *const Metadata<'static> as usize as u64;
    // Fibonacci hashing of the address (metadata are 8-aligned statics):
    // the top 12 bits, an index below MAX_CALLSITES.
    const _: () = assert!(MAX_CALLSITES == 1 << 12);
    (addr.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52) as usize
}

#[inline(always)]
fn meta_ptr(meta: &'static Metadata<'static>) -> *mut Metadata<'static> {
    meta as *const Metadata<'static> as *mut Metadata<'static>
}

/// The fast path's look-up: the shape of `meta`'s call site if it sits in
/// its home slot and has one (one multiply, one compare, one load).
/// `None` sends the caller to [`first_shape`], which probes further and
/// makes the shape on first sight.
#[inline(always)]
fn lookup(meta: &'static Metadata<'static>) -> Option<&'static Shape> {
    let e = TABLE.get(hash(meta))?;
    // Relaxed: only the address is compared, never dereferenced; what the
    // entry publishes is in `shape` (Acquire below).
    if e.meta.load(Ordering::Relaxed) != meta_ptr(meta) {
        return None;
    }
    // Acquire: pairs with the Release store in `make`, so the Shape's
    // fields are visible.
    let p = e.shape.load(Ordering::Acquire);
    // SAFETY: non-null shapes are leaked `Shape`s, never freed nor changed
    // once stored.
    unsafe { p.as_ref() }
}

/// The shape of `meta`'s call site, probing the whole run of slots.
/// Inserts the call site and makes its shape from `values` on first
/// sight. `None` if the table is full or the call site got no type.
fn shape_of(
    meta: &'static Metadata<'static>,
    values: &dyn RecordFields,
    span: bool,
) -> Option<&'static Shape> {
    let start = hash(meta);
    let key = meta_ptr(meta);
    for i in 0..MAX_CALLSITES {
        let at = (start + i) % MAX_CALLSITES;
        let e = &TABLE[at];
        // Relaxed: as in `lookup`.
        let m = e.meta.load(Ordering::Relaxed);
        if m == key {
            // Acquire: as in `lookup`.
            let p = e.shape.load(Ordering::Acquire);
            if p.is_null() {
                return make(at, meta, values, span);
            }
            // SAFETY: as in `lookup`.
            return Some(unsafe { &*p });
        }
        if m.is_null() {
            return insert(meta).and_then(|at| make(at, meta, values, span));
        }
    }
    None
}

/// Inserts `meta`'s call site (under `INSERT`); its slot's index. `None`
/// if the table is full.
#[cold]
#[inline(never)]
fn insert(meta: &'static Metadata<'static>) -> Option<usize> {
    let _g = INSERT.lock().unwrap_or_else(|p| p.into_inner());
    let start = hash(meta);
    let key = meta_ptr(meta);
    for i in 0..MAX_CALLSITES {
        let at = (start + i) % MAX_CALLSITES;
        let e = &TABLE[at];
        // Relaxed: only inserters (serialised by INSERT) store.
        let m = e.meta.load(Ordering::Relaxed);
        if m.is_null() {
            // Relaxed: the address is the only thing published (readers
            // compare it, then read `shape` with Acquire).
            e.meta.store(key, Ordering::Relaxed);
            return Some(at);
        }
        if m == key {
            return Some(at);
        }
    }
    None
}

/// Makes the shape of slot `at` from its first values (under `MAKE`, once
/// per call site).
#[cold]
#[inline(never)]
fn make(
    at: usize,
    meta: &'static Metadata<'static>,
    values: &dyn RecordFields,
    span: bool,
) -> Option<&'static Shape> {
    let (e, failed) = (&TABLE[at], &FAILED[at]);
    // Acquire: pairs with the Release store below (whoever set it also
    // gave up on the shape).
    if failed.load(Ordering::Acquire) {
        return None;
    }
    let _g = MAKE.lock().unwrap_or_else(|p| p.into_inner());
    // Relaxed (both): written under MAKE, which we hold.
    let p = e.shape.load(Ordering::Relaxed);
    if !p.is_null() {
        // SAFETY: as in `lookup`.
        return Some(unsafe { &*p });
    }
    if failed.load(Ordering::Relaxed) {
        return None;
    }
    match make_shape(meta, values, span) {
        Some(shape) => {
            let shape: &'static Shape = Box::leak(Box::new(shape));
            // Release: pairs with the Acquire loads in `lookup` and
            // `shape_of`.
            e.shape
                .store(shape as *const Shape as *mut Shape, Ordering::Release);
            Some(shape)
        }
        None => {
            // Release: pairs with the Acquire load above.
            failed.store(true, Ordering::Release);
            None
        }
    }
}

/// Learns the field kinds from the first values, and the first words of
/// the first message (an event's name when its call site has none).
struct Probe {
    kinds: Vec<Option<Kind>>,
    message: Option<String>,
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
    fn record_str(&mut self, f: &Field, v: &str) {
        self.set(f, Kind::Str);
        if f.name() == "message" {
            self.message = Some(v.to_string());
        }
    }
    fn record_debug(&mut self, f: &Field, v: &dyn fmt::Debug) {
        self.set(f, Kind::Str);
        if f.name() == "message" {
            self.message = Some(format!("{v:?}"));
        }
    }
}

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
        message: None,
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
            int_at: match k {
                Kind::U64 | Kind::I64 => off as u16,
                _ => NOT_INT,
            },
        });
        fields.push(field(static_identifier(f.name()), k, off));
        off += size;
    }
    let fixed = off.div_ceil(8) * 8;
    let name = event_name(meta, probe.message.as_deref());
    let print_fmt = print_fmt(meta, &fields, span);
    let fields: &'static [EvField] = Box::leak(fields.into_boxed_slice());
    let ty = dynamic_types::register(SYSTEM, name, fields, print_fmt)?;
    let has_str = slots.iter().any(|s| s.kind == Kind::Str);
    Some(Shape {
        ty,
        slots: slots.into_boxed_slice(),
        fixed,
        span_id_offset,
        has_str,
        small: !has_str && fixed - COMMON_HEADER_SIZE <= SMALL,
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

/// The event type's name: the `tracing` metadata name (a span's name, an
/// event's `name:`), or, for an event left with `tracing`'s default name
/// (`event file:line`), the first words of its first message; as a C
/// identifier (`"accepted connection from {addr}"`: `accepted_connection_from`).
fn event_name(meta: &'static Metadata<'static>, message: Option<&str>) -> &'static str {
    let name = meta.name();
    let default = name.starts_with("event ") && !meta.is_span();
    let raw = match message {
        Some(m) if default => first_words(m),
        _ if default => "event".to_string(),
        _ => name.to_string(),
    };
    let s = crate::frontends::frontend::c_identifier(&raw).unwrap_or(raw);
    Box::leak(s.into_boxed_str())
}

/// Up to the first three words of `message` made of letters, digits and
/// `_` (stopping at the first word that is not: a value, a `{}`), at most
/// 40 bytes; `event` when there is none.
fn first_words(message: &str) -> String {
    let mut out = String::new();
    for w in message.split_whitespace().take(3) {
        let w = w.trim_end_matches([':', ',', '.', ';']);
        let plain = !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !plain || out.len() + w.len() + 1 > 40 {
            break;
        }
        if !out.is_empty() {
            out.push('_');
        }
        out.push_str(w);
    }
    if out.is_empty() {
        out.push_str("event");
    }
    out
}

/// A `print fmt` libtraceevent can evaluate: the call site's head (level,
/// target, module, file:line: see [`crate::export::callsite`]), then the
/// message bare, the other fields as `name=value` (floats as their bits:
/// libtraceevent has no float conversion).
fn print_fmt(meta: &'static Metadata<'static>, fields: &[EvField], span: bool) -> &'static str {
    let head = CallsiteHead {
        level: level_name(meta.level()).to_string(),
        span,
        target: meta.target().to_string(),
        module: meta.module_path().unwrap_or(meta.target()).to_string(),
        file: meta.file().unwrap_or("?").to_string(),
        line: meta.line().unwrap_or(0),
    };
    let mut fmt = String::from("\"");
    write_head(&mut fmt, &head);
    let mut args = String::new();
    // The message first, bare, as tracing's fmt layer prints it.
    let mut ordered: Vec<&EvField> = fields.iter().filter(|f| f.name == "message").collect();
    ordered.extend(fields.iter().filter(|f| f.name != "message"));
    for f in ordered {
        fmt.push(' ');
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

fn level_name(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

// ---------------------------------------------------------------------------
// The hot path: values into the record.

/// A number as `tracing` handed it over.
#[derive(Clone, Copy)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl Num {
    /// The 8 bytes stored for this value in a number field of kind `k`
    /// (integers to a float field, floats to an integer field converted;
    /// `k` is never [`Kind::Str`] here).
    #[inline(always)]
    fn bits(self, k: Kind) -> u64 {
        match (k, self) {
            (Kind::F64, Num::U(u)) => (u as f64).to_bits(),
            (Kind::F64, Num::I(i)) => (i as f64).to_bits(),
            (Kind::F64, Num::F(x)) => x.to_bits(),
            (Kind::Bool, Num::U(u)) => u64::from(u != 0),
            (Kind::Bool, Num::I(i)) => u64::from(i != 0),
            (Kind::Bool, Num::F(x)) => u64::from(x != 0.0),
            (Kind::I64, Num::F(x)) => x as i64 as u64,
            (_, Num::F(x)) => x as u64,
            (_, Num::U(u)) => u,
            (_, Num::I(i)) => i as u64,
        }
    }
}

/// The staging encoder: values into the stack record, for call sites
/// with strings.
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
    fn number(&mut self, f: &Field, n: Num) {
        let Some(s) = self.slot(f) else { return };
        let off = usize::from(s.offset);
        if s.kind == Kind::Str {
            return self.number_as_text(off, n);
        }
        self.buf.put_u64(off, n.bits(s.kind));
    }

    /// A number given to a string field: formatted (out of line, so the
    /// number path stays small).
    #[cold]
    #[inline(never)]
    fn number_as_text(&mut self, off: usize, n: Num) {
        let start = self.buf.begin_str();
        let _ = match n {
            Num::F(x) => write!(self.buf, "{x}"),
            Num::I(i) => write!(self.buf, "{i}"),
            Num::U(u) => write!(self.buf, "{u}"),
        };
        self.buf.end_str(off, start);
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

/// The `Visit` methods of numbers, the same for both encoders: each hands
/// the value to the encoder's `number`.
macro_rules! number_visits {
    () => {
        #[inline]
        fn record_f64(&mut self, f: &Field, v: f64) {
            self.number(f, Num::F(v));
        }
        #[inline]
        fn record_i64(&mut self, f: &Field, v: i64) {
            self.number(f, Num::I(v));
        }
        #[inline]
        fn record_u64(&mut self, f: &Field, v: u64) {
            self.number(f, Num::U(v));
        }
        #[inline]
        fn record_bool(&mut self, f: &Field, v: bool) {
            self.number(f, Num::U(u64::from(v)));
        }
    };
}

enum Text<'a> {
    Str(&'a str),
    Debug(&'a dyn fmt::Debug),
    Display(&'a dyn fmt::Display),
}

impl Visit for Encoder<'_, '_> {
    number_visits!();
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

mod direct;
use direct::{Direct, SMALL};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{CommonFields, Record};
    use crate::frontends::frontend::MAX_RECORD;
    use std::sync::Arc;
    use tracing::Value;
    use tracing_subscriber::prelude::*;

    /// One record encoded both ways: whether the shape is small, the
    /// staged record, the small record (empty when not small), its text.
    type Both = (bool, Vec<u8>, Vec<u8>, String);

    /// Encodes every event, new span and span record both ways.
    struct BothWays(Arc<std::sync::Mutex<Vec<Both>>>);

    impl BothWays {
        fn push(&self, meta: &'static Metadata<'static>, id: Option<u64>, v: &dyn RecordFields) {
            let Some(shape) = shape_of(meta, v, id.is_some()) else {
                panic!("no shape for {}", meta.name());
            };
            let common = CommonFields {
                flags: 0,
                preempt_count: 0,
                pid: 7,
            };
            let mut storage = crate::frontends::frontend::storage();
            let buf = encode_staged(shape, id, v, &mut storage);
            let mut staged = vec![0u8; MAX_RECORD];
            let n = buf.record(shape.ty).encode(&common, &mut staged).unwrap();
            staged.truncate(n);
            // Garbage first: every byte of the small record must be written.
            let mut small = vec![0xa5u8; MAX_RECORD];
            if shape.small {
                let rec = Direct {
                    shape,
                    span_id: id.unwrap_or(0),
                    values: v,
                };
                let n = rec.encode(&common, &mut small).unwrap();
                small.truncate(n);
            } else {
                small.clear();
            }
            let text = shape.ty.render_fields(&staged).unwrap();
            self.0
                .lock()
                .unwrap()
                .push((shape.small, staged, small, text));
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for BothWays {
        fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
            self.push(event.metadata(), None, &EventFields(event));
        }
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
            self.push(attrs.metadata(), Some(id.into_u64()), &AttrFields(attrs));
        }
        fn on_record(&self, id: &Id, values: &SpanValues<'_>, ctx: Context<'_, S>) {
            let meta = ctx.metadata(id).unwrap();
            self.push(meta, Some(id.into_u64()), &RecordValues(values));
        }
    }

    fn run(f: impl FnOnce()) -> Vec<Both> {
        let out = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry().with(BothWays(Arc::clone(&out)));
        tracing::subscriber::with_default(sub, f);
        let v = out.lock().unwrap().clone();
        v
    }

    #[test]
    fn small_records_equal_staged_records() {
        let mismatched = RingtraceLayer::mismatched();
        let got = run(|| {
            tracing::info!(a = 1u64, b = -2i64, c = true, d = 0.25f64);
            // The first event fixes the kinds: a later None leaves its
            // field unset (0), other types are converted or counted.
            for x in [Some(5u64), None] {
                tracing::info!(x, y = 3u64);
            }
            let vals: [&dyn Value; 4] = [&1u64, &"text", &2.5f64, &-1i64];
            for v in vals {
                tracing::info!(n = v);
            }
            // Eight numbers: the largest small record; nine: staged.
            tracing::info!(
                n1 = 1,
                n2 = 2,
                n3 = 3,
                n4 = 4,
                n5 = 5,
                n6 = 6,
                n7 = 7,
                n8 = 8u64
            );
            tracing::info!(
                n1 = 1,
                n2 = 2,
                n3 = 3,
                n4 = 4,
                n5 = 5,
                n6 = 6,
                n7 = 7,
                n8 = 8,
                n9 = 9
            );
            // Spans: the id leads; seven numbers still fit.
            let s = tracing::info_span!("s7", a = 1, b = 2, c = 3, d = 4, e = 5, f = 6, g = 7u64);
            let s2 = tracing::info_span!("later", k = 1u64, l = tracing::field::Empty);
            s2.record("k", 2u64);
            drop((s, s2));
        });
        let small: Vec<bool> = got.iter().map(|g| g.0).collect();
        assert_eq!(
            small,
            [true, true, true, true, true, true, true, true, false, true, false, false]
        );
        for (is_small, staged, sm, text) in &got {
            if *is_small {
                assert_eq!(staged, sm, "{text}");
            }
        }
        let texts: Vec<&str> = got.iter().map(|g| g.3.as_str()).collect();
        assert_eq!(texts[0], "a=1 b=-2 c=1 d=0.25");
        assert_eq!(texts[1], "x=5 y=3");
        assert_eq!(texts[2], "x=0 y=3");
        assert_eq!(
            &texts[3..7],
            ["n=1", "n=0", "n=2", "n=18446744073709551615"]
        );
        assert_eq!(texts[7], "n1=1 n2=2 n3=3 n4=4 n5=5 n6=6 n7=7 n8=8");
        assert_eq!(texts[8], "n1=1 n2=2 n3=3 n4=4 n5=5 n6=6 n7=7 n8=8 n9=9");
        assert!(
            texts[9].ends_with(" a=1 b=2 c=3 d=4 e=5 f=6 g=7"),
            "{}",
            texts[9]
        );
        assert!(texts[9].starts_with("span_id="), "{}", texts[9]);
        assert!(texts[11].ends_with(" k=2 l="), "{}", texts[11]);
        assert_eq!(got[7].1.len(), COMMON_HEADER_SIZE + SMALL);
        assert_eq!(got[9].1.len(), COMMON_HEADER_SIZE + SMALL);
        // "text" for a number field, counted by both encoders.
        assert!(RingtraceLayer::mismatched() >= mismatched + 2);
    }
}
