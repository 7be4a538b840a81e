//! Media types of the OCI image spec, Docker's image formats, Docker schema1 and the pre-1.0
//! OCI drafts, their classification, and the Docker <-> OCI correspondence.

use std::fmt;
use std::str::FromStr;

/// Compression of a layer blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Short name: `none`, `gzip`, `zstd`.
    pub fn as_str(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// What a media type is, independent of whether it is OCI or Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A list of manifests: OCI image index, Docker manifest list.
    Index,
    /// An image manifest: OCI manifest, Docker schema2 manifest.
    Manifest,
    /// An image config: OCI image config, Docker container config, plugin config.
    Config,
    /// A filesystem layer.
    Layer {
        /// How the tar is compressed.
        compression: Compression,
        /// `false` for nondistributable (OCI) and foreign (Docker) layers.
        distributable: bool,
    },
    /// `application/vnd.oci.empty.v1+json`.
    Empty,
    /// `application/vnd.oci.descriptor.v1+json`.
    Descriptor,
    /// `application/vnd.oci.layout.header.v1+json`.
    LayoutHeader,
    /// Docker schema1 or a pre-1.0 OCI draft type: recognised, not supported.
    Legacy,
    /// Anything else.
    Unknown,
}

impl Kind {
    /// Index or manifest: a document the graph walk reads and follows.
    pub fn is_walkable(self) -> bool {
        matches!(self, Kind::Index | Kind::Manifest)
    }
}

/// Which family a known media type belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// OCI image spec v1.
    Oci,
    /// Docker image manifest v2 schema 2 and friends.
    Docker,
    /// Docker schema1 (legacy).
    DockerSchema1,
    /// Pre-1.0 OCI drafts.
    OciDraft,
    /// Not known.
    Unknown,
}

