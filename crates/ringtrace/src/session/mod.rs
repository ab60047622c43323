//! Sessions: a tracer's rings and tables in a shared-memory file, so that
//! another process (the `ringtrace` command) reads a running program's
//! events live, and still reads them after the program died.
//!
//! # File layout
//!
//! ```text
//! 0        header (4096 bytes): magic "RTSESS01", layout version, uid and
//!          creator pid, clock and its TSC conversion, geometry, the offset
//!          and size of every part below, table tails, ready word
//! slots    per context: lease state (u32) ..., then writer tid (u32) ...
//! procs    PROCS entries {pid, state, start time}: the writer processes
//! index    table index: {state, kind, data offset, data length} per record
//! data     table bytes (event formats, printk formats, thread names)
//! ring     the ring region (RingBuffer::create_shared), 4096-aligned
//! ```
//!
//! Every word after creation is an atomic: the header's geometry is
//! written before `ready` (Release) and snapshotted once by a reader
//! (Acquire), who validates every offset, size and count before use and
//! never re-reads them.
//!
//! # Tables: lock-free append
//!
//! ```text
//! writer:  i   = index_tail.fetch_add(1)          (refused past the capacity)
//!          off = data_tail.fetch_add(len8)        (refused past the data size)
//!          copy bytes to data[off..]; entry i = {kind, off, len}
//!          entry i .state = COMMITTED  (Release)
//! reader:  for i in seen..min(index_tail, capacity):
//!             state (Acquire) == COMMITTED ? bounds-check {off, len}; parse
//!             else keep i pending (a writer may still be filling it, or died)
//! ```
//!
//! An append is async-signal-safe (atomics and a copy into the mapping); a
//! writer killed between reserve and commit leaves an entry that is never
//! committed, which readers skip.
//!
//! # Liveness
//!
//! Each writer process claims a `procs` entry (pid, its start time from
//! `/proc/PID/stat`, state `RUNNING`); a clean exit (an `atexit` handler of
//! the default tracer, or dropping the tracer) stores `EXITED`. A reader
//! calls a process dead when its entry is `RUNNING` but the pid is gone
//! (`kill(pid, 0)` gives ESRCH) or now belongs to a process with another
//! start time.
//!
//! # Leases of dead processes
//!
//! A lease slot's word names its leaseholder (process-table entry + 1) and
//! a lease generation (see `tracer.rs`). A process that dies holding
//! leases (killed, `_exit`, a crash) hands nothing back; a writer that
//! finds no free context takes such slots back (`reclaim_dead_slots`):
//!
//! ```text
//! LEASED(owner e, gen g) --owner gone (pid, start time, zombie)-->
//!     cmpxchg -> RECLAIMING(e, g)        (fails if leased again since)
//!     recover_dead_writer(ring)          (in-flight write: a counted drop)
//!     store EXITED(e, g)                 (committed events stay readable)
//! EXITED --drained by a reader--> leased again (gen g + 1)
//! EXITED, owner gone --no ring free or drained--> taken over as it is
//!     (gen g + 1; its events kept: `orphaned_rings`), in every mode
//! ```
//!
//! A writer process that finds no process-table entry, even after those
//! of gone processes were freed, leases no ring and runs untraced (one
//! line on stderr, counted in the header): readers judge a ring's writer
//! alive only by its entry, so an unregistered writer would be taken for
//! dead and its ring repaired under it. Events refused for want of a
//! context are counted in the header too, for every process.
//!
//! A process-table entry whose process is gone and that no `LEASED` or
//! `RECLAIMING` slot names is taken over by the next process to register,
//! so a session outlives any number of short-lived writer processes.
//! Printk format ids come from a counter in the header once a process
//! writes into a session, so a parent and the children it forks never
//! give one id to two formats.
//!
//! # Trust
//!
//! The header is checked on open (magic, version, sizes, owner uid, file
//! mode and length); table records are bounds-checked and parsed
//! defensively; ring contents are the ring crate's to check. A file
//! shrunk by its owner after a reader mapped it would fault the reader
//! (SIGBUS): sessions are visible to their owner only (mode 0600, uid
//! checked), who is trusted that far.

mod link;
mod table;

use crate::sync::{AtomicU32, AtomicU64, Ordering};
use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapRaw;
use ringtrace_ring::{Config, Mode, OpenError, RingBuffer};

use crate::clock::{Clock, ClockKind, Tsc2Nsec};
use crate::event::Registry;
use crate::tracer::storage::SharedStorage;
use crate::tracer::{Tracer, TracerConfig, TracerError};

pub(crate) use link::SessionLink;
pub use table::{TableEntry, TableReader, KIND_COMM, KIND_EVENT, KIND_PRINTK};

/// The environment variable naming the session file a program attaches to.
pub const SESSION_ENV: &str = "RINGTRACE_SESSION";
/// The environment variable naming the directory of session files
/// (instead of `/dev/shm`): where sessions are created and looked up.
pub const SHM_DIR_ENV: &str = "RINGTRACE_SHM_DIR";
/// First bytes of a session file.
pub const MAGIC: u64 = u64::from_le_bytes(*b"RTSESS01");
/// Layout version this build writes and reads.
pub const VERSION: u32 = 3;
/// Size of the header part.
pub const HEADER_SIZE: usize = 4096;
/// Entries of the process table.
pub const PROCS: usize = 64;
/// Most contexts of a session.
pub const MAX_CONTEXTS: usize = 4096;
/// Most table records.
pub const MAX_INDEX: usize = 1 << 20;
/// Most table data bytes.
pub const MAX_TABLE_DATA: usize = 1 << 30;
/// Prefix of session file names: `ringtrace-<pid>-<name>@<random>`.
pub const FILE_PREFIX: &str = "ringtrace-";
/// Separates a session file name's random suffix (16 hex digits, so that
/// no other user can create the next session's file first) from the name;
/// names never contain it.
pub const SUFFIX_SEP: char = '@';

/// Process-table state: the entry is free.
const PROC_FREE: u32 = 0;
/// Process-table state: the process writes (or may write).
pub(crate) const PROC_RUNNING: u32 = 1;
/// Process-table state: the process detached cleanly.
pub(crate) const PROC_EXITED: u32 = 2;
/// Process-table state: a new process is taking over the entry of one that
/// is gone (pid and start time being rewritten); readers skip it.
const PROC_CLAIMING: u32 = 3;

