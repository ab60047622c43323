//! One writer thread and one reader thread for `perf record -e cpu-clock`
//! profiles of both sides: `target/release/examples/spsc [SECS]
//! [batch|consume]`. 8-byte events into a 256 KiB producer/consumer ring;
//! the writer retries when full; the reader polls without pause. Prints
//! events per second, the writer's ns per event and the CPUs obtained
//! (near 2: writer and reader ran in parallel; near 1: they took turns).

use ringtrace_ring::{Config, Consumer, Mode, RingBuffer};
use std::hint::{black_box, spin_loop};
use std::sync::atomic::{AtomicBool, Ordering::*};
use std::time::{Duration, Instant};

#[inline(never)]
fn poll(c: &mut Consumer<'_>, batch: bool) -> u64 {
    if batch {
        c.consume_batch(usize::MAX, |ev| {
            black_box(ev.payload);
        })
        .map_or(0, |n| n as u64)
    } else {
        match c.consume() {
            Ok(Some(ev)) => {
                black_box(ev.payload);
                1
            }
            _ => 0,
        }
    }
}

/// As the bench's: spin 64 times, then yield (a writer and a reader
/// sharing one CPU still take turns).
fn pause(tries: &mut u32) {
    if *tries < 64 {
        spin_loop();
    } else {
        std::thread::yield_now();
    }
    *tries += 1;
}

/// CPU seconds the process used so far.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1.0);
    let batch = std::env::args().nth(2).is_none_or(|a| a == "batch");
    let buf = RingBuffer::new(
        Config::new(1)
            .pages_per_ring(64)
            .mode(Mode::ProducerConsumer),
    )
    .unwrap();
    let done = AtomicBool::new(false);
    let (cpu0, wall0) = (cpu_secs(), Instant::now());
    let (written, ns, read) = std::thread::scope(|s| {
        let w = s.spawn(|| {
            let mut w = buf.writer(0).unwrap();
            let start = Instant::now();
            let mut i = 0u64;
            while start.elapsed() < Duration::from_secs_f64(secs) {
                for _ in 0..1024 {
                    let mut tries = 0u32;
                    while w.write(i, &i.to_le_bytes()).is_err() {
                        pause(&mut tries);
                    }
                    i += 1;
                }
            }
            let ns = start.elapsed().as_nanos() as f64 / i as f64;
            done.store(true, Release);
            (i, ns)
        });
        let r = s.spawn(|| {
            let mut c = buf.consumer(0).unwrap();
            let mut n = 0;
            let mut tries = 0u32;
            loop {
                let finished = done.load(Acquire);
                let got = poll(&mut c, batch);
                n += got;
                if got == 0 {
                    if finished {
                        return n;
                    }
                    pause(&mut tries);
                } else {
                    tries = 0;
                }
            }
        });
        let (i, ns) = w.join().unwrap();
        (i, ns, r.join().unwrap())
    });
    assert_eq!(written, read);
    let cpus = (cpu_secs() - cpu0) / wall0.elapsed().as_secs_f64();
    println!(
        "{} events, {:.1} M/s, writer {ns:.1} ns/event, {cpus:.2} CPUs",
        read,
        read as f64 / secs / 1e6
    );
}
