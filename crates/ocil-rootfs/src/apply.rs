//! Applying layers to a rootfs: each tar entry read by the `tar` crate's parser (never its
//! `unpack`), its path resolved inside the root ([`crate::root`]), and the entry made with
//! `*at` calls relative to its parent directory that never follow the last component.
//!
//! Per entry: anything in the way is removed first (a directory with everything under it),
//! then the entry is created, then its owner, mode, xattrs and times are set in that order
//! (a `chown` clears setuid bits; a `chmod` after an xattr could fail under a read-only mode).
//! Directories get their metadata at the end of the layer, deepest first, so adding their
//! children does not change their mtime afterwards; a directory the layer only changed the
//! contents of gets its recorded mtime back.
//!
//! Whiteouts hide the lower layers only: a `.wh.NAME` or `.wh..wh..opq` removes what the
//! layers below put there, never what this layer wrote, whatever their order in the tar.
//!
//! Everything done is written into the [`Record`] as it happens: the `stat` of each entry
//! after its metadata, the digest of each file's bytes as they were written.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::rc::Rc;

use ocil_codec::names;
use ocil_codec::sparse::SparseFile;
use ocil_codec::tar_fault::{Origin, TarInput};
use ocil_codec::whiteout::{self, Whiteout};
use ocil_layout::{Algorithm, Digest};
use rustix::fs::{self, AtFlags, FileType, Gid, Mode, OFlags, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;
use rustix::time::Timespec;

use crate::record::{Device, Entry, Kind, Record, Time};
use crate::root::{Opened, Root, child, join, list, remove_all};
use crate::{Error, Result};

/// The xattr where rootless unpacks keep an entry's owner (as umoci and runc read it).
pub const ROOTLESS_XATTR: &str = "user.rootlesscontainers";

/// Read buffer for file contents.
const BUF: usize = 256 * 1024;

/// How entries are applied.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ApplyOptions {
    /// Owners are not set (kept in the record and in [`ROOTLESS_XATTR`]), directories stay
    /// owner-writable until [`Applier::finish`], devices become empty files.
    pub(crate) rootless: bool,
    /// Device nodes can be made (root, not rootless).
    pub(crate) mknod: bool,
}

/// An entry's metadata, from its header and PAX records.
#[derive(Debug, Clone)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: Time,
    xattrs: Vec<(String, Vec<u8>)>,
    /// A GNU sparse file in PAX form (read by `entry`, taken out there).
    sparse: Option<SparseFile>,
}

/// Warnings, counted by kind, so a layer of a million entries gives a few lines.
#[derive(Debug, Default)]
pub(crate) struct Warnings {
    counts: BTreeMap<String, (usize, String)>,
}

impl Warnings {
    /// One more of `what` (its first path kept as an example).
    pub(crate) fn add(&mut self, what: String, path: &[u8]) {
        let e = self.counts.entry(what).or_insert_with(|| (0, crate::record::display_path(path)));
        e.0 += 1;
    }

    /// The lines to show.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.counts
            .iter()
            .map(|(what, (n, first))| match n {
                1 => format!("{what}: `{first}`"),
                n => format!("{what}: {n} paths (the first `{first}`)"),
            })
            .collect()
    }
}

/// Which layer is being applied, for errors.
#[derive(Debug, Clone)]
pub(crate) struct LayerId {
    /// 0-based index.
    pub(crate) index: u32,
    /// The blob's digest.
    pub(crate) digest: Digest,
}

/// The state of an unpack across its layers.
pub(crate) struct Applier<'a> {
    root: &'a Root,
    pub(crate) record: &'a mut Record,
    opts: ApplyOptions,
    pub(crate) warnings: Warnings,
    /// Inodes whose link count changed: their ctime is read again at the end.
    dirty: HashSet<u64>,
    // Per layer:
    layer: Option<LayerId>,
    /// Resolved parent directories by lexical path; emptied whenever a symlink or a
    /// directory is created over, or removed.
    cache: HashMap<Vec<u8>, Rc<Opened>>,
    /// Directories of this layer, for their metadata at its end.
    dirs: Vec<(Vec<u8>, Meta)>,
    /// Real paths of directories whose contents this layer changed.
    touched: HashSet<Vec<u8>>,
    /// Real paths this layer wrote, and their parents: what its whiteouts must not hide.
    present: HashSet<Vec<u8>>,
    buf: Vec<u8>,
}

/// An entry being applied: its name for errors.
struct At<'e> {
    raw: &'e [u8],
}

