//! Who holds a ring's reader lock, and whether that holder still lives.
//!
//! The lock word (`ReaderState::lock`, one u64) names its holder, so that
//! a reader that died holding it (`kill -9` of a `ringtrace pipe`) is told
//! from one that reads, without any help from the dead process:
//!
//! ```text
//!   bits 32..64  pid of the holding process (0: an anonymous holder in
//!                this process: `control::OwnerLock`, a ring swap, stores 1)
//!   bits  0..32  low 32 bits of the holder's start time, field 22 of
//!                /proc/PID/stat (clock ticks since boot); 0 when unknown
//! ```
//!
//! The start time tells a recycled pid from the holder: a process with the
//! holder's pid but another start time is not the holder, which is dead.
//! A holder is judged:
//!
//! - in this process (same pid and start time, or pid 0): alive; waited
//!   for a bounded time (it may be handing the ring over), then an error;
//! - another process, alive with that start time: an error naming it
//!   (pid and `/proc/PID/comm`), never a wait;
//! - gone, a zombie, or another start time: dead; its word is taken over
//!   with one compare-and-swap (two readers racing for it: one wins);
//! - in a buffer that is not shared (heap), any other pid: a copy left by
//!   `fork`; the holder reads its own copy, never ours: taken over.
//!
//! When `/proc` cannot be read, nobody is judged dead (taking over a live
//! reader's ring would let two readers swap pages at once): the error
//! names the holder's pid, and `force_release_readers` remains.

#[cfg(not(loom))]
use crate::sync::Ordering::Relaxed;
use crate::ReaderHolder;

/// How long a consumer waits for a reader of this same process to let the
/// ring go (another thread dropping its `Consumer`, a ring swap) before it
/// fails with `RingError::ReaderHeld`.
#[cfg(not(loom))]
pub(crate) const IN_PROCESS_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The lock word of a holder.
#[inline]
pub(crate) fn holder_word(pid: u32, start: u32) -> u64 {
    (u64::from(pid) << 32) | u64::from(start)
}

/// `holder_word(pid, start)` of the process that last read its own start
/// time (0 before). A forked child inherits its parent's: the pid in it
/// then differs from the child's, which reads its own. Relaxed: the value
/// is a function of the process alone; a thread that sees an old one
/// reads /proc again and stores the same.
#[cfg(not(loom))]
static OWN: crate::sync::AtomicU64 = crate::sync::AtomicU64::new(0);

/// This process's start time (low 32 bits; 0 when /proc cannot tell),
/// reading /proc the first time (allocates: not for a signal handler).
pub(crate) fn own_start() -> u32 {
    #[cfg(not(loom))]
    {
        let pid = std::process::id();
        let cached = cached_start();
        if cached != 0 {
            return cached;
        }
        let start = proc_stat(pid).map_or(0, |(_, start)| start as u32);
        OWN.store(holder_word(pid, start), Relaxed);
        start
    }
    #[cfg(loom)]
    0
}

/// This process's start time if already read (see `own_start`), else 0
/// (unknown: a holder whose word says so is judged by its pid alone).
/// Reads nothing, allocates nothing: safe in a signal handler.
pub(crate) fn cached_start() -> u32 {
    #[cfg(not(loom))]
    {
        let w = OWN.load(Relaxed);
        if (w >> 32) as u32 == std::process::id() {
            w as u32
        } else {
            0
        }
    }
    #[cfg(loom)]
    0
}

/// What a held lock word says about its holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Loom models have one process: every holder is in it.
#[cfg_attr(loom, allow(dead_code))]
pub(crate) enum Holder {
    /// A reader of this process (or an anonymous in-process holder).
    InProcess,
    /// A live reader of another process.
    Alive(ReaderHolder),
    /// The holder (this pid) is dead: take the word over.
    Dead(u32),
}

