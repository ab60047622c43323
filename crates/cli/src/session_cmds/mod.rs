//! Session commands: `record`, `list`, `pipe`, `show`, `stat`, `extract`,
//! `snapshot`, `clear`, `remove`.
//!
//! A session is a shared-memory file (`/dev/shm/ringtrace-<pid>-<name>`)
//! holding a program's rings and tables (see `ringtrace::session`). Every
//! command here opens it as a *reader* ([`opened::Opened`]): it imports the
//! writers' event formats, printk formats and thread names, then reads the
//! rings with the ordinary pipe and drain.
//!
//! ```text
//! consuming:      pipe, extract, record      (take every ring's reader lock)
//! non-consuming:  show, snapshot             (the live view, read in place)
//!                 stat, list                 (counters only)
//! ```
//!
//! One file per family: `record.rs` and `recording.rs` (record: its
//! command line, and the recording), `pipe.rs` (pipe, extract),
//! `views.rs` (show, snapshot), `list.rs` (list, stat), `manage.rs`
//! (clear, remove); `opened.rs` is the opened session every command reads
//! through, `output.rs` the export to a file and the summary that explains
//! its losses. This file holds what they share: the error, the session
//! arguments, the stop and dump flags.
//!
//! Every loop over shared data is bounded by the validated geometry, not by
//! what the memory says.
//!
//! Post-mortem: when no writer process of the session runs any more and at
//! least one died without detaching (SIGKILL, a crash), the reader says so
//! and repairs each ring with `recover_dead_writer`: a write that was in
//! flight is counted as lost, never shown.

mod list;
mod manage;
mod opened;
mod output;
mod pipe;
mod record;
mod recording;
mod views;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use ringtrace::export::ExportError;
use ringtrace::session::SessionError;

use crate::signals::{self, Handler};
use crate::Format;

pub(crate) use crate::progress::{attach_progress, progress_bar};
pub use list::{list, stat};
pub use manage::{clear, remove, reset, set_recording};
pub use pipe::{extract, pipe};
pub use record::{record, RecordArgs};
pub use views::{show, snapshot};

/// Why a session command failed; each names the session and the cause.
#[derive(Debug, thiserror::Error)]
pub enum SessionCmdError {
    /// Opening or creating the session failed.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// An operation on the session failed.
    #[error("session {path}: {what}")]
    Failed {
        /// The session file.
        path: String,
        /// What failed and why.
        what: String,
    },
    /// Exporting the session failed.
    #[error("session {path}: export: {source}")]
    Export {
        /// The session file.
        path: String,
        /// The exporter's error.
        #[source]
        source: ExportError,
    },
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
}

type Result<T> = std::result::Result<T, SessionCmdError>;

/// A failure of an operation on the session at `path`.
fn failed(path: &Path, what: impl Into<String>) -> SessionCmdError {
    SessionCmdError::Failed {
        path: path.display().to_string(),
        what: what.into(),
    }
}

/// A session argument with the dead-reader override.
#[derive(Debug, Args)]
pub struct SessionArg {
    /// Session: a path, its name, the creator's pid, or the file name.
    pub session: String,
    /// Take the reader locks even from a live reader known to be stuck (a
    /// dead reader's locks are taken over without it).
    #[arg(long)]
    pub force: bool,
}

/// A session argument and an output file.
#[derive(Debug, Args)]
pub struct SessionOutArg {
    /// Session: a path, its name, the creator's pid, or the file name.
    pub session: String,
    /// Output file (trace.dat by `.dat`, JSON by `.json`, or --format).
    #[arg(short, long)]
    pub output: PathBuf,
    /// Output format (overrides the extension).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Take the reader locks even from a live reader known to be stuck (a
    /// dead reader's locks are taken over without it).
    #[arg(long)]
    pub force: bool,
}

/// Set by SIGINT/SIGTERM (stop) and SIGUSR1 (flight-recorder dump); read
/// between two events (never while a ring's `busy` word is held).
static STOP: AtomicBool = AtomicBool::new(false);
static DUMP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_dump(_: libc::c_int) {
    DUMP.store(true, Ordering::Relaxed);
}

/// Installs `f` for `sig`; `f` only stores to an atomic (async-signal-safe).
/// A failure leaves the default action (the command is then stopped by
/// the signal instead of ending its read cleanly).
fn install(sig: libc::c_int, f: extern "C" fn(libc::c_int)) {
    let _ = signals::install(sig, Handler::Plain(f));
}
