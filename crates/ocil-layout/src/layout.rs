//! The layout handle: `oci-layout`, `index.json`, locking. The blob store is in `blob.rs`.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use crate::lock::{LockGuard, lock_exclusive};
use crate::{Error, Index, LayoutHeader, Result};

/// The layout marker file.
pub const LAYOUT_FILE: &str = "oci-layout";
/// The entry point: an image index.
pub const INDEX_FILE: &str = "index.json";
/// The blob store's root.
pub const BLOBS_DIR: &str = "blobs";
/// The only layout version ocil writes.
pub const LAYOUT_VERSION: &str = "1.0.0";
/// Prefix of every temp file ocil creates, so gc can recognise stale ones.
pub const TEMP_PREFIX: &str = ".ocil-tmp-";
/// Cap on JSON documents (index.json, manifests, indexes, configs) ocil reads.
pub const JSON_LIMIT: u64 = 16 * 1024 * 1024;

/// An OCI image layout, over an open directory capability.
///
/// Nothing done through it touches a path outside that directory.
#[derive(Debug)]
pub struct Layout {
    dir: Dir,
    // `blobs/sha256` and `blobs/sha512`, opened on first use: blob operations then work on
    // bare names (one syscall each, no path walk).
    alg_dirs: [std::sync::OnceLock<Dir>; 2],
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh temp-file name with our prefix (`.ocil-tmp-WHAT-PID-N-NANOS`), unique within
/// the process and, by its pid, across processes: what gc recognises as a temp file.
pub fn temp_name(what: &str) -> String {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{TEMP_PREFIX}{what}-{}-{n}-{nanos:08x}", std::process::id())
}

impl Layout {
    fn wrap(dir: Dir) -> Layout {
        Layout { dir, alg_dirs: [std::sync::OnceLock::new(), std::sync::OnceLock::new()] }
    }

    /// `blobs/<alg>` as a directory handle; `None` when it does not exist.
    pub(crate) fn alg_dir(&self, alg: crate::Algorithm) -> Result<Option<&Dir>> {
        let slot = &self.alg_dirs[alg as usize];
        if let Some(d) = slot.get() {
            return Ok(Some(d));
        }
        let sub = format!("blobs/{alg}");
        match self.dir.open_dir(&sub) {
            Ok(d) => Ok(Some(slot.get_or_init(|| d))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(map_open_err(e, &sub)),
        }
    }

    /// Open a layout, checking `oci-layout` and its `imageLayoutVersion`.
    pub fn open(dir: Dir) -> Result<Layout> {
        let layout = Layout::wrap(dir);
        layout.read_layout_header()?;
        Ok(layout)
    }

    /// Wrap a directory without checking `oci-layout` (for fsck, which reports on it).
    pub fn open_unchecked(dir: Dir) -> Layout {
        Layout::wrap(dir)
    }

    /// Open a layout by path. This is the only place in the library that uses ambient
    /// authority: everything after it goes through the directory capability.
    pub fn open_ambient(path: &Path) -> Result<Layout> {
        let dir = Dir::open_ambient_dir(path, ambient_authority())
            .map_err(Error::io("open layout directory", path.display().to_string()))?;
        Layout::open(dir)
    }

    /// Make a new empty layout in `dir`: `oci-layout`, an empty `index.json`, `blobs/sha256/`.
    /// Refuses a directory that already holds `oci-layout` or `index.json`.
    pub fn create(dir: Dir) -> Result<Layout> {
        let layout = Layout::wrap(dir);
        let _lock = layout.lock()?;
        for f in [LAYOUT_FILE, INDEX_FILE] {
            if layout.dir.exists(f) {
                return Err(Error::Io {
                    op: "create",
                    path: f.into(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "already exists: the directory already holds a layout",
                    ),
                });
            }
        }
        layout.dir.create_dir_all("blobs/sha256").map_err(Error::io("create", "blobs/sha256"))?;
        let header = format!("{{\"imageLayoutVersion\":\"{LAYOUT_VERSION}\"}}");
        layout.write_file_atomic(LAYOUT_FILE, header.as_bytes())?;
        layout.write_index_unlocked(&Index::empty())?;
        Ok(layout)
    }

    /// The directory capability.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Read and check `oci-layout`.
    pub fn read_layout_header(&self) -> Result<LayoutHeader> {
        let bytes = match self.read_file_limited(LAYOUT_FILE, 64 * 1024) {
            Err(e) if e.is_not_found() => return Err(Error::NotALayout),
            other => other?,
        };
        let header: LayoutHeader = serde_json::from_slice(&bytes)
            .map_err(|e| Error::InvalidLayoutFile { reason: e.to_string() })?;
        if !header.image_layout_version.starts_with("1.") {
            return Err(Error::UnsupportedLayoutVersion { version: header.image_layout_version });
        }
        Ok(header)
    }

    /// The raw bytes of `index.json` (capped at [`JSON_LIMIT`]).
    pub fn read_index_bytes(&self) -> Result<Vec<u8>> {
        self.read_file_limited(INDEX_FILE, JSON_LIMIT)
    }

    /// Read `index.json` strictly: it must be a valid image index.
    pub fn read_index(&self) -> Result<Index> {
        parse_index(&self.read_index_bytes()?)
    }

    /// Read `index.json` leniently: `"manifests": null` or a missing `manifests` reads as no
    /// entries, and the returned note says so. Other damage is still an error.
    pub fn read_index_lenient(&self) -> Result<(Index, Option<String>)> {
        let bytes = self.read_index_bytes()?;
        match parse_index(&bytes) {
            Ok(index) => Ok((index, None)),
            Err(strict) => {
                let mut value: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|source| Error::InvalidJson { path: INDEX_FILE.into(), source })?;
                let Some(obj) = value.as_object_mut() else { return Err(strict) };
                match obj.get("manifests") {
                    None | Some(serde_json::Value::Null) => {
                        obj.insert("manifests".into(), serde_json::Value::Array(Vec::new()));
                    }
                    Some(_) => return Err(strict),
                }
                let index: Index = serde_json::from_value(value).map_err(|_| strict)?;
                Ok((index, Some("`index.json` has no `manifests` array; read as empty".into())))
            }
        }
    }

