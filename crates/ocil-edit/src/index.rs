//! Multi-platform indexes: create or edit the index a tag names, from images of the same
//! layout or of another one (`ocil index DIR:TAG --add DIR2:REF... --rm-platform P...`).
//!
//! - A child's platform comes from its image config (`os`, `architecture`, `variant`,
//!   `os.version`, `os.features`); an added index contributes its children as they are
//!   listed (BuildKit attestations included, still pointing at their images).
//! - Adding an image whose platform (os, architecture, variant, os.version) is already in
//!   the index replaces that child in place, and drops the attestations attached to it;
//!   the very same image again leaves the child (and so the index) byte-identical.
//! - `--rm-platform` removes the children of that platform (a missing variant matches any)
//!   and the attestations whose `vnd.docker.reference.digest` names them.
//! - Media type: a new index is a Docker manifest list when every child is a Docker
//!   schema2 manifest, an OCI index otherwise (a Docker list cannot name OCI manifests; an
//!   OCI index naming Docker manifests is what `buildx` and registries accept). An existing
//!   index keeps its type, except a Docker list that gains a non-Docker child: it becomes an
//!   OCI index ([`IndexReport::converted`]).
//! - Untouched children keep their exact bytes; other members of an existing index (its
//!   annotations, unknown fields) and their order stay.
//! - Blobs from another layout: the closure of each added image (manifest, config, layers,
//!   nested indexes) is walked in the source, and every blob the destination lacks is copied
//!   through the verified blob writer (digest and size checked before it lands).
//!   Nondistributable layers absent from the source are skipped, as they may be.
//!
//! - `--add DIR2@DIGEST` may name a manifest or index that is not an `index.json` entry
//!   (a child of an index): its own `mediaType` says what it is.
//!
//! The caller holds the destination's lock for the whole call: blobs are copied, the index
//! written, and `index.json` replaced once.

use std::collections::HashSet;

use ocil_layout::{
    Descriptor, Digest, JSON_LIMIT, Kind, Layout, LockGuard, MediaType, Platform, Reference,
    reference, tags,
};
use ocil_transfer::{ClosureOptions, ClosureSource, closure};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::{
    ANNOTATION_REFERENCE_DIGEST, Error, JsonDoc, Result, is_attestation, platform_matches, put_doc,
    read_doc,
};

/// An image (or index) to add, and where it lives.
#[derive(Debug, Clone, Copy)]
pub struct IndexSource<'a> {
    /// The layout holding it (may be the destination itself).
    pub layout: &'a Layout,
    /// Its `index.json` entry.
    pub reference: &'a Reference,
    /// How the user named it (`DIR2:REF`), for messages.
    pub label: &'a str,
}

/// What to do to the index a tag names.
#[derive(Debug, Clone)]
pub struct IndexEdit<'a> {
    /// The tag of the index (created when absent).
    pub tag: &'a str,
    /// Images to add, in order.
    pub add: Vec<IndexSource<'a>>,
    /// Platforms to remove (applied before the additions).
    pub remove: Vec<Platform>,
}

/// One child added, replaced or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildChange {
    /// Its platform (`os/arch[/variant][:os.version]`), or `attestation`.
    pub platform: String,
    /// Its digest.
    pub digest: Digest,
}

/// What [`edit_index`] did.
#[derive(Debug, Clone)]
pub struct IndexReport {
    /// The `index.json` entry written.
    pub entry: Descriptor,
    /// The index the tag named before (`None` when it is created).
    pub before: Option<Digest>,
    /// Whether the tag did not exist before.
    pub created: bool,
    /// Whether the index (and `index.json`) changed.
    pub changed: bool,
    /// A Docker manifest list that became an OCI index.
    pub converted: bool,
    /// Children added (new platforms).
    pub added: Vec<ChildChange>,
    /// Children that replaced a child of the same platform (the new ones).
    pub replaced: Vec<ChildChange>,
    /// Children removed (by `--rm-platform` or replaced).
    pub removed: Vec<ChildChange>,
    /// Images added that the index already had for their platform: left as they were.
    pub unchanged: Vec<ChildChange>,
    /// Blobs copied from other layouts.
    pub copied_blobs: usize,
    /// Bytes copied.
    pub copied_bytes: u64,
}

/// A child of the index being built: its exact text and what it says.
struct Child {
    raw: Box<RawValue>,
    desc: Descriptor,
}

impl Child {
    fn from_desc(desc: Descriptor) -> Result<Child> {
        let raw = serde_json::value::to_raw_value(&desc)
            .map_err(|source| Error::Serialize { what: "descriptor".into(), source })?;
        Ok(Child { raw, desc })
    }

