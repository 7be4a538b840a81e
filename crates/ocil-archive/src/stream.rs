//! The input stream: compression sniffed and undone by `ocil_codec`, a counting reader under
//! the tar parser so that the end of the archive can be told from a truncation, and the
//! parser's errors in our words (`ocil_codec::tar_fault`: its own text can quote the archive).

use std::cell::Cell;
use std::io::{self, Read};
use std::rc::Rc;

use ocil_codec::tar_fault::{Origin, TarFault};
use ocil_layout::Hasher;

use crate::{Error, Result};

/// Open a (possibly compressed: gzip, zstd, xz, bzip2) stream: the compression found and
/// the decompressed bytes.
pub(crate) fn decompress<'a>(
    reader: impl Read + 'a,
) -> Result<(ocil_codec::Format, Box<dyn Read + 'a>)> {
    match ocil_codec::decompress(reader) {
        Ok(d) if d.empty => Err(Error::Empty),
        Ok(d) => Ok((d.format, d.reader)),
        Err(ocil_codec::Error::Read(source) | ocil_codec::Error::Decoder { source, .. }) => {
            Err(Error::Read { after: None, source })
        }
        Err(e) => Err(Error::Read { after: None, source: io::Error::other(e) }),
    }
}

/// Read up to `buf.len()` bytes (fewer only at the end of `r`): the first bytes of a stream
/// or an entry, to sniff.
pub(crate) fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Counts (and optionally hashes) the bytes the tar parser reads.
pub(crate) struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
    hasher: Option<Hasher>,
}

impl<R: Read> Counting<R> {
    pub(crate) fn new(inner: R, hasher: Option<Hasher>) -> (Counting<R>, Rc<Cell<u64>>) {
        let count = Rc::new(Cell::new(0));
        (Counting { inner, count: count.clone(), hasher }, count)
    }

    /// Read to the end (the padding after the end-of-archive marker belongs to a layer's
    /// diff_id too) and return the hash.
    pub(crate) fn finish(mut self) -> io::Result<Option<ocil_layout::Digest>> {
        io::copy(&mut self, &mut io::sink())?;
        Ok(self.hasher.take().map(Hasher::finish))
    }
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Where the next header after an entry starts: its data, padded to 512-byte blocks.
pub(crate) fn entry_end(data_start: u64, size: u64) -> u64 {
    data_start + size.div_ceil(512) * 512
}

/// After the tar parser saw the end: it must have read an end-of-archive block (512 zero
/// bytes) after the last entry; a stream that simply stops there was cut short.
pub(crate) fn check_end(consumed: u64, last_end: u64, last: &Option<String>) -> Result<()> {
    if consumed == 0 {
        return Err(Error::Empty);
    }
    if consumed < last_end + 512 {
        return Err(Error::Truncated { entry: last.clone() });
    }
    Ok(())
}

/// Map an error from the tar parser (reading through a [`TarInput`](ocil_codec::tar_fault::TarInput)) before any entry was
/// read: a first block that is not a tar header (or a stream shorter than one block) means
/// the input is not a tar at all.
pub(crate) fn first_error(source: io::Error) -> Error {
    match Origin::of(source) {
        // A first header whose checksum is wrong or not even a number (a text file): no tar.
        Origin::Parser(
            fault @ (TarFault::BadChecksum
            | TarFault::Truncated
            | TarFault::InvalidField("checksum")),
        ) => Error::NotATar { fault },
        origin => from_origin(origin, &None),
    }
}

/// Map an error from the tar parser or an entry's reader (reading through a [`TarInput`](ocil_codec::tar_fault::TarInput)).
/// The parser's own are told in our words: its text can quote the archive.
pub(crate) fn read_error(source: io::Error, last: &Option<String>) -> Error {
    from_origin(Origin::of(source), last)
}

/// Map an error from reading the archive's bytes directly, not through the tar parser.
pub(crate) fn input_error(source: io::Error, last: &Option<String>) -> Error {
    from_origin(Origin::Input(source), last)
}

fn from_origin(origin: Origin, last: &Option<String>) -> Error {
    match origin {
        Origin::Parser(TarFault::Truncated) => Error::Truncated { entry: last.clone() },
        Origin::Parser(fault) => Error::Malformed { after: last.clone(), fault },
        Origin::Input(source)
            if source.kind() == io::ErrorKind::UnexpectedEof
                || source.to_string().contains("unexpected EOF") =>
        {
            Error::Truncated { entry: last.clone() }
        }
        Origin::Input(source) => Error::Read { after: last.clone(), source },
    }
}
