//! The crate's one error type. Every variant names what it is about: the layer (its position
//! and digest) and the entry, the path inside the rootfs, or the bundle's file.

use std::io;

use ocil_codec::tar_fault::TarFault;
use ocil_layout::Digest;

/// What can go wrong unpacking, comparing or repacking a bundle.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store could not give a document or a blob.
    #[error(transparent)]
    Layout(#[from] ocil_layout::Error),
    /// The reference does not name an image ocil can unpack.
    #[error("`{reference}` is not an image: {reason}")]
    NotAnImage {
        /// The reference, as given.
        reference: String,
        /// What it is instead.
        reason: String,
    },
    /// An index, and no platform chosen (or the host's not in it).
    #[error("`{reference}` is an index of several platforms: choose one ({})", platforms.join(", "))]
    PlatformRequired {
        /// The reference.
        reference: String,
        /// The platforms it holds.
        platforms: Vec<String>,
    },
    /// The platform asked for is not in the index (or not the image's).
    #[error("`{reference}` has no image for {platform} (it has: {})", platforms.join(", "))]
    PlatformNotFound {
        /// The reference.
        reference: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it has.
        platforms: Vec<String>,
    },
    /// The image's config or manifest is not what an unpack needs.
    #[error("image `{digest}`: {reason}")]
    BadImage {
        /// The manifest or config.
        digest: Digest,
        /// What is wrong.
        reason: String,
    },
    /// A layer could not be read (the store, the decompressor).
    #[error("layer {position} (`{digest}`): cannot read it")]
    LayerRead {
        /// 1-based position in the manifest.
        position: usize,
        /// Its digest.
        digest: Digest,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The tar parser refused a layer.
    #[error("layer {position} (`{digest}`): {fault}")]
    Tar {
        /// 1-based position.
        position: usize,
        /// Its digest.
        digest: Digest,
        /// What the parser found.
        fault: TarFault,
    },
    /// A layer's uncompressed bytes do not hash to the config's diff_id.
    #[error(
        "layer {position} (`{digest}`): its uncompressed digest is `{found}`, the config's diff_ids say `{expected}`"
    )]
    DiffIdMismatch {
        /// 1-based position.
        position: usize,
        /// The layer blob.
        digest: Digest,
        /// The config's `rootfs.diff_ids` entry.
        expected: String,
        /// What the tar hashes to.
        found: Digest,
    },
    /// An entry of a layer that cannot be applied (unsafe name, root not a directory, a hard
    /// link to nothing, ...).
    #[error("layer {position} (`{digest}`), entry `{entry}`: {reason}")]
    BadEntry {
        /// 1-based position.
        position: usize,
        /// The layer blob.
        digest: Digest,
        /// The entry's name, as in the tar (lossy UTF-8).
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// Applying an entry failed on the filesystem.
    #[error("layer {position} (`{digest}`), entry `{entry}`: cannot {op}")]
    Apply {
        /// 1-based position.
        position: usize,
        /// The layer blob.
        digest: Digest,
        /// The entry's name.
        entry: String,
        /// What was being done (`create the file`, `set the owner`, ...).
        op: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A filesystem operation on a path of the rootfs failed.
    #[error("rootfs: cannot {op} `{path}`")]
    Rootfs {
        /// What was being done.
        op: &'static str,
        /// The path inside the rootfs (`/` for the root).
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A filesystem operation on the bundle failed.
    #[error("bundle: cannot {op} `{path}`")]
    Bundle {
        /// What was being done.
        op: &'static str,
        /// The bundle's file (`rootfs`, `config.json`, the record).
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The bundle directory holds something and the unpack was not told to replace it.
    #[error("the bundle is not empty (it holds `{first}`)")]
    BundleNotEmpty {
        /// One name it holds.
        first: String,
    },
    /// The bundle has no record: it is not an ocil bundle, or its unpack did not finish.
    #[error("not a complete ocil bundle: {reason}")]
    NotABundle {
        /// Which.
        reason: String,
    },
    /// The bundle's record could not be parsed.
    #[error("bundle: the record `{path}` is damaged: {reason}")]
    BadRecord {
        /// The record's file name.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The image's `User` cannot be turned into ids.
    #[error("image user `{user}`: {reason}")]
    User {
        /// The config's `User`.
        user: String,
        /// Why.
        reason: String,
    },
    /// Writing a tar (a repacked layer, an exported rootfs) failed.
    #[error("cannot write the tar")]
    Write(#[source] io::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
