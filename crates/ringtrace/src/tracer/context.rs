//! Writer contexts: which ring a thread writes, how a signal handler finds
//! it, and the record path.
//!
//! # Per-thread state
//!
//! ```text
//! LEASES  [Cell<u64>; 4]   (tracer id << 32) | ring; 0 = empty     const, no destructor
//! NEST    Cell<u32>        signal level (bits 0..16) | WRITING      const, no destructor
//! TID     Cell<i32>        gettid(), cached                         const, no destructor
//! EXIT    ExitGuard        the leases to hand back at thread exit   HAS a destructor
//! ```
//!
//! A `thread_local!` with a `const` initialiser and no destructor is plain
//! TLS memory: touching it never allocates, locks or registers anything, so
//! a signal handler may use it. A thread-local with a destructor registers
//! that destructor on first touch (glibc's `__cxa_thread_atexit_impl`, which
//! allocates), and after the thread's destructors ran it is gone. That is why
//! `EXIT` is only touched when a thread leases a ring, which happens on its
//! first *ordinary* event (never from a handler: see below), and why the
//! lease itself is kept in the destructor-free `LEASES`.
//!
//! # Lease (first ordinary event of a thread on a tracer)
//!
//! 1. find an empty `LEASES` cell (a thread writes at most
//!    [`MAX_TRACERS_PER_THREAD`] tracers; cells of dropped tracers are reclaimed);
//! 2. lease a ring: compare-and-swap of its slot `FREE -> LEASED`, else
//!    `EXITED -> LEASED` for a drained ring (lock-free); none: refuse and count;
//! 3. register the lease in `EXIT` (allocates once per thread);
//! 4. save the thread's name, whole (Rust's thread name, else the kernel's
//!    comm: `read_comm`) in the tracer's table (a mutex, taken on lease only);
//! 5. publish the lease in the `LEASES` cell.
//!
//! After that, a record takes no lock and allocates nothing: one scan of
//! four cells, one clock read, reserve, encode, commit.
//!
//! At thread exit `EXIT`'s destructor clears the `LEASES` cells first (a
//! later destructor that records must not write a ring that another thread
//! may lease next), then marks the rings `EXITED`.
//!
//! # Signal handlers and nesting
//!
//! The ring's [`Writer`](ringtrace_ring::Writer) borrows the buffer, so it is
//! not kept in TLS; each record makes one with
//! [`RingBuffer::transient_writer`](ringtrace_ring::RingBuffer::transient_writer),
//! which claims nothing and copies nothing (it reads the buffer's write
//! geometry in place). Exclusivity comes from the lease: only the leasing
//! thread, and the signal handlers interrupting it, ever write its ring, and
//! a handler's write completes before the write it interrupted resumes,
//! which is the nesting the ring supports.
//!
//! Whether a record runs inside a handler is read from `NEST`:
//!
//! ```text
//! record:      saved = NEST; depth = level(saved) + writing(saved)
//!              NEST = depth | WRITING ; write ; NEST = saved
//! SignalScope: saved = NEST; NEST = level(saved) + 1 ; ... ; NEST = saved
//! ```
//!
//! A record that finds `WRITING` set interrupted a write: it is in a handler
//! (one level deeper). A handler that calls [`signal_scope`] first is known
//! to be one even when it interrupted no write. Every save/restore pair is
//! stack-like, as handlers nest, so an interruption between any two steps
//! restores what it found. Events with depth > 0 carry
//! [`flags::IN_SIGNAL_HANDLER`] (and [`flags::NESTED_SIGNAL`] from depth 2)
//! and the depth in `common_preempt_count`.
//!
//! A handler that neither interrupted a write nor entered a
//! [`signal_scope`] cannot be told from ordinary code. If its thread has no
//! ring yet, its event would lease one, which allocates: **handlers that
//! record must call [`signal_scope`] first** (it is one TLS store). A
//! handler on a thread without a ring is refused and counted
//! ([`TracerStats::refused_in_signal_handler`](crate::tracer::TracerStats)).
//!
//! # Two record paths
//!
//! ```text
//! fast:    NEST == 0 and a LEASES cell matches
//!          NEST = WRITING ; clock ; Writer::write_with_fast(common = {0, 0, tid}) ; NEST = 0
//!          the ring said "start over" (nothing written): general, with the time read
//! general: out of line; the save/restore above, the lease, the ring's write_with
//! ```
//!
//! The fast path is ordinary code with its ring: the depth is 0, the common
//! fields are constants but for the thread id, and the ring's fast path has
//! a fixed size and no time extend. The ring's
//! [`write_with_fast`](ringtrace_ring::Writer::write_with_fast) stops before
//! writing anything when its fast case does not apply (a page to move, a
//! time extend, recording off), so the general path can start over rather
//! than join it. Joined, as they were, the compiler carried the depth, the
//! common fields and the reservation's size as run-time values through the
//! encoder and spilled them (the instruction counts are in the callgrind
//! runs the bench crate documents). The general path takes the time the fast one read, so a record
//! reads its clock once.

