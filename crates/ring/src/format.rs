//! The kernel's binary format of pages and events (64-bit layout).
//!
//! This module owns the byte layout only: sizes, encodings and a bounds-checked
//! decoder. It knows nothing of rings, writers or readers.
//!
//! ```text
//! page (sub-buffer), page_size bytes:
//!   0: u64 time_stamp   full clock value of the page's first event
//!   8: u64 commit       committed data bytes; bit 31 MISSED_EVENTS,
//!                       bit 30 MISSED_STORED (count stored after the data)
//!  16: data             events, 4-byte aligned
//!
//! event header, one u32:  | time_delta: 27 bits | type_len: 5 bits |
//!   type_len 1..=28  payload of type_len*4 bytes follows
//!   type_len 0       array[0] = 4 + payload (rounded to 4); payload follows it
//!   type_len 29      padding: time_delta 0 = rest of page unused,
//!                    otherwise array[0] + 4 bytes long (a discarded event)
//!   type_len 30      time extend: delta = time_delta | array[0] << 27
//!   type_len 31      absolute time stamp, same encoding
//! ```
//!
//! Source: `include/linux/ring_buffer.h` and `kernel/trace/ring_buffer.c`
//! (`rb_calculate_event_length`, `rb_update_event`, `rb_event_length`);
//! summarised in `shared/reference/kernel-ring-buffer.md` §2.

use thiserror::Error;

/// Size of the page header (`u64 time_stamp` + `u64 commit`).
pub const PAGE_HEADER_SIZE: usize = 16;
/// Offset of the `commit` word in the page header.
#[doc(hidden)]
pub const COMMIT_OFFSET: usize = 8;
/// Bits of an event's `time_delta` (the kernel's `TS_SHIFT`).
#[doc(hidden)]
pub const TS_SHIFT: u32 = 27;
/// Largest delta that fits in an event header: 2^27 - 1.
#[doc(hidden)]
pub const TS_DELTA_MAX: u64 = (1 << TS_SHIFT) - 1;
/// Largest delta a time extend carries: 2^59 - 1.
#[doc(hidden)]
pub const TIME_EXTEND_MAX: u64 = (1 << 59) - 1;
/// Largest `type_len` of a data event with an inline length.
#[doc(hidden)]
pub const TYPE_DATA_MAX: u32 = 28;
/// `type_len` of padding and discarded events.
#[doc(hidden)]
pub const TYPE_PADDING: u32 = 29;
/// `type_len` of a time extend.
#[doc(hidden)]
pub const TYPE_TIME_EXTEND: u32 = 30;
/// `type_len` of an absolute time stamp.
#[doc(hidden)]
pub const TYPE_TIME_STAMP: u32 = 31;
/// Largest payload stored with an inline length (28 * 4).
#[doc(hidden)]
pub const MAX_SMALL_DATA: usize = 112;
/// Event alignment.
#[doc(hidden)]
pub const ALIGNMENT: usize = 4;
/// Size of the smallest event, and of a time extend.
#[doc(hidden)]
pub const MIN_EVENT_SIZE: usize = 8;
/// Size of a time extend or absolute time stamp record.
#[doc(hidden)]
pub const TIME_EXTEND_SIZE: usize = 8;
/// Commit-word flag of a page handed to readers: events were lost before it.
#[doc(hidden)]
pub const MISSED_EVENTS: u64 = 1 << 31;
/// Commit-word flag: the lost-event count is stored as a u64 after the data.
#[doc(hidden)]
pub const MISSED_STORED: u64 = 1 << 30;
/// Mask of the flag bits in a handed-out commit word.
#[doc(hidden)]
pub const MISSED_MASK: u64 = MISSED_EVENTS | MISSED_STORED;
/// Smallest page size ringtrace accepts (the kernel's page).
#[doc(hidden)]
pub const MIN_PAGE_SIZE: usize = 4096;
/// Largest page size: the kernel's limit, because its write index is 20 bits.
#[doc(hidden)]
pub const MAX_PAGE_SIZE: usize = 1 << 20;

const fn align_up(n: usize) -> usize {
    (n + ALIGNMENT - 1) & !(ALIGNMENT - 1)
}

