//! The session file's layout: its header, the process-table entry, the
//! geometry a reader trusts ([`Layout`]), the mapping of everything before
//! the rings ([`SessionMap`]), and the checks that make a file's header
//! such a geometry.
//!
//! # Terms
//!
//! - **Header**: the first [`HEADER_SIZE`] bytes: magic, layout version,
//!   owner, clock, geometry (the offset and size of every part), table
//!   tails, counters, and the `ready` word.
//! - **Parts**: the lease slots, the process table, the table index and
//!   the table data, in this order after the header, each aligned; then
//!   the ring region, page-aligned, to the end of the file (see the
//!   diagram in [`super`]).
//! - **Layout**: the header's geometry as read once and validated.
//!
//! # Contract
//!
//! - Every header word is an atomic, written by the creator before its
//!   Release store of `ready`; a reader loads `ready` with Acquire, then
//!   snapshots the geometry once ([`validate`]) and never re-reads it.
//! - [`validate`] accepts only a header of this version whose parts lie in
//!   order inside the file, aligned, with counts in their ranges; every
//!   refusal names the file and what is wrong. Offsets and sizes used by
//!   [`SessionMap`] come from a validated [`Layout`] only.
//! - The layout version ([`VERSION`]) changes whenever the layout does.

use crate::sync::{AtomicU32, AtomicU64, Ordering};
use std::path::PathBuf;

use memmap2::MmapRaw;
use ringtrace_ring::Mode;

use super::{table, SessionError};
use crate::clock::{ClockKind, Tsc2Nsec};

/// First bytes of a session file.
#[doc(hidden)]
pub const MAGIC: u64 = u64::from_le_bytes(*b"RTSESS01");
/// Layout version this build writes and reads.
#[doc(hidden)]
pub const VERSION: u32 = 5;
/// Size of the header part.
#[doc(hidden)]
pub const HEADER_SIZE: usize = 4096;
/// Entries of the process table.
#[doc(hidden)]
pub const PROCS: usize = 64;
/// Most contexts of a session.
#[doc(hidden)]
pub const MAX_CONTEXTS: usize = 4096;
/// Most table records.
#[doc(hidden)]
pub const MAX_INDEX: usize = 1 << 20;
/// Most table data bytes.
#[doc(hidden)]
pub const MAX_TABLE_DATA: usize = 1 << 30;

fn clock_code(k: ClockKind) -> u32 {
    match k {
        ClockKind::Mono => 0,
        ClockKind::Tsc => 1,
        ClockKind::Counter => 2,
    }
}

fn clock_from_code(c: u32) -> Option<ClockKind> {
    match c {
        0 => Some(ClockKind::Mono),
        1 => Some(ClockKind::Tsc),
        2 => Some(ClockKind::Counter),
        _ => None,
    }
}

/// Header flag: writers take over exited threads' undrained rings
/// ([`SessionConfig::take_over_exited`]).
const FLAG_TAKE_OVER_EXITED: u64 = 1;

