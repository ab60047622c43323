//! Sessions with real writer processes, forked (the way programs fork
//! workers) or started afresh: refusals of a forked child counted in the
//! session, a writer that finds the process table full running untraced
//! (never leasing a ring readers would take for a dead writer's), rings
//! of gone processes taken over with their events kept in both modes,
//! files with unbacked memory refused (the program runs untraced, no
//! SIGBUS), and session file names nobody can squat.
//!
//! `harness = false`: `main` runs the tests one after another on its one
//! thread, so that `fork` never copies a test thread holding a lock; with
//! `untraced-prog` as its first argument it is the traced program instead.

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// The runner the CLI's `harness = false` tests share (one copy for the
// workspace).
#[path = "../../cli/tests/harness/mod.rs"]
mod harness;
mod session_common;

use ringtrace::session::{Session, SessionConfig, SessionError, SessionRefusals, SESSION_ENV};
use ringtrace::{Mode, Tracer};
use session_common::{check_accounting, read_all};

/// Hang guard for waits on children (never a performance bound).
const HANG_GUARD: Duration = Duration::from_secs(120);

/// A session of `contexts` rings of 8 KiB in `mode`.
fn cfg(dir: &Path, name: &str, contexts: usize, mode: Mode) -> SessionConfig {
    SessionConfig {
        mode,
        ..session_common::config(dir, name, contexts, 8192)
    }
}

/// Forks; the child runs `f` and leaves with `_exit(f())` (no atexit, no
/// destructors: as a worker that ends abruptly). Returns the child's pid.
fn fork_child(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: this process has one thread (harness = false), so the child
    // inherits no lock held by another thread.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(99);
        // SAFETY: ends the child at once.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Waits for child `pid` (bounded by the hang guard) and returns its exit
/// code; a child killed by a signal fails the test.
fn wait_child(pid: libc::pid_t) -> i32 {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            assert!(
                libc::WIFEXITED(status),
                "child {pid} did not exit normally: status {status:#x}"
            );
            return libc::WEXITSTATUS(status);
        }
        assert_eq!(r, 0, "waitpid: {}", std::io::Error::last_os_error());
        if start.elapsed() > HANG_GUARD {
            // SAFETY: kills our own hung child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("child {pid} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

extern "C" fn on_usr1(_: libc::c_int) {
    let _s = ringtrace::signal_scope();
    if let Some(t) = HANDLER_TRACER.get() {
        let _ = t.record(&ringtrace::bprintk!("in handler"));
    }
}

/// The tracer the SIGUSR1 handler records into.
static HANDLER_TRACER: std::sync::OnceLock<&'static Tracer> = std::sync::OnceLock::new();

/// No context for the events of a forked child (the only one is leased
/// by its live parent), nor for its signal handler (its thread has no
/// context yet): the child's refusals are counted in the session, where a
/// reader sees them, each kind apart.
fn refusals_of_a_forked_child_are_counted_in_the_session() {
    let d = tempfile::tempdir().unwrap();
    let s = Session::create(&cfg(d.path(), "refuse", 1, Mode::ProducerConsumer)).unwrap();
    let path = s.path().to_path_buf();
    let t: &'static Tracer = Box::leak(Box::new(Tracer::attach_session(s).unwrap()));
    ringtrace::trace!(tracer: t, "parent %u", 7u32);
    assert_eq!(t.stats().leases, 1);
    let kid = fork_child(|| {
        let _ = HANDLER_TRACER.set(t);
        // SAFETY: installs a handler that only records (async-signal-safe)
        // and raises the signal on this thread.
        unsafe {
            libc::signal(libc::SIGUSR1, on_usr1 as *const () as libc::sighandler_t);
            libc::raise(libc::SIGUSR1);
        }
        let mut refused = 0;
        for i in 0..500u32 {
            if t.record(&ringtrace::bprintk!("child %u", i)).is_err() {
                refused += 1;
            }
        }
        // Its own count, and the session's (parent's none so far).
        let own = t.stats();
        let shared = t.session_refused().unwrap();
        let want = SessionRefusals {
            no_context: 500,
            in_signal_handler: 1,
            ..SessionRefusals::default()
        };
        i32::from(
            !(refused == 500
                && own.refused_no_context == 500
                && own.refused_in_signal_handler == 1
                && shared == want),
        )
    });
    assert_eq!(wait_child(kid), 0, "the child's own counts");
    // The parent never refused anything itself; the session knows.
    let want = SessionRefusals {
        no_context: 500,
        in_signal_handler: 1,
        ..SessionRefusals::default()
    };
    assert_eq!(t.stats().refused_no_context, 0);
    assert_eq!(t.session_refused(), Some(want));
    let o = Session::open(&path).unwrap();
    assert_eq!(o.refused(), want);
    assert_eq!(o.refused().events(), 501);
    drop(o);
    let (r, lines) = read_all(&path);
    assert_eq!(r.session_refused(), Some(want));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].ends_with(": parent 7\n"), "{lines:?}");
    assert_eq!(check_accounting(&r), 0);
    let st = r.ring_stats(0).unwrap();
    assert_eq!((st.written, st.read), (1, 1), "{st:?}");
    println!("  a forked child's 500 refusals and 1 in its signal handler seen by a reader");
}

