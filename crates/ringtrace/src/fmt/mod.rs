//! The fmt room: what people read. ftrace's text line formats, rendered
//! into any `fmt::Write` or `io::Write` without allocating per event.
//!
//! # Terms
//!
//! - **Text** ([`text`]): pure functions over plain values: the `trace`
//!   file's header lines and per-event lines, `[LOST n EVENTS]` lines,
//!   time stamps and the per-ring `stats` text.
//! - **Printf** ([`printf`]): the one C-printf renderer of binary printk
//!   arguments (the kernel's `bstr_printf`), allocation-free.
//! - **Compiled** (`compiled`): printk formats parsed once, with fast
//!   forms of the plain conversions, for the pipe.
//! - **Typed** (`typed`): typed events' lines prepared once per type, for
//!   the pipe.
//! - **Function graph** (`funcgraph`): the function tracers' lines, as
//!   trace-cmd prints them.
//! - **Printk** ([`printk`]): printk and marker records read back, and
//!   trace.dat's `printk_formats` and `kallsyms` texts.
//!
//! # Contract
//!
//! The fmt room imports the record room only: it formats plain values and
//! records, never a live tracer (a recorded event rendered with its
//! tracer's thread names and clock is the read room's `line`). Readers,
//! exporters and the CLI render through it, so each line format has one
//! definition.

pub(crate) mod compiled;
pub(crate) mod funcgraph;
pub mod printf;
pub mod printk;
pub mod text;
pub(crate) mod typed;
