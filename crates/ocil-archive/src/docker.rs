//! docker-save archives: `manifest.json` (`[{Config, RepoTags, Layers}]`) turned into OCI
//! image manifests. The config and layers are kept byte for byte, except xz and bzip2
//! layers, stored decompressed ([`crate::plain`]); the manifest is new.

use std::collections::BTreeMap;

use ocil_codec::Format;
use ocil_layout::{Descriptor, Digest, Manifest, MediaType};
use serde_json::Value;

use crate::source::normalize_reference;
use crate::source::{FileFacts, Source};
use crate::{Error, ImportedImage, Result, TagName};

/// One image of `manifest.json`, resolved against the archive.
#[derive(Debug)]
pub(crate) struct DockerImage {
    /// The config entry (after links).
    pub(crate) config_path: String,
    /// The layer entries (after links).
    pub(crate) layer_paths: Vec<String>,
    /// The layer entries stored decompressed ([`crate::plain`]), with the compression undone.
    pub(crate) decompressed: BTreeMap<String, Format>,
    /// The OCI manifest built for it.
    pub(crate) manifest: Vec<u8>,
    /// Its descriptor.
    pub(crate) descriptor: Descriptor,
    /// Tags from `RepoTags`.
    pub(crate) tags: Vec<TagName>,
}

/// One entry of `manifest.json`, as written.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ManifestEntry {
    pub(crate) config: String,
    pub(crate) repo_tags: Vec<String>,
    pub(crate) layers: Vec<String>,
}

/// Parse `manifest.json`: a JSON array of `{Config, RepoTags, Layers}`.
pub(crate) fn parse_manifest_json(bytes: &[u8]) -> Result<Vec<ManifestEntry>> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|source| Error::InvalidJson { entry: "manifest.json".into(), source })?;
    let invalid = |reason: String| Error::DockerManifestInvalid { reason };
    let Value::Array(items) = value else {
        return Err(invalid(format!("not a JSON array (found {})", json_kind(&value))));
    };
    if items.is_empty() {
        return Err(invalid("an empty array: no images".into()));
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let Value::Object(obj) = item else {
            return Err(invalid(format!("entry {i} is not an object (found {})", json_kind(item))));
        };
        let config = match obj.get("Config") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            _ => return Err(invalid(format!("entry {i} has no `Config` string"))),
        };
        let tags = match obj.get("RepoTags") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid(format!("entry {i}: `RepoTags` holds a non-string")))?,
            Some(_) => return Err(invalid(format!("entry {i}: `RepoTags` is not an array"))),
        };
        let layers = match obj.get("Layers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|t| t.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid(format!("entry {i}: `Layers` holds a non-string")))?,
            Some(_) => return Err(invalid(format!("entry {i}: `Layers` is not an array"))),
        };
        out.push(ManifestEntry { config, repo_tags: tags, layers });
    }
    Ok(out)
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The tag of a full name: the part after the last `:` that follows the last `/`
/// (`example.com:5000/app:v1` -> `v1`). A name without one (`test_image_2`, which Docker
/// reads as `test_image_2:latest`) is its own tag: taking `latest` would give every such
/// image of an archive the same tag.
pub(crate) fn tag_of(name: &str) -> &str {
    let name = name.split('@').next().unwrap_or(name);
    let start = name.rfind('/').map_or(0, |i| i + 1);
    match name[start..].rfind(':') {
        Some(i) => &name[start + i + 1..],
        None => name,
    }
}

/// Tags from `RepoTags`, validated.
pub(crate) fn tags_from(repo_tags: &[String]) -> Result<Vec<TagName>> {
    let mut out = Vec::new();
    for name in repo_tags {
        let tag = tag_of(name).to_owned();
        ocil_layout::reference::validate_tag(&tag).map_err(|source| Error::InvalidTag {
            name: name.clone(),
            tag: tag.clone(),
            source: Box::new(source),
        })?;
        out.push(TagName { tag, name: Some(name.clone()) });
    }
    Ok(out)
}

fn resolve(src: &impl Source, image: usize, raw: &str, what: &str) -> Result<(String, FileFacts)> {
    let path = normalize_reference(raw).map_err(|reason| Error::UnsafeReference {
        image,
        path: raw.into(),
        reason,
    })?;
    match src.file(&path)? {
        Some(found) => Ok(found),
        None => Err(Error::MissingEntry {
            entry: path,
            what: format!("{what} of `manifest.json` entry {image}"),
        }),
    }
}

