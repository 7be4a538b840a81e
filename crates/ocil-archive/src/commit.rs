//! The commit: under the destination's lock, check the tags (and a delta's base), rename the
//! kept staged blobs into place, write the new manifests, and replace `index.json` once. For
//! a volume of a bundle, only the entries whose images are complete in the destination once
//! the blobs landed are written; the others wait for the volumes still to come.

use std::collections::{BTreeMap, HashSet};

use ocil_layout::{Digest, Index, Layout, MediaType};

use crate::bundle::Bundle;
use crate::stage::{Landing, Staged};
use crate::{Error, ImportOptions, ImportedImage, Result};

/// What to publish.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The `index.json` entries to add, in order.
    pub(crate) images: Vec<ImportedImage>,
    /// Staged files to rename into place.
    pub(crate) keep: Vec<String>,
    /// New documents (the manifests built for docker-save images).
    pub(crate) documents: Vec<Vec<u8>>,
    /// Kept files whose decompressed form is the blob (xz and bzip2 docker-save layers).
    pub(crate) decompressed: BTreeMap<String, ocil_codec::Format>,
}

/// Blobs that became new in the destination, and their bytes.
#[derive(Debug, Default)]
pub(crate) struct Written {
    pub(crate) blobs: usize,
    pub(crate) bytes: u64,
    /// A volume's entries not written: their images are not complete yet.
    pub(crate) pending: Vec<ImportedImage>,
    /// The layers stored decompressed (new in the destination or not).
    pub(crate) decompressed: Vec<crate::DecompressedLayer>,
}

/// The archive must not give one tag to two images. Forced, the last image keeps the tag;
/// an earlier one left without tags is added untagged, with its full name kept in
/// `io.containerd.image.name` so it can still be found.
pub(crate) fn resolve_archive_tags(images: &mut [ImportedImage], force: bool) -> Result<()> {
    // An image is known by its full name when the archive gives one (docker save), else by
    // its tag: `example.com/a:latest` and `example.com/b:latest` are two names.
    let key = |t: &crate::TagName| t.name.clone().unwrap_or_else(|| t.tag.clone());
    let mut last: BTreeMap<String, usize> = BTreeMap::new();
    for (i, image) in images.iter().enumerate() {
        for t in &image.tags {
            if let Some(&j) = last.get(&key(t))
                && images[j].descriptor.digest != image.descriptor.digest
                && !force
            {
                return Err(Error::DuplicateTag {
                    tag: key(t),
                    first: images[j].descriptor.digest.clone(),
                    second: image.descriptor.digest.clone(),
                });
            }
            last.insert(key(t), i);
        }
    }
    let digests: Vec<Digest> = images.iter().map(|i| i.descriptor.digest.clone()).collect();
    for (i, image) in images.iter_mut().enumerate() {
        image.tags.retain(|t| last.get(&key(t)).is_none_or(|&j| digests[j] == digests[i]));
    }
    Ok(())
}

/// Add the images to `index` as import does: an entry per tag (a tag moves), untagged
/// entries once.
pub(crate) fn add_images(index: &mut Index, images: &[ImportedImage]) -> Result<()> {
    for image in images {
        if image.tags.is_empty() {
            if !index.manifests.contains(&image.descriptor) {
                index.manifests.push(image.descriptor.clone());
            }
            continue;
        }
        for t in &image.tags {
            ocil_layout::tags::set_name(index, &image.descriptor, &t.tag, t.name.as_deref())
                .map_err(|source| Error::InvalidTag {
                    name: t.name.clone().unwrap_or_else(|| t.tag.clone()),
                    tag: t.tag.clone(),
                    source: Box::new(source),
                })?;
        }
    }

    Ok(())
}

