//! Sessions on a small shared-memory file system: the test mounts its own
//! 16 MiB tmpfs (`mount -t tmpfs -o size=16m`) and records into it with
//! `--shm-dir` and `RINGTRACE_SHM_DIR`. With the default sizes `record`
//! fails before the program starts, naming the size needed and the space
//! free; with sizes that fit, the session's memory is reserved when it is
//! created, so a program writing into it after the file system was filled
//! to the last byte never gets SIGBUS.
//!
//! Mounting needs privileges (root, or CAP_SYS_ADMIN). Where that is not
//! permitted the test FAILS, saying why, unless `RINGTRACE_TEST_NO_MOUNT=1`
//! documents the skip (then it prints that it skipped).
//!
//! Also (no mount needed): the events a forked child of the program could
//! not record for want of a free context are reported by `record`'s
//! summary, `stat` and `pipe`.
//!
//! `harness = false`: `main` runs the tests, or (`prog ...`) the traced
//! program.

mod common;
mod harness;

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{me, ringtrace_bin, run, text, wait_for_file, wait_output, HANG_GUARD};
use harness::{MayApply, Ran};

/// The traced program: creates `GO.ready` (the session exists: `record`
/// starts the program after making it), waits for the file `GO`, then
/// writes `n` events from two threads into the default tracer (the
/// session `record` made).
fn prog(args: &[String]) {
    if args[0] == "forkrefuse" {
        return fork_refuse(args[1].parse().unwrap());
    }
    let go = Path::new(&args[0]);
    let n: u64 = args[1].parse().unwrap();
    std::fs::write(go.with_extension("ready"), b"").unwrap();
    wait_for_file(go, "never told to go");
    std::thread::scope(|s| {
        for w in 0..2u32 {
            s.spawn(move || {
                for i in 0..n {
                    ringtrace::trace!("w%u i=%llu fill the pages", w, i);
                }
            });
        }
    });
    let st = ringtrace::global().unwrap().stats();
    println!("wrote {} refused {}", 2 * n, st.refused_no_context);
}

/// The traced program of `refusals_are_reported`: records one event (so
/// the only context is its), then forks a child that tries `n` events, all
/// refused, and waits for it.
fn fork_refuse(n: u32) {
    ringtrace::trace!("parent");
    // SAFETY: this program has one thread; the child only records and
    // leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let refused = (0..n)
            .filter(|&i| {
                ringtrace::global()
                    .unwrap()
                    .record(&ringtrace::bprintk!("child %u", i))
                    .is_err()
            })
            .count();
        // SAFETY: ends the child at once (its refusals are in the session).
        unsafe { libc::_exit(i32::from(refused != n as usize)) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child into a valid out-pointer.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    println!("child refused {n}");
}

/// A tmpfs mounted on a temporary directory; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `None` when mounting is not permitted and the skip is documented.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir.path())
            .output();
        let why = match o {
            Ok(o) if o.status.success() => return Some(Tmpfs { dir }),
            Ok(o) => format!("{}: {}", o.status, text(&o.stderr).trim()),
            Err(e) => format!("cannot run mount: {e}"),
        };
        if std::env::var_os("RINGTRACE_TEST_NO_MOUNT").is_some_and(|v| v == "1") {
            println!(
                "  SKIPPED: mounting a {size} tmpfs is not permitted here ({why}); \
                 RINGTRACE_TEST_NO_MOUNT=1 says so"
            );
            return None;
        }
        panic!(
            "mounting a {size} tmpfs on {} failed ({why}): this test needs root or \
             CAP_SYS_ADMIN; set RINGTRACE_TEST_NO_MOUNT=1 to skip it where mounting is \
             not permitted",
            dir.path().display()
        );
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// `ringtrace ARGS` with `RINGTRACE_SHM_DIR=dir`.
fn ringtrace_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(ringtrace_bin())
        .args(args)
        .env("RINGTRACE_SHM_DIR", dir)
        .output()
        .unwrap()
}

/// With default sizes the session does not fit in 16 MiB: `record` fails
/// before the program runs, whether the directory comes from `--shm-dir`
/// or `RINGTRACE_SHM_DIR`, and leaves no file behind.
fn default_sizes_fail_before_the_program_starts(fs: &Tmpfs) {
    let d = tempfile::tempdir().unwrap();
    let marker = d.path().join("ran");
    let touch = format!("touch {}", marker.display());
    let out = d.path().join("t.dat");
    for via_env in [false, true] {
        let mut c = Command::new(ringtrace_bin());
        c.arg("record");
        if via_env {
            c.env("RINGTRACE_SHM_DIR", fs.path());
        } else {
            c.arg("--shm-dir").arg(fs.path());
        }
        let o = c
            .arg("-o")
            .arg(&out)
            .args(["--", "sh", "-c", &touch])
            .output()
            .unwrap();
        let e = text(&o.stderr);
        assert!(!o.status.success(), "{e}");
        assert!(!marker.exists(), "the program ran: {e}");
        assert!(
            e.contains("needs ")
                && e.contains(" MiB")
                && e.contains(" free")
                && e.contains("-b KB")
                && e.contains("--shm-dir DIR")
                && e.contains("RINGTRACE_SHM_DIR=DIR")
                && e.contains(&fs.path().display().to_string()),
            "{e}"
        );
        assert!(files_in(fs.path()).is_empty(), "{:?}", files_in(fs.path()));
        println!("  default sizes refused (via env: {via_env}): {}", e.trim());
    }
}

