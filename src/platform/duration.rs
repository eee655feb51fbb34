//! The duration syntax of every flag and of kube-apiserver's `?timeout=`: Go's
//! `time.ParseDuration` form (`1m30s`, `500ms`, `1.5s`, `2h`), plus a bare number of seconds;
//! validities also take days (`90d`).
//!
//! One small parser rather than a crate: `humantime` refuses the fractions and bare numbers the
//! flags have always accepted, and Go's form is what Kubernetes users write.

use std::time::Duration;

/// Why a duration does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing was given.
    #[error("empty duration")]
    Empty,
    /// A number without a unit after it.
    #[error("{text:?}: missing unit ({units})")]
    MissingUnit {
        /// The whole text.
        text: String,
        /// The units accepted.
        units: &'static str,
    },
    /// Not a number where one is expected.
    #[error("{text:?}: {number:?} is not a number")]
    NotANumber {
        /// The whole text.
        text: String,
        /// The part that should be a number.
        number: String,
    },
    /// A unit that is not accepted here.
    #[error("{text:?}: unknown unit {unit:?} ({units})")]
    UnknownUnit {
        /// The whole text.
        text: String,
        /// The unit given.
        unit: String,
        /// The units accepted.
        units: &'static str,
    },
    /// More than a `Duration` holds.
    #[error("{text:?}: too large")]
    TooLarge {
        /// The whole text.
        text: String,
    },
}

/// Go's units.
const GO_UNITS: &[(&str, f64)] = &[("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)];
/// Go's units and days.
const VALIDITY_UNITS: &[(&str, f64)] = &[
    ("ms", 0.001),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86_400.0),
];

/// Parses a duration: a sequence of `<number><unit>` with units `ms`, `s`, `m`, `h` (`1m30s`,
/// `500ms`, `15s`, `1.5s`), or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    parse(text, GO_UNITS, "ms, s, m or h")
}

/// Parses a validity: a duration as [`parse_duration`], or with days too (`90d`).
pub fn parse_validity(text: &str) -> Result<Duration, DurationError> {
    parse(text, VALIDITY_UNITS, "ms, s, m, h or d")
}

fn parse(
    text: &str,
    units: &[(&str, f64)],
    names: &'static str,
) -> Result<Duration, DurationError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let owned = || text.to_owned();
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| DurationError::MissingUnit {
                text: owned(),
                units: names,
            })?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| DurationError::NotANumber {
            text: owned(),
            number: number.to_owned(),
        })?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = units
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| DurationError::UnknownUnit {
                text: owned(),
                unit: unit.to_owned(),
                units: names,
            })?;
        // Checked: `from_secs_f64` panics on overflow, and a sum may overflow too.
        total = Duration::try_from_secs_f64(value * scale)
            .ok()
            .and_then(|part| total.checked_add(part))
            .ok_or_else(|| DurationError::TooLarge { text: owned() })?;
        rest = next;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "s", "5x", "-1s", "1s2", "1d", "1e300s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(matches!(
            parse_duration("99999999999999999999999h"),
            Err(DurationError::TooLarge { .. })
        ));
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            r#""5x": unknown unit "x" (ms, s, m or h)"#
        );
    }

    #[test]
    fn validity_accepts_days() {
        assert_eq!(parse_validity("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert_eq!(parse_validity("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_validity("1d12h"), Ok(Duration::from_secs(129_600)));
        assert!(parse_validity("xd").is_err());
    }
}
