//! Spec errors: the distribution spec's error codes with their HTTP statuses, and the JSON
//! body every error response carries (`{"errors":[{"code","message","detail"}]}`).

use hyper::StatusCode;
use serde_json::{Value, json};

/// The spec's error codes, and the ones distribution adds (ranges, rate limits, `UNKNOWN`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    TagInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    RangeInvalid,
    /// A failure of the server itself (distribution's `UNKNOWN`), answered 500.
    Unknown,
}

impl Code {
    /// The code as the spec spells it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::TagInvalid => "TAG_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// The status a code is answered with unless the caller says otherwise.
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::RangeInvalid => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An error answered to the client.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: Code,
    pub(crate) message: String,
    pub(crate) detail: Option<Value>,
}

impl ApiError {
    /// `code` with its usual status.
    pub(crate) fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError { status: code.status(), code, message: message.into(), detail: None }
    }

    /// The same error with another status.
    pub(crate) fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    /// The same error with a `detail` member.
    pub(crate) fn with_detail(mut self, detail: Value) -> ApiError {
        self.detail = Some(detail);
        self
    }

    /// A failure of the server's own storage: 500, with the layout error's chain as the
    /// message (it names the blob or file, never a temp file).
    pub(crate) fn internal(e: &dyn std::error::Error) -> ApiError {
        ApiError::new(Code::Unknown, ocil_layout::walk::error_chain(e))
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut e = json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(d) = &self.detail {
            e["detail"] = d.clone();
        }
        serde_json::to_vec(&json!({ "errors": [e] })).unwrap_or_default()
    }
}

/// A request on a read-only server that needs `--push` or `--delete`.
pub(crate) fn not_enabled(flag: &str) -> ApiError {
    ApiError::new(
        Code::Unsupported,
        format!("this server does not accept that: it was started without {flag}"),
    )
}
