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
//! non-consuming:  show, snapshot             (read a private copy of the file)
//!                 stat, list                 (counters only)
//! ```
//!
//! `show` and `snapshot` never wait on the live session: they copy the file
//! and read the copy, after clearing its reader lock and `busy` words (a
//! scribbled or dead holder's word would otherwise cost the 10 s takeover
//! per ring), repairing in-flight writes and checking each ring's page
//! structure (`check_quiet_ring`): a damaged ring is reported and not
//! read. `stat` reads counters only. Every loop over shared data is
//! bounded by the validated geometry, not by what the memory says.
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
use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use ringtrace::clock::ClockKind;
use ringtrace::export::{Drain, DrainStats, ExportError};
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
    /// (all contexts together), read only when the program ends or when
    /// ringtrace gets SIGUSR1 (then the output file is rewritten). Implies
    /// --take-over-exited.
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
    /// Keep the session file after the program ends (always kept without -o).
    #[arg(long)]
    pub keep: bool,
    /// After the program exits, wait at most SECS for the processes it
    /// forked that still write into the session (only processes this
    /// `record` started, directly or not, are waited for).
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub wait_children: u64,
    /// The program and its arguments.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<OsString>,
}

/// A session argument with the dead-reader override.
#[derive(Debug, Args)]
pub struct SessionArg {
    /// Session: a path, its name, the creator's pid, or the file name.
    pub session: String,
    /// Take the reader locks even if another reader holds them (one that
    /// died: a killed `ringtrace pipe`).
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
    /// Take the reader locks even if another reader holds them.
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
                    buf.force_release_readers();
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

/// A private copy of a session file, for non-consuming reads: the copy's
/// rings are read (consumed) instead of the live ones. Writers in flight
/// during the copy look, in the copy, like writers that died: their
/// events are counted as lost.
fn copy_of(arg: &str) -> Result<(tempfile::NamedTempFile, Opened, String)> {
    let path = resolve(arg)?;
    // Open first: checks owner, mode and header of the original.
    let original = Session::open(&path)?;
    let state = original.state();
    let tmp = tempfile::Builder::new()
        .prefix(".ringtrace-copy-")
        .tempfile_in(session_dir())
        .map_err(|e| failed(&path, format!("creating a private copy: {e}")))?;
    let mut src = original.file();
    std::io::copy(&mut src, &mut tmp.as_file())
        .map_err(|e| failed(&path, format!("copying the session: {e}")))?;
    let copy = Session::open(tmp.path()).map_err(|e| failed(&path, format!("its copy: {e}")))?;
    let opened = Opened::from_session(copy)?;
    let buf = opened.tracer.ring_buffer();
    buf.force_release_readers();
    for r in 0..buf.rings() {
        // SAFETY: the copy is private to this process and nothing writes
        // it: a reservation in flight in the copy has no live writer.
        let _ = unsafe { buf.recover_dead_writer(r) };
        // A ring whose pages do not form a ring (scribbled memory) is not
        // read: a consumer would retry on it as if a writer were moving
        // its head (the copy has none), once per event of the other rings.
        if let Err(e) = buf.check_quiet_ring(r) {
            // SAFETY: the copy is private: nobody else reads or writes it.
            let _ = unsafe { buf.mute_ring(r) };
            let events = buf.stats(r).map(|s| s.entries).unwrap_or(0);
            eprintln!(
                "ringtrace: session {}: context {r} is damaged, not read ({e}; \
                 about {events} event(s) in it)",
                path.display()
            );
        }
    }
    // Errors name the original.
    Ok((
        tmp,
        Opened {
            tracer: opened.tracer,
            path,
            table_full: opened.table_full,
        },
        state.to_string(),
    ))
}

fn create_output(path: &Path) -> Result<BufWriter<File>> {
    let f = File::create(path)
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

/// Drains `o` completely into `out`; returns the drain's counters.
fn export(o: &Opened, out: &Path, format: Format, msg: &'static str) -> Result<DrainStats> {
    let file = create_output(out)?;
    let bar = progress_bar(msg);
    o.tracer.import_session_tables();
    let mut drain = o.tracer.drain();
    attach_progress(&mut drain, &bar);
    let ex = |source| SessionCmdError::Export {
        path: o.path.display().to_string(),
        source,
    };
    drain.poll_all().map_err(ex)?;
    let stats = drain.stats();
    let mut w = drain.finish(file, format.export()).map_err(ex)?;
    w.flush()
        .map_err(|e| SessionCmdError::Usage(format!("writing {}: {e}", out.display())))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(stats)
}

fn summary(o: &Opened, stats: &DrainStats, out: &Path) {
    eprintln!(
        "ringtrace: {}: {} events, {} lost (ring counters: {} lost) -> {}",
        o.path.display(),
        stats.events,
        stats.lost_events,
        o.ring_losses(),
        out.display()
    );
}

/// `ringtrace record`.
pub fn record(a: RecordArgs) -> Result<()> {
    let format = match &a.output {
        Some(o) => {
            Some(Format::resolve(o, a.format).map_err(|e| SessionCmdError::Usage(e.to_string()))?)
        }
        None => None,
    };
    let Some(program) = a.command.first() else {
        return Err(SessionCmdError::Usage("record: no program given".into()));
    };
    let name = a.name.clone().unwrap_or_else(|| {
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
            .take(40)
            .collect();
        if clean.is_empty() {
            "session".into()
        } else {
            clean
        }
    });
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
    if let Some(mb) = a.flight_recorder {
        cfg.mode = Mode::Overwrite;
        cfg.take_over_exited = true;
        cfg.bytes_per_context =
            (mb.saturating_mul(1 << 20) / a.contexts.max(1)).max(2 * a.page_size);
    }
    let session = Session::create(&cfg)?;
    session.set_recorder_pid(std::process::id());
    let path = session.path().to_path_buf();
    let keep = a.keep || a.output.is_none();
    let result = record_in(&a, session, format, &path);
    if !keep {
        let _ = std::fs::remove_file(&path);
    } else {
        eprintln!(
            "ringtrace: session kept: {} (`ringtrace remove` deletes it)",
            path.display()
        );
    }
    result
}

fn record_in(a: &RecordArgs, session: Session, format: Option<Format>, path: &Path) -> Result<()> {
    let o = Opened::from_session(session)?;
    install(libc::SIGINT, on_stop);
    install(libc::SIGTERM, on_stop);
    install(libc::SIGUSR1, on_dump);
    // Orphaned descendants of the program are re-parented to us (not to
    // init): they stay recognisably ours, and we reap them.
    // SAFETY: prctl with an integer argument; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
    let me = std::process::id();
    let mut child = Command::new(&a.command[0])
        .args(&a.command[1..])
        .env(SESSION_ENV, path)
        .spawn()
        .map_err(|e| {
            failed(
                path,
                format!("starting {}: {e}", Path::new(&a.command[0]).display()),
            )
        })?;
    eprintln!(
        "ringtrace: session {} recording pid {}",
        path.display(),
        child.id()
    );
    let live = a.output.is_some() && a.flight_recorder.is_none();
    let ex = |source| SessionCmdError::Export {
        path: path.display().to_string(),
        source,
    };
    let bar = if live {
        progress_bar("recording")
    } else {
        None
    };
    let mut drain = live.then(|| o.tracer.drain());
    if let Some(d) = &mut drain {
        attach_progress(d, &bar);
    }
    let status = loop {
        o.tracer.import_session_tables();
        if let Some(d) = &mut drain {
            d.poll().map_err(ex)?;
        }
        if DUMP.swap(false, Ordering::Relaxed) {
            if let (Some(out), Some(f)) = (&a.output, format) {
                let (_tmp, copy, _) = copy_of(&path.display().to_string())?;
                let st = export(&copy, out, f, "snapshot")?;
                summary(&copy, &st, out);
            }
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(failed(path, format!("waiting for the program: {e}"))),
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
    loop {
        reap_orphans();
        let (_, procs) = o.state();
        let mut ours = 0;
        for p in procs.iter().filter(|p| p.state == ProcState::Running) {
            if started_by(me, p) {
                ours += 1;
            } else if !ignored.contains(&p.pid) && ignored.len() < 64 {
                ignored.push(p.pid);
                eprintln!(
                    "ringtrace: session {}: writer process {} was not started by this record: \
                     not waited for",
                    path.display(),
                    p.pid
                );
            }
        }
        if ours == 0 || STOP.load(Ordering::Relaxed) {
            break;
        }
        if Instant::now() >= give_up {
            eprintln!(
                "ringtrace: {ours} writer process(es) still running after --wait-children {}s: \
                 reading what they wrote so far",
                a.wait_children
            );
            break;
        }
        if !warned {
            eprintln!("ringtrace: the program exited; waiting for its other writer processes (Ctrl-C stops)");
            warned = true;
        }
        o.tracer.import_session_tables();
        if let Some(d) = &mut drain {
            d.poll().map_err(ex)?;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let msg = o.post_mortem();
    if let Some(m) = &msg {
        eprintln!("ringtrace: {m}");
    }
    eprintln!(
        "ringtrace: {} exited: {status}",
        Path::new(&a.command[0]).display()
    );
    let (Some(out), Some(f)) = (&a.output, format) else {
        return Ok(());
    };
    o.tracer.import_session_tables();
    let stats = match drain {
        Some(mut d) => {
            let file = create_output(out)?;
            d.poll_all().map_err(ex)?;
            let stats = d.stats();
            let mut w = d.finish(file, f.export()).map_err(ex)?;
            w.flush()
                .map_err(|e| SessionCmdError::Usage(format!("writing {}: {e}", out.display())))?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            stats
        }
        None => export(&o, out, f, "writing")?,
    };
    summary(&o, &stats, out);
    Ok(())
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

/// `ringtrace pipe`.
pub fn pipe(a: SessionArg) -> Result<()> {
    let o = Opened::open(&a.session)?;
    o.check_readers(a.force)?;
    install(libc::SIGINT, on_stop);
    install(libc::SIGTERM, on_stop);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
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
    while !STOP.load(Ordering::Relaxed) {
        if last_import.elapsed() >= Duration::from_millis(50) {
            o.tracer.import_session_tables();
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
        match pipe.next_line().map_err(rerr)? {
            Some(l) => {
                if let Err(e) = out.write_all(l.as_bytes()) {
                    return match werr(e) {
                        _ if STOP.load(Ordering::Relaxed) => Ok(()),
                        e => Err(e),
                    };
                }
            }
            None if finishing => break,
            None => {
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
    let _ = out.flush();
    if finishing {
        eprintln!(
            "ringtrace: session {}: no writer left; end of trace",
            o.path.display()
        );
    }
    Ok(())
}

/// Read errors (damaged pages, each skipped) `show` reports before it
/// stops reading.
const MAX_READ_ERRORS: u32 = 64;

/// `ringtrace show`.
pub fn show(session: &str) -> Result<()> {
    let (_tmp, o, state) = copy_of(session)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let buf = o.tracer.ring_buffer();
    // Bounded: no more events than the rings can hold (8 bytes the least).
    let cap = buf.rings() as u64
        * buf.config().pages_per_ring as u64
        * (buf.config().page_size as u64 / 8)
        + buf.rings() as u64;
    let _ = write!(out, "{}", o.tracer.header_text(Default::default()));
    let mut pipe = o.tracer.pipe();
    let mut n = 0u64;
    let mut errors = 0u32;
    while n < cap {
        match pipe.next_line() {
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
                // The reader skips the damaged page and counts it: go on,
                // a bounded number of times (a damaged ring may fail again).
                errors += 1;
                eprintln!("ringtrace: session {}: {e}", o.path.display());
                if errors >= MAX_READ_ERRORS {
                    eprintln!(
                        "ringtrace: session {}: reading stopped after {errors} errors",
                        o.path.display()
                    );
                    break;
                }
            }
        }
    }
    for r in 0..o.tracer.max_contexts() {
        let lost = pipe.pending_losses(r);
        if lost > 0 {
            let _ = writeln!(out, "CPU:{r} [LOST {lost} EVENTS]");
        }
    }
    let _ = out.flush();
    eprintln!(
        "ringtrace: session {} ({state}): {n} events",
        o.path.display()
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

/// `ringtrace snapshot`.
pub fn snapshot(a: SessionOutArg) -> Result<()> {
    let format =
        Format::resolve(&a.output, a.format).map_err(|e| SessionCmdError::Usage(e.to_string()))?;
    let (_tmp, o, state) = copy_of(&a.session)?;
    let stats = export(&o, &a.output, format, "snapshot")?;
    eprintln!("ringtrace: session {} is {state}", o.path.display());
    summary(&o, &stats, &a.output);
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