/// The header: every field an atomic, so a reader racing a (buggy) writer
/// has no data race; readers snapshot it into a [`Layout`] once.
#[repr(C)]
pub(crate) struct Header {
    pub(super) magic: AtomicU64,
    pub(super) version: AtomicU32,
    pub(super) header_size: AtomicU32,
    pub(super) uid: AtomicU32,
    pub(super) creator_pid: AtomicU32,
    pub(super) clock: AtomicU32,
    pub(super) clock_ordered: AtomicU32,
    pub(super) tsc_mult: AtomicU32,
    pub(super) tsc_shift: AtomicU32,
    pub(super) tsc_offset: AtomicU64,
    pub(super) page_size: AtomicU32,
    pub(super) contexts: AtomicU32,
    pub(super) mode: AtomicU32,
    pub(super) procs: AtomicU32,
    pub(super) slots_offset: AtomicU64,
    pub(super) procs_offset: AtomicU64,
    pub(super) index_offset: AtomicU64,
    pub(super) index_capacity: AtomicU64,
    pub(super) data_offset: AtomicU64,
    pub(super) data_size: AtomicU64,
    pub(super) ring_offset: AtomicU64,
    pub(super) ring_size: AtomicU64,
    pub(super) total_size: AtomicU64,
    pub(super) bytes_per_context: AtomicU64,
    pub(super) name: [AtomicU64; 8],
    /// 1 once everything above and the ring region are set up (Release
    /// store by the creator; Acquire load by openers).
    pub(super) ready: AtomicU32,
    /// Pid of the `ringtrace record` that created the session (0: none).
    pub(super) recorder_pid: AtomicU32,
    /// Next table index entry (may pass the capacity: refused appends).
    pub(super) index_tail: AtomicU64,
    /// Next table data byte (may pass the size: refused appends).
    pub(super) data_tail: AtomicU64,
    /// Table appends refused for lack of room.
    pub(super) table_full: AtomicU64,
    /// Session-wide switches: [`FLAG_TAKE_OVER_EXITED`]; other bits 0.
    pub(super) flags: AtomicU64,
    /// Next printk format id of the session's writer processes (starts at
    /// 1; `fetch_update` by `printk`'s registration): ids are unique across
    /// the processes, a forked child's and its parent's included.
    pub(super) printk_next_id: AtomicU32,
    /// Recording switch of every writer process (`tracing_on` inverted, so
    /// that a new file's 0 means on): nonzero refuses records before they
    /// reach a ring, uncounted (not attempts). Written by `ringtrace
    /// stop`/`start`/`reset` and `Tracer::set_on`; each writer's record
    /// path reads it with one Relaxed load (a switch, ordering nothing).
    pub(super) tracing_off: AtomicU32,
    /// Lease slots taken back from processes that died holding them.
    pub(super) reclaimed_slots: AtomicU64,
    /// Events in flight in those slots' rings when their writer died
    /// (counted as dropped in the rings too).
    pub(super) reclaimed_lost: AtomicU64,
    /// Events refused for want of a free context, by every writer process
    /// of the session (each also counts its own in `TracerStats`), so that
    /// readers see the refusals of processes they never talk to. Relaxed
    /// adds: a counter, ordering nothing.
    pub(super) refused_no_context: AtomicU64,
    /// Writer processes that found the process table full (no free entry
    /// and none of a gone process to take over) and ran untraced; their
    /// events are counted in `refused_no_context`.
    pub(super) untraced_processes: AtomicU64,
    /// Events refused in a signal handler on a thread that had no context
    /// yet, by every writer process (as `refused_no_context`).
    pub(super) refused_in_signal_handler: AtomicU64,
    /// Events refused for other reasons (a record that could not be
    /// encoded or is larger than a page, a thread writing to too many
    /// tracers), by every writer process.
    pub(super) refused_other: AtomicU64,
    /// Real time at the session's creation, ns since the Unix epoch (0:
    /// unknown, the `counter` clock); with `start_clock_ts`, the clock's
    /// stamp at that moment, the trace's wall-clock anchor
    /// (`crate::clock::WallStart`). Written before `ready`.
    pub(super) start_realtime_ns: AtomicU64,
    pub(super) start_clock_ts: AtomicU64,
    /// Which contexts record (`tracing_cpumask`): bit N set when context
    /// N does not record, so that a new file's zeros mean all record.
    /// Written by `ringtrace contexts` and `Tracer::set_contexts`; each
    /// writer's record path loads its context's word Relaxed (a switch,
    /// ordering nothing). Since version 5.
    pub(super) context_mask_off: [AtomicU64; MAX_CONTEXTS / 64],
    /// Events refused because their context does not record, by every
    /// writer process (as `refused_no_context`). Since version 5.
    pub(super) refused_masked: AtomicU64,
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_SIZE);

/// One process-table entry.
#[repr(C)]
pub(crate) struct ProcEntry {
    pub(super) pid: AtomicU32,
    pub(super) state: AtomicU32,
    pub(super) start_time: AtomicU64,
}

