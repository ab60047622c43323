//! The export room: recorded events written as files other tools open.
//!
//! # Terms
//!
//! - **Drain** ([`Drain`], in `drain.rs`): a streaming export of a live tracer (or of a
//!   snapshot) to trace.dat or Chrome JSON with bounded memory.
//! - **HTML** ([`html`]): a self-contained page drawing the trace as a
//!   timeline, with a summary.
//! - **JSON** ([`json`]): Chrome trace-event JSON, streamed.
//! - **Perfetto** ([`perfetto`]): native Perfetto protobuf, streamed.
//! - **trace.dat** ([`tracedat`]): trace-cmd's file format, versions 6 and
//!   7: writer, bounded reader, page decoder, `format` parser.
//!
//! # Contract
//!
//! The export room sits above the read, fmt, tracer and record rooms; the
//! sessions use its trace.dat format parser. It writes page images as the
//! ring holds them, so the files carry exactly what was committed.

mod access;
pub mod callsite;
mod drain;
pub mod html;
pub mod json;
pub mod perfetto;
mod records;
mod symbols;
pub mod tracedat;
mod view;

pub use drain::*;
// The drain's and the view export's internals: public for the other
// rooms and the CLI's recovery, not part of the API.
#[doc(hidden)]
pub use drain::{Packed, PagePacker, MAX_FINAL_POLLS, UNFINISHED_MAGIC};
