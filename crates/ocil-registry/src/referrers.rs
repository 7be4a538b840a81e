//! Referrers in a registry (signatures, SBOMs: manifests whose `subject` names another).
//!
//! - **Listing** ([`Repository::referrers_api`], [`Repository::referrers_tag`]):
//!   `GET /v2/<name>/referrers/<digest>` (an index of descriptors, `Link` pages followed); a
//!   registry without that API (distribution 2.8) answers 404, and the `<alg>-<hex>` tag
//!   (`sha256-<hex>`) is read instead: an index clients keep up to date. A fallback answer that is not an index, or that is the subject
//!   itself (GitLab answers the tag with the manifest its digest names), lists nothing.
//! - **Pushing** ([`Repository::index_referrer`]): after a manifest with a `subject` is
//!   `PUT`, a registry that answers `OCI-Subject` indexed it; otherwise the fallback tag's
//!   index gets the referrer's descriptor (read, merged with what it lists, `PUT` back).
//!
//! [`ReferrersMode`] chooses: `auto` (the API, then the tag), `api`, `tag`, `none`.

use std::str::FromStr;

use ocil_layout::referrer::StoredReferrer;
use ocil_layout::{Descriptor, Digest, Kind, MediaType};
use serde_json::Value;

use crate::client::{Method, header, resolve};
use crate::manifest::MANIFEST_LIMIT;
use crate::repo::{Repository, next_link};
use crate::{Error, Result};

/// How referrers are found and indexed (`--referrers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReferrersMode {
    /// The referrers API; the tag fallback when the registry has none.
    #[default]
    Auto,
    /// The referrers API only.
    Api,
    /// The `sha256-<hex>` tag only.
    Tag,
    /// Referrers are not copied (a pushed manifest with a subject is still indexed as
    /// `auto` does, so the registry stays consistent).
    None,
}

impl FromStr for ReferrersMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<ReferrersMode> {
        Ok(match s {
            "auto" => ReferrersMode::Auto,
            "api" => ReferrersMode::Api,
            "tag" => ReferrersMode::Tag,
            "none" => ReferrersMode::None,
            _ => {
                return Err(Error::Usage(format!(
                    "--referrers takes auto, api, tag or none, not `{s}`"
                )));
            }
        })
    }
}

/// The fallback tag of a subject: `<alg>-<hex>` (the algorithm cut to 32 characters, the
/// hex to 64, as the distribution spec says, so a tag stays under 128).
pub fn fallback_tag(subject: &Digest) -> String {
    let alg = subject.algorithm().to_string();
    let hex = subject.encoded();
    format!("{}-{}", &alg[..alg.len().min(32)], &hex[..hex.len().min(64)])
}

/// How many pages of referrers are read at most.
const MAX_PAGES: usize = 1000;

/// The referrers an index lists for `subject` (each a manifest or index, not the subject).
fn listed(index: &Value, subject: &Digest) -> Vec<StoredReferrer> {
    let mut out = Vec::new();
    for d in index.get("manifests").and_then(Value::as_array).into_iter().flatten() {
        let Ok(desc) = serde_json::from_value::<Descriptor>(d.clone()) else { continue };
        if &desc.digest == subject || !desc.media_type.kind().is_walkable() {
            continue;
        }
        if out.iter().any(|r: &StoredReferrer| r.descriptor.digest == desc.digest) {
            continue;
        }
        out.push(StoredReferrer { descriptor: desc, subject: subject.clone() });
    }
    out
}

/// The descriptor an index of referrers lists for a referrer: its media type, digest and
/// size, its `artifactType` (an image manifest's config type when it has none) and its
/// annotations.
pub(crate) fn referrer_descriptor(desc: &Descriptor, bytes: &[u8]) -> Value {
    let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    let media_type =
        doc.get("mediaType").and_then(Value::as_str).unwrap_or(desc.media_type.as_str());
    let mut out = serde_json::Map::new();
    out.insert("mediaType".into(), media_type.into());
    out.insert("digest".into(), desc.digest.to_string().into());
    out.insert("size".into(), bytes.len().into());
    let artifact = doc
        .get("artifactType")
        .and_then(Value::as_str)
        .or_else(|| doc.get("config").and_then(|c| c.get("mediaType")).and_then(Value::as_str));
    if let Some(a) = artifact {
        out.insert("artifactType".into(), a.into());
    }
    if let Some(a) = doc.get("annotations").filter(|a| a.is_object()) {
        out.insert("annotations".into(), a.clone());
    }
    Value::Object(out)
}

/// The `subject` digest of a document, if it has one.
pub(crate) fn subject_of(bytes: &[u8]) -> Option<Digest> {
    let doc: Value = serde_json::from_slice(bytes).ok()?;
    doc.get("subject")?.get("digest")?.as_str()?.parse().ok()
}

