//! The archive writer: ustar headers written by hand-picked fields (mtime fixed, uid/gid 0,
//! no user or group names, modes 0644/0755), so the same entries always give the same bytes,
//! over `ocil_codec`'s deterministic encoder.
//!
//! Unlike `tar::Builder`, nothing is written on drop: a failed export never ends its stream
//! with an end-of-archive marker, so a reader on the other side of a pipe sees a truncated
//! archive, never a short one that looks complete.

use std::io::{self, Write};

/// The output, compressed or not (with `ocil_codec`'s fixed settings).
pub(crate) type Sink<W> = ocil_codec::Encoder<W>;

/// End the compressed stream and flush the writer under it.
pub(crate) fn finish_sink<W: Write>(sink: Sink<W>) -> io::Result<W> {
    let mut out = sink.finish()?;
    out.flush()?;
    Ok(out)
}

const BLOCK: usize = 512;

/// A tar stream being written.
pub(crate) struct TarWriter<W: Write> {
    out: W,
    mtime: u64,
}

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W, mtime: u64) -> TarWriter<W> {
        TarWriter { out, mtime }
    }

    fn header(&self, path: &str, size: u64, kind: tar::EntryType) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_size(size);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(self.mtime);
        h.set_entry_type(kind);
        // ustar's name field holds 100 bytes (a longer path goes in a PAX record first, and
        // the name keeps its first 100 bytes, as Go's archive/tar does).
        let name = &mut h.as_old_mut().name;
        let n = path.len().min(name.len());
        name[..n].copy_from_slice(&path.as_bytes()[..n]);
        h.set_cksum();
        h
    }

    /// The header of an entry, preceded by a PAX `path` record when the path is too long
    /// for ustar's name field (`blobs/sha512/<128 hex>`).
    fn write_header(&mut self, path: &str, size: u64, kind: tar::EntryType) -> io::Result<()> {
        if path.len() > 100 {
            let record = pax_record("path", path);
            let pax = self.header("PaxHeader", record.len() as u64, tar::EntryType::XHeader);
            self.out.write_all(pax.as_bytes())?;
            self.out.write_all(&record)?;
            self.pad(record.len() as u64)?;
        }
        let h = self.header(path, size, kind);
        self.out.write_all(h.as_bytes())
    }

    /// A directory entry (`path` ends with `/`).
    pub(crate) fn dir(&mut self, path: &str) -> io::Result<()> {
        self.write_header(path, 0, tar::EntryType::Directory)
    }

    /// A file from memory.
    pub(crate) fn file(&mut self, path: &str, bytes: &[u8]) -> io::Result<()> {
        self.write_header(path, bytes.len() as u64, tar::EntryType::Regular)?;
        self.out.write_all(bytes)?;
        self.pad(bytes.len() as u64)
    }

    /// Start a file of `size` bytes: its header. The data follows through
    /// [`data`](Self::data), then [`end_file`](Self::end_file) pads it.
    pub(crate) fn begin_file(&mut self, path: &str, size: u64) -> io::Result<()> {
        self.write_header(path, size, tar::EntryType::Regular)
    }

    /// Bytes of the file begun last.
    pub(crate) fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)
    }

    /// End the file begun last (`size` bytes were written).
    pub(crate) fn end_file(&mut self, size: u64) -> io::Result<()> {
        self.pad(size)
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rest = (size % BLOCK as u64) as usize;
        if rest != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rest])?;
        }
        Ok(())
    }

    /// The end-of-archive marker (two zero blocks); the writer back.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// `n` rounded up to whole blocks.
fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// The bytes [`TarWriter`] writes for an entry of `size` bytes at `path`: a PAX record
/// first when the path is long, the header, the data padded to whole blocks.
pub(crate) fn entry_bytes(path: &str, size: u64) -> u64 {
    let pax = if path.len() > 100 {
        BLOCK as u64 + padded(pax_record("path", path).len() as u64)
    } else {
        0
    };
    pax + BLOCK as u64 + padded(size)
}

/// The bytes of the end-of-archive marker.
pub(crate) const END_BYTES: u64 = 2 * BLOCK as u64;

/// One PAX record: `<length> <key>=<value>\n`, the length counting itself.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, `=`, newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_back_with_fixed_metadata() {
        let mut t = TarWriter::new(Vec::new(), 7);
        t.dir("blobs/").unwrap();
        t.file("oci-layout", b"{}").unwrap();
        let long = format!("blobs/sha512/{}", "a".repeat(128));
        t.begin_file(&long, 3).unwrap();
        t.data(b"abc").unwrap();
        t.end_file(3).unwrap();
        let bytes = t.finish().unwrap();
        assert_eq!(bytes.len() % 512, 0);
        let mut a = tar::Archive::new(&bytes[..]);
        let got: Vec<(String, u64, u32, u64, u64)> = a
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let h = e.header();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    h.size().unwrap(),
                    h.mode().unwrap(),
                    h.mtime().unwrap(),
                    h.uid().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("blobs/".into(), 0, 0o755, 7, 0),
                ("oci-layout".into(), 2, 0o644, 7, 0),
                (long, 3, 0o644, 7, 0)
            ]
        );
    }

    #[test]
    fn entry_bytes_are_what_the_writer_writes() {
        let long = format!("blobs/sha512/{}", "a".repeat(128));
        for (path, size) in [("oci-layout", 30u64), ("blobs/", 0), (long.as_str(), 513), ("x", 512)]
        {
            let mut t = TarWriter::new(Vec::new(), 0);
            t.begin_file(path, size).unwrap();
            t.data(&vec![1u8; size as usize]).unwrap();
            t.end_file(size).unwrap();
            let bytes = t.finish().unwrap();
            assert_eq!(bytes.len() as u64, entry_bytes(path, size) + END_BYTES, "{path}");
        }
    }

    #[test]
    fn pax_records_count_their_own_length() {
        assert_eq!(pax_record("path", "a"), b"9 path=a\n");
        let r = pax_record("path", &"x".repeat(90));
        assert_eq!(r.len(), 99);
        assert!(r.starts_with(b"99 path="));
        let r = pax_record("path", &"x".repeat(100));
        assert_eq!(r.len(), 110);
        assert!(r.starts_with(b"110 path="));
    }

    #[test]
    fn compressed_sinks_are_deterministic() {
        for c in [ocil_layout::Compression::Gzip, ocil_layout::Compression::Zstd] {
            let make = || {
                let mut s = Sink::new(Vec::new(), c).unwrap();
                s.write_all(&b"hello ".repeat(1000)).unwrap();
                finish_sink(s).unwrap()
            };
            let a = make();
            assert_eq!(a, make());
            assert_eq!(ocil_codec::Format::sniff(&a).compression(), Some(c));
        }
    }
}