    /// Take the layout's exclusive lock, waiting for other ocil processes.
    pub fn lock(&self) -> Result<LockGuard> {
        lock_exclusive(&self.dir, true).map(|g| g.expect("a blocking lock always returns a guard"))
    }

    /// Take the lock if it is free; `None` when another process holds it.
    pub fn try_lock(&self) -> Result<Option<LockGuard>> {
        lock_exclusive(&self.dir, false)
    }

    /// Replace `index.json` atomically (temp file, fsync, rename, fsync directory).
    /// The caller proves it holds the lock.
    pub fn write_index(&self, index: &Index, _lock: &LockGuard) -> Result<()> {
        self.write_index_unlocked(index)
    }

    fn write_index_unlocked(&self, index: &Index) -> Result<()> {
        // Blobs written before this point must be durable before index.json names them.
        for alg in crate::Algorithm::ALL {
            let sub = format!("blobs/{alg}");
            if self.dir.is_dir(&sub) {
                sync_dir(&self.dir, &sub)?;
            }
        }
        let bytes = serde_json::to_vec(index)
            .map_err(|source| Error::InvalidJson { path: INDEX_FILE.into(), source })?;
        self.write_file_atomic(INDEX_FILE, &bytes)
    }

    /// Write a top-level file atomically: temp file, fsync, rename, fsync the directory.
    pub(crate) fn write_file_atomic(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let tmp = temp_name(name);
        let result = (|| {
            // Errors name the file being replaced, never the temp file.
            let mut f = self.dir.create(&tmp).map_err(Error::io("create the new", name))?;
            f.write_all(bytes).map_err(Error::io("write the new", name))?;
            f.sync_all().map_err(Error::io("fsync the new", name))?;
            drop(f);
            self.dir.rename(&tmp, &self.dir, name).map_err(Error::io("rename into place", name))?;
            sync_dir(&self.dir, ".")
        })();
        if result.is_err() {
            let _ = self.dir.remove_file(&tmp);
        }
        result
    }

    /// Read a whole file, refusing one larger than `limit`.
    pub(crate) fn read_file_limited(&self, path: &str, limit: u64) -> Result<Vec<u8>> {
        let file = self.dir.open(path).map_err(|e| map_open_err(e, path))?;
        read_capped(file, path, limit)
    }

