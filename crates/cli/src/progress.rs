//! Progress on stderr for the long commands that drain a trace (`record`,
//! `extract`, `demo -o`).
//!
//! Contract: a bar only where the end is known, and it shows the way to
//! that end: the bytes the session held when the drain began (`extract`),
//! or the bytes of the output being written (every drain's finish). Where
//! the end is unknown (a recording, whose program decides how much it
//! writes) it is a spinner with the bytes read and their rate, never a bar
//! that is always full. Nothing is drawn unless stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ringtrace::export::{Drain, ExportProgress};
use ringtrace::Tracer;

/// A spinner: bytes so far and their rate, no end.
const SPINNER: &str = "{spinner} {msg} {binary_bytes} ({binary_bytes_per_sec})";
/// A bar toward a known end.
const BAR: &str =
    "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta})";

/// What a progress display shows after an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// No known end: a spinner at this many bytes.
    Spinner(u64),
    /// A bar at `pos` of `len` bytes, with its message.
    Bar {
        pos: u64,
        len: u64,
        msg: &'static str,
    },
}

/// What to show for the drain's progress `p`, given the bytes the session
/// held when the drain began (`held`, when known) and the message of the
/// drain itself.
fn shown(p: ExportProgress, held: Option<u64>, msg: &'static str) -> Shown {
    if p.total > 0 {
        // Writing the output: its size is known.
        return Shown::Bar {
            pos: p.written.min(p.total),
            len: p.total,
            msg: "writing",
        };
    }
    match held {
        // Writers may add while it drains: the end moves with them.
        Some(h) if h > 0 => Shown::Bar {
            pos: p.spooled,
            len: h.max(p.spooled),
            msg,
        },
        _ => Shown::Spinner(p.spooled),
    }
}

/// Applies `s` to `b`, switching its style when the kind changes.
fn show(b: &ProgressBar, s: Shown) {
    match s {
        Shown::Spinner(pos) => b.set_position(pos),
        Shown::Bar { pos, len, msg } => {
            if b.length().is_none() {
                if let Ok(style) = ProgressStyle::with_template(BAR) {
                    b.set_style(style.progress_chars("=> "));
                }
            }
            b.set_message(msg);
            b.set_length(len);
            b.set_position(pos);
        }
    }
}

/// A spinner (no end known yet) on stderr when it is a terminal.
pub(crate) fn progress_bar(msg: &'static str) -> Option<ProgressBar> {
    std::io::stderr()
        .is_terminal()
        .then(|| new_spinner(msg, ProgressDrawTarget::stderr()))
}

fn new_spinner(msg: &'static str, to: ProgressDrawTarget) -> ProgressBar {
    let b = ProgressBar::with_draw_target(None, to);
    if let Ok(style) = ProgressStyle::with_template(SPINNER) {
        b.set_style(style);
    }
    b.set_message(msg);
    b
}

/// Shows a drain's progress on `bar`: a spinner of the bytes read while
/// the end is unknown, then a bar of the output written.
pub(crate) fn attach_progress(drain: &mut Drain<'_>, bar: &Option<ProgressBar>) {
    attach(drain, bar, None, "reading");
}

/// Shows the progress of a drain that reads what `tracer`'s session holds
/// now: a bar toward those bytes (see [`held_bytes`]), then one of the
/// output written.
pub(crate) fn attach_progress_to_end(
    drain: &mut Drain<'_>,
    bar: &Option<ProgressBar>,
    tracer: &Tracer,
    msg: &'static str,
) {
    attach(drain, bar, Some(held_bytes(tracer)), msg);
}

fn attach(drain: &mut Drain<'_>, bar: &Option<ProgressBar>, held: Option<u64>, msg: &'static str) {
    if let Some(b) = bar.clone() {
        drain.on_progress(move |p| show(&b, shown(p, held, msg)));
    }
}

/// The page bytes the unread events of `tracer`'s rings fill: each ring's
/// unread bytes (padding included) over a page's data area, in whole
/// pages, as the drain spools them. An estimate of the end (a page cut
/// short by a large event counts as full), never below what is read.
pub(crate) fn held_bytes(tracer: &Tracer) -> u64 {
    let page = tracer.ring_buffer().config().page_size as u64;
    // The kernel's page header: u64 time stamp, u64 commit.
    let data = page.saturating_sub(16).max(1);
    (0..tracer.max_contexts())
        .filter_map(|r| tracer.ring_stats(r).ok())
        .map(|s| s.bytes.div_ceil(data) * page)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(spooled: u64, written: u64, total: u64) -> ExportProgress {
        ExportProgress {
            spooled,
            written,
            total,
        }
    }

    /// While recording (no known end) it is a spinner, however much was
    /// read: never a bar that is always full.
    #[test]
    fn unknown_end_is_a_spinner() {
        assert_eq!(shown(p(0, 0, 0), None, "r"), Shown::Spinner(0));
        assert_eq!(shown(p(8192, 0, 0), None, "r"), Shown::Spinner(8192));
        let b = new_spinner("recording", ProgressDrawTarget::hidden());
        show(&b, shown(p(8192, 0, 0), None, "recording"));
        assert_eq!(b.length(), None, "a spinner has no end");
        assert_eq!(b.position(), 8192);
    }

    /// Draining what a session held: a bar toward it, that grows when the
    /// writers add more; then the output's bytes.
    #[test]
    fn known_end_is_a_bar_toward_it() {
        let s = shown(p(4096, 0, 0), Some(16384), "extracting");
        assert_eq!(
            s,
            Shown::Bar {
                pos: 4096,
                len: 16384,
                msg: "extracting"
            }
        );
        let b = new_spinner("extracting", ProgressDrawTarget::hidden());
        show(&b, s);
        assert_eq!((b.position(), b.length()), (4096, Some(16384)));
        let more = shown(p(20480, 0, 0), Some(16384), "extracting");
        assert!(matches!(
            more,
            Shown::Bar {
                pos: 20480,
                len: 20480,
                ..
            }
        ));
        let w = shown(p(20480, 1000, 30000), Some(16384), "extracting");
        assert_eq!(
            w,
            Shown::Bar {
                pos: 1000,
                len: 30000,
                msg: "writing"
            }
        );
    }

    /// The held bytes of a tracer: whole pages of its unread events, as
    /// the drain spools them, and the drain ends at exactly that.
    #[test]
    fn held_bytes_are_the_pages_the_drain_spools() {
        let t = ringtrace::TracerConfig::new()
            .max_contexts(2)
            .build()
            .unwrap();
        assert_eq!(held_bytes(&t), 0);
        for i in 0..1000u32 {
            ringtrace::trace!(tracer: &t, "event %u", i);
        }
        let held = held_bytes(&t);
        let mut d = t.drain();
        d.poll_all().unwrap();
        assert_eq!(d.stats().page_bytes, held);
    }
}
