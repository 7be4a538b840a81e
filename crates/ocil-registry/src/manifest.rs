//! Manifests over the wire: `HEAD` and `GET /v2/<name>/manifests/<reference>`, with an
//! `Accept` of every manifest and index type, the body capped before it is parsed, and the
//! digest taken from the bytes: checked against the digest asked for and against
//! `Docker-Content-Digest` when the registry sends one (absent is fine, different is an
//! error). Docker schema1 is recognised and refused; an answer that is not a manifest (an
//! HTML page with a 200) is an error.

use std::io::Read;

use ocil_layout::{Algorithm, Digest, Kind, MediaType};

use crate::client::{Method, header};
use crate::repo::Repository;
use crate::{Error, Result};

/// The cap on a manifest's size, before it is parsed (the distribution spec's 4 MiB).
pub const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;

/// The `Accept` header of manifest requests: every manifest and index type ocil reads, and
/// schema1 (so an old registry answers with it, and the refusal can say so).
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
application/vnd.oci.image.manifest.v1+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5, \
application/vnd.docker.distribution.manifest.v1+json;q=0.5";

/// A manifest (or index) as the registry sent it, checked.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its exact bytes.
    pub bytes: Vec<u8>,
    /// Their digest.
    pub digest: Digest,
    /// Its media type: the document's own `mediaType`, else the registry's Content-Type.
    pub media_type: MediaType,
}

/// What a `HEAD` said of a manifest.
#[derive(Debug, Clone)]
pub struct Head {
    /// `Docker-Content-Digest`, when sent.
    pub digest: Option<Digest>,
    /// `Content-Type`.
    pub media_type: Option<MediaType>,
    /// `Content-Length`.
    pub size: Option<u64>,
}

/// The media type part of a Content-Type (`application/json; charset=utf-8` is
/// `application/json`).
fn content_type(value: &str) -> &str {
    value.split(';').next().unwrap_or(value).trim()
}

impl Repository {
    fn manifest_path(&self, reference: &str) -> String {
        format!("/v2/{}/manifests/{reference}", self.name())
    }

    /// `HEAD` a manifest: `None` when the registry has none of that reference.
    pub fn head_manifest(&self, reference: &str) -> Result<Option<Head>> {
        let path = self.manifest_path(reference);
        let answer = self.client().send(
            Method::Head,
            &path,
            &[("Accept", ACCEPT.to_owned())],
            self.scopes(),
        )?;
        match answer.status().as_u16() {
            200..=299 => Ok(Some(Head {
                digest: header(&answer, "docker-content-digest").and_then(|d| d.parse().ok()),
                media_type: header(&answer, "content-type")
                    .map(|c| MediaType::from(content_type(&c))),
                size: header(&answer, "content-length").and_then(|s| s.parse().ok()),
            })),
            404 => Ok(None),
            _ => Err(self.client().failure(answer, &path)),
        }
    }

