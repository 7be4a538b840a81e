//! New images: an empty image (config with no layers) written with a fixed key order, so
//! the same inputs give the same digests.

use serde_json::{Map, Value, json};

use crate::{Descriptor, Error, Layout, MediaType, Platform, Result};

/// Parse `os/arch[/variant]`.
pub fn parse_platform(s: &str) -> Result<Platform> {
    let parts: Vec<&str> = s.split('/').collect();
    let bad = || Error::InvalidValue {
        what: "platform",
        value: s.into(),
        reason: "expected os/arch[/variant]".into(),
    };
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
        return Err(bad());
    }
    Ok(Platform {
        os: parts[0].into(),
        architecture: parts[1].into(),
        variant: parts.get(2).map(|v| (*v).to_owned()),
        os_version: None,
        os_features: None,
        features: None,
        extra: Map::new(),
    })
}

/// `SOURCE_DATE_EPOCH` (seconds) as an RFC 3339 UTC timestamp; `None` when unset.
pub fn source_date_epoch(value: Option<&str>) -> Result<Option<String>> {
    let Some(v) = value.filter(|v| !v.is_empty()) else { return Ok(None) };
    let secs: i64 = v.trim().parse().map_err(|_| Error::InvalidValue {
        what: "SOURCE_DATE_EPOCH",
        value: v.into(),
        reason: "expected a number of seconds".into(),
    })?;
    Ok(Some(rfc3339(secs)))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Write an empty OCI image (config + manifest, no layers) and return the manifest's
/// descriptor, with its platform. Blobs only: the caller tags it under the lock.
pub fn empty_image(
    layout: &Layout,
    platform: &Platform,
    created: Option<&str>,
) -> Result<Descriptor> {
    let mut config = Map::new();
    if let Some(c) = created {
        config.insert("created".into(), json!(c));
    }
    config.insert("architecture".into(), json!(platform.architecture));
    if let Some(v) = &platform.variant {
        config.insert("variant".into(), json!(v));
    }
    config.insert("os".into(), json!(platform.os));
    config.insert("config".into(), json!({}));
    config.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
    config.insert("history".into(), json!([]));
    let config_bytes = serde_json::to_vec(&Value::Object(config))
        .map_err(|source| Error::InvalidJson { path: "config".into(), source })?;
    let config_desc = layout.put_bytes(MediaType::OciConfig, &config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OciManifest.as_str(),
        "config": config_desc,
        "layers": [],
    });
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|source| Error::InvalidJson { path: "manifest".into(), source })?;
    let mut desc = layout.put_bytes(MediaType::OciManifest, &bytes)?;
    desc.platform = Some(platform.clone());
    Ok(desc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_704_067_200), "2024-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(
            source_date_epoch(Some("1704067200")).unwrap().as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        assert_eq!(source_date_epoch(None).unwrap(), None);
        assert!(source_date_epoch(Some("x")).is_err());
    }

    #[test]
    fn platforms() {
        assert_eq!(parse_platform("linux/arm64/v8").unwrap().display(), "linux/arm64/v8");
        assert!(parse_platform("linux").is_err());
        assert!(parse_platform("linux//").is_err());
    }
}
