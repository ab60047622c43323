//! The runner of the workspace's `harness = false` process tests (the CLI's,
//! and `ringtrace`'s `session_procs`, which includes this file by path):
//! they run on the process's main thread (they fork, send signals and
//! re-execute the test binary as the traced program), so libtest's threads
//! are not used.

use std::time::Instant;

/// Runs each test whose name contains one of the non-flag arguments (all
/// when there are none), catching panics, and prints libtest's lines so
/// CI reads the result; exits 101 if any failed.
pub fn run(args: &[String], tests: &[(&str, fn())]) {
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let start = Instant::now();
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    for &(name, f) in tests {
        if !filter.is_empty() && !filter.iter().any(|x| name.contains(x.as_str())) {
            filtered += 1;
            continue;
        }
        println!("test {name} ...");
        match std::panic::catch_unwind(f) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {filtered} filtered out; finished in {:.2}s",
        if failed == 0 { "ok" } else { "FAILED" },
        start.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

/// The `main` of a process test whose binary is also its traced program:
/// `BIN prog ARGS...` runs `prog(ARGS)`, anything else runs the tests.
// ringtrace's session_procs (which includes this file) has a main of its
// own: unused there.
#[allow(dead_code)]
pub fn main_or_prog(prog: fn(&[String]), tests: &[(&str, fn())]) {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("prog") {
        prog(&args[2..]);
        return;
    }
    run(&args[1..], tests);
}
