//! Copy images from any store into any destination: `ocil copy SRC[:REF] DST[:TAG]`, `ocil
//! pull`, `ocil push`. The steps below are a layout's; a registry destination
//! (`ocil_registry::RegistryDest`) is asked what it has with `HEAD`, takes each blob as a
//! verified stream (or mounts it) and each manifest as its checked bytes, level by level, and
//! gets its tags last instead of an `index.json`.
//!
//! 1. The images are chosen from SRC's index (a layout's `index.json`, read once: it is
//!    replaced by rename, so the read is a snapshot): every entry, or the one `REF` names,
//!    or with a platform the manifest of that platform inside the index `REF` names.
//! 2. Their [`closure`](crate::closure()) is taken in SRC (indexes, manifests, configs,
//!    layers, subjects), with the referrers SRC holds for anything in it (documents whose
//!    `subject` names one), recursively.
//! 3. Every blob of the closure that DST lacks is copied into a locked temp file in DST's
//!    store, then hashed and checked against its digest and size, fsynced and renamed into
//!    place. Between two layouts the copy uses `copy_file_range` (through `std::io::copy` between two files), so
//!    the kernel copies, or reflinks on filesystems that can. With [`CopyOptions::link`], the
//!    blob is hard-linked into the temp name instead (falling back to a copy across
//!    filesystems), and the linked file is hashed before it is renamed, so what lands is
//!    verified either way. From any other store (an archive read in place), the blob
//!    streams through [`Store::open_blob_verified`] into DST's blob writer, checked against
//!    its digest and size before it is named. Blobs DST already has (same size) are not
//!    touched.
//! 4. Under DST's lock: every blob of the closure is checked to be present in DST, the
//!    tags are checked (a tag naming a different image is an error unless
//!    [`CopyOptions::force`]), and `index.json` is replaced once.
//!
//! Concurrent gc: copy does not lock SRC (two copies in opposite directions would
//! deadlock). A gc on SRC can only remove blobs that SRC's `index.json` no longer reaches;
//! if one of the copied images loses a blob that way, the copy of that blob fails. When
//! SRC's `index.json` changed meanwhile, the copy starts over from the new one (up to three
//! times, reusing what landed); otherwise it stops with an error naming the blob, and DST's
//! `index.json` is untouched: DST is never broken, and the blobs that did land are
//! unreferenced until a retry or a gc. A gc on DST
//! could remove blobs this copy landed but has not yet named (with `--prune=now`): the
//! check under DST's lock in step 4 catches it, and the copy fails without naming them.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Seek};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cap_std::fs::{Dir, File};
use ocil_layout::progress::Progress;
use ocil_layout::{
    ANNOTATION_REF_NAME, Algorithm, Descriptor, Destination, Digest, Index, Kind, Landed, Layout,
    Reference, Store,
};

use crate::closure::{ClosureOptions, ClosureSource, closure};
use crate::{Error, Result};

/// How to copy.
#[derive(Clone, Copy)]
pub struct CopyOptions<'a> {
    /// The entry of SRC to copy; `None`: every entry.
    pub reference: Option<&'a Reference>,
    /// The tag the copy gets in DST (needs `reference`). Without it, a tag `reference`
    /// keeps its name; a digest reference makes an untagged entry.
    pub tag: Option<&'a str>,
    /// Copy only this platform's manifest (`os/arch[/variant]`) of the index `reference`
    /// names.
    pub platform: Option<&'a str>,
    /// Keep only these platforms' manifests (`os/arch[/variant]`, each matching at least
    /// one) of the index `reference` names, in a new index written to DST (its digest
    /// changes: [`CopyReport::filtered`]); attestations of kept manifests stay. Empty: the
    /// index is copied whole.
    pub platforms: &'a [String],
    /// Copy nondistributable (foreign) layers SRC holds; `false` leaves them out (DST's
    /// manifests then name layers it lacks, which the image spec allows for them).
    pub foreign: bool,
    /// Hard-link blobs instead of copying them, when both layouts are on one filesystem.
    pub link: bool,
    /// Bring the referrers SRC holds (or, a registry, lists) for what is copied, recursively.
    pub referrers: bool,
    /// Move tags of DST that name a different image.
    pub force: bool,
    /// Where progress goes.
    pub progress: &'a dyn Progress,
}

