//! The kernel's `kernel/trace/ring_buffer_benchmark.c`, re-created on a
//! ringtrace ring.
//!
//! As in the kernel: one buffer of 1,000,000 bytes per context in overwrite
//! mode; a producer thread reserves 10-byte events holding its context id
//! (the kernel writes `smp_processor_id()`), reading the clock on every
//! event as the kernel's `ring_buffer_lock_reserve` does, in bursts of 50
//! writes between checks of the time (`write_iteration`), and wakes the
//! consumer every 100 bursts (`wakeup_interval`); the consumer reads events
//! until the ring is empty, checks each payload, then sleeps until woken.
//! When the time is up the consumer is told to finish, and the counters are
//! printed with the kernel's lines.
//!
//! As the kernel's consumer, it alternates between reading events
//! (`ring_buffer_consume`) and reading whole pages (`ring_buffer_read_page`
//! with `full`, here `Consumer::read_page`: complete pages are swapped out
//! of the ring without a copy) each time it wakes; the events on each page
//! are decoded and checked. The last round reads events, so that the
//! partly filled page is read too.

use crate::clock;
use crate::sync::{AtomicBool, Ordering::*};
use ringtrace_ring::format::{decode, PageRecord, PAGE_HEADER_SIZE};
use ringtrace_ring::{Config, Consumer, Mode, ReadPage, RingBuffer, Writer};
use std::fmt;
use std::time::{Duration, Instant};

/// Bytes per context (the kernel's
/// `ring_buffer_alloc(1000000, RB_FL_OVERWRITE)`).
pub const BYTES_PER_CONTEXT: usize = 1_000_000;
/// Payload bytes per event (`ring_buffer_lock_reserve(buffer, 10)`).
pub const PAYLOAD: usize = 10;
/// Writes between checks of the time (the kernel's `write_iteration`).
pub const WRITE_ITERATION: u64 = 50;
/// Bursts between consumer wake-ups (the kernel's `wakeup_interval`).
pub const WAKEUP_INTERVAL: u64 = 100;

/// The counters the kernel prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelBenchReport {
    /// Producer run time, microseconds.
    pub time_us: u64,
    /// Events lost to overwrite.
    pub overruns: u64,
    /// Events the consumer read.
    pub read: u64,
    /// Of those, events read in whole pages.
    pub read_by_pages: u64,
    /// Pages read (`read_page`), and how many went out without a copy.
    pub pages: (u64, u64),
    /// Events still in the ring at the end.
    pub entries: u64,
    /// `entries + overruns + read`; equals `hit` when nothing is lost.
    pub total: u64,
    /// Reservations that failed.
    pub missed: u64,
    /// Reservations that succeeded.
    pub hit: u64,
    /// Consumed payloads that did not hold the producer's id (the kernel
    /// kills the test on the first one).
    pub bad_payloads: u64,
    /// Errors returned by the consumer.
    pub read_errors: u64,
}

impl KernelBenchReport {
    /// The kernel's "Entries per millisec": hits divided by whole
    /// milliseconds (integer division, as `do_div`).
    pub fn entries_per_ms(&self) -> u64 {
        self.hit
            .checked_div(self.time_us / 1000)
            .unwrap_or(self.hit)
    }

    /// The kernel's "ns per entry": `NSEC_PER_MSEC / entries_per_ms`.
    pub fn ns_per_entry(&self) -> Option<u64> {
        1_000_000u64.checked_div(self.entries_per_ms())
    }

    /// ns per entry without the kernel's integer rounding.
    pub fn ns_per_entry_exact(&self) -> f64 {
        self.time_us as f64 * 1000.0 / self.hit as f64
    }

    /// Whether every hit is accounted for and every payload was right.
    pub fn ok(&self) -> bool {
        self.total == self.hit && self.bad_payloads == 0 && self.read_errors == 0
    }
}

impl fmt::Display for KernelBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.ok() {
            writeln!(f, "ERROR!")?;
        }
        writeln!(f, "Running Consumer at nice: 0")?;
        writeln!(f, "Running Producer at nice: 0")?;
        writeln!(f, "Time:     {} (usecs)", self.time_us)?;
        writeln!(f, "Overruns: {}", self.overruns)?;
        writeln!(
            f,
            "Read:     {}  (by events)",
            self.read - self.read_by_pages
        )?;
        writeln!(
            f,
            "Read:     {}  (by pages: {} pages, {} without a copy)",
            self.read_by_pages, self.pages.0, self.pages.1
        )?;
        writeln!(f, "Entries:  {}", self.entries)?;
        writeln!(f, "Total:    {}", self.total)?;
        writeln!(f, "Missed:   {}", self.missed)?;
        writeln!(f, "Hit:      {}", self.hit)?;
        let ms = self.time_us / 1000;
        if ms == 0 {
            writeln!(f, "TIME IS ZERO??")?;
        }
        let hit = self.entries_per_ms();
        writeln!(f, "Entries per millisec: {hit}")?;
        if let Some(avg) = self.ns_per_entry() {
            writeln!(f, "{avg} ns per entry")?;
        }
        if self.missed > 0 {
            let missed = self.missed.checked_div(ms).unwrap_or(self.missed);
            writeln!(f, "Total iterations per millisec: {}", hit + missed)?;
            if let Some(avg) = 1_000_000u64.checked_div(hit + missed) {
                writeln!(f, "{avg} ns per entry")?;
            }
        }
        if self.bad_payloads > 0 || self.read_errors > 0 {
            writeln!(
                f,
                "bad payloads: {}, read errors: {}",
                self.bad_payloads, self.read_errors
            )?;
        }
        Ok(())
    }
}

