//! Blob uploads (`--push`): `POST /v2/<name>/blobs/uploads/` starts a session (or, with
//! `?digest=`, takes the whole blob at once; with `?mount=&from=`, takes it from another
//! repository), `PATCH` appends a chunk (`Content-Range` must start where the session is:
//! an out-of-order or repeated chunk is 416), `GET` reports the session, `PUT ?digest=`
//! closes it, `DELETE` cancels it.
//!
//! The bytes land in the layout's own temp area (a locked `.ocil-tmp-*` file under
//! `blobs/<alg>/`, so gc leaves it alone), hashed as they arrive, and are renamed to their
//! digest only when it matches. A session nobody touched for the expiry time is dropped
//! with its temp file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt as _;
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HeaderMap, LOCATION};
use ocil_layout::{Algorithm, BlobWriter, Digest};

use crate::api::{ApiError, Code, not_enabled};
use crate::http::{self, CONTENT_DIGEST, RANGE, Resp, UPLOAD_UUID};
use crate::names::{query_get, repo_name_problem};
use crate::registry::{LayoutHandle, Repo, lock};
use crate::route::parse_digest;
use crate::server::{State, blocking};

/// At most this many sessions at once.
const MAX_SESSIONS: usize = 4096;

/// One upload session.
#[derive(Debug)]
pub(crate) struct Upload {
    name: String,
    handle: Arc<LayoutHandle>,
    /// Made with the first bytes (sha256 unless a PUT's digest says otherwise).
    writer: Option<BlobWriter>,
    touched: Instant,
    /// Why the session cannot go on (its bytes no longer match what the client sent).
    broken: Option<String>,
}

impl Upload {
    fn size(&self) -> u64 {
        self.writer.as_ref().map_or(0, BlobWriter::size)
    }
}

pub(crate) type Slot = Arc<tokio::sync::Mutex<Upload>>;

/// The open sessions.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Slot>>,
}

impl Sessions {
    /// The session `id` (its repository is checked when it is locked: see `locked`).
    fn get(&self, id: &str) -> Result<Slot, ApiError> {
        let slot = lock(&self.map).get(id).cloned();
        slot.ok_or_else(|| {
            ApiError::new(Code::BlobUploadUnknown, format!("no upload session `{id}`"))
        })
    }

    fn remove(&self, id: &str) -> Option<Slot> {
        lock(&self.map).remove(id)
    }

    /// Drop the sessions idle for longer than `expiry` (their temp files go with them);
    /// returns them, for the caller to drop off the async threads.
    pub(crate) fn expire(&self, expiry: Duration) -> Vec<Slot> {
        let mut gone = Vec::new();
        lock(&self.map).retain(|_, slot| {
            let keep = match slot.try_lock() {
                Ok(u) => u.touched.elapsed() < expiry,
                Err(_) => true, // a request is using it
            };
            if !keep {
                gone.push(slot.clone());
            }
            keep
        });
        gone
    }

    /// How many sessions are open.
    pub(crate) fn len(&self) -> usize {
        lock(&self.map).len()
    }
}

fn new_id() -> String {
    let mut b = [0u8; 16];
    if rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty()).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b = nanos.to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn session_url(name: &str, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn blob_created(name: &str, digest: &Digest) -> Resp {
    http::empty(
        http::builder(StatusCode::CREATED)
            .header(LOCATION, http::header_value(&format!("/v2/{name}/blobs/{digest}")))
            .header(CONTENT_DIGEST, http::header_value(&digest.to_string())),
    )
}

fn progress(status: StatusCode, name: &str, id: &str, size: u64) -> Resp {
    http::empty(
        http::builder(status)
            .header(LOCATION, http::header_value(&session_url(name, id)))
            .header(RANGE, http::header_value(&http::upload_range(size)))
            .header(UPLOAD_UUID, http::header_value(id)),
    )
}

fn internal(e: ocil_layout::Error) -> ApiError {
    ApiError::internal(&e)
}

/// Append a request body to a session's blob, writing as the frames arrive. Returns how
/// many bytes were written, or why the body broke off.
async fn append(body: &mut Incoming, writer: &mut BlobWriter) -> Result<u64, (u64, ApiError)> {
    use std::io::Write as _;
    let mut n = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            (n, ApiError::new(Code::BlobUploadInvalid, format!("the request body broke off: {e}")))
        })?;
        if let Ok(data) = frame.into_data() {
            tokio::task::block_in_place(|| writer.write_all(&data)).map_err(|source| {
                let e = ocil_layout::Error::Io {
                    op: "write an upload into",
                    path: "blobs".into(),
                    source,
                };
                (n, internal(e))
            })?;
            n += data.len() as u64;
        }
    }
    Ok(n)
}

