//! The crate's one error type: why a closure could not be taken, or a copy failed.

use std::io;

use ocil_layout::Digest;

/// Why a closure could not be taken or a copy failed. Nothing of a failed copy is named by
/// DST's `index.json`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layout operation failed (the error names the file or blob).
    #[error(transparent)]
    Layout(#[from] ocil_layout::Error),
    /// The closure in SRC is broken: a blob is missing or a document is unreadable.
    #[error("SRC is broken at {path}: {message}")]
    Source {
        /// From `index.json` to the blob.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A SRC blob's bytes do not match its name.
    #[error("SRC blob `{path}` is corrupt: its content hashes to `{found}` ({size} bytes)")]
    Corrupt {
        /// Its path in SRC.
        path: String,
        /// What it hashes to.
        found: Digest,
        /// Its size.
        size: u64,
    },
    /// A SRC blob's size is not the size its descriptor gives.
    #[error("SRC blob `{path}` has {found} bytes, its descriptor says {expected}")]
    WrongSize {
        /// Its path in SRC.
        path: String,
        /// The descriptor's size.
        expected: u64,
        /// The blob's size.
        found: u64,
    },
    /// A SRC blob disappeared while it was copied (a gc on SRC?).
    #[error(
        "SRC blob `{path}` disappeared during the copy (a concurrent gc?); nothing was tagged: retry"
    )]
    Vanished {
        /// Its path in SRC.
        path: String,
    },
    /// A blob that landed in DST was gone before the commit (a gc on DST?).
    #[error(
        "blob `{digest}` disappeared from DST before the commit (a concurrent gc with --prune=now?); nothing was tagged: retry"
    )]
    VanishedFromDestination {
        /// The blob.
        digest: Digest,
    },
    /// Landing a blob in DST failed: the temp file it is written to beside its name (which
    /// errors never show, as it means nothing to a user) could not be made, written, read
    /// back or renamed.
    #[error("cannot {op} blob `{digest}` in DST")]
    Landing {
        /// What was being done.
        op: &'static str,
        /// The blob.
        digest: Digest,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// I/O on a named file failed.
    #[error("cannot {op} `{path}`")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A tag of DST already names a different image.
    #[error("tag `{tag}` already names `{existing}` in DST, not `{new}` (use --force to move it)")]
    TagConflict {
        /// The tag.
        tag: String,
        /// What DST's tag names.
        existing: Digest,
        /// What the copy would tag.
        new: Digest,
    },
    /// The options do not fit together or with SRC.
    #[error("{0}")]
    Usage(String),
    /// `--platform` found no matching manifest.
    #[error("`{reference}` has no manifest for platform `{platform}` (it has: {available})")]
    NoSuchPlatform {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has.
        available: String,
    },

    /// A store holds a broken graph: a blob is missing or a document unreadable.
    #[error("broken at {path}: {message}")]
    Broken {
        /// The source.
        source_index: usize,
        /// The walk's problem code (`BLOB_MISSING`, `INVALID_JSON`, ...).
        code: &'static str,
        /// From the root to the blob.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A blob allowed to be absent is absent, and the caller needs every blob.
    #[error("blob `{digest}` is missing (at {path})")]
    Absent {
        /// The source.
        source_index: usize,
        /// From the root to the blob.
        path: String,
        /// The blob.
        digest: Digest,
    },
    /// A store operation failed.
    #[error("cannot read the source")]
    Store {
        /// The source.
        source_index: usize,
        /// What failed.
        #[source]
        error: ocil_layout::Error,
    },
}

impl Error {
    /// The source a closure error is about (0 for the errors of a copy, which has one).
    pub fn source_index(&self) -> usize {
        match self {
            Error::Broken { source_index, .. }
            | Error::Absent { source_index, .. }
            | Error::Store { source_index, .. } => *source_index,
            _ => 0,
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
