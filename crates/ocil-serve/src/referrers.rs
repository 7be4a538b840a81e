//! The referrers index a layout's server keeps: subject digest -> the descriptors of the
//! manifests and indexes whose `subject` names it, as the referrers API lists them
//! (`artifactType`, falling back to an image manifest's config media type, and the
//! document's annotations).
//!
//! Built on first use with [`ocil_layout::referrer::Referrers`] (one probe of each blob's
//! first bytes; only small JSON documents are read), then kept: a push with a subject adds
//! to it, and when `index.json` changes under the server (another ocil process), only the
//! blobs not probed before are probed. A referrer whose blob is gone (gc) is left out when
//! listed.

use std::collections::HashSet;

use ocil_layout::referrer::Referrers;
use ocil_layout::{Descriptor, Digest, DigestMap, Kind, Layout};
use serde_json::Value;

use crate::api::ApiError;
use crate::registry::{Doc, LayoutHandle, lock};
use crate::view::Stamp;

/// The index of one layout's referrers.
#[derive(Debug, Default)]
pub(crate) struct RefIndex {
    /// The `index.json` version it was last brought up to date with.
    stamp: Option<Stamp>,
    /// Blobs already probed.
    probed: HashSet<Digest>,
    by_subject: DigestMap<Vec<Descriptor>>,
}

impl RefIndex {
    fn add(&mut self, subject: Digest, desc: Descriptor) {
        self.probed.insert(desc.digest.clone());
        let list = self.by_subject.entry(subject).or_default();
        if !list.iter().any(|d| d.digest == desc.digest) {
            list.push(desc);
        }
    }

    /// Probe the blobs not probed yet; forget those gone.
    fn refresh(&mut self, layout: &Layout) -> Result<(), ApiError> {
        let internal = |e: ocil_layout::Error| ApiError::internal(&e);
        let names: HashSet<Digest> =
            layout.list_blob_names().map_err(internal)?.digests.into_iter().collect();
        self.probed.retain(|d| names.contains(d));
        for list in self.by_subject.values_mut() {
            list.retain(|d| names.contains(&d.digest));
        }
        let found = Referrers::scan(layout, |d| self.probed.contains(d)).map_err(internal)?;
        for r in found.iter() {
            let bytes = match ocil_layout::Store::read_blob(
                layout,
                &r.descriptor.digest,
                crate::registry::MANIFEST_LIMIT,
            ) {
                Ok(b) => b,
                Err(_) => continue,
            };
            let Ok(value) = serde_json::from_slice::<Value>(&bytes) else { continue };
            let desc = listed(&r.descriptor, &value);
            self.add(r.subject.clone(), desc);
        }
        self.probed.extend(names);
        Ok(())
    }
}

/// The descriptor the referrers API lists for a referrer: its media type, digest and size,
/// its `artifactType` (for an image manifest without one, its config's media type) and its
/// annotations.
pub(crate) fn listed(base: &Descriptor, value: &Value) -> Descriptor {
    let mut d = Descriptor::new(base.media_type.clone(), base.digest.clone(), base.size);
    d.artifact_type = value
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| {
            (base.media_type.kind() == Kind::Manifest)
                .then(|| value.get("config")?.get("mediaType")?.as_str())
                .flatten()
        })
        .map(str::to_owned);
    if let Some(obj) = value.get("annotations").and_then(Value::as_object) {
        let ann: std::collections::BTreeMap<String, String> =
            obj.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect();
        if !ann.is_empty() {
            d.annotations = Some(ann);
        }
    }
    d
}

impl LayoutHandle {
    /// The referrers of `subject`, keeping only those of `artifact_type` when given.
    pub(crate) fn referrers_of(
        &self,
        subject: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Vec<Descriptor>, ApiError> {
        let stamp = Stamp::of(&self.layout)?;
        let mut r = lock(&self.referrers);
        if r.stamp != Some(stamp) {
            r.refresh(&self.layout)?;
            r.stamp = Some(stamp);
        }
        let mut out = Vec::new();
        for d in r.by_subject.get(subject).map(Vec::as_slice).unwrap_or(&[]) {
            if artifact_type.is_some_and(|t| d.artifact_type.as_deref() != Some(t)) {
                continue;
            }
            // gc may have removed it without touching index.json.
            if self.layout.stat_blob(&d.digest).map_err(|e| ApiError::internal(&e))?.is_some() {
                out.push(d.clone());
            }
        }
        Ok(out)
    }

    /// Record a manifest this server just stored, when it has a subject.
    pub(crate) fn note_referrer(&self, digest: &Digest, doc: &Doc) {
        let Some(subject) = doc
            .value
            .get("subject")
            .and_then(|s| s.get("digest"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Digest>().ok())
        else {
            return;
        };
        let base = Descriptor::new(doc.media_type.clone(), digest.clone(), doc.bytes.len() as u64);
        let desc = listed(&base, &doc.value);
        let mut r = lock(&self.referrers);
        // Before the first listing there is nothing to add to: that listing finds it.
        if r.stamp.is_some() {
            r.add(subject, desc);
        }
    }
}
