//! The crate's error type. Every variant names the file (relative to the layout) or digest
//! it is about; the source error is kept out of the message for the chain printer to add.

use std::io;

use crate::{Digest, DigestError};

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with a layout.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a file of the layout failed.
    #[error("{op} `{path}`")]
    Io {
        /// What was being done (`read`, `open`, `rename`, ...).
        op: &'static str,
        /// The path relative to the layout root.
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The directory has no `oci-layout` file.
    #[error("`oci-layout` is missing: not an OCI image layout")]
    NotALayout,
    /// `oci-layout` is not valid.
    #[error("`oci-layout` is invalid: {reason}")]
    InvalidLayoutFile {
        /// Why.
        reason: String,
    },
    /// `oci-layout` names a version ocil does not read.
    #[error("`oci-layout` has imageLayoutVersion `{version}`; ocil reads 1.x layouts")]
    UnsupportedLayoutVersion {
        /// The version found.
        version: String,
    },
    /// A JSON document is malformed.
    #[error("`{path}` is not valid JSON")]
    InvalidJson {
        /// The path relative to the layout root (or a digest).
        path: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// `index.json` is JSON but not a valid image index.
    #[error("`{path}` is not a valid image index: {reason}")]
    InvalidIndex {
        /// The path relative to the layout root.
        path: String,
        /// Why.
        reason: String,
    },
    /// A document is larger than the cap for JSON documents.
    #[error("`{path}` is {size} bytes, over the {limit}-byte limit for JSON documents")]
    TooLarge {
        /// The path relative to the layout root.
        path: String,
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// A blob is not in the layout.
    #[error("blob `{digest}` is missing (`{}`)", digest.blob_path())]
    BlobMissing {
        /// The digest looked for.
        digest: Digest,
    },
    /// A blob's bytes do not hash to its name or to the expected digest.
    #[error("`{path}`: content hashes to `{found}`, expected `{expected}`")]
    DigestMismatch {
        /// The path relative to the layout root.
        path: String,
        /// The expected digest.
        expected: Digest,
        /// The digest of the bytes.
        found: Digest,
    },
    /// A blob has a different size than expected.
    #[error("`{path}`: size is {found} bytes, expected {expected}")]
    SizeMismatch {
        /// The path relative to the layout root.
        path: String,
        /// The expected size.
        expected: u64,
        /// The size found.
        found: u64,
    },
    /// A digest string is not valid.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A path leads outside the layout (a symlink, `..`), or is not a regular file.
    #[error("`{path}` is unsafe: {reason}")]
    UnsafePath {
        /// The path relative to the layout root.
        path: String,
        /// Why.
        reason: String,
    },
    /// No `index.json` entry matches a reference.
    #[error("no image `{reference}` in `index.json`{hint}")]
    RefNotFound {
        /// The reference as given.
        reference: String,
        /// Known names, to help.
        hint: String,
    },
    /// Several different `index.json` entries match a reference.
    #[error("`{reference}` is ambiguous: it matches {}", candidates.join(", "))]
    AmbiguousRef {
        /// The reference as given.
        reference: String,
        /// The matching entries.
        candidates: Vec<String>,
    },
    /// A tag or reference name is not valid.
    #[error("invalid reference `{reference}`: {reason}")]
    InvalidReference {
        /// The reference as given.
        reference: String,
        /// Why.
        reason: String,
    },
    /// A target on the command line is not valid (see [`crate::image_ref`]).
    #[error("invalid target `{target}`: {reason}")]
    InvalidTarget {
        /// The target as given.
        target: String,
        /// Why.
        reason: String,
    },
    /// The tag or digest part of a target is not valid.
    #[error("invalid {what} in `{target}`")]
    InvalidTargetPart {
        /// The target as given.
        target: String,
        /// `reference` or `digest`.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// A target names another tool's transport (`docker-daemon:`, `containers-storage:`).
    #[error(
        "unsupported transport `{transport}:` in `{target}`: ocil reads `DIR`, `oci:DIR`, `oci-archive:FILE`, `docker-archive:FILE`, `docker://NAME` and `-` (write `./{target}` for a path)"
    )]
    UnsupportedTransport {
        /// The target as given.
        target: String,
        /// The transport's name, without the `:`.
        transport: String,
    },
    /// A source target's directory or archive does not exist.
    #[error("no such {what} `{path}`")]
    TargetNotFound {
        /// The path that is missing.
        path: String,
        /// `directory` or `archive`.
        what: &'static str,
    },
    /// A destination `DIR:TAG` whose `DIR` and `DIR`'s parent do not exist: the split
    /// would be a guess.
    #[error(
        "cannot create `{dir}` for `{target}`: no such directory `{parent}` (create it first; a target ending in `/` is a directory whose name may hold `:`)"
    )]
    TargetParentMissing {
        /// The target as given.
        target: String,
        /// The directory it would create.
        dir: String,
        /// Its parent, which is missing.
        parent: String,
    },
    /// A value that is not a reference (a platform, `SOURCE_DATE_EPOCH`) is not valid.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidValue {
        /// What the value is for.
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why.
        reason: String,
    },
    /// A document claimed one kind but carries fields of another (CVE-2021-41190).
    #[error("`{digest}` is ambiguous: a {claimed} that also has `{field}`")]
    Polyglot {
        /// The document's digest.
        digest: Digest,
        /// What it was read as.
        claimed: &'static str,
        /// The foreign field.
        field: &'static str,
    },
    /// A store other than a layout directory failed (an archive read in place, later a
    /// registry); its own error is the source.
    #[error("cannot read the {kind}")]
    Store {
        /// What kind of store (`archive`).
        kind: &'static str,
        /// The store's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A destination that is not a layout (a registry) could not take what it was given.
    #[error("cannot write to the {kind}")]
    Destination {
        /// What kind of destination (`registry`).
        kind: &'static str,
        /// The destination's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A document is JSON but not the kind expected.
    #[error("`{digest}` is not a valid {what}: {reason}")]
    InvalidDocument {
        /// The document's digest.
        digest: Digest,
        /// What it should be.
        what: &'static str,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// An I/O error on a path.
    pub(crate) fn io(op: &'static str, path: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }

    /// Whether this is a "not found" I/O error or a missing blob.
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            Error::BlobMissing { .. } => true,
            _ => false,
        }
    }
}
