//! GNU tar's sparse files in PAX form, which the `tar` crate does not expand (it reads the
//! old GNU `S` entries itself): formats 0.0 (`GNU.sparse.offset`/`numbytes` record pairs),
//! 0.1 (`GNU.sparse.map`) and 1.0 (`GNU.sparse.major=1`, the map in decimal lines at the
//! start of the entry's data, padded to a 512-byte block). `GNU.sparse.name` is the real
//! name (the header's is `DIR/GNUSparseFile.PID/NAME`), `GNU.sparse.size`/`realsize` the
//! real size. [`SparseFile::reader`] gives the file's whole content, holes as zeros.
//!
//! What GNU tar writes with `--sparse --format=posix [--sparse-version=V]`; BSD tar and
//! Go's archive/tar read the same records.

use std::io::{self, Read};

/// Map segments at most (a map is only as long as the entry's data or its PAX record, but
/// a count is a number: bound it before it sizes anything).
const MAX_SEGMENTS: u64 = 1 << 20;

/// One stored run of a sparse file: `len` bytes of data at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Where the run starts in the file.
    pub offset: u64,
    /// How many bytes of data it holds.
    pub len: u64,
}

/// A PAX sparse entry, as its records describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SparseFile {
    /// The file's real name (`GNU.sparse.name`), when given.
    pub name: Option<Vec<u8>>,
    /// The file's real size.
    pub size: u64,
    /// The map from the records (0.0, 0.1); `None` for 1.0, whose map starts the data.
    map: Option<Vec<Segment>>,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("GNU sparse entry: {}", what.into()))
}

fn number(key: &str, v: &[u8]) -> io::Result<u64> {
    std::str::from_utf8(v)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("`{key}` is not a number")))
}

impl SparseFile {
    /// Read an entry's PAX records (key, value, in order); `None` when they describe no
    /// sparse file. An error names the record that is wrong.
    pub fn from_pax<'a>(
        records: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> io::Result<Option<SparseFile>> {
        let (mut name, mut size, mut realsize, mut major) = (None, None, None, None);
        let (mut map, mut pairs, mut pending, mut numblocks) = (None, Vec::new(), None, None);
        let mut any = false;
        for (key, v) in records {
            let Some(k) = key.strip_prefix("GNU.sparse.") else { continue };
            any = true;
            match k {
                "name" => name = Some(v.to_vec()),
                "size" => size = Some(number(key, v)?),
                "realsize" => realsize = Some(number(key, v)?),
                "major" => major = Some(number(key, v)?),
                "minor" => {
                    number(key, v)?;
                }
                "numblocks" => numblocks = Some(number(key, v)?),
                "offset" => {
                    if pending.is_some() {
                        return Err(invalid("`GNU.sparse.offset` without its `numbytes`"));
                    }
                    pending = Some(number(key, v)?);
                }
                "numbytes" => {
                    let offset = pending
                        .take()
                        .ok_or_else(|| invalid("`GNU.sparse.numbytes` without its `offset`"))?;
                    if pairs.len() as u64 >= MAX_SEGMENTS {
                        return Err(invalid("too many segments"));
                    }
                    pairs.push(Segment { offset, len: number(key, v)? });
                }
                "map" => map = Some(parse_map_record(v)?),
                _ => {}
            }
        }
        if !any {
            return Ok(None);
        }
        let map = match (major, map) {
            (Some(1), _) => None,
            (Some(m), _) => return Err(invalid(format!("unknown format version {m}"))),
            (None, Some(m)) => Some(m),
            (None, None) => {
                if pending.is_some() {
                    return Err(invalid("`GNU.sparse.offset` without its `numbytes`"));
                }
                Some(pairs)
            }
        };
        if let (Some(n), Some(m)) = (numblocks, &map) {
            if n != m.len() as u64 {
                return Err(invalid(format!(
                    "`GNU.sparse.numblocks` is {n} but the map has {}",
                    m.len()
                )));
            }
        }
        let size = match (major, realsize, size) {
            (Some(_), Some(s), _) | (Some(_), None, Some(s)) | (None, _, Some(s)) => s,
            _ => return Err(invalid("no real size (`GNU.sparse.size` or `realsize`)")),
        };
        if let Some(m) = &map {
            check_map(m, size)?;
        }
        Ok(Some(SparseFile { name, size, map }))
    }

