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

/// The heavy half of an asymmetric fence (Linux `membarrier`, what
/// `synchronize_rcu` is to the kernel's writers): when it returns, every
/// thread of this process has executed a full memory barrier since it was
/// called. A writer that orders a store before a load with only
/// [`signal_fence`] is then ordered against the caller as if both had used
/// `SeqCst` fences: either the caller sees the writer's store, or the
/// writer's load sees what the caller stored before calling.
///
/// `shared`: the region is mapped by other processes too; their threads are
/// covered only by the global barrier (milliseconds), used then.
///
/// Without `membarrier` (old kernels, seccomp) it falls back to a `SeqCst`
/// fence and a 10 ms sleep: stores drain from store buffers in nanoseconds,
/// so this is a practical bound, not a proof.
pub(crate) fn heavy_barrier(shared: bool) {
    fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    {
        use rustix::thread::{membarrier, MembarrierCommand};
        use std::sync::OnceLock;
        static PRIVATE: OnceLock<bool> = OnceLock::new();
        if !shared {
            let registered = *PRIVATE
                .get_or_init(|| membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok());
            if registered && membarrier(MembarrierCommand::PrivateExpedited).is_ok() {
                return;
            }
        }
        if membarrier(MembarrierCommand::Global).is_ok() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
        fence(Ordering::SeqCst);
    }
}

/// The light half of the asymmetric fence paired with [`heavy_barrier`]:
/// a compiler fence, which the heavy barrier (membarrier) turns into a full
/// fence when it matters. Loom does not model membarrier, so under
/// `cfg(loom)` this is the `SeqCst` fence the pairing stands for.
#[inline(always)]
pub(crate) fn light_barrier() {
    #[cfg(not(loom))]
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
    #[cfg(loom)]
    fence(Ordering::SeqCst);
}
