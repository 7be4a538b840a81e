//! Mark: everything reachable from the roots, plus referrers of live manifests.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use ocil_layout::referrer::{self, REFERRER_LIMIT, StoredReferrer};
use ocil_layout::walk::{self, LeafCheck, Problem, Severity, WalkOptions};
use ocil_layout::{Descriptor, Digest, DigestMap, DigestSet, Index, Layout};
use rayon::prelude::*;

/// An unmarked blob, as probed: what the sweep needs to decide about it.
#[derive(Debug, Clone)]
pub struct Unmarked {
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub modified: Option<SystemTime>,
}

/// What the mark phase found.
#[derive(Debug, Clone, Default)]
pub struct Mark {
    /// Every live digest (the value is of no use: the first walk's map is kept as it is).
    pub live: DigestMap<u32>,
    /// Live blobs that are present.
    pub live_present: usize,
    /// Bytes of the live blobs that are present (by their descriptors' sizes).
    pub live_bytes: u64,
    /// Blobs in the store that were not live when probed, with their size and mtime, sorted
    /// by digest (some may have become live since, as referrers: check `live`).
    pub unmarked: Vec<(Digest, Unmarked)>,
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

impl Mark {
    /// Take a walk's nodes into the live set.
    fn absorb(&mut self, w: walk::Walk, errors_only: bool) {
        let (nodes, index, problems) = w.into_parts();
        let first = self.live.is_empty();
        if first {
            // The first (big) walk: its map is the live set, no copy.
            self.live = index;
        } else {
            drop(index);
        }
        for node in nodes {
            let new = first || self.live.insert(node.digest, 0).is_none();
            if new && node.present != Some(false) {
                self.live_bytes += node.size;
                self.live_present += 1;
            }
        }
        if errors_only {
            self.problems.extend(
                problems.into_iter().filter(|p| p.severity == Severity::Error || p.blocks_gc()),
            );
        } else {
            self.problems.extend(problems);
        }
    }
}

/// A probed candidate: size, mtime and, for a small JSON document with a `subject`, that
/// document as a referrer.
type Probed = (Digest, Unmarked, Option<Box<StoredReferrer>>);

/// Mark from `index`'s entries over the store whose blob names are `present` (sorted).
pub fn mark(
    layout: &Layout,
    index: &Index,
    present: Vec<Digest>,
    tagged_only: bool,
    keep_referrers: bool,
) -> Mark {
    // The listing is sorted (`list_blob_names`); were it not, leaves are stat'ed instead.
    let names = DigestSet::new(&present);
    let opts = WalkOptions {
        follow_subject: true,
        sniff_unknown: true,
        leaves: names.as_ref().map_or(LeafCheck::Stat, LeafCheck::Names),
        keep_bytes: false,
        keep_documents: false,
    };
    let mut out = Mark::default();
    let (tagged, untagged): (Vec<Descriptor>, Vec<Descriptor>) = if tagged_only {
        index.manifests.iter().cloned().partition(|d| d.ref_name().is_some())
    } else {
        (Vec::new(), Vec::new())
    };
    // All entries are roots unless tagged-only: walk them in place, without a copy.
    let roots: &[Descriptor] = if tagged_only { &tagged } else { &index.manifests };
    let w = walk::walk(layout, roots, opts);
    out.absorb(w, false);

    // Every unmarked blob is probed once, in parallel: one open, fstat and (for a small blob)
    // a read of its first bytes. The sweep needs its size and mtime; a small JSON document
    // with a `subject` is a possible referrer.
    // Candidates are positions in the listing, and the probes are written straight into one
    // vector: on 300,000 blobs every copy of a list of digests costs 20 MB.
    let candidates: Vec<u32> = (0..present.len() as u32)
        .filter(|&i| !out.live.contains_key(&present[i as usize]))
        .collect();
    let mut probed: Vec<Option<Probed>> = Vec::new();
    candidates
        .par_iter()
        .map(|&i| probe(layout, &present[i as usize]))
        .collect_into_vec(&mut probed);
    drop(candidates);
    let mut waiting: Vec<(Digest, Digest, Descriptor)> = Vec::new();
    out.unmarked = probed
        .into_iter()
        .flatten()
        .map(|(d, info, referrer)| {
            if let Some(r) = referrer {
                let StoredReferrer { descriptor, subject } = *r;
                waiting.push((d.clone(), subject, descriptor));
            }
            (d, info)
        })
        .collect();
    // `present` was sorted, so the candidates and the probes are too.

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
            if out.live.contains_key(&d.digest) {
                // Already reachable from a tagged root: keep the entry, it costs nothing.
                kept_untagged.push(d);
                progress = true;
                continue;
            }
            match &subject {
                Some(s) if out.live.contains_key(s) => {
                    let w = walk::walk(layout, std::slice::from_ref(&d), opts);
                    out.absorb(w, false);
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
            let (ready, rest): (Vec<_>, Vec<_>) = waiting.into_iter().partition(|(d, s, _)| {
                out.live.contains_key(s) && !out.live.contains_key(d) && !entries.contains(d)
            });
            waiting = rest.into_iter().filter(|(d, ..)| !out.live.contains_key(d)).collect();
            for (d, _, desc) in ready {
                if out.live.contains_key(&d) {
                    continue;
                }
                let w = walk::walk(layout, std::slice::from_ref(&desc), opts);
                out.absorb(w, true);
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
    for (d, s, _) in waiting {
        if !out.live.contains_key(&d) {
            out.orphan_referrers.insert(d, s);
        }
    }
    out.referrers.sort();
    out
}

/// The subject of a stored document, if it is a small JSON document with one.
fn subject_of_blob(layout: &Layout, digest: &Digest) -> Option<Digest> {
    referrer::stored_referrer(layout, digest).map(|r| r.subject)
}

/// Probe an unmarked blob: size, mtime, and whether it is a referrer.
fn probe(layout: &Layout, digest: &Digest) -> Option<Probed> {
    // A blob that vanished or cannot be opened is not ours to judge: leave it alone.
    let p = layout.probe_blob(digest, 64, REFERRER_LIMIT).ok()??;
    let referrer = referrer::referrer_from_head(layout, digest, &p.head).map(Box::new);
    Some((digest.clone(), Unmarked { size: p.size, modified: p.modified }, referrer))
}
