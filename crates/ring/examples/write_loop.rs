//! A tight loop of 8-byte writes, for instruction counts under callgrind:
//! `valgrind --tool=callgrind --callgrind-out-file=cg.out
//!  target/release/examples/write_loop 1000000 [LEN] [reserve|with]`, then
//! divide `Ir` by N. `fixed` as the third argument runs the bench crate's
//! loop instead: a fixed 8-byte record (the length argument is ignored).
//! Instruction counts are stable on this shared machine; wall time is not.

use ringtrace_ring::{Config, RingBuffer};
use std::hint::black_box;

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let len: usize = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(8);
    let buf = RingBuffer::new(Config::new(1).pages_per_ring(64)).unwrap();
    let mut w = buf.writer(0).unwrap();
    let record = vec![0xabu8; len];
    let ts = 12345u64;
    let how = std::env::args().nth(3).unwrap_or_default();
    let (reserve, with) = (how == "reserve", how == "with");
    if how == "fixed" {
        // The bench crate's loop: a fixed 8-byte record, the time stamp
        // taken once, the writer behind `&mut`.
        // Timed too: the median of 9 rounds, ns per write (wall time is
        // noisy here; compare builds alternately, in the same minute).
        let mut per: Vec<f64> = (0..9)
            .map(|_| {
                let t = std::time::Instant::now();
                fixed_loop(&mut w, n, ts);
                t.elapsed().as_nanos() as f64 / n as f64
            })
            .collect();
        per.sort_by(f64::total_cmp);
        println!(
            "fixed 8 B write: median {:.2} ns (min {:.2})",
            per[4], per[0]
        );
        println!("{:?}", buf.stats(0).unwrap());
        return;
    }
    for _ in 0..n {
        if with {
            let r = w.write_with(black_box(ts), black_box(len), |b| {
                b.copy_from_slice(&record);
                true
            });
            black_box(r).ok();
        } else if reserve {
            let mut r = w.reserve(black_box(ts), black_box(len)).unwrap();
            r.copy_from_slice(&record);
            r.commit();
        } else {
            black_box(w.write(black_box(ts), black_box(&record))).ok();
        }
    }
    println!("{:?}", buf.stats(0).unwrap());
}

#[inline(never)]
fn fixed_loop(w: &mut ringtrace_ring::Writer<'_>, n: u64, ts: u64) {
    let ts = black_box(ts);
    let record = black_box(&[0xabu8; 8]);
    for _ in 0..n {
        if w.write(ts, record).is_err() {
            black_box(());
        }
    }
}
