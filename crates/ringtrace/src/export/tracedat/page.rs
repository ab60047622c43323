//! An independent decoder for one ring-buffer page (`buffer_data_page`).
//!
//! It owns nothing but the byte rules of a page, as the kernel writes it and
//! as trace-cmd's `kbuffer` reads it (trace-dat-format.md §5, §6 and
//! kernel-ring-buffer.md §2.1–2.2):
//!
//! ```text
//! offset 0        u64 time_stamp      time of the page's first event
//! offset 8        long commit         bits 0..26 data bytes, bit 31 RB_MISSED_EVENTS,
//!                                     bit 30 RB_MISSED_STORED (count at data+commit)
//! offset 8+L      events              L = long size (4 or 8, from header_page)
//! ```
//!
//! Event header: one `u32`; on little-endian files `type_len` is the low 5
//! bits and `time_delta` the high 27, on big-endian files the reverse (C
//! bit-field order follows the byte order).
//!
//! Time rules (trace-cmd's, which we match so our reader and `trace-cmd
//! report` agree): the running stamp starts at the page `time_stamp`; every
//! event adds its `time_delta`, padding included (the kernel's own reader
//! ignores a padding delta; `kbuffer` adds it); a time extend (30) adds
//! `time_delta | array[0] << 27`; an absolute stamp (31) replaces the low 59
//! bits and keeps the top 5 of the running stamp. Padding with
//! `time_delta == 0` ends the page.

use super::error::PageError;

use ringtrace_ring::format::TIME_EXTEND_MAX;
/// The event and page constants are the ring's, one definition for the
/// writer and every reader (`ringtrace::ring::format`).
pub use ringtrace_ring::format::{
    MISSED_EVENTS, MISSED_STORED, TS_SHIFT, TYPE_DATA_MAX, TYPE_PADDING, TYPE_TIME_EXTEND,
    TYPE_TIME_STAMP,
};
/// Mask of the data length in `commit` as a file reader applies it
/// (trace-cmd's `COMMIT_MASK`, 27 bits): wider than the ring's page sizes
/// need, so a file from a kernel with larger sub-buffers still reads.
#[doc(hidden)]
pub const COMMIT_MASK: u64 = (1 << 27) - 1;

/// Byte order and `long` size of the pages in a file.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLayout {
    /// Size of `commit` and of the stored lost count: 4 or 8.
    pub long_size: usize,
    /// `true` for big-endian pages.
    pub big_endian: bool,
}

impl PageLayout {
    /// The layout of pages written by this machine's 64-bit kernel ABI.
    pub const NATIVE_64: PageLayout = PageLayout {
        long_size: 8,
        big_endian: cfg!(target_endian = "big"),
    };

    /// Bytes before the first event: 8 + long size.
    #[must_use]
    pub fn header_size(&self) -> usize {
        8 + self.long_size
    }

    pub(crate) fn u32_at(&self, b: &[u8], at: usize) -> Option<u32> {
        self.int_at(b, at, u32::from_be_bytes, u32::from_le_bytes)
    }

    pub(crate) fn u64_at(&self, b: &[u8], at: usize) -> Option<u64> {
        self.int_at(b, at, u64::from_be_bytes, u64::from_le_bytes)
    }

    /// The `N`-byte integer at `at` in the file's byte order (`be` or `le`
    /// decodes it), or `None` past the end of `b`.
    fn int_at<const N: usize, T>(
        &self,
        b: &[u8],
        at: usize,
        be: fn([u8; N]) -> T,
        le: fn([u8; N]) -> T,
    ) -> Option<T> {
        let raw: [u8; N] = b.get(at..at.checked_add(N)?)?.try_into().ok()?;
        Some(if self.big_endian { be(raw) } else { le(raw) })
    }

    fn long_at(&self, b: &[u8], at: usize) -> Option<u64> {
        if self.long_size == 8 {
            self.u64_at(b, at)
        } else {
            self.u32_at(b, at).map(u64::from)
        }
    }

    /// Splits an event header word into `(type_len, time_delta)`.
    #[must_use]
    pub fn split_header(&self, word: u32) -> (u32, u32) {
        if self.big_endian {
            (word >> TS_SHIFT, word & ((1 << TS_SHIFT) - 1))
        } else {
            (word & 0x1f, word >> 5)
        }
    }
}

/// The decoded page header.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// Full clock value of the page's first event.
    pub time_stamp: u64,
    /// Committed data bytes (flags masked off).
    pub commit: usize,
    /// `RB_MISSED_EVENTS`: events were lost before this page.
    pub missed_events: bool,
    /// The lost count, when `RB_MISSED_STORED` is set too.
    pub lost_count: Option<u64>,
}

/// One data event of a page.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageEvent<'a> {
    /// Time stamp, after deltas, extends and absolute stamps.
    pub ts: u64,
    /// Offset of the event header from the start of the page.
    pub offset: usize,
    /// The payload (for tracing events: `common_type` onwards). Its length is
    /// the stored length, rounded up to 4 by the ring buffer.
    pub payload: &'a [u8],
}

