//! A session writer whose first record of a typed event is made inside a
//! signal handler: the handler publishes the type's format to the session
//! tables itself (no allocation), so a reader in another process decodes
//! the event instead of printing "Unknown type".
//!
//! The writer is a child process (this test binary re-run with an
//! environment variable): the reading parent never records the type, so
//! it knows it only from the session's tables.

mod session_common;

use ringtrace::session::Session;
use ringtrace::Tracer;
use session_common::check_accounting;

const ENV: &str = "RINGTRACE_HANDLER_TYPE_CHILD";

ringtrace::declare_event! {
    /// Recorded only in the child's SIGUSR1 handler.
    pub struct HandlerFirst: "test" / "handler_first" = 2701 { value: u64, tag: u32 }
}

/// In the parent test (not the child run with `ENV`): a small session
/// (2 contexts of 3 pages) named `name` in a new directory.
fn parent_session(name: &str) -> Option<(tempfile::TempDir, Session)> {
    if std::env::var(ENV).is_ok() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let session = Session::create(&session_common::config(dir.path(), name, 2, 3 * 4096)).unwrap();
    Some((dir, session))
}

static CHILD_TRACER: std::sync::OnceLock<Tracer> = std::sync::OnceLock::new();

extern "C" fn on_usr1(_sig: libc::c_int) {
    if let Some(t) = CHILD_TRACER.get() {
        let _scope = ringtrace::signal_scope();
        ringtrace::trace_event!(t, HandlerFirst { value: 31, tag: 7 });
    }
}

/// The child: does nothing unless run by the parent test with `ENV` set to
/// the session file's path.
#[test]
fn child_entry() {
    let Ok(path) = std::env::var(ENV) else { return };
    let session = Session::open(std::path::Path::new(&path)).unwrap();
    let t = CHILD_TRACER.get_or_init(|| Tracer::attach_session(session).unwrap());
    // The thread's context is leased by an ordinary record first (a
    // handler cannot lease one).
    ringtrace::trace!(tracer: t, "child up");
    // SAFETY: installs a handler that only records (async-signal-safe);
    // `raise` runs it on this thread before returning.
    unsafe {
        let handler = ringtrace::signal::Handler::Plain(on_usr1);
        ringtrace::signal::install(libc::SIGUSR1, handler, 0).unwrap();
        assert_eq!(libc::raise(libc::SIGUSR1), 0);
    }
}

#[test]
fn a_type_first_recorded_in_a_handler_reaches_another_process() {
    let Some((_dir, session)) = parent_session("handler-types") else {
        return;
    };
    session_common::run_child_test("child_entry", ENV, session.path());
    assert!(
        ringtrace::event::Registry::global()
            .get(HandlerFirst::EVENT_TYPE.id)
            .is_none(),
        "the reader must learn the type from the session only"
    );
    let reader = Tracer::read_session(session).unwrap();
    let tables = reader.import_session_tables();
    assert_eq!(
        tables.events, 1,
        "the handler's type was published: {tables:?}"
    );
    let text = reader.view().read_to_string().unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].ends_with(": child up"), "{text}");
    assert!(
        lines[1].ends_with("handler_first: value=31 tag=7"),
        "the handler's event, decoded from the published format: {text}"
    );
    assert!(lines[1].contains(" ..h1. "), "{text}");
    // The view consumed nothing: both events are still buffered.
    assert_eq!(check_accounting(&reader), 2);
}

ringtrace::declare_event! {
    /// Recorded by the named thread of the late-name test.
    pub struct Late: "test" / "late" = 2702 { i: u64 }
}

/// A session reader that drains a thread's events before it imported the
/// table record naming the thread (it imports now and then) still writes
/// the name into the trace.dat: the export looks unnamed threads up again
/// at the end. (Before, such a thread stayed `<...>` in `trace-cmd report`
/// whenever its events were drained in one run before the next import.)
#[test]
fn a_name_imported_after_the_events_is_in_the_trace_dat() {
    let Some((dir, session)) = parent_session("late-names") else {
        return;
    };
    let path = session.path().to_path_buf();
    let writer = Tracer::attach_session(session).unwrap();
    let reader = Tracer::read_session(Session::open(&path).unwrap()).unwrap();
    // The type first, as a live reader would have it. (Typed events, not
    // printk: printk site ids are per process, and this process's sites
    // would clash with the child's of the other test, read here too.)
    writer.record(&Late { i: 0 }).unwrap();
    reader.import_session_tables();
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("late-name".into())
            .spawn_scoped(s, || {
                for i in 1..=10u64 {
                    writer.record(&Late { i }).unwrap();
                }
            })
            .unwrap();
    });
    // Drain all the events without importing the thread's name.
    let mut drain = reader.drain();
    drain.poll_all().unwrap();
    let out = drain
        .finish(
            std::io::Cursor::new(Vec::new()),
            ringtrace::export::ExportFormat::TraceDat(ringtrace::tracedat::TraceDatVersion::V6),
        )
        .unwrap();
    let dat = dir.path().join("late.dat");
    std::fs::write(&dat, out.into_inner()).unwrap();
    // All 11 events drained, nothing lost.
    assert_eq!(check_accounting(&reader), 0);
    assert_eq!(session_common::written_and_read(&reader), (11, 11));
    let r = ringtrace::tracedat::TraceDatReader::open(&dat).unwrap();
    assert!(
        r.info().cmdlines.iter().any(|(_, c)| c == "late-name"),
        "{:?}",
        r.info().cmdlines
    );
}
