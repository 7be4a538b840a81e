//! OCI archives: an image layout at the root of the tar (`oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>`), as skopeo's `oci-archive:` and Docker 25+'s `docker save` write.

use ocil_layout::{ANNOTATION_CONTAINERD_NAME, Descriptor, Digest, Index, Kind};
use serde_json::Value;

use crate::docker::{parse_manifest_json, tags_from};
use crate::source::Source;
use crate::source::normalize_reference;
use crate::{Error, ImportedImage, Result, TagName};

/// The images of `index.json`.
pub(crate) fn plan(staged: &impl Source, dual: bool) -> Result<Vec<ImportedImage>> {
    let marker = staged.read_json("oci-layout")?.ok_or_else(|| Error::MissingEntry {
        entry: "oci-layout".into(),
        what: "the image layout marker".into(),
    })?;
    check_marker(&marker)?;
    let bytes = staged.read_json("index.json")?.ok_or_else(|| Error::MissingEntry {
        entry: "index.json".into(),
        what: "the image layout's index".into(),
    })?;
    let index: Index = ocil_layout::parse_index(&bytes).map_err(|e| Error::InvalidIndex {
        reason: match &e {
            ocil_layout::Error::InvalidIndex { reason, .. } => reason.clone(),
            other => ocil_layout::walk::error_chain(other),
        },
    })?;
    let mut images = Vec::new();
    let mut docker = None;
    for desc in &index.manifests {
        let mut tags = entry_tags(desc)?;
        if tags.is_empty() && dual {
            // Docker 25+ names its images in index.json; when it does not, the RepoTags of
            // the manifest.json entry with the same config are the tags.
            if docker.is_none() {
                docker = Some(docker_tags(staged)?);
            }
            let configs = config_digests(staged, desc);
            for (config, repo_tags) in docker.iter().flatten() {
                if configs.contains(config) {
                    tags.extend(repo_tags.iter().cloned());
                }
            }
        }
        images.push(image(desc, tags));
    }
    Ok(images)
}

/// The images of an index given whole (a bundle's, which volumes carry in
/// `ocil-bundle.json`): each entry's tag and full name from its annotations.
pub(crate) fn images_of(index: &Index) -> Result<Vec<ImportedImage>> {
    index.manifests.iter().map(|desc| Ok(image(desc, entry_tags(desc)?))).collect()
}

/// The tag an `index.json` entry gives (with its full name), checked.
fn entry_tags(desc: &Descriptor) -> Result<Vec<TagName>> {
    let Some(tag) = desc.ref_name() else { return Ok(Vec::new()) };
    ocil_layout::reference::validate_tag(tag).map_err(|source| Error::InvalidTag {
        name: tag.into(),
        tag: tag.into(),
        source: Box::new(source),
    })?;
    let name = desc.annotation(ANNOTATION_CONTAINERD_NAME).map(str::to_owned);
    Ok(vec![TagName { tag: tag.to_owned(), name }])
}

/// An entry with its tags; the tag and name annotations go (they are set again, per tag,
/// when the entry is added).
fn image(desc: &Descriptor, tags: Vec<TagName>) -> ImportedImage {
    let mut descriptor = desc.clone();
    if !tags.is_empty()
        && let Some(ann) = descriptor.annotations.as_mut()
    {
        ann.remove(ocil_layout::ANNOTATION_REF_NAME);
        ann.remove(ANNOTATION_CONTAINERD_NAME);
        if ann.is_empty() {
            descriptor.annotations = None;
        }
    }
    ImportedImage { descriptor, tags }
}

fn check_marker(bytes: &[u8]) -> Result<()> {
    let invalid = |reason: String| Error::InvalidLayoutFile { reason };
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|source| Error::InvalidJson { entry: "oci-layout".into(), source })?;
    match value.get("imageLayoutVersion") {
        Some(Value::String(v)) if v.starts_with("1.") => Ok(()),
        Some(Value::String(v)) => {
            Err(invalid(format!("imageLayoutVersion `{v}`; ocil reads 1.x layouts")))
        }
        _ => Err(invalid("no `imageLayoutVersion` string".into())),
    }
}

/// `(config digest, tags)` for every `manifest.json` entry whose config is in the archive.
fn docker_tags(staged: &impl Source) -> Result<Vec<(Digest, Vec<TagName>)>> {
    let Some(bytes) = staged.read_json("manifest.json")? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (i, e) in parse_manifest_json(&bytes)?.into_iter().enumerate() {
        let (config, repo_tags) = (e.config, e.repo_tags);
        let path = normalize_reference(&config).map_err(|reason| Error::UnsafeReference {
            image: i,
            path: config.clone(),
            reason,
        })?;
        if let Some((_, f)) = staged.file(&path)? {
            out.push((f.digest, tags_from(&repo_tags)?));
        }
    }
    Ok(out)
}

/// The configs an `index.json` entry leads to (its manifest's, or its index's manifests'),
/// as far as the archive holds them.
fn config_digests(staged: &impl Source, desc: &Descriptor) -> Vec<Digest> {
    let read = |d: &Digest| -> Option<Value> {
        let bytes = staged.read_json(&d.blob_path()).ok()??;
        serde_json::from_slice(&bytes).ok()
    };
    let config_of =
        |v: &Value| -> Option<Digest> { v.get("config")?.get("digest")?.as_str()?.parse().ok() };
    let Some(doc) = read(&desc.digest) else { return Vec::new() };
    match desc.media_type.kind() {
        Kind::Index => doc
            .get("manifests")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("digest")?.as_str()?.parse::<Digest>().ok())
            .filter_map(|d| read(&d))
            .filter_map(|m| config_of(&m))
            .collect(),
        _ => config_of(&doc).into_iter().collect(),
    }
}