/// The geometry of a session, as validated on open.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Owner uid recorded by the creator.
    pub uid: u32,
    /// Pid of the process that created the file.
    pub creator_pid: u32,
    /// The session's short name.
    pub name: String,
    /// The clock events are stamped with.
    pub clock: ClockKind,
    /// Whether the TSC is read fenced.
    pub clock_ordered: bool,
    /// TSC conversion (`Tsc` only).
    pub tsc2nsec: Tsc2Nsec,
    /// Page size.
    pub page_size: usize,
    /// Contexts (rings).
    pub contexts: usize,
    /// Bytes per context as configured.
    pub bytes_per_context: usize,
    /// Producer/consumer or overwrite, as created.
    pub mode: Mode,
    /// Whether the writers take over exited threads' undrained rings.
    pub take_over_exited: bool,
    /// Process-table entries.
    pub procs: usize,
    /// Offset of the lease slots.
    pub slots_offset: usize,
    /// Offset of the process table.
    pub procs_offset: usize,
    /// Offset of the table index.
    pub index_offset: usize,
    /// Table index entries.
    pub index_capacity: usize,
    /// Offset of the table data.
    pub data_offset: usize,
    /// Table data bytes.
    pub data_size: usize,
    /// Offset of the ring region.
    pub ring_offset: u64,
    /// Bytes of the ring region.
    pub ring_size: u64,
    /// Bytes of the whole file.
    pub total_size: u64,
}

pub(super) fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// The mapping of a session's header, slots and tables (not the rings).
pub(crate) struct SessionMap {
    pub(super) map: MmapRaw,
    pub(super) layout: Layout,
    pub(super) path: PathBuf,
}

impl std::fmt::Debug for SessionMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMap")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .finish()
    }
}

impl SessionMap {
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the mapping is at least HEADER_SIZE bytes (checked when it
        // was made), page-aligned, and Header is repr(C) of atomics only,
        // valid for any bit pattern and shared access.
        unsafe { &*(self.map.as_ptr() as *const Header) }
    }

    /// `n` atomics of type `T` at byte `offset`, which the layout checks
    /// placed inside the mapping and aligned.
    fn array<T>(&self, offset: usize, n: usize) -> &[T] {
        debug_assert!(offset % std::mem::align_of::<T>() == 0);
        debug_assert!(offset + n * std::mem::size_of::<T>() <= self.map.len());
        // SAFETY: every caller passes an (offset, n) from the validated
        // layout: in bounds and aligned (checked in `validate`); T is an
        // atomic or a repr(C) struct of atomics, valid for any bits.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset) as *const T, n) }
    }

    pub(crate) fn slot_states(&self) -> &[AtomicU32] {
        self.array(self.layout.slots_offset, self.layout.contexts)
    }

    pub(crate) fn slot_tids(&self) -> &[AtomicU32] {
        self.array(
            self.layout.slots_offset + 4 * self.layout.contexts,
            self.layout.contexts,
        )
    }

    pub(crate) fn procs(&self) -> &[ProcEntry] {
        self.array(self.layout.procs_offset, self.layout.procs)
    }

    pub(crate) fn index(&self) -> &[table::IndexEntry] {
        self.array(self.layout.index_offset, self.layout.index_capacity)
    }

    /// The session's printk id counter.
    pub(crate) fn printk_next_id(&self) -> &AtomicU32 {
        &self.header().printk_next_id
    }

    /// The wall-clock anchor of the session's start, if known.
    pub(crate) fn wall_start(&self) -> Option<crate::clock::WallStart> {
        let h = self.header();
        let realtime_ns = h.start_realtime_ns.load(Ordering::Relaxed);
        (realtime_ns != 0).then(|| crate::clock::WallStart {
            realtime_ns,
            clock_ts: h.start_clock_ts.load(Ordering::Relaxed),
        })
    }

    /// The session's context mask (bit set: the context does not record).
    pub(crate) fn context_mask_off(&self) -> &[AtomicU64] {
        &self.header().context_mask_off
    }

    /// The session's recording switch (nonzero: off), in the header.
    pub(crate) fn tracing_off(&self) -> &AtomicU32 {
        &self.header().tracing_off
    }

    /// Base pointer of the table data area (`data_size` bytes).
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: data_offset + data_size <= mapping length (validated).
        unsafe { self.map.as_mut_ptr().add(self.layout.data_offset) }
    }
}

