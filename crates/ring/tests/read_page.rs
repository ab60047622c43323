//! Whole-page reads: pages handed out are decoded by an independent decoder
//! written here from the kernel's format description (not the crate's
//! `format` module), every event is verified, and the loss flags and stored
//! counts match the gaps in sequence numbers exactly.

mod common;

use common::load::{Checker, Load};
use common::sigwriter::serial;
use common::{check, fill};
use ringtrace_ring::{Config, Mode, RingBuffer};
use std::time::Duration;

/// One page decoded from raw bytes.
#[derive(Debug)]
struct Page {
    events: Vec<(u64, Vec<u8>)>,
    missed_flag: bool,
    missed_stored: Option<u64>,
}

/// Decodes a page in the kernel's format: u64 time_stamp, u64 commit with
/// bit 31 (missed events) and bit 30 (count stored after the data), then
/// events whose 32-bit header holds type_len (5 bits) and time_delta (27).
fn decode_page(bytes: &[u8]) -> Page {
    let u32_at = |i: usize| u32::from_le_bytes(bytes[i..i + 4].try_into().unwrap());
    let u64_at = |i: usize| u64::from_le_bytes(bytes[i..i + 8].try_into().unwrap());
    let mut ts = u64_at(0);
    let commit = u64_at(8);
    let len = (commit & ((1 << 27) - 1)) as usize;
    let missed_flag = commit & (1 << 31) != 0;
    let missed_stored = (commit & (1 << 30) != 0).then(|| u64_at(16 + len));
    assert!(16 + len <= bytes.len(), "commit {len} beyond the page");
    let end = 16 + len + if missed_stored.is_some() { 8 } else { 0 };
    assert!(bytes[end..].iter().all(|&b| b == 0), "page tail not zeroed");
    let mut at = 16;
    let mut events = vec![];
    while at < 16 + len {
        let h = u32_at(at);
        let type_len = h & 31;
        let delta = u64::from(h >> 5);
        match type_len {
            0 => {
                let n = u32_at(at + 4) as usize - 4;
                ts += delta;
                events.push((ts, bytes[at + 8..at + 8 + n].to_vec()));
                at += 8 + n;
            }
            1..=28 => {
                let n = type_len as usize * 4;
                ts += delta;
                events.push((ts, bytes[at + 4..at + 4 + n].to_vec()));
                at += 4 + n;
            }
            29 if delta == 0 => break, // null padding: the rest of the page
            29 => {
                // Padding keeps its delta; array[0] is its length minus the
                // header word.
                ts += delta;
                at += 4 + u32_at(at + 4) as usize;
            }
            30 => {
                ts += delta | (u64::from(u32_at(at + 4)) << 27);
                at += 8;
            }
            _ => {
                ts = (ts & !((1 << 59) - 1)) | delta | (u64::from(u32_at(at + 4)) << 27);
                at += 8;
            }
        }
    }
    assert!(at <= 16 + len, "events overrun the commit");
    Page {
        events,
        missed_flag,
        missed_stored,
    }
}

#[test]
fn quiet_ring_pages_are_exact_and_zero_copy() {
    let _g = serial();
    let buf = common::one_ring_producer_consumer(16);
    let mut w = buf.writer(0).unwrap();
    let mut payload = [0u8; 300];
    let n = 200u64;
    for seq in 0..n {
        let len = 24 + (seq * 13 % 270) as usize;
        fill(&mut payload[..len], 1, seq, 0);
        // Gaps that need time extends now and then.
        let ts = 1000 + seq * 10 + if seq % 50 == 0 { 1 << 30 } else { 0 } * (seq / 50);
        w.write(ts, &payload[..len]).unwrap();
    }
    let mut page = buf.read_page_buffer(0).unwrap();
    assert!(page.is_slot());
    let mut c = buf.consumer(0).unwrap();
    let mut seq = 0;
    let mut zero_copy = 0;
    let mut last_ts = 0;
    while let Some(info) = c.read_page(&mut page, false).unwrap() {
        let p = decode_page(page.bytes());
        assert_eq!(p.events.len() as u64, info.events);
        assert!(!p.missed_flag && p.missed_stored.is_none());
        zero_copy += u64::from(info.zero_copy);
        for (ts, data) in p.events {
            let d = check(&data).unwrap();
            assert_eq!(d.seq, seq);
            assert!(ts >= last_ts);
            last_ts = ts;
            seq += 1;
        }
    }
    assert_eq!(seq, n);
    assert!(
        zero_copy >= 5,
        "complete pages go out without a copy ({zero_copy})"
    );
    let s = buf.stats(0).unwrap();
    assert_eq!((s.read, s.committed, s.entries), (n, n, 0));
    // With `full`, the page the writer is still filling is not taken.
    w.write(1 << 40, &[1; 32]).unwrap();
    assert!(c.read_page(&mut page, true).unwrap().is_none());
    assert!(c.read_page(&mut page, false).unwrap().is_some());
}

