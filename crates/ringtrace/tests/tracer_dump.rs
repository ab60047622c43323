//! Crash dumps: a child process (this test binary, re-run with an
//! environment variable) records events, then panics, segfaults or aborts;
//! the parent checks that the child's stderr holds the merged dump and that
//! the child died of the right signal.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use ringtrace::clock::Clock;
use ringtrace::Mode;

const ENV: &str = "RINGTRACE_DUMP_CHILD";

ringtrace::declare_event! {
    /// A typed event for the dump.
    pub struct Crash<'a>: "test" / "crash_info" = 2501 { code: i32, what: &'a str }
}

/// The child: does nothing unless run by a parent test with `ENV` set.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(ENV) else { return };
    let t: &'static ringtrace::Tracer = Box::leak(Box::new(common::tracer(
        4,
        256 * 1024,
        Mode::Overwrite,
        Some(Clock::counter()),
    )));
    std::thread::Builder::new()
        .name("early".into())
        .spawn(move || ringtrace::trace!(tracer: t, "early thread %d", 1))
        .unwrap()
        .join()
        .unwrap();
    ringtrace::trace!(tracer: t, "a=%llu b=%s", 42u64, "str");
    ringtrace::trace_event!(
        t,
        Crash {
            code: -11,
            what: "about to crash"
        }
    );
    t.marker("last words");
    match mode.as_str() {
        "panic" => {
            t.dump_on_panic();
            panic!("boom");
        }
        "segv" => {
            t.dump_on_fatal_signal().unwrap();
            // SAFETY: maps one inaccessible page and writes to it: a real
            // SIGSEGV, which the handler turns into a dump and re-raises.
            unsafe {
                let p = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                );
                assert_ne!(p, libc::MAP_FAILED);
                std::ptr::write_volatile(p.cast::<u8>(), 1);
            }
            unreachable!("the write must fault");
        }
        "abort" => {
            t.dump_on_fatal_signal().unwrap();
            std::process::abort();
        }
        other => panic!("unknown mode {other}"),
    }
}

fn run_child(mode: &str) -> (std::process::ExitStatus, String) {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(ENV, mode)
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check_dump(stderr: &str) {
    let start = stderr
        .find("Dumping ftrace buffer:\n---------------------------------\n")
        .unwrap_or_else(|| panic!("no dump in stderr:\n{stderr}"));
    let dump = &stderr[start..];
    let body: Vec<&str> = dump.lines().skip(2).collect();
    let end = body
        .iter()
        .position(|l| *l == "---------------------------------")
        .unwrap_or_else(|| panic!("dump not terminated:\n{dump}"));
    let body = &body[..end];
    assert_eq!(body.len(), 4, "{dump}");
    assert!(body[0].starts_with("           early-"), "{}", body[0]);
    assert!(body[0].ends_with(": early thread 1"), "{}", body[0]);
    assert!(body[1].ends_with(": a=42 b=str"), "{}", body[1]);
    assert!(
        body[2].ends_with(": crash_info: code=-11 what=about to crash"),
        "{}",
        body[2]
    );
    assert!(
        body[3].ends_with(": tracing_mark_write: last words"),
        "{}",
        body[3]
    );
    // Counter clock: raw counts, in order.
    assert!(body[0].contains(" .....            1: "), "{}", body[0]);
    assert!(body[3].contains(" .....            4: "), "{}", body[3]);
}

#[test]
fn dump_on_panic() {
    let (status, stderr) = run_child("panic");
    assert!(!status.success());
    assert!(stderr.contains("boom"), "{stderr}");
    check_dump(&stderr);
}

#[test]
fn dump_on_segfault() {
    let (status, stderr) = run_child("segv");
    assert_eq!(status.signal(), Some(libc::SIGSEGV), "{status:?}\n{stderr}");
    check_dump(&stderr);
}

#[test]
fn dump_on_abort() {
    let (status, stderr) = run_child("abort");
    assert_eq!(status.signal(), Some(libc::SIGABRT), "{status:?}\n{stderr}");
    check_dump(&stderr);
}
