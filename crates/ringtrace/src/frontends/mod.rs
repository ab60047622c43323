//! The front-ends room: adapters that let other instrumentation crates
//! record into ringtrace.
//!
//! - `layer`: a `tracing_subscriber::Layer` (crate feature `tracing`).
//! - `log_backend`: a `log::Log` backend (crate feature `log`).
//! - `funcgraph`: what `#[ringtrace::traced]` expands to (the function
//!   tracers); unlike the others it is async-signal-safe.
//! - `frontend` (private): what both share, the per-thread record buffer
//!   and the event types they build at run time.
//!
//! # Contract
//!
//! Front ends sit on top: they record through the tracer's public record
//! path and the record room's event types, and nothing below imports them.
//! They are not async-signal-safe (the crates they adapt allocate and lock).

#[cfg(feature = "tracing")]
mod dynamic_types;
#[cfg(any(feature = "tracing", feature = "log"))]
mod frontend;
pub mod funcgraph;
#[cfg(feature = "tracing")]
pub mod layer;
#[cfg(feature = "tracing")]
mod layer_file;
#[cfg(feature = "log")]
pub mod log_backend;
#[cfg(feature = "tracing")]
mod span_close;
