//! Per-CPU rings on restartable sequences (rseq): one ring per possible CPU,
//! written by whichever thread runs on that CPU, in the kernel's page format.
//!
//! # Terms
//!
//! - **Tail word** (one per CPU): `seq << 32 | off`. `seq` counts the pages
//!   opened so far (the current page is `seq - 1`, in slot `(seq - 1) %
//!   pages`; 0: none yet); `off` is the number of committed data bytes in
//!   the current page. Only a writer's final store changes it, and it only
//!   grows.
//! - **Stamp** (per CPU): `(at, ts)`, the time of the last committed event,
//!   valid only while `at` equals the tail word. It lets the next event store
//!   a delta, as the kernel's `write_stamp` does.
//! - **Head** (per CPU, reader-owned): pages `< head` are read and free.
//!
//! # The write, and why an abort is never seen
//!
//! ```text
//!  outside:  cpu = rseq.cpu_id; tail = T (Acquire); head; stamp (at, ts, at)
//!            ts = clock(); plan the event (see below)
//!  section:  K cpu still ours?  T tail still T?  C copy event at T's offset
//!            S extra stores     P tail = T'           (write: cs.rs)
//!  planning: fits in the current page  -> append at off, delta from stamp
//!            (or an absolute time stamp record when the stamp is not T's)
//!            does not fit, next slot free -> page switch in the same
//!            section: S stores the old page's commit word and the new
//!            page's header; the event goes at offset 0; T' = (seq + 1, len)
//!            next slot not read yet -> dropped (producer/consumer), counted
//! ```
//!
//! Every byte written before P lies where no reader looks: past the tail
//! in the current page, in a page not yet published, or in the stamp (which
//! names the tail it belongs to). The kernel aborts the section on
//! preemption, migration and signal delivery; the writer then plans again
//! from the top on whatever CPU it is on. A signal handler that records is
//! an ordinary writer: the section it interrupted was aborted before it ran.
//! Nothing here waits, locks, allocates or makes a system call; retries are
//! bounded ([`MAX_ATTEMPTS`]) and a give-up is counted.
//!
//! Readers (one at a time per CPU, [`PerCpuConsumer`]) load the tail with
//! Acquire: pages before the current one are complete (their commit word
//! was stored before the P that closed them), the current one is read up to
//! `off`. Releasing a page stores `head` (Release), which a writer loads
//! before reusing the slot.
//!
//! # Choices
//!
//! Chosen: the whole write (reserve, copy, commit) is one section whose
//! last store is the reservation and the commit at once, as librseq's
//! `rseq_load_cbne_memcpy_store__ptr` and the selftests' per-CPU memcpy
//! buffer do. The page switch is not a separate slow path: it is the same
//! section with more stores, so it cannot deadlock with a handler on the
//! same CPU (there is nothing to wait for).
//!
//! Rejected:
//! - *Reserve in a section, fill and commit outside* (LTTng-UST's per-CPU
//!   ring, which reserves with a per-CPU cmpxchg and commits with a per-CPU
//!   counter): a writer preempted between reserve and commit leaves a hole
//!   that blocks the reader until it resumes, possibly on another CPU, and
//!   needs the commit counters and "commit overrun" handling of the
//!   per-thread ring. Copy-in-section avoids both, at the cost of copying
//!   the record from the writer's buffer.
//! - *A per-CPU owner word taken in a section, then the per-thread ring's
//!   write path*: a preempted owner blocks the CPU's ring for every other
//!   thread (they would have to refuse events).
//! - *Atomic read-modify-write on a shared tail* (no rseq): `lock`-prefixed
//!   instructions on every event, and writers on one CPU no longer nest.
//!
//! # Limits (not done yet)
//!
//! Producer/consumer mode only: overwrite (pushing the oldest unread page)
//! is not implemented. A record must fit one page ([`PerCpuRing::max_payload`]).
//! Losses are counted in [`PerCpuStats`], not yet flagged in page headers.
//! Only glibc's own registration is used (see [`rseq`]). x86_64 only; other
//! architectures compile and report [`Unavailable::Arch`].

mod cpus;
mod cs;
#[cfg(test)]
mod model_tests;
mod read;
pub mod rseq;
mod storage;
mod write;

pub use cpus::{parse_cpu_list, possible_cpus, POSSIBLE};
pub use read::{PerCpuConsumer, PerCpuEvent, PerCpuReadError};
pub use rseq::{RseqAbi, Unavailable};
pub use storage::{PerCpuConfig, PerCpuConfigError, PerCpuRing, PerCpuStats};
pub use write::{PerCpuWriteError, MAX_ATTEMPTS};

/// Why a per-CPU ring could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PerCpuError {
    /// rseq cannot be used here: fall back to per-thread rings.
    #[error("per-CPU rings unavailable: {0}")]
    Unavailable(#[from] Unavailable),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] PerCpuConfigError),
}
