//! A directory packed as a reproducible tar.
//!
//! - Entries in `tar --sort=name` order: each directory's entries sorted by name (bytes),
//!   a directory before what it holds; names relative, directories with a trailing `/`; the
//!   directory itself has no entry.
//! - Every mtime is [`DirOptions::mtime`]; uid/gid 0 and empty user/group names unless
//!   [`DirOptions::keep_owner`] (then the numeric ids, names still empty); no xattrs, no
//!   atime/ctime; permission bits kept, setuid/setgid/sticky included.
//! - Symlinks are stored as symlinks, never followed; a file linked several times inside the
//!   tree is stored once, the other names as tar hard links to the first name.
//! - FIFOs are stored; sockets are skipped with a warning (GNU tar does the same: a socket
//!   cannot be recreated from an archive); block and character devices are refused (an
//!   unprivileged unpacker cannot create them, and a layer that needs them is better built
//!   from a tar made as root).
//! - Long names and link targets use GNU long-name entries (`././@LongLink`).
//! - The source is read through a `cap_std` directory: nothing outside it is opened, and a
//!   file or directory swapped for something else while it is packed is an error.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use cap_std::fs::{Dir, FileTypeExt, Metadata, MetadataExt};
use ocil_layout::{Compression, Layout};

use super::{LayerSink, StagedLayer};
use crate::Error;

/// How a directory is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirOptions {
    /// The mtime of every entry (seconds since the epoch).
    pub mtime: u64,
    /// Keep numeric uid/gid instead of 0.
    pub keep_owner: bool,
}

impl Default for DirOptions {
    fn default() -> DirOptions {
        DirOptions { mtime: super::DEFAULT_MTIME, keep_owner: false }
    }
}

/// Pack `src` as a tar into `out`; returns warnings (skipped sockets).
pub fn pack_dir(src: &Dir, out: impl Write, opts: &DirOptions) -> Result<Vec<String>, Error> {
    let mut packer = Packer::new(out, opts);
    packer.dir(src, Path::new(""))?;
    packer.finish()
}

/// Pack `src` into a staged layer blob of `layout`.
pub fn pack_dir_layer(
    layout: &Layout,
    src: &Dir,
    opts: &DirOptions,
    compression: Compression,
) -> Result<StagedLayer, Error> {
    let mut sink = LayerSink::new(layout, compression)?;
    let warnings = pack_dir(src, &mut sink, opts)?;
    sink.finish(warnings)
}

/// The tar writer of a packed directory (and of files placed at chosen paths,
/// [`super::files`]): headers from metadata as the module doc says, hard links remembered
/// across everything it writes.
pub(super) struct Packer<W: Write> {
    builder: tar::Builder<W>,
    opts: DirOptions,
    /// (dev, ino) of files with several links -> the first name stored.
    links: HashMap<(u64, u64), PathBuf>,
    warnings: Vec<String>,
}

