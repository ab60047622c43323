//! Session commands: `record`, `list`, `pipe`, `show`, `stat`, `extract`,
//! `snapshot`, `clear`, `remove`.
//!
//! A session is a shared-memory file (`/dev/shm/ringtrace-<pid>-<name>`)
//! holding a program's rings and tables (see `ringtrace::session`). Every
//! command here opens it as a *reader*: it imports the writers' event
//! formats, printk formats and thread names, then reads the rings with the
//! ordinary pipe and drain.
//!
//! ```text
//! consuming:      pipe, extract, record      (take every ring's reader lock)
//! non-consuming:  show, snapshot             (the live view, read in place)
//!                 stat, list                 (counters only)
//! ```
//!
//! `show` and `snapshot` read the mapped session in place with each ring's
//! non-consuming iterator (`Tracer::view`, `Tracer::export_view`): no
//! reader lock, no copy, no repair; each call holds the ring's `busy` word
//! only while it copies one event (as a consuming reader's call does), so
//! writers and a live `record` go on. Every event shown was checked not
//! overwritten while it was copied (a page generation check, as a seqlock
//! reader does); what was overwritten or consumed meanwhile is counted and
//! shown as lost (exactly between two events of a context; after its last
//! one shown, as a bound: `View::skipped_at_end`), and each context's
//! events keep their order and time. Memory is a
//! page per context, time is what is read, whatever the session's size. A
//! write in flight (its writer died) is not committed, so not shown. A
//! damaged ring is reported once and not read further. `stat` reads
//! counters only. Every loop over shared data is bounded by the validated
//! geometry, not by what the memory says.
//!
//! `record` waits, after the program exits, only for writer processes it
//! started (their start time matches and their parents lead back to it:
//! it is the subreaper of the program's orphans), and at most
//! `--wait-children` seconds.
//!
//! Post-mortem: when no writer process of the session runs any more and at
//! least one died without detaching (SIGKILL, a crash), the reader says so
//! and repairs each ring with `recover_dead_writer`: a write that was in
//! flight is counted as lost, never shown.

use std::ffi::OsString;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ringtrace::clock::ClockKind;
use ringtrace::export::{Drain, DrainStats, ExportError, SpoolFiles};
use ringtrace::session::{
    list_sessions, resolve, session_dir, ProcInfo, ProcState, Session, SessionConfig, SessionError,
    SessionState, SESSION_ENV,
};
use ringtrace::Tracer;
use ringtrace_ring::Mode;

use crate::Format;

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

fn failed(path: &Path, what: impl Into<String>) -> SessionCmdError {
    SessionCmdError::Failed {
        path: path.display().to_string(),
        what: what.into(),
    }
}

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
    /// The program and its arguments (after `--` when they start with a
    /// hyphen). An unknown option before the program is an error, never
    /// taken as the program.
    #[arg(required = true, trailing_var_arg = true)]
    pub command: Vec<OsString>,
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

/// Set by SIGINT/SIGTERM (stop) and SIGUSR1 (flight-recorder dump).
static STOP: AtomicBool = AtomicBool::new(false);
static DUMP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

extern "C" fn on_dump(_: libc::c_int) {
    DUMP.store(true, Ordering::Relaxed);
}

