//! The edit transaction: select images through `index.json` and nested indexes, let a
//! closure edit each one, write the new blobs, rewrite the enclosing indexes, and replace
//! the `index.json` entry once.
//!
//! Order of writes: configs, manifests, then indexes from the innermost out (every blob
//! through the verified blob store), and last `index.json`, once, under the caller's lock.
//! A kill at any moment leaves `index.json` naming the old image or the new one; new blobs
//! that never got named are garbage for `ocil gc`.
//!
//! Indexes are rewritten losslessly: only the edited children's `digest` and `size` change
//! (and `mediaType` when the closure changed it, `platform`'s `os`/`architecture`/`variant`
//! when the edit changed the config's, and `data` is dropped since it would no longer
//! match); their other fields, the order of fields, and every other child stay as they were.
//!
//! BuildKit attestation manifests (platform `unknown/unknown`, or annotation
//! `vnd.docker.reference.type: attestation-manifest`) are never edited and their blobs stay
//! byte-identical. They stay in the index, and their `vnd.docker.reference.digest`
//! annotation, which names the image they describe, is moved to the edited image's new
//! digest, so they stay attached to it.

use std::collections::{HashMap, HashSet};

use ocil_layout::{
    Descriptor, Digest, Index, JSON_LIMIT, Kind, Layout, LockGuard, MediaType, Platform, Reference,
    reference, tags,
};

use crate::{Error, Image, JsonDoc, Result};

/// BuildKit's annotation naming what an attestation manifest is.
pub const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// BuildKit's annotation naming the image an attestation manifest describes.
pub const ANNOTATION_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";

/// Nested indexes deeper than this are refused (hostile input).
const MAX_DEPTH: usize = 16;

/// Which images of an index to edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platforms {
    /// None chosen: fine for a plain image; an index is an error listing its platforms.
    Unspecified,
    /// The one image of this platform (`os/arch[/variant]`; a variant left out matches any).
    One(Box<Platform>),
    /// Every image of the index (attestations and other artifacts excluded).
    All,
}

/// What to edit and where the result goes.
#[derive(Debug, Clone)]
pub struct EditTarget<'a> {
    /// The `index.json` entry, by tag (or full name) or digest.
    pub reference: &'a Reference,
    /// Which images, when the entry is an index or manifest list.
    pub platforms: Platforms,
    /// `None`: the entry itself is replaced (its tag moves to the new image).
    /// `Some(tag)`: the old entry stays; `tag` is set (or moved) to the new image.
    pub new_tag: Option<&'a str>,
}

/// One image the closure saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditedImage {
    /// Its platform (`os/arch[/variant]`), as listed or from its config, after the edit.
    pub platform: Option<String>,
    /// The manifest digest before.
    pub before: Digest,
    /// The manifest digest after (equal to `before` when nothing changed).
    pub after: Digest,
}

/// What an edit did.
#[derive(Debug, Clone)]
pub struct Edited {
    /// The `index.json` entry before the edit.
    pub before: Descriptor,
    /// The entry for the edited image or index, as written to `index.json`.
    pub after: Descriptor,
    /// Every image the closure edited.
    pub images: Vec<EditedImage>,
    /// Attestation manifests whose `vnd.docker.reference.digest` was moved.
    pub attestations_moved: usize,
    /// Whether `index.json` was written.
    pub index_written: bool,
}

/// Whether a descriptor in an index is a BuildKit attestation manifest.
pub fn is_attestation(desc: &Descriptor) -> bool {
    desc.annotation(ANNOTATION_REFERENCE_TYPE) == Some("attestation-manifest")
        || desc.platform.as_ref().is_some_and(|p| p.os == "unknown" && p.architecture == "unknown")
}

/// Whether `platform` matches the requested one (a requested variant must match; an
/// unrequested variant matches any).
pub fn platform_matches(platform: &Platform, wanted: &Platform) -> bool {
    platform.os == wanted.os
        && platform.architecture == wanted.architecture
        && wanted.variant.as_ref().is_none_or(|v| platform.variant.as_ref() == Some(v))
}

