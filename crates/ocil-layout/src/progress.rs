//! Progress reporting for long operations (import, export, copy, convert, fsck).
//!
//! Libraries never print: they call a [`Progress`] the caller hands them, and the binary
//! draws the bars (or not). Every method has an empty default, so [`Silent`] is the no-op.
//! Calls may come from several threads (fsck hashes in parallel), hence `Sync`.

use std::io::{self, Read, Write};

/// Receives progress events. Byte counts are of the work done, in the units `begin` set.
pub trait Progress: Sync {
    /// A new phase starts: what it does (`copy`, `hash`, ...) and how many bytes it will
    /// handle, when known.
    fn begin(&self, _label: &str, _total: Option<u64>) {}
    /// `bytes` more bytes were handled.
    fn advance(&self, _bytes: u64) {}
    /// The phase ended (successfully or not).
    fn end(&self) {}
    /// One item of the phase (a blob of a copy) starts: its name (a digest) and size.
    /// Items may run at once on several threads.
    fn item_begin(&self, _name: &str, _size: u64) {}
    /// `bytes` more bytes of an item were handled (they are also given to `advance`).
    fn item_advance(&self, _name: &str, _bytes: u64) {}
    /// An item ended: done (`ok`) or failed.
    fn item_end(&self, _name: &str, _size: u64, _ok: bool) {}
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}

/// A reader that reports the bytes read through it.
#[derive(Debug)]
pub struct ProgressReader<'a, R: ?Sized, P: Progress + ?Sized> {
    progress: &'a P,
    inner: R,
}

impl<'a, R, P: Progress + ?Sized> ProgressReader<'a, R, P> {
    /// Wrap `inner`, reporting to `progress`.
    pub fn new(inner: R, progress: &'a P) -> Self {
        ProgressReader { progress, inner }
    }
}

impl<R: Read, P: Progress + ?Sized> Read for ProgressReader<'_, R, P> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// A writer that reports the bytes written through it.
#[derive(Debug)]
pub struct ProgressWriter<'a, W: ?Sized, P: Progress + ?Sized> {
    progress: &'a P,
    inner: W,
}

impl<'a, W, P: Progress + ?Sized> ProgressWriter<'a, W, P> {
    /// Wrap `inner`, reporting to `progress`.
    pub fn new(inner: W, progress: &'a P) -> Self {
        ProgressWriter { progress, inner }
    }

    /// The wrapped writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write, P: Progress + ?Sized> Write for ProgressWriter<'_, W, P> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    #[derive(Default)]
    struct Count(AtomicU64);

    impl Progress for Count {
        fn advance(&self, bytes: u64) {
            self.0.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    #[test]
    fn reader_and_writer_count_bytes() {
        let count = Count::default();
        let mut out = Vec::new();
        let mut r = ProgressReader::new(&b"hello world"[..], &count);
        io::copy(&mut r, &mut out).unwrap();
        assert_eq!(count.0.load(Ordering::Relaxed), 11);
        let mut w = ProgressWriter::new(Vec::new(), &count);
        w.write_all(b"abc").unwrap();
        assert_eq!(w.into_inner(), b"abc");
        assert_eq!(count.0.load(Ordering::Relaxed), 14);
        Silent.advance(5);
    }
}