fn install(sig: libc::c_int, f: extern "C" fn(libc::c_int)) {
    // SAFETY: the handlers only store to atomics (async-signal-safe).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = f as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// An opened session, as a reading tracer.
struct Opened {
    tracer: Tracer,
    path: PathBuf,
    /// Table appends the writers could not make (tables full), at open.
    table_full: u64,
}

impl Opened {
    fn open(arg: &str) -> Result<Opened> {
        let path = resolve(arg)?;
        let session = Session::open(&path)?;
        Self::from_session(session)
    }

    fn from_session(session: Session) -> Result<Opened> {
        let path = session.path().to_path_buf();
        let table_full = session.table_full();
        let tracer = Tracer::read_session(session).map_err(|e| failed(&path, e.to_string()))?;
        tracer.import_session_tables();
        Ok(Opened {
            tracer,
            path,
            table_full,
        })
    }

    fn state(&self) -> (SessionState, Vec<ProcInfo>) {
        self.tracer
            .session_state()
            .unwrap_or((SessionState::Waiting, Vec::new()))
    }

    /// Takes and releases every ring's reader lock, so that the consuming
    /// read that follows (`pipe`, `extract`) gets every ring: a reader
    /// that died holding a lock (killed `pipe`, crashed `record`) is taken
    /// over, and said so; a live one fails the command, named (pid and
    /// command), unless `force` releases its locks (for a reader known to
    /// be stuck: two live consumers of one ring corrupt it).
    fn check_readers(&self, force: bool) -> Result<()> {
        let buf = self.tracer.ring_buffer();
        let mut dead: Vec<(u32, Vec<usize>)> = Vec::new();
        for r in 0..buf.rings() {
            match buf.consumer(r) {
                Ok(c) => {
                    if let Some(pid) = c.took_over() {
                        match dead.iter_mut().find(|(p, _)| *p == pid) {
                            Some((_, rings)) => rings.push(r),
                            None => dead.push((pid, vec![r])),
                        }
                    }
                }
                Err(ringtrace_ring::RingError::ReaderHeld { ring, holder }) if force => {
                    eprintln!(
                        "ringtrace: session {}: context {ring} is being read by {holder}; \
                         taking over the reader locks (--force)",
                        self.path.display()
                    );
                    // SAFETY: --force is the user's statement that the
                    // holder is stuck and reads no more (its help says so);
                    // the session cannot check that of a live process.
                    unsafe { ringtrace::ring::repair::force_release_readers(buf) };
                    break;
                }
                Err(ringtrace_ring::RingError::ReaderHeld { ring, holder }) => {
                    return Err(failed(
                        &self.path,
                        format!(
                            "context {ring} is being read by {holder}, a consuming reader \
                             (`ringtrace record`, `pipe` or `extract`): stop it first, or read \
                             without consuming with `ringtrace show` or `snapshot`"
                        ),
                    ));
                }
                Err(e) => return Err(failed(&self.path, e.to_string())),
            }
        }
        for (pid, rings) in dead {
            let list: Vec<String> = rings.iter().map(usize::to_string).collect();
            eprintln!(
                "ringtrace: session {}: reader process {pid} died holding the reader lock of \
                 context(s) {}; taken over (an event it was reading when it died may be lost)",
                self.path.display(),
                list.join(", ")
            );
        }
        Ok(())
    }

    /// Post-mortem: when no writer runs and one died, repairs every ring
    /// (in-flight writes become losses) and says so. Returns the message.
    fn post_mortem(&self) -> Option<String> {
        let (state, procs) = self.state();
        if state != SessionState::Dead {
            return None;
        }
        let buf = self.tracer.ring_buffer();
        let mut lost = 0;
        let mut errors = Vec::new();
        for r in 0..buf.rings() {
            // SAFETY: no writer process of the session is alive (every
            // registered process is dead or detached), so no live writer
            // holds a reservation in any ring.
            match unsafe { buf.recover_dead_writer(r) } {
                Ok(n) => lost += n,
                Err(e) => errors.push(format!("context {r}: {e}")),
            }
        }
        let dead: Vec<String> = procs
            .iter()
            .filter(|p| p.state == ProcState::Dead)
            .map(|p| p.pid.to_string())
            .collect();
        let mut msg = format!(
            "session {}: writer process {} died without detaching (killed or crashed); \
             {lost} event(s) it was writing counted as lost",
            self.path.display(),
            dead.join(", ")
        );
        if !errors.is_empty() {
            msg.push_str(&format!("; could not repair {}", errors.join("; ")));
        }
        Some(msg)
    }

    /// Events the writer processes refused (all of them: a forked
    /// child's too), as a sentence saying why; `None` if none.
    fn refusals(&self) -> Option<String> {
        let r = self.tracer.session_refused()?;
        if r.events() == 0 && r.untraced_processes == 0 {
            return None;
        }
        let mut why = Vec::new();
        if r.no_context > 0 {
            why.push(format!(
                "{} refused for want of a free context (all {} were in use; raise --contexts)",
                r.no_context,
                self.tracer.max_contexts()
            ));
        }
        if r.in_signal_handler > 0 {
            why.push(format!(
                "{} refused in a signal handler on a thread that had no context yet \
                 (record once on the thread before)",
                r.in_signal_handler
            ));
        }
        if r.other > 0 {
            why.push(format!(
                "{} refused as too large for a page or not encodable",
                r.other
            ));
        }
        let mut m = format!(
            "{} event(s) lost before reaching a ring: {}",
            r.events(),
            why.join(", ")
        );
        if r.untraced_processes > 0 {
            m.push_str(&format!(
                "; {} process(es) ran untraced: the session's process table was full",
                r.untraced_processes
            ));
        }
        Some(m)
    }

    /// Sum over the rings of the events lost (overrun, dropped, commit
    /// overrun) according to the ring counters.
    fn ring_losses(&self) -> u64 {
        let buf = self.tracer.ring_buffer();
        (0..buf.rings())
            .filter_map(|r| buf.stats(r).ok())
            .map(|s| s.overrun + s.dropped + s.commit_overrun)
            .sum()
    }
}

fn create_output(path: &Path) -> Result<BufWriter<std::fs::File>> {
    let f = std::fs::File::create(path)
        .map_err(|e| SessionCmdError::Usage(format!("creating {}: {e}", path.display())))?;
    Ok(BufWriter::with_capacity(1 << 16, f))
}

/// A byte progress bar on stderr when it is a terminal.
pub(crate) fn progress_bar(msg: &'static str) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new(0);
        if let Ok(style) =
            ProgressStyle::with_template("{spinner} {msg} {bytes}/{total_bytes} {bar:30}")
        {
            b.set_style(style);
        }
        b.set_message(msg);
        b
    })
}

/// Shows a drain's progress on `bar`: spooled bytes while recording,
/// written bytes once it writes the output.
pub(crate) fn attach_progress(drain: &mut Drain<'_>, bar: &Option<ProgressBar>) {
    if let Some(b) = bar.clone() {
        drain.on_progress(move |p| {
            if p.total > 0 {
                b.set_message("writing");
                b.set_length(p.total);
                b.set_position(p.written);
            } else {
                b.set_length(p.spooled);
                b.set_position(p.spooled);
            }
        });
    }
}

/// Fails when the drain could not take every ring (another live reader
/// holds some): the output would lack their events.
fn unread_rings(drain: &ringtrace::Drain<'_>, path: &Path) -> Result<()> {
    if drain.unread_rings().is_empty() {
        return Ok(());
    }
    let why: Vec<String> = drain
        .unread_rings()
        .iter()
        .map(|(r, e)| format!("context {r}: {e}"))
        .collect();
    Err(failed(
        path,
        format!("cannot read every context ({})", why.join("; ")),
    ))
}

