//! The per-CPU write path: snapshot, plan, run the section, retry.

use super::cs::{self, Outcome, Plan};
use super::storage::{CpuSlot, PerCpuRing, NO_STAMP};
use crate::format::{
    event_size, header, write_data_header, write_time_extend, PAGE_HEADER_SIZE, TIME_EXTEND_MAX,
    TS_DELTA_MAX, TS_SHIFT, TYPE_TIME_STAMP,
};
use crate::sync::Ordering::{Acquire, Relaxed};

/// Sections tried per event before giving up (counted in
/// [`PerCpuRing::refused`]). An abort needs a preemption, a migration or
/// a signal inside a section a few hundred nanoseconds long, so reaching
/// this bound means the thread is being interrupted without pause.
pub const MAX_ATTEMPTS: u32 = 1000;

/// Why a per-CPU write did not publish its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PerCpuWriteError {
    /// The payload does not fit in a page.
    #[error("payload of {len} bytes exceeds the {max} bytes an event may carry")]
    TooLarge {
        /// Payload length.
        len: usize,
        /// [`PerCpuRing::max_payload`].
        max: usize,
    },
    /// Producer/consumer mode: the reader has not freed the next page.
    #[error("dropped: CPU {cpu}'s ring is full (its reader has not freed the next page)")]
    Dropped {
        /// The CPU whose ring was full.
        cpu: usize,
    },
    /// The thread's rseq area names no CPU of this ring.
    #[error("refused: this thread's rseq area names CPU {cpu_id}, not one of the {cpus} rings")]
    NoCpu {
        /// What `cpu_id` held.
        cpu_id: u32,
        /// Rings of this tracer.
        cpus: usize,
    },
    /// Every section was aborted or stale.
    #[error("gave up after {MAX_ATTEMPTS} restarted critical sections")]
    GaveUp,
}

/// What a writer saw of a CPU's control words before planning.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    pub tail: u64,
    pub head: u64,
    /// The last committed event's time, when the stamp belongs to `tail`.
    pub prev: Option<u64>,
}

/// Loads the control words. The stamp is read (at, ts, at), seqlock-like:
/// a section rewrites it as (NO_STAMP, ts, its new tail), and tails only
/// grow, so `at` equal to `tail` on both loads means `ts` was stored by the
/// section that published `tail`. Acquire: pairs with the final store P of
/// that section (cs.rs; a release store on x86), and the Acquire on `head`
/// with the consumer's Release store when it frees a page.
#[inline(always)]
pub(crate) fn snapshot(slot: &CpuSlot) -> Snapshot {
    let tail = slot.tail.load(Acquire);
    let head = slot.head.load(Acquire);
    let at1 = slot.stamp_at.load(Acquire);
    let ts = slot.stamp_ts.load(Acquire);
    let at2 = slot.stamp_at.load(Acquire);
    Snapshot {
        tail,
        head,
        prev: (at1 == tail && at2 == tail).then_some(ts),
    }
}

/// The plan could not be made: the next page is not free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Full;

/// Fills `plan` to write `payload` at time `ts` on `cpu` after `snap`
/// (module docs, "planning"). Pure but for reading the current page's
/// time stamp, published before `snap.tail`.
#[inline(always)]
pub(crate) fn plan_event(
    ring: &PerCpuRing,
    cpu: usize,
    snap: &Snapshot,
    ts: u64,
    payload: &[u8],
    plan: &mut Plan,
) -> Result<(), Full> {
    let slot = &ring.slots[cpu];
    let (seq, off) = (snap.tail >> 32, (snap.tail & 0xffff_ffff) as usize);
    let size = event_size(payload.len());
    plan.tail = slot.tail.as_ptr();
    plan.expect = snap.tail;
    plan.src = payload.as_ptr();
    plan.src_len = payload.len() as u64;
    plan.nstores = 0;
    let mut floor = snap.prev.unwrap_or(0);
    if seq > 0 {
        let page = ring.page(cpu, seq - 1);
        // SAFETY: the current page's header time stamp was stored by the
        // section that opened it, before the tail we loaded with Acquire;
        // no section rewrites it while the page is current.
        let page_ts = unsafe { page.cast::<u64>().read() };
        floor = floor.max(page_ts);
        let ts = ts.max(floor);
        let rec = match snap.prev {
            Some(prev) if ts - prev <= TS_DELTA_MAX => 0,
            _ => 8,
        };
        if off + rec + size <= ring.capacity() {
            let hdr = plan.head.as_mut_ptr();
            // SAFETY: `head` has 16 bytes: at most 8 for the time record
            // and 8 for the data header; both writes are 4-byte aligned
            // (`Plan` is 8-aligned and `head` at an 8-aligned offset).
            unsafe {
                match snap.prev {
                    Some(_) if rec == 0 => {}
                    Some(prev) if ts - prev <= TIME_EXTEND_MAX => write_time_extend(hdr, ts - prev),
                    _ => write_time_stamp(hdr, ts),
                }
                let delta = if rec == 0 {
                    ts - snap.prev.unwrap_or(ts)
                } else {
                    0
                };
                let at = write_data_header(hdr.add(rec), payload.len(), delta);
                plan.head_len = (rec + at) as u64;
                plan.zeros = (size - at - payload.len()) as u64;
            }
            plan.dst = page.wrapping_add(PAGE_HEADER_SIZE + off);
            plan.new = snap.tail + (rec + size) as u64;
            push_stamp(plan, slot, ts);
            return Ok(());
        }
    }
    // Page switch: the slot of page `seq` must have been read.
    if seq >= snap.head + ring.pages as u64 {
        return Err(Full);
    }
    let ts = ts.max(floor);
    if seq > 0 {
        let old = ring.page(cpu, seq - 1);
        plan.push_store(old.wrapping_add(8).cast(), off as u64);
    }
    let page = ring.page(cpu, seq);
    plan.push_store(page.cast(), ts);
    plan.push_store(page.wrapping_add(8).cast(), 0);
    // SAFETY: as above, 8 bytes of `head`.
    let at = unsafe { write_data_header(plan.head.as_mut_ptr(), payload.len(), 0) };
    plan.head_len = at as u64;
    plan.zeros = (size - at - payload.len()) as u64;
    plan.dst = page.wrapping_add(PAGE_HEADER_SIZE);
    plan.new = ((seq + 1) << 32) | size as u64;
    push_stamp(plan, slot, ts);
    Ok(())
}