/// Why a session could not be created, opened or used. Each names the
/// session file and the cause.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// A file operation failed.
    #[error("session {path}: {what}: {source}")]
    Io {
        /// The session file.
        path: String,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not a session, or is damaged, or from another version.
    #[error("session {path}: {reason}")]
    Invalid {
        /// The session file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The session belongs to another user.
    #[error("session {path}: owned by uid {owner}, you are uid {me}: refused")]
    NotOwner {
        /// The session file.
        path: String,
        /// The file's (or header's) owner.
        owner: u32,
        /// The caller's effective uid.
        me: u32,
    },
    /// The ring region is unusable.
    #[error("session {path}: ring buffer: {source}")]
    Ring {
        /// The session file.
        path: String,
        /// The ring's error.
        #[source]
        source: OpenError,
    },
    /// The session's memory cannot be reserved: its file system has too
    /// little free space (a small `/dev/shm`).
    #[error(
        "session {path}: needs {} of memory in {}, which has {} free: give each \
         context less (-b KB) or fewer contexts, or put sessions in a larger \
         directory (--shm-dir DIR, or {SHM_DIR_ENV}=DIR)",
        mib(*needed),
        dir.display(),
        mib(*free)
    )]
    NoSpace {
        /// The session file (removed again).
        path: String,
        /// Its directory.
        dir: PathBuf,
        /// Bytes the session needs.
        needed: u64,
        /// Bytes free for the caller in that file system (`statvfs`).
        free: u64,
    },
    /// The file's memory is not all allocated (holes: never reserved, or
    /// punched since): mapping it would fault (SIGBUS) on the first touch
    /// of a hole once its file system is full.
    #[error(
        "session {path}: only {allocated} of its {size} bytes are allocated (the file has \
         holes): refused, since touching a hole could fault (SIGBUS) when the file system is full"
    )]
    NotBacked {
        /// The session file.
        path: String,
        /// Bytes allocated (`st_blocks * 512`).
        allocated: u64,
        /// Bytes of the file.
        size: u64,
    },
    /// The configuration is not valid.
    #[error("session configuration: {0}")]
    Config(String),
    /// No session matches the name given.
    #[error("no session named {0:?} (see `ringtrace list`)")]
    NotFound(String),
    /// Several sessions match the name given.
    #[error("{name:?} matches several sessions: {matches}")]
    Ambiguous {
        /// The name given.
        name: String,
        /// The matching files.
        matches: String,
    },
}

/// How a session is created (`ringtrace record` makes one of these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Short name (letters, digits, `-`, `_`, `.`); the file is
    /// `ringtrace-<pid>-<name>@<random>`.
    pub name: String,
    /// Contexts (rings): most writer threads at once.
    pub contexts: usize,
    /// Data bytes per context ring (rounded up to whole pages, at least 2).
    pub bytes_per_context: usize,
    /// Bytes of a page pool shared by all contexts (rounded up to whole
    /// pages; 0: none): a context whose ring is full takes pages from it
    /// before it overwrites or drops, so the pool goes to the contexts in
    /// use, in proportion to what they write (`Config::pool_pages` of the
    /// ring crate). Reserved with the rest of the session.
    pub pool_bytes: usize,
    /// Page size (power of two, 4096 to 1 MiB).
    pub page_size: usize,
    /// Overwrite (flight recorder) or producer/consumer.
    pub mode: Mode,
    /// Clock: `Tsc` or `Mono` (the `Counter` clock is per process).
    pub clock: ClockKind,
    /// Table records (event formats, printk formats, thread names).
    pub table_entries: usize,
    /// Table data bytes.
    pub table_bytes: usize,
    /// Directory; `None` is [`session_dir`].
    pub dir: Option<PathBuf>,
    /// Overwrite mode: a new thread takes over the undrained ring of an
    /// exited one when no other is left (the writers'
    /// [`TracerConfig::take_over_exited`](crate::TracerConfig::take_over_exited)).
    pub take_over_exited: bool,
}

impl SessionConfig {
    /// 64 contexts of 256 KiB, 4 KiB pages, producer/consumer, the
    /// monotonic clock, 16384 table records in 1 MiB.
    pub fn new(name: &str) -> SessionConfig {
        SessionConfig {
            name: name.to_string(),
            contexts: 64,
            bytes_per_context: 256 * 1024,
            pool_bytes: 0,
            page_size: 4096,
            mode: Mode::ProducerConsumer,
            clock: ClockKind::Mono,
            table_entries: 16384,
            table_bytes: 1 << 20,
            dir: None,
            take_over_exited: false,
        }
    }
}

/// `n` bytes in MiB for messages (one decimal).
fn mib(n: u64) -> String {
    format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64)
}

