//! Records borrowed from the page they sit in: the one per-page decode
//! that every reader of a trace.dat's records goes through (the owned
//! iterators [`CpuRecords`](super::CpuRecords) and
//! [`MergedRecords`](super::MergedRecords), and the exporters' shared
//! record loop, [`TraceDatReader::walk`](super::TraceDatReader::walk)).
//!
//! A CPU's current page is copied once into its `PageSlots` buffer and
//! split into slots (a record's place in the buffer, a lost-events marker,
//! or the error that ended the page), in file order; the slots and the
//! buffer are reused from page to page, so walking a file allocates
//! nothing per record or per page.
//!
//! The merge is `trace-cmd report`'s (see [`super::read`]): the smallest
//! time stamp first, ties to the lower CPU table index; an error in a
//! CPU's stream is yielded when that CPU's next item is wanted.

use std::io::{Read, Seek};

use super::error::TraceDatError;
use super::page::{parse_page, PageLayout};
use super::read::{CpuCursor, TraceDatRecord, TraceItem};

/// A data record, borrowed from its page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// CPU number.
    pub cpu: u32,
    /// Raw time stamp (clock units).
    pub ts: u64,
    /// Page index within the CPU's data.
    pub page: u64,
    /// File offset of the event header (as [`TraceDatRecord::file_offset`]).
    pub file_offset: u64,
    /// Payload bytes (`common_type` onwards; rounded up to 4).
    pub data: &'a [u8],
}

impl<'a> From<&'a TraceDatRecord> for RecordRef<'a> {
    fn from(r: &'a TraceDatRecord) -> Self {
        RecordRef {
            cpu: r.cpu,
            ts: r.ts,
            page: r.page,
            file_offset: r.file_offset,
            data: &r.data,
        }
    }
}

impl RecordRef<'_> {
    /// The record with its payload copied.
    #[must_use]
    pub fn to_record(&self) -> TraceDatRecord {
        TraceDatRecord {
            cpu: self.cpu,
            ts: self.ts,
            page: self.page,
            file_offset: self.file_offset,
            data: self.data.to_vec(),
        }
    }
}

/// What a walk yields: [`TraceItem`], its record borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemRef<'a> {
    /// A data record.
    Event(RecordRef<'a>),
    /// Events were lost before this page (as [`TraceItem::Lost`]).
    Lost {
        /// CPU number.
        cpu: u32,
        /// The page's time stamp.
        ts: u64,
        /// Page index.
        page: u64,
        /// Lost count, when the page stored it.
        count: Option<u64>,
    },
}

impl<'a> From<&'a TraceItem> for ItemRef<'a> {
    fn from(i: &'a TraceItem) -> Self {
        match i {
            TraceItem::Event(r) => ItemRef::Event(r.into()),
            TraceItem::Lost {
                cpu,
                ts,
                page,
                count,
            } => ItemRef::Lost {
                cpu: *cpu,
                ts: *ts,
                page: *page,
                count: *count,
            },
        }
    }
}

impl ItemRef<'_> {
    /// The item, owned.
    #[must_use]
    pub fn to_item(&self) -> TraceItem {
        match *self {
            ItemRef::Event(r) => TraceItem::Event(r.to_record()),
            ItemRef::Lost {
                cpu,
                ts,
                page,
                count,
            } => TraceItem::Lost {
                cpu,
                ts,
                page,
                count,
            },
        }
    }
}

/// One item of a page.
#[derive(Debug)]
enum Slot {
    /// A record: its stamp, and its header's and payload's places in the
    /// page buffer (`start..end`).
    Event {
        ts: u64,
        header: u32,
        start: u32,
        end: u32,
    },
    /// The page's lost-events marker.
    Lost { ts: u64, count: Option<u64> },
    /// The error that ended the page (its later records are skipped);
    /// `None` once taken.
    Failed(Option<TraceDatError>),
}

/// One CPU's current page: its bytes and its items, in file order.
#[derive(Debug, Default)]
pub(super) struct PageSlots {
    buf: Vec<u8>,
    slots: Vec<Slot>,
    /// The next slot to hand out.
    next: usize,
    cpu: u32,
    page: u64,
    /// File offset of the page (compressed files: as
    /// [`TraceDatRecord::file_offset`] counts it).
    offset: u64,
}

