//! Deterministic compression: fixed settings, so the same input always gives the same bytes
//! (and so the same digest) on every machine.

use std::io::{self, Write};

use ocil_layout::Compression;

/// gzip level of every stream ocil writes (zlib's default).
pub const GZIP_LEVEL: u32 = 6;
/// zstd level of every stream ocil writes (zstd's default).
pub const ZSTD_LEVEL: i32 = 3;

/// A writer that compresses what it is given (or passes it on) with fixed settings:
/// gzip with mtime 0, no file name, OS "unknown" and [`GZIP_LEVEL`]; zstd at
/// [`ZSTD_LEVEL`], one thread, no checksum and no content size.
///
/// Nothing is written on drop: a stream abandoned half way ends without its trailer, so a
/// reader sees it cut short, never complete.
pub struct Encoder<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    Plain(W),
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> std::fmt::Debug for Encoder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = match self.inner {
            Inner::Plain(_) => Compression::None,
            Inner::Gzip(_) => Compression::Gzip,
            Inner::Zstd(_) => Compression::Zstd,
        };
        f.debug_struct("Encoder").field("compression", &c).finish_non_exhaustive()
    }
}

impl<W: Write> Encoder<W> {
    /// Start a stream into `out`.
    pub fn new(out: W, compression: Compression) -> io::Result<Encoder<W>> {
        let inner = match compression {
            Compression::None => Inner::Plain(out),
            Compression::Gzip => Inner::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .operating_system(255)
                    .write(out, flate2::Compression::new(GZIP_LEVEL)),
            ),
            Compression::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(out, ZSTD_LEVEL)?;
                enc.include_checksum(false)?;
                enc.include_contentsize(false)?;
                Inner::Zstd(enc)
            }
        };
        Ok(Encoder { inner })
    }

    /// End the compressed stream (its trailer) and give back the writer, not flushed.
    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Inner::Plain(w) => Ok(w),
            Inner::Gzip(e) => e.finish(),
            Inner::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Plain(w) => w.write(buf),
            Inner::Gzip(e) => e.write(buf),
            Inner::Zstd(e) => e.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(w) => w.write_all(buf),
            Inner::Gzip(e) => e.write_all(buf),
            Inner::Zstd(e) => e.write_all(buf),
        }
    }

    /// Flushes a plain stream only: flushing a compressor would end a block early and
    /// change the bytes it writes.
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Plain(w) => w.flush(),
            Inner::Gzip(_) | Inner::Zstd(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(c: Compression, data: &[u8]) -> Vec<u8> {
        let mut e = Encoder::new(Vec::new(), c).unwrap();
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn fixed_headers() {
        let gz = encode(Compression::Gzip, b"x");
        // ID, CM=deflate, no flags, MTIME 0, XFL 0 (level 6), OS 255.
        assert_eq!(gz[..10], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        let zst = encode(Compression::Zstd, b"x");
        assert_eq!(zst[..4], [0x28, 0xb5, 0x2f, 0xfd]);
        // Frame header descriptor: no checksum flag, no content size.
        assert_eq!(zst[4] & 0b1100_0100, 0);
        assert_eq!(encode(Compression::None, b"x"), b"x");
    }

    #[test]
    fn same_input_same_bytes() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for c in [Compression::Gzip, Compression::Zstd] {
            assert_eq!(encode(c, &data), encode(c, &data));
        }
    }
}
