//! ringtrace: the Linux kernel's lockless tracing ring buffer and the
//! ftrace core on top of it, in user space.
//!
//! Record events into per-thread rings without locks or allocation, read
//! them back as ftrace text, and export them for `trace-cmd` and KernelShark:
//!
//! ```
//! use ringtrace::TracerConfig;
//! ringtrace::declare_event! {
//!     /// One request served.
//!     pub struct Served<'a>: "demo" / "served" = 1000 { bytes: u64, path: &'a str }
//! }
//! let tracer = TracerConfig::new().max_contexts(4).build()?;
//! // Record: binary printk (formatted when read) and a typed event.
//! ringtrace::trace!(tracer: &tracer, "start pass %d of %d", 1, 3);
//! ringtrace::trace_event!(&tracer, Served { bytes: 512, path: "/index.html" });
//! // Read: the merged view, in ftrace's `trace` format (consumes nothing).
//! let text = tracer.view().read_to_string()?;
//! assert!(text.contains(": start pass 1 of 3\n"));
//! assert!(text.contains(": served: bytes=512 path=/index.html\n"));
//! // Export: trace.dat for `trace-cmd report` and KernelShark.
//! let path = std::env::temp_dir().join(format!("ringtrace-doc-{}.dat", std::process::id()));
//! let file = std::fs::File::create(&path)?;
//! let (_, stats) = ringtrace::export::export_snapshot(&tracer, file, Default::default())?;
//! assert_eq!(stats.events, 2);
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Where to go next
//!
//! - [`Tracer`] and [`TracerConfig`]: a trace instance, its rings (one per
//!   writing thread: a *context*), mode (overwrite = flight recorder, or
//!   producer/consumer), clock; [`global`] / [`init`] for the default one.
//! - Recording: [`trace!`] (binary printk), [`trace_event!`] with
//!   [`declare_event!`] (typed events), [`trace_marker`]; explicit
//!   per-thread contexts with [`Tracer::context`] ([`ContextHandle`]).
//! - Reading: [`Pipe`] ([`Tracer::pipe`]), [`output`] and [`text`] (ftrace
//!   lines), [`dump`] (dumps on panic and on fatal signals).
//! - Files: [`tracedat`] (trace.dat v6/v7 writer and reader, checked with
//!   the real trace-cmd).
//! - Other front ends: `layer` (a `tracing-subscriber` layer, crate
//!   feature `tracing`), `log_backend` (a `log` backend, crate feature
//!   `log`), [`span`] (span begin/end events any front end can record).
//! - Examples in `crates/ringtrace/examples/`: `flight_recorder` (overwrite
//!   mode, dump on crash), `live_pipe` (a reader thread following writers),
//!   `tracing_layer` (the `tracing` integration), `thread_per_core`
//!   (explicit contexts).
//!
//! # Signal safety
//!
//! ringtrace's own record macros ([`trace!`], [`trace_event!`]) and
//! [`trace_marker`] are async-signal-safe once the thread has its context
//! (its first ordinary event leases one): no lock, no allocation, one clock
//! read. A handler that records calls [`signal_scope`] first.
//!
//! The `tracing` and `log` front ends are **not** async-signal-safe: those
//! crates allocate and take locks inside themselves (the dispatcher, span
//! storage, the values' `Debug`/`Display` impls). Never call their macros
//! from a signal handler; use ringtrace's macros there.
//!
//! # Crate features
//!
//! - `tracing`: `ringtrace::layer::RingtraceLayer`.
//! - `log`: `ringtrace::log_backend`.
//!
//! # Modules
//!
//! - [`tracedat`]: reading and writing trace-cmd's `trace.dat` files (versions 6
//!   and 7) from raw ring-buffer pages, so `trace-cmd report` and KernelShark
//!   open what ringtrace records.
//! - [`clock`]: the clocks a trace can be recorded with (`tsc`, `mono`, `counter`).
//! - [`event`]: static event-type metadata and its ftrace `format` text.
//! - [`printk`]: binary printk: arguments stored raw, formatted when read.
//! - [`text`]: ftrace's text output lines.
//! - [`tracer`]: the [`Tracer`] (a trace instance) and the default one
//!   ([`global`], [`init`]).
//! - [`context`]: per-thread contexts, signal-handler nesting, the record path.
//! - [`trace!`], [`trace_event!`], [`trace_marker`]: the record macros.
//! - [`reader`]: the merged consuming pipe (`trace_pipe`).
//! - [`output`]: ftrace text lines for recorded events.
//! - [`dump`]: dumps on panic and on fatal signals (`ftrace_dump_on_oops`).
//! - [`export`]: streaming export of a live tracer (a drain) or a snapshot
//!   to trace.dat or JSON, with bounded memory.
//! - [`json`]: Chrome trace-event JSON, streamed (from trace.dat files too).
//! - [`span`]: span begin/end event types.
//! - [`session`]: rings and tables in shared memory, read from another
//!   process live or after the program died (`ringtrace record`).
//! - [`view`]: the merged non-consuming view (the kernel's `trace` file).
//! - [`snapshot`]: swap the live rings with a spare set, read it at leisure.
//! - [`RawPipe`] ([`Tracer::raw_pipe`]): whole pages of one context
//!   (`trace_pipe_raw`).
//! - [`kernel_bench`]: the kernel's ring-buffer benchmark (`ringtrace bench`).
//!
//! # Rooms (the source layout)
//!
//! The source is being reshaped into rooms whose imports run one way,
//! from the top down (`docs/rooms-progress.md` says how far):
//!
//! - `frontends/`: the `tracing` layer and the `log` backend.
//! - `default_tracer`: which tracer `trace!` without a tracer records into
//!   (in process, or on the session named by `RINGTRACE_SESSION`).
//! - `session/`: the shared-memory flavor of a tracer's storage.
//! - the read side and export (for now at the root: `reader`, `view`,
//!   `snapshot`, `dump`, `output`, `text`, `export`, `json`, `tracedat`).
//! - `tracer/`: the [`Tracer`], its clock, the record path
//!   ([`context`]), the record macros and the storage seam that the session
//!   implements; it never names a session.
//! - `record/`: event types, the registry, binary printk sites and
//!   arguments, spans; it knows no tracer and no session.
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod default_tracer;
mod frontends;
mod record;
pub mod session;
pub mod tracer;