    /// Read a whole blob file by digest (through `blobs/<alg>`, by bare name), refusing one
    /// larger than `limit`. Not verified.
    pub(crate) fn read_blob_file(&self, digest: &crate::Digest, limit: u64) -> Result<Vec<u8>> {
        let Some(dir) = self.alg_dir(digest.algorithm())? else {
            return Err(Error::BlobMissing { digest: digest.clone() });
        };
        let path = digest.blob_path();
        let file = match dir.open(digest.encoded()) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::BlobMissing { digest: digest.clone() });
            }
            Err(e) => return Err(map_open_err(e, &path)),
        };
        read_capped(file, &path, limit)
    }
}

/// Read an open file whole: it must be a regular file of at most `limit` bytes.
fn read_capped(file: cap_std::fs::File, path: &str, limit: u64) -> Result<Vec<u8>> {
    let meta = file.metadata().map_err(Error::io("stat", path))?;
    if !meta.is_file() {
        return Err(Error::UnsafePath { path: path.into(), reason: "not a regular file".into() });
    }
    if meta.len() > limit {
        return Err(Error::TooLarge { path: path.into(), size: meta.len(), limit });
    }
    read_sized(file, meta.len(), path)
}

/// Read a file whose size `fstat` gave (already checked against the cap): one read of that
/// size in the common case.
fn read_sized(file: cap_std::fs::File, len: u64, path: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let mut file = file;
    // A short read (the file shrank) leaves a shorter buffer, never zeros.
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::Io { op: "read", path: path.into(), source: e }),
        }
    }
    buf.truncate(filled);
    // Bytes appended after `fstat` are not read: blobs are immutable and `index.json` is
    // replaced by rename, so a file that grows is being written by someone else, and a
    // digest check (or the JSON parser) catches what was read.
    Ok(buf)
}

/// fsync a directory (opened read-only: directory handles may be `O_PATH`).
pub(crate) fn sync_dir(dir: &Dir, path: &str) -> Result<()> {
    let f = dir
        .open_with(path, cap_std::fs::OpenOptions::new().read(true))
        .map_err(Error::io("open for fsync", path))?;
    f.sync_all().map_err(Error::io("fsync", path))
}

/// Map an open error, naming escapes for what they are.
pub(crate) fn map_open_err(e: std::io::Error, path: &str) -> Error {
    if e.kind() == std::io::ErrorKind::PermissionDenied && e.to_string().contains("outside") {
        Error::UnsafePath {
            path: path.into(),
            reason: "it leads outside the layout (symlink or `..`)".into(),
        }
    } else if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        Error::UnsafePath { path: path.into(), reason: "too many levels of symbolic links".into() }
    } else {
        Error::Io { op: "open", path: path.into(), source: e }
    }
}

