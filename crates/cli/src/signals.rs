//! The command line's one signal-handler installer, and signal names.
//!
//! Every handler the CLI installs (the demo's nested writers, the session
//! commands' stop and dump flags, `record`'s forwarding) goes through
//! [`install`]: `SA_RESTART`, an empty mask, and `SA_SIGINFO` for a handler
//! that reads the sender. Handlers must be async-signal-safe: each one's
//! caller says why it is.

/// A signal handler: plain, or one that reads the `siginfo_t`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Handler {
    /// `void handler(int)`.
    Plain(extern "C" fn(libc::c_int)),
    /// `void handler(int, siginfo_t *, void *)`, installed with `SA_SIGINFO`.
    Info(extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void)),
}

/// Installs `handler` for `sig` with `SA_RESTART` (interrupted system calls
/// resume). The handler must do only async-signal-safe work.
pub(crate) fn install(sig: libc::c_int, handler: Handler) -> std::io::Result<()> {
    let (action, flags) = match handler {
        Handler::Plain(f) => (f as *const () as usize, libc::SA_RESTART),
        Handler::Info(f) => (f as *const () as usize, libc::SA_RESTART | libc::SA_SIGINFO),
    };
    // SAFETY: a zeroed sigaction is valid (empty mask, no flags) and is
    // filled in before use; `action` is an `extern "C"` function of the
    // signature `flags` announces; the caller vouches that it is
    // async-signal-safe.
    let rc = unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = action;
        sa.sa_flags = flags;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The name of signal `sig` (`SIGSEGV`), or `signal N`.
pub(crate) fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}