/// Bytes of page data available for events (`page_size - 16`).
#[doc(hidden)]
pub const fn data_capacity(page_size: usize) -> usize {
    page_size - PAGE_HEADER_SIZE
}

/// Largest payload an event on a page of `page_size` bytes can carry
/// (4072 for 4096-byte pages): the data area minus a header and a length word.
#[doc(hidden)]
pub const fn max_payload(page_size: usize) -> usize {
    data_capacity(page_size) - 8
}

/// Total size of a data event carrying `payload` bytes (header, optional
/// length word, payload, alignment), as `rb_calculate_event_length` computes it.
#[doc(hidden)]
pub const fn event_size(payload: usize) -> usize {
    let payload = if payload == 0 { 1 } else { payload };
    let len_word = if payload > MAX_SMALL_DATA { 4 } else { 0 };
    align_up(payload + len_word + 4)
}

/// Builds an event header word.
#[doc(hidden)]
#[inline(always)]
pub const fn header(type_len: u32, time_delta: u32) -> u32 {
    (time_delta << 5) | type_len
}

/// Writes the header(s) of a data event of `payload` bytes with `delta` at
/// `dst` and returns the offset of the payload from `dst`.
///
/// # Safety
/// `dst` must be valid for writes of `event_size(payload)` bytes and 4-byte
/// aligned; `delta` must be at most [`TS_DELTA_MAX`].
#[inline(always)]
pub(crate) unsafe fn write_data_header(dst: *mut u8, payload: usize, delta: u64) -> usize {
    debug_assert!(delta <= TS_DELTA_MAX);
    debug_assert_eq!(dst as usize % ALIGNMENT, 0);
    let size = event_size(payload);
    let words = dst.cast::<u32>();
    if payload > MAX_SMALL_DATA {
        // SAFETY: the caller guarantees `size >= 8` writable, aligned bytes.
        unsafe {
            words.write(header(0, delta as u32));
            words.add(1).write((size - 4) as u32);
        }
        8
    } else {
        // SAFETY: as above; at least 4 bytes are writable.
        unsafe { words.write(header(((size - 4) / 4) as u32, delta as u32)) };
        4
    }
}

/// Writes an 8-byte time extend carrying `delta` at `dst`.
///
/// # Safety
/// `dst` must be valid for 8 bytes of writes and 4-byte aligned.
#[inline]
pub(crate) unsafe fn write_time_extend(dst: *mut u8, delta: u64) {
    debug_assert!(delta <= TIME_EXTEND_MAX);
    let words = dst.cast::<u32>();
    // SAFETY: guaranteed by the caller.
    unsafe {
        words.write(header(TYPE_TIME_EXTEND, (delta & TS_DELTA_MAX) as u32));
        words.add(1).write((delta >> TS_SHIFT) as u32);
    }
}

/// Writes padding covering `len` bytes at `dst`: a "null" padding (rest of
/// page unused) when `len < 8`, otherwise a padding event of that length
/// carrying `delta` (which must not be 0: delta 0 means "null").
///
/// # Safety
/// `dst` must be valid for `max(len, 4)` bytes of writes and 4-byte aligned.
#[inline]
pub(crate) unsafe fn write_padding(dst: *mut u8, len: usize, delta: u64) {
    debug_assert!(len >= 4 && len % 4 == 0);
    debug_assert!(delta > 0 && delta <= TS_DELTA_MAX);
    let words = dst.cast::<u32>();
    if len < MIN_EVENT_SIZE {
        // SAFETY: 4 bytes are writable.
        unsafe { words.write(header(TYPE_PADDING, 0)) };
    } else {
        // SAFETY: `len >= 8` bytes are writable.
        unsafe {
            words.write(header(TYPE_PADDING, delta as u32));
            words.add(1).write((len - 4) as u32);
        }
    }
}