/// Drains `o` completely into `out`, spooling next to it (see
/// [`SpoolFiles`]); returns the drain's counters.
fn export(o: &Opened, out: &Path, format: Format, msg: &'static str) -> Result<DrainStats> {
    let ex = |source| SessionCmdError::Export {
        path: o.path.display().to_string(),
        source,
    };
    o.tracer.import_session_tables();
    let mut drain = o.tracer.drain();
    unread_rings(&drain, &o.path)?;
    drain.spool_next_to(out).map_err(ex)?;
    let bar = progress_bar(msg);
    attach_progress(&mut drain, &bar);
    drain.poll_all().map_err(ex)?;
    let stats = drain.stats();
    let rec = drain.finish_spooled(format.export()).map_err(ex)?;
    note_undecodable(&rec, out);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(stats)
}

fn summary(o: &Opened, stats: &DrainStats, out: &Path) {
    say(format_args!(
        "ringtrace: {}: {} events, {} lost (ring counters: {} lost) -> {}",
        o.path.display(),
        stats.events,
        stats.lost_events,
        o.ring_losses(),
        out.display()
    ));
    if let Some(m) = o.refusals() {
        say(format_args!("ringtrace: {}: {m}", o.path.display()));
    }
    for l in loss_lines(o, stats) {
        say(format_args!("ringtrace: {l}"));
    }
}

/// Contexts whose losses the summary explains one by one; the rest are
/// summed in one line.
const LOSS_LINES: usize = 16;

/// Per context that lost events: what was written, what was lost and why
/// (a full ring in producer/consumer mode, overwritten in overwrite mode,
/// commit overruns), and the `-b` that would have held them: the ring's
/// size plus the bytes of the lost events, at the drain's bytes per event
/// (page overhead included, so an upper bound), rounded up to a power of
/// two. That is enough even if nothing were read during the recording.
fn loss_lines(o: &Opened, stats: &DrainStats) -> Vec<String> {
    let buf = o.tracer.ring_buffer();
    let page = buf.config().page_size as u64;
    let per_event = if stats.events > 0 {
        stats.page_bytes.div_ceil(stats.events)
    } else {
        // Nothing read: the smallest event (8 bytes) plus the common
        // fields, a floor rather than a guess.
        16
    };
    let overwrite = buf.mode() == Mode::Overwrite;
    let mut lines = Vec::new();
    let (mut more, mut more_lost) = (0u64, 0u64);
    for r in 0..buf.rings() {
        let Ok(s) = buf.stats(r) else { continue };
        let lost = s.overrun + s.dropped + s.commit_overrun;
        if lost == 0 {
            continue;
        }
        if lines.len() >= LOSS_LINES {
            more += 1;
            more_lost += lost;
            continue;
        }
        let who = match o.tracer.context_tid(r) {
            Some(tid) => format!(
                "{}-{tid}",
                o.tracer.comm(tid).unwrap_or_else(|| "<...>".into())
            ),
            None => "no thread now".to_string(),
        };
        let ring_kb = buf.ring_pages(r).map_or(0, |p| p as u64 * page / 1024);
        let mut why = Vec::new();
        if s.dropped > 0 {
            why.push(format!(
                "{} dropped: the ring ({ring_kb} KB) was full, the reader had not emptied it \
                 (producer/consumer mode keeps the oldest)",
                s.dropped
            ));
        }
        if s.overrun > 0 {
            why.push(format!(
                "{} overwritten by newer events (overwrite mode keeps the newest {ring_kb} KB)",
                s.overrun
            ));
        }
        if s.commit_overrun > 0 {
            why.push(format!(
                "{} commit overrun (nested writes filled the ring during a write)",
                s.commit_overrun
            ));
        }
        let need_kb = (ring_kb + (lost * per_event).div_ceil(1024)).next_power_of_two();
        let fix = if overwrite {
            format!("-b {need_kb} would have held them all")
        } else {
            format!("-b {need_kb} would have held them all, or --mode overwrite keeps the newest")
        };
        lines.push(format!(
            "context {r} ({who}): {} written, {lost} lost: {}; {fix}",
            s.written,
            why.join(", ")
        ));
    }
    if more > 0 {
        lines.push(format!(
            "{more} more context(s) lost {more_lost} event(s) (`ringtrace stat` shows each)"
        ));
    }
    lines
}

/// Writes one line to stderr, ignoring errors: `record` must go on (and
/// write the trace) when its terminal hung up, where `eprintln!` panics.
/// Says how many records the JSON output skipped because no format
/// decodes them (they are not in `out`; the session or a trace.dat export
/// keeps them).
fn note_undecodable(rec: &ringtrace::export::Recovered, out: &Path) {
    if rec.undecodable > 0 {
        say(format_args!(
            "ringtrace: {}: {} record(s) could not be decoded for JSON and were skipped",
            out.display(),
            rec.undecodable
        ));
    }
}

fn say(line: std::fmt::Arguments<'_>) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(line);
    let _ = e.write_all(b"\n");
}