impl<'a> Applier<'a> {
    pub(crate) fn new(root: &'a Root, record: &'a mut Record, opts: ApplyOptions) -> Applier<'a> {
        Applier {
            root,
            record,
            opts,
            warnings: Warnings::default(),
            dirty: HashSet::new(),
            layer: None,
            cache: HashMap::new(),
            dirs: Vec::new(),
            touched: HashSet::new(),
            present: HashSet::new(),
            buf: vec![0; BUF],
        }
    }

    fn id(&self) -> (usize, Digest) {
        let l = self.layer.as_ref().expect("a layer is being applied");
        (l.index as usize + 1, l.digest.clone())
    }

    fn layer_index(&self) -> u32 {
        self.layer.as_ref().map_or(0, |l| l.index)
    }

    fn bad(&self, at: &At<'_>, reason: impl Into<String>) -> Error {
        let (position, digest) = self.id();
        Error::BadEntry {
            position,
            digest,
            entry: String::from_utf8_lossy(at.raw).into_owned(),
            reason: reason.into(),
        }
    }

    fn fail(&self, at: &At<'_>, op: impl Into<String>, e: impl Into<io::Error>) -> Error {
        let (position, digest) = self.id();
        Error::Apply {
            position,
            digest,
            entry: String::from_utf8_lossy(at.raw).into_owned(),
            op: op.into(),
            source: e.into(),
        }
    }

    fn tar_err(&self, e: io::Error) -> Error {
        let (position, digest) = self.id();
        match Origin::of(e) {
            Origin::Parser(fault) => Error::Tar { position, digest, fault },
            Origin::Input(source) => Error::LayerRead { position, digest, source },
        }
    }

    /// Apply one layer (its uncompressed tar), read to its end (the caller hashes the
    /// bytes for the diff_id as it feeds them).
    pub(crate) fn apply_layer(&mut self, id: LayerId, mut tar: impl Read) -> Result<()> {
        self.layer = Some(id);
        {
            let padded = EofPadding { inner: &mut tar, read: 0, pad: None };
            let mut archive = tar::Archive::new(TarInput::new(padded));
            let entries = archive.entries().map_err(|e| self.tar_err(e))?;
            for entry in entries {
                let mut entry = entry.map_err(|e| self.tar_err(e))?;
                self.entry(&mut entry)?;
            }
        }
        // The end-of-archive blocks and whatever follows: read to the end of the stream.
        io::copy(&mut tar, &mut io::sink()).map_err(|e| self.tar_err(e))?;
        self.finish_layer()
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let raw = e.path_bytes().into_owned();
        let at = At { raw: &raw };
        let ty = e.header().entry_type();
        match ty {
            tar::EntryType::XGlobalHeader => return Ok(()),
            tar::EntryType::Regular
            | tar::EntryType::Continuous
            | tar::EntryType::GNUSparse
            | tar::EntryType::Link
            | tar::EntryType::Symlink
            | tar::EntryType::Char
            | tar::EntryType::Block
            | tar::EntryType::Directory
            | tar::EntryType::Fifo => {}
            other => {
                self.warnings.add(
                    format!("entries of tar type `{}` skipped", other.as_byte() as char),
                    &raw,
                );
                return Ok(());
            }
        }
        let mut meta = self.meta(e, &at)?;
        let sparse = match meta.sparse.take() {
            Some(s) if matches!(ty, tar::EntryType::Regular | tar::EntryType::Continuous) => {
                Some(s)
            }
            Some(_) => return Err(self.bad(&at, "GNU sparse records on an entry that is no file")),
            None => None,
        };
        // A PAX sparse file's header names `DIR/GNUSparseFile.PID/NAME`; its real name is
        // in its records.
        let raw = match sparse.as_ref().and_then(|s| s.name.clone()) {
            Some(name) => name,
            None => raw,
        };
        let at = At { raw: &raw };
        let comps = names::layer_components(&raw).map_err(|u| {
            self.bad(&at, format!("its name {} (and climbs above the root)", u.reason()))
        })?;
        let Some((name, parent)) = comps.split_last() else {
            if ty == tar::EntryType::Directory {
                // The root's own entry: its metadata, at the end of the layer.
                self.dirs.push((Vec::new(), meta));
                return Ok(());
            }
            if raw.iter().all(|b| *b == b'/' || *b == b'.') && !raw.is_empty() {
                return Err(self.bad(
                    &at,
                    "it names the root but is not a directory (refused, see CVE-2021-29136)",
                ));
            }
            self.warnings.add("entries with an empty name skipped".into(), b"");
            return Ok(());
        };
        match whiteout::classify(name) {
            Err(bad) => return Err(self.bad(&at, format!("invalid whiteout: {bad}"))),
            Ok(Whiteout::Hide(hidden)) => return self.whiteout(&at, parent, Some(hidden)),
            Ok(Whiteout::Opaque) => return self.whiteout(&at, parent, None),
            Ok(Whiteout::Meta) => {
                self.warnings.add("AUFS metadata entries (`.wh..wh.*`) skipped".into(), &raw);
                return Ok(());
            }
            Ok(Whiteout::Not) => {}
        }
        let dir = self.parent(&at, parent)?;
        let path = child(&dir.real, name);
        match ty {
            tar::EntryType::Directory => self.directory(&at, &dir, name, path, meta),
            tar::EntryType::Link => {
                let target = e.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                self.hardlink(&at, &dir, name, path, &target)
            }
            tar::EntryType::Symlink => {
                let target = e.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
                self.symlink(&at, &dir, name, path, &target, &meta)
            }
            tar::EntryType::Fifo | tar::EntryType::Char | tar::EntryType::Block => {
                let dev = (
                    e.header().device_major().ok().flatten().unwrap_or(0),
                    e.header().device_minor().ok().flatten().unwrap_or(0),
                );
                self.special(&at, &dir, name, path, ty, dev, &meta)
            }
            _ => match sparse {
                Some(s) => {
                    let mut data = s.reader(e).map_err(|x| self.bad(&at, x.to_string()))?;
                    self.file(&at, &dir, name, path, &meta, &mut data, true, None)
                }
                None => {
                    let sparse = ty == tar::EntryType::GNUSparse;
                    self.file(&at, &dir, name, path, &meta, e, sparse, None)
                }
            },
        }
    }

    /// Owner, mode, mtime and xattrs of an entry: the header's, with PAX records over it.
    fn meta<R: Read>(&self, e: &mut tar::Entry<'_, R>, at: &At<'_>) -> Result<Meta> {
        let mut xattrs = Vec::new();
        let mut sparse_records = Vec::new();
        let (mut uid, mut gid, mut mtime) = (None, None, None);
        if let Some(exts) = e.pax_extensions().map_err(|x| self.tar_err(x))? {
            for ext in exts {
                let ext = ext.map_err(|x| self.tar_err(x))?;
                let Ok(key) = ext.key() else { continue };
                let value = ext.value_bytes();
                match key {
                    "uid" => uid = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
                    "gid" => gid = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok()),
                    "mtime" => mtime = parse_pax_time(value),
                    k => {
                        if let Some(name) = k.strip_prefix("SCHILY.xattr.") {
                            xattrs.push((name.to_owned(), value.to_vec()));
                        } else if k.starts_with("GNU.sparse.") {
                            sparse_records.push((k.to_owned(), value.to_vec()));
                        }
                    }
                }
            }
        }
        let h = e.header();
        let field = |f: &str| self.bad(at, format!("invalid {f} field in its header"));
        let uid = match uid {
            Some(u) => u,
            None => u32::try_from(h.uid().map_err(|_| field("uid"))?).map_err(|_| field("uid"))?,
        };
        let gid = match gid {
            Some(g) => g,
            None => u32::try_from(h.gid().map_err(|_| field("gid"))?).map_err(|_| field("gid"))?,
        };
        let mode = h.mode().map_err(|_| field("mode"))? & 0o7777;
        let mtime = match mtime {
            Some(t) => t,
            None => {
                Time(i64::try_from(h.mtime().map_err(|_| field("mtime"))?).unwrap_or(i64::MAX), 0)
            }
        };
        let sparse =
            SparseFile::from_pax(sparse_records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(|x| {
                    // Named as the file it stands for, not `DIR/GNUSparseFile.PID/NAME`.
                    let real = sparse_records.iter().find(|(k, _)| k == "GNU.sparse.name");
                    let raw = real.map_or(at.raw, |(_, v)| v.as_slice());
                    self.bad(&At { raw }, x.to_string())
                })?;
        Ok(Meta { uid, gid, mode, mtime, xattrs, sparse })
    }

    /// The directory holding an entry, resolved inside the root (cached for the layer);
    /// missing directories are created when `create`, and recorded.
    fn resolve(&mut self, comps: &[&[u8]], create: bool) -> Result<Rc<Opened>, Errno> {
        let key = join(comps);
        if let Some(o) = self.cache.get(&key) {
            return Ok(Rc::clone(o));
        }
        let mut made: Vec<(Vec<u8>, Option<fs::Stat>)> = Vec::new();
        let opened = self.root.open_dir(comps, create, &mut |real, fd| {
            made.push((real.to_vec(), fs::fstat(fd).ok()));
        });
        // Record what was made, even when a later component failed.
        let layer = self.layer_index();
        for (real, st) in made {
            if let Some(st) = st {
                let mut e = Entry::from_stat(&st, layer);
                (e.uid, e.gid, e.mode) = (0, 0, 0o755);
                self.record.entries.insert(real.clone(), e);
            }
            self.mark_present(&real);
            self.touched.insert(parent_of(&real).to_vec());
        }
        let opened = Rc::new(opened?);
        self.cache.insert(key, Rc::clone(&opened));
        Ok(opened)
    }

    /// [`Applier::resolve`] for an entry's parent (created when missing), errors said.
    fn parent(&mut self, at: &At<'_>, comps: &[&[u8]]) -> Result<Rc<Opened>> {
        self.resolve(comps, true).map_err(|e| match e {
            Errno::NOTDIR => self.bad(at, "a parent directory of it is not a directory"),
            Errno::LOOP => self.bad(at, "too many symlinks in its parent path"),
            e => self.fail(at, "open its parent directory", e),
        })
    }

    /// `path` and its parents were written by this layer.
    fn mark_present(&mut self, path: &[u8]) {
        let mut p = path;
        while self.present.insert(p.to_vec()) && !p.is_empty() {
            p = parent_of(p);
        }
    }

    /// Remove whatever is at `name` in `dir` (all of it, for a directory), and forget it.
    fn clear(&mut self, at: &At<'_>, dir: &Opened, name: &[u8], path: &[u8]) -> Result<()> {
        let st = match fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(self.fail(at, "stat what is in its place", e)),
        };
        let ft = FileType::from_raw_mode(st.st_mode);
        if ft == FileType::Directory {
            remove_all(dir.fd.as_fd(), name)
                .map_err(|e| self.fail(at, "remove the directory in its place", e))?;
        } else {
            fs::unlinkat(&dir.fd, name, AtFlags::empty())
                .map_err(|e| self.fail(at, "remove what is in its place", e))?;
        }
        if matches!(ft, FileType::Directory | FileType::Symlink) {
            self.cache.clear();
        }
        self.forget(path);
        self.touched.insert(dir.real.clone());
        Ok(())
    }

    /// Drop `path` and what is under it from the record (their inodes' link counts change).
    fn forget(&mut self, path: &[u8]) {
        for (_, e) in self.record.remove_tree(path) {
            if e.kind != Kind::Dir {
                self.dirty.insert(e.ino);
            }
        }
    }

    fn directory(
        &mut self,
        at: &At<'_>,
        dir: &Opened,
        name: &[u8],
        path: Vec<u8>,
        meta: Meta,
    ) -> Result<()> {
        let existing = match fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
            Err(Errno::NOENT) => None,
            Err(e) => return Err(self.fail(at, "stat what is in its place", e)),
        };
        if existing != Some(FileType::Directory) {
            if existing.is_some() {
                self.clear(at, dir, name, &path)?;
            }
            fs::mkdirat(&dir.fd, name, Mode::from_raw_mode(0o700))
                .map_err(|e| self.fail(at, "create the directory", e))?;
            self.touched.insert(dir.real.clone());
        }
        let st = fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail(at, "stat the directory", e))?;
        let mut e = Entry::from_stat(&st, self.layer_index());
        (e.uid, e.gid, e.mode, e.mtime) = (meta.uid, meta.gid, meta.mode, meta.mtime);
        // A directory merged with a lower one keeps the xattrs it had until its metadata
        // is set at the end of the layer.
        if let Some(old) = self.record.entries.get(&path) {
            e.xattrs.clone_from(&old.xattrs);
        }
        self.record.entries.insert(path.clone(), e);
        self.mark_present(&path);
        self.dirs.push((path, meta));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn file<R: Read>(
        &mut self,
        at: &At<'_>,
        dir: &Opened,
        name: &[u8],
        path: Vec<u8>,
        meta: &Meta,
        data: &mut R,
        sparse: bool,
        device: Option<Device>,
    ) -> Result<()> {
        self.clear(at, dir, name, &path)?;
        let fd = fs::openat(
            &dir.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| self.fail(at, "create the file", e))?;
        self.touched.insert(dir.real.clone());
        let mut file = cap_std::fs::File::from(fd);
        let mut hasher = Algorithm::Sha256.hasher();
        let mut written = 0u64;
        let mut hole = false;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.tar_err(e)),
            };
            let chunk = &self.buf[..n];
            hasher.update(chunk);
            if sparse && chunk.iter().all(|b| *b == 0) {
                file.seek(SeekFrom::Current(n as i64))
                    .map_err(|e| self.fail(at, "write the file", e))?;
                hole = true;
            } else {
                file.write_all(chunk).map_err(|e| self.fail(at, "write the file", e))?;
                hole = false;
            }
            written += n as u64;
        }
        if hole {
            file.set_len(written).map_err(|e| self.fail(at, "write the file", e))?;
        }
        let set = self.set_meta(at, file.as_fd(), Kind::File, meta, &path)?;
        let st = fs::fstat(&file).map_err(|e| self.fail(at, "stat the file", e))?;
        let mut e = self.entry_of(&st, meta, set);
        e.sha256 = Some(hasher.finish());
        e.device = device;
        self.record.entries.insert(path.clone(), e);
        self.mark_present(&path);
        Ok(())
    }

    fn symlink(
        &mut self,
        at: &At<'_>,
        dir: &Opened,
        name: &[u8],
        path: Vec<u8>,
        target: &[u8],
        meta: &Meta,
    ) -> Result<()> {
        if target.is_empty() {
            return Err(self.bad(at, "a symlink with an empty target"));
        }
        self.clear(at, dir, name, &path)?;
        fs::symlinkat(target, &dir.fd, name).map_err(|e| self.fail(at, "create the symlink", e))?;
        self.cache.clear();
        self.touched.insert(dir.real.clone());
        if !self.opts.rootless {
            fs::chownat(
                &dir.fd,
                name,
                Some(uid(meta.uid)),
                Some(gid(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.fail(at, "set the owner", e))?;
        }
        if !meta.xattrs.is_empty() {
            self.warnings.add("xattrs on symlinks not set".into(), &path);
        }
        fs::utimensat(&dir.fd, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail(at, "set the times", e))?;
        let st = fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail(at, "stat the symlink", e))?;
        let mut e = Entry::from_stat(&st, self.layer_index());
        (e.uid, e.gid) = (meta.uid, meta.gid);
        e.link = Some(target.to_vec());
        self.record.entries.insert(path.clone(), e);
        self.mark_present(&path);
        Ok(())
    }

    fn hardlink(
        &mut self,
        at: &At<'_>,
        dir: &Opened,
        name: &[u8],
        path: Vec<u8>,
        target: &[u8],
    ) -> Result<()> {
        // Hard-link targets name a path of the container's filesystem: resolved inside the
        // root, `..` stopping there, as the kernel's RESOLVE_IN_ROOT does.
        let tcomps = names::in_root_components(target);
        let Some((tname, tparent)) = tcomps.split_last() else {
            return Err(self.bad(at, "a hard link to the root directory"));
        };
        let shown = String::from_utf8_lossy(target).into_owned();
        let tdir = match self.resolve(tparent, false) {
            Ok(d) => d,
            Err(Errno::NOENT | Errno::NOTDIR) => {
                return Err(self.bad(at, format!("a hard link to `{shown}`, which does not exist")));
            }
            Err(Errno::LOOP) => return Err(self.bad(at, "too many symlinks in its target's path")),
            Err(e) => return Err(self.fail(at, "open the hard link's target directory", e)),
        };
        let treal = child(&tdir.real, tname);
        if treal == path {
            return Ok(());
        }
        match fs::statat(&tdir.fd, *tname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
                return Err(self.bad(at, format!("a hard link to `{shown}`, a directory")));
            }
            Ok(_) => {}
            Err(Errno::NOENT) => {
                return Err(self.bad(at, format!("a hard link to `{shown}`, which does not exist")));
            }
            Err(e) => return Err(self.fail(at, "stat the hard link's target", e)),
        }
        self.clear(at, dir, name, &path)?;
        fs::linkat(&tdir.fd, *tname, &dir.fd, name, AtFlags::empty())
            .map_err(|e| self.fail(at, "create the hard link", e))?;
        self.touched.insert(dir.real.clone());
        let st = fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail(at, "stat the hard link", e))?;
        let mut e = match self.record.entries.get(&treal) {
            Some(t) => t.clone(),
            None => Entry::from_stat(&st, self.layer_index()),
        };
        e.refresh(&st);
        e.layer = self.layer_index();
        if e.kind == Kind::Symlink {
            self.cache.clear();
        }
        self.dirty.insert(e.ino);
        self.record.entries.insert(path.clone(), e);
        self.mark_present(&path);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn special(
        &mut self,
        at: &At<'_>,
        dir: &Opened,
        name: &[u8],
        path: Vec<u8>,
        ty: tar::EntryType,
        (major, minor): (u32, u32),
        meta: &Meta,
    ) -> Result<()> {
        let (file_type, kind) = match ty {
            tar::EntryType::Fifo => (FileType::Fifo, Kind::Fifo),
            tar::EntryType::Char => (FileType::CharacterDevice, Kind::Char),
            _ => (FileType::BlockDevice, Kind::Block),
        };
        if kind != Kind::Fifo && !self.opts.mknod {
            // An unprivileged unpack cannot make device nodes: an empty file stands in.
            self.warnings.add(
                format!("{}s created as empty files (devices need root)", kind.as_str()),
                &path,
            );
            let device = Some(Device { kind, major, minor });
            return self.file(at, dir, name, path, meta, &mut io::empty(), false, device);
        }
        self.clear(at, dir, name, &path)?;
        let dev = fs::makedev(major, minor);
        fs::mknodat(&dir.fd, name, file_type, Mode::from_raw_mode(0o600), dev)
            .map_err(|e| self.fail(at, format!("create the {}", kind.as_str()), e))?;
        self.touched.insert(dir.real.clone());
        if !self.opts.rootless {
            fs::chownat(
                &dir.fd,
                name,
                Some(uid(meta.uid)),
                Some(gid(meta.gid)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .map_err(|e| self.fail(at, "set the owner", e))?;
        }
        // Just made by mknodat in a directory only this unpack writes: not a symlink.
        fs::chmodat(&dir.fd, name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
            .map_err(|e| self.fail(at, "set the mode", e))?;
        if !meta.xattrs.is_empty() {
            self.warnings.add(format!("xattrs on {}s not set", kind.as_str()), &path);
        }
        fs::utimensat(&dir.fd, name, &times(meta.mtime), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail(at, "set the times", e))?;
        let st = fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail(at, "stat it", e))?;
        let e = self.entry_of(&st, meta, Vec::new());
        self.record.entries.insert(path.clone(), e);
        self.mark_present(&path);
        Ok(())
    }

    /// The record entry of a file, device or directory just made.
    fn entry_of(&self, st: &fs::Stat, meta: &Meta, xattrs: Vec<(String, Vec<u8>)>) -> Entry {
        let mut e = Entry::from_stat(st, self.layer_index());
        (e.uid, e.gid, e.mode) = (meta.uid, meta.gid, meta.mode);
        e.xattrs = xattrs.into_iter().collect();
        e
    }

    /// Owner, mode, xattrs, times, in that order; the xattrs that were set.
    fn set_meta(
        &mut self,
        at: &At<'_>,
        fd: BorrowedFd<'_>,
        kind: Kind,
        meta: &Meta,
        path: &[u8],
    ) -> Result<Vec<(String, Vec<u8>)>> {
        if !self.opts.rootless {
            fs::fchown(fd, Some(uid(meta.uid)), Some(gid(meta.gid)))
                .map_err(|e| self.fail(at, "set the owner", e))?;
        }
        let mode =
            if self.opts.rootless && kind == Kind::Dir { meta.mode | 0o700 } else { meta.mode };
        fs::fchmod(fd, Mode::from_raw_mode(mode)).map_err(|e| self.fail(at, "set the mode", e))?;
        let mut set = Vec::new();
        for (k, v) in &meta.xattrs {
            if self.opts.rootless && k == ROOTLESS_XATTR {
                continue;
            }
            match fs::fsetxattr(fd, k.as_str(), v, XattrFlags::empty()) {
                Ok(()) => set.push((k.clone(), v.clone())),
                Err(
                    e
                    @ (Errno::PERM | Errno::NOTSUP | Errno::ACCESS | Errno::INVAL | Errno::NODATA),
                ) => {
                    self.warnings
                        .add(format!("xattr `{k}` not set ({})", io::Error::from(e)), path);
                }
                Err(e) => return Err(self.fail(at, format!("set the xattr `{k}`"), e)),
            }
        }
        if self.opts.rootless && (meta.uid, meta.gid) != (0, 0) {
            let value = rootless_owner(meta.uid, meta.gid);
            if let Err(e) = fs::fsetxattr(fd, ROOTLESS_XATTR, &value, XattrFlags::empty()) {
                self.warnings.add(
                    format!("owners not kept in `{ROOTLESS_XATTR}` ({})", io::Error::from(e)),
                    path,
                );
            }
        }
        fs::futimens(fd, &times(meta.mtime)).map_err(|e| self.fail(at, "set the times", e))?;
        Ok(set)
    }

    /// A whiteout: `hidden` in the directory `parent`, or (opaque) everything the lower
    /// layers put in it.
    fn whiteout(&mut self, at: &At<'_>, parent: &[&[u8]], hidden: Option<&[u8]>) -> Result<()> {
        let dir = match self.resolve(parent, false) {
            Ok(d) => d,
            // Nothing there (a dangling symlink, a file): nothing to hide.
            Err(Errno::NOENT | Errno::NOTDIR) => return Ok(()),
            Err(Errno::LOOP) => return Err(self.bad(at, "too many symlinks in its parent path")),
            Err(e) => return Err(self.fail(at, "open its directory", e)),
        };
        match hidden {
            Some(name) => {
                let path = child(&dir.real, name);
                if self.present.contains(&path) {
                    // This layer's own: a directory loses only what is below it.
                    if let Ok(sub) = fs::openat(&dir.fd, name, dir_flags(), Mode::empty()) {
                        self.hide_lower(at, &sub, &path)?;
                    }
                    return Ok(());
                }
                self.clear(at, &dir, name, &path)
            }
            None => {
                let fd = fs::openat(&dir.fd, ".", dir_flags(), Mode::empty())
                    .map_err(|e| self.fail(at, "open the directory", e))?;
                let real = dir.real.clone();
                self.hide_lower(at, &fd, &real)
            }
        }
    }

    /// Remove what the lower layers put in the directory `fd` (at `path`), keeping what this
    /// layer wrote.
    fn hide_lower(&mut self, at: &At<'_>, fd: &OwnedFd, path: &[u8]) -> Result<()> {
        let names = list(fd).map_err(|e| self.fail(at, "list the directory", e))?;
        for n in names {
            let cpath = child(path, &n);
            if self.present.contains(&cpath) {
                if let Ok(sub) = fs::openat(fd, n.as_slice(), dir_flags(), Mode::empty()) {
                    self.hide_lower(at, &sub, &cpath)?;
                }
                continue;
            }
            remove_all(fd.as_fd(), &n).map_err(|e| self.fail(at, "remove what it hides", e))?;
            self.forget(&cpath);
            self.touched.insert(path.to_vec());
            self.cache.clear();
        }
        Ok(())
    }

    /// The end of a layer: directory metadata, deepest first; the recorded mtime back on
    /// directories whose contents changed.
    fn finish_layer(&mut self) -> Result<()> {
        let dirs = std::mem::take(&mut self.dirs);
        // The last entry for a directory wins.
        let mut last: HashMap<&[u8], usize> = HashMap::new();
        for (i, (p, _)) in dirs.iter().enumerate() {
            last.insert(p.as_slice(), i);
        }
        let mut order: Vec<usize> = last.values().copied().collect();
        order.sort_by(|a, b| dirs[*b].0.cmp(&dirs[*a].0));
        for i in order {
            let (path, meta) = &dirs[i];
            let Ok(fd) = self.root.open_real_dir(path) else { continue };
            let at = At { raw: path };
            let set = self.set_meta(&at, fd.as_fd(), Kind::Dir, meta, path)?;
            let st = fs::fstat(&fd).map_err(|e| self.fail(&at, "stat the directory", e))?;
            let layer = self.layer_index();
            let mut e = self.entry_of(&st, meta, set);
            e.layer = layer;
            self.record.entries.insert(path.clone(), e);
            self.touched.remove(path);
        }
        for path in std::mem::take(&mut self.touched) {
            let Some(mtime) = self.record.entries.get(&path).map(|e| e.mtime) else { continue };
            let Ok(fd) = self.root.open_real_dir(&path) else { continue };
            fs::futimens(&fd, &times(mtime))
                .map_err(|e| rootfs_err("set the times of", &path, e))?;
        }
        self.cache.clear();
        self.present.clear();
        Ok(())
    }

    /// After the last layer: the final directory modes (rootless), then the ctime and inode
    /// of every directory and of every file whose link count changed, as they are now.
    pub(crate) fn finish(mut self) -> Result<Warnings> {
        let dirs: Vec<(Vec<u8>, u32)> = self
            .record
            .entries
            .iter()
            .filter(|(_, e)| e.kind == Kind::Dir)
            .map(|(p, e)| (p.clone(), e.mode))
            .collect();
        for (path, mode) in dirs.iter().rev() {
            let fd = self.root.open_real_dir(path).map_err(|e| rootfs_err("open", path, e))?;
            if self.opts.rootless && mode & 0o700 != 0o700 {
                fs::fchmod(&fd, Mode::from_raw_mode(*mode))
                    .map_err(|e| rootfs_err("set the mode of", path, e))?;
            }
            let st = fs::fstat(&fd).map_err(|e| rootfs_err("stat", path, e))?;
            if let Some(e) = self.record.entries.get_mut(path) {
                e.refresh(&st);
            }
        }
        let dirty = std::mem::take(&mut self.dirty);
        let stale: Vec<Vec<u8>> = self
            .record
            .entries
            .iter()
            .filter(|(_, e)| e.kind != Kind::Dir && dirty.contains(&e.ino))
            .map(|(p, _)| p.clone())
            .collect();
        for path in stale {
            let (dir, name) = split_parent(&path);
            let fd = self.root.open_real_dir(dir).map_err(|e| rootfs_err("open", dir, e))?;
            let st = fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| rootfs_err("stat", &path, e))?;
            if let Some(e) = self.record.entries.get_mut(&path) {
                e.refresh(&st);
            }
        }
        Ok(self.warnings)
    }
}