/// One decoded record of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRecord {
    /// A data event: its time delta, where its payload starts (relative to the
    /// start of the data area) and how long the payload is (rounded up to 4).
    Data {
        /// Delta from the previous event's time stamp.
        delta: u64,
        /// Offset of the payload in the data area.
        payload_offset: usize,
        /// Payload length in bytes, a multiple of 4.
        payload_len: usize,
    },
    /// A padding or discarded event of the given length, carrying a delta
    /// (readers add it, as trace-cmd's `kbuffer` does).
    Padding {
        /// Delta carried by the padding.
        delta: u64,
    },
    /// Padding that fills the rest of the page.
    NullPadding,
    /// A time extend: add `delta` to the running time.
    TimeExtend {
        /// The 59-bit delta.
        delta: u64,
    },
    /// An absolute time stamp: the low 59 bits of the new running time.
    TimeStamp {
        /// The 59-bit time stamp.
        stamp: u64,
    },
}

/// A page or event that does not follow the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum PageFormatError {
    /// The event header at `offset` does not fit in the `len` bytes of data.
    #[error("event at data offset {offset} runs past the end of the committed data ({len} bytes)")]
    Truncated {
        /// Offset of the event in the data area.
        offset: usize,
        /// Committed length of the data area.
        len: usize,
    },
    /// A length field is impossible (too small or not aligned).
    #[error("event at data offset {offset} has an invalid length {length}")]
    BadLength {
        /// Offset of the event in the data area.
        offset: usize,
        /// The length found.
        length: usize,
    },
    /// The event is not 4-byte aligned.
    #[error("event offset {offset} is not 4-byte aligned")]
    Misaligned {
        /// The offset.
        offset: usize,
    },
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

impl PageRecord {
    /// The running time stamp after this record, given the one before it
    /// and the page's stamp (whose top bits complete an absolute stamp).
    /// For a data record, this is the event's time stamp.
    ///
    /// ```
    /// use ringtrace_ring::format::PageRecord;
    /// assert_eq!(PageRecord::TimeExtend { delta: 5 }.stamp_after(10, 0), 15);
    /// assert_eq!(PageRecord::TimeStamp { stamp: 7 }.stamp_after(10, 1 << 60), (1 << 60) | 7);
    /// ```
    #[must_use]
    pub fn stamp_after(&self, stamp: u64, page_stamp: u64) -> u64 {
        match *self {
            PageRecord::Data { delta, .. }
            | PageRecord::Padding { delta }
            | PageRecord::TimeExtend { delta } => stamp.wrapping_add(delta),
            PageRecord::NullPadding => stamp,
            PageRecord::TimeStamp { stamp: low } => (page_stamp & !TIME_EXTEND_MAX) | low,
        }
    }
}

/// The common case of [`decode`], for readers' inner loops: a data record
/// whose length is in its header (type_len 1..=28) and that fits in `data`.
/// Returns its time delta and its total size (the payload starts 4 bytes in
/// and is `size - 4` bytes long); `None` for anything else, which
/// [`decode`] then handles (or rejects).
#[inline(always)]
pub(crate) fn decode_small_data(data: &[u8], offset: usize) -> Option<(u64, usize)> {
    let word = read_u32(data, offset)?;
    let type_len = word & 31;
    if type_len == 0 || type_len > TYPE_DATA_MAX {
        return None;
    }
    let size = type_len as usize * 4 + 4;
    // offset is 4-aligned by construction of the callers' walk; a data
    // record past the end is left to `decode` to report.
    if offset % ALIGNMENT != 0 || data.len() - offset < size {
        return None;
    }
    Some((u64::from(word >> 5), size))
}

