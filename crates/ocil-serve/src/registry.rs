//! The repositories ROOT serves, and each layout's shared state.
//!
//! ROOT is either one layout (served as one repository, and each full name its entries carry
//! as that repository) or a directory of layouts, each sub-path a repository, as zot lays
//! them out (`ROOT/team/app/` is `team/app`). A [`LayoutHandle`] holds what every request to
//! one layout shares: the current [`IndexView`], the manifests read so far, the queue of
//! `index.json` updates, and the referrers index.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use cap_std::fs::Dir;
use ocil_layout::{Digest, DigestMap, Index, Kind, LAYOUT_FILE, Layout, MediaType};
use serde_json::Value;

use crate::api::{ApiError, Code};
use crate::view::{IndexView, Scope, Stamp};
use crate::{Error, Result, names, referrers, writer};

/// The largest manifest or index read or accepted (the spec's 4 MiB).
pub(crate) const MANIFEST_LIMIT: u64 = 4 * 1024 * 1024;
/// Memory kept for manifests already read (their bytes never change).
const DOC_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// How deep and how many layouts a directory of layouts is searched for.
const SCAN_DEPTH: usize = 16;
const SCAN_MAX: usize = 100_000;

/// A manifest or index as stored, with the media type it is served as.
#[derive(Debug)]
pub(crate) struct Doc {
    pub(crate) bytes: Bytes,
    pub(crate) media_type: MediaType,
    pub(crate) value: Value,
}

impl Doc {
    pub(crate) fn kind(&self) -> Kind {
        self.media_type.kind()
    }
}

#[derive(Debug, Default)]
struct DocCache {
    docs: DigestMap<Arc<Doc>>,
    bytes: usize,
}

