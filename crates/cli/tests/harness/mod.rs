//! The runner of the workspace's `harness = false` process tests (the CLI's,
//! and `ringtrace`'s `session_procs`, which includes this file by path):
//! they run on the process's main thread (they fork, send signals and
//! re-execute the test binary as the traced program), so libtest's threads
//! are not used.

use std::time::Instant;

/// What a test that needs something of the machine did: it ran (and
/// passed, since a failure panics), or it could not apply, and why.
// Only shm.rs skips.
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ran {
    /// The test ran and passed.
    Done,
    /// The test did not run: the reason (counted as ignored).
    Skipped(&'static str),
}

/// A test that may not apply: it returns [`Ran::Skipped`] then.
pub type MayApply = fn() -> Ran;

/// Runs each test whose name contains one of the non-flag arguments (all
/// when there are none), catching panics, and prints libtest's lines so
/// CI reads the result; exits 101 if any failed.
pub fn run(args: &[String], tests: &[(&str, fn())]) {
    let tests: Vec<_> = tests
        .iter()
        .map(|&(name, f)| {
            (name, move || {
                f();
                Ran::Done
            })
        })
        .collect();
    run_each(args, &tests);
}

/// [`run`] for tests that may not apply ([`Ran::Skipped`]).
pub fn run_each<F: Fn() -> Ran + std::panic::RefUnwindSafe>(args: &[String], tests: &[(&str, F)]) {
    let filter: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let start = Instant::now();
    let (mut passed, mut failed, mut skipped, mut filtered) = (0, 0, 0, 0);
    for (name, f) in tests {
        if !filter.is_empty() && !filter.iter().any(|x| name.contains(x.as_str())) {
            filtered += 1;
            continue;
        }
        println!("test {name} ...");
        match std::panic::catch_unwind(f) {
            Ok(Ran::Done) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Ok(Ran::Skipped(why)) => {
                println!("test {name} ... skipped ({why})");
                skipped += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; {skipped} ignored; 0 measured; {filtered} filtered out; finished in {:.2}s",
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
    if let Some(args) = tests_args(prog) {
        run(&args, tests);
    }
}

/// [`main_or_prog`] for tests that may not apply ([`Ran::Skipped`]).
#[allow(dead_code)]
pub fn main_or_prog_each(prog: fn(&[String]), tests: &[(&str, MayApply)]) {
    if let Some(args) = tests_args(prog) {
        run_each(&args, tests);
    }
}

/// Runs `prog` when this binary was started as the traced program
/// (`BIN prog ARGS...`); else returns the test runner's arguments.
#[allow(dead_code)]
fn tests_args(prog: fn(&[String])) -> Option<Vec<String>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("prog") {
        prog(&args[2..]);
        return None;
    }
    Some(args[1..].to_vec())
}
