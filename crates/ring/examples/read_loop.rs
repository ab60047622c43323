//! Rounds of writes then reads, for instruction counts per event under
//! callgrind, split between the writer and the reader:
//! `valgrind --tool=callgrind --callgrind-out-file=cg.out
//!  target/release/examples/read_loop [ROUNDS] [consume|batch|batch64]`, then
//! `callgrind_annotate --inclusive=yes cg.out | grep _round` and divide each
//! `*_round` function's inclusive `Ir` by the events (printed at the end).
//! Each round writes 8-byte events into a producer/consumer ring until it
//! is nearly full (about 63 pages), then reads them all.

use ringtrace_ring::{Config, Consumer, Mode, RingBuffer, Writer};
use std::hint::black_box;

/// Events per round: 63 pages of 4080 data bytes / 16-byte events.
const PER_ROUND: u64 = 63 * 255;

#[inline(never)]
fn write_round(w: &mut Writer<'_>, start: u64) {
    for i in start..start + PER_ROUND {
        w.write(black_box(i), &i.to_le_bytes()).unwrap();
    }
}

#[inline(never)]
fn consume_round(c: &mut Consumer<'_>) -> u64 {
    let mut n = 0;
    let mut sum = 0u64;
    while let Some(ev) = c.consume().unwrap() {
        sum = sum.wrapping_add(u64::from_le_bytes(ev.payload[..8].try_into().unwrap()));
        n += 1;
    }
    black_box(sum);
    n
}

#[inline(never)]
fn batch_round(c: &mut Consumer<'_>, max: usize) -> u64 {
    let mut n = 0;
    let mut sum = 0u64;
    loop {
        let got = c
            .consume_batch(max, |ev| {
                sum = sum.wrapping_add(u64::from_le_bytes(ev.payload[..8].try_into().unwrap()));
            })
            .unwrap();
        if got == 0 {
            break;
        }
        n += got as u64;
    }
    black_box(sum);
    n
}

fn main() {
    let rounds: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let how = std::env::args().nth(2).unwrap_or_else(|| "consume".into());
    let buf = RingBuffer::new(
        Config::new(1)
            .pages_per_ring(64)
            .mode(Mode::ProducerConsumer),
    )
    .unwrap();
    let mut w = buf.writer(0).unwrap();
    let mut c = buf.consumer(0).unwrap();
    let mut read = 0;
    for r in 0..rounds {
        write_round(&mut w, r * PER_ROUND);
        read += match how.as_str() {
            "consume" => consume_round(&mut c),
            "batch" => batch_round(&mut c, usize::MAX),
            "batch64" => batch_round(&mut c, 64),
            other => panic!("unknown reader {other}"),
        };
    }
    assert_eq!(read, rounds * PER_ROUND);
    println!("events {read}");
    println!("{:?}", buf.stats(0).unwrap());
}
