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
mod sync;
pub mod tracer;

pub mod export;
mod fmt;
pub mod kernel_bench;
mod read;

pub use export::{json, tracedat};
pub use fmt::{line as output, text};
pub use read::{dump, pipe as reader, snapshot, view};

#[cfg(feature = "tracing")]
pub use frontends::layer;
#[cfg(feature = "log")]
pub use frontends::log_backend;
pub use record::{event, printk, span};
pub use tracer::clock;

/// Per-thread contexts, signal-handler nesting, the record path
/// ([`tracer::context`]), and [`record_global`](context::record_global),
/// what `trace!` without a tracer expands to.
pub mod context {
    pub use crate::default_tracer::record_global;
    pub use crate::tracer::context::*;
}

pub use context::{signal_scope, ContextHandle, RecordError, Target};
pub use default_tracer::{global, init, trace_marker};
pub use export::{Drain, ExportFormat};
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
pub use ringtrace_ring::Mode;
pub use snapshot::{Snapshot, SnapshotError};
pub use tracer::{Tracer, TracerConfig, TracerError, TracerStats};
pub use view::View;
