//! Installing signal handlers: the crate's one `sigaction` call.
//!
//! The crash dump installs its handlers here, and so do the examples, the
//! tests and the command line, so that the mask, the flags and the error
//! path are written once. Hidden from the docs: a seam for ringtrace's own
//! programs, not part of the tracing API.

use std::io;

/// A signal handler, as `sigaction` takes it.
#[derive(Debug, Clone, Copy)]
pub enum Handler {
    /// `handler(signal)`.
    Plain(extern "C" fn(libc::c_int)),
    /// `handler(signal, info, ucontext)`: installed with `SA_SIGINFO`.
    Info(extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)),
}

/// Installs `handler` for signal `sig` with an empty mask and `flags`
/// (`SA_RESTART`, `SA_ONSTACK`, ...; `SA_SIGINFO` is added for
/// [`Handler::Info`]). The previous action is dropped.
///
/// # Errors
/// `sigaction`'s error, e.g. `EINVAL` for a signal that cannot be caught.
///
/// # Safety
/// The handler may run at any instruction of the thread it interrupts: it
/// must do only async-signal-safe work (atomics, ringtrace records into a
/// context the thread already has, `write`, `kill`, `raise`) and restore
/// `errno` if it changes it.
///
/// ```
/// extern "C" fn on_usr2(_: libc::c_int) {}
/// // SAFETY: the handler does nothing.
/// unsafe { ringtrace::signal::install(libc::SIGUSR2, ringtrace::signal::Handler::Plain(on_usr2), 0) }
///     .unwrap();
/// // SAFETY: delivers SIGUSR2 to this thread, which the handler above catches.
/// assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
/// ```
pub unsafe fn install(sig: libc::c_int, handler: Handler, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: all-zero is a valid `sigaction` (no flags, empty mask); the
    // fields used are filled below.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    match handler {
        Handler::Plain(f) => {
            sa.sa_sigaction = f as usize;
            sa.sa_flags = flags;
        }
        Handler::Info(f) => {
            sa.sa_sigaction = f as usize;
            sa.sa_flags = flags | libc::SA_SIGINFO;
        }
    }
    // SAFETY: `sa.sa_mask` is a valid sigset_t to initialise.
    unsafe { libc::sigemptyset(&mut sa.sa_mask) };
    // SAFETY: a valid sigaction whose handler is signal-safe (the caller's
    // contract); the old action is not asked for.
    if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
