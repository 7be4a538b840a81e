//! A registry read as an [`ocil_layout::Store`], so the one copy engine
//! (`ocil_transfer::copy`), the walk and `ocil_inspect` read a repository as they read a
//! layout: `ocil pull`, `ocil copy docker://...`, `ocil inspect` and `ocil cat` all go
//! through it.
//!
//! - **The index** is one entry: the manifest the reference names (found with `HEAD`, then
//!   fetched by digest, so Docker Hub's rate limit counts only what is new), tagged with the
//!   reference's tag. A registry has no `index.json`; this is what a pull would write.
//! - **Documents** (manifests and indexes) are fetched from `/manifests/<digest>`, checked
//!   ([`crate::manifest`]) and kept in memory (each at most 4 MiB), or read from a local
//!   layout given as a cache (the pull's destination: what it has is not fetched again).
//! - **Which endpoint** serves a digest is learned from the documents read: a child of an
//!   index and a `subject` are manifests; a config and layers are blobs; a digest seen
//!   nowhere is asked for with `HEAD`, blobs first. Sizes come from the same descriptors: a
//!   registry refuses a manifest whose blobs it lacks, so a blob a manifest names is taken
//!   to be there, and its `GET` says otherwise (naming the blob) if it is not.
//! - **Blobs** stream through [`crate::blob::BlobReader`]: checked at the end, resumed with
//!   `Range` after a dropped connection.
//! - **Referrers**: [`Store::blob_digests`] is empty (a registry cannot list its blobs);
//!   [`Store::referrers_of`] asks the registry instead, as [`RegistryStore::set_referrers`]
//!   says (the referrers API, then the `sha256-<hex>` tag: [`crate::referrers`]), and the
//!   referrers it lists are manifests to the store from then on.
//!
//! The store is `Sync`: the copy engine reads several blobs at once.

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex};

use ocil_layout::image_ref::RegistryRef;
use ocil_layout::referrer::StoredReferrer;
use ocil_layout::{ANNOTATION_REF_NAME, Descriptor, Digest, Index, Layout, MediaType, Store};
use serde_json::Value;

use crate::client::Client;
use crate::manifest::MANIFEST_LIMIT;
use crate::referrers::{ApiState, ReferrersMode};
use crate::repo::Repository;
use crate::{Error, Result};

/// Which endpoint serves a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Manifest,
    Blob,
}

/// A repository of a registry, read as a [`Store`]. See the module docs.
pub struct RegistryStore {
    repo: Repository,
    reference: RegistryRef,
    root: Option<Descriptor>,
    local: Option<Layout>,
    docs: Mutex<HashMap<Digest, Arc<Vec<u8>>>>,
    known: Mutex<HashMap<Digest, (u64, Endpoint)>>,
    referrers: ReferrersMode,
    api: ApiState,
}

