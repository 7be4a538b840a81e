//! Layers: a directory packed as a reproducible tar ([`dir`]), local files and directories
//! placed at chosen paths ([`files`]), or an existing tar checked and re-compressed
//! ([`tar_in`]), streamed in one pass through the diff_id hash, a deterministic
//! encoder and the layout's blob writer.
//!
//! The blob is *staged* (a locked temp file in `blobs/sha256/`, see
//! [`ocil_layout::StagedBlob`]): the caller commits it under the layout lock, just before
//! `index.json` names it, so a gc running in between cannot take it, whatever its grace period.
//!
//! Determinism: the same tar bytes give the same blob, through [`ocil_codec::Encoder`]: gzip
//! with header mtime 0, no file name, OS byte 255 and level 6; zstd at level 3,
//! single-threaded, without a checksum or content size. (The bytes also depend on the compressor library's version: a new flate2
//! or zstd may compress differently; the diff_id does not change.)
//!
//! Memory does not grow with the layer: everything streams through fixed buffers.

pub mod dir;
pub mod files;
pub mod tar_in;

use std::io::{self, Write};

use ocil_layout::{
    Algorithm, Compression, Descriptor, Digest, Hasher, Layout, MediaType, StagedBlob,
};

use crate::Error;

pub use dir::{DirOptions, pack_dir, pack_dir_layer};
pub use files::{Placed, Source, layer_path, pack_files, pack_files_layer};
pub use tar_in::{TarFacts, check_tar, tar_layer};

/// The mtime of every entry of a packed directory when `SOURCE_DATE_EPOCH` is not given:
/// 2000-01-01T00:00:00Z (a fixed date, as `ko` and Bazel's `rules_oci` use a fixed one).
pub const DEFAULT_MTIME: u64 = 946_684_800;

pub use ocil_codec::{GZIP_LEVEL, ZSTD_LEVEL};

/// A layer built and staged in the blob store, not yet committed.
#[derive(Debug)]
pub struct StagedLayer {
    /// The compressed blob, in a locked temp file.
    pub blob: StagedBlob,
    /// sha256 of the uncompressed tar: the config's `rootfs.diff_ids` entry.
    pub diff_id: Digest,
    /// Size of the uncompressed tar.
    pub tar_size: u64,
    /// How the blob is compressed.
    pub compression: Compression,
    /// Things skipped on the way (sockets), one line each.
    pub warnings: Vec<String>,
}

impl StagedLayer {
    /// The layer's descriptor for a manifest of the given media type.
    pub fn descriptor(&self, manifest_type: &MediaType) -> Result<Descriptor, Error> {
        let media_type = layer_media_type(manifest_type, self.compression)?;
        Ok(Descriptor::new(media_type, self.blob.digest().clone(), self.blob.size()))
    }

    /// Rename the blob into place (under the layout lock, before `index.json` names it).
    pub fn commit(self) -> Result<ocil_layout::Stored, Error> {
        Ok(self.blob.commit()?)
    }
}

/// The layer media type for an image whose manifest has `manifest_type`: Docker layer types
/// for Docker schema2 manifests, OCI types otherwise. Docker has only a gzip layer type (the
/// table in SPEC-NOTES), so zstd and uncompressed layers on a Docker image are refused.
pub fn layer_media_type(
    manifest_type: &MediaType,
    compression: Compression,
) -> Result<MediaType, Error> {
    if *manifest_type == MediaType::DockerManifest {
        return match compression {
            Compression::Gzip => Ok(MediaType::DockerLayerGzip),
            Compression::Zstd => Err(Error::NoMediaType {
                family: "Docker schema2",
                compression: "zstd",
                hint: " (use --compress gzip, or convert the image to OCI)",
            }),
            Compression::None => Err(Error::NoMediaType {
                family: "Docker schema2",
                compression: "uncompressed",
                hint: " (use --compress gzip, or convert the image to OCI)",
            }),
        };
    }
    Ok(match compression {
        Compression::None => MediaType::OciLayerTar,
        Compression::Gzip => MediaType::OciLayerGzip,
        Compression::Zstd => MediaType::OciLayerZstd,
    })
}

/// The writer a tar stream goes into: hashes the uncompressed bytes (the diff_id), compresses
/// them deterministically, and writes the result into the layout's blob writer.
pub struct LayerSink {
    encoder: Encoder,
    diff_id: Hasher,
    tar_size: u64,
    compression: Compression,
}

/// The blob writer behind a buffer: tar writes 512-byte headers and small chunks.
type Out = io::BufWriter<ocil_layout::BlobWriter>;

/// Buffer size in front of the blob writer.
const OUT_BUFFER: usize = 256 * 1024;

type Encoder = ocil_codec::Encoder<Out>;

impl std::fmt::Debug for LayerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerSink")
            .field("compression", &self.compression)
            .field("tar_size", &self.tar_size)
            .finish_non_exhaustive()
    }
}

impl LayerSink {
    /// Start a layer blob in `layout`.
    pub fn new(layout: &Layout, compression: Compression) -> Result<LayerSink, Error> {
        let blob = io::BufWriter::with_capacity(OUT_BUFFER, layout.blob_writer()?);
        let encoder = Encoder::new(blob, compression).map_err(Error::Write)?;
        Ok(LayerSink { encoder, diff_id: Algorithm::Sha256.hasher(), tar_size: 0, compression })
    }

    /// Flush the encoder and stage the blob.
    pub fn finish(self, warnings: Vec<String>) -> Result<StagedLayer, Error> {
        let out = self.encoder.finish().map_err(Error::Write)?;
        let blob = out.into_inner().map_err(|e| Error::Write(e.into_error()))?;
        Ok(StagedLayer {
            blob: blob.finish_staged()?,
            diff_id: self.diff_id.finish(),
            tar_size: self.tar_size,
            compression: self.compression,
            warnings,
        })
    }
}

impl Write for LayerSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.encoder.write(buf)?;
        self.diff_id.update(&buf[..n]);
        self.tar_size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
