//! The tar parser's errors in our own words.
//!
//! The `tar` crate's messages quote what a header holds: a size field full of text comes back
//! as `numeric field was not a number: <the text> when getting size for <the name>`. An
//! archive's or a layer's bytes are not ours to print, so no message of the parser reaches a
//! user. A reader put under the parser in a [`TarInput`] marks its own errors (the
//! decompressor's, the file's), so [`Origin::of`] can tell them from the parser's; the
//! parser's are sorted into a [`TarFault`], a few fixed phrases.
//!
//! ```
//! use std::io::Read;
//! use ocil_codec::tar_fault::{Origin, TarFault, TarInput};
//!
//! // A header whose size field holds text instead of octal digits.
//! let mut header = [0u8; 512];
//! header[..4].copy_from_slice(b"file");
//! header[124..135].copy_from_slice(b"SECRETVALUE");
//! header[148..156].fill(b' ');
//! let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
//! header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
//!
//! let mut archive = tar::Archive::new(TarInput::new(&header[..]));
//! let Some(Err(err)) = archive.entries()?.next() else { panic!("the header is refused") };
//! assert!(err.to_string().contains("SECRETVALUE"));
//! match Origin::of(err) {
//!     Origin::Parser(fault) => {
//!         assert_eq!(fault, TarFault::InvalidField("size"));
//!         assert_eq!(fault.to_string(), "invalid size field in a header");
//!     }
//!     Origin::Input(e) => panic!("not the input's: {e}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom};

/// What the tar parser found wrong, in words that quote nothing of the tar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TarFault {
    /// The stream ends inside a header block.
    #[error("the stream ends inside a header block")]
    Truncated,
    /// A header's checksum does not match its bytes: what is there is no tar header.
    #[error("bad header checksum")]
    BadChecksum,
    /// A numeric header field (`size`, `mode`, `uid`, `mtime`, `checksum`, ...) does not
    /// hold a number, or one too large.
    #[error("invalid {0} field in a header")]
    InvalidField(&'static str),
    /// A PAX extended header or a GNU long name or link is malformed, repeated, or
    /// describes no entry.
    #[error("invalid extended header (PAX or GNU long name)")]
    BadExtension,
    /// A GNU sparse file's map of blocks is inconsistent.
    #[error("invalid sparse file map")]
    BadSparse,
    /// Anything else the parser refused.
    #[error("malformed header")]
    Malformed,
}

/// The numeric header fields the parser names (`when getting <field> for ...`), as we name
/// them.
const FIELDS: [(&str, &str); 13] = [
    ("size", "size"),
    ("mode", "mode"),
    ("uid", "uid"),
    ("gid", "gid"),
    ("mtime", "mtime"),
    ("atime", "atime"),
    ("ctime", "ctime"),
    ("cksum", "checksum"),
    ("device_major", "device major"),
    ("device_minor", "device minor"),
    ("real_size", "real size"),
    ("offset", "sparse offset"),
    ("length", "sparse length"),
];

impl TarFault {
    /// Sort an error the parser made itself. Its text is read, never kept.
    fn of(e: &io::Error) -> TarFault {
        let msg = e.to_string();
        if msg.contains("checksum mismatch") {
            return TarFault::BadChecksum;
        }
        if msg.contains("failed to read entire block") || msg.contains("unexpected EOF") {
            return TarFault::Truncated;
        }
        if let Some((_, rest)) = msg.split_once(" when getting ") {
            // `<field> for <name>` or `<field> from sparse header`.
            let field = rest.split(' ').next().unwrap_or_default();
            let named = FIELDS.iter().find(|(theirs, _)| *theirs == field);
            return TarFault::InvalidField(named.map_or("numeric", |(_, ours)| ours));
        }
        if msg.contains("numeric field") {
            return TarFault::InvalidField("numeric");
        }
        if msg.contains("size overflow") {
            return TarFault::InvalidField("size");
        }
        if msg.contains("pax") || msg.contains("long name") || msg.contains("future member") {
            return TarFault::BadExtension;
        }
        if msg.contains("sparse") || msg.contains("extension") {
            return TarFault::BadSparse;
        }
        TarFault::Malformed
    }
}

/// Where an error out of the tar parser comes from.
#[derive(Debug)]
pub enum Origin {
    /// The input under the parser (a decompressor, a file), read through [`TarInput`]: its
    /// error as it was, which quotes nothing of the tar.
    Input(io::Error),
    /// The parser itself, sorted.
    Parser(TarFault),
}

