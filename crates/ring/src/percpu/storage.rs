//! The per-CPU ring's memory: one slot of control words and `pages` pages
//! per CPU, allocated once, zeroed, never resized.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::Mutex;

use super::read::ReadPos;
use super::{possible_cpus, PerCpuError, RseqAbi};
use crate::format::{MAX_PAGE_SIZE, PAGE_HEADER_SIZE};
use crate::sync::{AtomicU64, Ordering::Relaxed};

/// Sizes of a per-CPU ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerCpuConfig {
    /// Pages per CPU (at least 2: a page is being written while another
    /// is read).
    pub pages: usize,
    /// Page size in bytes: a power of two, 4096 (trace-cmd's) by default.
    pub page_size: usize,
}

impl PerCpuConfig {
    /// `pages` pages of 4096 bytes per CPU.
    pub fn new(pages: usize) -> Self {
        PerCpuConfig {
            pages,
            page_size: 4096,
        }
    }

    fn check(&self) -> Result<(), PerCpuConfigError> {
        let ok_size =
            self.page_size.is_power_of_two() && (64..=MAX_PAGE_SIZE).contains(&self.page_size);
        if !ok_size {
            return Err(PerCpuConfigError::PageSize(self.page_size));
        }
        if !(2..=1 << 20).contains(&self.pages) {
            return Err(PerCpuConfigError::Pages(self.pages));
        }
        Ok(())
    }
}

/// An invalid [`PerCpuConfig`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerCpuConfigError {
    /// Not a power of two in 64..=1 MiB.
    #[error("page size {0} is not a power of two between 64 and 1048576 bytes")]
    PageSize(usize),
    /// Fewer than 2 or more than 2^20 pages.
    #[error("{0} pages per CPU: need between 2 and 1048576")]
    Pages(usize),
}

/// One CPU's control words, on their own cache lines.
#[repr(C, align(128))]
#[derive(Debug, Default)]
pub(crate) struct CpuSlot {
    /// The tail word (module docs). Written only by a section's final
    /// store (P in cs.rs, a release store on x86); read with Acquire by
    /// writers' snapshots and by the consumer.
    pub tail: AtomicU64,
    /// The tail value `stamp_ts` belongs to, or `NO_STAMP` while a section
    /// rewrites it. Written in step S before P; read (at, ts, at) by
    /// writers' snapshots.
    pub stamp_at: AtomicU64,
    /// Time stamp of the last event committed at `stamp_at`.
    pub stamp_ts: AtomicU64,
    /// Pages released by the reader (Release store in the consumer; Acquire
    /// load before a page switch reuses a slot).
    pub head: AtomicU64,
    /// Events committed or dropped on this CPU (after the commit; Relaxed:
    /// a statistic, exact once writers have stopped).
    pub written: AtomicU64,
    /// Events dropped because the next page was not read yet.
    pub dropped: AtomicU64,
    /// Events read by consumers.
    pub read: AtomicU64,
    /// Sections aborted by the kernel or found stale, then retried.
    pub restarts: AtomicU64,
}

/// Marks the stamp as being rewritten (no tail word equals it: `off` would
/// exceed any page).
pub(crate) const NO_STAMP: u64 = u64::MAX;

/// Counters of one CPU's ring: `written == read + dropped + buffered`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerCpuStats {
    /// Events committed or dropped on this CPU.
    pub written: u64,
    /// Events consumed.
    pub read: u64,
    /// Events dropped: the reader had not freed the next page.
    pub dropped: u64,
    /// Critical sections restarted (kernel aborts and stale tails).
    pub restarts: u64,
}