    /// `GET` a manifest by tag or digest, checked (see the module docs). `reference` is a
    /// tag or a digest's text.
    pub fn get_manifest(&self, reference: &str) -> Result<Fetched> {
        let asked: Option<Digest> = reference.parse().ok().filter(|_| reference.contains(':'));
        let path = self.manifest_path(reference);
        let mut answer = self.client().send(
            Method::Get,
            &path,
            &[("Accept", ACCEPT.to_owned())],
            self.scopes(),
        )?;
        match answer.status().as_u16() {
            200..=299 => {}
            404 => {
                return Err(Error::ManifestUnknown {
                    repo: self.display(),
                    reference: reference.to_owned(),
                    detail: crate::client::Client::detail(&mut answer),
                });
            }
            _ => return Err(self.client().failure(answer, &path)),
        }
        let header_digest = header(&answer, "docker-content-digest");
        let ctype = header(&answer, "content-type").unwrap_or_default();
        let ctype = content_type(&ctype).to_owned();
        let too_large = || Error::ManifestTooLarge {
            repo: self.display(),
            reference: reference.to_owned(),
            limit: MANIFEST_LIMIT,
        };
        if header(&answer, "content-length")
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|n| n > MANIFEST_LIMIT)
        {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        answer
            .body_mut()
            .as_reader()
            .take(MANIFEST_LIMIT + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| Error::Body { url: path.clone(), source })?;
        if bytes.len() as u64 > MANIFEST_LIMIT {
            return Err(too_large());
        }
        let ct_type = MediaType::from(ctype.as_str());
        let not_manifest = |what: &str| Error::NotAManifest {
            repo: self.display(),
            reference: reference.to_owned(),
            content_type: ctype.clone(),
            what: what.to_owned(),
        };
        if matches!(
            ct_type,
            MediaType::DockerSchema1Manifest | MediaType::DockerSchema1SignedManifest
        ) {
            return Err(Error::Schema1 {
                repo: self.display(),
                reference: reference.to_owned(),
                media_type: ctype,
            });
        }
        if !ocil_layout::walk::opens_json_object(&bytes) {
            let what = if bytes.is_empty() {
                "an empty body"
            } else if ctype.starts_with("text/html") || bytes.trim_ascii_start().starts_with(b"<") {
                "an HTML page"
            } else {
                "not a JSON object"
            };
            return Err(not_manifest(what));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|_| not_manifest("malformed JSON"))?;
        if value.get("schemaVersion").and_then(serde_json::Value::as_u64) == Some(1) {
            return Err(Error::Schema1 {
                repo: self.display(),
                reference: reference.to_owned(),
                media_type: if ctype.is_empty() { "schemaVersion 1".into() } else { ctype },
            });
        }
        // The digest, from the bytes, with the algorithm asked for (or the header's).
        let header_digest: Option<Digest> = match header_digest {
            Some(h) => Some(h.parse().map_err(|_| Error::HeaderDigest {
                repo: self.display(),
                reference: reference.to_owned(),
                header: h.clone(),
                found: Algorithm::Sha256.digest_of(&bytes),
            })?),
            None => None,
        };
        let alg =
            asked.as_ref().or(header_digest.as_ref()).map_or(Algorithm::Sha256, Digest::algorithm);
        let digest = alg.digest_of(&bytes);
        if let Some(asked) = &asked
            && asked != &digest
        {
            return Err(Error::ManifestDigest {
                repo: self.display(),
                expected: asked.clone(),
                found: digest,
            });
        }
        if let Some(h) = &header_digest {
            let found = h.algorithm().digest_of(&bytes);
            if &found != h {
                return Err(Error::HeaderDigest {
                    repo: self.display(),
                    reference: reference.to_owned(),
                    header: h.to_string(),
                    found,
                });
            }
        }
        // Expected vs found: the document's own mediaType wins; the Content-Type, when it
        // names another manifest type, is an error unless a digest was asked for (then the
        // bytes are the ones meant, whatever the header says).
        let own = value.get("mediaType").and_then(serde_json::Value::as_str).map(MediaType::from);
        let ct_is_manifest = matches!(ct_type.kind(), Kind::Index | Kind::Manifest);
        let media_type = match own {
            Some(own) => {
                if ct_is_manifest && own != ct_type && asked.is_none() {
                    return Err(Error::MediaTypeMismatch {
                        repo: self.display(),
                        reference: reference.to_owned(),
                        content_type: ctype,
                        media_type: own.as_str().to_owned(),
                    });
                }
                own
            }
            None if ct_is_manifest => ct_type,
            None => match ocil_layout::walk::kind_by_shape(&value) {
                Some(Kind::Index) => MediaType::OciIndex,
                Some(Kind::Manifest) => MediaType::OciManifest,
                _ => return Err(not_manifest("JSON that is neither a manifest nor an index")),
            },
        };
        Ok(Fetched { bytes, digest, media_type })
    }
}

/// What a registry said to a manifest `PUT`.
#[derive(Debug, Clone)]
pub struct Stored {
    /// `OCI-Subject`: the registry indexed the manifest's `subject` itself (it has the
    /// referrers API), so no fallback tag is needed.
    pub subject_indexed: bool,
}

impl Repository {
    /// `PUT` a manifest or index under `reference` (a tag, or its digest): its exact bytes,
    /// with `media_type` as the Content-Type. Retried as an idempotent request.
    pub fn put_manifest(&self, reference: &str, bytes: &[u8], media_type: &str) -> Result<Stored> {
        let path = self.manifest_path(reference);
        let answer = self.client().send_body(
            Method::Put,
            &path,
            &[("Content-Type", media_type.to_owned())],
            self.scopes(),
            crate::client::Body::Bytes(bytes),
        )?;
        if !answer.status().is_success() {
            return Err(Error::Push {
                repo: self.display(),
                what: format!("manifest `{reference}`"),
                source: Box::new(self.client().failure(answer, &path)),
            });
        }
        let digest = Algorithm::Sha256.digest_of(bytes);
        if let Some(h) = header(&answer, "docker-content-digest")
            && let Ok(found) = h.parse::<Digest>()
            && found.algorithm().digest_of(bytes) != found
        {
            return Err(Error::Upload {
                repo: self.display(),
                reason: format!(
                    "manifest `{reference}` ({digest}) was stored as `{found}` (its Docker-Content-Digest)"
                ),
            });
        }
        Ok(Stored { subject_indexed: header(&answer, "oci-subject").is_some() })
    }
}
