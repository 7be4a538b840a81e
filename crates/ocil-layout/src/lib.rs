//! `ocil-layout`: OCI image-layout directories.
//!
//! - [`Digest`] and [`Algorithm`]: validated digests (sha256, sha512) and hashing;
//! - [`MediaType`] and [`Kind`]: every OCI, Docker, schema1 and pre-1.0 draft media type,
//!   classified, with the Docker <-> OCI correspondence;
//! - [`Descriptor`], [`Index`], [`Manifest`], [`Platform`]: spec data that keeps unknown fields;
//! - [`image_ref`]: targets on the command line (`DIR:TAG`, `oci-archive:FILE`, `docker://NAME`)
//!   with their transports;
//! - [`Layout`]: the handle over a `cap_std` directory: `oci-layout`, atomic `index.json`
//!   replacement under a cross-process lock, the verified blob store;
//! - [`progress`]: the progress callbacks long operations report to;
//! - [`Store`]: read access to blobs and the index, whatever holds them (a layout, an archive,
//!   a registry); [`Destination`]: where the copy engine writes (a layout, a registry);
//! - [`walk`]: the one graph walk shared by fsck, gc and friends, over any [`Store`];
//! - [`referrer`]: stored documents whose `subject` names another manifest;
//! - [`validate`]: structural validation per the image spec.
//!
//! # Example
//!
//! ```
//! use ocil_layout::{Layout, MediaType};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = tempfile::tempdir()?;
//! let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority())?;
//! let layout = Layout::create(dir)?;
//! let desc = layout.put_bytes(MediaType::OciEmpty, b"{}")?;
//! assert_eq!(desc.digest.to_string(),
//!     "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
//! let lock = layout.lock()?;
//! let mut index = layout.read_index()?;
//! index.manifests.clear();
//! layout.write_index(&index, &lock)?;
//! # Ok(()) }
//! ```

#![warn(missing_docs, clippy::unwrap_used)]

pub mod atomic;
mod blob;
mod descriptor;
pub mod destination;
pub mod digest;
mod digest_set;
mod error;
mod image;
pub mod image_ref;
mod layout;
mod lock;
pub mod media_type;
pub mod progress;
pub mod reference;
pub mod referrer;
pub mod store;
pub mod tags;
pub mod validate;
pub mod walk;

pub use blob::{
    BlobInfo, BlobListing, BlobNames, BlobWriter, Probe, StagedBlob, Stored, Stray, TempInfo,
    VerifiedReader,
};
pub use descriptor::{ANNOTATION_CONTAINERD_NAME, ANNOTATION_REF_NAME, Descriptor, Platform};
pub use destination::{Destination, Landed};
pub use digest::{Algorithm, Digest, DigestError, DigestMap, Hasher};
pub use digest_set::DigestSet;
pub use error::{Error, Result};
pub use image::{Index, LayoutHeader, Manifest};
pub use layout::{
    BLOBS_DIR, INDEX_FILE, JSON_LIMIT, LAYOUT_FILE, LAYOUT_VERSION, Layout, TEMP_PREFIX,
    parse_index, temp_name,
};
pub use lock::LockGuard;
pub use media_type::{Compression, Family, Kind, MediaType};
pub use reference::Reference;
pub use store::Store;
