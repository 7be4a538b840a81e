//! `--format docker`: the `manifest.json` that `docker load` reads, next to the OCI layout
//! files, as Docker 25+ `docker save` writes it.
//!
//! Each exported image manifest becomes one `manifest.json` entry: `Config` and `Layers` are
//! paths of blobs in the same archive (`blobs/sha256/<hex>`), `RepoTags` the `name:tag` of
//! every archive entry naming it: the entry's full name (`io.containerd.image.name`), else
//! its tag when that is a full name (`example.com/app:v1`), else `--repo NAME` and the tag;
//! a bare tag without any of these is an error (docker-archive has no tag without a name),
//! and so is a `name:tag` that would name two images (`docker load` would keep the last).
//! An index entry gives the image of `--platform`, or its only image (attestation manifests,
//! platform `unknown/unknown`, do not count). zstd layers are refused. Untagged entries that
//! are not images (signatures, SBOMs listed in `index.json`) stay on the OCI side only.

use ocil_layout::{
    ANNOTATION_CONTAINERD_NAME, Compression, Descriptor, Digest, Index, JSON_LIMIT, Kind, Manifest,
};
use serde_json::{Value, json};

use super::plan::Selected;
use super::{ExportOptions, ExportSource};
use crate::{Error, Result};

/// One `manifest.json` entry.
#[derive(Debug, Clone)]
pub(crate) struct DockerEntry {
    pub(crate) manifest: Digest,
    pub(crate) config: Digest,
    pub(crate) repo_tags: Vec<String>,
    pub(crate) layers: Vec<Digest>,
}

impl DockerEntry {
    fn json(&self) -> Value {
        json!({
            "Config": self.config.blob_path(),
            "RepoTags": self.repo_tags,
            "Layers": self.layers.iter().map(Digest::blob_path).collect::<Vec<_>>(),
        })
    }
}

/// `manifest.json`'s bytes.
pub(crate) fn manifest_json(entries: &[DockerEntry]) -> Vec<u8> {
    let v = Value::Array(entries.iter().map(DockerEntry::json).collect());
    serde_json::to_vec(&v).expect("JSON values always serialise")
}

/// The `manifest.json` entries for the archive's entries, one per image, tags merged.
pub(crate) fn plan(
    sources: &[ExportSource<'_>],
    entries: &[Selected],
    opts: &ExportOptions<'_>,
) -> Result<Vec<DockerEntry>> {
    let mut out: Vec<DockerEntry> = Vec::new();
    // The source of each of `out`'s images, for messages.
    let mut first_source: Vec<usize> = Vec::new();
    for e in entries {
        let src = &sources[e.source];
        let d = &e.descriptor;
        let label = match d.ref_name() {
            Some(t) => format!("`{t}`"),
            None => format!("`{}`", d.digest),
        };
        let image = image_entry(src, d, &label, opts);
        let (manifest_desc, manifest) = match image {
            Ok(m) => m,
            // An untagged artifact (a signature or SBOM listed in index.json) stays on the
            // OCI side only: docker load has nothing to do with it.
            Err(Error::NotAnImage { .. }) if d.ref_name().is_none() => continue,
            Err(e) => return Err(e),
        };
        let repo_tag = repo_tag(src, d, opts)?;
        if let Some(t) = &repo_tag
            && let Some((other, first)) = out.iter().zip(&first_source).find(|(x, _)| {
                x.manifest != manifest_desc.digest
                    && x.repo_tags.iter().any(|o| ocil_layout::image_ref::same_image_name(o, t))
            })
        {
            return Err(Error::ExportTagConflict {
                tag: t.clone(),
                first: Box::new(other.manifest.clone()),
                first_layout: sources[*first].name.clone(),
                second: Box::new(manifest_desc.digest.clone()),
                second_layout: src.name.clone(),
            });
        }
        match out.iter_mut().find(|x| x.manifest == manifest_desc.digest) {
            Some(x) => {
                if let Some(t) = repo_tag
                    && !x.repo_tags.contains(&t)
                {
                    x.repo_tags.push(t);
                }
            }
            None => {
                first_source.push(e.source);
                out.push(DockerEntry {
                    manifest: manifest_desc.digest.clone(),
                    config: manifest.config.digest.clone(),
                    repo_tags: repo_tag.into_iter().collect(),
                    layers: manifest.layers.iter().map(|l| l.digest.clone()).collect(),
                });
            }
        }
    }
    Ok(out)
}

/// The image manifest an entry stands for, read and checked for docker-archive.
fn image_entry(
    src: &ExportSource<'_>,
    d: &Descriptor,
    label: &str,
    opts: &ExportOptions<'_>,
) -> Result<(Descriptor, Manifest)> {
    let manifest_desc = image_of(src, d, label, opts)?;
    let bytes = src
        .layout
        .read_blob(&manifest_desc.digest, JSON_LIMIT)
        .map_err(Error::source_layout(&src.name))?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|_| Error::NotAnImage {
        layout: src.name.clone(),
        image: label.to_owned(),
        media_type: format!("{} that does not parse as a manifest", manifest_desc.media_type),
    })?;
    if manifest.config.media_type.kind() != Kind::Config {
        return Err(Error::NotAnImage {
            layout: src.name.clone(),
            image: label.to_owned(),
            media_type: format!("manifest with config `{}`", manifest.config.media_type),
        });
    }
    for l in &manifest.layers {
        if matches!(l.media_type.kind(), Kind::Layer { compression: Compression::Zstd, .. }) {
            return Err(Error::ZstdLayer {
                layout: src.name.clone(),
                image: label.to_owned(),
                layer: l.digest.clone(),
            });
        }
    }
    Ok((manifest_desc, manifest))
}

