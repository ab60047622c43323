//! The [`Tracer`]: one trace instance (the kernel's trace array with its
//! ring buffer), its configuration, its counters, and the process-wide
//! default instance.
//!
//! # Terms
//!
//! - **Context**: a ring of the tracer's buffer leased to one writer: a
//!   thread (with the signal handlers that interrupt it) or an explicit
//!   [`ContextHandle`]. The kernel's CPU.
//! - **Slot**: the lease state of one ring (below).
//!
//! ```text
//!         lease (a thread's first ordinary event, or Tracer::context)
//!  FREE ───────────────────────────────────────────────────────> LEASED
//!                                                                 │  ^
//!                              thread exit / ContextHandle drop   │  │ lease, only once the
//!                                                                 v  │ ring holds no unread event
//!                                                                EXITED
//! ```
//!
//! A ring in `EXITED` keeps its events readable; a new lease takes an
//! `EXITED` ring only when it holds no unread event ([`RingStats::entries`]
//! is 0), so no event is ever attributed to the wrong writer (each event also
//! carries its thread id). When every ring is `LEASED` or holds unread
//! events, a new writer is refused and counted
//! ([`TracerStats::refused_no_context`]); it tries again on its next event.
//!
//! # What this module must not touch
//!
//! The ring's internals (it only uses `ringtrace-ring`'s public API) and the
//! per-thread state (that is [`crate::context`]).

pub mod clock;
pub mod context;
pub(crate) mod lease;
mod macros;
pub(crate) mod mask;
pub(crate) mod stack_hook;
pub(crate) mod storage;

use crate::sync::{AtomicU32, AtomicU64, Ordering};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};

use ringtrace_ring::{Config, ConfigError, Mode, RingBuffer, RingError, RingStats};

use crate::clock::{Clock, WallStart};
use crate::event::{EventType, Registry, RegistryError};
use storage::{SharedStorage, SlotArray, Switch};

// The slot words and their protocol (claim, release, reclaim) are in
// `lease`; the session reaches them through these names.
pub(crate) use lease::{slot_owner, slot_state, EXITED, FREE, LEASED, MAX_SLOT_OWNERS, RECLAIMING};

/// The kernel's `TASK_COMM_LEN` minus the NUL: the kernel cuts a thread's
/// comm to 15 bytes (ringtrace keeps the whole Rust name: [`NAME_LEN`]).
///
/// ```
/// assert_eq!(ringtrace::tracer::COMM_LEN, 15);
/// ```
#[doc(hidden)]
pub const COMM_LEN: usize = 15;

/// Longest thread name kept (bytes): Rust's thread names whole
/// (`tokio-runtime-worker`, not the kernel's `tokio-runtime-w`); longer
/// ones are cut at a character boundary. Inline, so that the crash dump
/// reads names without allocating.
///
/// ```
/// assert!(ringtrace::tracer::NAME_LEN >= "tokio-runtime-worker".len());
/// ```
#[doc(hidden)]
pub const NAME_LEN: usize = 63;

/// Source of tracer ids; 0 is never used (it marks an empty lease cell).
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// Why a tracer could not be built.
///
/// ```
/// let e = ringtrace::TracerConfig::new().max_contexts(0).build().unwrap_err();
/// assert_eq!(e, ringtrace::TracerError::NoContexts);
/// assert!(e.to_string().contains("at least 1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TracerError {
    /// The ring buffer refused the configuration.
    #[error("ring buffer configuration: {0}")]
    Config(#[from] ConfigError),
    /// `max_contexts` is 0.
    #[error("max_contexts must be at least 1")]
    NoContexts,
    /// [`crate::init`] was called after the default tracer existed.
    #[error(
        "the default tracer is already initialised; call ringtrace::init before the first event"
    )]
    AlreadyInitialized,
    /// No more tracer ids (2^32 - 1 tracers were created in this process).
    #[error("no tracer ids left")]
    NoIds,
}

/// Configuration of a [`Tracer`], built fluently.
///
/// ```
/// use ringtrace::tracer::TracerConfig;
/// use ringtrace::clock::Clock;
/// let t = TracerConfig::new()
///     .bytes_per_context(64 * 1024)
///     .max_contexts(4)
///     .clock(Clock::counter())
///     .build()
///     .unwrap();
/// assert_eq!(t.max_contexts(), 4);
/// assert_eq!(t.clock().name(), "counter");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TracerConfig {
    /// Data bytes of each context's ring (rounded up to whole pages, at least 2).
    pub bytes_per_context: usize,
    /// Page (sub-buffer) size: a power of two from 4096 to 1 MiB.
    pub page_size: usize,
    /// Overwrite (flight recorder, the default) or producer/consumer.
    pub mode: Mode,
    /// The clock; `None` picks [`Clock::preferred`] when the tracer is built
    /// (the first time in a process that calibrates the TSC and runs its
    /// cross-thread check: the calibration's 10 ms wait, two short-lived
    /// threads).
    pub clock: Option<Clock>,
    /// Most contexts (rings) at once; more writers are refused and counted.
    pub max_contexts: usize,
    /// Entries of the thread-name table (`saved_cmdlines_size`).
    pub saved_cmdlines: usize,
    /// In overwrite mode, lets a new thread take over the ring of an exited
    /// thread that still holds unread events when no context is free or
    /// drained (see [`TracerConfig::take_over_exited`]).
    pub take_over_exited: bool,
    /// Records the caller's stack after each event, as a `user_stack`
    /// record (ftrace's `userstacktrace` option; see [`crate::stack`]).
    pub stacktrace: bool,
}

