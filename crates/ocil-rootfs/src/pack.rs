//! Packing a rootfs as a tar: the changes of a [`Status`] as one layer (`repack`), or the
//! whole tree (`export-rootfs`).
//!
//! A layer of changes holds, in `tar --sort=name` order: every added, modified or
//! type-changed path whole; a `.wh.NAME` whiteout for each deleted path (one for a deleted
//! directory); for a directory replaced by a new one, its entry, an opaque whiteout
//! (`.wh..wh..opq`) and everything in it. A file with several names is stored once and its
//! other names as hard links to the first, and when one name of such a group changed, every
//! name of it is stored, so the group stays a group on top of the lower layers.
//!
//! Headers are normalised (by the crate's deterministic tar writer): owners as recorded (the image's,
//! under `--rootless`), mtimes clamped to `SOURCE_DATE_EPOCH` when given, whiteouts with
//! mode 0 and mtime 0. File bytes are hashed as they are written, for the new record.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};

use cap_std::fs::Dir;
use ocil_codec::whiteout;
use ocil_layout::{Algorithm, Digest, Hasher};
use rustix::fs::{self, Mode, OFlags};

use crate::access::open_for_reading;
use crate::apply::{rootfs_err, split_parent};
use crate::bundle::ROOTFS_DIR;
use crate::record::{Entry, Kind};
use crate::root::{Resolver, Root, child};
use crate::status::{Status, What, order_key};
use crate::tar_writer::{EntryType, Header, TarWriter};
use crate::{Error, Result};

/// How a tar is packed.
#[derive(Debug, Clone, Copy, Default)]
pub struct PackOptions {
    /// Clamp every mtime to this (`SOURCE_DATE_EPOCH`).
    pub clamp_mtime: Option<i64>,
}

/// What was packed.
#[derive(Debug, Clone)]
pub struct Packed {
    /// Entries written (whiteouts included).
    pub entries: usize,
    /// The tar's size.
    pub size: u64,
    /// The sha256 of the tar (the diff_id).
    pub diff_id: Digest,
}

/// One item of the tar.
enum Item {
    /// A path of the rootfs, stored whole.
    Path,
    /// A whiteout of the path.
    Whiteout,
    /// The opaque marker of a replaced directory.
    Opaque,
}

/// Pack the changes of `status` (taken of `bundle`) as a layer into `out`. The digests of
/// the files written go into `status.now`, and their entries are marked as of layer
/// `status.record.layers.len()`.
pub fn pack_changes(
    bundle: &Dir,
    status: &mut Status,
    out: impl Write,
    opts: PackOptions,
) -> Result<Packed> {
    let mut items: BTreeMap<Vec<Vec<u8>>, (Vec<u8>, Item)> = BTreeMap::new();
    let key = |p: &[u8]| order_key(p).into_iter().map(<[u8]>::to_vec).collect::<Vec<_>>();
    for c in &status.changes {
        match &c.what {
            What::Deleted { .. } => {
                let (dir, name) = split_parent(&c.path);
                let wh = child(dir, &whiteout::hide(name));
                items.insert(key(&wh), (wh, Item::Whiteout));
            }
            What::Replaced => {
                items.insert(key(&c.path), (c.path.clone(), Item::Path));
                // Right after the directory: an empty component sorts first.
                let mut k = key(&c.path);
                k.push(Vec::new());
                items.insert(k, (child(&c.path, whiteout::OPAQUE), Item::Opaque));
            }
            _ => {
                items.insert(key(&c.path), (c.path.clone(), Item::Path));
            }
        }
    }
    // Hard-link groups stay whole.
    let mut groups: HashMap<u64, Vec<Vec<u8>>> = HashMap::new();
    for (p, e) in &status.now {
        if e.kind == Kind::File {
            groups.entry(e.ino).or_default().push(p.clone());
        }
    }
    let wanted: BTreeSet<u64> = items
        .values()
        .filter(|(_, i)| matches!(i, Item::Path))
        .filter_map(|(p, _)| status.now.get(p))
        .filter(|e| e.kind == Kind::File)
        .map(|e| e.ino)
        .collect();
    for ino in wanted {
        for p in groups.get(&ino).into_iter().flatten() {
            items.entry(key(p)).or_insert_with(|| (p.clone(), Item::Path));
        }
    }
    let layer = status.record.layers.len() as u32;
    let order: Vec<(Vec<u8>, Item)> = items.into_values().collect();
    let mut packer = Packer::new(bundle, out, opts, status.record.rootless)?;
    for (path, item) in &order {
        match item {
            Item::Path => {
                let Some(e) = status.now.get_mut(path) else { continue };
                e.layer = layer;
                packer.path(path, e)?;
            }
            Item::Whiteout | Item::Opaque => packer.whiteout(path)?,
        }
    }
    packer.finish()
}