impl std::fmt::Debug for CopyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOptions")
            .field("reference", &self.reference)
            .field("tag", &self.tag)
            .field("platform", &self.platform)
            .field("platforms", &self.platforms)
            .field("foreign", &self.foreign)
            .field("link", &self.link)
            .field("referrers", &self.referrers)
            .field("force", &self.force)
            .finish_non_exhaustive()
    }
}

/// One `index.json` entry the copy added to DST (or found there already).
#[derive(Debug, Clone, PartialEq)]
pub struct CopiedImage {
    /// The entry, as written to DST.
    pub descriptor: Descriptor,
    /// Its tag in DST, if any.
    pub tag: Option<String>,
}

/// What a copy did.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    /// The entries, in order.
    pub images: Vec<CopiedImage>,
    /// Blobs in the closure (present in SRC).
    pub blobs: usize,
    /// Referrers that came along.
    pub referrers: usize,
    /// Blobs copied (bytes moved).
    pub copied: usize,
    /// Blobs hard-linked.
    pub linked: usize,
    /// Blobs a registry mounted from another repository (no bytes moved).
    pub mounted: usize,
    /// Bytes of the blobs copied or linked.
    pub bytes: u64,
    /// Blobs DST already had.
    pub present: usize,
    /// Blobs that could not be linked (another filesystem) and were copied instead.
    pub link_fallbacks: usize,
    /// Nondistributable layers left out ([`CopyOptions::foreign`] off).
    pub foreign_skipped: usize,
    /// Indexes rewritten by [`CopyOptions::platforms`]: the source's digest, the new one.
    pub filtered: Vec<(Digest, Digest)>,
}

/// A root: a descriptor to copy, and what `index.json` entry it becomes (if any).
struct Root {
    desc: Descriptor,
    entry: Option<Descriptor>,
    tag: Option<String>,
    /// The full name (`io.containerd.image.name`) the entry is known by, when it has one.
    full: Option<String>,
    /// For a platform-filtered index: its new bytes and the children kept (what the closure
    /// starts from); `desc` and `entry` are the new index's.
    filtered: Option<Filtered>,
}

/// An index with only some platforms' manifests, to be written to DST.
struct Filtered {
    bytes: Vec<u8>,
    children: Vec<Descriptor>,
    from: Digest,
}

impl Root {
    /// An `index.json` entry of SRC, copied with its names.
    fn entry(d: &Descriptor) -> Root {
        let full = d.annotation(ocil_layout::ANNOTATION_CONTAINERD_NAME).map(str::to_owned);
        let tag = d
            .ref_name()
            .map(str::to_owned)
            .or_else(|| full.as_deref().map(|f| ocil_layout::tags::split_name(f).0));
        Root { desc: d.clone(), entry: Some(d.clone()), tag, full, filtered: None }
    }

    /// The name the copy is known by in DST: its full name, else its tag.
    fn name(&self) -> Option<&str> {
        self.full.as_deref().or(self.tag.as_deref())
    }
}

