//! `ocil-edit`: edit images in OCI image layouts.
//!
//! Every edit writes new blobs (verified, atomic) and then replaces `index.json` once under
//! the layout's lock, so a kill at any moment leaves the old image or the new one. Documents
//! are edited losslessly: fields not asked to change keep their bytes and their order.
//!
//! - [`JsonDoc`]: a JSON object whose members keep their exact text and order unless set;
//!   duplicate keys are refused; serialises to the original bytes when nothing changed.
//! - [`edit_images`]: the transaction. An [`EditTarget`] names the `index.json` entry (tag or
//!   digest), the images of an index to edit ([`Platforms`]: one platform or all; an index
//!   without a choice is an error listing its platforms), and where the result goes (the
//!   entry is replaced, or a new tag is set). A closure edits each [`Image`] (manifest and
//!   config as `JsonDoc`s, their media types, [`Image::append_layer`], [`Image::add_history`]).
//!   Enclosing indexes, nested ones too, are rewritten with only the edited children's
//!   descriptors changed; BuildKit attestations stay byte-identical and attached.
//! - [`edit_entry_index`]: the same for an index document itself (its annotations).
//! - Building blocks for other edits: [`read_doc`], [`put_doc`], [`retarget`],
//!   [`is_attestation`].
//!
//! # Example
//!
//! ```
//! use ocil_edit::{EditTarget, History, Platforms, edit_images};
//! use ocil_layout::{Layout, Reference, tags};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let tmp = tempfile::tempdir()?;
//! # let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
//! # let layout = Layout::create(dir)?;
//! # let lock = layout.lock()?;
//! # let desc = ocil_edit::empty_image(&layout, &"linux/amd64".parse()?, None)?;
//! # let mut index = layout.read_index()?;
//! # tags::set_tag(&mut index, &desc, "v1")?;
//! # layout.write_index(&index, &lock)?;
//! // `layout` holds an image tagged `v1`; `lock` is `layout.lock()?`.
//! let reference = Reference::parse("v1")?;
//! let target = EditTarget {
//!     reference: &reference,
//!     platforms: Platforms::Unspecified, // or Platforms::One(..), Platforms::All for an index
//!     new_tag: Some("v2"),               // None: v1 moves to the edited image
//! };
//! let edited = edit_images(&layout, &lock, &target, |image| {
//!     image.runtime_config()?.set("WorkingDir", "/app")?;
//!     image.add_history(&History {
//!         comment: Some("set the working directory".into()),
//!         empty_layer: Some(true),
//!         ..History::default()
//!     })
//! })?;
//! assert_eq!(edited.images.len(), 1);
//! let index = layout.read_index()?;
//! assert_eq!(index.manifests.len(), 2); // v1 unchanged, v2 the edited image
//! assert_eq!(index.manifests[1].digest, edited.after.digest);
//! # Ok(()) }
//! ```

#![warn(missing_docs, clippy::unwrap_used)]

pub mod append;
pub mod config;
pub mod convert;
mod doc;
mod edit;
mod error;
mod image;
pub mod index;
pub mod layer;
mod new_image;

pub use config::{ConfigChanges, ConfigField};
pub use doc::JsonDoc;
pub use edit::{
    ANNOTATION_REFERENCE_DIGEST, ANNOTATION_REFERENCE_TYPE, EditTarget, Edited, EditedImage,
    Platforms, edit_entry_index, edit_images, is_attestation, platform_matches, put_doc, read_doc,
    retarget,
};
pub use error::{Error, Result};
pub use image::{History, Image};
pub use new_image::empty_image;