pub(super) fn write_header(sm: &SessionMap) {
    let h = sm.header();
    let l = &sm.layout;
    let r = Ordering::Relaxed;
    h.version.store(VERSION, r);
    h.header_size.store(std::mem::size_of::<Header>() as u32, r);
    h.uid.store(l.uid, r);
    h.creator_pid.store(l.creator_pid, r);
    h.clock.store(clock_code(l.clock), r);
    h.clock_ordered.store(u32::from(l.clock_ordered), r);
    h.tsc_mult.store(l.tsc2nsec.mult, r);
    h.tsc_shift.store(l.tsc2nsec.shift, r);
    h.tsc_offset.store(l.tsc2nsec.offset, r);
    h.page_size.store(l.page_size as u32, r);
    h.contexts.store(l.contexts as u32, r);
    h.mode.store(u32::from(l.mode == Mode::ProducerConsumer), r);
    h.procs.store(l.procs as u32, r);
    h.slots_offset.store(l.slots_offset as u64, r);
    h.procs_offset.store(l.procs_offset as u64, r);
    h.index_offset.store(l.index_offset as u64, r);
    h.index_capacity.store(l.index_capacity as u64, r);
    h.data_offset.store(l.data_offset as u64, r);
    h.data_size.store(l.data_size as u64, r);
    h.ring_offset.store(l.ring_offset, r);
    h.ring_size.store(l.ring_size, r);
    h.total_size.store(l.total_size, r);
    h.bytes_per_context.store(l.bytes_per_context as u64, r);
    h.flags.store(
        if l.take_over_exited {
            FLAG_TAKE_OVER_EXITED
        } else {
            0
        },
        r,
    );
    let mut name = [0u8; 64];
    name[..l.name.len()].copy_from_slice(l.name.as_bytes());
    for (i, w) in h.name.iter().enumerate() {
        let mut b = [0u8; 8];
        b.copy_from_slice(&name[i * 8..i * 8 + 8]);
        w.store(u64::from_le_bytes(b), r);
    }
    h.printk_next_id.store(1, r);
    let clock = crate::clock::Clock::from_parts(l.clock, l.clock_ordered, l.tsc2nsec);
    if let Some(w) = crate::clock::WallStart::now(&clock) {
        h.start_realtime_ns.store(w.realtime_ns, r);
        h.start_clock_ts.store(w.clock_ts, r);
    }
    // Written last, after the fields (same thread; `ready` publishes all).
    h.magic.store(MAGIC, r);
}

/// Checks the header of a mapped file of `file_len` bytes at `path`: what
/// it is, then its geometry, each count's range, and where the parts lie.
pub(super) fn validate(map: &MmapRaw, file_len: u64, path: &str) -> Result<Layout, SessionError> {
    let bad = |reason: String| SessionError::Invalid {
        path: path.to_string(),
        reason,
    };
    // SAFETY: the mapping is HEADER_SIZE bytes, page-aligned; Header is
    // atomics only (any bits are valid).
    let h = unsafe { &*(map.as_ptr() as *const Header) };
    check_identity(h).map_err(bad)?;
    let l = read_layout(h).map_err(bad)?;
    check_ranges(&l).map_err(bad)?;
    check_parts(&l, file_len).map_err(bad)?;
    Ok(l)
}

/// Whether `h` is the header of a ready session of this layout version;
/// the reason when not.
fn check_identity(h: &Header) -> Result<(), String> {
    let r = Ordering::Relaxed;
    let magic = h.magic.load(r);
    if magic != MAGIC {
        return Err(format!("not a ringtrace session (magic {magic:#018x})"));
    }
    // Acquire: pairs with the Release store of `ready` by the creator
    // (`file::set_up`): the fields read after it are the creator's.
    if h.ready.load(Ordering::Acquire) != 1 {
        return Err("not ready: the creator is still setting it up (or died doing so)".into());
    }
    let version = h.version.load(r);
    if version != VERSION {
        return Err(format!(
            "layout version {version}, this ringtrace reads {VERSION}"
        ));
    }
    if h.header_size.load(r) as usize != std::mem::size_of::<Header>() {
        return Err(format!(
            "header size {} (this build: {})",
            h.header_size.load(r),
            std::mem::size_of::<Header>()
        ));
    }
    Ok(())
}

/// The session's name, NUL-padded in the header's name words.
fn read_name(h: &Header) -> String {
    let mut name_bytes = Vec::with_capacity(64);
    for w in &h.name {
        name_bytes.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
    }
    let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(64);
    String::from_utf8_lossy(&name_bytes[..end]).into_owned()
}