/// Where sessions are created: `$RINGTRACE_SHM_DIR` when set, else
/// `/dev/shm` when it is a directory, else `$TMPDIR` (or `/tmp`).
pub fn session_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(SHM_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// The directories where sessions are looked up: [`session_dir`], and
/// `/dev/shm` and `$TMPDIR` when they differ.
pub fn session_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![session_dir()];
    for d in [PathBuf::from("/dev/shm"), std::env::temp_dir()] {
        if d.is_dir() && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

/// The parts of a session file name: `ringtrace-<pid>-<name>@<suffix>`
/// gives `(pid, name)`; `None` for other files.
pub fn parse_file_name(file: &str) -> Option<(&str, &str)> {
    let rest = file.strip_prefix(FILE_PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    let (name, suffix) = rest.rsplit_once(SUFFIX_SEP)?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || suffix.is_empty() {
        return None;
    }
    Some((pid, name))
}

/// 16 hex digits no other process can predict: SipHash with the process's
/// random keys (std's `RandomState`) over the pid, the time and `attempt`.
fn random_suffix(attempt: u32) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(attempt);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.write_u128(now.as_nanos());
    format!("{:016x}", h.finish())
}

/// Bytes free for an unprivileged user in the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: all-zero bits are a valid statvfs (plain integers).
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// Allocates every byte of `file` up to `len` (extending it), so that no
/// later write through a mapping needs memory the file system may not
/// have: a full tmpfs then refuses here, not with SIGBUS later.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let len =
        libc::off_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: a plain system call on an fd we own; no memory is passed.
    // (glibc emulates it by writing where the file system lacks fallocate.)
    match unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) } {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

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
    magic: AtomicU64,
    version: AtomicU32,
    header_size: AtomicU32,
    uid: AtomicU32,
    creator_pid: AtomicU32,
    clock: AtomicU32,
    clock_ordered: AtomicU32,
    tsc_mult: AtomicU32,
    tsc_shift: AtomicU32,
    tsc_offset: AtomicU64,
    page_size: AtomicU32,
    contexts: AtomicU32,
    mode: AtomicU32,
    procs: AtomicU32,
    slots_offset: AtomicU64,
    procs_offset: AtomicU64,
    index_offset: AtomicU64,
    index_capacity: AtomicU64,
    data_offset: AtomicU64,
    data_size: AtomicU64,
    ring_offset: AtomicU64,
    ring_size: AtomicU64,
    total_size: AtomicU64,
    bytes_per_context: AtomicU64,
    name: [AtomicU64; 8],
    /// 1 once everything above and the ring region are set up (Release
    /// store by the creator; Acquire load by openers).
    ready: AtomicU32,
    /// Pid of the `ringtrace record` that created the session (0: none).
    recorder_pid: AtomicU32,
    /// Next table index entry (may pass the capacity: refused appends).
    index_tail: AtomicU64,
    /// Next table data byte (may pass the size: refused appends).
    data_tail: AtomicU64,
    /// Table appends refused for lack of room.
    table_full: AtomicU64,
    /// Session-wide switches: [`FLAG_TAKE_OVER_EXITED`]; other bits 0.
    flags: AtomicU64,
    /// Next printk format id of the session's writer processes (starts at
    /// 1; `fetch_update` by `printk`'s registration): ids are unique across
    /// the processes, a forked child's and its parent's included.
    printk_next_id: AtomicU32,
    _pad: AtomicU32,
    /// Lease slots taken back from processes that died holding them.
    reclaimed_slots: AtomicU64,
    /// Events in flight in those slots' rings when their writer died
    /// (counted as dropped in the rings too).
    reclaimed_lost: AtomicU64,
    /// Events refused for want of a free context, by every writer process
    /// of the session (each also counts its own in `TracerStats`), so that
    /// readers see the refusals of processes they never talk to. Relaxed
    /// adds: a counter, ordering nothing.
    refused_no_context: AtomicU64,
    /// Writer processes that found the process table full (no free entry
    /// and none of a gone process to take over) and ran untraced; their
    /// events are counted in `refused_no_context`.
    untraced_processes: AtomicU64,
    /// Events refused in a signal handler on a thread that had no context
    /// yet, by every writer process (as `refused_no_context`).
    refused_in_signal_handler: AtomicU64,
    /// Events refused for other reasons (a record that could not be
    /// encoded or is larger than a page, a thread writing to too many
    /// tracers), by every writer process.
    refused_other: AtomicU64,
}

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
}

impl SessionRefusals {
    /// Every refused event.
    pub fn events(&self) -> u64 {
        self.no_context + self.in_signal_handler + self.other
    }
}

const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_SIZE);

/// One process-table entry.
#[repr(C)]
pub(crate) struct ProcEntry {
    pid: AtomicU32,
    state: AtomicU32,
    start_time: AtomicU64,
}

/// The geometry of a session, as validated on open.
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

fn round_up(x: usize, to: usize) -> usize {
    x.div_ceil(to) * to
}

/// The mapping of a session's header, slots and tables (not the rings).
pub(crate) struct SessionMap {
    map: MmapRaw,
    layout: Layout,
    path: PathBuf,
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

