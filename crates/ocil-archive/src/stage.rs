//! The one pass over the tar stream: every regular file is streamed into a staged temp file
//! in the destination's blob store and hashed as it lands; `blobs/<alg>/<hex>` entries are
//! checked against their names; small JSON entries are also kept in memory; links are
//! recorded (and resolved later, when something needs them).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};

use ocil_layout::{Algorithm, Compression, Digest, JSON_LIMIT, Layout, StagedBlob};

use crate::path::{normalize_entry, resolve_hardlink, resolve_symlink};
use crate::stream::{Counting, check_end, decompress, entry_end, first_error, read_error};
use crate::{Error, Result};

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
}

/// One entry of the archive.
#[derive(Debug)]
pub(crate) enum Node {
    File(StagedFile),
    Dir,
    Link { target: String },
}

/// Everything the pass found.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) compression: Compression,
    pub(crate) nodes: BTreeMap<String, Node>,
    pub(crate) entries: usize,
}

/// Top-level names that must be regular files.
const PROTECTED: [&str; 4] = ["oci-layout", "index.json", "manifest.json", "repositories"];

fn is_protected(path: &str) -> bool {
    PROTECTED.contains(&path) || path == "blobs" || path.starts_with("blobs/")
}

/// Whether an entry is one of the small JSON documents kept in memory.
fn keep_json(path: &str) -> bool {
    PROTECTED.contains(&path) || (!path.contains('/') && path.ends_with(".json"))
}

/// `blobs/<alg>/<hex>` with a valid digest.
pub(crate) fn blob_name(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    let alg = Algorithm::from_name(alg)?;
    Digest::from_parts(alg, hex).ok()
}

impl Staged {
    /// The regular file at `path`, following symlinks and hardlinks inside the archive.
    pub(crate) fn file(&self, path: &str) -> Result<Option<(&str, &StagedFile)>> {
        let mut cur = path;
        for _ in 0..40 {
            match self.nodes.get_key_value(cur) {
                None if cur == path => return Ok(None),
                None => {
                    return Err(Error::LinkUnresolved {
                        entry: path.into(),
                        target: cur.into(),
                        reason: "is not in the archive",
                    });
                }
                Some((_, Node::Dir)) if cur == path => {
                    return Err(Error::NotAFile { entry: path.into() });
                }
                Some((_, Node::Dir)) => {
                    return Err(Error::LinkUnresolved {
                        entry: path.into(),
                        target: cur.into(),
                        reason: "is a directory",
                    });
                }
                Some((k, Node::File(f))) => return Ok(Some((k.as_str(), f))),
                Some((_, Node::Link { target })) => cur = target,
            }
        }
        Err(Error::LinkUnresolved {
            entry: path.into(),
            target: cur.into(),
            reason: "is part of a chain of links that is too long or loops",
        })
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
                    op: "read",
                    path: f.blob.temp_path(),
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
    let mut archive = tar::Archive::new(counting);
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut last: Option<String> = None;
    let mut last_end = 0u64;
    let mut entries = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let iter = archive.entries().map_err(|e| read_error(e, &last))?;
    for entry in iter {
        let mut entry =
            entry.map_err(|e| if entries == 0 { first_error(e) } else { read_error(e, &last) })?;
        entries += 1;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path = normalize_entry(&raw)
            .map_err(|reason| Error::UnsafeEntry { entry: shown.clone(), reason })?;
        let size = entry.size();
        last_end = entry_end(entry.raw_file_position(), size);
        let ty = entry.header().entry_type();
        let Some(path) = path else {
            // The archive root (`./`): only a directory makes sense there.
            if !ty.is_dir() {
                return Err(Error::UnsafeEntry {
                    entry: shown,
                    reason: "it names the archive root",
                });
            }
            last = Some(shown);
            continue;
        };
        if ty.is_pax_global_extensions() {
            last = Some(path);
            continue;
        }
        let node = if ty.is_file() || ty == tar::EntryType::Continuous {
            if keep_json(&path) && size > JSON_LIMIT {
                return Err(Error::TooLarge { entry: path, size, limit: JSON_LIMIT });
            }
            let expected = blob_name(&path);
            let alg = expected.as_ref().map_or(Algorithm::Sha256, Digest::algorithm);
            let mut w = layout
                .blob_writer_alg(alg)
                .map_err(|source| Error::Stage { entry: path.clone(), source: Box::new(source) })?;
            let mut json = keep_json(&path).then(|| Vec::with_capacity(size as usize));
            let mut head = Vec::with_capacity(8);
            let mut copied = 0u64;
            loop {
                let n = match entry.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(read_error(e, &Some(path.clone()))),
                };
                let chunk = &buf[..n];
                if head.len() < 8 {
                    let take = (8 - head.len()).min(n);
                    head.extend_from_slice(&chunk[..take]);
                }
                if let Some(j) = json.as_mut() {
                    j.extend_from_slice(chunk);
                }
                w.write_all(chunk).map_err(|source| Error::Stage {
                    entry: path.clone(),
                    source: Box::new(ocil_layout::Error::Io {
                        op: "write",
                        path: "blobs".into(),
                        source,
                    }),
                })?;
                copied += n as u64;
            }
            if copied != size {
                return Err(Error::Truncated { entry: Some(path) });
            }
            let blob = w
                .finish_staged()
                .map_err(|source| Error::Stage { entry: path.clone(), source: Box::new(source) })?;
            if let Some(expected) = &expected
                && blob.digest() != expected
            {
                return Err(Error::DigestMismatch { entry: path, found: blob.digest().clone() });
            }
            Node::File(StagedFile { blob, head, json, verified: expected.is_some() })
        } else if ty.is_dir() {
            Node::Dir
        } else if ty.is_symlink() || ty.is_hard_link() {
            let kind = if ty.is_symlink() { "symlink" } else { "hardlink" };
            if is_protected(&path) {
                return Err(Error::LinkNotAllowed { entry: path, kind });
            }
            let target_raw = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            let target = String::from_utf8_lossy(&target_raw).into_owned();
            let resolved = if ty.is_symlink() {
                resolve_symlink(&path, &target)
            } else {
                resolve_hardlink(&target)
            };
            match resolved {
                Some(t) if t != path => Node::Link { target: t },
                Some(_) => {
                    return Err(Error::LinkUnresolved {
                        entry: path.clone(),
                        target: path,
                        reason: "is the link itself",
                    });
                }
                None => return Err(Error::LinkEscapes { entry: path, kind, target }),
            }
        } else {
            let kind = match ty {
                tar::EntryType::Char => "character device",
                tar::EntryType::Block => "block device",
                tar::EntryType::Fifo => "fifo",
                tar::EntryType::GNUSparse => "sparse file",
                _ => "entry of an unknown type",
            };
            return Err(Error::UnsupportedEntry { entry: path, kind });
        };
        match (nodes.get(&path), &node) {
            (None, _) => {}
            (Some(Node::Dir), Node::Dir) => {
                last = Some(path);
                continue;
            }
            (Some(_), _) => return Err(Error::DuplicateEntry { entry: path }),
        }
        nodes.insert(path.clone(), node);
        last = Some(path);
    }
    check_end(consumed.get(), last_end, &last)?;
    Ok(Staged { compression, nodes, entries })
}