use crate::sync::{compiler_fence, Ordering};
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::sync::{Arc, Weak};

use ringtrace_ring::WriteError;

use crate::event::{flags, CommonFields, EncodeError, Record, Registry};
use crate::tracer::{Comm, Inner, Tracer};

/// How many tracers one thread can write (lease cells per thread).
///
/// ```
/// assert_eq!(ringtrace::context::MAX_TRACERS_PER_THREAD, 4);
/// ```
#[doc(hidden)]
pub const MAX_TRACERS_PER_THREAD: usize = 4;

/// `NEST` bit: a record is in progress at the current signal level.
const WRITING: u32 = 1 << 16;
/// `NEST` bits: the signal level.
const LEVEL: u32 = WRITING - 1;

thread_local! {
    /// Lease cells. Const-initialised, no destructor: safe in a handler.
    static LEASES: [Cell<u64>; MAX_TRACERS_PER_THREAD] =
        const { [const { Cell::new(0) }; MAX_TRACERS_PER_THREAD] };
    /// Nesting word (see the module docs). Const, no destructor.
    static NEST: Cell<u32> = const { Cell::new(0) };
    /// Cached `gettid()`; 0 = not read yet. Const, no destructor.
    static TID: Cell<i32> = const { Cell::new(0) };
    /// Leases to return at thread exit. Has a destructor: touched only
    /// when leasing, from ordinary (non-handler) code.
    static EXIT: ExitGuard = const { ExitGuard { leases: RefCell::new(Vec::new()) } };
}

/// Whether this thread is in a signal handler or mid-record (where making
/// the default tracer would allocate).
#[inline]
pub(crate) fn nested() -> bool {
    NEST.get() != 0
}

/// Why an event was not recorded.
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// t.set_on(false);
/// assert_eq!(t.try_marker("x"), Err(ringtrace::RecordError::Off));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Recording is off; not an attempt, not counted.
    #[error("tracing is off")]
    Off,
    /// Every context is leased or holds unread events: refused and counted.
    #[error("no free context: all {max} are leased or not yet drained")]
    NoContext {
        /// The tracer's maximum number of contexts.
        max: usize,
    },
    /// A signal handler recorded on a thread that has no context yet
    /// (leasing would allocate and lock): refused and counted.
    #[error("signal handler on a thread without a context: event refused")]
    NoContextInSignalHandler,
    /// The thread already writes [`MAX_TRACERS_PER_THREAD`] tracers.
    #[error("a thread can write at most {MAX_TRACERS_PER_THREAD} tracers")]
    TooManyTracers,
    /// The thread is exiting (its thread-locals are being destroyed).
    #[error("thread is exiting")]
    ThreadExiting,
    /// The record's context does not record ([`Tracer::set_contexts`]):
    /// refused and counted.
    #[error("this context does not record (the tracer's context mask)")]
    Masked,
    /// The default tracer does not exist and could not be made here.
    #[error("the default tracer does not exist (or could not be created)")]
    NoTracer,
    /// The ring refused the write (counted in its stats unless `TooLarge`).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The record could not be encoded (counted as refused).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Something events can be recorded into: a [`Tracer`] (the calling
