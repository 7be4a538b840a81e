//! Indexing a tar once: every entry checked as import checks it, and each regular file
//! recorded with where its data starts and its size.
//!
//! An uncompressed archive in a regular file is indexed by reading its headers only (the
//! tar parser seeks over the data) and read later by offset. A compressed archive (or a
//! pipe) cannot be seeked: it is read in one pass that keeps the small JSON documents in
//! memory, hashes the files not named by their digest, and skips the rest.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

use cap_std::fs::File;
use ocil_layout::progress::{Progress, ProgressReader};
use ocil_layout::{Algorithm, Digest, JSON_LIMIT};

use ocil_codec::Format;

use crate::plain::{self, Decoded, Fault, Measure};
use crate::source::{self, FileFacts, Node, blob_name, keep_json};
use crate::stream::{Counting, check_end, decompress, input_error, read_error, read_up_to};
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
    /// For an xz or bzip2 candidate ([`plain::candidate`]): the facts of its bytes
    /// decompressed, once known (from the pass, or by offset when first asked).
    pub(crate) plain: RefCell<Option<Decoded<FileFacts>>>,
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
pub(crate) fn index(mut file: File, progress: &dyn Progress) -> Result<TarIndex> {
    let regular = file.metadata().map(|m| m.is_file()).unwrap_or(false);
    if regular {
        let mut head = [0u8; 6];
        let n = read_up_to(&mut file, &mut head).map_err(|e| input_error(e, &None))?;
        file.seek(SeekFrom::Start(0)).map_err(|e| input_error(e, &None))?;
        if n > 0 && Format::sniff(&head[..n]) == Format::Plain {
            return index_seekable(file);
        }
    }
    index_stream(file, progress)
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
            Ok(IndexedFile {
                offset,
                size,
                head,
                data: None,
                digest: RefCell::new(None),
                plain: RefCell::new(None),
            })
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

fn index_stream(file: File, progress: &dyn Progress) -> Result<TarIndex> {
    let (compression, stream) = decompress(file)?;
    progress.begin("read", None);
    let result = index_stream_from(compression, ProgressReader::new(stream, progress));
    progress.end();
    result
}

fn index_stream_from(compression: Format, stream: impl Read) -> Result<TarIndex> {
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
/// its name is not its digest (docker-save configs and layers), and measure it decompressed
/// when it is an xz or bzip2 candidate ([`plain::candidate`]).
fn pass_file(
    entry: &mut impl Read,
    path: &str,
    offset: u64,
    size: u64,
    buf: &mut [u8],
) -> Result<IndexedFile> {
    let mut head = [0u8; 8];
    let n = read_up_to(entry, &mut head).map_err(|e| read_error(e, &Some(path.into())))?;
    let head = head[..n].to_vec();
    let format = plain::candidate(path, &head);
    let json = keep_json(path);
    let mut sink = Sink {
        hasher: blob_name(path).is_none().then(|| Algorithm::Sha256.hasher()),
        data: (json || size <= JSON_LIMIT).then(|| Vec::with_capacity(size as usize)),
        decided: json,
        copied: 0,
    };
    let mut measure = format.map(|_| Measure::hashing());
    let input = io::Cursor::new(&head[..]).chain(entry);
    let passed = plain::pass(input, &mut sink, measure.as_mut().map(|m| m as &mut dyn Write), buf);
    let undecodable = passed.map_err(|fault| match fault {
        Fault::Input(e) | Fault::Output(e) => read_error(e, &Some(path.into())),
    })?;
    if sink.copied != size {
        return Err(Error::Truncated { entry: Some(path.into()) });
    }
    if !sink.decided {
        // Nothing but white space: not a JSON document.
        sink.data = None;
    }
    let plain = match (format, measure) {
        (Some(format), Some(m)) => {
            let result = match undecodable {
                None => Ok(m.facts()),
                Some(e) => Err(e.to_string()),
            };
            Some(Decoded { format, result })
        }
        _ => None,
    };
    Ok(IndexedFile {
        offset,
        size,
        head,
        data: sink.data,
        digest: RefCell::new(sink.hasher.map(ocil_layout::Hasher::finish)),
        plain: RefCell::new(plain),
    })
}

/// Where a streamed file's bytes go: a hasher, and memory while it may be a JSON document
/// (one of the documents by name, or a small file whose first non-blank byte opens an
/// object or an array).
struct Sink {
    hasher: Option<ocil_layout::Hasher>,
    data: Option<Vec<u8>>,
    /// Whether `data` is known to be wanted (or was dropped).
    decided: bool,
    copied: u64,
}

impl Write for Sink {
    fn write(&mut self, chunk: &[u8]) -> io::Result<usize> {
        if !self.decided
            && let Some(first) = chunk.iter().find(|b| !b.is_ascii_whitespace())
        {
            self.decided = true;
            if !matches!(first, b'{' | b'[') {
                self.data = None;
            }
        }
        if let Some(d) = self.data.as_mut() {
            d.extend_from_slice(chunk);
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(chunk);
        }
        self.copied += chunk.len() as u64;
        Ok(chunk.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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

    /// The facts of a file decompressed, when it is an xz or bzip2 candidate
    /// ([`plain::candidate`]): known from the pass, or found by offset the first time.
    pub(crate) fn plain_facts(&self, path: &str, f: &IndexedFile) -> Result<Option<FileFacts>> {
        let Some(format) = plain::candidate(path, &f.head) else { return Ok(None) };
        if let Some(decoded) = f.plain.borrow().as_ref() {
            return decoded.get(path).cloned().map(Some);
        }
        let mut measure = Measure::hashing();
        let mut buf = vec![0u8; 256 * 1024];
        let passed = plain::pass(self.reader(path, f)?, io::sink(), Some(&mut measure), &mut buf);
        let undecodable = passed.map_err(|fault| match fault {
            Fault::Input(e) | Fault::Output(e) => input_error(e, &Some(path.into())),
        })?;
        let result = match undecodable {
            None => Ok(measure.facts()),
            Some(e) => Err(e.to_string()),
        };
        let decoded = Decoded { format, result };
        let facts = decoded.get(path).cloned();
        *f.plain.borrow_mut() = Some(decoded);
        facts.map(Some)
    }

    /// A reader over a file's bytes decompressed (xz or bzip2), by offset. As
    /// [`TarIndex::reader`], read it to the end before reading other entries.
    pub(crate) fn plain_reader(&self, path: &str, f: &IndexedFile) -> Result<Box<dyn Read + '_>> {
        let d = ocil_codec::decompress(self.reader(path, f)?).map_err(|e| match e {
            ocil_codec::Error::Read(e) => input_error(e, &Some(path.into())),
            e => Error::Undecodable {
                entry: path.into(),
                format: Format::sniff(&f.head).as_str(),
                source: io::Error::other(e),
            },
        })?;
        Ok(d.reader)
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
