//! The graph walk that fsck, gc, ls, export and copy share.
//!
//! From `index.json` (or any descriptors) through OCI indexes and Docker manifest lists
//! (nested), OCI and Docker manifests (config, layers, `subject`), with a visited set, so
//! repeated digests and hostile self-references terminate. Problems are collected with the
//! path from `index.json` to them; the walk itself only fails on I/O it cannot attribute.
//!
//! Media types: the descriptor's type is the expectation; when the document's own
//! `mediaType` differs, the expectation wins and a `MEDIA_TYPE_MISMATCH` warning is reported
//! (SPEC-NOTES, "expected vs found"). Descriptors whose type is unknown (or not an image
//! type, like `application/vnd.oci.descriptor.v1+json`) are leaves, unless their blob is a
//! small JSON manifest or index, which is then followed (conservative marking).
//! A manifest carrying `manifests`, or an index carrying `config`/`layers`, is rejected as a
//! polyglot (CVE-2021-41190).

use std::collections::HashMap;

use serde_json::Value;

use crate::{
    Descriptor, Digest, DigestMap, DigestSet, Error, Kind, Layout, MediaType, Result, Store,
};

/// Cap on blobs of unknown type that the walk sniffs for a manifest or index.
pub const SNIFF_LIMIT: u64 = 4 * 1024 * 1024;

/// How a node was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// An `index.json` entry (or a root given by the caller).
    Entry,
    /// A child of an index.
    Child,
    /// A manifest's config.
    Config,
    /// A manifest's layer.
    Layer,
    /// A document's `subject`.
    Subject,
    /// A blob of an old artifact manifest (`blobs`), or a schema1 layer.
    Blob,
}

impl Role {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Entry => "entry",
            Role::Child => "manifest",
            Role::Config => "config",
            Role::Layer => "layer",
            Role::Subject => "subject",
            Role::Blob => "blob",
        }
    }
}

/// What a node was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// An index or manifest list.
    Index,
    /// A manifest.
    Manifest,
    /// A Docker schema1 manifest (only its layers are followed).
    Schema1,
}

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth knowing; the layout is still valid.
    Warning,
    /// The layout is broken or incomplete.
    Error,
}

/// One problem found by the walk (or by fsck).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// How bad.
    pub severity: Severity,
    /// A stable code, e.g. `BLOB_MISSING`.
    pub code: &'static str,
    /// The blob it is about.
    pub digest: Option<Digest>,
    /// From `index.json` to the blob: `index.json > v1 sha256:ab… > layer sha256:cd…`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// Whether this problem means part of the graph could not be read, so a gc must not
    /// trust its mark phase.
    pub fn blocks_gc(&self) -> bool {
        matches!(
            self.code,
            "INVALID_JSON"
                | "INVALID_DOCUMENT"
                | "POLYGLOT"
                | "DOCUMENT_TOO_LARGE"
                | "INVALID_DESCRIPTOR"
                | "UNREADABLE"
        )
    }
}

/// A blob reached by the walk.
#[derive(Debug, Clone)]
pub struct Node {
    /// Its digest.
    pub digest: Digest,
    /// The media type of the descriptor it was first reached by.
    pub media_type: MediaType,
    /// The size that descriptor gives.
    pub size: u64,
    /// How it was first reached.
    pub role: Role,
    // The node (position in `Walk::nodes`) it was first reached from; `None` for entries.
    parent: Option<u32>,
    /// Which root (index into the roots given) first reached it.
    pub root: u32,
    /// Set when it was read and followed as a document.
    pub doc: Option<DocKind>,
    /// Whether the blob is in the layout (`None` when not checked).
    pub present: Option<bool>,
}

/// A document the walk read and followed.
#[derive(Debug, Clone)]
pub struct Document {
    /// Its digest.
    pub digest: Digest,
    /// What it was read as.
    pub kind: DocKind,
    /// The media type it was interpreted with.
    pub media_type: MediaType,
    /// Its children, in document order.
    pub children: Vec<(Role, Descriptor)>,
    /// The raw bytes, when [`WalkOptions::keep_bytes`] is set.
    pub bytes: Option<Vec<u8>>,
}

