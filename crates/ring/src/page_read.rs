//! Whole-page reads (the kernel's `ring_buffer_read_page`, the base of
//! `trace_pipe_raw` and of trace.dat export).
//!
//! The caller lends a page ([`ReadPage`], from
//! [`RingBuffer::read_page_buffer`]). When the reader's page is complete
//! (the commit has left it) and unread, the lent page is swapped in as the
//! new reader page and the full one is handed out: no byte is copied. The
//! lent pages are spare slots of the ring's own region (a few per ring), so
//! the swap is two index stores. Otherwise (a partly read page, the page the
//! writer is still filling, or a heap page when the ring's spare slots are
//! all lent) the committed events are copied.
//!
//! A page handed out is in the kernel's format, byte for byte:
//!
//! ```text
//! 0   u64 time_stamp     time of the first event (deltas run from it)
//! 8   u64 commit         data bytes | bit 31 MISSED_EVENTS (events were
//!                        lost before this page) | bit 30 MISSED_STORED
//! 16  events             `commit & !MISSED_MASK` bytes
//!     u64 missed count   when MISSED_STORED (it fits after the data)
//!     zeros              to the end of the page
//! ```

use crate::buffer::counter_sum;
use crate::control::{pop_free, push_free};
use crate::format::{
    decode, PageRecord, COMMIT_OFFSET, MISSED_EVENTS, MISSED_STORED, PAGE_HEADER_SIZE,
};
use crate::layout::{write_entries, Region, RingMeta};
use crate::read::{Busy, Consumer};
use crate::sync::Ordering::*;
use crate::{ReadError, RingBuffer, RingError};

/// A page lent to [`Consumer::read_page`]; holds the last page read.
pub struct ReadPage<'a> {
    region: &'a Region,
    meta: &'a RingMeta,
    ring: u32,
    /// A spare slot of the ring's region, or `None` for `heap`.
    slot: Option<u32>,
    heap: Box<[u8]>,
    last: Option<PageInfo>,
}

impl std::fmt::Debug for ReadPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPage")
            .field("ring", &self.ring)
            .field("slot", &self.slot)
            .field("last", &self.last)
            .finish()
    }
}

/// What one page read handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageInfo {
    /// Events on the page.
    pub events: u64,
    /// Bytes of event data (the commit word without flags).
    pub data_len: usize,
    /// Events lost before the page (overrun, dropped), as flagged.
    pub lost: u64,
    /// Whether the count is stored after the data (`MISSED_STORED`).
    pub lost_stored: bool,
    /// Whether the page was swapped out of the ring without a copy.
    pub zero_copy: bool,
    /// Time stamp of the page (its first event's base).
    pub time_stamp: u64,
}

impl RingBuffer {
    /// A page to lend to [`Consumer::read_page`] for ring `ring`: one of the
    /// ring's spare slots (zero-copy reads), or a heap page when they are all
    /// lent (reads then copy).
    pub fn read_page_buffer(&self, ring: usize) -> Result<ReadPage<'_>, RingError> {
        let r = self.check(ring)?;
        let region = self.region();
        let meta = region.ring(r);
        let slot = {
            let _busy = Busy::take(meta);
            let slot = pop_free(meta, region, r);
            if slot.is_some() {
                meta.ctl.lent.fetch_add(1, Relaxed);
            }
            slot
        };
        let heap = if slot.is_some() {
            Box::default()
        } else {
            vec![0u8; region.geometry().page_size as usize].into_boxed_slice()
        };
        Ok(ReadPage {
            region,
            meta,
            ring: r,
            slot,
            heap,
            last: None,
        })
    }
}

impl<'a> ReadPage<'a> {
    fn page_ptr(&mut self) -> *mut u8 {
        match self.slot {
            Some(s) => self.region.page_bytes(s),
            None => self.heap.as_mut_ptr(),
        }
    }

    /// The whole page as last handed out (`page_size` bytes); zeros before
    /// the first read.
    pub fn bytes(&self) -> &[u8] {
        let len = self.region.geometry().page_size as usize;
        match self.slot {
            // SAFETY: the slot is out of the ring and off the free list:
            // only this `ReadPage` reaches it until it is dropped.
            Some(s) => unsafe { std::slice::from_raw_parts(self.region.page_bytes(s), len) },
            None => &self.heap,
        }
    }

