//! The command line's one signal-handler installer, and signal names.
//!
//! Every handler the CLI installs (the demo's nested writers, the session
//! commands' stop and dump flags, `record`'s forwarding) goes through
//! [`install`]: `SA_RESTART`, an empty mask, and `SA_SIGINFO` for a handler
//! that reads the sender. Handlers must be async-signal-safe: each one's
//! caller says why it is.

pub(crate) use ringtrace::signal::Handler;

/// Installs `handler` for `sig` with `SA_RESTART` (interrupted system calls
/// resume), through the library's one installer. The handler must do only
/// async-signal-safe work.
pub(crate) fn install(sig: libc::c_int, handler: Handler) -> std::io::Result<()> {
    // SAFETY: the caller vouches that the handler is async-signal-safe
    // (each call site says why); `ringtrace::signal::install`'s contract.
    unsafe { ringtrace::signal::install(sig, handler, libc::SA_RESTART) }
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