impl Default for TracerConfig {
    fn default() -> Self {
        Self::new()
    }
}

impl TracerConfig {
    /// 256 KiB of 4 KiB pages per context, overwrite mode, the preferred
    /// clock, 64 contexts, 128 saved thread names (the kernel's default).
    ///
    /// ```
    /// let c = ringtrace::TracerConfig::new();
    /// assert_eq!(c.mode, ringtrace::Mode::Overwrite);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        TracerConfig {
            bytes_per_context: 256 * 1024,
            page_size: 4096,
            mode: Mode::Overwrite,
            clock: None,
            max_contexts: 64,
            saved_cmdlines: 128,
            take_over_exited: false,
            stacktrace: false,
        }
    }

    /// Sets the ring size of each context in bytes.
    ///
    /// ```
    /// let c = ringtrace::TracerConfig::new().bytes_per_context(1 << 20);
    /// assert_eq!(c.bytes_per_context, 1 << 20);
    /// ```
    #[must_use]
    pub fn bytes_per_context(mut self, bytes: usize) -> Self {
        self.bytes_per_context = bytes;
        self
    }

    /// Sets the page size.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().page_size(8192).max_contexts(1).build().unwrap();
    /// assert_eq!(t.config().page_size, 8192);
    /// ```
    #[must_use]
    pub fn page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    /// Sets the mode.
    ///
    /// ```
    /// let c = ringtrace::TracerConfig::new().mode(ringtrace::Mode::ProducerConsumer);
    /// assert_eq!(c.mode, ringtrace::Mode::ProducerConsumer);
    /// ```
    #[must_use]
    pub fn mode(mut self, mode: Mode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets the clock.
    ///
    /// ```
    /// let c = ringtrace::TracerConfig::new().clock(ringtrace::clock::Clock::mono());
    /// assert_eq!(c.clock.map(|c| c.name()), Some("mono"));
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Sets the maximum number of contexts.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(3).build().unwrap();
    /// assert_eq!(t.max_contexts(), 3);
    /// ```
    #[must_use]
    pub fn max_contexts(mut self, n: usize) -> Self {
        self.max_contexts = n;
        self
    }

    /// Sets the size of the thread-name table.
    ///
    /// ```
    /// let c = ringtrace::TracerConfig::new().saved_cmdlines(64);
    /// assert_eq!(c.saved_cmdlines, 64);
    /// ```
    #[must_use]
    pub fn saved_cmdlines(mut self, n: usize) -> Self {
        self.saved_cmdlines = n;
        self
    }

    /// A flight recorder for programs whose threads come and go: when every
    /// context is leased or holds unread events of an exited thread, a new
    /// thread takes over the ring of the exited thread whose newest event
    /// is the oldest, instead of being refused. The exited thread's events
    /// stay readable, attributed to it (each event carries its thread id),
    /// until the new writer's pages overwrite them, which the ring counts
    /// as overrun like any flight-recorder loss. Counted in
    /// [`TracerStats::takeovers`].
    ///
    /// Overwrite mode only: in producer/consumer mode nothing unread is
    /// ever overwritten, so a new thread is refused as without this
    /// setting. Off by default: the kernel's rule, a ring of an exited
    /// writer is reused once drained, keeps a finished thread's last
    /// events until they are read.
    ///
    /// ```
    /// let t: &'static ringtrace::Tracer = Box::leak(Box::new(
    ///     ringtrace::TracerConfig::new().max_contexts(1).take_over_exited(true).build().unwrap(),
    /// ));
    /// std::thread::spawn(move || ringtrace::trace!(tracer: t, "first")).join().unwrap();
    /// // Undrained, yet a second thread records: it takes the ring over.
    /// std::thread::spawn(move || ringtrace::trace!(tracer: t, "second")).join().unwrap();
    /// assert_eq!(t.stats().takeovers, 1);
    /// assert_eq!(t.ring_stats(0).unwrap().entries, 2);
    /// ```
    #[must_use]
    pub fn take_over_exited(mut self, on: bool) -> Self {
        self.take_over_exited = on;
        self
    }

    /// Stack traces on events (ftrace's `userstacktrace`): see
    /// [`crate::stack`].
    #[must_use]
    pub fn stacktrace(mut self, on: bool) -> Self {
        self.stacktrace = on;
        self
    }

    /// Builds the tracer (allocates all rings now: nothing is allocated when
    /// a thread first records).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(1).build()?;
    /// assert!(t.is_on());
    /// # Ok::<(), ringtrace::TracerError>(())
    /// ```
    pub fn build(self) -> Result<Tracer, TracerError> {
        Tracer::new(self)
    }
}

