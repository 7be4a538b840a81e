//! The crate's one error type: what a registry did wrong, or could not be asked. Every
//! variant names the registry (`HOST/REPO`) and the manifest or blob; none holds a secret.

use ocil_layout::Digest;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a registry could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The options do not fit together (`--creds` without `:`, ...).
    #[error("{0}")]
    Usage(String),
    /// No connection could be made, or it failed before an answer (after the retries).
    #[error("cannot reach `{url}`")]
    Connect {
        /// What was asked (no query string: it may hold a token scope, never a secret).
        url: String,
        /// Why.
        #[source]
        source: ureq::Error,
    },
    /// The registry answered with a status that means neither success nor a known failure.
    #[error("`{url}` answered {status}{detail}")]
    Status {
        /// What was asked.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The registry's own error codes and messages, when it sent them as JSON.
        detail: String,
    },
    /// The registry's rate limit was reached (and stayed so through the retries).
    #[error("`{url}` answered 429 Too Many Requests{detail}{figures}{hint}")]
    RateLimited {
        /// What was asked.
        url: String,
        /// The registry's error codes.
        detail: String,
        /// Its `RateLimit-*` and `Retry-After` figures, when it sent them.
        figures: String,
        /// What may help.
        hint: String,
    },
    /// The registry wants credentials and none were given.
    #[error("registry `{host}` needs credentials (`ocil login {host}`, or give --creds USER:PASS)")]
    NeedsCredentials {
        /// The registry.
        host: String,
    },
    /// The registry (or its token server) refused the credentials.
    #[error("registry `{host}` refused the credentials of user `{user}` ({status})")]
    BadCredentials {
        /// The registry.
        host: String,
        /// The user name (never the password).
        user: String,
        /// The status of the refusal.
        status: u16,
    },
    /// Access was refused with the credentials (or token) the client has.
    #[error("registry `{host}` refused access to `{what}` ({status}){detail}")]
    Denied {
        /// The registry.
        host: String,
        /// The repository or endpoint.
        what: String,
        /// 401 or 403.
        status: u16,
        /// The registry's error codes.
        detail: String,
    },
    /// The token server did not give a token.
    #[error("cannot get a token for `{host}` from `{realm}`: {reason}")]
    Token {
        /// The registry.
        host: String,
        /// The token server's URL (no query).
        realm: String,
        /// Why.
        reason: String,
    },
    /// The registry's `WWW-Authenticate` challenge cannot be used.
    #[error("registry `{host}` sent an authentication challenge ocil cannot use: {reason}")]
    Challenge {
        /// The registry.
        host: String,
        /// Why.
        reason: String,
    },
    /// Plain http (or a TLS connection without verification) was not allowed.
    #[error(
        "registry `{host}` is not loopback: refusing plain http (give --plain-http, or --tls-verify=false)"
    )]
    Insecure {
        /// The registry.
        host: String,
    },
    /// No manifest of that tag or digest.
    #[error("manifest `{reference}` not found in `{repo}`{detail}")]
    ManifestUnknown {
        /// `HOST/REPO`.
        repo: String,
        /// The tag or digest.
        reference: String,
        /// The registry's error codes.
        detail: String,
    },
    /// No blob of that digest.
    #[error("blob `{digest}` not found in `{repo}`{detail}")]
    BlobUnknown {
        /// `HOST/REPO`.
        repo: String,
        /// The blob.
        digest: Digest,
        /// The registry's error codes.
        detail: String,
    },
    /// A manifest over the cap.
    #[error("manifest `{reference}` of `{repo}` is over the {limit}-byte limit for manifests")]
    ManifestTooLarge {
        /// `HOST/REPO`.
        repo: String,
        /// The tag or digest.
        reference: String,
        /// The cap.
        limit: u64,
    },
    /// A blob read whole (a config) is over the caller's cap.
    #[error("blob `{digest}` of `{repo}` is over the {limit}-byte limit for documents")]
    BlobTooLarge {
        /// `HOST/REPO`.
        repo: String,
        /// The blob.
        digest: Digest,
        /// The cap.
        limit: u64,
    },
    /// The answer to a manifest request is not a manifest (an HTML page, a proxy's error).
    #[error(
        "`{reference}` of `{repo}`: the registry's answer is not a manifest (Content-Type `{content_type}`, {what})"
    )]
    NotAManifest {
        /// `HOST/REPO`.
        repo: String,
        /// The tag or digest.
        reference: String,
        /// The answer's Content-Type.
        content_type: String,
        /// What it looks like.
        what: String,
    },
    /// A Docker schema1 manifest: recognised, refused.
    #[error(
        "`{reference}` of `{repo}` is a Docker schema1 manifest (`{media_type}`): a legacy format (deprecated in 2017) that ocil does not pull; ask for the image by another tag, or rebuild it"
    )]
    Schema1 {
        /// `HOST/REPO`.
        repo: String,
        /// The tag or digest.
        reference: String,
        /// Its media type.
        media_type: String,
    },
    /// The bytes of a manifest asked for by digest hash to another digest.
    #[error(
        "manifest `{expected}` of `{repo}`: the registry sent content that hashes to `{found}`"
    )]
    ManifestDigest {
        /// `HOST/REPO`.
        repo: String,
        /// What was asked for.
        expected: Digest,
        /// What the bytes hash to.
        found: Digest,
    },
    /// `Docker-Content-Digest` names other bytes than the ones sent.
    #[error(
        "manifest `{reference}` of `{repo}`: the registry's Docker-Content-Digest `{header}` is not the digest of the bytes it sent (`{found}`)"
    )]
    HeaderDigest {
        /// `HOST/REPO`.
        repo: String,
        /// The tag or digest.
        reference: String,
        /// The header's value.
        header: String,
        /// What the bytes hash to.
        found: Digest,
    },
    /// The registry's `Content-Type` and the manifest's own `mediaType` disagree, and no
    /// digest was asked for to settle it.
    #[error(
        "manifest `{reference}` of `{repo}`: the registry says `{content_type}`, the manifest's mediaType says `{media_type}`"
    )]
    MediaTypeMismatch {
        /// `HOST/REPO`.
        repo: String,
        /// The tag.
        reference: String,
        /// The header.
        content_type: String,
        /// The document's field.
        media_type: String,
    },
    /// A blob's bytes do not hash to its digest.
    #[error(
        "blob `{digest}` of `{repo}`: the registry sent content that hashes to `{found}` ({size} bytes)"
    )]
    BlobDigest {
        /// `HOST/REPO`.
        repo: String,
        /// The blob.
        digest: Digest,
        /// What the bytes hash to.
        found: Digest,
        /// How many bytes came.
        size: u64,
    },
    /// A blob's size is not its descriptor's.
    #[error(
        "blob `{digest}` of `{repo}`: the registry sent {found} bytes or more, expected {expected}"
    )]
    BlobSize {
        /// `HOST/REPO`.
        repo: String,
        /// The blob.
        digest: Digest,
        /// The descriptor's size.
        expected: u64,
        /// What came (so far).
        found: u64,
    },
    /// The connection dropped too often during a blob.
    #[error(
        "blob `{digest}` of `{repo}`: the connection failed {tries} times; gave up at byte {at} of {size}"
    )]
    Interrupted {
        /// `HOST/REPO`.
        repo: String,
        /// The blob.
        digest: Digest,
        /// How often.
        tries: u32,
        /// Bytes received.
        at: u64,
        /// The blob's size.
        size: u64,
        /// The last failure.
        #[source]
        source: std::io::Error,
    },
    /// A `Range` answer that does not start where it was asked to.
    #[error(
        "blob `{digest}` of `{repo}`: asked for bytes from {asked}, the registry answered `{answer}`"
    )]
    BadRange {
        /// `HOST/REPO`.
        repo: String,
        /// The blob.
        digest: Digest,
        /// The first byte asked for.
        asked: u64,
        /// The answer's status and Content-Range.
        answer: String,
    },
    /// A redirect without a usable `Location`, or too many.
    #[error("`{url}`: {reason}")]
    Redirect {
        /// What was asked.
        url: String,
        /// Why the redirect cannot be followed.
        reason: String,
    },
    /// A JSON answer (a tag list, a token) is malformed.
    #[error("`{url}` answered malformed JSON")]
    Json {
        /// What was asked.
        url: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// Reading an answer's body failed.
    #[error("cannot read the answer of `{url}`")]
    Body {
        /// What was asked.
        url: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Pushing a blob or manifest failed (the cause says how).
    #[error("cannot push {what} to `{repo}`")]
    Push {
        /// `HOST/REPO`.
        repo: String,
        /// The blob or manifest (`blob `sha256:...``).
        what: String,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// An upload's answer cannot be used.
    #[error("upload to `{repo}`: {reason}")]
    Upload {
        /// `HOST/REPO`.
        repo: String,
        /// What is wrong.
        reason: String,
    },
    /// An auth file (docker's `config.json`, podman's `auth.json`) cannot be used.
    #[error("auth file `{path}`: {reason}")]
    AuthFile {
        /// The file.
        path: String,
        /// What is wrong (never a secret).
        reason: String,
    },
    /// A docker credential helper failed.
    #[error("credential helper `{helper} {verb}`: {reason}")]
    Helper {
        /// `docker-credential-NAME`.
        helper: String,
        /// `get`, `store`, `erase`.
        verb: String,
        /// What went wrong.
        reason: String,
    },
    /// The system's root certificates could not be loaded.
    #[error("cannot load the system's root certificates: {0}")]
    Roots(String),
}

impl Error {
    /// Whether the error says the manifest or blob does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::ManifestUnknown { .. } | Error::BlobUnknown { .. })
    }
}

impl From<Error> for ocil_layout::Error {
    fn from(e: Error) -> ocil_layout::Error {
        ocil_layout::Error::Store { kind: "registry", source: Box::new(e) }
    }
}
