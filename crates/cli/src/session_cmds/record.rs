//! `ringtrace record`'s command line: its arguments, the session it
//! creates for the program (name, sizes, mode, clock) and what is kept at
//! the end. The recording itself is `recording.rs`.
//!
//! Terms: the *program* is `record`'s child; the *flight recorder*
//! (`--flight-recorder MB`) keeps about the last MB megabytes over the
//! contexts in use and reads only at the end and on SIGUSR1.
//!
//! Contract: the session's name is never one already in use (an explicit
//! `--name` in use is refused); the session file is removed at the end
//! unless it holds something worth keeping (no `-o`, `--keep`, or an
//! output that could not be written whole); the exit status is the
//! program's (128 + N when signal N killed it).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use ringtrace::clock::ClockKind;
use ringtrace::ring::Mode;
use ringtrace::session::{list_sessions, Session, SessionConfig};

use super::output::say;
use super::recording::record_in;
use super::{Result, SessionCmdError};
use crate::Format;

/// Ring mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// Flight recorder: the oldest events are overwritten.
    Overwrite,
    /// Producer/consumer: a full ring drops new events.
    Pc,
}

/// Clock on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ClockArg {
    /// CLOCK_MONOTONIC, nanoseconds.
    Mono,
    /// The x86 TSC (`x86-tsc`), with its ns conversion in the trace.
    Tsc,
}

/// `ringtrace record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Buffer size of each context in KiB (trace-cmd's -b).
    #[arg(short = 'b', value_name = "KB", default_value_t = 256)]
    pub buffer_kb: usize,
    /// Ring mode.
    #[arg(long, value_enum, default_value = "pc")]
    pub mode: ModeArg,
    /// Clock.
    #[arg(long, value_enum, default_value = "mono")]
    pub clock: ClockArg,
    /// Page (sub-buffer) size in bytes: a power of two, 4096 to 1 MiB.
    #[arg(long, default_value_t = 4096)]
    pub page_size: usize,
    /// Most writer threads at once (contexts).
    #[arg(long, default_value_t = 64)]
    pub contexts: usize,
    /// Flight recorder: overwrite mode keeping about the last MB megabytes
    /// in total over the contexts in use, whatever their number (each
    /// context starts with a ring of 2 pages and grows from a pool shared
    /// by all, so a context that writes more keeps more); read only when
    /// the program ends or when ringtrace gets SIGUSR1 (then the output
    /// file is rewritten). Implies --take-over-exited; -b is ignored.
    #[arg(long, value_name = "MB", num_args = 0..=1, default_missing_value = "16")]
    pub flight_recorder: Option<usize>,
    /// Overwrite mode: when every context is taken, a new thread of the
    /// program takes over the ring of an exited thread whose events are not
    /// read yet (the one that wrote last longest ago) instead of being
    /// refused; its events stay until overwritten.
    #[arg(long)]
    pub take_over_exited: bool,
    /// Output file (trace.dat by `.dat`, JSON by `.json`, or --format).
    /// Without it the session is only created and kept, for `pipe`,
    /// `show`, `stat` and `extract` from another terminal.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Output format (overrides the extension).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Compress the trace.dat output as trace-cmd does (it is then
    /// version 7).
    #[arg(long, value_enum)]
    pub compression: Option<crate::dat_convert::CompressionArg>,
    /// Session name (default: the program's file name).
    #[arg(long)]
    pub name: Option<String>,
    /// Directory of the session file (default: $RINGTRACE_SHM_DIR, else
    /// /dev/shm): another tmpfs when /dev/shm is too small. Other commands
    /// find it there with RINGTRACE_SHM_DIR=DIR (or the file's path).
    #[arg(long, value_name = "DIR")]
    pub shm_dir: Option<PathBuf>,
    /// Keep the session file after the program ends (always kept without -o).
    #[arg(long)]
    pub keep: bool,
    /// After the program exits, wait at most SECS for the processes it
    /// forked that still write into the session (only processes this
    /// `record` started, directly or not, are waited for).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait_children: u64,
    /// Kernel events beside the program's (-e, -f, --kernel-pid-only).
    #[command(flatten)]
    pub kernel: crate::kernel_cmd::KernelArgs,
    /// Only these contexts record, as a CPU list (0,2-3; the kernel's
    /// `tracing_cpumask`); the others' events are refused and counted.
    /// `ringtrace contexts` changes it while the program runs.
    #[arg(long, value_name = "LIST")]
    pub context_mask: Option<String>,
    /// The program and its arguments (after `--` when they start with a
    /// hyphen). An unknown option before the program is an error, never
    /// taken as the program.
    #[arg(required = true, trailing_var_arg = true)]
    pub command: Vec<OsString>,
}