/// Tracer-level counters (the ring-level ones are [`RingStats`]).
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
/// ringtrace::trace!(tracer: &t, "x");
/// assert_eq!(t.stats().leases, 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TracerStats {
    /// Events refused because every context was leased or still held
    /// unread events (past `max_contexts`).
    pub refused_no_context: u64,
    /// Events refused because a signal handler ran on a thread that had no
    /// context yet (leasing would allocate and lock).
    pub refused_in_signal_handler: u64,
    /// Events refused for other reasons: a record that could not be encoded
    /// or is larger than a page, or a thread writing to more tracers than
    /// [`crate::context::MAX_TRACERS_PER_THREAD`].
    pub refused_other: u64,
    /// Contexts leased so far (first leases plus reuses).
    pub leases: u64,
    /// Leases that reused the drained ring of an exited writer.
    pub reuses: u64,
    /// Leases that took over the undrained ring of an exited writer
    /// ([`TracerConfig::take_over_exited`]).
    pub takeovers: u64,
    /// Events refused because their context does not record
    /// ([`Tracer::set_contexts`], the kernel's `tracing_cpumask`).
    pub refused_masked: u64,
}

/// A bounded tid -> name table, oldest entry evicted first (the kernel's
/// `saved_cmdlines`).
#[derive(Debug, Default)]
pub(crate) struct Cmdlines {
    cap: usize,
    names: HashMap<i32, Comm>,
    /// The process of each thread where known: its pid (tgid) and name
    /// (the kernel's `saved_tgids`); evicted with the thread's name.
    procs: HashMap<i32, (u32, Comm)>,
    order: VecDeque<i32>,
    /// Bumped by every change of the table, so that a reader keeping
    /// names it looked up (the pipe's `output::HeadCache`) knows when they
    /// may be stale without taking the table's lock.
    generation: std::sync::Arc<AtomicU64>,
}

/// A thread name of at most [`NAME_LEN`] bytes, stored inline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Comm {
    bytes: [u8; NAME_LEN],
    len: u8,
}

impl Comm {
    /// `name` cut to [`NAME_LEN`] bytes at a character boundary.
    pub(crate) fn new(name: &str) -> Comm {
        let mut end = name.len().min(NAME_LEN);
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; NAME_LEN];
        bytes[..end].copy_from_slice(&name.as_bytes()[..end]);
        Comm {
            bytes,
            len: end as u8,
        }
    }

    /// The name.
    pub(crate) fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("<...>")
    }
}

impl Cmdlines {
    fn new(cap: usize) -> Self {
        Cmdlines {
            cap: cap.max(1),
            names: HashMap::new(),
            procs: HashMap::new(),
            order: VecDeque::new(),
            generation: Default::default(),
        }
    }

    /// The table's change counter (see the field).
    pub(crate) fn generation(&self) -> std::sync::Arc<AtomicU64> {
        self.generation.clone()
    }

    pub(crate) fn insert(&mut self, tid: i32, comm: Comm) {
        // Release: pairs with the Acquire load in `output::HeadCache`; a
        // reader that sees the new count looks the name up again (under
        // the lock, so it then sees the change).
        self.generation.fetch_add(1, Ordering::Release);
        if self.names.insert(tid, comm).is_none() {
            self.order.push_back(tid);
            while self.order.len() > self.cap {
                if let Some(old) = self.order.pop_front() {
                    self.names.remove(&old);
                    self.procs.remove(&old);
                }
            }
        }
    }

    pub(crate) fn get(&self, tid: i32) -> Option<&Comm> {
        self.names.get(&tid)
    }

    /// Thread `tid`'s name, and the pid and name of its process.
    pub(crate) fn insert_with_process(&mut self, tid: i32, comm: Comm, pid: u32, process: Comm) {
        self.insert(tid, comm);
        self.set_process(tid, pid, process);
    }

    /// The pid and name of the process of thread `tid`, whose name is in
    /// the table (else nothing: the entry is bounded with the names).
    pub(crate) fn set_process(&mut self, tid: i32, pid: u32, process: Comm) {
        if self.names.contains_key(&tid) {
            self.procs.insert(tid, (pid, process));
        }
    }

    /// The pid and name of thread `tid`'s process, when recorded.
    pub(crate) fn process_of(&self, tid: i32) -> Option<(u32, &str)> {
        self.procs.get(&tid).map(|(p, c)| (*p, c.as_str()))
    }

    /// Every saved name (at most the table's capacity), in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (i32, &Comm)> + '_ {
        self.names.iter().map(|(t, c)| (*t, c))
    }
}