/// The program `record` runs (its pid once started, else 0): the signal
/// handler forwards SIGINT, SIGTERM and SIGHUP to it.
static PROGRAM: AtomicI32 = AtomicI32::new(0);
/// SIGINT, SIGTERM and SIGHUP received by `record`; from the second on,
/// `record` stops waiting for its program.
static STOP_SIGNALS: AtomicU32 = AtomicU32::new(0);
/// The last of them (its number), for the exit status when the program is
/// not waited for.
static LAST_STOP: AtomicI32 = AtomicI32::new(0);
/// One that arrived from another process before the program started:
/// forwarded as soon as it runs.
static PENDING_FORWARD: AtomicI32 = AtomicI32::new(0);

/// SIGINT/SIGTERM/SIGHUP to `record`. One sent by a process (`kill`,
/// `si_code <= 0`) is forwarded to the program; one the kernel sent (the
/// terminal's Ctrl-C or hang-up, `si_code > 0`) reached the program's
/// process group, the program included, already: forwarding it would
/// deliver it twice.
extern "C" fn on_record_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler.
    let from_process = info.is_null() || unsafe { (*info).si_code } <= 0;
    LAST_STOP.store(sig, Ordering::Relaxed);
    STOP_SIGNALS.fetch_add(1, Ordering::Relaxed);
    if from_process {
        let pid = PROGRAM.load(Ordering::Relaxed);
        if pid > 0 {
            // SAFETY: kill is async-signal-safe and takes plain integers.
            unsafe { libc::kill(pid, sig) };
        } else {
            PENDING_FORWARD.store(sig, Ordering::Relaxed);
        }
    }
}

fn install_siginfo(sig: libc::c_int) {
    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = on_record_signal;
    // SAFETY: the handler only touches atomics and calls kill
    // (async-signal-safe); a zeroed sigaction is valid.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = f as *const () as usize;
        sa.sa_flags = libc::SA_RESTART | libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
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
    let Some(program) = a.command.first() else {
        return Err(SessionCmdError::Usage("record: no program given".into()));
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
    let page_size = page_size.max(ringtrace_ring::format::MIN_PAGE_SIZE);
    let cap = ringtrace_ring::format::data_capacity(page_size);
    let pages = mb.saturating_mul(1 << 20) / page_size;
    let pool = pages.saturating_sub(contexts.max(1).saturating_mul(2));
    (2 * cap, pool.saturating_mul(cap))
}

/// How a recording ended.
struct RecordEnd {
    /// `record`'s exit status.
    status: u8,
    /// The trace could not be written whole: the session is kept.
    failed: bool,
}

/// Removes what `record` made at the output path before the program ran
/// (the placeholder and the first metadata file).
fn undo_output(out: &Path) {
    if ringtrace::export::is_unfinished(out) {
        let _ = std::fs::remove_file(out);
    }
    let files = SpoolFiles::new(out);
    if files.cpus_present().is_empty() {
        let _ = std::fs::remove_file(files.meta());
    }
}

/// `OUT` with `-rest` before its extension: where `extract` can save what a
/// failed recording left in the session.
fn rest_name(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|s| s.to_string_lossy().into_owned());
    let ext = out.extension().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, ext) {
        (Some(s), Some(e)) => format!("{s}-rest.{e}"),
        (Some(s), None) => format!("{s}-rest"),
        _ => "rest.dat".to_string(),
    };
    out.with_file_name(name)
}

