//! The writer processes of a session: their table, whether each still
//! runs, the refusals they count, and taking back what a gone process
//! held (its lease slots, its process-table entry, its handed-back rings).
//!
//! # Terms
//!
//! - **Entry**: one process-table slot {pid, state, start time}; state
//!   `FREE`, `RUNNING`, `EXITED` (detached cleanly) or `CLAIMING` (being
//!   taken over). A lease slot names its leaseholder as entry + 1.
//! - **Gone**: an entry's process no longer runs: its pid does not exist,
//!   belongs to a process with another start time, or is a zombie with no
//!   live thread. **Dead**: gone while still `RUNNING` (it never detached).
//! - **Reclaim**: repair a `LEASED` ring of a gone process and hand it back
//!   as `EXITED`; **take over**: reuse a gone process's entry, or lease a
//!   ring it handed back without draining it.
//!
//! # Contract
//!
//! (The state diagrams are in the docs of [`super`], "Liveness" and
//! "Leases of dead processes".)
//!
//! - Nothing of a live process is ever taken: every take-back is a
//!   compare-and-swap on the very word whose owner was judged gone, so a
//!   word changed since (leased again, claimed by another) is left alone.
//! - An entry named by a `LEASED` or `RECLAIMING` slot is never taken
//!   over: readers judge a ring's writer by its entry.
//! - Everything here may read `/proc` and call `kill(pid, 0)`: it runs
//!   when ordinary code leases a context (a signal handler never leases),
//!   at exit, or in a reader; never on a write's path once the thread has
//!   its context.

use crate::sync::Ordering;
use std::io;

use ringtrace_ring::RingBuffer;

use super::layout::{ProcEntry, SessionMap};

/// Process-table state: the entry is free.
const PROC_FREE: u32 = 0;
/// Process-table state: the process writes (or may write).
pub(crate) const PROC_RUNNING: u32 = 1;
/// Process-table state: the process detached cleanly.
pub(crate) const PROC_EXITED: u32 = 2;
/// Process-table state: a new process is taking over the entry of one that
/// is gone (pid and start time being rewritten); readers skip it.
const PROC_CLAIMING: u32 = 3;

/// Events the writer processes of a session refused, so never reached a
/// ring (the session-wide sums of each process's [`TracerStats`]
/// refusals), and the processes that ran untraced.
///
/// [`TracerStats`]: crate::TracerStats
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionRefusals {
    /// Refused for want of a free context (every one leased or holding
    /// unread events), and every event of a process that ran untraced.
    pub no_context: u64,
    /// Refused in a signal handler on a thread that had no context yet.
    pub in_signal_handler: u64,
    /// Refused for other reasons: a record that could not be encoded or
    /// is larger than a page, a thread writing to too many tracers.
    pub other: u64,
    /// Writer processes that found the session's process table full and
    /// ran untraced.
    pub untraced_processes: u64,
    /// Not recorded because their context is masked off
    /// (`Tracer::set_contexts`): deliberate, as with recording off, so
    /// not part of [`SessionRefusals::events`], but counted.
    pub masked: u64,
}

impl SessionRefusals {
    /// Every refused event.
    pub fn events(&self) -> u64 {
        self.no_context + self.in_signal_handler + self.other
    }
}

/// A liveness verdict for one writer process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Attached and running.
    Running,
    /// Detached cleanly (exited, or dropped its tracer).
    Exited,
    /// Gone without detaching: killed or crashed.
    Dead,
}

/// One writer process of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id.
    pub pid: u32,
    /// Its state.
    pub state: ProcState,
    /// Its start time as it registered (clock ticks since boot, from
    /// `/proc/PID/stat`; 0 when unknown): tells it from a later process
    /// that reuses the pid.
    pub start_time: u64,
}

/// The state of a session as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// No program has attached yet.
    Waiting,
    /// At least one writer process runs.
    Alive,
    /// Every writer detached cleanly.
    Exited,
    /// No writer runs and at least one died without detaching.
    Dead,
}

impl std::fmt::Display for SessionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SessionState::Waiting => "waiting",
            SessionState::Alive => "alive",
            SessionState::Exited => "exited",
            SessionState::Dead => "dead",
        })
    }
}

