//! An archive read in place, for `ocil ls FILE` and `ocil inspect FILE[:REF|@DIGEST]`:
//! indexed once ([`crate::tar_index`]), planned by the same code as import (so a
//! docker-save archive shows the manifests, tags and digests an import would give), and
//! read by offset as needed. Nothing is written anywhere.
//!
//! The index an import into an empty layout would write is [`ArchiveView::index`]; blobs
//! are read through [`ArchiveView::read_blob`], which checks every blob against its digest.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;

use cap_std::fs::File;
use ocil_layout::inspect::{EntrySummary, Inspected, config_platform_of, inspect_with};
use ocil_layout::walk::kind_by_shape;
use ocil_layout::{Compression, Descriptor, Digest, Index, JSON_LIMIT, Kind, MediaType, Reference};
use serde_json::Value;

use crate::source::{self, FileFacts, Source, blob_name};
use crate::tar_index::{self, TarIndex};
use crate::{Error, Format, Result, commit};

/// An image archive opened for reading in place.
#[derive(Debug)]
pub struct ArchiveView {
    tar: TarIndex,
    format: Format,
    index: Index,
    /// The manifests built for docker-save images.
    documents: HashMap<Digest, Vec<u8>>,
    /// Files that hold a blob without being named by its digest (docker-save configs and
    /// layers): digest -> entry.
    by_digest: HashMap<Digest, String>,
}

impl Source for TarIndex {
    fn has(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    fn file(&self, path: &str) -> Result<Option<(String, FileFacts)>> {
        let Some((real, f)) = source::resolve(&self.nodes, path)? else { return Ok(None) };
        let digest = match blob_name(real) {
            Some(d) => d,
            None => self.digest(real, f)?,
        };
        Ok(Some((real.to_owned(), FileFacts { digest, size: f.size, head: f.head.clone() })))
    }

    fn read_json(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some((real, f)) = source::resolve(&self.nodes, path)? else { return Ok(None) };
        let bytes = self.read(real, f, JSON_LIMIT)?;
        check_name(real, &bytes)?;
        Ok(Some(bytes))
    }
}

fn check_digest(path: &str, bytes: &[u8], digest: &Digest) -> Result<()> {
    let found = digest.algorithm().digest_of(bytes);
    if &found != digest {
        return Err(Error::DigestMismatch { entry: path.into(), found });
    }
    Ok(())
}

/// A `blobs/<alg>/<hex>` entry must hash to its name.
fn check_name(path: &str, bytes: &[u8]) -> Result<()> {
    if let Some(want) = blob_name(path) {
        let found = want.algorithm().digest_of(bytes);
        if found != want {
            return Err(Error::DigestMismatch { entry: path.into(), found });
        }
    }
    Ok(())
}

impl ArchiveView {
    /// Index `file` and plan its images as import would. An uncompressed archive in a
    /// regular file is read by offset; a compressed one (or a pipe) in one pass that keeps
    /// only its JSON documents. Hostile archives get the errors import gives, except that a
    /// blob is checked against its digest only when it is read (documents always are; the
    /// layers of an OCI archive are not read, a docker-save archive's are hashed).
    pub fn open(file: File) -> Result<ArchiveView> {
        let tar = tar_index::index(file)?;
        let planned = crate::plan(&tar)?;
        let mut images = planned.images;
        commit::resolve_archive_tags(&mut images, false)?;
        let mut index = Index::empty();
        commit::add_images(&mut index, &images)?;
        let documents = planned
            .documents
            .into_iter()
            .map(|d| (ocil_layout::Algorithm::Sha256.digest_of(&d), d))
            .collect();
        let mut by_digest = HashMap::new();
        for path in planned.docker_files.concat() {
            if let Some((real, facts)) = tar.file(&path)? {
                by_digest.insert(facts.digest, real);
            }
        }
        Ok(ArchiveView { tar, format: planned.format, index, documents, by_digest })
    }

    /// The archive's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The archive's compression.
    pub fn compression(&self) -> Compression {
        self.tar.compression
    }

    /// Number of tar entries.
    pub fn entries(&self) -> usize {
        self.tar.entries
    }

    /// Whether entries are read by offset (an uncompressed regular file), rather than kept
    /// from one pass.
    pub fn seekable(&self) -> bool {
        self.tar.file.is_some()
    }

