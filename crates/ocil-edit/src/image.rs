//! [`Image`]: one image (manifest and config) as an edit closure sees it, and
//! [`History`], a config history entry.

use ocil_layout::{Compression, Descriptor, Digest, Family, MediaType, Platform};
use serde::Serialize;

use crate::{JsonDoc, Result};

/// One image being edited: its manifest and config as lossless documents.
///
/// Edit the documents directly ([`Image::config`], [`Image::manifest`]) or through the
/// helpers. The engine ([`crate::edit_images`]) then writes the config (when it changed),
/// points the manifest's `config` descriptor at it (digest, size, media type; other fields
/// and their order stay), and writes the manifest (when it changed).
#[derive(Debug)]
pub struct Image {
    /// The manifest. Its `config` member is rewritten by the engine: do not edit it.
    pub manifest: JsonDoc,
    /// The image config.
    pub config: JsonDoc,
    /// The manifest's media type (OCI or Docker). Changing it changes the manifest's
    /// `mediaType` member and the descriptors that point at it.
    pub manifest_media_type: MediaType,
    /// The config's media type, as the manifest's `config` descriptor says.
    pub config_media_type: MediaType,
    pub(crate) digest: Digest,
    pub(crate) platform: Option<Platform>,
}

impl Image {
    /// The manifest's digest before the edit.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The platform the enclosing index (or the `index.json` entry) gives this image.
    pub fn listed_platform(&self) -> Option<&Platform> {
        self.platform.as_ref()
    }

    /// OCI or Docker, from the manifest's media type. New layers and documents must use
    /// this family's media types, so Docker images stay Docker and OCI images stay OCI.
    pub fn family(&self) -> Family {
        self.manifest_media_type.family()
    }

    /// The layer media type for `compression` in this image's family; `None` where Docker
    /// has no such type (zstd and uncompressed layers).
    pub fn layer_media_type(&self, compression: Compression) -> Option<MediaType> {
        let oci = match compression {
            Compression::None => MediaType::OciLayerTar,
            Compression::Gzip => MediaType::OciLayerGzip,
            Compression::Zstd => MediaType::OciLayerZstd,
        };
        match self.family() {
            Family::Docker => oci.to_docker(),
            _ => Some(oci),
        }
    }

    /// The manifest's layers (parsed; the stored texts stay untouched).
    pub fn layers(&self) -> Result<Vec<Descriptor>> {
        Ok(self.manifest.get::<Option<Vec<Descriptor>>>("layers")?.flatten().unwrap_or_default())
    }

    /// The config's `rootfs.diff_ids`.
    pub fn diff_ids(&self) -> Result<Vec<String>> {
        let rootfs: Option<serde_json::Value> = self.config.get("rootfs")?;
        Ok(rootfs
            .as_ref()
            .and_then(|r| r.get("diff_ids"))
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().filter_map(|d| d.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    /// The runtime config (the config's `config` object, Docker's `Env`, `Cmd`, ...),
    /// created empty when absent or `null`.
    pub fn runtime_config(&mut self) -> Result<&mut JsonDoc> {
        self.config.object_mut("config")
    }

    /// Append a layer: the manifest's `layers` gets `layer`, the config's
    /// `rootfs.diff_ids` gets `diff_id` (the digest of the uncompressed tar), and `history`
    /// (when given) is appended to the config's history. Existing entries keep their bytes.
    pub fn append_layer(
        &mut self,
        layer: &Descriptor,
        diff_id: &Digest,
        history: Option<&History>,
    ) -> Result<()> {
        self.manifest.push("layers", layer)?;
        let rootfs = self.config.object_mut("rootfs")?;
        if !rootfs.contains("type") {
            rootfs.set("type", "layers")?;
        }
        rootfs.push("diff_ids", &diff_id.to_string())?;
        if let Some(h) = history {
            self.add_history(h)?;
        }
        Ok(())
    }

    /// Append a history entry.
    pub fn add_history(&mut self, entry: &History) -> Result<()> {
        self.config.push("history", entry)
    }
}

/// A config `history` entry (image-spec `config.md`), written in this field order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct History {
    /// When the step ran (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The command that made the layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who made it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `true` when the step made no layer (metadata only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub empty_layer: Option<bool>,
}
