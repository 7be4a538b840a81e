//! Blob bodies as a stream (never buffered whole): `GET /v2/<name>/blobs/<digest>`, hashed
//! as it is read and checked at the end against the digest and size, so a consumer that
//! publishes only after the last read never publishes a wrong blob.
//!
//! A connection that drops (or stalls past the timeout) mid-body is resumed with
//! `Range: bytes=N-` from the byte it stopped at, up to [`crate::Options::retries`] times. A
//! registry that answers a `Range` request with a whole `200` is read again from its start,
//! its first N bytes (already passed on) skipped, so the restart costs bandwidth, never
//! correctness: the hash covers every byte passed on either way.

use std::io::{self, Read};

use ocil_layout::{Digest, Hasher};

use crate::client::{Method, header};
use crate::repo::Repository;
use crate::{Error, Result};

/// A blob being read from a registry. See the module docs.
pub struct BlobReader {
    repo: Repository,
    digest: Digest,
    size: Option<u64>,
    pos: u64,
    body: Option<ureq::BodyReader<'static>>,
    hasher: Hasher,
    failures: u32,
    done: bool,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("digest", &self.digest)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

fn invalid(e: Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl Repository {
    /// A blob's bytes, checked against `digest` (and `size` when known) at the end. The
    /// first request is made now, so a missing blob is an error here
    /// ([`Error::BlobUnknown`]).
    pub fn open_blob(&self, digest: &Digest, size: Option<u64>) -> Result<BlobReader> {
        let mut r = BlobReader {
            repo: self.clone(),
            digest: digest.clone(),
            size,
            pos: 0,
            body: None,
            hasher: digest.algorithm().hasher(),
            failures: 0,
            done: false,
        };
        r.body = Some(r.request()?);
        Ok(r)
    }
}

impl BlobReader {
    /// One request for the rest of the blob, from `self.pos`.
    fn request(&mut self) -> Result<ureq::BodyReader<'static>> {
        let path = self.repo.blob_path(&self.digest);
        let range = [("Range", format!("bytes={}-", self.pos))];
        let headers: &[(&str, String)] = if self.pos > 0 { &range } else { &[] };
        let mut answer =
            self.repo.client().send(Method::Get, &path, headers, self.repo.scopes())?;
        let status = answer.status().as_u16();
        let length = header(&answer, "content-length").and_then(|s| s.parse::<u64>().ok());
        let skip = match status {
            200 => {
                if let (Some(expected), Some(found)) = (self.size, length)
                    && expected != found
                {
                    return Err(Error::BlobSize {
                        repo: self.repo.display(),
                        digest: self.digest.clone(),
                        expected,
                        found,
                    });
                }
                // A whole answer to a Range request: read it from its start.
                self.pos
            }
            206 => {
                let cr = header(&answer, "content-range").unwrap_or_default();
                let start = cr
                    .trim()
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if self.pos == 0 && start.is_none() || start.is_some_and(|s| s != self.pos) {
                    return Err(Error::BadRange {
                        repo: self.repo.display(),
                        digest: self.digest.clone(),
                        asked: self.pos,
                        answer: format!("206, Content-Range `{cr}`"),
                    });
                }
                0
            }
            404 => {
                return Err(Error::BlobUnknown {
                    repo: self.repo.display(),
                    digest: self.digest.clone(),
                    detail: crate::client::Client::detail(&mut answer),
                });
            }
            416 => {
                return Err(Error::BadRange {
                    repo: self.repo.display(),
                    digest: self.digest.clone(),
                    asked: self.pos,
                    answer: "416 Range Not Satisfiable".into(),
                });
            }
            _ => return Err(self.repo.client().failure(answer, &path)),
        };
        let mut body = answer.into_body().into_reader();
        if skip > 0 {
            let skipped = io::copy(&mut (&mut body).take(skip), &mut io::sink())
                .map_err(|source| Error::Body { url: path.clone(), source })?;
            if skipped != skip {
                return Err(Error::BadRange {
                    repo: self.repo.display(),
                    digest: self.digest.clone(),
                    asked: self.pos,
                    answer: format!("200 with {skipped} bytes"),
                });
            }
        }
        Ok(body)
    }

    /// The end: the bytes passed on must be the blob.
    fn finish(&mut self) -> io::Result<()> {
        self.done = true;
        let hasher = std::mem::replace(&mut self.hasher, self.digest.algorithm().hasher());
        let found = hasher.finish();
        if let Some(expected) = self.size
            && expected != self.pos
        {
            return Err(invalid(Error::BlobSize {
                repo: self.repo.display(),
                digest: self.digest.clone(),
                expected,
                found: self.pos,
            }));
        }
        if found != self.digest {
            return Err(invalid(Error::BlobDigest {
                repo: self.repo.display(),
                digest: self.digest.clone(),
                found,
                size: self.pos,
            }));
        }
        Ok(())
    }

    /// A failed or cut read: resume, or give up with `why`.
    fn failed(&mut self, why: io::Error) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        let opts = self.repo.client().options();
        if self.failures > opts.retries {
            return Err(io::Error::other(Error::Interrupted {
                repo: self.repo.display(),
                digest: self.digest.clone(),
                tries: self.failures,
                at: self.pos,
                size: self.size.unwrap_or(self.pos),
                source: why,
            }));
        }
        self.repo.client().wait(self.failures - 1, None);
        Ok(())
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let body = match &mut self.body {
                Some(b) => b,
                None => match self.request() {
                    Ok(b) => self.body.insert(b),
                    Err(e @ Error::Connect { .. }) => {
                        self.failed(io::Error::other(e))?;
                        continue;
                    }
                    Err(e) => return Err(invalid(e)),
                },
            };
            match body.read(buf) {
                Ok(0) => {
                    if self.size.is_some_and(|s| self.pos < s) {
                        self.failed(io::Error::from(io::ErrorKind::UnexpectedEof))?;
                        continue;
                    }
                    self.finish()?;
                    return Ok(0);
                }
                Ok(n) => {
                    if let Some(expected) = self.size
                        && self.pos + n as u64 > expected
                    {
                        self.done = true;
                        return Err(invalid(Error::BlobSize {
                            repo: self.repo.display(),
                            digest: self.digest.clone(),
                            expected,
                            found: self.pos + n as u64,
                        }));
                    }
                    self.pos += n as u64;
                    self.hasher.update(&buf[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.failed(e)?,
            }
        }
    }
}
