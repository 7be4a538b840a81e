//! What import and the in-place view share: the tree of an archive's entries (files,
//! directories, links), the checks every tar entry passes before it joins the tree, the
//! loop that reads a tar into that tree, link resolution inside the archive, and the
//! [`Source`] the format planners read from.

use std::collections::BTreeMap;
use std::io::Read;

use ocil_layout::{Algorithm, Digest, JSON_LIMIT};

use crate::stream::{entry_end, first_error, read_error};
use crate::{Error, Result};
use ocil_codec::names::{self, Unsafe, resolve_hardlink, resolve_symlink};

/// One entry of the archive; `F` is what is known about a regular file.
#[derive(Debug)]
pub(crate) enum Node<F> {
    File(F),
    Dir,
    Link { target: String },
}

/// Top-level names that must be regular files.
const PROTECTED: [&str; 4] = ["oci-layout", "index.json", "manifest.json", "repositories"];

fn is_protected(path: &str) -> bool {
    PROTECTED.contains(&path) || path == "blobs" || path.starts_with("blobs/")
}

/// Whether an entry is one of the small JSON documents kept in memory (and refused when it
/// is over the cap).
pub(crate) fn keep_json(path: &str) -> bool {
    PROTECTED.contains(&path) || (!path.contains('/') && path.ends_with(".json"))
}

/// `blobs/<alg>/<hex>` with a valid digest.
pub(crate) fn blob_name(path: &str) -> Option<Digest> {
    let rest = path.strip_prefix("blobs/")?;
    let (alg, hex) = rest.split_once('/')?;
    let alg = Algorithm::from_name(alg)?;
    Digest::from_parts(alg, hex).ok()
}

/// Normalise an entry name (`Ok(None)` is the archive root), with the reason for a refusal
/// phrased as archive errors put it.
pub(crate) fn normalize_entry(raw: &[u8]) -> std::result::Result<Option<String>, &'static str> {
    names::normalize_entry(raw).map_err(|u| match u {
        Unsafe::Absolute => "it is an absolute path",
        Unsafe::DotDot => "it has a `..` component",
        _ => "its name is not UTF-8",
    })
}

/// Normalise a path that `manifest.json` names; `..` is allowed while it stays inside.
pub(crate) fn normalize_reference(raw: &str) -> std::result::Result<String, &'static str> {
    names::normalize_reference(raw).ok_or(if raw.starts_with('/') {
        "is an absolute path"
    } else {
        "leads outside the archive"
    })
}

/// A tar entry after the checks.
pub(crate) enum Checked {
    /// Nothing to record (the archive root, a PAX global header).
    Skip,
    /// A regular file.
    File { path: String, size: u64 },
    /// A directory.
    Dir { path: String },
    /// A symlink or hardlink, resolved to a path inside the archive.
    Link { path: String, target: String },
}

