//! An archive read in place, for `ocil ls FILE`, `ocil inspect FILE[:REF|@DIGEST]` and
//! `ocil copy FILE DIR` (a [`Store`], so `ocil_inspect` and `ocil_transfer` read it as they
//! read a layout):
//! indexed once ([`crate::tar_index`]), planned by the same code as import (so a
//! docker-save archive shows the manifests, tags and digests an import would give), and
//! read by offset as needed. Nothing is written anywhere.
//!
//! The index an import into an empty layout would write is [`ArchiveView::index`]; blobs
//! are read through [`ArchiveView::read_blob`], which checks every blob against its digest.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;

use cap_std::fs::File;
use ocil_layout::{Descriptor, Digest, Index, JSON_LIMIT, Reference, Store};

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
    /// docker-save layers whose blob is their bytes decompressed (xz, bzip2: see
    /// [`crate::plain`]): digest of the decompressed bytes -> entry.
    decompressed: HashMap<Digest, String>,
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

    fn decompressed(&self, path: &str) -> Result<Option<FileFacts>> {
        let Some((real, f)) = source::resolve(&self.nodes, path)? else { return Ok(None) };
        self.plain_facts(real, f)
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
        ArchiveView::open_with(file, &ocil_layout::progress::Silent)
    }

    /// [`ArchiveView::open`], reporting the one pass over a compressed archive (or a pipe)
    /// to `progress`: a phase `read` over the uncompressed bytes, whose total is not known.
    pub fn open_with(
        file: File,
        progress: &dyn ocil_layout::progress::Progress,
    ) -> Result<ArchiveView> {
        let tar = tar_index::index(file, progress)?;
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
        let mut decompressed = HashMap::new();
        for path in planned.docker_files.concat() {
            if planned.decompressed.contains_key(&path) {
                if let Some(facts) = tar.decompressed(&path)? {
                    decompressed.insert(facts.digest, path);
                }
            } else if let Some((real, facts)) = tar.file(&path)? {
                by_digest.insert(facts.digest, real);
            }
        }
        Ok(ArchiveView { tar, format: planned.format, index, documents, by_digest, decompressed })
    }

    /// The archive's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The archive's compression.
    pub fn compression(&self) -> ocil_codec::Format {
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
        if let Some(path) = self.decompressed.get(digest)
            && let Some((real, f)) = source::resolve(&self.tar.nodes, path)?
            && let Some(facts) = self.tar.plain_facts(real, f)?
        {
            return Ok(Some(Located::Plain(real, f, facts)));
        }
        Ok(None)
    }

    /// Up to `limit` bytes of a decompressed layer (by offset: a streamed archive keeps
    /// none), refused over the limit as any entry is.
    fn read_plain(
        &self,
        path: &str,
        f: &tar_index::IndexedFile,
        facts: &FileFacts,
        limit: u64,
    ) -> Result<Vec<u8>> {
        if facts.size > limit {
            return Err(Error::TooLarge { entry: path.into(), size: facts.size, limit });
        }
        let mut bytes = Vec::with_capacity(facts.size as usize);
        self.tar
            .plain_reader(path, f)?
            .take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| undecodable(path, f, e))?;
        Ok(bytes)
    }

    /// A blob's size, when the archive holds it.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        Ok(self.locate(digest)?.map(|l| match l {
            Located::Memory(d) => d.len() as u64,
            Located::Entry(_, f) => f.size,
            Located::Plain(_, _, facts) => facts.size,
        }))
    }

    /// A blob's bytes (at most `limit`), not checked: the walk's read.
    fn read_unverified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        match self.locate(digest)? {
            Some(Located::Memory(d)) => Ok(d.clone()),
            Some(Located::Entry(path, f)) => self.tar.read(path, f, limit),
            Some(Located::Plain(path, f, facts)) => self.read_plain(path, f, &facts, limit),
            None => Err(Error::MissingEntry {
                entry: digest.blob_path(),
                what: format!("blob `{digest}`"),
            }),
        }
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
            Some(Located::Plain(path, f, facts)) => {
                let bytes = self.read_plain(path, f, &facts, limit)?;
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
    /// never reaches the reader; a layer stored decompressed is decompressed twice). A layer
    /// of a compressed archive cannot be read in place.
    pub fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        let (path, f) = match self.locate(digest)? {
            Some(Located::Memory(d)) => return Ok(Box::new(&d[..])),
            Some(Located::Entry(path, f)) => (path, f),
            Some(Located::Plain(path, f, _)) => {
                let mut h = digest.algorithm().hasher();
                let mut reader = self.tar.plain_reader(path, f)?;
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => h.update(&buf[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(undecodable(path, f, e)),
                    }
                }
                drop(reader);
                let found = h.finish();
                if &found != digest {
                    return Err(Error::DigestMismatch { entry: path.into(), found });
                }
                return self.tar.plain_reader(path, f);
            }
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

    /// Read every document the images reach (indexes, manifests; configs too), checked
    /// against its digest: an archive whose documents do not match their names, or that
    /// cannot be read, is refused here with the error import would give, before anything
    /// is shown of it. (The walk that `ocil ls` shows reads without checking, as it does in
    /// a layout.)
    pub fn verify_documents(&self) -> Result<()> {
        use ocil_layout::walk::{self, LeafCheck, WalkOptions};
        let opts = WalkOptions {
            follow_subject: false,
            sniff_unknown: true,
            leaves: LeafCheck::Stat,
            keep_bytes: false,
            keep_documents: false,
        };
        let w = walk::walk(self, &self.index.manifests, opts);
        for node in w.nodes() {
            let kind = node.media_type.kind();
            let document =
                node.doc.is_some() || kind.is_walkable() || kind == ocil_layout::Kind::Config;
            if document && self.blob_size(&node.digest)?.is_some() {
                self.read_blob(&node.digest, JSON_LIMIT)?;
            }
        }
        Ok(())
    }

    /// Resolve a reference as `Layout::resolve` does: an entry of [`Self::index`] by tag
    /// or digest, else (a digest) any blob of the archive; with none, the only entry.
    pub fn resolve(&self, reference: Option<&Reference>) -> Result<Descriptor> {
        Ok(ocil_layout::store::resolve(self, &self.index, reference)?)
    }
}

/// The archive as a [`Store`]: the images an import would give, read in place.
impl Store for ArchiveView {
    fn kind(&self) -> &'static str {
        "archive"
    }

    fn stat_blob(&self, digest: &Digest) -> ocil_layout::Result<Option<u64>> {
        self.blob_size(digest).map_err(to_layout)
    }

    fn peek_blob(&self, digest: &Digest, n: usize) -> ocil_layout::Result<Vec<u8>> {
        let bytes = match self.locate(digest).map_err(to_layout)? {
            Some(Located::Memory(d)) => &d[..],
            Some(Located::Plain(path, f, facts)) => {
                // A streamed archive kept the first bytes only.
                if self.tar.file.is_none() || n <= facts.head.len() {
                    return Ok(facts.head[..n.min(facts.head.len())].to_vec());
                }
                let limit = (n as u64).min(facts.size);
                let mut bytes = Vec::with_capacity(n);
                self.tar
                    .plain_reader(path, f)
                    .map_err(to_layout)?
                    .take(limit)
                    .read_to_end(&mut bytes)
                    .map_err(|e| to_layout(undecodable(path, f, e)))?;
                return Ok(bytes);
            }
            Some(Located::Entry(_, f)) => match &f.data {
                Some(d) => &d[..],
                // Not kept: a layer of a streamed archive, or any blob of a seekable one.
                None if self.tar.file.is_some() && f.size <= JSON_LIMIT => {
                    let mut bytes = self.read_unverified(digest, JSON_LIMIT).map_err(to_layout)?;
                    bytes.truncate(n);
                    return Ok(bytes);
                }
                None => &f.head[..],
            },
            None => return Err(ocil_layout::Error::BlobMissing { digest: digest.clone() }),
        };
        Ok(bytes[..n.min(bytes.len())].to_vec())
    }

    fn read_blob_unverified(&self, digest: &Digest, limit: u64) -> ocil_layout::Result<Vec<u8>> {
        self.read_unverified(digest, limit).map_err(to_layout)
    }

    fn read_blob(&self, digest: &Digest, limit: u64) -> ocil_layout::Result<Vec<u8>> {
        ArchiveView::read_blob(self, digest, limit).map_err(to_layout)
    }

    fn open_blob_verified(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> ocil_layout::Result<Box<dyn Read + '_>> {
        if let Some(expected) = expected_size {
            let found = self.stat_blob(digest)?;
            if let Some(found) = found
                && found != expected
            {
                return Err(ocil_layout::Error::SizeMismatch {
                    path: digest.blob_path(),
                    expected,
                    found,
                });
            }
        }
        self.open_blob(digest).map_err(to_layout)
    }

    fn read_index(&self) -> ocil_layout::Result<Index> {
        Ok(self.index.clone())
    }

    fn blob_digests(&self) -> ocil_layout::Result<Vec<Digest>> {
        let mut out: BTreeSet<Digest> = self.documents.keys().cloned().collect();
        out.extend(self.by_digest.keys().cloned());
        out.extend(self.decompressed.keys().cloned());
        out.extend(self.tar.nodes.keys().filter_map(|p| blob_name(p)));
        Ok(out.into_iter().collect())
    }
}

