//! `NAME[>THRESHOLD]`: which sections to snapshot, as `ringtrace record
//! --latency` and `RINGTRACE_LATENCY` give them.
//!
//! THRESHOLD is a number with a unit (`ns`, `us`, `ms`, `s`); a bare
//! number is in microseconds, as the kernel's `tracing_thresh`. Without a
//! threshold every new max is kept.

use std::time::Duration;

/// One `NAME[>THRESHOLD]`.
///
/// ```
/// use ringtrace::latency::LatencySpec;
/// let s: LatencySpec = "db_commit>2ms".parse().unwrap();
/// assert_eq!(s.name, "db_commit");
/// assert_eq!(s.threshold, Some(std::time::Duration::from_millis(2)));
/// assert!("db commit".parse::<LatencySpec>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LatencySpec {
    /// The section's name.
    pub name: String,
    /// Keep every section longer than this (else: every new max).
    pub threshold: Option<Duration>,
}

/// A malformed `NAME[>THRESHOLD]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// The name is empty or has characters other than letters, digits,
    /// `_`, `-`, `.`, `:`.
    #[error(
        "latency spec {0:?}: the name must be 1 to 63 letters, digits or `_-.:`, \
         as in `db_commit` or `db_commit>500us`"
    )]
    Name(String),
    /// The threshold is not a number with a unit.
    #[error(
        "latency spec {spec:?}: threshold {threshold:?} is not a positive number with a unit \
         (ns, us, ms, s; a bare number is in us), as in `db_commit>500us`"
    )]
    Threshold {
        /// The whole spec.
        spec: String,
        /// The part after `>`.
        threshold: String,
    },
}

impl std::str::FromStr for LatencySpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<LatencySpec, SpecError> {
        let (name, thresh) = match spec.split_once('>') {
            Some((n, t)) => (n.trim(), Some(t.trim())),
            None => (spec.trim(), None),
        };
        let name_ok = !name.is_empty()
            && name.len() <= crate::tracer::NAME_LEN
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
        if !name_ok {
            return Err(SpecError::Name(spec.to_owned()));
        }
        let threshold = match thresh {
            None => None,
            Some(t) => Some(parse_duration(t).ok_or_else(|| SpecError::Threshold {
                spec: spec.to_owned(),
                threshold: t.to_owned(),
            })?),
        };
        Ok(LatencySpec {
            name: name.to_owned(),
            threshold,
        })
    }
}

/// `500us`, `2ms`, `1.5s`, `700ns`, `250` (us); `None` unless positive
/// and finite.
fn parse_duration(t: &str) -> Option<Duration> {
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().ok()?;
    let ns_per = match unit.trim() {
        "ns" => 1.0,
        "" | "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    let ns = v * ns_per;
    (ns.is_finite() && ns >= 1.0 && ns < u64::MAX as f64).then(|| Duration::from_nanos(ns as u64))
}

/// The specs of `RINGTRACE_LATENCY` (comma separated): what `ringtrace
/// record --latency` hands the program. `None` when unset; malformed ones
/// are said on stderr and left out.
pub(crate) fn from_env() -> Option<Vec<LatencySpec>> {
    let v = std::env::var(super::ENV).ok()?;
    Some(
        v.split(',')
            .filter(|s| !s.trim().is_empty())
            .filter_map(|s| match s.parse() {
                Ok(spec) => Some(spec),
                Err(e) => {
                    eprintln!("ringtrace: {}: {e}; ignored", super::ENV);
                    None
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_with_units_and_refuse_bad_ones() {
        let p = |s: &str| s.parse::<LatencySpec>();
        assert_eq!(p("a").unwrap().threshold, None);
        assert_eq!(
            p("a>250").unwrap().threshold,
            Some(Duration::from_micros(250))
        );
        assert_eq!(
            p("a > 1.5s").unwrap().threshold,
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            p("a>700ns").unwrap().threshold,
            Some(Duration::from_nanos(700))
        );
        for bad in [
            "",
            ">5ms",
            "a b",
            "a>",
            "a>5 parsecs",
            "a>-1ms",
            "a>0",
            "a>nanms",
        ] {
            assert!(p(bad).is_err(), "{bad:?} must be refused");
        }
        let e = p("a>5h").unwrap_err().to_string();
        assert!(e.contains("\"5h\"") && e.contains("unit"), "{e}");
    }
}