    /// The `index.json` an import of this archive into an empty layout would write.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Where a blob is: a built manifest (`None`), or an entry.
    fn locate(&self, digest: &Digest) -> Result<Option<Located<'_>>> {
        if let Some(doc) = self.documents.get(digest) {
            return Ok(Some(Located::Memory(doc)));
        }
        let path = digest.blob_path();
        if let Some((real, f)) = source::resolve(&self.tar.nodes, &path)? {
            return Ok(Some(Located::Entry(real, f)));
        }
        if let Some(path) = self.by_digest.get(digest)
            && let Some((real, f)) = source::resolve(&self.tar.nodes, path)?
        {
            return Ok(Some(Located::Entry(real, f)));
        }
        Ok(None)
    }

    /// A blob's size, when the archive holds it.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.locate(digest)?.map(|l| match l {
            Located::Memory(d) => d.len() as u64,
            Located::Entry(_, f) => f.size,
        }))
    }

    /// A blob's bytes (at most `limit`), checked against its digest.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        match self.locate(digest)? {
            Some(Located::Memory(d)) => Ok(d.clone()),
            Some(Located::Entry(path, f)) => {
                let bytes = self.tar.read(path, f, limit)?;
                check_digest(path, &bytes, digest)?;
                Ok(bytes)
            }
            None => Err(Error::MissingEntry {
                entry: digest.blob_path(),
                what: format!("blob `{digest}`"),
            }),
        }
    }

    /// A blob's exact bytes as a reader, after checking them against the digest (a layer of
    /// an uncompressed archive is hashed by offset first, then read again: a corrupt blob
    /// never reaches the reader). A layer of a compressed archive cannot be read in place.
    pub fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        let (path, f) = match self.locate(digest)? {
            Some(Located::Memory(d)) => return Ok(Box::new(&d[..])),
            Some(Located::Entry(path, f)) => (path, f),
            None => {
                return Err(Error::MissingEntry {
                    entry: digest.blob_path(),
                    what: format!("blob `{digest}`"),
                });
            }
        };
        if let Some(d) = &f.data {
            check_digest(path, d, digest)?;
            return Ok(Box::new(&d[..]));
        }
        let found = self.tar.hash(path, f, digest.algorithm())?;
        if &found != digest {
            return Err(Error::DigestMismatch { entry: path.into(), found });
        }
        self.tar.reader(path, f)
    }

    /// Resolve a reference as `Layout::resolve` does: an entry of [`Self::index`] by tag
    /// or digest, else (a digest) any blob of the archive; with none, the only entry.
    pub fn resolve(&self, reference: Option<&Reference>) -> Result<Descriptor> {
        let Some(reference) = reference else {
            return match self.index.manifests.as_slice() {
                [only] => Ok(only.clone()),
                [] => Err(ocil_layout::Error::RefNotFound {
                    reference: "(none given)".into(),
                    hint: " (the archive holds no images)".into(),
                }
                .into()),
                many => Err(ocil_layout::Error::AmbiguousRef {
                    reference: "(none given)".into(),
                    candidates: many
                        .iter()
                        .enumerate()
                        .map(|(i, d)| ocil_layout::walk::root_label(i, d))
                        .collect(),
                }
                .into()),
            };
        };
        if let Some((_, d)) = ocil_layout::reference::resolve_entry(&self.index, reference)? {
            return Ok(d);
        }
        let Reference::Digest(digest) = reference else {
            return Err(ocil_layout::Error::RefNotFound {
                reference: reference.to_string(),
                hint: String::new(),
            }
            .into());
        };
        let size = self.blob_size(digest)?.ok_or_else(|| ocil_layout::Error::RefNotFound {
            reference: reference.to_string(),
            hint: " (and no such blob in the archive)".into(),
        })?;
        let mut media_type = MediaType::Other("application/octet-stream".into());
        if size <= JSON_LIMIT
            && let Ok(bytes) = self.read_blob(digest, JSON_LIMIT)
            && let Ok(v) = serde_json::from_slice::<Value>(&bytes)
        {
            media_type = match v.get("mediaType").and_then(Value::as_str) {
                Some(t) => MediaType::from(t),
                None if kind_by_shape(&v) == Some(Kind::Index) => MediaType::OciIndex,
                None if kind_by_shape(&v) == Some(Kind::Manifest) => MediaType::OciManifest,
                None => media_type,
            };
        }
        Ok(Descriptor::new(media_type, digest.clone(), size))
    }

    /// What `ocil inspect` shows for `desc`, read from the archive.
    pub fn inspect(&self, desc: &Descriptor) -> Result<Inspected> {
        // A streamed archive keeps every entry that looks like JSON: the others are blobs.
        if let Some(Located::Entry(_, f)) = self.locate(&desc.digest)?
            && f.data.is_none()
            && !self.seekable()
        {
            return Ok(Inspected::Blob {
                digest: desc.digest.clone(),
                media_type: desc.media_type.to_string(),
                size: desc.size,
            });
        }
        inspect_with(|d, limit| self.read_blob(d, limit), desc)
    }

    /// One row per entry of [`Self::index`], as `ocil ls DIR` shows them after an import:
    /// names, platforms, and the bytes of every blob the entry reaches (each once).
    pub fn summarize_entries(&self) -> Result<Vec<EntrySummary>> {
        let mut rows = Vec::new();
        for (i, d) in self.index.manifests.iter().enumerate() {
            let mut seen = BTreeMap::new();
            let mut missing = BTreeSet::new();
            let root_doc = self.visit(d, &mut seen, &mut missing)?;
            let mut row = EntrySummary::of_entry(i, d);
            let platforms = &mut row.platforms;
            match &root_doc {
                Some((Kind::Index, v)) => {
                    for c in children(v, "manifests") {
                        if let Some(p) = &c.platform {
                            platforms.push(p.display());
                        }
                    }
                }
                Some((Kind::Manifest, v)) if platforms.is_empty() => {
                    if let Some(c) = v.get("config").cloned()
                        && let Ok(c) = serde_json::from_value::<Descriptor>(c)
                        && c.media_type.kind() == Kind::Config
                        && let Ok(bytes) = self.read_blob(&c.digest, JSON_LIMIT)
                        && let Some(p) = config_platform_of(&bytes)
                    {
                        platforms.push(p);
                    }
                }
                _ => {}
            }
            row.size = seen.values().sum();
            row.missing = missing.len();
            rows.push(row);
        }
        Ok(rows)
    }

    /// Walk from `d` (indexes, manifests, configs, layers; not subjects), recording sizes
    /// and missing blobs. Returns the document at `d`, when it is one.
    fn visit(
        &self,
        d: &Descriptor,
        seen: &mut BTreeMap<Digest, u64>,
        missing: &mut BTreeSet<Digest>,
    ) -> Result<Option<(Kind, Value)>> {
        if seen.contains_key(&d.digest) {
            return Ok(None);
        }
        // Sizes as the descriptors say, for missing blobs too (as `ocil ls DIR` counts).
        seen.insert(d.digest.clone(), d.size);
        let Some(size) = self.blob_size(&d.digest)? else {
            let optional = matches!(d.media_type.kind(), Kind::Layer { distributable: false, .. });
            if !optional {
                missing.insert(d.digest.clone());
            }
            return Ok(None);
        };
        let kind = d.media_type.kind();
        let may_be_doc = kind.is_walkable()
            || (size <= JSON_LIMIT
                && !matches!(kind, Kind::Layer { .. } | Kind::Config | Kind::Empty));
        if !may_be_doc {
            return Ok(None);
        }
        let bytes = self.read_blob(&d.digest, JSON_LIMIT)?;
        let Ok(v) = serde_json::from_slice::<Value>(&bytes) else { return Ok(None) };
        let kind = if kind.is_walkable() { kind } else { kind_by_shape(&v).unwrap_or(kind) };
        match kind {
            Kind::Index => {
                for c in children(&v, "manifests") {
                    self.visit(&c, seen, missing)?;
                }
            }
            Kind::Manifest => {
                let mut kids = children(&v, "layers");
                if let Some(c) = v.get("config").cloned()
                    && let Ok(c) = serde_json::from_value::<Descriptor>(c)
                {
                    kids.insert(0, c);
                }
                for c in kids {
                    self.visit(&c, seen, missing)?;
                }
            }
            _ => return Ok(None),
        }
        Ok(Some((kind, v)))
    }
}

enum Located<'a> {
    Memory(&'a Vec<u8>),
    Entry(&'a str, &'a tar_index::IndexedFile),
}

/// The descriptors of a document's array field, skipping what does not parse.
fn children(v: &Value, field: &str) -> Vec<Descriptor> {
    v.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| serde_json::from_value(c.clone()).ok())
        .collect()
}
