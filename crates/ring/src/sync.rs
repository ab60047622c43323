//! The one sync facade: every atomic the ring uses comes from here.
//!
//! In production these are `std`'s atomics; under `cfg(loom)` they are loom's,
//! so the model checker sees every load, store and compare-and-swap of the
//! head-page and commit protocols. Nothing else in the crate imports
//! `std::sync::atomic` directly.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// Orders memory operations with respect to a signal handler that runs on the
/// current thread (C's `atomic_signal_fence`). Costs no instruction: it only
/// stops the compiler from moving loads and stores across it.
///
/// Loom models no signal handlers, so under `cfg(loom)` this is a no-op.
#[inline(always)]
pub(crate) fn signal_fence() {
    #[cfg(not(loom))]
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// Back off inside a bounded retry loop that waits for another thread.
#[inline]
pub(crate) fn backoff(round: u32) {
    #[cfg(loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        if round < 64 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
}
