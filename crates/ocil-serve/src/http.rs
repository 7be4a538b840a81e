//! Response building: every response carries `Docker-Distribution-API-Version`, errors
//! carry the spec's JSON body (none for HEAD), and the headers this server names are here.

use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::{Response, StatusCode};

use crate::api::ApiError;
use crate::body::Body;

pub(crate) type Resp = Response<Body>;

pub(crate) const API_VERSION: HeaderName =
    HeaderName::from_static("docker-distribution-api-version");
pub(crate) const CONTENT_DIGEST: HeaderName = HeaderName::from_static("docker-content-digest");
pub(crate) const UPLOAD_UUID: HeaderName = HeaderName::from_static("docker-upload-uuid");
pub(crate) const OCI_SUBJECT: HeaderName = HeaderName::from_static("oci-subject");
pub(crate) const OCI_FILTERS: HeaderName = HeaderName::from_static("oci-filters-applied");
pub(crate) const RANGE: HeaderName = HeaderName::from_static("range");

/// A response builder with the API version header.
pub(crate) fn builder(status: StatusCode) -> hyper::http::response::Builder {
    Response::builder().status(status).header(API_VERSION, "registry/2.0")
}

/// Finish a builder with a body of `bytes` (sent unless `head`) and its length.
pub(crate) fn with_bytes(
    b: hyper::http::response::Builder,
    content_type: &str,
    bytes: impl Into<bytes::Bytes>,
    head: bool,
) -> Resp {
    let bytes = bytes.into();
    let b = b.header(CONTENT_TYPE, header_value(content_type)).header(CONTENT_LENGTH, bytes.len());
    finish(b, if head { Body::Empty } else { Body::bytes(bytes) })
}

/// Finish a builder with no body.
pub(crate) fn empty(b: hyper::http::response::Builder) -> Resp {
    finish(b.header(CONTENT_LENGTH, 0), Body::Empty)
}

/// Finish a builder (a header value that cannot be built becomes a 500).
pub(crate) fn finish(b: hyper::http::response::Builder, body: Body) -> Resp {
    b.body(body).unwrap_or_else(|e| {
        let mut r = Response::new(Body::bytes(format!("cannot build the response: {e}")));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        r
    })
}

/// The error response for `e`.
pub(crate) fn error(e: &ApiError, head: bool) -> Resp {
    let b = builder(e.status);
    if head {
        return empty(b.header(CONTENT_TYPE, "application/json"));
    }
    with_bytes(b, "application/json", e.body(), false)
}

/// A header value from text we made (digests, media types, URLs of valid names); anything
/// that is not a valid header value (a stored media type with a control character) is sent
/// as `application/octet-stream`.
pub(crate) fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("application/octet-stream"))
}

/// `0-<last byte>` as the upload API reports progress (`0-0` before the first byte).
pub(crate) fn upload_range(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}