/// Why an event was refused (the counters of [`TracerStats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `refused_no_context`.
    NoContext,
    /// `refused_in_signal_handler`.
    InSignalHandler,
    /// `refused_other`.
    Other,
    /// `refused_masked`.
    Masked,
}

/// The shared state of a tracer. Threads' exit guards hold `Weak`s to it.
#[derive(Debug)]
pub(crate) struct Inner {
    /// Unique in the process, never reused; lease cells store it.
    id: u32,
    buf: RingBuffer,
    clock: Clock,
    config: TracerConfig,
    /// Recording on/off (`tracing_on`); a session's is in its shared
    /// memory, for every writer process.
    pub(super) on: Switch,
    /// Wall-clock anchor of the trace's start: the session's, else taken
    /// when the tracer is built.
    wall_start: Option<WallStart>,
    /// Lease state of each ring (`FREE`, `LEASED`, `EXITED`). Changed by
    /// compare-and-swap on lease (AcqRel: the new writer sees the previous
    /// writer's ring state; pairs with the Release store at release).
    /// In the session's shared memory for a session tracer (so that every
    /// process of the session leases from one table).
    slots: SlotArray,
    /// Thread id of each ring's current or last writer (0: none). For stats.
    slot_tid: SlotArray,
    refused_no_context: AtomicU64,
    refused_in_signal_handler: AtomicU64,
    refused_other: AtomicU64,
    refused_masked: AtomicU64,
    /// Which contexts record (`tracing_cpumask`); the session's for a
    /// session tracer.
    pub(crate) contexts: mask::ContextMask,
    leases: AtomicU64,
    reuses: AtomicU64,
    takeovers: AtomicU64,
    /// Thread names. Locked on lease and by readers only, never by a write;
    /// the crash-dump signal path only `try_lock`s it.
    cmdlines: Mutex<Cmdlines>,
    /// The shared storage (a session) this tracer's rings live in, if
    /// any; `None` for the heap flavor.
    session: Option<Arc<dyn SharedStorage>>,
}

impl Inner {
    /// The ring buffer that holds this tracer's rings.
    pub(crate) fn buf(&self) -> &RingBuffer {
        &self.buf
    }

    /// The clock this tracer's time stamps are read from.
    pub(crate) fn clock(&self) -> Clock {
        self.clock
    }

    /// Thread names (tid to comm). Readers `lock` it; the crash-dump
    /// signal path only `try_lock`s it; a write never takes it.
    pub(crate) fn cmdlines(&self) -> &Mutex<Cmdlines> {
        &self.cmdlines
    }

    /// Turns recording on or off (`tracing_on`); the crash dump turns it
    /// off before it reads (on a session, for every writer process, as the
    /// kernel's dump turns tracing off for the whole system).
    pub(crate) fn set_on(&self, on: bool) {
        self.on.set(on, &self.buf);
    }

    /// The shared storage (a session) this tracer's rings live in, if any.
    pub(crate) fn session(&self) -> Option<&dyn SharedStorage> {
        self.session.as_deref()
    }

    /// Leases a ring: a never-used one first, then a drained one of an
    /// exited writer; for a session tracer, when none is left, the slots of
    /// processes that died holding them are reclaimed (their rings
    /// repaired, their committed events kept for the readers), and a ring
    /// handed back by a process that is gone is taken over as it is, its
    /// events kept, in every mode (`orphaned_rings`). A session writer
    /// that has no process-table entry, even after the entries of gone
    /// processes were freed, leases nothing: it runs untraced
    /// (`SessionLink::run_untraced`), since readers judge a ring's writer
    /// alive by its entry. Lock-free; `None` when all are taken.
    pub(crate) fn lease_ring(&self, tid: i32) -> Option<usize> {
        let writer = self.session.as_ref().filter(|l| l.is_writer());
        if writer.is_some_and(|l| l.is_untraced()) {
            return None;
        }
        let mut owner = self.session.as_ref().map_or(0, |l| l.owner());
        if let Some(l) = writer.filter(|_| owner == 0) {
            // The process table is full: free entries of gone processes
            // by reclaiming their slots, then register again.
            if l.reclaim_dead_slots(&self.buf).is_some_and(|n| n > 0) {
                owner = l.owner();
            }
            if owner == 0 {
                l.run_untraced();
                return None;
            }
        }
        if let Some(i) = self.lease_free_or_drained(tid, owner) {
            return Some(i);
        }
        let l = self.session.as_ref()?;
        let reclaimed = l.reclaim_dead_slots(&self.buf)?;
        if reclaimed > 0 {
            if let Some(i) = self.lease_free_or_drained(tid, owner) {
                return Some(i);
            }
        }
        if !l.is_writer() {
            return None;
        }
        // Rings of gone processes, the one written longest ago first;
        // another process may take the chosen one first: then the next.
        let mut orphans: Vec<(usize, u32, u64)> = l
            .orphaned_rings(self.buf.rings(), owner)
            .into_iter()
            .map(|(i, v)| (i, v, self.buf.stats(i).map_or(u64::MAX, |st| st.now_ts)))
            .collect();
        orphans.sort_by_key(|&(_, _, ts)| ts);
        orphans
            .into_iter()
            .find(|&(i, v, _)| self.claim(i, v, tid, owner, Some(&self.takeovers)))
            .map(|(i, _, _)| i)
    }

