//! Stack traces on events, the tracer's side: when a tracer has
//! [`TracerConfig::stacktrace`](super::TracerConfig::stacktrace) on, each
//! event its implicit per-thread contexts write is followed by a
//! `user_stack` record of the caller's stack ([`crate::stack`]).
//!
//! Contract: async-signal-safe, as the record path. A thread's stack bounds
//! are taken on its first ordinary event (never in a handler, where
//! `pthread_getattr_np` could allocate); an event whose stack cannot be
//! walked (a handler on a thread with no bounds yet, code without frame
//! pointers) is still followed by a `user_stack` record, with no callers,
//! and counted in [`no_stack_count`]: a missing stack is never silent.

use std::sync::Arc;

use super::context::{nested, record_event};
use super::Inner;
use crate::record::stack::{init_thread, thread_ready, walk, UserStack, STACK_ENTRIES};
use crate::sync::{AtomicU32, AtomicU64, Ordering};

/// Events followed by an empty `user_stack` record (no frame walked).
/// Relaxed: a statistic, ordered with nothing.
static NO_STACK: AtomicU64 = AtomicU64::new(0);

/// The process id for the records' `tgid`, taken in ordinary code (0:
/// not yet). Relaxed: a plain value, the same for every thread.
static TGID: AtomicU32 = AtomicU32::new(0);

/// Events so far whose `user_stack` record holds no caller.
pub fn no_stack_count() -> u64 {
    NO_STACK.load(Ordering::Relaxed)
}

/// Whether `RINGTRACE_STACKTRACE=1` asks a session writer for stack
/// traces (set by `ringtrace record --stacktrace` for its program).
pub(crate) fn wanted_by_env() -> bool {
    std::env::var_os("RINGTRACE_STACKTRACE").is_some_and(|v| v == "1")
}

/// Records the stack of the caller of the record path after its event.
/// Out of line: the record path pays one load and a branch when stack
/// traces are off.
#[cold]
#[inline(never)]
pub(super) fn after_event(inner: &Arc<Inner>) {
    if !thread_ready() && !nested() {
        // Ordinary code: may allocate (module docs).
        init_thread();
        TGID.store(std::process::id(), Ordering::Relaxed);
    }
    let mut callers = [0u64; STACK_ENTRIES];
    // Skip the return into this function: the first caller kept is the
    // code that recorded the event.
    if walk(1, &mut callers) == 0 {
        NO_STACK.fetch_add(1, Ordering::Relaxed);
    }
    let rec = UserStack {
        tgid: TGID.load(Ordering::Relaxed),
        callers,
    };
    // A refusal here is counted by the record path like any other.
    let _ = record_event(inner, &rec);
}