impl Origin {
    /// Tell an error from a tar parser reading through a [`TarInput`] (iterating entries,
    /// reading an entry's data) as the input's or the parser's own. An error that did not
    /// come through the [`TarInput`] counts as the parser's.
    pub fn of(e: io::Error) -> Origin {
        if !e.get_ref().is_some_and(|inner| inner.is::<FromInput>()) {
            return Origin::Parser(TarFault::of(&e));
        }
        let kind = e.kind();
        match e.into_inner().map(|inner| inner.downcast::<FromInput>()) {
            Some(Ok(marked)) => Origin::Input(marked.0),
            // Not reached: checked above.
            _ => Origin::Input(io::Error::from(kind)),
        }
    }
}

/// A reader (and seeker) to put under a tar parser: its errors come out of the parser
/// marked as the input's, for [`Origin::of`].
#[derive(Debug)]
pub struct TarInput<R>(R);

impl<R> TarInput<R> {
    /// Wrap the parser's input.
    pub fn new(inner: R) -> TarInput<R> {
        TarInput(inner)
    }

    /// The input back.
    pub fn into_inner(self) -> R {
        self.0
    }
}

/// An error of the input, carried through the parser (its text is the input's own).
#[derive(Debug)]
struct FromInput(io::Error);

impl fmt::Display for FromInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for FromInput {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

fn mark(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), FromInput(e))
}

impl<R: Read> Read for TarInput<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(mark)
    }
}

impl<R: Seek> Seek for TarInput<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.0.seek(pos).map_err(mark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One ustar header with `field` (at `at`) overwritten by `value`, checksummed.
    fn header_with(at: usize, value: &[u8]) -> Vec<u8> {
        let mut h = tar::Header::new_ustar();
        h.set_path("file").unwrap();
        h.set_size(0);
        h.set_mode(0o644);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes[at..at + value.len()].copy_from_slice(value);
        bytes[148..156].fill(b' ');
        let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
        bytes[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        bytes.extend_from_slice(&[0u8; 1024]);
        bytes
    }

    fn first_error(bytes: &[u8]) -> Origin {
        let mut archive = tar::Archive::new(TarInput::new(bytes));
        let mut entries = archive.entries().unwrap();
        let err = match entries.next() {
            Some(Err(e)) => e,
            Some(Ok(mut entry)) => match io::copy(&mut entry, &mut io::sink()) {
                Err(e) => e,
                Ok(_) => match entries.next() {
                    Some(Err(e)) => e,
                    _ => panic!("no error"),
                },
            },
            None => panic!("no entry"),
        };
        Origin::of(err)
    }

    fn fault(bytes: &[u8]) -> TarFault {
        match first_error(bytes) {
            Origin::Parser(f) => f,
            Origin::Input(e) => panic!("the input's: {e}"),
        }
    }

    #[test]
    fn header_faults_are_named_without_quoting_the_header() {
        // size at 124, mode at 100, mtime at 136.
        assert_eq!(fault(&header_with(124, b"NOT-OCTAL!!")), TarFault::InvalidField("size"));
        // The mode is parsed only when asked for: an error the caller gets from the header.
        let bytes = header_with(100, b"rwxrwxr");
        let mut archive = tar::Archive::new(TarInput::new(&bytes[..]));
        let entry = archive.entries().unwrap().next().unwrap().unwrap();
        let err = entry.header().mode().unwrap_err();
        assert!(err.to_string().contains("rwxrwxr"));
        assert!(matches!(Origin::of(err), Origin::Parser(TarFault::InvalidField("mode"))));
        let mut bad_sum = header_with(124, b"00000000000");
        bad_sum[0] ^= 1;
        assert_eq!(fault(&bad_sum), TarFault::BadChecksum);
        assert_eq!(fault(&header_with(124, b"00000000000")[..300]), TarFault::Truncated);
        // Text where a header should be: its checksum field is no number.
        assert_eq!(
            fault(b"this is no tar, but a text long enough to fill a block ".repeat(10).as_slice()),
            TarFault::InvalidField("checksum")
        );
        for f in [TarFault::InvalidField("size"), TarFault::BadChecksum, TarFault::Truncated] {
            assert!(!f.to_string().contains("NOT-OCTAL"));
        }
    }

    #[test]
    fn the_inputs_errors_keep_their_own_text() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt deflate stream"))
            }
        }
        let mut archive = tar::Archive::new(TarInput::new(Broken));
        let Some(Err(err)) = archive.entries().unwrap().next() else { panic!("no error") };
        match Origin::of(err) {
            Origin::Input(e) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                assert_eq!(e.to_string(), "corrupt deflate stream");
            }
            Origin::Parser(f) => panic!("the parser's: {f}"),
        }
    }
}
