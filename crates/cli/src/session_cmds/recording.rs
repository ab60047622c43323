//! `ringtrace record`'s recording: runs the program with the session in
//! its environment, reads the session while it runs, and writes the
//! output.
//!
//! Terms: *writer processes* are the processes that attached to the
//! session (the program and what it forks); the *live drain* reads the
//! session while the program runs and spools to the output; the flight
//! recorder reads only at the end and on SIGUSR1 (then it writes the live
//! view).
//!
//! Contract: the output is made before the program starts (a bad output
//! path fails before anything runs); a failed write stops the reading,
//! never the program, and the session is then kept with the commands that
//! save what was read and what is left. SIGINT, SIGTERM and SIGHUP sent to
//! `record` by a process are forwarded to the program (the terminal's
//! reached its process group already); a second one stops waiting for it.
//! After the program exits, `record` waits only for writer processes it
//! started (their start time matches and their parents lead back to it:
//! it is the subreaper of the program's orphans), and at most
//! `--wait-children` seconds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ringtrace::export::{Drain, DrainStats, SpoolFiles};
use ringtrace::session::{ProcInfo, ProcState, Session, SessionState, SESSION_ENV};

use super::opened::Opened;
use super::output::{export, note_undecodable, say, summary, unread_rings};
use super::record::RecordArgs;
use super::views::view_to;
use super::{failed, install, on_dump, Result, SessionCmdError, DUMP};
use crate::progress::{attach_progress, progress_bar};
use crate::signals::{self, signal_name, Handler};
use crate::Format;

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

/// How a recording ended.
pub(super) struct RecordEnd {
    /// `record`'s exit status.
    pub(super) status: u8,
    /// The trace could not be written whole: the session is kept.
    pub(super) failed: bool,
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

/// One recording in progress: the program's command line, the session read
/// while it runs, and the output being written.
struct Recording<'a> {
    a: &'a RecordArgs,
    o: &'a Opened,
    /// The session file.
    path: &'a Path,
    /// The output's format, when there is an output.
    format: Option<Format>,
    /// The program as named on the command line, for messages.
    program_name: String,
    /// The output is drained while the program runs (not the flight
    /// recorder, which reads only at the end and on SIGUSR1).
    live: bool,
    /// The live drain; gone once writing failed.
    drain: Option<Drain<'a>>,
    /// Why the live drain stopped. A write error stops the reading, never
    /// the program: its events stay in the session (kept), and the end
    /// says how to save them.
    write_error: Option<String>,
}

/// Runs the program of `a` with `session` (at `path`) and writes the
/// output (in `format`) when there is one.
pub(super) fn record_in(
    a: &RecordArgs,
    session: Session,
    format: Option<Format>,
    path: &Path,
) -> Result<RecordEnd> {
    let o = Opened::from_session(session)?;
    let mut rec = Recording::prepare_output(a, &o, format, path)?;
    install_record_signals();
    let mut kernel = crate::kernel_cmd::start(
        &a.kernel,
        &rec.program_name,
        o.tracer.clock().kind(),
        a.page_size,
        a.buffer_kb,
    );
    let mut child = rec.start_program()?;
    crate::kernel_cmd::program_started(&mut kernel, &a.kernel, child.id());
    let bar = if rec.live {
        progress_bar("recording")
    } else {
        None
    };
    if let Some(d) = &mut rec.drain {
        attach_progress(d, &bar);
    }
    let status = rec.wait_for_program(&mut child)?;
    if status.is_some() {
        rec.wait_for_other_writers();
    }
    if let Some(m) = o.post_mortem() {
        say(format_args!("ringtrace: {m}"));
    }
    let code = rec.exit_code(status);
    let kernel = crate::kernel_cmd::stop(kernel);
    rec.warn_if_never_attached();
    let end = rec.write_output(code, bar)?;
    crate::kernel_cmd::merge(kernel, a.output.as_deref(), !end.failed);
    Ok(end)
}

