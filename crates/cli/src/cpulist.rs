//! CPU lists as trace-cmd's `--cpu` takes them: `0,1`, `0-3`, and mixes
//! such as `0,2-3` (trace-cmd's `report --cpu <cpu1,cpu2,...>`, "a range
//! of CPUs can be specified using 'cpuX-cpuY' notation").
//!
//! A bad list is an error naming the part that is wrong; nothing here
//! panics, and a range is bounded ([`MAX_CPU`]) so that `0-4294967295`
//! cannot ask for billions of entries.

/// Highest CPU number a list may name: trace-cmd's files hold at most a
/// few thousand CPUs; the bound keeps a typo from allocating gigabytes.
pub const MAX_CPU: u32 = 65_535;

/// Parses one `--cpu` value into its CPUs, sorted, without duplicates.
///
/// ```text
/// "1"        -> [1]
/// "0,1"      -> [0, 1]
/// "0-3"      -> [0, 1, 2, 3]
/// "0,2-3"    -> [0, 2, 3]
/// ```
pub fn parse_cpu_list(s: &str) -> Result<Vec<u32>, String> {
    let mut cpus = Vec::new();
    if s.trim().is_empty() {
        return Err("an empty CPU list: give CPUs as 0,1 or 0-3".into());
    }
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (cpu(a, s)?, cpu(b, s)?),
            None => {
                let c = cpu(part, s)?;
                (c, c)
            }
        };
        if lo > hi {
            return Err(format!(
                "{s}: the range {part} runs backwards (write {hi}-{lo})"
            ));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// One CPU number of `list`.
fn cpu(text: &str, list: &str) -> Result<u32, String> {
    let t = text.trim();
    let n: u32 = t.parse().map_err(|_| {
        format!("{list}: `{t}` is not a CPU number (give CPUs as 0,1 or 0-3 or 0,2-3)")
    })?;
    if n > MAX_CPU {
        return Err(format!("{list}: CPU {n} is past the highest, {MAX_CPU}"));
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn lists_ranges_and_mixes() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("0,1").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("0-3").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(parse_cpu_list("0,2-3").unwrap(), vec![0, 2, 3]);
        assert_eq!(parse_cpu_list("3,1-2,2").unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn bad_lists_name_the_bad_part() {
        for (bad, says) in [
            ("", "empty"),
            ("1,", "`` is not a CPU"),
            ("a", "`a` is not a CPU"),
            ("1-x", "`x` is not a CPU"),
            ("-1", "`` is not a CPU"),
            ("3-1", "runs backwards"),
            ("0-4294967295", "past the highest"),
            ("99999999999", "is not a CPU"),
        ] {
            let e = parse_cpu_list(bad).unwrap_err();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
