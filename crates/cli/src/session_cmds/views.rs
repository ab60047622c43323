//! The non-consuming views: `show` (the live view in text, like the
//! kernel's `trace` file) and `snapshot` (the live view to a file; also
//! `record`'s flight-recorder dump on SIGUSR1).
//!
//! Both read the mapped session in place with each ring's non-consuming
//! iterator (`Tracer::view`, `Tracer::export_view`): no reader lock, no
//! copy, no repair; each call holds the ring's `busy` word only while it
//! copies one event (as a consuming reader's call does), so writers and a
//! live `record` go on.
//!
//! Contract: every event shown was checked not overwritten while it was
//! copied (a page generation check, as a seqlock reader does); what was
//! overwritten or consumed meanwhile is counted and shown as lost (exactly
//! between two events of a context; after its last one shown, as a bound:
//! `View::skipped_at_end`), and each context's events keep their order and
//! time. Memory is a page per context, time is what is read, whatever the
//! session's size. A write in flight (its writer died) is not committed,
//! so not shown. A damaged ring is reported once and not read further.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering;

use ringtrace::export::DrainStats;
use ringtrace::session::SessionState;

use super::opened::Opened;
use super::output::{create_output, summary};
use super::{install, on_stop, Result, SessionCmdError, SessionOutArg, STOP};
use crate::Format;

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
pub(super) fn view_to(o: &Opened, out: &Path, format: Format) -> Result<()> {
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
