//! The closure of a set of images: every blob their graphs reach in the stores that hold
//! them, and, on request, the referrers (signatures, SBOMs, attestations) those stores hold
//! for anything in it, recursively (a signature of an SBOM of an image), each blob once.
//!
//! A store that can be asked for the referrers of one manifest (a registry:
//! [`ocil_layout::Store::referrers_of`]) is asked for each manifest and index of the closure,
//! once; another has every blob read once instead ([`Referrers::scan`]).
//!
//! Several sources may share one closure (an export of images from several layouts): a
//! referrer in one source of an image from another comes along too, and a blob that two
//! sources hold is taken from the first.

use std::collections::{HashMap, HashSet};

use ocil_layout::referrer::{Referrers, StoredReferrer};
use ocil_layout::walk::{self, LeafCheck, Role, Severity, WalkOptions};
use ocil_layout::{Descriptor, Digest, Kind, MediaType, Store};

use crate::Error;

/// Where images come from: a store and the descriptors to start from.
pub struct ClosureSource<'a> {
    /// The store holding the images.
    pub store: &'a dyn Store,
    /// The images (manifests or indexes) to start from.
    pub roots: Vec<Descriptor>,
}

impl std::fmt::Debug for ClosureSource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosureSource")
            .field("store", &self.store.kind())
            .field("roots", &self.roots)
            .finish()
    }
}

/// How to take a closure.
#[derive(Debug, Clone, Copy)]
pub struct ClosureOptions {
    /// Follow `subject` descriptors (a referrer brings the image it refers to).
    pub follow_subject: bool,
    /// Bring the referrers the stores hold for anything in the closure.
    pub referrers: bool,
    /// Leave out blobs the graph allows to be absent (nondistributable layers, subjects)
    /// when the store lacks them; otherwise their absence is [`Error::Absent`].
    pub absent_ok: bool,
}

/// One blob of the closure.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosureBlob {
    /// The source (position in the slice given) it is taken from.
    pub source: usize,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// The media type it was reached with.
    pub media_type: MediaType,
    /// A manifest, index or config (a JSON document an archive puts before its layers).
    pub document: bool,
    /// Its height in the graph: 0 for a blob that names nothing (a layer, a config), else
    /// one more than the highest blob of the closure it names (a manifest over its layers
    /// is 1, an index over manifests 2, a referrer one above its subject). A blob lands
    /// only after every blob of a lower level: a copy that stops leaves no document naming
    /// a blob that did not land.
    pub level: u32,
}

/// A closure: blobs in walk order (each once), and the referrers that joined it.
#[derive(Debug, Default)]
pub struct Closure {
    /// Every blob, in the order the walks met them.
    pub blobs: Vec<ClosureBlob>,
    /// The referrers found in the stores, with the source holding each.
    pub referrers: Vec<(usize, StoredReferrer)>,
    members: HashSet<Digest>,
    levels: HashMap<Digest, u32>,
}

impl Closure {
    /// Whether the closure holds `digest`.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.members.contains(digest)
    }

    /// Whether `digest` joined as a referrer found in a store.
    pub fn is_found_referrer(&self, digest: &Digest) -> bool {
        self.referrers.iter().any(|(_, r)| &r.descriptor.digest == digest)
    }

    /// Walk `roots` in source `i` and add what is new.
    fn add(
        &mut self,
        sources: &[ClosureSource<'_>],
        i: usize,
        roots: &[Descriptor],
        opts: ClosureOptions,
    ) -> Result<(), Error> {
        let walk_opts = WalkOptions {
            follow_subject: opts.follow_subject,
            sniff_unknown: true,
            leaves: LeafCheck::Stat,
            keep_bytes: false,
            // The children of each document, for the levels.
            keep_documents: true,
        };
        let src = &sources[i];
        let w = walk::walk(src.store, roots, walk_opts);
        if let Some(p) = w.problems.iter().find(|p| p.severity == Severity::Error) {
            return Err(Error::Broken {
                source_index: i,
                code: p.code,
                path: p.path.clone(),
                message: p.message.clone(),
            });
        }
        let children: HashMap<&Digest, Vec<&Digest>> = w
            .documents
            .iter()
            .map(|d| (&d.digest, d.children.iter().map(|(_, c)| &c.digest).collect()))
            .collect();
        for node in w.nodes() {
            if self.members.contains(&node.digest) {
                continue;
            }
            let present = match node.present {
                Some(p) => p,
                None => src
                    .store
                    .stat_blob(&node.digest)
                    .map_err(|error| Error::Store { source_index: i, error })?
                    .is_some(),
            };
            if !present {
                if opts.absent_ok {
                    continue;
                }
                return Err(Error::Absent {
                    source_index: i,
                    path: w.path_to(&node.digest),
                    digest: node.digest.clone(),
                });
            }
            self.members.insert(node.digest.clone());
            let level = self.level_of(&node.digest, &children, 0);
            let document = node.doc.is_some()
                || matches!(node.media_type.kind(), Kind::Config | Kind::Index | Kind::Manifest)
                || node.role == Role::Config;
            self.blobs.push(ClosureBlob {
                source: i,
                digest: node.digest.clone(),
                size: node.size,
                media_type: node.media_type.clone(),
                document,
                level,
            });
        }
        Ok(())
    }

    /// The level of `digest` (see [`ClosureBlob::level`]): known from an earlier walk, or
    /// one above its highest child in the closure (children the closure leaves out, absent
    /// ones, do not count).
    fn level_of(
        &mut self,
        digest: &Digest,
        children: &HashMap<&Digest, Vec<&Digest>>,
        depth: u32,
    ) -> u32 {
        if let Some(&l) = self.levels.get(digest) {
            return l;
        }
        // Content addressing rules out cycles; the cap only bounds a hostile nesting.
        let level = match children.get(digest) {
            Some(kids) if depth < 64 => {
                kids.iter().map(|k| self.level_of(k, children, depth + 1) + 1).max().unwrap_or(0)
            }
            _ => 0,
        };
        self.levels.insert(digest.clone(), level);
        level
    }
}

