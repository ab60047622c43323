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
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod clock;
pub mod event;
pub mod printk;
pub mod text;
pub mod tracedat;
