//! The `log` backend alone: records from `log`'s macros (several levels,
//! literal and formatted messages, another thread, a message longer than a
//! record) appear with their level, target and message in ringtrace's text
//! output and in trace.dat as the real `trace-cmd report` prints it (the
//! test FAILS when trace-cmd is missing: `apt-get install -y trace-cmd`).
mod layer_common;

use layer_common::{drain, leak_tracer, text_lines, trace_cmd_report, trace_dat};

#[test]
fn log_records_in_text_and_trace_cmd() {
    let t = leak_tracer();
    ringtrace::log_backend::init_with(t, log::LevelFilter::Info).expect("logger");
    let before = ringtrace::log_backend::truncated();

    log::warn!("disk {}% full", 93);
    log::info!(target: "net", "literal message");
    log::debug!("below the level: not recorded");
    std::thread::spawn(|| log::error!("from {}", "a thread"))
        .join()
        .expect("thread");
    let long = "x".repeat(5000);
    log::info!("{long}");

    let events = drain(t);
    let text = text_lines(&events);
    let m = module_path!();
    assert_eq!(text.len(), 4, "{text:?}");
    assert_eq!(
        text[0],
        (
            "log".into(),
            format!("level=WARN target={m} message=disk 93% full")
        )
    );
    assert_eq!(
        text[1],
        (
            "log".into(),
            "level=INFO target=net message=literal message".into()
        )
    );
    assert_eq!(
        text[2],
        (
            "log".into(),
            format!("level=ERROR target={m} message=from a thread")
        )
    );
    // The long message is cut to fit one 1024-byte record, and counted.
    let cut = text[3].1.rsplit_once("message=").expect("message").1;
    assert!(
        cut.len() > 900 && cut.len() < 1024 && cut.bytes().all(|b| b == b'x'),
        "{}",
        cut.len()
    );
    assert_eq!(ringtrace::log_backend::truncated(), before + 1);
    // Two threads, two contexts.
    assert_ne!(events[0].ring, events[2].ring);

    let report = trace_cmd_report(&trace_dat(t, &events));
    assert_eq!(report.len(), 4, "{report:?}");
    assert_eq!(
        report[0],
        ("log".into(), format!("WARN {m}: disk 93% full"))
    );
    assert_eq!(
        report[1],
        ("log".into(), "INFO net: literal message".into())
    );
    assert_eq!(
        report[2],
        ("log".into(), format!("ERROR {m}: from a thread"))
    );
    assert_eq!(report[3].1, format!("INFO {m}: {cut}"));
}