    /// Counts a refused event: here, and in the session's shared memory
    /// where its readers see it. Async-signal-safe (atomics only).
    #[cold]
    pub(crate) fn count_refused(&self, why: Refusal) {
        let local = match why {
            Refusal::NoContext => &self.refused_no_context,
            Refusal::InSignalHandler => &self.refused_in_signal_handler,
            Refusal::Other => &self.refused_other,
            Refusal::Masked => &self.refused_masked,
        };
        // Relaxed: counters, ordering nothing.
        local.fetch_add(1, Ordering::Relaxed);
        if let Some(l) = self.session.as_ref().filter(|l| l.is_writer()) {
            l.count_refused(why);
        }
    }

    fn lease_free_or_drained(&self, tid: i32, owner: usize) -> Option<usize> {
        // Only slots of rings that exist: the record path writes a leased
        // ring without checking its index again (a session's slot table
        // and ring count come from one header, but a corrupt one may not
        // agree).
        let rings = self.buf.rings();
        let seen = || {
            self.slots
                .iter()
                .take(rings)
                .map(|s| s.load(Ordering::Relaxed))
                .enumerate()
        };
        for (i, v) in seen() {
            if slot_state(v) == FREE && self.claim(i, v, tid, owner, None) {
                return Some(i);
            }
        }
        for (i, v) in seen() {
            if slot_state(v) == EXITED
                && self.buf.stats(i).is_ok_and(|st| st.entries == 0)
                && self.claim(i, v, tid, owner, Some(&self.reuses))
            {
                return Some(i);
            }
        }
        if !(self.config.take_over_exited && self.buf.mode() == Mode::Overwrite) {
            return None;
        }
        // Take over the ring of the exited writer whose newest event is the
        // oldest, unread events and all ([`TracerConfig::take_over_exited`]).
        // Another thread may take the chosen one first: then the next
        // oldest, a bounded number of times.
        for _ in 0..rings {
            let (i, v) = seen()
                .filter(|&(_, v)| slot_state(v) == EXITED)
                .min_by_key(|&(i, _)| self.buf.stats(i).map_or(u64::MAX, |st| st.now_ts))?;
            if self.claim(i, v, tid, owner, Some(&self.takeovers)) {
                return Some(i);
            }
        }
        None
    }

    /// Leases slot `i`, seen as `v`, to thread `tid` of process-table entry
    /// `owner`, if nobody changed it since; counts the lease and, when
    /// given, its kind (a reuse, a takeover).
    fn claim(&self, i: usize, v: u32, tid: i32, owner: usize, kind: Option<&AtomicU64>) -> bool {
        // The new writer sees every write of the ring's previous one
        // (`lease::claim`'s AcqRel, paired with `release_ring`'s Release).
        if !lease::claim(&self.slots[i], v, owner) {
            return false;
        }
        self.slot_tid[i].store(tid as u32, Ordering::Relaxed);
        self.leases.fetch_add(1, Ordering::Relaxed);
        if let Some(k) = kind {
            k.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// Whether ring `ring`'s lease ended (its writer is gone: the ring gets
    /// no more events until it is leased again, once drained).
    pub(crate) fn ring_handed_back(&self, ring: usize) -> bool {
        self.slots.get(ring).is_some_and(lease::handed_back)
    }

    /// Ends a lease: the ring stays readable and is reused once drained.
    pub(crate) fn release_ring(&self, ring: usize) {
        // The next writer of this ring sees every write of this one
        // (`lease::release`'s Release, paired with the claim's AcqRel).
        // Only the leaseholder ends a lease; a reclaimer takes only the
        // slots of dead processes.
        if let Some(s) = self.slots.get(ring) {
            lease::release(s);
        }
    }

    /// Remembers the name of thread `tid`, with the pid (tgid) and name
    /// of the process writing (a forked child records its own).
    pub(crate) fn save_comm(&self, tid: i32, comm: Comm) {
        let (pid, process) = (std::process::id(), context::read_process_name());
        if let Some(l) = &self.session {
            l.check_process();
            l.put_comm(tid, comm.as_str(), (pid, process.as_str()));
        }
        if let Ok(mut c) = self.cmdlines.lock() {
            c.insert_with_process(tid, comm, pid, process);
        }
    }
}

/// A trace instance: a ring buffer with one ring per context, a clock, an
/// on/off switch, counters and a thread-name table.
///
/// `Tracer` is `Send + Sync`; share it by reference (or put it in a
/// `static`/`Arc`). Events are recorded with [`trace!`](crate::trace),
/// [`trace_event!`](crate::trace_event), [`trace_marker`](Tracer::marker)
/// or [`Tracer::record`]; they are read with [`Tracer::pipe`].
///
/// ```
/// use ringtrace::tracer::TracerConfig;
/// use ringtrace::clock::Clock;
/// let t = TracerConfig::new().clock(Clock::counter()).max_contexts(2).build().unwrap();
/// ringtrace::trace!(tracer: &t, "x=%d", 5);
/// t.marker("hello");
/// let mut pipe = t.pipe();
/// let lines: Vec<String> = std::iter::from_fn(|| pipe.next_line().unwrap()).collect();
/// assert_eq!(lines.len(), 2);
/// assert!(lines[0].ends_with(": x=5\n"), "{}", lines[0]);
/// assert!(lines[1].ends_with(": tracing_mark_write: hello\n"));
///
/// // Tracing off: not recorded, not counted as lost.
/// t.set_on(false);
/// ringtrace::trace!(tracer: &t, "dropped");
/// assert!(pipe.next_line().unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct Tracer {
    pub(crate) inner: Arc<Inner>,
}

impl Tracer {
    /// Builds a tracer from `config`.
    ///
    /// ```
    /// let t = ringtrace::Tracer::new(ringtrace::TracerConfig::new().max_contexts(1))?;
    /// assert_eq!(t.max_contexts(), 1);
    /// # Ok::<(), ringtrace::TracerError>(())
    /// ```
    pub fn new(config: TracerConfig) -> Result<Tracer, TracerError> {
        if config.max_contexts == 0 {
            return Err(TracerError::NoContexts);
        }
        let buf = RingBuffer::new(
            Config::new(config.max_contexts)
                .page_size(config.page_size)
                .bytes_per_ring(config.bytes_per_context)
                .mode(config.mode),
        )?;
        Self::assemble(config, buf, None)
    }

