//! What an export holds: the `index.json` entries taken from each source (with their tags,
//! checked against each other), and their closure from `ocil_transfer` (every blob their
//! graphs reach, and the referrers found in the sources' stores), each blob once, in a fixed
//! order.

use std::collections::BTreeMap;

use ocil_layout::{Descriptor, Digest, JSON_LIMIT, MediaType, Reference};
use ocil_transfer::{ClosureOptions, ClosureSource, closure};
use serde_json::Value;

use super::{ExportOptions, ExportSource};
use crate::{Error, Result};

/// One `index.json` entry of the archive and the source it comes from.
#[derive(Debug, Clone)]
pub(crate) struct Selected {
    pub(crate) source: usize,
    pub(crate) descriptor: Descriptor,
}

/// One blob of the archive.
#[derive(Debug, Clone)]
pub(crate) struct PlannedBlob {
    pub(crate) source: usize,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    /// A manifest, index or config: written before the layers.
    pub(crate) document: bool,
}

/// The whole content of the archive.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) entries: Vec<Selected>,
    pub(crate) blobs: Vec<PlannedBlob>,
    pub(crate) referrers: usize,
}

/// Work out the archive's content. The sources must not change meanwhile (their locks are
/// held).
pub(crate) fn plan(sources: &[ExportSource<'_>], opts: &ExportOptions<'_>) -> Result<Plan> {
    let entries = select(sources)?;
    let stores: Vec<ClosureSource<'_>> = sources
        .iter()
        .enumerate()
        .map(|(i, src)| ClosureSource {
            store: src.layout,
            roots: entries.iter().filter(|e| e.source == i).map(|e| e.descriptor.clone()).collect(),
        })
        .collect();
    // Every blob must be there: an archive is complete or not written.
    let closure_opts =
        ClosureOptions { follow_subject: true, referrers: opts.referrers, absent_ok: false };
    let found = closure(&stores, closure_opts).map_err(|e| {
        let layout = sources[e.source_index()].name.clone();
        match e {
            ocil_transfer::Error::Broken { path, message, .. } => {
                Error::SourceIncomplete { layout, path, message }
            }
            ocil_transfer::Error::Absent { path, digest, .. } => Error::SourceIncomplete {
                layout,
                path,
                message: format!("blob `{digest}` is missing"),
            },
            ocil_transfer::Error::Store { error, .. } => Error::source_layout(&layout)(error),
            e => Error::SourceIncomplete { layout, path: String::new(), message: e.to_string() },
        }
    })?;
    let referrers = found.referrers.len();
    // Each blob once, from the first source that has it, in the order the walks met them
    // (image by image: what volumes are packed in); an archive sorts them ([`sorted`]).
    let blobs: Vec<PlannedBlob> = found
        .blobs
        .into_iter()
        .map(|b| PlannedBlob {
            source: b.source,
            digest: b.digest,
            size: b.size,
            document: b.document,
        })
        .collect();
    Ok(Plan { entries, blobs, referrers })
}

/// Blobs in an archive's order: documents first, then layers, each group by digest.
pub(crate) fn sorted<'p>(blobs: impl IntoIterator<Item = &'p PlannedBlob>) -> Vec<&'p PlannedBlob> {
    let mut out: Vec<&PlannedBlob> = blobs.into_iter().collect();
    out.sort_by(|a, b| (!a.document, &a.digest).cmp(&(!b.document, &b.digest)));
    out
}

/// The `index.json` entries to export, in the order of the sources, each once; a tag given
/// to two different images is an error.
fn select(sources: &[ExportSource<'_>]) -> Result<Vec<Selected>> {
    let mut out: Vec<Selected> = Vec::new();
    let mut tags: BTreeMap<String, usize> = BTreeMap::new();
    for (i, src) in sources.iter().enumerate() {
        let index = src.layout.read_index().map_err(Error::source_layout(&src.name))?;
        let picked: Vec<Descriptor> = match &src.reference {
            None => {
                if index.manifests.is_empty() {
                    return Err(Error::NothingToExport { layout: src.name.clone() });
                }
                index.manifests.clone()
            }
            Some(r) => match ocil_layout::reference::resolve_entry(&index, r)
                .map_err(Error::source_layout(&src.name))?
            {
                Some((_, d)) => vec![d],
                None => match r {
                    Reference::Digest(d) => vec![stored_document(src, d)?],
                    // `resolve_entry` reports an unknown tag itself; this is a safety net.
                    Reference::Tag(t) => {
                        return Err(Error::source_layout(&src.name)(
                            ocil_layout::Error::RefNotFound {
                                reference: t.clone(),
                                hint: String::new(),
                            },
                        ));
                    }
                },
            },
        };
        for d in picked {
            if out.iter().any(|s| s.descriptor == d) {
                continue;
            }
            // An entry is known by its full name when it has one: `example.com/a:latest` and
            // `example.com/b:latest` are two names, and may name two images.
            if let Some(tag) = ocil_layout::tags::entry_name(&d).map(str::to_owned) {
                let tag = tag.as_str();
                if let Some(&j) = tags.get(tag)
                    && out[j].descriptor.digest != d.digest
                {
                    return Err(Error::ExportTagConflict {
                        tag: tag.to_owned(),
                        first: Box::new(out[j].descriptor.digest.clone()),
                        first_layout: sources[out[j].source].name.clone(),
                        second: Box::new(d.digest.clone()),
                        second_layout: src.name.clone(),
                    });
                }
                tags.insert(tag.to_owned(), out.len());
            }
            out.push(Selected { source: i, descriptor: d });
        }
    }
    Ok(out)
}

/// A manifest or index named by digest that `index.json` does not list: an untagged entry.
fn stored_document(src: &ExportSource<'_>, digest: &Digest) -> Result<Descriptor> {
    let not_found = || Error::DigestNotFound { layout: src.name.clone(), digest: digest.clone() };
    let bytes = match src.layout.read_blob(digest, JSON_LIMIT) {
        Ok(b) => b,
        Err(ocil_layout::Error::BlobMissing { .. }) => return Err(not_found()),
        Err(e) => return Err(Error::source_layout(&src.name)(e)),
    };
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| not_found())?;
    let media_type = match v.get("mediaType").and_then(Value::as_str) {
        Some(t) => MediaType::from(t),
        None if v.get("manifests").is_some() => MediaType::OciIndex,
        None if v.get("config").is_some() => MediaType::OciManifest,
        None => return Err(not_found()),
    };
    if !media_type.kind().is_walkable() {
        return Err(not_found());
    }
    Ok(Descriptor::new(media_type, digest.clone(), bytes.len() as u64))
}