/// Judges the holder of lock word `word` (non-zero), for a reader of
/// process `me` in a buffer that is `shared` between processes or not.
pub(crate) fn judge(word: u64, me: u32, shared: bool) -> Holder {
    let pid = (word >> 32) as u32;
    let start = word as u32;
    if pid == 0 {
        return Holder::InProcess;
    }
    #[cfg(loom)]
    {
        let _ = (me, shared, start);
        Holder::InProcess
    }
    #[cfg(not(loom))]
    {
        if pid == me {
            let mine = own_start();
            // Our pid with another start time: an earlier process that had
            // our pid held it and died.
            return if start == 0 || mine == 0 || start == mine {
                Holder::InProcess
            } else {
                Holder::Dead(pid)
            };
        }
        if !shared {
            // A private buffer seen in a forked child (or its parent):
            // the other process holds its own copy's lock, not ours.
            return Holder::Dead(pid);
        }
        if own_start() == 0 {
            // /proc unusable: never judge anyone dead.
            return Holder::Alive(ReaderHolder::new(pid, false, ""));
        }
        match proc_stat(pid) {
            None => Holder::Dead(pid),
            Some((state, _)) if state == 'Z' || state == 'X' => Holder::Dead(pid),
            Some((_, now)) if start != 0 && now as u32 != start => Holder::Dead(pid),
            Some(_) => Holder::Alive(ReaderHolder::new(pid, false, &comm(pid))),
        }
    }
}

/// The holder to name when a reader of this process holds the ring.
pub(crate) fn this_process(pid: u32) -> ReaderHolder {
    #[cfg(not(loom))]
    {
        ReaderHolder::new(pid, true, &comm(pid))
    }
    #[cfg(loom)]
    ReaderHolder::new(pid, true, "")
}

/// The holder `pid` named as well as can be (for an error); pid 0 is the
/// anonymous holder (a ring swap, or a damaged word in shared memory).
pub(crate) fn named(pid: u32, me: u32) -> ReaderHolder {
    if pid == 0 {
        return ReaderHolder::new(0, false, "");
    }
    if pid == me {
        return this_process(me);
    }
    #[cfg(not(loom))]
    {
        ReaderHolder::new(pid, false, &comm(pid))
    }
    #[cfg(loom)]
    ReaderHolder::new(pid, false, "")
}

/// Whether process `pid` is gone (or a zombie): used for a `busy` word a
/// consumer left (pids only: a recycled pid looks alive, and the word is
/// then taken over after `STALE_BUSY` as before).
#[cfg(not(loom))]
pub(crate) fn process_gone(pid: u32) -> bool {
    if own_start() == 0 {
        return false; // /proc unusable: cannot tell.
    }
    match proc_stat(pid) {
        None => true,
        Some((state, _)) => state == 'Z' || state == 'X',
    }
}

/// State (field 3) and start time (field 22) of `pid`, from
/// `/proc/PID/stat`. The command (field 2) is in parentheses and may hold
/// spaces and parentheses: fields are counted after the last `)`.
#[cfg(not(loom))]
pub(crate) fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // `fields` is at field 4 now; field 22 is 18 further.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

/// `/proc/PID/comm` without its newline; empty when unreadable.
#[cfg(not(loom))]
fn comm(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|s| s.trim_end_matches('\n').to_owned())
        .unwrap_or_default()
}

/// Waits for a reader of this process to let the ring go, bounded by
/// `IN_PROCESS_WAIT` (by a few rounds under loom, which has no clock).
pub(crate) struct InProcessWait {
    #[cfg(not(loom))]
    since: Option<std::time::Instant>,
    #[cfg(loom)]
    rounds: u32,
}

impl InProcessWait {
    pub(crate) fn new() -> InProcessWait {
        InProcessWait {
            #[cfg(not(loom))]
            since: None,
            #[cfg(loom)]
            rounds: 0,
        }
    }

    /// True once the wait has lasted its bound (the first call starts it).
    pub(crate) fn expired(&mut self) -> bool {
        #[cfg(not(loom))]
        {
            let since = *self.since.get_or_insert_with(std::time::Instant::now);
            since.elapsed() > IN_PROCESS_WAIT
        }
        #[cfg(loom)]
        {
            self.rounds += 1;
            self.rounds > 3
        }
    }
}
