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

/// Adds `v` to `a` and returns the previous value, atomically with respect
/// to signal handlers that interrupt the current thread, but not with
/// respect to other threads: the kernel's `local_add_return` on a
/// `local_t`, which its ring buffer uses for the same word.
///
/// For a word that only one thread (and the handlers nested on it) changes
/// while others may load it, as a page's write word: only the ring's writer
/// adds to it (the reader changes a page only once the writers have left it,
/// and control operations only on a quiesced ring). Other threads then see
/// an add as a relaxed load followed by a relaxed store of the sum, which
/// is all they can tell apart; a handler cannot run between the two,
/// because on x86-64 they are one instruction, `xadd` without the `lock`
/// prefix, and a signal is delivered between instructions. The only
/// read-modify-write another thread makes on the word, the iterator's
/// `fetch_add(0)` (`iter.rs`), writes back what it read, atomically, so
/// no add is lost to it either.
///
/// Why not `fetch_add`: a `lock`ed instruction is a full barrier on x86-64.
/// It waits for every earlier store to leave the store buffer, and the
/// writer's earlier stores are to the event bytes and the page's `commit`,
/// whose cache lines the reader on the other core is reading: the writer
/// then waits for those lines to come back once per event. Without the
/// barrier the stores drain in the background (x86-64 keeps them in order,
/// so the ring's Release stores still publish them).
///
/// Elsewhere it is a relaxed `fetch_add`; under `cfg(loom)` too: the models
/// run a nested write on the writer's own thread between two steps of the
/// outer one, never inside the add, which is what the one instruction gives
/// a handler; the readers' side of the word is unchanged.
#[inline(always)]
pub(crate) fn local_fetch_add(a: &AtomicU64, v: u64) -> u64 {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        let mut old = v;
        // SAFETY: `a.as_ptr()` is valid, aligned memory of an `AtomicU64`
        // that lives for the call. The instruction reads and writes those
        // 8 bytes and nothing else; it is not `nomem`, so the compiler
        // keeps other memory accesses on their side of it, as for the
        // signal fence that surrounds every use.
        unsafe {
            std::arch::asm!(
                "xadd qword ptr [{a}], {old}",
                a = in(reg) a.as_ptr(),
                old = inout(reg) old,
                options(nostack),
            );
        }
        old
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    {
        a.fetch_add(v, Ordering::Relaxed)
    }
}

/// Asks the CPU to fetch the cache line `AHEAD` bytes past `p` for writing
/// (x86-64 `prefetchw`): a hint that changes no memory and never faults,
/// whatever the address. The writer uses it a little ahead of the events it
/// reserves: the ring's lines were last read by the reader, on another
/// core, a lap ago, and taking them back then starts early instead of when
/// the stores reach them (where it stalls the writer once its store buffer
/// is full). The offset is the instruction's displacement: no pointer
/// arithmetic, so an address past the region is no concern, and no
/// instruction to compute it.
///
/// A no-op elsewhere and under `cfg(loom)`. On x86-64 CPUs without the
/// instruction its encoding is a `nop`.
#[inline(always)]
pub(crate) fn prefetch_for_write<const AHEAD: usize>(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    // SAFETY: a prefetch reads and writes no memory (it cannot fault, even
    // on an invalid address) and touches no register but its operand.
    unsafe {
        std::arch::asm!(
            "prefetchw byte ptr [{p} + {ahead}]",
            p = in(reg) p,
            ahead = const AHEAD,
            options(nostack, readonly, preserves_flags),
        );
    }
    #[cfg(not(all(target_arch = "x86_64", not(loom))))]
    let _ = p;
}
