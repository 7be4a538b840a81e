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

/// Something under `blobs/` (or named like our temp files at the root) that is not a blob
/// and not our temp file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// Path relative to the layout root.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

/// What [`Layout::probe_blob`] found.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Size in bytes.
    pub size: u64,
    /// Modification time.
    pub modified: Option<SystemTime>,
    /// The first bytes (empty when the blob is larger than the probe's `max`).
    pub head: Vec<u8>,
}

/// Lock a fresh temp file of ours (it cannot be contended: nobody else knows its name yet).
fn lock_temp(file: &File) -> io::Result<()> {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        .map_err(io::Error::from)
}

/// Everything under `blobs/`, by name only (see [`Layout::list_blob_names`]).
#[derive(Debug, Clone, Default)]
pub struct BlobNames {
    /// The blobs' digests, sorted.
    pub digests: Vec<Digest>,
    /// ocil temp files.
    pub temps: Vec<TempInfo>,
    /// Anything else.
    pub strays: Vec<Stray>,
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
        // Errors name the blob store, never the temp file: its name means nothing to a user.
        let file = dir.create(&tmp).map_err(Error::io("create a new blob in", sub.clone()))?;
        // Held until the temp file is renamed or removed: gc never removes a locked temp
        // file, whatever its age (regctl deletes other processes' in-flight files).
        lock_temp(&file).map_err(Error::io("lock a new blob in", sub.clone()))?;
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

    /// Write a blob from `reader` into a locked temp file, checked against `expected`
    /// (digest and size), and keep it unnamed: [`StagedBlob::commit`] names it.
    pub fn stage_blob(&self, mut reader: impl Read, expected: &Descriptor) -> Result<StagedBlob> {
        let mut w = self.blob_writer_alg(expected.digest.algorithm())?;
        copy_into(&mut reader, &mut w)?;
        let staged = w.finish_staged()?;
        if staged.digest() != &expected.digest {
            return Err(Error::DigestMismatch {
                path: expected.digest.blob_path(),
                expected: expected.digest.clone(),
                found: staged.digest().clone(),
            });
        }
        if staged.size() != expected.size {
            return Err(Error::SizeMismatch {
                path: expected.digest.blob_path(),
                expected: expected.size,
                found: staged.size(),
            });
        }
        Ok(staged)
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
        let bytes = self.read_blob_file(digest, limit)?;
        let found = digest.algorithm().digest_of(&bytes);
        if &found != digest {
            return Err(Error::DigestMismatch { path, expected: digest.clone(), found });
        }
        Ok(bytes)
    }

