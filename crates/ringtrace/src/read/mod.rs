//! The read room: the ways to read a live tracer's rings back.
//!
//! # Terms
//!
//! - **Pipe**: the merged consuming reader across all contexts, the
//!   kernel's `trace_pipe` ([`pipe`]); `RawPipe` hands out whole pages of
//!   one context (`trace_pipe_raw`).
//! - **View**: the merged non-consuming reader, the kernel's `trace` file
//!   ([`view`]).
//! - **Snapshot**: the live rings swapped with a spare set, read at leisure
//!   ([`snapshot`]).
//! - **Dump**: every ring to stderr on panic or fatal signal, the kernel's
//!   `ftrace_dump_on_oops` ([`dump`]).
//!
//! - **Line** ([`line`]): a recorded event (its common fields, its type's
//!   format or its printk site) rendered as an ftrace text line, with the
//!   tracer's thread names and clock.
//!
//! # Contract
//!
//! The read room sits above the tracer and the record room and below the
//! export room and the sessions: it imports `tracer`, `record` and `fmt`,
//! and nothing imports it but the rooms above.

pub mod dump;
pub mod line;
pub mod pipe;
pub mod snapshot;
pub mod view;
