//! Stack traces on events, end to end, on code built with frame pointers.
//!
//! Built only with the crate feature `frame-pointer-tests`, which `.ci/test`
//! turns on in a cargo invocation of its own with
//! `RUSTFLAGS="-C force-frame-pointers=yes"` and a target directory of its
//! own (so the rest of the suite keeps its build): without frame pointers
//! the walk stops at the first frame, and these tests would fail, not skip.
//!
//! A known chain of five `#[inline(never)]` functions records an event;
//! the `user_stack` record after it must name the five, innermost first,
//! in `ringtrace report`'s text (the trace.dat renderer it uses) and in the
//! real `trace-cmd report`. A signal handler raised from inside an event's
//! encoding (so nested in the write path) records with a stack too: its
//! walk starts in the handler, on the alternate signal stack, and crosses
//! into the interrupted write.

mod tracedat_common;

use std::hint::black_box;
use std::io::Cursor;

use ringtrace::event::{CommonFields, EncodeError, EventType, Record};
use ringtrace::export::{export_snapshot, ExportFormat};
use ringtrace::tracedat::read::{TraceDatReader, TraceItem};
use ringtrace::tracedat::render::{FileRenderer, RenderOptions};
use ringtrace::{Tracer, TracerConfig};

#[inline(never)]
fn chain_level1(t: &Tracer, n: u64) -> u64 {
    black_box(chain_level2(t, black_box(n + 1))) + 1
}
#[inline(never)]
fn chain_level2(t: &Tracer, n: u64) -> u64 {
    black_box(chain_level3(t, black_box(n + 1))) + 1
}
#[inline(never)]
fn chain_level3(t: &Tracer, n: u64) -> u64 {
    black_box(chain_level4(t, black_box(n + 1))) + 1
}
#[inline(never)]
fn chain_level4(t: &Tracer, n: u64) -> u64 {
    black_box(chain_level5(t, black_box(n + 1))) + 1
}
#[inline(never)]
fn chain_level5(t: &Tracer, n: u64) -> u64 {
    ringtrace::trace!(tracer: t, "leaf n=%llu", n);
    black_box(n) + 1
}

const CHAIN: [&str; 5] = [
    "chain_level5",
    "chain_level4",
    "chain_level3",
    "chain_level2",
    "chain_level1",
];

/// The trace.dat of `t`'s events so far.
fn export(t: &Tracer) -> Vec<u8> {
    let (out, _) = export_snapshot(t, Cursor::new(Vec::new()), ExportFormat::default()).unwrap();
    out.into_inner()
}

/// `ringtrace report`'s text of the trace.dat `dat`.
fn report(dat: &[u8], sym_offset: bool) -> String {
    let mut r = TraceDatReader::new(Cursor::new(dat.to_vec())).unwrap();
    let info = r.info().clone();
    let render = FileRenderer::new(&info);
    let opts = RenderOptions {
        sym_offset,
        ..RenderOptions::default()
    };
    let mut text = String::new();
    for item in r.records() {
        if let TraceItem::Event(rec) = item.unwrap() {
            render.write_line(&mut text, &rec, &opts).unwrap();
        }
    }
    text
}

/// The last path segment of each ` => name` line after the first
/// `<user stack trace>` following `after`.
fn stack_after(text: &str, after: &str) -> Vec<String> {
    let from = text
        .find(after)
        .unwrap_or_else(|| panic!("no {after:?} in:\n{text}"));
    let rest = &text[from..];
    let at = rest
        .find("<user stack trace>")
        .unwrap_or_else(|| panic!("no stack after {after:?}:\n{text}"));
    rest[at..]
        .lines()
        .skip(1)
        .map_while(|l| l.trim_start().strip_prefix("=>"))
        .map(|n| n.trim().rsplit("::").next().unwrap_or("").to_string())
        .collect()
}

/// Whether `names` holds `want` as consecutive entries.
fn holds_in_order(names: &[String], want: &[&str]) -> bool {
    names
        .windows(want.len())
        .any(|w| w.iter().zip(want).all(|(n, w)| n.starts_with(w)))
}