/// A tar stream's missing ending made up: after the input's last byte, zeros to the next
/// 512-byte block and two end blocks. umoci 0.4's `insert` writes layers that stop right
/// after the last file's bytes (Go's tar reader takes them, and their diff_id is of those
/// bytes); a layer cut anywhere else still fails, on its diff_id.
struct EofPadding<R> {
    inner: R,
    read: u64,
    /// Zeros still to give, once the input ended.
    pad: Option<u64>,
}

impl<R: Read> Read for EofPadding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pad.is_none() {
            let n = self.inner.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.read += n as u64;
                return Ok(n);
            }
            self.pad = Some((512 - self.read % 512) % 512 + 1024);
        }
        let left = self.pad.unwrap_or(0);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        buf[..n].fill(0);
        self.pad = Some(left - n as u64);
        Ok(n)
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW
}

/// The parent of a real path (the root's is the root).
pub(crate) fn parent_of(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => &path[..i],
        None => b"",
    }
}

/// A real path split into its parent and last component.
pub(crate) fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|b| *b == b'/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b"", path),
    }
}

pub(crate) fn rootfs_err(op: &'static str, path: &[u8], e: impl Into<io::Error>) -> Error {
    Error::Rootfs { op, path: crate::record::display_path(path), source: e.into() }
}

