//! Local files and directories placed at chosen paths of one new layer (`ocil append --file
//! SRC:DEST`, as `umoci insert` and `crane append` do).
//!
//! - A file becomes one entry at DEST, with its permission bits; a directory becomes an
//!   entry `DEST/` with its own mode, then what it holds, packed as [`super::dir`] packs a
//!   directory (sorted, symlinks kept as symlinks, hard links inside it kept, the same
//!   mtime and owners).
//! - DEST is a path inside the image: a leading `/` is optional, `.` and empty components
//!   go, `..` is resolved by name and may not climb above the root ([`layer_path`]). The
//!   root itself is refused: a directory whose contents go at the root is a plain `PATH`
//!   layer.
//! - The parent directories of DEST are not stored: unpackers create missing ones, and a
//!   directory the image already has keeps its mode and owner (an entry for it would
//!   replace them).
//! - Several sources go into the one layer in order of DEST; two DESTs that are the same
//!   path, or one inside the other, are refused (which one wins would depend on the
//!   unpacker).

use std::io::Write;
use std::path::Path;

use cap_std::fs::{Dir, File};
use ocil_layout::{Compression, Layout};

use super::dir::Packer;
use super::{DirOptions, LayerSink, StagedLayer};
use crate::Error;

/// What is placed at a path of the layer: an open file or directory.
#[derive(Debug)]
pub enum Source {
    /// A regular file (its bytes and mode).
    File(File),
    /// A directory (its mode, and everything it holds).
    Dir(Dir),
}

/// One source and where it goes.
#[derive(Debug)]
pub struct Placed {
    /// The path inside the image, as [`layer_path`] gives it (relative, normalised).
    pub dest: String,
    /// What goes there.
    pub source: Source,
}

/// Normalise a destination path inside the image: relative, without `.`, empty or `..`
/// components. Refused: the root itself, and a `..` that climbs above it.
pub fn layer_path(dest: &str) -> Result<String, Error> {
    let bad = |reason: &str| Error::InvalidValue {
        what: "destination",
        value: dest.into(),
        reason: reason.into(),
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(bad("its `..` climbs above the image's root"));
                }
            }
            c => parts.push(c),
        }
    }
    if parts.is_empty() {
        return Err(bad(
            "it is the image's root: give a path inside it (to put a directory's contents at the root, append the directory as PATH)",
        ));
    }
    Ok(parts.join("/"))
}

/// Pack `files` as one tar into `out`, in order of destination; returns warnings (skipped
/// sockets inside directories).
pub fn pack_files(
    mut files: Vec<Placed>,
    out: impl Write,
    opts: &DirOptions,
) -> Result<Vec<String>, Error> {
    files.sort_by(|a, b| a.dest.as_bytes().cmp(b.dest.as_bytes()));
    for (i, a) in files.iter().enumerate() {
        for b in &files[i + 1..] {
            let inside = |outer: &str, inner: &str| {
                inner.strip_prefix(outer).is_some_and(|rest| rest.starts_with('/'))
            };
            if a.dest == b.dest || inside(&a.dest, &b.dest) || inside(&b.dest, &a.dest) {
                return Err(Error::InvalidValue {
                    what: "destination",
                    value: format!("/{}", b.dest),
                    reason: format!(
                        "it overlaps `/{}`: give each source its own path (not one inside another)",
                        a.dest
                    ),
                });
            }
        }
    }
    let mut packer = Packer::new(out, opts);
    for placed in files {
        let path = Path::new(&placed.dest);
        let stat = |e| Error::Source { op: "stat", path: placed.dest.clone(), source: e };
        match placed.source {
            Source::File(file) => {
                let meta = file.metadata().map_err(stat)?;
                if !meta.is_file() {
                    return Err(Error::Unsupported {
                        path: placed.dest.clone(),
                        kind: "special file",
                        reason: "a source is a regular file or a directory",
                    });
                }
                packer.file_at(path, &meta, || Ok(file))?;
            }
            Source::Dir(dir) => {
                let meta = dir.dir_metadata().map_err(stat)?;
                packer.dir_at(&dir, path, &meta)?;
            }
        }
    }
    packer.finish()
}

/// Pack `files` into a staged layer blob of `layout`.
pub fn pack_files_layer(
    layout: &Layout,
    files: Vec<Placed>,
    opts: &DirOptions,
    compression: Compression,
) -> Result<StagedLayer, Error> {
    let mut sink = LayerSink::new(layout, compression)?;
    let warnings = pack_files(files, &mut sink, opts)?;
    sink.finish(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations() {
        assert_eq!(layer_path("/usr/bin/app").unwrap(), "usr/bin/app");
        assert_eq!(layer_path("usr//bin/./app/").unwrap(), "usr/bin/app");
        assert_eq!(layer_path("/a/../b").unwrap(), "b");
        for bad in ["", "/", ".", "/./", "a/..", "../etc/passwd", "/a/../../b"] {
            assert!(layer_path(bad).is_err(), "{bad:?}");
        }
    }
}
