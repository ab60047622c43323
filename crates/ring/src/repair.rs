//! Post-mortem repair: tools that break the readers' protocol on purpose,
//! for a buffer whose readers died or are stuck, once no live process
//! reads it.
//!
//! # Contract
//!
//! Everything here is `unsafe`: each tool is sound only under a condition
//! the buffer cannot check (no live reader), and misuse lets two readers
//! swap pages under each other, a data race on page memory. Recovery that
//! the buffer *can* check needs none of this: [`crate::RingBuffer::consumer`]
//! takes over the reader lock of a reader that died, and
//! [`crate::RingBuffer::recover_dead_writer`] finishes a dead writer's
//! events.

use crate::RingBuffer;

/// Releases the reader locks of every ring of `buf`, whoever holds them,
/// for a private copy of a shared buffer or a reader the user knows is
/// stuck.
///
/// # Safety
///
/// No consuming reader of `buf` may be alive, in this process or (for a
/// shared buffer) in another one, nor start before this returns: a reader
/// whose lock is released keeps reading its page while the next reader
/// swaps that page back into the ring for writers to overwrite.
///
/// ```
/// use ringtrace_ring::{repair, Config, RingBuffer};
/// let buf = RingBuffer::new(Config::new(1)).unwrap();
/// let stuck = buf.consumer(0).unwrap();
/// std::mem::forget(stuck); // a reader that will never release its lock
/// assert!(buf.consumer(0).is_err());
/// // SAFETY: the forgotten reader never runs again; no other reader exists.
/// unsafe { repair::force_release_readers(&buf) };
/// assert!(buf.consumer(0).is_ok());
/// ```
pub unsafe fn force_release_readers(buf: &RingBuffer) {
    buf.force_release_readers();
}
