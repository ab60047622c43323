//! The in-process guard, as tracing-chrome gives it:
//! `let (layer, _guard) = ringtrace::layer::file("trace.json")?` records
//! into a tracer of its own and writes the trace to the file when the
//! guard drops, and also when a thread panics.
//!
//! # How
//!
//! The tracer is made for the guard (the default configuration, leaked: it
//! lives as long as the program). A thread of the guard drains its rings
//! into spool files every [`POLL`], so the rings never hold more than a
//! poll's worth of events; at the end it writes the output in the format
//! the file's extension names ([`format_of`]: the one place that maps
//! extensions to formats). The end comes when the guard drops, or at the
//! first panic (a panic hook, installed by [`start`], chains the hook that
//! was there before, runs it first, then has the trace written and waits
//! for it). The trace is written once: after a panic wrote it, recording
//! is turned off (later events are refused and counted in the tracer's
//! stats) and stderr says so. An error while writing cannot be returned
//! from a drop or a hook: it is printed on stderr, once.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use crate::export::ExportFormat;
use crate::tracedat::TraceDatVersion;
use crate::tracer::{Tracer, TracerConfig, TracerError};

/// How often the guard's thread drains the rings.
pub const POLL: Duration = Duration::from_millis(100);

/// How long a panicking thread waits for the trace to be written (a hang
/// guard: the panic goes on after it, and stderr says the file may be
/// incomplete).
const PANIC_WAIT: Duration = Duration::from_secs(60);

/// Why `ringtrace::layer::file` could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file's extension names no format ringtrace writes.
    #[error("{}: unknown trace file extension {ext:?}: use .json or .dat", path.display())]
    UnknownExtension {
        /// The file.
        path: PathBuf,
        /// Its extension (empty when it has none).
        ext: String,
    },
    /// The output file could not be created.
    #[error("creating {}: {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The tracer could not be made.
    #[error(transparent)]
    Tracer(#[from] TracerError),
    /// The drain thread could not be started.
    #[error("starting the thread that drains the trace: {0}")]
    Thread(io::Error),
}

/// The export format a trace file's extension names: `.json` Chrome JSON,
/// `.dat` trace.dat (v6), `.pftrace` or `.perfetto-trace` Perfetto
/// protobuf. Every format `ringtrace::layer::file` writes is
/// one arm here.
///
/// ```
/// use ringtrace::layer::format_of;
/// assert!(format_of("t.json".as_ref()).is_ok());
/// assert!(format_of("t.pftrace".as_ref()).is_ok());
/// let e = format_of("t.txt".as_ref()).unwrap_err().to_string();
/// assert!(e.contains("unknown trace file extension \"txt\""), "{e}");
/// ```
pub fn format_of(path: &Path) -> Result<ExportFormat, FileError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "json" => Ok(ExportFormat::Json),
        "dat" => Ok(ExportFormat::TraceDat(TraceDatVersion::V6)),
        "pftrace" | "perfetto-trace" => Ok(ExportFormat::Perfetto),
        _ => Err(FileError::UnknownExtension {
            path: path.to_path_buf(),
            ext,
        }),
    }
}

/// What the guard, its thread and the panic hook share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    path: PathBuf,
}

#[derive(Debug, Default)]
struct State {
    /// The end was asked for (drop or panic).
    stop: bool,
    /// The output is written (or failed, said on stderr).
    done: bool,
    /// The drain thread, which must not wait for itself.
    thread: Option<ThreadId>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks for the end and waits (at most `limit`) until the output is
    /// written; `false` if it was not in time. The drain thread itself
    /// does not wait (it would wait for itself).
    fn finish(&self, limit: Duration) -> bool {
        let mut st = self.lock();
        st.stop = true;
        self.changed.notify_all();
        if st.thread == Some(std::thread::current().id()) {
            return st.done;
        }
        let (st, _) = self
            .changed
            .wait_timeout_while(st, limit, |s| !s.done)
            .unwrap_or_else(|p| p.into_inner());
        st.done
    }
}

/// Writes the trace when dropped; see `ringtrace::layer::file`.
#[derive(Debug)]
#[must_use = "the trace is written when the guard drops: keep it alive"]
pub struct FileGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for FileGuard {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.stop = true;
        self.shared.changed.notify_all();
        drop(st);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A new tracer, and the guard that writes its trace to `path` (format
/// by extension: [`format_of`]) when it drops or at the first panic: what
/// `crate::layer::file` gives a layer for.
pub(crate) fn start(path: &Path) -> Result<(&'static Tracer, FileGuard), FileError> {
    let path = path.to_path_buf();
    let format = format_of(&path)?;
    let out = File::create(&path).map_err(|source| FileError::Create {
        path: path.clone(),
        source,
    })?;
    let tracer: &'static Tracer = Box::leak(Box::new(TracerConfig::new().build()?));
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        changed: Condvar::new(),
        path,
    });
    let s = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("ringtrace-file".into())
        .spawn(move || drain_then_write(tracer, &s, out, format))
        .map_err(FileError::Thread)?;
    shared.lock().thread = Some(thread.thread().id());
    install_panic_hook(Arc::clone(&shared), tracer);
    let guard = FileGuard {
        shared,
        thread: Some(thread),
    };
    Ok((tracer, guard))
}

/// The guard's thread: drains every [`POLL`] until the end is asked for,
/// then writes the output and says it is done.
fn drain_then_write(tracer: &'static Tracer, shared: &Shared, out: File, format: ExportFormat) {
    let mut drain = tracer.drain();
    // Every thread of this tracer is one of this process's.
    drain.json_options(crate::json::JsonOptions::this_process());
    let mut failed = None;
    loop {
        if failed.is_none() {
            if let Err(e) = drain.poll() {
                failed = Some(e.to_string());
            }
        }
        let st = shared.lock();
        let (st, _) = shared
            .changed
            .wait_timeout_while(st, POLL, |s| !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        if st.stop {
            break;
        }
    }
    let path = shared.path.display();
    for (ring, e) in drain.unread_rings() {
        eprintln!("ringtrace: {path}: context {ring} was not read ({e}): its events are missing");
    }
    match drain.finish(out, format) {
        Ok(_) if failed.is_none() => {}
        Ok(_) => eprintln!(
            "ringtrace: {path}: draining failed ({}); the file has what was read",
            failed.unwrap_or_default()
        ),
        Err(e) => eprintln!("ringtrace: writing the trace to {path} failed: {e}"),
    }
    let mut st = shared.lock();
    st.done = true;
    shared.changed.notify_all();
}

/// Chains a panic hook that runs the previous one, then has the trace
/// written (once) and recording turned off.
fn install_panic_hook(shared: Arc<Shared>, tracer: &'static Tracer) {
    let prev = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        prev(info);
        let was_done = shared.lock().done;
        if was_done {
            return;
        }
        tracer.set_on(false);
        let path = shared.path.display();
        if shared.finish(PANIC_WAIT) {
            eprintln!(
                "ringtrace: trace written to {path} at this panic; \
                 events after it are not recorded"
            );
        } else {
            eprintln!("ringtrace: writing the trace to {path} at this panic did not finish");
        }
    }));
}