    /// What the last read handed out.
    pub fn info(&self) -> Option<PageInfo> {
        self.last
    }

    /// Whether reads into this page can be zero-copy (it is a spare slot).
    pub fn is_slot(&self) -> bool {
        self.slot.is_some()
    }
}

impl Drop for ReadPage<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            let _busy = Busy::take(self.meta);
            push_free(self.meta, self.region, s);
            self.meta.ctl.lent.fetch_sub(1, Relaxed);
        }
    }
}

impl Consumer<'_> {
    /// Reads the next page of events into `page` (`ring_buffer_read_page`).
    /// With `full`, only a complete page (one the commit has left) is
    /// taken: swapped out without a copy when it is unread and `page` is a
    /// spare slot, else its unread events are copied. Returns `None` when
    /// there is nothing (or, with `full`, no complete page) to read. With
    /// `full`, the page the writer is filling stays in the ring until the
    /// commit leaves it: the reader keeps off its lines. Events are
    /// consumed: counted in `read`, and the losses flagged on the page are
    /// not reported again by [`Consumer::consume`].
    ///
    /// ```
    /// use ringtrace_ring::{format, Config, RingBuffer};
    /// let buf = RingBuffer::new(Config::new(1)).unwrap();
    /// buf.writer(0).unwrap().write(5, b"abcd").unwrap();
    /// let mut page = buf.read_page_buffer(0).unwrap();
    /// let mut c = buf.consumer(0).unwrap();
    /// let info = c.read_page(&mut page, false).unwrap().unwrap();
    /// assert_eq!((info.events, info.time_stamp), (1, 5));
    /// let (rec, _) = format::decode(&page.bytes()[16..16 + info.data_len], 0).unwrap();
    /// assert!(matches!(rec, format::PageRecord::Data { payload_len: 4, .. }));
    /// ```
    pub fn read_page(
        &mut self,
        page: &mut ReadPage<'_>,
        full: bool,
    ) -> Result<Option<PageInfo>, ReadError> {
        if !std::ptr::eq(page.meta, self.meta()) {
            return Err(ReadError::CorruptRing {
                ring: self.ring_index() as usize,
                what: "read_page: the page was lent by another ring",
            });
        }
        let _busy = self.busy();
        let region = self.region();
        let meta = self.meta();
        let r = &meta.r;
        let cap = crate::format::data_capacity(region.geometry().page_size as usize);
        for _ in 0..region.geometry().ring_bound() * 2 + 4 {
            let rp = r.reader_page.load(Relaxed);
            if rp >= region.geometry().nr_pages {
                return Err(self.corrupt_ring("reader page index out of range"));
            }
            // Acquire: pairs with the Release store of `commit_page` in the
            // commit walk: if the commit has left `rp`, its `commit` is final.
            let commit_page = meta.w.commit_page.load(Acquire);
            // Acquire: pairs with the outermost writer's Release of `commit`.
            let commit = (region.page(rp).commit.load(Acquire) as usize).min(cap);
            let off = r.read_offset.load(Relaxed) as usize;
            let complete = commit_page != rp;
            if off >= commit {
                // With `full`, the page being filled stays in the ring:
                // it is not whole, and the writer is on its lines.
                if !complete || !self.swap_head(rp, full)? {
                    return Ok(None);
                }
                continue;
            }
            if full && !complete {
                return Ok(None);
            }
            let pm = region.page(rp);
            let known = r.lost_known.load(Relaxed);
            // Saturating: the counters may have been scribbled on (shared
            // memory); a reader must not panic or wrap on them.
            let lost = known.saturating_sub(r.lost_reported.load(Relaxed));
            let real_end = pm.real_end.load(Relaxed) as usize;
            let data_end = if complete && real_end != 0 && real_end <= commit {
                real_end
            } else {
                commit
            };
            // Room for the lost count after the data: when a page with
            // losses is full, its events go out in two copies, so that the
            // count is kept (the kernel drops it; trace-cmd then prints no
            // number).
            let limit = if lost > 0 {
                data_end.min(cap - 8)
            } else {
                data_end
            };
            let info = if complete && off == 0 && page.slot.is_some() && limit == data_end {
                self.swap_out(page, rp, commit, data_end, lost)
            } else {
                let span = Span {
                    off,
                    commit,
                    data_end,
                    limit,
                    complete,
                };
                match self.copy_out(page, rp, span, lost)? {
                    Some(info) => info,
                    None => continue, // only padding: next page
                }
            };
            // The losses flagged on this page; drops noted on it (added to
            // `lost_known` by `swap_out`/`copy_out`) go with the next one.
            r.lost_reported.store(known, Relaxed);
            page.last = Some(info);
            return Ok(Some(info));
        }
        Ok(None)
    }

    /// Zero copy: the lent slot becomes the reader page; the complete page
    /// `rp` goes out.
    fn swap_out(
        &mut self,
        page: &mut ReadPage<'_>,
        rp: u32,
        commit: usize,
        data_end: usize,
        lost: u64,
    ) -> PageInfo {
        let region = self.region();
        let r = &self.meta().r;
        let pm = region.page(rp);
        let spare = page.slot.replace(rp).unwrap_or(rp);
        let sm = region.page(spare);
        sm.clear();
        let events = write_entries(pm.write.load(Relaxed));
        r.reader_page.store(spare, Relaxed);
        r.read_offset.store(0, Relaxed);
        // Saturating and checked: the counters may have been scribbled on
        // (shared memory); a reader must not panic or wrap on them.
        r.read
            .store(r.read.load(Relaxed).saturating_add(events), Relaxed);
        r.read_bytes.store(
            r.read_bytes.load(Relaxed).saturating_add(commit as u64),
            Relaxed,
        );
        // Drops noted while `rp` was the tail come after its events: they
        // are lost before the next page.
        let noted = crate::layout::notes(pm.lost_at_end.swap(0, Relaxed));
        r.lost_known.store(
            counter_sum(self.meta(), &[r.lost_known.load(Relaxed), noted]),
            Relaxed,
        );
        let time_stamp = pm.time_stamp.load(Relaxed);
        // SAFETY: `rp` left the ring (the reader page is `spare` now) and is
        // the lent page: only `page` reaches it.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(page.page_ptr(), region.geometry().page_size as usize)
        };
        finish_page(bytes, time_stamp, data_end, lost, events, true)
    }

    /// Copies the committed events from `span.off` into the lent page,
    /// whole events up to `span.limit` (at least one).
    fn copy_out(
        &mut self,
        page: &mut ReadPage<'_>,
        rp: u32,
        span: Span,
        lost: u64,
    ) -> Result<Option<PageInfo>, ReadError> {
        let Span {
            off,
            commit,
            data_end,
            limit,
            complete,
        } = span;
        let region = self.region();
        let meta = self.meta();
        let r = &meta.r;
        let pm = region.page(rp);
        // SAFETY: [0, commit) of the reader page is committed and only this
        // reader (holding `busy`) can swap the page away.
        let data = unsafe { region.committed_data(rp, commit) };
        let page_ts = pm.time_stamp.load(Relaxed);
        let start_stamp = if off == 0 {
            page_ts
        } else {
            r.read_stamp.load(Relaxed)
        };
        let mut stamp = start_stamp;
        let mut at = off;
        let mut events = 0u64;
        while at < data_end {
            let (record, size) = match decode(&data[..data_end], at) {
                Ok(x) => x,
                Err(source) => {
                    r.read_offset.store(commit as u32, Relaxed);
                    meta.slow.corruptions.fetch_add(1, Relaxed);
                    return Err(ReadError::CorruptEvent {
                        ring: self.ring_index() as usize,
                        page: rp,
                        source,
                    });
                }
            };
            if at + size > limit && at > off {
                break;
            }
            stamp = record.stamp_after(stamp, page_ts);
            events += u64::from(matches!(record, PageRecord::Data { .. }));
            at += size;
        }
        let reached = at >= data_end;
        let new_off = match (reached, complete) {
            (true, true) => commit,
            (true, false) => data_end,
            (false, _) => at,
        };
        r.read_offset.store(new_off as u32, Relaxed);
        r.read_stamp.store(stamp, Relaxed);
        // As in `swap_out`: saturating and checked.
        r.read
            .store(r.read.load(Relaxed).saturating_add(events), Relaxed);
        r.read_bytes.store(
            r.read_bytes
                .load(Relaxed)
                .saturating_add((new_off - off) as u64),
            Relaxed,
        );
        if reached && complete {
            let noted = crate::layout::notes(pm.lost_at_end.swap(0, Relaxed));
            r.lost_known.store(
                counter_sum(meta, &[r.lost_known.load(Relaxed), noted]),
                Relaxed,
            );
        }
        if events == 0 {
            return Ok(None);
        }
        let len = at - off;
        let page_size = region.geometry().page_size as usize;
        let dst = page.page_ptr();
        // SAFETY: `dst` is the lent page (slot out of the ring, or heap),
        // `page_size` bytes, distinct from the reader page `rp`.
        let bytes = unsafe { std::slice::from_raw_parts_mut(dst, page_size) };
        bytes[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + len].copy_from_slice(&data[off..at]);
        Ok(Some(finish_page(
            bytes,
            start_stamp,
            len,
            lost,
            events,
            false,
        )))
    }
}