/// thread's context is used, leased on first use) or a [`ContextHandle`].
///
/// ```
/// use ringtrace::Target;
/// fn log_to<T: Target>(t: &T) { ringtrace::trace!(tracer: t, "via %s", "a target"); }
/// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
/// log_to(&t);
/// assert_eq!(t.ring_stats(0).unwrap().entries, 1);
/// ```
#[doc(hidden)]
pub trait Target {
    /// Records `rec`.
    fn record<R: Record + ?Sized>(&self, rec: &R) -> Result<(), RecordError>;
}

impl<T: Target + ?Sized> Target for &T {
    #[inline(always)]
    fn record<R: Record + ?Sized>(&self, rec: &R) -> Result<(), RecordError> {
        (**self).record(rec)
    }
}

impl Target for Tracer {
    #[inline(always)]
    fn record<R: Record + ?Sized>(&self, rec: &R) -> Result<(), RecordError> {
        record_in(&self.inner, rec)
    }
}

/// An explicitly leased context (ring), for programs that pin one thread per
/// core and want to choose. Not `Send`/`Sync`: its ring is written by the
/// thread that made it (and that thread's signal handlers) only.
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
/// let ctx = t.context().unwrap();
/// ringtrace::trace!(tracer: &ctx, "on ring %llu", ctx.ring() as u64);
/// assert_eq!(t.ring_stats(ctx.ring()).unwrap().entries, 1);
/// ```
#[derive(Debug)]
pub struct ContextHandle<'t> {
    pub(super) tracer: &'t Tracer,
    pub(super) ring: usize,
    pub(super) _not_send: PhantomData<*const ()>,
}

impl ContextHandle<'_> {
    /// The ring (context number, the `[CPU]` column) this handle writes.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// let ctx = t.context().unwrap();
    /// assert!(ctx.ring() < 2);
    /// ```
    #[must_use]
    pub fn ring(&self) -> usize {
        self.ring
    }

    /// Records a marker into this context.
    ///
    /// ```
    /// let t = ringtrace::TracerConfig::new().max_contexts(2).build().unwrap();
    /// let ctx = t.context().unwrap();
    /// ctx.marker("from the handle");
    /// assert_eq!(t.ring_stats(ctx.ring()).unwrap().entries, 1);
    /// ```
    pub fn marker(&self, text: &str) {
        let _ = marker_into(self, text, self.tracer.inner.buf.max_payload());
    }
}

impl Target for ContextHandle<'_> {
    #[inline(always)]
    fn record<R: Record + ?Sized>(&self, rec: &R) -> Result<(), RecordError> {
        let inner = &*self.tracer.inner;
        // The fast path, as in `record_in` (the switch is checked there).
        let mut ts = None;
        if NEST.get() == 0 {
            match record_fast(inner, self.ring, rec, current_tid) {
                Ok(r) => return r,
                Err(t) => ts = Some(t),
            }
        }
        self.record_general(rec, ts)
    }
}

impl ContextHandle<'_> {
    /// [`record_general`] for the handle's ring.
    #[cold]
    #[inline(never)]
    fn record_general<R: Record + ?Sized>(
        &self,
        rec: &R,
        ts: Option<u64>,
    ) -> Result<(), RecordError> {
        let inner = &*self.tracer.inner;
        if !inner.on.is_on() {
            return Err(RecordError::Off);
        }
        let (saved, depth) = enter_write();
        publish_type(inner, rec, depth);
        let r = write_record(inner, self.ring, rec, depth, current_tid(), ts);
        exit_write(saved);
        r
    }
}

impl Drop for ContextHandle<'_> {
    fn drop(&mut self) {
        self.tracer.inner.release_ring(self.ring);
    }
}