/// The session name `record` uses: `--name`, else the program's file name
/// made safe, with `-2`, `-3` ... added when one of your sessions has it
/// already (an explicit `--name` in use is refused instead: two sessions
/// of one name could not be told apart by `pipe NAME`).
fn session_name(a: &RecordArgs, program: &OsString) -> Result<String> {
    let in_use: Vec<(String, PathBuf)> = list_sessions()
        .into_iter()
        .filter(|l| l.state.is_ok())
        .filter_map(|l| {
            let s = Session::open(&l.path).ok()?;
            Some((s.layout().name.clone(), l.path))
        })
        .collect();
    if let Some(n) = &a.name {
        if let Some((_, path)) = in_use.iter().find(|(u, _)| u == n) {
            return Err(SessionCmdError::Usage(format!(
                "session name {n:?} is in use by {}: choose another --name, or delete it \
                 with `ringtrace remove {}`",
                path.display(),
                path.display()
            )));
        }
        return Ok(n.clone());
    }
    let base = Path::new(program)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(36)
        .collect();
    let clean = if clean.is_empty() {
        "session".to_string()
    } else {
        clean
    };
    let mut name = clean.clone();
    for k in 2..1000 {
        if !in_use.iter().any(|(u, _)| *u == name) {
            break;
        }
        name = format!("{clean}-{k}");
    }
    Ok(name)
}

/// `ringtrace record`: returns the exit status (the program's, or
/// 128 + the signal that killed it).
pub fn record(a: RecordArgs) -> Result<u8> {
    let format = match &a.output {
        Some(o) => {
            Some(Format::resolve(o, a.format).map_err(|e| SessionCmdError::Usage(e.to_string()))?)
        }
        None => None,
    };
    crate::dat_convert::check_compression(format, a.compression).map_err(SessionCmdError::Usage)?;
    crate::kernel_cmd::check(&a.kernel, a.output.as_deref(), format)
        .map_err(SessionCmdError::Usage)?;
    let Some(program) = a.command.first() else {
        return Err(SessionCmdError::Usage("record: no program given".into()));
    };
    let mask = match &a.context_mask {
        Some(l) => Some(
            crate::contexts_cmd::parse_mask(l, a.contexts)
                .map_err(|e| SessionCmdError::Usage(e.to_string()))?,
        ),
        None => None,
    };
    let name = session_name(&a, program)?;
    let mut cfg = SessionConfig::new(&name);
    cfg.contexts = a.contexts;
    cfg.page_size = a.page_size;
    cfg.bytes_per_context = a.buffer_kb.saturating_mul(1024);
    cfg.mode = match a.mode {
        ModeArg::Overwrite => Mode::Overwrite,
        ModeArg::Pc => Mode::ProducerConsumer,
    };
    cfg.clock = match a.clock {
        ClockArg::Mono => ClockKind::Mono,
        ClockArg::Tsc => ClockKind::Tsc,
    };
    cfg.take_over_exited = a.take_over_exited;
    cfg.dir = a.shm_dir.clone();
    if let Some(mb) = a.flight_recorder {
        cfg.mode = Mode::Overwrite;
        cfg.take_over_exited = true;
        let (per_context, pool) = flight_recorder_split(mb, a.contexts, a.page_size);
        cfg.bytes_per_context = per_context;
        cfg.pool_bytes = pool;
    }
    let session = Session::create(&cfg)?;
    session.set_recorder_pid(std::process::id());
    if let Some(m) = &mask {
        session.set_contexts(m);
    }
    let path = session.path().to_path_buf();
    let (result, keep_session) = match record_in(&a, session, format, &path) {
        Ok(end) => (Ok(end.status), a.keep || a.output.is_none() || end.failed),
        // Nothing was started or nothing was read: the session holds
        // nothing worth keeping unless asked.
        Err(e) => (Err(e), a.keep),
    };
    if keep_session {
        say(format_args!(
            "ringtrace: session kept: {} (`ringtrace remove` deletes it)",
            path.display()
        ));
    } else {
        let _ = std::fs::remove_file(&path);
    }
    result
}

/// `--flight-recorder MB` over `contexts` contexts of `page_size`-byte
/// pages: (data bytes of each context's ring, data bytes of the shared
/// pool). Each ring has the least the write protocol needs, 2 pages (the
/// kernel's minimum); the pool holds the rest of the MB megabytes' pages,
/// and a ring that fills takes pages from it before it overwrites: the MB
/// are shared by the contexts in use. (Each context's reader page and the
/// spare slots of the ring layout come on top, as a fixed cost per
/// context.) With fewer pages than 2 per context, there is no pool.
fn flight_recorder_split(mb: usize, contexts: usize, page_size: usize) -> (usize, usize) {
    let page_size = page_size.max(ringtrace::ring::format::MIN_PAGE_SIZE);
    let cap = ringtrace::ring::format::data_capacity(page_size);
    let pages = mb.saturating_mul(1 << 20) / page_size;
    let pool = pages.saturating_sub(contexts.max(1).saturating_mul(2));
    (2 * cap, pool.saturating_mul(cap))
}
