//! Errors of the ring buffer, each saying what was wrong and what to do.

use crate::format::PageFormatError;
use thiserror::Error;

/// What both `ReaderHeld` errors tell the user to do.
const READER_HELD_ADVICE: &str =
    "one consuming reader per ring; stop that reader, or read without consuming";

/// Why a write did not land. Every variant but [`WriteError::TooLarge`] and
/// [`WriteError::Disabled`] is counted in the ring's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum WriteError {
    /// The payload is empty or larger than a page can hold.
    #[error("payload of {len} bytes is outside 1..={max} bytes; split it or use larger pages")]
    TooLarge {
        /// Requested payload length.
        len: usize,
        /// Largest payload for this buffer's page size.
        max: usize,
    },
    /// Recording is off for this ring; the write is not an attempt.
    #[error("recording is disabled on this ring")]
    Disabled,
    /// Producer/consumer mode and the ring is full: the event was dropped
    /// and counted as dropped. Read faster or use larger rings.
    #[error("ring is full (producer/consumer mode): event dropped")]
    Full,
    /// Nested writers lapped the ring up to an uncommitted reservation: the
    /// event was dropped and counted as commit overrun.
    #[error("nested writes filled the ring up to an uncommitted event: event dropped")]
    CommitOverrun,
    /// Writes were nested deeper than [`crate::MAX_NEST`]: dropped and counted.
    #[error("writes nested more than {} deep: event dropped", crate::MAX_NEST)]
    NestTooDeep,
    /// The ring's state is inconsistent; the ring was disabled. Reported once
    /// per ring in its statistics.
    #[error("ring state is inconsistent ({0}); the ring has been disabled")]
    Corrupt(&'static str),
}

/// A ring index that does not exist, or a ring that already has a writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum RingError {
    /// No ring with that index.
    #[error("ring {ring} does not exist; the buffer has {rings} rings")]
    NoSuchRing {
        /// Index asked for.
        ring: usize,
        /// Number of rings.
        rings: usize,
    },
    /// Another writer (thread) holds this ring. One thread writes a ring at a
    /// time; signal handlers of that thread use `nested_writer`.
    #[error("ring {ring} already has a writer; each writer context needs its own ring")]
    Busy {
        /// The ring.
        ring: usize,
    },
    /// Another consuming reader, alive, holds the ring's reader lock: one
    /// [`crate::Consumer`] per ring at a time (the kernel's `reader_lock`).
    /// Not waited for (see [`crate::RingBuffer::consumer`]). Read without
    /// consuming instead (`RingBuffer::iter`), or stop that reader.
    #[error("ring {ring} is being read by {holder}: {}", READER_HELD_ADVICE)]
    ReaderHeld {
        /// The ring.
        ring: usize,
        /// Who holds it.
        holder: ReaderHolder,
    },
}

/// The live holder of a ring's reader lock: a process, named by its pid
/// and command (`/proc/PID/comm`), or another reader of this process.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ReaderHolder {
    /// Process id of the holder (this process's for an in-process reader;
    /// 0 for an unnamed one: a ring swap in progress, or a damaged word).
    pub pid: u32,
    /// The holder is this process: another thread's `Consumer`, one not
    /// dropped yet, or a ring swap in progress.
    pub this_process: bool,
    /// The command name, `/proc/PID/comm` (at most 15 bytes, UTF-8 lossy
    /// cut at a character boundary); empty when it could not be read.
    comm: [u8; 16],
    comm_len: u8,
}

impl ReaderHolder {
    /// A holder named by `pid` and its command name (cut to 15 bytes).
    pub(crate) fn new(pid: u32, this_process: bool, command: &str) -> ReaderHolder {
        let mut comm = [0u8; 16];
        let mut len = 0;
        for (i, c) in command.char_indices() {
            let end = i + c.len_utf8();
            if end > 15 {
                break;
            }
            len = end;
        }
        comm[..len].copy_from_slice(&command.as_bytes()[..len]);
        ReaderHolder {
            pid,
            this_process,
            comm,
            comm_len: len as u8,
        }
    }

    /// The holder's command name (`/proc/PID/comm`); empty if unknown.
    pub fn command(&self) -> &str {
        let len = usize::from(self.comm_len).min(self.comm.len());
        std::str::from_utf8(&self.comm[..len]).unwrap_or("")
    }
}

impl std::fmt::Debug for ReaderHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderHolder")
            .field("pid", &self.pid)
            .field("this_process", &self.this_process)
            .field("command", &self.command())
            .finish()
    }
}

impl std::fmt::Display for ReaderHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.pid == 0 {
            f.write_str("an unnamed holder (a ring swap in progress, or a damaged lock word)")
        } else if self.this_process {
            write!(f, "another reader in this process (pid {})", self.pid)
        } else if self.command().is_empty() {
            write!(f, "process {}", self.pid)
        } else {
            write!(f, "process {} ({})", self.pid, self.command())
        }
    }
}

