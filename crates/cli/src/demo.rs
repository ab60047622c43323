//! `ringtrace demo`: records a small but complete trace, then shows the
//! merged trace (its first and last lines and every lost-event line) and
//! each context's stats, the kernel's `trace_pipe` and `per_cpu/cpuN/stats`;
//! or, with `--output`, exports it while it is being recorded (a
//! [`Drain`](ringtrace::Drain)). Under `ringtrace record` the demo writes
//! into the recorder's session and reads nothing itself.
//!
//! Each worker thread loops: a binary printk with a string argument, a typed
//! event (with a long label now and then, so some records take the long
//! `type_len` 0 form), a marker, and every 64th iteration a `SIGUSR1` sent to
//! itself. The `SIGUSR1` handler records, then sends itself `SIGUSR2`, whose
//! handler runs nested inside the first one and records too (depth 2).

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use ringtrace::clock::Clock;
use ringtrace::context::{current_tid, signal_scope};
use ringtrace::{Tracer, TracerConfig};

use crate::session_cmds::{attach_progress, progress_bar};
use crate::signals::{self, Handler};
use crate::{CliError, Format};

ringtrace::declare_event! {
    /// One unit of a worker's work.
    pub struct Work<'a>: "demo" / "work" = 1201 { worker: u32, step: u32, label: &'a str }
}
ringtrace::declare_event! {
    /// Recorded by a signal handler.
    pub struct Signal: "demo" / "signal" = 1202 { seq: u64, depth: u32 }
}

/// The demo's tracer (the default one: built on the session when
/// `ringtrace record` runs the demo); the signal handlers find it here.
static TRACER: OnceLock<&'static Tracer> = OnceLock::new();
/// Signals handled (both handlers).
static SIGNALS: AtomicU64 = AtomicU64::new(0);

/// Sends `sig` to the calling thread; it is delivered before this returns.
fn raise_here(sig: libc::c_int) {
    let tid = current_tid();
    // SAFETY: tgkill takes plain integers and is async-signal-safe; the
    // target is this very thread, which exists.
    unsafe {
        libc::syscall(libc::SYS_tgkill, libc::getpid(), tid, sig);
    }
}

