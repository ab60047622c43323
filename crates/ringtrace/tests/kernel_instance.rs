//! The kernel side against the real tracefs: an instance of ours is made,
//! set to the session's clock, records the events asked (and only them,
//! with their filters), its pages are read while we run, and it is gone
//! afterwards, also when dropped on an error path; instances left by a
//! dead owner are removed by the next start, live ones are not.
//!
//! Skips (with a message) only where /sys/kernel/tracing does not exist;
//! any other failure fails.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ringtrace::clock::ClockKind;
use ringtrace::kernel::{
    remove_stale, EventSpec, KernelConfig, KernelError, KernelRecording, TRACEFS,
};
use ringtrace::tracedat::page::{parse_page, PageLayout};

/// One recording at a time: the tests share this process's pid filter.
static SERIAL: Mutex<()> = Mutex::new(());

fn root() -> Option<PathBuf> {
    let r = PathBuf::from(TRACEFS);
    if !r.exists() {
        eprintln!("SKIPPED: {TRACEFS} does not exist: the kernel-event tests need tracefs");
        return None;
    }
    Some(r)
}

/// Our instances under `root` (`ringtrace-<our pid>-*`).
fn ours(root: &Path) -> Vec<String> {
    let prefix = format!("ringtrace-{}-", std::process::id());
    std::fs::read_dir(root.join("instances"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

fn cfg(events: &[(&str, Option<&str>)], tag: &str) -> KernelConfig {
    KernelConfig {
        events: events
            .iter()
            .map(|(n, f)| EventSpec {
                name: n.to_string(),
                filter: f.map(str::to_string),
            })
            .collect(),
        clock: ClockKind::Mono,
        page_size: 4096,
        buffer_kb: 512,
        // The calling thread (tests run on threads of their own): what
        // it forks and spawns from here is traced too.
        pid: Some(tid()),
        tag: tag.into(),
    }
}

/// This thread's id.
fn tid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::gettid() as u32 }
}

/// The sched_switch id, read from tracefs (ids are per boot).
fn event_id(root: &Path, sys: &str, ev: &str) -> u16 {
    let f = std::fs::read_to_string(root.join(format!("events/{sys}/{ev}/format"))).unwrap();
    f.lines()
        .find_map(|l| l.strip_prefix("ID: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn records_sched_switch_of_this_process_and_removes_the_instance() {
    let Some(root) = root() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = KernelRecording::start(&root, &cfg(&[("sched:sched_switch", None)], "t1")).unwrap();
    let name = rec.instance_name();
    assert_eq!(ours(&root), vec![name.clone()]);
    let dir = root.join("instances").join(&name);
    let clock = std::fs::read_to_string(dir.join("trace_clock")).unwrap();
    assert!(clock.contains("[mono]"), "{clock}");
    let before = ringtrace::clock::Clock::mono().now();
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let after = ringtrace::clock::Clock::mono().now();
    let mut cap = rec.stop().unwrap();
    assert!(ours(&root).is_empty(), "instance left: {:?}", ours(&root));
    let switch = event_id(&root, "sched", "sched_switch");
    let me = tid() as i32;
    let (mut ours_switches, mut others) = (0, 0);
    for c in &mut cap.cpus {
        use std::io::Read;
        let mut all = Vec::new();
        c.file.read_to_end(&mut all).unwrap();
        assert_eq!(all.len() as u64, c.pages * 4096);
        for page in all.chunks_exact(4096) {
            let (_, events) = parse_page(page, PageLayout::NATIVE_64).unwrap();
            for e in events {
                let e = e.unwrap();
                let ty = u16::from_ne_bytes([e.payload[0], e.payload[1]]);
                if ty != switch {
                    others += 1;
                    continue;
                }
                let prev_pid = i32::from_ne_bytes(e.payload[24..28].try_into().unwrap());
                let next_pid = i32::from_ne_bytes(e.payload[56..60].try_into().unwrap());
                assert!(
                    prev_pid == me || next_pid == me,
                    "pid filter: {prev_pid} {next_pid}"
                );
                if prev_pid == me && (before..after).contains(&e.ts) {
                    ours_switches += 1;
                }
            }
        }
    }
    assert_eq!(others, 0, "events not asked for were recorded");
    // Each sleep switches this thread out once at least, stamped with
    // CLOCK_MONOTONIC between our two reads.
    assert!(
        ours_switches >= 20,
        "{ours_switches} sched_switch of pid {me}"
    );
    assert_eq!(cap.events.len(), 1);
    assert!(
        cap.stats.iter().all(|s| s.contains("overrun: 0")),
        "{:?}",
        cap.stats
    );
    assert_eq!(cap.lost(), 0);
}

#[test]
fn refused_names_and_filters_leave_no_instance() {
    let Some(root) = root() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let e =
        KernelRecording::start(&root, &cfg(&[("sched:no_such_event", None)], "t2")).unwrap_err();
    assert!(
        matches!(e, KernelError::UnknownEvent(ref n) if n == "sched:no_such_event"),
        "{e}"
    );
    assert!(ours(&root).is_empty());
    let e = KernelRecording::start(
        &root,
        &cfg(&[("sched:sched_switch", Some("bogus_field == 1"))], "t3"),
    )
    .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("bogus_field == 1") && text.contains("Field not found"),
        "{text}"
    );
    assert!(ours(&root).is_empty());
    // trace-cmd's forms resolve: a system, a glob, a bare event name.
    let ev = root.join("events");
    assert!(ringtrace::kernel::resolve(&ev, "sched").unwrap().len() > 3);
    let irq = ringtrace::kernel::resolve(&ev, "irq:*").unwrap();
    assert!(irq.iter().all(|(s, _)| s == "irq") && !irq.is_empty());
    assert_eq!(
        ringtrace::kernel::resolve(&ev, "sched_switch").unwrap(),
        vec![("sched".to_string(), "sched_switch".to_string())]
    );
}

#[test]
fn a_filter_keeps_only_matching_events() {
    let Some(root) = root() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Only switches *to* pid 1 (never this process): nothing of ours.
    let rec = KernelRecording::start(
        &root,
        &cfg(
            &[("sched:sched_switch", Some("next_pid == 1 && prev_pid == 1"))],
            "t4",
        ),
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let cap = rec.stop().unwrap();
    assert_eq!(cap.cpus.iter().map(|c| c.pages).sum::<u64>(), 0);
    assert!(ours(&root).is_empty());
}

#[test]
fn dropped_recordings_and_dead_owners_leave_nothing() {
    let Some(root) = root() else { return };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let rec = KernelRecording::start(&root, &cfg(&[("sched:sched_wakeup", None)], "t5")).unwrap();
    drop(rec);
    assert!(ours(&root).is_empty());
    // A dead owner's instance (a killed record) goes; a live owner's stays.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let stale = root.join(format!("instances/ringtrace-{dead}-stale"));
    let live = root.join(format!("instances/ringtrace-{}-live", std::process::id()));
    std::fs::create_dir(&stale).unwrap();
    std::fs::create_dir(&live).unwrap();
    let removed = remove_stale(&root).unwrap();
    let live_kept = live.exists();
    let _ = std::fs::remove_dir(&live);
    let _ = std::fs::remove_dir(&stale);
    assert!(
        removed.contains(&format!("ringtrace-{dead}-stale")),
        "{removed:?}"
    );
    assert!(live_kept);
    assert!(ours(&root).is_empty());
}