    fn change(&self) -> ChildChange {
        let platform = if is_attestation(&self.desc) {
            "attestation".to_owned()
        } else {
            self.desc.platform.as_ref().map_or_else(|| "(no platform)".into(), Platform::display)
        };
        ChildChange { platform, digest: self.desc.digest.clone() }
    }
}

/// Create or edit the index `edit.tag` names in `layout`. Holds `lock` throughout.
pub fn edit_index(layout: &Layout, lock: &LockGuard, edit: &IndexEdit<'_>) -> Result<IndexReport> {
    reference::validate_tag(edit.tag)?;
    let mut index_json = layout.read_index()?;
    let tag_ref = Reference::Tag(edit.tag.to_owned());
    let existing = match reference::resolve_entry(&index_json, &tag_ref) {
        Ok(found) => found,
        Err(ocil_layout::Error::RefNotFound { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let (mut doc, mut children, media_type) = match &existing {
        Some((_, entry)) => {
            if entry.media_type.kind() != Kind::Index {
                return Err(Error::InvalidValue {
                    what: "tag",
                    value: edit.tag.into(),
                    reason: format!(
                        "it names a `{}`, not an index: `ocil index` builds indexes (choose a new tag)",
                        entry.media_type
                    ),
                });
            }
            let doc = read_doc(layout, &entry.digest)?;
            let mut children = Vec::new();
            for raw in doc.array_raw("manifests")? {
                let desc: Descriptor = serde_json::from_str(raw.get()).map_err(|source| {
                    Error::InvalidJson { path: format!("{} manifests[]", doc.name()), source }
                })?;
                children.push(Child { raw, desc });
            }
            (doc, children, Some(entry.media_type.clone()))
        }
        None => {
            if edit.add.is_empty() {
                return Err(Error::InvalidValue {
                    what: "tag",
                    value: edit.tag.into(),
                    reason: "no such index; --add images to create it".into(),
                });
            }
            (JsonDoc::new("new index"), Vec::new(), None)
        }
    };
    let mut report = IndexReport {
        entry: Descriptor::new(MediaType::OciIndex, empty_digest(), 0),
        before: existing.as_ref().map(|(_, e)| e.digest.clone()),
        created: existing.is_none(),
        changed: false,
        converted: false,
        added: Vec::new(),
        replaced: Vec::new(),
        removed: Vec::new(),
        unchanged: Vec::new(),
        copied_blobs: 0,
        copied_bytes: 0,
    };

    for wanted in &edit.remove {
        let gone: Vec<usize> = (0..children.len())
            .filter(|&i| {
                let d = &children[i].desc;
                !is_attestation(d)
                    && d.platform.as_ref().is_some_and(|p| platform_matches(p, wanted))
            })
            .collect();
        if gone.is_empty() {
            return Err(Error::PlatformNotFound {
                reference: edit.tag.into(),
                platform: wanted.display(),
                platforms: children
                    .iter()
                    .filter(|c| !is_attestation(&c.desc))
                    .map(|c| c.change().platform)
                    .collect(),
            });
        }
        let digests: HashSet<Digest> =
            gone.iter().map(|&i| children[i].desc.digest.clone()).collect();
        remove_children(&mut children, &digests, &mut report.removed);
    }

    // Children this edit added: a second --add for the same platform is refused rather than
    // silently replacing the first (the report would name an image the index does not hold).
    let mut added_now: HashSet<Digest> = HashSet::new();
    for source in &edit.add {
        let new_children = source_children(source)?;
        for c in &new_children {
            let (n, bytes) = copy_closure(source, layout, &c.desc)?;
            report.copied_blobs += n;
            report.copied_bytes += bytes;
        }
        for c in new_children {
            if is_attestation(&c.desc) {
                report.added.push(c.change());
                children.push(c);
                continue;
            }
            let same = children.iter().position(|old| {
                !is_attestation(&old.desc) && same_platform(&old.desc.platform, &c.desc.platform)
            });
            match same {
                // The same image again: its child stays as it is, bytes and all.
                Some(pos) if children[pos].desc.digest == c.desc.digest => {
                    report.unchanged.push(c.change());
                }
                Some(pos) if added_now.contains(&children[pos].desc.digest) => {
                    return Err(Error::InvalidValue {
                        what: "--add",
                        value: source.label.into(),
                        reason: format!(
                            "another --add already gives platform {} (`{}`): an index holds one image per platform",
                            c.change().platform,
                            children[pos].desc.digest
                        ),
                    });
                }
                Some(pos) => {
                    added_now.insert(c.desc.digest.clone());
                    let old = children[pos].change();
                    report.replaced.push(c.change());
                    children[pos] = c;
                    // The old child's attestations go with it.
                    let d: HashSet<Digest> = [old.digest.clone()].into_iter().collect();
                    report.removed.push(old);
                    remove_attestations(&mut children, &d, &mut report.removed);
                }
                None => {
                    added_now.insert(c.desc.digest.clone());
                    report.added.push(c.change());
                    children.push(c);
                }
            }
        }
    }

    let all_docker = children
        .iter()
        .filter(|c| !is_attestation(&c.desc))
        .all(|c| c.desc.media_type == MediaType::DockerManifest);
    let media_type = match media_type {
        Some(MediaType::DockerManifestList) if !all_docker => {
            report.converted = true;
            MediaType::OciIndex
        }
        Some(t) => t,
        None if all_docker && !children.is_empty() => MediaType::DockerManifestList,
        None => MediaType::OciIndex,
    };
    if existing.is_none() {
        doc.set("schemaVersion", &2)?;
    }
    if existing.is_none() || report.converted {
        doc.set("mediaType", media_type.as_str())?;
    }
    let raws: Vec<Box<RawValue>> = children.into_iter().map(|c| c.raw).collect();
    doc.set_array_raw("manifests", &raws)?;
    let stored = put_doc(layout, media_type.clone(), &doc)?;

    report.changed = existing.as_ref().is_none_or(|(_, old)| old.digest != stored.digest);
    let entry = match &existing {
        Some((_, old)) if !report.changed => old.clone(),
        Some((pos, old)) => {
            let mut e = old.clone();
            e.media_type = media_type;
            e.digest = stored.digest;
            e.size = stored.size;
            e.data = None;
            index_json.manifests[*pos] = e.clone();
            e
        }
        None => {
            tags::set_tag(&mut index_json, &stored, edit.tag)?;
            index_json
                .manifests
                .iter()
                .find(|d| d.ref_name() == Some(edit.tag))
                .cloned()
                .unwrap_or(stored)
        }
    };
    if report.changed {
        layout.write_index(&index_json, lock)?;
    }
    report.entry = entry;
    Ok(report)
}

/// The digest of the empty string, as a placeholder until the index is written.
fn empty_digest() -> Digest {
    ocil_layout::Algorithm::Sha256.digest_of(b"")
}

/// Same platform for replacement: os, architecture, variant and os.version all equal.
fn same_platform(a: &Option<Platform>, b: &Option<Platform>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => {
            a.os == b.os
                && a.architecture == b.architecture
                && a.variant == b.variant
                && a.os_version == b.os_version
        }
        _ => false,
    }
}

fn remove_children(
    children: &mut Vec<Child>,
    digests: &HashSet<Digest>,
    out: &mut Vec<ChildChange>,
) {
    children.retain(|c| {
        let gone = !is_attestation(&c.desc) && digests.contains(&c.desc.digest);
        if gone {
            out.push(c.change());
        }
        !gone
    });
    remove_attestations(children, digests, out);
}

fn remove_attestations(
    children: &mut Vec<Child>,
    digests: &HashSet<Digest>,
    out: &mut Vec<ChildChange>,
) {
    children.retain(|c| {
        let points_at = c
            .desc
            .annotation(ANNOTATION_REFERENCE_DIGEST)
            .and_then(|d| d.parse::<Digest>().ok())
            .is_some_and(|d| digests.contains(&d));
        let gone = is_attestation(&c.desc) && points_at;
        if gone {
            out.push(c.change());
        }
        !gone
    });
}

/// The children an added source contributes: one image with its platform from its config,
/// or the children of an index as listed.
fn source_children(source: &IndexSource<'_>) -> Result<Vec<Child>> {
    let bad =
        |reason: String| Error::InvalidValue { what: "--add", value: source.label.into(), reason };
    let index = source.layout.read_index()?;
    let entry = match reference::resolve_entry(&index, source.reference) {
        Ok(Some((_, entry))) => entry,
        Ok(None) => match source.reference {
            // Not an entry (a child of an index, say): the stored document says what it is.
            Reference::Digest(digest) => stored_document(source, digest)?,
            Reference::Tag(_) => return Err(bad("not found".into())),
        },
        Err(e) => return Err(bad(e.to_string())),
    };
    match entry.media_type.kind() {
        Kind::Manifest => {
            let platform = image_platform(source, &entry)?;
            let mut desc = Descriptor::new(entry.media_type.clone(), entry.digest, entry.size);
            desc.platform = Some(platform);
            Ok(vec![Child::from_desc(desc)?])
        }
        Kind::Index => {
            let doc = read_doc(source.layout, &entry.digest)?;
            let mut out = Vec::new();
            for raw in doc.array_raw("manifests")? {
                let desc: Descriptor = serde_json::from_str(raw.get()).map_err(|source| {
                    Error::InvalidJson { path: format!("{} manifests[]", doc.name()), source }
                })?;
                if desc.platform.is_none() && desc.media_type.kind() == Kind::Manifest {
                    // A child without a platform: take it from its config, as for an image.
                    let mut d = desc.clone();
                    d.platform = Some(image_platform(source, &desc)?);
                    out.push(Child::from_desc(d)?);
                } else {
                    out.push(Child { raw, desc });
                }
            }
            Ok(out)
        }
        _ => Err(Error::NotAnImage {
            reference: source.label.into(),
            reason: format!("a `{}`", entry.media_type),
        }),
    }
}

/// A descriptor for a stored document that no `index.json` entry names, from its own
/// `mediaType` (an image manifest or index; anything else is refused).
fn stored_document(source: &IndexSource<'_>, digest: &Digest) -> Result<Descriptor> {
    let bad =
        |reason: String| Error::InvalidValue { what: "--add", value: source.label.into(), reason };
    if !source.layout.has_blob(digest)? {
        return Err(bad("no `index.json` entry and no blob has this digest".into()));
    }
    let bytes = source.layout.read_blob(digest, JSON_LIMIT).map_err(|e| match e {
        ocil_layout::Error::TooLarge { .. } => {
            bad("the blob is not a manifest or index (too large)".into())
        }
        other => other.into(),
    })?;
    let media_type = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(MediaType::from))
        .filter(|t| t.kind().is_walkable())
        .ok_or_else(|| {
            bad("the blob is not a manifest or index with a `mediaType` (a config or layer?)"
                .into())
        })?;
    Ok(Descriptor::new(media_type, digest.clone(), bytes.len() as u64))
}

/// The platform an image's config gives.
fn image_platform(source: &IndexSource<'_>, manifest: &Descriptor) -> Result<Platform> {
    let not_image = |reason: String| Error::NotAnImage { reference: source.label.into(), reason };
    let m = read_doc(source.layout, &manifest.digest)?;
    let Some(config) = m.get::<Descriptor>("config")? else {
        return Err(not_image("a manifest without a config".into()));
    };
    if config.media_type.kind() != Kind::Config {
        return Err(not_image(format!("an artifact (config `{}`)", config.media_type)));
    }
    let bytes = source.layout.read_blob(&config.digest, JSON_LIMIT)?;
    let c: Value = serde_json::from_slice(&bytes)
        .map_err(|source| Error::InvalidJson { path: config.digest.blob_path(), source })?;
    let text =
        |k: &str| c.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let (Some(os), Some(architecture)) = (text("os"), text("architecture")) else {
        return Err(not_image(format!(
            "its config `{}` names no os and architecture",
            config.digest
        )));
    };
    let os_features = c
        .get("os.features")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect::<Vec<_>>())
        .filter(|v| !v.is_empty());
    Ok(Platform {
        architecture,
        os,
        os_version: text("os.version"),
        os_features,
        variant: text("variant"),
        features: None,
        extra: serde_json::Map::new(),
    })
}

