//! Sessions: a tracer's rings and tables in a shared-memory file, so that
//! another process (the `ringtrace` command) reads a running program's
//! events live, and still reads them after the program died.
//!
//! The files of this module, one job each: `layout` (the header, the
//! geometry and its validation), `file` (creating and opening a session
//! file), `procs` (writer processes: liveness, refusals, taking back what
//! a gone process held), `table` (the lock-free tables), `link` (a
//! tracer's tie to its session: publishing and importing formats),
//! `attach` (tracers on a session, the default tracer's attach,
//! the session's methods on `Tracer`), `find` (session directories,
//! names, listing).
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
//! a lease generation (see `tracer/mod.rs`). A process that dies holding
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

mod attach;
mod file;
mod find;
mod layout;
mod link;
mod procs;
mod table;
#[cfg(test)]
mod tests;

use crate::sync::Ordering;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ringtrace_ring::{Mode, OpenError, RingBuffer};

use crate::clock::{Clock, ClockKind};

pub(crate) use attach::attach_from_env;
pub use attach::ImportStats;
pub use find::{
    list_sessions, parse_file_name, resolve, session_dir, session_dirs, Listing, FILE_PREFIX,
    SUFFIX_SEP,
};
use layout::SessionMap;
pub use layout::{
    Layout, HEADER_SIZE, MAGIC, MAX_CONTEXTS, MAX_INDEX, MAX_TABLE_DATA, PROCS, VERSION,
};
pub(crate) use link::SessionLink;
pub use procs::{ProcInfo, ProcState, SessionRefusals, SessionState};
pub use table::{TableEntry, TableReader, KIND_COMM, KIND_EVENT, KIND_PRINTK};

/// The environment variable naming the session file a program attaches to.
pub const SESSION_ENV: &str = "RINGTRACE_SESSION";
/// The environment variable naming the directory of session files
/// (instead of `/dev/shm`): where sessions are created and looked up.
pub const SHM_DIR_ENV: &str = "RINGTRACE_SHM_DIR";

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

/// The caller's effective uid (owner checks).
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

    /// The wall-clock time of the session's start (`None` for the
    /// `counter` clock).
    pub fn wall_start(&self) -> Option<crate::clock::WallStart> {
        self.map.wall_start()
    }

    /// Whether the session records (`tracing_on`): the switch every
    /// writer process reads before each record.
    pub fn is_recording(&self) -> bool {
        self.map.tracing_off().load(Ordering::Relaxed) == 0
    }

    /// Turns recording on or off for every writer process of the session
    /// (`ringtrace start` / `stop`): records made while off are refused
    /// before they reach a ring, and not counted (not attempts, as with the
    /// kernel's `tracing_off`).
    pub fn set_recording(&self, on: bool) {
        crate::tracer::storage::set_switch(self.map.tracing_off(), &self.ring, on);
    }

    /// Makes exactly the contexts in `records` record, in every writer
    /// process (`ringtrace contexts`, the kernel's `tracing_cpumask`); the
    /// others' events are refused and counted
    /// ([`SessionRefusals::masked`]).
    pub fn set_contexts(&self, records: &[usize]) {
        let words = self.map.context_mask_off();
        crate::tracer::mask::set(words, self.layout().contexts, |r| records.contains(&r));
    }

    /// The contexts that record ([`Session::set_contexts`]).
    pub fn recording_contexts(&self) -> Vec<usize> {
        let words = self.map.context_mask_off();
        (0..self.layout().contexts)
            .filter(|&r| crate::tracer::mask::allows(words, r))
            .collect()
    }

    /// Table appends refused for lack of room so far.
    pub fn table_full(&self) -> u64 {
        self.map.header().table_full.load(Ordering::Relaxed)
    }

    /// The writer processes and their states (see the module docs).
    pub fn processes(&self) -> Vec<ProcInfo> {
        procs::processes_of(&self.map)
    }

    /// The session's state from its processes.
    pub fn state(&self) -> SessionState {
        procs::state_of(&self.processes())
    }

    /// Claims a process-table entry for the calling process (idempotent).
    /// Returns false when the table is full.
    pub fn register_process(&self) -> bool {
        procs::register_process(&self.map).is_some()
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
        procs::refused_of(&self.map)
    }

    /// Marks the calling process as detached cleanly.
    pub fn mark_exited(&self) {
        procs::mark_exited(&self.map);
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