    /// Base pointer of the table data area (`data_size` bytes).
    pub(crate) fn data_ptr(&self) -> *mut u8 {
        // SAFETY: data_offset + data_size <= mapping length (validated).
        unsafe { self.map.as_mut_ptr().add(self.layout.data_offset) }
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

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// A session: its mapped header and tables plus its ring buffer.
#[derive(Debug)]
pub struct Session {
    pub(crate) map: Arc<SessionMap>,
    pub(crate) ring: RingBuffer,
    file: File,
}

impl Session {
    /// Creates a session file (mode 0600, `O_EXCL`) named
    /// `ringtrace-<pid>-<name>@<16 random hex digits>` in
    /// [`SessionConfig::dir`] or [`session_dir`], reserves all its memory
    /// (`posix_fallocate`: [`SessionError::NoSpace`] names the size needed
    /// and the space free when it does not fit), and sets up its header,
    /// tables and rings.
    pub fn create(cfg: &SessionConfig) -> Result<Session, SessionError> {
        if cfg.name.is_empty()
            || cfg.name.len() > 40
            || !cfg
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(SessionError::Config(format!(
                "session name {:?}: 1 to 40 letters, digits, '-', '_' or '.'",
                cfg.name
            )));
        }
        if cfg.contexts == 0 || cfg.contexts > MAX_CONTEXTS {
            return Err(SessionError::Config(format!(
                "contexts {}: must be 1 to {MAX_CONTEXTS}",
                cfg.contexts
            )));
        }
        if cfg.table_entries == 0 || cfg.table_entries > MAX_INDEX {
            return Err(SessionError::Config(format!(
                "table entries {}: must be 1 to {MAX_INDEX}",
                cfg.table_entries
            )));
        }
        if cfg.table_bytes < 4096 || cfg.table_bytes > MAX_TABLE_DATA {
            return Err(SessionError::Config(format!(
                "table bytes {}: must be 4096 to {MAX_TABLE_DATA}",
                cfg.table_bytes
            )));
        }
        let clock = match cfg.clock {
            ClockKind::Counter => {
                return Err(SessionError::Config(
                    "the counter clock is per process: use mono or tsc".into(),
                ))
            }
            ClockKind::Mono => Clock::mono(),
            ClockKind::Tsc => Clock::tsc().map_err(|e| SessionError::Config(e.to_string()))?,
        };
        let ring_cfg = Config::new(cfg.contexts)
            .page_size(cfg.page_size)
            .bytes_per_ring(cfg.bytes_per_context)
            .pool_pages(
                cfg.pool_bytes
                    .div_ceil(ringtrace_ring::format::data_capacity(
                        cfg.page_size.max(ringtrace_ring::format::MIN_PAGE_SIZE),
                    )),
            )
            .mode(cfg.mode);
        // No room to grow: a session's rings are never resized, and every
        // byte of the file is reserved (`reserve`), so room for growth
        // would cost memory (three times the rings) for nothing.
        let ring_cfg = ring_cfg.max_pages_per_ring(ring_cfg.pages_per_ring);
        let ring_size =
            RingBuffer::region_size(&ring_cfg).map_err(|e| SessionError::Config(e.to_string()))?;
        let slots_offset = HEADER_SIZE;
        let procs_offset = round_up(slots_offset + 8 * cfg.contexts, 64);
        let index_offset = round_up(procs_offset + 16 * PROCS, 64);
        let data_offset = round_up(
            index_offset + std::mem::size_of::<table::IndexEntry>() * cfg.table_entries,
            64,
        );
        let ring_offset = round_up(data_offset + round_up(cfg.table_bytes, 8), 4096) as u64;
        let total_size = ring_offset + ring_size;

        let dir = cfg.dir.clone().unwrap_or_else(session_dir);
        // O_EXCL on a name with a random suffix: nobody can create it
        // first (a squatter), and a file that exists (a symbolic link
        // included) is never opened. A clash of suffixes is retried.
        let mut attempt = 0;
        let (path, file) = loop {
            let path = dir.join(format!(
                "{FILE_PREFIX}{}-{}{SUFFIX_SEP}{}",
                std::process::id(),
                cfg.name,
                random_suffix(attempt)
            ));
            match File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(f) => break (path, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(source) => {
                    return Err(SessionError::Io {
                        path: path.display().to_string(),
                        what: "creating the file",
                        source,
                    })
                }
            }
        };
        let io_err = |what| {
            let p = path.display().to_string();
            move |source| SessionError::Io {
                path: p,
                what,
                source,
            }
        };
        let made = (|| {
            // Every byte reserved now: a writer never faults on a page
            // the file system cannot back (see `Session::open`).
            reserve(&file, total_size).map_err(|source| match source.raw_os_error() {
                Some(libc::ENOSPC) | Some(libc::EFBIG) => SessionError::NoSpace {
                    path: path.display().to_string(),
                    dir: dir.clone(),
                    needed: total_size,
                    free: free_bytes(&dir).unwrap_or(0),
                },
                _ => io_err("reserving its memory (posix_fallocate)")(source),
            })?;
            let map = memmap2::MmapOptions::new()
                .len(ring_offset as usize)
                .map_raw(&file)
                .map_err(io_err("mapping the header"))?;
            let layout = Layout {
                uid: euid(),
                creator_pid: std::process::id(),
                name: cfg.name.clone(),
                clock: cfg.clock,
                clock_ordered: clock.is_ordered(),
                tsc2nsec: clock.tsc2nsec().unwrap_or(Tsc2Nsec {
                    mult: 1,
                    shift: 0,
                    offset: 0,
                }),
                page_size: cfg.page_size,
                contexts: cfg.contexts,
                bytes_per_context: cfg.bytes_per_context,
                mode: cfg.mode,
                take_over_exited: cfg.take_over_exited,
                procs: PROCS,
                slots_offset,
                procs_offset,
                index_offset,
                index_capacity: cfg.table_entries,
                data_offset,
                data_size: cfg.table_bytes,
                ring_offset,
                ring_size,
                total_size,
            };
            let sm = SessionMap {
                map,
                layout,
                path: path.clone(),
            };
            write_header(&sm);
            let ring =
                RingBuffer::create_shared(&file, ring_offset, ring_cfg).map_err(|source| {
                    SessionError::Ring {
                        path: path.display().to_string(),
                        source,
                    }
                })?;
            // Release: pairs with the Acquire load in `open`: an opener that
            // sees ready sees the header, tables and ring region set up.
            sm.header().ready.store(1, Ordering::Release);
            Ok(Session {
                map: Arc::new(sm),
                ring,
                file: file.try_clone().map_err(io_err("duplicating the fd"))?,
            })
        })();
        if made.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        made
    }

    /// Opens an existing session file, checking the owner, the mode, the
    /// header, that all its memory is allocated ([`SessionError::NotBacked`]
    /// otherwise) and the ring region.
    pub fn open(path: &Path) -> Result<Session, SessionError> {
        let p = path.display().to_string();
        let io_err = |what| {
            let p = p.clone();
            move |source| SessionError::Io {
                path: p,
                what,
                source,
            }
        };
        let file = File::options()
            .read(true)
            .write(true)
            .open(path)
            .map_err(io_err("opening"))?;
        let meta = file.metadata().map_err(io_err("reading its metadata"))?;
        let me = euid();
        if meta.uid() != me {
            return Err(SessionError::NotOwner {
                path: p,
                owner: meta.uid(),
                me,
            });
        }
        if meta.mode() & 0o077 != 0 {
            return Err(SessionError::Invalid {
                path: p,
                reason: format!(
                    "mode {:o} lets other users in: sessions must be 0600",
                    meta.mode() & 0o777
                ),
            });
        }
        if meta.len() < HEADER_SIZE as u64 {
            return Err(SessionError::Invalid {
                path: p,
                reason: format!("{} bytes: too short for a session header", meta.len()),
            });
        }
        // Every byte must be allocated (as `create` does), checked before
        // anything is mapped: touching a hole through a mapping, even to
        // read it, needs a page, and a full file system answers with
        // SIGBUS, killing the traced program or the reader. (The layout
        // must fit in the file, so all of the file is checked.)
        let allocated = meta.blocks().saturating_mul(512);
        if allocated < meta.len() {
            return Err(SessionError::NotBacked {
                path: p,
                allocated,
                size: meta.len(),
            });
        }
        let map = memmap2::MmapOptions::new()
            .len(HEADER_SIZE)
            .map_raw(&file)
            .map_err(io_err("mapping the header"))?;
        let layout = validate(&map, meta.len(), &p)?;
        if layout.uid != me {
            return Err(SessionError::NotOwner {
                path: p,
                owner: layout.uid,
                me,
            });
        }

        drop(map);
        let map = memmap2::MmapOptions::new()
            .len(layout.ring_offset as usize)
            .map_raw(&file)
            .map_err(io_err("mapping the tables"))?;
        let ring = RingBuffer::open_shared(&file, layout.ring_offset).map_err(|source| {
            SessionError::Ring {
                path: p.clone(),
                source,
            }
        })?;
        if ring.rings() != layout.contexts || ring.config().page_size != layout.page_size {
            return Err(SessionError::Invalid {
                path: p,
                reason: format!(
                    "header says {} contexts of {}-byte pages, the ring region has {} of {}",
                    layout.contexts,
                    layout.page_size,
                    ring.rings(),
                    ring.config().page_size
                ),
            });
        }
        Ok(Session {
            map: Arc::new(SessionMap {
                map,
                layout,
                path: path.to_path_buf(),
            }),
            ring,
            file,
        })
    }

    /// The session file.
    pub fn path(&self) -> &Path {
        &self.map.path
    }

    /// The validated geometry.
    pub fn layout(&self) -> &Layout {
        &self.map.layout
    }

    /// The ring buffer (context `i` is ring `i`).
    pub fn ring_buffer(&self) -> &RingBuffer {
        &self.ring
    }

    /// The session's clock (with the creator's TSC conversion).
    pub fn clock(&self) -> Clock {
        let l = &self.map.layout;
        Clock::from_parts(l.clock, l.clock_ordered, l.tsc2nsec)
    }

    /// The open file (for copies: `ringtrace show` reads a private copy).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Pid of the `ringtrace record` that owns the session (0: none).
    pub fn recorder_pid(&self) -> u32 {
        self.map.header().recorder_pid.load(Ordering::Relaxed)
    }

    /// Records the pid of the recorder.
    pub fn set_recorder_pid(&self, pid: u32) {
        self.map.header().recorder_pid.store(pid, Ordering::Relaxed);
    }

    /// Table appends refused for lack of room so far.
    pub fn table_full(&self) -> u64 {
        self.map.header().table_full.load(Ordering::Relaxed)
    }

    /// The writer processes and their states (see the module docs).
    pub fn processes(&self) -> Vec<ProcInfo> {
        processes_of(&self.map)
    }

    /// The session's state from its processes.
    pub fn state(&self) -> SessionState {
        state_of(&self.processes())
    }

    /// Claims a process-table entry for the calling process (idempotent).
    /// Returns false when the table is full.
    pub fn register_process(&self) -> bool {
        register_process(&self.map).is_some()
    }

    /// Lease slots taken back from processes that died holding them, and
    /// the events those processes had in flight (counted as dropped).
    pub fn reclaimed(&self) -> (u64, u64) {
        let h = self.map.header();
        (
            h.reclaimed_slots.load(Ordering::Relaxed),
            h.reclaimed_lost.load(Ordering::Relaxed),
        )
    }

    /// Events refused by all the session's writer processes, and how many
    /// of those processes ran untraced because the process table was full.
    pub fn refused(&self) -> SessionRefusals {
        refused_of(&self.map)
    }

    /// Marks the calling process as detached cleanly.
    pub fn mark_exited(&self) {
        mark_exited(&self.map);
    }

    /// A reader of the session's tables (event formats, printk formats,
    /// thread names), from the first record.
    pub fn table_reader(&self) -> TableReader {
        TableReader::new(self.map.clone())
    }

    /// Appends a record to the tables (async-signal-safe). False when the
    /// tables are full (counted) or the record is too large.
    pub fn append(&self, kind: u32, parts: &[&[u8]]) -> bool {
        table::append(&self.map, kind, parts)
    }

    /// Deletes the session file (the mappings stay valid until dropped).
    pub fn remove(&self) -> Result<(), SessionError> {
        std::fs::remove_file(&self.map.path).map_err(|source| SessionError::Io {
            path: self.map.path.display().to_string(),
            what: "removing",
            source,
        })
    }

    /// Splits into the map and the ring (for a tracer built on the session).
    pub(crate) fn into_parts(self) -> (Arc<SessionMap>, RingBuffer) {
        (self.map, self.ring)
    }
}

fn refused_of(map: &SessionMap) -> SessionRefusals {
    let h = map.header();
    SessionRefusals {
        no_context: h.refused_no_context.load(Ordering::Relaxed),
        in_signal_handler: h.refused_in_signal_handler.load(Ordering::Relaxed),
        other: h.refused_other.load(Ordering::Relaxed),
        untraced_processes: h.untraced_processes.load(Ordering::Relaxed),
    }
}

fn processes_of(map: &SessionMap) -> Vec<ProcInfo> {
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

fn state_of(p: &[ProcInfo]) -> SessionState {
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

fn write_header(sm: &SessionMap) {
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
    // Written last, after the fields (same thread; `ready` publishes all).
    h.magic.store(MAGIC, r);
}

/// Checks the header of a mapped file of `file_len` bytes.
fn validate(map: &MmapRaw, file_len: u64, path: &str) -> Result<Layout, SessionError> {
    let bad = |reason: String| SessionError::Invalid {
        path: path.to_string(),
        reason,
    };
    // SAFETY: the mapping is HEADER_SIZE bytes, page-aligned; Header is
    // atomics only (any bits are valid).
    let h = unsafe { &*(map.as_ptr() as *const Header) };
    let r = Ordering::Relaxed;
    let magic = h.magic.load(r);
    if magic != MAGIC {
        return Err(bad(format!(
            "not a ringtrace session (magic {magic:#018x})"
        )));
    }
    // Acquire: pairs with the Release store of `ready` by the creator.
    if h.ready.load(Ordering::Acquire) != 1 {
        return Err(bad(
            "not ready: the creator is still setting it up (or died doing so)".into(),
        ));
    }
    let version = h.version.load(r);
    if version != VERSION {
        return Err(bad(format!(
            "layout version {version}, this ringtrace reads {VERSION}"
        )));
    }
    if h.header_size.load(r) as usize != std::mem::size_of::<Header>() {
        return Err(bad(format!(
            "header size {} (this build: {})",
            h.header_size.load(r),
            std::mem::size_of::<Header>()
        )));
    }
    let clock = clock_from_code(h.clock.load(r))
        .ok_or_else(|| bad(format!("unknown clock code {}", h.clock.load(r))))?;
    let mut name_bytes = Vec::with_capacity(64);
    for w in &h.name {
        name_bytes.extend_from_slice(&w.load(r).to_le_bytes());
    }
    let end = name_bytes.iter().position(|&b| b == 0).unwrap_or(64);
    let name = String::from_utf8_lossy(&name_bytes[..end]).into_owned();
    let usize_of = |v: u64, what: &str| {
        usize::try_from(v).map_err(|_| bad(format!("{what} {v} does not fit this machine")))
    };
    let contexts = h.contexts.load(r) as usize;
    let procs = h.procs.load(r) as usize;
    let flags = h.flags.load(r);
    if flags & !FLAG_TAKE_OVER_EXITED != 0 {
        return Err(bad(format!("unknown flags {flags:#x}")));
    }
    let l = Layout {
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
        contexts,
        bytes_per_context: usize_of(h.bytes_per_context.load(r), "bytes per context")?,
        mode: if h.mode.load(r) == 0 {
            Mode::Overwrite
        } else {
            Mode::ProducerConsumer
        },
        take_over_exited: flags & FLAG_TAKE_OVER_EXITED != 0,
        procs,
        slots_offset: usize_of(h.slots_offset.load(r), "slots offset")?,
        procs_offset: usize_of(h.procs_offset.load(r), "process table offset")?,
        index_offset: usize_of(h.index_offset.load(r), "index offset")?,
        index_capacity: usize_of(h.index_capacity.load(r), "index capacity")?,
        data_offset: usize_of(h.data_offset.load(r), "data offset")?,
        data_size: usize_of(h.data_size.load(r), "data size")?,
        ring_offset: h.ring_offset.load(r),
        ring_size: h.ring_size.load(r),
        total_size: h.total_size.load(r),
    };
    if contexts == 0 || contexts > MAX_CONTEXTS {
        return Err(bad(format!("{contexts} contexts (1 to {MAX_CONTEXTS})")));
    }
    if procs == 0 || procs > 1024 {
        return Err(bad(format!("{procs} process entries (1 to 1024)")));
    }
    if l.index_capacity == 0 || l.index_capacity > MAX_INDEX {
        return Err(bad(format!("table index of {} entries", l.index_capacity)));
    }
    if l.data_size > MAX_TABLE_DATA {
        return Err(bad(format!("table data of {} bytes", l.data_size)));
    }
    if !l.page_size.is_power_of_two() || !(4096..=1 << 20).contains(&l.page_size) {
        return Err(bad(format!("page size {}", l.page_size)));
    }
    if l.tsc2nsec.shift > 63 {
        return Err(bad(format!("TSC shift {}", l.tsc2nsec.shift)));
    }
    // The parts, in order, each aligned and inside the file.
    let parts = [
        ("slots", l.slots_offset, 8 * contexts, 4),
        ("process table", l.procs_offset, 16 * procs, 8),
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
            return Err(bad(format!(
                "{what} at offset {off}: overlaps the part before (ends at {at}) or misaligned"
            )));
        }
        at = off
            .checked_add(len)
            .ok_or_else(|| bad(format!("{what} size overflows")))?;
    }
    if l.ring_offset % 4096 != 0 || (l.ring_offset as u128) < at as u128 {
        return Err(bad(format!(
            "ring region at offset {} (tables end at {at})",
            l.ring_offset
        )));
    }
    let end = l
        .ring_offset
        .checked_add(l.ring_size)
        .ok_or_else(|| bad("ring region size overflows".into()))?;
    if end != l.total_size {
        return Err(bad(format!(
            "total size {} but the ring region ends at {end}",
            l.total_size
        )));
    }
    if file_len < l.total_size {
        return Err(bad(format!(
            "truncated: the layout needs {} bytes, the file has {file_len}",
            l.total_size
        )));
    }
    usize_of(l.ring_offset, "ring offset")?;
    Ok(l)
}

impl Drop for SessionLink {
    fn drop(&mut self) {
        self.detach();
    }
}

/// The default tracer's attach: when `RINGTRACE_SESSION` names a session
/// file, a tracer on it (and an `atexit` handler that publishes what is
/// left and marks the process exited). A session that cannot be opened is
/// reported once on stderr and the program traces in process.
pub(crate) fn attach_from_env() -> Option<Tracer> {
    let path = std::env::var_os(SESSION_ENV)?;
    if path.is_empty() {
        return None;
    }
    let t = Session::open(Path::new(&path))
        .map_err(|e| e.to_string())
        .and_then(|s| Tracer::attach_session(s).map_err(|e| e.to_string()));
    match t {
        Ok(t) => {
            extern "C" fn at_exit() {
                if let Some(t) = crate::tracer::global_if_exists() {
                    if let Some(l) = link_of(t) {
                        l.detach();
                    }
                }
            }
            // SAFETY: registers a plain function; it runs at exit() and only
            // publishes table records and stores atomics.
            unsafe {
                libc::atexit(at_exit);
            }
            Some(t)
        }
        Err(e) => {
            eprintln!(
                "ringtrace: {SESSION_ENV}={}: {e}; tracing in process instead",
                Path::new(&path).display()
            );
            None
        }
    }
}

/// A tracer on the rings of `session`, as a writer (registered in its
/// process table, publishing its formats) or as a reader from outside.
fn on_session(session: Session, writer: bool) -> Result<Tracer, TracerError> {
    let l = session.layout().clone();
    let clock = session.clock();
    let (map, buf) = session.into_parts();
    let config = TracerConfig {
        bytes_per_context: l.bytes_per_context,
        page_size: l.page_size,
        mode: l.mode,
        clock: Some(clock),
        max_contexts: l.contexts,
        saved_cmdlines: if writer { 128 } else { 1 << 16 },
        take_over_exited: l.take_over_exited,
    };
    let link: Arc<dyn SharedStorage> = Arc::new(SessionLink::new(map, writer));
    Tracer::assemble(config, buf, Some(link))
}

/// The session link of `t`, if `t` is on a session.
fn link_of(t: &Tracer) -> Option<&SessionLink> {
    t.inner.session()?.as_any().downcast_ref::<SessionLink>()
}

/// What [`Tracer::import_session_tables`] learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportStats {
    /// Event types imported.
    pub events: u64,
    /// Printk sites imported.
    pub sites: u64,
    /// Thread names imported.
    pub comms: u64,
    /// Records that did not parse or clashed with what this process knows.
    pub refused: u64,
    /// Malformed records skipped so far (bad offsets, lengths, kinds).
    pub malformed: u64,
}

impl Tracer {
    /// Builds a tracer on the rings of `session` (created by `ringtrace
    /// record` or [`Session::create`]): its geometry, mode and clock come
    /// from the session; `saved_cmdlines` is this process's own table size.
    /// This process registers as a writer of the session; the event
    /// formats, printk formats and thread names it uses are published in
    /// the session's tables. Programs rarely call this: the default tracer
    /// attaches by itself when `RINGTRACE_SESSION` names a session file.
    pub fn attach_session(session: Session) -> Result<Tracer, TracerError> {
        on_session(session, true)
    }