fn record_in(
    a: &RecordArgs,
    session: Session,
    format: Option<Format>,
    path: &Path,
) -> Result<RecordEnd> {
    let o = Opened::from_session(session)?;
    let program_name = Path::new(&a.command[0]).display().to_string();
    // The output is made (and so checked) before the program starts: the
    // live drain spools next to it; the flight recorder only writes the
    // placeholder now and drains at the end (or on SIGUSR1).
    let live = a.output.is_some() && a.flight_recorder.is_none();
    let mut drain = None;
    if let Some(out) = &a.output {
        if live {
            let mut d = o.tracer.drain();
            unread_rings(&d, path).map_err(|e| {
                SessionCmdError::Usage(format!("{e}; {program_name} was not started"))
            })?;
            d.spool_next_to(out).map_err(|e| {
                SessionCmdError::Usage(format!("output: {e}; {program_name} was not started"))
            })?;
            drain = Some(d);
        } else {
            SpoolFiles::new(out).prepare().map_err(|e| {
                SessionCmdError::Usage(format!("output: {e}; {program_name} was not started"))
            })?;
        }
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        install_siginfo(sig);
    }
    install(libc::SIGUSR1, on_dump);
    // Orphaned descendants of the program are re-parented to us (not to
    // init): they stay recognisably ours, and we reap them.
    // SAFETY: prctl with an integer argument; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let me = std::process::id();
    let spawned = Command::new(&a.command[0])
        .args(&a.command[1..])
        .env(SESSION_ENV, path)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            drop(drain);
            if let Some(out) = &a.output {
                undo_output(out);
            }
            return Err(failed(
                path,
                format!("cannot start {program_name}: {e}; nothing was recorded"),
            ));
        }
    };
    PROGRAM.store(i32::try_from(child.id()).unwrap_or(0), Ordering::Relaxed);
    let early = PENDING_FORWARD.swap(0, Ordering::Relaxed);
    if early > 0 {
        // SAFETY: kill takes plain integers; the pid is our child's.
        unsafe { libc::kill(child.id() as i32, early) };
    }
    say(format_args!(
        "ringtrace: session {} recording pid {}",
        path.display(),
        child.id()
    ));
    let bar = if live {
        progress_bar("recording")
    } else {
        None
    };
    if let Some(d) = &mut drain {
        attach_progress(d, &bar);
    }
    // A write error stops the reading, never the program: its events stay
    // in the session (kept), and the end says how to save them.
    let mut write_error: Option<String> = None;
    let poll = |drain: &mut Option<ringtrace::Drain<'_>>, write_error: &mut Option<String>| {
        if let Some(d) = drain {
            if let Err(e) = d.poll() {
                say(format_args!(
                    "ringtrace: session {}: {e}; reading stopped (the program goes on, \
                     its events stay in the session)",
                    path.display()
                ));
                *write_error = Some(e.to_string());
                *drain = None;
            }
        }
    };
    let stop_waiting = || STOP_SIGNALS.load(Ordering::Relaxed) >= 2;
    let status = loop {
        o.tracer.import_session_tables();
        poll(&mut drain, &mut write_error);
        if DUMP.swap(false, Ordering::Relaxed) {
            if let (Some(out), Some(f)) = (&a.output, format) {
                // A failed dump costs the dump, never the recording.
                if let Err(e) = view_to(&o, out, f) {
                    say(format_args!(
                        "ringtrace: SIGUSR1 dump to {} failed: {e}; recording goes on",
                        out.display()
                    ));
                }
            }
        }
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) => {}
            Err(e) => return Err(failed(path, format!("waiting for the program: {e}"))),
        }
        if stop_waiting() {
            say(format_args!(
                "ringtrace: second signal: not waiting for {program_name} (pid {}), which \
                 still runs; writing what it wrote so far",
                child.id()
            ));
            break None;
        }
        std::thread::sleep(Duration::from_millis(if live { 2 } else { 20 }));
    };
    // Forked children of the program may still write: wait for them (until
    // interrupted, or `--wait-children`). Only for processes we started:
    // a process-table entry naming another live process (scribbled memory,
    // or an unrelated program that attached) is not waited for.
    let mut warned = false;
    let mut ignored: Vec<u32> = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(a.wait_children);
    while status.is_some() {
        reap_orphans();
        let (_, procs) = o.state();
        let mut ours = 0;
        for p in procs.iter().filter(|p| p.state == ProcState::Running) {
            if started_by(me, p) {
                ours += 1;
            } else if !ignored.contains(&p.pid) && ignored.len() < 64 {
                ignored.push(p.pid);
                say(format_args!(
                    "ringtrace: session {}: writer process {} was not started by this record: \
                     not waited for",
                    path.display(),
                    p.pid
                ));
            }
        }
        if ours == 0 || STOP_SIGNALS.load(Ordering::Relaxed) > 0 {
            break;
        }
        if Instant::now() >= give_up {
            say(format_args!(
                "ringtrace: {ours} writer process(es) still running after --wait-children {}s: \
                 reading what they wrote so far",
                a.wait_children
            ));
            break;
        }
        if !warned {
            say(format_args!(
                "ringtrace: the program exited; waiting for its other writer processes \
                 (Ctrl-C stops)"
            ));
            warned = true;
        }
        o.tracer.import_session_tables();
        poll(&mut drain, &mut write_error);
        std::thread::sleep(Duration::from_millis(20));
    }
    let msg = o.post_mortem();
    if let Some(m) = &msg {
        say(format_args!("ringtrace: {m}"));
    }
    let code = match status {
        Some(s) => {
            use std::os::unix::process::ExitStatusExt as _;
            match (s.code(), s.signal()) {
                (Some(c), _) => {
                    say(format_args!("ringtrace: {program_name} exited: {s}"));
                    (c & 0xff) as u8
                }
                (None, Some(sig)) => {
                    say(format_args!(
                        "ringtrace: {program_name} killed by {}{}",
                        signal_name(sig),
                        if s.core_dumped() {
                            " (core dumped)"
                        } else {
                            ""
                        }
                    ));
                    128u8.saturating_add(sig as u8)
                }
                (None, None) => {
                    say(format_args!("ringtrace: {program_name} ended: {s}"));
                    1
                }
            }
        }
        None => 128u8.saturating_add(LAST_STOP.load(Ordering::Relaxed) as u8),
    };
    if o.state().0 == SessionState::Waiting {
        say(format_args!(
            "ringtrace: warning: {program_name} never attached to the session: is it linked \
             with ringtrace, and did it record an event? (it attaches on its first event, \
             through {SESSION_ENV}); the trace is empty"
        ));
    }
    let (Some(out), Some(f)) = (&a.output, format) else {
        return Ok(RecordEnd {
            status: code,
            failed: false,
        });
    };
    o.tracer.import_session_tables();
    let finished = match drain {
        Some(mut d) => {
            let r = d.poll_all().map(|_| d.stats());
            r.and_then(|stats| {
                d.finish_spooled(f.export()).map(|rec| {
                    note_undecodable(&rec, out);
                    stats
                })
            })
            .map_err(|e| e.to_string())
        }
        None if live => Err(write_error.unwrap_or_default()),
        None => export(&o, out, f, "writing").map_err(|e| e.to_string()),
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    match finished {
        Ok(stats) => {
            summary(&o, &stats, out);
            Ok(RecordEnd {
                status: code,
                failed: false,
            })
        }
        Err(e) => {
            let files = SpoolFiles::new(out);
            say(format_args!(
                "ringtrace: error: {} could not be written: {e}",
                out.display()
            ));
            if files.meta().exists() {
                say(format_args!(
                    "ringtrace: what was read before is spooled in {}.meta and {}.cpu*: \
                     once there is room, write it with:\n  ringtrace recover {}",
                    out.display(),
                    out.display(),
                    out.display()
                ));
            }
            say(format_args!(
                "ringtrace: the events not read yet stay in the session; save them with:\n  \
                 ringtrace extract {} -o {}",
                path.display(),
                rest_name(out).display()
            ));
            Ok(RecordEnd {
                status: if code == 0 { 1 } else { code },
                failed: true,
            })
        }
    }
}