    /// The file's whole content from the entry's data (for 1.0, the map is read from it
    /// first): a reader of exactly [`SparseFile::size`] bytes, holes as zeros; data shorter
    /// than the map says is an `UnexpectedEof`.
    pub fn reader<R: Read>(self, mut data: R) -> io::Result<SparseReader<R>> {
        let map = match self.map {
            Some(m) => m,
            None => {
                let m = read_map_block(&mut data)?;
                check_map(&m, self.size)?;
                m
            }
        };
        Ok(SparseReader { data, map, next: 0, pos: 0, size: self.size })
    }
}

/// `GNU.sparse.map`: `offset,len,offset,len,...`.
fn parse_map_record(v: &[u8]) -> io::Result<Vec<Segment>> {
    if v.is_empty() {
        return Ok(Vec::new());
    }
    let fields: Vec<&[u8]> = v.split(|b| *b == b',').collect();
    if fields.len() % 2 != 0 {
        return Err(invalid("`GNU.sparse.map` has an odd number of fields"));
    }
    if fields.len() as u64 / 2 > MAX_SEGMENTS {
        return Err(invalid("too many segments"));
    }
    fields
        .chunks(2)
        .map(|p| {
            Ok(Segment {
                offset: number("GNU.sparse.map", p[0])?,
                len: number("GNU.sparse.map", p[1])?,
            })
        })
        .collect()
}

/// Format 1.0's map: decimal lines (a count, then offset and length per segment), then
/// padding to the next 512-byte boundary.
fn read_map_block<R: Read>(data: &mut R) -> io::Result<Vec<Segment>> {
    let mut consumed = 0u64;
    let mut line = |data: &mut R| -> io::Result<u64> {
        let mut digits = Vec::new();
        loop {
            let mut b = [0u8];
            if data.read(&mut b)? == 0 {
                return Err(invalid("its map ends early"));
            }
            consumed += 1;
            if b[0] == b'\n' {
                break;
            }
            if digits.len() >= 20 {
                return Err(invalid("a map line is not a number"));
            }
            digits.push(b[0]);
        }
        number("map", &digits).map_err(|_| invalid("a map line is not a number"))
    };
    let count = line(data)?;
    if count > MAX_SEGMENTS {
        return Err(invalid("too many segments"));
    }
    let mut map = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let offset = line(data)?;
        let len = line(data)?;
        map.push(Segment { offset, len });
    }
    let pad = (512 - consumed % 512) % 512;
    let skipped = io::copy(&mut data.take(pad), &mut io::sink())?;
    if skipped != pad {
        return Err(invalid("its map ends early"));
    }
    Ok(map)
}

/// Segments in order, not overlapping, inside the file.
fn check_map(map: &[Segment], size: u64) -> io::Result<()> {
    let mut end = 0u64;
    for s in map {
        let s_end = s.offset.checked_add(s.len).ok_or_else(|| invalid("a segment overflows"))?;
        if s.offset < end || s_end > size {
            return Err(invalid(format!(
                "segment {}+{} overlaps another or ends past the size {size}",
                s.offset, s.len
            )));
        }
        end = s_end;
    }
    Ok(())
}

/// A sparse file's content: the entry's data placed by the map, zeros between.
#[derive(Debug)]
pub struct SparseReader<R> {
    data: R,
    map: Vec<Segment>,
    next: usize,
    pos: u64,
    size: u64,
}

