//! `ocil-bundle.json`: what a delta or a volume says about itself, in one JSON entry at the
//! root of the archive, after `index.json`. Other readers of image layouts ignore a file
//! they do not know there; the archive is otherwise an ordinary OCI archive.
//!
//! Version 1 (`mediaType` `application/vnd.ocil.bundle.v1+json`), members in this order,
//! each present only when it applies:
//!
//! - `bundle`: volumes: the bundle's identity, the sha256 of this description without
//!   `bundle`, `name` and `volume` (the same in every volume of one bundle);
//! - `name`: volumes: the bundle's file name (`NAME` of `NAME.001.tar`);
//! - `volume`, `volumes`: volumes: this volume's number (from 1) and how many there are;
//! - `index`: volumes: the whole bundle's `index.json` (each volume's own `index.json` lists
//!   only the entries complete in that volume);
//! - `blobs`: volumes: every blob the bundle carries, `{digest, size, volume}`, in the order
//!   they were packed;
//! - `since`: deltas: the base the archive was made against: `receipt`, the sha256 of the
//!   base's receipt (`ocil receipt`'s bytes), and `index`, the digest and size of its
//!   `index.json`;
//! - `omitted`: deltas: the blobs the archive leaves out because the base holds them,
//!   `{digest, size}`, sorted by digest.
//!
//! An import checks the destination for every omitted blob before it writes anything; a
//! volume's blobs are checked against `blobs`, and an entry of `index` is written once its
//! image is complete in the destination.

use std::collections::{BTreeMap, BTreeSet};

use ocil_layout::{Algorithm, Digest, Index, Layout};
use serde::{Deserialize, Serialize};

use crate::receipt::BlobId;
use crate::{Error, Result};

/// The name of the entry.
pub const BUNDLE_FILE: &str = "ocil-bundle.json";

/// The media type of a version 1 description.
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.ocil.bundle.v1+json";

/// The base of a delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Base {
    /// The sha256 of the base's receipt.
    pub receipt: Digest,
    /// The base's `index.json`.
    pub index: BlobId,
}

/// A blob of a bundle and the volume carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VolumeBlob {
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    pub(crate) volume: u32,
}

/// The description. See the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Bundle {
    #[serde(rename = "mediaType")]
    pub(crate) media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) bundle: Option<Digest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) volume: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) volumes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) index: Option<Index>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) blobs: Vec<VolumeBlob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<Base>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) omitted: Vec<BlobId>,
}

impl Bundle {
    /// An empty description.
    pub(crate) fn new() -> Bundle {
        Bundle {
            media_type: BUNDLE_MEDIA_TYPE.to_owned(),
            bundle: None,
            name: None,
            volume: None,
            volumes: None,
            index: None,
            blobs: Vec::new(),
            since: None,
            omitted: Vec::new(),
        }
    }