/// Step S's stamp stores, in the order `snapshot` relies on.
#[inline(always)]
fn push_stamp(plan: &mut Plan, slot: &CpuSlot, ts: u64) {
    plan.push_store(slot.stamp_at.as_ptr(), NO_STAMP);
    plan.push_store(slot.stamp_ts.as_ptr(), ts);
    plan.push_store(slot.stamp_at.as_ptr(), plan.new);
}

/// Writes an absolute time stamp record (type 31): the low 27 bits in the
/// header, bits 27..59 in the next word; readers take the upper bits from
/// the page's time stamp (`PageRecord::stamp_after`).
///
/// # Safety
/// `dst` is valid for 8 bytes of writes and 4-byte aligned.
#[inline(always)]
unsafe fn write_time_stamp(dst: *mut u8, ts: u64) {
    let low = ts & TIME_EXTEND_MAX;
    let words = dst.cast::<u32>();
    // SAFETY: guaranteed by the caller.
    unsafe {
        words.write(header(TYPE_TIME_STAMP, (low & TS_DELTA_MAX) as u32));
        words.add(1).write((low >> TS_SHIFT) as u32);
    }
}

impl PerCpuRing {
    /// Writes one event carrying `payload` on the CPU the thread runs on,
    /// stamped with `clock()` (read once per attempt, after the snapshot, so
    /// time stamps on a CPU never go backwards). Returns the CPU.
    ///
    /// Lock-free, allocation-free and system-call-free: async-signal-safe
    /// when `clock` is.
    pub fn write(
        &self,
        mut clock: impl FnMut() -> u64,
        payload: &[u8],
    ) -> Result<usize, PerCpuWriteError> {
        let max = self.max_payload();
        if payload.len() > max {
            return Err(PerCpuWriteError::TooLarge {
                len: payload.len(),
                max,
            });
        }
        let Some(abi) = self.abi else {
            return Err(PerCpuWriteError::NoCpu {
                cpu_id: u32::MAX,
                cpus: self.cpus(),
            });
        };
        let area = abi.area();
        let mut plan = Plan::new();
        for _ in 0..MAX_ATTEMPTS {
            let cpu_id = abi.cpu_id();
            let cpu = cpu_id as usize;
            let Some(slot) = self.slots.get(cpu) else {
                self.refused.fetch_add(1, Relaxed);
                let cpus = self.cpus();
                return Err(PerCpuWriteError::NoCpu { cpu_id, cpus });
            };
            let snap = snapshot(slot);
            if plan_event(self, cpu, &snap, clock(), payload, &mut plan).is_err() {
                slot.dropped.fetch_add(1, Relaxed);
                slot.written.fetch_add(1, Relaxed);
                return Err(PerCpuWriteError::Dropped { cpu });
            }
            // SAFETY: `area` is this thread's area, registered by glibc with
            // RSEQ_SIG (`RseqAbi::detect`). The plan's addresses are this
            // ring's: the tail and stamp words of `slot`, the current page
            // past the published offset or the next page (freed by the
            // reader: `head` checked), all inside the allocation
            // (`plan_event` checked the event fits the page).
            match unsafe { cs::run(area, cpu_id, &plan) } {
                Outcome::Committed => {
                    slot.written.fetch_add(1, Relaxed);
                    return Ok(cpu);
                }
                Outcome::Stale | Outcome::Aborted => {
                    slot.restarts.fetch_add(1, Relaxed);
                }
            }
        }
        self.gave_up.fetch_add(1, Relaxed);
        Err(PerCpuWriteError::GaveUp)
    }
}