macro_rules! media_types {
    ($( $(#[$doc:meta])* $variant:ident = $s:literal, $kind:expr, $family:ident, $short:literal; )*) => {
        /// A media type: every type of the OCI and Docker image specs, or [`MediaType::Other`].
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum MediaType {
            $( $(#[$doc])* $variant, )*
            /// Any other media type, kept verbatim.
            Other(String),
        }

        impl MediaType {
            /// Every known media type.
            pub const KNOWN: &'static [MediaType] = &[$(MediaType::$variant,)*];

            /// The media type string.
            pub fn as_str(&self) -> &str {
                match self {
                    $( MediaType::$variant => $s, )*
                    MediaType::Other(s) => s,
                }
            }

            /// What this media type is.
            pub fn kind(&self) -> Kind {
                match self {
                    $( MediaType::$variant => $kind, )*
                    MediaType::Other(_) => Kind::Unknown,
                }
            }

            /// Which spec it comes from.
            pub fn family(&self) -> Family {
                match self {
                    $( MediaType::$variant => Family::$family, )*
                    MediaType::Other(_) => Family::Unknown,
                }
            }

            /// A short human form, e.g. `oci-manifest`, `docker-list`.
            pub fn short(&self) -> &str {
                match self {
                    $( MediaType::$variant => $short, )*
                    MediaType::Other(s) => s,
                }
            }
        }

        impl From<&str> for MediaType {
            fn from(s: &str) -> MediaType {
                match s {
                    $( $s => MediaType::$variant, )*
                    other => MediaType::Other(other.to_owned()),
                }
            }
        }
    };
}

use Compression::{Gzip, None as Plain, Zstd};

const fn layer(compression: Compression, distributable: bool) -> Kind {
    Kind::Layer { compression, distributable }
}

media_types! {
    /// OCI image index.
    OciIndex = "application/vnd.oci.image.index.v1+json", Kind::Index, Oci, "oci-index";
    /// OCI image manifest.
    OciManifest = "application/vnd.oci.image.manifest.v1+json", Kind::Manifest, Oci, "oci-manifest";
    /// OCI image config.
    OciConfig = "application/vnd.oci.image.config.v1+json", Kind::Config, Oci, "oci-config";
    /// OCI content descriptor.
    OciDescriptor = "application/vnd.oci.descriptor.v1+json", Kind::Descriptor, Oci, "oci-descriptor";
    /// OCI layout header (`oci-layout`).
    OciLayoutHeader = "application/vnd.oci.layout.header.v1+json", Kind::LayoutHeader, Oci, "oci-layout-header";
    /// OCI empty descriptor content `{}`.
    OciEmpty = "application/vnd.oci.empty.v1+json", Kind::Empty, Oci, "oci-empty";
    /// OCI uncompressed layer.
    OciLayerTar = "application/vnd.oci.image.layer.v1.tar", layer(Plain, true), Oci, "oci-layer-tar";
    /// OCI gzip layer.
    OciLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip", layer(Gzip, true), Oci, "oci-layer-gzip";
    /// OCI zstd layer.
    OciLayerZstd = "application/vnd.oci.image.layer.v1.tar+zstd", layer(Zstd, true), Oci, "oci-layer-zstd";
    /// OCI nondistributable uncompressed layer (deprecated).
    OciLayerNondistributableTar = "application/vnd.oci.image.layer.nondistributable.v1.tar", layer(Plain, false), Oci, "oci-nondist-tar";
    /// OCI nondistributable gzip layer (deprecated).
    OciLayerNondistributableGzip = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", layer(Gzip, false), Oci, "oci-nondist-gzip";
    /// OCI nondistributable zstd layer (deprecated).
    OciLayerNondistributableZstd = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", layer(Zstd, false), Oci, "oci-nondist-zstd";
    /// Docker schema2 manifest.
    DockerManifest = "application/vnd.docker.distribution.manifest.v2+json", Kind::Manifest, Docker, "docker-manifest";
    /// Docker manifest list ("fat manifest").
    DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json", Kind::Index, Docker, "docker-list";
    /// Docker container config.
    DockerConfig = "application/vnd.docker.container.image.v1+json", Kind::Config, Docker, "docker-config";
    /// Docker gzip layer.
    DockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip", layer(Gzip, true), Docker, "docker-layer-gzip";
    /// Docker foreign layer: never pushed, fetched from `urls`.
    DockerForeignLayerGzip = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", layer(Gzip, false), Docker, "docker-foreign-layer";
    /// Docker plugin config.
    DockerPluginConfig = "application/vnd.docker.plugin.v1+json", Kind::Config, Docker, "docker-plugin-config";
    /// Docker schema1 manifest (legacy).
    DockerSchema1Manifest = "application/vnd.docker.distribution.manifest.v1+json", Kind::Legacy, DockerSchema1, "docker-schema1";
    /// Docker schema1 signed manifest (legacy).
    DockerSchema1SignedManifest = "application/vnd.docker.distribution.manifest.v1+prettyjws", Kind::Legacy, DockerSchema1, "docker-schema1-signed";
    /// Pre-1.0 OCI manifest list (became the image index).
    OciDraftManifestList = "application/vnd.oci.image.manifest.list.v1+json", Kind::Legacy, OciDraft, "oci-draft-manifest-list";
    /// Pre-1.0 OCI serialization rootfs layer (became the gzip layer).
    OciDraftSerializationRootfsGzip = "application/vnd.oci.image.serialization.rootfs.tar.gzip", Kind::Legacy, OciDraft, "oci-draft-rootfs";
    /// Pre-1.0 OCI rootfs layer (became the gzip layer).
    OciDraftRootfsGzip = "application/vnd.oci.image.rootfs.tar.gzip", Kind::Legacy, OciDraft, "oci-draft-rootfs";
    /// Pre-1.0 OCI serialization config (became the image config).
    OciDraftSerializationConfig = "application/vnd.oci.image.serialization.config.v1+json", Kind::Legacy, OciDraft, "oci-draft-config";
    /// Pre-1.0 OCI combined (docker save/load style) format.
    OciDraftSerializationCombined = "application/vnd.oci.image.serialization.combined.v1+json", Kind::Legacy, OciDraft, "oci-draft-combined";
}

impl MediaType {
    /// Whether ocil knows this media type.
    pub fn is_known(&self) -> bool {
        !matches!(self, MediaType::Other(_))
    }

    /// For legacy types, what they are, in a few words.
    pub fn legacy_note(&self) -> Option<&'static str> {
        Some(match self {
            MediaType::DockerSchema1Manifest | MediaType::DockerSchema1SignedManifest => {
                "Docker schema1 manifest (legacy, deprecated since Docker 1.10; not supported)"
            }
            MediaType::OciDraftManifestList => {
                "pre-1.0 OCI manifest list (became the OCI image index)"
            }
            MediaType::OciDraftSerializationRootfsGzip | MediaType::OciDraftRootfsGzip => {
                "pre-1.0 OCI rootfs layer (became application/vnd.oci.image.layer.v1.tar+gzip)"
            }
            MediaType::OciDraftSerializationConfig => {
                "pre-1.0 OCI config (became application/vnd.oci.image.config.v1+json)"
            }
            MediaType::OciDraftSerializationCombined => {
                "pre-1.0 OCI combined format (docker save/load style)"
            }
            _ => return None,
        })
    }

    /// The OCI media type that corresponds to this Docker one (or itself when already OCI).
    pub fn to_oci(&self) -> Option<MediaType> {
        if self.family() == Family::Oci {
            return Some(self.clone());
        }
        DOCKER_OCI.iter().find(|(d, _)| d == self).map(|(_, o)| o.clone())
    }

    /// The Docker media type that corresponds to this OCI one (or itself when already Docker).
    /// `None` where Docker has no equivalent (zstd, uncompressed layers, empty, ...).
    pub fn to_docker(&self) -> Option<MediaType> {
        if self.family() == Family::Docker {
            return Some(self.clone());
        }
        DOCKER_OCI.iter().find(|(_, o)| o == self).map(|(d, _)| d.clone())
    }
}

/// The Docker <-> OCI correspondence (SPEC-NOTES.md), as data: `(docker, oci)`.
pub const DOCKER_OCI: &[(MediaType, MediaType)] = &[
    (MediaType::DockerManifestList, MediaType::OciIndex),
    (MediaType::DockerManifest, MediaType::OciManifest),
    (MediaType::DockerConfig, MediaType::OciConfig),
    (MediaType::DockerLayerGzip, MediaType::OciLayerGzip),
    (MediaType::DockerForeignLayerGzip, MediaType::OciLayerNondistributableGzip),
];

impl FromStr for MediaType {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<MediaType, Self::Err> {
        Ok(MediaType::from(s))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for MediaType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for MediaType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<MediaType, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(MediaType::from(s.as_ref()))
    }
}

/// Check the RFC 6838 shape the image-spec schema requires of `mediaType` and `artifactType`:
/// `type/subtype`, each starting with an alphanumeric and continuing with `[A-Za-z0-9!#$&^_.+-]`,
/// at most 127 characters each.
pub fn is_valid_media_type_syntax(s: &str) -> bool {
    fn part(p: &str) -> bool {
        let mut chars = p.chars();
        match chars.next() {
            Some(c) if c.is_ascii_alphanumeric() => {}
            _ => return false,
        }
        p.len() <= 127 && chars.all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    }
    match s.split_once('/') {
        Some((t, sub)) => part(t) && part(sub),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_known_type() {
        for mt in MediaType::KNOWN {
            assert_eq!(&MediaType::from(mt.as_str()), mt);
            let json = serde_json::to_string(mt).unwrap();
            let back: MediaType = serde_json::from_str(&json).unwrap();
            assert_eq!(&back, mt);
        }
        assert_eq!(MediaType::KNOWN.len(), 25);
        assert_eq!(MediaType::from("x/y"), MediaType::Other("x/y".into()));
    }

    #[test]
    fn classification() {
        assert_eq!(MediaType::DockerManifestList.kind(), Kind::Index);
        assert_eq!(MediaType::OciManifest.kind(), Kind::Manifest);
        assert_eq!(
            MediaType::OciLayerNondistributableZstd.kind(),
            Kind::Layer { compression: Compression::Zstd, distributable: false }
        );
        assert_eq!(
            MediaType::DockerForeignLayerGzip.kind(),
            Kind::Layer { compression: Compression::Gzip, distributable: false }
        );
        assert_eq!(MediaType::DockerSchema1SignedManifest.kind(), Kind::Legacy);
        assert!(MediaType::OciDraftManifestList.legacy_note().is_some());
        assert_eq!(MediaType::from("text/plain").kind(), Kind::Unknown);
    }

    #[test]
    fn docker_oci_correspondence() {
        assert_eq!(MediaType::DockerManifestList.to_oci(), Some(MediaType::OciIndex));
        assert_eq!(MediaType::OciLayerGzip.to_docker(), Some(MediaType::DockerLayerGzip));
        assert_eq!(MediaType::OciLayerZstd.to_docker(), None);
        for (d, o) in DOCKER_OCI {
            assert_eq!(d.kind().is_walkable(), o.kind().is_walkable());
            assert_eq!(d.family(), Family::Docker);
            assert_eq!(o.family(), Family::Oci);
        }
    }

    #[test]
    fn media_type_syntax() {
        assert!(is_valid_media_type_syntax("application/vnd.oci.image.manifest.v1+json"));
        assert!(!is_valid_media_type_syntax("application"));
        assert!(!is_valid_media_type_syntax("$nope/json"));
        assert!(!is_valid_media_type_syntax("application/.json"));
    }
}