/// One layout, and what the requests to it share.
#[derive(Debug)]
pub(crate) struct LayoutHandle {
    pub(crate) layout: Layout,
    view: Mutex<Option<Arc<IndexView>>>,
    docs: Mutex<DocCache>,
    pub(crate) queue: Mutex<writer::Queue>,
    pub(crate) referrers: Mutex<referrers::RefIndex>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl LayoutHandle {
    pub(crate) fn new(layout: Layout) -> LayoutHandle {
        LayoutHandle {
            layout,
            view: Mutex::new(None),
            docs: Mutex::default(),
            queue: Mutex::default(),
            referrers: Mutex::default(),
        }
    }

    /// The current `index.json`, re-read when it changed on disk.
    pub(crate) fn view(&self) -> Result<Arc<IndexView>, ApiError> {
        let stamp = Stamp::of(&self.layout)?;
        let mut cur = lock(&self.view);
        if let Some(v) = cur.as_ref()
            && v.stamp == stamp
        {
            return Ok(v.clone());
        }
        let (index, _) = self.layout.read_index_lenient().map_err(|e| ApiError::internal(&e))?;
        let v = Arc::new(IndexView::new(index, stamp));
        *cur = Some(v.clone());
        Ok(v)
    }

    /// Install the index this server just wrote.
    pub(crate) fn set_view(&self, index: Index) {
        if let Ok(stamp) = Stamp::of(&self.layout) {
            *lock(&self.view) = Some(Arc::new(IndexView::new(index, stamp)));
        }
    }

    /// The manifest or index stored as `digest`: `None` when the blob is absent, larger
    /// than [`MANIFEST_LIMIT`], or not a manifest or index. Its media type is its own
    /// `mediaType`, else `hint` (the descriptor that named it), else told by its shape.
    pub(crate) fn doc(
        &self,
        digest: &Digest,
        hint: Option<&MediaType>,
    ) -> Result<Option<Arc<Doc>>, ApiError> {
        let cached = lock(&self.docs).docs.get(digest).cloned();
        if let Some(doc) = cached {
            // gc may have removed it since.
            if self.layout.stat_blob(digest).map_err(|e| ApiError::internal(&e))?.is_some() {
                return Ok(Some(doc));
            }
            self.forget_doc(digest);
            return Ok(None);
        }
        let Some((file, size)) =
            self.layout.open_blob_file(digest).map_err(|e| ApiError::internal(&e))?
        else {
            return Ok(None);
        };
        if size > MANIFEST_LIMIT {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(size as usize);
        let path = digest.blob_path();
        file.take(MANIFEST_LIMIT + 1).read_to_end(&mut bytes).map_err(|source| {
            ApiError::internal(&ocil_layout::Error::Io { op: "read", path: path.clone(), source })
        })?;
        let found = digest.algorithm().digest_of(&bytes);
        if &found != digest {
            let e = ocil_layout::Error::DigestMismatch { path, expected: digest.clone(), found };
            return Err(ApiError::internal(&e));
        }
        let Some(doc) = parse_doc(Bytes::from(bytes), hint) else { return Ok(None) };
        let doc = Arc::new(doc);
        let mut cache = lock(&self.docs);
        if cache.bytes + doc.bytes.len() > DOC_CACHE_BYTES {
            cache.docs.clear();
            cache.bytes = 0;
        }
        cache.bytes += doc.bytes.len();
        cache.docs.insert(digest.clone(), doc.clone());
        Ok(Some(doc))
    }

    /// Drop a removed manifest from memory.
    pub(crate) fn forget_doc(&self, digest: &Digest) {
        let mut cache = lock(&self.docs);
        if let Some(d) = cache.docs.remove(digest) {
            cache.bytes -= d.bytes.len();
        }
    }
}

/// Read bytes as a manifest or index (see [`LayoutHandle::doc`]).
pub(crate) fn parse_doc(bytes: Bytes, hint: Option<&MediaType>) -> Option<Doc> {
    if !ocil_layout::walk::opens_json_object(&bytes) {
        return None;
    }
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let own = value.get("mediaType").and_then(Value::as_str).map(MediaType::from);
    let media_type = match own {
        Some(t) => t,
        None => match hint.filter(|h| h.kind().is_walkable()) {
            Some(h) => h.clone(),
            None => match ocil_layout::walk::kind_by_shape(&value)? {
                Kind::Index => MediaType::OciIndex,
                _ => MediaType::OciManifest,
            },
        },
    };
    media_type.kind().is_walkable().then_some(Doc { bytes, media_type, value })
}

/// A repository a request names: the layout behind it and which of its entries it sees.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub(crate) handle: Arc<LayoutHandle>,
    pub(crate) scope: Scope,
}

/// What ROOT is.
#[derive(Debug)]
pub(crate) enum Registry {
    /// One layout.
    Single { main: String, handle: Arc<LayoutHandle> },
    /// A directory of layouts.
    Multi { root: Dir, repos: RwLock<BTreeMap<String, Arc<LayoutHandle>>>, create: Mutex<()> },
}

impl Registry {
    /// Open ROOT (`label` is how the caller names it, `dir_name` its own name: the default
    /// repository name of a single layout).
    pub(crate) fn open(
        root: Dir,
        label: &str,
        dir_name: &str,
        name: Option<&str>,
    ) -> Result<Registry> {
        if root.exists(LAYOUT_FILE) {
            let main = name.unwrap_or(dir_name).to_owned();
            if let Some(reason) = names::repo_name_problem(&main) {
                let reason = if name.is_some() {
                    reason
                } else {
                    "the directory's name is not a repository name: give one with --name"
                };
                return Err(Error::Name { name: main, reason });
            }
            let layout = Layout::open(root)?;
            return Ok(Registry::Single { main, handle: Arc::new(LayoutHandle::new(layout)) });
        }
        if name.is_some() {
            return Err(Error::Root {
                root: label.to_owned(),
                reason: "--name is for a single layout, and this is a directory of layouts \
                         (no `oci-layout` in it)"
                    .into(),
            });
        }
        let mut repos = BTreeMap::new();
        scan(&root, "", 0, &mut |name, dir| {
            if let Ok(layout) = Layout::open(dir) {
                repos.insert(name.to_owned(), Arc::new(LayoutHandle::new(layout)));
            }
        })
        .map_err(|e| Error::Root { root: label.to_owned(), reason: e.to_string() })?;
        Ok(Registry::Multi { root, repos: RwLock::new(repos), create: Mutex::new(()) })
    }

    /// The repository `name`, when it exists. In a single layout every name exists for
    /// blobs (they share one store); tags are per scope.
    pub(crate) fn repo(&self, name: &str) -> Result<Repo, ApiError> {
        match self {
            Registry::Single { main, handle } => {
                let scope = if name == main { Scope::Plain } else { Scope::Full(name.to_owned()) };
                Ok(Repo { handle: handle.clone(), scope })
            }
            Registry::Multi { root, repos, .. } => {
                if let Some(h) = repos.read().unwrap_or_else(|e| e.into_inner()).get(name) {
                    return Ok(Repo { handle: h.clone(), scope: Scope::Plain });
                }
                // A layout put there since (ocil copy, import): open it now.
                let unknown =
                    || ApiError::new(Code::NameUnknown, format!("no repository `{name}`"));
                let dir = root.open_dir(name).map_err(|_| unknown())?;
                if !dir.exists(LAYOUT_FILE) {
                    return Err(unknown());
                }
                let layout = Layout::open(dir).map_err(|e| ApiError::internal(&e))?;
                let h = Arc::new(LayoutHandle::new(layout));
                let mut w = repos.write().unwrap_or_else(|e| e.into_inner());
                let h = w.entry(name.to_owned()).or_insert(h).clone();
                Ok(Repo { handle: h, scope: Scope::Plain })
            }
        }
    }

