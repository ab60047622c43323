//! A tracer on a session: the default tracer's attach from the
//! environment, the writer's and the reader's tracer on a session's rings,
//! and the `Tracer` methods that only make sense on a session (its tables,
//! processes and counters).
//!
//! # Terms
//!
//! - **Writer tracer** ([`Tracer::attach_session`]): registers this process
//!   in the session's process table and publishes the event formats,
//!   printk formats and thread names it uses in the session's tables.
//! - **Reader tracer** ([`Tracer::read_session`]): registers nothing;
//!   imports what the writers published ([`Tracer::import_session_tables`]).
//!
//! # Contract
//!
//! - The session plugs into the tracer through
//!   [`SharedStorage`](crate::tracer::storage::SharedStorage) (a
//!   [`SessionLink`]); the tracer never names a session type.
//! - [`attach_from_env`] never harms the program: a session that cannot be
//!   opened or attached is reported once on stderr and the default tracer
//!   records in process instead.
//! - Every `impl Tracer` item of the session room is in this file.

use crate::sync::Ordering;
use std::path::Path;
use std::sync::Arc;

use super::link;
use super::procs::{processes_of, refused_of, state_of};
use super::SESSION_ENV;
use super::{ProcInfo, Session, SessionLink, SessionRefusals, SessionState, TableEntry};
use crate::event::Registry;
use crate::tracer::storage::SharedStorage;
use crate::tracer::{Tracer, TracerConfig, TracerError};

/// The default tracer's attach: when `RINGTRACE_SESSION` names a session
/// file, a tracer on it (and an `atexit` handler that publishes what is
/// left and marks the process exited). A session that cannot be opened is
/// reported once on stderr and the program traces in process.
pub(crate) fn attach_from_env() -> Option<Tracer> {
    let path = std::env::var_os(SESSION_ENV)?;
    if path.is_empty() {
        return None;
    }
    let t = Session::open(Path::new(&path))
        .map_err(|e| e.to_string())
        .and_then(|s| Tracer::attach_session(s).map_err(|e| e.to_string()));
    match t {
        Ok(t) => {
            extern "C" fn at_exit() {
                if let Some(t) = crate::tracer::global_if_exists() {
                    if let Some(l) = link_of(t) {
                        l.detach();
                    }
                }
            }
            // SAFETY: registers a plain function; it runs at exit() and only
            // publishes table records and stores atomics.
            unsafe {
                libc::atexit(at_exit);
            }
            Some(t)
        }
        Err(e) => {
            eprintln!(
                "ringtrace: {SESSION_ENV}={}: {e}; tracing in process instead",
                Path::new(&path).display()
            );
            None
        }
    }
}

/// A tracer on the rings of `session`, as a writer (registered in its
/// process table, publishing its formats) or as a reader from outside.
fn on_session(session: Session, writer: bool) -> Result<Tracer, TracerError> {
    let l = session.layout().clone();
    let clock = session.clock();
    let (map, buf) = session.into_parts();
    let config = TracerConfig {
        bytes_per_context: l.bytes_per_context,
        page_size: l.page_size,
        mode: l.mode,
        clock: Some(clock),
        max_contexts: l.contexts,
        saved_cmdlines: if writer { 128 } else { 1 << 16 },
        take_over_exited: l.take_over_exited,
        stacktrace: writer && crate::tracer::stack_hook::wanted_by_env(),
    };
    let link: Arc<dyn SharedStorage> = Arc::new(SessionLink::new(map, writer));
    Tracer::assemble(config, buf, Some(link))
}

/// The session link of `t`, if `t` is on a session.
fn link_of(t: &Tracer) -> Option<&SessionLink> {
    t.inner.session()?.as_any().downcast_ref::<SessionLink>()
}

/// What [`Tracer::import_session_tables`] learned.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportStats {
    /// Event types imported.
    pub events: u64,
    /// Printk sites imported.
    pub sites: u64,
    /// Thread names imported.
    pub comms: u64,
    /// Records that did not parse or clashed with what this process knows.
    pub refused: u64,
    /// Malformed records skipped so far (bad offsets, lengths, kinds).
    pub malformed: u64,
}