fn uid(u: u32) -> Uid {
    Uid::from_raw_unchecked(u)
}

fn gid(g: u32) -> Gid {
    Gid::from_raw_unchecked(g)
}

/// Access and modification time both `t`.
pub(crate) fn times(t: Time) -> Timestamps {
    let ts = Timespec { tv_sec: t.0, tv_nsec: i64::from(t.1) };
    Timestamps { last_access: ts, last_modification: ts }
}

/// A PAX time (`1704067200.5`): seconds and nanoseconds.
fn parse_pax_time(v: &[u8]) -> Option<Time> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let mut nanos = 0u32;
    let digits: String = frac.chars().take(9).collect();
    if !digits.is_empty() {
        let n: u32 = digits.parse().ok()?;
        nanos = n * 10u32.pow(9 - digits.len() as u32);
    }
    if secs < 0 && nanos > 0 {
        return Some(Time(secs - 1, 1_000_000_000 - nanos));
    }
    Some(Time(secs, nanos))
}

/// The `user.rootlesscontainers` value: the protobuf message `Resource { uint32 uid = 1;
/// uint32 gid = 2; }` (rootlesscontainers.org), zero fields left out as proto3 does.
pub(crate) fn rootless_owner(uid: u32, gid: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, v) in [(0x08u8, uid), (0x10u8, gid)] {
        if v == 0 {
            continue;
        }
        out.push(tag);
        let mut v = v;
        while v >= 0x80 {
            out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        assert_eq!(parse_pax_time(b"1704067200"), Some(Time(1_704_067_200, 0)));
        assert_eq!(parse_pax_time(b"1704067200.5"), Some(Time(1_704_067_200, 500_000_000)));
        assert_eq!(parse_pax_time(b"1.123456789123"), Some(Time(1, 123_456_789)));
        assert_eq!(parse_pax_time(b"x"), None);
    }

    #[test]
    fn rootless_xattr_round_trips() {
        assert_eq!(rootless_owner(0, 0), b"");
        assert_eq!(rootless_owner(1000, 0), [0x08, 0xe8, 0x07]);
        assert_eq!(rootless_owner(0, 300), [0x10, 0xac, 0x02]);
    }

    #[test]
    fn parents() {
        assert_eq!(parent_of(b"a/b/c"), b"a/b");
        assert_eq!(parent_of(b"a"), b"");
        assert_eq!(split_parent(b"a/b"), (&b"a"[..], &b"b"[..]));
    }
}