/// Build an OCI manifest for every `manifest.json` entry.
pub(crate) fn plan(src: &impl Source) -> Result<Vec<DockerImage>> {
    let bytes = src.read_json("manifest.json")?.ok_or_else(|| Error::MissingEntry {
        entry: "manifest.json".into(),
        what: "the docker-save manifest".into(),
    })?;
    let mut out = Vec::new();
    for (i, entry) in parse_manifest_json(&bytes)?.into_iter().enumerate() {
        let ManifestEntry { config: config_raw, repo_tags, layers: layers_raw } = entry;
        let (config_path, config) = resolve(src, i, &config_raw, "the config")?;
        let config = config.digest;
        let config_bytes = src.read_json(&config_path)?.unwrap_or_default();
        let diff_ids = diff_ids(&config_path, &config_bytes)?;
        let mut layer_paths = Vec::new();
        let mut layers = Vec::new();
        let mut decompressed = BTreeMap::new();
        for (n, raw) in layers_raw.iter().enumerate() {
            let (path, f) = resolve(src, i, raw, &format!("layer {n}"))?;
            // gzip and zstd layers keep their bytes and get their media types; xz and bzip2
            // ones (which docker load reads too, but no media type names) are stored as the
            // plain tars they hold.
            let format = Format::sniff(&f.head);
            let (media_type, f) = match format {
                Format::Gzip => (MediaType::OciLayerGzip, f),
                Format::Zstd => (MediaType::OciLayerZstd, f),
                Format::Xz | Format::Bzip2 => match src.decompressed(&path)? {
                    Some(plain) => {
                        decompressed.insert(path.clone(), format);
                        (MediaType::OciLayerTar, plain)
                    }
                    None => {
                        return Err(Error::DockerManifestInvalid {
                            reason: format!(
                                "entry {i}: layer {n} (`{path}`) is {}-compressed but named by a digest, so it cannot be stored decompressed",
                                format.as_str()
                            ),
                        });
                    }
                },
                _ => (MediaType::OciLayerTar, f),
            };
            let digest = f.digest;
            if media_type == MediaType::OciLayerTar
                && let Some(diff_id) = diff_ids.get(n)
                && diff_id.algorithm() == digest.algorithm()
                && diff_id != &digest
            {
                let what = match decompressed.get(&path) {
                    Some(format) => format!("is {}-compressed; decompressed, it", format.as_str()),
                    None => "is uncompressed and".to_owned(),
                };
                return Err(Error::DiffIdMismatch {
                    image: i,
                    reason: format!(
                        "layer {n} (`{path}`) {what} hashes to `{digest}`, but the config's diff_id is `{diff_id}`"
                    ),
                });
            }
            layers.push(Descriptor::new(media_type, digest, f.size));
            layer_paths.push(path);
        }
        if diff_ids.len() != layers.len() {
            return Err(Error::DiffIdMismatch {
                image: i,
                reason: format!(
                    "the config `{config_path}` lists {} diff_id(s) but `Layers` has {} layer(s)",
                    diff_ids.len(),
                    layers.len()
                ),
            });
        }
        let config_desc =
            Descriptor::new(MediaType::OciConfig, config.clone(), config_bytes.len() as u64);
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MediaType::OciManifest),
            artifact_type: None,
            config: config_desc,
            layers,
            subject: None,
            annotations: None,
            extra: serde_json::Map::new(),
        };
        let manifest = serde_json::to_vec(&manifest).expect("a manifest always serialises");
        let digest = ocil_layout::Algorithm::Sha256.digest_of(&manifest);
        let descriptor = Descriptor::new(MediaType::OciManifest, digest, manifest.len() as u64);
        out.push(DockerImage {
            config_path,
            layer_paths,
            decompressed,
            manifest,
            descriptor,
            tags: tags_from(&repo_tags)?,
        });
    }
    Ok(out)
}

/// The config's `rootfs.diff_ids`.
fn diff_ids(path: &str, bytes: &[u8]) -> Result<Vec<Digest>> {
    let invalid = |reason: &str| Error::InvalidConfig { entry: path.into(), reason: reason.into() };
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|source| Error::InvalidJson { entry: path.into(), source })?;
    let Some(obj) = value.as_object() else { return Err(invalid("not a JSON object")) };
    let Some(rootfs) = obj.get("rootfs").and_then(Value::as_object) else {
        return Err(invalid("no `rootfs` object"));
    };
    let Some(ids) = rootfs.get("diff_ids").and_then(Value::as_array) else {
        return Err(invalid("no `rootfs.diff_ids` array"));
    };
    ids.iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| s.parse::<Digest>().ok())
                .ok_or_else(|| invalid(&format!("`rootfs.diff_ids` holds `{v}`, not a digest")))
        })
        .collect()
}

/// For ImportedImage lists.
impl From<&DockerImage> for ImportedImage {
    fn from(d: &DockerImage) -> ImportedImage {
        ImportedImage { descriptor: d.descriptor.clone(), tags: d.tags.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_of_full_names() {
        assert_eq!(tag_of("example.com/app:v1"), "v1");
        assert_eq!(tag_of("example.com:5000/app:v1"), "v1");
        assert_eq!(tag_of("example.com:5000/app"), "example.com:5000/app");
        assert_eq!(tag_of("test_image_2"), "test_image_2");
        assert_eq!(tag_of("hello-world:latest"), "latest");
        assert_eq!(tag_of("bazel/v1/tarball:test_image_1"), "test_image_1");
    }

    #[test]
    fn manifest_json_must_be_an_array_of_objects() {
        let err = parse_manifest_json(b"null").unwrap_err();
        assert_eq!(err.code(), Some("DOCKER_MANIFEST_INVALID"));
        assert!(err.to_string().contains("not a JSON array (found null)"), "{err}");
        assert!(parse_manifest_json(b"[1]").is_err());
        assert!(parse_manifest_json(b"[]").is_err());
        assert!(parse_manifest_json(br#"[{"Config":"a.json","Layers":[1]}]"#).is_err());
        let ok =
            parse_manifest_json(br#"[{"Config":"a.json","RepoTags":null,"Layers":["l.tar"]}]"#)
                .unwrap();
        assert_eq!(
            ok,
            [ManifestEntry {
                config: "a.json".into(),
                repo_tags: vec![],
                layers: vec!["l.tar".into()]
            }]
        );
    }
}
