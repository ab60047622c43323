//! A record made while its format is being published: a real signal
//! handler interrupts the writer in the window between claiming a format
//! and committing its table record, and records the same type or printk
//! site; or another thread does while the claimant waits. That record
//! commits first, so the tables must hold its format by then: a reader in
//! another process that sees the record would otherwise print "Unknown
//! type" (or no printk format).

use crate::sync::{AtomicU32, Ordering};
use std::cell::Cell;
use std::sync::{Arc, OnceLock};

use super::super::table::{TableEntry, TableReader, KIND_EVENT, KIND_PRINTK};
use super::super::{Session, SessionConfig, SessionMap};
use crate::Tracer;

type Hook = fn(&Arc<SessionMap>, u32, u32);
/// A case of the test: what the handler records, the thread's record, the hook.
type Case = (u32, fn(&Tracer), Hook);

thread_local! {
    /// Called (on this thread only) by the writer between deciding to
    /// publish `(kind, id)` and appending its table record. Const-initialised
    /// and without a destructor, so a signal handler may touch it.
    static HOOK: Cell<Option<Hook>> = const { Cell::new(None) };
}

/// The test hook's call site in `SessionLink::put_type` and `sync_sites`.
pub(super) fn publishing(map: &Arc<SessionMap>, kind: u32, id: u32) {
    if let Some(hook) = HOOK.with(Cell::get) {
        hook(map, kind, id);
    }
}

crate::declare_event! {
    /// Recorded by the test's thread and by its signal handler.
    struct Raced: "test" / "raced_in_publish" = 3901 { v: u64 }
}

crate::declare_event! {
    /// Recorded by the test's thread and by another thread.
    struct RacedThreads: "test" / "raced_by_threads" = 3902 { v: u64 }
}

const SITE_FORMAT: &str = "raced site %u";

/// Both the thread and the handler record through this one call site.
fn record_site(t: &Tracer) {
    let _ = t.record(&crate::bprintk!("raced site %u", 7u32));
}

static TRACER: OnceLock<Tracer> = OnceLock::new();
/// What the handler records: 1 the typed event, 2 the printk site.
static WHAT: AtomicU32 = AtomicU32::new(0);
/// Set by the hook: 1 when the tables held the format right after the
/// handler's record, 2 when they did not.
static FOUND: AtomicU32 = AtomicU32::new(0);

extern "C" fn on_sigusr2(_sig: libc::c_int) {
    if let Some(t) = TRACER.get() {
        let _scope = crate::signal_scope();
        match WHAT.load(Ordering::Relaxed) {
            1 => {
                let _ = t.record(&Raced { v: 2 });
            }
            2 => record_site(t),
            _ => {}
        }
    }
}

/// Whether the committed table records hold `(kind, id)`'s format.
fn in_tables(map: &Arc<SessionMap>, kind: u32, id: u32) -> bool {
    TableReader::new(map.clone())
        .poll()
        .iter()
        .any(|e| match (kind, e) {
            (KIND_EVENT, TableEntry::Event { format, .. }) => {
                format.contains(&format!("ID: {id}\n"))
            }
            (KIND_PRINTK, TableEntry::Printk { id: i, fmt, .. }) => *i == id && fmt == SITE_FORMAT,
            _ => false,
        })
}

/// In the window: once for the test's own format, raises the signal (its
/// handler records the same format), then looks at the tables.
fn raise_in_window(map: &Arc<SessionMap>, kind: u32, id: u32) {
    let ours = match kind {
        KIND_EVENT => id == u32::from(Raced::EVENT_TYPE.id),
        _ => crate::printk::site_by_id(id).is_some_and(|s| s.format() == SITE_FORMAT),
    };
    if !ours {
        return;
    }
    HOOK.with(|h| h.set(None));
    // SAFETY: `raise` runs the handler on this thread before returning;
    // the handler only records (async-signal-safe).
    assert_eq!(unsafe { libc::raise(libc::SIGUSR2) }, 0);
    let found = if in_tables(map, kind, id) { 1 } else { 2 };
    FOUND.store(found, Ordering::Relaxed);
}

/// In the window of the other type: another thread records it (and waits
/// for this claimant, which waits for it: bounded, then it publishes a
/// copy), then looks at the tables.
fn other_thread_in_window(map: &Arc<SessionMap>, kind: u32, id: u32) {
    if kind != KIND_EVENT || id != u32::from(RacedThreads::EVENT_TYPE.id) {
        return;
    }
    HOOK.with(|h| h.set(None));
    std::thread::scope(|s| {
        s.spawn(|| {
            let t = TRACER.get().unwrap();
            t.record(&RacedThreads { v: 2 }).unwrap();
        });
    });
    let found = if in_tables(map, kind, id) { 1 } else { 2 };
    FOUND.store(found, Ordering::Relaxed);
}

#[test]
fn a_handler_record_made_while_its_format_is_published_finds_it_in_the_tables() {
    let d = tempfile::tempdir().unwrap();
    let s = Session::create(&SessionConfig {
        contexts: 2,
        bytes_per_context: 8192,
        dir: Some(d.path().to_path_buf()),
        ..SessionConfig::new("raced-formats")
    })
    .unwrap();
    let path = s.path().to_path_buf();
    let t = TRACER.get_or_init(|| Tracer::attach_session(s).unwrap());
    // SAFETY: installs a handler that only records; nothing else in this
    // test binary uses SIGUSR2.
    unsafe { crate::signal::install(libc::SIGUSR2, crate::signal::Handler::Plain(on_sigusr2), 0) }
        .unwrap();
    // The thread's context first (a handler cannot lease one).
    t.record(&crate::bprintk!("up")).unwrap();

    let cases: [Case; 3] = [
        (1, |t| t.record(&Raced { v: 1 }).unwrap(), raise_in_window),
        (2, record_site, raise_in_window),
        (
            3,
            |t| t.record(&RacedThreads { v: 1 }).unwrap(),
            other_thread_in_window,
        ),
    ];
    for (what, record, hook) in cases {
        WHAT.store(what, Ordering::Relaxed);
        FOUND.store(0, Ordering::Relaxed);
        HOOK.with(|h| h.set(Some(hook)));
        record(t);
        HOOK.with(|h| h.set(None));
        assert_eq!(
            FOUND.load(Ordering::Relaxed),
            1,
            "case {what}: a record was in the ring before its format was in the tables"
        );
    }

    // Both records of each, decoded.
    let reader = Tracer::read_session(Session::open(&path).unwrap()).unwrap();
    reader.import_session_tables();
    let text = reader.view().read_to_string().unwrap();
    let count = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(count("raced_in_publish: v="), 2, "{text}");
    assert_eq!(count("raced_by_threads: v="), 2, "{text}");
    assert_eq!(count(": raced site 7"), 2, "{text}");
    assert_eq!(count("Unknown"), 0, "{text}");
}