#[test]
fn loss_flags_match_the_gaps_exactly() {
    let _g = serial();
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(4)).unwrap();
    let mut w = buf.writer(0).unwrap();
    let mut c = buf.consumer(0).unwrap();
    let mut page = buf.read_page_buffer(0).unwrap();
    let mut payload = [0u8; 100];
    let mut next = 0u64;
    let mut expected = 0u64;
    let mut stored_seen = 0;
    for round in 0..50u64 {
        // Lap the ring a few times between reads: overruns.
        for _ in 0..(100 + round * 37) {
            let len = 24 + (next % 70) as usize;
            fill(&mut payload[..len], 1, next, 0);
            w.write(next, &payload[..len]).unwrap();
            next += 1;
        }
        while let Some(info) = c.read_page(&mut page, round % 2 == 0).unwrap() {
            let p = decode_page(page.bytes());
            let first = check(&p.events[0].1).unwrap().seq;
            let gap = first - expected;
            assert_eq!(p.missed_flag, gap > 0, "round {round}: gap {gap} {info:?}");
            assert_eq!(info.lost, gap);
            // The count is always stored: a full page with losses goes out
            // in two copies to make room for it.
            if gap > 0 {
                assert_eq!(p.missed_stored, Some(gap), "stored count");
                stored_seen += 1;
            }
            for (i, (_, data)) in p.events.iter().enumerate() {
                assert_eq!(check(data).unwrap().seq, first + i as u64);
            }
            expected = first + p.events.len() as u64;
        }
    }
    assert!(
        stored_seen > 10,
        "counts stored after the data: {stored_seen}"
    );
    let s = buf.stats(0).unwrap();
    assert_eq!(s.committed, next);
    assert_eq!(s.committed, s.read + s.overrun + s.entries);
    assert_eq!(
        expected + s.entries,
        next,
        "every event read or overrun, in order"
    );
}

#[test]
fn page_reads_under_load_with_signal_writer() {
    let _g = serial();
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let owned = common::Static::new(
            Config::new(1)
                .pages_per_ring(6)
                .max_pages_per_ring(6)
                .mode(mode),
        );
        let buf = owned.get();
        let load = Load::start(buf, 0, Duration::from_micros(100));
        let mut check = Checker::default();
        let mut page = buf.read_page_buffer(0).unwrap();
        let mut heap = {
            // Take every spare slot, so one page is on the heap (copies).
            let a = buf.read_page_buffer(0).unwrap();
            let h = buf.read_page_buffer(0).unwrap();
            drop(a);
            h
        };
        assert!(!heap.is_slot());
        let (mut pages, mut zc, mut lost_flagged) = (0u64, 0u64, 0u64);
        let hang = common::Hang::guard("50 pages read under load");
        let read = |c: &mut ringtrace_ring::Consumer<'_>,
                    p: &mut ringtrace_ring::ReadPage<'_>,
                    full: bool,
                    check: &mut Checker|
         -> Option<ringtrace_ring::PageInfo> {
            let info = c.read_page(p, full).unwrap()?;
            let commit = u64::from_le_bytes(p.bytes()[8..16].try_into().unwrap());
            assert!(
                (commit & 0xffffff) as usize + 16 + if commit & (1 << 30) != 0 { 8 } else { 0 }
                    <= p.bytes().len(),
                "bad commit word {commit:#x}: {info:?} slot {}",
                p.is_slot()
            );
            let d = decode_page(p.bytes());
            assert_eq!(d.events.len() as u64, info.events);
            assert_eq!(d.missed_flag, info.lost > 0);
            assert_eq!(d.missed_stored.unwrap_or(0), info.lost);
            let mut lost = info.lost;
            for (ts, data) in &d.events {
                check.event(data, *ts, std::mem::take(&mut lost));
            }
            Some(info)
        };
        // Until 50 pages (one zero-copy) have been read and the writers
        // have done a run's worth: counted, not timed.
        while pages <= 50 || zc == 0 || load.progress().0 < 200_000 || load.progress().1 < 2_000 {
            hang.check(|| format!("{pages} pages, {zc} zero-copy, load {:?}", load.progress()));
            let mut c = buf.consumer(0).unwrap();
            for i in 0..8 {
                let p = if i % 3 == 2 { &mut heap } else { &mut page };
                if let Some(info) = read(&mut c, p, i % 2 == 0, &mut check) {
                    pages += 1;
                    zc += u64::from(info.zero_copy);
                    lost_flagged += info.lost;
                }
            }
            drop(c);
            std::thread::sleep(Duration::from_micros(300));
        }
        let out = load.stop();
        let mut c = buf.consumer(0).unwrap();
        while let Some(info) = read(&mut c, &mut page, false, &mut check) {
            pages += 1;
            lost_flagged += info.lost;
        }
        let s = buf.stats(0).unwrap();
        assert_eq!(s.entries, 0);
        assert_eq!(s.committed, out.ok);
        assert_eq!(s.read, check.total);
        assert_eq!(s.committed, s.read + s.overrun);
        assert_eq!(s.dropped + s.commit_overrun, out.lost);
        assert_eq!(s.corruptions, 0);
        // Every loss is flagged on a page, with its count, or still pending
        // (drops noted on the last page read), exactly once.
        assert_eq!(
            lost_flagged + c.pending_losses(),
            s.overrun + s.dropped + s.commit_overrun,
            "{s:?}"
        );
        assert!(pages > 50 && zc > 0, "{pages} pages, {zc} zero-copy");
        eprintln!("{mode:?}: {pages} pages ({zc} zero-copy), {s:?}, {out:?}");
    }
}
