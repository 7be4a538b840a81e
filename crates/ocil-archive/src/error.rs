//! The crate's one error type. Variants about the archive name the entry (its path inside
//! the archive); variants about the destination carry the layout's own error, which names
//! the file; export's variants name the source layout (as the caller named it) and, where
//! there is one, the image or blob they are about. The source error is kept out of the
//! message for the chain printer to add.

use std::io;

use ocil_codec::tar_fault::TarFault;
use ocil_layout::Digest;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while reading an archive, importing it, or exporting layouts into one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input stream could not be read (a corrupt gzip or zstd stream, an I/O error).
    #[error("cannot read the archive{}", after_entry(.after))]
    Read {
        /// The last entry read whole before the failure.
        after: Option<String>,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The input ended in the middle of an entry or without the end-of-archive marker.
    #[error("the archive is truncated{}", match .entry {
        Some(e) => format!(" (in or after entry `{e}`)"),
        None => String::new(),
    })]
    Truncated {
        /// The entry being read, or the last one read.
        entry: Option<String>,
    },
    /// The input is empty.
    #[error("the archive is empty")]
    Empty,
    /// The input could not be read as a tar: the parser refused a header (in our words:
    /// the parser's own text can quote the archive).
    #[error("cannot read the archive{}", after_entry(.after))]
    Malformed {
        /// The last entry read whole before the failure.
        after: Option<String>,
        /// What is wrong.
        #[source]
        fault: TarFault,
    },
    /// The (decompressed) input does not start with a tar header.
    #[error("not a tar archive")]
    NotATar {
        /// What the parser found instead of a header.
        #[source]
        fault: TarFault,
    },
    /// An entry name is absolute, has a `..` component, or is not UTF-8.
    #[error("archive entry `{entry}` is unsafe: {reason}")]
    UnsafeEntry {
        /// The entry name as written in the archive.
        entry: String,
        /// Why.
        reason: &'static str,
    },
    /// Two entries have the same (normalised) path.
    #[error("archive entry `{entry}` appears twice")]
    DuplicateEntry {
        /// The normalised path.
        entry: String,
    },
    /// An entry type an image archive has no use for (device, fifo, sparse file).
    #[error("archive entry `{entry}` is a {kind}, which an image archive cannot hold")]
    UnsupportedEntry {
        /// The normalised path.
        entry: String,
        /// What it is.
        kind: &'static str,
    },
    /// A symlink or hardlink stands where a regular file is required.
    #[error(
        "archive entry `{entry}` is a {kind}; `oci-layout`, `index.json`, `manifest.json`, `repositories` and `blobs/` must be regular files"
    )]
    LinkNotAllowed {
        /// The normalised path.
        entry: String,
        /// `symlink` or `hardlink`.
        kind: &'static str,
    },
    /// A symlink or hardlink points outside the archive (absolute, or `..` past the root).
    #[error("archive entry `{entry}` is a {kind} to `{target}`, which leads outside the archive")]
    LinkEscapes {
        /// The normalised path.
        entry: String,
        /// `symlink` or `hardlink`.
        kind: &'static str,
        /// The link target as written.
        target: String,
    },
    /// A link that is needed points at nothing, at a directory, or at a chain that loops.
    #[error("archive entry `{entry}` is a link to `{target}`, which {reason}")]
    LinkUnresolved {
        /// The normalised path.
        entry: String,
        /// The resolved target.
        target: String,
        /// Why it cannot be used.
        reason: &'static str,
    },
    /// An entry that is read into memory (JSON) is larger than the cap.
    #[error(
        "archive entry `{entry}` is {size} bytes, over the {limit}-byte limit for JSON documents"
    )]
    TooLarge {
        /// The normalised path.
        entry: String,
        /// Its size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// A `blobs/<alg>/<hex>` entry does not hash to its name.
    #[error("archive entry `{entry}` hashes to `{found}`, not to the digest its name says")]
    DigestMismatch {
        /// The normalised path.
        entry: String,
        /// The digest of its bytes.
        found: Digest,
    },
    /// An entry the format requires, or one a document names, is not in the archive.
    #[error("archive entry `{entry}` ({what}) is not in the archive")]
    MissingEntry {
        /// The normalised path.
        entry: String,
        /// What it is for.
        what: String,
    },
    /// An entry that must be a regular file is a directory.
    #[error("archive entry `{entry}` is a directory, not a file")]
    NotAFile {
        /// The normalised path.
        entry: String,
    },
    /// An archive read in one pass (compressed, or from a pipe) keeps only its JSON
    /// documents in memory.
    #[error(
        "archive entry `{entry}` cannot be read in place: the archive was read in one pass (it is compressed, or came down a pipe), and only its JSON documents are kept (import it to read the rest)"
    )]
    NotKept {
        /// The normalised path.
        entry: String,
    },
    /// A JSON document of the archive does not parse.
    #[error("archive entry `{entry}` is not valid JSON")]
    InvalidJson {
        /// The normalised path.
        entry: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// `manifest.json` is JSON but not the docker-save shape `[{Config, RepoTags, Layers}]`.
    #[error("archive entry `manifest.json` is not a docker-save manifest: {reason}")]
    DockerManifestInvalid {
        /// Why.
        reason: String,
    },
    /// A path in `manifest.json` is absolute or leads outside the archive.
    #[error("`manifest.json` entry {image} names `{path}`, which {reason}")]
    UnsafeReference {
        /// The position in `manifest.json`.
        image: usize,
        /// The path as written.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// `oci-layout` is not a valid layout marker.
    #[error("archive entry `oci-layout` is invalid: {reason}")]
    InvalidLayoutFile {
        /// Why.
        reason: String,
    },
    /// `index.json` is not a valid image index.
    #[error("archive entry `index.json` is not a valid image index: {reason}")]
    InvalidIndex {
        /// Why.
        reason: String,
    },
    /// An image config named by `manifest.json` is not usable.
    #[error("archive entry `{entry}` is not a valid image config: {reason}")]
    InvalidConfig {
        /// The normalised path.
        entry: String,
        /// Why.
        reason: String,
    },
    /// The config's `rootfs.diff_ids` do not match the layers `manifest.json` lists.
    #[error("`manifest.json` entry {image}: {reason}")]
    DiffIdMismatch {
        /// The position in `manifest.json`.
        image: usize,
        /// What differs.
        reason: String,
    },
    /// A docker-save layer whose first bytes say xz or bzip2 (stored decompressed, as no
    /// media type names those compressions) does not decompress.
    #[error("archive entry `{entry}` starts as {format} data but does not decompress")]
    Undecodable {
        /// The normalised path.
        entry: String,
        /// `xz` or `bzip2`.
        format: &'static str,
        /// The decoder's complaint.
        #[source]
        source: io::Error,
    },
    /// A tag from the archive is not a valid tag.
    #[error("the archive names the image `{name}`, whose tag `{tag}` is not valid")]
    InvalidTag {
        /// The full name as written in the archive.
        name: String,
        /// The tag taken from it.
        tag: String,
        /// The layout's complaint.
        #[source]
        source: Box<ocil_layout::Error>,
    },
    /// The archive gives one tag to two different images.
    #[error("the archive tags two different images `{tag}` (`{first}` and `{second}`)")]
    DuplicateTag {
        /// The tag.
        tag: String,
        /// The first image.
        first: Digest,
        /// The second image.
        second: Digest,
    },
    /// The archive is the pre-1.10 docker-save format.
    #[error(
        "legacy docker save format (pre-1.10) is not supported: `repositories` and `<id>/json` without `manifest.json`"
    )]
    LegacyFormat,
    /// The archive is a tar, but not an image archive.
    #[error(
        "not an image archive: no `oci-layout`, `index.json` or `manifest.json` at its root (a plain tar, such as a layer?)"
    )]
    NotAnImageArchive,
    /// A tag in the destination already names a different image.
    #[error(
        "tag `{tag}` already names `{existing}` in the destination, not `{new}` (use --force to move it)"
    )]
    TagConflict {
        /// The tag.
        tag: String,
        /// What it names now.
        existing: Digest,
        /// What the archive gives it.
        new: Digest,
    },
    /// The image to import is not in the archive.
    #[error("the archive has no image `{reference}` (it holds {images})")]
    ImageNotInArchive {
        /// The tag, name or digest asked for.
        reference: String,
        /// What the archive holds.
        images: String,
    },
    /// The image to import names several different images of the archive.
    #[error("`{reference}` names several images of the archive: {images}")]
    AmbiguousImage {
        /// The tag, name or digest asked for.
        reference: String,
        /// The images it names.
        images: String,
    },
    /// A tag for the import, but the archive holds several images (or none) and none was
    /// chosen.
    #[error(
        "cannot tag the import `{tag}`: the archive holds {count} images ({images}); choose one with --image NAME"
    )]
    SeveralImages {
        /// The tag.
        tag: String,
        /// How many different images the archive holds.
        count: usize,
        /// What the archive holds.
        images: String,
    },
    /// Staging an entry in the destination's blob store failed.
    #[error("cannot stage archive entry `{entry}` in the destination")]
    Stage {
        /// The normalised path.
        entry: String,
        /// The layout's error.
        #[source]
        source: Box<ocil_layout::Error>,
    },
    /// An operation on the destination layout failed.
    #[error(transparent)]
    Layout(Box<ocil_layout::Error>),
    // Export: reading the source layouts and writing the archive.
    /// Reading a source layout failed (its `index.json`, a document, a reference).
    #[error("cannot read `{layout}`")]
    SourceLayout {
        /// The source layout.
        layout: String,
        /// The layout's error.
        #[source]
        source: Box<ocil_layout::Error>,
    },
    /// A digest reference names neither an `index.json` entry nor a manifest in the store.
    #[error("`{layout}` has no manifest or index `{digest}`")]
    DigestNotFound {
        /// The source layout.
        layout: String,
        /// The digest asked for.
        digest: Digest,
    },
    /// There is nothing to export.
    #[error("nothing to export: `{layout}` has no index.json entries")]
    NothingToExport {
        /// The source layout.
        layout: String,
    },
    /// Two sources (or two entries of one) give one tag to different images.
    #[error(
        "tag `{tag}` names `{first}` in `{first_layout}` but `{second}` in `{second_layout}`: an archive can give a tag to one image only"
    )]
    ExportTagConflict {
        /// The tag.
        tag: String,
        /// The first image.
        first: Box<Digest>,
        /// Where it comes from.
        first_layout: String,
        /// The second image.
        second: Box<Digest>,
        /// Where it comes from.
        second_layout: String,
    },
    /// The graph of an exported image is broken in the source (a missing or unreadable blob).
    #[error("`{layout}` is incomplete: {path}: {message} (run `ocil fsck {layout}`)")]
    SourceIncomplete {
        /// The source layout.
        layout: String,
        /// From `index.json` to the blob.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A blob's bytes do not match its digest (or its size changed) while it was copied.
    #[error("blob `{digest}` of `{layout}` is corrupt: {reason} (run `ocil fsck {layout}`)")]
    BlobCorrupt {
        /// The source layout.
        layout: String,
        /// The blob.
        digest: Digest,
        /// What the check found.
        reason: String,
    },
    /// Docker format: an exported entry is not an image (an artifact, a schema1 manifest).
    #[error(
        "{image} in `{layout}` is a {media_type}, not an image: docker-archive can only hold images (use --format oci)"
    )]
    NotAnImage {
        /// The source layout.
        layout: String,
        /// The entry (`tag` or digest).
        image: String,
        /// What it is.
        media_type: String,
    },
    /// Docker format: an index entry needs a platform to pick one image.
    #[error(
        "{image} in `{layout}` is an index of {} images ({}): docker-archive holds one image per tag; pick one with --platform",
        .platforms.len(), .platforms.join(", ")
    )]
    NeedsPlatform {
        /// The source layout.
        layout: String,
        /// The entry.
        image: String,
        /// The platforms it offers.
        platforms: Vec<String>,
    },
    /// Docker format: no image of an index matches `--platform`.
    #[error("{image} in `{layout}` has no image for platform `{platform}` (it has: {})", .platforms.join(", "))]
    NoSuchPlatform {
        /// The source layout.
        layout: String,
        /// The entry.
        image: String,
        /// The platform asked for.
        platform: String,
        /// The platforms it offers.
        platforms: Vec<String>,
    },
    /// Docker format: a layer is zstd-compressed, which docker-archive cannot carry.
    #[error(
        "{image} in `{layout}` has a zstd layer `{layer}`: docker-archive layers must be tar or gzip (docker load before 23.0 cannot read zstd); use --format oci"
    )]
    ZstdLayer {
        /// The source layout.
        layout: String,
        /// The entry.
        image: String,
        /// The layer.
        layer: Digest,
    },
    /// Docker format: a tag without a repository, so no `name:tag` for `RepoTags`.
    #[error(
        "tag `{tag}` in `{layout}` has no repository name (no io.containerd.image.name annotation): docker-archive needs `name:tag`; give one with --repo NAME (RepoTags becomes NAME:{tag})"
    )]
    NoRepository {
        /// The source layout.
        layout: String,
        /// The tag.
        tag: String,
    },
    /// Writing the archive failed.
    #[error("cannot write the archive")]
    Write {
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    // Carrying: receipts, deltas and volumes.
    /// A receipt (`ocil receipt`'s file) that cannot be read as one.
    #[error("`{receipt}` is not an ocil receipt: {reason}")]
    InvalidReceipt {
        /// The file as the user named it.
        receipt: String,
        /// Why.
        reason: String,
    },
    /// `ocil-bundle.json` (what a delta or a volume says about itself) is not usable.
    #[error("archive entry `ocil-bundle.json` is invalid: {reason}")]
    InvalidBundle {
        /// Why.
        reason: String,
    },
    /// A delta's base is not in the destination: blobs it omits are missing there.
    #[error(
        "the archive is a delta{}: the destination lacks {} of the {omitted} blob(s) it leaves out: {} (import the base first, or export a delta against this layout's receipt); nothing was written",
        match .base { Some(b) => format!(" against base receipt `{b}`"), None => String::new() },
        .missing.len(),
        list_digests(.missing)
    )]
    BaseMissing {
        /// The base's receipt identity.
        base: Option<Digest>,
        /// How many blobs the delta omits.
        omitted: usize,
        /// The omitted blobs the destination lacks.
        missing: Vec<Digest>,
    },
    /// A volume's blobs are not the ones its `ocil-bundle.json` lists for it.
    #[error("volume {volume} does not match its `ocil-bundle.json`: {reason}")]
    VolumeMismatch {
        /// The volume's number.
        volume: u32,
        /// What differs.
        reason: String,
    },
    /// A blob found in the destination when the import began was gone at its end.
    #[error(
        "blob `{digest}` was in the destination when the import began but is gone (a concurrent `ocil gc`?); run the import again"
    )]
    BlobVanished {
        /// The blob.
        digest: Digest,
    },
    /// An import option a delta or a volume cannot honour.
    #[error("{reason}")]
    CarryUnsupported {
        /// What and why.
        reason: String,
    },
    /// A blob (with the volume's own entries) does not fit in one volume.
    #[error(
        "blob `{digest}` is {size} bytes and needs a volume of at least {needed} bytes (with the volume's own entries), over --volume-size {volume_size}: blobs are not split across volumes; give a larger --volume-size"
    )]
    VolumeTooSmall {
        /// The blob.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The smallest volume size that holds it.
        needed: u64,
        /// The volume size asked for.
        volume_size: u64,
    },
}