/// Marks the current code as a signal handler for the records it makes,
/// until the returned guard drops. Call it first in a handler that records:
/// its events are then flagged [`flags::IN_SIGNAL_HANDLER`] with their
/// nesting depth, and a thread without a context refuses them instead of
/// leasing one (which would allocate). One thread-local store; async-signal-safe.
///
/// ```
/// let t = ringtrace::TracerConfig::new().max_contexts(1).build().unwrap();
/// ringtrace::trace!(tracer: &t, "ordinary");
/// {
///     let _s = ringtrace::context::signal_scope();
///     ringtrace::trace!(tracer: &t, "as if in a handler");
/// }
/// let mut p = t.pipe();
/// assert!(p.next_line().unwrap().unwrap().contains(" ..... "));
/// assert!(p.next_line().unwrap().unwrap().contains(" ..h1. "));
/// ```
pub fn signal_scope() -> SignalScope {
    let saved = NEST.get();
    let level = ((saved & LEVEL) + 1).min(LEVEL);
    NEST.set(level);
    // The store must not sink below the records the handler makes (a nested
    // handler must see it): a compiler barrier suffices, one thread.
    compiler_fence(Ordering::SeqCst);
    SignalScope {
        saved,
        _not_send: PhantomData,
    }
}

/// Guard of [`signal_scope`].
///
/// ```
/// let scope = ringtrace::signal_scope();
/// assert_eq!(ringtrace::context::current_depth(), 1);
/// drop(scope);
/// assert_eq!(ringtrace::context::current_depth(), 0);
/// ```
#[derive(Debug)]
#[must_use = "the scope ends when this guard drops"]
pub struct SignalScope {
    saved: u32,
    _not_send: PhantomData<*const ()>,
}

impl Drop for SignalScope {
    fn drop(&mut self) {
        compiler_fence(Ordering::SeqCst);
        NEST.set(self.saved);
    }
}

/// The signal nesting depth the next record of this thread would get
/// (0 in ordinary code).
///
/// ```
/// assert_eq!(ringtrace::context::current_depth(), 0);
/// ```
#[doc(hidden)]
#[must_use]
pub fn current_depth() -> u32 {
    let n = NEST.get();
    (n & LEVEL) + u32::from(n & WRITING != 0)
}

/// Thread id of the calling thread (`gettid`, cached in a const thread-local).
///
/// ```
/// assert!(ringtrace::context::current_tid() > 0);
/// ```
#[doc(hidden)]
#[inline(always)]
#[must_use]
pub fn current_tid() -> i32 {
    let t = TID.get();
    if t != 0 {
        return t;
    }
    read_tid()
}

#[cold]
fn read_tid() -> i32 {
    // SAFETY: gettid has no preconditions and is async-signal-safe.
    let t = unsafe { libc::gettid() };
    TID.set(t);
    t
}

/// Splits `text` into events that fit `max_payload` (cut at char
/// boundaries) and records each.
pub(super) fn marker_into<T: Target + ?Sized>(
    target: &T,
    text: &str,
    max_payload: usize,
) -> Result<(), RecordError> {
    // 16 bytes of header and ip, 1 NUL, up to 3 of padding.
    let room = max_payload.saturating_sub(20).max(4);
    let mut rest = text;
    let mut first = Ok(());
    loop {
        let mut end = rest.len().min(room);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let piece = crate::printk::Print {
            ip: crate::printk::MARKER_IP,
            text: &rest[..end],
        };
        let r = target.record(&piece);
        if first.is_ok() {
            first = r;
        }
        rest = &rest[end..];
        if rest.is_empty() {
            return first;
        }
    }
}

