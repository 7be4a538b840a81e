//! `ocil-codec`: the byte-level rules shared by every reader and writer of layers and
//! archives (import, append, convert, export, fsck --deep, unpack and repack).
//!
#![doc = include_str!("../README.md")]
#![warn(missing_docs, clippy::unwrap_used)]

mod decode;
mod encode;
pub mod epoch;
mod error;
pub mod names;
pub mod sparse;
pub mod tar_fault;
pub mod whiteout;

pub use decode::{Decompressed, Format, decoder, decompress};
pub use encode::{Encoder, GZIP_LEVEL, ZSTD_LEVEL};
pub use error::{Error, Result};
