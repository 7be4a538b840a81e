//! `/v2/<name>/blobs/<digest>`: GET and HEAD of whole blobs and of single byte ranges
//! (`bytes=0-` included: containerd's parallel fetch sends it), and DELETE of a blob nothing
//! reaches. A blob is opened once per request and sent from that descriptor, so a gc that
//! removes it meanwhile does not cut the transfer.

use std::io::{Seek as _, SeekFrom};
use std::sync::Arc;

use hyper::StatusCode;
use hyper::header::{ACCEPT_RANGES, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG, HeaderMap};

use crate::api::{ApiError, Code, not_enabled};
use crate::body::Body;
use crate::http::{self, CONTENT_DIGEST, Resp};
use crate::route::parse_digest;
use crate::server::{State, blocking};
use crate::writer::{Op, Outcome};

/// What a `Range` header asks of a blob of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Range {
    /// The whole blob (no header, a header this server does not read, or several ranges).
    Whole,
    /// Bytes `start..=end`.
    Part(u64, u64),
    /// A range that starts past the end.
    Unsatisfiable,
}

/// Read a `Range` header (RFC 9110: `bytes=a-b`, `bytes=a-`, `bytes=-n`). A malformed
/// header, another unit or several ranges are ignored (the whole blob is sent).
pub(crate) fn parse_range(header: Option<&str>, size: u64) -> Range {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Range::Whole;
    };
    if spec.contains(',') {
        return Range::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Range::Whole };
    let num = |s: &str| -> Option<u64> {
        (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    match (a.trim(), b.trim()) {
        ("", n) => match num(n) {
            None => Range::Whole,
            Some(0) => Range::Unsatisfiable,
            Some(_) if size == 0 => Range::Unsatisfiable,
            Some(n) => Range::Part(size.saturating_sub(n), size - 1),
        },
        (a, "") => match num(a) {
            None => Range::Whole,
            Some(a) if a >= size => Range::Unsatisfiable,
            Some(a) => Range::Part(a, size - 1),
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a <= b => {
                if a >= size {
                    Range::Unsatisfiable
                } else {
                    Range::Part(a, b.min(size - 1))
                }
            }
            _ => Range::Whole,
        },
    }
}

/// GET or HEAD.
pub(crate) async fn get(
    state: Arc<State>,
    name: String,
    digest: String,
    headers: &HeaderMap,
    head: bool,
) -> Result<Resp, ApiError> {
    let digest = parse_digest(&digest)?;
    let range_header =
        headers.get(hyper::header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let d = digest.clone();
    let (file, size, range) = blocking(move || {
        let repo = state.registry.repo(&name)?;
        let Some((file, size)) =
            repo.handle.layout.open_blob_file(&d).map_err(|e| ApiError::internal(&e))?
        else {
            return Err(ApiError::new(Code::BlobUnknown, format!("blob unknown: `{d}`")));
        };
        let mut file = file;
        let range = parse_range(range_header.as_deref(), size);
        if let Range::Part(start, _) = range
            && !head
        {
            file.seek(SeekFrom::Start(start)).map_err(|source| {
                let path = d.blob_path();
                ApiError::internal(&ocil_layout::Error::Io { op: "seek", path, source })
            })?;
        }
        Ok((file, size, range))
    })
    .await?;
    let b = http::builder(StatusCode::OK)
        .header(CONTENT_DIGEST, http::header_value(&digest.to_string()))
        .header(ETAG, http::header_value(&format!("\"{digest}\"")))
        .header(ACCEPT_RANGES, "bytes")
        .header(CONTENT_TYPE, "application/octet-stream");
    let (b, len) = match range {
        Range::Whole => (b, size),
        Range::Part(start, end) => (
            b.status(StatusCode::PARTIAL_CONTENT)
                .header(CONTENT_RANGE, format!("bytes {start}-{end}/{size}")),
            end - start + 1,
        ),
        Range::Unsatisfiable => {
            let e = ApiError::new(
                Code::RangeInvalid,
                format!("the range is outside the blob's {size} bytes"),
            );
            let mut r = http::error(&e, head);
            r.headers_mut().insert(CONTENT_RANGE, http::header_value(&format!("bytes */{size}")));
            return Ok(r);
        }
    };
    let b = b.header(CONTENT_LENGTH, len);
    let body = if head { Body::Empty } else { Body::file(file, len) };
    Ok(http::finish(b, body))
}

/// DELETE.
pub(crate) async fn delete(
    state: Arc<State>,
    name: String,
    digest: String,
) -> Result<Resp, ApiError> {
    if !state.delete {
        return Err(not_enabled("--delete"));
    }
    let digest = parse_digest(&digest)?;
    let repo = blocking(move || state.registry.repo(&name)).await?;
    match repo.handle.submit(Op::DeleteBlob { digest: digest.clone() }).await? {
        Outcome::Done { .. } => Ok(http::empty(http::builder(StatusCode::ACCEPTED))),
        Outcome::Reachable(path) => Err(ApiError::new(
            Code::Unsupported,
            format!("blob `{digest}` is still reached from index.json ({path}): delete that first"),
        )),
        Outcome::NotFound | Outcome::Missing(_) => {
            Err(ApiError::new(Code::BlobUnknown, format!("blob unknown: `{digest}`")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        let r = |h: &str, size| parse_range(Some(h), size);
        assert_eq!(parse_range(None, 10), Range::Whole);
        assert_eq!(r("bytes=0-", 10), Range::Part(0, 9));
        assert_eq!(r("bytes=2-4", 10), Range::Part(2, 4));
        assert_eq!(r("bytes=2-400", 10), Range::Part(2, 9));
        assert_eq!(r("bytes=-3", 10), Range::Part(7, 9));
        assert_eq!(r("bytes=-30", 10), Range::Part(0, 9));
        assert_eq!(r("bytes=10-", 10), Range::Unsatisfiable);
        assert_eq!(r("bytes=10-12", 10), Range::Unsatisfiable);
        assert_eq!(r("bytes=-0", 10), Range::Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), Range::Unsatisfiable);
        assert_eq!(r("bytes=4-2", 10), Range::Whole);
        assert_eq!(r("bytes=0-1,3-4", 10), Range::Whole);
        assert_eq!(r("items=0-1", 10), Range::Whole);
        assert_eq!(r("bytes=+1-2", 10), Range::Whole);
        assert_eq!(r("bytes=x", 10), Range::Whole);
    }
}
