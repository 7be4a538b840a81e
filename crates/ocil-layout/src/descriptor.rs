//! Descriptors and platforms (image-spec `descriptor.md`, `image-index.md#platform`).
//!
//! Unknown fields are kept in `extra`, so rewriting `index.json` never drops keys.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{Digest, Error, MediaType};

/// Annotation holding a tag in `index.json`.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// Annotation containerd and Docker use for the full image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// A content descriptor: what a blob is, where to find it, how big it is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The blob's media type.
    pub media_type: MediaType,
    /// The blob's digest.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// Where else the blob can be fetched from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// The blob's content, base64: must match digest and size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// For artifacts: the artifact's type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// In an index: the platform of the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Fields ocil does not know, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Descriptor {
    /// A descriptor with just the three required fields.
    pub fn new(media_type: MediaType, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type,
            digest,
            size,
            urls: None,
            annotations: None,
            data: None,
            artifact_type: None,
            platform: None,
            extra: Map::new(),
        }
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The tag (`org.opencontainers.image.ref.name`), if any.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotation(ANNOTATION_REF_NAME)
    }

    /// Decode `data` and check it against digest and size.
    ///
    /// `None` when there is no `data`; `Some(Err(reason))` when it does not match.
    pub fn embedded_data(&self) -> Option<Result<Vec<u8>, String>> {
        let data = self.data.as_ref()?;
        Some(match base64::engine::general_purpose::STANDARD.decode(data) {
            Err(e) => Err(format!("`data` is not valid base64: {e}")),
            Ok(bytes) if bytes.len() as u64 != self.size => {
                Err(format!("`data` holds {} bytes, descriptor says {}", bytes.len(), self.size))
            }
            Ok(bytes) => {
                let found = self.digest.algorithm().digest_of(&bytes);
                if found == self.digest {
                    Ok(bytes)
                } else {
                    Err(format!("`data` hashes to `{found}`, descriptor says `{}`", self.digest))
                }
            }
        })
    }
}

/// The platform a manifest runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// CPU architecture (`amd64`, `arm64`, ...).
    pub architecture: String,
    /// Operating system (`linux`, `windows`, ...).
    pub os: String,
    /// OS version (Windows).
    #[serde(rename = "os.version", default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// OS features (Windows).
    #[serde(rename = "os.features", default, skip_serializing_if = "Option::is_none")]
    pub os_features: Option<Vec<String>>,
    /// CPU variant (`v7`, `v8`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Reserved by the spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    /// Fields ocil does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `os/arch[/variant]`, as `--platform` takes it.
impl std::str::FromStr for Platform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Platform, Error> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::InvalidValue {
                what: "platform",
                value: s.into(),
                reason: "expected os/arch[/variant]".into(),
            });
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| (*v).to_owned()),
            os_version: None,
            os_features: None,
            features: None,
            extra: Map::new(),
        })
    }
}

impl Platform {
    /// `os/arch[/variant][:os.version]`.
    pub fn display(&self) -> String {
        let mut s = format!("{}/{}", self.os, self.architecture);
        if let Some(v) = &self.variant {
            s.push('/');
            s.push_str(v);
        }
        if let Some(v) = &self.os_version {
            s.push(':');
            s.push_str(v);
        }
        s
    }

    /// Whether this platform matches `os/arch[/variant]`.
    pub fn matches(&self, spec: &str) -> bool {
        let mut parts = spec.split('/');
        let os = parts.next().unwrap_or_default();
        let arch = parts.next().unwrap_or_default();
        let variant = parts.next();
        self.os == os
            && self.architecture == arch
            && variant.is_none_or(|v| self.variant.as_deref() == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platforms_parse() {
        assert_eq!("linux/arm64/v8".parse::<Platform>().unwrap().display(), "linux/arm64/v8");
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }

    #[test]
    fn keeps_unknown_fields() {
        let raw = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":0,"annotations":{"org.opencontainers.image.ref.name":"v1"},"platform":{"architecture":"arm","os":"linux","variant":"v7","x-extra":1},"com.example.unknown":{"a":[1,2]}}"#;
        let d: Descriptor = serde_json::from_str(raw).unwrap();
        assert_eq!(d.ref_name(), Some("v1"));
        assert_eq!(d.platform.as_ref().unwrap().display(), "linux/arm/v7");
        assert!(d.platform.as_ref().unwrap().matches("linux/arm"));
        assert!(d.platform.as_ref().unwrap().matches("linux/arm/v7"));
        assert!(!d.platform.as_ref().unwrap().matches("linux/arm/v6"));
        let back = serde_json::to_string(&d).unwrap();
        assert!(back.contains(r#""com.example.unknown":{"a":[1,2]}"#));
        assert!(back.contains(r#""x-extra":1"#));
        let again: Descriptor = serde_json::from_str(&back).unwrap();
        assert_eq!(again, d);
    }

    #[test]
    fn embedded_data_is_checked() {
        let mut d = Descriptor::new(
            MediaType::OciEmpty,
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
                .parse()
                .unwrap(),
            2,
        );
        assert!(d.embedded_data().is_none());
        d.data = Some("e30=".into());
        assert_eq!(d.embedded_data().unwrap().unwrap(), b"{}");
        d.data = Some("e31=".into());
        assert!(d.embedded_data().unwrap().is_err());
    }

    #[test]
    fn rejects_negative_size_and_bad_digest() {
        let neg = r#"{"mediaType":"a/b","digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855","size":-1}"#;
        assert!(serde_json::from_str::<Descriptor>(neg).is_err());
        let dots = r#"{"mediaType":"a/b","digest":"sha256:../../x","size":1}"#;
        assert!(serde_json::from_str::<Descriptor>(dots).is_err());
    }
}
