//! Decompression: the format sniffed from a stream's first bytes and undone on the fly.

use std::io::{self, Read};

use ocil_layout::Compression;

use crate::{Error, Result};

/// What a stream's first bytes say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// Not compressed (or in a format not recognised: a tar, JSON, anything).
    Plain,
    /// gzip (RFC 1952), possibly several members.
    Gzip,
    /// zstd (RFC 8878).
    Zstd,
    /// xz.
    Xz,
    /// bzip2.
    Bzip2,
}

/// The longest magic number [`Format::sniff`] looks at.
const MAGIC_LEN: usize = 6;

impl Format {
    /// The format of a stream from its first bytes (6 are enough).
    pub fn sniff(head: &[u8]) -> Format {
        if head.starts_with(&[0x1f, 0x8b]) {
            Format::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Format::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Format::Xz
        } else if head.starts_with(b"BZh") {
            Format::Bzip2
        } else {
            Format::Plain
        }
    }

    /// Short name: `none`, `gzip`, `zstd`, `xz`, `bzip2`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Plain => "none",
            Format::Gzip => "gzip",
            Format::Zstd => "zstd",
            Format::Xz => "xz",
            Format::Bzip2 => "bzip2",
        }
    }

    /// The layer compression this format is, when ocil decodes it.
    pub fn compression(self) -> Option<Compression> {
        match self {
            Format::Plain => Some(Compression::None),
            Format::Gzip => Some(Compression::Gzip),
            Format::Zstd => Some(Compression::Zstd),
            Format::Xz | Format::Bzip2 => None,
        }
    }
}

/// A stream opened by [`decompress`].
pub struct Decompressed<'a> {
    /// The format found.
    pub format: Format,
    /// Whether the input was empty (then `format` is `Plain` and `reader` gives nothing).
    pub empty: bool,
    /// The decompressed bytes.
    pub reader: Box<dyn Read + 'a>,
}

impl std::fmt::Debug for Decompressed<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decompressed")
            .field("format", &self.format)
            .field("empty", &self.empty)
            .finish_non_exhaustive()
    }
}

/// Open a (possibly compressed) stream: sniff its format from the first bytes and return a
/// reader of the decompressed bytes: gzip and bzip2 with every member, xz with every stream,
/// as `docker load` and GNU tar read them.
pub fn decompress<'a>(mut reader: impl Read + 'a) -> Result<Decompressed<'a>> {
    // A pipe may deliver fewer bytes per read than the magic needs.
    let mut head = [0u8; MAGIC_LEN];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Read(e)),
        }
    }
    let head = &head[..n];
    let format = Format::sniff(head);
    let whole = io::Cursor::new(head.to_vec()).chain(reader);
    let reader: Box<dyn Read + 'a> = match format {
        Format::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(whole)),
        Format::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(whole)),
        _ => {
            let compression = format.compression().unwrap_or(Compression::None);
            decoder(whole, compression).map_err(|source| Error::Decoder { format, source })?
        }
    };
    Ok(Decompressed { format, empty: n == 0, reader })
}

/// A reader of the decompressed bytes of a stream whose compression is known.
pub fn decoder<'a>(
    reader: impl Read + 'a,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(reader),
        // `docker save | gzip` and pigz may write several members.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(reader)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Encoder;
    use std::io::Write;

    #[test]
    fn sniffs() {
        assert_eq!(Format::sniff(&[0x1f, 0x8b, 8]), Format::Gzip);
        assert_eq!(Format::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Format::Zstd);
        assert_eq!(Format::sniff(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Format::Xz);
        assert_eq!(Format::sniff(b"BZh91AY"), Format::Bzip2);
        assert_eq!(Format::sniff(b"usta"), Format::Plain);
        assert_eq!(Format::sniff(b""), Format::Plain);
    }

    /// A reader that gives one byte per read, as a slow pipe may.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
            if buf.is_empty() {
                return Ok(0);
            }
            buf[0] = *first;
            self.0 = rest;
            Ok(1)
        }
    }

    #[test]
    fn round_trips_every_compression_through_a_trickle() {
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let mut enc = Encoder::new(Vec::new(), c).unwrap();
            enc.write_all(b"some tar bytes").unwrap();
            let bytes = enc.finish().unwrap();
            let mut d = decompress(Trickle(&bytes)).unwrap();
            assert_eq!(d.format.compression(), Some(c));
            assert!(!d.empty);
            let mut out = Vec::new();
            d.reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, b"some tar bytes");
        }
    }

    #[test]
    fn several_gzip_members_are_one_stream() {
        let mut bytes = Vec::new();
        for part in [&b"ab"[..], b"cd"] {
            let mut enc = Encoder::new(Vec::new(), Compression::Gzip).unwrap();
            enc.write_all(part).unwrap();
            bytes.extend(enc.finish().unwrap());
        }
        let mut out = Vec::new();
        decompress(&bytes[..]).unwrap().reader.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn empty() {
        let d = decompress(&b""[..]).unwrap();
        assert!(d.empty);
        assert_eq!(d.format, Format::Plain);
    }

    #[test]
    fn xz_and_bzip2_with_several_streams() {
        let mut xz = Vec::new();
        let mut bz = Vec::new();
        for part in [&b"ab"[..], b"cd"] {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(part).unwrap();
            xz.extend(e.finish().unwrap());
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::best());
            e.write_all(part).unwrap();
            bz.extend(e.finish().unwrap());
        }
        for (bytes, format) in [(xz, Format::Xz), (bz, Format::Bzip2)] {
            let mut d = decompress(Trickle(&bytes)).unwrap();
            assert_eq!(d.format, format);
            assert_eq!(d.format.compression(), None, "not a layer compression");
            let mut out = Vec::new();
            d.reader.read_to_end(&mut out).unwrap();
            assert_eq!(out, b"abcd");
        }
    }
}
