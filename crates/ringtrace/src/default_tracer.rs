//! The default tracer: which tracer `trace!` without a tracer records
//! into, and when it is made.
//!
//! # Terms
//!
//! - **Default tracer**: the process-wide [`Tracer`] of [`global`],
//!   configured by [`init`] or made with [`TracerConfig::new`] on the first
//!   event recorded without a tracer.
//! - **Attached program**: a program started by `ringtrace record`, which
//!   names a session file in `RINGTRACE_SESSION`; its default tracer is
//!   built on that session's shared memory instead.
//!
//! # Contract
//!
//! This module sits above the session room, because the choice between
//! the heap and the session is made here; the tracer room only holds the
//! cell (`tracer::GLOBAL`, read by [`global_if_exists`] on the fast path)
//! and never names a session. Making the default tracer allocates and
//! takes a lock: it happens only in ordinary code; a signal handler (or a
//! record nested in another) that finds no default tracer refuses its
//! event and counts it ([`global_refused`](crate::tracer::global_refused)).

use crate::sync::Ordering;
use std::sync::Mutex;

use crate::event::Record;
use crate::tracer::context::{nested, record_in, RecordError};
use crate::tracer::{global_if_exists, Tracer, TracerConfig, TracerError, GLOBAL, GLOBAL_REFUSED};

/// Serializes creation of the default tracer (never taken by a write).
static GLOBAL_INIT: Mutex<()> = Mutex::new(());

/// Configures and creates the default tracer. Call it before the first
/// event recorded through [`global`]; afterwards it fails with
/// [`TracerError::AlreadyInitialized`].
///
/// When the environment variable `RINGTRACE_SESSION` names a session file
/// (`ringtrace record` sets it), the default tracer is built on that
/// session instead, with the session's geometry, mode and clock; `config`
/// is then not used. A session that cannot be opened is reported on
/// stderr and `config` is used.
///
/// ```
/// # // (doc tests run in their own process)
/// let t = ringtrace::init(ringtrace::TracerConfig::new().max_contexts(8)).unwrap();
/// assert_eq!(t.max_contexts(), 8);
/// assert!(ringtrace::init(ringtrace::TracerConfig::new()).is_err());
/// ```
pub fn init(config: TracerConfig) -> Result<&'static Tracer, TracerError> {
    let _g = GLOBAL_INIT.lock().unwrap_or_else(|p| p.into_inner());
    if GLOBAL.get().is_some() {
        return Err(TracerError::AlreadyInitialized);
    }
    let t = match crate::session::attach_from_env() {
        Some(t) => t,
        None => Tracer::new(config)?,
    };
    let _ = GLOBAL.set(t);
    GLOBAL.get().ok_or(TracerError::AlreadyInitialized)
}

/// The default tracer, created with [`TracerConfig::new`] on first use
/// unless [`init`] configured it. When `RINGTRACE_SESSION` names a session file, the
/// default tracer is built on that session (see [`init`]): the program is
/// traced from outside by `ringtrace record`.
///
/// ```
/// ringtrace::trace!("made on first use: %d", 1);
/// assert!(ringtrace::global().unwrap().used_contexts() >= 1);
/// ```
pub fn global() -> Result<&'static Tracer, TracerError> {
    if let Some(t) = GLOBAL.get() {
        return Ok(t);
    }
    let _g = GLOBAL_INIT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = GLOBAL.get() {
        return Ok(t);
    }
    let t = match crate::session::attach_from_env() {
        Some(t) => t,
        None => Tracer::new(TracerConfig::new())?,
    };
    let _ = GLOBAL.set(t);
    GLOBAL.get().ok_or(TracerError::AlreadyInitialized)
}

/// Records into the default tracer ([`crate::global`]), creating it on first
/// use from ordinary code. What `trace!` and `trace_event!` without a tracer
/// expand to.
///
/// ```
/// ringtrace::declare_event! {
///     /// A demo event.
///     pub struct Tick: "demo" / "tick" = 1301 { n: u32 }
/// }
/// ringtrace::context::record_global(&Tick { n: 1 }).unwrap();
/// ```
#[inline(always)]
pub fn record_global<R: Record + ?Sized>(rec: &R) -> Result<(), RecordError> {
    match global_if_exists() {
        Some(t) => record_in(&t.inner, rec),
        None => record_global_slow(rec),
    }
}

#[cold]
#[inline(never)]
fn record_global_slow<R: Record + ?Sized>(rec: &R) -> Result<(), RecordError> {
    match global_for_record() {
        Some(t) => record_in(&t.inner, rec),
        None => Err(RecordError::NoTracer),
    }
}

/// The default tracer for a record when it does not exist yet: made now
/// from ordinary code; refused (and counted in
/// [`global_refused`](crate::tracer::global_refused)) in a handler or
/// mid-record, where making it would allocate, or when it cannot be made.
#[cold]
#[inline(never)]
pub(crate) fn global_for_record() -> Option<&'static Tracer> {
    if nested() {
        // In a handler (or mid-record): creating the tracer allocates.
        GLOBAL_REFUSED.fetch_add(1, Ordering::Relaxed);
        return None;
    }
    match global() {
        Ok(t) => Some(t),
        Err(_) => {
            GLOBAL_REFUSED.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

/// A marker into the default tracer (`echo text > trace_marker`).
///
/// ```
/// ringtrace::trace_marker("hello");
/// ```
pub fn trace_marker(text: &str) {
    if let Some(t) = global_if_exists() {
        t.marker(text);
    } else if nested() {
        GLOBAL_REFUSED.fetch_add(1, Ordering::Relaxed);
    } else if let Ok(t) = global() {
        t.marker(text);
    }
}