    /// A tracer on `buf`, in the heap flavor (`shared` is `None`) or on
    /// the shared storage `shared` (a session, whose lease slots it uses).
    pub(crate) fn assemble(
        config: TracerConfig,
        buf: RingBuffer,
        shared: Option<Arc<dyn SharedStorage>>,
    ) -> Result<Tracer, TracerError> {
        let id = NEXT_ID
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_add(1))
            .map_err(|_| TracerError::NoIds)?;
        // Registers the built-in print/bprint types now, so that a signal
        // handler never runs that one-time initialisation.
        let _ = Registry::global();
        let clock = config.clock.unwrap_or_else(Clock::preferred);
        let n = config.max_contexts;
        let (slots, slot_tid) = match &shared {
            Some(s) => (SlotArray::States(s.clone()), SlotArray::Tids(s.clone())),
            None => (SlotArray::owned(n), SlotArray::owned(n)),
        };
        Ok(Tracer {
            inner: Arc::new(Inner {
                id,
                buf,
                clock,
                config: TracerConfig {
                    clock: Some(clock),
                    ..config
                },
                on: Switch::new(shared.clone()),
                wall_start: match &shared {
                    Some(s) => s.wall_start(),
                    None => WallStart::now(&clock),
                },
                slots,
                slot_tid,
                refused_no_context: AtomicU64::new(0),
                refused_in_signal_handler: AtomicU64::new(0),
                refused_other: AtomicU64::new(0),
                refused_masked: AtomicU64::new(0),
                contexts: mask::ContextMask::new(n, shared.clone()),
                leases: AtomicU64::new(0),
                reuses: AtomicU64::new(0),
                takeovers: AtomicU64::new(0),
                cmdlines: Mutex::new(Cmdlines::new(config.saved_cmdlines)),
                session: shared,
            }),
        })
    }

    /// A builder with the defaults of [`TracerConfig::new`].
    ///
    /// ```
    /// let t = ringtrace::Tracer::builder().max_contexts(1).build().unwrap();
    /// assert_eq!(t.used_contexts(), 0);
    /// ```
    #[must_use]
    pub fn builder() -> TracerConfig {
        TracerConfig::new()
    }

    /// The configuration (with the clock that was picked).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert_eq!(t.config().max_contexts, 2);
    /// assert!(t.config().clock.is_some(), "the picked clock is filled in");
    /// ```
    #[must_use]
    pub fn config(&self) -> &TracerConfig {
        &self.inner.config
    }

    /// The clock events are stamped with.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert!(matches!(t.clock().name(), "x86-tsc" | "mono"));
    /// ```
    #[must_use]
    pub fn clock(&self) -> Clock {
        self.inner.clock
    }

    /// Maximum number of contexts.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert_eq!(t.max_contexts(), 2);
    /// ```
    #[must_use]
    pub fn max_contexts(&self) -> usize {
        self.inner.slots.len()
    }

    /// The underlying ring buffer (ring `i` is context `i`), for raw access
    /// and export.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert_eq!(t.ring_buffer().rings(), 2);
    /// ```
    #[must_use]
    pub fn ring_buffer(&self) -> &RingBuffer {
        &self.inner.buf
    }

