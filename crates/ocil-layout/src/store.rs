//! The store: what every reader of images goes through, whatever holds them. A layout
//! directory ([`Layout`]), an archive read in place (`ocil_archive::ArchiveView`) and a
//! registry (`ocil_registry::RegistryStore`) implement it. The walk, referrer lookup and the
//! copy engine work over it, so they never care where blobs live.
//!
//! [`crate::Destination`] is the write side.
//!
//! A store names blobs by digest only: it never hands out paths, so nothing it is asked for
//! can lead outside it.

use std::io::Read;

use serde_json::Value;

use crate::referrer::StoredReferrer;
use crate::{Descriptor, Digest, Error, Index, Kind, Layout, MediaType, Reference, Result};

/// Read access to a content-addressed image store.
pub trait Store {
    /// What kind of store it is, for messages: `layout`, `archive`.
    fn kind(&self) -> &'static str;

    /// A blob's size, `None` when the store does not hold it.
    fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>>;

    /// A blob's first bytes (up to `n`), unverified: for sniffing before a whole read.
    fn peek_blob(&self, digest: &Digest, n: usize) -> Result<Vec<u8>>;

    /// A blob's bytes (at most `limit`, else [`Error::TooLarge`]), unverified: the walk reads
    /// documents this way and reports what they hold; [`Store::read_blob`] checks the digest.
    /// An absent blob is an error for which [`Error::is_not_found`] holds.
    fn read_blob_unverified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>>;

    /// A blob's bytes (at most `limit`), checked against its digest.
    fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        let bytes = self.read_blob_unverified(digest, limit)?;
        let found = digest.algorithm().digest_of(&bytes);
        if &found != digest {
            return Err(Error::DigestMismatch {
                path: digest.blob_path(),
                expected: digest.clone(),
                found,
            });
        }
        Ok(bytes)
    }

    /// A blob as a reader whose bytes are checked against the digest (and `expected_size`
    /// when given): a mismatch is an error at the latest when the reader reaches the end, so
    /// a consumer must not publish what it read before then.
    fn open_blob_verified(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Box<dyn Read + '_>>;

    /// The store's top-level index (a layout's `index.json`).
    fn read_index(&self) -> Result<Index>;

    /// Every blob the store holds, for referrer discovery (empty for a store that cannot
    /// list its blobs, a registry: it answers [`Store::referrers_of`] instead).
    fn blob_digests(&self) -> Result<Vec<Digest>>;

    /// The referrers of the manifest `subject`, when the store can be asked for them by
    /// subject (a registry's referrers API, or its `sha256-<hex>` tag): `None` when it
    /// cannot, and its referrers are found by reading every blob of
    /// [`Store::blob_digests`] instead ([`crate::referrer::Referrers::scan`]).
    fn referrers_of(&self, subject: &Digest) -> Result<Option<Vec<StoredReferrer>>> {
        let _ = subject;
        Ok(None)
    }

    /// The layout directory behind the store, when there is one: copies between two
    /// layouts hard-link or `copy_file_range` instead of streaming.
    fn as_layout(&self) -> Option<&Layout> {
        None
    }

    /// The store as one several threads may read at once, when it is one (a layout, a
    /// registry): the copy engine then transfers several blobs at a time.
    fn as_sync(&self) -> Option<&(dyn Store + Sync)> {
        None
    }
}

impl Store for Layout {
    fn kind(&self) -> &'static str {
        "layout"
    }

    fn stat_blob(&self, digest: &Digest) -> Result<Option<u64>> {
        Layout::stat_blob(self, digest)
    }

    fn peek_blob(&self, digest: &Digest, n: usize) -> Result<Vec<u8>> {
        Layout::peek_blob(self, digest, n)
    }

    fn read_blob_unverified(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        self.read_blob_file(digest, limit)
    }

    fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>> {
        Layout::read_blob(self, digest, limit)
    }

    fn open_blob_verified(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.open_blob(digest, expected_size)?))
    }

    fn read_index(&self) -> Result<Index> {
        Layout::read_index(self)
    }

    fn blob_digests(&self) -> Result<Vec<Digest>> {
        Ok(self.list_blob_names()?.digests)
    }

    fn as_layout(&self) -> Option<&Layout> {
        Some(self)
    }

    fn as_sync(&self) -> Option<&(dyn Store + Sync)> {
        Some(self)
    }
}

impl Layout {
    /// Resolve a reference: an `index.json` entry by tag or digest, or (for a digest no entry
    /// has) any blob in the store, typed by its own `mediaType` or shape.
    /// With no reference, the layout's only entry. (See [`resolve`].)
    pub fn resolve(&self, index: &Index, reference: Option<&Reference>) -> Result<Descriptor> {
        resolve(self, index, reference)
    }
}

/// Whether `s` is a digest prefix ocil expands: `sha256:` or `sha512:` and at least 4, but
/// fewer than all, lowercase hex digits (`sha256:6ae4b4729c93`, as `ocil ls` prints them).
pub fn is_digest_prefix(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else { return false };
    let full = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return false,
    };
    (4..full).contains(&hex.len())
        && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The one digest of `store` that starts with `prefix` (see [`is_digest_prefix`]): among its
