//! The blob store: `blobs/<alg>/<encoded>`, content-addressed and verified.
//!
//! Writes stream into a temp file beside the target (prefix [`TEMP_PREFIX`]), hashing as they
//! go; the file is fsynced, checked against the expected digest and size when given, then
//! renamed into place. Reads check size and digest at EOF.

use std::io::{self, Read, Write};
use std::time::SystemTime;

use cap_std::fs::{Dir, File};

use crate::layout::{map_open_err, temp_name};
use crate::{Algorithm, Descriptor, Digest, Error, Hasher, Layout, MediaType, Result, TEMP_PREFIX};

/// What was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size.
    pub size: u64,
}

/// One regular file found under `blobs/<alg>/` whose name is a valid digest.
#[derive(Debug, Clone)]
pub struct BlobInfo {
    /// Its digest (its name).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Its modification time.
    pub modified: Option<SystemTime>,
}

/// A temp file of ours under `blobs/<alg>/` or at the root.
#[derive(Debug, Clone)]
pub struct TempInfo {
    /// Path relative to the layout root.
    pub path: String,
    /// Its modification time.
    pub modified: Option<SystemTime>,
}

/// Something under `blobs/` that is not a blob and not our temp file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// Path relative to the layout root.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Everything under `blobs/`.
#[derive(Debug, Clone, Default)]
pub struct BlobListing {
    /// The blobs, sorted by digest.
    pub blobs: Vec<BlobInfo>,
    /// ocil temp files.
    pub temps: Vec<TempInfo>,
    /// Anything else.
    pub strays: Vec<Stray>,
}

