//! `ringtrace-ring`: the Linux kernel's lockless tracing ring buffer
//! (ftrace's `kernel/trace/ring_buffer.c` after "ring-buffer: make
//! lockless"), re-created in user space.
//!
//! A [`RingBuffer`] holds one ring per writer context (a thread and the
//! signal handlers that interrupt it). Each ring is a circular list of pages
//! plus one page owned by the reader. Writers reserve, fill and commit
//! variable-length events without locks, and may nest inside each other as
//! signal handlers do; the head page is marked by HEAD/UPDATE flag bits in the
//! link to it and moved with compare-and-swap; a reader swaps its spare page
//! in. Rings run as a flight recorder ([`Mode::Overwrite`]) or as
//! producer/consumer ([`Mode::ProducerConsumer`]).
//!
//! Pages and events use the kernel's binary format ([`mod@format`]), so pages
//! leave the process unchanged (trace-cmd's `trace.dat`, shared memory).
//!
//! # Guarantees
//!
//! - A write never locks, allocates, makes a system call, blocks or waits for
//!   a reader; it is async-signal-safe.
//! - **Exact accounting.** Every attempted write is, exactly once, read,
//!   counted as overrun, dropped, commit overrun, or still buffered:
//!   `written == read + overrun + dropped + commit_overrun + entries`
//!   ([`RingStats`]), with nested writers at any step of the write path.
//! - **Every loss is reported before any event written after it.** The
//!   losses a reader is told of ([`Event::lost_events`]) up to an event
//!   include every event written before it that the reader will never get;
//!   once the writers stop and the ring is drained, the losses reported
//!   plus [`Consumer::pending_losses`] equal `overrun + dropped +
//!   commit_overrun`.
//! - **Recovery after a kill is exact.** After a writer dies at any
//!   instruction, nested writes included, [`RingBuffer::recover_dead_writer`]
//!   leaves the ring consistent with both promises above: the in-flight
//!   events are counted as dropped and reported, and none is counted twice
//!   or made up.
//! - Readers never panic and never wrap on counter values read from shared
//!   memory: sums saturate, and a sum that would overflow counts a
//!   corruption.
//!
//! Each promise is tested as stated: signal storms with a reader running
//! (`tests/storm.rs`), a nested write at each labelled step of the write path
//! (unit tests and the `loom_push` model), a forked writer killed at every
//! labelled step then recovered (`crash_tests.rs`), and every counter
//! scribbled to 0, 1, `u64::MAX - 1` and `u64::MAX` (`overflow_tests.rs`).
//! - Readers see committed events only, in order, with time stamps that never
//!   go backwards within a ring.
//!
//! Not guaranteed: payload lengths are stored rounded up to 4 bytes (the
//! format has no exact length); nested events carry the time stamp of the
//! event they interrupted.
//!
//! ```
//! use ringtrace_ring::{Config, RingBuffer};
//!
//! let buf = RingBuffer::new(Config::new(2)).unwrap();
//! let mut w = buf.writer(0).unwrap();
//! w.write(1_000, b"first").unwrap();
//! let mut r = w.reserve(2_000, 8).unwrap();
//! r.copy_from_slice(&42u64.to_le_bytes());
//! r.commit();
//!
//! let mut c = buf.consumer(0).unwrap();
//! let first = c.consume().unwrap().unwrap();
//! assert_eq!((first.timestamp, &first.payload[..5]), (1_000, &b"first"[..]));
//! let second = c.consume().unwrap().unwrap();
//! assert_eq!(second.timestamp, 2_000);
//! assert!(c.consume().unwrap().is_none());
//! ```
#![deny(unsafe_op_in_unsafe_fn, missing_docs, missing_debug_implementations)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod buffer;
mod control;
mod error;
pub mod format;
mod iter;
mod layout;
mod page_read;
#[cfg(not(loom))]
pub mod percpu;
mod pool;
mod read;
pub mod repair;
mod sync;
mod wait;
mod write;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod overflow_tests;
#[cfg(test)]
mod tests;

/// The write path's step hook, for loom models in `tests/`: a function run
/// at each labelled step of the write path on the calling model thread (a
/// nested write there plays a signal handler). Not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_hook {
    pub use crate::write::Label;

    /// Sets (or clears) the current thread's hook.
    pub fn set(f: Option<fn(Label)>) {
        crate::write::hook::HOOK.with(|h| h.set(f));
    }
}

pub use buffer::{Config, Mode, RingBuffer, RingStats};
pub use control::CONTROL_TIMEOUT;
pub use error::{
    ConfigError, ControlError, OpenError, ReadError, ReaderHolder, RingError, WriteError,
};
pub use iter::{IterEvent, RingIter};
pub use layout::MAX_NEST;
pub use page_read::{PageInfo, ReadPage};
pub use read::{Consumer, Event, PeekMark};
pub use wait::{WaitFor, WAIT_SLICE};
#[doc(hidden)]
pub use write::GeometrySource;
pub use write::{Reservation, Writer};