/// Take the closure of `sources`. See the module docs.
pub fn closure(sources: &[ClosureSource<'_>], opts: ClosureOptions) -> Result<Closure, Error> {
    let mut out = Closure::default();
    for (i, src) in sources.iter().enumerate() {
        out.add(sources, i, &src.roots, opts)?;
    }
    if !opts.referrers {
        return Ok(out);
    }
    // Each store's referrers: asked for by subject when the store answers that (a
    // registry), else found once by reading its blobs, outside what the images reach.
    let n = sources.len();
    let mut scanned: Vec<Option<Referrers>> = (0..n).map(|_| None).collect();
    let mut asked: Vec<HashSet<Digest>> = vec![HashSet::new(); n];
    // Which stores answer by subject: asked about their first root (a manifest or index),
    // an answer kept for the loop below.
    let mut by_subject = vec![false; n];
    let mut first: Vec<Vec<StoredReferrer>> = vec![Vec::new(); n];
    for (i, src) in sources.iter().enumerate() {
        let Some(root) = src.roots.first() else { continue };
        let answer = src
            .store
            .referrers_of(&root.digest)
            .map_err(|error| Error::Store { source_index: i, error })?;
        if let Some(list) = answer {
            by_subject[i] = true;
            asked[i].insert(root.digest.clone());
            first[i] = list;
        }
    }
    // Until nothing new joins: referrers of what is in the closure, with their closures.
    loop {
        let mut ready: Vec<(usize, StoredReferrer)> = Vec::new();
        let mut take = |i: usize, r: &StoredReferrer, out: &Closure| {
            let digest = &r.descriptor.digest;
            if out.contains(&r.subject)
                && !out.contains(digest)
                && !ready.iter().any(|(_, x)| &x.descriptor.digest == digest)
            {
                ready.push((i, r.clone()));
            }
        };
        for (i, src) in sources.iter().enumerate() {
            let store_err = |error| Error::Store { source_index: i, error };
            for r in std::mem::take(&mut first[i]) {
                take(i, &r, &out);
            }
            if by_subject[i] {
                let subjects: Vec<Digest> = out
                    .blobs
                    .iter()
                    .filter(|b| matches!(b.media_type.kind(), Kind::Index | Kind::Manifest))
                    .filter(|b| !asked[i].contains(&b.digest))
                    .map(|b| b.digest.clone())
                    .collect();
                for subject in subjects {
                    let list = src.store.referrers_of(&subject).map_err(store_err)?;
                    for r in list.iter().flatten() {
                        take(i, r, &out);
                    }
                    asked[i].insert(subject);
                }
            } else {
                if scanned[i].is_none() {
                    let refs =
                        Referrers::scan(src.store, |d| out.contains(d)).map_err(store_err)?;
                    scanned[i] = Some(refs);
                }
                for r in scanned[i].iter().flat_map(Referrers::iter) {
                    take(i, r, &out);
                }
            }
        }
        if ready.is_empty() {
            return Ok(out);
        }
        for (i, r) in ready {
            if out.contains(&r.descriptor.digest) {
                continue;
            }
            out.add(sources, i, std::slice::from_ref(&r.descriptor), opts)?;
            out.referrers.push((i, r));
        }
    }
}
