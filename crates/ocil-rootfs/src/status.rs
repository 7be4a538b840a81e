//! `status`: what changed in a bundle's rootfs since its record was taken: added, deleted,
//! modified (content, mode, owner, xattrs, link target), type changed, and directories
//! replaced by new ones.
//!
//! Every path is `lstat`ed (nothing is followed); a file is read again only when its inode,
//! size, mtime or ctime differ from the record, or when its mtime is in the second the
//! record was taken or later (git's guard against "racily clean" files: a change made in the
//! same second as the record would keep the recorded mtime), or with `full_compare`.
//! A deleted directory is one change (what it held goes with it), as its whiteout will be.

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use cap_std::fs::Dir;
use ocil_layout::Algorithm;
use rustix::fs::{self, AtFlags, Mode, OFlags};
use serde::Serialize;

use crate::access::open_for_reading;
use crate::apply::{ROOTLESS_XATTR, rootfs_err};
use crate::bundle::ROOTFS_DIR;
use crate::record::{Entry, Kind, Record, display_path};
use crate::root::{child, list};
use crate::{Error, Result};

/// How to compare.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusOptions {
    /// Read every file, whatever its `stat` says.
    pub full_compare: bool,
}

/// What changed at one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum What {
    /// A new path.
    Added {
        /// Its type.
        #[serde(rename = "type")]
        kind: Kind,
    },
    /// Gone (with what was under it).
    Deleted {
        /// What it was.
        #[serde(rename = "type")]
        kind: Kind,
    },
    /// Now something else (a directory replaced by a file, ...).
    TypeChanged {
        /// What it was.
        from: Kind,
        /// What it is.
        to: Kind,
    },
    /// A directory removed and made again: nothing of the old one's contents is kept.
    Replaced,
    /// The same type, something about it changed.
    Modified {
        /// Its type.
        #[serde(rename = "type")]
        kind: Kind,
        /// The bytes (or link target, or device numbers).
        content: bool,
        /// Permission bits: before, after.
        #[serde(skip_serializing_if = "Option::is_none")]
        mode: Option<(u32, u32)>,
        /// Owner: before, after.
        #[serde(skip_serializing_if = "Option::is_none")]
        owner: Option<((u32, u32), (u32, u32))>,
        /// The xattrs.
        xattrs: bool,
    },
}

/// One change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The path (`/`-rooted, see [`display_path`]).
    #[serde(serialize_with = "path_text")]
    pub path: Vec<u8>,
    /// What changed.
    #[serde(flatten)]
    pub what: What,
}

fn path_text<S: serde::Serializer>(p: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&display_path(p))
}

/// A status: the changes, and the rootfs as it is now (for a repack's record).
#[derive(Debug, Clone)]
pub struct Status {
    /// The record compared with.
    pub record: Record,
    /// The changes, in path order.
    pub changes: Vec<Change>,
    /// Every path now, with what is known of it (files read are hashed; unchanged ones keep
    /// the recorded digest).
    pub now: BTreeMap<Vec<u8>, Entry>,
    /// How many files were read.
    pub hashed: usize,
}

/// Compare the rootfs of `bundle` with its record.
pub fn status(bundle: &Dir, opts: StatusOptions) -> Result<Status> {
    let record = Record::read(bundle)?;
    let root = fs::openat(bundle, ROOTFS_DIR, dir_flags(), Mode::empty())
        .map_err(|e| Error::Bundle { op: "open", path: ROOTFS_DIR.into(), source: e.into() })?;
    let mut s = Scan {
        record: &record,
        opts,
        changes: Vec::new(),
        now: BTreeMap::new(),
        seen: HashSet::new(),
        hashed: 0,
    };
    let st = fs::fstat(&root).map_err(|e| rootfs_err("stat", b"", e))?;
    s.visit(&root, None, b"", &st, true)?;
    let Scan { mut changes, now, seen, hashed, .. } = s;
    // Deleted: recorded, not seen; the topmost only.
    let gone_parent = |p: &[u8], changes: &[Change]| {
        let mut q = p;
        while let Some(i) = q.iter().rposition(|b| *b == b'/') {
            q = &q[..i];
            if !seen.contains(q) {
                return true;
            }
            if changes
                .iter()
                .any(|c| c.path == q && matches!(c.what, What::Replaced | What::TypeChanged { .. }))
            {
                return true;
            }
        }
        false
    };
    let mut deleted = Vec::new();
    for (p, e) in &record.entries {
        if p.is_empty() || seen.contains(p) || gone_parent(p, &changes) {
            continue;
        }
        deleted.push(Change { path: p.clone(), what: What::Deleted { kind: e.kind } });
    }
    changes.extend(deleted);
    changes.sort_by(|a, b| order_key(&a.path).cmp(&order_key(&b.path)));
    Ok(Status { record, changes, now, hashed })
}