impl std::fmt::Debug for RegistryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryStore")
            .field("reference", &self.reference.to_string())
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl RegistryStore {
    /// The repository `reference` names, its manifest resolved (`HEAD`, then `GET` by
    /// digest unless `local` has it). A digest that names a blob rather than a manifest
    /// gives a store with an empty index (for `ocil cat`). `local` is a layout whose blobs
    /// are used instead of fetching them (verified as they are read).
    pub fn open(
        client: Arc<Client>,
        reference: &RegistryRef,
        local: Option<Layout>,
    ) -> Result<RegistryStore> {
        let repo = Repository::new(client, reference.repository());
        let mut store = RegistryStore {
            repo,
            reference: reference.clone(),
            root: None,
            local,
            docs: Mutex::new(HashMap::new()),
            known: Mutex::new(HashMap::new()),
            referrers: ReferrersMode::Auto,
            api: ApiState::default(),
        };
        store.root = store.resolve_root()?;
        Ok(store)
    }

    fn resolve_root(&self) -> Result<Option<Descriptor>> {
        let asked = match (self.reference.digest(), self.reference.tag()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_owned(),
            (None, None) => "latest".to_owned(),
        };
        let Some(head) = self.repo.head_manifest(&asked)? else {
            if let Some(d) = self.reference.digest()
                && let Some(size) = self.repo.head_blob(d)?
            {
                lock(&self.known).insert(d.clone(), (size, Endpoint::Blob));
                return Ok(None);
            }
            return Err(Error::ManifestUnknown {
                repo: self.repo.display(),
                reference: asked,
                detail: String::new(),
            });
        };
        let (digest, bytes) = match (self.reference.digest(), head.digest) {
            (Some(d), _) => (d.clone(), self.document(d)?),
            (None, Some(d)) => {
                let bytes = self.document(&d)?;
                (d, bytes)
            }
            // No Docker-Content-Digest (ECR, some proxies): the GET by tag gives it.
            (None, None) => {
                let f = self.repo.get_manifest(&asked)?;
                let bytes = Arc::new(f.bytes);
                self.remember(&f.digest, &bytes);
                (f.digest, bytes)
            }
        };
        let media_type = own_media_type(&bytes)?;
        let mut desc = Descriptor::new(media_type, digest, bytes.len() as u64);
        if self.reference.digest().is_none()
            && let Some(tag) = self.reference.tag()
        {
            desc.annotations = Some([(ANNOTATION_REF_NAME.to_owned(), tag.to_owned())].into());
        }
        Ok(Some(desc))
    }

    /// How referrers are found ([`ReferrersMode::Auto`] unless set).
    pub fn set_referrers(&mut self, mode: ReferrersMode) {
        self.referrers = mode;
    }

    /// The repository read.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The reference the store was opened with.
    pub fn reference(&self) -> &RegistryRef {
        &self.reference
    }

    /// The manifest or index the reference names (`None` when it names a blob).
    pub fn root(&self) -> Option<&Descriptor> {
        self.root.as_ref()
    }

    /// Keep a checked document and learn the endpoints and sizes of its children.
    fn remember(&self, digest: &Digest, bytes: &Arc<Vec<u8>>) {
        lock(&self.docs).insert(digest.clone(), bytes.clone());
        let Ok(v) = serde_json::from_slice::<Value>(bytes) else { return };
        let mut known = lock(&self.known);
        known.insert(digest.clone(), (bytes.len() as u64, Endpoint::Manifest));
        let mut learn = |d: &Value, endpoint: Endpoint| {
            let digest = d.get("digest").and_then(Value::as_str).and_then(|s| s.parse().ok());
            let size = d.get("size").and_then(Value::as_u64);
            if let (Some(digest), Some(size)) = (digest, size) {
                known.entry(digest).or_insert((size, endpoint));
            }
        };
        for (field, endpoint) in [
            ("manifests", Endpoint::Manifest),
            ("layers", Endpoint::Blob),
            ("blobs", Endpoint::Blob),
        ] {
            for d in v.get(field).and_then(Value::as_array).into_iter().flatten() {
                learn(d, endpoint);
            }
        }
        if let Some(c) = v.get("config") {
            learn(c, Endpoint::Blob);
        }
        if let Some(s) = v.get("subject") {
            learn(s, Endpoint::Manifest);
        }
    }

    /// A manifest's bytes by digest: kept, from the local layout, or fetched (checked).
    fn document(&self, digest: &Digest) -> Result<Arc<Vec<u8>>> {
        if let Some(b) = lock(&self.docs).get(digest) {
            return Ok(b.clone());
        }
        if let Some(local) = &self.local
            && local.stat_blob(digest).ok().flatten().is_some()
            && let Ok(bytes) = local.read_blob(digest, MANIFEST_LIMIT)
        {
            let bytes = Arc::new(bytes);
            self.remember(digest, &bytes);
            return Ok(bytes);
        }
        let f = self.repo.get_manifest(&digest.to_string())?;
        let bytes = Arc::new(f.bytes);
        self.remember(digest, &bytes);
        Ok(bytes)
    }

    /// Which endpoint serves `digest`, and its size; `None` when neither has it.
    fn locate(&self, digest: &Digest) -> Result<Option<(u64, Endpoint)>> {
        if let Some(k) = lock(&self.known).get(digest) {
            return Ok(Some(*k));
        }
        let found = if let Some(size) = self.repo.head_blob(digest)? {
            Some((size, Endpoint::Blob))
        } else {
            match self.repo.head_manifest(&digest.to_string())? {
                Some(h) => match h.size {
                    Some(size) => Some((size, Endpoint::Manifest)),
                    None => Some((self.document(digest)?.len() as u64, Endpoint::Manifest)),
                },
                None => None,
            }
        };
        if let Some(k) = found {
            lock(&self.known).insert(digest.clone(), k);
        }
        Ok(found)
    }

    fn missing(&self, digest: &Digest) -> ocil_layout::Error {
        ocil_layout::Error::BlobMissing { digest: digest.clone() }
    }
}

/// A document's own `mediaType`, else its shape's.
fn own_media_type(bytes: &[u8]) -> Result<MediaType> {
    let v: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    Ok(match v.get("mediaType").and_then(Value::as_str) {
        Some(t) => MediaType::from(t),
        None => match ocil_layout::walk::kind_by_shape(&v) {
            Some(ocil_layout::Kind::Index) => MediaType::OciIndex,
            _ => MediaType::OciManifest,
        },
    })
}