/// A session that fits is created there (fully allocated), found by
/// `list` and `remove` through `RINGTRACE_SHM_DIR`; the file system is
/// then filled to the last byte before the program writes: it writes
/// every page of its rings over and over, and neither it nor `record`
/// faults.
fn a_filled_file_system_never_faults_the_program(fs: &Tmpfs) {
    let d = tempfile::tempdir().unwrap();
    let go = d.path().join("go");
    let n = 20_000u64;
    let rec = record_small_session(fs, &go, n);
    // The program runs: the session is made.
    wait_for_file(&go.with_extension("ready"), "the program never started");
    let session = the_one_session_fully_allocated(fs);
    let filled = fill_to_the_last_byte(fs);
    std::fs::write(&go, b"").unwrap();
    let o = wait_output(rec, HANG_GUARD, "record");
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{}: {stderr}", o.status);
    assert!(
        stdout.contains(&format!("wrote {} refused 0", 2 * n)),
        "{stdout}\n{stderr}"
    );
    // The kept session is found by name in RINGTRACE_SHM_DIR and read.
    let list = ringtrace_in(fs.path(), &["list"]);
    assert!(
        text(&list.stdout).contains(&session.display().to_string()),
        "{}{}",
        text(&list.stdout),
        text(&list.stderr)
    );
    the_rings_wrapped_over_every_event(fs, 2 * n);
    let rm = ringtrace_in(fs.path(), &["remove", "small"]);
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    assert!(!session.exists());
    println!(
        "  {} events written into a session after {filled} bytes filled the rest",
        2 * n
    );
}

/// `record` into `fs` of a session `small` that fits, of the program
/// writing `n` events per thread once `go` exists.
fn record_small_session(fs: &Tmpfs, go: &Path, n: u64) -> Child {
    Command::new(ringtrace_bin())
        .arg("record")
        .arg("--shm-dir")
        .arg(fs.path())
        .args([
            "-b",
            "64",
            "--contexts",
            "4",
            "--mode",
            "overwrite",
            "--name",
            "small",
        ])
        .arg("--")
        .arg(me())
        .arg("prog")
        .args([go.as_os_str(), OsStr::new(&n.to_string())])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The only file in `fs`, the session, with every block allocated.
fn the_one_session_fully_allocated(fs: &Tmpfs) -> PathBuf {
    let files = files_in(fs.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let session = files[0].clone();
    let meta = std::fs::metadata(&session).unwrap();
    assert!(
        meta.blocks() * 512 >= meta.len(),
        "{}: {} of {} bytes allocated",
        session.display(),
        meta.blocks() * 512,
        meta.len()
    );
    session
}

/// Fills `fs` to the last byte; returns the bytes written.
fn fill_to_the_last_byte(fs: &Tmpfs) -> u64 {
    let filler = fs.path().join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0x5au8; 4096];
    let mut filled = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(k) => filled += k as u64,
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
                break;
            }
        }
    }
    filled
}

/// `stat small` in `fs`: the rings wrapped (overwrite), and entries +
/// overrun account for every one of the `written` events.
fn the_rings_wrapped_over_every_event(fs: &Tmpfs, written: u64) {
    let stat = ringtrace_in(fs.path(), &["stat", "small"]);
    let st = text(&stat.stdout);
    assert!(stat.status.success(), "{st}{}", text(&stat.stderr));
    let sum = |key: &str| -> u64 {
        st.lines()
            .filter_map(|l| l.trim().strip_prefix(key))
            .map(|v| v.trim().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(sum("entries:") + sum("overrun:"), written, "{st}");
    assert!(sum("overrun:") > 0, "the rings did not wrap: {st}");
}

/// One context, taken by the program; its forked child's 500 events are
/// refused. `record`'s summary, `stat` and `pipe` report them, from the
/// count in the session (the child's own count died with it).
fn refusals_are_reported() -> Ran {
    let d = tempfile::tempdir().unwrap();
    let dat = d.path().join("r.dat");
    let o = Command::new(ringtrace_bin())
        .args([
            "record",
            "--contexts",
            "1",
            "-b",
            "16",
            "--keep",
            "--name",
            "refusals",
            "-o",
        ])
        .arg(&dat)
        .arg("--")
        .arg(me())
        .args(["prog", "forkrefuse", "500"])
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("child refused 500"), "{stdout}");
    assert!(
        stderr.contains(
            "500 event(s) lost before reaching a ring: 500 refused for want of a free context"
        ),
        "{stderr}"
    );
    let session = stderr
        .lines()
        .find_map(|l| l.split("session kept: ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{stderr}"))
        .to_string();
    let stat = run(&["stat", &session]);
    let st = text(&stat.stdout);
    assert!(
        st.contains("refused: 500 event(s)"),
        "{st}{}",
        text(&stat.stderr)
    );
    let pipe = run(&["pipe", &session]);
    let p = text(&pipe.stdout);
    assert!(
        p.lines()
            .any(|l| l == "[LOST 500 EVENTS: refused before reaching a ring]"),
        "{p}{}",
        text(&pipe.stderr)
    );
    let rm = run(&["remove", &session]);
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    println!("  500 refusals of a forked child in the summary, stat and pipe");
    Ran::Done
}

/// The tests that need a small tmpfs, on one mount (skipped where mounts
/// are refused: `RINGTRACE_TEST_NO_MOUNT=1`).
fn small_shm() -> Ran {
    let Some(fs) = Tmpfs::mount("16m") else {
        return Ran::Skipped("RINGTRACE_TEST_NO_MOUNT=1");
    };
    default_sizes_fail_before_the_program_starts(&fs);
    a_filled_file_system_never_faults_the_program(&fs);
    Ran::Done
}

fn main() {
    let tests: &[(&str, MayApply)] = &[
        ("refusals_are_reported", refusals_are_reported),
        ("small_shm", small_shm),
    ];
    harness::main_or_prog_each(prog, tests);
}