/// The start time of process `pid` (clock ticks since boot, field 22 of
/// `/proc/PID/stat`), to tell a pid from a later process that reuses it.
pub(crate) fn process_start_time(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields follow the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether process `pid`, started at `start` (0: unknown), still runs: its
/// `/proc` entry exists, has that start time, and is not a zombie whose
/// threads are all gone (a dead child its parent has not waited for yet).
pub(crate) fn process_alive(pid: u32, start: u64) -> bool {
    if !pid_exists(pid) {
        return false;
    }
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        // Exists (kill says so) but unreadable: assume alive.
        return true;
    };
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
        return true;
    };
    let mut f = rest.split_whitespace();
    let state = f.next().unwrap_or("R");
    if start != 0 && f.nth(18).and_then(|s| s.parse::<u64>().ok()) != Some(start) {
        return false;
    }
    if state == "Z" || state == "X" {
        // A zombie leader may still have live threads: count them.
        let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| d.take(2).count())
            .unwrap_or(0);
        return threads > 1;
    }
    true
}

fn pid_exists(pid: u32) -> bool {
    let Ok(p) = i32::try_from(pid) else {
        return false;
    };
    if p <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(p, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

pub(super) fn refused_of(map: &SessionMap) -> SessionRefusals {
    let h = map.header();
    SessionRefusals {
        no_context: h.refused_no_context.load(Ordering::Relaxed),
        in_signal_handler: h.refused_in_signal_handler.load(Ordering::Relaxed),
        other: h.refused_other.load(Ordering::Relaxed),
        untraced_processes: h.untraced_processes.load(Ordering::Relaxed),
        masked: h.refused_masked.load(Ordering::Relaxed),
    }
}

pub(super) fn processes_of(map: &SessionMap) -> Vec<ProcInfo> {
    let mut v = Vec::new();
    for e in map.procs() {
        // Acquire: pairs with the Release stores of `state` (`register_process`,
        // `mark_exited`): pid and start time are those of that state.
        let state = e.state.load(Ordering::Acquire);
        // Acquire: pairs with the AcqRel claim in `register_process`.
        let pid = e.pid.load(Ordering::Acquire);
        let start = e.start_time.load(Ordering::Relaxed);
        if pid == 0 || state == PROC_FREE {
            continue;
        }
        // An entry being taken over (or changed while we read it): its
        // new process is alive, whatever the fields read say.
        if state == PROC_CLAIMING || e.state.load(Ordering::Acquire) != state {
            v.push(ProcInfo {
                pid,
                state: ProcState::Running,
                start_time: 0,
            });
            continue;
        }
        let st = match state {
            PROC_EXITED => ProcState::Exited,
            _ if process_alive(pid, start) => ProcState::Running,
            _ => ProcState::Dead,
        };
        v.push(ProcInfo {
            pid,
            state: st,
            start_time: start,
        });
    }
    v
}

pub(super) fn state_of(p: &[ProcInfo]) -> SessionState {
    if p.is_empty() {
        SessionState::Waiting
    } else if p.iter().any(|p| p.state == ProcState::Running) {
        SessionState::Alive
    } else if p.iter().any(|p| p.state == ProcState::Dead) {
        SessionState::Dead
    } else {
        SessionState::Exited
    }
}

/// Whether the process of entry `e` is gone (exited or died, by pid, start
/// time and zombie state). An entry that is free or being taken over is
/// not gone (nothing of it may be reclaimed).
fn entry_gone(e: &ProcEntry) -> bool {
    // Acquire: pairs with the Release stores of `state`.
    let state = e.state.load(Ordering::Acquire);
    if state != PROC_RUNNING && state != PROC_EXITED {
        return false;
    }
    let pid = e.pid.load(Ordering::Acquire);
    let start = e.start_time.load(Ordering::Relaxed);
    if e.state.load(Ordering::Acquire) != state || pid == 0 {
        return false;
    }
    !process_alive(pid, start)
}

/// Claims a process-table entry for the calling process (idempotent) and
/// returns its index. A free entry first; when none is left, the entry of
/// a process that is gone and holds no lease slot any more (none `LEASED`
/// or `RECLAIMING` names it) is taken over, so that a session outlives any
/// number of short-lived writer processes. `None` when the table is full.
pub(crate) fn register_process(map: &SessionMap) -> Option<usize> {
    let me = std::process::id();
    let procs = map.procs();
    let start = process_start_time(me).unwrap_or(0);
    // Ours: this pid with this start time (an entry of an earlier process
    // that had this pid is not).
    if let Some(i) = procs.iter().position(|e| {
        e.pid.load(Ordering::Acquire) == me
            && matches!(e.state.load(Ordering::Acquire), PROC_RUNNING | PROC_EXITED)
            && e.start_time.load(Ordering::Relaxed) == start
    }) {
        // Release: pairs with the Acquire loads of `state` by readers.
        procs[i].state.store(PROC_RUNNING, Ordering::Release);
        return Some(i);
    }
    for (i, e) in procs.iter().enumerate() {
        // AcqRel: claims the entry; pairs with the Acquire loads of readers
        // (who then read state and start time, stored below with Release).
        if e.pid.load(Ordering::Relaxed) == 0
            && e.pid
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            e.start_time.store(start, Ordering::Relaxed);
            // Release: pairs with the Acquire load of `state` in
            // `processes`: the start time is visible with the state.
            e.state.store(PROC_RUNNING, Ordering::Release);
            return Some(i);
        }
    }
    // Take over the entry of a process that is gone.
    let slots = map.slot_states();
    for (i, e) in procs.iter().enumerate() {
        if i >= crate::tracer::MAX_SLOT_OWNERS || !entry_gone(e) {
            continue;
        }
        let held = slots.iter().any(|s| {
            let v = s.load(Ordering::Acquire);
            crate::tracer::slot_owner(v) == i + 1
                && matches!(
                    crate::tracer::slot_state(v),
                    crate::tracer::LEASED | crate::tracer::RECLAIMING
                )
        });
        if held {
            continue;
        }
        let old = e.state.load(Ordering::Acquire);
        // AcqRel: one claimant wins the entry; readers skip it until the
        // Release store of RUNNING below publishes pid and start time.
        if matches!(old, PROC_RUNNING | PROC_EXITED)
            && e.state
                .compare_exchange(old, PROC_CLAIMING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            // The gone process's handed-back rings must not pass for ours:
            // they now name no process (owner 0), which marks them as left
            // by a gone process (`orphaned_rings`), by `lease::disown`.
            for sl in slots {
                let v = sl.load(Ordering::Acquire);
                if crate::tracer::slot_owner(v) == i + 1 {
                    let _ = crate::tracer::lease::disown(sl, v);
                }
            }
            e.pid.store(me, Ordering::Release);
            e.start_time.store(start, Ordering::Relaxed);
            // Release: pairs with the Acquire loads of `state` by readers.
            e.state.store(PROC_RUNNING, Ordering::Release);
            return Some(i);
        }
    }
    None
}

/// The rings handed back (`EXITED`) by processes that are gone: the slot
/// names no process (its entry was taken over since) or one that exited
/// or died. Their events stay readable, but no reader may come to drain
/// them (a flight recorder is read after the end), so a new writer takes
/// them over as they are (`Inner::lease_ring`), in every mode: it writes
/// after their events, which stay until read, overwritten or, in
/// producer/consumer mode, the new writer's own events are dropped when
/// the ring is full (each counted). `own` is the caller's entry + 1,
/// whose rings are never in the list. Each ring comes with its slot word
/// as seen, for the claim's compare-and-swap (which fails if the slot
/// changed since, e.g. was leased and handed back by a live process).
pub(crate) fn orphaned_rings(map: &SessionMap, rings: usize, own: usize) -> Vec<(usize, u32)> {
    use crate::tracer::{slot_owner, slot_state, EXITED};
    let procs = map.procs();
    let mut verdicts: Vec<Option<bool>> = vec![None; procs.len()];
    let mut out = Vec::new();
    for (i, s) in map.slot_states().iter().take(rings).enumerate() {
        let v = s.load(Ordering::Acquire);
        if slot_state(v) != EXITED {
            continue;
        }
        let owner = slot_owner(v);
        let gone = match owner {
            0 => true,
            o if o == own => false,
            o if o > procs.len() => true,
            o => *verdicts[o - 1].get_or_insert_with(|| entry_gone(&procs[o - 1])),
        };
        if gone {
            out.push((i, v));
        }
    }
    out
}

pub(crate) fn mark_exited(map: &SessionMap) {
    let me = std::process::id();
    for e in map.procs() {
        if e.pid.load(Ordering::Acquire) == me && e.state.load(Ordering::Acquire) == PROC_RUNNING {
            // Release: pairs with the Acquire load in `processes`.
            e.state.store(PROC_EXITED, Ordering::Release);
        }
    }
}

/// Takes back the lease slots whose leasing process is gone (exited or
/// died without handing them back: killed, `_exit`, a crash) and returns
/// how many. Each such ring is repaired first (`recover_dead_writer`: a
/// write the process had in flight becomes a counted drop); its committed
/// events stay for the readers, and the slot is leased again only once
/// they are drained (`EXITED`). Called by writers that find no free
/// context.
///
/// Safe against a live leaseholder: a slot is taken only when the process
/// its word names is gone (pid, start time, zombie state), by a
/// compare-and-swap on the very word that was checked (its lease
/// generation changes on every lease), so a slot leased again meanwhile is
/// left alone.
pub(crate) fn reclaim_dead_slots(map: &SessionMap, buf: &RingBuffer) -> usize {
    use crate::tracer::{slot_owner, slot_state, LEASED};
    let procs = map.procs();
    let mut verdicts: Vec<Option<bool>> = vec![None; procs.len()];
    let mut n = 0;
    for (i, s) in map.slot_states().iter().enumerate() {
        let v = s.load(Ordering::Acquire);
        let owner = slot_owner(v);
        if slot_state(v) != LEASED || owner == 0 || owner > procs.len() {
            continue;
        }
        let gone = *verdicts[owner - 1].get_or_insert_with(|| entry_gone(&procs[owner - 1]));
        // The dead writer's last stores are seen; one reclaimer wins
        // (`lease::begin_reclaim`'s AcqRel compare-and-swap).
        if !gone || !crate::tracer::lease::begin_reclaim(s, v) {
            continue;
        }
        // A ring that cannot be repaired (damaged) stays out of use
        // (RECLAIMING): a writer would trust it.
        // SAFETY: the process that leased ring `i` is gone, and only a
        // leaseholder (its threads and their signal handlers) writes a
        // ring: nothing writes ring `i` now. The compare-and-swap above
        // made this call its only reclaimer.
        if let Ok(lost) = unsafe { buf.recover_dead_writer(i) } {
            let h = map.header();
            h.reclaimed_slots.fetch_add(1, Ordering::Relaxed);
            h.reclaimed_lost.fetch_add(lost, Ordering::Relaxed);
            // The next leaseholder sees the repaired ring.
            crate::tracer::lease::finish_reclaim(s, v);
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::super::tests::{dead_pid, session_with};
    use super::*;

    #[test]
    fn a_dead_pid_is_reported_dead() {
        let (_d, s) = session_with(|_| {});
        let e = &s.map.procs()[0];
        e.pid.store(dead_pid(), Ordering::Release);
        e.state.store(PROC_RUNNING, Ordering::Release);
        assert_eq!(s.state(), SessionState::Dead);
    }

    #[test]
    fn slots_of_gone_processes_are_reclaimed_and_their_entries_taken_over() {
        use crate::tracer::{slot_owner, slot_state, EXITED, LEASED};
        let (_d, s) = session_with(|c| c.contexts = 3);
        let dead = dead_pid();
        let me = std::process::id();
        // Every entry names a process: entry 0 ours (alive), the rest the
        // dead one.
        for (i, e) in s.map.procs().iter().enumerate() {
            let (pid, start) = if i == 0 {
                (me, process_start_time(me).unwrap())
            } else {
                (dead, 0)
            };
            e.pid.store(pid, Ordering::Relaxed);
            e.start_time.store(start, Ordering::Relaxed);
            e.state.store(PROC_RUNNING, Ordering::Release);
        }
        // Slot 0 leased by us (entry 0), slots 1 and 2 by the dead one
        // (entries 1 and 2); generation 5.
        let word = |owner: u32| (5 << 13) | (owner << 2) | LEASED;
        let slots = s.map.slot_states();
        slots[0].store(word(1), Ordering::Relaxed);
        slots[1].store(word(2), Ordering::Relaxed);
        slots[2].store(word(3), Ordering::Relaxed);
        // Our own entry is found again; with it renamed (to pid 1, alive
        // and not us), a new entry is needed and, the table being full,
        // taken over from a gone process: not entry 1 or 2, whose slots
        // are still leased.
        assert_eq!(register_process(&s.map), Some(0), "our own entry");
        s.map.procs()[0].pid.store(1, Ordering::Relaxed);
        let taken = register_process(&s.map).unwrap();
        assert_eq!(taken, 3, "entries 1 and 2 hold slots");
        // Reclaim: the dead process's two slots, not ours.
        s.map.procs()[0].pid.store(me, Ordering::Relaxed);
        assert_eq!(reclaim_dead_slots(&s.map, &s.ring), 2);
        assert_eq!(slot_state(slots[0].load(Ordering::Relaxed)), LEASED);
        for sl in &slots[1..] {
            let v = sl.load(Ordering::Relaxed);
            assert_eq!(slot_state(v), EXITED);
            assert!(slot_owner(v) == 2 || slot_owner(v) == 3);
        }
        assert_eq!(s.reclaimed(), (2, 0));
        // Nothing left to reclaim; entries 1 and 2 can be taken over now.
        assert_eq!(reclaim_dead_slots(&s.map, &s.ring), 0);
        // (Entries 0 and 3 made to name a live process that is not us.)
        s.map.procs()[0].pid.store(1, Ordering::Relaxed);
        s.map.procs()[taken].pid.store(1, Ordering::Relaxed);
        assert_eq!(register_process(&s.map), Some(1));
    }
}