/// 64 live processes fill the process table; a 65th writer finds no entry
/// (none of a gone process either): it leases nothing, runs untraced with
/// one line on stderr, and its refusals are counted in the session. Once
/// the 64 are gone, a new writer takes over an entry and records.
fn a_full_process_table_makes_a_writer_run_untraced() {
    let d = tempfile::tempdir().unwrap();
    let s = Session::create(&cfg(d.path(), "full", 4, Mode::ProducerConsumer)).unwrap();
    let path = s.path().to_path_buf();
    let holders = Holders::fill_the_process_table(&path);
    let err = d.path().join("stderr");
    an_unregistered_writer_runs_untraced(&path, &err);
    let o = Session::open(&path).unwrap();
    let want = SessionRefusals {
        no_context: 100,
        untraced_processes: 1,
        ..SessionRefusals::default()
    };
    assert_eq!(o.refused(), want);
    // No ring was leased (a reader would judge its writer by an entry it
    // does not have) and the session is alive: its 64 holders run.
    let r = Tracer::read_session(Session::open(&path).unwrap()).unwrap();
    assert_eq!(r.leased_contexts(), 0);
    assert_eq!(o.state(), ringtrace::session::SessionState::Alive);
    holders.release();
    // They are gone without detaching: a new writer takes over an entry.
    a_later_writer_takes_over_an_entry(&path);
    println!("  the 65th writer ran untraced; a later one got a gone process's entry");
}

/// Forked processes that each hold a process-table entry until released.
struct Holders {
    pids: Vec<libc::pid_t>,
    /// Write end of the pipe whose closing releases the holders.
    go: libc::c_int,
    /// Read end of the pipe the holders report on.
    ready: libc::c_int,
}

impl Holders {
    /// Forks one holder per process-table entry of the session at `path`:
    /// each registers, says so on a pipe, then waits for the parent to
    /// close the other pipe. Returns once every one has registered.
    fn fill_the_process_table(path: &Path) -> Holders {
        let mut go = [0; 2];
        let mut ready = [0; 2];
        // SAFETY: two valid out-arrays of two fds each.
        unsafe {
            assert_eq!(libc::pipe(go.as_mut_ptr()), 0);
            assert_eq!(libc::pipe(ready.as_mut_ptr()), 0);
        }
        let mut pids = Vec::new();
        for _ in 0..ringtrace::session::PROCS {
            let path = path.to_path_buf();
            pids.push(fork_child(move || {
                // SAFETY: closing inherited fds and reading/writing one byte
                // through valid buffers.
                unsafe {
                    libc::close(go[1]);
                    libc::close(ready[0]);
                    let ok = Session::open(&path).is_ok_and(|s| s.register_process());
                    let b = [u8::from(ok)];
                    libc::write(ready[1], b.as_ptr().cast(), 1);
                    let mut x = [0u8; 1];
                    libc::read(go[0], x.as_mut_ptr().cast(), 1);
                }
                0
            }));
        }
        // SAFETY: closing our copies of the ends the children use.
        unsafe {
            libc::close(go[0]);
            libc::close(ready[1]);
        }
        for _ in 0..pids.len() {
            let mut b = [0u8; 1];
            // SAFETY: reads one byte into a valid buffer.
            let n = unsafe { libc::read(ready[0], b.as_mut_ptr().cast(), 1) };
            assert_eq!((n, b[0]), (1, 1), "a holder could not register");
        }
        Holders {
            pids,
            go: go[1],
            ready: ready[0],
        }
    }

    /// Lets every holder go (they end without detaching) and waits for
    /// each.
    fn release(self) {
        // SAFETY: closing the write end releases every holder.
        unsafe { libc::close(self.go) };
        for h in self.pids {
            assert_eq!(wait_child(h), 0);
        }
        // SAFETY: closing our read end.
        unsafe { libc::close(self.ready) };
    }
}

