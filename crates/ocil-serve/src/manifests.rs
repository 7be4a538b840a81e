//! `/v2/<name>/manifests/<reference>`: GET and HEAD serve the exact stored bytes with their
//! stored media type (never converted for an `Accept` header: the bytes are the digest);
//! PUT stores a manifest or index whose blobs are all there; DELETE removes a tag, or every
//! entry of a digest (and the manifest, once nothing reaches it).

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, ETAG, HeaderMap, IF_NONE_MATCH, LOCATION};
use ocil_layout::validate::{Schema, validate};
use ocil_layout::{Algorithm, Descriptor, Digest, Kind, MediaType};
use serde_json::{Value, json};

use crate::api::{ApiError, Code, not_enabled};
use crate::http::{self, CONTENT_DIGEST, OCI_SUBJECT, Resp};
use crate::registry::{Doc, MANIFEST_LIMIT, parse_doc};
use crate::route::{Reference, parse_reference};
use crate::server::{State, blocking};
use crate::writer::{Op, Outcome};

fn unknown(reference: &str) -> ApiError {
    ApiError::new(Code::ManifestUnknown, format!("manifest unknown: `{reference}`"))
}

/// GET or HEAD.
pub(crate) async fn get(
    state: Arc<State>,
    name: String,
    reference: String,
    headers: &HeaderMap,
    head: bool,
) -> Result<Resp, ApiError> {
    let Some(r) = parse_reference(&reference)? else { return Err(unknown(&reference)) };
    let (digest, doc) = blocking(move || {
        let repo = state.registry.repo(&name)?;
        let view = repo.handle.view()?;
        let (digest, hint) = match r {
            Reference::Tag(t) => {
                let e = view.tag(&repo.scope, &t).ok_or_else(|| unknown(&t))?;
                (e.digest.clone(), Some(e.media_type.clone()))
            }
            Reference::Digest(d) => {
                let hint = view.entry(&d).map(|e| e.media_type.clone());
                (d, hint)
            }
        };
        let doc = repo.handle.doc(&digest, hint.as_ref())?.ok_or_else(|| unknown(&reference))?;
        Ok((digest, doc))
    })
    .await?;
    let etag = format!("\"{digest}\"");
    let b = http::builder(StatusCode::OK)
        .header(CONTENT_DIGEST, http::header_value(&digest.to_string()))
        .header(ETAG, http::header_value(&etag));
    if headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let b = b.status(StatusCode::NOT_MODIFIED);
        return Ok(http::finish(b, crate::body::Body::Empty));
    }
    Ok(http::with_bytes(b, doc.media_type.as_str(), doc.bytes.clone(), head))
}

/// What a pushed document needs from the layout: the blobs it names (configs, layers,
/// children; not a subject, not a layer that is fetched from elsewhere) and, for an index,
/// its children.
fn needs(doc: &Doc) -> (Vec<Digest>, Vec<Digest>) {
    let digest = |d: &Value| d.get("digest")?.as_str()?.parse::<Digest>().ok();
    let v = &doc.value;
    match doc.kind() {
        Kind::Index => {
            let children: Vec<Digest> = v
                .get("manifests")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(digest).collect())
                .unwrap_or_default();
            (children.clone(), children)
        }
        _ => {
            let mut out: Vec<Digest> = v.get("config").and_then(digest).into_iter().collect();
            for l in v.get("layers").and_then(Value::as_array).into_iter().flatten() {
                let foreign =
                    l.get("urls").is_some_and(|u| u.as_array().is_some_and(|a| !a.is_empty()));
                let distributable = match l.get("mediaType").and_then(Value::as_str) {
                    Some(t) => !matches!(
                        MediaType::from(t).kind(),
                        Kind::Layer { distributable: false, .. }
                    ),
                    None => true,
                };
                if distributable && !foreign {
                    out.extend(digest(l));
                }
            }
            (out, Vec::new())
        }
    }
}

/// Check a pushed document: JSON, a manifest or index media type that agrees with the
/// request's `Content-Type`, valid per the image spec, not a polyglot.
fn check(bytes: Bytes, content_type: Option<&str>) -> Result<Doc, ApiError> {
    let invalid = |m: String| ApiError::new(Code::ManifestInvalid, m);
    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("the manifest is not JSON: {e}")))?;
    if !value.is_object() {
        return Err(invalid("the manifest is not a JSON object".into()));
    }
    let own = value.get("mediaType").and_then(Value::as_str);
    // `application/json` and friends say nothing about the type.
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| MediaType::from(*c).kind().is_walkable());
    if let (Some(own), Some(declared)) = (own, declared)
        && own != declared
    {
        return Err(invalid(format!(
            "the manifest's mediaType `{own}` is not its Content-Type `{declared}`"
        )));
    }
    let hint = declared.map(MediaType::from);
    let Some(doc) = parse_doc(bytes, hint.as_ref()) else {
        let t = own.or(declared).unwrap_or("none");
        return Err(invalid(format!("not a manifest or index (media type `{t}`)")));
    };
    let (schema, polyglot) = match doc.kind() {
        Kind::Index => {
            (Schema::Index, value.get("config").is_some() || value.get("layers").is_some())
        }
        _ => (Schema::Manifest, value.get("manifests").is_some()),
    };
    if polyglot {
        return Err(invalid("a manifest with an index's members, or the reverse".into()));
    }
    let findings = validate(schema, &value);
    if !findings.is_valid() {
        return Err(invalid(format!("invalid {}: {}", doc.media_type, findings.errors.join("; ")))
            .with_detail(json!(findings.errors)));
    }
    Ok(doc)
}