/// Per-CPU rings (see the module docs).
#[derive(Debug)]
pub struct PerCpuRing {
    pub(crate) abi: Option<RseqAbi>,
    pub(crate) page_size: usize,
    pub(crate) pages: usize,
    pub(crate) slots: Box<[CpuSlot]>,
    pub(crate) readers: Box<[Mutex<ReadPos>]>,
    /// Writes refused: the thread's rseq area named no known CPU.
    pub(crate) refused: AtomicU64,
    /// Writes abandoned after `MAX_ATTEMPTS` restarts.
    pub(crate) gave_up: AtomicU64,
    mem: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the page memory is only written through the rseq protocol (one
// writer per CPU at a time, enforced by the kernel) and read below the
// published tail; every control word is atomic.
unsafe impl Send for PerCpuRing {}
// SAFETY: as above.
unsafe impl Sync for PerCpuRing {}

impl PerCpuRing {
    /// One ring per possible CPU, written through glibc's rseq
    /// registration. Fails with [`PerCpuError::Unavailable`] (the caller
    /// falls back to per-thread rings) or on a bad config.
    pub fn new(config: PerCpuConfig) -> Result<Self, PerCpuError> {
        let abi = RseqAbi::detect()?;
        let cpus = possible_cpus()?;
        Ok(Self::build(config, cpus, Some(abi))?)
    }

    /// Without rseq, for the model: writes go through `write::plan` and
    /// `cs::run_steps` only.
    pub(crate) fn build(
        config: PerCpuConfig,
        cpus: usize,
        abi: Option<RseqAbi>,
    ) -> Result<Self, PerCpuConfigError> {
        config.check()?;
        let bytes = cpus * config.pages * config.page_size;
        let layout = Layout::from_size_align(bytes, 4096).expect("size fits: checked above");
        // SAFETY: `bytes > 0` (cpus >= 1, pages >= 2, page_size >= 64).
        let mem = unsafe { alloc_zeroed(layout) };
        let mem = NonNull::new(mem).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Ok(PerCpuRing {
            abi,
            page_size: config.page_size,
            pages: config.pages,
            slots: (0..cpus).map(|_| CpuSlot::default()).collect(),
            readers: (0..cpus).map(|_| Mutex::new(ReadPos::default())).collect(),
            refused: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            mem,
            layout,
        })
    }

    /// Number of rings (highest possible CPU + 1).
    pub fn cpus(&self) -> usize {
        self.slots.len()
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Largest payload one event may carry (a page's data area minus the
    /// event's header and length word).
    pub fn max_payload(&self) -> usize {
        crate::format::max_payload(self.page_size)
    }

    /// Counters of CPU `cpu`'s ring (`None` past the last CPU).
    pub fn stats(&self, cpu: usize) -> Option<PerCpuStats> {
        let s = self.slots.get(cpu)?;
        Some(PerCpuStats {
            written: s.written.load(Relaxed),
            read: s.read.load(Relaxed),
            dropped: s.dropped.load(Relaxed),
            restarts: s.restarts.load(Relaxed),
        })
    }

    /// Writes refused because the thread's rseq area named no CPU of this
    /// ring, and writes abandoned after [`super::MAX_ATTEMPTS`] restarts.
    pub fn refused(&self) -> (u64, u64) {
        (self.refused.load(Relaxed), self.gave_up.load(Relaxed))
    }

    /// Start of page `seq` (counted from 0, wrapping over the slots) of
    /// CPU `cpu`. Pure address arithmetic; the caller checks `cpu`.
    #[inline(always)]
    pub(crate) fn page(&self, cpu: usize, seq: u64) -> *mut u8 {
        debug_assert!(cpu < self.slots.len());
        let slot = cpu * self.pages + (seq % self.pages as u64) as usize;
        // `wrapping_add` keeps this free of UB on its own; the index is in
        // the allocation (cpu < cpus, slot < cpus * pages).
        self.mem.as_ptr().wrapping_add(slot * self.page_size)
    }

    /// Bytes of a page's data area.
    #[inline(always)]
    pub(crate) fn capacity(&self) -> usize {
        self.page_size - PAGE_HEADER_SIZE
    }
}

impl Drop for PerCpuRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `build` with this layout, freed once.
        unsafe { dealloc(self.mem.as_ptr(), self.layout) };
    }
}
