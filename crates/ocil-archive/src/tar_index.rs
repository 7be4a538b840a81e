//! Indexing a tar once: every entry checked as import checks it, and each regular file
//! recorded with where its data starts and its size.
//!
//! An uncompressed archive in a regular file is indexed by reading its headers only (the
//! tar parser seeks over the data) and read later by offset. A compressed archive (or a
//! pipe) cannot be seeked: it is read in one pass that keeps the small JSON documents in
//! memory, hashes the files not named by their digest, and skips the rest.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom};

use cap_std::fs::File;
use ocil_layout::{Algorithm, Digest, JSON_LIMIT};

use ocil_codec::Format;

use crate::source::{self, Node, blob_name, keep_json};
use crate::stream::{Counting, check_end, decompress, input_error, read_error};
use crate::{Error, Result};
use ocil_codec::tar_fault::TarInput;

/// A regular file of the archive.
#[derive(Debug)]
pub(crate) struct IndexedFile {
    /// Where its data starts in the (uncompressed) archive.
    pub(crate) offset: u64,
    /// Its size.
    pub(crate) size: u64,
    /// Its first bytes (up to 8).
    pub(crate) head: Vec<u8>,
    /// Its bytes, when the archive is read in one pass and this is a JSON document.
    pub(crate) data: Option<Vec<u8>>,
    /// The digest of its bytes, once known.
    pub(crate) digest: RefCell<Option<Digest>>,
}

/// The indexed archive.
#[derive(Debug)]
pub(crate) struct TarIndex {
    pub(crate) compression: ocil_codec::Format,
    pub(crate) nodes: BTreeMap<String, Node<IndexedFile>>,
    pub(crate) entries: usize,
    /// The file, when entries can be read by offset.
    pub(crate) file: Option<RefCell<File>>,
}

/// Index an archive file: by offset when it is an uncompressed regular file, else in one
/// streaming pass.
pub(crate) fn index(mut file: File) -> Result<TarIndex> {
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if regular {
        let mut head = [0u8; 6];
        let n = read_up_to(&mut file, &mut head).map_err(|e| input_error(e, &None))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| input_error(e, &None))?;
        if n > 0 && Format::sniff(&head[..n]) == Format::Plain {
            return index_seekable(file);
        }
    }
    index_stream(file)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn index_seekable(file: File) -> Result<TarIndex> {
    let len = file.metadata().map_err(|e| input_error(e, &None))?.len();
    let tree = {
        let mut archive = tar::Archive::new(TarInput::new(&file));
        let iter = archive.entries_with_seek().map_err(|e| read_error(e, &None))?;
        source::read_tree(iter, |entry, path, size| {
            let offset = entry.raw_file_position();
            if offset + size > len {
                return Err(Error::Truncated { entry: Some(path.into()) });
            }
            let mut head = vec![0u8; size.min(8) as usize];
            let n = read_up_to(entry, &mut head).map_err(|e| read_error(e, &Some(path.into())))?;
            head.truncate(n);
            Ok(IndexedFile { offset, size, head, data: None, digest: RefCell::new(None) })
        })?
    };
    if tree.entries == 0 && len == 0 {
        return Err(Error::Empty);
    }
    // The end-of-archive marker must follow the last entry: a file that stops there was cut.
    check_end(len, tree.last_end, &tree.last)?;
    Ok(TarIndex {
        compression: ocil_codec::Format::Plain,
        nodes: tree.nodes,
        entries: tree.entries,
        file: Some(RefCell::new(file)),
    })
}

fn index_stream(file: File) -> Result<TarIndex> {
    let (compression, stream) = decompress(file)?;
    let (counting, consumed) = Counting::new(stream, None);
    let mut archive = tar::Archive::new(TarInput::new(counting));
    let mut buf = vec![0u8; 256 * 1024];
    let iter = archive.entries().map_err(|e| read_error(e, &None))?;
    let tree = source::read_tree(iter, |entry, path, size| {
        let offset = entry.raw_file_position();
        pass_file(entry, path, offset, size, &mut buf)
    })?;
    check_end(consumed.get(), tree.last_end, &tree.last)?;
    Ok(TarIndex { compression, nodes: tree.nodes, entries: tree.entries, file: None })
}

