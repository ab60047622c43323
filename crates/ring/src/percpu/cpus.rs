//! The possible CPUs (`/sys/devices/system/cpu/possible`): one ring each.

use super::Unavailable;

/// The file listing the CPUs that may ever come online.
pub const POSSIBLE: &str = "/sys/devices/system/cpu/possible";

/// Number of rings needed: highest possible CPU + 1.
pub fn possible_cpus() -> Result<usize, Unavailable> {
    let text = std::fs::read_to_string(POSSIBLE).map_err(|e| Unavailable::Cpus {
        path: POSSIBLE,
        why: e.to_string(),
    })?;
    parse_cpu_list(&text).map_err(|why| Unavailable::Cpus {
        path: POSSIBLE,
        why,
    })
}

/// Parses a kernel CPU list ("0-3,5,7-8") and returns the highest CPU + 1.
pub fn parse_cpu_list(text: &str) -> Result<usize, String> {
    let mut top = None;
    for part in text.trim().split(',') {
        let last = part.rsplit('-').next().unwrap_or(part);
        let cpu: usize = last
            .trim()
            .parse()
            .map_err(|_| format!("{part:?} is not a CPU or a CPU range in {text:?}"))?;
        top = top.max(Some(cpu));
    }
    let top = top.ok_or_else(|| format!("no CPU in {text:?}"))?;
    if top >= 1 << 16 {
        return Err(format!("CPU {top} is beyond the 65536 supported"));
    }
    Ok(top + 1)
}

#[cfg(test)]
mod tests {
    use super::parse_cpu_list;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n"), Ok(2));
        assert_eq!(parse_cpu_list("0"), Ok(1));
        assert_eq!(parse_cpu_list("0-3,5,7-8"), Ok(9));
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("0-x").is_err());
        assert!(parse_cpu_list("99999999").is_err());
    }
}
