//! Kernel events named with trace-cmd's `-e` syntax, resolved against an
//! instance's `events/` directory, enabled with an optional filter each,
//! and their `format` texts collected for the trace.dat.
//!
//! Syntax (trace-cmd's): `SYSTEM:EVENT` (`sched:sched_switch`), `SYSTEM`
//! (`sched`, every event of it), `SYSTEM:*` or a glob in either part
//! (`irq:*`, `sched:sched_wak*`), or a bare `EVENT` (looked up in every
//! system). A name that matches nothing is an error naming it.

use std::fs;
use std::path::{Path, PathBuf};

use super::instance::{read_file, write_file};
use super::KernelError;

/// One `-e` argument with the `-f` filter given after it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    /// The event name as given (`sched:sched_switch`, `sched`, `irq:*`).
    pub name: String,
    /// The kernel filter expression for the events it names.
    pub filter: Option<String>,
}

/// One kernel event enabled in an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnabledEvent {
    /// Its system (`sched`).
    pub system: String,
    /// Its name (`sched_switch`).
    pub name: String,
    /// Its `format` text, as the kernel gives it.
    pub format: String,
}

/// Glob match with `*` and `?` (the shell's, as trace-cmd uses).
fn glob(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    // Iterative matcher with one backtrack point: linear in practice,
    // bounded by p.len() * t.len().
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(si) = star {
            i = si + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

/// The names of the subdirectories of `dir` that match `pat`, sorted.
fn matching_dirs(dir: &Path, pat: &str) -> Result<Vec<String>, KernelError> {
    let rd = fs::read_dir(dir).map_err(|source| KernelError::Io {
        what: "listing".into(),
        path: dir.to_path_buf(),
        source,
    })?;
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| glob(pat, n))
        .collect();
    v.sort();
    Ok(v)
}

/// The `(system, event)` pairs `spec` names under `events` (an
/// instance's `events/` directory).
pub fn resolve(events: &Path, spec: &str) -> Result<Vec<(String, String)>, KernelError> {
    let unknown = || KernelError::UnknownEvent(spec.to_string());
    if spec.is_empty() || spec.contains('/') || spec.contains("..") {
        return Err(unknown());
    }
    let (sys_pat, ev_pat) = match spec.split_once(':') {
        Some((s, e)) => (
            s.to_string(),
            if e.is_empty() { "*" } else { e }.to_string(),
        ),
        // A bare name: a system (all its events) if one has that name,
        // else an event of any system.
        None if events.join(spec).is_dir() => (spec.to_string(), "*".to_string()),
        None => ("*".to_string(), spec.to_string()),
    };
    let mut out = Vec::new();
    for sys in matching_dirs(events, &sys_pat)? {
        for ev in matching_dirs(&events.join(&sys), &ev_pat)? {
            if events.join(&sys).join(&ev).join("format").is_file() {
                out.push((sys.clone(), ev));
            }
        }
    }
    if out.is_empty() {
        return Err(unknown());
    }
    Ok(out)
}

/// Enables every event of `specs` in the instance at `dir`, each with its
/// filter, and returns them with their formats (each event once, in the
/// order first named). A filter the kernel refuses is an error quoting the
/// kernel's own message (the `filter` file's `parse_error:` line).
pub fn enable(dir: &Path, specs: &[EventSpec]) -> Result<Vec<EnabledEvent>, KernelError> {
    let events = dir.join("events");
    let mut out: Vec<EnabledEvent> = Vec::new();
    for spec in specs {
        for (system, name) in resolve(&events, &spec.name)? {
            let edir = events.join(&system).join(&name);
            if let Some(f) = &spec.filter {
                set_filter(&edir, f, &spec.name)?;
            }
            if out.iter().any(|e| e.system == system && e.name == name) {
                continue;
            }
            let format = read_file(&edir.join("format"))?;
            write_file(&edir.join("enable"), "1")?;
            out.push(EnabledEvent {
                system,
                name,
                format,
            });
        }
    }
    Ok(out)
}

/// Writes `filter` to the event directory `edir`'s `filter` file; on
/// EINVAL, reads back the kernel's parse error for the message.
fn set_filter(edir: &Path, filter: &str, spec: &str) -> Result<(), KernelError> {
    let file: PathBuf = edir.join("filter");
    match write_file(&file, filter) {
        Ok(()) => Ok(()),
        Err(e) => {
            let why = read_file(&file)
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find(|l| l.contains("parse_error"))
                        .map(|l| l.trim().to_string())
                })
                .unwrap_or_else(|| e.to_string());
            // A refused filter leaves the event unfiltered in the kernel:
            // clear it so nothing half-set stays, and refuse the run.
            let _ = write_file(&file, "0");
            Err(KernelError::BadFilter {
                event: spec.to_string(),
                filter: filter.to_string(),
                why,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs_match_as_the_shell_does() {
        assert!(glob("*", "sched_switch"));
        assert!(glob("sched_wak*", "sched_waking"));
        assert!(glob("sched_wak*", "sched_wakeup_new"));
        assert!(!glob("sched_wak*", "sched_switch"));
        assert!(glob("?rq", "irq"));
        assert!(glob("*_switch", "sched_switch"));
        assert!(!glob("irq", "irq_vectors"));
        assert!(glob("a*b*c", "axxbyyc"));
        assert!(!glob("a*b*c", "axxbyy"));
    }
}
