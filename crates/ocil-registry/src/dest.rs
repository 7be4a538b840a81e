//! A registry repository as the copy engine's [`Destination`]: `ocil push`, and
//! `docker://` as `ocil copy`'s destination. The engine gives the order (blobs, then
//! manifests, then indexes, each level after the one below, the tag last); this says what
//! the registry has and lands what it is given:
//!
//! - **Presence**: `HEAD` at the manifests endpoint for a manifest or index, at the blobs
//!   endpoint for anything else (a blob the registry has is never sent again).
//! - **Blobs**: uploaded ([`crate::upload`]), or mounted from another repository of the same
//!   registry ([`RegistryDest::mount_from`]: a registry-to-registry copy on one host).
//! - **Manifests**: `PUT` by digest with their exact bytes and their own media type; one with
//!   a `subject` is then indexed under the fallback tag when the registry did not answer
//!   `OCI-Subject` ([`crate::referrers`]), one at a time, so two referrers of one subject do
//!   not lose each other.
//! - **Tags**: the manifest `PUT` again by tag, last. A tag that names another manifest is
//!   moved, as `docker push` does.

use std::sync::{Arc, Mutex};

use ocil_layout::destination::OpenBlob;
use ocil_layout::image_ref::RegistryRef;
use ocil_layout::{Descriptor, Destination, Kind, Landed};
use serde_json::Value;

use crate::Error;
use crate::client::Client;
use crate::referrers::{ReferrersMode, subject_of};
use crate::repo::Repository;
use crate::upload::UploadError;

/// A repository of a registry, written by the copy engine. See the module docs.
#[derive(Debug)]
pub struct RegistryDest {
    repo: Repository,
    reference: RegistryRef,
    mount_from: Option<String>,
    referrers: ReferrersMode,
    indexing: Mutex<()>,
}

/// A registry's error as the destination's.
fn to_dest(e: Error) -> ocil_layout::Error {
    ocil_layout::Error::Destination { kind: "registry", source: Box::new(e) }
}

/// The media type a manifest is `PUT` with: its own `mediaType`, else its descriptor's.
fn media_type_of(desc: &Descriptor, bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| desc.media_type.as_str().to_owned())
}

impl RegistryDest {
    /// The repository `reference` names, written with the push scope.
    pub fn new(client: Arc<Client>, reference: &RegistryRef) -> RegistryDest {
        RegistryDest {
            repo: Repository::for_push(client, reference.repository()),
            reference: reference.clone(),
            mount_from: None,
            referrers: ReferrersMode::Auto,
            indexing: Mutex::new(()),
        }
    }

    /// Mount blobs from `repository` (of the same registry) instead of uploading them.
    pub fn mount_from(mut self, repository: Option<String>) -> RegistryDest {
        self.mount_from = repository.filter(|r| r != self.repo.name());
        self
    }

    /// How pushed referrers are indexed (see [`ReferrersMode`]).
    pub fn referrers(mut self, mode: ReferrersMode) -> RegistryDest {
        self.referrers = mode;
        self
    }

    /// The reference the destination was made for.
    pub fn reference(&self) -> &RegistryRef {
        &self.reference
    }

    /// The repository written.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }
}

impl Destination for RegistryDest {
    fn kind(&self) -> &'static str {
        "registry"
    }

    fn has(&self, desc: &Descriptor) -> ocil_layout::Result<bool> {
        let size = if matches!(desc.media_type.kind(), Kind::Index | Kind::Manifest) {
            let head = self.repo.head_manifest(&desc.digest.to_string()).map_err(to_dest)?;
            match head {
                Some(h) => h.size,
                None => return Ok(false),
            }
        } else {
            match self.repo.blob_exists(&desc.digest).map_err(to_dest)? {
                Some(size) => size,
                None => return Ok(false),
            }
        };
        // A registry that does not say the size has the blob its digest names.
        Ok(size.is_none_or(|s| s == desc.size))
    }

    fn put_blob<'s>(
        &self,
        desc: &Descriptor,
        open: &mut OpenBlob<'_, 's>,
    ) -> ocil_layout::Result<Landed> {
        match self.repo.upload_blob(desc, open, self.mount_from.as_deref()) {
            Ok(landed) => Ok(landed),
            Err(UploadError::Source(e)) => Err(e),
            Err(UploadError::Registry(e)) => Err(to_dest(e)),
        }
    }

    fn put_manifest(&self, desc: &Descriptor, bytes: &[u8]) -> ocil_layout::Result<()> {
        let found = desc.digest.algorithm().digest_of(bytes);
        if found != desc.digest {
            return Err(ocil_layout::Error::DigestMismatch {
                path: desc.digest.blob_path(),
                expected: desc.digest.clone(),
                found,
            });
        }
        let media_type = media_type_of(desc, bytes);
        let stored = self
            .repo
            .put_manifest(&desc.digest.to_string(), bytes, &media_type)
            .map_err(to_dest)?;
        let Some(subject) = subject_of(bytes) else { return Ok(()) };
        let index = match self.referrers {
            ReferrersMode::Api => false,
            ReferrersMode::Tag => true,
            ReferrersMode::Auto | ReferrersMode::None => !stored.subject_indexed,
        };
        if index {
            let _one_at_a_time =
                self.indexing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.repo.index_referrer(&subject, desc, bytes).map_err(to_dest)?;
        }
        Ok(())
    }

    fn put_tag(&self, tag: &str, desc: &Descriptor, bytes: &[u8]) -> ocil_layout::Result<()> {
        let media_type = media_type_of(desc, bytes);
        self.repo.put_manifest(tag, bytes, &media_type).map(drop).map_err(to_dest)
    }
}
