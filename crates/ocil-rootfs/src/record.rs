//! The record of an unpacked bundle: which image it came from and, per path of the rootfs,
//! what the unpack left there (type, mode, owner, size, times, inode, link target, xattrs,
//! content digest). It is taken while the layers are applied, from the `stat` of what was
//! just created and the hash of the bytes as they were written, never by a second walk that
//! hashes the tree.
//!
//! `ocil status` and `ocil repack` compare the rootfs with it: a file whose inode, size,
//! mtime and ctime are those recorded (and whose mtime is older than the record, git's
//! guard against a change within the same second) is not read again.
//!
//! The record is the bundle's completion marker: it is written last (temp file, fsync,
//! rename), so a bundle without one is incomplete, and status and repack refuse it.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine as _;
use cap_std::fs::Dir;
use ocil_layout::Digest;
use rustix::fs::{FileType, Stat};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Result};

/// The record's file name in the bundle.
pub const RECORD_FILE: &str = "ocil-bundle.json";

/// The record's format version.
const VERSION: u32 = 1;

/// A time as `stat` gives it: seconds and nanoseconds since 1970 (a JSON `[s, ns]`).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Time(pub i64, pub u32);

/// A path's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A socket (never from a layer; found by a status walk, never packed).
    Socket,
}

impl Kind {
    /// The type of a `stat` mode.
    pub fn of_mode(mode: u32) -> Kind {
        match FileType::from_raw_mode(mode) {
            FileType::Directory => Kind::Dir,
            FileType::Symlink => Kind::Symlink,
            FileType::Fifo => Kind::Fifo,
            FileType::CharacterDevice => Kind::Char,
            FileType::BlockDevice => Kind::Block,
            FileType::Socket => Kind::Socket,
            _ => Kind::File,
        }
    }

    /// In words: `file`, `directory`, `symlink`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Dir => "directory",
            Kind::Symlink => "symlink",
            Kind::Fifo => "fifo",
            Kind::Char => "character device",
            Kind::Block => "block device",
            Kind::Socket => "socket",
        }
    }
}

/// A device node a layer asked for that an unprivileged unpack could not create (an empty
/// file stands in for it), so an export of the rootfs still gives the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// `char` or `block`.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// What the unpack left at one path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Its type.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    /// Owner, as the layer says (under `--rootless`, the files are the caller's).
    pub uid: u32,
    /// Group, as the layer says.
    pub gid: u32,
    /// Size in bytes (files; symlinks: the target's length).
    #[serde(default)]
    pub size: u64,
    /// Modification time.
    pub mtime: Time,
    /// Status-change time (after every change the unpack made).
    pub ctime: Time,
    /// Inode number (hard links share one).
    pub ino: u64,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_path")]
    pub link: Option<Vec<u8>>,
    /// A device's numbers (`[major, minor]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rdev: Option<(u32, u32)>,
    /// The device an empty file stands for (rootless unpacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// Extended attributes that were set (values base64 in JSON).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", with = "xattr_map")]
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// A file's content digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<Digest>,
    /// Which layer (0-based) last wrote it.
    pub layer: u32,
}

impl Entry {
    /// An entry from a `stat` (kind, size, times, inode, device numbers); the caller sets
    /// mode and owner when they are not the disk's (rootless), and the rest.
    pub fn from_stat(st: &Stat, layer: u32) -> Entry {
        let kind = Kind::of_mode(st.st_mode);
        let rdev = matches!(kind, Kind::Char | Kind::Block)
            .then(|| (rustix::fs::major(st.st_rdev), rustix::fs::minor(st.st_rdev)));
        Entry {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            size: if kind == Kind::Dir { 0 } else { st.st_size as u64 },
            mtime: mtime(st),
            ctime: ctime(st),
            ino: st.st_ino,
            link: None,
            rdev,
            device: None,
            xattrs: BTreeMap::new(),
            sha256: None,
            layer,
        }
    }

    /// Take the disk's view (`stat`) of an entry whose content is known: size, times,
    /// inode.
    pub fn refresh(&mut self, st: &Stat) {
        if self.kind != Kind::Dir {
            self.size = st.st_size as u64;
        }
        self.mtime = mtime(st);
        self.ctime = ctime(st);
        self.ino = st.st_ino;
    }
}

/// A `stat`'s mtime.
pub(crate) fn mtime(st: &Stat) -> Time {
    Time(st.st_mtime, st.st_mtime_nsec as u32)
}

/// A `stat`'s ctime.
pub(crate) fn ctime(st: &Stat) -> Time {
    Time(st.st_ctime, st.st_ctime_nsec as u32)
}