/// Parse `index.json` bytes strictly.
pub fn parse_index(bytes: &[u8]) -> Result<Index> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|source| Error::InvalidJson { path: INDEX_FILE.into(), source })?;
    let Some(obj) = value.as_object() else {
        return Err(Error::InvalidIndex {
            path: INDEX_FILE.into(),
            reason: "not a JSON object".into(),
        });
    };
    match obj.get("manifests") {
        Some(serde_json::Value::Array(_)) => {}
        Some(serde_json::Value::Null) => {
            return Err(Error::InvalidIndex {
                path: INDEX_FILE.into(),
                reason: "`manifests` is null, not an array".into(),
            });
        }
        None => {
            return Err(Error::InvalidIndex {
                path: INDEX_FILE.into(),
                reason: "no `manifests` array".into(),
            });
        }
        Some(_) => {
            return Err(Error::InvalidIndex {
                path: INDEX_FILE.into(),
                reason: "`manifests` is not an array".into(),
            });
        }
    }
    serde_json::from_value(value)
        .map_err(|e| Error::InvalidIndex { path: INDEX_FILE.into(), reason: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (tempfile::TempDir, Layout) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        (tmp, Layout::create(dir).unwrap())
    }

    /// Every name starting with [`TEMP_PREFIX`] at the root and in `blobs/sha256`.
    fn temp_files(layout: &Layout) -> Vec<String> {
        let mut out = Vec::new();
        for sub in [".", "blobs/sha256"] {
            for entry in layout.dir.read_dir(sub).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMP_PREFIX) {
                    out.push(format!("{sub}/{name}"));
                }
            }
        }
        out
    }

    #[test]
    fn create_then_open() {
        let (tmp, _) = fresh();
        let layout = Layout::open_ambient(tmp.path()).unwrap();
        assert_eq!(layout.read_layout_header().unwrap().image_layout_version, "1.0.0");
        assert!(layout.read_index().unwrap().manifests.is_empty());
        assert!(temp_files(&layout).is_empty());
    }

    #[test]
    fn create_refuses_an_existing_layout() {
        let (tmp, _) = fresh();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        let err = Layout::create(dir).unwrap_err();
        assert!(err.to_string().contains("`oci-layout`"), "{err}");
    }

    #[test]
    fn write_index_leaves_no_temp_files() {
        let (_tmp, layout) = fresh();
        let lock = layout.lock().unwrap();
        let desc = layout.put_bytes(crate::MediaType::OciManifest, b"{}").unwrap();
        let mut index = layout.read_index().unwrap();
        for _ in 0..3 {
            index.manifests.push(desc.clone());
            layout.write_index(&index, &lock).unwrap();
        }
        assert_eq!(layout.read_index().unwrap().manifests.len(), 3);
        assert!(temp_files(&layout).is_empty(), "{:?}", temp_files(&layout));
    }

    #[test]
    fn write_index_keeps_unknown_keys() {
        let (_tmp, layout) = fresh();
        layout
            .dir
            .write(INDEX_FILE, r#"{"schemaVersion":2,"manifests":[],"x-extra":{"a":1}}"#)
            .unwrap();
        let lock = layout.lock().unwrap();
        let index = layout.read_index().unwrap();
        layout.write_index(&index, &lock).unwrap();
        let bytes = layout.read_index_bytes().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["x-extra"]["a"], 1);
    }

    #[test]
    fn lenient_index_reads_null_manifests_as_empty() {
        let (_tmp, layout) = fresh();
        layout.dir.write(INDEX_FILE, r#"{"schemaVersion":2,"manifests":null}"#).unwrap();
        let strict = layout.read_index().unwrap_err();
        assert!(matches!(strict, Error::InvalidIndex { .. }), "{strict:?}");
        let (index, note) = layout.read_index_lenient().unwrap();
        assert!(index.manifests.is_empty());
        assert!(note.unwrap().contains("no `manifests` array"));
    }

    #[test]
    fn lenient_index_still_rejects_a_wrong_type() {
        let (_tmp, layout) = fresh();
        layout.dir.write(INDEX_FILE, r#"{"schemaVersion":2,"manifests":5}"#).unwrap();
        let err = layout.read_index_lenient().unwrap_err();
        assert_eq!(
            err.to_string(),
            "`index.json` is not a valid image index: `manifests` is not an array"
        );
    }

    #[test]
    fn open_rejects_another_major_version() {
        let (tmp, layout) = fresh();
        layout.dir.write(LAYOUT_FILE, r#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
        let err = Layout::open_ambient(tmp.path()).unwrap_err();
        assert!(
            matches!(&err, Error::UnsupportedLayoutVersion { version } if version == "2.0.0"),
            "{err:?}"
        );
    }

    #[test]
    fn open_rejects_a_missing_or_garbled_marker() {
        let (tmp, layout) = fresh();
        layout.dir.write(LAYOUT_FILE, "not json").unwrap();
        let err = Layout::open_ambient(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::InvalidLayoutFile { .. }), "{err:?}");
        layout.dir.remove_file(LAYOUT_FILE).unwrap();
        let err = Layout::open_ambient(tmp.path()).unwrap_err();
        assert!(matches!(err, Error::NotALayout), "{err:?}");
    }

    #[test]
    fn an_oversized_index_is_refused_before_it_is_read() {
        let (_tmp, layout) = fresh();
        let f = layout.dir.create(INDEX_FILE).unwrap();
        // Sparse: nothing is written, so this is fast and takes no disk space.
        f.set_len(JSON_LIMIT + 1).unwrap();
        let err = layout.read_index_bytes().unwrap_err();
        assert!(
            matches!(err, Error::TooLarge { ref path, size, limit: JSON_LIMIT }
                if path == INDEX_FILE && size == JSON_LIMIT + 1),
            "{err:?}"
        );
    }
}