/// Reaps our exited children (descendants of the program re-parented to
/// us), without blocking; bounded.
fn reap_orphans() {
    for _ in 0..1024 {
        let mut st = 0;
        // SAFETY: waitpid with WNOHANG on any child; `st` is a valid int.
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) };
        if pid <= 0 {
            break;
        }
    }
}

/// Parent pid and start time of `pid` from `/proc/PID/stat`.
fn parent_and_start(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some((f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

/// Whether writer process `p` was started by this process `me` (directly
/// or not): its start time is the one it registered (a known, non-zero
/// one: not a later process reusing the pid), and its parents lead to us
/// within a bounded walk (we are the subreaper of the program's orphans).
fn started_by(me: u32, p: &ProcInfo) -> bool {
    let Some((mut parent, start)) = parent_and_start(p.pid) else {
        return false;
    };
    if p.start_time == 0 || start != p.start_time {
        return false;
    }
    for _ in 0..64 {
        if parent == me {
            return true;
        }
        if parent <= 1 {
            return false;
        }
        match parent_and_start(parent) {
            Some((pp, _)) => parent = pp,
            None => return false,
        }
    }
    false
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1}M", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{}K", bytes.div_ceil(1024))
    }
}

/// `ringtrace list`.
pub fn list() -> Result<()> {
    let all = list_sessions();
    let mut out = std::io::stdout().lock();
    let w = |out: &mut std::io::StdoutLock<'_>, s: String| {
        let _ = writeln!(out, "{s}");
    };
    if all.is_empty() {
        w(
            &mut out,
            format!("no sessions in {}", session_dir().display()),
        );
        return Ok(());
    }
    w(
        &mut out,
        format!(
            "{:<44} {:>8} {:<8} {:>8} {:>6}  PROCESSES",
            "SESSION", "PID", "STATE", "SIZE", "OWNER"
        ),
    );
    for l in all {
        let (state, procs) = match &l.state {
            Ok((s, p)) => (
                s.to_string(),
                p.iter()
                    .map(|p| {
                        format!(
                            "{}:{}",
                            p.pid,
                            match p.state {
                                ProcState::Running => "running",
                                ProcState::Exited => "exited",
                                ProcState::Dead => "dead",
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Err(e) => ("?".to_string(), e.clone()),
        };
        w(
            &mut out,
            format!(
                "{:<44} {:>8} {:<8} {:>8} {:>6}  {}",
                l.path.display(),
                l.creator_pid.map_or("-".into(), |p| p.to_string()),
                state,
                human(l.size),
                l.owner,
                procs
            ),
        );
    }
    Ok(())
}

/// Output buffer of `ringtrace pipe`.
const PIPE_BUFFER: usize = 64 * 1024;

/// `ringtrace pipe`.
pub fn pipe(a: SessionArg) -> Result<()> {
    let o = Opened::open(&a.session)?;
    o.check_readers(a.force)?;
    install(libc::SIGINT, on_stop);
    install(libc::SIGTERM, on_stop);
    let stdout = std::io::stdout();
    // Lines are collected in one reused buffer (`Pipe::read_lines_into`)
    // and written PIPE_BUFFER bytes at a time: stdout alone is
    // line-buffered, one write(2) per event, which is what kept this reader
    // behind a busy program. What is collected is written whenever the
    // rings are caught up (below) and at the end, so a live reader still
    // sees each line as soon as no more are waiting.
    let mut out = std::io::BufWriter::with_capacity(PIPE_BUFFER, stdout.lock());
    let werr = |e: std::io::Error| -> SessionCmdError {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STOP.store(true, Ordering::Relaxed);
        }
        SessionCmdError::Usage(format!("writing output: {e}"))
    };
    let mut pipe = o.tracer.pipe();
    let rerr = |e: ringtrace_ring::ReadError| failed(&o.path, format!("reading: {e}"));
    let mut last_import = Instant::now() - Duration::from_secs(1);
    let mut finishing = false;
    // A batch of lines, reused: no allocation per event.
    let mut text = String::with_capacity(PIPE_BUFFER + 4096);
    // Refused events belong to no ring: a line of their own.
    let mut refused_seen = 0;
    let mut refused_line = |out: &mut dyn Write| {
        let now = o.tracer.session_refused().map_or(0, |r| r.events());
        if now > refused_seen {
            let _ = writeln!(
                out,
                "[LOST {} EVENTS: refused before reaching a ring]",
                now - refused_seen
            );
            refused_seen = now;
        }
    };
    while !STOP.load(Ordering::Relaxed) {
        if last_import.elapsed() >= Duration::from_millis(50) {
            o.tracer.import_session_tables();
            refused_line(&mut out);
            last_import = Instant::now();
            let st = o.state().0;
            if !finishing && matches!(st, SessionState::Exited | SessionState::Dead) {
                // Read what is left after the repair, then stop.
                if let Some(m) = o.post_mortem() {
                    eprintln!("ringtrace: {m}");
                }
                o.tracer.import_session_tables();
                finishing = true;
            }
        }
        text.clear();
        let got = pipe.read_lines_into(&mut text, PIPE_BUFFER).map_err(rerr)?;
        // A batch as large as the buffer goes past it in one write(2).
        if let Err(e) = out.write_all(text.as_bytes()) {
            return match werr(e) {
                _ if STOP.load(Ordering::Relaxed) => Ok(()),
                e => Err(e),
            };
        }
        match got {
            0 if finishing => break,
            n if n > 0 && text.len() >= PIPE_BUFFER => {}
            _ => {
                let _ = out.flush();
                if let Some(l) = pipe
                    .next_line_timeout(Duration::from_millis(20))
                    .map_err(rerr)?
                {
                    out.write_all(l.as_bytes()).map_err(werr)?;
                }
            }
        }
    }
    for r in 0..o.tracer.max_contexts() {
        let n = pipe.pending_losses(r);
        if n > 0 {
            let _ = writeln!(out, "CPU:{r} [LOST {n} EVENTS]");
        }
    }
    refused_line(&mut out);
    let _ = out.flush();
    if finishing {
        eprintln!(
            "ringtrace: session {}: no writer left; end of trace",
            o.path.display()
        );
    }
    Ok(())
}

/// Installs the stop handlers of the views: SIGINT, SIGTERM and SIGHUP end
/// the read between two events (never while a ring's `busy` word is held,
/// which would make the session's readers wait for it to go stale).
fn stop_views_on_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        install(sig, on_stop);
    }
}

/// `ringtrace show`: the live view in text, read in place (see the module
/// docs).
pub fn show(session: &str) -> Result<()> {
    let o = Opened::open(session)?;
    let state = o.state().0;
    say_if_dead(&o, state);
    stop_views_on_signals();
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let _ = write!(out, "{}", o.tracer.header_text(Default::default()));
    let mut view = o.tracer.view();
    let mut n = 0u64;
    let mut damaged = 0usize;
    while !STOP.load(Ordering::Relaxed) {
        match view.next_line() {
            Ok(Some(l)) => {
                if let Err(e) = out.write_all(l.as_bytes()) {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        return Ok(());
                    }
                    return Err(SessionCmdError::Usage(format!("writing output: {e}")));
                }
                n += 1;
            }
            Ok(None) => break,
            Err(e) => {
                // That ring is not read further; the others go on. Each
                // ring fails at most once.
                damaged += 1;
                eprintln!(
                    "ringtrace: session {}: {e}; that context is not read further",
                    o.path.display()
                );
                if damaged > o.tracer.max_contexts() {
                    break;
                }
            }
        }
    }
    let _ = out.flush();
    let contexts = 0..o.tracer.max_contexts();
    let lost: u64 = contexts.clone().map(|r| view.lost(r)).sum();
    let at_end: u64 = contexts.map(|r| view.skipped_at_end(r)).sum();
    eprintln!(
        "ringtrace: session {} ({state}): {n} events; {lost} lost between them (each a \
         [LOST] line: overwritten or consumed while read, or dropped by the writers){}{}",
        o.path.display(),
        skipped_at_end_text(at_end),
        if STOP.load(Ordering::Relaxed) {
            "; interrupted"
        } else {
            ""
        }
    );
    Ok(())
}

