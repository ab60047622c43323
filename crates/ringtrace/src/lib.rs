//! ringtrace: the tracing core on top of `ringtrace-ring`.
//!
//! This crate is being built up module by module. What exists today:
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
//! - [`session`]: rings and tables in shared memory, read from another
//!   process live or after the program died (`ringtrace record`).
//!
//! Not yet: the merged non-consuming view (the kernel's `trace` file), raw
//! page reads (`trace_pipe_raw`) and snapshots; they wait for the ring's
//! non-consuming iterator, page reads and ring swap.
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod clock;
pub mod event;
pub mod printk;
pub mod text;
pub mod tracedat;

pub mod context;
pub mod dump;
pub mod export;
pub mod json;
mod macros;
pub mod output;
pub mod reader;
pub mod session;
pub mod tracer;

pub use context::{signal_scope, trace_marker, ContextHandle, RecordError, Target};
pub use export::{Drain, ExportFormat};
pub use reader::Pipe;
pub use tracer::{global, init, Tracer, TracerConfig, TracerError, TracerStats};