/// Digests for a message: the first few, and how many more.
fn list_digests(digests: &[Digest]) -> String {
    const SHOWN: usize = 10;
    let mut out: Vec<String> = digests.iter().take(SHOWN).map(|d| format!("`{d}`")).collect();
    if digests.len() > SHOWN {
        out.push(format!("and {} more", digests.len() - SHOWN));
    }
    out.join(", ")
}

impl From<ocil_layout::Error> for Error {
    fn from(e: ocil_layout::Error) -> Error {
        Error::Layout(Box::new(e))
    }
}

fn after_entry(entry: &Option<String>) -> String {
    match entry {
        Some(e) => format!(" (after entry `{e}`)"),
        None => String::new(),
    }
}

impl Error {
    /// A stable code when the error is about the archive's content (what `ocil fsck` reports
    /// as a problem); `None` when it is about the destination or the machine.
    pub fn code(&self) -> Option<&'static str> {
        Some(match self {
            Error::Read { .. } | Error::Malformed { .. } => "ARCHIVE_UNREADABLE",
            Error::Truncated { .. } => "ARCHIVE_TRUNCATED",
            Error::Empty => "ARCHIVE_EMPTY",
            Error::NotATar { .. } => "NOT_A_TAR",
            Error::UnsafeEntry { .. } | Error::LinkEscapes { .. } => "UNSAFE_ENTRY",
            Error::UnsafeReference { .. } => "UNSAFE_REFERENCE",
            Error::DuplicateEntry { .. } => "DUPLICATE_ENTRY",
            Error::UnsupportedEntry { .. } => "UNSUPPORTED_ENTRY",
            Error::LinkNotAllowed { .. } => "LINK_NOT_ALLOWED",
            Error::LinkUnresolved { .. } => "LINK_UNRESOLVED",
            Error::TooLarge { .. } => "ENTRY_TOO_LARGE",
            Error::DigestMismatch { .. } => "DIGEST_MISMATCH",
            Error::MissingEntry { .. } => "ENTRY_MISSING",
            Error::NotAFile { .. } => "ENTRY_NOT_A_FILE",
            Error::NotKept { .. } => return None,
            Error::InvalidJson { entry, .. } => match entry.as_str() {
                "manifest.json" => "DOCKER_MANIFEST_INVALID",
                "index.json" => "INDEX_INVALID",
                "oci-layout" => "LAYOUT_FILE_INVALID",
                _ => "INVALID_JSON",
            },
            Error::DockerManifestInvalid { .. } => "DOCKER_MANIFEST_INVALID",
            Error::InvalidLayoutFile { .. } => "LAYOUT_FILE_INVALID",
            Error::InvalidIndex { .. } => "INDEX_INVALID",
            Error::InvalidConfig { .. } => "INVALID_CONFIG",
            Error::DiffIdMismatch { .. } => "DIFF_ID_MISMATCH",
            Error::Undecodable { .. } => "LAYER_UNDECODABLE",
            Error::InvalidTag { .. } => "INVALID_TAG",
            Error::DuplicateTag { .. } => "DUPLICATE_TAG",
            Error::LegacyFormat => "LEGACY_FORMAT",
            Error::NotAnImageArchive => "NOT_AN_IMAGE_ARCHIVE",
            Error::TagConflict { .. }
            | Error::ImageNotInArchive { .. }
            | Error::AmbiguousImage { .. }
            | Error::SeveralImages { .. }
            | Error::Stage { .. }
            | Error::Layout(_) => return None,
            // Export's errors are about its sources and the output, not an archive's content.
            Error::SourceLayout { .. }
            | Error::DigestNotFound { .. }
            | Error::NothingToExport { .. }
            | Error::ExportTagConflict { .. }
            | Error::SourceIncomplete { .. }
            | Error::BlobCorrupt { .. }
            | Error::NotAnImage { .. }
            | Error::NeedsPlatform { .. }
            | Error::NoSuchPlatform { .. }
            | Error::ZstdLayer { .. }
            | Error::NoRepository { .. }
            | Error::Write { .. } => return None,
            Error::InvalidBundle { .. } => "BUNDLE_INVALID",
            Error::VolumeMismatch { .. } => "BUNDLE_MISMATCH",
            Error::BaseMissing { .. } => "BASE_MISSING",
            Error::InvalidReceipt { .. }
            | Error::BlobVanished { .. }
            | Error::CarryUnsupported { .. }
            | Error::VolumeTooSmall { .. } => return None,
        })
    }

    /// Export: a source layout's error, naming the layout.
    pub(crate) fn source_layout(layout: &str) -> impl FnOnce(ocil_layout::Error) -> Error + '_ {
        move |e| Error::SourceLayout { layout: layout.to_owned(), source: Box::new(e) }
    }

    /// Export: writing the archive failed.
    pub(crate) fn write(source: io::Error) -> Error {
        Error::Write { source }
    }

    /// The archive entry the error is about, when there is one.
    pub fn entry(&self) -> Option<&str> {
        match self {
            Error::Read { after, .. } | Error::Malformed { after, .. } => after.as_deref(),
            Error::Truncated { entry } => entry.as_deref(),
            Error::UnsafeEntry { entry, .. }
            | Error::DuplicateEntry { entry }
            | Error::UnsupportedEntry { entry, .. }
            | Error::LinkNotAllowed { entry, .. }
            | Error::LinkEscapes { entry, .. }
            | Error::LinkUnresolved { entry, .. }
            | Error::TooLarge { entry, .. }
            | Error::DigestMismatch { entry, .. }
            | Error::MissingEntry { entry, .. }
            | Error::NotAFile { entry }
            | Error::NotKept { entry }
            | Error::Undecodable { entry, .. }
            | Error::InvalidJson { entry, .. }
            | Error::InvalidConfig { entry, .. }
            | Error::Stage { entry, .. } => Some(entry),
            Error::DockerManifestInvalid { .. } | Error::UnsafeReference { .. } => {
                Some("manifest.json")
            }
            Error::DiffIdMismatch { .. } => Some("manifest.json"),
            Error::InvalidLayoutFile { .. } => Some("oci-layout"),
            Error::InvalidIndex { .. } => Some("index.json"),
            Error::InvalidBundle { .. } | Error::VolumeMismatch { .. } => Some("ocil-bundle.json"),
            _ => None,
        }
    }
}
