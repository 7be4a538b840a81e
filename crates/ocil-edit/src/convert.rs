//! Convert an image (or a whole index) between Docker and OCI media types:
//! `ocil convert DIR:REF --to oci|docker [--compress gzip|zstd]`.
//!
//! The table in SPEC-NOTES: manifest list <-> image index, schema2 manifest <-> image
//! manifest, container config <-> image config, `rootfs.diff.tar.gzip` <-> `tar+gzip`,
//! foreign <-> nondistributable `+gzip`. Documents are edited losslessly ([`JsonDoc`]): only
//! the members that must change are rewritten, so unknown fields keep their bytes and
//! order. Configs never change (Docker's config is a superset of OCI's, and diff_ids name
//! uncompressed tars), so an image's config digest (its Docker image ID) survives.
//!
//! Decisions where Docker has no place for an OCI feature (`--to docker`):
//! - `subject` or `artifactType` on a manifest or index (a referrer or an artifact): refused;
//!   a manifest whose config is not an image config (an artifact) too;
//! - `annotations` on a manifest, an index or a descriptor: dropped, with a warning;
//! - uncompressed and zstd layers: refused unless `--compress gzip`; `--compress zstd` is
//!   refused outright; nondistributable layers other than `+gzip` are refused (they may be
//!   absent, so they cannot be recompressed);
//! - attestation manifests in an index (BuildKit's `vnd.docker.reference.type:
//!   attestation-manifest`, OCI manifests over in-toto layers): dropped, with a warning
//!   (a manifest list holds schema2 image manifests only). `--to oci` keeps them as they are.
//!
//! Recompression (`--compress`): a distributable layer in another compression is decompressed
//! and recompressed deterministically ([`crate::layer::LayerSink`]: same tar, same bytes),
//! streaming; its uncompressed digest is checked against the config's `rootfs.diff_ids`
//! entry as it goes, and a mismatch stops the conversion. Layers already in the asked
//! compression are kept as they are.
//!
//! Round trip: OCI -> Docker -> OCI gives back the same digests when nothing was
//! recompressed or dropped and the documents were compact JSON (as ocil, skopeo, umoci and
//! containerd write them): each step changes only `mediaType` members, in place. Documents
//! written with indentation come back compact, and dropped annotations do not come back.
//!
//! The caller holds the layout's lock for the whole call (as for [`crate::edit_images`]):
//! new blobs are written first, then `index.json` once. Without a new tag, the entry's tag
//! moves to the converted image.

use std::collections::HashMap;
use std::io;

use ocil_layout::progress::Progress;
use ocil_layout::{
    Compression, Descriptor, Digest, Kind, Layout, LockGuard, MediaType, Platform, Reference,
    reference,
};

use crate::layer::LayerSink;
use crate::{Error, JsonDoc, Platforms, Result, is_attestation, put_doc, read_doc, retarget};

/// The family to convert to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum To {
    /// OCI image spec media types.
    Oci,
    /// Docker schema2 media types.
    Docker,
}

impl To {
    /// `oci` or `docker`.
    pub fn as_str(self) -> &'static str {
        match self {
            To::Oci => "oci",
            To::Docker => "docker",
        }
    }
}

/// What to convert and how.
#[derive(Clone, Copy)]
pub struct ConvertOptions<'a> {
    /// The `index.json` entry.
    pub reference: &'a Reference,
    /// The family to convert to.
    pub to: To,
    /// Recompress distributable layers into this compression (`None`: keep them).
    pub compress: Option<Compression>,
    /// For an index: [`Platforms::One`] converts only that platform's image (the result is
    /// that image alone); [`Platforms::All`] or [`Platforms::Unspecified`] convert the whole
    /// index.
    pub platforms: &'a Platforms,
    /// Tag the result with this tag, leaving the entry as it was; `None`: the entry is
    /// replaced by the result.
    pub new_tag: Option<&'a str>,
    /// Where progress goes (bytes of layers recompressed, counted as read).
    pub progress: &'a dyn Progress,
}