#[test]
fn a_known_chain_is_named_in_order_by_ringtrace_and_trace_cmd() {
    let t = TracerConfig::new()
        .max_contexts(4)
        .stacktrace(true)
        .build()
        .unwrap();
    assert_eq!(chain_level1(&t, 0), 9);
    let dat = export(&t);
    let text = report(&dat, false);
    let names = stack_after(&text, "leaf n=4");
    assert!(holds_in_order(&names, &CHAIN), "{names:?}\n{text}");
    // --sym-offset: each caller as symbol+0xOFFSET.
    let text = report(&dat, true);
    let names = stack_after(&text, "leaf n=4");
    assert!(
        names.iter().any(|n| n.starts_with("chain_level3+0x")),
        "{names:?}\n{text}"
    );
    // The real trace-cmd, from the file's user_stack format and kallsyms.
    let path = std::env::temp_dir().join(format!("ringtrace-stack-{}.dat", std::process::id()));
    std::fs::write(&path, &dat).unwrap();
    let out = tracedat_common::trace_cmd_ok(&["report", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    let names: Vec<String> = out
        .lines()
        // trace-cmd prints the first frame on the event's own line.
        .filter_map(|l| l.split_once("=>").map(|(_, n)| n))
        .map(|n| n.trim().rsplit("::").next().unwrap_or("").to_string())
        .collect();
    assert!(holds_in_order(&names, &CHAIN), "{names:?}\n{out}");
}

/// An event whose encoding raises SIGUSR1: the handler runs nested in the
/// write path of this event.
struct Raising;

static RAISING_EVENT: EventType = EventType {
    name: "raising",
    system: "test",
    id: 2301,
    fields: &[],
    print_fmt: "\"raising\"",
};

impl Record for Raising {
    fn event_type(&self) -> &'static EventType {
        &RAISING_EVENT
    }
    fn encoded_len(&self) -> usize {
        8
    }
    fn encode(&self, common: &CommonFields, out: &mut [u8]) -> Result<usize, EncodeError> {
        // The signal to this thread, from libc's `syscall` (a few
        // instructions that keep the frame pointer, unlike `raise`): the
        // handler runs on the way back from the system call, and its walk
        // continues into this function's frame.
        // SAFETY: tgkill to this very thread, whose SIGUSR1 handler is
        // installed; getpid and gettid cannot fail.
        unsafe {
            libc::syscall(
                libc::SYS_tgkill,
                libc::getpid(),
                libc::gettid(),
                libc::SIGUSR1,
            );
        }
        common.write(RAISING_EVENT.id, out);
        Ok(8)
    }
}

static TRACER: std::sync::OnceLock<Tracer> = std::sync::OnceLock::new();

#[inline(never)]
fn handler_inner() -> u64 {
    let _scope = ringtrace::signal_scope();
    if let Some(t) = TRACER.get() {
        ringtrace::trace!(tracer: t, "in handler");
    }
    black_box(1) + 1
}

#[inline(never)]
fn handler_outer() -> u64 {
    black_box(handler_inner()) + 1
}

extern "C" fn on_usr1(_: libc::c_int) {
    black_box(handler_outer());
}

#[inline(never)]
fn write_raising(t: &Tracer) -> u64 {
    t.record(&Raising).unwrap();
    black_box(2) + 1
}

#[test]
fn a_handler_nested_in_the_write_path_walks_from_the_alt_stack_into_the_write() {
    let t = TRACER.get_or_init(|| {
        TracerConfig::new()
            .max_contexts(4)
            .stacktrace(true)
            .build()
            .unwrap()
    });
    // SAFETY: the handler records with ringtrace only (async-signal-safe
    // once the thread has its context, which the first event leases).
    unsafe {
        ringtrace::signal::install(
            libc::SIGUSR1,
            ringtrace::signal::Handler::Plain(on_usr1),
            libc::SA_ONSTACK,
        )
    }
    .unwrap();
    std::thread::spawn(move || {
        // An alternate stack of our own, larger than the one std gives a
        // thread: an unoptimised build's handler frames do not fit that.
        let mut alt = vec![0u8; 1 << 18];
        let ss = libc::stack_t {
            ss_sp: alt.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: alt.len(),
        };
        // SAFETY: `alt` outlives its use: disabled below before it drops.
        assert_eq!(unsafe { libc::sigaltstack(&ss, std::ptr::null_mut()) }, 0);
        // An ordinary event first: the thread's context and stack bounds.
        ringtrace::trace!(tracer: t, "first");
        let no_stack = ringtrace::stack::no_stack_count();
        assert_eq!(write_raising(t), 3);
        assert_eq!(ringtrace::stack::no_stack_count(), no_stack);
        let off = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: disables the alternate stack; no handler runs now.
        assert_eq!(unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) }, 0);
        drop(alt);
    })
    .join()
    .unwrap();
    let text = report(&export(t), false);
    let names = stack_after(&text, "in handler");
    assert!(
        holds_in_order(&names, &["handler_inner", "handler_outer", "on_usr1"]),
        "{names:?}\n{text}"
    );
    // Past the handler's frames (and the kernel's signal frame), the
    // interrupted code: the write of the raising event.
    let past = names.iter().position(|n| n.starts_with("on_usr1")).unwrap();
    assert!(
        names.len() > past + 2,
        "the walk stopped in the handler: {names:?}\n{text}"
    );
}