/// A writer forked while the process table of the session at `path` is
/// full: its 100 records are refused, it leases no context, and it says
/// so in one line on its stderr (redirected to `err`).
fn an_unregistered_writer_runs_untraced(path: &Path, err: &Path) {
    let writer = {
        let (path, err) = (path.to_path_buf(), err.to_path_buf());
        fork_child(move || {
            let f = std::fs::File::create(&err).unwrap();
            // SAFETY: redirects this child's stderr to the file.
            unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&f), 2) };
            let t = Tracer::attach_session(Session::open(&path).unwrap()).unwrap();
            let mut refused = 0;
            for i in 0..100u32 {
                if t.record(&ringtrace::bprintk!("unregistered %u", i))
                    .is_err()
                {
                    refused += 1;
                }
            }
            i32::from(!(refused == 100 && t.leased_contexts() == 0))
        })
    };
    assert_eq!(wait_child(writer), 0, "the 65th writer recorded something");
    let text = std::fs::read_to_string(err).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("process table is full") && text.contains("runs untraced"),
        "{text}"
    );
}

/// A writer forked once the holders of the session at `path` are gone
/// records its 10 events; they are all there, and none of the untraced
/// writer's.
fn a_later_writer_takes_over_an_entry(path: &Path) {
    let kid = {
        let path = path.to_path_buf();
        fork_child(move || {
            let t = Tracer::attach_session(Session::open(&path).unwrap()).unwrap();
            let ok = (0..10u32).all(|i| t.record(&ringtrace::bprintk!("late %u", i)).is_ok());
            i32::from(!ok)
        })
    };
    assert_eq!(wait_child(kid), 0, "a writer after the holders are gone");
    let (r, lines) = read_all(path);
    let late: Vec<&String> = lines.iter().filter(|l| l.contains(": late ")).collect();
    assert_eq!(late.len(), 10, "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("unregistered")));
    assert_eq!(check_accounting(&r), 0);
}

/// 8 short-lived processes, one after another, through 2 contexts and no
/// reader, in overwrite and in producer/consumer mode; every other one
/// ends with `_exit` while leasing (as if killed), the others detach.
/// Each gets a context (it takes over a ring a gone process left, events
/// and all), and every event of every process is still there.
fn rings_of_gone_processes_are_taken_over_in_every_mode() {
    for mode in [Mode::Overwrite, Mode::ProducerConsumer] {
        let d = tempfile::tempdir().unwrap();
        let s = Session::create(&cfg(d.path(), "kids", 2, mode)).unwrap();
        let path = s.path().to_path_buf();
        drop(s);
        let (kids, per) = (8u32, 10u32);
        let mut pids = Vec::new();
        for k in 0..kids {
            let path = path.clone();
            let kid = fork_child(move || {
                let t = Tracer::attach_session(Session::open(&path).unwrap()).unwrap();
                let me = std::process::id();
                let ok = (0..per).all(|i| {
                    t.record(&ringtrace::bprintk!("kid %u seq %u", me, i))
                        .is_ok()
                });
                if k % 2 == 0 {
                    drop(t);
                } else {
                    std::mem::forget(t);
                }
                i32::from(!ok)
            });
            assert_eq!(
                wait_child(kid),
                0,
                "{mode:?}: child {k} was refused a context"
            );
            pids.push(kid as u32);
        }
        let (r, lines) = read_all(&path);
        let mut seen: HashMap<u32, Vec<u32>> = HashMap::new();
        for l in &lines {
            let Some(rest) = l.split(": kid ").nth(1) else {
                panic!("{mode:?}: unexpected line {l:?}");
            };
            let mut it = rest.split_whitespace();
            let pid: u32 = it.next().unwrap().parse().unwrap();
            assert_eq!(it.next(), Some("seq"));
            let seq: u32 = it.next().unwrap().parse().unwrap();
            seen.entry(pid).or_default().push(seq);
        }
        for p in &pids {
            let mut v = seen.remove(p).unwrap_or_default();
            v.sort_unstable();
            assert_eq!(v, (0..per).collect::<Vec<_>>(), "{mode:?}: process {p}");
        }
        assert!(seen.is_empty(), "{mode:?}: {seen:?}");
        assert_eq!(check_accounting(&r), 0);
        let lost: u64 = (0..2)
            .map(|i| {
                let s = r.ring_stats(i).unwrap();
                s.overrun + s.dropped + s.commit_overrun
            })
            .sum();
        assert_eq!(lost, 0, "{mode:?}");
        assert_eq!(
            r.session_refused(),
            Some(SessionRefusals::default()),
            "{mode:?}"
        );
        println!(
            "  {mode:?}: {kids} processes through 2 contexts, all {} events kept",
            kids * per
        );
    }
}

/// The traced program of `session_with_holes_is_refused_and_the_program_runs_untraced`.
fn untraced_prog() {
    for i in 0..100u32 {
        ringtrace::trace!("untraced %u", i);
    }
    println!("done");
}

/// A session whose ring memory is not allocated (punched: as a file never
/// reserved) is refused on open with the sizes; a program told to attach
/// to it runs untraced, says so in one line, and exits 0 (no SIGBUS).
/// Files `create` makes are fully allocated.
fn session_with_holes_is_refused_and_the_program_runs_untraced() {
    let d = tempfile::tempdir().unwrap();
    let s = Session::create(&cfg(d.path(), "holes", 2, Mode::ProducerConsumer)).unwrap();
    let path = s.path().to_path_buf();
    let meta = std::fs::metadata(&path).unwrap();
    assert!(
        meta.blocks() * 512 >= meta.len(),
        "created with holes: {} of {} bytes allocated",
        meta.blocks() * 512,
        meta.len()
    );
    let ring_at = s.layout().ring_offset;
    drop(s);
    Session::open(&path).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    // SAFETY: a plain system call on an fd we own.
    let r = unsafe {
        libc::fallocate(
            std::os::fd::AsRawFd::as_raw_fd(&f),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            ring_at as libc::off_t,
            (meta.len() - ring_at) as libc::off_t,
        )
    };
    assert_eq!(r, 0, "punching a hole: {}", std::io::Error::last_os_error());
    drop(f);
    let e = Session::open(&path).unwrap_err();
    assert!(matches!(e, SessionError::NotBacked { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&path.display().to_string())
            && msg.contains("allocated")
            && msg.contains(&meta.len().to_string()),
        "{msg}"
    );
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("untraced-prog")
        .env(SESSION_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            panic!("the traced program hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{status}: {err}");
    assert_eq!(out, "done\n");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("allocated") && err.contains(SESSION_ENV),
        "{err}"
    );
    println!("  a session with holes is refused; the program ran untraced");
}

/// Session files get a random suffix and `O_EXCL`: the name a squatter
/// could predict (`ringtrace-PID-NAME`, even as a symbolic link) does not
/// stop a session of that name, nor does a session of the same name; the
/// name is still found by `resolve`.
fn session_file_names_cannot_be_squatted() {
    let d = tempfile::tempdir().unwrap();
    let pid = std::process::id();
    let target = d.path().join("target");
    std::fs::write(&target, b"not yours").unwrap();
    let predictable = d.path().join(format!("ringtrace-{pid}-sq"));
    std::os::unix::fs::symlink(&target, &predictable).unwrap();
    let a = Session::create(&cfg(d.path(), "sq", 1, Mode::ProducerConsumer)).unwrap();
    let b = Session::create(&cfg(d.path(), "sq", 1, Mode::ProducerConsumer)).unwrap();
    assert_ne!(a.path(), b.path());
    for s in [&a, &b] {
        let file = s.path().file_name().unwrap().to_str().unwrap();
        let suffix = file
            .strip_prefix(&format!("ringtrace-{pid}-sq@"))
            .unwrap_or_else(|| panic!("{file}"));
        assert!(
            suffix.len() == 16 && suffix.bytes().all(|c| c.is_ascii_hexdigit()),
            "{file}"
        );
        assert_eq!(
            ringtrace::session::parse_file_name(file),
            Some((pid.to_string().as_str(), "sq"))
        );
    }
    assert_eq!(std::fs::read(&target).unwrap(), b"not yours");
    // Found by name in RINGTRACE_SHM_DIR (two of them: ambiguous), and by
    // path.
    std::env::set_var(ringtrace::session::SHM_DIR_ENV, d.path());
    let found = ringtrace::session::resolve("sq");
    std::env::remove_var(ringtrace::session::SHM_DIR_ENV);
    assert!(
        matches!(found, Err(SessionError::Ambiguous { .. })),
        "{found:?}"
    );
    b.remove().unwrap();
    std::env::set_var(ringtrace::session::SHM_DIR_ENV, d.path());
    let found = ringtrace::session::resolve("sq");
    let dir = ringtrace::session::session_dir();
    std::env::remove_var(ringtrace::session::SHM_DIR_ENV);
    assert_eq!(dir, d.path());
    assert_eq!(found.unwrap(), a.path());
    println!("  two sessions named sq beside a squatter's link");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("untraced-prog") {
        untraced_prog();
        return;
    }
    let tests: &[(&str, fn())] = &[
        (
            "refusals_of_a_forked_child_are_counted_in_the_session",
            refusals_of_a_forked_child_are_counted_in_the_session,
        ),
        (
            "a_full_process_table_makes_a_writer_run_untraced",
            a_full_process_table_makes_a_writer_run_untraced,
        ),
        (
            "rings_of_gone_processes_are_taken_over_in_every_mode",
            rings_of_gone_processes_are_taken_over_in_every_mode,
        ),
        (
            "session_with_holes_is_refused_and_the_program_runs_untraced",
            session_with_holes_is_refused_and_the_program_runs_untraced,
        ),
        (
            "session_file_names_cannot_be_squatted",
            session_file_names_cannot_be_squatted,
        ),
    ];
    harness::run(&args[1..], tests);
}
