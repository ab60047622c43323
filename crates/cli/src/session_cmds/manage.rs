//! Managing a session: `clear` (empty its rings, keep the session) and
//! `remove` (delete its file).
//!
//! Contract: neither harms a writer. `clear` resets the rings with the
//! ring's own reset, which waits (bounded) for writes in flight; `remove`
//! refuses while a writer process runs, unless `--force` (the writers keep
//! their mapping; only the name goes).

use ringtrace::ring::ControlError;
use ringtrace::session::{resolve, ProcState, Session, SessionState};

use super::opened::Opened;
use super::{failed, Result, SessionArg};

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
            ControlError::WriteInFlight { .. } => {
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