/// Store a document as a blob (its [`JsonDoc::to_vec`] bytes) and return its descriptor.
pub fn put_doc(layout: &Layout, media_type: MediaType, doc: &JsonDoc) -> Result<Descriptor> {
    Ok(layout.put_bytes(media_type, &doc.to_vec())?)
}

/// Read a stored JSON document (verified against its digest) for a lossless edit.
pub fn read_doc(layout: &Layout, digest: &Digest) -> Result<JsonDoc> {
    let bytes = layout.read_blob(digest, JSON_LIMIT)?;
    JsonDoc::parse(&bytes, &digest.blob_path())
}

/// Edit the images `target` selects with `f`, then write everything (see the module docs).
///
/// The caller holds the layout's lock (`lock`) for the whole call; `index.json` is read
/// after the lock was taken, so concurrent ocil writers never lose each other's changes.
///
/// # Example
///
/// ```
/// use ocil_edit::{EditTarget, Platforms, edit_images};
/// use ocil_layout::{Layout, Platform, Reference, tags};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let tmp = tempfile::tempdir()?;
/// let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
/// let layout = Layout::create(dir)?;
/// let lock = layout.lock()?;
/// let platform: Platform = "linux/amd64".parse()?;
/// let desc = ocil_edit::empty_image(&layout, &platform, None)?;
/// let mut index = layout.read_index()?;
/// tags::set_tag(&mut index, &desc, "v1")?;
/// layout.write_index(&index, &lock)?;
///
/// let reference = Reference::parse("v1")?;
/// let target = EditTarget { reference: &reference, platforms: Platforms::Unspecified, new_tag: None };
/// let edited = edit_images(&layout, &lock, &target, |image| {
///     let cfg = image.runtime_config()?;
///     let mut env: Vec<String> = cfg.get("Env")?.unwrap_or_default();
///     env.push("A=B".into());
///     cfg.set("Env", &env)
/// })?;
/// assert_ne!(edited.after.digest, edited.before.digest);
/// assert_eq!(layout.read_index()?.manifests[0].digest, edited.after.digest);
/// # Ok(()) }
/// ```
pub fn edit_images(
    layout: &Layout,
    lock: &LockGuard,
    target: &EditTarget<'_>,
    f: impl FnMut(&mut Image) -> Result<()>,
) -> Result<Edited> {
    let mut index = layout.read_index()?;
    let (pos, entry) = resolve(layout, &index, target.reference, target.new_tag)?;
    let selected = select(layout, &entry, target)?;
    let mut ctx = Ctx {
        layout,
        selected,
        done: HashMap::new(),
        f,
        images: Vec::new(),
        attestations_moved: 0,
    };
    let change = ctx.edit(&entry, 0)?;
    let after = match &change {
        Some(c) => c.apply_to(&entry),
        None => entry.clone(),
    };
    let index_written = commit(&mut index, layout, lock, target, pos, &entry, &after)?;
    Ok(Edited {
        before: entry,
        after,
        images: ctx.images,
        attestations_moved: ctx.attestations_moved,
        index_written,
    })
}

/// Edit the index (or manifest list) an `index.json` entry points at, as a document (its
/// annotations, say); its children are left alone. The entry is replaced, or `new_tag` set,
/// as in [`edit_images`].
pub fn edit_entry_index(
    layout: &Layout,
    lock: &LockGuard,
    reference: &Reference,
    new_tag: Option<&str>,
    f: impl FnOnce(&mut JsonDoc) -> Result<()>,
) -> Result<Edited> {
    let mut index = layout.read_index()?;
    let (pos, entry) = resolve(layout, &index, reference, new_tag)?;
    if entry.media_type.kind() != Kind::Index {
        return Err(Error::NotAnIndex {
            reference: reference.to_string(),
            media_type: entry.media_type.to_string(),
        });
    }
    let mut doc = read_doc(layout, &entry.digest)?;
    f(&mut doc)?;
    let mut after = entry.clone();
    if doc.is_changed() {
        let stored = put_doc(layout, entry.media_type.clone(), &doc)?;
        after.digest = stored.digest;
        after.size = stored.size;
        after.data = None;
    }
    let target = EditTarget { reference, platforms: Platforms::Unspecified, new_tag };
    let index_written = commit(&mut index, layout, lock, &target, pos, &entry, &after)?;
    Ok(Edited { before: entry, after, images: Vec::new(), attestations_moved: 0, index_written })
}

