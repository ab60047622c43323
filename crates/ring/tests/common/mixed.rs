//! The mixed event sequence of the writer-thread tests (batch, peek and
//! consume): payload sizes that cover both record length encodings and time
//! stamps that need time extends, written by one thread.

use ringtrace_ring::{RingBuffer, WriteError};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{assert_identity, fill};

/// Payload length of event `seq`: small records (type_len 1..=28) and,
/// every 5th, one longer than 112 bytes (length in array[0]).
pub fn size_of(seq: u64) -> usize {
    if seq % 5 == 4 {
        113 + (seq * 13 % 300) as usize
    } else {
        24 + (seq * 7 % 89) as usize
    }
}

/// Time stamp of event `seq`: every 97th one jumps far enough to need a
/// time extend record.
pub fn stamp_of(seq: u64) -> u64 {
    seq * 5 + (seq / 97) * (1 << 28)
}

/// Writes events `0..events` of the sequence to ring 0 (a full ring in
/// producer/consumer mode refuses some), yielding now and then so a reader
/// thread keeps up, then sets `done` (Release: pairs with the reader's
/// Acquire load, so it sees every commit once it sees `done`). Returns the
/// writes that landed.
pub fn write_all(buf: &RingBuffer, events: u64, done: &AtomicBool) -> u64 {
    let mut w = buf.writer(0).unwrap();
    let mut scratch = [0u8; 512];
    let mut ok = 0;
    for seq in 0..events {
        let p = &mut scratch[..size_of(seq)];
        fill(p, 1, seq, 0);
        match w.write(stamp_of(seq), p) {
            Ok(()) => ok += 1,
            Err(WriteError::Full) => {}
            Err(e) => panic!("unexpected write error {e}"),
        }
        if seq % 4096 == 0 {
            std::thread::yield_now();
        }
    }
    done.store(true, Ordering::Release);
    ok
}

/// After [`write_all`] of `events` and a reader thread that drained ring 0:
/// every event was attempted, those that landed were committed, the reader
/// read `read` of them, the identity holds with nothing buffered, and the
/// losses the reader was told of (`lost`, pending ones included) are all
/// the ring counted.
pub fn assert_written_and_read(buf: &RingBuffer, events: u64, written: u64, read: u64, lost: u64) {
    let s = buf.stats(0).unwrap();
    assert_eq!(s.written, events, "{s:?}");
    assert_eq!(s.committed, written);
    assert_eq!(s.read, read);
    assert_identity(&s, 0);
    assert_eq!(lost, s.overrun + s.dropped + s.commit_overrun, "{s:?}");
}
