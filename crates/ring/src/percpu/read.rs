//! The per-CPU consumer: reads a CPU's committed events in order, with the
//! ring crate's page decoder, and frees pages for the writers.

use std::sync::MutexGuard;

use super::storage::PerCpuRing;
use crate::format::{
    decode, PageFormatError, PageRecord, COMMIT_OFFSET, MISSED_MASK, PAGE_HEADER_SIZE,
};
use crate::sync::Ordering::{Acquire, Relaxed, Release};

/// Where a CPU's reader is: page `seq`, `off` data bytes consumed, the
/// running time stamp at `off`. Guarded by the CPU's reader lock.
#[derive(Debug, Default)]
pub(crate) struct ReadPos {
    seq: u64,
    off: usize,
    running: u64,
}

/// One event read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerCpuEvent<'a> {
    /// Its time stamp.
    pub timestamp: u64,
    /// Its payload, rounded up to 4 bytes (the format keeps no exact
    /// length).
    pub payload: &'a [u8],
}

/// A CPU's ring does not follow the protocol or the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PerCpuReadError {
    /// No such CPU.
    #[error("no ring for CPU {cpu} ({cpus} rings)")]
    NoCpu {
        /// The CPU asked for.
        cpu: usize,
        /// Rings of the tracer.
        cpus: usize,
    },
    /// A tail or commit word is impossible.
    #[error("CPU {cpu} page {seq}: {what}")]
    Corrupt {
        /// The CPU.
        cpu: usize,
        /// The page sequence number.
        seq: u64,
        /// What is wrong.
        what: String,
    },
    /// An event does not decode.
    #[error("CPU {cpu} page {seq}: {source}")]
    Format {
        /// The CPU.
        cpu: usize,
        /// The page sequence number.
        seq: u64,
        /// The decoder's error.
        source: PageFormatError,
    },
}

/// The one reader of a CPU's ring (others wait on its lock; writers never do).
#[derive(Debug)]
pub struct PerCpuConsumer<'a> {
    ring: &'a PerCpuRing,
    cpu: usize,
    pos: MutexGuard<'a, ReadPos>,
}

impl PerCpuRing {
    /// The reader of CPU `cpu`'s ring; blocks while another holds it.
    pub fn consumer(&self, cpu: usize) -> Result<PerCpuConsumer<'_>, PerCpuReadError> {
        let lock = self.readers.get(cpu).ok_or(PerCpuReadError::NoCpu {
            cpu,
            cpus: self.cpus(),
        })?;
        let pos = lock.lock().unwrap_or_else(|e| e.into_inner());
        Ok(PerCpuConsumer {
            ring: self,
            cpu,
            pos,
        })
    }
}

impl PerCpuConsumer<'_> {
    /// Hands every event committed so far to `f`, oldest first, and frees
    /// the pages it finished. Returns how many events it read.
    pub fn consume(&mut self, mut f: impl FnMut(PerCpuEvent<'_>)) -> Result<u64, PerCpuReadError> {
        let mut n = 0;
        let result = self.consume_pages(&mut f, &mut n);
        self.ring.slots[self.cpu].read.fetch_add(n, Relaxed);
        result.map(|()| n)
    }

    fn consume_pages(
        &mut self,
        f: &mut impl FnMut(PerCpuEvent<'_>),
        n: &mut u64,
    ) -> Result<(), PerCpuReadError> {
        let (ring, cpu) = (self.ring, self.cpu);
        let slot = &ring.slots[cpu];
        loop {
            // Acquire: pairs with the final store P of the section that
            // published this tail (cs.rs), so the pages' bytes and header
            // words stored before it are visible.
            let tail = slot.tail.load(Acquire);
            let (tseq, toff) = (tail >> 32, (tail & 0xffff_ffff) as usize);
            let seq = self.pos.seq;
            if seq >= tseq {
                return Ok(());
            }
            let corrupt = |what: String| PerCpuReadError::Corrupt { cpu, seq, what };
            if tseq - seq > ring.pages as u64 {
                return Err(corrupt(format!("tail at page {tseq} lapped the reader")));
            }
            let page = ring.page(cpu, seq);
            let closed = seq + 1 < tseq;
            // SAFETY: the page is published (seq < tseq) and not freed
            // (only this reader advances `head`); its header words were
            // stored before the P that published them and are not written
            // again: a section rewrites the commit word of the current page
            // only, and we read it only once the page is closed.
            let (page_ts, commit) = unsafe {
                (
                    page.cast::<u64>().read(),
                    page.add(COMMIT_OFFSET).cast::<u64>().read(),
                )
            };
            let end = if closed {
                (commit & !MISSED_MASK) as usize
            } else {
                toff
            };
            if end > ring.capacity() || end < self.pos.off {
                return Err(corrupt(format!(
                    "committed {end} bytes, reader at {}, page data {} bytes",
                    self.pos.off,
                    ring.capacity()
                )));
            }
            // SAFETY: bytes [0, end) of the data area are published and
            // immutable until this reader frees the page: writers only
            // write past the tail's offset of the current page, or into
            // freed pages.
            let data = unsafe { std::slice::from_raw_parts(page.add(PAGE_HEADER_SIZE), end) };
            self.decode(data, page_ts, f, n)
                .map_err(|source| PerCpuReadError::Format { cpu, seq, source })?;
            if !closed {
                return Ok(());
            }
            self.pos.seq = seq + 1;
            self.pos.off = 0;
            // Release: our reads of the page happen before a writer's reuse
            // (its Acquire load of `head` in `write::snapshot`).
            slot.head.store(seq + 1, Release);
        }
    }

    fn decode(
        &mut self,
        data: &[u8],
        page_ts: u64,
        f: &mut impl FnMut(PerCpuEvent<'_>),
        n: &mut u64,
    ) -> Result<(), PageFormatError> {
        if self.pos.off == 0 {
            self.pos.running = page_ts;
        }
        while self.pos.off < data.len() {
            let (record, len) = decode(data, self.pos.off)?;
            self.pos.running = record.stamp_after(self.pos.running, page_ts);
            if let PageRecord::Data {
                payload_offset,
                payload_len,
                ..
            } = record
            {
                f(PerCpuEvent {
                    timestamp: self.pos.running,
                    payload: &data[payload_offset..payload_offset + payload_len],
                });
                *n += 1;
            }
            self.pos.off += len;
        }
        Ok(())
    }
}