/// The record path for a tracer's implicit per-thread context.
///
/// Two paths. The fast one is the common case: ordinary code (no handler,
/// no record in progress), a leased ring, and the ring's own fast path
/// ([`Writer::write_with_fast`](ringtrace_ring::Writer::write_with_fast)).
/// Everything else, or a fast path that stops before writing, starts over
/// on the general one, out of line. Kept apart, the fast path's depth,
/// common fields and reservation are constants (see the module docs for
/// what joining them cost).
#[inline(always)]
pub(crate) fn record_in<R: Record + ?Sized>(
    inner: &Arc<Inner>,
    rec: &R,
) -> Result<(), RecordError> {
    let r = record_event(inner, rec);
    // Stack traces on events: the caller's stack follows the event.
    if inner.config.stacktrace && r.is_ok() {
        super::stack_hook::after_event(inner);
    }
    r
}

/// [`record_in`] without the stack trace that may follow the event.
#[inline(always)]
pub(crate) fn record_event<R: Record + ?Sized>(
    inner: &Arc<Inner>,
    rec: &R,
) -> Result<(), RecordError> {
    // No test of the recording switch here: while it is off, the ring
    // refuses the fast path at the load of its `record_disabled` that
    // every write makes anyway (the switch is mirrored there:
    // `storage::set_switch`), and the general path then answers `Off`.
    if NEST.get() == 0 {
        if let Some(ring) = lookup(inner.id) {
            // The thread id is known: see `record_general`.
            return match record_fast(inner, ring, rec, || TID.get()) {
                Ok(r) => r,
                Err(ts) => record_general(inner, rec, Some(ts)),
            };
        }
    }
    record_general(inner, rec, None)
}

/// The fast path of [`record_in`], at depth 0 on a leased `ring`. When the
/// ring's fast path does not apply, nothing was written, and the error is
/// the time read, which the general path then uses (a clock read once per
/// record: the `counter` clock counts records). `pid` gives the thread id.
/// For ordinary code (`NEST` is 0): it marks the record in progress, and
/// `NEST` is 0 again when it returns.
#[inline(always)]
fn record_fast<R: Record + ?Sized>(
    inner: &Inner,
    ring: usize,
    rec: &R,
    pid: impl FnOnce() -> i32,
) -> Result<Result<(), RecordError>, u64> {
    NEST.set(WRITING);
    // Keep the store above the ring operations (as in `enter_write`).
    compiler_fence(Ordering::SeqCst);
    let r = record_fast_in(inner, ring, rec, pid);
    compiler_fence(Ordering::SeqCst);
    NEST.set(0);
    r
}

/// [`record_fast`] once the record is marked in progress.
#[inline(always)]
fn record_fast_in<R: Record + ?Sized>(
    inner: &Inner,
    ring: usize,
    rec: &R,
    pid: impl FnOnce() -> i32,
) -> Result<Result<(), RecordError>, u64> {
    if !inner.contexts.allows(ring) {
        return Ok(Err(masked(inner)));
    }
    publish_type(inner, rec, 0);
    let len = rec.encoded_len();
    let ts = inner.clock.now();
    // SAFETY: as in `write_record`.
    let mut writer = unsafe { inner.buf.transient_writer(ring) };
    let mut encoded = Ok(0);
    let r = writer.write_with_fast(
        ts,
        len,
        #[inline(always)]
        |out| {
            // The thread id is read here, where it is stored: read before
            // the clock, it was kept on the stack across it.
            let common = CommonFields {
                flags: 0,
                preempt_count: 0,
                pid: pid(),
            };
            encoded = rec.encode(&common, out);
            encoded.is_ok()
        },
    );
    match r {
        Some(r) => Ok(written(inner, r, encoded)),
        None => Err(ts),
    }
}

