//! Receipts: what a site holds, in a small JSON file the connected side reads to work out
//! what the site lacks (`ocil receipt DIR -o site.receipt`, `ocil import --receipt FILE`,
//! `ocil export --since site.receipt`).
//!
//! A receipt lists every blob of the site's store (digest and size) and identifies its
//! `index.json` (digest and size of its bytes) with the entries it holds. Its format,
//! version 1 (`mediaType` `application/vnd.ocil.receipt.v1+json`), members in this order:
//!
//! ```json
//! {
//!   "mediaType": "application/vnd.ocil.receipt.v1+json",
//!   "index": { "digest": "sha256:…", "size": 312 },
//!   "manifests": [ { "mediaType": "…", "digest": "sha256:…", "size": 1234, "annotations": { … } } ],
//!   "blobs": { "sha256:…": 1234, "sha256:…": 31457280 }
//! }
//! ```
//!
//! `manifests` are the `index.json` entries as they are; `blobs` maps each digest to its
//! size, sorted by digest. A reader ignores members it does not know; a receipt of another
//! `mediaType` is refused. The same store gives the same bytes, so a receipt's sha256 (its
//! [`identity`](Receipt::identity)) names the state it describes: a delta records it.
//!
//! A receipt of a layout lists its blob store as it is (names and sizes, not rehashed:
//! `ocil fsck` checks content); of an archive, the blobs it holds and the index an import of
//! it into an empty layout would write.

use std::collections::BTreeMap;

use ocil_layout::{Algorithm, Descriptor, Digest, Index, Layout, Store};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The media type of a version 1 receipt.
pub const RECEIPT_MEDIA_TYPE: &str = "application/vnd.ocil.receipt.v1+json";

/// A receipt is a JSON document of at most this many bytes (a few hundred thousand blobs).
pub const RECEIPT_LIMIT: u64 = 256 << 20;

/// A blob (or `index.json`) named by digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobId {
    /// Its digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// What a site holds. See the module docs for the format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// [`RECEIPT_MEDIA_TYPE`].
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// The `index.json` described: the digest and size of its bytes.
    pub index: BlobId,
    /// Its entries.
    pub manifests: Vec<Descriptor>,
    /// Every blob of the store: digest -> size.
    pub blobs: BTreeMap<Digest, u64>,
}

impl Receipt {
    /// The receipt of a layout: its blob store as listed (names and sizes), its `index.json`.
    pub fn of_layout(layout: &Layout) -> Result<Receipt> {
        let bytes = layout.read_index_bytes()?;
        let index = layout.read_index()?;
        let listing = layout.list_blobs()?;
        let blobs = listing.blobs.into_iter().map(|b| (b.digest, b.size)).collect();
        Ok(Receipt::new(&bytes, index, blobs))
    }

    /// The receipt of any store: every blob it lists, and its index (serialised as ocil
    /// writes `index.json`: an archive's is the index an import would write).
    pub fn of_store(store: &dyn Store) -> Result<Receipt> {
        if let Some(layout) = store.as_layout() {
            return Receipt::of_layout(layout);
        }
        let index = store.read_index()?;
        let bytes = serde_json::to_vec(&index).expect("an index always serialises");
        let mut blobs = BTreeMap::new();
        for digest in store.blob_digests()? {
            if let Some(size) = store.stat_blob(&digest)? {
                blobs.insert(digest, size);
            }
        }
        Ok(Receipt::new(&bytes, index, blobs))
    }

    fn new(index_bytes: &[u8], index: Index, blobs: BTreeMap<Digest, u64>) -> Receipt {
        Receipt {
            media_type: RECEIPT_MEDIA_TYPE.to_owned(),
            index: BlobId {
                digest: Algorithm::Sha256.digest_of(index_bytes),
                size: index_bytes.len() as u64,
            },
            manifests: index.manifests,
            blobs,
        }
    }

    /// Read a receipt; `name` (the file as the user gave it) is for messages.
    pub fn parse(bytes: &[u8], name: &str) -> Result<Receipt> {
        let invalid = |reason: String| Error::InvalidReceipt { receipt: name.to_owned(), reason };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
        match value.get("mediaType").and_then(serde_json::Value::as_str) {
            Some(RECEIPT_MEDIA_TYPE) => {}
            Some(other) => {
                return Err(invalid(format!(
                    "its mediaType is `{other}`, not `{RECEIPT_MEDIA_TYPE}`"
                )));
            }
            None => return Err(invalid(format!("it has no mediaType `{RECEIPT_MEDIA_TYPE}`"))),
        }
        serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
    }

    /// The receipt's bytes: compact JSON, members in a fixed order, so the same store always
    /// gives the same bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("a receipt always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// The sha256 of [`Receipt::to_bytes`]: the identity of the state it describes.
    pub fn identity(&self) -> Digest {
        Algorithm::Sha256.digest_of(&self.to_bytes())
    }

    /// Whether the site holds `digest` with this size.
    pub fn holds(&self, digest: &Digest, size: u64) -> bool {
        self.blobs.get(digest) == Some(&size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_receipt_reads_back_and_keeps_its_bytes() {
        let d = Algorithm::Sha256.digest_of(b"x");
        let r = Receipt {
            media_type: RECEIPT_MEDIA_TYPE.into(),
            index: BlobId { digest: d.clone(), size: 3 },
            manifests: vec![Descriptor::new(ocil_layout::MediaType::OciManifest, d.clone(), 1)],
            blobs: [(d.clone(), 1)].into_iter().collect(),
        };
        let bytes = r.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with(
                r#"{"mediaType":"application/vnd.ocil.receipt.v1+json","index":{"digest":"sha256:"#
            ),
            "{text}"
        );
        let back = Receipt::parse(&bytes, "r").unwrap();
        assert_eq!(back, r);
        assert_eq!(back.to_bytes(), bytes);
        assert!(back.holds(&d, 1));
        assert!(!back.holds(&d, 2));
    }

    #[test]
    fn other_documents_are_refused() {
        for (doc, why) in [
            (&b"[]"[..], "mediaType"),
            (br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#, "not `application"),
            (br#"{"mediaType":"application/vnd.ocil.receipt.v1+json"}"#, "missing field"),
            (b"{", "EOF"),
        ] {
            let e = Receipt::parse(doc, "site.receipt").unwrap_err().to_string();
            assert!(e.contains("`site.receipt`") && e.contains(why), "{e}");
        }
    }
}
