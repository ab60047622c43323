//! Repetitions and their summary: median, min and max.

use std::fmt;

/// Median, minimum and maximum of a set of repetitions of one figure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Median (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Number of repetitions.
    pub reps: usize,
}

impl Summary {
    /// Summarizes `values`; `None` when there are none (or any is NaN).
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Summary {
            median,
            min: v[0],
            max: v[n - 1],
            reps: n,
        })
    }

    /// Runs `f` `reps` times after one discarded warm-up run and summarizes.
    pub fn measure(reps: usize, mut f: impl FnMut() -> f64) -> Summary {
        let _ = f();
        let values: Vec<f64> = (0..reps.max(1)).map(|_| f()).collect();
        Summary::of(&values).unwrap_or_else(Summary::nan)
    }

    /// A figure that was not measured.
    pub fn nan() -> Summary {
        Summary {
            median: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
            reps: 0,
        }
    }
}

/// Formats a figure with a precision that suits its size.
pub fn num(v: f64) -> String {
    if v.is_nan() {
        "n/a".to_string()
    } else if v.abs() >= 1e9 {
        format!("{:.2}e9", v / 1e9)
    } else if v.abs() >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

impl fmt::Display for Summary {
    /// `median [min–max]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}–{}]",
            num(self.median),
            num(self.min),
            num(self.max)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_min_max() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.reps), (2.0, 1.0, 3.0, 3));
        assert_eq!(Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
        assert!(Summary::of(&[]).is_none());
    }
}