/// How to check leaves (configs, layers, unknown blobs).
#[derive(Debug, Clone, Copy)]
pub enum LeafCheck<'a> {
    /// Don't look at leaves at all.
    None,
    /// `stat` each leaf.
    Stat,
    /// Look them up in a listing of the store: digest -> size.
    Listing(&'a HashMap<Digest, u64>),
    /// Presence only, from the names in the store (sizes are not checked).
    Names(&'a DigestSet<'a>),
    /// Presence only, checked after the walk by [`Walk::settle_leaves`] against the names
    /// in the store, so that listing the store can run while the walk reads documents.
    Deferred,
}

impl LeafCheck<'_> {
    /// `Some(Some(size))` present with a known size, `Some(None)` absent, `None` unknown
    /// (stat needed, or present with an unknown size).
    fn lookup(&self, digest: &Digest) -> Option<Option<u64>> {
        match self {
            LeafCheck::Listing(map) => Some(map.get(digest).copied()),
            LeafCheck::Names(names) if !names.contains(digest) => Some(None),
            _ => None,
        }
    }
}

/// Walk options.
#[derive(Debug, Clone, Copy)]
pub struct WalkOptions<'a> {
    /// Follow `subject` descriptors (a live referrer keeps its subject).
    pub follow_subject: bool,
    /// Read blobs of unknown media type that might be a manifest or index.
    pub sniff_unknown: bool,
    /// How to check leaves.
    pub leaves: LeafCheck<'a>,
    /// Keep the raw bytes of every document read.
    pub keep_bytes: bool,
    /// Record the documents read ([`Walk::documents`]); gc does not need them.
    pub keep_documents: bool,
}

impl Default for WalkOptions<'_> {
    fn default() -> Self {
        WalkOptions {
            follow_subject: true,
            sniff_unknown: true,
            leaves: LeafCheck::Stat,
            keep_bytes: false,
            keep_documents: true,
        }
    }
}

/// The result of a walk.
#[derive(Debug, Clone, Default)]
pub struct Walk {
    // Every blob reached, in walk order (first reach wins), and where each is. Nodes refer to
    // their parent by position, which keeps a walk over 100,000s of blobs small.
    nodes: Vec<Node>,
    index: DigestMap<u32>,
    /// Documents read, in walk order.
    pub documents: Vec<Document>,
    /// Problems found.
    pub problems: Vec<Problem>,
    /// Labels of the roots (`[0] v1`, ...).
    pub root_labels: Vec<String>,
    /// Leaves left for [`Walk::settle_leaves`] ([`LeafCheck::Deferred`]): the node's
    /// position, how it was reached, and whether its descriptor embeds its data.
    deferred: Vec<(u32, Role, bool)>,
}

impl Walk {
    /// The node of a reached digest.
    pub fn get(&self, digest: &Digest) -> Option<&Node> {
        self.index.get(digest).map(|&i| &self.nodes[i as usize])
    }

    fn get_mut(&mut self, digest: &Digest) -> Option<&mut Node> {
        self.index.get(digest).map(|&i| &mut self.nodes[i as usize])
    }

