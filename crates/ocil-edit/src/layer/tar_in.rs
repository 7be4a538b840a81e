//! An existing tar (plain, gzip, zstd, xz or bzip2) as a layer: decompressed, checked while it streams
//! through, and passed on byte for byte, so its diff_id is the digest of the tar as given.
//!
//! Checks: it is a tar (the first header's checksum), it ends with an end-of-archive block
//! (a tar cut at an entry boundary is refused), and no entry name or hard-link target is
//! absolute or has a `..` component. Symlink targets may be anything: they are resolved
//! inside the container's root when it is unpacked.

use std::io::{self, Read, Write};

use ocil_codec::names::{Unsafe, check_layer_name};
use ocil_codec::tar_fault::{Origin, TarFault, TarInput};
use ocil_layout::{Compression, Layout};

use super::{LayerSink, StagedLayer};
use crate::Error;

/// What a checked tar held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TarFacts {
    /// The compression of the input (gzip, zstd, xz, bzip2 or none: the layer is written
    /// in the compression asked for, whatever the input's).
    pub input_compression: ocil_codec::Format,
    /// The number of entries.
    pub entries: u64,
    /// The uncompressed size.
    pub size: u64,
}

/// Read a (possibly compressed) tar from `reader`, check it, and write the uncompressed tar
/// to `out` unchanged. `source_name` names the input in errors.
pub fn check_tar(reader: impl Read, source_name: &str, out: impl Write) -> Result<TarFacts, Error> {
    let bad = |reason: String| Error::BadTar { source_name: source_name.into(), reason };
    let read_err = |e: io::Error| Error::Source { op: "read", path: source_name.into(), source: e };
    // The tar parser reads 512-byte headers: read the input in large blocks.
    let reader = io::BufReader::with_capacity(256 * 1024, reader);
    let (compression, input) = decompress(reader, source_name)?;
    let mut tee = Tee { inner: input, out, count: 0, write_error: None };
    let mut archive = tar::Archive::new(TarInput::new(&mut tee));
    let mut entries_seen = 0u64;
    let mut last_end = 0u64;
    let scanned = (|| -> Result<(), Error> {
        let iter = archive.entries().map_err(read_err)?;
        for entry in iter {
            // The parser's own text can quote the tar: its errors are said in our words.
            let entry = entry.map_err(|e| match Origin::of(e) {
                Origin::Parser(TarFault::BadChecksum | TarFault::InvalidField("checksum"))
                    if entries_seen == 0 =>
                {
                    bad("not a tar archive (its first header is not a valid tar header)".into())
                }
                // Not even one whole header: no tar at all (a short text file).
                Origin::Parser(TarFault::Truncated) if entries_seen == 0 => {
                    bad("not a tar archive (it is shorter than one tar header)".into())
                }
                Origin::Parser(TarFault::Truncated) => {
                    bad(format!("it is truncated, in or after entry {entries_seen}"))
                }
                Origin::Input(e)
                    if e.kind() == io::ErrorKind::UnexpectedEof
                        || e.to_string().to_lowercase().contains("eof") =>
                {
                    bad(format!("it is truncated, in or after entry {entries_seen}"))
                }
                Origin::Parser(fault) => bad(format!("entry {}: {fault}", entries_seen + 1)),
                // The decompressor's own error: the compressed stream is corrupt.
                Origin::Input(e) if compression != ocil_codec::Format::Plain => bad(format!(
                    "cannot decompress it ({}), in or after entry {entries_seen}: {e}",
                    compression.as_str()
                )),
                Origin::Input(e) => bad(format!("entry {}: {e}", entries_seen + 1)),
            })?;
            entries_seen += 1;
            let name = entry.path_bytes();
            if let Err(reason) = check_layer_name(&name) {
                return Err(Error::UnsafeEntry {
                    source_name: source_name.into(),
                    entry: String::from_utf8_lossy(&name).into_owned(),
                    reason: reason.reason(),
                });
            }
            if entry.header().entry_type() == tar::EntryType::Link
                && let Some(target) = entry.link_name_bytes()
                && let Err(reason) = check_layer_name(&target)
            {
                return Err(Error::UnsafeEntry {
                    source_name: source_name.into(),
                    entry: String::from_utf8_lossy(&name).into_owned(),
                    reason: match reason {
                        Unsafe::Absolute => "is a hard link to an absolute path",
                        _ => "is a hard link whose target has a `..` component",
                    },
                });
            }
            let size = entry.header().entry_size().map_err(|e| match Origin::of(e) {
                Origin::Parser(fault) => bad(format!("entry {entries_seen}: {fault}")),
                Origin::Input(e) => bad(format!("entry {entries_seen}: {e}")),
            })?;
            last_end = entry.raw_file_position() + size.div_ceil(512) * 512;
        }
        Ok(())
    })();
    if let Some(w) = tee.write_error.take() {
        return Err(Error::Write(w));
    }
    scanned?;
    // The rest (end-of-archive blocks and padding) belongs to the diff_id too.
    io::copy(&mut tee, &mut io::sink()).map_err(|e| match tee.write_error.take() {
        Some(w) => Error::Write(w),
        None => read_err(e),
    })?;
    if let Some(w) = tee.write_error.take() {
        return Err(Error::Write(w));
    }
    if tee.count == 0 {
        return Err(bad("it is empty".into()));
    }
    if tee.count < last_end + 512 {
        return Err(bad(format!(
            "it is truncated: it stops after {} bytes without an end-of-archive block",
            tee.count
        )));
    }
    Ok(TarFacts { input_compression: compression, entries: entries_seen, size: tee.count })
}

/// Check a tar and stage it (re-compressed as asked) as a layer blob of `layout`.
pub fn tar_layer(
    layout: &Layout,
    reader: impl Read,
    source_name: &str,
    compression: Compression,
) -> Result<StagedLayer, Error> {
    let mut sink = LayerSink::new(layout, compression)?;
    check_tar(reader, source_name, &mut sink)?;
    sink.finish(Vec::new())
}

/// Open a (possibly compressed) tar: its compression and the decompressed bytes.
fn decompress<'a>(
    reader: impl Read + 'a,
    source_name: &str,
) -> Result<(ocil_codec::Format, Box<dyn Read + 'a>), Error> {
    let bad = |reason: String| Error::BadTar { source_name: source_name.into(), reason };
    match ocil_codec::decompress(reader) {
        Ok(d) => Ok((d.format, d.reader)),
        Err(ocil_codec::Error::Read(e) | ocil_codec::Error::Decoder { source: e, .. }) => {
            Err(Error::Source { op: "read", path: source_name.into(), source: e })
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Passes what the tar parser reads on to `out`, counting it.
struct Tee<R, W> {
    inner: R,
    out: W,
    count: u64,
    write_error: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Err(e) = self.out.write_all(&buf[..n]) {
            let shown = io::Error::new(e.kind(), e.to_string());
            self.write_error = Some(e);
            return Err(shown);
        }
        self.count += n as u64;
        Ok(n)
    }
}
