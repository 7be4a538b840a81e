//! A deterministic tar writer for the layers ocil packs (repack, export-rootfs): ustar
//! headers, with a PAX extended header (`././@PaxHeader`) before an entry only when it needs
//! one (a name or link target longer than 100 bytes, xattrs as `SCHILY.xattr.*`, ids, size
//! or mtime beyond the octal fields); no user or group names, no atime or ctime. The same
//! entries give the same bytes on every machine.

use std::io::{self, Read, Write};

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryType {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

impl EntryType {
    fn flag(self) -> u8 {
        match self {
            EntryType::File => b'0',
            EntryType::HardLink => b'1',
            EntryType::Symlink => b'2',
            EntryType::Char => b'3',
            EntryType::Block => b'4',
            EntryType::Dir => b'5',
            EntryType::Fifo => b'6',
        }
    }
}

/// One entry's header fields.
#[derive(Debug, Clone)]
pub(crate) struct Header<'a> {
    pub(crate) kind: EntryType,
    /// The name as stored (a directory's ends with `/`).
    pub(crate) name: &'a [u8],
    pub(crate) link: &'a [u8],
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) mtime: i64,
    pub(crate) dev: (u32, u32),
    pub(crate) xattrs: &'a [(String, Vec<u8>)],
}

/// The writer: entries, then [`TarWriter::finish`] for the two end blocks.
pub(crate) struct TarWriter<W: Write> {
    out: W,
    /// Bytes written (the diff_id's input size).
    pub(crate) written: u64,
}

const BLOCK: usize = 512;

/// Largest value of an 8-byte octal field (7 digits).
const MAX_OCTAL_7: u64 = 0o7777777;
/// Largest value of a 12-byte octal field (11 digits).
const MAX_OCTAL_11: u64 = 0o77777777777;

impl<W: Write> TarWriter<W> {
    pub(crate) fn new(out: W) -> TarWriter<W> {
        TarWriter { out, written: 0 }
    }

    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    /// An entry with `size` bytes of data from `data` (files; nothing for the others).
    pub(crate) fn entry(&mut self, h: &Header<'_>, data: &mut dyn Read) -> io::Result<()> {
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if h.name.len() > 100 {
            pax.push(("path".into(), h.name.to_vec()));
        }
        if h.link.len() > 100 {
            pax.push(("linkpath".into(), h.link.to_vec()));
        }
        if u64::from(h.uid) > MAX_OCTAL_7 {
            pax.push(("uid".into(), h.uid.to_string().into_bytes()));
        }
        if u64::from(h.gid) > MAX_OCTAL_7 {
            pax.push(("gid".into(), h.gid.to_string().into_bytes()));
        }
        if h.size > MAX_OCTAL_11 {
            pax.push(("size".into(), h.size.to_string().into_bytes()));
        }
        let mtime_fits = u64::try_from(h.mtime).is_ok_and(|m| m <= MAX_OCTAL_11);
        if !mtime_fits {
            pax.push(("mtime".into(), h.mtime.to_string().into_bytes()));
        }
        for (k, v) in h.xattrs {
            pax.push((format!("SCHILY.xattr.{k}"), v.clone()));
        }
        if !pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &pax {
                body.extend(pax_record(k, v));
            }
            let mut xh =
                raw_header(b"././@PaxHeader", b"", b'x', 0o644, 0, 0, body.len() as u64, 0, (0, 0));
            checksum(&mut xh);
            self.put(&xh)?;
            self.put(&body)?;
            self.pad(body.len() as u64)?;
        }
        let trunc = |b: &'_ [u8]| -> Vec<u8> { b.iter().take(100).copied().collect() };
        let mut header = raw_header(
            &trunc(h.name),
            &trunc(h.link),
            h.kind.flag(),
            h.mode,
            u64::from(h.uid).min(MAX_OCTAL_7 + 1) % (MAX_OCTAL_7 + 1),
            u64::from(h.gid).min(MAX_OCTAL_7 + 1) % (MAX_OCTAL_7 + 1),
            if h.size > MAX_OCTAL_11 { 0 } else { h.size },
            if mtime_fits { h.mtime as u64 } else { 0 },
            h.dev,
        );
        checksum(&mut header);
        self.put(&header)?;
        if h.size > 0 {
            let mut buf = vec![0u8; 256 * 1024];
            let mut left = h.size;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = data.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file got shorter while it was packed",
                    ));
                }
                self.put(&buf[..n])?;
                left -= n as u64;
            }
            self.pad(h.size)?;
        }
        Ok(())
    }

    fn pad(&mut self, size: u64) -> io::Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.put(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// The two zero blocks that end an archive; the writer back.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.put(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// `"%d key=value\n"`, the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len.to_string().len() + rest > len {
        len += 1;
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

#[allow(clippy::too_many_arguments)]
fn raw_header(
    name: &[u8],
    link: &[u8],
    flag: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    (major, minor): (u32, u32),
) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(mode & 0o7777));
    octal(&mut h[108..116], uid);
    octal(&mut h[116..124], gid);
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], mtime);
    h[156] = flag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // Zeros for all but devices, as GNU tar and Go write them (some readers refuse empty
    // numeric fields).
    octal(&mut h[329..337], u64::from(major));
    octal(&mut h[337..345], u64::from(minor));
    h
}

