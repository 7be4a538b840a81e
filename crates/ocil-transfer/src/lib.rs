//! `ocil-transfer`: the one copy engine. It takes the closure of images in any
//! [`ocil_layout::Store`] (a layout directory, an archive read in place), with the referrers
//! the store holds for them, and copies what a destination layout lacks, every blob checked
//! against its digest before it is named. `ocil copy`, `ocil index --add` from another
//! layout and the planning of `ocil export` all go through it; a transport (an archive
//! format, later a registry) provides a store and never copies by itself.
//!
//! - [`closure()`]: every blob a set of images reaches, in one or several stores, referrers
//!   included on request, each blob once;
//! - [`copy()`]: choose images from a store by reference (and platform), copy their closure
//!   into a layout (hard links or `copy_file_range` between layouts, verified streams
//!   otherwise), then replace `index.json` once under the destination's lock.

#![warn(missing_docs, clippy::unwrap_used)]

pub mod closure;
mod copy;
mod error;

pub use closure::{Closure, ClosureBlob, ClosureOptions, ClosureSource, closure};
pub use copy::{CopiedImage, CopyOptions, CopyReport, copy};
pub use error::{Error, Result};
