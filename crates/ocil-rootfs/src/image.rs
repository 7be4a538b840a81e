//! The image an unpack applies: a reference resolved in any [`Store`], through indexes
//! (nested ones too, attestations skipped) to one platform's manifest, with its config and
//! layers checked before anything is written.

use ocil_layout::{
    Descriptor, Digest, Index, JSON_LIMIT, Kind, Manifest, Platform, Reference, Store,
};
use serde_json::Value;

use crate::{Error, Result};

/// Nested indexes deeper than this are refused (hostile input).
const MAX_DEPTH: usize = 8;

/// One image, ready to unpack.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's descriptor.
    pub manifest_desc: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The config (parsed; its stored bytes are never rewritten).
    pub config: Value,
    /// The config's digest.
    pub config_digest: Digest,
    /// `rootfs.diff_ids`, one per layer.
    pub diff_ids: Vec<Digest>,
    /// `os/arch[/variant]` from the config.
    pub platform: Option<String>,
}

/// The platform of the machine ocil runs on, in the image spec's names (`linux/amd64`).
pub fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    };
    Platform {
        architecture: arch.into(),
        os: "linux".into(),
        os_version: None,
        os_features: None,
        variant: None,
        features: None,
        extra: serde_json::Map::new(),
    }
}

/// Whether `p` is what `wanted` asks for (a variant not asked for matches any).
fn matches(p: &Platform, wanted: &Platform) -> bool {
    p.os == wanted.os
        && p.architecture == wanted.architecture
        && wanted.variant.as_ref().is_none_or(|v| p.variant.as_ref() == Some(v))
}

/// Whether an index child is a BuildKit attestation (or another non-image artifact).
fn is_attestation(d: &Descriptor) -> bool {
    d.annotation("vnd.docker.reference.type") == Some("attestation-manifest")
        || d.platform.as_ref().is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// Resolve `reference` in `store` to one image: through an index, the image of `platform`,
/// else the host's, else the only one. `name` is the reference as given, for messages.
pub fn choose(
    store: &dyn Store,
    reference: Option<&Reference>,
    platform: Option<&Platform>,
    name: &str,
) -> Result<Image> {
    let index = store.read_index()?;
    let top = ocil_layout::store::resolve(store, &index, reference)?;
    let manifest_desc = match top.media_type.kind() {
        Kind::Manifest => top,
        Kind::Index => {
            let mut found = Vec::new();
            collect(store, &top, 0, &mut found)?;
            pick(found, platform, name)?
        }
        _ => {
            return Err(Error::NotAnImage {
                reference: name.into(),
                reason: format!("it is a `{}`", top.media_type),
            });
        }
    };
    let bytes = store.read_blob(&manifest_desc.digest, JSON_LIMIT)?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::BadImage {
        digest: manifest_desc.digest.clone(),
        reason: format!("the manifest does not parse: {e}"),
    })?;
    if manifest.config.media_type.kind() != Kind::Config {
        return Err(Error::NotAnImage {
            reference: name.into(),
            reason: format!("its config is a `{}` (an artifact)", manifest.config.media_type),
        });
    }
    let config_digest = manifest.config.digest.clone();
    let bad = |reason: String| Error::BadImage { digest: config_digest.clone(), reason };
    let config_bytes = store.read_blob(&config_digest, JSON_LIMIT)?;
    let config: Value = serde_json::from_slice(&config_bytes)
        .map_err(|e| bad(format!("the config does not parse: {e}")))?;
    if !config.is_object() {
        return Err(bad("the config is not a JSON object".into()));
    }
    let image_platform = config_platform(&config);
    if let (Some(wanted), Some(p)) = (platform, &image_platform)
        && !matches(p, wanted)
    {
        return Err(Error::PlatformNotFound {
            reference: name.into(),
            platform: wanted.display(),
            platforms: vec![p.display()],
        });
    }
    let diff_ids = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().and_then(|s| s.parse::<Digest>().ok()))
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or(Some(Vec::new()))
        .ok_or_else(|| bad("`rootfs.diff_ids` holds something that is not a digest".into()))?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(bad(format!(
            "`rootfs.diff_ids` has {} entries for the manifest's {} layers",
            diff_ids.len(),
            manifest.layers.len()
        )));
    }
    for (i, l) in manifest.layers.iter().enumerate() {
        if !matches!(l.media_type.kind(), Kind::Layer { .. }) {
            return Err(Error::BadImage {
                digest: manifest_desc.digest.clone(),
                reason: format!(
                    "layer {} has media type `{}`, not a layer ocil can apply",
                    i + 1,
                    l.media_type
                ),
            });
        }
    }
    Ok(Image {
        manifest_desc,
        manifest,
        config,
        config_digest,
        diff_ids,
        platform: image_platform.map(|p| p.display()),
    })
}

/// `os/arch/variant` from a config.
fn config_platform(config: &Value) -> Option<Platform> {
    let s = |k: &str| config.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let mut p = host_platform();
    p.os = s("os")?.into();
    p.architecture = s("architecture")?.into();
    p.variant = s("variant").map(Into::into);
    Some(p)
}

/// Every image manifest under an index, with its platform.
fn collect(
    store: &dyn Store,
    desc: &Descriptor,
    depth: usize,
    out: &mut Vec<(Descriptor, Option<Platform>)>,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(Error::BadImage {
            digest: desc.digest.clone(),
            reason: format!("indexes nested deeper than {MAX_DEPTH}"),
        });
    }
    let bytes = store.read_blob(&desc.digest, JSON_LIMIT)?;
    let index: Index = serde_json::from_slice(&bytes).map_err(|e| Error::BadImage {
        digest: desc.digest.clone(),
        reason: format!("the index does not parse: {e}"),
    })?;
    for child in index.manifests {
        if is_attestation(&child) {
            continue;
        }
        match child.media_type.kind() {
            Kind::Index => collect(store, &child, depth + 1, out)?,
            Kind::Manifest => {
                let platform = child.platform.clone();
                out.push((child, platform));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The image of an index to unpack.
fn pick(
    found: Vec<(Descriptor, Option<Platform>)>,
    wanted: Option<&Platform>,
    name: &str,
) -> Result<Descriptor> {
    let labels = || {
        let mut l: Vec<String> = found
            .iter()
            .map(|(_, p)| p.as_ref().map_or_else(|| "(no platform)".into(), Platform::display))
            .collect();
        l.dedup();
        l
    };
    if found.is_empty() {
        return Err(Error::NotAnImage {
            reference: name.into(),
            reason: "an index with no images (only attestations or artifacts)".into(),
        });
    }
    let find = |w: &Platform| found.iter().find(|(_, p)| p.as_ref().is_some_and(|p| matches(p, w)));
    if let Some(w) = wanted {
        return find(w).map(|(d, _)| d.clone()).ok_or_else(|| Error::PlatformNotFound {
            reference: name.into(),
            platform: w.display(),
            platforms: labels(),
        });
    }
    if let Some((d, _)) = find(&host_platform()) {
        return Ok(d.clone());
    }
    if found.len() == 1 {
        return Ok(found[0].0.clone());
    }
    Err(Error::PlatformRequired { reference: name.into(), platforms: labels() })
}