impl<R> SparseReader<R> {
    /// Whether the next bytes [`Read::read`] gives are a hole (zeros not stored).
    pub fn in_hole(&self) -> bool {
        match self.map.get(self.next) {
            Some(s) => self.pos < s.offset,
            None => self.pos < self.size,
        }
    }
}

impl<R: Read> Read for SparseReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        // Skip finished (and empty) segments.
        while let Some(s) = self.map.get(self.next) {
            if self.pos >= s.offset + s.len {
                self.next += 1;
            } else {
                break;
            }
        }
        let (stop, from_data) = match self.map.get(self.next) {
            Some(s) if self.pos < s.offset => (s.offset, false),
            Some(s) => (s.offset + s.len, true),
            None => (self.size, false),
        };
        let want = usize::try_from(stop - self.pos).unwrap_or(usize::MAX).min(buf.len());
        let n = if from_data {
            let n = self.data.read(&mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "GNU sparse entry: its data is shorter than its map",
                ));
            }
            n
        } else {
            buf[..want].fill(0);
            want
        };
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(f: SparseFile, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        f.reader(data)?.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn format_0_1_map_record() {
        let f = SparseFile::from_pax([
            ("GNU.sparse.size", &b"10"[..]),
            ("GNU.sparse.numblocks", b"2"),
            ("GNU.sparse.name", b"d/f"),
            ("GNU.sparse.map", b"2,3,9,1"),
        ])
        .expect("valid")
        .expect("sparse");
        assert_eq!(f.name.as_deref(), Some(&b"d/f"[..]));
        assert_eq!(read_all(f, b"abcz").expect("read"), b"\0\0abc\0\0\0\0z");
    }

    #[test]
    fn format_0_0_pairs() {
        let f = SparseFile::from_pax([
            ("GNU.sparse.size", &b"6"[..]),
            ("GNU.sparse.numblocks", b"2"),
            ("GNU.sparse.offset", b"0"),
            ("GNU.sparse.numbytes", b"1"),
            ("GNU.sparse.offset", b"6"),
            ("GNU.sparse.numbytes", b"0"),
        ])
        .expect("valid")
        .expect("sparse");
        assert_eq!(read_all(f, b"x").expect("read"), b"x\0\0\0\0\0");
    }

    #[test]
    fn format_1_0_map_in_data() {
        let f = SparseFile::from_pax([
            ("GNU.sparse.major", &b"1"[..]),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"big"),
            ("GNU.sparse.realsize", b"8"),
        ])
        .expect("valid")
        .expect("sparse");
        let mut data = b"1\n4\n2\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"hi");
        assert_eq!(read_all(f, &data).expect("read"), b"\0\0\0\0hi\0\0");
    }

    #[test]
    fn refusals() {
        assert!(SparseFile::from_pax([("path", &b"x"[..])]).expect("valid").is_none());
        // Overlapping segments, a segment past the end, a bad number, an odd map.
        for map in [&b"0,4,2,2"[..], b"8,4", b"x,1", b"1,2,3"] {
            let r =
                SparseFile::from_pax([("GNU.sparse.size", &b"10"[..]), ("GNU.sparse.map", map)]);
            assert!(r.is_err(), "{}", String::from_utf8_lossy(map));
        }
        // Data shorter than the map.
        let f = SparseFile::from_pax([("GNU.sparse.size", &b"10"[..]), ("GNU.sparse.map", b"0,4")])
            .expect("valid")
            .expect("sparse");
        let e = read_all(f, b"ab").expect_err("short");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // A 1.0 map cut short, an unknown major version.
        let f =
            SparseFile::from_pax([("GNU.sparse.major", &b"1"[..]), ("GNU.sparse.realsize", b"8")])
                .expect("valid")
                .expect("sparse");
        assert!(read_all(f, b"3\n1\n").is_err());
        assert!(
            SparseFile::from_pax([("GNU.sparse.major", &b"2"[..]), ("GNU.sparse.size", b"1")])
                .is_err()
        );
    }
}