    /// The first bytes of a blob (up to `n`), unverified: for sniffing what a blob is before
    /// deciding to read it whole.
    pub fn peek_blob(&self, digest: &Digest, n: usize) -> Result<Vec<u8>> {
        let path = digest.blob_path();
        let Some(dir) = self.alg_dir(digest.algorithm())? else {
            return Err(Error::BlobMissing { digest: digest.clone() });
        };
        let file = match dir.open(digest.encoded()) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::BlobMissing { digest: digest.clone() });
            }
            Err(e) => return Err(map_open_err(e, &path)),
        };
        let mut buf = Vec::with_capacity(n);
        file.take(n as u64).read_to_end(&mut buf).map_err(Error::io("read", path))?;
        Ok(buf)
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
        let Some(dir) = self.alg_dir(digest.algorithm())? else { return Ok(()) };
        match dir.remove_file(digest.encoded()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::Io { op: "remove", path: digest.blob_path(), source: e }),
        }
    }

    /// Remove one of our temp files unless a writer still holds it (its lock). Returns
    /// whether it was removed (or already gone).
    pub fn remove_temp_if_unused(&self, path: &str) -> Result<bool> {
        let file = match self.dir().open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
            Err(e) => return Err(map_open_err(e, path)),
        };
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
            Err(e) => return Err(Error::Io { op: "lock", path: path.into(), source: e.into() }),
        }
        // Still holding the lock: no writer can be using it.
        self.remove_path(path)?;
        Ok(true)
    }

    /// Probe a blob by digest: its size and mtime (one `fstat` on the open file) and, when it
    /// is at most `max` bytes, its first `head` bytes. `None` when absent.
    pub fn probe_blob(&self, digest: &Digest, head: usize, max: u64) -> Result<Option<Probe>> {
        let Some(dir) = self.alg_dir(digest.algorithm())? else { return Ok(None) };
        let name = digest.encoded();
        let file = match dir.open(&name) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(map_open_err(e, &digest.blob_path())),
        };
        let meta = file.metadata().map_err(Error::io("stat", digest.blob_path()))?;
        let mut bytes = Vec::new();
        if meta.is_file() && meta.len() <= max {
            // One read: a short head is fine for sniffing (read_to_end would add a second
            // read to find EOF, for every blob shorter than `head`).
            bytes.resize(head.min(meta.len() as usize), 0);
            let mut file = file;
            let n = loop {
                match file.read(&mut bytes) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(Error::Io { op: "read", path: digest.blob_path(), source: e });
                    }
                }
            };
            bytes.truncate(n);
        }
        Ok(Some(Probe {
            size: meta.len(),
            modified: meta.modified().ok().map(|t| t.into_std()),
            head: bytes,
        }))
    }

    /// Open a blob's file as it is, with its size (one `fstat` on the open file), or `None`
    /// when absent: for a server that sends the bytes (or a range of them) without hashing
    /// them on every request. The descriptor stays valid when the blob is removed meanwhile
    /// (gc), so a reader that opened it reads it whole.
    pub fn open_blob_file(&self, digest: &Digest) -> Result<Option<(File, u64)>> {
        let Some(dir) = self.alg_dir(digest.algorithm())? else { return Ok(None) };
        let file = match dir.open(digest.encoded()) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(map_open_err(e, &digest.blob_path())),
        };
        let meta = file.metadata().map_err(Error::io("stat", digest.blob_path()))?;
        if !meta.is_file() {
            let path = digest.blob_path();
            return Err(Error::UnsafePath { path, reason: "not a regular file".into() });
        }
        Ok(Some((file, meta.len())))
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
        self.list_blobs_with(true, &mut Vec::new())
    }

    /// Like [`list_blobs`](Layout::list_blobs), but without a `stat` per blob: blobs are
    /// told apart by the directory entry's type, and only their names are kept. For gc on layouts of hundreds of thousands of blobs, which stats only the
    /// blobs it may remove.
    pub fn list_blob_names(&self) -> Result<BlobNames> {
        let mut digests = Vec::new();
        let listing = self.list_blobs_with(false, &mut digests)?;
        digests.sort_unstable();
        digests.shrink_to_fit();
        Ok(BlobNames { digests, temps: listing.temps, strays: listing.strays })
    }

    fn list_blobs_with(&self, stat: bool, names: &mut Vec<Digest>) -> Result<BlobListing> {
        let mut out = BlobListing::default();
        // Our temp files for top-level files (index.json) live at the root.
        let root = self.dir().entries().map_err(Error::io("list", "."))?;
        for entry in root {
            let entry = entry.map_err(Error::io("list", "."))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                // Only regular files are ours: a directory or symlink with our prefix is
                // someone else's, so it is reported and never removed.
                let ft = entry.file_type().map_err(Error::io("stat", name.clone()))?;
                if !ft.is_file() {
                    out.strays.push(Stray { path: name, reason: "not a regular file".into() });
                    continue;
                }
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
                    list_alg_dir(&sub, alg, &path, stat, &mut out, names)?;
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

fn list_alg_dir(
    dir: &Dir,
    alg: Algorithm,
    prefix: &str,
    stat: bool,
    out: &mut BlobListing,
    names: &mut Vec<Digest>,
) -> Result<()> {
    for entry in dir.entries().map_err(Error::io("list", prefix))? {
        let entry = entry.map_err(Error::io("list", prefix))?;
        let os_name = entry.file_name();
        let name = os_name.to_string_lossy();
        // The path is only needed for strays, temps and errors: not built for every blob.
        let path = || format!("{prefix}/{name}");
        let ft =
            entry.file_type().map_err(|e| Error::Io { op: "stat", path: path(), source: e })?;
        if name.starts_with(TEMP_PREFIX) && ft.is_file() {
            let modified =
                entry.metadata().ok().and_then(|m| m.modified().ok()).map(|t| t.into_std());
            out.temps.push(TempInfo { path: path(), modified });
            continue;
        }
        let digest = match Digest::from_parts(alg, &name) {
            Ok(d) => d,
            Err(_) => {
                let reason = if ft.is_dir() { "a directory" } else { "name is not a valid digest" };
                out.strays.push(Stray { path: path(), reason: reason.into() });
                continue;
            }
        };
        if ft.is_symlink() {
            out.strays.push(Stray { path: path(), reason: "a symlink, not a regular file".into() });
        } else if !ft.is_file() {
            out.strays.push(Stray { path: path(), reason: "not a regular file".into() });
        } else if stat {
            let meta =
                entry.metadata().map_err(|e| Error::Io { op: "stat", path: path(), source: e })?;
            let modified = meta.modified().ok().map(|t| t.into_std());
            out.blobs.push(BlobInfo { digest, size: meta.len(), modified });
        } else {
            names.push(digest);
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
                let path = w.sub.clone();
                return Err(Error::Io { op: "read the data of a new blob in", path, source: e });
            }
        };
        w.write_all(&buf[..n]).map_err(Error::io("write a new blob in", w.sub.clone()))?;
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

    /// Finish hashing but do not publish: the bytes stay in the temp file, and the returned
    /// [`StagedBlob`] knows their digest. [`StagedBlob::commit`] renames it into place later
    /// (an importer stages every entry of an archive, then commits only what it keeps);
    /// dropping it removes the temp file.
    pub fn finish_staged(mut self) -> Result<StagedBlob> {
        let file = self.file.take().expect("a BlobWriter is finished only once");
        let hasher = std::mem::replace(&mut self.hasher, Algorithm::Sha256.hasher());
        let digest = hasher.finish();
        let dir = self.dir.try_clone().map_err(Error::io("open", self.sub.clone()))?;
        // The temp file (and its lock, held by `file`) now belongs to the staged handle;
        // make Drop a no-op.
        let tmp = std::mem::take(&mut self.tmp);
        Ok(StagedBlob { dir, sub: self.sub.clone(), tmp, file, digest, size: self.size })
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
        file.sync_all().map_err(Error::io("fsync", format!("{}/{name}", self.sub)))?;
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

/// A blob written and hashed but not yet in place: its bytes are in a temp file under
/// `blobs/<alg>/`. [`commit`](StagedBlob::commit) fsyncs and renames it to its digest;
/// dropped uncommitted, the temp file is removed.
#[derive(Debug)]
pub struct StagedBlob {
    dir: Dir,
    sub: String,
    tmp: String,
    // Open, and locked, until commit or drop.
    file: File,
    digest: Digest,
    size: u64,
}

impl StagedBlob {
    /// The digest of the staged bytes.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The number of staged bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temp file's path relative to the layout root. Errors name
    /// [`blob_path`](Self::blob_path) instead.
    pub fn temp_path(&self) -> String {
        format!("{}/{}", self.sub, self.tmp)
    }

    /// The path the blob takes when committed (`blobs/<alg>/<hex>`), relative to the layout
    /// root: what errors about a staged blob name.
    pub fn blob_path(&self) -> String {
        format!("{}/{}", self.sub, self.digest.encoded())
    }

    /// Open the staged bytes for reading (they are not re-verified).
    pub fn open(&self) -> Result<File> {
        self.dir.open(&self.tmp).map_err(Error::io("open the staged", self.blob_path()))
    }

    /// fsync the temp file and rename it to `blobs/<alg>/<hex>`. An existing blob of the
    /// same digest is replaced by the same bytes.
    pub fn commit(mut self) -> Result<Stored> {
        self.file.sync_all().map_err(Error::io("fsync the staged", self.blob_path()))?;
        let name = self.digest.encoded().to_owned();
        self.dir
            .rename(&self.tmp, &self.dir, &name)
            .map_err(Error::io("rename into place", format!("{}/{name}", self.sub)))?;
        self.tmp.clear();
        Ok(Stored { digest: self.digest.clone(), size: self.size })
    }
}

impl Drop for StagedBlob {
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

#[cfg(test)]
mod tests {
    use cap_std::ambient_authority;

    use super::*;

    fn fresh() -> (tempfile::TempDir, Layout) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
        (tmp, Layout::create(dir).unwrap())
    }

    /// Names in `blobs/sha256`, sorted.
    fn store(layout: &Layout) -> Vec<String> {
        let mut names: Vec<String> = layout
            .dir()
            .read_dir("blobs/sha256")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn root_temps(layout: &Layout) -> Vec<String> {
        layout
            .dir()
            .read_dir(".")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect()
    }

    fn sha256(bytes: &[u8]) -> Digest {
        Algorithm::Sha256.digest_of(bytes)
    }

    /// An error and its causes, as the binary prints them.
    fn chain(e: &Error) -> String {
        let mut out = e.to_string();
        let mut cause = std::error::Error::source(e);
        while let Some(c) = cause {
            out.push_str(&format!(": {c}"));
            cause = c.source();
        }
        out
    }

    struct Failing;

    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("the source broke"))
        }
    }

    #[test]
    fn errors_name_the_blob_store_or_the_blob_never_a_temp_file() {
        let (tmp, layout) = fresh();
        // The source fails while the temp file is being written.
        let e = layout.put_blob(Failing).unwrap_err();
        assert_eq!(chain(&e), "read the data of a new blob in `blobs/sha256`: the source broke");
        // The blob's name is taken by a directory: the rename fails, naming the blob.
        let digest = sha256(b"staged");
        std::fs::create_dir_all(tmp.path().join(digest.blob_path()).join("x")).unwrap();
        let mut w = layout.blob_writer().unwrap();
        w.write_all(b"staged").unwrap();
        let staged = w.finish_staged().unwrap();
        assert_eq!(staged.blob_path(), digest.blob_path());
        let e = staged.commit().unwrap_err();
        assert!(chain(&e).starts_with(&format!("rename into place `{}`: ", digest.blob_path())));
        let e = layout.put_blob(&b"staged"[..]).unwrap_err();
        assert!(chain(&e).starts_with(&format!("rename into place `{}`: ", digest.blob_path())));
        // `index.json` is a directory: the rename of its replacement fails, naming it.
        std::fs::remove_file(tmp.path().join("index.json")).unwrap();
        std::fs::create_dir_all(tmp.path().join("index.json/x")).unwrap();
        let lock = layout.lock().unwrap();
        let e = layout.write_index(&crate::Index::empty(), &lock).unwrap_err();
        assert!(chain(&e).starts_with("rename into place `index.json`: "), "{}", chain(&e));
        // Every temp file is gone.
        let left = walk_names(tmp.path());
        assert!(left.iter().all(|n| !n.contains(TEMP_PREFIX)), "{left:?}");
    }

    fn walk_names(root: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(root).unwrap() {
            let e = e.unwrap();
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().unwrap().is_dir() {
                out.extend(walk_names(&e.path()));
            }
        }
        out
    }

    #[test]
    fn put_blob_is_idempotent() {
        let (_tmp, layout) = fresh();
        let first = layout.put_blob(&b"hello"[..]).unwrap();
        let second = layout.put_blob(&b"hello"[..]).unwrap();
        assert_eq!(first, second);
        assert_eq!(first, Stored { digest: sha256(b"hello"), size: 5 });
        assert_eq!(store(&layout), [first.digest.encoded()]);
        assert_eq!(layout.read_blob(&first.digest, 100).unwrap(), b"hello");
    }

    #[test]
    fn put_blob_verified_with_the_wrong_digest_stores_nothing() {
        let (_tmp, layout) = fresh();
        let expected = Descriptor::new(MediaType::OciLayerTar, sha256(b"other"), 5);
        let err = layout.put_blob_verified(&b"hello"[..], &expected).unwrap_err();
        assert!(
            matches!(&err, Error::DigestMismatch { expected: e, found, .. }
                if *e == sha256(b"other") && *found == sha256(b"hello")),
            "{err:?}"
        );
        assert!(store(&layout).is_empty(), "{:?}", store(&layout));
    }

    #[test]
    fn put_blob_verified_with_the_wrong_size_stores_nothing() {
        let (_tmp, layout) = fresh();
        let expected = Descriptor::new(MediaType::OciLayerTar, sha256(b"hello"), 4);
        let err = layout.put_blob_verified(&b"hello"[..], &expected).unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { expected: 4, found: 5, .. }), "{err:?}");
        assert!(store(&layout).is_empty(), "{:?}", store(&layout));
        let ok = Descriptor::new(MediaType::OciLayerTar, sha256(b"hello"), 5);
        layout.put_blob_verified(&b"hello"[..], &ok).unwrap();
        assert_eq!(store(&layout), [sha256(b"hello").encoded()]);
    }

    #[test]
    fn a_dropped_writer_leaves_no_temp_file() {
        let (_tmp, layout) = fresh();
        let mut w = layout.blob_writer().unwrap();
        w.write_all(b"half a blob").unwrap();
        let during = store(&layout);
        assert_eq!(during.len(), 1);
        assert!(during[0].starts_with(TEMP_PREFIX), "{during:?}");
        drop(w);
        assert!(store(&layout).is_empty(), "{:?}", store(&layout));
        assert!(root_temps(&layout).is_empty());
    }

    #[test]
    fn a_staged_blob_appears_only_when_committed() {
        let (_tmp, layout) = fresh();
        let mut w = layout.blob_writer().unwrap();
        w.write_all(b"hello").unwrap();
        let staged = w.finish_staged().unwrap();
        assert_eq!(staged.digest(), &sha256(b"hello"));
        assert_eq!(staged.size(), 5);
        let mut bytes = Vec::new();
        staged.open().unwrap().read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, b"hello");
        let during = store(&layout);
        assert_eq!(during.len(), 1);
        assert!(during[0].starts_with(TEMP_PREFIX), "{during:?}");
        assert!(!layout.has_blob(&sha256(b"hello")).unwrap());
        let stored = staged.commit().unwrap();
        assert_eq!(stored, Stored { digest: sha256(b"hello"), size: 5 });
        assert_eq!(store(&layout), [sha256(b"hello").encoded()]);

        // Dropped uncommitted: nothing stays.
        let mut w = layout.blob_writer().unwrap();
        w.write_all(b"other").unwrap();
        drop(w.finish_staged().unwrap());
        assert_eq!(store(&layout), [sha256(b"hello").encoded()]);
    }

    #[test]
    fn list_blobs_sorts_blobs_strays_and_temps() {
        let (_tmp, layout) = fresh();
        let blob = layout.put_blob(&b"hello"[..]).unwrap();
        let hex = |c: char| c.to_string().repeat(64);
        let d = layout.dir();
        d.create_dir(format!("blobs/sha256/{}", hex('a'))).unwrap();
        d.create_dir("blobs/sha256/subdir").unwrap();
        d.write("blobs/sha256/README", "x").unwrap();
        d.write(format!("blobs/sha256/{}", "A".repeat(64)), "x").unwrap();
        d.symlink(blob.digest.encoded(), format!("blobs/sha256/{}", hex('b'))).unwrap();
        d.create_dir("blobs/md5").unwrap();
        d.write("blobs/notes.txt", "x").unwrap();
        d.write("blobs/sha512", "x").unwrap();
        d.write(format!("blobs/sha256/{TEMP_PREFIX}blob-1"), "x").unwrap();
        d.write(format!("{TEMP_PREFIX}index.json-1"), "x").unwrap();

        let listing = layout.list_blobs().unwrap();
        let blobs: Vec<_> = listing.blobs.iter().map(|b| (b.digest.clone(), b.size)).collect();
        assert_eq!(blobs, [(blob.digest.clone(), 5)]);
        let strays: Vec<(String, &str)> = listing
            .strays
            .iter()
            .map(|s| (s.path.replace(&hex('a'), "<a>").replace(&hex('b'), "<b>"), &*s.reason))
            .collect();
        let upper = format!("blobs/sha256/{}", "A".repeat(64));
        assert_eq!(
            strays,
            [
                ("blobs/md5".into(), "directory of an unsupported digest algorithm"),
                ("blobs/notes.txt".into(), "not an algorithm directory"),
                (upper, "name is not a valid digest"),
                ("blobs/sha256/README".into(), "name is not a valid digest"),
                ("blobs/sha256/<a>".into(), "not a regular file"),
                ("blobs/sha256/<b>".into(), "a symlink, not a regular file"),
                ("blobs/sha256/subdir".into(), "a directory"),
                ("blobs/sha512".into(), "not a directory"),
            ]
        );
        let temps: Vec<&str> = listing.temps.iter().map(|t| t.path.as_str()).collect();
        assert_eq!(
            temps,
            [format!("{TEMP_PREFIX}index.json-1"), format!("blobs/sha256/{TEMP_PREFIX}blob-1")]
        );
    }

    #[test]
    fn open_blob_fails_at_eof_when_the_bytes_changed() {
        let (_tmp, layout) = fresh();
        let blob = layout.put_blob(&b"hello"[..]).unwrap();
        let path = blob.digest.blob_path();
        layout.dir().write(&path, "jello").unwrap();
        let mut reader = layout.open_blob(&blob.digest, Some(5)).unwrap();
        let mut buf = Vec::new();
        let err = reader.read_to_end(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains(&path), "{err}");
        assert!(err.to_string().contains(&sha256(b"jello").to_string()), "{err}");
    }

    #[test]
    fn open_blob_notices_a_truncated_blob() {
        let (_tmp, layout) = fresh();
        let blob = layout.put_blob(&b"hello"[..]).unwrap();
        let path = blob.digest.blob_path();
        layout.dir().write(&path, "hel").unwrap();
        // With the size known, at open.
        let err = layout.open_blob(&blob.digest, Some(5)).unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { expected: 5, found: 3, .. }), "{err:?}");
        // Without it, at EOF.
        let mut reader = layout.open_blob(&blob.digest, None).unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains(&path), "{err}");
    }

    #[test]
    fn blobs_behind_a_symlink_out_of_the_layout_are_refused() {
        let (tmp, layout) = fresh();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        Dir::open_ambient_dir(outside.path(), ambient_authority())
            .unwrap()
            .write("secret", "hello")
            .unwrap();
        let digest = sha256(b"hello");
        std::os::unix::fs::symlink(&secret, tmp.path().join(digest.blob_path())).unwrap();
        let err = layout.open_blob(&digest, None).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err:?}");
        assert!(err.to_string().contains("outside the layout"), "{err}");
        let err = layout.read_blob(&digest, 100).unwrap_err();
        assert!(matches!(err, Error::UnsafePath { .. }), "{err:?}");
        let listing = layout.list_blobs().unwrap();
        assert!(listing.blobs.is_empty());
        assert_eq!(listing.strays.len(), 1);
    }
}