/// `record`'s handlers: SIGINT, SIGTERM and SIGHUP are forwarded to the
/// program ([`on_record_signal`]), SIGUSR1 asks for a flight-recorder dump.
fn install_record_signals() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // A failure leaves the default action: record then ends with the
        // signal, and the session is kept for `extract`.
        let _ = signals::install(sig, Handler::Info(on_record_signal));
    }
    install(libc::SIGUSR1, on_dump);
}

impl<'a> Recording<'a> {
    /// Makes (and so checks) the output before the program starts: the
    /// live drain spools next to it; the flight recorder only writes the
    /// placeholder now and drains at the end (or on SIGUSR1).
    fn prepare_output(
        a: &'a RecordArgs,
        o: &'a Opened,
        format: Option<Format>,
        path: &'a Path,
    ) -> Result<Recording<'a>> {
        let program_name = Path::new(&a.command[0]).display().to_string();
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
        Ok(Recording {
            a,
            o,
            path,
            format,
            program_name,
            live,
            drain,
            write_error: None,
        })
    }

    /// Starts the program with the session in its environment, as our
    /// child; forwards a stop signal that arrived before it ran. A program
    /// that cannot start undoes the output made for it.
    fn start_program(&mut self) -> Result<Child> {
        // Orphaned descendants of the program are re-parented to us (not to
        // init): they stay recognisably ours, and we reap them.
        // SAFETY: prctl with an integer argument; no memory is passed.
        unsafe {
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }
        let spawned = Command::new(&self.a.command[0])
            .args(&self.a.command[1..])
            .env(SESSION_ENV, self.path)
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) => {
                self.drain = None;
                if let Some(out) = &self.a.output {
                    undo_output(out);
                }
                return Err(failed(
                    self.path,
                    format!(
                        "cannot start {}: {e}; nothing was recorded",
                        self.program_name
                    ),
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
            self.path.display(),
            child.id()
        ));
        Ok(child)
    }

    /// Reads the session while the program runs, until it exits (its
    /// status) or a second stop signal says not to wait for it (`None`).
    fn wait_for_program(&mut self, child: &mut Child) -> Result<Option<ExitStatus>> {
        loop {
            self.o.tracer.import_session_tables();
            self.poll();
            self.dump_if_asked();
            match child.try_wait() {
                Ok(Some(s)) => return Ok(Some(s)),
                Ok(None) => {}
                Err(e) => return Err(failed(self.path, format!("waiting for the program: {e}"))),
            }
            if STOP_SIGNALS.load(Ordering::Relaxed) >= 2 {
                say(format_args!(
                    "ringtrace: second signal: not waiting for {} (pid {}), which \
                     still runs; writing what it wrote so far",
                    self.program_name,
                    child.id()
                ));
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(if self.live { 2 } else { 20 }));
        }
    }

    /// Reads what the writers committed since the last call, into the
    /// live drain; a failed write stops the reading (said once).
    fn poll(&mut self) {
        if let Some(d) = &mut self.drain {
            if let Err(e) = d.poll() {
                say(format_args!(
                    "ringtrace: session {}: {e}; reading stopped (the program goes on, \
                     its events stay in the session)",
                    self.path.display()
                ));
                self.write_error = Some(e.to_string());
                self.drain = None;
            }
        }
    }

    /// The flight recorder's dump on SIGUSR1: the live view to the output.
    fn dump_if_asked(&self) {
        if DUMP.swap(false, Ordering::Relaxed) {
            if let (Some(out), Some(f)) = (&self.a.output, self.format) {
                // A failed dump costs the dump, never the recording.
                if let Err(e) = view_to(self.o, out, f) {
                    say(format_args!(
                        "ringtrace: SIGUSR1 dump to {} failed: {e}; recording goes on",
                        out.display()
                    ));
                }
            }
        }
    }

    /// Forked children of the program may still write: waits for them
    /// (until interrupted, or `--wait-children`), reading meanwhile.
    fn wait_for_other_writers(&mut self) {
        let me = std::process::id();
        let mut warned = false;
        let mut ignored: Vec<u32> = Vec::new();
        let give_up = Instant::now() + Duration::from_secs(self.a.wait_children);
        loop {
            reap_orphans();
            let ours = self.our_running_writers(me, &mut ignored);
            if ours == 0 || STOP_SIGNALS.load(Ordering::Relaxed) > 0 {
                break;
            }
            if Instant::now() >= give_up {
                say(format_args!(
                    "ringtrace: {ours} writer process(es) still running after \
                     --wait-children {}s: reading what they wrote so far",
                    self.a.wait_children
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
            self.o.tracer.import_session_tables();
            self.poll();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The running writer processes of the session that this process `me`
    /// started. Only those are waited for: a process-table entry naming
    /// another live process (scribbled memory, or an unrelated program that
    /// attached) is said once (up to 64 of them, in `ignored`) and skipped.
    fn our_running_writers(&self, me: u32, ignored: &mut Vec<u32>) -> usize {
        let (_, procs) = self.o.state();
        let mut ours = 0;
        for p in procs.iter().filter(|p| p.state == ProcState::Running) {
            if started_by(me, p) {
                ours += 1;
            } else if !ignored.contains(&p.pid) && ignored.len() < 64 {
                ignored.push(p.pid);
                say(format_args!(
                    "ringtrace: session {}: writer process {} was not started by this record: \
                     not waited for",
                    self.path.display(),
                    p.pid
                ));
            }
        }
        ours
    }

    /// `record`'s exit status, said: the program's, 128 + the signal that
    /// killed it, or 128 + the stop signal when it was not waited for.
    fn exit_code(&self, status: Option<ExitStatus>) -> u8 {
        use std::os::unix::process::ExitStatusExt as _;
        let program_name = &self.program_name;
        let Some(s) = status else {
            return 128u8.saturating_add(LAST_STOP.load(Ordering::Relaxed) as u8);
        };
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

    /// Says when the program never attached to the session: an empty trace
    /// is then no surprise.
    fn warn_if_never_attached(&self) {
        if self.o.state().0 == SessionState::Waiting {
            say(format_args!(
                "ringtrace: warning: {} never attached to the session: is it linked \
                 with ringtrace, and did it record an event? (it attaches on its first \
                 event, through {SESSION_ENV}); the trace is empty",
                self.program_name
            ));
        }
    }

    /// Writes the output (when there is one) and its summary; when it
    /// cannot be written whole, says how to save what was read and what is
    /// left, and fails `record`'s status.
    fn write_output(mut self, code: u8, bar: Option<ProgressBar>) -> Result<RecordEnd> {
        let (Some(out), Some(f)) = (&self.a.output, self.format) else {
            return Ok(RecordEnd {
                status: code,
                failed: false,
            });
        };
        self.o.tracer.import_session_tables();
        let finished = self.finish(out, f);
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        match finished {
            Ok(stats) => {
                summary(self.o, &stats, out);
                crate::dat_convert::compress_recorded(out, self.a.compression);
                Ok(RecordEnd {
                    status: code,
                    failed: false,
                })
            }
            Err(e) => {
                say_how_to_save(out, self.path, &e);
                Ok(RecordEnd {
                    status: if code == 0 { 1 } else { code },
                    failed: true,
                })
            }
        }
    }

    /// Drains what is left and writes `out` in format `f`: from the live
    /// drain's spool, or (flight recorder) by draining the session now.
    fn finish(&mut self, out: &Path, f: Format) -> std::result::Result<DrainStats, String> {
        match self.drain.take() {
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
            None if self.live => Err(self.write_error.take().unwrap_or_default()),
            None => export(self.o, out, f, "writing").map_err(|e| e.to_string()),
        }
    }
}

/// After `out` could not be written (`e`): where what was read is spooled
/// and how to write it, and how to save what is still in the session at
/// `path`.
fn say_how_to_save(out: &Path, path: &Path, e: &str) {
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