impl Repository {
    /// The referrers of `subject` through the referrers API: `None` when the registry has
    /// no such API (it answered 404, or another refusal than auth).
    pub fn referrers_api(&self, subject: &Digest) -> Result<Option<Vec<StoredReferrer>>> {
        let mut out: Vec<StoredReferrer> = Vec::new();
        let mut next = Some(format!("/v2/{}/referrers/{subject}", self.name()));
        let mut pages = 0;
        while let Some(path) = next.take() {
            pages += 1;
            let accept = [("Accept", MediaType::OciIndex.as_str().to_owned())];
            let mut answer = self.client().send(Method::Get, &path, &accept, self.scopes())?;
            let url = if path.starts_with('/') {
                format!("{}{path}", self.client().base())
            } else {
                path
            };
            match answer.status().as_u16() {
                200..=299 => {}
                401 | 403 | 429 => return Err(self.client().failure(answer, &url)),
                s if (400..500).contains(&s) && pages == 1 => return Ok(None),
                _ => return Err(self.client().failure(answer, &url)),
            }
            let link = header(&answer, "link");
            let bytes =
                answer.body_mut().with_config().limit(MANIFEST_LIMIT).read_to_vec().map_err(
                    |e| Error::Body { url: url.clone(), source: std::io::Error::other(e) },
                )?;
            let index: Value = serde_json::from_slice(&bytes)
                .map_err(|source| Error::Json { url: crate::client::strip_query(&url), source })?;
            for r in listed(&index, subject) {
                if !out.iter().any(|x| x.descriptor.digest == r.descriptor.digest) {
                    out.push(r);
                }
            }
            if pages < MAX_PAGES {
                next = link.and_then(|l| next_link(&l)).and_then(|n| resolve(&url, &n));
            }
        }
        Ok(Some(out))
    }

    /// The referrers the fallback tag of `subject` lists (none when there is no such tag,
    /// or it is no index of referrers), and the index's bytes when there is one.
    pub fn referrers_tag(&self, subject: &Digest) -> Result<(Vec<StoredReferrer>, Option<Value>)> {
        let tag = fallback_tag(subject);
        if self.head_manifest(&tag)?.is_none() {
            return Ok((Vec::new(), None));
        }
        let fetched = match self.get_manifest(&tag) {
            Ok(f) => f,
            Err(e) if e.is_not_found() => return Ok((Vec::new(), None)),
            Err(e) => return Err(e),
        };
        if &fetched.digest == subject || fetched.media_type.kind() != Kind::Index {
            // The subject itself (GitLab), or no index: nothing is listed.
            return Ok((Vec::new(), None));
        }
        let index: Value = serde_json::from_slice(&fetched.bytes).unwrap_or(Value::Null);
        Ok((listed(&index, subject), Some(index)))
    }

    /// Add the referrer `desc` (whose bytes are `bytes`) to the fallback tag's index of
    /// `subject`, keeping what it lists; nothing when it lists it already.
    pub fn index_referrer(&self, subject: &Digest, desc: &Descriptor, bytes: &[u8]) -> Result<()> {
        let (_, existing) = self.referrers_tag(subject)?;
        let mut index = existing.unwrap_or_else(|| {
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": MediaType::OciIndex.as_str(),
                "manifests": [],
            })
        });
        let entry = referrer_descriptor(desc, bytes);
        let Some(list) = index.get_mut("manifests").and_then(Value::as_array_mut) else {
            return Err(Error::Upload {
                repo: self.display(),
                reason: format!("the referrers tag `{}` is not an index", fallback_tag(subject)),
            });
        };
        let digest = desc.digest.to_string();
        if list.iter().any(|d| d.get("digest").and_then(Value::as_str) == Some(digest.as_str())) {
            return Ok(());
        }
        list.push(entry);
        let bytes = serde_json::to_vec(&index)
            .map_err(|source| Error::Json { url: fallback_tag(subject), source })?;
        self.put_manifest(&fallback_tag(subject), &bytes, MediaType::OciIndex.as_str())?;
        Ok(())
    }
}

/// Whether the registry is known to lack the referrers API (learned from a 404).
#[derive(Debug, Default)]
pub(crate) struct ApiState(std::sync::atomic::AtomicBool);

impl ApiState {
    pub(crate) fn absent(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn set_absent(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The referrers of `subject` as `mode` finds them (see the module docs).
pub(crate) fn find(
    repo: &Repository,
    api: &ApiState,
    mode: ReferrersMode,
    subject: &Digest,
) -> Result<Vec<StoredReferrer>> {
    match mode {
        ReferrersMode::None => Ok(Vec::new()),
        ReferrersMode::Tag => Ok(repo.referrers_tag(subject)?.0),
        ReferrersMode::Api => Ok(repo.referrers_api(subject)?.unwrap_or_default()),
        ReferrersMode::Auto => {
            if !api.absent() {
                match repo.referrers_api(subject)? {
                    Some(found) => return Ok(found),
                    None => api.set_absent(),
                }
            }
            Ok(repo.referrers_tag(subject)?.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_descriptors() {
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(fallback_tag(&d), format!("sha256-{}", "ab".repeat(32)));
        let bytes = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.example.sig","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:abababababababababababababababababababababababababababababababab","size":1},"annotations":{"a":"b"}}"#;
        let digest = ocil_layout::Algorithm::Sha256.digest_of(bytes);
        let desc = Descriptor::new(MediaType::OciManifest, digest.clone(), bytes.len() as u64);
        let v = referrer_descriptor(&desc, bytes);
        assert_eq!(v["artifactType"], "application/vnd.example.sig");
        assert_eq!(v["annotations"]["a"], "b");
        assert_eq!(v["size"], bytes.len());
        assert_eq!(subject_of(bytes), Some(d.clone()));
        let index = serde_json::json!({"manifests": [v, {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d.to_string(), "size": 1}]});
        let found = listed(&index, &d);
        assert_eq!(found.len(), 1, "the subject itself is no referrer");
        assert_eq!(found[0].descriptor.digest, digest);
        assert!("bogus".parse::<ReferrersMode>().is_err());
    }
}
