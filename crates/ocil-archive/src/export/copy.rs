//! Copying a blob into the archive with its digest checked on the way.
//!
//! The bytes hashed are the bytes written, never a second read of the file. Blobs of a
//! megabyte or more are hashed on a second thread, on the very buffers being written
//! (shared, not copied), so hashing overlaps reading and writing; small ones are hashed in
//! line, where a hand-off would cost more than it saves. At most a few buffers are in flight,
//! so memory does not grow with the blob or the archive.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};

use ocil_layout::progress::Progress;
use ocil_layout::{Algorithm, Digest, Hasher};

use super::tar::TarWriter;

/// Bytes read and written at a time.
const CHUNK: usize = 1 << 20;

/// Why copying a blob failed.
#[derive(Debug)]
pub(crate) enum BlobCopyError {
    /// Reading the source.
    Read(io::Error),
    /// The source ended early or ran long.
    Size { expected: u64, found: u64 },
    /// Writing the archive.
    Write(io::Error),
}

enum Msg {
    Start(Algorithm),
    Chunk(Arc<Vec<u8>>),
    End,
}

/// The hashing thread's side of the copier.
pub(crate) struct Copier {
    tx: SyncSender<Msg>,
    back: Receiver<Arc<Vec<u8>>>,
    done: Receiver<Digest>,
}

/// Run `f` with a copier whose hashing thread lives as long as `f`.
pub(crate) fn with_copier<R>(f: impl FnOnce(&mut Copier) -> R) -> R {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Msg>(4);
        let (back_tx, back) = channel();
        let (done_tx, done) = channel();
        scope.spawn(move || hash_loop(rx, back_tx, done_tx));
        let mut copier = Copier { tx, back, done };
        f(&mut copier)
        // The copier (and its sender) is dropped here: the thread's loop ends.
    })
}

fn hash_loop(rx: Receiver<Msg>, back: Sender<Arc<Vec<u8>>>, done: Sender<Digest>) {
    let mut hasher: Option<Hasher> = None;
    for msg in rx {
        match msg {
            Msg::Start(alg) => hasher = Some(alg.hasher()),
            Msg::Chunk(chunk) => {
                if let Some(h) = hasher.as_mut() {
                    h.update(&chunk);
                }
                let _ = back.send(chunk);
            }
            Msg::End => {
                if let Some(h) = hasher.take() {
                    let _ = done.send(h.finish());
                }
            }
        }
    }
}

fn thread_gone() -> BlobCopyError {
    BlobCopyError::Read(io::Error::other("the hashing thread stopped"))
}

/// Read until `buf` is full or the reader ends; the number of bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, BlobCopyError> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(BlobCopyError::Read(e)),
        }
    }
    Ok(n)
}

impl Copier {
    /// A buffer of `CHUNK` bytes: one the hashing thread gave back, or a new one.
    fn buffer(&mut self) -> Vec<u8> {
        while let Ok(returned) = self.back.try_recv() {
            if let Ok(mut v) = Arc::try_unwrap(returned) {
                v.resize(CHUNK, 0);
                return v;
            }
        }
        vec![0u8; CHUNK]
    }

    /// Copy the `size` bytes of `reader` into the archive as the file `path`; the digest
    /// (with `alg`) of exactly the bytes written.
    pub(crate) fn copy<W: Write>(
        &mut self,
        tar: &mut TarWriter<W>,
        path: &str,
        size: u64,
        alg: Algorithm,
        mut reader: impl Read,
        progress: &dyn Progress,
    ) -> Result<Digest, BlobCopyError> {
        tar.begin_file(path, size).map_err(BlobCopyError::Write)?;
        let threaded = size >= CHUNK as u64;
        let mut inline = (!threaded).then(|| alg.hasher());
        if threaded {
            self.tx.send(Msg::Start(alg)).map_err(|_| thread_gone())?;
        }
        let mut copied = 0u64;
        loop {
            let mut buf = self.buffer();
            let n = read_full(&mut reader, &mut buf)?;
            if n == 0 {
                break;
            }
            copied += n as u64;
            if copied > size {
                return Err(BlobCopyError::Size { expected: size, found: copied });
            }
            buf.truncate(n);
            match inline.as_mut() {
                Some(h) => {
                    h.update(&buf);
                    tar.data(&buf).map_err(BlobCopyError::Write)?;
                }
                None => {
                    let shared = Arc::new(buf);
                    self.tx.send(Msg::Chunk(shared.clone())).map_err(|_| thread_gone())?;
                    tar.data(&shared).map_err(BlobCopyError::Write)?;
                }
            }
            progress.advance(n as u64);
        }
        if copied != size {
            return Err(BlobCopyError::Size { expected: size, found: copied });
        }
        tar.end_file(size).map_err(BlobCopyError::Write)?;
        match inline {
            Some(h) => Ok(h.finish()),
            None => {
                self.tx.send(Msg::End).map_err(|_| thread_gone())?;
                self.done.recv().map_err(|_| thread_gone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ocil_layout::progress::Silent;

    use super::*;

    fn copy_bytes(bytes: &[u8], size: u64) -> Result<(Digest, Vec<u8>), BlobCopyError> {
        with_copier(|c| {
            let mut tar = TarWriter::new(Vec::new(), 0);
            let d = c.copy(&mut tar, "x", size, Algorithm::Sha256, bytes, &Silent)?;
            Ok((d, tar.finish().map_err(BlobCopyError::Write)?))
        })
    }

    #[test]
    fn small_and_large_blobs_hash_the_bytes_written() {
        for len in [0, 5, CHUNK - 1, CHUNK, 3 * CHUNK + 7] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let (digest, tar) = copy_bytes(&bytes, len as u64).unwrap();
            assert_eq!(digest, Algorithm::Sha256.digest_of(&bytes), "{len}");
            assert_eq!(&tar[512..512 + len], &bytes[..], "{len}");
        }
    }

    #[test]
    fn a_short_or_long_source_is_an_error() {
        assert!(matches!(
            copy_bytes(b"abc", 4),
            Err(BlobCopyError::Size { expected: 4, found: 3 })
        ));
        assert!(matches!(copy_bytes(b"abc", 2), Err(BlobCopyError::Size { expected: 2, .. })));
        let big = vec![1u8; 2 * CHUNK];
        let r = copy_bytes(&big, 2 * CHUNK as u64 + 1);
        assert!(matches!(r, Err(BlobCopyError::Size { found, .. }) if found == 2 * CHUNK as u64));
    }

    #[test]
    fn one_copier_serves_many_blobs() {
        with_copier(|c| {
            let mut tar = TarWriter::new(Vec::new(), 0);
            for len in [2 * CHUNK, 10, CHUNK + 1] {
                let bytes = vec![len as u8; len];
                let d = c
                    .copy(&mut tar, "x", len as u64, Algorithm::Sha512, &bytes[..], &Silent)
                    .unwrap();
                assert_eq!(d, Algorithm::Sha512.digest_of(&bytes));
            }
        });
    }
}
