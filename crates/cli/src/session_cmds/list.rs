//! The counters: `list` (every session in the session directories: whether
//! its program is alive, the space it uses, its owner, its writer
//! processes) and `stat` (one session's per-context counters in
//! the kernel's `per_cpu/cpuN/stats` format, its refusals and table
//! overflows).
//!
//! Contract: neither reads an event nor takes a reader lock: both work
//! while writers and readers run, and on a dead session. A session that
//! cannot be opened is listed with the reason; a context whose stats
//! cannot be formatted is named as unreadable, the others shown.

use std::io::Write;

use ringtrace::session::{list_sessions, session_dir, ProcInfo, ProcState, SessionState};

use super::opened::Opened;
use super::Result;

/// `bytes` as the list shows a size: `K` below a MiB, `M` with one decimal
/// from there.
fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1}M", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{}K", bytes.div_ceil(1024))
    }
}

/// The user name of `uid` (the system's user database, as `ls -l`
/// shows it), or the number when it has none.
fn user_name(uid: u32) -> String {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids);
        // getpwuid_r fills it in.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `pw` and `found` are valid for writes, `buf` for
        // `buf.len()` bytes; the strings it sets point into `buf`.
        let rc = unsafe {
            libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut found)
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 || found.is_null() || pw.pw_name.is_null() {
            return uid.to_string();
        }
        // SAFETY: on success `pw_name` is a NUL-terminated string in `buf`,
        // which outlives this borrow.
        let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
        return name.to_string_lossy().into_owned();
    }
}

/// What the `PROGRAM` column says of a session's writer processes.
fn program_state(s: SessionState) -> &'static str {
    match s {
        SessionState::Waiting => "not attached",
        SessionState::Alive => "alive",
        SessionState::Exited => "exited",
        SessionState::Dead => "dead",
    }
}

/// The writer processes as `PID:state` words.
fn processes_text(procs: &[ProcInfo]) -> String {
    procs
        .iter()
        .map(|p| {
            let state = match p.state {
                ProcState::Running => "running",
                ProcState::Exited => "exited",
                ProcState::Dead => "dead",
            };
            format!("{}:{state}", p.pid)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `ringtrace list`: each session with its creator's pid, whether its
/// program is alive, the space it uses (its allocated blocks: what it takes
/// from `/dev/shm`, not its apparent size), its owner's name and its
/// writer processes.
pub fn list() -> Result<()> {
    let all = list_sessions();
    let mut out = std::io::stdout().lock();
    if all.is_empty() {
        let _ = writeln!(out, "no sessions in {}", session_dir().display());
        return Ok(());
    }
    let _ = writeln!(
        out,
        "{:<44} {:>8} {:<12} {:>8} {:<10}  PROCESSES",
        "SESSION", "PID", "PROGRAM", "USED", "OWNER"
    );
    for l in all {
        let (state, procs) = match &l.state {
            Ok((s, p)) => (program_state(*s), processes_text(p)),
            Err(e) => ("?", e.clone()),
        };
        let _ = writeln!(
            out,
            "{:<44} {:>8} {:<12} {:>8} {:<10}  {}",
            l.path.display(),
            l.creator_pid.map_or("-".into(), |p| p.to_string()),
            state,
            human(l.used),
            user_name(l.owner),
            procs
        );
    }
    Ok(())
}

/// `ringtrace stat`.
pub fn stat(session: &str) -> Result<()> {
    let o = Opened::open(session)?;
    let (state, procs) = o.state();
    let mut out = std::io::stdout().lock();
    let l = o.tracer.config();
    let _ = writeln!(out, "session: {}", o.path.display());
    let _ = writeln!(
        out,
        "state: {state}{}",
        if state == SessionState::Dead {
            " (a writer died without detaching: read it with show or extract)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "recording: {}",
        if o.tracer.is_on() {
            "on"
        } else {
            "off (`ringtrace start` turns it on)"
        }
    );
    for p in &procs {
        let _ = writeln!(out, "process {}: {:?}", p.pid, p.state);
    }
    if let Some((slots, lost)) = o.tracer.session_reclaimed().filter(|r| r.0 > 0) {
        let _ = writeln!(
            out,
            "contexts reclaimed from dead writer processes: {slots} ({lost} event(s) they were \
             writing counted as dropped)"
        );
    }
    if let Some(m) = o.refusals() {
        let _ = writeln!(out, "refused: {m}");
    }
    let imp = o.tracer.import_session_tables();
    if o.table_full > 0 || imp.malformed > 0 {
        let _ = writeln!(
            out,
            "tables: {} records the writers could not add (full), {} malformed skipped",
            o.table_full, imp.malformed
        );
    }
    let _ = writeln!(
        out,
        "clock: {}  page size: {}  contexts: {}  mode: {:?}",
        o.tracer.clock().name(),
        l.page_size,
        l.max_contexts,
        o.tracer.ring_buffer().mode()
    );
    for r in 0..o.tracer.max_contexts() {
        let Ok(s) = o.tracer.ring_stats(r) else {
            continue;
        };
        if s.committed == 0 && s.dropped == 0 && s.refused == 0 && s.corruptions == 0 {
            continue;
        }
        let tid = o.tracer.context_tid(r).unwrap_or(0);
        let comm = o.tracer.comm(tid).unwrap_or_else(|| "<...>".into());
        let _ = writeln!(out, "CPU {r} ({comm}-{tid}):");
        match o.tracer.stats_text(r) {
            Ok(t) => {
                let _ = write!(out, "{t}");
            }
            Err(e) => {
                let _ = writeln!(out, "  unreadable: {e}");
            }
        }
        if s.corruptions > 0 {
            let _ = writeln!(out, "corruptions: {}", s.corruptions);
        }
    }
    let _ = out.flush();
    Ok(())
}
