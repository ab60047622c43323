//! In-process: a typed event and a `trace!` call site whose first records
//! ever are made inside a real signal handler decode everywhere a reader
//! looks: the live pipe, and a drained trace.dat read by `trace-cmd
//! report` and by our reader. (The handler registers the type and assigns
//! the site's id with atomics only, before its record; the session path,
//! where the formats go to shared tables, is tested in
//! `session_handler_types.rs` and the session link's unit tests.)
//!
//! Fails (never skips) when `trace-cmd` is not on PATH
//! (Debian: `apt-get install -y trace-cmd`).

mod common;
mod tracedat_common;

use std::sync::OnceLock;

use ringtrace::export::ExportFormat;
use ringtrace::tracedat::{
    FileRenderer, RenderOptions, TraceDatReader, TraceDatVersion, TraceItem,
};
use ringtrace::{Tracer, TracerConfig};

ringtrace::declare_event! {
    /// Recorded only by the handler.
    pub struct OnlyInHandler: "test" / "only_in_handler" = 2801 { value: u64 }
}

static TRACER: OnceLock<Tracer> = OnceLock::new();

extern "C" fn on_usr2(_sig: libc::c_int) {
    if let Some(t) = TRACER.get() {
        let _scope = ringtrace::signal_scope();
        ringtrace::trace_event!(t, OnlyInHandler { value: 41 });
        ringtrace::trace!(tracer: t, "handler site %u", 42u32);
    }
}

#[test]
fn formats_first_used_in_a_handler_decode_live_and_in_trace_dat() {
    assert!(ringtrace::event::Registry::global()
        .get(OnlyInHandler::EVENT_TYPE.id)
        .is_none());
    let t = TRACER.get_or_init(|| TracerConfig::new().max_contexts(2).build().unwrap());
    // The thread's context first (a handler cannot lease one).
    ringtrace::trace!(tracer: t, "before");
    // SAFETY: installs a handler that only records (async-signal-safe);
    // `raise` runs it on this thread before returning. Nothing else in
    // this test binary uses SIGUSR2.
    unsafe {
        ringtrace::signal::install(libc::SIGUSR2, ringtrace::signal::Handler::Plain(on_usr2), 0)
            .unwrap();
        assert_eq!(libc::raise(libc::SIGUSR2), 0);
    }
    ringtrace::trace!(tracer: t, "after");

    // The live, non-consuming view.
    let text = t.view().read_to_string().unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[1].ends_with("only_in_handler: value=41"), "{text}");
    assert!(lines[2].ends_with(": handler site 42"), "{text}");
    assert!(
        lines[1].contains(" ..h1. ") && lines[2].contains(" ..h1. "),
        "{text}"
    );

    // Drained to trace.dat: the formats are in the file.
    let mut drain = t.drain();
    drain.poll_all().unwrap();
    let out = drain
        .finish(
            std::io::Cursor::new(Vec::new()),
            ExportFormat::TraceDat(TraceDatVersion::V6),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("handler.dat");
    std::fs::write(&f, out.into_inner()).unwrap();
    let s = t.ring_stats(0).unwrap();
    let s1 = t.ring_stats(1).unwrap();
    for (r, s) in [s, s1].iter().enumerate() {
        common::assert_identity(r, s);
        assert_eq!(s.overrun + s.dropped + s.commit_overrun, 0, "{s:?}");
    }

    let mut r = TraceDatReader::open(&f).unwrap();
    let info = r.info().clone();
    let render = FileRenderer::new(&info);
    let mut ours = Vec::new();
    for item in r.records() {
        let TraceItem::Event(rec) = item.unwrap() else {
            panic!("nothing was lost")
        };
        let mut line = String::new();
        render
            .write_line(&mut line, &rec, &RenderOptions::default())
            .unwrap();
        ours.push(line);
    }
    assert_eq!(ours.len(), 4, "{ours:?}");
    assert!(
        ours[1].trim_end().ends_with("only_in_handler: value=41"),
        "{ours:?}"
    );
    assert!(
        ours[2].trim_end().ends_with(": handler site 42"),
        "{ours:?}"
    );

    let report = tracedat_common::trace_cmd_ok(&["report", "-i", f.to_str().unwrap()]);
    assert!(
        report.contains("only_in_handler:") && report.contains("value=41"),
        "{report}"
    );
    assert!(report.contains(": handler site 42"), "{report}");
    assert!(
        !report.contains("UNKNOWN") && !report.contains("FAILED"),
        "{report}"
    );
}
