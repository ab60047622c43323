//! Managing a session: `start` / `stop` (recording on and off, the
//! kernel's `tracing_on`), `clear` (empty its rings, keep the session),
//! `reset` (what `trace-cmd reset` does, for a session: recording on and
//! the rings emptied) and `remove` (delete its file).
//!
//! Contract: none harms a writer. `start` / `stop` store the session's
//! switch, which every writer process reads before each record (one load);
//! a record made while stopped is not recorded and not counted, lost or
//! refused: it was never attempted, as with the kernel's `tracing_off`.
//! `clear` resets the rings with the ring's own reset, which waits
//! (bounded) for writes in flight; `remove` refuses while a writer process
//! runs, unless `--force` (the writers keep their mapping; only the name
//! goes).

use ringtrace::ring::ControlError;
use ringtrace::session::{resolve, ProcState, Session, SessionState};

use super::opened::Opened;
use super::{failed, Result, SessionArg};

/// `ringtrace start` (`on`) and `ringtrace stop`: the session's recording
/// switch, for every writer process, now and later ones.
pub fn set_recording(session: &str, on: bool) -> Result<()> {
    let path = resolve(session)?;
    let s = Session::open(&path)?;
    let was = s.is_recording();
    s.set_recording(on);
    let word = if on { "on" } else { "off" };
    eprintln!(
        "ringtrace: session {}: recording {word}{}",
        path.display(),
        if was == on { " (it was already)" } else { "" }
    );
    Ok(())
}

/// `ringtrace reset`: what `trace-cmd reset` does to a tracing instance,
/// for a session: the rings emptied as `clear` empties them, then
/// recording back on. The session, its writers and its counters stay.
pub fn reset(session: &str) -> Result<()> {
    let o = Opened::open(session)?;
    clear_opened(&o)?;
    o.tracer.set_on(true);
    eprintln!(
        "ringtrace: session {}: reset (rings emptied, recording on)",
        o.path.display()
    );
    Ok(())
}

/// `ringtrace clear`.
pub fn clear(session: &str) -> Result<()> {
    let o = Opened::open(session)?;
    clear_opened(&o)?;
    eprintln!("ringtrace: session {}: cleared", o.path.display());
    Ok(())
}

/// Empties every ring of `o`; their unread events are counted as overrun
/// (the ring's reset), so the accounting stays exact.
///
/// A reset waits (bounded) for the writes in flight to commit. A writer
/// that died mid-write never commits: when no writer process of the
/// session runs any more and one died, the rings are repaired first
/// (`post_mortem`: its in-flight write is counted as lost), so the reset
/// does not wait for it.
fn clear_opened(o: &Opened) -> Result<()> {
    if let Some(m) = o.post_mortem() {
        eprintln!("ringtrace: {m}");
    }
    o.tracer.ring_buffer().reset_all().map_err(|e| {
        let hint = match e {
            ControlError::WriteInFlight { .. } => {
                "; a writer process of the session still runs: try again when its write \
                 commits, or when it has exited"
            }
            _ => "",
        };
        failed(&o.path, format!("clearing: {e}{hint}"))
    })
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
