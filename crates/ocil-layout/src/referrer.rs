//! Referrers in the blob store: small JSON manifests or indexes whose `subject` names
//! another manifest (signatures, SBOMs, attestations stored beside an image).
//!
//! [`Referrers`] finds them all in one pass over a store, built once per copy or export and
//! then looked up by subject. The test is cheap for the common case: a blob whose first bytes are not `{` (a layer) is
//! rejected after a 64-byte read; only small JSON documents are read whole.

use serde_json::Value;

use crate::{Descriptor, Digest, DigestMap, MediaType, Result, Store};

/// Cap on blobs read as possible referrers.
pub const REFERRER_LIMIT: u64 = 4 * 1024 * 1024;

/// A stored document with a `subject`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReferrer {
    /// The referrer itself, as a descriptor (media type from its own `mediaType`, or by shape).
    pub descriptor: Descriptor,
    /// The digest its `subject` names.
    pub subject: Digest,
}

/// Every referrer a store holds, by the digest its `subject` names: one probe of each blob,
/// once, then lookups.
#[derive(Debug, Default)]
pub struct Referrers {
    found: Vec<StoredReferrer>,
    by_subject: DigestMap<Vec<usize>>,
    by_digest: DigestMap<usize>,
}

impl Referrers {
    /// Probe every blob of `store` that `skip` does not rule out (blobs already known not to
    /// be referrers, such as layers of the images at hand).
    pub fn scan<S: Store + ?Sized>(store: &S, skip: impl Fn(&Digest) -> bool) -> Result<Referrers> {
        let mut out = Referrers::default();
        for d in store.blob_digests()? {
            if skip(&d) {
                continue;
            }
            if let Some(r) = stored_referrer(store, &d) {
                out.insert(r);
            }
        }
        Ok(out)
    }

    fn insert(&mut self, r: StoredReferrer) {
        let i = self.found.len();
        self.by_subject.entry(r.subject.clone()).or_default().push(i);
        self.by_digest.insert(r.descriptor.digest.clone(), i);
        self.found.push(r);
    }

    /// The referrers whose subject is `subject`, in the order the store listed them.
    pub fn of<'a>(&'a self, subject: &Digest) -> impl Iterator<Item = &'a StoredReferrer> + 'a {
        let ids = self.by_subject.get(subject).map(Vec::as_slice).unwrap_or(&[]);
        ids.iter().map(|&i| &self.found[i])
    }

    /// The referrer stored as `digest`, if that blob is one.
    pub fn get(&self, digest: &Digest) -> Option<&StoredReferrer> {
        self.by_digest.get(digest).map(|&i| &self.found[i])
    }

    /// Every referrer found.
    pub fn iter(&self) -> impl Iterator<Item = &StoredReferrer> {
        self.found.iter()
    }

    /// How many were found.
    pub fn len(&self) -> usize {
        self.found.len()
    }

    /// Whether none was found.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }
}

/// Read a stored blob as a possible referrer. `None` when it is not a JSON manifest or index
/// with a `subject` (or cannot be read, or is larger than [`REFERRER_LIMIT`]).
pub fn stored_referrer<S: Store + ?Sized>(store: &S, digest: &Digest) -> Option<StoredReferrer> {
    let head = store.peek_blob(digest, 64).ok()?;
    referrer_from_head(store, digest, &head)
}

/// [`stored_referrer`] for a caller that already holds the blob's first bytes (`head`, at
/// least its first non-blank byte, e.g. from [`crate::Layout::probe_blob`]): a blob whose head does
/// not open a JSON object is rejected without being read whole.
pub fn referrer_from_head<S: Store + ?Sized>(
    store: &S,
    digest: &Digest,
    head: &[u8],
) -> Option<StoredReferrer> {
    if !crate::walk::opens_json_object(head) {
        return None;
    }
    let bytes = store.read_blob(digest, REFERRER_LIMIT).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let subject: Digest = v.get("subject")?.get("digest")?.as_str()?.parse().ok()?;
    let media_type = match v.get("mediaType").and_then(Value::as_str) {
        Some(t) => MediaType::from(t),
        None if v.get("manifests").is_some() => MediaType::OciIndex,
        None => MediaType::OciManifest,
    };
    if !media_type.kind().is_walkable() {
        return None;
    }
    let mut descriptor = Descriptor::new(media_type, digest.clone(), bytes.len() as u64);
    if let Some(t) = v.get("artifactType").and_then(Value::as_str) {
        descriptor.artifact_type = Some(t.to_owned());
    }
    Some(StoredReferrer { descriptor, subject })
}
