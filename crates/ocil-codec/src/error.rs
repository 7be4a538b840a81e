//! The crate's one error type.

use std::io;

/// What can go wrong in a codec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading the first bytes of the stream failed.
    #[error("cannot read the start of the stream")]
    Read(#[source] io::Error),
    /// The decoder could not start on the stream.
    #[error("cannot start the {} decoder", format.as_str())]
    Decoder {
        /// The format whose decoder failed.
        format: crate::Format,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A `SOURCE_DATE_EPOCH` value that is not a number of seconds since 1970.
    #[error("invalid SOURCE_DATE_EPOCH `{value}`: expected a number of seconds since 1970")]
    InvalidEpoch {
        /// The value given.
        value: String,
    },
    /// A time that is not RFC 3339, or a number of seconds out of its range.
    #[error("`{value}` is not an RFC 3339 time such as 2024-01-01T00:00:00Z")]
    InvalidTime {
        /// The value given.
        value: String,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