impl std::fmt::Debug for ConvertOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvertOptions")
            .field("reference", self.reference)
            .field("to", &self.to)
            .field("compress", &self.compress)
            .field("platforms", self.platforms)
            .field("new_tag", &self.new_tag)
            .finish_non_exhaustive()
    }
}

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The entry before.
    pub before: Descriptor,
    /// The result (as it is in `index.json` now).
    pub after: Descriptor,
    /// Manifests converted.
    pub manifests: usize,
    /// Indexes converted.
    pub indexes: usize,
    /// Layers recompressed.
    pub recompressed: usize,
    /// What was dropped on the way, one line each.
    pub warnings: Vec<String>,
    /// Whether `index.json` was rewritten.
    pub index_written: bool,
}

/// Convert the entry `opts.reference` names (see the module docs).
pub fn convert(layout: &Layout, lock: &LockGuard, opts: &ConvertOptions<'_>) -> Result<Converted> {
    if opts.to == To::Docker && opts.compress == Some(Compression::Zstd) {
        return Err(Error::ConvertRefused {
            what: opts.reference.to_string(),
            to: "docker",
            reason: "Docker has no zstd layer media type (zstd is OCI-only): use --compress gzip, or --to oci".into(),
        });
    }
    let mut index = layout.read_index()?;
    let (pos, entry) = match (reference::resolve_entry(&index, opts.reference)?, opts.reference) {
        (Some(found), _) => found,
        (None, Reference::Digest(d)) => {
            return Err(crate::Error::NotAnEntry { digest: d.clone() });
        }
        (None, Reference::Tag(t)) => {
            return Err(ocil_layout::Error::RefNotFound {
                reference: t.clone(),
                hint: String::new(),
            }
            .into());
        }
    };
    let mut cx = Cx {
        layout,
        opts,
        done: HashMap::new(),
        manifests: 0,
        indexes: 0,
        recompressed: 0,
        warnings: Vec::new(),
        staged: Vec::new(),
    };
    let start = match (&entry.media_type.kind(), opts.platforms) {
        (Kind::Index, Platforms::One(wanted)) => pick(layout, &entry, wanted)?,
        _ => entry.clone(),
    };
    let new = cx.convert(&start, 0)?;
    // Layers first, then (already stored) documents are named by index.json.
    for layer in cx.staged.drain(..) {
        layer.commit()?;
    }
    let mut after = entry.clone();
    after.media_type = new.media_type.clone();
    if after.digest != new.digest {
        after.data = None;
    }
    after.digest = new.digest.clone();
    after.size = new.size;
    if start.digest != entry.digest {
        // One platform's image of an index: the entry becomes that image.
        after.platform = start.platform.clone();
    }
    let old = index.clone();
    retarget(&mut index, opts.reference, Some(pos), &entry, &after, opts.new_tag)?;
    let index_written = index != old;
    if index_written {
        layout.write_index(&index, lock)?;
    }
    Ok(Converted {
        before: entry,
        after,
        manifests: cx.manifests,
        indexes: cx.indexes,
        recompressed: cx.recompressed,
        warnings: cx.warnings,
        index_written,
    })
}

