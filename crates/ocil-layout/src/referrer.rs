//! Referrers in the blob store: small JSON manifests or indexes whose `subject` names
//! another manifest (signatures, SBOMs, attestations stored beside an image).
//!
//! The test is cheap for the common case: a blob whose first bytes are not `{` (a layer) is
//! rejected after a 64-byte read; only small JSON documents are read whole.

use serde_json::Value;

use crate::{Descriptor, Digest, Layout, MediaType};

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

/// Read a stored blob as a possible referrer. `None` when it is not a JSON manifest or index
/// with a `subject` (or cannot be read, or is larger than [`REFERRER_LIMIT`]).
pub fn stored_referrer(layout: &Layout, digest: &Digest) -> Option<StoredReferrer> {
    let head = layout.peek_blob(digest, 64).ok()?;
    referrer_from_head(layout, digest, &head)
}

/// [`stored_referrer`] for a caller that already holds the blob's first bytes (`head`, at
/// least its first non-blank byte, e.g. from [`Layout::probe_blob`]): a blob whose head does
/// not open a JSON object is rejected without being read whole.
pub fn referrer_from_head(layout: &Layout, digest: &Digest, head: &[u8]) -> Option<StoredReferrer> {
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let bytes = layout.read_blob(digest, REFERRER_LIMIT).ok()?;
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