impl Layout {
    /// Start writing a blob of the default algorithm (sha256).
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        self.blob_writer_alg(Algorithm::Sha256)
    }

    /// Start writing a blob hashed with `alg`.
    pub fn blob_writer_alg(&self, alg: Algorithm) -> Result<BlobWriter> {
        let sub = format!("blobs/{alg}");
        self.dir().create_dir_all(&sub).map_err(Error::io("create", sub.clone()))?;
        let dir = self.dir().open_dir(&sub).map_err(|e| map_open_err(e, &sub))?;
        let tmp = temp_name("blob");
        let file = dir.create(&tmp).map_err(Error::io("create", format!("{sub}/{tmp}")))?;
        Ok(BlobWriter { dir, sub, tmp, file: Some(file), hasher: alg.hasher(), size: 0 })
    }

    /// Store a blob from a reader (sha256). Idempotent.
    pub fn put_blob(&self, mut reader: impl Read) -> Result<Stored> {
        let mut w = self.blob_writer()?;
        copy_into(&mut reader, &mut w)?;
        w.finish()
    }

    /// Store a blob that must match `expected` (digest, and size). Nothing is stored when it
    /// does not match.
    pub fn put_blob_verified(
        &self,
        mut reader: impl Read,
        expected: &Descriptor,
    ) -> Result<Stored> {
        let mut w = self.blob_writer_alg(expected.digest.algorithm())?;
        copy_into(&mut reader, &mut w)?;
        w.finish_verified(&expected.digest, Some(expected.size))
    }

    /// Store bytes (sha256) and return a descriptor for them.
    pub fn put_bytes(&self, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor> {
        let stored = self.put_blob(bytes)?;
        Ok(Descriptor::new(media_type, stored.digest, stored.size))
    }

    /// Whether the blob exists (as a regular file).
    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.stat_blob(digest)?.is_some())
    }

    /// The blob's size, or `None` when absent.
    pub fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = digest.blob_path();
        match self.dir().metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Err(Error::UnsafePath { path, reason: "not a regular file".into() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(map_open_err(e, &path)),
        }
    }

    /// Open a blob for reading; the reader fails at EOF when the bytes do not hash to the
    /// digest or (when given) do not have the expected size.
    pub fn open_blob(&self, digest: &Digest, expected_size: Option<u64>) -> Result<VerifiedReader> {
        let path = digest.blob_path();
        let file = match self.dir().open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobMissing { digest: digest.clone() });
            }
            Err(e) => return Err(map_open_err(e, &path)),
        };
        let meta = file.metadata().map_err(Error::io("stat", path.clone()))?;
        if !meta.is_file() {
            return Err(Error::UnsafePath { path, reason: "not a regular file".into() });
        }
        if let Some(expected) = expected_size
            && meta.len() != expected
        {
            return Err(Error::SizeMismatch { path, expected, found: meta.len() });
        }
        Ok(VerifiedReader {
            file,
            hasher: Some(digest.algorithm().hasher()),
            expected: digest.clone(),
            expected_size,
            read: 0,
            path,
        })
    }

    /// Read a whole blob (at most `limit` bytes) and verify its digest.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let path = digest.blob_path();
        let bytes = match self.read_file_limited(&path, limit) {
            Err(e) if e.is_not_found() => {
                return Err(Error::BlobMissing { digest: digest.clone() });
            }
            other => other?,
        };
        let found = digest.algorithm().digest_of(&bytes);
        if &found != digest {
            return Err(Error::DigestMismatch { path, expected: digest.clone(), found });
        }
        Ok(bytes)
    }

    /// Hash a stored blob and return its digest and size, without judging it.
    pub fn hash_blob(&self, digest: &Digest, buf: &mut [u8]) -> Result<Stored> {
        let path = digest.blob_path();
        let mut file = match self.dir().open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobMissing { digest: digest.clone() });
            }
            Err(e) => return Err(map_open_err(e, &path)),
        };
        let mut hasher = digest.algorithm().hasher();
        let mut size = 0u64;
        loop {
            let n = match file.read(buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Io { op: "read", path, source: e }),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(Stored { digest: hasher.finish(), size })
    }

    /// Remove a blob. Removing an absent blob is not an error.
    pub fn remove_blob(&self, digest: &Digest) -> Result<()> {
        let path = digest.blob_path();
        match self.dir().remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io { op: "remove", path, source: e }),
        }
    }

    /// Remove a file by its path relative to the layout (a stale temp file). Absent is fine.
    pub fn remove_path(&self, path: &str) -> Result<()> {
        match self.dir().remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io { op: "remove", path: path.into(), source: e }),
        }
    }

    /// List everything under `blobs/` (every algorithm directory), plus our temp files at the
    /// root. Never follows symlinks; a symlink is a stray.
    pub fn list_blobs(&self) -> Result<BlobListing> {
        let mut out = BlobListing::default();
        // Our temp files for top-level files (index.json) live at the root.
        let root = self.dir().entries().map_err(Error::io("list", "."))?;
        for entry in root {
            let entry = entry.map_err(Error::io("list", "."))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                let modified =
                    entry.metadata().ok().and_then(|m| m.modified().ok()).map(|t| t.into_std());
                out.temps.push(TempInfo { path: name, modified });
            }
        }
        let blobs = match self.dir().open_dir(crate::BLOBS_DIR) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(map_open_err(e, crate::BLOBS_DIR)),
        };
        for entry in blobs.entries().map_err(Error::io("list", "blobs"))? {
            let entry = entry.map_err(Error::io("list", "blobs"))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("blobs/{name}");
            let ft = entry.file_type().map_err(Error::io("stat", path.clone()))?;
            match Algorithm::from_name(&name) {
                Some(alg) if ft.is_dir() => {
                    let sub = blobs.open_dir(&name).map_err(|e| map_open_err(e, &path))?;
                    list_alg_dir(&sub, alg, &path, &mut out)?;
                }
                Some(_) => out.strays.push(Stray { path, reason: "not a directory".into() }),
                None if ft.is_dir() => out.strays.push(Stray {
                    path,
                    reason: "directory of an unsupported digest algorithm".into(),
                }),
                None => {
                    out.strays.push(Stray { path, reason: "not an algorithm directory".into() })
                }
            }
        }
        out.blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
        out.strays.sort_by(|a, b| a.path.cmp(&b.path));
        out.temps.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }
}