/// A layer the bundle's rootfs holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordLayer {
    /// The blob's digest.
    pub digest: Digest,
    /// The digest of the uncompressed tar (the config's diff_id).
    pub diff_id: Digest,
    /// Its media type.
    pub media_type: String,
    /// The blob's size.
    pub size: u64,
}

/// The image a bundle was unpacked from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSource {
    /// The target as given (`DIR:TAG`), for people.
    pub name: String,
    /// The image manifest.
    pub manifest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The image config.
    pub config: Digest,
    /// `os/arch[/variant]`, from the config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

/// A bundle's record (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The format version (1).
    pub ocil_bundle: u32,
    /// The image.
    pub source: RecordSource,
    /// Its layers, base first.
    pub layers: Vec<RecordLayer>,
    /// Whether it was unpacked `--rootless` (owners kept here, not on disk).
    pub rootless: bool,
    /// When the record was written: files modified in that second or later are hashed again.
    pub taken: Time,
    /// Every path of the rootfs (`/` the root itself), sorted.
    #[serde(with = "entry_list")]
    pub entries: BTreeMap<Vec<u8>, Entry>,
}

impl Record {
    /// A record of no paths yet.
    pub fn new(source: RecordSource, layers: Vec<RecordLayer>, rootless: bool) -> Record {
        Record {
            ocil_bundle: VERSION,
            source,
            layers,
            rootless,
            taken: Time::default(),
            entries: BTreeMap::new(),
        }
    }

    /// Read the record of the bundle `bundle`; a bundle without one is not complete.
    pub fn read(bundle: &Dir) -> Result<Record> {
        let mut file = match bundle.open(RECORD_FILE) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotABundle {
                    reason: format!(
                        "`{RECORD_FILE}` is missing (the unpack did not finish, or this is not an ocil bundle)"
                    ),
                });
            }
            Err(e) => return Err(bundle_err("open", RECORD_FILE, e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| bundle_err("read", RECORD_FILE, e))?;
        let record: Record = serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadRecord { path: RECORD_FILE.into(), reason: e.to_string() })?;
        if record.ocil_bundle != VERSION {
            return Err(Error::BadRecord {
                path: RECORD_FILE.into(),
                reason: format!(
                    "format version {} (this ocil reads {VERSION})",
                    record.ocil_bundle
                ),
            });
        }
        Ok(record)
    }

    /// Write the record into `bundle`, atomically (temp file, fsync, rename, fsync the
    /// directory), with `taken` set to now.
    pub fn write(&mut self, bundle: &Dir) -> Result<()> {
        self.taken = now();
        // Streamed: a record of a million paths is never one buffer.
        write_atomic_with(bundle, RECORD_FILE, |out| {
            let mut w = std::io::BufWriter::with_capacity(256 * 1024, out);
            serde_json::to_writer(&mut w, self).map_err(std::io::Error::from)?;
            w.flush()
        })
    }

    /// Remove the record: from now on the bundle is incomplete.
    pub fn remove(bundle: &Dir) -> Result<()> {
        match bundle.remove_file(RECORD_FILE) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(bundle_err("remove", RECORD_FILE, e)),
        }
        sync_dir(bundle)
    }

    /// Remove `path` and everything under it; the removed entries.
    pub fn remove_tree(&mut self, path: &[u8]) -> Vec<(Vec<u8>, Entry)> {
        let mut removed = Vec::new();
        if let Some(e) = self.entries.remove(path) {
            removed.push((path.to_vec(), e));
        }
        let under = subtree_keys(&self.entries, path);
        for k in under {
            if let Some(e) = self.entries.remove(&k) {
                removed.push((k, e));
            }
        }
        removed
    }
}

/// The keys strictly under `path` (`path/...`; everything but the root for the root).
pub(crate) fn subtree_keys(entries: &BTreeMap<Vec<u8>, Entry>, path: &[u8]) -> Vec<Vec<u8>> {
    if path.is_empty() {
        return entries.keys().filter(|k| !k.is_empty()).cloned().collect();
    }
    let mut lo = path.to_vec();
    lo.push(b'/');
    let mut hi = path.to_vec();
    hi.push(b'/' + 1);
    entries.range(lo..hi).map(|(k, _)| k.clone()).collect()
}

/// Now, as a [`Time`].
pub(crate) fn now() -> Time {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Time(d.as_secs() as i64, d.subsec_nanos())
}

fn bundle_err(op: &'static str, path: &str, source: std::io::Error) -> Error {
    Error::Bundle { op, path: path.into(), source }
}

/// Write `name` in `dir` whole or not at all: a temp file beside it, fsynced, renamed, and
/// the directory fsynced.
pub(crate) fn write_atomic(dir: &Dir, name: &str, bytes: &[u8]) -> Result<()> {
    write_atomic_with(dir, name, |f| f.write_all(bytes))
}