/// Why the benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum KernelBenchError {
    /// The buffer could not be created (out of memory).
    #[error("cannot create the benchmark's buffer: {0}")]
    Config(#[from] ringtrace_ring::ConfigError),
    /// The ring refused a reader or writer.
    #[error("benchmark ring: {0}")]
    Ring(#[from] ringtrace_ring::RingError),
}

/// Runs the benchmark with the producer writing for `time`.
///
/// ```
/// let r = ringtrace::kernel_bench::run(std::time::Duration::from_millis(20)).unwrap();
/// assert!(r.ok() && r.hit > 0);
/// assert!(r.to_string().contains("Entries per millisec:"));
/// ```
pub fn run(time: Duration) -> Result<KernelBenchReport, KernelBenchError> {
    let buf = RingBuffer::new(
        Config::new(1)
            .bytes_per_ring(BYTES_PER_CONTEXT)
            .mode(Mode::Overwrite),
    )?;
    let mut c = buf.consumer(0)?;
    let mut page = buf.read_page_buffer(0)?;
    let mut w = buf.writer(0)?;
    let finish = AtomicBool::new(false);
    let context: u32 = 0;
    std::thread::scope(|s| {
        let finish = &finish;
        let consumer = s.spawn(move || {
            let mut tally = Tally {
                id: context.to_le_bytes(),
                ..Tally::default()
            };
            let mut read_events = true;
            loop {
                // Acquire: pairs with the producer's Release store.
                let finishing = finish.load(Acquire);
                if read_events || finishing {
                    tally.consume_events(&mut c);
                } else {
                    tally.consume_pages(&mut c, &mut page);
                }
                if finishing {
                    break;
                }
                read_events = !read_events;
                std::thread::park_timeout(Duration::from_millis(10));
            }
            tally
        });
        let consumer_thread = consumer.thread().clone();
        let (hit, missed, time_us) = produce(&mut w, context, time, &consumer_thread);
        // Release: pairs with the consumer's Acquire load.
        finish.store(true, Release);
        consumer_thread.unpark();
        let t = consumer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let st = buf.stats(0)?;
        Ok(KernelBenchReport {
            time_us,
            overruns: st.overrun,
            read: t.read,
            read_by_pages: t.by_pages,
            pages: (t.pages, t.zero_copy),
            entries: st.entries,
            total: st.entries + st.overrun + t.read,
            missed,
            hit,
            bad_payloads: t.bad,
            read_errors: t.errors,
        })
    })
}

/// The producer (the kernel's `ring_buffer_producer`): bursts of
/// `WRITE_ITERATION` writes of this context's id until `time` has passed,
/// waking the consumer every `WAKEUP_INTERVAL` bursts. Returns the writes
/// that fit, those refused, and the time taken in microseconds.
fn produce(
    w: &mut Writer<'_>,
    context: u32,
    time: Duration,
    consumer: &std::thread::Thread,
) -> (u64, u64, u64) {
    let mut entry = [0u8; PAYLOAD];
    entry[..4].copy_from_slice(&context.to_le_bytes());
    let (mut hit, mut missed, mut bursts) = (0u64, 0u64, 0u64);
    let start = Instant::now();
    let timeout = start + time;
    let mut end;
    loop {
        for _ in 0..WRITE_ITERATION {
            match w.write(clock::read_tsc(), &entry) {
                Ok(()) => hit += 1,
                Err(_) => missed += 1,
            }
        }
        end = Instant::now();
        bursts += 1;
        if bursts % WAKEUP_INTERVAL == 0 {
            consumer.unpark();
        }
        if end >= timeout {
            break;
        }
    }
    (hit, missed, end.duration_since(start).as_micros() as u64)
}

/// What the consumer (the kernel's `ring_buffer_consumer`) read: events,
/// of which by whole pages, payloads not carrying the context's id, read
/// errors, pages and how many of them were swapped out without a copy.
#[derive(Default)]
struct Tally {
    id: [u8; 4],
    read: u64,
    by_pages: u64,
    bad: u64,
    errors: u64,
    pages: u64,
    zero_copy: u64,
}

impl Tally {
    /// Consumes events one by one until the ring is empty.
    fn consume_events(&mut self, c: &mut Consumer<'_>) {
        loop {
            match c.consume() {
                Ok(Some(ev)) => {
                    self.read += 1;
                    if ev.payload.get(..4) != Some(&self.id[..]) {
                        self.bad += 1;
                    }
                }
                Ok(None) => break,
                Err(_) => self.errors += 1,
            }
        }
    }

    /// Takes whole pages until the ring is empty, decoding each page's
    /// events (the kernel's `read_page` path).
    fn consume_pages(&mut self, c: &mut Consumer<'_>, page: &mut ReadPage<'_>) {
        loop {
            match c.read_page(page, true) {
                Ok(Some(info)) => {
                    self.pages += 1;
                    self.zero_copy += u64::from(info.zero_copy);
                    self.count_page(&page.bytes()[PAGE_HEADER_SIZE..][..info.data_len]);
                }
                Ok(None) => break,
                Err(_) => self.errors += 1,
            }
        }
    }

    /// Counts the data events of one page's committed bytes.
    fn count_page(&mut self, data: &[u8]) {
        let mut at = 0;
        while at < data.len() {
            match decode(data, at) {
                Ok((PageRecord::Data { payload_offset, .. }, size)) => {
                    self.read += 1;
                    self.by_pages += 1;
                    if data.get(payload_offset..payload_offset + 4) != Some(&self.id[..]) {
                        self.bad += 1;
                    }
                    at += size;
                }
                Ok((_, size)) => at += size,
                Err(_) => {
                    self.errors += 1;
                    break;
                }
            }
        }
    }
}