/// `ringtrace stat`.
pub fn stat(session: &str) -> Result<()> {
    let o = Opened::open(session)?;
    let (state, procs) = o.state();
    let mut out = std::io::stdout().lock();
    let l = o.tracer.config();
    let _ = writeln!(out, "session: {}", o.path.display());
    let _ = writeln!(
        out,
        "state: {state}{}",
        if state == SessionState::Dead {
            " (a writer died without detaching: read it with show or extract)"
        } else {
            ""
        }
    );
    for p in &procs {
        let _ = writeln!(out, "process {}: {:?}", p.pid, p.state);
    }
    if let Some((slots, lost)) = o.tracer.session_reclaimed().filter(|r| r.0 > 0) {
        let _ = writeln!(
            out,
            "contexts reclaimed from dead writer processes: {slots} ({lost} event(s) they were \
             writing counted as dropped)"
        );
    }
    if let Some(m) = o.refusals() {
        let _ = writeln!(out, "refused: {m}");
    }
    let imp = o.tracer.import_session_tables();
    if o.table_full > 0 || imp.malformed > 0 {
        let _ = writeln!(
            out,
            "tables: {} records the writers could not add (full), {} malformed skipped",
            o.table_full, imp.malformed
        );
    }
    let _ = writeln!(
        out,
        "clock: {}  page size: {}  contexts: {}  mode: {:?}",
        o.tracer.clock().name(),
        l.page_size,
        l.max_contexts,
        o.tracer.ring_buffer().mode()
    );
    for r in 0..o.tracer.max_contexts() {
        let Ok(s) = o.tracer.ring_stats(r) else {
            continue;
        };
        if s.committed == 0 && s.dropped == 0 && s.refused == 0 && s.corruptions == 0 {
            continue;
        }
        let tid = o.tracer.context_tid(r).unwrap_or(0);
        let comm = o.tracer.comm(tid).unwrap_or_else(|| "<...>".into());
        let _ = writeln!(out, "CPU {r} ({comm}-{tid}):");
        match o.tracer.stats_text(r) {
            Ok(t) => {
                let _ = write!(out, "{t}");
            }
            Err(e) => {
                let _ = writeln!(out, "  unreadable: {e}");
            }
        }
        if s.corruptions > 0 {
            let _ = writeln!(out, "corruptions: {}", s.corruptions);
        }
    }
    let _ = out.flush();
    Ok(())
}