    /// The repository `name`, created (an empty layout) in a directory of layouts when it
    /// does not exist yet: for pushes.
    pub(crate) fn repo_or_create(&self, name: &str) -> Result<Repo, ApiError> {
        let Registry::Multi { root, create, .. } = self else { return self.repo(name) };
        match self.repo(name) {
            Err(e) if e.code == Code::NameUnknown => {}
            other => return other,
        }
        let _one = lock(create);
        match self.repo(name) {
            Err(e) if e.code == Code::NameUnknown => {}
            other => return other,
        }
        let denied = |why: String| ApiError::new(Code::Denied, why);
        // Never inside a layout's own files.
        let comps: Vec<&str> = name.split('/').collect();
        for i in 1..comps.len() {
            let parent = comps[..i].join("/");
            if root.exists(format!("{parent}/{LAYOUT_FILE}"))
                && matches!(comps[i], "blobs" | "index.json" | "oci-layout")
            {
                return Err(denied(format!("`{name}` would be inside the layout `{parent}`")));
            }
        }
        let (parent, last) = match name.rsplit_once('/') {
            Some((p, l)) => (Some(p), l),
            None => (None, name),
        };
        let internal = |e: std::io::Error| {
            let path = parent.unwrap_or(".").to_owned();
            ApiError::internal(&ocil_layout::Error::Io { op: "create", path, source: e })
        };
        let parent_dir = match parent {
            Some(p) => {
                root.create_dir_all(p).map_err(internal)?;
                root.open_dir(p).map_err(internal)?
            }
            None => root.try_clone().map_err(internal)?,
        };
        let made = match parent_dir.open_dir(last) {
            // A directory of other repositories (`a` beside `a/b`): the layout goes in it.
            Ok(dir) => Layout::create(dir).map(drop),
            Err(_) => ocil_layout::atomic::open_or_create(&parent_dir, last).map(drop),
        };
        made.map_err(|e| {
            denied(format!(
                "cannot make a layout for `{name}`: {}",
                ocil_layout::walk::error_chain(&e)
            ))
        })?;
        self.repo(name)
    }

    /// Every repository, sorted.
    pub(crate) fn catalog(&self) -> Result<Vec<String>, ApiError> {
        match self {
            Registry::Single { main, handle } => {
                let view = handle.view()?;
                let mut out: Vec<String> = view.full_repos().cloned().collect();
                out.push(main.clone());
                out.sort();
                out.dedup();
                Ok(out)
            }
            Registry::Multi { root, repos, .. } => {
                // Layouts put there since are found again.
                let mut found = Vec::new();
                let _ = scan(root, "", 0, &mut |name, _| found.push(name.to_owned()));
                let known = repos.read().unwrap_or_else(|e| e.into_inner());
                found.extend(
                    known.keys().filter(|k| root.exists(format!("{k}/{LAYOUT_FILE}"))).cloned(),
                );
                found.sort();
                found.dedup();
                Ok(found)
            }
        }
    }

    /// What is served, for the caller to print: `(repository, what)`.
    pub(crate) fn summary(&self) -> Vec<(String, String)> {
        match self {
            Registry::Single { main, handle } => {
                let mut out = vec![(main.clone(), "the layout".to_owned())];
                if let Ok(v) = handle.view() {
                    for r in v.full_repos() {
                        if r != main {
                            out.push((r.clone(), "its entries of that full name".to_owned()));
                        }
                    }
                }
                out
            }
            Registry::Multi { repos, .. } => repos
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .map(|k| (k.clone(), format!("the layout `{k}`")))
                .collect(),
        }
    }
}

/// Find layouts under `dir` (never following symlinks, skipping hidden directories and a
/// layout's `blobs`), calling `found` with each one's repository name and directory.
fn scan(
    dir: &Dir,
    prefix: &str,
    depth: usize,
    found: &mut dyn FnMut(&str, Dir),
) -> std::io::Result<usize> {
    if depth > SCAN_DEPTH {
        return Ok(0);
    }
    let mut count = 0;
    let is_layout = dir.exists(LAYOUT_FILE);
    let mut subs: Vec<String> = Vec::new();
    for entry in dir.entries()? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || (is_layout && name == "blobs") {
            continue;
        }
        subs.push(name);
    }
    subs.sort();
    for name in subs {
        let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        if names::repo_name_problem(&path).is_some() {
            continue;
        }
        let Ok(sub) = dir.open_dir(&name) else { continue };
        if sub.exists(LAYOUT_FILE) {
            if let Ok(d) = sub.try_clone() {
                found(&path, d);
                count += 1;
            }
        }
        count += scan(&sub, &path, depth + 1, found)?;
        if count >= SCAN_MAX {
            break;
        }
    }
    Ok(count)
}