    /// Whether the walk reached `digest`.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.index.contains_key(digest)
    }

    /// The nodes, in walk order.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter()
    }

    /// The nodes, in walk order, consuming the walk.
    pub fn into_nodes(self) -> Vec<Node> {
        self.nodes
    }

    /// The nodes, the map from digest to position in them, and the problems, consuming the
    /// walk (gc keeps the map as its live set instead of copying it).
    pub fn into_parts(self) -> (Vec<Node>, DigestMap<u32>, Vec<Problem>) {
        (self.nodes, self.index, self.problems)
    }

    /// How many blobs were reached.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether nothing was reached.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The node a node was first reached from.
    pub fn parent(&self, node: &Node) -> Option<&Node> {
        node.parent.map(|i| &self.nodes[i as usize])
    }

    /// The path from `index.json` to a reached digest.
    pub fn path_to(&self, digest: &Digest) -> String {
        let mut steps = Vec::new();
        let mut cur = self.get(digest);
        // Parents are always reached before their children, so this ends; the bound is a
        // second guard.
        let mut hops = 0;
        while let Some(node) = cur {
            if hops > self.nodes.len() {
                break;
            }
            hops += 1;
            if node.role == Role::Entry {
                steps.push(format!(
                    "{} {}",
                    self.root_labels.get(node.root as usize).map_or("entry", |s| s),
                    node.digest.short()
                ));
            } else {
                steps.push(format!("{} {}", node.role.as_str(), node.digest.short()));
            }
            cur = self.parent(node);
        }
        steps.push("index.json".into());
        steps.reverse();
        steps.join(" > ")
    }

    /// Whether any problem is an error.
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// The reached digests.
    pub fn digests(&self) -> impl Iterator<Item = &Digest> {
        self.nodes.iter().map(|n| &n.digest)
    }

    /// Check the leaves a [`LeafCheck::Deferred`] walk left, against the names in the store:
    /// the same presence and problems as [`LeafCheck::Names`] gives during the walk.
    pub fn settle_leaves(&mut self, names: &DigestSet<'_>) {
        for (i, role, embedded) in std::mem::take(&mut self.deferred) {
            let node = &mut self.nodes[i as usize];
            let present = names.contains(&node.digest);
            node.present = Some(present);
            if !present && !embedded {
                let (digest, media_type) = (node.digest.clone(), node.media_type.clone());
                self.missing(&digest, &media_type, role);
            }
        }
    }

    /// A problem at a reached digest, with the path to it.
    fn push_problem(
        &mut self,
        severity: Severity,
        code: &'static str,
        digest: &Digest,
        message: String,
    ) {
        let path = self.path_to(digest);
        self.problems.push(Problem { severity, code, digest: Some(digest.clone()), path, message });
    }

    /// The problem of a missing blob (none for a layer that may be absent).
    fn missing(&mut self, digest: &Digest, media_type: &MediaType, role: Role) {
        if let Kind::Layer { distributable: false, .. } = media_type.kind() {
            return; // Nondistributable and foreign layers are allowed to be absent.
        }
        if role == Role::Subject {
            self.push_problem(
                Severity::Warning,
                "SUBJECT_MISSING",
                digest,
                format!("subject `{digest}` is not in the layout"),
            );
            return;
        }
        self.push_problem(
            Severity::Error,
            "BLOB_MISSING",
            digest,
            format!("{} `{digest}` is missing", role.as_str()),
        );
    }
}

/// A label for a root: `[i] tag` or `[i]`.
pub fn root_label(i: usize, d: &Descriptor) -> String {
    match d.ref_name() {
        Some(t) => format!("[{i}] {t}"),
        None => format!("[{i}]"),
    }
}

struct Walker<'a, S: Store + ?Sized> {
    store: &'a S,
    opts: WalkOptions<'a>,
    walk: Walk,
}

/// Whether bytes (a blob's head, or the whole blob) open a JSON object: the first byte that
/// is not blank is `{`. What does not is never read whole as a possible document.
pub fn opens_json_object(bytes: &[u8]) -> bool {
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// An index or a manifest told by its shape, for a document without a usable media type:
/// an index has a `manifests` array and no `config`; a manifest has a `config` object and a
/// `layers` array (an image config has a `config` object too, the runtime config, but no
/// `layers`).
pub fn kind_by_shape(v: &Value) -> Option<Kind> {
    if v.get("manifests").is_some_and(Value::is_array) && v.get("config").is_none() {
        Some(Kind::Index)
    } else if v.get("config").is_some_and(Value::is_object)
        && v.get("layers").is_some_and(Value::is_array)
    {
        Some(Kind::Manifest)
    } else {
        None
    }
}

/// Walk from the given roots (usually `index.json`'s `manifests`).
pub fn walk<S: Store + ?Sized>(store: &S, roots: &[Descriptor], opts: WalkOptions<'_>) -> Walk {
    let mut w = Walker { store, opts, walk: Walk::default() };
    w.walk.root_labels = roots.iter().enumerate().map(|(i, d)| root_label(i, d)).collect();
    // Roots are taken one at a time (a layout may have 10,000s of entries), and each is
    // walked depth first before the next.
    let mut stack: Vec<(Descriptor, Role, Option<u32>, u32)> = Vec::new();
    let mut next_root = roots.iter().enumerate();
    loop {
        let Some((desc, role, parent, root)) = stack
            .pop()
            .or_else(|| next_root.next().map(|(i, d)| (d.clone(), Role::Entry, None, i as u32)))
        else {
            break;
        };
        if w.walk.contains(&desc.digest) {
            let parent_digest = parent.map(|p| w.walk.nodes[p as usize].digest.clone());
            w.recheck_size(&desc, role, parent_digest.as_ref());
            continue;
        }
        let position = w.walk.nodes.len() as u32;
        w.walk.index.insert(desc.digest.clone(), position);
        w.walk.nodes.push(Node {
            digest: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            size: desc.size,
            role,
            parent,
            root,
            doc: None,
            present: None,
        });
        let children = w.visit(&desc, role);
        for (child_role, child) in children.into_iter().rev() {
            if w.walk.contains(&child.digest) {
                w.recheck_size(&child, child_role, Some(&desc.digest));
                continue;
            }
            stack.push((child, child_role, Some(position), root));
        }
    }
    w.walk
}

enum Content {
    Bytes(Vec<u8>),
    Missing,
    Failed,
}

/// The fields of a descriptor the walk needs. Parsing only these (no flattened map of
/// unknown keys, no annotations) is several times faster than a full [`Descriptor`], which
/// matters on layouts with 100,000s of descriptors.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Lite {
    media_type: MediaType,
    digest: Digest,
    size: u64,
    #[serde(default)]
    data: Option<String>,
}