    /// Builds a tracer that reads `session` from outside (the `ringtrace`
    /// command): nothing is registered; call
    /// [`Tracer::import_session_tables`] to learn the writers' event
    /// formats, printk formats and thread names before reading.
    pub fn read_session(session: Session) -> Result<Tracer, TracerError> {
        on_session(session, false)
    }

    /// The session this tracer is built on, if any: its file.
    pub fn session_path(&self) -> Option<&Path> {
        link_of(self).map(|l| l.map.path.as_path())
    }

    /// Reader side of a session: imports the table records committed since
    /// the last call (event formats into the process's event registry,
    /// printk sites into its site table, thread names into this tracer), so
    /// that the pipe, the text output and the exporters decode the writers'
    /// records. Call it before reading, and again as a live program goes on.
    /// Does nothing for a tracer that is not on a session.
    pub fn import_session_tables(&self) -> ImportStats {
        let mut st = ImportStats::default();
        let Some(l) = link_of(self) else {
            return st;
        };
        let (entries, malformed) = l.poll_tables();
        st.malformed = malformed;
        for e in entries {
            match e {
                TableEntry::Event { system, format } => {
                    // A type this process already has (the same name in
                    // the same system under that id) is not imported again.
                    let ok = link::leak_event_type(&system, &format).is_some_and(|ty| {
                        match Registry::global().get(ty.id) {
                            Some(have) => have.name == ty.name && have.system == ty.system,
                            None => Registry::global().register(ty).is_ok(),
                        }
                    });
                    if ok {
                        st.events += 1;
                    } else {
                        st.refused += 1;
                    }
                }
                TableEntry::Printk {
                    id,
                    fmt,
                    file,
                    line,
                } => {
                    if crate::printk::import_site(id, &fmt, &file, line) {
                        st.sites += 1;
                    } else {
                        st.refused += 1;
                    }
                }
                TableEntry::Comm { tid, comm } => {
                    if let Ok(mut c) = self.inner.cmdlines().lock() {
                        c.insert(tid, crate::tracer::Comm::new(&comm));
                    }
                    st.comms += 1;
                }
            }
        }
        st
    }