/// Where a copy reads from in the reader page's data area.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// The reader's offset.
    off: usize,
    /// The page's commit.
    commit: usize,
    /// Where its events end (before a closing filler).
    data_end: usize,
    /// Copy whole events up to here (at least one).
    limit: usize,
    /// Whether the commit has left the page (it will not grow).
    complete: bool,
}

/// Writes the page header and the missed count, and zeroes the tail.
fn finish_page(
    bytes: &mut [u8],
    time_stamp: u64,
    data_len: usize,
    lost: u64,
    events: u64,
    zero_copy: bool,
) -> PageInfo {
    let mut commit = data_len as u64;
    let mut end = PAGE_HEADER_SIZE + data_len;
    let mut lost_stored = false;
    if lost > 0 {
        commit |= MISSED_EVENTS;
        if end + 8 <= bytes.len() {
            bytes[end..end + 8].copy_from_slice(&lost.to_le_bytes());
            end += 8;
            commit |= MISSED_STORED;
            lost_stored = true;
        }
    }
    bytes[end..].fill(0);
    bytes[..8].copy_from_slice(&time_stamp.to_le_bytes());
    bytes[COMMIT_OFFSET..COMMIT_OFFSET + 8].copy_from_slice(&commit.to_le_bytes());
    PageInfo {
        events,
        data_len,
        lost,
        lost_stored,
        zero_copy,
        time_stamp,
    }
}