impl<S: Store + ?Sized> Walker<'_, S> {
    /// A child descriptor: in full when documents are kept (callers read platforms and
    /// annotations), else only what the walk needs.
    fn parse_child(&self, v: &Value) -> std::result::Result<Descriptor, serde_json::Error> {
        use serde::Deserialize as _;
        if self.opts.keep_documents {
            Descriptor::deserialize(v)
        } else {
            let l = Lite::deserialize(v)?;
            let mut d = Descriptor::new(l.media_type, l.digest, l.size);
            d.data = l.data;
            Ok(d)
        }
    }

    fn problem(
        &mut self,
        severity: Severity,
        code: &'static str,
        digest: &Digest,
        message: String,
    ) {
        self.walk.push_problem(severity, code, digest, message);
    }

    /// A digest reached again through another descriptor: the first visit checked the size
    /// of the first descriptor only, so check this one's size against the stored blob too
    /// (two manifests may name one config with different sizes; at most one is right).
    fn recheck_size(&mut self, desc: &Descriptor, role: Role, parent: Option<&Digest>) {
        let Some(node) = self.walk.get(&desc.digest) else { return };
        if node.size == desc.size || node.present == Some(false) {
            return;
        }
        let found = match self.opts.leaves {
            LeafCheck::None | LeafCheck::Names(_) | LeafCheck::Deferred => return,
            LeafCheck::Listing(map) => map.get(&desc.digest).copied(),
            LeafCheck::Stat => self.store.stat_blob(&desc.digest).ok().flatten(),
        };
        if let Some(found) = found
            && found != desc.size
        {
            let from = parent.map_or_else(|| "index.json".to_owned(), |p| format!("`{p}`"));
            self.problem(
                Severity::Error,
                "BLOB_SIZE_MISMATCH",
                &desc.digest,
                format!(
                    "{} `{}` (as named by {from}): descriptor size {}, blob has {found} bytes",
                    role.as_str(),
                    desc.digest,
                    desc.size
                ),
            );
        }
    }

    fn set_present(&mut self, digest: &Digest, present: bool) {
        if let Some(n) = self.walk.get_mut(digest) {
            n.present = Some(present);
        }
    }

    /// Visit one node; return the children to walk.
    fn visit(&mut self, desc: &Descriptor, role: Role) -> Vec<(Role, Descriptor)> {
        let digest = &desc.digest;
        if let Some(Err(reason)) = desc.embedded_data() {
            self.problem(Severity::Error, "DATA_MISMATCH", digest, reason);
        }
        let kind = desc.media_type.kind();
        match kind {
            Kind::Index | Kind::Manifest => self.visit_document(desc, role, kind, false),
            Kind::Legacy
                if matches!(
                    desc.media_type,
                    MediaType::DockerSchema1Manifest | MediaType::DockerSchema1SignedManifest
                ) =>
            {
                self.problem(
                    Severity::Warning,
                    "LEGACY_MEDIA_TYPE",
                    digest,
                    format!(
                        "`{}`: {}",
                        desc.media_type,
                        desc.media_type.legacy_note().unwrap_or("legacy")
                    ),
                );
                self.visit_document(desc, role, Kind::Legacy, false)
            }
            Kind::Legacy => {
                self.problem(
                    Severity::Warning,
                    "LEGACY_MEDIA_TYPE",
                    digest,
                    format!(
                        "`{}`: {}",
                        desc.media_type,
                        desc.media_type.legacy_note().unwrap_or("legacy")
                    ),
                );
                self.check_leaf(desc, role);
                Vec::new()
            }
            Kind::Unknown | Kind::Descriptor | Kind::LayoutHeader
                if self.opts.sniff_unknown && desc.size <= SNIFF_LIMIT =>
            {
                self.visit_document(desc, role, kind, true)
            }
            _ => {
                if matches!(role, Role::Entry | Role::Child)
                    && !matches!(kind, Kind::Index | Kind::Manifest)
                {
                    self.problem(
                        Severity::Warning,
                        "UNKNOWN_MEDIA_TYPE",
                        digest,
                        format!("`{}` in manifest position is not a manifest or index type; not followed", desc.media_type),
                    );
                }
                self.check_leaf(desc, role);
                Vec::new()
            }
        }
    }

    fn missing(&mut self, desc: &Descriptor, role: Role) {
        self.set_present(&desc.digest, false);
        self.walk.missing(&desc.digest, &desc.media_type, role);
    }

    fn check_leaf(&mut self, desc: &Descriptor, role: Role) {
        let size = match self.opts.leaves {
            LeafCheck::None => return,
            LeafCheck::Deferred => {
                if let Some(&i) = self.walk.index.get(&desc.digest) {
                    let embedded = desc.embedded_data().is_some_and(|r| r.is_ok());
                    self.walk.deferred.push((i, role, embedded));
                }
                return;
            }
            LeafCheck::Listing(map) => map.get(&desc.digest).copied(),
            LeafCheck::Names(names) => {
                // Presence only: pretend the size matches.
                names.contains(&desc.digest).then_some(desc.size)
            }
            LeafCheck::Stat => match self.store.stat_blob(&desc.digest) {
                Ok(s) => s,
                Err(e) => {
                    self.problem(Severity::Error, "UNREADABLE", &desc.digest, error_chain(&e));
                    return;
                }
            },
        };
        match size {
            None if desc.embedded_data().is_some_and(|r| r.is_ok()) => {
                self.set_present(&desc.digest, false)
            }
            None => self.missing(desc, role),
            Some(found) => {
                self.set_present(&desc.digest, true);
                if found != desc.size {
                    self.problem(
                        Severity::Error,
                        "BLOB_SIZE_MISMATCH",
                        &desc.digest,
                        format!(
                            "{} `{}`: descriptor size {}, blob has {found} bytes",
                            role.as_str(),
                            desc.digest,
                            desc.size
                        ),
                    );
                }
            }
        }
    }

    fn read(&mut self, desc: &Descriptor, role: Role, sniffing: bool) -> Content {
        let digest = &desc.digest;
        let path = digest.blob_path();
        let limit = if sniffing { SNIFF_LIMIT } else { crate::JSON_LIMIT };
        if sniffing {
            // Only read what exists and starts like a JSON object.
            let size = match self.opts.leaves.lookup(digest) {
                Some(known) => known,
                None => self.store.stat_blob(digest).ok().flatten(),
            };
            match size {
                None => return Content::Missing,
                Some(s) if s > limit => {
                    self.set_present(digest, true);
                    self.leaf_size_check(desc, role, s);
                    return Content::Failed;
                }
                Some(s) => {
                    // Look at the first bytes before reading a possibly large blob whole.
                    let head = self.store.peek_blob(digest, 64).unwrap_or_default();
                    if !opens_json_object(&head) {
                        self.set_present(digest, true);
                        self.leaf_size_check(desc, role, s);
                        return Content::Failed;
                    }
                }
            }
        }
        match self.store.read_blob_unverified(digest, limit) {
            Ok(bytes) => {
                self.set_present(digest, true);
                Content::Bytes(bytes)
            }
            Err(e) if e.is_not_found() => match desc.embedded_data() {
                Some(Ok(bytes)) => Content::Bytes(bytes),
                _ => Content::Missing,
            },
            Err(Error::TooLarge { size, limit, .. }) => {
                if !sniffing {
                    self.set_present(digest, true);
                    self.problem(
                        Severity::Error,
                        "DOCUMENT_TOO_LARGE",
                        digest,
                        format!("`{path}` is {size} bytes, over the {limit}-byte limit for JSON documents"),
                    );
                }
                Content::Failed
            }
            Err(e) => {
                self.problem(Severity::Error, "UNREADABLE", digest, error_chain(&e));
                Content::Failed
            }
        }
    }

    fn visit_document(
        &mut self,
        desc: &Descriptor,
        role: Role,
        expected: Kind,
        sniffing: bool,
    ) -> Vec<(Role, Descriptor)> {
        let digest = desc.digest.clone();
        let bytes = match self.read(desc, role, sniffing) {
            Content::Bytes(b) => b,
            Content::Missing if sniffing => {
                if matches!(role, Role::Entry | Role::Child) {
                    self.problem(
                        Severity::Warning,
                        "UNKNOWN_MEDIA_TYPE",
                        &digest,
                        format!(
                            "`{}` in manifest position is not a manifest or index type",
                            desc.media_type
                        ),
                    );
                }
                self.missing(desc, role);
                return Vec::new();
            }
            Content::Missing => {
                self.missing(desc, role);
                return Vec::new();
            }
            Content::Failed => return Vec::new(),
        };
        if sniffing && !opens_json_object(&bytes) {
            self.leaf_size_check(desc, role, bytes.len() as u64);
            return Vec::new();
        }
        let found_digest = digest.algorithm().digest_of(&bytes);
        if found_digest != digest {
            self.problem(
                Severity::Error,
                "DIGEST_MISMATCH",
                &digest,
                format!("`{}` hashes to `{found_digest}`", digest.blob_path()),
            );
        }
        self.leaf_size_check(desc, role, bytes.len() as u64);
        let value: Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) if !sniffing => {
                self.problem(
                    Severity::Error,
                    "INVALID_JSON",
                    &digest,
                    format!("not valid JSON: {e}"),
                );
                return Vec::new();
            }
            Err(_) => return Vec::new(),
        };
        let Some(obj) = value.as_object() else {
            if !sniffing {
                self.problem(
                    Severity::Error,
                    "INVALID_DOCUMENT",
                    &digest,
                    "not a JSON object".into(),
                );
            }
            return Vec::new();
        };
        let found_type = obj.get("mediaType").and_then(Value::as_str).map(MediaType::from);
        let (kind, media_type) = if sniffing {
            let by_type = found_type.as_ref().map(|t| t.kind()).filter(|k| k.is_walkable());
            let by_shape = kind_by_shape(&value);
            match by_type.or(by_shape) {
                Some(k) => {
                    self.problem(
                        Severity::Warning,
                        "MEDIA_TYPE_MISMATCH",
                        &digest,
                        format!(
                            "descriptor says `{}` but the blob is {}; followed",
                            desc.media_type,
                            match (&found_type, k) {
                                (Some(t), _) => format!("`{t}`"),
                                (None, Kind::Index) => "an index by its shape".into(),
                                _ => "a manifest by its shape".into(),
                            }
                        ),
                    );
                    (k, found_type.clone().unwrap_or(desc.media_type.clone()))
                }
                None => return Vec::new(),
            }
        } else {
            match &found_type {
                Some(t) if t != &desc.media_type => self.problem(
                    Severity::Warning,
                    "MEDIA_TYPE_MISMATCH",
                    &digest,
                    format!(
                        "descriptor says `{}` but the blob says `{t}`; read as `{}`",
                        desc.media_type, desc.media_type
                    ),
                ),
                None if expected != Kind::Legacy => self.problem(
                    Severity::Warning,
                    "MISSING_MEDIA_TYPE",
                    &digest,
                    format!("document has no `mediaType`; read as `{}`", desc.media_type),
                ),
                _ => {}
            }
            (expected, desc.media_type.clone())
        };
        self.follow(desc, role, kind, media_type, obj, bytes)
    }

    fn leaf_size_check(&mut self, desc: &Descriptor, role: Role, found: u64) {
        if found != desc.size {
            self.problem(
                Severity::Error,
                "BLOB_SIZE_MISMATCH",
                &desc.digest,
                format!(
                    "{} `{}`: descriptor size {}, blob has {found} bytes",
                    role.as_str(),
                    desc.digest,
                    desc.size
                ),
            );
        }
    }

    fn follow(
        &mut self,
        desc: &Descriptor,
        _role: Role,
        kind: Kind,
        media_type: MediaType,
        obj: &serde_json::Map<String, Value>,
        bytes: Vec<u8>,
    ) -> Vec<(Role, Descriptor)> {
        let digest = desc.digest.clone();
        let mut children = Vec::new();
        let bad = |w: &mut Self, at: &str, e: String| {
            w.problem(
                Severity::Error,
                "INVALID_DESCRIPTOR",
                &digest,
                format!("`{at}` is not a valid descriptor: {e}"),
            );
        };
        let doc_kind = match kind {
            Kind::Index => {
                for field in ["config", "layers"] {
                    if obj.contains_key(field) {
                        self.problem(
                            Severity::Error,
                            "POLYGLOT",
                            &digest,
                            Error::Polyglot { digest: digest.clone(), claimed: "index", field }
                                .to_string(),
                        );
                        return Vec::new();
                    }
                }
                match obj.get("manifests") {
                    Some(Value::Array(a)) => {
                        for (i, m) in a.iter().enumerate() {
                            match self.parse_child(m) {
                                Ok(d) => children.push((Role::Child, d)),
                                Err(e) => bad(self, &format!("manifests[{i}]"), e.to_string()),
                            }
                        }
                    }
                    _ => {
                        self.problem(
                            Severity::Error,
                            "INVALID_DOCUMENT",
                            &digest,
                            "an index without a `manifests` array".into(),
                        );
                        return Vec::new();
                    }
                }
                DocKind::Index
            }
            Kind::Manifest => {
                if obj.contains_key("manifests") {
                    self.problem(
                        Severity::Error,
                        "POLYGLOT",
                        &digest,
                        Error::Polyglot {
                            digest: digest.clone(),
                            claimed: "manifest",
                            field: "manifests",
                        }
                        .to_string(),
                    );
                    return Vec::new();
                }
                let artifact_blobs = obj.get("blobs").filter(|_| !obj.contains_key("config"));
                match (obj.get("config"), artifact_blobs) {
                    (Some(c), _) => match self.parse_child(c) {
                        Ok(d) => children.push((Role::Config, d)),
                        Err(e) => bad(self, "config", e.to_string()),
                    },
                    (None, Some(_)) => {}
                    (None, None) => {
                        self.problem(
                            Severity::Error,
                            "INVALID_DOCUMENT",
                            &digest,
                            "a manifest without `config`".into(),
                        );
                        return Vec::new();
                    }
                }
                for (field, role) in [("layers", Role::Layer), ("blobs", Role::Blob)] {
                    match obj.get(field) {
                        None | Some(Value::Null) => {}
                        Some(Value::Array(a)) => {
                            for (i, l) in a.iter().enumerate() {
                                match self.parse_child(l) {
                                    Ok(d) => children.push((role, d)),
                                    Err(e) => bad(self, &format!("{field}[{i}]"), e.to_string()),
                                }
                            }
                        }
                        Some(_) => bad(self, field, "not an array".into()),
                    }
                }
                DocKind::Manifest
            }
            _ => {
                // Docker schema1: follow fsLayers[].blobSum so their blobs count as reachable.
                if let Some(Value::Array(a)) = obj.get("fsLayers") {
                    for l in a {
                        if let Some(Ok(d)) =
                            l.get("blobSum").and_then(Value::as_str).map(str::parse::<Digest>)
                        {
                            // Size unknown in schema1: use the stored size so no mismatch is reported.
                            let size = self.store.stat_blob(&d).ok().flatten().unwrap_or(0);
                            children.push((
                                Role::Blob,
                                Descriptor::new(MediaType::DockerLayerGzip, d, size),
                            ));
                        }
                    }
                }
                DocKind::Schema1
            }
        };
        if self.opts.follow_subject
            && let Some(s) = obj.get("subject")
        {
            match self.parse_child(s) {
                Ok(d) => children.push((Role::Subject, d)),
                Err(e) => bad(self, "subject", e.to_string()),
            }
        }
        if let Some(n) = self.walk.get_mut(&digest) {
            n.doc = Some(doc_kind);
            n.present = Some(n.present.unwrap_or(true));
        }
        if self.opts.keep_documents {
            self.walk.documents.push(Document {
                digest: digest.clone(),
                kind: doc_kind,
                media_type,
                children: children.clone(),
                bytes: self.opts.keep_bytes.then_some(bytes),
            });
        }
        children
    }
}

/// An error with its causes, on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Walk everything `index.json` names. Fails only when `index.json` cannot be read.
pub fn walk_layout(layout: &Layout, opts: WalkOptions<'_>) -> Result<(crate::Index, Walk)> {
    let index = layout.read_index()?;
    let w = walk(layout, &index.manifests, opts);
    Ok((index, w))
}