/// An archive error as a store error: a missing blob and a blob over the cap keep their
/// meaning (the walk tells them apart); the rest keeps the archive's message as its source.
fn to_layout(e: Error) -> ocil_layout::Error {
    match e {
        Error::MissingEntry { entry, what } => match blob_name(&entry) {
            Some(digest) => ocil_layout::Error::BlobMissing { digest },
            None => ocil_layout::Error::Store {
                kind: "archive",
                source: Box::new(Error::MissingEntry { entry, what }),
            },
        },
        Error::TooLarge { entry, size, limit } => {
            ocil_layout::Error::TooLarge { path: entry, size, limit }
        }
        Error::Layout(e) => *e,
        e => ocil_layout::Error::Store { kind: "archive", source: Box::new(e) },
    }
}

enum Located<'a> {
    Memory(&'a Vec<u8>),
    Entry(&'a str, &'a tar_index::IndexedFile),
    /// A layer whose blob is the entry's bytes decompressed.
    Plain(&'a str, &'a tar_index::IndexedFile, FileFacts),
}

/// A decompressed layer that failed to read: the archive's bytes, or their compression.
fn undecodable(path: &str, f: &tar_index::IndexedFile, e: std::io::Error) -> Error {
    Error::Undecodable {
        entry: path.into(),
        format: ocil_codec::Format::sniff(&f.head).as_str(),
        source: e,
    }
}
