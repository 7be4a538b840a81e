//! Reproducible time: `SOURCE_DATE_EPOCH` (seconds since 1970, as
//! <https://reproducible-builds.org/specs/source-date-epoch/> defines it) and the RFC 3339
//! timestamps image configs carry. Reading the environment is the caller's business.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::{Error, Result};

/// Parse a `SOURCE_DATE_EPOCH` value: `None` when it is empty (unset), else a non-negative
/// number of seconds (surrounding whitespace allowed).
pub fn parse_source_date_epoch(value: &str) -> Result<Option<u64>> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| Error::InvalidEpoch { value: value.into() })
}

/// Seconds since 1970 as an RFC 3339 UTC timestamp, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: u64) -> Result<String> {
    let invalid = || Error::InvalidTime { value: secs.to_string() };
    let t = i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(invalid)?;
    t.format(&Rfc3339).map_err(|_| invalid())
}

/// Check that `s` is an RFC 3339 date-time (`2024-01-01T00:00:00Z`, fractions and offsets
/// allowed), as the image spec requires of `created`. The `T` is required: RFC 3339 lets
/// applications use a space instead, but Go's `time.RFC3339`, which docker and containerd
/// parse `created` with, does not.
pub fn check_rfc3339(s: &str) -> Result<()> {
    let invalid = || Error::InvalidTime { value: s.into() };
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(invalid());
    }
    OffsetDateTime::parse(s, &Rfc3339).map(drop).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs() {
        assert_eq!(parse_source_date_epoch("1704067200").unwrap(), Some(1_704_067_200));
        assert_eq!(parse_source_date_epoch(" 0\n").unwrap(), Some(0));
        assert_eq!(parse_source_date_epoch("").unwrap(), None);
        assert_eq!(parse_source_date_epoch("  ").unwrap(), None);
        for bad in ["x", "-1", "1.5", "1e9"] {
            let e = parse_source_date_epoch(bad).unwrap_err();
            assert!(e.to_string().contains("SOURCE_DATE_EPOCH"), "{e}");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_200).unwrap(), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400).unwrap(), "2000-02-29T00:00:00Z");
        assert!(rfc3339(u64::MAX).is_err());
    }

    #[test]
    fn checks() {
        for ok in [
            "2024-01-01T00:00:00Z",
            "2024-01-01t00:00:00z",
            "2024-01-01T00:00:00.123456789Z",
            "2024-01-01T00:00:00+02:00",
            "2024-01-01T00:00:00-00:30",
        ] {
            assert!(check_rfc3339(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "2024-01-01",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00.Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T00:00:00+0200",
            "yesterday",
        ] {
            assert!(check_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