/// `ringtrace extract`.
pub fn extract(a: SessionOutArg) -> Result<()> {
    let format =
        Format::resolve(&a.output, a.format).map_err(|e| SessionCmdError::Usage(e.to_string()))?;
    let o = Opened::open(&a.session)?;
    o.check_readers(a.force)?;
    if let Some(m) = o.post_mortem() {
        eprintln!("ringtrace: {m}");
    }
    let stats = export(&o, &a.output, format, "extracting")?;
    summary(&o, &stats, &a.output);
    Ok(())
}

/// `ringtrace snapshot`: the live view to a file, read in place (see the
/// module docs).
pub fn snapshot(a: SessionOutArg) -> Result<()> {
    let format =
        Format::resolve(&a.output, a.format).map_err(|e| SessionCmdError::Usage(e.to_string()))?;
    let o = Opened::open(&a.session)?;
    say_if_dead(&o, o.state().0);
    stop_views_on_signals();
    view_to(&o, &a.output, format)?;
    eprintln!("ringtrace: session {} is {}", o.path.display(), o.state().0);
    Ok(())
}

/// A view reads in place and repairs nothing: after a writer died in the
/// middle of a write, the events from that write on are not committed, so
/// not shown. Says so, and what reads them.
fn say_if_dead(o: &Opened, state: SessionState) {
    if state == SessionState::Dead {
        eprintln!(
            "ringtrace: session {}: a writer died without detaching; if it left a write in \
             flight (not repaired yet), that write and the events after it on its context \
             are not shown here (`ringtrace extract` repairs the session and reads them)",
            o.path.display()
        );
    }
}

/// What a view skipped after each context's last event shown: lost, or
/// written after the view began (its reader cannot tell them apart).
fn skipped_at_end_text(n: u64) -> String {
    if n == 0 {
        return String::new();
    }
    format!(
        "; after the last event of their context, {n} more skipped (written after the view \
         began, or overwritten before it reached them)"
    )
}

/// Writes the live view of `o` to `out` (`snapshot`, and `record`'s
/// flight-recorder dump on SIGUSR1) and prints what it read.
fn view_to(o: &Opened, out: &Path, format: Format) -> Result<()> {
    let file = create_output(out)?;
    o.tracer.import_session_tables();
    let (mut w, st) = o
        .tracer
        .export_view(file, format.export(), &STOP)
        .map_err(|source| SessionCmdError::Export {
            path: o.path.display().to_string(),
            source,
        })?;
    w.flush()
        .map_err(|e| SessionCmdError::Usage(format!("writing {}: {e}", out.display())))?;
    for (r, e) in &st.damaged {
        eprintln!(
            "ringtrace: session {}: context {r}: {e}; not read further",
            o.path.display()
        );
    }
    let stats = DrainStats {
        events: st.events,
        lost_events: st.lost,
        ..DrainStats::default()
    };
    summary(o, &stats, out);
    eprintln!(
        "ringtrace: read in place: {} lost between the events written (marked in the file: \
         overwritten or consumed while read, or dropped by the writers){}{}{}",
        st.lost,
        skipped_at_end_text(st.skipped_at_end),
        if st.undecodable > 0 {
            format!("; {} record(s) could not be decoded", st.undecodable)
        } else {
            String::new()
        },
        if st.stopped { "; interrupted" } else { "" }
    );
    Ok(())
}

/// `ringtrace clear`.
///
/// A reset waits (bounded) for the writes in flight to commit. A writer
/// that died mid-write never commits: when no writer process of the
/// session runs any more and one died, the rings are repaired first
/// (`post_mortem`: its in-flight write is counted as lost), so the reset
/// does not wait for it.
pub fn clear(session: &str) -> Result<()> {
    let o = Opened::open(session)?;
    if let Some(m) = o.post_mortem() {
        eprintln!("ringtrace: {m}");
    }
    o.tracer.ring_buffer().reset_all().map_err(|e| {
        let hint = match e {
            ringtrace_ring::ControlError::WriteInFlight { .. } => {
                "; a writer process of the session still runs: try again when its write \
                 commits, or when it has exited"
            }
            _ => "",
        };
        failed(&o.path, format!("clearing: {e}{hint}"))
    })?;
    eprintln!("ringtrace: session {}: cleared", o.path.display());
    Ok(())
}

/// `ringtrace remove`.
pub fn remove(a: SessionArg) -> Result<()> {
    let path = resolve(&a.session)?;
    let s = Session::open(&path)?;
    if s.state() == SessionState::Alive && !a.force {
        let pids: Vec<String> = s
            .processes()
            .iter()
            .filter(|p| p.state == ProcState::Running)
            .map(|p| p.pid.to_string())
            .collect();
        return Err(failed(
            &path,
            format!(
                "process {} still writes it; remove it anyway with --force",
                pids.join(", ")
            ),
        ));
    }
    s.remove()?;
    eprintln!("ringtrace: removed {}", path.display());
    Ok(())
}
