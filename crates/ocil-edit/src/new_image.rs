//! New images: an empty image (config with no layers) written with a fixed key order, so
//! the same inputs give the same digests (`ocil new`).

use ocil_layout::{Descriptor, Layout, MediaType, Platform};
use serde_json::{Map, Value, json};

use crate::Result;

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
        .map_err(|source| ocil_layout::Error::InvalidJson { path: "config".into(), source })?;
    let config_desc = layout.put_bytes(MediaType::OciConfig, &config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MediaType::OciManifest.as_str(),
        "config": config_desc,
        "layers": [],
    });
    let bytes = serde_json::to_vec(&manifest)
        .map_err(|source| ocil_layout::Error::InvalidJson { path: "manifest".into(), source })?;
    let mut desc = layout.put_bytes(MediaType::OciManifest, &bytes)?;
    desc.platform = Some(platform.clone());
    Ok(desc)
}