    /// Lease slots of this tracer's session taken back from processes that
    /// died holding them, and the events those had in flight (`None` when
    /// not on a session).
    pub fn session_reclaimed(&self) -> Option<(u64, u64)> {
        let h = link_of(self)?.map.header();
        Some((
            h.reclaimed_slots.load(Ordering::Relaxed),
            h.reclaimed_lost.load(Ordering::Relaxed),
        ))
    }

    /// Events refused by all the writer processes of this tracer's
    /// session (not only this one), and how many processes ran untraced
    /// because the session's process table was full (`None` when not on a
    /// session). Readers report these as lost.
    pub fn session_refused(&self) -> Option<SessionRefusals> {
        Some(refused_of(&link_of(self)?.map))
    }

    /// The writer processes of this tracer's session and the session's
    /// state (`None` when not on a session).
    pub fn session_state(&self) -> Option<(SessionState, Vec<ProcInfo>)> {
        let l = link_of(self)?;
        let p = processes_of(&l.map);
        Some((state_of(&p), p))
    }
}

/// A session found by [`list_sessions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    /// The file.
    pub path: PathBuf,
    /// The owner's uid (of the file).
    pub owner: u32,
    /// Bytes of the file.
    pub size: u64,
    /// The creator's pid (from the name).
    pub creator_pid: Option<u32>,
    /// The session's state; `Err` with the reason when it cannot be opened.
    pub state: Result<(SessionState, Vec<ProcInfo>), String>,
}