/// The `index.json` entry a reference names (its position), or, for a digest no entry has
/// when the result gets a new tag, the blob in the store.
fn resolve(
    layout: &Layout,
    index: &Index,
    r: &Reference,
    new_tag: Option<&str>,
) -> Result<(Option<usize>, Descriptor)> {
    match reference::resolve_entry(index, r)? {
        Some((i, d)) => Ok((Some(i), d)),
        None => match r {
            Reference::Digest(d) if new_tag.is_some() && layout.has_blob(d)? => {
                Ok((None, layout.resolve(index, Some(r))?))
            }
            Reference::Digest(d) => Err(Error::NotAnEntry { digest: d.clone() }),
            Reference::Tag(t) => {
                Err(ocil_layout::Error::RefNotFound { reference: t.clone(), hint: String::new() }
                    .into())
            }
        },
    }
}

/// Point `index.json` at the result and write it (when it changed). Returns whether it
/// was written.
fn commit(
    index: &mut Index,
    layout: &Layout,
    lock: &LockGuard,
    target: &EditTarget<'_>,
    pos: Option<usize>,
    before: &Descriptor,
    after: &Descriptor,
) -> Result<bool> {
    let old = index.clone();
    retarget(index, target.reference, pos, before, after, target.new_tag)?;
    if *index == old {
        return Ok(false);
    }
    layout.write_index(index, lock)?;
    Ok(true)
}

/// Point `index.json` at an edited image: with `new_tag`, set (or move) that tag to
/// `after` and leave the old entry; without, replace the entry at `pos` (and, for a tag
/// reference, every other entry that tag names with the same digest) by `after`, keeping
/// its annotations. `pos` is `None` for a blob that is not an entry: then `new_tag` is
/// required.
pub fn retarget(
    index: &mut Index,
    r: &Reference,
    pos: Option<usize>,
    before: &Descriptor,
    after: &Descriptor,
    new_tag: Option<&str>,
) -> Result<()> {
    if let Some(tag) = new_tag {
        tags::set_tag(index, after, tag)?;
        return Ok(());
    }
    let Some(pos) = pos else {
        return Err(Error::NotAnEntry { digest: before.digest.clone() });
    };
    let mut positions = vec![pos];
    if let Reference::Tag(t) = r {
        positions.extend(
            reference::entries_named(index, t)
                .into_iter()
                .filter(|(i, d)| *i != pos && d.digest == before.digest)
                .map(|(i, _)| i),
        );
    }
    for i in positions {
        let e = &mut index.manifests[i];
        let annotations = e.annotations.clone();
        *e = Descriptor { annotations, ..after.clone() };
    }
    Ok(())
}

/// A candidate image found while selecting.
struct Candidate {
    digest: Digest,
    platform: Option<Platform>,
}

impl Candidate {
    fn label(&self) -> String {
        self.platform.as_ref().map_or_else(|| "(no platform)".into(), Platform::display)
    }
}