pub mod export;
mod fmt;
// The kernel's ring-buffer benchmark, for `ringtrace bench`: not part of
// the API.
#[doc(hidden)]
pub mod kernel_bench;
mod read;

pub use export::{json, tracedat};
pub use fmt::{line as output, text};
pub use read::{dump, pipe as reader, snapshot, view};

#[cfg(feature = "tracing")]
pub use frontends::layer;
#[cfg(feature = "log")]
pub use frontends::log_backend;
pub use record::span;

/// Binary printk ([`trace!`]): the write side stores the call site's format
/// id and the raw argument bytes; the text is formatted when read, like the
/// kernel's `trace_bprintk`.
///
/// Formats are C printf, not Rust's `{}`, since trace.dat's
/// `printk_formats` section carries them to libtraceevent (trace-cmd,
/// KernelShark):
///
/// ```text
/// %[flags][width][.precision][length]conversion
/// flags: - + space # 0      width, precision: decimal, at most 4096 (no `*`)
/// length: (none) = 32-bit, l / ll / z = 64-bit   (h, hh, j, t, L are refused)
/// conversion: d i u x X o   integers      c  char      s  string
///             p             pointer       f F e E g G  f64
///             %%            a percent sign
/// ```
///
/// A call site is checked when it is built: a malformed format, a wrong
/// number of arguments or an argument that does not fit its conversion
/// does not compile. [`trace_cmd_compatible`](printk::trace_cmd_compatible)
/// tells whether trace-cmd prints a format as ringtrace does; records are
/// read back as text with [`format_bprint`](printk::format_bprint) and
/// [`format_print`](printk::format_print).
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// ringtrace::trace!(tracer: &t, "%s=%-4d|", "n", 7);
/// assert!(t.pipe().next_line().unwrap().unwrap().ends_with(": n=7   |\n"));
/// assert!(ringtrace::printk::trace_cmd_compatible("n=%d id=%08llx"));
/// ```
pub mod printk {
    pub use crate::record::printk::*;
    // What the record macros expand to and the read side's internals:
    // public because macro expansions and the other rooms need a path, not
    // part of the API.
    #[doc(hidden)]
    pub use crate::record::printk::{
        arg_kinds, count_args, first_misfit, fmt_addr, import_site, ip_addr, kallsyms_text,
        printk_formats_text, site_by_fmt_addr, site_by_id, sites, write_record, ArgKind, ArgList,
        ArgValue, Bprint, BprintArg, ConvText, FromSite, KindsSource, Site, SiteKinds,
        AMBIGUOUS_FORMAT, BPRINT_ARGS_OFFSET, BPRINT_EVENT, FMT_ADDR_BASE, IP_BASE, MAX_SITES,
        MAX_WIDTH, PRINT_EVENT,
    };
    #[doc(hidden)]
    pub mod fits {
        pub use crate::record::printk::fits::*;
    }
}

