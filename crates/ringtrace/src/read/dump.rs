//! Crash dumps: every ring, merged by time stamp, to stderr, like the
//! kernel's `ftrace_dump` (`ftrace_dump_on_oops`):
//!
//! ```text
//! Dumping ftrace buffer:
//! ---------------------------------
//!           worker-4242    [001] .....  1234.567890: src/main.rs:12: a=1
//! CPU:0 [LOST 3 EVENTS]
//!             main-4240    [000] .....  1234.567899: tracing_mark_write: bye
//! ---------------------------------
//! ```
//!
//! Recording is switched off first. An empty trace prints
//! `   (ftrace buffer empty)` between the lines, as the kernel does.
//!
//! # The signal path
//!
//! [`Tracer::dump_on_fatal_signal`] installs handlers for SIGSEGV, SIGBUS,
//! SIGABRT, SIGILL and SIGFPE (`SA_ONSTACK`, so a thread with an alternate
//! stack, which std gives every thread it starts, survives a stack
//! overflow; the calling thread gets one if it has none). The handler:
//!
//! - formats without allocating: each line goes into a static buffer
//!   through [`FixedWriter`], written by the pipe's own allocation-free
//!   line writer (so a dump line reads as the pipe's);
//! - takes no lock a crashed thread might hold: rings are read through
//!   `try_consumer`, and a ring whose reader lock is held (say the crash hit
//!   a thread inside a [`Pipe`](crate::Pipe)) is skipped and said so; thread
//!   names come from the table only if its mutex is free (`<...>` otherwise);
//! - writes with `write(2)` only, then restores the default action and
//!   re-raises the signal.
//!
//! One dump per process: a second crash while dumping goes straight to the
//! default action.
//!
//! The panic path ([`Tracer::dump_on_panic`]) runs the previous hook first
//! (the panic message), then the same dump.

use crate::sync::{AtomicBool, AtomicPtr, Ordering};
use std::cell::UnsafeCell;
use std::fmt::{self, Write};
use std::sync::Arc;

use crate::event::CommonFields;
use crate::output::write_event_body;
use crate::text::{write_context, write_lost_events, FixedWriter, LineContext, Style};
use crate::tracer::{Inner, Tracer};

/// Bytes of one dump line (longer lines are cut).
const LINE: usize = 2048;
/// Rings whose head time stamp is cached during a signal dump; more are
/// peeked again at every step.
const CACHED_HEADS: usize = 1024;
/// Head cache: unknown.
const UNKNOWN: u64 = u64::MAX;
/// Head cache: drained (or skipped), not visited again.
const DONE: u64 = u64::MAX - 1;

/// Static scratch space of the dump (no allocation, little stack: a
/// handler may run on a small alternate stack).
struct Scratch {
    line: UnsafeCell<[u8; LINE]>,
    heads: UnsafeCell<[u64; CACHED_HEADS]>,
}

// SAFETY: only the one dumper that won `DUMPING` touches the cells.
unsafe impl Sync for Scratch {}

static SCRATCH: Scratch = Scratch {
    line: UnsafeCell::new([0; LINE]),
    heads: UnsafeCell::new([UNKNOWN; CACHED_HEADS]),
};

/// Set by the first dumper; a dump runs at most once per process.
static DUMPING: AtomicBool = AtomicBool::new(false);

/// The tracer the fatal-signal handler dumps: an `Arc` leaked with
/// `Arc::into_raw` (never freed, so the handler can never see it dangle).
/// Release store in `dump_on_fatal_signal`, Acquire load in the handler.
static SIGNAL_TRACER: AtomicPtr<Inner> = AtomicPtr::new(std::ptr::null_mut());

/// The signals that dump.
#[doc(hidden)]
pub const FATAL_SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGABRT,
    libc::SIGILL,
    libc::SIGFPE,
];

/// Why the signal handlers could not be installed.
///
/// ```
/// let e = ringtrace::dump::DumpError::Install(std::io::Error::other("sigaction"));
/// assert!(e.to_string().contains("sigaction"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// `sigaction` or `sigaltstack` failed.
    #[error("installing the fatal-signal handlers: {0}")]
    Install(#[from] std::io::Error),
}

/// [`Tracer::dump_on_panic`].
pub(crate) fn dump_on_panic(tracer: &Tracer) {
    let inner = Arc::clone(&tracer.inner);
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        prev(info);
        if !DUMPING.swap(true, Ordering::AcqRel) {
            dump_inner(&inner, &mut |b| write_fd(2, b));
        }
    }));
}

/// [`Tracer::dump_on_fatal_signal`].
pub(crate) fn dump_on_fatal_signal(tracer: &Tracer) -> Result<(), DumpError> {
    let raw = Arc::into_raw(Arc::clone(&tracer.inner)) as *mut Inner;
    // Release: pairs with the Acquire load in `on_fatal_signal`. The
    // previous pointer is leaked on purpose (a handler may be using it).
    SIGNAL_TRACER.swap(raw, Ordering::AcqRel);
    ensure_alt_stack()?;
    for sig in FATAL_SIGNALS {
        let handler = crate::signal::Handler::Info(on_fatal_signal);
        let flags = libc::SA_ONSTACK | libc::SA_RESETHAND;
        // SAFETY: `on_fatal_signal` does only async-signal-safe work
        // (atomics, the allocation-free dump, `write`, re-raising).
        unsafe { crate::signal::install(sig, handler, flags) }?;
    }
    Ok(())
}

