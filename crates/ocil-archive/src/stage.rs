//! The one pass over the tar stream: every regular file is streamed into a staged temp file
//! in the destination's blob store and hashed as it lands; `blobs/<alg>/<hex>` entries are
//! checked against their names; small JSON entries are also kept in memory; links are
//! recorded (and resolved later, when something needs them).
//!
//! A `blobs/<alg>/<hex>` entry whose blob the destination already holds (same size) is only
//! hashed, not written again: re-importing an archive, or the next volume of a bundle, costs
//! no disk beyond what is new. Nothing is ever extracted anywhere else first: the staged
//! temp files are the blobs to be, in the destination's own store.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use cap_std::fs::Dir;
use ocil_layout::{Algorithm, BlobWriter, Digest, Hasher, JSON_LIMIT, Layout, StagedBlob};

use crate::plain::{self, Decoded, Fault, Measure};
use crate::source::{self, FileFacts, Source, blob_name, keep_json};
use crate::stream::{Counting, check_end, decompress, read_error, read_up_to};
use crate::{Error, Result};
use ocil_codec::tar_fault::TarInput;

/// Where a file's bytes are: staged, or already in the destination.
#[derive(Debug)]
pub(crate) enum Landing {
    /// A locked temp file in the destination's blob store.
    Staged(StagedBlob),
    /// A `blobs/` entry the destination held (same digest and size) when it was read: its
    /// bytes were hashed and checked, not written.
    Present {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
    },
}

impl Landing {
    /// The digest of the bytes.
    pub(crate) fn digest(&self) -> &Digest {
        match self {
            Landing::Staged(b) => b.digest(),
            Landing::Present { digest, .. } => digest,
        }
    }

    /// Their size.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Landing::Staged(b) => b.size(),
            Landing::Present { size, .. } => *size,
        }
    }
}

/// A regular file of the archive, staged in the destination.
#[derive(Debug)]
pub(crate) struct StagedFile {
    /// The bytes, hashed (sha256, or the algorithm of its `blobs/<alg>/` directory).
    pub(crate) blob: Landing,
    /// The first bytes, to sniff compression.
    pub(crate) head: Vec<u8>,
    /// The bytes, for the JSON entries kept in memory.
    pub(crate) json: Option<Vec<u8>>,
    /// For `blobs/<alg>/<hex>` entries: verified against the name.
    pub(crate) verified: bool,
    /// For an xz or bzip2 candidate ([`plain::candidate`]): its bytes decompressed.
    pub(crate) plain: Option<Decoded<StagedPlain>>,
}

/// A file's bytes decompressed, staged in the destination beside the raw ones.
#[derive(Debug)]
pub(crate) struct StagedPlain {
    /// The decompressed bytes, hashed (sha256).
    pub(crate) blob: StagedBlob,
    /// Their first bytes.
    pub(crate) head: Vec<u8>,
}

/// One entry of the archive.
pub(crate) type Node = source::Node<StagedFile>;

/// Everything the pass found.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) compression: ocil_codec::Format,
    pub(crate) nodes: BTreeMap<String, Node>,
    pub(crate) entries: usize,
    /// The destination, to read the documents it already held.
    dest: Dir,
}

impl Staged {
    /// The regular file at `path`, following symlinks and hardlinks inside the archive.
    pub(crate) fn file(&self, path: &str) -> Result<Option<(&str, &StagedFile)>> {
        source::resolve(&self.nodes, path)
    }

    /// The bytes of a file (capped at the JSON limit): from memory, or from its staged copy.
    pub(crate) fn read_json(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some((real, f)) = self.file(path)? else { return Ok(None) };
        if let Some(bytes) = &f.json {
            return Ok(Some(bytes.clone()));
        }
        if f.blob.size() > JSON_LIMIT {
            return Err(Error::TooLarge {
                entry: real.into(),
                size: f.blob.size(),
                limit: JSON_LIMIT,
            });
        }
        let stage_err = |source: ocil_layout::Error| Error::Stage {
            entry: real.into(),
            source: Box::new(source),
        };
        let blob = match &f.blob {
            Landing::Staged(blob) => blob,
            Landing::Present { digest, .. } => {
                let dir = self.dest.try_clone().map_err(|source| ocil_layout::Error::Io {
                    op: "open",
                    path: ".".into(),
                    source,
                });
                let layout = Layout::open_unchecked(dir.map_err(stage_err)?);
                return layout.read_blob(digest, JSON_LIMIT).map(Some).map_err(stage_err);
            }
        };
        let mut bytes = Vec::with_capacity(blob.size() as usize);
        blob.open().map_err(stage_err)?.read_to_end(&mut bytes).map_err(|source| {
            stage_err(ocil_layout::Error::Io {
                op: "read the staged",
                path: blob.blob_path(),
                source,
            })
        })?;
        Ok(Some(bytes))
    }

    /// Take a staged file out (to commit it).
    pub(crate) fn take(&mut self, path: &str) -> Option<StagedFile> {
        match self.nodes.remove(path) {
            Some(Node::File(f)) => Some(f),
            Some(other) => {
                self.nodes.insert(path.to_owned(), other);
                None
            }
            None => None,
        }
    }
}