/// Copy images from `src` to `dst`. See the module docs.
pub fn copy(src: &dyn Store, dst: &dyn Destination, opts: &CopyOptions<'_>) -> Result<CopyReport> {
    let mut attempt = 0;
    // What landed, over every attempt.
    let mut landed = CopyReport::default();
    loop {
        let index = src.read_index()?;
        match copy_once(src, dst, &index, opts, &mut landed) {
            // A blob vanished from SRC: when SRC's index.json changed meanwhile (a gc after
            // an untag), start over from the new one; blobs that landed are reused.
            Err(Error::Vanished { .. } | Error::Source { .. })
                if attempt < RETRIES && src.read_index().is_ok_and(|now| now != index) =>
            {
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// How often a copy starts over when SRC changes under it.
const RETRIES: usize = 3;

fn copy_once(
    src: &dyn Store,
    dst: &dyn Destination,
    index: &Index,
    opts: &CopyOptions<'_>,
    landed: &mut CopyReport,
) -> Result<CopyReport> {
    let roots = choose_roots(src, index, opts)?;

    // The closure, with referrers.
    let starts = roots
        .iter()
        .flat_map(|r| match &r.filtered {
            Some(f) => f.children.clone(),
            None => vec![r.desc.clone()],
        })
        .collect();
    let sources = [ClosureSource { store: src, roots: starts }];
    let opts_closure =
        ClosureOptions { follow_subject: true, referrers: opts.referrers, absent_ok: true };
    let closure = closure(&sources, opts_closure).map_err(|e| match e {
        Error::Broken { path, message, .. } => Error::Source { path, message },
        Error::Store { error, .. } => Error::Layout(error),
        e => Error::Source { path: String::new(), message: e.to_string() },
    })?;
    let referrers = closure.referrers.len();
    // SRC index entries that are referrers of what is copied become DST entries too (in a
    // layout: a registry finds referrers by their subject, not by a name).
    let mut roots = roots;
    if opts.reference.is_some() && dst.as_layout().is_some() {
        for e in &index.manifests {
            if roots.iter().any(|r| r.desc.digest == e.digest) {
                continue;
            }
            if closure.is_found_referrer(&e.digest) {
                roots.push(Root::entry(e));
            }
        }
    }

    // Blobs, level by level (layers and configs, then manifests, then indexes: see
    // `ClosureBlob::level`), several at a time when SRC allows: a manifest lands only after
    // its config and layers did, so a failure leaves no document naming a missing blob.
    let mut report = CopyReport { blobs: closure.blobs.len(), referrers, ..CopyReport::default() };
    let mut wanted: Vec<Item> = Vec::new();
    let mut skipped: HashSet<&Digest> = HashSet::new();
    for b in closure.blobs.iter().rev() {
        if !opts.foreign && matches!(b.media_type.kind(), Kind::Layer { distributable: false, .. })
        {
            skipped.insert(&b.digest);
            continue;
        }
        let manifest = matches!(b.media_type.kind(), Kind::Index | Kind::Manifest);
        let desc = Descriptor::new(b.media_type.clone(), b.digest.clone(), b.size);
        wanted.push(Item { level: b.level, desc, manifest });
    }
    // What DST lacks: a layout's stat is cheap; a registry's HEADs go several at a time.
    let threads = if dst.as_layout().is_some() { 1 } else { THREADS };
    let (has, result) = in_parallel(&wanted, threads, |item| Ok(dst.has(&item.desc)?));
    result?;
    let mut todo: Vec<Item> =
        wanted.into_iter().zip(has).filter(|(_, has)| !has).map(|(item, _)| item).collect();
    // Stable: within a level, the walk's order reversed, as before.
    todo.sort_by_key(|item| item.level);
    let total: u64 = todo.iter().map(|item| item.desc.size).sum();
    opts.progress.begin("copy", Some(total));
    let (done, result) = transfer_all(src, dst, &todo, opts);
    opts.progress.end();
    for (how, size) in done {
        match how {
            How::Copied => landed.copied += 1,
            How::Linked => landed.linked += 1,
            How::Mounted => landed.mounted += 1,
            How::FellBack => {
                landed.copied += 1;
                landed.link_fallbacks += 1;
            }
        }
        if !matches!(how, How::Mounted) {
            landed.bytes += size;
        }
    }
    result?;
    // Indexes rewritten for --platform, after the manifests they keep.
    for root in &roots {
        if let Some(f) = &root.filtered {
            dst.put_manifest(&root.desc, &f.bytes)?;
            report.filtered.push((f.from.clone(), root.desc.digest.clone()));
        }
    }
    report.foreign_skipped = skipped.len();
    report.copied = landed.copied;
    report.linked = landed.linked;
    report.mounted = landed.mounted;
    report.link_fallbacks = landed.link_fallbacks;
    report.bytes = landed.bytes;
    // Blobs that landed in an earlier attempt and left the closure since are not counted.
    report.present = report
        .blobs
        .saturating_sub(report.copied + report.linked + report.mounted + report.foreign_skipped);

    let Some(dst) = dst.as_layout() else {
        // A registry: each tag, last (its manifest is there by digest already).
        for root in roots {
            let Some(entry) = root.entry.clone() else { continue };
            if let Some(tag) = &root.tag {
                let bytes = match &root.filtered {
                    Some(f) => f.bytes.clone(),
                    None => src.read_blob(&root.desc.digest, ocil_layout::JSON_LIMIT)?,
                };
                dst.put_tag(tag, &root.desc, &bytes)?;
            }
            report.images.push(CopiedImage { descriptor: entry, tag: root.tag });
        }
        return Ok(report);
    };
    // index.json, once, under DST's lock.
    let lock = dst.lock()?;
    for b in closure.blobs.iter().filter(|b| !skipped.contains(&b.digest)) {
        if dst.stat_blob(&b.digest)? != Some(b.size) {
            return Err(Error::VanishedFromDestination { digest: b.digest.clone() });
        }
    }
    let mut dst_index = dst.read_index()?;
    for root in roots.iter().filter(|r| r.entry.is_some()) {
        if let Some(name) = root.name()
            && let Some(existing) =
                dst_index.manifests.iter().find(|d| ocil_layout::tags::entry_name(d) == Some(name))
            && existing.digest != root.desc.digest
            && !opts.force
        {
            return Err(Error::TagConflict {
                tag: name.to_owned(),
                existing: existing.digest.clone(),
                new: root.desc.digest.clone(),
            });
        }
    }
    for root in roots {
        let Some(mut entry) = root.entry.clone() else { continue };
        match &root.tag {
            Some(tag) => {
                ocil_layout::tags::set_name(&mut dst_index, &entry, tag, root.full.as_deref())?;
                let name = root.name();
                if let Some(e) =
                    dst_index.manifests.iter().find(|d| ocil_layout::tags::entry_name(d) == name)
                {
                    entry = e.clone();
                }
            }
            None => {
                if let Some(ann) = entry.annotations.as_mut() {
                    ann.remove(ANNOTATION_REF_NAME);
                    ann.remove(ocil_layout::ANNOTATION_CONTAINERD_NAME);
                    if ann.is_empty() {
                        entry.annotations = None;
                    }
                }
                let already = dst_index
                    .manifests
                    .iter()
                    .any(|d| d.digest == entry.digest && d.ref_name().is_none());
                if !already {
                    dst_index.manifests.push(entry.clone());
                }
            }
        }
        report.images.push(CopiedImage { descriptor: entry, tag: root.tag });
    }
    dst.write_index(&dst_index, &lock)?;
    Ok(report)
}

fn choose_roots(src: &dyn Store, index: &Index, opts: &CopyOptions<'_>) -> Result<Vec<Root>> {
    let Some(reference) = opts.reference else {
        if opts.tag.is_some() {
            return Err(Error::Usage(
                "DST:TAG needs SRC:REF (which image should the tag name?)".into(),
            ));
        }
        if opts.platform.is_some() {
            return Err(Error::Usage("--platform needs SRC:REF".into()));
        }
        return Ok(index.manifests.iter().map(Root::entry).collect());
    };
    let found = ocil_layout::store::resolve(src, index, Some(reference))?;
    // DST:TAG names the copy (a tag, or a full name); without it, an entry keeps its names.
    let (mut tag, mut full) = match (opts.tag, reference) {
        (Some(t), _) => {
            ocil_layout::reference::validate_tag(t)?;
            let (tag, full) = ocil_layout::tags::split_name(t);
            (Some(tag), full)
        }
        (None, Reference::Tag(t)) => {
            let own = Root::entry(&found);
            (own.tag.or_else(|| Some(t.clone())), own.full)
        }
        (None, Reference::Digest(_)) => (None, None),
    };
    if let Some(t) = &tag {
        ocil_layout::reference::validate_tag(t)?;
    }
    if !opts.platforms.is_empty() {
        if opts.platform.is_some() {
            return Err(Error::Usage(
                "one platform to take, or platforms to keep: not both".into(),
            ));
        }
        return Ok(vec![filter_index(src, found, tag, full, reference, opts.platforms)?]);
    }
    let Some(platform) = opts.platform else {
        let entry = found.clone();
        return Ok(vec![Root {
            desc: found,
            entry: Some(entry),
            tag: tag.take(),
            full: full.take(),
            filtered: None,
        }]);
    };
    if found.media_type.kind() != Kind::Index {
        return Err(Error::Usage(format!(
            "--platform: `{reference}` is not an index (it is a `{}`)",
            found.media_type.short()
        )));
    }
    let bytes = src.read_blob(&found.digest, ocil_layout::JSON_LIMIT)?;
    let child_index: Index = serde_json::from_slice(&bytes).map_err(|e| Error::Source {
        path: found.digest.blob_path(),
        message: format!("not a valid index: {e}"),
    })?;
    let Some(child) = child_index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| p.matches(platform)))
    else {
        let available: Vec<String> = child_index
            .manifests
            .iter()
            .filter_map(|d| d.platform.as_ref().map(|p| p.display()))
            .collect();
        return Err(Error::NoSuchPlatform {
            reference: reference.to_string(),
            platform: platform.to_owned(),
            available: if available.is_empty() { "none".into() } else { available.join(", ") },
        });
    };
    let mut entry = child.clone();
    entry.annotations = None;
    Ok(vec![Root { desc: child.clone(), entry: Some(entry), tag, full, filtered: None }])
}

/// The annotation BuildKit gives an attestation manifest: the image it describes.
const ATTESTATION_OF: &str = "vnd.docker.reference.digest";

/// The index `found` with only the manifests of `platforms` (and their attestations), as a
/// new document: unknown fields and the kept descriptors keep their JSON.
fn filter_index(
    src: &dyn Store,
    found: Descriptor,
    tag: Option<String>,
    full: Option<String>,
    reference: &Reference,
    platforms: &[String],
) -> Result<Root> {
    if found.media_type.kind() != Kind::Index {
        return Err(Error::Usage(format!(
            "--platform: `{reference}` is not an index (it is a `{}`)",
            found.media_type.short()
        )));
    }
    let bytes = src.read_blob(&found.digest, ocil_layout::JSON_LIMIT)?;
    let invalid = |e: serde_json::Error| Error::Source {
        path: found.digest.blob_path(),
        message: format!("not a valid index: {e}"),
    };
    let index: Index = serde_json::from_slice(&bytes).map_err(invalid)?;
    let mut doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(invalid)?;
    let matches = |d: &Descriptor, spec: &str| d.platform.as_ref().is_some_and(|p| p.matches(spec));
    for spec in platforms {
        if !index.manifests.iter().any(|d| matches(d, spec)) {
            let available: Vec<String> = index
                .manifests
                .iter()
                .filter_map(|d| d.platform.as_ref().map(|p| p.display()))
                .collect();
            return Err(Error::NoSuchPlatform {
                reference: reference.to_string(),
                platform: spec.clone(),
                available: if available.is_empty() { "none".into() } else { available.join(", ") },
            });
        }
    }
    let mut keep: Vec<bool> =
        index.manifests.iter().map(|d| platforms.iter().any(|p| matches(d, p))).collect();
    let kept: Vec<String> = index
        .manifests
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(d, _)| d.digest.to_string())
        .collect();
    for (d, k) in index.manifests.iter().zip(keep.iter_mut()) {
        if d.annotation(ATTESTATION_OF).is_some_and(|of| kept.iter().any(|x| x == of)) {
            *k = true;
        }
    }
    if keep.iter().all(|k| *k) {
        // Every platform kept: the index as it is.
        let entry = found.clone();
        return Ok(Root { desc: found, entry: Some(entry), tag, full, filtered: None });
    }
    if let Some(list) = doc.get_mut("manifests").and_then(serde_json::Value::as_array_mut) {
        let mut i = 0;
        list.retain(|_| {
            i += 1;
            keep.get(i - 1).copied().unwrap_or(false)
        });
    }
    let new = serde_json::to_vec(&doc).map_err(invalid)?;
    let mut desc = found.clone();
    desc.digest = found.digest.algorithm().digest_of(&new);
    desc.size = new.len() as u64;
    let children =
        index.manifests.into_iter().zip(keep).filter(|(_, k)| *k).map(|(d, _)| d).collect();
    Ok(Root {
        desc: desc.clone(),
        entry: Some(desc),
        tag,
        full,
        filtered: Some(Filtered { bytes: new, children, from: found.digest }),
    })
}

enum How {
    Copied,
    Linked,
    FellBack,
    Mounted,
}

/// A blob to land: its descriptor, its level, whether it is a manifest or index (a
/// registry takes those at another endpoint, as exact bytes).
struct Item {
    level: u32,
    desc: Descriptor,
    manifest: bool,
}

/// How many blobs are transferred (or looked up in a registry) at once.
const THREADS: usize = 4;

/// `f` over `items`, `threads` at a time (in order when 1): the results of those done in
/// the items' order, and the first failure, which stops the rest.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> (Vec<R>, Result<()>) {
    if threads <= 1 || items.len() <= 1 {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            match f(item) {
                Ok(r) => out.push(r),
                Err(e) => return (out, Err(e)),
            }
        }
        return (out, Ok(()));
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let done: Mutex<Vec<(usize, R)>> = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads.min(items.len()) {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    match f(item) {
                        Ok(r) => {
                            if let Ok(mut d) = done.lock() {
                                d.push((i, r));
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            if let Ok(mut first) = first_error.lock() {
                                first.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    done.sort_by_key(|(i, _)| *i);
    let out = done.into_iter().map(|(_, r)| r).collect();
    match first_error.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
        Some(e) => (out, Err(e)),
        None => (out, Ok(())),
    }
}

/// Transfer `todo` (sorted by level) into DST: each level waits for the one below; within
/// a level, [`THREADS`] at a time when SRC is `Sync`, else one by one. The first failure
/// stops the rest (blobs in flight finish or fail; what landed stays, unnamed).
fn transfer_all(
    src: &dyn Store,
    dst: &dyn Destination,
    todo: &[Item],
    opts: &CopyOptions<'_>,
) -> (Vec<(How, u64)>, Result<()>) {
    let mut out = Vec::with_capacity(todo.len());
    let Some(shared) = src.as_sync().filter(|_| todo.len() > 1) else {
        let mut blobs = BlobCopier { src, dst, dirs: HashMap::new(), progress: opts.progress };
        for item in todo {
            match blobs.transfer(item, opts.link) {
                Ok(how) => out.push((how, item.desc.size)),
                Err(e) => return (out, Err(e)),
            }
        }
        return (out, Ok(()));
    };
    let mut start = 0;
    while start < todo.len() {
        let level = todo[start].level;
        let end =
            todo[start..].iter().position(|t| t.level != level).map_or(todo.len(), |n| start + n);
        let batch = &todo[start..end];
        start = end;
        // One copier (and its open directories) per item: cheap next to a transfer.
        let (done, result) = in_parallel(batch, THREADS, |item| {
            let mut blobs =
                BlobCopier { src: shared, dst, dirs: HashMap::new(), progress: opts.progress };
            Ok((blobs.transfer(item, opts.link)?, item.desc.size))
        });
        out.extend(done);
        if let Err(e) = result {
            return (out, Err(e));
        }
    }
    (out, Ok(()))
}

/// A reader that reports its bytes as the phase's and as the item's.
struct ItemReader<'a, R> {
    inner: R,
    name: &'a str,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for ItemReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        self.progress.item_advance(self.name, n as u64);
        Ok(n)
    }
}

/// A temp file in DST's store: removed when dropped unless published.
struct Temp<'a> {
    dir: &'a Dir,
    name: String,
}

impl Drop for Temp<'_> {
    fn drop(&mut self) {
        if !self.name.is_empty() {
            let _ = self.dir.remove_file(&self.name);
        }
    }
}