/// Pack the whole rootfs of `bundle` as its record describes it (owners and devices as the
/// record keeps them, contents read from the rootfs).
pub fn pack_tree(
    bundle: &Dir,
    entries: &mut BTreeMap<Vec<u8>, Entry>,
    out: impl Write,
    opts: PackOptions,
) -> Result<Packed> {
    let mut order: Vec<&Vec<u8>> = entries.keys().collect();
    order.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    let order: Vec<Vec<u8>> = order.into_iter().cloned().collect();
    let mut packer = Packer::new(bundle, out, opts, false)?;
    for path in &order {
        if let Some(e) = entries.get_mut(path) {
            packer.path(path, e)?;
        }
    }
    packer.finish()
}

struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

struct Packer<W: Write> {
    root: Root,
    tar: TarWriter<HashingWriter<W>>,
    opts: PackOptions,
    /// First name stored of each inode with several names.
    links: HashMap<u64, Vec<u8>>,
    entries: usize,
}

impl<W: Write> Packer<W> {
    fn new(bundle: &Dir, out: W, opts: PackOptions, _rootless: bool) -> Result<Packer<W>> {
        let fd = fs::openat(
            bundle,
            ROOTFS_DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| Error::Bundle {
            op: "open",
            path: ROOTFS_DIR.into(),
            source: e.into(),
        })?;
        let out = HashingWriter { inner: out, hasher: Algorithm::Sha256.hasher() };
        Ok(Packer {
            root: Root::new(fd, Resolver::Auto),
            tar: TarWriter::new(out),
            opts,
            links: HashMap::new(),
            entries: 0,
        })
    }

    fn mtime(&self, t: i64) -> i64 {
        match self.opts.clamp_mtime {
            Some(c) => t.min(c),
            None => t,
        }
    }

    fn whiteout(&mut self, path: &[u8]) -> Result<()> {
        let h = Header {
            kind: EntryType::File,
            name: path,
            link: b"",
            mode: 0,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            dev: (0, 0),
            xattrs: &[],
        };
        self.tar.entry(&h, &mut io::empty()).map_err(Error::Write)?;
        self.entries += 1;
        Ok(())
    }

    /// One path of the rootfs, as `e` describes it (a file's digest is set from its bytes).
    fn path(&mut self, path: &[u8], e: &mut Entry) -> Result<()> {
        let xattrs: Vec<(String, Vec<u8>)> =
            e.xattrs.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut name: Vec<u8> = if path.is_empty() { b".".to_vec() } else { path.to_vec() };
        let mut h = Header {
            kind: EntryType::File,
            name: b"",
            link: b"",
            mode: e.mode,
            uid: e.uid,
            gid: e.gid,
            size: 0,
            mtime: self.mtime(e.mtime.0),
            dev: (0, 0),
            xattrs: &xattrs,
        };
        let link;
        match (e.kind, e.device) {
            (Kind::Dir, _) => {
                name.push(b'/');
                h.kind = EntryType::Dir;
            }
            (Kind::Symlink, _) => {
                h.kind = EntryType::Symlink;
                link = e.link.clone().unwrap_or_default();
                h.link = &link;
                h.mode = 0o777;
            }
            (Kind::Fifo, _) => h.kind = EntryType::Fifo,
            (Kind::Char | Kind::Block, _) | (Kind::File, Some(_)) => {
                let (kind, dev) = match e.device {
                    Some(d) => (d.kind, (d.major, d.minor)),
                    None => (e.kind, e.rdev.unwrap_or((0, 0))),
                };
                h.kind = if kind == Kind::Char { EntryType::Char } else { EntryType::Block };
                h.dev = dev;
            }
            (Kind::Socket, _) => return Ok(()),
            (Kind::File, None) => {
                if let Some(first) = self.links.get(&e.ino) {
                    let first = first.clone();
                    h.kind = EntryType::HardLink;
                    h.link = &first;
                    h.name = &name;
                    self.tar.entry(&h, &mut io::empty()).map_err(Error::Write)?;
                    self.entries += 1;
                    return Ok(());
                }
                self.links.insert(e.ino, name.clone());
                let (dir, base) = split_parent(path);
                let dfd = self.root.open_real_dir(dir).map_err(|x| rootfs_err("open", dir, x))?;
                let fd = open_for_reading(
                    &dfd,
                    base,
                    OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                )
                .map_err(|x| rootfs_err("open", path, x))?;
                let size = fs::fstat(&fd).map_err(|x| rootfs_err("stat", path, x))?.st_size as u64;
                if size != e.size {
                    return Err(rootfs_err(
                        "pack",
                        path,
                        io::Error::other("it changed while it was packed"),
                    ));
                }
                h.size = size;
                h.name = &name;
                let mut reader = HashingReader {
                    inner: cap_std::fs::File::from(fd),
                    hasher: Algorithm::Sha256.hasher(),
                };
                self.tar.entry(&h, &mut reader).map_err(|x| rootfs_err("pack", path, x))?;
                e.sha256 = Some(reader.hasher.finish());
                self.entries += 1;
                return Ok(());
            }
        }
        h.name = &name;
        self.tar.entry(&h, &mut io::empty()).map_err(Error::Write)?;
        self.entries += 1;
        Ok(())
    }

    fn finish(self) -> Result<Packed> {
        let size = self.tar.written + 1024;
        let out = self.tar.finish().map_err(Error::Write)?;
        Ok(Packed { entries: self.entries, size, diff_id: out.hasher.finish() })
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}