/// Whether an image is complete in `layout`: its graph reaches no missing blob.
fn complete(layout: &Layout, image: &ImportedImage) -> bool {
    let opts = ocil_layout::walk::WalkOptions {
        follow_subject: false,
        keep_documents: false,
        ..Default::default()
    };
    let w = ocil_layout::walk::walk(layout, std::slice::from_ref(&image.descriptor), opts);
    !w.problems.iter().any(|p| p.code == "BLOB_MISSING")
}

/// Publish `plan` in `layout`. `bundle` is the archive's description, when it is a delta
/// or a volume; `partial` imports it on its own (no base needed, the archive's own entries).
pub(crate) fn commit(
    layout: &Layout,
    staged: &mut Staged,
    plan: &mut Plan,
    opts: &ImportOptions,
    bundle: Option<&Bundle>,
) -> Result<Written> {
    let lock = layout.lock()?;
    let mut index = layout.read_index()?;
    let partial = opts.partial;

    // A delta's base must be here, now that nothing can remove it.
    if let Some(b) = bundle
        && !partial
    {
        b.check_base(layout)?;
    }
    // Blobs that were here when the import read them must still be.
    for path in &plan.keep {
        if let Some(crate::source::Node::File(f)) = staged.nodes.get(path)
            && let Landing::Present { digest, .. } = &f.blob
            && !layout.has_blob(digest)?
        {
            return Err(Error::BlobVanished { digest: digest.clone() });
        }
    }

    // Tags first: a conflict must stop the import before anything lands.
    for image in &plan.images {
        for t in &image.tags {
            let name = t.name.as_deref().unwrap_or(&t.tag);
            if let Some(existing) =
                index.manifests.iter().find(|d| ocil_layout::tags::entry_name(d) == Some(name))
                && existing.digest != image.descriptor.digest
                && !opts.force
            {
                return Err(Error::TagConflict {
                    tag: name.to_owned(),
                    existing: existing.digest.clone(),
                    new: image.descriptor.digest.clone(),
                });
            }
        }
    }
    // A tag that cannot be added must stop the import before anything lands, too.
    add_images(&mut index.clone(), &plan.images)?;

    // Blobs, then the documents that name them, then index.json.
    let mut written = Written::default();
    let mut done: HashSet<Digest> = HashSet::new();
    for path in &plan.keep {
        let Some(file) = staged.take(path) else { continue };
        let (blob, undone) = match (plan.decompressed.get(path), file.plain) {
            (Some(&format), Some(decoded)) => {
                let plain = decoded.result.map_err(|reason| Error::Undecodable {
                    entry: path.clone(),
                    format: format.as_str(),
                    source: std::io::Error::other(reason),
                })?;
                (Landing::Staged(plain.blob), Some(format))
            }
            _ => (file.blob, None),
        };
        let digest = blob.digest().clone();
        if !done.insert(digest.clone()) {
            continue;
        }
        if let Some(compression) = undone {
            let digest = digest.clone();
            written.decompressed.push(crate::DecompressedLayer { compression, digest });
        }
        let Landing::Staged(blob) = blob else { continue };
        let existed = layout.has_blob(&digest)?;
        let stored = blob.commit()?;
        if !existed {
            written.blobs += 1;
            written.bytes += stored.size;
        }
    }
    for doc in &plan.documents {
        let digest = ocil_layout::Algorithm::Sha256.digest_of(doc);
        if !done.insert(digest.clone()) {
            continue;
        }
        let existed = layout.has_blob(&digest)?;
        let desc = layout.put_bytes(MediaType::OciManifest, doc)?;
        if !existed {
            written.blobs += 1;
            written.bytes += desc.size;
        }
    }
    // A volume: only what is whole now.
    if bundle.is_some_and(Bundle::is_volume) && !partial {
        let (ready, pending) =
            std::mem::take(&mut plan.images).into_iter().partition(|image| complete(layout, image));
        plan.images = ready;
        written.pending = pending;
    }
    add_images(&mut index, &plan.images)?;
    layout.write_index(&index, &lock)?;
    Ok(written)
}
