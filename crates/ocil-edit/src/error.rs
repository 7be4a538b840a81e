//! The crate's error type. Every variant names the document (a blob path, `index.json`, or a
//! member path inside a document) or the reference it is about; sources stay out of the
//! message for the chain printer to add.

use std::io;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong with an edit.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layout operation failed (I/O, a missing or corrupt blob, a bad reference).
    #[error(transparent)]
    Layout(#[from] ocil_layout::Error),
    /// A document is not valid JSON, or not a JSON object.
    #[error("`{path}` is not a valid JSON object")]
    InvalidJson {
        /// The document (blob path, or blob path and member).
        path: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// A document has the same key twice: which one a reader keeps is undefined, so an edit
    /// would change meaning behind the user's back.
    #[error("`{path}` has the key `{key}` more than once; refusing to edit an ambiguous document")]
    DuplicateKey {
        /// The document.
        path: String,
        /// The repeated key.
        key: String,
    },
    /// A member has a type the edit cannot work with.
    #[error("`{path}`: member `{key}` is not {expected}")]
    WrongType {
        /// The document.
        path: String,
        /// The member.
        key: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A value cannot be serialised (never for the types this crate writes).
    #[error("cannot serialise `{what}`")]
    Serialize {
        /// What was being serialised.
        what: String,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The reference names an index (or manifest list) and no platform was chosen.
    #[error(
        "`{reference}` is a multi-platform {kind}: choose --platform ({}) or --all-platforms",
        platforms.join(", ")
    )]
    PlatformRequired {
        /// The reference as given.
        reference: String,
        /// `index` or `manifest list`.
        kind: &'static str,
        /// The platforms of its images.
        platforms: Vec<String>,
    },
    /// No image of the index has the requested platform.
    #[error("`{reference}` has no image for platform `{platform}` (platforms: {})", platforms.join(", "))]
    PlatformNotFound {
        /// The reference as given.
        reference: String,
        /// The requested platform.
        platform: String,
        /// The platforms it has.
        platforms: Vec<String>,
    },
    /// Several different images of the index match the requested platform.
    #[error("platform `{platform}` matches several images of `{reference}`: {}", candidates.join(", "))]
    PlatformAmbiguous {
        /// The reference as given.
        reference: String,
        /// The requested platform.
        platform: String,
        /// The matching images (`os/arch[/variant]` and digest).
        candidates: Vec<String>,
    },
    /// The reference names something that is not an image (an artifact, a layer, ...).
    #[error("`{reference}` is not an image: {reason}")]
    NotAnImage {
        /// The reference as given.
        reference: String,
        /// What it is instead.
        reason: String,
    },
    /// The reference names an image where an index (or manifest list) is needed.
    #[error("`{reference}` is a `{media_type}`, not an index or manifest list")]
    NotAnIndex {
        /// The reference as given.
        reference: String,
        /// What it is.
        media_type: String,
    },
    /// The reference names a digest that no `index.json` entry has.
    #[error(
        "no `index.json` entry has digest `{digest}`: to edit a blob that is not an entry, give the result a new tag"
    )]
    NotAnEntry {
        /// The digest.
        digest: ocil_layout::Digest,
    },
    /// A value given for an edit is not valid.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidValue {
        /// What the value is for.
        what: &'static str,
        /// The value as given.
        value: String,
        /// Why.
        reason: String,
    },
    // Layers (`layer`, `ocil append`).
    /// Reading the source failed.
    #[error("cannot {op} `{path}`")]
    Source {
        /// What was being done.
        op: &'static str,
        /// The path, relative to the source directory (or the tar file's name).
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// A file type a layer built by ocil does not carry.
    #[error("`{path}` is a {kind}: {reason}")]
    Unsupported {
        /// The path relative to the source directory.
        path: String,
        /// What it is.
        kind: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A file changed while it was packed.
    #[error("`{path}` changed while it was being packed: {what}")]
    Changed {
        /// The path relative to the source directory.
        path: String,
        /// What changed.
        what: String,
    },
    /// The input is not a tar archive ocil accepts as a layer.
    #[error("`{source_name}` is not a usable layer tar: {reason}")]
    BadTar {
        /// The tar file's name as given.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// An entry of an input tar could escape the root it is extracted into.
    #[error("`{source_name}`: entry `{entry}` {reason}")]
    UnsafeEntry {
        /// The tar file's name as given.
        source_name: String,
        /// The entry's name (lossy UTF-8).
        entry: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// The image's media type family has no layer type for this compression.
    #[error("{family} images have no {compression} layer media type{hint}")]
    NoMediaType {
        /// `Docker` or `OCI`.
        family: &'static str,
        /// The compression asked for.
        compression: &'static str,
        /// What to do instead.
        hint: &'static str,
    },
    /// Writing the tar stream failed.
    #[error("cannot write the layer blob")]
    Write(#[source] io::Error),
    // Conversions (`convert`, `ocil convert`).
    /// The conversion cannot be done as asked.
    #[error("cannot convert `{what}` to {to}: {reason}")]
    ConvertRefused {
        /// The document or layer (blob path).
        what: String,
        /// `oci` or `docker`.
        to: &'static str,
        /// Why, and what to do.
        reason: String,
    },
    /// A recompressed layer's uncompressed digest is not the config's diff_id.
    #[error(
        "layer `{layer}` decompresses to `{found}`, but the config's rootfs.diff_ids[{position}] is `{expected}`: the image is broken"
    )]
    DiffIdMismatch {
        /// The layer's blob path.
        layer: String,
        /// Its position.
        position: usize,
        /// The config's diff_id.
        expected: String,
        /// What it decompresses to.
        found: ocil_layout::Digest,
    },
    /// Reading a layer failed (corrupt, truncated, not the compression it claims).
    #[error("cannot read layer `{layer}`")]
    LayerRead {
        /// The layer's blob path.
        layer: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
}
