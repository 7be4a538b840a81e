//! docker-save layers compressed with xz or bzip2: `docker load` decompresses them (its layer
//! decompression sniffs gzip, bzip2, xz and zstd), but no OCI or Docker media type names
//! those compressions, so an import stores such a layer as the plain tar it holds (whose
//! digest is then the config's diff_id) and the manifest types it as a plain tar.
//!
//! A candidate is told by its first bytes ([`candidate`]) and decompressed while its entry
//! passes by ([`pass`]): the raw bytes still go where they always go, so the archive is
//! read once. A file that does not decompress is not an error until a manifest names it as
//! a layer ([`Decoded`] keeps why).

use std::io::{self, Read, Write};

use ocil_codec::Format;
use ocil_layout::{Algorithm, Hasher};

use crate::source::{FileFacts, blob_name, keep_json};
use crate::{Error, Result};

/// The compression to undo when a file is stored decompressed: an entry not named by its
/// digest (a docker-save layer, never an OCI blob, whose bytes are its name), not one of the
/// JSON documents, whose first bytes say xz or bzip2.
pub(crate) fn candidate(path: &str, head: &[u8]) -> Option<Format> {
    if blob_name(path).is_some() || keep_json(path) {
        return None;
    }
    match Format::sniff(head) {
        f @ (Format::Xz | Format::Bzip2) => Some(f),
        _ => None,
    }
}

/// A candidate's decompressed form (`T`: staged, or only its facts), or why it has none.
#[derive(Debug)]
pub(crate) struct Decoded<T> {
    /// The compression undone.
    pub(crate) format: Format,
    /// The decompressed file, or the decoder's complaint.
    pub(crate) result: std::result::Result<T, String>,
}

impl<T> Decoded<T> {
    /// The decompressed file, or the error that names `entry`.
    pub(crate) fn get(&self, entry: &str) -> Result<&T> {
        self.result.as_ref().map_err(|reason| Error::Undecodable {
            entry: entry.into(),
            format: self.format.as_str(),
            source: io::Error::other(reason.clone()),
        })
    }
}

/// What stopped a [`pass`].
#[derive(Debug)]
pub(crate) enum Fault {
    /// Reading the input (the archive: truncated, malformed, unreadable).
    Input(io::Error),
    /// Writing the raw or the decompressed bytes.
    Output(io::Error),
}

/// Read `input` to its end, every byte into `raw`; with `plain`, also decompress the bytes
/// (xz or bzip2, as their first bytes say) into it. `Ok(Some(_))`: they do not decompress
/// (`plain` then holds part of them; `raw` still got every byte). `buf` is the copy buffer.
pub(crate) fn pass(
    input: impl Read,
    raw: impl Write,
    plain: Option<&mut dyn Write>,
    buf: &mut [u8],
) -> std::result::Result<Option<io::Error>, Fault> {
    let mut tee = Tee { input, raw, fault: None };
    let mut undecodable = None;
    if let Some(plain) = plain {
        let result = match ocil_codec::decompress(&mut tee) {
            Ok(mut d) => loop {
                match d.reader.read(buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => plain.write_all(&buf[..n]).map_err(Fault::Output)?,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            },
            Err(ocil_codec::Error::Read(e)) => Err(e),
            Err(e) => Err(io::Error::other(e)),
        };
        if let Some(fault) = tee.fault.take() {
            return Err(fault);
        }
        undecodable = result.err();
    }
    // The rest: all of it without `plain`; with it, what the decoder left after a failure.
    loop {
        match tee.read(buf) {
            Ok(0) => return Ok(undecodable),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(tee.fault.take().unwrap_or(Fault::Input(e))),
        }
    }
}

/// Passes what it reads to `raw`, and keeps the first failure of either side (a reader
/// above it sees only a stand-in).
struct Tee<R, W> {
    input: R,
    raw: W,
    fault: Option<Fault>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match self.input.read(buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Err(e),
            Err(e) => {
                self.fault = Some(Fault::Input(e));
                return Err(io::Error::other("the archive could not be read"));
            }
        };
        if let Err(e) = self.raw.write_all(&buf[..n]) {
            self.fault = Some(Fault::Output(e));
            return Err(io::Error::other("the entry could not be written"));
        }
        Ok(n)
    }
}

/// Measures what is written through it: size and first bytes.
pub(crate) struct Measure<W> {
    pub(crate) inner: W,
    pub(crate) size: u64,
    pub(crate) head: Vec<u8>,
}

impl<W: Write> Measure<W> {
    pub(crate) fn new(inner: W) -> Measure<W> {
        Measure { inner, size: 0, head: Vec::with_capacity(8) }
    }
}

impl Measure<HashSink> {
    /// Measure and hash (sha256) what is written.
    pub(crate) fn hashing() -> Measure<HashSink> {
        Measure::new(HashSink(Algorithm::Sha256.hasher()))
    }

    /// What was written: its digest, size and first bytes.
    pub(crate) fn facts(self) -> FileFacts {
        FileFacts { digest: self.inner.0.finish(), size: self.size, head: self.head }
    }
}

impl<W: Write> Write for Measure<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if self.head.len() < 8 {
            let take = (8 - self.head.len()).min(n);
            self.head.extend_from_slice(&buf[..take]);
        }
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Hashes what is written, and keeps nothing.
pub(crate) struct HashSink(Hasher);

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn candidates_are_docker_layers_only() {
        let packed = xz(b"tar");
        assert_eq!(candidate("abc/layer.tar", &packed), Some(Format::Xz));
        assert_eq!(candidate("l.tar", b"BZh91AY&"), Some(Format::Bzip2));
        assert_eq!(candidate("l.tar", &[0x1f, 0x8b, 8]), None, "gzip keeps its bytes");
        let named = format!("blobs/sha256/{}", "a".repeat(64));
        assert_eq!(candidate(&named, &packed), None, "a blob is its name");
        assert_eq!(candidate("manifest.json", &packed), None);
    }

    #[test]
    fn passes_every_byte_and_decompresses() {
        let packed = xz(b"some tar bytes");
        let mut raw = Vec::new();
        let mut plain = Measure::hashing();
        let out = pass(&packed[..], &mut raw, Some(&mut plain), &mut [0; 64]).unwrap();
        assert!(out.is_none());
        assert_eq!(raw, packed);
        let facts = plain.facts();
        assert_eq!(facts.digest, Algorithm::Sha256.digest_of(b"some tar bytes"));
        assert_eq!(facts.size, 14);
        assert_eq!(facts.head, b"some tar");
    }

    #[test]
    fn a_corrupt_stream_is_kept_raw_and_said_undecodable() {
        let mut packed = xz(b"some tar bytes");
        let n = packed.len();
        packed[n / 2] ^= 0xff;
        packed.extend_from_slice(b"trailing");
        let mut raw = Vec::new();
        let mut plain = Vec::new();
        let out = pass(&packed[..], &mut raw, Some(&mut plain), &mut [0; 64]).unwrap();
        assert!(out.is_some());
        assert_eq!(raw, packed, "every raw byte still passes");
    }

    #[test]
    fn input_failures_are_not_taken_for_the_decoder() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::UnexpectedEof, "cut"))
            }
        }
        let mut plain = Vec::new();
        match pass(Failing, io::sink(), Some(&mut plain), &mut [0; 64]) {
            Err(Fault::Input(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
    }
}