/// [`write_atomic`] of what `write` writes.
fn write_atomic_with(
    dir: &Dir,
    name: &str,
    write: impl FnOnce(&mut cap_std::fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = format!("{}{name}", ocil_layout::TEMP_PREFIX);
    let mut f = dir.create(&tmp).map_err(|e| bundle_err("create", &tmp, e))?;
    write(&mut f).map_err(|e| bundle_err("write", &tmp, e))?;
    f.sync_all().map_err(|e| bundle_err("sync", &tmp, e))?;
    drop(f);
    dir.rename(&tmp, dir, name).map_err(|e| bundle_err("rename", name, e))?;
    sync_dir(dir)
}

/// fsync a directory (cap-std holds it as an `O_PATH` descriptor, which cannot be synced:
/// open it for reading).
pub(crate) fn sync_dir(dir: &Dir) -> Result<()> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| bundle_err("open", ".", e.into()))?;
    rustix::fs::fsync(&fd).map_err(|e| bundle_err("sync", ".", e.into()))
}

/// A path of the rootfs as text: `/` then the components; bytes that are not UTF-8 as
/// `\xNN` and a backslash as `\\`, so every name survives JSON and a terminal.
pub fn display_path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    out.push('/');
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// The bytes [`display_path`] wrote.
pub fn parse_path(text: &str) -> Option<Vec<u8>> {
    let text = text.strip_prefix('/')?;
    let mut out = Vec::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            match bytes.get(i + 1) {
                Some(b'\\') => {
                    out.push(b'\\');
                    i += 2;
                }
                Some(b'x') => {
                    let hex = text.get(i + 2..i + 4)?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 4;
                }
                _ => return None,
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

mod opt_path {
    use super::*;

    pub(super) fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            // Link targets are stored like paths, without the leading `/` of display_path.
            Some(p) => s.serialize_str(&display_path(p)[1..]),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        s.map(|s| {
            parse_path(&format!("/{s}"))
                .ok_or_else(|| serde::de::Error::custom(format!("bad link target `{s}`")))
        })
        .transpose()
    }
}

mod xattr_map {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        v: &BTreeMap<String, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let b64 = base64::engine::general_purpose::STANDARD;
        s.collect_map(v.iter().map(|(k, v)| (k, b64.encode(v))))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let m: BTreeMap<String, String> = BTreeMap::deserialize(d)?;
        m.into_iter()
            .map(|(k, v)| b64.decode(v).map(|v| (k, v)).map_err(serde::de::Error::custom))
            .collect()
    }
}

mod entry_list {
    use super::*;

    #[derive(Serialize)]
    struct RowOut<'a> {
        path: String,
        #[serde(flatten)]
        entry: &'a Entry,
    }

    #[derive(Deserialize)]
    struct RowIn {
        path: String,
        #[serde(flatten)]
        entry: Entry,
    }

    pub(super) fn serialize<S: Serializer>(
        v: &BTreeMap<Vec<u8>, Entry>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|(p, entry)| RowOut { path: display_path(p), entry }))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<Vec<u8>, Entry>, D::Error> {
        let rows: Vec<RowIn> = Vec::deserialize(d)?;
        rows.into_iter()
            .map(|r| {
                parse_path(&r.path)
                    .map(|p| (p, r.entry))
                    .ok_or_else(|| serde::de::Error::custom(format!("bad path `{}`", r.path)))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_round_trip() {
        for p in [&b""[..], b"etc/passwd", b"a\\b", b"x/\xff\xfe", b"caf\xc3\xa9"] {
            let t = display_path(p);
            assert_eq!(parse_path(&t).as_deref(), Some(p), "{t}");
        }
        assert_eq!(display_path(b"a\\b/\xff"), "/a\\\\b/\\xff");
        assert_eq!(display_path(b""), "/");
        assert_eq!(parse_path("no-slash"), None);
        assert_eq!(parse_path("/bad\\q"), None);
    }

    #[test]
    fn subtree() {
        let e = Entry {
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: Time::default(),
            ctime: Time::default(),
            ino: 1,
            link: None,
            rdev: None,
            device: None,
            xattrs: BTreeMap::new(),
            sha256: None,
            layer: 0,
        };
        let mut m = BTreeMap::new();
        for k in [&b""[..], b"a", b"a-b", b"a/b", b"a/b/c", b"a0", b"b"] {
            m.insert(k.to_vec(), e.clone());
        }
        assert_eq!(subtree_keys(&m, b"a"), vec![b"a/b".to_vec(), b"a/b/c".to_vec()]);
        assert_eq!(subtree_keys(&m, b"").len(), 6);
    }
}
