//! The fmt room: what people read. ftrace's text line formats, rendered
//! into any `fmt::Write` or `io::Write` without allocating per event.
//!
//! # Terms
//!
//! - **Text** ([`text`]): pure functions over plain values: the `trace`
//!   file's header lines and per-event lines, `[LOST n EVENTS]` lines,
//!   time stamps and the per-ring `stats` text.
//! - **Line** ([`line`]): a recorded event (its common fields, its type's
//!   format or its printk site) rendered as one of those lines.
//! - **Printf** ([`printf`]): the one C-printf renderer of binary printk
//!   arguments (the kernel's `bstr_printf`), allocation-free.
//! - **Printk** ([`printk`]): printk and marker records read back, and
//!   trace.dat's `printk_formats` and `kallsyms` texts.
//!
//! # Contract
//!
//! The fmt room imports the record room and nothing above it but the
//! tracer's read-only accessors used by [`line`]; readers, exporters and
//! the CLI render through it, so each line format has one definition.

pub mod line;
pub mod printf;
pub mod printk;
pub mod text;