/// The session files in [`session_dirs`]: those of the caller opened for
/// their state, others only listed.
pub fn list_sessions() -> Vec<Listing> {
    let mut out = Vec::new();
    for d in session_dirs() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some((pid, _)) = parse_file_name(&name) else {
                continue;
            };
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let path = e.path();
            let state = if meta.uid() == euid() {
                Session::open(&path)
                    .map(|s| (s.state(), s.processes()))
                    .map_err(|e| e.to_string())
            } else {
                Err("another user's session".to_string())
            };
            out.push(Listing {
                path,
                owner: meta.uid(),
                size: meta.len(),
                creator_pid: pid.parse().ok(),
                state,
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Resolves a session argument: a path to a file, or a name matching
/// `ringtrace-*-NAME@*`, `ringtrace-PID-*` or the whole file name in the
/// session directories ([`session_dirs`]).
pub fn resolve(arg: &str) -> Result<PathBuf, SessionError> {
    let p = Path::new(arg);
    if arg.contains('/') || p.is_file() {
        return Ok(p.to_path_buf());
    }
    let found: Vec<PathBuf> = list_sessions()
        .into_iter()
        .map(|l| l.path)
        .filter(|path| {
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                return false;
            };
            let Some((pid, name)) = parse_file_name(file) else {
                return false;
            };
            file == arg || name == arg || pid == arg
        })
        .collect();
    match found.len() {
        0 => Err(SessionError::NotFound(arg.to_string())),
        1 => Ok(found.into_iter().next().unwrap_or_default()),
        _ => Err(SessionError::Ambiguous {
            name: arg.to_string(),
            matches: found
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> SessionConfig {
        SessionConfig {
            contexts: 2,
            bytes_per_context: 8192,
            dir: Some(dir.to_path_buf()),
            ..SessionConfig::new("unit")
        }
    }

    #[test]
    fn create_open_tables_and_processes() {
        let d = tempfile::tempdir().unwrap();
        let s = Session::create(&cfg(d.path())).unwrap();
        assert_eq!(s.state(), SessionState::Waiting);
        assert!(s.append(table::KIND_COMM, &[&7i32.to_le_bytes(), b"worker"]));
        let o = Session::open(s.path()).unwrap();
        assert_eq!(o.layout(), s.layout());
        let mut r = o.table_reader();
        let got = r.poll();
        assert_eq!(
            got,
            vec![TableEntry::Comm {
                tid: 7,
                comm: "worker".into()
            }]
        );
        assert!(r.poll().is_empty());
        assert!(s.register_process());
        assert_eq!(o.state(), SessionState::Alive);
        s.mark_exited();
        assert_eq!(o.state(), SessionState::Exited);
        // The rings have no room to grow: all of the file is reserved.
        let rings = Config::new(2).bytes_per_ring(8192);
        let fixed = rings.max_pages_per_ring(rings.pages_per_ring);
        assert_eq!(
            s.layout().ring_size,
            RingBuffer::region_size(&fixed).unwrap()
        );
        assert!(s.layout().ring_size < RingBuffer::region_size(&rings).unwrap());
        // The same name again: another file (a random suffix, O_EXCL).
        let again = Session::create(&cfg(d.path())).unwrap();
        assert_ne!(again.path(), s.path());
    }

    /// A session with a page pool: the pool is in the ring region, whose
    /// every byte is reserved with the rest; a process that opens the
    /// session sees it, and one context can take all of it.
    #[test]
    fn pool_bytes_are_reserved_and_shared() {
        use std::os::unix::fs::MetadataExt as _;
        let d = tempfile::tempdir().unwrap();
        let cap = ringtrace_ring::format::data_capacity(4096);
        let s = Session::create(&SessionConfig {
            pool_bytes: 10 * cap,
            mode: Mode::ProducerConsumer,
            ..cfg(d.path())
        })
        .unwrap();
        let rings = Config::new(2)
            .bytes_per_ring(8192)
            .pool_pages(10)
            .mode(Mode::ProducerConsumer);
        let fixed = rings.max_pages_per_ring(rings.pages_per_ring);
        assert_eq!(
            s.layout().ring_size,
            RingBuffer::region_size(&fixed).unwrap()
        );
        let meta = s.file().metadata().unwrap();
        assert!(
            meta.blocks() * 512 >= meta.len(),
            "all of the file is reserved"
        );
        let o = Session::open(s.path()).unwrap();
        let buf = o.ring_buffer();
        assert_eq!(buf.config().pool_pages, 10);
        let own = buf.ring_pages(1).unwrap();
        let mut w = buf.writer(1).unwrap();
        let mut n = 0u64;
        while w.write(n, &[9; 200]).is_ok() {
            n += 1;
        }
        assert_eq!(buf.ring_pages(1).unwrap(), own + 10);
        assert_eq!(s.ring_buffer().pool_free_pages(), 0);
        drop(w);
        let mut c = buf.consumer(1).unwrap();
        let mut read = 0;
        while let Some(ev) = c.consume().unwrap() {
            assert_eq!((ev.timestamp, &ev.payload[..200]), (read, &[9u8; 200][..]));
            read += 1;
        }
        assert_eq!(read, n);
        let st = buf.stats(1).unwrap();
        assert_eq!((st.committed, st.read, st.dropped), (n, n, 1));
        assert_eq!(
            st.written,
            st.read + st.overrun + st.dropped + st.commit_overrun + st.entries
        );
    }

    #[test]
    fn full_tables_refuse_and_count_and_bad_entries_are_skipped() {
        let d = tempfile::tempdir().unwrap();
        let s = Session::create(&SessionConfig {
            table_entries: 3,
            ..cfg(d.path())
        })
        .unwrap();
        assert!(s.append(KIND_COMM, &[&1i32.to_le_bytes(), b"a"]));
        assert!(s.append(KIND_COMM, &[&2i32.to_le_bytes(), b"b"]));
        assert!(s.append(KIND_PRINTK, &[&[1, 0, 0, 0], &[0; 4], &[200, 0, 0, 0]]));
        assert!(!s.append(KIND_COMM, &[&3i32.to_le_bytes(), b"c"]));
        assert!(!s.append(KIND_EVENT, &[&vec![0u8; table::MAX_RECORD + 1]]));
        assert_eq!(s.table_full(), 2);
        // Entry 1 points outside the data area.
        s.map.index()[1].offset_for_test(u32::MAX - 2);
        let mut r = s.table_reader();
        let got = r.poll();
        assert_eq!(
            got,
            vec![TableEntry::Comm {
                tid: 1,
                comm: "a".into()
            }]
        );
        // The printk record claims a 200-byte format it does not have.
        assert_eq!(r.malformed(), 2);
    }

    #[test]
    fn the_takeover_switch_is_kept_in_the_header_and_followed_by_attached_writers() {
        let d = tempfile::tempdir().unwrap();
        let s = Session::create(&SessionConfig {
            mode: Mode::Overwrite,
            take_over_exited: true,
            ..cfg(d.path())
        })
        .unwrap();
        let o = Session::open(s.path()).unwrap();
        assert!(o.layout().take_over_exited);
        let t: &'static Tracer = Box::leak(Box::new(Tracer::attach_session(s).unwrap()));
        assert!(t.config().take_over_exited);
        // Two contexts, five threads one after another, nothing read.
        for i in 0..5u32 {
            std::thread::spawn(move || {
                t.record(&crate::bprintk!("thread %u", i)).unwrap();
            })
            .join()
            .unwrap();
        }
        let st = t.stats();
        assert_eq!(
            (st.leases, st.takeovers, st.refused_no_context),
            (5, 3, 0),
            "{st:?}"
        );
        // All five events are in the two rings (none read, none overwritten).
        let mut buffered = 0;
        for r in 0..2 {
            let s = t.ring_stats(r).unwrap();
            assert_eq!(
                s.written,
                s.read + s.overrun + s.dropped + s.commit_overrun + s.entries,
                "ring {r}: {s:?}"
            );
            assert_eq!(
                s.committed,
                s.read + s.overrun + s.entries,
                "ring {r}: {s:?}"
            );
            buffered += s.entries;
        }
        assert_eq!(buffered, 5);
        // Off by default, and unknown bits are refused.
        let plain = Session::create(&SessionConfig {
            name: "plain".into(),
            ..cfg(d.path())
        })
        .unwrap();
        assert!(!plain.layout().take_over_exited);
        plain.map.header().flags.store(2, Ordering::Relaxed);
        let e = Session::open(plain.path()).unwrap_err().to_string();
        assert!(e.contains("unknown flags 0x2"), "{e}");
    }

    #[test]
    fn a_dead_pid_is_reported_dead() {
        let d = tempfile::tempdir().unwrap();
        let s = Session::create(&cfg(d.path())).unwrap();
        let e = &s.map.procs()[0];
        let mut kid = std::process::Command::new("true").spawn().unwrap();
        let pid = kid.id();
        kid.wait().unwrap();
        e.pid.store(pid, Ordering::Release);
        e.state.store(PROC_RUNNING, Ordering::Release);
        assert_eq!(s.state(), SessionState::Dead);
    }

    #[test]
    fn slots_of_gone_processes_are_reclaimed_and_their_entries_taken_over() {
        use crate::tracer::{slot_owner, slot_state, EXITED, LEASED};
        let d = tempfile::tempdir().unwrap();
        let s = Session::create(&SessionConfig {
            contexts: 3,
            ..cfg(d.path())
        })
        .unwrap();
        let mut kid = std::process::Command::new("true").spawn().unwrap();
        let dead = kid.id();
        kid.wait().unwrap();
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

    #[test]
    fn bad_headers_are_refused_with_a_reason() {
        let d = tempfile::tempdir().unwrap();
        let s = Session::create(&cfg(d.path())).unwrap();
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
}
