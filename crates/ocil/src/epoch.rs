//! `SOURCE_DATE_EPOCH` from the environment: the one place the binary reads it (the rules
//! for its value are `ocil_codec::epoch`'s).

use anyhow::Result;

/// `SOURCE_DATE_EPOCH` in seconds; `None` when unset or empty.
pub(crate) fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => Ok(ocil_codec::epoch::parse_source_date_epoch(&v)?),
        Err(_) => Ok(None),
    }
}

/// `SOURCE_DATE_EPOCH` as an RFC 3339 time, for `created`; `None` when unset or empty.
pub(crate) fn source_date_epoch_rfc3339() -> Result<Option<String>> {
    Ok(source_date_epoch()?.map(ocil_codec::epoch::rfc3339).transpose()?)
}

/// Check a `--created` style flag's value: an RFC 3339 time.
pub(crate) fn check_rfc3339(flag: &str, s: &str) -> Result<()> {
    ocil_codec::epoch::check_rfc3339(s).map_err(|_| {
        anyhow::anyhow!(
            "invalid {flag} `{s}`: expected an RFC 3339 time such as 2024-01-01T00:00:00Z"
        )
    })
}