/// Decodes the record at `offset` of `data` (a page's data area cut at its
/// commit) and returns it with its total length in bytes. For
/// [`PageRecord::NullPadding`] the length is the rest of `data`.
#[inline]
pub fn decode(data: &[u8], offset: usize) -> Result<(PageRecord, usize), PageFormatError> {
    if offset % ALIGNMENT != 0 {
        return Err(PageFormatError::Misaligned { offset });
    }
    let len = data.len();
    let truncated = PageFormatError::Truncated { offset, len };
    let word = read_u32(data, offset).ok_or(truncated)?;
    let type_len = word & 31;
    let delta = u64::from(word >> 5);
    let array0 = || read_u32(data, offset + 4).ok_or(truncated);
    let (record, size) = match type_len {
        1..=TYPE_DATA_MAX => {
            let payload_len = type_len as usize * 4;
            (
                PageRecord::Data {
                    delta,
                    payload_offset: offset + 4,
                    payload_len,
                },
                payload_len + 4,
            )
        }
        0 => {
            let a = array0()? as usize;
            if a < 8 || a % 4 != 0 {
                return Err(PageFormatError::BadLength { offset, length: a });
            }
            (
                PageRecord::Data {
                    delta,
                    payload_offset: offset + 8,
                    payload_len: a - 4,
                },
                a + 4,
            )
        }
        TYPE_PADDING if delta == 0 => (PageRecord::NullPadding, len - offset),
        TYPE_PADDING => {
            let a = array0()? as usize;
            if a < 4 || a % 4 != 0 {
                return Err(PageFormatError::BadLength { offset, length: a });
            }
            (PageRecord::Padding { delta }, a + 4)
        }
        TYPE_TIME_EXTEND => {
            let hi = u64::from(array0()?);
            (
                PageRecord::TimeExtend {
                    delta: (hi << TS_SHIFT) | delta,
                },
                TIME_EXTEND_SIZE,
            )
        }
        _ => {
            let hi = u64::from(array0()?);
            (
                PageRecord::TimeStamp {
                    stamp: (hi << TS_SHIFT) | delta,
                },
                TIME_EXTEND_SIZE,
            )
        }
    };
    match offset.checked_add(size) {
        Some(end) if end <= len => Ok((record, size)),
        _ => Err(truncated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(payload: usize, delta: u64) -> Vec<u8> {
        let size = event_size(payload);
        let mut buf = vec![0u32; size / 4];
        // SAFETY: `buf` holds `size` aligned bytes.
        let at = unsafe { write_data_header(buf.as_mut_ptr().cast(), payload, delta) };
        let mut bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        for i in 0..payload {
            bytes[at + i] = (i % 251) as u8 + 1;
        }
        bytes
    }

    #[test]
    fn sizes_match_the_kernel() {
        assert_eq!(event_size(0), 8, "payload 0 is treated as 1");
        assert_eq!(event_size(1), 8);
        assert_eq!(event_size(4), 8);
        assert_eq!(event_size(8), 12);
        assert_eq!(event_size(10), 16, "the kernel's example: 10 bytes take 16");
        assert_eq!(event_size(112), 116);
        assert_eq!(
            event_size(113),
            124,
            "past 112 bytes a length word is added"
        );
        assert_eq!(max_payload(4096), 4072);
        assert_eq!(event_size(max_payload(4096)), data_capacity(4096));
        assert_eq!(event_size(max_payload(1 << 20)), data_capacity(1 << 20));
    }

    #[test]
    fn every_inline_type_len_round_trips() {
        for type_len in 1..=TYPE_DATA_MAX as usize {
            let payload = type_len * 4;
            let bytes = encode(payload, 12345);
            let (rec, size) = decode(&bytes, 0).unwrap();
            assert_eq!(size, 4 + payload);
            assert_eq!(
                rec,
                PageRecord::Data {
                    delta: 12345,
                    payload_offset: 4,
                    payload_len: payload
                }
            );
            assert_eq!(bytes[0] as u32 & 31, type_len as u32);
        }
    }

    #[test]
    fn large_events_use_type_len_zero() {
        for payload in [113, 200, 4072] {
            let bytes = encode(payload, TS_DELTA_MAX);
            assert_eq!(bytes[0] & 31, 0);
            let (rec, size) = decode(&bytes, 0).unwrap();
            assert_eq!(size, event_size(payload));
            match rec {
                PageRecord::Data {
                    delta,
                    payload_offset,
                    payload_len,
                } => {
                    assert_eq!(delta, TS_DELTA_MAX);
                    assert_eq!(payload_offset, 8);
                    assert_eq!(payload_len, (payload + 3) & !3);
                    assert_eq!(bytes[8], 1);
                    assert_eq!(bytes[8 + payload - 1], ((payload - 1) % 251) as u8 + 1);
                }
                other => panic!("decoded {other:?}"),
            }
        }
    }

    #[test]
    fn time_extend_boundary() {
        // 2^27 - 1 fits in the header; 2^27 needs an extend.
        let fits = encode(4, TS_DELTA_MAX);
        assert_eq!(
            decode(&fits, 0).unwrap().0,
            PageRecord::Data {
                delta: TS_DELTA_MAX,
                payload_offset: 4,
                payload_len: 4
            }
        );
        let delta = 1u64 << 27;
        assert!(
            delta > TS_DELTA_MAX,
            "2^27 does not fit and needs an extend"
        );
        let mut buf = [0u32; 2];
        // SAFETY: 8 aligned bytes.
        unsafe { write_time_extend(buf.as_mut_ptr().cast(), delta) };
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(
            decode(&bytes, 0).unwrap(),
            (PageRecord::TimeExtend { delta }, 8)
        );
        let mut buf = [0u32; 2];
        // SAFETY: 8 aligned bytes.
        unsafe { write_time_extend(buf.as_mut_ptr().cast(), TIME_EXTEND_MAX) };
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(
            decode(&bytes, 0).unwrap().0,
            PageRecord::TimeExtend {
                delta: TIME_EXTEND_MAX
            }
        );
    }

    #[test]
    fn absolute_time_stamp_decodes() {
        let stamp = (5u64 << 27) | 77;
        let words = [header(TYPE_TIME_STAMP, 77), 5];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(
            decode(&bytes, 0).unwrap(),
            (PageRecord::TimeStamp { stamp }, 8)
        );
    }

    #[test]
    fn padding_forms() {
        let mut buf = [0u32; 6];
        // SAFETY: 24 aligned bytes.
        unsafe { write_padding(buf.as_mut_ptr().cast(), 24, 3) };
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(
            decode(&bytes, 0).unwrap(),
            (PageRecord::Padding { delta: 3 }, 24)
        );
        let mut buf = [0u32; 1];
        // SAFETY: 4 aligned bytes.
        unsafe { write_padding(buf.as_mut_ptr().cast(), 4, 1) };
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert_eq!(decode(&bytes, 0).unwrap(), (PageRecord::NullPadding, 4));
    }

    #[test]
    fn event_ending_exactly_at_the_page_end() {
        // A page whose last event ends exactly at the data capacity.
        let cap = data_capacity(4096);
        let mut page = vec![0u8; cap];
        let first = event_size(100);
        let last_payload = max_payload(4096) - first;
        let mut off = 0;
        for payload in [100, last_payload] {
            let e = encode(payload, 1);
            page[off..off + e.len()].copy_from_slice(&e);
            off += e.len();
        }
        assert_eq!(off, cap);
        let (_, a) = decode(&page, 0).unwrap();
        let (rec, b) = decode(&page, a).unwrap();
        assert_eq!(a + b, cap);
        assert!(matches!(rec, PageRecord::Data { .. }));
    }

    #[test]
    fn corrupt_input_gives_errors() {
        // Truncated header.
        assert!(matches!(
            decode(&[1, 0], 0),
            Err(PageFormatError::Truncated { .. })
        ));
        // Length past the end.
        let words = [header(0, 0), 4000];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert!(matches!(
            decode(&bytes, 0),
            Err(PageFormatError::Truncated { .. })
        ));
        // Impossible length.
        let words = [header(0, 0), 3];
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        assert!(matches!(
            decode(&bytes, 0),
            Err(PageFormatError::BadLength { .. })
        ));
        assert!(matches!(
            decode(&bytes, 2),
            Err(PageFormatError::Misaligned { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..64), at in 0usize..80) {
            let _ = decode(&bytes, at);
        }

        #[test]
        fn any_payload_round_trips(payload in 1usize..=4072, delta in 0u64..=TS_DELTA_MAX) {
            let bytes = encode(payload, delta);
            let (rec, size) = decode(&bytes, 0).unwrap();
            proptest::prop_assert_eq!(size, event_size(payload));
            match rec {
                PageRecord::Data { delta: d, payload_len, .. } => {
                    proptest::prop_assert_eq!(d, delta);
                    proptest::prop_assert_eq!(payload_len, (payload + 3) & !3);
                }
                _ => proptest::prop_assert!(false),
            }
        }
    }
}