extern "C" fn on_usr1(_sig: libc::c_int) {
    // SAFETY: the errno location is always valid for the calling thread;
    // saved and restored so the interrupted code never sees it change.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(t) = TRACER.get() {
        let _scope = signal_scope();
        let n = SIGNALS.fetch_add(1, Ordering::Relaxed);
        ringtrace::trace!(tracer: t, "SIGUSR1 #%llu in handler", n);
        ringtrace::trace_event!(t, Signal { seq: n, depth: 1 });
        // A second signal, delivered (and handled) inside this handler.
        raise_here(libc::SIGUSR2);
        ringtrace::trace!(tracer: t, "SIGUSR1 #%llu back from the nested handler", n);
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

extern "C" fn on_usr2(_sig: libc::c_int) {
    // SAFETY: as in `on_usr1`.
    let errno = unsafe { *libc::__errno_location() };
    if let Some(t) = TRACER.get() {
        let _scope = signal_scope();
        let n = SIGNALS.fetch_add(1, Ordering::Relaxed);
        ringtrace::trace_event!(t, Signal { seq: n, depth: 2 });
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Installs `handler` (it does only async-signal-safe work: atomics, and
/// ringtrace records into an existing context).
fn install(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) -> Result<(), CliError> {
    signals::install(sig, Handler::Plain(handler))
        .map_err(|e| CliError::Demo(format!("installing the handler of signal {sig}: {e}")))
}

fn worker(t: &Tracer, w: u32, iterations: u32) {
    let name = format!("demo-w{w}");
    let long = "x".repeat(150);
    for i in 0..iterations {
        ringtrace::trace!(tracer: t, "worker %s step %u", name.as_str(), i);
        let label = if i % 16 == 0 { long.as_str() } else { "short" };
        ringtrace::trace_event!(
            t,
            Work {
                worker: w,
                step: i,
                label
            }
        );
        if i % 8 == 0 {
            t.marker(&format!("{name} reached {i}"));
        }
        if i % 64 == 0 {
            raise_here(libc::SIGUSR1);
        }
        if i % 256 == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Lines of the merged trace shown at each end.
const SHOWN: usize = 12;
/// Lost-event lines shown at most.
const SHOWN_LOST: usize = 12;

/// Runs the demo: exports to `output` when given, else prints the trace's
/// ends, its lost-event lines and the stats.
pub fn run(
    output: Option<(PathBuf, Format)>,
    threads: u32,
    iterations: u32,
) -> Result<(), CliError> {
    if threads == 0 {
        return Err(CliError::Usage("--threads must be at least 1".into()));
    }
    // Shown on the terminal, the rings are small enough to overflow, so
    // that the flight recorder's overwrites show as lost-event lines and
    // overrun counts; exported, they keep every event of the default run.
    let bytes = if output.is_some() { 256 } else { 64 } * 1024;
    // The default tracer: under `ringtrace record` (RINGTRACE_SESSION set)
    // `init` builds it on the session instead of this configuration, so
    // the events land in the recorder's file.
    let config = TracerConfig::new()
        .max_contexts(threads as usize)
        .bytes_per_context(bytes)
        .clock(Clock::mono());
    let t = ringtrace::init(config).map_err(|e| CliError::Demo(e.to_string()))?;
    if TRACER.set(t).is_err() {
        return Err(CliError::Demo("the demo tracer exists already".into()));
    }
    for ty in [Work::EVENT_TYPE, Signal::EVENT_TYPE] {
        t.register(ty).map_err(|e| CliError::Demo(e.to_string()))?;
    }
    install(libc::SIGUSR1, on_usr1)?;
    install(libc::SIGUSR2, on_usr2)?;
    if let Some(session) = t.session_path() {
        // The recorder reads the rings: the demo only writes.
        return recorded(t, session, output.is_some(), threads, iterations);
    }
    match output {
        Some((path, format)) => export(t, &path, format, threads, iterations),
        None => show(t, threads, iterations),
    }
}

/// The ending under `ringtrace record`: the workers write into the
/// session, whose reader (the recorder) writes the file.
fn recorded(
    t: &'static Tracer,
    session: &Path,
    output: bool,
    threads: u32,
    iterations: u32,
) -> Result<(), CliError> {
    if output {
        eprintln!(
            "ringtrace demo: recording into session {}: --output is ignored \
             (the recorder writes the file)",
            session.display()
        );
    }
    work(t, threads, iterations, || Ok(()))?;
    eprintln!(
        "ringtrace demo: {threads} threads recorded into session {} ({} signals handled)",
        session.display(),
        SIGNALS.load(Ordering::Relaxed)
    );
    Ok(())
}

/// Runs the workers to the end; `poll` runs meanwhile, every millisecond.
fn work(
    t: &'static Tracer,
    threads: u32,
    iterations: u32,
    mut poll: impl FnMut() -> Result<(), CliError>,
) -> Result<(), CliError> {
    let done = AtomicU32::new(0);
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for w in 0..threads {
            let done = &done;
            let h = std::thread::Builder::new()
                .name(format!("demo-w{w}"))
                .spawn_scoped(s, move || {
                    worker(t, w, iterations);
                    // Release: pairs with the Acquire load of the poll loop.
                    done.fetch_add(1, Ordering::Release);
                })
                .map_err(|e| CliError::Demo(format!("spawning worker {w}: {e}")))?;
            handles.push(h);
        }
        while done.load(Ordering::Acquire) < threads {
            poll()?;
            std::thread::sleep(Duration::from_millis(1));
        }
        for h in handles {
            h.join()
                .map_err(|_| CliError::Demo("a worker thread panicked".into()))?;
        }
        Ok(())
    })
}

/// The terminal ending: the merged trace consumed (`trace_pipe`), its first
/// and last lines and lost-event lines printed, then each context's stats.
fn show(t: &'static Tracer, threads: u32, iterations: u32) -> Result<(), CliError> {
    work(t, threads, iterations, || Ok(()))?;
    // Stats before reading: what the rings hold (entries) and lost.
    let stats: Vec<_> = (0..t.max_contexts())
        .filter_map(|r| t.stats_text(r).ok().map(|s| (r, s)))
        .collect();
    let mut pipe = t.pipe();
    let (mut head, mut tail, mut lost) = (Vec::new(), VecDeque::new(), Vec::new());
    let (mut lines, mut lost_lines) = (0u64, 0u64);
    while let Some(text) = pipe
        .next_line()
        .map_err(|e| CliError::Demo(e.to_string()))?
    {
        for line in text.lines() {
            lines += 1;
            if line.contains(" EVENTS]") {
                lost_lines += 1;
                if lost.len() < SHOWN_LOST {
                    lost.push(line.to_string());
                }
            }
            if head.len() < SHOWN {
                head.push(line.to_string());
            } else {
                if tail.len() == SHOWN {
                    tail.pop_front();
                }
                tail.push_back(line.to_string());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let io = CliError::Output;
    writeln!(out, "# the merged trace ({lines} lines): the first {SHOWN}").map_err(io)?;
    for l in &head {
        writeln!(out, "{l}").map_err(io)?;
    }
    writeln!(
        out,
        "# ... lost-event lines: {lost_lines} (the first {})",
        lost.len()
    )
    .map_err(io)?;
    for l in &lost {
        writeln!(out, "{l}").map_err(io)?;
    }
    writeln!(out, "# ... the last {}", tail.len()).map_err(io)?;
    for l in &tail {
        writeln!(out, "{l}").map_err(io)?;
    }
    for (r, s) in &stats {
        writeln!(out, "# context {r} stats (before the pipe read it)").map_err(io)?;
        write!(out, "{s}").map_err(io)?;
    }
    writeln!(
        out,
        "# {threads} threads, {} signals handled (nested handlers included)",
        SIGNALS.load(Ordering::Relaxed)
    )
    .map_err(io)?;
    Ok(())
}

/// The `--output` ending: a drain exports the trace while it is recorded.
fn export(
    t: &'static Tracer,
    output: &Path,
    format: Format,
    threads: u32,
    iterations: u32,
) -> Result<(), CliError> {
    let mut drain = t.drain();
    if let Some((r, e)) = drain.unread_rings().first() {
        return Err(CliError::Demo(format!("cannot read context {r}: {e}")));
    }
    // Pages go to disk next to the output as they are read (see
    // `ringtrace::export::SpoolFiles`); an unwritable output fails now.
    drain.spool_next_to(output)?;
    let bar = progress_bar("recording");
    attach_progress(&mut drain, &bar);
    work(t, threads, iterations, || {
        drain.poll()?;
        Ok(())
    })?;
    drain.poll_all()?;
    let stats = drain.stats();
    drain.finish_spooled(format.export())?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    eprintln!(
        "ringtrace demo: {} events from {threads} threads ({} signals handled, {} lost) -> {}",
        stats.events,
        SIGNALS.load(Ordering::Relaxed),
        stats.lost_events,
        output.display()
    );
    Ok(())
}