/// Read the whole archive, staging its files in `layout`; `seen` is told of each file as
/// soon as it is staged (and may stop the import there, before the rest is read).
pub(crate) fn stage(
    reader: impl Read,
    layout: &Layout,
    mut seen: impl FnMut(&str, &StagedFile) -> Result<()>,
) -> Result<Staged> {
    let dest = layout.dir().try_clone().map_err(|source| ocil_layout::Error::Io {
        op: "open",
        path: ".".into(),
        source,
    })?;
    let (compression, stream) = decompress(reader)?;
    let (counting, consumed) = Counting::new(stream, None);
    let mut archive = tar::Archive::new(TarInput::new(counting));
    let mut buf = vec![0u8; 256 * 1024];
    let iter = archive.entries().map_err(|e| read_error(e, &None))?;
    let tree = source::read_tree(iter, |entry, path, size| {
        let file = stage_file(entry, path, size, layout, &mut buf)?;
        seen(path, &file)?;
        Ok(file)
    })?;
    check_end(consumed.get(), tree.last_end, &tree.last)?;
    Ok(Staged { compression, nodes: tree.nodes, entries: tree.entries, dest })
}

/// Stream one regular file into a staged blob, hashing it and keeping its head (and its
/// bytes, for the JSON documents); an xz or bzip2 candidate ([`plain::candidate`]) is also
/// staged decompressed, in the same pass.
fn stage_file(
    entry: &mut impl Read,
    path: &str,
    size: u64,
    layout: &Layout,
    buf: &mut [u8],
) -> Result<StagedFile> {
    let expected = blob_name(path);
    let alg = expected.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
    let stage_err =
        |source: ocil_layout::Error| Error::Stage { entry: path.into(), source: Box::new(source) };
    let mut head = [0u8; 8];
    let n = read_up_to(entry, &mut head).map_err(|e| read_error(e, &Some(path.into())))?;
    let head = head[..n].to_vec();
    let format = plain::candidate(path, &head);
    // A blob the destination holds is checked as it passes, not written again.
    let present = match &expected {
        Some(d) if format.is_none() => layout.stat_blob(d).map_err(stage_err)? == Some(size),
        _ => false,
    };
    let out = if present {
        Out::Hash(alg.hasher())
    } else {
        Out::Writer(layout.blob_writer_alg(alg).map_err(stage_err)?)
    };
    let mut sink =
        Sink { out, json: keep_json(path).then(|| Vec::with_capacity(size as usize)), copied: 0 };
    let mut plain = match format {
        Some(_) => Some(Measure::new(layout.blob_writer().map_err(stage_err)?)),
        None => None,
    };
    let input = io::Cursor::new(&head[..]).chain(entry);
    let passed = plain::pass(input, &mut sink, plain.as_mut().map(|p| p as &mut dyn Write), buf);
    let undecodable = passed.map_err(|fault| match fault {
        Fault::Input(e) => read_error(e, &Some(path.into())),
        Fault::Output(source) => {
            stage_err(ocil_layout::Error::Io { op: "write", path: "blobs".into(), source })
        }
    })?;
    if sink.copied != size {
        return Err(Error::Truncated { entry: Some(path.into()) });
    }
    let blob = match sink.out {
        Out::Writer(w) => Landing::Staged(w.finish_staged().map_err(stage_err)?),
        Out::Hash(h) => Landing::Present { digest: h.finish(), size },
    };
    if let Some(expected) = &expected
        && blob.digest() != expected
    {
        return Err(Error::DigestMismatch { entry: path.into(), found: blob.digest().clone() });
    }
    let plain = match (format, plain, undecodable) {
        (Some(format), Some(p), None) => {
            let blob = p.inner.finish_staged().map_err(stage_err)?;
            Some(Decoded { format, result: Ok(StagedPlain { blob, head: p.head }) })
        }
        (Some(format), _, Some(e)) => Some(Decoded { format, result: Err(e.to_string()) }),
        _ => None,
    };
    Ok(StagedFile { blob, head, json: sink.json, verified: expected.is_some(), plain })
}

/// Where a file's raw bytes go: its staged blob (or only a hasher, for a blob the
/// destination holds), and memory for a JSON document.
struct Sink {
    out: Out,
    json: Option<Vec<u8>>,
    copied: u64,
}

enum Out {
    Writer(BlobWriter),
    Hash(Hasher),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.out {
            Out::Writer(w) => w.write_all(buf)?,
            Out::Hash(h) => h.update(buf),
        }
        if let Some(j) = self.json.as_mut() {
            j.extend_from_slice(buf);
        }
        self.copied += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.out {
            Out::Writer(w) => w.flush(),
            Out::Hash(_) => Ok(()),
        }
    }
}

impl Source for Staged {
    fn has(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    fn file(&self, path: &str) -> Result<Option<(String, FileFacts)>> {
        Ok(Staged::file(self, path)?.map(|(real, f)| {
            let facts = FileFacts {
                digest: f.blob.digest().clone(),
                size: f.blob.size(),
                head: f.head.clone(),
            };
            (real.to_owned(), facts)
        }))
    }

    fn read_json(&self, path: &str) -> Result<Option<Vec<u8>>> {
        Staged::read_json(self, path)
    }

    fn decompressed(&self, path: &str) -> Result<Option<FileFacts>> {
        let Some((real, f)) = Staged::file(self, path)? else { return Ok(None) };
        let Some(decoded) = &f.plain else { return Ok(None) };
        let p = decoded.get(real)?;
        let digest = p.blob.digest().clone();
        Ok(Some(FileFacts { digest, size: p.blob.size(), head: p.head.clone() }))
    }
}
