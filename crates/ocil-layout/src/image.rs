//! Image index and image manifest (image-spec `image-index.md`, `manifest.md`); Docker's
//! manifest list and schema2 manifest share these shapes.
//!
//! These types are for documents ocil writes or edits. Stored blobs are never read through
//! them and written back: a digest covers bytes, so edits start from the stored bytes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Descriptor, MediaType};

/// An image index or Docker manifest list; also the shape of `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// The index's media type (SHOULD be set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// Artifact type, for artifact indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The manifests (or nested indexes).
    pub manifests: Vec<Descriptor>,
    /// The manifest this index refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields ocil does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Index {
    /// An empty OCI index, as `ocil init` writes to `index.json`.
    pub fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(MediaType::OciIndex),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: None,
            extra: Map::new(),
        }
    }
}

/// An image manifest or Docker schema2 manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest's media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<MediaType>,
    /// Artifact type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layers, base first.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    /// The manifest this one refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Fields ocil does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The `oci-layout` file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayoutHeader {
    /// `1.0.0`.
    pub image_layout_version: String,
    /// Fields ocil does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keeps_unknown_fields() {
        let raw =
            r#"{"schemaVersion":2,"manifests":[],"x-tool":{"k":"v"},"annotations":{"a":"b"}}"#;
        let idx: Index = serde_json::from_str(raw).unwrap();
        assert!(idx.media_type.is_none());
        let out = serde_json::to_string(&idx).unwrap();
        assert!(out.contains(r#""x-tool":{"k":"v"}"#));
        assert_eq!(serde_json::from_str::<Index>(&out).unwrap(), idx);
    }

    #[test]
    fn null_manifests_is_not_an_index() {
        assert!(serde_json::from_str::<Index>(r#"{"schemaVersion":2,"manifests":null}"#).is_err());
    }

    #[test]
    fn manifest_parses_docker_schema2() {
        let raw = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":1,"digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},"layers":[]}"#;
        let m: Manifest = serde_json::from_str(raw).unwrap();
        assert_eq!(m.media_type, Some(MediaType::DockerManifest));
        assert_eq!(m.config.media_type, MediaType::DockerConfig);
    }
}