/// A buffer configuration that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Page size not a power of two in the accepted range.
    #[error("page size {0} must be a power of two from 4096 to 1048576 bytes")]
    PageSize(usize),
    /// Too few pages per ring.
    #[error(
        "{0} pages per ring is too few: a ring needs at least 2 pages (plus the reader's page)"
    )]
    TooFewPages(usize),
    /// No rings.
    #[error("a buffer needs at least one ring")]
    NoRings,
    /// The region would not fit in memory or in 32-bit page indices.
    #[error("{rings} rings of {pages} pages of {page_size} bytes is too large")]
    TooLarge {
        /// Rings asked for.
        rings: usize,
        /// Pages per ring.
        pages: usize,
        /// Page size.
        page_size: usize,
    },
    /// The allocation failed.
    #[error("could not allocate {0} bytes for the buffer")]
    OutOfMemory(u64),
}

/// A read that found the ring's pages inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadError {
    /// An event on the reader's page does not decode. The rest of that page is
    /// skipped; reading continues with the next page.
    #[error("ring {ring}, page {page}: {source}")]
    CorruptEvent {
        /// Ring index.
        ring: usize,
        /// Page index in the buffer.
        page: u32,
        /// What was wrong.
        source: PageFormatError,
    },
    /// A page link or index points outside the buffer.
    #[error("ring {ring}: {what}")]
    CorruptRing {
        /// Ring index.
        ring: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// A reader over several rings (a tracer's merged pipe) could not take
    /// ring `ring`: another consuming reader holds it (as
    /// [`RingError::ReaderHeld`]). Nothing was read.
    #[error("ring {ring} is being read by {holder}: {}", READER_HELD_ADVICE)]
    ReaderHeld {
        /// The ring the merged reader could not take.
        ring: usize,
        /// Who holds it (pid and command).
        holder: ReaderHolder,
    },
}

/// A control operation (reset, resize, swap) that could not be done. Nothing
/// was changed, and recording on the ring continues.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ControlError {
    /// The ring does not exist.
    #[error(transparent)]
    Ring(#[from] RingError),
    /// A write stayed in flight on the ring for the whole wait (a writer
    /// holding a `Reservation` across a blocking call, say). Try again.
    #[error("ring {ring}: a write stayed in flight for {waited_ms} ms; try again when it commits")]
    WriteInFlight {
        /// The ring.
        ring: usize,
        /// How long the operation waited.
        waited_ms: u64,
    },
    /// A reader kept the ring busy for the whole wait, or (swap) a reader
    /// exists: drop the `Consumer` or iterator first.
    #[error("ring {ring}: {what}")]
    ReaderBusy {
        /// The ring.
        ring: usize,
        /// What held it.
        what: &'static str,
    },
    /// A resize to a size the ring cannot take.
    #[error("ring {ring}: cannot resize to {pages} pages; allowed 2..={max} (Config::max_pages_per_ring)")]
    BadSize {
        /// The ring.
        ring: usize,
        /// Pages asked for.
        pages: usize,
        /// Most pages the ring may have (minus pages lent to page readers).
        max: usize,
    },
    /// Swap between buffers of different shapes.
    #[error("cannot swap ring {ring}: the buffers differ in shape ({what})")]
    Mismatch {
        /// The ring.
        ring: usize,
        /// What differs.
        what: &'static str,
    },
    /// Resize and swap are refused on a buffer with a shared page pool
    /// ([`crate::Config::pool_pages`]): its rings hold pool pages, which
    /// neither operation knows how to move.
    #[error("ring {ring}: cannot {what} a ring of a buffer with a page pool (Config::pool_pages)")]
    HasPool {
        /// The ring.
        ring: usize,
        /// The operation refused.
        what: &'static str,
    },
    /// [`crate::RingBuffer::disable_ring`] called `max` times more than
    /// `enable_ring` on one ring: the count is full.
    #[error("ring {ring}: disabled {max} times without enable_ring; the count is full")]
    DisabledTooOften {
        /// The ring.
        ring: usize,
        /// Most nested disables.
        max: u32,
    },
    /// The ring's state is inconsistent; see the ring's `corruptions` count.
    #[error("ring {ring}: {what}")]
    Corrupt {
        /// The ring.
        ring: usize,
        /// What was wrong.
        what: &'static str,
    },
}

/// A shared buffer that cannot be opened: what is wrong with it.
#[derive(Debug, Error)]
pub enum OpenError {
    /// Reading or mapping the file failed.
    #[error("cannot map the buffer: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not start with a ringtrace buffer header (or its
    /// creator has not finished setting it up).
    #[error("not a ringtrace buffer (magic {found:#018x}); is the session still starting?")]
    NotABuffer {
        /// The first 8 bytes found.
        found: u64,
    },
    /// Written by a ringtrace with another layout.
    #[error(
        "buffer layout version {found}, this build reads {expected}: use the matching ringtrace"
    )]
    Version {
        /// Version in the file.
        found: u32,
        /// Version this build reads.
        expected: u32,
    },
    /// The header's description of the layout is inconsistent.
    #[error("corrupt buffer header: {0}")]
    Layout(&'static str),
    /// The file is shorter than the layout says.
    #[error("buffer file truncated: the layout needs {need} bytes, the file has {have}")]
    Truncated {
        /// Bytes the layout needs.
        need: u64,
        /// Bytes in the file.
        have: u64,
    },
}
