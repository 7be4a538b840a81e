//! The error type of [`export`](crate::export): every variant names the source layout (as
//! the caller named it) and, where there is one, the image or blob it is about.

use std::io;

use ocil_layout::Digest;

/// What went wrong while exporting.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading a source layout failed (its `index.json`, a document, a reference).
    #[error("cannot read `{layout}`")]
    Source {
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
    Empty {
        /// The source layout.
        layout: String,
    },
    /// Two sources (or two entries of one) give one tag to different images.
    #[error(
        "tag `{tag}` names `{first}` in `{first_layout}` but `{second}` in `{second_layout}`: an archive can give a tag to one image only"
    )]
    TagConflict {
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
    Incomplete {
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
}

impl ExportError {
    pub(crate) fn source(layout: &str) -> impl FnOnce(ocil_layout::Error) -> ExportError + '_ {
        move |e| ExportError::Source { layout: layout.to_owned(), source: Box::new(e) }
    }

    pub(crate) fn write(source: io::Error) -> ExportError {
        ExportError::Write { source }
    }
}