/// Parses a page header and returns it with an iterator over the data events.
///
/// `page` may be shorter than the trace's page size (the last page of a
/// truncated CPU block); `commit` must fit in what is there.
#[doc(hidden)]
pub fn parse_page(
    page: &[u8],
    layout: PageLayout,
) -> Result<(PageHeader, PageEvents<'_>), PageError> {
    let hsize = layout.header_size();
    let (Some(time_stamp), Some(commit_word)) = (layout.u64_at(page, 0), layout.long_at(page, 8))
    else {
        return Err(PageError::TooShort {
            len: page.len(),
            header: hsize,
        });
    };
    let data = &page[hsize.min(page.len())..];
    let commit = (commit_word & COMMIT_MASK) as usize;
    if commit > data.len() {
        return Err(PageError::CommitTooLarge {
            commit,
            capacity: data.len(),
        });
    }
    let missed_events = commit_word & MISSED_EVENTS != 0;
    let lost_count = if missed_events && commit_word & MISSED_STORED != 0 {
        match layout.long_at(data, commit) {
            Some(n) => Some(n),
            None => return Err(PageError::LostCountOutOfPage { offset: commit }),
        }
    } else {
        None
    };
    let header = PageHeader {
        time_stamp,
        commit,
        missed_events,
        lost_count,
    };
    let events = PageEvents {
        data: &data[..commit],
        header_size: hsize,
        layout,
        pos: 0,
        ts: time_stamp,
        done: false,
    };
    Ok((header, events))
}

/// Iterator over the data events of one page; yields an error at most once,
/// then stops.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct PageEvents<'a> {
    data: &'a [u8],
    header_size: usize,
    layout: PageLayout,
    pos: usize,
    ts: u64,
    done: bool,
}

impl<'a> PageEvents<'a> {
    /// Data offset (from the end of the page header) of the next event.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }

    fn fail(&mut self, e: PageError) -> Option<Result<PageEvent<'a>, PageError>> {
        self.done = true;
        Some(Err(e))
    }

    /// The data event whose header is at `at` and whose payload runs from
    /// `payload_at` to `end` (`payload_at <= end`); one that runs past the
    /// commit fails with `overrun`.
    fn data_event(
        &mut self,
        at: usize,
        payload_at: usize,
        end: usize,
        delta: u32,
        overrun: PageError,
    ) -> Option<Result<PageEvent<'a>, PageError>> {
        if end > self.data.len() {
            return self.fail(overrun);
        }
        self.ts = self.ts.wrapping_add(u64::from(delta));
        self.pos = end;
        Some(Ok(PageEvent {
            ts: self.ts,
            offset: self.header_size + at,
            payload: &self.data[payload_at..end],
        }))
    }
}

impl<'a> Iterator for PageEvents<'a> {
    type Item = Result<PageEvent<'a>, PageError>;

