//! ringtrace's processes option (`RINGTRACE_PROCESSES`): the process of
//! each thread, what the kernel keeps in `saved_tgids`, plus the process's
//! name. trace.dat has no standard section for it; trace-cmd skips the
//! option as unknown. The data is text, one `TID PID NAME` line per thread
//! (the name last: it may hold spaces; a newline in it becomes a space),
//! ended by a NUL.

use super::error::TraceDatError;

/// The option's data for `processes` (`(tid, pid, process name)`).
pub(crate) fn encode(processes: &[(i32, u32, String)]) -> Vec<u8> {
    let mut b = String::new();
    for (tid, pid, name) in processes {
        b.push_str(&format!("{tid} {pid} {}\n", name.replace('\n', " ")));
    }
    let mut v = b.into_bytes();
    v.push(0);
    v
}

/// Parses the option's `data` (at file offset `offset`); a malformed line
/// is an error naming it.
pub(crate) fn parse(data: &[u8], offset: u64) -> Result<Vec<(i32, u32, String)>, TraceDatError> {
    let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
    let text = String::from_utf8_lossy(&data[..end]);
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = || {
            TraceDatError::invalid(
                "ringtrace processes option",
                offset,
                format!("line {}: {line:?} is not `TID PID NAME`", i + 1),
            )
        };
        let mut w = line.splitn(3, ' ');
        let tid = w.next().and_then(|t| t.parse().ok()).ok_or_else(bad)?;
        let pid = w.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let name = w.next().ok_or_else(bad)?;
        out.push((tid, pid, name.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_names_with_spaces_and_newlines() {
        let p = vec![(7, 5, "my prog".to_string()), (8, 6, "a\nb".to_string())];
        let back = parse(&encode(&p), 0).unwrap();
        assert_eq!(back, vec![(7, 5, "my prog".into()), (8, 6, "a b".into())]);
    }

    #[test]
    fn a_malformed_line_is_an_error_naming_it() {
        let e = parse(b"7 5 ok\n7 x bad\n\0", 100).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("7 x bad"), "{e}");
        assert!(parse(b"9\n\0", 0).is_err());
    }
}