/// The header's fields, each read once, as a [`Layout`]: known codes and
/// flags, and offsets and sizes that fit this machine's `usize`; their
/// ranges and placement are checked after.
fn read_layout(h: &Header) -> Result<Layout, String> {
    let r = Ordering::Relaxed;
    let clock = clock_from_code(h.clock.load(r))
        .ok_or_else(|| format!("unknown clock code {}", h.clock.load(r)))?;
    let name = read_name(h);
    let usize_of = |v: u64, what: &str| {
        usize::try_from(v).map_err(|_| format!("{what} {v} does not fit this machine"))
    };
    let flags = h.flags.load(r);
    if flags & !FLAG_TAKE_OVER_EXITED != 0 {
        return Err(format!("unknown flags {flags:#x}"));
    }
    Ok(Layout {
        uid: h.uid.load(r),
        creator_pid: h.creator_pid.load(r),
        name,
        clock,
        clock_ordered: h.clock_ordered.load(r) != 0,
        tsc2nsec: Tsc2Nsec {
            mult: h.tsc_mult.load(r),
            shift: h.tsc_shift.load(r),
            offset: h.tsc_offset.load(r),
        },
        page_size: h.page_size.load(r) as usize,
        contexts: h.contexts.load(r) as usize,
        bytes_per_context: usize_of(h.bytes_per_context.load(r), "bytes per context")?,
        mode: if h.mode.load(r) == 0 {
            Mode::Overwrite
        } else {
            Mode::ProducerConsumer
        },
        take_over_exited: flags & FLAG_TAKE_OVER_EXITED != 0,
        procs: h.procs.load(r) as usize,
        slots_offset: usize_of(h.slots_offset.load(r), "slots offset")?,
        procs_offset: usize_of(h.procs_offset.load(r), "process table offset")?,
        index_offset: usize_of(h.index_offset.load(r), "index offset")?,
        index_capacity: usize_of(h.index_capacity.load(r), "index capacity")?,
        data_offset: usize_of(h.data_offset.load(r), "data offset")?,
        data_size: usize_of(h.data_size.load(r), "data size")?,
        ring_offset: h.ring_offset.load(r),
        ring_size: h.ring_size.load(r),
        total_size: h.total_size.load(r),
    })
}

/// Whether each count and size of `l` is in its range.
fn check_ranges(l: &Layout) -> Result<(), String> {
    let (contexts, procs) = (l.contexts, l.procs);
    if contexts == 0 || contexts > MAX_CONTEXTS {
        return Err(format!("{contexts} contexts (1 to {MAX_CONTEXTS})"));
    }
    if procs == 0 || procs > 1024 {
        return Err(format!("{procs} process entries (1 to 1024)"));
    }
    if l.index_capacity == 0 || l.index_capacity > MAX_INDEX {
        return Err(format!("table index of {} entries", l.index_capacity));
    }
    if l.data_size > MAX_TABLE_DATA {
        return Err(format!("table data of {} bytes", l.data_size));
    }
    if !l.page_size.is_power_of_two() || !(4096..=1 << 20).contains(&l.page_size) {
        return Err(format!("page size {}", l.page_size));
    }
    if l.tsc2nsec.shift > 63 {
        return Err(format!("TSC shift {}", l.tsc2nsec.shift));
    }
    Ok(())
}

