//! Mark: everything reachable from the roots, plus referrers of live manifests.

use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

use ocil_layout::referrer::{self, REFERRER_LIMIT, StoredReferrer};
use ocil_layout::walk::{self, LeafCheck, Problem, Severity, WalkOptions};
use ocil_layout::{Descriptor, Digest, DigestMap, DigestSet, Index, Layout};

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
    /// What `blobs/` holds besides blobs: our temp files and strays (its digests are
    /// taken out: they are in `unmarked` or `live`).
    pub listing: ocil_layout::BlobNames,
    /// How long listing `blobs/` took (on its own thread, during the walk).
    pub list_time: std::time::Duration,
    /// How long the walk from the roots took (with the listing beside it).
    pub walk_time: std::time::Duration,
    /// How long probing the unmarked blobs and the referrer rounds took.
    pub probe_time: std::time::Duration,
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

/// Mark from `index`'s entries over the layout's blobs.
///
/// The listing of `blobs/` ([`Layout::list_blob_names`]) runs on a thread of its own while
/// the first walk reads the documents (the two take about as long on a big layout); the
/// leaves the walk reached are checked against its names afterwards
/// ([`LeafCheck::Deferred`]).
pub fn mark(
    layout: &Layout,
    index: &Index,
    tagged_only: bool,
    keep_referrers: bool,
) -> ocil_layout::Result<Mark> {
    let mut out = Mark::default();
    let (tagged, untagged): (Vec<Descriptor>, Vec<Descriptor>) = if tagged_only {
        index.manifests.iter().cloned().partition(|d| d.ref_name().is_some())
    } else {
        (Vec::new(), Vec::new())
    };
    // All entries are roots unless tagged-only: walk them in place, without a copy.
    let roots: &[Descriptor] = if tagged_only { &tagged } else { &index.manifests };
    let started = std::time::Instant::now();
    let first = WalkOptions {
        follow_subject: true,
        sniff_unknown: true,
        leaves: LeafCheck::Deferred,
        keep_bytes: false,
        keep_documents: false,
    };
    let (listing, mut w) = std::thread::scope(|scope| {
        let lister = scope.spawn(|| {
            let started = std::time::Instant::now();
            layout.list_blob_names().map(|l| (l, started.elapsed()))
        });
        let w = walk::walk(layout, roots, first);
        match lister.join() {
            Ok(listing) => (listing, w),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    let (mut listing, list_time) = listing?;
    let present = std::mem::take(&mut listing.digests);
    out.listing = listing;
    out.list_time = list_time;
    // The listing is sorted (`list_blob_names`); were it not, leaves are stat'ed instead.
    let names = DigestSet::new(&present);
    let opts =
        WalkOptions { leaves: names.as_ref().map_or(LeafCheck::Stat, LeafCheck::Names), ..first };
    match &names {
        Some(names) => w.settle_leaves(names),
        // Not sorted (never, from `list_blob_names`): walk again, stat'ing the leaves.
        None => w = walk::walk(layout, roots, opts),
    }
    out.absorb(w, false);
    out.walk_time = started.elapsed();
    let started = std::time::Instant::now();

    // Every unmarked blob is probed once, in parallel: one open, fstat and (for a small blob)
    // a read of its first bytes. The sweep needs its size and mtime; a small JSON document
    // with a `subject` is a possible referrer.
    // Candidates are positions in the listing, and the probes are written straight into one
    // vector: on 300,000 blobs every copy of a list of digests costs 20 MB.
    let candidates: Vec<u32> = (0..present.len() as u32)
        .filter(|&i| !out.live.contains_key(&present[i as usize]))
        .collect();
    let probed = probe_all(layout, &present, &candidates);
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
    out.probe_time = started.elapsed();
    Ok(out)
}

/// The subject of a stored document, if it is a small JSON document with one.
fn subject_of_blob(layout: &Layout, digest: &Digest) -> Option<Digest> {
    referrer::stored_referrer(layout, digest).map(|r| r.subject)
}

/// Threads that probe. A probe is an open, an `fstat` and a read of the first bytes: on a
/// warm page cache that is CPU work, but on a cold one each waits on the disk, so more
/// threads than cores pay (20,000 images, 160,000 unmarked blobs, cold: 6.6 s with 2
/// threads).
const PROBE_THREADS: usize = 16;

/// Probe the blobs at `candidates` (positions in `present`), in parallel, keeping their
/// order.
fn probe_all(layout: &Layout, present: &[Digest], candidates: &[u32]) -> Vec<Option<Probed>> {
    if candidates.len() < 256 {
        return candidates.iter().map(|&i| probe(layout, &present[i as usize])).collect();
    }
    // One vector, filled in place by the threads: on 300,000 blobs a copy costs 20 MB.
    let mut out: Vec<Option<Probed>> = Vec::new();
    out.resize_with(candidates.len(), || None);
    let chunk = candidates.len().div_ceil(PROBE_THREADS);
    std::thread::scope(|scope| {
        for (slots, part) in out.chunks_mut(chunk).zip(candidates.chunks(chunk)) {
            scope.spawn(move || {
                for (slot, &i) in slots.iter_mut().zip(part) {
                    *slot = probe(layout, &present[i as usize]);
                }
            });
        }
    });
    out
}

/// Probe an unmarked blob: size, mtime, and whether it is a referrer.
fn probe(layout: &Layout, digest: &Digest) -> Option<Probed> {
    // A blob that vanished or cannot be opened is not ours to judge: leave it alone.
    let p = layout.probe_blob(digest, 64, REFERRER_LIMIT).ok()??;
    let referrer = referrer::referrer_from_head(layout, digest, &p.head).map(Box::new);
    Some((digest.clone(), Unmarked { size: p.size, modified: p.modified }, referrer))
}
