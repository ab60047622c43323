//! Stack traces on events in `ringtrace report` (with and without
//! `--sym-offset`) and in the real `trace-cmd report`: a `user_stack`
//! record holding the addresses of functions of this test, at known
//! offsets, exported to trace.dat by this process (which names them from
//! its own memory map), must print those functions' names in order.
//!
//! The addresses are written, not walked, so this test needs no frame
//! pointers (`ringtrace`'s tests/stack_frame_pointers.rs walks real
//! stacks). Needs `trace-cmd` (FAILS, never skips, when it is not on PATH).

mod common;

use std::hint::black_box;

use common::{ok, text};
use ringtrace::export::{export_snapshot, ExportFormat};
use ringtrace::stack::UserStack;
use ringtrace::TracerConfig;

#[inline(never)]
fn stack_fn_alpha() -> u64 {
    black_box(11)
}

#[inline(never)]
fn stack_fn_beta() -> u64 {
    black_box(22)
}

/// The ` => ...` lines after the first `<user stack trace>` of `out`.
fn frames(out: &str) -> Vec<String> {
    let at = out
        .find("<user stack trace>")
        .unwrap_or_else(|| panic!("no stack:\n{out}"));
    out[at..]
        .lines()
        .skip(1)
        .map_while(|l| l.trim_start().strip_prefix("=>"))
        .map(|n| n.trim().to_string())
        .collect()
}

#[test]
fn report_names_stack_callers_with_and_without_offsets() {
    assert_eq!(stack_fn_alpha() + stack_fn_beta(), 33);
    let alpha = stack_fn_alpha as *const () as u64;
    let beta = stack_fn_beta as *const () as u64;
    let t = TracerConfig::new().max_contexts(2).build().unwrap();
    ringtrace::trace!(tracer: &t, "before the stack");
    let mut callers = [0u64; 8];
    callers[..3].copy_from_slice(&[alpha + 3, beta + 5, 0x10]);
    t.record(&UserStack {
        tgid: std::process::id(),
        callers,
    })
    .unwrap();
    let dat =
        std::env::temp_dir().join(format!("ringtrace-stack-report-{}.dat", std::process::id()));
    let file = std::fs::File::create(&dat).unwrap();
    export_snapshot(&t, file, ExportFormat::default()).unwrap();
    let path = dat.to_str().unwrap();

    let plain = text(&ok(&["report", "-i", path]).stdout);
    let f = frames(&plain);
    assert!(f[0].ends_with("::stack_fn_alpha"), "{plain}");
    assert!(f[1].ends_with("::stack_fn_beta"), "{plain}");
    // An address no symbol covers prints as a number, as the kernel does.
    assert_eq!(f[2], "<0000000000000010>", "{plain}");
    assert_eq!(f.len(), 3, "{plain}");

    let offs = text(&ok(&["report", "-i", path, "--sym-offset"]).stdout);
    let f = frames(&offs);
    assert!(f[0].ends_with("::stack_fn_alpha+0x3"), "{offs}");
    assert!(f[1].ends_with("::stack_fn_beta+0x5"), "{offs}");

    let tc = std::process::Command::new("trace-cmd")
        .args(["report", "-i", path])
        .output()
        .expect("running trace-cmd (apt-get install -y trace-cmd)");
    assert!(tc.status.success(), "{}", text(&tc.stderr));
    let out = text(&tc.stdout);
    std::fs::remove_file(&dat).unwrap();
    let names: Vec<&str> = out
        .lines()
        // trace-cmd prints the first frame on the event's own line.
        .filter_map(|l| l.split_once("=>").map(|(_, n)| n))
        .map(str::trim)
        .collect();
    let a = names.iter().position(|n| n.ends_with("::stack_fn_alpha"));
    let b = names.iter().position(|n| n.ends_with("::stack_fn_beta"));
    assert!(
        matches!((a, b), (Some(a), Some(b)) if b == a + 1),
        "{names:?}\n{out}"
    );
}