/// The manifest digests the closure will edit.
fn select(layout: &Layout, entry: &Descriptor, target: &EditTarget<'_>) -> Result<HashSet<Digest>> {
    let reference = target.reference.to_string();
    let mut found = Vec::new();
    let is_index = match entry.media_type.kind() {
        Kind::Manifest => {
            match image_platform(layout, entry)? {
                Some(platform) => found.push(Candidate { digest: entry.digest.clone(), platform }),
                None => {
                    return Err(Error::NotAnImage {
                        reference,
                        reason: "a manifest whose config is not an image config (an artifact)"
                            .into(),
                    });
                }
            }
            false
        }
        Kind::Index => {
            collect(layout, entry, 0, &mut found)?;
            true
        }
        _ => {
            return Err(Error::NotAnImage {
                reference,
                reason: format!("a `{}`", entry.media_type),
            });
        }
    };
    let labels = || {
        let mut l: Vec<String> = found.iter().map(Candidate::label).collect();
        l.dedup();
        l
    };
    if found.is_empty() {
        return Err(Error::NotAnImage {
            reference,
            reason: "an index with no images (only attestations or artifacts)".into(),
        });
    }
    let chosen: Vec<&Candidate> = match &target.platforms {
        Platforms::All => found.iter().collect(),
        Platforms::Unspecified if !is_index => found.iter().collect(),
        Platforms::Unspecified => {
            return Err(Error::PlatformRequired {
                reference,
                kind: if entry.media_type == MediaType::DockerManifestList {
                    "manifest list"
                } else {
                    "index"
                },
                platforms: labels(),
            });
        }
        Platforms::One(wanted) => {
            let m: Vec<&Candidate> = found
                .iter()
                .filter(|c| c.platform.as_ref().is_some_and(|p| platform_matches(p, wanted)))
                .collect();
            // A plain image whose config names no platform: the one image is the choice.
            if m.is_empty() && !is_index && found[0].platform.is_none() {
                found.iter().collect()
            } else {
                m
            }
        }
    };
    if let Platforms::One(wanted) = &target.platforms {
        let distinct: HashSet<&Digest> = chosen.iter().map(|c| &c.digest).collect();
        if distinct.is_empty() {
            return Err(Error::PlatformNotFound {
                reference,
                platform: wanted.display(),
                platforms: labels(),
            });
        }
        if distinct.len() > 1 {
            return Err(Error::PlatformAmbiguous {
                reference,
                platform: wanted.display(),
                candidates: chosen
                    .iter()
                    .map(|c| format!("{} `{}`", c.label(), c.digest))
                    .collect(),
            });
        }
    }
    Ok(chosen.into_iter().map(|c| c.digest.clone()).collect())
}

/// Every image under an index (nested indexes too), attestations and artifacts excluded.
fn collect(
    layout: &Layout,
    desc: &Descriptor,
    depth: usize,
    out: &mut Vec<Candidate>,
) -> Result<()> {
    for child in children(layout, desc, depth)? {
        if is_attestation(&child) {
            continue;
        }
        match child.media_type.kind() {
            Kind::Index => collect(layout, &child, depth + 1, out)?,
            Kind::Manifest => match image_platform(layout, &child) {
                Ok(Some(platform)) => {
                    out.push(Candidate { digest: child.digest.clone(), platform })
                }
                Ok(None) => {}
                // A shallow layout (olot's, say) lacks the other platforms' manifests: a
                // listed platform is enough to choose; editing a missing image still fails.
                Err(Error::Layout(e)) if e.is_not_found() && child.platform.is_some() => {
                    out.push(Candidate {
                        digest: child.digest.clone(),
                        platform: child.platform.clone(),
                    });
                }
                Err(e) => return Err(e),
            },
            _ => {}
        }
    }
    Ok(())
}

/// The children of an index blob.
fn children(layout: &Layout, desc: &Descriptor, depth: usize) -> Result<Vec<Descriptor>> {
    let doc = read_doc(layout, &desc.digest)?;
    if depth > MAX_DEPTH {
        return Err(Error::NotAnImage {
            reference: desc.digest.to_string(),
            reason: format!("indexes nested more than {MAX_DEPTH} deep"),
        });
    }
    match doc.get::<Vec<Descriptor>>("manifests")? {
        Some(c) => Ok(c),
        None => Err(Error::WrongType {
            path: doc.name().to_owned(),
            key: "manifests".into(),
            expected: "an array of descriptors",
        }),
    }
}

/// `Some(platform)` when `desc` is an image (a manifest whose config is an image config):
/// the listed platform, else the config's; `None` for an artifact.
fn image_platform(layout: &Layout, desc: &Descriptor) -> Result<Option<Option<Platform>>> {
    let manifest = read_doc(layout, &desc.digest)?;
    let Some(config) = manifest.get::<Descriptor>("config")? else { return Ok(None) };
    if config.media_type.kind() != Kind::Config {
        return Ok(None);
    }
    if desc.platform.is_some() {
        return Ok(Some(desc.platform.clone()));
    }
    let config = read_doc(layout, &config.digest)?;
    Ok(Some(config_platform(&config)?.map(|p| p.to_platform())))
}