fn shown(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl<W: Write> Packer<W> {
    pub(super) fn new(out: W, opts: &DirOptions) -> Packer<W> {
        let mut builder = tar::Builder::new(out);
        builder.mode(tar::HeaderMode::Deterministic);
        Packer { builder, opts: *opts, links: HashMap::new(), warnings: Vec::new() }
    }

    /// Write the end-of-archive blocks; the warnings (skipped sockets).
    pub(super) fn finish(mut self) -> Result<Vec<String>, Error> {
        self.builder.finish().map_err(Error::Write)?;
        Ok(self.warnings)
    }

    fn header(&self, meta: &Metadata, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(meta.mode() & 0o7777);
        h.set_mtime(self.opts.mtime);
        let (uid, gid) = if self.opts.keep_owner { (meta.uid(), meta.gid()) } else { (0, 0) };
        h.set_uid(u64::from(uid));
        h.set_gid(u64::from(gid));
        h.set_size(0);
        h
    }

    /// A directory entry named `path/` (with `meta`'s mode), then what `dir` holds under it.
    pub(super) fn dir_at(&mut self, dir: &Dir, path: &Path, meta: &Metadata) -> Result<(), Error> {
        let mut h = self.header(meta, tar::EntryType::Directory);
        let mut tar_name = path.to_path_buf().into_os_string();
        tar_name.push("/");
        self.builder.append_data(&mut h, tar_name, io::empty()).map_err(Error::Write)?;
        self.dir(dir, path)
    }

    /// What `dir` holds, named under `rel` (the directory itself has no entry).
    pub(super) fn dir(&mut self, dir: &Dir, rel: &Path) -> Result<(), Error> {
        let read = |op, e| Error::Source {
            op,
            path: if rel.as_os_str().is_empty() { ".".into() } else { shown(rel) },
            source: e,
        };
        let mut names: Vec<OsString> = Vec::new();
        for entry in dir.entries().map_err(|e| read("list", e))? {
            names.push(entry.map_err(|e| read("list", e))?.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            self.entry(dir, rel, &name)?;
        }
        Ok(())
    }

    fn entry(&mut self, dir: &Dir, rel: &Path, name: &OsString) -> Result<(), Error> {
        let path = rel.join(name);
        let err = |op, e| Error::Source { op, path: shown(&path), source: e };
        let meta = dir.symlink_metadata(name).map_err(|e| err("stat", e))?;
        let ft = meta.file_type();
        let write = Error::Write;
        if ft.is_dir() {
            let sub = dir.open_dir(name).map_err(|e| err("open", e))?;
            same_file(&path, &meta, &sub.dir_metadata().map_err(|e| err("stat", e))?)?;
            return self.dir_at(&sub, &path, &meta);
        }
        if ft.is_symlink() {
            let target = dir.read_link_contents(name).map_err(|e| err("read link", e))?;
            let mut h = self.header(&meta, tar::EntryType::Symlink);
            return self.builder.append_link(&mut h, &path, target).map_err(write);
        }
        if ft.is_file() {
            return self.file_at(&path, &meta, || {
                let file = dir.open(name).map_err(|e| err("open", e))?;
                same_file(&path, &meta, &file.metadata().map_err(|e| err("stat", e))?)?;
                Ok(file)
            });
        }
        if ft.is_fifo() {
            let mut h = self.header(&meta, tar::EntryType::Fifo);
            return self.builder.append_data(&mut h, &path, io::empty()).map_err(write);
        }
        if ft.is_socket() {
            self.warnings.push(format!("`{}`: a socket, skipped", shown(&path)));
            return Ok(());
        }
        let kind = if ft.is_block_device() { "block device" } else { "character device" };
        Err(Error::Unsupported {
            path: shown(&path),
            kind,
            reason: "device files are not packed (build the layer from a tar made as root)",
        })
    }
}

impl<W: Write> Packer<W> {
    /// A regular file named `path`, with `meta`'s mode: a hard link to the first name of an
    /// inode already stored, else its bytes, from the file `open` gives.
    pub(super) fn file_at(
        &mut self,
        path: &Path,
        meta: &Metadata,
        open: impl FnOnce() -> Result<cap_std::fs::File, Error>,
    ) -> Result<(), Error> {
        let err = |op, e| Error::Source { op, path: shown(path), source: e };
        if meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key) {
                let mut h = self.header(meta, tar::EntryType::Link);
                return self.builder.append_link(&mut h, path, first).map_err(Error::Write);
            }
            self.links.insert(key, path.to_path_buf());
        }
        let file = open()?;
        let mut h = self.header(meta, tar::EntryType::Regular);
        let size = meta.len();
        h.set_size(size);
        let mut counted = Counted { inner: file.take(size), read: 0, failed: None };
        self.builder
            .append_data(&mut h, path, &mut counted)
            .map_err(|e| if counted.failed.is_some() { err("read", e) } else { Error::Write(e) })?;
        if counted.read != size {
            return Err(Error::Changed {
                path: shown(path),
                what: format!("it had {size} bytes, {} could be read", counted.read),
            });
        }
        Ok(())
    }
}

/// A file opened by name must be the one `stat` saw.
fn same_file(path: &Path, before: &Metadata, opened: &Metadata) -> Result<(), Error> {
    if (before.dev(), before.ino()) != (opened.dev(), opened.ino()) {
        return Err(Error::Changed {
            path: shown(path),
            what: "it was replaced by another file".into(),
        });
    }
    if before.is_file() && before.len() != opened.len() {
        return Err(Error::Changed {
            path: shown(path),
            what: format!("its size went from {} to {}", before.len(), opened.len()),
        });
    }
    Ok(())
}

/// Counts what the tar builder reads from a file, and remembers that a read failed (to tell
/// a source error from a write error).
struct Counted<R> {
    inner: R,
    read: u64,
    failed: Option<()>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.read += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.failed = Some(());
                Err(e)
            }
        }
    }
}