    /// The wall-clock time of the trace's start (`None` for the `counter`
    /// clock): a session's start, else when this tracer was built.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
    /// assert!(t.wall_start().is_some());
    /// ```
    #[must_use]
    pub fn wall_start(&self) -> Option<WallStart> {
        self.inner.wall_start
    }

    /// Whether recording is on (`tracing_on`).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert!(t.is_on());
    /// ```
    #[must_use]
    pub fn is_on(&self) -> bool {
        self.inner.on.is_on()
    }

    /// Turns recording on or off. Writes made while off are not attempts:
    /// they are neither recorded nor counted. On a session the switch is
    /// the session's, in its shared memory: it reaches every writer
    /// process (`ringtrace stop` / `start`).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.set_on(false);
    /// ringtrace::trace!(tracer: &t, "not recorded");
    /// assert_eq!(t.ring_stats(0).unwrap().entries, 0);
    /// ```
    pub fn set_on(&self, on: bool) {
        self.inner.set_on(on);
    }

    /// Counters of context `ring`.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// ringtrace::trace!(tracer: &t, "one");
    /// assert_eq!(t.ring_stats(0).unwrap().entries, 1);
    /// assert!(t.ring_stats(9).is_err());
    /// ```
    pub fn ring_stats(&self, ring: usize) -> Result<RingStats, RingError> {
        self.inner.buf.stats(ring)
    }

    /// Tracer-level counters.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert_eq!(t.stats().refused_no_context, 0);
    /// ```
    #[must_use]
    pub fn stats(&self) -> TracerStats {
        let i = &self.inner;
        TracerStats {
            refused_no_context: i.refused_no_context.load(Ordering::Relaxed),
            refused_in_signal_handler: i.refused_in_signal_handler.load(Ordering::Relaxed),
            refused_other: i.refused_other.load(Ordering::Relaxed),
            leases: i.leases.load(Ordering::Relaxed),
            reuses: i.reuses.load(Ordering::Relaxed),
            takeovers: i.takeovers.load(Ordering::Relaxed),
            refused_masked: i.refused_masked.load(Ordering::Relaxed),
        }
    }

    /// Makes exactly the contexts in `records` record (the kernel's
    /// `tracing_cpumask`; context N is CPU N in a trace.dat); the others'
    /// events are refused and counted in [`TracerStats::refused_masked`].
    /// On a session, every writer process sees the change.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.set_contexts(&[1]);
    /// ringtrace::trace!(tracer: &t, "on context 0: refused");
    /// assert_eq!(t.stats().refused_masked, 1);
    /// assert_eq!(t.recording_contexts(), vec![1]);
    /// ```
    pub fn set_contexts(&self, records: &[usize]) {
        let n = self.max_contexts();
        self.inner.contexts.set(n, |r| records.contains(&r));
    }

    /// The contexts that record ([`Tracer::set_contexts`]).
    #[must_use]
    pub fn recording_contexts(&self) -> Vec<usize> {
        (0..self.max_contexts())
            .filter(|&r| self.inner.contexts.allows(r))
            .collect()
    }

    /// Number of rings that are currently leased.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// let ctx = t.context().unwrap();
    /// assert_eq!(t.leased_contexts(), 1);
    /// drop(ctx);
    /// assert_eq!(t.leased_contexts(), 0);
    /// ```
    #[must_use]
    pub fn leased_contexts(&self) -> usize {
        self.inner
            .slots
            .iter()
            .filter(|s| slot_state(s.load(Ordering::Relaxed)) == LEASED)
            .count()
    }

    /// Number of rings ever leased (leased now, or exited).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// ringtrace::trace!(tracer: &t, "x");
    /// assert_eq!(t.used_contexts(), 1);
    /// ```
    #[must_use]
    pub fn used_contexts(&self) -> usize {
        self.inner
            .slots
            .iter()
            .filter(|s| slot_state(s.load(Ordering::Relaxed)) != FREE)
            .count()
    }

    /// Thread id of the current or last writer of context `ring` (0 if none).
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// ringtrace::trace!(tracer: &t, "x");
    /// assert_eq!(t.context_tid(0), Some(ringtrace::context::current_tid()));
    /// ```
    #[must_use]
    pub fn context_tid(&self, ring: usize) -> Option<i32> {
        self.inner
            .slot_tid
            .get(ring)
            .map(|t| t.load(Ordering::Relaxed) as i32)
    }

    /// The saved name of thread `tid`, as the text output shows it.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// ringtrace::trace!(tracer: &t, "x");
    /// assert!(t.comm(ringtrace::context::current_tid()).is_some());
    /// ```
    #[must_use]
    pub fn comm(&self, tid: i32) -> Option<String> {
        let c = self.inner.cmdlines.lock().ok()?;
        c.get(tid).map(|c| c.as_str().to_string())
    }

