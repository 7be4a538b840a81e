//! The crate's one error type: why the server could not start (or stopped on its own).
//! What goes wrong with a request is answered to the client as a spec error
//! ([`crate::api::ApiError`]), never returned here.

use std::io;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layout operation failed (the error names the file or blob).
    #[error(transparent)]
    Layout(#[from] ocil_layout::Error),
    /// Listening on the address failed.
    #[error("cannot listen on `{addr}`")]
    Bind {
        /// The address asked for.
        addr: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The runtime (threads, signal handlers) could not be set up.
    #[error("cannot start the server's runtime")]
    Runtime(#[source] io::Error),
    /// ROOT cannot be served as given.
    #[error("cannot serve `{root}`: {reason}")]
    Root {
        /// ROOT as the caller named it.
        root: String,
        /// Why.
        reason: String,
    },
    /// A repository name is not one the distribution spec allows.
    #[error("`{name}` is not a repository name ({reason})")]
    Name {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// The htpasswd file cannot be used.
    #[error("htpasswd line {line}: {reason}")]
    Htpasswd {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The TLS certificate or key cannot be used.
    #[error("TLS: {reason}")]
    Tls {
        /// What is wrong.
        reason: String,
    },
}