/// PUT.
pub(crate) async fn put(
    state: Arc<State>,
    name: String,
    reference: String,
    headers: &HeaderMap,
    body: hyper::body::Incoming,
) -> Result<Resp, ApiError> {
    if !state.push {
        return Err(not_enabled("--push"));
    }
    let r = parse_reference(&reference)?.ok_or_else(|| {
        ApiError::new(Code::TagInvalid, format!("`{reference}` is not a valid tag"))
    })?;
    let bytes = crate::server::read_limited(body, headers, MANIFEST_LIMIT).await?;
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let st = state.clone();
    let n = name.clone();
    let (repo, digest, doc, op) = blocking(move || {
        // Checked before a new repository is made for it.
        let doc = check(bytes, content_type.as_deref())?;
        let repo = st.registry.repo_or_create(&n)?;
        let alg = match &r {
            Reference::Digest(d) => d.algorithm(),
            Reference::Tag(_) => Algorithm::Sha256,
        };
        let digest = alg.digest_of(&doc.bytes);
        if let Reference::Digest(d) = &r
            && d != &digest
        {
            return Err(ApiError::new(
                Code::DigestInvalid,
                format!("the manifest's bytes hash to `{digest}`, not `{d}`"),
            ));
        }
        let (needs, children) = needs(&doc);
        let layout = &repo.handle.layout;
        for d in &needs {
            if layout.stat_blob(d).map_err(|e| ApiError::internal(&e))?.is_none() {
                return Err(blob_unknown(d));
            }
        }
        let target =
            Descriptor::new(doc.media_type.clone(), digest.clone(), doc.bytes.len() as u64);
        layout.put_blob_verified(&doc.bytes[..], &target).map_err(|e| ApiError::internal(&e))?;
        let op = match r {
            Reference::Tag(tag) => {
                Op::Tag { target, scope: repo.scope.clone(), tag, needs, children }
            }
            Reference::Digest(_) => Op::Untagged { target, needs, children },
        };
        Ok((repo, digest, doc, op))
    })
    .await?;
    match repo.handle.submit(op).await? {
        Outcome::Missing(d) => return Err(blob_unknown(&d)),
        Outcome::Done { .. } => {}
        other => {
            return Err(ApiError::new(Code::Unknown, format!("unexpected outcome {other:?}")));
        }
    }
    repo.handle.note_referrer(&digest, &doc);
    let mut b = http::builder(StatusCode::CREATED)
        .header(LOCATION, http::header_value(&format!("/v2/{name}/manifests/{digest}")))
        .header(CONTENT_DIGEST, http::header_value(&digest.to_string()));
    if let Some(subject) =
        doc.value.get("subject").and_then(|s| s.get("digest")).and_then(Value::as_str)
    {
        b = b.header(OCI_SUBJECT, http::header_value(subject));
    }
    Ok(http::empty(b))
}

fn blob_unknown(d: &Digest) -> ApiError {
    ApiError::new(
        Code::ManifestBlobUnknown,
        format!("the manifest names blob `{d}`, which is not here"),
    )
    .with_detail(json!({ "digest": d.to_string() }))
}

/// DELETE.
pub(crate) async fn delete(
    state: Arc<State>,
    name: String,
    reference: String,
) -> Result<Resp, ApiError> {
    if !state.delete {
        return Err(not_enabled("--delete"));
    }
    let Some(r) = parse_reference(&reference)? else { return Err(unknown(&reference)) };
    let (repo, op) = blocking(move || {
        let repo = state.registry.repo(&name)?;
        let op = match r {
            Reference::Tag(tag) => Op::DeleteTag { scope: repo.scope.clone(), tag },
            Reference::Digest(digest) => {
                let view = repo.handle.view()?;
                let hint = view.entry(&digest).map(|e| e.media_type.clone());
                if hint.is_none() && repo.handle.doc(&digest, None)?.is_none() {
                    return Err(unknown(&reference));
                }
                Op::DeleteManifest { digest }
            }
        };
        Ok((repo, op))
    })
    .await?;
    match repo.handle.submit(op).await? {
        Outcome::Done { .. } => Ok(http::empty(http::builder(StatusCode::ACCEPTED))),
        Outcome::Reachable(path) => Err(ApiError::new(
            Code::Unsupported,
            format!("the manifest is still reached from index.json ({path}): delete that first"),
        )),
        Outcome::NotFound | Outcome::Missing(_) => {
            Err(ApiError::new(Code::ManifestUnknown, "manifest unknown"))
        }
    }
}