/// A `Content-Range` of the upload API: `start-end` (also `bytes start-end[/total]` and
/// `bytes=start-end`). `None` when absent; an error when unreadable.
fn content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(v) = headers.get(hyper::header::CONTENT_RANGE) else { return Ok(None) };
    let bad = || ApiError::new(Code::BlobUploadInvalid, "unreadable Content-Range");
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("bytes").map_or(s, |r| r.trim_start_matches([' ', '=']));
    let s = s.split('/').next().unwrap_or(s);
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: u64 = a.trim().parse().map_err(|_| bad())?;
    let b: u64 = b.trim().parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// `POST /v2/<name>/blobs/uploads/`.
pub(crate) async fn start(
    state: Arc<State>,
    name: String,
    query: &[(String, String)],
    mut body: Incoming,
) -> Result<Resp, ApiError> {
    if !state.push {
        return Err(not_enabled("--push"));
    }
    let st = state.clone();
    let n = name.clone();
    let repo = blocking(move || st.registry.repo_or_create(&n)).await?;
    if let Some(mount) = query_get(query, "mount") {
        let digest = parse_digest(mount)?;
        let from = query_get(query, "from").map(str::to_owned);
        let st = state.clone();
        let (r, d) = (repo.clone(), digest.clone());
        if blocking(move || mount_blob(&st, &r, &d, from.as_deref())).await? {
            return Ok(blob_created(&name, &digest));
        }
    } else if let Some(d) = query_get(query, "digest") {
        // The whole blob in this request.
        let digest = parse_digest(d)?;
        let layout = &repo.handle.layout;
        let mut w = tokio::task::block_in_place(|| layout.blob_writer_alg(digest.algorithm()))
            .map_err(internal)?;
        append(&mut body, &mut w).await.map_err(|(_, e)| e)?;
        tokio::task::block_in_place(|| w.finish_verified(&digest, None)).map_err(mismatch)?;
        return Ok(blob_created(&name, &digest));
    }
    if state.uploads.len() >= MAX_SESSIONS {
        return Err(ApiError::new(Code::TooManyRequests, "too many open uploads; try again later"));
    }
    let id = new_id();
    let upload = Upload {
        name: name.clone(),
        handle: repo.handle.clone(),
        writer: None,
        touched: Instant::now(),
        broken: None,
    };
    lock(&state.uploads.map).insert(id.clone(), Arc::new(tokio::sync::Mutex::new(upload)));
    Ok(progress(StatusCode::ACCEPTED, &name, &id, 0))
}

/// Make `digest` present in `repo` from `from` (or, without `from`, when `repo`'s layout
/// already holds it). Whether it is there now.
fn mount_blob(
    state: &State,
    repo: &Repo,
    digest: &Digest,
    from: Option<&str>,
) -> Result<bool, ApiError> {
    let target = &repo.handle.layout;
    if target.stat_blob(digest).map_err(internal)?.is_some() {
        // Already here (a single layout's repositories share one store).
        return Ok(from.is_none_or(|f| repo_name_problem(f).is_none()));
    }
    let Some(from) = from.filter(|f| repo_name_problem(f).is_none()) else { return Ok(false) };
    let Ok(source) = state.registry.repo(from) else { return Ok(false) };
    let src = &source.handle.layout;
    if src.stat_blob(digest).map_err(internal)?.is_none() {
        return Ok(false);
    }
    // A hard link where both are on one filesystem, else a verified copy.
    let sub = format!("blobs/{}", digest.algorithm());
    target.dir().create_dir_all(&sub).map_err(|source| {
        internal(ocil_layout::Error::Io { op: "create", path: sub.clone(), source })
    })?;
    let temp = format!("{sub}/{}", ocil_layout::temp_name("mount"));
    let linked = src.dir().hard_link(digest.blob_path(), target.dir(), &temp).is_ok()
        && match target.dir().rename(&temp, target.dir(), digest.blob_path()) {
            Ok(()) => true,
            Err(_) => {
                let _ = target.dir().remove_file(&temp);
                false
            }
        };
    if !linked {
        let size = src.stat_blob(digest).map_err(internal)?.unwrap_or(0);
        let reader = src.open_blob(digest, Some(size)).map_err(internal)?;
        let desc = ocil_layout::Descriptor::new(
            ocil_layout::MediaType::from("application/octet-stream"),
            digest.clone(),
            size,
        );
        target.put_blob_verified(reader, &desc).map_err(internal)?;
    }
    Ok(true)
}

fn mismatch(e: ocil_layout::Error) -> ApiError {
    match e {
        ocil_layout::Error::DigestMismatch { expected, found, .. } => ApiError::new(
            Code::DigestInvalid,
            format!("the uploaded bytes hash to `{found}`, not `{expected}`"),
        ),
        other => internal(other),
    }
}

/// Lock a session, checking it belongs to `name`.
async fn locked(
    slot: &Slot,
    id: &str,
    name: &str,
) -> Result<tokio::sync::OwnedMutexGuard<Upload>, ApiError> {
    let u = slot.clone().lock_owned().await;
    if u.name != name {
        return Err(ApiError::new(Code::BlobUploadUnknown, format!("no upload session `{id}`")));
    }
    Ok(u)
}