/// Check one entry: a safe name, a type an image archive may hold, no link in place of a
/// layout file or leading outside the archive, no JSON document over the cap.
pub(crate) fn check_entry<R: Read>(entry: &tar::Entry<'_, R>) -> Result<(Checked, String)> {
    let raw = entry.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let path = normalize_entry(&raw)
        .map_err(|reason| Error::UnsafeEntry { entry: shown.clone(), reason })?;
    let ty = entry.header().entry_type();
    let Some(path) = path else {
        // The archive root (`./`): only a directory makes sense there.
        if !ty.is_dir() {
            return Err(Error::UnsafeEntry { entry: shown, reason: "it names the archive root" });
        }
        return Ok((Checked::Skip, shown));
    };
    if ty.is_pax_global_extensions() {
        return Ok((Checked::Skip, path));
    }
    let size = entry.size();
    let checked = if ty.is_file() || ty == tar::EntryType::Continuous {
        if keep_json(&path) && size > JSON_LIMIT {
            return Err(Error::TooLarge { entry: path, size, limit: JSON_LIMIT });
        }
        Checked::File { path: path.clone(), size }
    } else if ty.is_dir() {
        Checked::Dir { path: path.clone() }
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
            Some(t) if t != path => Checked::Link { path: path.clone(), target: t },
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
    Ok((checked, path))
}

/// Add a node; a path seen before is a duplicate (a directory repeated is allowed).
pub(crate) fn insert<F>(
    nodes: &mut BTreeMap<String, Node<F>>,
    path: String,
    node: Node<F>,
) -> Result<()> {
    match (nodes.get(&path), &node) {
        (None, _) => {
            nodes.insert(path, node);
            Ok(())
        }
        (Some(Node::Dir), Node::Dir) => Ok(()),
        (Some(_), _) => Err(Error::DuplicateEntry { entry: path }),
    }
}

/// An archive's entries as read by [`read_tree`].
#[derive(Debug)]
pub(crate) struct Tree<F> {
    /// Every entry kept, by its normalised path.
    pub(crate) nodes: BTreeMap<String, Node<F>>,
    /// How many tar entries were read (skipped ones included).
    pub(crate) entries: usize,
    /// The last entry read, to name in errors.
    pub(crate) last: Option<String>,
    /// Where the last entry's data ends (padded), for [`crate::stream::check_end`].
    pub(crate) last_end: u64,
}

/// Read every entry of a tar, each checked by [`check_entry`] and added by [`insert`]:
/// directories and links as they are, each regular file as `file` makes it from the entry
/// (positioned at its data), its path and its size.
pub(crate) fn read_tree<R: Read, F>(
    entries: tar::Entries<'_, R>,
    mut file: impl FnMut(&mut tar::Entry<'_, R>, &str, u64) -> Result<F>,
) -> Result<Tree<F>> {
    let mut tree = Tree { nodes: BTreeMap::new(), entries: 0, last: None, last_end: 0 };
    for entry in entries {
        let mut entry = entry.map_err(|e| {
            if tree.entries == 0 { first_error(e) } else { read_error(e, &tree.last) }
        })?;
        tree.entries += 1;
        tree.last_end = entry_end(entry.raw_file_position(), entry.size());
        let (checked, shown) = check_entry(&entry)?;
        let (path, node) = match checked {
            Checked::Skip => {
                tree.last = Some(shown);
                continue;
            }
            Checked::Dir { path } => (path, Node::Dir),
            Checked::Link { path, target } => (path, Node::Link { target }),
            Checked::File { path, size } => {
                let f = file(&mut entry, &path, size)?;
                (path, Node::File(f))
            }
        };
        insert(&mut tree.nodes, path.clone(), node)?;
        tree.last = Some(path);
    }
    Ok(tree)
}

/// The regular file at `path`, following symlinks and hardlinks inside the archive.
pub(crate) fn resolve<'a, F>(
    nodes: &'a BTreeMap<String, Node<F>>,
    path: &str,
) -> Result<Option<(&'a str, &'a F)>> {
    let mut cur = path;
    for _ in 0..40 {
        match nodes.get_key_value(cur) {
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

/// What the planners need to know about a regular file.
#[derive(Debug, Clone)]
pub(crate) struct FileFacts {
    /// Its digest: of its bytes (import, and the view for files not named by digest), or
    /// the digest its `blobs/<alg>/<hex>` name says (the view checks it when it reads).
    pub(crate) digest: Digest,
    /// Its size.
    pub(crate) size: u64,
    /// Its first bytes (up to 8), to sniff compression.
    pub(crate) head: Vec<u8>,
}

/// An archive as the format planners read it: staged for import, or indexed in place.
pub(crate) trait Source {
    /// Whether an entry (of any type) has this normalised path.
    fn has(&self, path: &str) -> bool;
    /// The regular file at `path` (after links): its real path and facts.
    fn file(&self, path: &str) -> Result<Option<(String, FileFacts)>>;
    /// The bytes of a file, capped at the JSON limit.
    fn read_json(&self, path: &str) -> Result<Option<Vec<u8>>>;
    /// The facts of the file at `path` (after links) once decompressed, when it is an xz or
    /// bzip2 candidate ([`crate::plain::candidate`]); an error when it does not decompress.
    fn decompressed(&self, path: &str) -> Result<Option<FileFacts>>;
}