/// Copy every blob reachable from `root` in the source that `dst` lacks (the closure from
/// `ocil_transfer`, without referrers: `ocil index --add` takes one image). Returns the
/// number of blobs and bytes copied.
fn copy_closure(source: &IndexSource<'_>, dst: &Layout, root: &Descriptor) -> Result<(usize, u64)> {
    let sources = [ClosureSource { store: source.layout, roots: vec![root.clone()] }];
    let opts = ClosureOptions { follow_subject: false, referrers: false, absent_ok: true };
    let found = closure(&sources, opts).map_err(|e| match e {
        ocil_transfer::Error::Store { error, .. } => Error::from(error),
        ocil_transfer::Error::Broken { code, path, message, .. } => Error::InvalidValue {
            what: "image",
            value: source.label.into(),
            reason: format!("{code}: {message} (at {path})"),
        },
        e => {
            Error::InvalidValue { what: "image", value: source.label.into(), reason: e.to_string() }
        }
    })?;
    let (mut n, mut bytes) = (0, 0);
    for b in found.blobs {
        if dst.has_blob(&b.digest)? {
            continue;
        }
        let desc = Descriptor::new(b.media_type, b.digest, b.size);
        let reader = source.layout.open_blob(&desc.digest, Some(desc.size))?;
        dst.put_blob_verified(reader, &desc)?;
        n += 1;
        bytes += desc.size;
    }
    Ok((n, bytes))
}