/// `GET` (and HEAD) of a session.
pub(crate) async fn status(state: Arc<State>, name: String, id: String) -> Result<Resp, ApiError> {
    let slot = state.uploads.get(&id)?;
    let u = locked(&slot, &id, &name).await?;
    Ok(progress(StatusCode::NO_CONTENT, &name, &id, u.size()))
}

/// `PATCH`: append a chunk.
pub(crate) async fn patch(
    state: Arc<State>,
    name: String,
    id: String,
    headers: &HeaderMap,
    mut body: Incoming,
) -> Result<Resp, ApiError> {
    if !state.push {
        return Err(not_enabled("--push"));
    }
    let slot = state.uploads.get(&id)?;
    let mut u = locked(&slot, &id, &name).await?;
    u.touched = Instant::now();
    if let Some(why) = &u.broken {
        return Err(ApiError::new(Code::BlobUploadInvalid, why.clone()));
    }
    let size = u.size();
    let range = content_range(headers)?;
    if let Some((start, end)) = range {
        if start != size {
            let e = ApiError::new(
                Code::RangeInvalid,
                format!("the chunk starts at {start}, the upload has {size} bytes"),
            );
            let mut r = http::error(&e, false);
            let h = r.headers_mut();
            h.insert(LOCATION, http::header_value(&session_url(&name, &id)));
            h.insert(RANGE, http::header_value(&http::upload_range(size)));
            h.insert(UPLOAD_UUID, http::header_value(&id));
            return Ok(r);
        }
        if declared_length(headers).is_some_and(|l| l != end - start + 1) {
            return Err(ApiError::new(
                Code::BlobUploadInvalid,
                "Content-Length is not the length Content-Range gives",
            ));
        }
    }
    if u.writer.is_none() {
        let layout = &u.handle.layout;
        let w = tokio::task::block_in_place(|| layout.blob_writer_alg(Algorithm::Sha256))
            .map_err(internal)?;
        u.writer = Some(w);
    }
    let Some(mut writer) = u.writer.take() else {
        return Err(ApiError::new(Code::Unknown, "no writer"));
    };
    let result = append(&mut body, &mut writer).await;
    u.writer = Some(writer);
    u.touched = Instant::now();
    let written = match result {
        Ok(n) => n,
        Err((n, e)) => {
            // What arrived stays: GET the session for its range and resume from there.
            let _ = n;
            return Err(e);
        }
    };
    if let Some((start, end)) = range
        && written != end - start + 1
    {
        let why = format!(
            "the chunk declared bytes {start}-{end} but carried {written}: start a new upload"
        );
        u.broken = Some(why.clone());
        return Err(ApiError::new(Code::BlobUploadInvalid, why));
    }
    Ok(progress(StatusCode::ACCEPTED, &name, &id, u.size()))
}

/// `PUT ?digest=`: the last chunk (if any), then close.
pub(crate) async fn finish(
    state: Arc<State>,
    name: String,
    id: String,
    query: &[(String, String)],
    headers: &HeaderMap,
    mut body: Incoming,
) -> Result<Resp, ApiError> {
    if !state.push {
        return Err(not_enabled("--push"));
    }
    let slot = state.uploads.get(&id)?;
    let mut u = locked(&slot, &id, &name).await?;
    u.touched = Instant::now();
    let digest = parse_digest(query_get(query, "digest").unwrap_or(""))?;
    if let Some(why) = &u.broken {
        return Err(ApiError::new(Code::BlobUploadInvalid, why.clone()));
    }
    let size = u.size();
    if let Some((start, _)) = content_range(headers)?
        && start != size
    {
        return Err(ApiError::new(
            Code::RangeInvalid,
            format!("the chunk starts at {start}, the upload has {size} bytes"),
        ));
    }
    let mut writer = match u.writer.take() {
        Some(w) => w,
        None => {
            let layout = &u.handle.layout;
            tokio::task::block_in_place(|| layout.blob_writer_alg(digest.algorithm()))
                .map_err(internal)?
        }
    };
    let result = append(&mut body, &mut writer).await;
    if let Err((_, e)) = result {
        u.writer = Some(writer);
        return Err(e);
    }
    // The session ends here, whatever the digest check says.
    drop(u);
    state.uploads.remove(&id);
    tokio::task::block_in_place(|| writer.finish_verified(&digest, None)).map_err(mismatch)?;
    Ok(blob_created(&name, &digest))
}

/// `DELETE`: cancel.
pub(crate) async fn cancel(state: Arc<State>, name: String, id: String) -> Result<Resp, ApiError> {
    let slot = state.uploads.get(&id)?;
    let u = locked(&slot, &id, &name).await?;
    drop(u);
    let gone = state.uploads.remove(&id);
    // The temp file goes with the writer.
    tokio::task::block_in_place(|| drop(gone));
    Ok(http::empty(http::builder(StatusCode::NO_CONTENT)))
}