/// [`Tracer::dump_to`].
pub(crate) fn dump_to(tracer: &Tracer, out: &mut dyn FnMut(&[u8])) {
    if !DUMPING.swap(true, Ordering::AcqRel) {
        dump_inner(&tracer.inner, out);
        DUMPING.store(false, Ordering::Release);
    }
}

/// The fatal-signal handler.
extern "C" fn on_fatal_signal(
    sig: libc::c_int,
    _info: *mut libc::siginfo_t,
    _ctx: *mut libc::c_void,
) {
    let _scope = crate::context::signal_scope();
    if !DUMPING.swap(true, Ordering::AcqRel) {
        let p = SIGNAL_TRACER.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: `p` came from `Arc::into_raw` and is never released.
            let inner = unsafe { &*p };
            dump_inner(inner, &mut |b| write_fd(2, b));
        }
    }
    // SA_RESETHAND restored the default action; re-raise so the process
    // dies of this signal (delivered when the handler returns; a faulting
    // instruction also faults again).
    // SAFETY: raise is async-signal-safe.
    unsafe {
        libc::raise(sig);
    }
}

/// Gives the calling thread an alternate signal stack if it has none.
fn ensure_alt_stack() -> Result<(), std::io::Error> {
    // SAFETY: a zeroed stack_t is valid for the query.
    let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: query only.
    if unsafe { libc::sigaltstack(std::ptr::null(), &mut cur) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if cur.ss_flags & libc::SS_DISABLE == 0 {
        return Ok(());
    }
    const SIZE: usize = 64 * 1024;
    let mem = Box::leak(vec![0u8; SIZE].into_boxed_slice());
    let st = libc::stack_t {
        ss_sp: mem.as_mut_ptr().cast(),
        ss_flags: 0,
        ss_size: SIZE,
    };
    // SAFETY: the stack memory is leaked, so it outlives the thread.
    if unsafe { libc::sigaltstack(&st, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `write(2)` all of `b` to `fd`, retrying on EINTR and short writes.
fn write_fd(fd: libc::c_int, mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: `b` is a valid buffer of `b.len()` bytes.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n > 0 {
            b = &b[n as usize..];
        } else if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
        {
            continue;
        } else {
            return;
        }
    }
}

/// The dump. Caller holds `DUMPING`, so the scratch space is ours.
fn dump_inner(inner: &Inner, out: &mut dyn FnMut(&[u8])) {
    inner.set_on(false);
    // SAFETY: the caller won `DUMPING`: no other code uses SCRATCH now.
    let (line, heads) = unsafe { (&mut *SCRATCH.line.get(), &mut *SCRATCH.heads.get()) };
    heads.fill(UNKNOWN);
    out(b"Dumping ftrace buffer:\n---------------------------------\n");
    let rings = inner.buf().rings();
    let mut any = false;
    for r in 0..rings {
        if inner.buf().try_consumer(r).ok().flatten().is_none() {
            let mut w = FixedWriter::new(&mut line[..]);
            let _ = writeln!(w, "CPU:{r} [reader busy: ring skipped]");
            out(w.as_bytes());
            if let Some(h) = heads.get_mut(r) {
                *h = DONE;
            }
        }
    }
    loop {
        // Find the ring with the smallest head.
        let mut best: Option<(u64, usize)> = None;
        for r in 0..rings {
            let cached = heads.get(r).copied().unwrap_or(UNKNOWN);
            if cached == DONE {
                continue;
            }
            let ts = if cached != UNKNOWN {
                Some(cached)
            } else {
                match inner.buf().try_consumer(r) {
                    Ok(Some(mut c)) => match c.peek() {
                        Ok(Some(e)) => Some(e.timestamp),
                        _ => None,
                    },
                    _ => None,
                }
            };
            match ts {
                Some(ts) => {
                    if let Some(h) = heads.get_mut(r) {
                        *h = ts;
                    }
                    if best.is_none_or(|(b, _)| ts < b) {
                        best = Some((ts, r));
                    }
                }
                None => {
                    if let Some(h) = heads.get_mut(r) {
                        *h = DONE;
                    }
                }
            }
        }
        let Some((_, r)) = best else { break };
        if let Some(h) = heads.get_mut(r) {
            *h = UNKNOWN;
        }
        let Ok(Some(mut c)) = inner.buf().try_consumer(r) else {
            if let Some(h) = heads.get_mut(r) {
                *h = DONE;
            }
            continue;
        };
        if let Ok(Some(e)) = c.consume() {
            any = true;
            let mut w = FixedWriter::new(&mut line[..]);
            let _ = write_dump_line(&mut w, inner, r, e.timestamp, e.lost_events, e.payload);
            if w.as_bytes().last() != Some(&b'\n') {
                // Cut: end the line anyway.
                let n = w.as_bytes().len();
                if n > 0 {
                    line[n - 1] = b'\n';
                }
                out(&line[..n]);
            } else {
                out(w.as_bytes());
            }
        }
    }
    if !any {
        out(b"   (ftrace buffer empty)\n");
    }
    out(b"---------------------------------\n");
}

/// One event line, without allocating.
fn write_dump_line(
    w: &mut FixedWriter<'_>,
    inner: &Inner,
    ring: usize,
    ts: u64,
    lost: u64,
    payload: &[u8],
) -> fmt::Result {
    if lost > 0 {
        write_lost_events(w, ring as u32, Some(lost))?;
    }
    let (_, common) = CommonFields::read(payload).unwrap_or_default();
    let (ts, tf) = crate::output::time(inner, &Default::default(), ts);
    // Thread name: only if the table's lock is free.
    let guard = inner.cmdlines().try_lock().ok();
    let comm = match &guard {
        _ if common.pid == 0 => "<idle>",
        Some(g) => g.get(common.pid).map_or("<...>", |c| c.as_str()),
        None => "<...>",
    };
    let ctx = LineContext::of(comm, &common, ring as u32, ts);
    write_context(w, Style::default(), tf, &ctx)?;
    drop(guard);
    write_event_body(w, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Record;

    crate::declare_event! {
        /// A typed event with a string.
        struct DumpTyped<'a>: "test" / "dump_typed" = 1771 {
            n: u32,
            s: &'a str,
        }
    }

    /// The dump's line body (into a fixed buffer, without allocating) is
    /// the pipe's: `event_text`, byte for byte, malformed records included.
    #[test]
    fn dump_body_is_the_pipes_text() {
        let _ = crate::event::Registry::global().register(DumpTyped::EVENT_TYPE);
        let mut records: Vec<Vec<u8>> = Vec::new();
        let mut push = |r: &dyn Record| {
            let mut b = vec![0u8; r.encoded_len()];
            let n = r.encode(&Default::default(), &mut b).unwrap();
            b.truncate(n);
            records.push(b);
        };
        push(&crate::bprintk!("a=%llu b=%llu", 1u64, 2u64));
        push(&crate::bprintk!(
            "%s|%5d|%-4x|%05u|%c",
            "str",
            -12,
            255,
            7u32,
            'Z'
        ));
        push(&crate::bprintk!(
            "%lld %zu %p %o%%",
            -5i64,
            9usize,
            0x1000 as *const u8,
            8
        ));
        push(&crate::bprintk!("%.2s %8.3f %g\n", "abcdef", 2.71, 1e-7));
        push(&crate::bprintk!("%#x %+d % d", 255, 3, 4));
        push(&crate::printk::Print {
            ip: 0,
            text: "mark\n",
        });
        push(&DumpTyped { n: 7, s: "seven" });
        let good = records.len();
        // Malformed: a cut bprint, an unknown format, invalid UTF-8 in a
        // marker, a cut typed event, an unknown type, a cut header.
        let mut cut = records[1].clone();
        cut.truncate(30);
        let mut unknown = records[0].clone();
        unknown[16..24].copy_from_slice(&(crate::printk::FMT_ADDR_BASE + 0xfff_0000).to_ne_bytes());
        let mut bad_utf8 = records[5].clone();
        bad_utf8[16] = 0xff;
        let mut cut_typed = records[6].clone();
        cut_typed.truncate(10);
        let mut no_type = records[6].clone();
        no_type[0..2].copy_from_slice(&4321u16.to_ne_bytes());
        records.extend([cut, unknown, bad_utf8, cut_typed, no_type, vec![6, 0, 0]]);
        let mut line = [0u8; LINE];
        for (i, rec) in records.iter().enumerate() {
            let mut w = FixedWriter::new(&mut line);
            crate::output::write_event_body(&mut w, rec).unwrap();
            let (name, text) = crate::output::event_text(rec);
            let mut want = format!("{name}: {text}");
            if !want.ends_with('\n') {
                want.push('\n');
            }
            let got = std::str::from_utf8(w.as_bytes()).unwrap();
            assert_eq!(got, want, "record {i}");
            assert_eq!(
                i >= good,
                got.contains("FAILED")
                    || got.contains("Unknown")
                    || got.contains('\u{fffd}')
                    || got.starts_with('<'),
                "record {i}: {got}"
            );
        }
    }

    #[test]
    fn a_line_too_long_is_cut_not_an_error_of_the_record() {
        let long = "x".repeat(300);
        let mut b = vec![0u8; 512];
        let n = crate::bprintk!("%s", long.as_str())
            .encode(&Default::default(), &mut b)
            .unwrap();
        let mut small = [0u8; 64];
        let mut w = FixedWriter::new(&mut small);
        assert!(crate::output::write_event_body(&mut w, &b[..n]).is_err());
        assert_eq!(w.len(), 64);
        assert!(!w.as_bytes().windows(6).any(|x| x == b"FAILED"));
    }
}
