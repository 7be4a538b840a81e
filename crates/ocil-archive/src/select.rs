//! Choosing what of an archive to import: one image ([`ImportOptions::image`], by tag, full
//! name or digest) and a new tag for it ([`ImportOptions::tag`]), and, for one image of an
//! OCI archive, the blobs its graph reaches.
//!
//! [`ImportOptions::image`]: crate::ImportOptions::image
//! [`ImportOptions::tag`]: crate::ImportOptions::tag

use std::collections::HashSet;

use ocil_layout::{ANNOTATION_CONTAINERD_NAME, Descriptor, Digest, Kind, MediaType, Reference};
use serde_json::Value;

use crate::source::Source;
use crate::{Error, ImportedImage, Result, TagName};

/// The position of the image `want` names: by digest, tag or full name (exact, then
/// normalised as Docker does, so `docker.io/library/busybox:latest` finds `busybox:latest`).
pub(crate) fn choose(images: &[ImportedImage], want: &Reference) -> Result<usize> {
    let names = |i: &ImportedImage| -> Vec<String> {
        let mut n: Vec<String> =
            i.tags.iter().flat_map(|t| [Some(t.tag.clone()), t.name.clone()]).flatten().collect();
        n.extend(i.descriptor.annotation(ANNOTATION_CONTAINERD_NAME).map(str::to_owned));
        n
    };
    let found: Vec<usize> = match want {
        Reference::Digest(d) => images.iter().positions(|i| &i.descriptor.digest == d),
        Reference::Tag(t) => {
            let exact: Vec<usize> = images.iter().positions(|i| names(i).iter().any(|n| n == t));
            if exact.is_empty() && t.contains([':', '/']) {
                images.iter().positions(|i| {
                    names(i).iter().any(|n| ocil_layout::image_ref::same_image_name(n, t))
                })
            } else {
                exact
            }
        }
    };
    let distinct: HashSet<&Digest> = found.iter().map(|&i| &images[i].descriptor.digest).collect();
    match (found.first(), distinct.len()) {
        (Some(&i), 1) => Ok(i),
        (None, _) => {
            Err(Error::ImageNotInArchive { reference: want.to_string(), images: list(images) })
        }
        _ => Err(Error::AmbiguousImage {
            reference: want.to_string(),
            images: list(&found.iter().map(|&i| images[i].clone()).collect::<Vec<_>>()),
        }),
    }
}

/// The one image a tag can go to when none was chosen: every entry must be the same image.
pub(crate) fn only(images: &[ImportedImage], tag: &str) -> Result<usize> {
    let distinct: HashSet<&Digest> = images.iter().map(|i| &i.descriptor.digest).collect();
    if distinct.len() == 1 {
        return Ok(0);
    }
    Err(Error::SeveralImages { tag: tag.to_owned(), count: distinct.len(), images: list(images) })
}

/// Give the image `tag` instead of the archive's tags and names.
pub(crate) fn retag(image: &mut ImportedImage, tag: &str) -> Result<()> {
    ocil_layout::reference::validate_tag(tag)?;
    let (tag, name) = ocil_layout::tags::split_name(tag);
    image.tags = vec![TagName { tag, name }];
    if let Some(ann) = image.descriptor.annotations.as_mut() {
        ann.remove(ocil_layout::ANNOTATION_REF_NAME);
        ann.remove(ANNOTATION_CONTAINERD_NAME);
        if ann.is_empty() {
            image.descriptor.annotations = None;
        }
    }
    Ok(())
}

/// The archive's images, for messages: each one's names, or its digest when it has none.
fn list(images: &[ImportedImage]) -> String {
    let mut out: Vec<String> = Vec::new();
    for i in images {
        let names: Vec<String> =
            i.tags.iter().map(|t| format!("`{}`", t.name.as_deref().unwrap_or(&t.tag))).collect();
        let shown = if names.is_empty() {
            format!("`{}` (untagged)", i.descriptor.digest)
        } else {
            names.join(", ")
        };
        if !out.contains(&shown) {
            out.push(shown);
        }
    }
    if out.is_empty() { "no images".into() } else { out.join("; ") }
}

/// The archive paths of the blobs `root`'s graph reaches (manifests and indexes, configs,
/// layers, artifact blobs), as far as the archive holds them.
pub(crate) fn closure(src: &impl Source, root: &Descriptor) -> Result<Vec<String>> {
    let mut keep = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(root.digest.clone(), root.media_type.kind(), true)];
    while let Some((digest, kind, listed)) = stack.pop() {
        if !seen.insert(digest.clone()) {
            continue;
        }
        let Some((path, _)) = src.file(&digest.blob_path())? else { continue };
        keep.push(path.clone());
        // A child of an index with an unknown type may still be a manifest: look.
        let walk =
            matches!(kind, Kind::Index | Kind::Manifest) || (listed && kind == Kind::Unknown);
        if !walk {
            continue;
        }
        let doc = match src.read_json(&path) {
            Ok(Some(bytes)) => serde_json::from_slice::<Value>(&bytes).ok(),
            Ok(None) => None,
            Err(e) if matches!(kind, Kind::Index | Kind::Manifest) => return Err(e),
            Err(_) => None,
        };
        let Some(doc) = doc else { continue };
        for (field, listed) in
            [("manifests", true), ("config", false), ("layers", false), ("blobs", false)]
        {
            let children = match doc.get(field) {
                Some(Value::Array(a)) => a.iter().collect(),
                Some(v @ Value::Object(_)) => vec![v],
                _ => Vec::new(),
            };
            for c in children {
                let Some(d) = c.get("digest").and_then(Value::as_str).and_then(|d| d.parse().ok())
                else {
                    continue;
                };
                let mt = c.get("mediaType").and_then(Value::as_str).map(MediaType::from);
                let kind = mt.map_or(Kind::Unknown, |m| m.kind());
                stack.push((d, kind, listed));
            }
        }
    }
    Ok(keep)
}

/// `positions` for iterators: the indexes of the items that match.
trait Positions: Iterator + Sized {
    fn positions(self, mut f: impl FnMut(Self::Item) -> bool) -> Vec<usize> {
        self.enumerate().filter_map(|(i, x)| f(x).then_some(i)).collect()
    }
}

impl<I: Iterator> Positions for I {}
