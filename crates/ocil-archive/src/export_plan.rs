//! What an export holds: the `index.json` entries taken from each source (with their tags,
//! checked against each other), every blob their graphs reach, and the referrers of the
//! exported images found in the sources' stores, each blob once, in a fixed order.

use std::collections::{BTreeMap, HashSet};

use ocil_layout::walk::{self, LeafCheck, Severity, WalkOptions};
use ocil_layout::{Descriptor, Digest, JSON_LIMIT, Kind, MediaType, Reference, referrer};
use serde_json::Value;

use crate::export::{ExportOptions, ExportSource};
use crate::export_error::ExportError;

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
pub(crate) fn plan(
    sources: &[ExportSource<'_>],
    opts: &ExportOptions<'_>,
) -> Result<Plan, ExportError> {
    let entries = select(sources)?;
    let walk_opts = WalkOptions {
        follow_subject: true,
        sniff_unknown: true,
        leaves: LeafCheck::Stat,
        keep_bytes: false,
        keep_documents: false,
    };
    // Walk each source from its entries.
    let mut walks: Vec<Vec<walk::Walk>> = Vec::new();
    let mut live: HashSet<Digest> = HashSet::new();
    for (i, src) in sources.iter().enumerate() {
        let roots: Vec<Descriptor> =
            entries.iter().filter(|e| e.source == i).map(|e| e.descriptor.clone()).collect();
        let w = walk::walk(src.layout, &roots, walk_opts);
        check(src, &w)?;
        live.extend(w.digests().cloned());
        walks.push(vec![w]);
    }
    // Referrers: documents in a source's store whose subject is exported, until none is new
    // (a signature of an SBOM of an image).
    let mut referrers = 0;
    if opts.referrers {
        let mut candidates: Vec<(usize, referrer::StoredReferrer)> = Vec::new();
        for (i, src) in sources.iter().enumerate() {
            let names =
                src.layout.list_blob_names().map_err(ExportError::source(&src.name))?.digests;
            for d in names.iter().filter(|d| !live.contains(*d)) {
                if let Some(r) = referrer::stored_referrer(src.layout, d) {
                    candidates.push((i, r));
                }
            }
        }
        loop {
            let (ready, rest): (Vec<_>, Vec<_>) = candidates.into_iter().partition(|(_, r)| {
                live.contains(&r.subject) && !live.contains(&r.descriptor.digest)
            });
            candidates = rest;
            if ready.is_empty() {
                break;
            }
            for (i, r) in ready {
                if live.contains(&r.descriptor.digest) {
                    continue;
                }
                let src = &sources[i];
                let w = walk::walk(src.layout, std::slice::from_ref(&r.descriptor), walk_opts);
                check(src, &w)?;
                live.extend(w.digests().cloned());
                walks[i].push(w);
                referrers += 1;
            }
        }
    }
    // Each blob once, from the first source that has it; documents first, then by digest.
    let mut seen: HashSet<Digest> = HashSet::new();
    let mut blobs = Vec::new();
    for (i, ws) in walks.iter().enumerate() {
        let src = &sources[i];
        for w in ws {
            for node in w.nodes() {
                if !seen.insert(node.digest.clone()) {
                    continue;
                }
                let size = match src.layout.stat_blob(&node.digest) {
                    Ok(Some(size)) => size,
                    Ok(None) => {
                        return Err(ExportError::Incomplete {
                            layout: src.name.clone(),
                            path: w.path_to(&node.digest),
                            message: format!("blob `{}` is missing", node.digest),
                        });
                    }
                    Err(e) => return Err(ExportError::source(&src.name)(e)),
                };
                let document = node.doc.is_some()
                    || matches!(
                        node.media_type.kind(),
                        Kind::Config | Kind::Index | Kind::Manifest
                    )
                    || node.role == walk::Role::Config;
                blobs.push(PlannedBlob { source: i, digest: node.digest.clone(), size, document });
            }
        }
    }
    blobs.sort_by(|a, b| (!a.document, &a.digest).cmp(&(!b.document, &b.digest)));
    Ok(Plan { entries, blobs, referrers })
}

/// The first error a walk found, as an export error.
fn check(src: &ExportSource<'_>, w: &walk::Walk) -> Result<(), ExportError> {
    match w.problems.iter().find(|p| p.severity == Severity::Error) {
        Some(p) => Err(ExportError::Incomplete {
            layout: src.name.clone(),
            path: p.path.clone(),
            message: p.message.clone(),
        }),
        None => Ok(()),
    }
}

/// The `index.json` entries to export, in the order of the sources, each once; a tag given
/// to two different images is an error.
fn select(sources: &[ExportSource<'_>]) -> Result<Vec<Selected>, ExportError> {
    let mut out: Vec<Selected> = Vec::new();
    let mut tags: BTreeMap<String, usize> = BTreeMap::new();
    for (i, src) in sources.iter().enumerate() {
        let index = src.layout.read_index().map_err(ExportError::source(&src.name))?;
        let picked: Vec<Descriptor> = match &src.reference {
            None => {
                if index.manifests.is_empty() {
                    return Err(ExportError::Empty { layout: src.name.clone() });
                }
                index.manifests.clone()
            }
            Some(r) => match ocil_layout::reference::resolve_entry(&index, r)
                .map_err(ExportError::source(&src.name))?
            {
                Some((_, d)) => vec![d],
                None => match r {
                    Reference::Digest(d) => vec![stored_document(src, d)?],
                    // `resolve_entry` reports an unknown tag itself; this is a safety net.
                    Reference::Tag(t) => {
                        return Err(ExportError::source(&src.name)(
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
            if let Some(tag) = d.ref_name() {
                if let Some(&j) = tags.get(tag)
                    && out[j].descriptor.digest != d.digest
                {
                    return Err(ExportError::TagConflict {
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
fn stored_document(src: &ExportSource<'_>, digest: &Digest) -> Result<Descriptor, ExportError> {
    let not_found =
        || ExportError::DigestNotFound { layout: src.name.clone(), digest: digest.clone() };
    let bytes = match src.layout.read_blob(digest, JSON_LIMIT) {
        Ok(b) => b,
        Err(ocil_layout::Error::BlobMissing { .. }) => return Err(not_found()),
        Err(e) => return Err(ExportError::source(&src.name)(e)),
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
