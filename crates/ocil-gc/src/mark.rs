//! Mark: everything reachable from the roots, plus referrers of live manifests.

use std::collections::{HashMap, HashSet};

use ocil_layout::walk::{self, LeafCheck, Problem, Severity, WalkOptions};
use ocil_layout::{Descriptor, Digest, Index, Layout, MediaType};
use rayon::prelude::*;
use serde_json::Value;

/// Cap on blobs read as possible referrers.
const REFERRER_LIMIT: u64 = 4 * 1024 * 1024;

/// What the mark phase found.
#[derive(Debug, Clone, Default)]
pub struct Mark {
    /// Every live digest.
    pub live: HashSet<Digest>,
    /// Referrers kept because their subject is live (not named by `index.json`).
    pub referrers: Vec<Digest>,
    /// Referrers whose subject is not live: garbage, with the subject they name.
    pub orphan_referrers: HashMap<Digest, Digest>,
    /// Problems found while walking (missing blobs, mismatches, unreadable documents).
    pub problems: Vec<Problem>,
    /// `index.json` entries dropped by `tagged_only`.
    pub dropped_entries: Vec<Descriptor>,
    /// The index to write when entries were dropped.
    pub new_index: Option<Index>,
}

/// Mark from `index`'s entries over the store listed in `present` (digest -> size).
pub fn mark(
    layout: &Layout,
    index: &Index,
    present: &HashMap<Digest, u64>,
    tagged_only: bool,
    keep_referrers: bool,
) -> Mark {
    let opts = WalkOptions {
        follow_subject: true,
        sniff_unknown: true,
        leaves: LeafCheck::Listing(present),
        keep_bytes: false,
    };
    let mut out = Mark::default();
    let (roots, untagged): (Vec<Descriptor>, Vec<Descriptor>) = if tagged_only {
        index.manifests.iter().cloned().partition(|d| d.ref_name().is_some())
    } else {
        (index.manifests.clone(), Vec::new())
    };
    let w = walk::walk(layout, &roots, opts);
    out.live.extend(w.nodes.keys().cloned());
    out.problems.extend(w.problems);

    // Referrers in the store: small unmarked blobs that parse as a document with a subject.
    let candidates: Vec<(&Digest, u64)> = present
        .iter()
        .filter(|(d, size)| !out.live.contains(*d) && **size <= REFERRER_LIMIT && **size >= 2)
        .map(|(d, s)| (d, *s))
        .collect();
    let mut waiting: Vec<(Digest, Digest, MediaType, u64)> = candidates
        .par_iter()
        .filter_map(|(d, size)| {
            let (subject, media_type) = read_referrer(layout, d)?;
            Some(((*d).clone(), subject, media_type, *size))
        })
        .collect();

    // Untagged entries survive `tagged_only` when they are live or refer to something live;
    // a store referrer can make an entry's subject live (a signature entry of a stored SBOM)
    // and an entry can make a store referrer's subject live, so both go round until nothing
    // changes.
    let mut kept_untagged: Vec<Descriptor> = Vec::new();
    let mut pending: Vec<(Descriptor, Option<Digest>)> = untagged
        .into_iter()
        .map(|d| {
            let s = subject_of_blob(layout, &d.digest);
            (d, s)
        })
        .collect();
    loop {
        let mut progress = false;
        let mut still = Vec::new();
        for (d, subject) in pending {
            if out.live.contains(&d.digest) {
                // Already reachable from a tagged root: keep the entry, it costs nothing.
                kept_untagged.push(d);
                progress = true;
                continue;
            }
            match &subject {
                Some(s) if out.live.contains(s) => {
                    let w = walk::walk(layout, std::slice::from_ref(&d), opts);
                    out.live.extend(w.nodes.keys().cloned());
                    out.problems.extend(w.problems);
                    kept_untagged.push(d);
                    progress = true;
                }
                _ => still.push((d, subject)),
            }
        }
        pending = still;
        if keep_referrers {
            // One round of store referrers whose subject is live. Entries still pending are
            // left to the loop above, so an `index.json` entry is never counted as a store
            // referrer.
            let entries: HashSet<&Digest> = pending.iter().map(|(d, _)| &d.digest).collect();
            let (ready, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(d, s, _, _)| {
                out.live.contains(s) && !out.live.contains(d) && !entries.contains(d)
            });
            waiting = rest.into_iter().filter(|(d, ..)| !out.live.contains(d)).collect();
            for (d, _, media_type, size) in ready {
                if out.live.contains(&d) {
                    continue;
                }
                let desc = Descriptor::new(media_type, d.clone(), size);
                let w = walk::walk(layout, std::slice::from_ref(&desc), opts);
                out.live.extend(w.nodes.keys().cloned());
                out.problems.extend(
                    w.problems
                        .into_iter()
                        .filter(|p| p.severity == Severity::Error || p.blocks_gc()),
                );
                out.referrers.push(d);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    let pending: Vec<Descriptor> = pending.into_iter().map(|(d, _)| d).collect();
    if tagged_only && !pending.is_empty() {
        let dropped: HashSet<&Digest> = pending.iter().map(|d| &d.digest).collect();
        let mut idx = index.clone();
        idx.manifests.retain(|d| d.ref_name().is_some() || !dropped.contains(&d.digest));
        out.dropped_entries = pending;
        out.new_index = Some(idx);
    }
    for (d, s, _, _) in waiting {
        if !out.live.contains(&d) {
            out.orphan_referrers.insert(d, s);
        }
    }
    out.referrers.sort();
    out
}

/// The subject of a stored document, if it is a small JSON document with one.
fn subject_of_blob(layout: &Layout, digest: &Digest) -> Option<Digest> {
    read_referrer(layout, digest).map(|(s, _)| s)
}

/// Read a blob as a possible referrer: its subject digest and its media type (own field, or
/// by shape).
fn read_referrer(layout: &Layout, digest: &Digest) -> Option<(Digest, MediaType)> {
    // Most candidates are layers: look at the first bytes before reading a blob whole.
    let head = layout.peek_blob(digest, 64).ok()?;
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let bytes = layout.read_blob(digest, REFERRER_LIMIT).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let subject: Digest = v.get("subject")?.get("digest")?.as_str()?.parse().ok()?;
    let media_type = match v.get("mediaType").and_then(Value::as_str) {
        Some(t) => MediaType::from(t),
        None if v.get("manifests").is_some() => MediaType::OciIndex,
        None => MediaType::OciManifest,
    };
    if !media_type.kind().is_walkable() {
        return None;
    }
    Some((subject, media_type))
}
