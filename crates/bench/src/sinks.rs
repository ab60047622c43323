//! Everything that can store a record, behind one trait, so the criterion
//! bench and the runner time exactly the same code.
//!
//! # Fairness of the single-thread write cost
//!
//! There is no reader in the write-cost benches. ringtrace runs in overwrite
//! mode and never fills up: it keeps pushing its head page, so its figure
//! includes the page crossings and head pushes a flight recorder really does.
//! The queues would fill up and start failing, so each timed batch writes at
//! most as many records as the queue holds (every queue gets the same 64 KiB
//! of storage as the ring), and the queue is drained *outside* the timed
//! section before the next batch (`drain`). Each queue therefore always
//! writes into room, which is its fastest case; the drain costs it nothing.
//! rtrb and ringbuf's byte queue store the time stamp and payload as one
//! 8 + N byte record published once (a chunk, or one `push_slice`), the same
//! record the typed queues and the `memcpy` floor store. ringtrace stores
//! the time stamp as a delta in its 4-byte event header.

use crate::record::Record;
use crossbeam_queue::ArrayQueue;
use ringbuf::traits::{Consumer as _, Producer as _, Split as _};
use ringtrace_ring::{Config, Mode, RingBuffer, Writer};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Storage every peer gets, in bytes (the ring: 16 pages of 4096 bytes).
pub const QUEUE_BYTES: usize = 64 * 1024;

/// Pages in the ring used by the write-cost benches.
pub const RING_PAGES: usize = QUEUE_BYTES / 4096;

/// Something that stores a record of an 8-byte time stamp and `N` bytes.
pub trait Sink<const N: usize> {
    /// How many records one timed batch may write before [`Sink::drain`]:
    /// by default, what [`QUEUE_BYTES`] holds.
    fn batch(&self) -> usize {
        records::<N>()
    }
    /// Stores one record.
    fn write(&mut self, ts: u64, payload: &[u8; N]);
    /// Empties the sink; runs outside the timed section.
    fn drain(&mut self) {}
}

/// Times `events` writes of the same record (time stamp taken once, before
/// the loop).
#[inline]
pub fn time_batch<const N: usize, S: Sink<N>>(
    sink: &mut S,
    events: usize,
    ts: u64,
    payload: &[u8; N],
) -> Duration {
    let ts = black_box(ts);
    let payload = black_box(payload);
    let start = Instant::now();
    for _ in 0..events {
        sink.write(ts, payload);
    }
    start.elapsed()
}

/// Times `events` writes in batches, draining between them outside the
/// timed section; returns the write time only (criterion's `iter_custom`).
pub fn time_events<const N: usize, S: Sink<N>>(sink: &mut S, events: u64) -> Duration {
    let payload = crate::record::payload::<N>();
    let ts = crate::clock::tsc();
    let mut total = Duration::ZERO;
    let mut left = events;
    while left > 0 {
        let n = left.min(sink.batch() as u64);
        total += time_batch(sink, n as usize, ts, &payload);
        sink.drain();
        left -= n;
    }
    total
}

/// Writes batches for at least `budget` of timed time and returns the
/// median over batches of ns per event.
///
/// The median of batches, not the total time over the total count: on a
/// shared machine the thread is sometimes descheduled in the middle of a
/// batch, which inflates that batch alone; the median ignores it.
pub fn ns_per_event<const N: usize, S: Sink<N>>(sink: &mut S, budget: Duration) -> f64 {
    let payload = crate::record::payload::<N>();
    let ts = crate::clock::tsc();
    let mut total = Duration::ZERO;
    let mut batches = Vec::with_capacity(1024);
    while total < budget {
        let n = sink.batch();
        let t = time_batch(sink, n, ts, &payload);
        total += t;
        sink.drain();
        batches.push(t.as_nanos() as f64 / n as f64);
    }
    crate::stats::Summary::of(&batches).map_or(f64::NAN, |s| s.median)
}

/// The ring used by the write-cost benches: one ring of [`RING_PAGES`]
/// pages of 4096 bytes.
pub fn bench_ring(mode: Mode) -> RingBuffer {
    RingBuffer::new(
        Config::new(1)
            .pages_per_ring(RING_PAGES)
            .page_size(4096)
            .mode(mode),
    )
    .expect("a 64 KiB ring is a valid configuration")
}

/// Records of `N` payload bytes that fit in [`QUEUE_BYTES`].
pub const fn records<const N: usize>() -> usize {
    QUEUE_BYTES / Record::<N>::BYTES
}

/// ringtrace's `Writer::write`.
#[derive(Debug)]
pub struct RingWrite<'a> {
    writer: Writer<'a>,
    /// Writes that returned an error (none are expected in overwrite mode).
    pub errors: u64,
}

impl<'a> RingWrite<'a> {
    /// Writes through `writer`.
    pub fn new(writer: Writer<'a>) -> Self {
        RingWrite { writer, errors: 0 }
    }
}

