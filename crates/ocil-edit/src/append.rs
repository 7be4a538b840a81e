//! Append layers to images: staged layer blobs (built before the lock, see [`crate::layer`])
//! become the last entries of the manifest's `layers`, the config's `rootfs.diff_ids`, and
//! its `history`, through the edit transaction ([`crate::edit_images`]).
//!
//! Docker-typed images get Docker layer media types, OCI images OCI ones; a compression the
//! image's family has no media type for is refused before any blob is published. The
//! staged blobs are committed (renamed into place) under the caller's lock, just before the
//! new manifests name them, so a gc in between cannot collect them.

use ocil_layout::{Compression, Descriptor, Digest, Layout, LockGuard};

use crate::layer::{StagedLayer, layer_media_type};
use crate::{EditTarget, Edited, Error, History, Result, edit_images};

/// One layer to append, and the history entry that describes it.
#[derive(Debug)]
pub struct NewLayer {
    /// The staged blob.
    pub layer: StagedLayer,
    /// Its history entry.
    pub history: History,
}

/// A layer already published: what the manifests and configs get.
#[derive(Debug, Clone)]
struct Published {
    digest: Digest,
    size: u64,
    compression: Compression,
    diff_id: Digest,
    history: History,
}

/// Append `layers`, in order, to every image `target` selects. Holds `lock` throughout.
pub fn append_layers(
    layout: &Layout,
    lock: &LockGuard,
    target: &EditTarget<'_>,
    layers: Vec<NewLayer>,
) -> Result<Edited> {
    let mut staged = Some(layers);
    let mut published: Vec<Published> = Vec::new();
    edit_images(layout, lock, target, |image| {
        let kinds: Vec<Compression> = match &staged {
            Some(l) => l.iter().map(|n| n.layer.compression).collect(),
            None => published.iter().map(|p| p.compression).collect(),
        };
        let media_types = kinds
            .into_iter()
            .map(|c| layer_media_type(&image.manifest_media_type, c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(layer_err)?;
        // This image's media types are fine: publish the blobs (once, for the first image).
        if let Some(layers) = staged.take() {
            for n in layers {
                let compression = n.layer.compression;
                let diff_id = n.layer.diff_id.clone();
                let stored = n.layer.commit().map_err(layer_err)?;
                published.push(Published {
                    digest: stored.digest,
                    size: stored.size,
                    compression,
                    diff_id,
                    history: n.history,
                });
            }
        }
        for (media_type, p) in media_types.into_iter().zip(&published) {
            let desc = Descriptor::new(media_type, p.digest.clone(), p.size);
            image.append_layer(&desc, &p.diff_id, Some(&p.history))?;
        }
        Ok(())
    })
}

/// A layer error as an edit error: bad input stays a clear message, store errors keep their
/// type.
fn layer_err(e: Error) -> Error {
    match e {
        Error::Layout(e) => Error::Layout(e),
        Error::NoMediaType { family, compression, hint } => Error::InvalidValue {
            what: "--compress",
            value: if compression == "uncompressed" { "none".into() } else { compression.into() },
            reason: format!("{family} images have no {compression} layer media type{hint}"),
        },
        other => {
            Error::InvalidValue { what: "layer", value: String::new(), reason: other.to_string() }
        }
    }
}