    fn next(&mut self) -> Option<Self::Item> {
        // Each pass consumes at least 4 bytes of a finite slice: no hang.
        let commit = self.data.len();
        let mut pending_extend: Option<usize> = None;
        while !self.done {
            let at = self.pos;
            if at >= commit {
                self.done = true;
                if let Some(offset) = pending_extend {
                    return self.fail(PageError::DanglingTimeExtend { offset });
                }
                return None;
            }
            let Some(word) = self.layout.u32_at(self.data, at) else {
                return self.fail(PageError::EventOverrun {
                    offset: at,
                    type_len: 0,
                    commit,
                });
            };
            let (type_len, delta) = self.layout.split_header(word);
            let array0 = self.layout.u32_at(self.data, at + 4);
            let overrun = PageError::EventOverrun {
                offset: at,
                type_len,
                commit,
            };
            match type_len {
                TYPE_PADDING => {
                    if delta == 0 {
                        // Null padding: the rest of the page is unused.
                        self.done = true;
                        return None;
                    }
                    // A filler that claims more than `commit` carries no data:
                    // treat it as the end of the page, as kbuffer does.
                    let end = array0.map(|len| at + 4 + len as usize);
                    self.ts = self.ts.wrapping_add(u64::from(delta));
                    match end {
                        Some(end) if end <= commit => self.pos = end,
                        _ => self.pos = commit,
                    }
                }
                TYPE_TIME_EXTEND | TYPE_TIME_STAMP => {
                    let Some(hi) = array0 else {
                        return self.fail(overrun);
                    };
                    let value = u64::from(delta) | (u64::from(hi) << TS_SHIFT);
                    if type_len == TYPE_TIME_EXTEND {
                        self.ts = self.ts.wrapping_add(value);
                    } else {
                        self.ts = (self.ts & !TIME_EXTEND_MAX) | (value & TIME_EXTEND_MAX);
                    }
                    pending_extend = Some(at);
                    self.pos = at + 8;
                }
                0 => {
                    let Some(len) = array0 else {
                        return self.fail(overrun);
                    };
                    if len < 4 {
                        return self.fail(PageError::BadLength {
                            offset: at,
                            length: len,
                        });
                    }
                    return self.data_event(at, at + 8, at + 4 + len as usize, delta, overrun);
                }
                _ => {
                    let end = at + 4 + 4 * type_len as usize;
                    return self.data_event(at, at + 4, end, delta, overrun);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn le_page(ts: u64, commit: u64, events: &[u32]) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&ts.to_le_bytes());
        p.extend_from_slice(&commit.to_le_bytes());
        for w in events {
            p.extend_from_slice(&w.to_le_bytes());
        }
        p.resize(256, 0);
        p
    }

    #[test]
    fn decodes_small_large_extend_and_padding() {
        // small event (type_len 1, delta 5), extend of 1<<27, type_len 0 event
        // with 8 payload bytes, padding with delta 2 and 4 bytes, small event.
        let words = [
            1 | (5 << 5),
            0xAAAA_AAAA,
            TYPE_TIME_EXTEND,
            1,
            0,
            12,
            0x1111_1111,
            0x2222_2222,
            TYPE_PADDING | (2 << 5),
            8,
            0,
            1 | (3 << 5),
            0xBBBB_BBBB,
        ];
        let page = le_page(100, (words.len() * 4) as u64, &words);
        let (h, ev) = parse_page(&page, PageLayout::NATIVE_64).unwrap();
        assert_eq!(h.commit, 52);
        let ev: Vec<_> = ev.map(|e| e.unwrap()).collect();
        assert_eq!(ev.len(), 3);
        assert_eq!(
            (ev[0].ts, ev[0].offset, ev[0].payload),
            (105, 16, &[0xAA; 4][..])
        );
        assert_eq!(ev[1].ts, 105 + (1 << 27));
        assert_eq!(ev[1].payload.len(), 8);
        assert_eq!(ev[2].ts, 105 + (1 << 27) + 2 + 3);
    }

    #[test]
    fn big_endian_and_4_byte_long() {
        // Big-endian bit-fields: type_len in the top 5 bits. 12-byte header.
        let mut p = Vec::new();
        p.extend_from_slice(&50u64.to_be_bytes());
        p.extend_from_slice(&(8u32 | (1 << 31)).to_be_bytes());
        p.extend_from_slice(&((1u32 << 27) | 7).to_be_bytes()); // type_len 1, delta 7
        p.extend_from_slice(&[1, 2, 3, 4]);
        p.resize(64, 0);
        let layout = PageLayout {
            long_size: 4,
            big_endian: true,
        };
        let (h, ev) = parse_page(&p, layout).unwrap();
        assert!(h.missed_events && h.lost_count.is_none());
        let ev: Vec<_> = ev.map(|e| e.unwrap()).collect();
        assert_eq!(
            (ev[0].ts, ev[0].offset, ev[0].payload),
            (57, 12, &[1, 2, 3, 4][..])
        );
    }

    #[test]
    fn absolute_stamp_keeps_top_bits_and_null_padding_ends_page() {
        let top = 3u64 << 59;
        let words = [
            TYPE_TIME_STAMP | (5 << 5),
            2,
            1,
            0xCC,
            TYPE_PADDING,
            1,
            0x77,
        ];
        let page = le_page(top | 10, 28, &words);
        let (_, ev) = parse_page(&page, PageLayout::NATIVE_64).unwrap();
        let ev: Vec<_> = ev.map(|e| e.unwrap()).collect();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].ts, top | (2 << 27) | 5);
    }

    #[test]
    fn lost_count_and_errors() {
        let page = le_page(0, 8 | MISSED_EVENTS | MISSED_STORED, &[1, 0, 7, 0]);
        let (h, _) = parse_page(&page, PageLayout::NATIVE_64).unwrap();
        assert!(h.missed_events);
        assert_eq!(h.lost_count, Some(7));

        let page = le_page(0, 1000, &[]);
        assert!(matches!(
            parse_page(&page, PageLayout::NATIVE_64),
            Err(PageError::CommitTooLarge { .. })
        ));

        let page = le_page(0, 8, &[3, 0]);
        let (_, mut ev) = parse_page(&page, PageLayout::NATIVE_64).unwrap();
        assert!(matches!(
            ev.next(),
            Some(Err(PageError::EventOverrun { .. }))
        ));
        assert!(ev.next().is_none());

        let page = le_page(0, 8, &[TYPE_TIME_EXTEND, 1]);
        let (_, mut ev) = parse_page(&page, PageLayout::NATIVE_64).unwrap();
        assert!(matches!(
            ev.next(),
            Some(Err(PageError::DanglingTimeExtend { .. }))
        ));
    }
}