impl<const N: usize> Sink<N> for RingWrite<'_> {
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        if self.writer.write(ts, payload).is_err() {
            self.errors += 1;
        }
    }
}

/// ringtrace's `Writer::reserve`, copy, `Reservation::commit`.
#[derive(Debug)]
pub struct RingReserve<'a> {
    writer: Writer<'a>,
    /// Reservations that failed.
    pub errors: u64,
}

impl<'a> RingReserve<'a> {
    /// Reserves through `writer`.
    pub fn new(writer: Writer<'a>) -> Self {
        RingReserve { writer, errors: 0 }
    }
}

impl<const N: usize> Sink<N> for RingReserve<'_> {
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        match self.writer.reserve(ts, N) {
            Ok(mut r) => {
                r.copy_from_slice(payload);
                r.commit();
            }
            Err(_) => self.errors += 1,
        }
    }
}

/// ringtrace's `write` with a clock read per event (`clock` replaces the
/// time stamp taken before the loop), as a tracer does.
#[derive(Debug)]
pub struct RingWriteClocked<'a, C> {
    writer: Writer<'a>,
    clock: C,
    /// Writes that returned an error.
    pub errors: u64,
}

impl<'a, C: FnMut() -> u64> RingWriteClocked<'a, C> {
    /// Writes through `writer`, stamping each event with `clock()`.
    pub fn new(writer: Writer<'a>, clock: C) -> Self {
        RingWriteClocked {
            writer,
            clock,
            errors: 0,
        }
    }
}

impl<const N: usize, C: FnMut() -> u64> Sink<N> for RingWriteClocked<'_, C> {
    #[inline(always)]
    fn write(&mut self, _ts: u64, payload: &[u8; N]) {
        let ts = (self.clock)();
        if self.writer.write(ts, payload).is_err() {
            self.errors += 1;
        }
    }
}

/// `rtrb::RingBuffer<u8>`: one chunk of 8 + N bytes per record
/// (`write_chunk_uninit`, copy, `commit_all`), the way rtrb's own
/// `io::Write` impl writes bytes.
#[derive(Debug)]
pub struct RtrbBytes {
    producer: rtrb::Producer<u8>,
    consumer: rtrb::Consumer<u8>,
    batch: usize,
}

impl RtrbBytes {
    /// A byte ring of [`QUEUE_BYTES`] for records of `record` bytes.
    pub fn new(record: usize) -> Self {
        let (producer, consumer) = rtrb::RingBuffer::new(QUEUE_BYTES);
        RtrbBytes {
            producer,
            consumer,
            batch: QUEUE_BYTES / record,
        }
    }
}

/// Copies `src` into the possibly split chunk `(first, second)`.
#[inline(always)]
fn copy_split(
    first: &mut [std::mem::MaybeUninit<u8>],
    second: &mut [std::mem::MaybeUninit<u8>],
    src: &[u8],
) {
    debug_assert_eq!(first.len() + second.len(), src.len());
    let (a, b) = src.split_at(first.len());
    // SAFETY: `first` has exactly `a.len()` bytes and `second` exactly
    // `b.len()` (the chunk was asked for `src.len()` bytes); the source is
    // an ordinary slice that cannot overlap the ring's storage.
    unsafe {
        std::ptr::copy_nonoverlapping(a.as_ptr(), first.as_mut_ptr().cast::<u8>(), a.len());
        std::ptr::copy_nonoverlapping(b.as_ptr(), second.as_mut_ptr().cast::<u8>(), b.len());
    }
}

impl<const N: usize> Sink<N> for RtrbBytes {
    fn batch(&self) -> usize {
        self.batch
    }
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        let rec = Record::new(ts, payload);
        let bytes = rec.as_bytes();
        if let Ok(mut chunk) = self.producer.write_chunk_uninit(bytes.len()) {
            let (first, second) = chunk.as_mut_slices();
            copy_split(first, second, bytes);
            // SAFETY: `copy_split` initialised every slot of the chunk.
            unsafe { chunk.commit_all() };
        }
    }
    fn drain(&mut self) {
        let n = self.consumer.slots();
        if let Ok(chunk) = self.consumer.read_chunk(n) {
            chunk.commit_all();
        }
    }
}

/// `ringbuf::HeapRb<u8>`: `push_slice` of the 8 + N byte record.
pub struct RingbufBytes {
    producer: ringbuf::HeapProd<u8>,
    consumer: ringbuf::HeapCons<u8>,
    batch: usize,
}

impl std::fmt::Debug for RingbufBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingbufBytes")
            .field("batch", &self.batch)
            .finish()
    }
}