/// index's entries and its blobs, as docker and git accept a unique prefix. None is
/// [`Error::RefNotFound`]; several are [`Error::AmbiguousRef`], listing them.
pub fn expand_digest_prefix<S: Store + ?Sized>(store: &S, prefix: &str) -> Result<Digest> {
    let mut found: Vec<Digest> = store
        .read_index()?
        .manifests
        .iter()
        .map(|d| d.digest.clone())
        .chain(store.blob_digests()?)
        .filter(|d| d.to_string().starts_with(prefix))
        .collect();
    found.sort();
    found.dedup();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(Error::RefNotFound {
            reference: prefix.into(),
            hint: " (no blob's digest starts with it)".into(),
        }),
        _ => Err(Error::AmbiguousRef {
            reference: prefix.into(),
            candidates: found.iter().map(ToString::to_string).collect(),
        }),
    }
}

/// Resolve a reference in a store: an entry of `index` by tag, full name or digest, or (for
/// a digest no entry has) any blob of the store, typed by its own `mediaType` or its shape.
/// With no reference, the only entry.
pub fn resolve<S: Store + ?Sized>(
    store: &S,
    index: &Index,
    reference: Option<&Reference>,
) -> Result<Descriptor> {
    let Some(reference) = reference else {
        return match index.manifests.as_slice() {
            [only] => Ok(only.clone()),
            [] => Err(Error::RefNotFound {
                reference: "(none given)".into(),
                hint: format!(" (the {} is empty)", store.kind()),
            }),
            many => Err(Error::AmbiguousRef {
                reference: "(none given)".into(),
                candidates: many
                    .iter()
                    .enumerate()
                    .map(|(i, d)| crate::walk::root_label(i, d))
                    .collect(),
            }),
        };
    };
    if let Some((_, d)) = crate::reference::resolve_entry(index, reference)? {
        return Ok(d);
    }
    let digest = match reference {
        Reference::Digest(d) => d,
        Reference::Tag(t) => {
            return Err(Error::RefNotFound { reference: t.clone(), hint: String::new() });
        }
    };
    let size = store.stat_blob(digest)?.ok_or_else(|| Error::RefNotFound {
        reference: reference.to_string(),
        hint: " (and no such blob)".into(),
    })?;
    let mut media_type = MediaType::Other("application/octet-stream".into());
    // Only what starts like a JSON object is read whole (a layer is typed by its head).
    let json_like =
        || store.peek_blob(digest, 64).is_ok_and(|head| crate::walk::opens_json_object(&head));
    if size <= crate::JSON_LIMIT && json_like() {
        let bytes = store.read_blob(digest, crate::JSON_LIMIT)?;
        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
            media_type = match (
                v.get("mediaType").and_then(Value::as_str),
                crate::walk::kind_by_shape(&v),
            ) {
                (Some(t), _) => MediaType::from(t),
                (None, Some(Kind::Index)) => MediaType::OciIndex,
                (None, Some(Kind::Manifest)) => MediaType::OciManifest,
                _ => media_type,
            };
        }
    }
    Ok(Descriptor::new(media_type, digest.clone(), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_prefixes() {
        assert!(is_digest_prefix("sha256:6ae4"));
        assert!(is_digest_prefix("sha256:6ae4b4729c93"));
        assert!(!is_digest_prefix("sha256:6ae"));
        assert!(!is_digest_prefix(&format!("sha256:{}", "a".repeat(64))));
        assert!(!is_digest_prefix("sha256:6AE4b4"));
        assert!(!is_digest_prefix("md5:6ae4b4"));
        assert!(!is_digest_prefix("v1"));
        let tmp = tempfile::tempdir().unwrap();
        let dir = cap_std::fs::Dir::open_ambient_dir(tmp.path(), cap_std::ambient_authority());
        let layout = Layout::create(dir.unwrap()).unwrap();
        let a = layout.put_bytes(MediaType::OciEmpty, b"{}").unwrap().digest;
        let b = layout.put_bytes(MediaType::OciEmpty, b"{ }").unwrap().digest;
        let p = |d: &Digest, n: usize| d.to_string()[..7 + n].to_owned();
        assert_eq!(expand_digest_prefix(&layout, &p(&a, 12)).unwrap(), a);
        assert_eq!(expand_digest_prefix(&layout, &p(&b, 12)).unwrap(), b);
        // Blobs until two share a 4-digit prefix (a birthday: a few hundred at most).
        let mut seen = std::collections::HashMap::new();
        let shared = (0u32..)
            .find_map(|i| {
                let d = layout.put_bytes(MediaType::OciEmpty, format!("{{\"n\":{i}}}").as_bytes());
                let p = p(&d.unwrap().digest, 4);
                seen.insert(p.clone(), ()).map(|()| p)
            })
            .unwrap();
        assert!(matches!(expand_digest_prefix(&layout, &shared), Err(Error::AmbiguousRef { .. })));
        let unused = (0u32..0x10000)
            .map(|n| format!("sha256:{n:04x}"))
            .find(|p| !seen.contains_key(p) && !a.to_string().starts_with(p.as_str()))
            .unwrap();
        let unused_b = !b.to_string().starts_with(unused.as_str());
        assert!(
            unused_b
                && matches!(expand_digest_prefix(&layout, &unused), Err(Error::RefNotFound { .. }))
        );
    }
}