/// Whether the parts of `l` lie after the header in order, each aligned,
/// then the ring region, page-aligned, ending the layout, all inside a
/// file of `file_len` bytes.
fn check_parts(l: &Layout, file_len: u64) -> Result<(), String> {
    let parts = [
        ("slots", l.slots_offset, 8 * l.contexts, 4),
        ("process table", l.procs_offset, 16 * l.procs, 8),
        (
            "table index",
            l.index_offset,
            std::mem::size_of::<table::IndexEntry>() * l.index_capacity,
            8,
        ),
        ("table data", l.data_offset, l.data_size, 8),
    ];
    let mut at = HEADER_SIZE;
    for (what, off, len, align) in parts {
        if off < at || off % align != 0 {
            return Err(format!(
                "{what} at offset {off}: overlaps the part before (ends at {at}) or misaligned"
            ));
        }
        at = off
            .checked_add(len)
            .ok_or_else(|| format!("{what} size overflows"))?;
    }
    if l.ring_offset % 4096 != 0 || (l.ring_offset as u128) < at as u128 {
        return Err(format!(
            "ring region at offset {} (tables end at {at})",
            l.ring_offset
        ));
    }
    let end = l
        .ring_offset
        .checked_add(l.ring_size)
        .ok_or_else(|| "ring region size overflows".to_string())?;
    if end != l.total_size {
        return Err(format!(
            "total size {} but the ring region ends at {end}",
            l.total_size
        ));
    }
    if file_len < l.total_size {
        return Err(format!(
            "truncated: the layout needs {} bytes, the file has {file_len}",
            l.total_size
        ));
    }
    usize::try_from(l.ring_offset)
        .map_err(|_| format!("ring offset {} does not fit this machine", l.ring_offset))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::session_with;
    use crate::session::Session;
    use crate::sync::Ordering;

    #[test]
    fn bad_headers_are_refused_with_a_reason() {
        let (_d, s) = session_with(|_| {});
        let path = s.path().to_path_buf();
        let h = s.map.header();
        h.contexts.store(0, Ordering::Relaxed);
        let e = Session::open(&path).unwrap_err().to_string();
        assert!(
            e.contains("0 contexts") && e.contains(&path.display().to_string()),
            "{e}"
        );
        h.contexts.store(2, Ordering::Relaxed);
        h.data_offset.store(5, Ordering::Relaxed);
        let e = Session::open(&path).unwrap_err().to_string();
        assert!(e.contains("table data"), "{e}");
        h.magic.store(1, Ordering::Relaxed);
        let e = Session::open(&path).unwrap_err().to_string();
        assert!(e.contains("not a ringtrace session"), "{e}");
    }

    /// Each step of `validate` refuses its field with a reason naming it,
    /// and the same header with the field put back opens again.
    #[test]
    fn every_header_check_names_its_field() {
        let (_d, s) = session_with(|_| {});
        let path = s.path().to_path_buf();
        let h = s.map.header();
        let r = Ordering::Relaxed;
        // Each field as a swap: stores a value, returns the one before.
        type Swap<'a> = &'a dyn Fn(u64) -> u64;
        let fields: [(Swap, u64, &str); 14] = [
            (&|v| h.ready.swap(v as u32, r).into(), 0, "not ready"),
            (
                &|v| h.version.swap(v as u32, r).into(),
                99,
                "layout version 99",
            ),
            (
                &|v| h.header_size.swap(v as u32, r).into(),
                7,
                "header size 7",
            ),
            (
                &|v| h.clock.swap(v as u32, r).into(),
                9,
                "unknown clock code 9",
            ),
            (
                &|v| h.procs.swap(v as u32, r).into(),
                2000,
                "2000 process entries",
            ),
            (
                &|v| h.page_size.swap(v as u32, r).into(),
                1000,
                "page size 1000",
            ),
            (
                &|v| h.tsc_shift.swap(v as u32, r).into(),
                64,
                "TSC shift 64",
            ),
            (
                &|v| h.index_capacity.swap(v, r),
                0,
                "table index of 0 entries",
            ),
            (&|v| h.data_size.swap(v, r), u64::MAX >> 1, "table data of"),
            (&|v| h.slots_offset.swap(v, r), 8, "slots at offset 8"),
            (
                &|v| h.ring_offset.swap(v, r),
                4097,
                "ring region at offset 4097",
            ),
            (
                &|v| h.ring_size.swap(v, r),
                u64::MAX,
                "ring region size overflows",
            ),
            (&|v| h.total_size.swap(v, r), 1, "total size 1"),
            (&|v| h.flags.swap(v, r), 4, "unknown flags 0x4"),
        ];
        for (swap, bad, reason) in fields {
            let good = swap(bad);
            let e = Session::open(&path).unwrap_err().to_string();
            assert!(e.contains(reason), "{reason}: {e}");
            swap(good);
            Session::open(&path).unwrap();
        }
        // A layout larger than the file: truncated.
        let len = std::fs::metadata(&path).unwrap().len();
        let (ring_size, total) = (h.ring_size.load(r), h.total_size.load(r));
        h.ring_size.store(ring_size + 4096, r);
        h.total_size.store(total + 4096, r);
        let e = Session::open(&path).unwrap_err().to_string();
        assert!(e.contains(&format!("the file has {len}")), "{e}");
    }
}
