//! Which contexts of a session record (the kernel's `tracing_cpumask`):
//! `ringtrace contexts SESSION [LIST]` shows or changes it on a live
//! session, `ringtrace record --context-mask LIST` sets it before the
//! program starts. LIST is a CPU list as `--cpu` takes it (`0,2-3`):
//! context N is CPU N in a trace.dat.
//!
//! Contract: the mask is one word per 64 contexts in the session file,
//! read by every writer process before each record; a context left out
//! records nothing, and its events are counted as masked (`ringtrace
//! stat`), never lost silently. Changing it harms no writer.

use ringtrace::session::{resolve, Session};

use crate::cpulist::parse_cpu_list;
use crate::CliError;

/// The contexts of `list` (a CPU list), each below `contexts`.
pub fn parse_mask(list: &str, contexts: usize) -> Result<Vec<usize>, CliError> {
    let cpus = parse_cpu_list(list).map_err(|e| CliError::Usage(format!("context list: {e}")))?;
    if let Some(&bad) = cpus.iter().find(|&&c| c as usize >= contexts) {
        return Err(CliError::Usage(format!(
            "context list {list}: context {bad} does not exist (the session has contexts \
             0-{})",
            contexts.saturating_sub(1)
        )));
    }
    Ok(cpus.into_iter().map(|c| c as usize).collect())
}

/// Sets the mask of `session` to `list`, if given; prints the contexts
/// that record and the events refused as masked so far.
pub fn contexts(session: &str, list: Option<&str>) -> Result<(), CliError> {
    let path = resolve(session).map_err(session_err)?;
    let s = Session::open(&path).map_err(session_err)?;
    let n = s.layout().contexts;
    if let Some(list) = list {
        s.set_contexts(&parse_mask(list, n)?);
    }
    let on = s.recording_contexts();
    println!(
        "contexts recording: {} of {n}{}",
        format_list(&on),
        if on.len() == n { " (all)" } else { "" }
    );
    println!("events refused as masked: {}", s.refused().masked);
    Ok(())
}

fn session_err(e: ringtrace::session::SessionError) -> CliError {
    CliError::Session(e.into())
}

/// `[0, 1, 2, 5]` as `0-2,5`; `none` when empty.
pub fn format_list(v: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            v[i].to_string()
        } else {
            format!("{}-{}", v[i], v[j])
        });
        i = j + 1;
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_parse_within_the_session_and_print_back() {
        assert_eq!(parse_mask("0,2-3", 4).unwrap(), vec![0, 2, 3]);
        let e = parse_mask("0-4", 4).unwrap_err().to_string();
        assert!(
            e.contains("context 4 does not exist") && e.contains("0-3"),
            "{e}"
        );
        assert!(parse_mask("x", 4).is_err());
        assert_eq!(format_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_list(&[]), "none");
    }
}