/// A zero-padded octal number filling a field but its last byte (NUL).
fn octal(field: &mut [u8], v: u64) {
    let digits = field.len() - 1;
    let s = format!("{v:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

fn checksum(h: &mut [u8; BLOCK]) {
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(kind: EntryType, name: &'a [u8], size: u64) -> Header<'a> {
        Header {
            kind,
            name,
            link: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            mtime: 1,
            dev: (0, 0),
            xattrs: &[],
        }
    }

    #[test]
    fn pax_lengths_count_themselves() {
        assert_eq!(pax_record("path", b"abc"), b"12 path=abc\n");
        let long = vec![b'x'; 95];
        let r = pax_record("path", &long);
        let (n, _) = r.split_at(r.iter().position(|b| *b == b' ').unwrap());
        assert_eq!(std::str::from_utf8(n).unwrap().parse::<usize>().unwrap(), r.len());
    }

    #[test]
    fn the_tar_crate_reads_what_it_wrote() {
        let long = [b"d/".repeat(80), b"file".to_vec()].concat();
        let xattrs = vec![("user.k".to_string(), b"v\x00".to_vec())];
        let mut w = TarWriter::new(Vec::new());
        w.entry(&header(EntryType::Dir, b"d/", 0), &mut io::empty()).unwrap();
        let mut h = header(EntryType::File, &long, 5);
        h.xattrs = &xattrs;
        h.uid = 3_000_000;
        w.entry(&h, &mut &b"hello"[..]).unwrap();
        let mut l = header(EntryType::Symlink, b"l", 0);
        l.link = &long;
        w.entry(&l, &mut io::empty()).unwrap();
        let mut dev = header(EntryType::Char, b"null", 0);
        dev.dev = (1, 3);
        w.entry(&dev, &mut io::empty()).unwrap();
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() % 512, 0);
        let mut a = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path_bytes().into_owned();
            let link = e.link_name_bytes().map(|l| l.into_owned());
            let uid = e.header().uid().unwrap();
            let mut x = Vec::new();
            if let Some(p) = e.pax_extensions().unwrap() {
                for r in p {
                    let r = r.unwrap();
                    x.push((r.key().unwrap().to_owned(), r.value_bytes().to_vec()));
                }
            }
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            let dev = e.header().device_major().unwrap();
            seen.push((name, link, uid, x.len(), data, dev));
        }
        assert_eq!(seen.len(), 4);
        assert_eq!(seen[1].0, long);
        assert_eq!(seen[1].4, b"hello");
        assert_eq!(seen[1].3, 3, "path, uid, xattr");
        assert_eq!(seen[2].1.as_deref(), Some(&long[..]));
        assert_eq!(seen[3].5, Some(1));
    }
}