/// `os`, `architecture`, `variant` of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PlatformFields {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

impl PlatformFields {
    fn to_platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone().unwrap_or_default(),
            os: self.os.clone().unwrap_or_default(),
            os_version: None,
            os_features: None,
            variant: self.variant.clone(),
            features: None,
            extra: Default::default(),
        }
    }
}

fn config_platform(config: &JsonDoc) -> Result<Option<PlatformFields>> {
    let p = PlatformFields {
        os: config.get_str("os")?,
        architecture: config.get_str("architecture")?,
        variant: config.get_str("variant")?,
    };
    Ok(if p.os.is_none() && p.architecture.is_none() { None } else { Some(p) })
}

/// How a descriptor changes.
#[derive(Debug, Clone)]
struct Change {
    digest: Digest,
    size: u64,
    media_type: MediaType,
    /// The config's platform fields before and after, when the edit changed them.
    platform: Option<(PlatformFields, PlatformFields)>,
}

impl Change {
    /// Apply to a descriptor struct (the `index.json` entry).
    fn apply_to(&self, d: &Descriptor) -> Descriptor {
        let mut d = d.clone();
        if d.digest != self.digest {
            d.data = None;
        }
        d.digest = self.digest.clone();
        d.size = self.size;
        d.media_type = self.media_type.clone();
        if let (Some(p), Some((before, after))) = (&mut d.platform, &self.platform) {
            if before.os != after.os {
                p.os = after.os.clone().unwrap_or_default();
            }
            if before.architecture != after.architecture {
                p.architecture = after.architecture.clone().unwrap_or_default();
            }
            if before.variant != after.variant {
                p.variant = after.variant.clone();
            }
        }
        d
    }

