//! `ocil-transfer`: the one copy engine. It takes the closure of images in any
//! [`ocil_layout::Store`] (a layout directory, an archive read in place, a registry), with
//! the referrers the store holds for them, and copies what an [`ocil_layout::Destination`]
//! (a layout, a registry) lacks, every blob checked against its digest before it is named.
//! `ocil copy`, `ocil pull`, `ocil push`, `ocil index --add` from another layout and the
//! planning of `ocil export` all go through it; a transport (an archive format, a registry)
//! provides a store or a destination and never copies by itself.
//!
//! - [`closure()`]: every blob a set of images reaches, in one or several stores, referrers
//!   included on request, each blob once;
//! - [`copy()`]: choose images from a store by reference (and platform), copy their closure
//!   into a destination level by level (hard links or `copy_file_range` between layouts,
//!   verified streams and checked manifest bytes otherwise), then name them: `index.json`
//!   replaced once under a layout's lock, or a registry's tags last.

#![warn(missing_docs, clippy::unwrap_used)]

pub mod closure;
mod copy;
mod error;

pub use closure::{Closure, ClosureBlob, ClosureOptions, ClosureSource, closure};
pub use copy::{CopiedImage, CopyOptions, CopyReport, copy};
pub use error::{Error, Result};