/// Not-found errors as the store trait's (so the walk reports a missing blob), others as
/// the registry's.
fn to_layout(e: Error) -> ocil_layout::Error {
    match e {
        Error::BlobUnknown { digest, .. } => ocil_layout::Error::BlobMissing { digest },
        e => e.into(),
    }
}

impl Store for RegistryStore {
    fn kind(&self) -> &'static str {
        "registry"
    }

    fn stat_blob(&self, digest: &Digest) -> ocil_layout::Result<Option<u64>> {
        Ok(self.locate(digest).map_err(to_layout)?.map(|(size, _)| size))
    }

    fn peek_blob(&self, digest: &Digest, n: usize) -> ocil_layout::Result<Vec<u8>> {
        match self.locate(digest).map_err(to_layout)? {
            None => Err(self.missing(digest)),
            Some((_, Endpoint::Manifest)) => {
                let b = self.document(digest).map_err(to_layout)?;
                Ok(b[..n.min(b.len())].to_vec())
            }
            Some((_, Endpoint::Blob)) => {
                let r = self.repo.open_blob(digest, None).map_err(to_layout)?;
                let mut out = Vec::with_capacity(n.min(1 << 20));
                r.take(n as u64).read_to_end(&mut out).map_err(|source| {
                    ocil_layout::Error::Io { op: "read", path: digest.to_string(), source }
                })?;
                Ok(out)
            }
        }
    }

    fn read_blob_unverified(&self, digest: &Digest, limit: u64) -> ocil_layout::Result<Vec<u8>> {
        // A registry's blobs are always checked: unverified reads are verified too.
        let too_large =
            |size: u64| ocil_layout::Error::TooLarge { path: digest.to_string(), size, limit };
        match self.locate(digest).map_err(to_layout)? {
            None => Err(self.missing(digest)),
            Some((_, Endpoint::Manifest)) => {
                let b = self.document(digest).map_err(to_layout)?;
                if b.len() as u64 > limit {
                    return Err(too_large(b.len() as u64));
                }
                Ok(b.to_vec())
            }
            Some((size, Endpoint::Blob)) => {
                if size > limit {
                    return Err(too_large(size));
                }
                let r = self.repo.open_blob(digest, Some(size)).map_err(to_layout)?;
                let mut out = Vec::with_capacity(size as usize);
                r.take(limit + 1).read_to_end(&mut out).map_err(|source| {
                    ocil_layout::Error::Io { op: "read", path: digest.to_string(), source }
                })?;
                Ok(out)
            }
        }
    }

    fn open_blob_verified(
        &self,
        digest: &Digest,
        expected_size: Option<u64>,
    ) -> ocil_layout::Result<Box<dyn Read + '_>> {
        match self.locate(digest).map_err(to_layout)? {
            None => Err(self.missing(digest)),
            Some((_, Endpoint::Manifest)) => {
                let b = self.document(digest).map_err(to_layout)?;
                if let Some(expected) = expected_size
                    && expected != b.len() as u64
                {
                    return Err(ocil_layout::Error::SizeMismatch {
                        path: digest.to_string(),
                        expected,
                        found: b.len() as u64,
                    });
                }
                Ok(Box::new(Cursor::new(ArcBytes(b))))
            }
            Some((size, Endpoint::Blob)) => {
                let size = expected_size.unwrap_or(size);
                Ok(Box::new(self.repo.open_blob(digest, Some(size)).map_err(to_layout)?))
            }
        }
    }

    fn read_index(&self) -> ocil_layout::Result<Index> {
        let mut index = Index::empty();
        index.manifests.extend(self.root.clone());
        Ok(index)
    }

    fn blob_digests(&self) -> ocil_layout::Result<Vec<Digest>> {
        // A registry cannot list its blobs; referrers come from its referrers API (later).
        Ok(Vec::new())
    }

    fn referrers_of(&self, subject: &Digest) -> ocil_layout::Result<Option<Vec<StoredReferrer>>> {
        let found = crate::referrers::find(&self.repo, &self.api, self.referrers, subject)
            .map_err(to_layout)?;
        let mut known = lock(&self.known);
        for r in &found {
            known
                .entry(r.descriptor.digest.clone())
                .or_insert((r.descriptor.size, Endpoint::Manifest));
        }
        Ok(Some(found))
    }

    fn as_sync(&self) -> Option<&(dyn Store + Sync)> {
        Some(self)
    }
}

/// Shared bytes as a `Cursor`'s buffer.
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}