/// Event types: static metadata (ftrace's `format` text), the [`Record`]
/// trait every recordable value implements, the registry of ids, and the
/// common fields every record starts with. Typed events are declared with
/// [`declare_event!`](crate::declare_event).
///
/// [`Record`]: event::Record
///
/// ```
/// ringtrace::declare_event! {
///     /// A packet seen.
///     pub struct Packet: "net" / "packet" = 1200 { len: u32, port: u16 }
/// }
/// use ringtrace::event::Record;
/// let ty = Packet { len: 0, port: 0 }.event_type();
/// assert!(ty.format_text().contains("field:u32 len;"));
/// ```
pub mod event {
    pub use crate::record::event::*;
    // `declare_event!`'s expansion (field layout at compile time): public
    // because the macro needs a path, not part of the API.
    #[doc(hidden)]
    pub use crate::record::event::{layout, valid_user_id, FieldDecl, Layout};
}
pub use tracer::clock;

/// Per-thread contexts, signal-handler nesting, the record path
/// ([`tracer::context`]).
pub mod context {
    // What `trace!` without a tracer expands to: the macro needs a path.
    #[doc(hidden)]
    pub use crate::default_tracer::record_global;
    pub use crate::tracer::context::*;
}

pub use context::{signal_scope, ContextHandle, RecordError, Target};
pub use default_tracer::{global, init, trace_marker};
pub use export::{Drain, ExportFormat};
#[doc(no_inline)]
pub use reader::{Pipe, RawPipe};
/// The lockless ring buffer the tracer is built on (the `ringtrace-ring`
/// crate): pages, writers, readers, exact accounting. Use it directly for a
/// ring without the tracing core.
///
/// ```
/// use ringtrace::ring::{Config, RingBuffer};
/// let buf = RingBuffer::new(Config::new(1)).unwrap();
/// buf.writer(0).unwrap().write(1, b"event").unwrap();
/// let s = buf.stats(0).unwrap();
/// assert_eq!(s.written, s.read + s.overrun + s.dropped + s.commit_overrun + s.entries);
/// assert_eq!(s.entries, 1);
/// ```
pub use ringtrace_ring as ring;
/// The ring mode ([`TracerConfig::mode`]): `Overwrite` (flight recorder) or
/// `ProducerConsumer` (new events are dropped when a ring is full).
#[doc(no_inline)]
pub use ringtrace_ring::Mode;
#[doc(no_inline)]
pub use snapshot::{Snapshot, SnapshotError};
pub use tracer::{Tracer, TracerConfig, TracerError, TracerStats};
#[doc(no_inline)]
pub use view::View;