/// Chunk for `copy_file_range`: progress is reported between chunks.
const CHUNK: u64 = 16 * 1024 * 1024;

struct BlobCopier<'a> {
    src: &'a dyn Store,
    dst: &'a dyn Destination,
    dirs: HashMap<Algorithm, (Dir, Dir)>,
    progress: &'a dyn Progress,
}

impl BlobCopier<'_> {
    /// `blobs/<alg>` of SRC and DST (created in DST).
    fn dirs(&mut self, src: &Layout, dst: &Layout, alg: Algorithm) -> Result<&(Dir, Dir)> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.dirs.entry(alg) {
            let sub = format!("blobs/{alg}");
            let s = src.dir().open_dir(&sub).map_err(|source| Error::Io {
                op: "open",
                path: sub.clone(),
                source,
            })?;
            dst.dir().create_dir_all(&sub).map_err(|source| Error::Io {
                op: "create",
                path: sub.clone(),
                source,
            })?;
            let d = dst.dir().open_dir(&sub).map_err(|source| Error::Io {
                op: "open",
                path: sub.clone(),
                source,
            })?;
            slot.insert((s, d));
        }
        Ok(&self.dirs[&alg])
    }

    fn transfer(&mut self, item: &Item, link: bool) -> Result<How> {
        let (digest, size) = (&item.desc.digest, item.desc.size);
        let name = digest.to_string();
        self.progress.item_begin(&name, size);
        let result = match (self.src.as_layout(), self.dst.as_layout()) {
            (Some(src), Some(dst)) => self.transfer_file(src, dst, digest, size, link),
            _ if item.manifest => self.transfer_document(&item.desc, &name),
            _ => self.transfer_stream(&item.desc, &name),
        };
        self.progress.item_end(&name, size, result.is_ok());
        result
    }

    /// A manifest or index, not between layouts: its bytes read (checked) and handed over
    /// whole (a registry takes them at its manifests endpoint).
    fn transfer_document(&mut self, desc: &Descriptor, name: &str) -> Result<How> {
        let bytes = match self.src.read_blob(&desc.digest, ocil_layout::JSON_LIMIT) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => {
                return Err(Error::Vanished { path: desc.digest.blob_path() });
            }
            Err(e) => return Err(e.into()),
        };
        if bytes.len() as u64 != desc.size {
            return Err(Error::WrongSize {
                path: desc.digest.blob_path(),
                expected: desc.size,
                found: bytes.len() as u64,
            });
        }
        self.dst.put_manifest(desc, &bytes)?;
        self.progress.advance(desc.size);
        self.progress.item_advance(name, desc.size);
        Ok(How::Copied)
    }

    /// Not between layouts: the blob streams, checked as it is read, into DST, which checks
    /// digest and size again before it names it (or gets it without the bytes: a mount).
    fn transfer_stream(&mut self, desc: &Descriptor, name: &str) -> Result<How> {
        let (src, progress) = (self.src, self.progress);
        let vanished = std::cell::Cell::new(false);
        let mut open = || -> ocil_layout::Result<Box<dyn Read + '_>> {
            match src.open_blob_verified(&desc.digest, Some(desc.size)) {
                Ok(inner) => Ok(Box::new(ItemReader { inner, name, progress })),
                Err(e) => {
                    vanished.set(e.is_not_found());
                    Err(e)
                }
            }
        };
        match self.dst.put_blob(desc, &mut open) {
            Ok(Landed::Sent) => Ok(How::Copied),
            Ok(Landed::Mounted) => {
                progress.advance(desc.size);
                Ok(How::Mounted)
            }
            Err(_) if vanished.get() => Err(Error::Vanished { path: desc.digest.blob_path() }),
            Err(e) => Err(e.into()),
        }
    }

    /// Between two layouts: a hard link, or `copy_file_range`, then a hash of what landed.
    fn transfer_file(
        &mut self,
        src: &Layout,
        dst: &Layout,
        digest: &Digest,
        size: u64,
        link: bool,
    ) -> Result<How> {
        let progress = self.progress;
        let (sdir, ddir) = self.dirs(src, dst, digest.algorithm())?;
        let name = digest.encoded();
        let name_str = digest.to_string();
        let src_path = digest.blob_path();
        // Errors about the temp file name the blob it becomes.
        let io_err = |op: &'static str| {
            move |source: io::Error| Error::Landing { op, digest: digest.clone(), source }
        };
        let mut temp = Temp { dir: ddir, name: ocil_layout::temp_name("copy") };
        let mut how = How::Copied;
        let mut file = None;
        if link {
            match sdir.hard_link(&name, ddir, &temp.name) {
                Ok(()) => {
                    let f = ddir.open(&temp.name).map_err(io_err("open"))?;
                    lock(&f).map_err(io_err("lock"))?;
                    how = How::Linked;
                    file = Some(f);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::Vanished { path: src_path });
                }
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
                    how = How::FellBack;
                }
                // Filesystems without hard links, or a link count at its maximum: copy.
                Err(e)
                    if e.raw_os_error() == Some(rustix::io::Errno::PERM.raw_os_error())
                        || e.raw_os_error() == Some(rustix::io::Errno::MLINK.raw_os_error()) =>
                {
                    how = How::FellBack;
                }
                Err(e) => return Err(Error::Io { op: "link", path: src_path, source: e }),
            }
        }
        let file = match file {
            Some(f) => {
                // Hash the linked file: the bytes that will be published.
                let found = hash(&f, digest.algorithm()).map_err(io_err("read back"))?;
                check(found, digest, size, &src_path)?;
                progress.advance(size);
                progress.item_advance(&digest.to_string(), size);
                f
            }
            None => {
                let from = match sdir.open(&name) {
                    Ok(f) => f,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(Error::Vanished { path: src_path });
                    }
                    Err(e) => return Err(Error::Io { op: "open", path: src_path, source: e }),
                };
                let to = ddir
                    .open_with(
                        &temp.name,
                        cap_std::fs::OpenOptions::new().read(true).write(true).create_new(true),
                    )
                    .map_err(io_err("create"))?;
                lock(&to).map_err(io_err("lock"))?;
                let mut from = from.into_std();
                let mut to = to.into_std();
                // `io::copy` between two files is `copy_file_range` on Linux (a reflink
                // where the filesystem can), falling back to read/write elsewhere.
                loop {
                    let n =
                        io::copy(&mut (&mut from).take(CHUNK), &mut to).map_err(io_err("copy"))?;
                    if n == 0 {
                        break;
                    }
                    progress.advance(n);
                    progress.item_advance(&name_str, n);
                }
                to.rewind().map_err(io_err("seek in"))?;
                let to = File::from_std(to);
                let found = hash(&to, digest.algorithm()).map_err(io_err("read back"))?;
                check(found, digest, size, &src_path)?;
                to
            }
        };
        file.sync_all().map_err(io_err("fsync"))?;
        ddir.rename(&temp.name, ddir, &name).map_err(io_err("rename into place"))?;
        temp.name.clear();
        drop(file);
        Ok(how)
    }
}

fn lock(f: &File) -> io::Result<()> {
    rustix::fs::flock(f, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(io::Error::from)
}

/// Digest (with `alg`) and size of an open file, read from its start.
fn hash(f: &File, alg: Algorithm) -> io::Result<(Digest, u64)> {
    let mut buf = vec![0u8; 1 << 20];
    let mut hasher = alg.hasher();
    let mut r = f;
    let mut size = 0u64;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((hasher.finish(), size))
}

/// The bytes that landed must be the blob SRC names.
fn check(found: (Digest, u64), digest: &Digest, size: u64, src_path: &str) -> Result<()> {
    if &found.0 != digest {
        return Err(Error::Corrupt { path: src_path.into(), found: found.0, size: found.1 });
    }
    if found.1 != size {
        return Err(Error::WrongSize { path: src_path.into(), expected: size, found: found.1 });
    }
    Ok(())
}
