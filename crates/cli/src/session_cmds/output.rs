//! Writing a session to a file, and the summary that explains its losses.
//!
//! Terms: the *drain* reads every ring of the session (consuming) and
//! spools its pages next to the output until it writes the file; a *loss*
//! is an event written but not in the output: dropped by a full ring,
//! overwritten, a commit overrun, or refused before reaching a ring.
//!
//! Contract: every output ends with a summary on stderr that counts each
//! loss and says why it happened and what would have avoided it (the
//! `-b` that would have held the events, or the other mode); a context
//! the drain could not take (another live reader holds it) fails the
//! command rather than writing an output that silently lacks it.

use std::io::{BufWriter, Write};
use std::path::Path;

use ringtrace::export::DrainStats;
use ringtrace::ring::Mode;

use super::opened::Opened;
use super::{failed, Result, SessionCmdError};
use crate::progress::{attach_progress_to_end, progress_bar};
use crate::Format;

/// Creates `path` for a view's output, buffered.
pub(super) fn create_output(path: &Path) -> Result<BufWriter<std::fs::File>> {
    let f = std::fs::File::create(path)
        .map_err(|e| SessionCmdError::Usage(format!("creating {}: {e}", path.display())))?;
    Ok(BufWriter::with_capacity(1 << 16, f))
}

/// Fails when the drain could not take every ring (another live reader
/// holds some): the output would lack their events.
pub(super) fn unread_rings(drain: &ringtrace::Drain<'_>, path: &Path) -> Result<()> {
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
/// `ringtrace::export::SpoolFiles`); returns the drain's counters.
pub(super) fn export(
    o: &Opened,
    out: &Path,
    format: Format,
    msg: &'static str,
) -> Result<DrainStats> {
    let ex = |source| SessionCmdError::Export {
        path: o.path.display().to_string(),
        source,
    };
    o.tracer.import_session_tables();
    let mut drain = o.tracer.drain();
    unread_rings(&drain, &o.path)?;
    drain.spool_next_to(out).map_err(ex)?;
    let bar = progress_bar(msg);
    attach_progress_to_end(&mut drain, &bar, &o.tracer, msg);
    drain.poll_all().map_err(ex)?;
    let stats = drain.stats();
    let rec = drain.finish_spooled(format.export()).map_err(ex)?;
    note_undecodable(&rec, out);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(stats)
}

/// Says what the output `out` holds: events, losses (the drain's and the
/// ring counters'), refusals, and per context why it lost events.
pub(super) fn summary(o: &Opened, stats: &DrainStats, out: &Path) {
    say(format_args!(
        "ringtrace: {}: {} events, {} lost (ring counters: {} lost) -> {}",
        o.path.display(),
        stats.events,
        stats.lost_events,
        o.ring_losses(),
        out.display()
    ));
    say(format_args!(
        "ringtrace: {}: {}",
        o.path.display(),
        accounting(o)
    ));
    if let Some(m) = o.refusals() {
        say(format_args!("ringtrace: {}: {m}", o.path.display()));
    }
    for l in loss_lines(o, stats) {
        say(format_args!("ringtrace: {l}"));
    }
}

/// The rings' accounting identity over all contexts, as numbers a user
/// (and the CLI's tests) can check: every event written is read,
/// overwritten, dropped, lost to a commit overrun, or still buffered. A
/// ring whose counters cannot be read (corrupt) is named, not summed.
fn accounting(o: &Opened) -> String {
    let buf = o.tracer.ring_buffer();
    let (mut w, mut r, mut ov, mut dr, mut co, mut en, mut bad) = (0u64, 0, 0, 0, 0, 0, 0);
    for ring in 0..buf.rings() {
        match buf.stats(ring) {
            Ok(s) => {
                w += s.written;
                r += s.read;
                ov += s.overrun;
                dr += s.dropped;
                co += s.commit_overrun;
                en += s.entries;
            }
            Err(_) => bad += 1,
        }
    }
    let held = r + ov + dr + co + en;
    let rel = if held == w { "=" } else { "!=" };
    let unread = if bad > 0 {
        format!(" ({bad} rings with unreadable counters left out)")
    } else {
        String::new()
    };
    format!(
        "accounting: {w} written {rel} {r} read + {ov} overwritten + {dr} dropped + \
         {co} commit overruns + {en} still buffered{unread}"
    )
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
        // Each kind of loss that happened, with its cause.
        let why: Vec<String> = [
            (
                s.dropped,
                format!(
                    "dropped: the ring ({ring_kb} KB) was full, the reader had not emptied it \
                     (producer/consumer mode keeps the oldest)"
                ),
            ),
            (
                s.overrun,
                format!(
                    "overwritten by newer events (overwrite mode keeps the newest {ring_kb} KB)"
                ),
            ),
            (
                s.commit_overrun,
                "commit overrun (nested writes filled the ring during a write)".to_string(),
            ),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, cause)| format!("{n} {cause}"))
        .collect();
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

/// Says how many records the JSON output skipped because no format
/// decodes them (they are not in `out`; the session or a trace.dat export
/// keeps them).
pub(super) fn note_undecodable(rec: &ringtrace::export::Recovered, out: &Path) {
    if rec.undecodable > 0 {
        say(format_args!(
            "ringtrace: {}: {} record(s) could not be decoded for JSON and were skipped",
            out.display(),
            rec.undecodable
        ));
    }
}

/// Writes one line to stderr, ignoring errors: `record` must go on (and
/// write the trace) when its terminal hung up, where `eprintln!` panics.
pub(super) fn say(line: std::fmt::Arguments<'_>) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(line);
    let _ = e.write_all(b"\n");
}
