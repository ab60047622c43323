//! The opened session every session command reads through.
//!
//! Terms: a *writer process* attached to the session and records into its
//! rings; a *consuming reader* (`record`, `pipe`, `extract`) holds a ring's
//! reader lock while it reads; a *dead* writer or reader died without
//! detaching (SIGKILL, a crash).
//!
//! Contract: [`Opened`] reads a session as an ordinary tracer would (the
//! writers' formats and thread names imported). Before a consuming read,
//! [`Opened::check_readers`] takes over the locks of dead readers and
//! refuses a live one; [`Opened::post_mortem`] repairs the rings once no
//! writer runs and one died, so a write in flight is counted as lost, never
//! shown or waited for.

use std::path::PathBuf;

use ringtrace::ring::RingError;
use ringtrace::session::{resolve, ProcInfo, ProcState, Session, SessionState};
use ringtrace::Tracer;

use super::{failed, Result};

/// An opened session, as a reading tracer.
pub(super) struct Opened {
    /// The session, read through an ordinary tracer.
    pub(super) tracer: Tracer,
    /// The session file.
    pub(super) path: PathBuf,
    /// Table appends the writers could not make (tables full), at open.
    pub(super) table_full: u64,
}

impl Opened {
    /// Opens the session named by `arg` (a path, a name, a pid or a file
    /// name: see `ringtrace::session::resolve`).
    pub(super) fn open(arg: &str) -> Result<Opened> {
        let path = resolve(arg)?;
        let session = Session::open(&path)?;
        Self::from_session(session)
    }

    /// Reads `session` through a tracer, its tables imported.
    pub(super) fn from_session(session: Session) -> Result<Opened> {
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

    /// The session's state and writer processes (`Waiting` with none when
    /// the session cannot tell).
    pub(super) fn state(&self) -> (SessionState, Vec<ProcInfo>) {
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
    pub(super) fn check_readers(&self, force: bool) -> Result<()> {
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
                Err(RingError::ReaderHeld { ring, holder }) if force => {
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
                Err(RingError::ReaderHeld { ring, holder }) => {
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
    pub(super) fn post_mortem(&self) -> Option<String> {
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
    pub(super) fn refusals(&self) -> Option<String> {
        let r = self.tracer.session_refused()?;
        if r.events() == 0 && r.untraced_processes == 0 {
            return (r.masked > 0).then(|| masked_note(r.masked));
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
        if r.masked > 0 {
            m.push_str(&format!("; {}", masked_note(r.masked)));
        }
        Some(m)
    }

    /// Sum over the rings of the events lost (overrun, dropped, commit
    /// overrun) according to the ring counters.
    pub(super) fn ring_losses(&self) -> u64 {
        let buf = self.tracer.ring_buffer();
        (0..buf.rings())
            .filter_map(|r| buf.stats(r).ok())
            .map(|s| s.overrun + s.dropped + s.commit_overrun)
            .sum()
    }
}

/// The events not recorded because their context was masked off.
fn masked_note(n: u64) -> String {
    format!(
        "{n} event(s) not recorded: their context was masked off (--context-mask, \
         `ringtrace contexts`)"
    )
}