/// Every record [`record_in`]'s fast path does not take: in a handler, or
/// interrupting a record, the thread's first record, a page to move, a
/// time extend, recording off. `ts` is the time the fast path read, if it
/// got that far.
#[cold]
#[inline(never)]
fn record_general<R: Record + ?Sized>(
    inner: &Arc<Inner>,
    rec: &R,
    ts: Option<u64>,
) -> Result<(), RecordError> {
    // The switch first: a record made while recording is off is not an
    // attempt, so neither leased for nor counted (see `record_in`).
    if !inner.on.is_on() {
        return Err(RecordError::Off);
    }
    let (saved, depth) = enter_write();
    // The lease comes first and takes no `rec`, so that the record stays in
    // registers on the way to the encoder (no copy of it to memory for a
    // cold call).
    let ring = match lookup(inner.id) {
        Some(ring) => ring,
        None => match lease_for_record(inner, depth) {
            Ok(ring) => ring,
            Err(e) => {
                exit_write(saved);
                return Err(e);
            }
        },
    };
    publish_type(inner, rec, depth);
    // The thread id is known: leasing read it first (`lease_current_thread`),
    // and a fork resets the id and the leases together (`install_atfork`),
    // so a thread that found its lease has its id cached. No test for an
    // empty cache on the record path.
    let r = write_record(inner, ring, rec, depth, TID.get(), ts);
    exit_write(saved);
    r
}

/// Counts a record refused because its context does not record
/// (`tracer::mask`). Async-signal-safe.
#[cold]
fn masked(inner: &Inner) -> RecordError {
    inner.count_refused(crate::tracer::Refusal::Masked);
    RecordError::Masked
}

/// Marks a record in progress; returns the saved nesting word and this
/// record's depth.
#[inline(always)]
fn enter_write() -> (u32, u32) {
    let saved = NEST.get();
    // Ordinary code, no record in progress: the common case, one store of
    // a constant.
    let depth = if saved == 0 {
        NEST.set(WRITING);
        0
    } else {
        let depth = ((saved & LEVEL) + u32::from(saved & WRITING != 0)).min(LEVEL);
        NEST.set(depth | WRITING);
        depth
    };
    // Keep the store above the ring operations: a handler interrupting them
    // must see WRITING. Same thread, so a compiler barrier is enough.
    compiler_fence(Ordering::SeqCst);
    (saved, depth)
}

#[inline(always)]
fn exit_write(saved: u32) {
    compiler_fence(Ordering::SeqCst);
    NEST.set(saved);
}

/// The ring this thread leased from tracer `id`.
#[inline(always)]
fn lookup(id: u32) -> Option<usize> {
    LEASES.with(|cells| {
        for c in cells {
            let v = c.get();
            if (v >> 32) as u32 == id {
                return Some(v as u32 as usize);
            }
        }
        None
    })
}

/// Makes `rec`'s type and formats known to readers before the record is
/// written: the global registry, and a session's tables (published before
/// the ring's commit, so a reader that sees the record finds its format).
#[inline(always)]
fn publish_type<R: Record + ?Sized>(inner: &Inner, rec: &R, depth: u32) {
    register_type(rec);
    if let Some(l) = &inner.session {
        rec.prepare();
        l.before_write(rec.event_type().id, depth);
    }
}

/// Registers a user event type in the global registry on its first record
/// (readers need it to decode); lock-free, so a signal handler may be the
/// first to record a type. Folds away for print/bprint.
#[inline(always)]
fn register_type<R: Record + ?Sized>(rec: &R) {
    if rec.needs_registration() {
        let ty = rec.event_type();
        let reg = Registry::global();
        if reg.get(ty.id).is_none() {
            let _ = reg.register(ty);
        }
    }
}