    /// The entry's bytes.
    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a bundle description always serialises")
    }

    /// The bundle's identity: the sha256 of the description without the members that
    /// differ between its volumes.
    pub(crate) fn identity(&self) -> Digest {
        let shared = Bundle { bundle: None, name: None, volume: None, ..self.clone() };
        Algorithm::Sha256.digest_of(&shared.to_bytes())
    }

    /// Read the entry, checking what must hold for the rest to make sense.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Bundle> {
        let invalid = |reason: String| Error::InvalidBundle { reason };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        match value.get("mediaType").and_then(serde_json::Value::as_str) {
            Some(BUNDLE_MEDIA_TYPE) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "its mediaType is `{other}`, not `{BUNDLE_MEDIA_TYPE}` (made by a newer ocil?)"
                )));
            }
            None => return Err(invalid(format!("it has no mediaType `{BUNDLE_MEDIA_TYPE}`"))),
        }
        let b: Bundle = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if let Some(v) = b.volume {
            let (Some(n), Some(id), Some(_)) = (b.volumes, &b.bundle, &b.index) else {
                return Err(invalid(
                    "a volume needs `volumes`, `bundle` and `index` too".to_owned(),
                ));
            };
            if v == 0 || v > n {
                return Err(invalid(format!("it says volume {v} of {n}")));
            }
            if let Some(b) = b.blobs.iter().find(|b| b.volume == 0 || b.volume > n) {
                return Err(invalid(format!(
                    "it puts blob `{}` in volume {} of {n}",
                    b.digest, b.volume
                )));
            }
            if &b.identity() != id {
                return Err(invalid(format!(
                    "it names bundle `{id}`, but its content hashes to `{}`",
                    b.identity()
                )));
            }
        } else if b.since.is_none() {
            return Err(invalid("it is neither a delta (`since`) nor a volume (`volume`)".into()));
        }
        Ok(b)
    }

    /// Whether this is a volume of a bundle.
    pub(crate) fn is_volume(&self) -> bool {
        self.volume.is_some()
    }

    /// What the file of volume `v` is called.
    pub(crate) fn volume_file(&self, v: u32) -> String {
        volume_file_name(self.name.as_deref().unwrap_or("bundle"), v, self.volumes.unwrap_or(1))
    }

    /// The omitted blobs `layout` lacks (absent, or of another size).
    pub(crate) fn missing_base(&self, layout: &Layout) -> Result<Vec<Digest>> {
        let mut missing = Vec::new();
        for b in &self.omitted {
            if layout.stat_blob(&b.digest)? != Some(b.size) {
                missing.push(b.digest.clone());
            }
        }
        Ok(missing)
    }

    /// Refuse when `layout` lacks an omitted blob, naming them.
    pub(crate) fn check_base(&self, layout: &Layout) -> Result<()> {
        let missing = self.missing_base(layout)?;
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::BaseMissing {
            base: self.since.as_ref().map(|s| s.receipt.clone()),
            omitted: self.omitted.len(),
            missing,
        })
    }

    /// The blobs this volume carries, by digest.
    pub(crate) fn carried(&self) -> BTreeMap<&Digest, u64> {
        let v = self.volume.unwrap_or(1);
        self.blobs.iter().filter(|b| b.volume == v).map(|b| (&b.digest, b.size)).collect()
    }

    /// The volumes with a blob `layout` lacks.
    pub(crate) fn missing_volumes(&self, layout: &Layout) -> Result<Vec<u32>> {
        let mut out = BTreeSet::new();
        for b in &self.blobs {
            if !out.contains(&b.volume) && layout.stat_blob(&b.digest)? != Some(b.size) {
                out.insert(b.volume);
            }
        }
        Ok(out.into_iter().collect())
    }
}

/// `NAME.001.tar`: volume `v` of `count` (three digits at least, more when there are more
/// than 999 volumes, so the names sort in order).
pub fn volume_file_name(name: &str, v: u32, count: u32) -> String {
    let width = count.to_string().len().max(3);
    format!("{name}.{v:0width$}.tar")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn volume() -> Bundle {
        let d = Algorithm::Sha256.digest_of(b"x");
        let mut b = Bundle {
            name: Some("images".into()),
            volume: Some(2),
            volumes: Some(2),
            index: Some(Index::empty()),
            blobs: vec![VolumeBlob { digest: d, size: 1, volume: 2 }],
            ..Bundle::new()
        };
        b.bundle = Some(b.identity());
        b
    }

    #[test]
    fn a_volume_reads_back() {
        let b = volume();
        let back = Bundle::parse(&b.to_bytes()).unwrap();
        assert_eq!(back, b);
        assert_eq!(back.volume_file(2), "images.002.tar");
        assert_eq!(back.carried().len(), 1);
        // The identity does not depend on the volume's number or the name.
        let other = Bundle { volume: Some(1), name: Some("x".into()), ..b.clone() };
        assert_eq!(other.identity(), b.identity());
    }

    #[test]
    fn inconsistent_descriptions_are_refused() {
        let mut b = volume();
        b.volume = Some(3);
        assert!(Bundle::parse(&b.to_bytes()).unwrap_err().to_string().contains("volume 3 of 2"));
        let mut b = volume();
        b.blobs[0].size = 2;
        let e = Bundle::parse(&b.to_bytes()).unwrap_err().to_string();
        assert!(e.contains("hashes to"), "{e}");
        let e = Bundle::parse(br#"{"mediaType":"application/vnd.ocil.bundle.v1+json"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither a delta"), "{e}");
        let e = Bundle::parse(br#"{"mediaType":"x"}"#).unwrap_err().to_string();
        assert!(e.contains("`x`"), "{e}");
    }

    #[test]
    fn volume_names_sort() {
        assert_eq!(volume_file_name("a", 7, 12), "a.007.tar");
        assert_eq!(volume_file_name("a", 7, 1200), "a.0007.tar");
    }
}