/// The one image of `wanted` platform in an index (nested indexes included).
fn pick(layout: &Layout, index: &Descriptor, wanted: &Platform) -> Result<Descriptor> {
    let mut found = Vec::new();
    let mut stack = vec![(index.clone(), 0usize)];
    let mut seen = Vec::new();
    while let Some((d, depth)) = stack.pop() {
        let doc = read_doc(layout, &d.digest)?;
        let children: Vec<Descriptor> = doc.get("manifests")?.unwrap_or_default();
        for c in children {
            if is_attestation(&c) {
                continue;
            }
            match c.media_type.kind() {
                Kind::Index if depth < 8 => stack.push((c, depth + 1)),
                Kind::Manifest => {
                    if let Some(p) = &c.platform {
                        seen.push(p.display());
                        if crate::platform_matches(p, wanted) {
                            found.push(c);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    found.dedup_by(|a, b| a.digest == b.digest);
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(crate::Error::PlatformNotFound {
            reference: index.digest.to_string(),
            platform: wanted.display(),
            platforms: seen,
        }),
        _ => Err(crate::Error::PlatformAmbiguous {
            reference: index.digest.to_string(),
            platform: wanted.display(),
            candidates: found.iter().map(|c| c.digest.to_string()).collect(),
        }),
    }
}

/// A converted document or layer: what its descriptors must now say.
#[derive(Debug, Clone)]
struct New {
    media_type: MediaType,
    digest: Digest,
    size: u64,
}

struct Cx<'a> {
    layout: &'a Layout,
    opts: &'a ConvertOptions<'a>,
    /// Documents and layers already converted, by old digest.
    done: HashMap<Digest, New>,
    manifests: usize,
    indexes: usize,
    recompressed: usize,
    warnings: Vec<String>,
    staged: Vec<crate::layer::StagedLayer>,
}

impl Cx<'_> {
    fn to(&self) -> &'static str {
        self.opts.to.as_str()
    }

    fn refuse(&self, what: &Digest, reason: impl Into<String>) -> Error {
        Error::ConvertRefused { what: what.blob_path(), to: self.to(), reason: reason.into() }
    }

    /// The media type of the other family, or a refusal.
    fn map_type(&self, mt: &MediaType, at: &Digest) -> Result<MediaType> {
        let mapped = match self.opts.to {
            To::Oci => mt.to_oci(),
            To::Docker => mt.to_docker(),
        };
        mapped.ok_or_else(|| self.refuse(at, format!("`{mt}` has no {} counterpart", self.to())))
    }

    fn convert(&mut self, desc: &Descriptor, depth: usize) -> Result<New> {
        if let Some(n) = self.done.get(&desc.digest) {
            return Ok(n.clone());
        }
        let new = match desc.media_type.kind() {
            Kind::Index if depth <= 8 => self.convert_index(desc, depth)?,
            Kind::Manifest => self.convert_manifest(desc)?,
            _ => {
                return Err(self.refuse(
                    &desc.digest,
                    format!("a `{}` is not an image, index or manifest list", desc.media_type),
                ));
            }
        };
        self.done.insert(desc.digest.clone(), new.clone());
        Ok(new)
    }

    /// The checks and drops shared by manifests and indexes (`--to docker`).
    fn docker_top_level(&mut self, doc: &mut JsonDoc, digest: &Digest) -> Result<()> {
        if self.opts.to != To::Docker {
            return Ok(());
        }
        for key in ["subject", "artifactType"] {
            if doc.contains(key) {
                return Err(self.refuse(
                    digest,
                    format!(
                        "it has `{key}` (an OCI artifact or referrer): Docker schema2 has no place for it"
                    ),
                ));
            }
        }
        if doc.remove("annotations") {
            self.warnings.push(format!(
                "`{}`: dropped `annotations` (Docker schema2 has none)",
                digest.blob_path()
            ));
        }
        Ok(())
    }

    /// Drop what a Docker descriptor cannot carry.
    fn docker_descriptor(&mut self, d: &mut JsonDoc, parent: &Digest, child: &Digest) {
        if self.opts.to != To::Docker {
            return;
        }
        for key in ["annotations", "artifactType"] {
            if d.remove(key) {
                self.warnings.push(format!(
                    "`{}`: dropped `{key}` of the descriptor of `{child}` (Docker schema2 has none)",
                    parent.blob_path()
                ));
            }
        }
    }

    fn convert_index(&mut self, desc: &Descriptor, depth: usize) -> Result<New> {
        let mut doc = read_doc(self.layout, &desc.digest)?;
        self.docker_top_level(&mut doc, &desc.digest)?;
        let own = match doc.get_str("mediaType")? {
            Some(t) => MediaType::from(t.as_str()),
            None => desc.media_type.clone(),
        };
        let media_type = self.map_type(&own, &desc.digest)?;
        let children: Vec<Descriptor> =
            doc.get::<Option<Vec<Descriptor>>>("manifests")?.flatten().unwrap_or_default();
        let mut converted: Vec<Option<New>> = Vec::with_capacity(children.len());
        for child in &children {
            if is_attestation(child) {
                converted.push(None);
                continue;
            }
            converted.push(Some(self.convert(child, depth + 1)?));
        }
        // Attestations point at their image by digest: follow the images they describe.
        let moved: HashMap<String, String> = children
            .iter()
            .zip(&converted)
            .filter_map(|(c, n)| n.as_ref().map(|n| (c.digest.to_string(), n.digest.to_string())))
            .collect();
        let raw = doc.array_raw("manifests")?;
        let mut out = Vec::with_capacity(raw.len());
        for (i, item) in raw.into_iter().enumerate() {
            let child = &children[i];
            let mut d = JsonDoc::parse(
                item.get().as_bytes(),
                &format!("{}.manifests[{i}]", desc.digest.blob_path()),
            )?;
            match &converted[i] {
                None if self.opts.to == To::Docker => {
                    self.warnings.push(format!(
                        "`{}`: dropped attestation manifest `{}` (a manifest list holds images only)",
                        desc.digest.blob_path(),
                        child.digest
                    ));
                    continue;
                }
                None => {
                    if let Some(new) = child
                        .annotation(crate::ANNOTATION_REFERENCE_DIGEST)
                        .and_then(|old| moved.get(old))
                    {
                        d.object_mut("annotations")?
                            .set(crate::ANNOTATION_REFERENCE_DIGEST, new)?;
                    }
                }
                Some(n) => {
                    apply(&mut d, child, n)?;
                    self.docker_descriptor(&mut d, &desc.digest, &child.digest);
                }
            }
            out.push(d.to_raw()?);
        }
        doc.set_array_raw("manifests", &out)?;
        if doc.contains("mediaType") || self.opts.to == To::Docker {
            doc.set("mediaType", media_type.as_str())?;
        }
        let stored = put_doc(self.layout, media_type.clone(), &doc)?;
        self.indexes += 1;
        Ok(New { media_type, digest: stored.digest, size: stored.size })
    }

    fn convert_manifest(&mut self, desc: &Descriptor) -> Result<New> {
        let layout = self.layout;
        let mut doc = read_doc(layout, &desc.digest)?;
        self.docker_top_level(&mut doc, &desc.digest)?;
        let own = match doc.get_str("mediaType")? {
            Some(t) => MediaType::from(t.as_str()),
            None => desc.media_type.clone(),
        };
        let media_type = self.map_type(&own, &desc.digest)?;
        let Some(config) = doc.get::<Descriptor>("config")? else {
            return Err(self.refuse(&desc.digest, "a manifest without `config`"));
        };
        if config.media_type.kind() != Kind::Config
            || config.media_type == MediaType::DockerPluginConfig
        {
            return Err(self.refuse(
                &desc.digest,
                format!(
                    "its config is a `{}`, not an image config (an artifact or plugin)",
                    config.media_type
                ),
            ));
        }
        let config_type = self.map_type(&config.media_type, &config.digest)?;
        let manifest_digest = desc.digest.clone();
        {
            let c = doc.object_mut("config")?;
            c.set("mediaType", config_type.as_str())?;
        }
        let mut config_doc = None;
        let layers: Vec<Descriptor> =
            doc.get::<Option<Vec<Descriptor>>>("layers")?.flatten().unwrap_or_default();
        let mut news = Vec::with_capacity(layers.len());
        for (i, layer) in layers.iter().enumerate() {
            news.push(self.convert_layer(layer, i, &config, &mut config_doc, &manifest_digest)?);
        }
        let mut i = 0;
        let mut drops = Vec::new();
        doc.edit_array_objects("layers", |_, d| {
            let old = &layers[i];
            apply(d, old, &news[i])?;
            if self.opts.to == To::Docker {
                for key in ["annotations", "artifactType"] {
                    if d.remove(key) {
                        drops.push(format!(
                            "`{}`: dropped `{key}` of layer `{}` (Docker schema2 has none)",
                            manifest_digest.blob_path(),
                            old.digest
                        ));
                    }
                }
            }
            i += 1;
            Ok(())
        })?;
        self.warnings.extend(drops);
        if self.opts.to == To::Docker {
            let c = doc.object_mut("config")?;
            for key in ["annotations", "artifactType"] {
                if c.remove(key) {
                    self.warnings.push(format!(
                        "`{}`: dropped `{key}` of the config descriptor (Docker schema2 has none)",
                        manifest_digest.blob_path()
                    ));
                }
            }
        }
        if doc.contains("mediaType") || self.opts.to == To::Docker {
            doc.set("mediaType", media_type.as_str())?;
        }
        let stored = put_doc(layout, media_type.clone(), &doc)?;
        self.manifests += 1;
        Ok(New { media_type, digest: stored.digest, size: stored.size })
    }

    fn convert_layer(
        &mut self,
        layer: &Descriptor,
        position: usize,
        config: &Descriptor,
        config_doc: &mut Option<JsonDoc>,
        manifest: &Digest,
    ) -> Result<New> {
        let Kind::Layer { compression, distributable } = layer.media_type.kind() else {
            return Err(self.refuse(
                manifest,
                format!("layer {position} is a `{}`, not a layer type", layer.media_type),
            ));
        };
        let target = match self.opts.compress {
            Some(c) if distributable && c != compression => c,
            _ => compression,
        };
        if self.opts.to == To::Docker && target != Compression::Gzip {
            let reason = if distributable {
                format!(
                    "layer `{}` is {}; Docker has only gzip layers: add --compress gzip",
                    layer.digest,
                    if compression == Compression::Zstd { "zstd" } else { "uncompressed" }
                )
            } else {
                format!(
                    "layer `{}` is a nondistributable {} layer; Docker's foreign layers are gzip only, and a layer that may be absent cannot be recompressed",
                    layer.digest,
                    compression.as_str()
                )
            };
            return Err(self.refuse(manifest, reason));
        }
        let oci = layer_type(target, distributable);
        let media_type = match self.opts.to {
            To::Oci => oci,
            To::Docker => self.map_type(&oci, &layer.digest)?,
        };
        if target == compression {
            return Ok(New { media_type, digest: layer.digest.clone(), size: layer.size });
        }
        let key = layer.digest.clone();
        if let Some(n) = self.done.get(&key) {
            return Ok(New { media_type, digest: n.digest.clone(), size: n.size });
        }
        if config_doc.is_none() {
            *config_doc = Some(read_doc(self.layout, &config.digest)?);
        }
        let diff_ids: Vec<String> = config_doc
            .as_ref()
            .and_then(|c| c.get::<serde_json::Value>("rootfs").ok().flatten())
            .and_then(|r| r.get("diff_ids").cloned())
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let staged = self.recompress(layer, compression, target)?;
        match diff_ids.get(position) {
            Some(expected) if expected.starts_with("sha256:") => {
                if expected != &staged.diff_id.to_string() {
                    return Err(Error::DiffIdMismatch {
                        layer: layer.digest.blob_path(),
                        position,
                        expected: expected.clone(),
                        found: staged.diff_id.clone(),
                    });
                }
            }
            Some(_) => {}
            None => {
                return Err(self.refuse(
                    manifest,
                    format!(
                        "the config has no rootfs.diff_ids[{position}] to check layer `{}` against",
                        layer.digest
                    ),
                ));
            }
        }
        let new =
            New { media_type, digest: staged.blob.digest().clone(), size: staged.blob.size() };
        self.done.insert(key, new.clone());
        self.staged.push(staged);
        self.recompressed += 1;
        Ok(new)
    }

    fn recompress(
        &self,
        layer: &Descriptor,
        from: Compression,
        to: Compression,
    ) -> Result<crate::layer::StagedLayer> {
        let path = layer.digest.blob_path();
        let read_err = |source: io::Error| Error::LayerRead { layer: path.clone(), source };
        let reader = self.layout.open_blob(&layer.digest, Some(layer.size))?;
        let reader = ocil_layout::progress::ProgressReader::new(reader, self.opts.progress);
        let mut decoded = ocil_codec::decoder(reader, from).map_err(read_err)?;
        let mut sink = LayerSink::new(self.layout, to)?;
        io::copy(&mut decoded, &mut sink).map_err(read_err)?;
        sink.finish(Vec::new())
    }
}

/// The OCI layer media type of a compression.
fn layer_type(c: Compression, distributable: bool) -> MediaType {
    match (c, distributable) {
        (Compression::None, true) => MediaType::OciLayerTar,
        (Compression::Gzip, true) => MediaType::OciLayerGzip,
        (Compression::Zstd, true) => MediaType::OciLayerZstd,
        (Compression::None, false) => MediaType::OciLayerNondistributableTar,
        (Compression::Gzip, false) => MediaType::OciLayerNondistributableGzip,
        (Compression::Zstd, false) => MediaType::OciLayerNondistributableZstd,
    }
}

/// Point a descriptor document at a converted blob: only the members that change.
fn apply(d: &mut JsonDoc, old: &Descriptor, new: &New) -> crate::Result<()> {
    if old.media_type != new.media_type {
        d.set("mediaType", new.media_type.as_str())?;
    }
    if old.digest != new.digest {
        d.remove("data");
        d.set("digest", &new.digest)?;
        d.set("size", &new.size)?;
    }
    Ok(())
}