/// Reserve, encode, commit: no lock, no allocation. `ts` is the record's
/// time if the caller read it already.
#[inline(always)]
fn write_record<R: Record + ?Sized>(
    inner: &Inner,
    ring: usize,
    rec: &R,
    depth: u32,
    pid: i32,
    ts: Option<u64>,
) -> Result<(), RecordError> {
    if !inner.contexts.allows(ring) {
        return Err(masked(inner));
    }
    let common = if depth == 0 {
        CommonFields {
            flags: 0,
            preempt_count: 0,
            pid,
        }
    } else {
        nested_common(depth, pid)
    };
    let len = rec.encoded_len();
    let ts = ts.unwrap_or_else(|| inner.clock.now());
    // SAFETY: `ring` is leased to this thread (a LEASES cell or a
    // ContextHandle, both !Send), so only this thread writes it, and the
    // signal handlers that interrupt it, whose writes complete before the
    // interrupted write resumes: the exclusivity `nested_writer` requires.
    // The lease checked that the ring exists (`Inner::lease_ring` hands out
    // indices below `slots.len()`, the buffer's ring count).
    let mut writer = unsafe { inner.buf.transient_writer(ring) };
    // Encode straight into the ring: no staging copy.
    let mut encoded = Ok(0);
    let r = writer.write_with(
        ts,
        len,
        #[inline(always)]
        |out| {
            encoded = rec.encode(&common, out);
            encoded.is_ok()
        },
    );
    written(inner, r, encoded)
}

/// What a record's write and encoding came to: errors of the record itself
/// (it does not encode, or is too large for a page) are counted by the
/// tracer; the ring counts its own.
#[inline(always)]
fn written(
    inner: &Inner,
    r: Result<bool, WriteError>,
    encoded: Result<usize, EncodeError>,
) -> Result<(), RecordError> {
    match (r, encoded) {
        (Ok(_), Ok(_)) => Ok(()),
        (Ok(_), Err(e)) => Err(refuse_other(inner, e.into())),
        (Err(e @ WriteError::TooLarge { .. }), _) => Err(refuse_other(inner, e.into())),
        (Err(e), _) => Err(e.into()),
    }
}

/// The common fields of a record made inside a signal handler.
#[cold]
fn nested_common(depth: u32, pid: i32) -> CommonFields {
    let mut flag_bits = flags::IN_SIGNAL_HANDLER;
    if depth > 1 {
        flag_bits |= flags::NESTED_SIGNAL;
    }
    CommonFields {
        flags: flag_bits,
        preempt_count: depth.min(255) as u8,
        pid,
    }
}

#[cold]
fn refuse_other(inner: &Inner, e: RecordError) -> RecordError {
    inner.count_refused(crate::tracer::Refusal::Other);
    e
}

/// First record of this thread on this tracer (or a retry after a refusal).
#[cold]
#[inline(never)]
fn lease_for_record(inner: &Arc<Inner>, depth: u32) -> Result<usize, RecordError> {
    if depth > 0 {
        // A handler: leasing allocates and locks. Refuse (counting is
        // async-signal-safe: atomics, in the session's mapping too).
        inner.count_refused(crate::tracer::Refusal::InSignalHandler);
        return Err(RecordError::NoContextInSignalHandler);
    }
    lease_current_thread(inner)
}

