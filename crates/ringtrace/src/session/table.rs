//! The session's append-only tables: event formats, printk formats and
//! thread names (see the module docs of [`crate::session`] for the
//! protocol).

use crate::sync::{AtomicU32, Ordering};
use std::sync::Arc;

use super::SessionMap;

/// Record kind: an event type's `format` text (`system\0format`).
#[doc(hidden)]
pub const KIND_EVENT: u32 = 1;
/// Record kind: a printk call site (`id u32, line u32, fmt len u32, fmt, file`).
#[doc(hidden)]
pub const KIND_PRINTK: u32 = 2;
/// Record kind: a thread name (`tid i32, comm`).
#[doc(hidden)]
pub const KIND_COMM: u32 = 3;
/// Record kind: the process of a thread (`tid i32, pid u32, process
/// name`), appended after the thread's [`KIND_COMM`] record.
#[doc(hidden)]
pub const KIND_PROCESS: u32 = 4;

/// Largest record.
pub const MAX_RECORD: usize = 64 * 1024;
/// Most index entries a reader keeps waiting for (reserved, not yet
/// committed); past it the oldest are given up.
const MAX_PENDING: usize = 4096;
/// Most index entries one poll scans.
const SCAN_PER_POLL: u64 = 1 << 16;

/// Entry state: reserved, not yet committed (or its writer died).
const RESERVED: u32 = 0;
/// Entry state: committed; kind, offset and length are valid.
const COMMITTED: u32 = 1;
/// Entry state: abandoned (no data room); readers skip it.
const ABANDONED: u32 = 2;

/// One index entry.
#[repr(C)]
pub(crate) struct IndexEntry {
    state: AtomicU32,
    kind: AtomicU32,
    offset: AtomicU32,
    len: AtomicU32,
}

#[cfg(test)]
impl IndexEntry {
    pub(crate) fn offset_for_test(&self, off: u32) {
        self.offset.store(off, Ordering::Relaxed);
    }
}