#[cfg(test)]
mod whole_page_tests {
    use crate::sync::Ordering::Relaxed;
    use crate::{Config, Mode, RingBuffer};

    /// With `full`, the page the writer is filling stays in the ring until
    /// the commit leaves it; then it is taken whole, zero-copy, with every
    /// event. Without `full`, the partial page is read as before.
    #[test]
    fn full_reads_leave_the_page_being_filled_in_the_ring() {
        for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
            let buf = RingBuffer::new(Config::new(1).pages_per_ring(4).mode(mode)).unwrap();
            let meta = buf.region().ring(0);
            let mut w = buf.writer(0).unwrap();
            let mut c = buf.consumer(0).unwrap();
            let mut page = buf.read_page_buffer(0).unwrap();
            w.write(1, &[7; 40]).unwrap();
            let (reader, head) = (
                meta.r.reader_page.load(Relaxed),
                meta.r.head_page.load(Relaxed),
            );
            assert_eq!(head, meta.w.commit_page.load(Relaxed));
            for _ in 0..3 {
                assert!(c.read_page(&mut page, true).unwrap().is_none());
            }
            assert_eq!(
                (
                    meta.r.reader_page.load(Relaxed),
                    meta.r.head_page.load(Relaxed)
                ),
                (reader, head),
                "{mode:?}: the page being filled was swapped out of the ring"
            );
            // Fill the page until the commit leaves it.
            let mut written = 1;
            while meta.w.commit_page.load(Relaxed) == head {
                w.write(written + 1, &[7; 40]).unwrap();
                written += 1;
            }
            let info = c.read_page(&mut page, true).unwrap().expect("a whole page");
            assert!(info.zero_copy, "{mode:?}");
            assert_eq!(
                info.events,
                written - 1,
                "{mode:?}: the last write went to the next page"
            );
            assert!(c.read_page(&mut page, true).unwrap().is_none());
            let rest = c
                .read_page(&mut page, false)
                .unwrap()
                .expect("the partial page");
            assert_eq!(rest.events, 1, "{mode:?}");
            let s = buf.stats(0).unwrap();
            assert_eq!(
                (s.written, s.read, s.entries),
                (written, written, 0),
                "{mode:?}"
            );
        }
    }
}