fn lease_current_thread(inner: &Arc<Inner>) -> Result<usize, RecordError> {
    install_atfork();
    let tid = current_tid();
    let cell = match free_cell() {
        Some(c) => c,
        None => {
            prune_dead_leases();
            match free_cell() {
                Some(c) => c,
                None => return Err(refuse_other(inner, RecordError::TooManyTracers)),
            }
        }
    };
    let Some(ring) = inner.lease_ring(tid) else {
        inner.count_refused(crate::tracer::Refusal::NoContext);
        return Err(RecordError::NoContext {
            max: inner.slots.len(),
        });
    };
    let registered = EXIT
        .try_with(|g| {
            if let Ok(mut l) = g.leases.try_borrow_mut() {
                l.push((Arc::downgrade(inner), ring, cell));
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
    if !registered {
        inner.release_ring(ring);
        return Err(refuse_other(inner, RecordError::ThreadExiting));
    }
    inner.save_comm(tid, read_comm(tid));
    LEASES.with(|cells| cells[cell].set((u64::from(inner.id) << 32) | ring as u64));
    Ok(ring)
}

fn free_cell() -> Option<usize> {
    LEASES.with(|cells| cells.iter().position(|c| c.get() == 0))
}

/// Frees the lease cells of tracers that were dropped.
fn prune_dead_leases() {
    let _ = EXIT.try_with(|g| {
        if let Ok(mut l) = g.leases.try_borrow_mut() {
            l.retain(|(w, _, cell)| {
                let alive = w.strong_count() > 0;
                if !alive {
                    LEASES.with(|cells| cells[*cell].set(0));
                }
                alive
            });
        }
    });
}

/// The name of the calling thread `tid`, kept whole: Rust's thread name
/// when it has one (`tokio-runtime-worker`, where the kernel's comm is cut
/// to 15 bytes: `tokio-runtime-w`); for the main thread (and threads
/// named outside Rust) the kernel's comm, or the program's file name when
/// the comm is a cut of it; `<...>` when unreadable. Ordinary code only
/// (the lease path): it may allocate.
pub(super) fn read_comm(tid: i32) -> Comm {
    if let Some(name) = rust_thread_name() {
        return Comm::new(&name);
    }
    let comm = match std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")) {
        Ok(s) => s.trim_end_matches('\n').to_string(),
        Err(_) => return Comm::new("<...>"),
    };
    if comm.len() == crate::tracer::COMM_LEN {
        let exe = std::env::current_exe().ok();
        if let Some(file) = exe.as_deref().and_then(|e| e.file_name()?.to_str()) {
            if file.starts_with(&comm) {
                return Comm::new(file);
            }
        }
    }
    Comm::new(&comm)
}

/// The calling thread's Rust name, except std's `main` for the main thread
/// (the program's name says more). Not asked once this thread's locals are
/// being destroyed (`thread::current` may panic then, in older std).
fn rust_thread_name() -> Option<String> {
    EXIT.try_with(|_| ()).ok()?;
    let me = std::panic::catch_unwind(std::thread::current).ok()?;
    me.name().filter(|n| *n != "main").map(str::to_owned)
}

/// After `fork`, the child's thread has a new tid: forget the cached one,
/// and forget the leases it inherited: those rings belong to the parent's
/// thread (for a session tracer the very same rings, in shared memory), so
/// the child leases contexts of its own on its next event.
fn install_atfork() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    extern "C" fn child() {
        TID.set(0);
        LEASES.with(|cells| cells.iter().for_each(|c| c.set(0)));
        // Forget (without releasing: they are the parent's) the leases the
        // exit guard would hand back. Only a thread that leased has a live
        // guard; `try_with` fails harmlessly during thread exit.
        let _ = EXIT.try_with(|g| {
            if let Ok(mut l) = g.leases.try_borrow_mut() {
                l.clear();
            }
        });
    }
    ONCE.call_once(|| {
        // SAFETY: registers a plain function that touches a const
        // thread-local only.
        unsafe {
            libc::pthread_atfork(None, None, Some(child));
        }
    });
}

/// Thread-exit guard: returns this thread's leases.
struct ExitGuard {
    leases: RefCell<Vec<(Weak<Inner>, usize, usize)>>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        for (weak, ring, cell) in self.leases.get_mut().drain(..) {
            // Clear the cell first: a later destructor that records must
            // lease anew (and be refused) rather than write a ring another
            // thread may lease next.
            let _ = LEASES.try_with(|cells| cells[cell].set(0));
            if let Some(inner) = weak.upgrade() {
                inner.release_ring(ring);
            }
        }
    }
}

/// The name of the calling process: its executable's file name (whole,
/// where the kernel's comm is cut to 15 bytes), else the kernel's comm of
/// the process (`/proc/self/comm`), else `<...>`. Ordinary code only.
pub(super) fn read_process_name() -> Comm {
    let exe = std::env::current_exe().ok();
    if let Some(file) = exe.as_deref().and_then(|e| e.file_name()?.to_str()) {
        return Comm::new(file);
    }
    match std::fs::read_to_string("/proc/self/comm") {
        Ok(s) => Comm::new(s.trim_end_matches('\n')),
        Err(_) => Comm::new("<...>"),
    }
}