/// Appends a record made of `parts` (async-signal-safe: atomics and a copy).
pub(crate) fn append(map: &SessionMap, kind: u32, parts: &[&[u8]]) -> bool {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    append_with(map, kind, len, |dst| {
        let mut at = 0;
        for p in parts {
            dst[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        true
    })
}

/// Appends a record of `len` bytes that `fill` writes in place (its slice
/// is exactly `len` bytes; it returns whether it filled them all, else the
/// record is abandoned). Async-signal-safe if `fill` is: atomics only.
pub(crate) fn append_with(
    map: &SessionMap,
    kind: u32,
    len: usize,
    fill: impl FnOnce(&mut [u8]) -> bool,
) -> bool {
    let h = map.header();
    if len > MAX_RECORD {
        h.table_full.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    let l = &map.layout;
    // Relaxed: the index slot is ours alone once taken; publication is the
    // Release store of its state below.
    let i = h.index_tail.fetch_add(1, Ordering::Relaxed);
    let Some(entry) = usize::try_from(i).ok().and_then(|i| map.index().get(i)) else {
        h.table_full.fetch_add(1, Ordering::Relaxed);
        return false;
    };
    let room = len.div_ceil(8) * 8;
    let off = h.data_tail.fetch_add(room as u64, Ordering::Relaxed);
    let fits = off
        .checked_add(room as u64)
        .is_some_and(|end| end <= l.data_size as u64);
    if !fits {
        h.table_full.fetch_add(1, Ordering::Relaxed);
        // Release: pairs with the reader's Acquire load of the state.
        entry.state.store(ABANDONED, Ordering::Release);
        return false;
    }
    // SAFETY: [off, off + room) lies inside the data area (checked above)
    // and was handed to this call alone by the fetch_add, so nobody else
    // reads or writes these bytes until the state below says COMMITTED.
    let dst = unsafe { std::slice::from_raw_parts_mut(map.data_ptr().add(off as usize), len) };
    if !fill(dst) {
        // Release: as below; the reader skips it.
        entry.state.store(ABANDONED, Ordering::Release);
        return false;
    }
    entry.kind.store(kind, Ordering::Relaxed);
    entry.offset.store(off as u32, Ordering::Relaxed);
    entry.len.store(len as u32, Ordering::Relaxed);
    // Release: pairs with the Acquire load in `TableReader::take`: a reader
    // that sees COMMITTED sees the bytes and the fields above.
    entry.state.store(COMMITTED, Ordering::Release);
    true
}

/// A record of the tables.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableEntry {
    /// An event type's `format` text.
    Event {
        /// Its system.
        system: String,
        /// The `format` file text.
        format: String,
    },
    /// A printk call site.
    Printk {
        /// The writer process's site id.
        id: u32,
        /// Format text.
        fmt: String,
        /// Source file.
        file: String,
        /// Source line.
        line: u32,
    },
    /// A thread name.
    Comm {
        /// Thread id.
        tid: i32,
        /// Name.
        comm: String,
    },
    /// The process a thread belongs to.
    Process {
        /// Thread id.
        tid: i32,
        /// The process's pid (the thread's tgid).
        pid: u32,
        /// The process's name.
        name: String,
    },
}

/// Reads committed table records incrementally; every offset and length is
/// bounds-checked, every loop bounded.
#[doc(hidden)]
#[derive(Debug)]
pub struct TableReader {
    map: Arc<SessionMap>,
    next: u64,
    pending: Vec<u64>,
    malformed: u64,
    /// Record bytes read so far. The records of a sane session fit in its
    /// data area once; past that the index is scribbled (entries pointing
    /// at the same bytes over and over), and the rest is skipped as
    /// malformed: a reader's work is bounded by the data size, not by
    /// what the index claims.
    bytes_read: u64,
}

impl TableReader {
    pub(crate) fn new(map: Arc<SessionMap>) -> TableReader {
        TableReader {
            map,
            next: 0,
            pending: Vec::new(),
            malformed: 0,
            bytes_read: 0,
        }
    }

    /// Records skipped because they were malformed (bad kind, offset,
    /// length or content).
    pub fn malformed(&self) -> u64 {
        self.malformed
    }

    /// The records committed since the last poll (and those that were
    /// reserved then and are committed now).
    pub fn poll(&mut self) -> Vec<TableEntry> {
        let mut out = Vec::new();
        let pending = std::mem::take(&mut self.pending);
        for i in pending {
            if !self.take(i, &mut out) {
                self.pending.push(i);
            }
        }
        let cap = self.map.layout.index_capacity as u64;
        let tail = self
            .map
            .header()
            .index_tail
            .load(Ordering::Relaxed)
            .min(cap);
        let end = tail.min(self.next.saturating_add(SCAN_PER_POLL));
        while self.next < end {
            let i = self.next;
            self.next += 1;
            if !self.take(i, &mut out) {
                if self.pending.len() >= MAX_PENDING {
                    self.pending.remove(0);
                }
                self.pending.push(i);
            }
        }
        out
    }

    /// Reads entry `i` into `out`; false when it is not committed yet.
    fn take(&mut self, i: u64, out: &mut Vec<TableEntry>) -> bool {
        let Some(e) = usize::try_from(i)
            .ok()
            .and_then(|i| self.map.index().get(i))
        else {
            return true;
        };
        // Acquire: pairs with the Release store in `append`.
        match e.state.load(Ordering::Acquire) {
            RESERVED => return false,
            COMMITTED => {}
            _ => return true,
        }
        let kind = e.kind.load(Ordering::Relaxed);
        let off = e.offset.load(Ordering::Relaxed) as usize;
        let len = e.len.load(Ordering::Relaxed) as usize;
        let size = self.map.layout.data_size;
        if len > MAX_RECORD
            || off.checked_add(len).is_none_or(|end| end > size)
            || self.bytes_read.saturating_add(len as u64) > size as u64
        {
            self.malformed += 1;
            return true;
        }
        self.bytes_read += len as u64;
        let mut bytes = vec![0u8; len];
        // SAFETY: [off, off + len) is inside the data area (checked just
        // above against the validated data size); `bytes` is a fresh buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.data_ptr().add(off), bytes.as_mut_ptr(), len);
        }
        match parse(kind, &bytes) {
            Some(t) => out.push(t),
            None => self.malformed += 1,
        }
        true
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn parse(kind: u32, b: &[u8]) -> Option<TableEntry> {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    match kind {
        KIND_EVENT => {
            let nul = b.iter().position(|&c| c == 0)?;
            Some(TableEntry::Event {
                system: text(&b[..nul])?,
                format: text(&b[nul + 1..])?,
            })
        }
        KIND_PRINTK => {
            let id = u32_at(b, 0)?;
            let line = u32_at(b, 4)?;
            let flen = u32_at(b, 8)? as usize;
            let fmt = b.get(12..12usize.checked_add(flen)?)?;
            let file = b.get(12 + flen..)?;
            Some(TableEntry::Printk {
                id,
                fmt: text(fmt)?,
                file: text(file)?,
                line,
            })
        }
        KIND_COMM => {
            let tid = u32_at(b, 0)? as i32;
            let comm = b.get(4..)?;
            if comm.len() > 64 {
                return None;
            }
            Some(TableEntry::Comm {
                tid,
                comm: String::from_utf8_lossy(comm).into_owned(),
            })
        }
        KIND_PROCESS => {
            let name = b.get(8..)?;
            if name.len() > 64 {
                return None;
            }
            Some(TableEntry::Process {
                tid: u32_at(b, 0)? as i32,
                pid: u32_at(b, 4)?,
                name: String::from_utf8_lossy(name).into_owned(),
            })
        }
        _ => None,
    }
}
