//! Issue 6's pair alone, for A/B runs on a noisy machine:
//! `cargo run -p ringtrace-bench --release --example tput_ab -- [REPS] [MS]`.
//! Alternates one repetition of ringtrace (producer/consumer, retry when
//! full, `consume_batch` reader) with one of ringbuf's typed `HeapRb`
//! (retry), exactly as the throughput table drives them, and prints the
//! medians [min–max] of events/s, the median of the per-round ratios, and
//! the CPUs obtained. With a third argument MIN_CPUS, rounds in which
//! either side obtained fewer CPUs are discarded (not counted in REPS; at
//! most 20 × REPS rounds are tried), so that the figures compare the two
//! queues running in parallel rather than the scheduler's time slices.

use ringtrace_bench::stats::Summary;
use ringtrace_bench::throughput::lossless_rep;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(21);
    let ms: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    let min_cpus: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.0);
    let run = Duration::from_millis(ms);
    let (mut rt, mut rb, mut ratio, mut cpus) = (vec![], vec![], vec![], vec![]);
    let mut discarded = 0;
    for i in 0..=reps * 20 {
        if rt.len() == reps {
            break;
        }
        let (a, problems) = lossless_rep(true, run);
        assert!(problems.is_empty(), "{problems:?}");
        let (b, _) = lossless_rep(false, run);
        if i == 0 {
            continue; // warm-up
        }
        if a.cpus.min(b.cpus) < min_cpus {
            discarded += 1;
            continue;
        }
        let (ea, eb) = (a.read as f64 / a.total_secs, b.read as f64 / b.total_secs);
        rt.push(ea / 1e6);
        rb.push(eb / 1e6);
        ratio.push(ea / eb);
        cpus.push(a.cpus.min(b.cpus));
    }
    if rt.is_empty() {
        println!("no round with {min_cpus} CPUs (discarded {discarded})");
        return;
    }
    let s = |v: &[f64]| {
        let s = Summary::of(v).expect("reps");
        format!("{:.1} [{:.1}-{:.1}]", s.median, s.min, s.max)
    };
    let r = Summary::of(&ratio).expect("reps");
    println!("ringtrace M/s {}", s(&rt));
    println!("ringbuf   M/s {}", s(&rb));
    println!("rounds {} (discarded {discarded})", rt.len());
    println!(
        "ratio median {:.3} [{:.3}-{:.3}]  cpus(min of pair) {}",
        r.median,
        r.min,
        r.max,
        s(&cpus)
    );
}
