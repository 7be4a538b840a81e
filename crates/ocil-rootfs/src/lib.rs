//! `ocil-rootfs`: runtime bundles. An image of any store unpacked safely into a rootfs with
//! an OCI runtime `config.json`; what changed in it since, like `git status`; the changes
//! packed as one new layer.
//!
//! # Safety
//!
//! Layers are hostile input. The `tar` crate only parses them; its `unpack` is never used
//! (it checks paths with a racy `canonicalize`, skips `..` entries silently, knows no
//! whiteouts and writes device nodes as files). Every path is resolved inside the rootfs as
//! the container will see it ([`root`]: `openat2` with `RESOLVE_IN_ROOT`, or a
//! component-by-component walk that does the same), and every entry is made with `*at`
//! calls relative to its parent's descriptor that never follow its last component: no write,
//! `chmod`, `chown` or `utime` reaches outside the rootfs through `..`, absolute names,
//! symlinks or hard links. A root entry that is not a directory is refused
//! (CVE-2021-29136).
//!
//! # Example
//!
//! ```no_run
//! use cap_std::fs::Dir;
//! use ocil_layout::{Layout, Reference, progress::Silent};
//! use ocil_rootfs::{UnpackOptions, unpack};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layout = Layout::open_ambient("image-layout".as_ref())?;
//! let bundle = Dir::open_ambient_dir("bundle", cap_std::ambient_authority())?;
//! let opts = UnpackOptions { name: "image-layout:v1", ..UnpackOptions::default() };
//! let done = unpack(&layout, Some(&Reference::parse("v1")?), &bundle, &opts, &Silent)?;
//! println!("{} paths from {} layers", done.paths, done.layers);
//! # Ok(()) }
//! ```

#![warn(missing_docs, clippy::unwrap_used)]

mod access;
mod apply;
pub mod bundle;
mod error;
mod export;
pub mod image;
pub mod pack;
pub mod record;
mod repack;
pub mod root;
mod spec;
pub mod status;
mod tar_writer;
mod unpack;
mod user;

pub use apply::ROOTLESS_XATTR;
pub use error::{Error, Result};
pub use export::{Exported, export_rootfs};
pub use pack::{PackOptions, Packed, pack_changes, pack_tree};
pub use record::Record;
pub use repack::{Repacked, record_repack};
pub use root::Resolver;
pub use status::{Change, Status, StatusOptions, What, status};
pub use unpack::{UnpackOptions, Unpacked, unpack};