impl PageSlots {
    /// The page buffer, to be refilled by the caller and then split by
    /// [`split`](Self::split).
    pub(super) fn buf_mut(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Splits the page now in the buffer into slots. A damaged header is
    /// the error (no slots); a damaged event ends the page with a
    /// [`Slot::Failed`] after the records before it.
    pub(super) fn split(
        &mut self,
        layout: PageLayout,
        cpu: u32,
        page: u64,
        offset: u64,
    ) -> Result<(), TraceDatError> {
        self.slots.clear();
        self.next = 0;
        (self.cpu, self.page, self.offset) = (cpu, page, offset);
        let page_err = |source| TraceDatError::Page {
            cpu,
            page,
            offset,
            source,
        };
        let (header, events) = parse_page(&self.buf, layout).map_err(page_err)?;
        if header.missed_events {
            self.slots.push(Slot::Lost {
                ts: header.time_stamp,
                count: header.lost_count,
            });
        }
        let base = self.buf.as_ptr() as usize;
        for ev in events {
            match ev {
                Ok(ev) => {
                    // The payload is a sub-slice of `buf`: its place is its
                    // address's distance from the buffer's start. Pages are
                    // at most 1 MiB, so places fit in u32.
                    let start = ev.payload.as_ptr() as usize - base;
                    self.slots.push(Slot::Event {
                        ts: ev.ts,
                        header: ev.offset as u32,
                        start: start as u32,
                        end: (start + ev.payload.len()) as u32,
                    });
                }
                // The page iterator stops after its error.
                Err(e) => self.slots.push(Slot::Failed(Some(page_err(e)))),
            }
        }
        Ok(())
    }

    /// The time stamp of the next slot, or its error (taken): `None` when
    /// the page is done.
    fn head(&mut self) -> Option<Result<u64, TraceDatError>> {
        let slot = self.slots.get_mut(self.next)?;
        Some(match slot {
            Slot::Event { ts, .. } | Slot::Lost { ts, .. } => Ok(*ts),
            Slot::Failed(e) => {
                self.next += 1;
                Err(e
                    .take()
                    .unwrap_or_else(|| TraceDatError::Usage("a page error was taken twice".into())))
            }
        })
    }

    /// Hands out the next slot, which [`head`](Self::head) said is an
    /// item.
    fn take(&mut self) -> ItemRef<'_> {
        let i = self.next;
        self.next += 1;
        match self.slots[i] {
            Slot::Event {
                ts,
                header,
                start,
                end,
            } => ItemRef::Event(RecordRef {
                cpu: self.cpu,
                ts,
                page: self.page,
                file_offset: self.offset + u64::from(header),
                data: &self.buf[start as usize..end as usize],
            }),
            Slot::Lost { ts, count } => ItemRef::Lost {
                cpu: self.cpu,
                ts,
                page: self.page,
                count,
            },
            // `head` consumed it.
            Slot::Failed(_) => unreachable!("take after head said an item"),
        }
    }
}

impl CpuCursor {
    /// The next item of this CPU, or the error in its place; `None` at the
    /// end of its data.
    pub(super) fn next_ref<R: Read + Seek>(
        &mut self,
        r: &mut R,
        file_len: u64,
    ) -> Result<Option<ItemRef<'_>>, TraceDatError> {
        match self.head(r, file_len)? {
            Some(_) => Ok(Some(self.slots.take())),
            None => Ok(None),
        }
    }

    /// The time stamp of the next item (loading pages as needed), or the
    /// error in its place (consumed); `None` at the end.
    fn head<R: Read + Seek>(
        &mut self,
        r: &mut R,
        file_len: u64,
    ) -> Result<Option<u64>, TraceDatError> {
        loop {
            if let Some(h) = self.slots.head() {
                return h.map(Some);
            }
            if !self.load_page(r, file_len)? {
                return Ok(None);
            }
        }
    }
}

/// All CPUs merged by time stamp, records borrowed: see the module docs.
/// A damaged page yields one error ([`TraceDatError::is_skippable`]) and
/// the walk goes on; after any other error it ends.
#[derive(Debug)]
pub struct Walk<'a, R> {
    src: &'a mut R,
    file_len: u64,
    cursors: Vec<CpuCursor>,
    /// Per cursor: the time stamp of its next item, when known.
    heads: Vec<Option<u64>>,
    done: bool,
}

impl<'a, R: Read + Seek> Walk<'a, R> {
    pub(super) fn new(src: &'a mut R, file_len: u64, cursors: Vec<CpuCursor>) -> Self {
        let heads = vec![None; cursors.len()];
        Walk {
            src,
            file_len,
            cursors,
            heads,
            done: false,
        }
    }

    /// The next item, or the error in its place; `None` at the end.
    #[allow(clippy::should_implement_trait)] // a lending iterator
    pub fn next(&mut self) -> Option<Result<ItemRef<'_>, TraceDatError>> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(i)) => {
                self.heads[i] = None;
                Some(Ok(self.cursors[i].slots.take()))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = !e.is_skippable();
                Some(Err(e))
            }
        }
    }

    /// The cursor whose next item comes first.
    fn step(&mut self) -> Result<Option<usize>, TraceDatError> {
        let mut best: Option<(usize, u64)> = None;
        for i in 0..self.cursors.len() {
            if self.heads[i].is_none() {
                self.heads[i] = self.cursors[i].head(self.src, self.file_len)?;
            }
            if let Some(ts) = self.heads[i] {
                if best.is_none_or(|(_, b)| ts < b) {
                    best = Some((i, ts));
                }
            }
        }
        Ok(best.map(|(i, _)| i))
    }
}