fn list_alg_dir(dir: &Dir, alg: Algorithm, prefix: &str, out: &mut BlobListing) -> Result<()> {
    for entry in dir.entries().map_err(Error::io("list", prefix))? {
        let entry = entry.map_err(Error::io("list", prefix))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = format!("{prefix}/{name}");
        let ft = entry.file_type().map_err(Error::io("stat", path.clone()))?;
        if name.starts_with(TEMP_PREFIX) && ft.is_file() {
            let modified =
                entry.metadata().ok().and_then(|m| m.modified().ok()).map(|t| t.into_std());
            out.temps.push(TempInfo { path, modified });
            continue;
        }
        let digest = match Digest::from_parts(alg, &name) {
            Ok(d) => d,
            Err(_) => {
                let reason = if ft.is_dir() { "a directory" } else { "name is not a valid digest" };
                out.strays.push(Stray { path, reason: reason.into() });
                continue;
            }
        };
        if ft.is_symlink() {
            out.strays.push(Stray { path, reason: "a symlink, not a regular file".into() });
        } else if !ft.is_file() {
            out.strays.push(Stray { path, reason: "not a regular file".into() });
        } else {
            let meta = entry.metadata().map_err(Error::io("stat", path.clone()))?;
            let modified = meta.modified().ok().map(|t| t.into_std());
            out.blobs.push(BlobInfo { digest, size: meta.len(), modified });
        }
    }
    Ok(())
}

fn copy_into(reader: &mut impl Read, w: &mut BlobWriter) -> Result<()> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::Io { op: "read source of", path: w.tmp_path(), source: e });
            }
        };
        w.write_all(&buf[..n]).map_err(Error::io("write", w.tmp_path()))?;
    }
}

/// A blob being written: hashed as it is written, renamed into place by `finish`.
/// Dropped without finishing, it removes its temp file.
#[derive(Debug)]
pub struct BlobWriter {
    dir: Dir,
    sub: String,
    tmp: String,
    file: Option<File>,
    hasher: Hasher,
    size: u64,
}

impl BlobWriter {
    fn tmp_path(&self) -> String {
        format!("{}/{}", self.sub, self.tmp)
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Finish: fsync and rename into `blobs/<alg>/<hex>`.
    pub fn finish(self) -> Result<Stored> {
        self.commit(None, None)
    }

    /// Finish only if the content matches `expected` (and `size` when given).
    pub fn finish_verified(self, expected: &Digest, size: Option<u64>) -> Result<Stored> {
        self.commit(Some(expected), size)
    }

    fn commit(mut self, expected: Option<&Digest>, size: Option<u64>) -> Result<Stored> {
        let file = self.file.take().expect("a BlobWriter is finished only once");
        let hasher = std::mem::replace(&mut self.hasher, Algorithm::Sha256.hasher());
        let digest = hasher.finish();
        let name = digest.encoded().to_owned();
        if let Some(expected) = expected
            && expected != &digest
        {
            return Err(Error::DigestMismatch {
                path: format!("{}/{}", self.sub, expected.encoded()),
                expected: expected.clone(),
                found: digest,
            });
        }
        if let Some(size) = size
            && size != self.size
        {
            return Err(Error::SizeMismatch {
                path: format!("{}/{}", self.sub, digest.encoded()),
                expected: size,
                found: self.size,
            });
        }
        file.sync_all().map_err(Error::io("fsync", self.tmp_path()))?;
        drop(file);
        self.dir
            .rename(&self.tmp, &self.dir, &name)
            .map_err(Error::io("rename into place", format!("{}/{name}", self.sub)))?;
        // The temp name no longer exists; make Drop a no-op.
        self.tmp.clear();
        Ok(Stored { digest, size: self.size })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("blob writer finished"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp.is_empty() {
            let _ = self.dir.remove_file(&self.tmp);
        }
    }
}

/// A blob reader that checks size and digest when it reaches EOF, failing the read with
/// `InvalidData` on a mismatch.
#[derive(Debug)]
pub struct VerifiedReader {
    file: File,
    hasher: Option<Hasher>,
    expected: Digest,
    expected_size: Option<u64>,
    read: u64,
    path: String,
}

impl Read for VerifiedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
            self.read += n as u64;
            return Ok(n);
        }
        if let Some(h) = self.hasher.take() {
            if let Some(size) = self.expected_size
                && size != self.read
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("`{}`: read {} bytes, expected {size}", self.path, self.read),
                ));
            }
            let found = h.finish();
            if found != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "`{}`: content hashes to `{found}`, expected `{}`",
                        self.path, self.expected
                    ),
                ));
            }
        }
        Ok(0)
    }
}
