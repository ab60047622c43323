//! The consuming reads: `pipe` (the merged text, live, like the kernel's
//! `trace_pipe`) and `extract` (the whole session to a file).
//!
//! Contract: both take every ring's reader lock first
//! ([`Opened::check_readers`]), so no event is read twice and a dead
//! reader's locks are taken over; what they read is gone from the session.
//! `pipe` follows the writers until SIGINT/SIGTERM or, once no writer is
//! left, until the rings are empty (a dead writer's rings repaired first);
//! it ends with each context's losses not shown yet and the events refused
//! before reaching a ring.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ringtrace::ring::ReadError;
use ringtrace::session::SessionState;

use super::opened::Opened;
use super::output::{export, summary};
use super::{failed, install, on_stop, Result, SessionArg, SessionCmdError, SessionOutArg, STOP};
use crate::Format;

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
    let rerr = |e: ReadError| failed(&o.path, format!("reading: {e}"));
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