/// Component-wise order (`tar --sort=name`): a directory right before what it holds.
pub(crate) fn order_key(p: &[u8]) -> Vec<&[u8]> {
    if p.is_empty() {
        return Vec::new();
    }
    p.split(|b| *b == b'/').collect()
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW
}

struct Scan<'r> {
    record: &'r Record,
    opts: StatusOptions,
    changes: Vec<Change>,
    now: BTreeMap<Vec<u8>, Entry>,
    seen: HashSet<Vec<u8>>,
    hashed: usize,
}

impl Scan<'_> {
    /// Compare `path` (in `dir` as `name`, or the root itself) and, for a directory, what it
    /// holds. `compare` is false under a replaced or new directory: all of it is added.
    fn visit(
        &mut self,
        fd_or_dir: &OwnedFd,
        name: Option<&[u8]>,
        path: &[u8],
        st: &fs::Stat,
        compare: bool,
    ) -> Result<()> {
        self.seen.insert(path.to_vec());
        let kind = Kind::of_mode(st.st_mode);
        let mut now = Entry::from_stat(st, 0);
        let rec = if compare { self.record.entries.get(path) } else { None };
        if let Some(r) = rec {
            now.layer = r.layer;
            if self.record.rootless {
                (now.uid, now.gid) = (r.uid, r.gid);
            }
        } else {
            now.layer = self.record.layers.len() as u32;
            if self.record.rootless {
                (now.uid, now.gid) = (0, 0);
            }
        }
        // The descriptor of a directory (to list it, read its xattrs).
        let dir_fd = if kind == Kind::Dir {
            Some(match name {
                Some(n) => fs::openat(fd_or_dir, n, dir_flags(), Mode::empty())
                    .map_err(|e| rootfs_err("open", path, e))?,
                None => fs::openat(fd_or_dir, ".", dir_flags(), Mode::empty())
                    .map_err(|e| rootfs_err("open", path, e))?,
            })
        } else {
            None
        };
        let parent = fd_or_dir;
        let mut children_compare = compare;
        match rec {
            None => {
                self.fill(&mut now, parent, name, dir_fd.as_ref(), path, false)?;
                if !path.is_empty() || compare {
                    self.changes.push(Change { path: path.to_vec(), what: What::Added { kind } });
                }
            }
            Some(r) if r.kind != kind => {
                self.fill(&mut now, parent, name, dir_fd.as_ref(), path, false)?;
                self.changes.push(Change {
                    path: path.to_vec(),
                    what: What::TypeChanged { from: r.kind, to: kind },
                });
                children_compare = false;
            }
            Some(r) if kind == Kind::Dir && r.ino != now.ino => {
                self.fill(&mut now, parent, name, dir_fd.as_ref(), path, false)?;
                self.changes.push(Change { path: path.to_vec(), what: What::Replaced });
                children_compare = false;
            }
            Some(r) => {
                let same_stat = r.ino == now.ino
                    && r.size == now.size
                    && r.mtime == now.mtime
                    && r.ctime == now.ctime
                    && now.mtime.0 < self.record.taken.0;
                if same_stat && !self.opts.full_compare {
                    let (uid, gid) = (now.uid, now.gid);
                    now = r.clone();
                    if !self.record.rootless {
                        (now.uid, now.gid) = (uid, gid);
                    }
                } else {
                    now.sha256.clone_from(&r.sha256);
                    let hash = kind == Kind::File && r.size == now.size;
                    self.fill(&mut now, parent, name, dir_fd.as_ref(), path, hash)?;
                    now.device = r.device;
                }
                let content = match kind {
                    Kind::File => now.size != r.size || now.sha256 != r.sha256,
                    Kind::Symlink => now.link != r.link,
                    Kind::Char | Kind::Block => now.rdev != r.rdev,
                    _ => false,
                };
                let mode =
                    (kind != Kind::Symlink && now.mode != r.mode).then_some((r.mode, now.mode));
                let owner = (!self.record.rootless && (now.uid, now.gid) != (r.uid, r.gid))
                    .then_some(((r.uid, r.gid), (now.uid, now.gid)));
                let xattrs = now.xattrs != r.xattrs;
                if content || mode.is_some() || owner.is_some() || xattrs {
                    self.changes.push(Change {
                        path: path.to_vec(),
                        what: What::Modified { kind, content, mode, owner, xattrs },
                    });
                }
            }
        }
        self.now.insert(path.to_vec(), now);
        if let Some(d) = dir_fd {
            let mut names = list(&d).map_err(|e| rootfs_err("list", path, e))?;
            names.sort();
            for n in names {
                let cpath = child(path, &n);
                let cst = fs::statat(&d, n.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|e| rootfs_err("stat", &cpath, e))?;
                self.visit(&d, Some(&n), &cpath, &cst, children_compare)?;
            }
        }
        Ok(())
    }

    /// What a `stat` does not say: a symlink's target, xattrs, and (when `hash`) a file's
    /// digest.
    fn fill(
        &mut self,
        e: &mut Entry,
        parent: &OwnedFd,
        name: Option<&[u8]>,
        dir_fd: Option<&OwnedFd>,
        path: &[u8],
        hash: bool,
    ) -> Result<()> {
        match e.kind {
            Kind::Symlink => {
                let n = name.unwrap_or(b".");
                e.link = Some(
                    fs::readlinkat(parent, n, Vec::new())
                        .map_err(|x| rootfs_err("read the link", path, x))?
                        .into_bytes(),
                );
            }
            Kind::Dir => {
                if let Some(d) = dir_fd {
                    e.xattrs = read_xattrs(d.as_fd(), self.record.rootless)
                        .map_err(|x| rootfs_err("read the xattrs of", path, x))?;
                }
            }
            Kind::File => {
                let Some(n) = name else { return Ok(()) };
                let fd = open_for_reading(
                    parent,
                    n,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                )
                .map_err(|x| rootfs_err("open", path, x))?;
                e.xattrs = read_xattrs(fd.as_fd(), self.record.rootless)
                    .map_err(|x| rootfs_err("read the xattrs of", path, x))?;
                if hash {
                    e.sha256 = Some(hash_file(fd, path)?);
                    self.hashed += 1;
                } else {
                    e.sha256 = None;
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The sha256 of a file's bytes.
pub(crate) fn hash_file(fd: OwnedFd, path: &[u8]) -> Result<ocil_layout::Digest> {
    let mut f = cap_std::fs::File::from(fd);
    let mut h = Algorithm::Sha256.hasher();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|e| rootfs_err("read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// A file's or directory's xattrs (the rootless owner one left out when `rootless`).
pub(crate) fn read_xattrs(
    fd: std::os::fd::BorrowedFd<'_>,
    rootless: bool,
) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let size = match fs::flistxattr_query(fd) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    if size == 0 {
        return Ok(out);
    }
    let mut names = vec![0u8; size + 1024];
    let n = fs::flistxattr(fd, &mut names[..])?;
    names.truncate(n);
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name) = std::str::from_utf8(name) else { continue };
        if rootless && name == ROOTLESS_XATTR {
            continue;
        }
        let len = match fs::fgetxattr_query(fd, name) {
            Ok(n) => n,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut v = vec![0u8; len];
        let n = fs::fgetxattr(fd, name, &mut v[..])?;
        v.truncate(n);
        out.insert(name.to_owned(), v);
    }
    Ok(out)
}