impl RingbufBytes {
    /// A byte ring of [`QUEUE_BYTES`] for records of `record` bytes.
    pub fn new(record: usize) -> Self {
        let (producer, consumer) = ringbuf::HeapRb::<u8>::new(QUEUE_BYTES).split();
        RingbufBytes {
            producer,
            consumer,
            batch: QUEUE_BYTES / record,
        }
    }
}

impl<const N: usize> Sink<N> for RingbufBytes {
    fn batch(&self) -> usize {
        self.batch
    }
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        let rec = Record::new(ts, payload);
        self.producer.push_slice(rec.as_bytes());
    }
    fn drain(&mut self) {
        self.consumer.clear();
    }
}

/// `ringbuf::HeapRb<Record<N>>`: `try_push` of a typed record.
pub struct RingbufTyped<const N: usize> {
    producer: ringbuf::HeapProd<Record<N>>,
    consumer: ringbuf::HeapCons<Record<N>>,
}

impl<const N: usize> std::fmt::Debug for RingbufTyped<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RingbufTyped").field("payload", &N).finish()
    }
}

impl<const N: usize> RingbufTyped<N> {
    /// A typed ring of [`QUEUE_BYTES`] worth of records.
    pub fn new() -> Self {
        let (producer, consumer) = ringbuf::HeapRb::new(records::<N>()).split();
        RingbufTyped { producer, consumer }
    }
}

impl<const N: usize> Default for RingbufTyped<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sink<N> for RingbufTyped<N> {
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        let _ = self.producer.try_push(Record::new(ts, payload));
    }
    fn drain(&mut self) {
        self.consumer.clear();
    }
}

/// `crossbeam_queue::ArrayQueue<Record<N>>` with `force_push` (overwrite).
#[derive(Debug)]
pub struct ArrayQueueSink<const N: usize> {
    queue: ArrayQueue<Record<N>>,
}

impl<const N: usize> ArrayQueueSink<N> {
    /// A queue of [`QUEUE_BYTES`] worth of records.
    pub fn new() -> Self {
        ArrayQueueSink {
            queue: ArrayQueue::new(records::<N>()),
        }
    }
}

impl<const N: usize> Default for ArrayQueueSink<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sink<N> for ArrayQueueSink<N> {
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        black_box(self.queue.force_push(Record::new(ts, payload)));
    }
    fn drain(&mut self) {
        while self.queue.pop().is_some() {}
    }
}

/// `std::sync::mpsc::sync_channel` of records, `try_send`.
#[derive(Debug)]
pub struct SyncChannel<const N: usize> {
    sender: mpsc::SyncSender<Record<N>>,
    receiver: mpsc::Receiver<Record<N>>,
}

impl<const N: usize> SyncChannel<N> {
    /// A channel bounded to [`QUEUE_BYTES`] worth of records.
    pub fn new() -> Self {
        let (sender, receiver) = mpsc::sync_channel(records::<N>());
        SyncChannel { sender, receiver }
    }
}

impl<const N: usize> Default for SyncChannel<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sink<N> for SyncChannel<N> {
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        let _ = self.sender.try_send(Record::new(ts, payload));
    }
    fn drain(&mut self) {
        self.receiver.try_iter().for_each(drop);
    }
}

/// `Mutex<VecDeque<Record<N>>>`, `push_back` under the lock.
#[derive(Debug)]
pub struct MutexDeque<const N: usize> {
    queue: Mutex<VecDeque<Record<N>>>,
}

impl<const N: usize> MutexDeque<N> {
    /// A deque preallocated to [`QUEUE_BYTES`] worth of records.
    pub fn new() -> Self {
        MutexDeque {
            queue: Mutex::new(VecDeque::with_capacity(records::<N>())),
        }
    }
}

impl<const N: usize> Default for MutexDeque<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sink<N> for MutexDeque<N> {
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back(Record::new(ts, payload));
    }
    fn drain(&mut self) {
        self.queue.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The floor: a plain `memcpy` of the record into a preallocated buffer,
/// at a moving offset.
#[derive(Debug)]
pub struct Memcpy {
    buf: Box<[u8]>,
    offset: usize,
}

impl Memcpy {
    /// A buffer of [`QUEUE_BYTES`].
    pub fn new() -> Self {
        Memcpy {
            buf: vec![0; QUEUE_BYTES].into_boxed_slice(),
            offset: 0,
        }
    }
}

impl Default for Memcpy {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Sink<N> for Memcpy {
    #[inline(always)]
    fn write(&mut self, ts: u64, payload: &[u8; N]) {
        let rec = Record::new(ts, payload);
        let bytes = rec.as_bytes();
        let mut end = self.offset + bytes.len();
        if end > self.buf.len() {
            self.offset = 0;
            end = bytes.len();
        }
        self.buf[self.offset..end].copy_from_slice(bytes);
        self.offset = end;
    }
    fn drain(&mut self) {
        black_box(&mut self.buf);
        self.offset = 0;
    }
}
