//! Blob uploads: `POST /v2/<name>/blobs/uploads/`, then by default one streamed `PATCH` of
//! the whole blob (no `Content-Range`: GHCR refuses chunks over 4 MiB, ECR reports offsets
//! that do not advance) and `PUT <location>?digest=`, as docker does; a registry that
//! refuses the `PATCH` (or the `PUT` after it) gets a monolithic `POST` + `PUT` with the body.
//!
//! - **Never an offset from the server**: the `Range` a registry answers is not read. Any
//!   failure (a dropped connection, a 5xx, a 429, a 401 of a token that expired mid-blob)
//!   starts a fresh upload, from a new `POST` and the blob's first byte, after a `HEAD`
//!   that asks whether the blob landed after all, up to [`crate::Options::retries`] times
//!   with the client's backoff.
//! - **Locations**: relative ones are resolved against the URL that gave them; `digest=`
//!   joins a query the location already has (`?_state=...`) with `&`. Each answer's
//!   `Location` is the next request's URL.
//! - **Cross-repository mount**: `POST ?mount=<digest>&from=<repo>` when the blob is in
//!   another repository of the same registry: 201 is done with no bytes sent; 202 opens an
//!   ordinary upload session, used as such.
//! - **The source is read as it is sent**, checked at its end (a verified reader): a source
//!   that fails is the source's error, never retried, and no `PUT` follows it.

use std::io::{self, Read};
use std::time::Duration;

use ocil_layout::destination::OpenBlob;
use ocil_layout::{Descriptor, Digest, Landed};

use crate::auth::{Scopes, pull_scope};
use crate::client::{Answer, Body, Method, header, resolve, retryable_status};
use crate::repo::Repository;
use crate::{Error, Result};

/// Why an upload failed: the source, or the registry.
#[derive(Debug)]
pub(crate) enum UploadError {
    /// Opening or reading the blob at the source failed.
    Source(ocil_layout::Error),
    /// The registry refused or failed, after the retries.
    Registry(Error),
}

/// Why one attempt failed, and what comes next.
enum Attempt {
    /// The source failed: stop.
    Source(Box<ocil_layout::Error>),
    /// Try again from a fresh session (waiting as a `Retry-After` says, if any).
    Again(Box<Error>, Option<Duration>),
    /// The registry refused the streamed upload: try it monolithic.
    NoStream(Box<Error>),
    /// Stop.
    Fatal(Box<Error>),
}

impl Attempt {
    fn source(e: ocil_layout::Error) -> Attempt {
        Attempt::Source(Box::new(e))
    }

    fn again(e: Error, after: Option<Duration>) -> Attempt {
        Attempt::Again(Box::new(e), after)
    }

    fn no_stream(e: Error) -> Attempt {
        Attempt::NoStream(Box::new(e))
    }

    fn fatal(e: Error) -> Attempt {
        Attempt::Fatal(Box::new(e))
    }
}

/// The source's bytes as they go out: a read error is kept (and told from the network's),
/// and the count is the blob's.
struct Tracked<'r> {
    inner: Box<dyn Read + 'r>,
    failed: Option<io::Error>,
}

impl Read for Tracked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => {
                self.failed = Some(e);
                Err(io::Error::other("reading the source failed"))
            }
            other => other,
        }
    }
}

impl Tracked<'_> {
    /// The source's error, if reading it failed.
    fn source_error(&mut self, digest: &Digest) -> Option<Attempt> {
        self.failed.take().map(|source| {
            Attempt::source(ocil_layout::Error::Io { op: "read", path: digest.blob_path(), source })
        })
    }

    /// After the body went out: the source must be at its end (a verified reader checks
    /// the digest there).
    fn finish(&mut self, digest: &Digest) -> Result<(), Attempt> {
        let mut one = [0u8; 1];
        match self.inner.read(&mut one) {
            Ok(0) => Ok(()),
            Ok(_) => Err(Attempt::source(ocil_layout::Error::Io {
                op: "read",
                path: digest.blob_path(),
                source: io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the source has more bytes than its descriptor's size",
                ),
            })),
            Err(source) => Err(Attempt::source(ocil_layout::Error::Io {
                op: "read",
                path: digest.blob_path(),
                source,
            })),
        }
    }
}