impl Tracer {
    /// Builds a tracer on the rings of `session` (created by `ringtrace
    /// record` or [`Session::create`]): its geometry, mode and clock come
    /// from the session; `saved_cmdlines` is this process's own table size.
    /// This process registers as a writer of the session; the event
    /// formats, printk formats and thread names it uses are published in
    /// the session's tables. Programs rarely call this: the default tracer
    /// attaches by itself when `RINGTRACE_SESSION` names a session file.
    pub fn attach_session(session: Session) -> Result<Tracer, TracerError> {
        on_session(session, true)
    }

    /// Builds a tracer that reads `session` from outside (the `ringtrace`
    /// command): nothing is registered; call
    /// [`Tracer::import_session_tables`] to learn the writers' event
    /// formats, printk formats and thread names before reading.
    pub fn read_session(session: Session) -> Result<Tracer, TracerError> {
        on_session(session, false)
    }

    /// The session this tracer is built on, if any: its file.
    pub fn session_path(&self) -> Option<&Path> {
        link_of(self).map(|l| l.map.path.as_path())
    }

    /// Reader side of a session: imports the table records committed since
    /// the last call (event formats into the process's event registry,
    /// printk sites into its site table, thread names into this tracer), so
    /// that the pipe, the text output and the exporters decode the writers'
    /// records. Call it before reading, and again as a live program goes on.
    /// Does nothing for a tracer that is not on a session.
    pub fn import_session_tables(&self) -> ImportStats {
        let mut st = ImportStats::default();
        let Some(l) = link_of(self) else {
            return st;
        };
        let (entries, malformed) = l.poll_tables();
        st.malformed = malformed;
        for e in entries {
            match e {
                TableEntry::Event { system, format } => {
                    // A type this process already has (the same name in
                    // the same system under that id) is not imported again.
                    let ok = link::leak_event_type(&system, &format).is_some_and(|ty| {
                        match Registry::global().get(ty.id) {
                            Some(have) => have.name == ty.name && have.system == ty.system,
                            None => Registry::global().register(ty).is_ok(),
                        }
                    });
                    if ok {
                        st.events += 1;
                    } else {
                        st.refused += 1;
                    }
                }
                TableEntry::Printk {
                    id,
                    fmt,
                    file,
                    line,
                } => {
                    if crate::printk::import_site(id, &fmt, &file, line) {
                        st.sites += 1;
                    } else {
                        st.refused += 1;
                    }
                }
                TableEntry::Comm { tid, comm } => {
                    if let Ok(mut c) = self.inner.cmdlines().lock() {
                        c.insert(tid, crate::tracer::Comm::new(&comm));
                    }
                    st.comms += 1;
                }
                TableEntry::Process { tid, pid, name } => {
                    if let Ok(mut c) = self.inner.cmdlines().lock() {
                        c.set_process(tid, pid, crate::tracer::Comm::new(&name));
                    }
                }
            }
        }
        st
    }

    /// Lease slots of this tracer's session taken back from processes that
    /// died holding them, and the events those had in flight (`None` when
    /// not on a session).
    pub fn session_reclaimed(&self) -> Option<(u64, u64)> {
        let h = link_of(self)?.map.header();
        Some((
            h.reclaimed_slots.load(Ordering::Relaxed),
            h.reclaimed_lost.load(Ordering::Relaxed),
        ))
    }

    /// Events refused by all the writer processes of this tracer's
    /// session (not only this one), and how many processes ran untraced
    /// because the session's process table was full (`None` when not on a
    /// session). Readers report these as lost.
    pub fn session_refused(&self) -> Option<SessionRefusals> {
        Some(refused_of(&link_of(self)?.map))
    }

    /// The writer processes of this tracer's session and the session's
    /// state (`None` when not on a session).
    pub fn session_state(&self) -> Option<(SessionState, Vec<ProcInfo>)> {
        let l = link_of(self)?;
        let p = processes_of(&l.map);
        Some((state_of(&p), p))
    }
}