    /// Registers an event type in the process-wide [`Registry`], so readers
    /// can decode it. Typed events are also registered on their first
    /// ordinary (non-signal-handler) record; call this up front for types
    /// that may be recorded first from a signal handler.
    ///
    /// ```
    /// ringtrace::declare_event! {
    ///     /// A demo event.
    ///     pub struct Ping: "demo" / "ping" = 1300 { n: u32 }
    /// }
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.register(Ping::EVENT_TYPE).unwrap();
    /// assert!(ringtrace::event::Registry::global().get(1300).is_some());
    /// ```
    pub fn register(&self, ty: &'static EventType) -> Result<(), RegistryError> {
        Registry::global().register(ty)
    }

    /// `per_cpu/cpuN/stats` text of context `ring`, in the kernel's format.
    /// `oldest event ts` is 0 when the ring is empty.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// assert!(t.stats_text(0).unwrap().contains("entries: 0"));
    /// ```
    pub fn stats_text(&self, ring: usize) -> Result<String, RingError> {
        let mut s = self.inner.buf.stats(ring)?;
        // The kernel's `now ts` is the clock's reading, not the newest event.
        s.now_ts = self.inner.clock.now();
        Ok(crate::text::stats(
            &s,
            crate::text::TimeFormat::for_clock(self.inner.clock.is_nanoseconds()),
        ))
    }
}

/// The process-wide default tracer: the cell. Which tracer goes in it
/// (in process, or on the session named by `RINGTRACE_SESSION`) is decided
/// above the session room, in `crate::default_tracer`.
pub(crate) static GLOBAL: OnceLock<Tracer> = OnceLock::new();

/// Counts events refused because the default tracer did not exist yet and
/// the write came from a signal handler (creating it allocates), or because
/// it could not be created.
pub(crate) static GLOBAL_REFUSED: AtomicU64 = AtomicU64::new(0);

/// The default tracer if it exists; never creates it (signal-safe).
///
/// ```
/// // Never creates the default tracer.
/// let _ = ringtrace::tracer::global_if_exists();
/// ```
#[doc(hidden)]
#[inline]
pub fn global_if_exists() -> Option<&'static Tracer> {
    GLOBAL.get()
}

/// Events refused because the default tracer did not exist when a signal
/// handler recorded, or could not be created.
///
/// ```
/// assert_eq!(ringtrace::tracer::global_refused(), 0);
/// ```
#[doc(hidden)]
pub fn global_refused() -> u64 {
    GLOBAL_REFUSED.load(Ordering::Relaxed)
}

// The record side of a tracer: the record path itself is `context`'s
// (`record_in`); these are its entry points on `Tracer`.
use crate::event::Record;
use context::{current_tid, marker_into, read_comm, record_in, ContextHandle, RecordError};
use std::marker::PhantomData;

impl Tracer {
    /// Records `rec` in the calling thread's context (leased on first use).
    ///
    /// ```
    /// ringtrace::declare_event! {
    ///     /// A tick.
    ///     pub struct Tick: "demo" / "tick" = 900 { n: u32 }
    /// }
    /// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
    /// t.record(&Tick { n: 1 }).unwrap();
    /// assert_eq!(t.ring_stats(0).unwrap().entries, 1);
    /// ```
    #[inline(always)]
    pub fn record<R: Record + ?Sized>(&self, rec: &R) -> Result<(), RecordError> {
        record_in(&self.inner, rec)
    }

    /// Records a marker (`trace_marker`): an `ftrace/print` event shown as
    /// `tracing_mark_write: text`. Text longer than one event is split into
    /// several events, as the kernel does; errors are counted, not returned.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.marker("hello");
    /// assert!(t.pipe().next_line().unwrap().unwrap().ends_with("tracing_mark_write: hello\n"));
    /// ```
    pub fn marker(&self, text: &str) {
        let _ = self.try_marker(text);
    }

    /// [`Tracer::marker`], returning the first error.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// t.try_marker("checked").unwrap();
    /// ```
    pub fn try_marker(&self, text: &str) -> Result<(), RecordError> {
        marker_into(self, text, self.inner.buf.max_payload())
    }

    /// An explicit context for the calling thread, for thread-per-core
    /// programs: it leases a ring of its own (independent of the thread's
    /// implicit context) and hands it back when dropped.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// let ctx = t.context().unwrap();
    /// ringtrace::trace!(tracer: &ctx, "core %d up", 0);
    /// assert_eq!(t.ring_stats(ctx.ring()).unwrap().entries, 1);
    /// ```
    pub fn context(&self) -> Result<ContextHandle<'_>, RecordError> {
        let tid = current_tid();
        match self.inner.lease_ring(tid) {
            Some(ring) => {
                self.inner.save_comm(tid, read_comm(tid));
                Ok(ContextHandle {
                    tracer: self,
                    ring,
                    _not_send: PhantomData,
                })
            }
            None => {
                self.inner.count_refused(crate::tracer::Refusal::NoContext);
                Err(RecordError::NoContext {
                    max: self.inner.slots.len(),
                })
            }
        }
    }
}
