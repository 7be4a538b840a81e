//! The one pass over the tar stream: every regular file is streamed into a staged temp file
//! in the destination's blob store and hashed as it lands; `blobs/<alg>/<hex>` entries are
//! checked against their names; small JSON entries are also kept in memory; links are
//! recorded (and resolved later, when something needs them).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use ocil_layout::{Algorithm, BlobWriter, Digest, JSON_LIMIT, Layout, StagedBlob};

use crate::plain::{self, Decoded, Fault, Measure};
use crate::source::{self, FileFacts, Source, blob_name, keep_json};
use crate::stream::{Counting, check_end, decompress, read_error, read_up_to};
use crate::{Error, Result};
use ocil_codec::tar_fault::TarInput;

/// A regular file of the archive, staged in the destination.
#[derive(Debug)]
pub(crate) struct StagedFile {
    /// The bytes, hashed (sha256, or the algorithm of its `blobs/<alg>/` directory).
    pub(crate) blob: StagedBlob,
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
        let mut bytes = Vec::with_capacity(f.blob.size() as usize);
        f.blob
            .open()
            .map_err(|source| Error::Stage { entry: real.into(), source: Box::new(source) })?
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Stage {
                entry: real.into(),
                source: Box::new(ocil_layout::Error::Io {
                    op: "read the staged",
                    path: f.blob.blob_path(),
                    source,
                }),
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

/// Read the whole archive, staging its files in `layout`.
pub(crate) fn stage(reader: impl Read, layout: &Layout) -> Result<Staged> {
    let (compression, stream) = decompress(reader)?;
    let (counting, consumed) = Counting::new(stream, None);
    let mut archive = tar::Archive::new(TarInput::new(counting));
    let mut buf = vec![0u8; 256 * 1024];
    let iter = archive.entries().map_err(|e| read_error(e, &None))?;
    let tree = source::read_tree(iter, |entry, path, size| {
        stage_file(entry, path, size, layout, &mut buf)
    })?;
    check_end(consumed.get(), tree.last_end, &tree.last)?;
    Ok(Staged { compression, nodes: tree.nodes, entries: tree.entries })
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
    let mut sink = Sink {
        blob: layout.blob_writer_alg(alg).map_err(stage_err)?,
        json: keep_json(path).then(|| Vec::with_capacity(size as usize)),
        copied: 0,
    };
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
    let blob = sink.blob.finish_staged().map_err(stage_err)?;
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

/// Where a file's raw bytes go: its staged blob, and memory for a JSON document.
struct Sink {
    blob: BlobWriter,
    json: Option<Vec<u8>>,
    copied: u64,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.blob.write_all(buf)?;
        if let Some(j) = self.json.as_mut() {
            j.extend_from_slice(buf);
        }
        self.copied += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.blob.flush()
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