    /// Apply to a descriptor document (a child in an index, losslessly).
    fn apply_to_doc(&self, d: &mut JsonDoc, old: &Descriptor) -> Result<()> {
        if old.digest != self.digest {
            d.remove("data");
        }
        if old.media_type != self.media_type {
            d.set("mediaType", self.media_type.as_str())?;
        }
        d.set("digest", &self.digest)?;
        d.set("size", &self.size)?;
        if let Some((before, after)) = &self.platform
            && d.contains("platform")
        {
            let p = d.object_mut("platform")?;
            for (key, b, a) in [
                ("os", &before.os, &after.os),
                ("architecture", &before.architecture, &after.architecture),
                ("variant", &before.variant, &after.variant),
            ] {
                if b != a {
                    match a {
                        Some(v) => p.set(key, v)?,
                        None => {
                            p.remove(key);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

struct Ctx<'a, F> {
    layout: &'a Layout,
    selected: HashSet<Digest>,
    /// Every manifest or index already handled, by old digest (`None`: unchanged).
    done: HashMap<Digest, Option<Change>>,
    f: F,
    images: Vec<EditedImage>,
    attestations_moved: usize,
}

impl<F: FnMut(&mut Image) -> Result<()>> Ctx<'_, F> {
    fn edit(&mut self, desc: &Descriptor, depth: usize) -> Result<Option<Change>> {
        if let Some(c) = self.done.get(&desc.digest) {
            return Ok(c.clone());
        }
        let change = match desc.media_type.kind() {
            Kind::Index => self.edit_index(desc, depth)?,
            Kind::Manifest if self.selected.contains(&desc.digest) => self.edit_image(desc)?,
            _ => None,
        };
        self.done.insert(desc.digest.clone(), change.clone());
        Ok(change)
    }

    fn edit_image(&mut self, desc: &Descriptor) -> Result<Option<Change>> {
        let layout = self.layout;
        let manifest = read_doc(layout, &desc.digest)?;
        let config_desc: Descriptor = manifest.get("config")?.ok_or_else(|| Error::NotAnImage {
            reference: desc.digest.to_string(),
            reason: "a manifest without `config`".into(),
        })?;
        let config = read_doc(layout, &config_desc.digest)?;
        let platform_before = config_platform(&config)?;
        let manifest_media_type = match manifest.get_str("mediaType")? {
            Some(t) => MediaType::from(t.as_str()),
            None => desc.media_type.clone(),
        };
        let mut image = Image {
            manifest,
            config,
            manifest_media_type: manifest_media_type.clone(),
            config_media_type: config_desc.media_type.clone(),
            digest: desc.digest.clone(),
            platform: desc.platform.clone(),
        };
        (self.f)(&mut image)?;

        if image.config.is_changed() || image.config_media_type != config_desc.media_type {
            let stored = put_doc(layout, image.config_media_type.clone(), &image.config)?;
            let c = image.manifest.object_mut("config")?;
            if stored.digest != config_desc.digest {
                c.remove("data");
            }
            c.set("mediaType", image.config_media_type.as_str())?;
            c.set("digest", &stored.digest)?;
            c.set("size", &stored.size)?;
        }
        if image.manifest_media_type != manifest_media_type {
            image.manifest.set("mediaType", image.manifest_media_type.as_str())?;
        }
        let platform_after = config_platform(&image.config)?;
        let listed =
            desc.platform.clone().or_else(|| platform_after.as_ref().map(|p| p.to_platform()));
        let (change, after) = if image.manifest.is_changed() {
            let stored = put_doc(layout, image.manifest_media_type.clone(), &image.manifest)?;
            let platform = match (platform_before, platform_after) {
                (b, a) if b == a => None,
                (b, a) => Some((
                    b.unwrap_or(PlatformFields { os: None, architecture: None, variant: None }),
                    a.unwrap_or(PlatformFields { os: None, architecture: None, variant: None }),
                )),
            };
            let change = Change {
                digest: stored.digest.clone(),
                size: stored.size,
                media_type: image.manifest_media_type.clone(),
                platform,
            };
            (Some(change), stored.digest)
        } else {
            (None, desc.digest.clone())
        };
        let shown = match &change {
            Some(c) => c.apply_to(&Descriptor { platform: listed, ..desc.clone() }).platform,
            None => listed,
        };
        self.images.push(EditedImage {
            platform: shown.as_ref().map(Platform::display),
            before: desc.digest.clone(),
            after,
        });
        Ok(change)
    }

    fn edit_index(&mut self, desc: &Descriptor, depth: usize) -> Result<Option<Change>> {
        let children = children(self.layout, desc, depth)?;
        let mut changes: Vec<Option<Change>> = Vec::with_capacity(children.len());
        for child in &children {
            changes.push(if is_attestation(child) { None } else { self.edit(child, depth + 1)? });
        }
        if changes.iter().all(Option::is_none) {
            return Ok(None);
        }
        // Old digest -> new digest of the images edited here, to move attestations.
        let moved: HashMap<String, String> = children
            .iter()
            .zip(&changes)
            .filter_map(|(c, ch)| {
                ch.as_ref().map(|ch| (c.digest.to_string(), ch.digest.to_string()))
            })
            .collect();
        let mut doc = read_doc(self.layout, &desc.digest)?;
        let mut attestations = 0;
        doc.edit_array_objects("manifests", |i, d| {
            let child = &children[i];
            if let Some(change) = &changes[i] {
                change.apply_to_doc(d, child)?;
            } else if is_attestation(child)
                && let Some(new) =
                    child.annotation(ANNOTATION_REFERENCE_DIGEST).and_then(|old| moved.get(old))
            {
                d.object_mut("annotations")?.set(ANNOTATION_REFERENCE_DIGEST, new)?;
                attestations += 1;
            }
            Ok(())
        })?;
        self.attestations_moved += attestations;
        let stored = put_doc(self.layout, desc.media_type.clone(), &doc)?;
        Ok(Some(Change {
            digest: stored.digest,
            size: stored.size,
            media_type: desc.media_type.clone(),
            platform: None,
        }))
    }
}