/// What a query value keeps as it is: RFC 3986's unreserved characters.
const QUERY_VALUE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A query or form value, percent-encoded.
pub(crate) fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, QUERY_VALUE).to_string()
}

/// `url` with `key=value` added to its query (which it may already have).
pub(crate) fn with_query(url: &str, key: &str, value: &str) -> String {
    let value = encode(value);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{key}={value}")
}

impl Repository {
    /// Upload a blob (see the module docs); `mount_from` is a repository of the same
    /// registry that may hold it.
    pub(crate) fn upload_blob<'s>(
        &self,
        desc: &Descriptor,
        open: &mut OpenBlob<'_, 's>,
        mount_from: Option<&str>,
    ) -> Result<Landed, UploadError> {
        let retries = self.client().options().retries;
        let mut monolithic = false;
        let mut attempt = 0;
        loop {
            if attempt > 0
                && let Ok(Some(_)) = self.blob_exists(&desc.digest)
            {
                // An earlier attempt landed it after all (its answer was lost).
                return Ok(Landed::Sent);
            }
            let e = match self.try_upload(desc, open, mount_from, monolithic) {
                Ok(landed) => return Ok(landed),
                Err(Attempt::Source(e)) => return Err(UploadError::Source(*e)),
                Err(Attempt::NoStream(_)) if !monolithic => {
                    monolithic = true;
                    continue;
                }
                Err(Attempt::Again(_, after)) if attempt < retries => {
                    self.client().wait(attempt, after);
                    attempt += 1;
                    continue;
                }
                Err(Attempt::Again(e, _) | Attempt::NoStream(e) | Attempt::Fatal(e)) => *e,
            };
            return Err(UploadError::Registry(Error::Push {
                repo: self.display(),
                what: format!("blob `{}`", desc.digest),
                source: Box::new(e),
            }));
        }
    }

    /// `HEAD` a blob: `Some(size)` when the registry has it (`None` inside when it does not
    /// say its size).
    pub(crate) fn blob_exists(&self, digest: &Digest) -> Result<Option<Option<u64>>> {
        let path = self.blob_path(digest);
        let answer = self.client().send(Method::Head, &path, &[], self.scopes())?;
        match answer.status().as_u16() {
            200..=299 => Ok(Some(header(&answer, "content-length").and_then(|s| s.parse().ok()))),
            404 => Ok(None),
            _ => Err(self.client().failure(answer, &path)),
        }
    }

    fn try_upload<'s>(
        &self,
        desc: &Descriptor,
        open: &mut OpenBlob<'_, 's>,
        mount_from: Option<&str>,
        monolithic: bool,
    ) -> Result<Landed, Attempt> {
        let client = self.client();
        let digest = &desc.digest;
        let mut scopes: Scopes = self.scopes().clone();
        let mut post = format!("/v2/{}/blobs/uploads/", self.name());
        if let Some(from) = mount_from {
            scopes.insert(pull_scope(from));
            post = with_query(&with_query(&post, "mount", &digest.to_string()), "from", from);
        }
        let post_url = format!("{}{post}", client.base());
        let answer = client
            .send_body(Method::Post, &post, &[], &scopes, Body::Empty)
            .map_err(|e| Attempt::again(e, None))?;
        match answer.status().as_u16() {
            201 if mount_from.is_some() => return Ok(Landed::Mounted),
            202 => {}
            _ => return Err(self.classify(answer, &post_url, &scopes, false)),
        }
        let mut session = self.next_location(&answer, &post_url)?;
        drop(answer);
        let mut reader = Tracked { inner: open().map_err(Attempt::source)?, failed: None };
        let octets = [("Content-Type", "application/octet-stream".to_owned())];
        if !monolithic {
            let sent = client.send_body(
                Method::Patch,
                &session,
                &octets,
                &scopes,
                Body::Stream(&mut reader, desc.size),
            );
            if let Some(e) = reader.source_error(digest) {
                return Err(e);
            }
            let answer = sent.map_err(|e| Attempt::again(e, None))?;
            if !answer.status().is_success() {
                return Err(self.classify(answer, &session, &scopes, true));
            }
            reader.finish(digest)?;
            // The next URL is the answer's Location (its Range is not read).
            if header(&answer, "location").is_some() {
                session = self.next_location(&answer, &session)?;
            }
            drop(answer);
            let url = with_query(&session, "digest", &digest.to_string());
            let answer = client
                .send_body(Method::Put, &url, &[], &scopes, Body::Empty)
                .map_err(|e| Attempt::again(e, None))?;
            return self.completed(answer, &url, &scopes, desc, true);
        }
        let url = with_query(&session, "digest", &digest.to_string());
        let sent = client.send_body(
            Method::Put,
            &url,
            &octets,
            &scopes,
            Body::Stream(&mut reader, desc.size),
        );
        if let Some(e) = reader.source_error(digest) {
            return Err(e);
        }
        let answer = sent.map_err(|e| Attempt::again(e, None))?;
        self.completed(answer, &url, &scopes, desc, false)
    }

    /// The upload's `Location`, made absolute against `current`.
    fn next_location(&self, answer: &Answer, current: &str) -> Result<String, Attempt> {
        let bad =
            |reason: String| Attempt::again(Error::Upload { repo: self.display(), reason }, None);
        let location = header(answer, "location")
            .ok_or_else(|| bad(format!("a {} without a Location", answer.status().as_u16())))?;
        resolve(current, &location).ok_or_else(|| {
            bad(format!("cannot follow Location `{}`", crate::client::strip_query(&location)))
        })
    }

    /// The end of an upload: a 201 (with our digest, when it names one).
    fn completed(
        &self,
        answer: Answer,
        url: &str,
        scopes: &Scopes,
        desc: &Descriptor,
        streamed: bool,
    ) -> Result<Landed, Attempt> {
        if !answer.status().is_success() {
            return Err(self.classify(answer, url, scopes, streamed));
        }
        if let Some(h) = header(&answer, "docker-content-digest")
            && h != desc.digest.to_string()
        {
            return Err(Attempt::fatal(Error::Upload {
                repo: self.display(),
                reason: format!(
                    "the registry stored `{}` as `{h}` (its Docker-Content-Digest)",
                    desc.digest
                ),
            }));
        }
        Ok(Landed::Sent)
    }

    /// What a failed answer means for the upload: another try, the monolithic way (when
    /// `streamed`), or the end.
    fn classify(&self, answer: Answer, url: &str, scopes: &Scopes, streamed: bool) -> Attempt {
        let status = answer.status().as_u16();
        let after = header(&answer, "retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let client = self.client();
        match status {
            401 => {
                // A token that expired mid-blob: a new one for the fresh upload.
                client.forget_token(scopes);
                Attempt::again(client.failure(answer, url), None)
            }
            403 => Attempt::fatal(client.failure(answer, url)),
            s if retryable_status(s) => Attempt::again(client.failure(answer, url), after),
            300..=399 => Attempt::fatal(Error::Upload {
                repo: self.display(),
                reason: format!("a {status} redirect of an upload"),
            }),
            _ if streamed => Attempt::no_stream(client.failure(answer, url)),
            _ => Attempt::fatal(client.failure(answer, url)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries() {
        assert_eq!(
            with_query("http://h/u/1", "digest", "sha256:ab"),
            "http://h/u/1?digest=sha256%3Aab"
        );
        assert_eq!(
            with_query("http://h/u/1?_state=x%3D", "digest", "sha256:ab"),
            "http://h/u/1?_state=x%3D&digest=sha256%3Aab"
        );
        assert_eq!(
            with_query("/v2/a/blobs/uploads/", "from", "b/c"),
            "/v2/a/blobs/uploads/?from=b%2Fc"
        );
    }
}