/// The image manifest an entry stands for.
fn image_of(
    src: &ExportSource<'_>,
    d: &Descriptor,
    label: &str,
    opts: &ExportOptions<'_>,
) -> Result<Descriptor> {
    match d.media_type.kind() {
        Kind::Manifest => Ok(d.clone()),
        Kind::Index => {
            let bytes = src
                .layout
                .read_blob(&d.digest, JSON_LIMIT)
                .map_err(Error::source_layout(&src.name))?;
            let index: Index = serde_json::from_slice(&bytes).map_err(|_| Error::NotAnImage {
                layout: src.name.clone(),
                image: label.to_owned(),
                media_type: format!("{} that does not parse as an index", d.media_type),
            })?;
            let images: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|m| m.media_type.kind() == Kind::Manifest)
                .filter(|m| m.platform.as_ref().is_none_or(|p| p.os != "unknown"))
                .collect();
            let platforms: Vec<String> = images
                .iter()
                .map(|m| {
                    m.platform.as_ref().map_or_else(|| "(no platform)".into(), |p| p.display())
                })
                .collect();
            match &opts.platform {
                Some(spec) => images
                    .iter()
                    .find(|m| m.platform.as_ref().is_some_and(|p| p.matches(spec)))
                    .map(|m| (*m).clone())
                    .ok_or_else(|| Error::NoSuchPlatform {
                        layout: src.name.clone(),
                        image: label.to_owned(),
                        platform: spec.clone(),
                        platforms,
                    }),
                None if images.len() == 1 => Ok(images[0].clone()),
                None => Err(Error::NeedsPlatform {
                    layout: src.name.clone(),
                    image: label.to_owned(),
                    platforms,
                }),
            }
        }
        _ => Err(Error::NotAnImage {
            layout: src.name.clone(),
            image: label.to_owned(),
            media_type: d.media_type.to_string(),
        }),
    }
}

/// Whether a full name ends with a tag (`:tag` after the last `/`).
fn has_tag(name: &str) -> bool {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':')
}

/// The `name:tag` of an entry, `None` for an untagged one.
fn repo_tag(
    src: &ExportSource<'_>,
    d: &Descriptor,
    opts: &ExportOptions<'_>,
) -> Result<Option<String>> {
    let tag = d.ref_name();
    let full = d.annotation(ANNOTATION_CONTAINERD_NAME);
    // A full name is kept whatever --repo says: it is the image's name.
    Ok(match (tag, full, &opts.repo) {
        (_, Some(n), _) if has_tag(n) => Some(n.to_owned()),
        (Some(t), Some(n), _) if !t.contains('/') => Some(format!("{n}:{t}")),
        (_, Some(n), _) => Some(format!("{n}:latest")),
        (Some(t), None, _) if t.contains('/') => {
            Some(if has_tag(t) { t.to_owned() } else { format!("{t}:latest") })
        }
        (Some(t), None, Some(repo)) => Some(format!("{repo}:{t}")),
        (Some(t), None, None) => {
            return Err(Error::NoRepository { layout: src.name.clone(), tag: t.to_owned() });
        }
        (None, None, _) => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_tags() {
        assert!(has_tag("example.com/app:v1"));
        assert!(has_tag("app:v1"));
        assert!(!has_tag("example.com:5000/app"));
        assert!(!has_tag("app"));
    }
}
