//! An honest registry in memory, for the scripted fake (`fake.rs`) to serve pushes: upload
//! sessions (`POST`, `PATCH`, `PUT ?digest=`, checked), cross-repository mounts, manifests by
//! tag and digest, tags, and (when asked) the referrers API with `OCI-Subject`. Tests wrap
//! [`Memory::serve`] to lie or fail. Blobs are shared by every repository.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::fake::{Reply, Req, digest};

/// The registry's content.
#[derive(Default)]
pub(crate) struct Memory {
    /// Blobs by digest.
    pub(crate) blobs: Mutex<HashMap<String, Vec<u8>>>,
    /// Manifests by digest: (Content-Type, bytes).
    pub(crate) manifests: Mutex<HashMap<String, (String, Vec<u8>)>>,
    /// `REPO:TAG` -> digest.
    pub(crate) tags: Mutex<HashMap<String, String>>,
    sessions: Mutex<HashMap<String, Vec<u8>>>,
    next: AtomicUsize,
    /// Serve `GET /v2/<name>/referrers/<digest>` and answer `OCI-Subject`.
    pub(crate) referrers_api: bool,
}

fn error(status: u16, code: &str) -> Reply {
    Reply::new(status, format!(r#"{{"errors":[{{"code":"{code}","message":"{code}"}}]}}"#))
}

/// `%XX` undone.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path's query parameters.
pub(crate) fn query(path: &str) -> HashMap<String, String> {
    let Some((_, q)) = path.split_once('?') else { return HashMap::new() };
    q.split('&').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (decode(k), decode(v))).collect()
}

impl Memory {
    pub(crate) fn new(referrers_api: bool) -> Memory {
        Memory { referrers_api, ..Memory::default() }
    }

    /// The manifest `REPO:TAG` names, if any.
    pub(crate) fn tagged(&self, repo: &str, tag: &str) -> Option<String> {
        self.tags.lock().unwrap().get(&format!("{repo}:{tag}")).cloned()
    }

    /// A manifest's bytes.
    pub(crate) fn manifest(&self, digest: &str) -> Option<Vec<u8>> {
        self.manifests.lock().unwrap().get(digest).map(|(_, b)| b.clone())
    }

    /// The answer of an honest registry.
    pub(crate) fn serve(&self, req: &Req) -> Reply {
        let (path, _) = req.path.split_once('?').unwrap_or((&req.path, ""));
        if path == "/v2/" {
            return Reply::new(200, "{}");
        }
        let Some(rest) = path.strip_prefix("/v2/") else { return error(404, "NOT_FOUND") };
        let q = query(&req.path);
        if let Some(name) = rest.strip_suffix("/blobs/uploads/") {
            if req.method != "POST" {
                return error(405, "UNSUPPORTED");
            }
            if let Some(d) = q.get("mount")
                && self.blobs.lock().unwrap().contains_key(d)
            {
                return Reply::new(201, "")
                    .header("Location", format!("/v2/{name}/blobs/{d}"))
                    .header("Docker-Content-Digest", d.clone());
            }
            let id = format!("u{}", self.next.fetch_add(1, Ordering::SeqCst));
            self.sessions.lock().unwrap().insert(id.clone(), Vec::new());
            return Reply::new(202, "")
                .header("Location", format!("/v2/{name}/blobs/uploads/{id}?_state={id}"))
                .header("Range", "0-0");
        }
        if let Some((name, id)) = rest.split_once("/blobs/uploads/") {
            let mut sessions = self.sessions.lock().unwrap();
            let Some(data) = sessions.get_mut(id) else {
                return error(404, "BLOB_UPLOAD_UNKNOWN");
            };
            data.extend_from_slice(&req.body);
            let location = format!("/v2/{name}/blobs/uploads/{id}?_state={id}");
            match req.method.as_str() {
                "PATCH" => {
                    let end = data.len().saturating_sub(1);
                    return Reply::new(202, "")
                        .header("Location", location)
                        .header("Range", format!("0-{end}"));
                }
                "PUT" => {
                    let Some(want) = q.get("digest") else { return error(400, "DIGEST_INVALID") };
                    let data = sessions.remove(id).unwrap_or_default();
                    if &digest(&data) != want {
                        return error(400, "DIGEST_INVALID");
                    }
                    self.blobs.lock().unwrap().insert(want.clone(), data);
                    return Reply::new(201, "")
                        .header("Location", format!("/v2/{name}/blobs/{want}"))
                        .header("Docker-Content-Digest", want.clone());
                }
                _ => return error(405, "UNSUPPORTED"),
            }
        }
        if let Some((_, d)) = rest.split_once("/blobs/") {
            return match self.blobs.lock().unwrap().get(d) {
                Some(b) => Reply::new(200, b.clone()).header("Docker-Content-Digest", d),
                None => error(404, "BLOB_UNKNOWN"),
            };
        }
        if let Some((name, reference)) = rest.split_once("/manifests/") {
            return self.manifests_endpoint(req, name, reference);
        }
        if let Some((_, subject)) = rest.split_once("/referrers/") {
            if !self.referrers_api {
                return Reply::new(404, "404 page not found");
            }
            let list: Vec<serde_json::Value> = self
                .manifests
                .lock()
                .unwrap()
                .iter()
                .filter_map(|(d, (ct, bytes))| {
                    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
                    (v["subject"]["digest"].as_str()? == subject).then(|| {
                        serde_json::json!({"mediaType": ct, "digest": d, "size": bytes.len(),
                            "artifactType": v["artifactType"].as_str()
                                .or(v["config"]["mediaType"].as_str())})
                    })
                })
                .collect();
            let index = serde_json::json!({"schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": list});
            return Reply::new(200, serde_json::to_vec(&index).unwrap())
                .header("Content-Type", "application/vnd.oci.image.index.v1+json");
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            let mut tags: Vec<String> = self
                .tags
                .lock()
                .unwrap()
                .keys()
                .filter_map(|k| k.strip_prefix(&format!("{name}:")).map(str::to_owned))
                .collect();
            tags.sort();
            return Reply::new(200, serde_json::json!({"name": name, "tags": tags}).to_string());
        }
        error(404, "NOT_FOUND")
    }

    fn manifests_endpoint(&self, req: &Req, name: &str, reference: &str) -> Reply {
        let by_digest = reference.starts_with("sha256:");
        if req.method == "PUT" {
            let d = digest(&req.body);
            if by_digest && d != reference {
                return error(400, "DIGEST_INVALID");
            }
            let ct = req.header("content-type").unwrap_or("").to_owned();
            self.manifests.lock().unwrap().insert(d.clone(), (ct, req.body.clone()));
            if !by_digest {
                self.tags.lock().unwrap().insert(format!("{name}:{reference}"), d.clone());
            }
            let mut reply = Reply::new(201, "")
                .header("Location", format!("/v2/{name}/manifests/{d}"))
                .header("Docker-Content-Digest", d);
            if self.referrers_api
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&req.body)
                && let Some(s) = v["subject"]["digest"].as_str()
            {
                reply = reply.header("OCI-Subject", s);
            }
            return reply;
        }
        let d = if by_digest { Some(reference.to_owned()) } else { self.tagged(name, reference) };
        let found = d.and_then(|d| {
            self.manifests.lock().unwrap().get(&d).map(|(ct, b)| (d.clone(), ct.clone(), b.clone()))
        });
        match found {
            Some((d, ct, bytes)) => {
                Reply::new(200, bytes).header("Content-Type", ct).header("Docker-Content-Digest", d)
            }
            None => error(404, "MANIFEST_UNKNOWN"),
        }
    }
}