/// Read one file of a streamed archive: keep it when it is a JSON document, hash it when
/// its name is not its digest (docker-save configs and layers).
fn pass_file(
    entry: &mut impl Read,
    path: &str,
    offset: u64,
    size: u64,
    buf: &mut [u8],
) -> Result<IndexedFile> {
    let named = blob_name(path).is_some();
    let mut hasher = (!named).then(|| Algorithm::Sha256.hasher());
    let mut head = Vec::with_capacity(8);
    let mut data: Option<Vec<u8>> = None;
    let mut copied = 0u64;
    loop {
        let n = match entry.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error(e, &Some(path.into()))),
        };
        let chunk = &buf[..n];
        if copied == 0 {
            let first = chunk.iter().find(|b| !b.is_ascii_whitespace());
            let json_like = matches!(first, Some(b'{' | b'['));
            if keep_json(path) || (size <= JSON_LIMIT && json_like) {
                data = Some(Vec::with_capacity(size as usize));
            }
        }
        if head.len() < 8 {
            let take = (8 - head.len()).min(n);
            head.extend_from_slice(&chunk[..take]);
        }
        if let Some(d) = data.as_mut() {
            d.extend_from_slice(chunk);
        }
        if let Some(h) = hasher.as_mut() {
            h.update(chunk);
        }
        copied += n as u64;
    }
    if copied != size {
        return Err(Error::Truncated { entry: Some(path.into()) });
    }
    if size == 0 && keep_json(path) {
        data = Some(Vec::new());
    }
    Ok(IndexedFile {
        offset,
        size,
        head,
        data,
        digest: RefCell::new(hasher.map(ocil_layout::Hasher::finish)),
    })
}

impl TarIndex {
    /// The bytes of a file (of at most `limit` bytes), from memory or by offset.
    pub(crate) fn read(&self, path: &str, f: &IndexedFile, limit: u64) -> Result<Vec<u8>> {
        if f.size > limit {
            return Err(Error::TooLarge { entry: path.into(), size: f.size, limit });
        }
        if let Some(d) = &f.data {
            return Ok(d.clone());
        }
        let Some(file) = &self.file else {
            return Err(Error::NotKept { entry: path.into() });
        };
        let mut file = file.borrow_mut();
        let mut bytes = vec![0u8; f.size as usize];
        file.seek(SeekFrom::Start(f.offset))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(|e| input_error(e, &Some(path.into())))?;
        Ok(bytes)
    }

    /// The digest of a file's bytes, hashing it (by offset) the first time.
    pub(crate) fn digest(&self, path: &str, f: &IndexedFile) -> Result<Digest> {
        if let Some(d) = f.digest.borrow().as_ref() {
            return Ok(d.clone());
        }
        let alg = blob_name(path).map_or(Algorithm::Sha256, |d| d.algorithm());
        let d = self.hash(path, f, alg)?;
        *f.digest.borrow_mut() = Some(d.clone());
        Ok(d)
    }

    /// A reader over a file's bytes, by offset. It shares the file position with the
    /// index's handle: read it to the end before reading other entries.
    pub(crate) fn reader(&self, path: &str, f: &IndexedFile) -> Result<Box<dyn Read + '_>> {
        let Some(file) = &self.file else {
            return Err(Error::NotKept { entry: path.into() });
        };
        let mut own = file.borrow().try_clone().map_err(|e| input_error(e, &Some(path.into())))?;
        own.seek(SeekFrom::Start(f.offset)).map_err(|e| input_error(e, &Some(path.into())))?;
        Ok(Box::new(own.take(f.size)))
    }

    /// Hash a file's bytes by offset with `alg`.
    pub(crate) fn hash(&self, path: &str, f: &IndexedFile, alg: Algorithm) -> Result<Digest> {
        if let Some(d) = &f.data {
            return Ok(alg.digest_of(d));
        }
        let Some(file) = &self.file else {
            return Err(Error::NotKept { entry: path.into() });
        };
        let mut file = file.borrow_mut();
        file.seek(SeekFrom::Start(f.offset)).map_err(|e| input_error(e, &Some(path.into())))?;
        let mut h = alg.hasher();
        let mut rest = f.size;
        let mut buf = vec![0u8; 256 * 1024];
        while rest > 0 {
            let want = rest.min(buf.len() as u64) as usize;
            file.read_exact(&mut buf[..want]).map_err(|e| input_error(e, &Some(path.into())))?;
            h.update(&buf[..want]);
            rest -= want as u64;
        }
        Ok(h.finish())
    }
}
