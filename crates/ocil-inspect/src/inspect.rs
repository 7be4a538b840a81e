//! Summaries of what a store holds: one row per entry of its index, and the human view of
//! an image (manifest + config) or an index, as `ocil ls` and `ocil inspect` show them, for
//! a layout and an archive read in place alike.

use std::collections::BTreeMap;

use ocil_layout::walk::{self, LeafCheck, WalkOptions};
use ocil_layout::{
    ANNOTATION_CONTAINERD_NAME, Descriptor, Digest, Error, Index, JSON_LIMIT, Kind, MediaType,
    Result, Store,
};
use serde::Serialize;
use serde_json::Value;

/// One `index.json` entry, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct EntrySummary {
    /// Position in `index.json`.
    pub position: usize,
    /// Tag and full names (ref.name first, then io.containerd.image.name).
    pub names: Vec<String>,
    /// The entry's digest.
    pub digest: Digest,
    /// The entry's media type.
    pub media_type: String,
    /// Short media type.
    pub media_type_short: String,
    /// Platform of the entry itself, or of the children of an index.
    pub platforms: Vec<String>,
    /// Total bytes of the blobs reachable from this entry (each counted once).
    pub size: u64,
    /// Blobs reachable from this entry that are missing.
    pub missing: usize,
}

impl EntrySummary {
    /// The row of `index.json` entry `position` as far as the descriptor tells: its names
    /// and its own platform. The platforms of an index's children (or of a plain image's
    /// config), the size and the missing count are for the caller to add.
    pub fn of_entry(position: usize, d: &Descriptor) -> EntrySummary {
        let mut names = Vec::new();
        if let Some(n) = d.ref_name() {
            names.push(n.to_owned());
        }
        if let Some(n) = d.annotation(ANNOTATION_CONTAINERD_NAME)
            && !names.iter().any(|x| x == n)
        {
            names.push(n.to_owned());
        }
        EntrySummary {
            position,
            names,
            digest: d.digest.clone(),
            media_type: d.media_type.to_string(),
            media_type_short: d.media_type.short().to_owned(),
            platforms: d.platform.iter().map(|p| p.display()).collect(),
            size: 0,
            missing: 0,
        }
    }
}

/// Summarise every entry of `index`.
pub fn summarize_entries<S: Store + ?Sized>(store: &S, index: &Index) -> Vec<EntrySummary> {
    let opts = WalkOptions {
        follow_subject: false,
        sniff_unknown: true,
        leaves: LeafCheck::Stat,
        keep_bytes: false,
        keep_documents: true,
    };
    index
        .manifests
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let w = walk::walk(store, std::slice::from_ref(d), opts);
            let mut row = EntrySummary::of_entry(i, d);
            let platforms = &mut row.platforms;
            if let Some(doc) = w.documents.iter().find(|doc| doc.digest == d.digest) {
                match doc.kind {
                    walk::DocKind::Index => {
                        for (_, c) in &doc.children {
                            if let Some(p) = &c.platform {
                                platforms.push(p.display());
                            }
                        }
                    }
                    // A plain image says its platform in its config only (umoci, skopeo).
                    walk::DocKind::Manifest if platforms.is_empty() => {
                        if let Some(p) = doc
                            .children
                            .iter()
                            .find(|(r, c)| {
                                *r == walk::Role::Config && c.media_type.kind() == Kind::Config
                            })
                            .and_then(|(_, c)| config_platform(store, &c.digest))
                        {
                            platforms.push(p);
                        }
                    }
                    _ => {}
                }
            }
            row.size = w.nodes().map(|n| n.size).sum();
            row.missing = w.problems.iter().filter(|p| p.code == "BLOB_MISSING").count();
            row
        })
        .collect()
}

/// `os/arch[/variant]` from an image config, when it says.
fn config_platform<S: Store + ?Sized>(store: &S, config: &Digest) -> Option<String> {
    config_platform_of(&store.read_blob(config, JSON_LIMIT).ok()?)
}

/// `os/arch[/variant]` from the bytes of an image config, when it says (the platform
/// `ocil ls` shows for a plain image).
pub fn config_platform_of(bytes: &[u8]) -> Option<String> {
    let c: Value = serde_json::from_slice(bytes).ok()?;
    let os = c.get("os")?.as_str()?;
    let arch = c.get("architecture")?.as_str()?;
    Some(match c.get("variant").and_then(Value::as_str) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

/// A layer, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct LayerSummary {
    /// Digest.
    pub digest: Digest,
    /// Media type.
    pub media_type: String,
    /// Compression per the media type (`none`, `gzip`, `zstd`, or `unknown`).
    pub compression: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether it may be absent (nondistributable / foreign).
    pub distributable: bool,
}

/// An image: manifest and config, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    /// The manifest's digest.
    pub digest: Digest,
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest's size.
    pub size: u64,
    /// Artifact type, when set.
    pub artifact_type: Option<String>,
    /// The config descriptor.
    pub config: Descriptor,
    /// `os/arch[/variant]` from the config.
    pub platform: Option<String>,
    /// Config `created`.
    pub created: Option<String>,
    /// Config `author`.
    pub author: Option<String>,
    /// Config `config.Env`.
    pub env: Vec<String>,
    /// Config `config.Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// Config `config.Cmd`.
    pub cmd: Option<Vec<String>>,
    /// Config `config.WorkingDir`.
    pub working_dir: Option<String>,
    /// Config `config.User`.
    pub user: Option<String>,
    /// Config `config.Labels`.
    pub labels: BTreeMap<String, String>,
    /// Config `config.ExposedPorts`.
    pub exposed_ports: Vec<String>,
    /// Config `config.Volumes`.
    pub volumes: Vec<String>,
    /// Config `config.StopSignal`.
    pub stop_signal: Option<String>,
    /// Config `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
    /// Config `history`.
    pub history: Vec<HistorySummary>,
    /// The layers.
    pub layers: Vec<LayerSummary>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// The subject, when this is a referrer.
    pub subject: Option<Digest>,
    /// Why the config could not be read, if it could not.
    pub config_note: Option<String>,
}

/// One `history` entry of a config.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HistorySummary {
    /// `created`.
    pub created: Option<String>,
    /// `created_by`.
    pub created_by: Option<String>,
    /// `comment`.
    pub comment: Option<String>,
    /// `empty_layer`: no layer came of this step.
    pub empty_layer: bool,
}

/// A child of an index.
#[derive(Debug, Clone, Serialize)]
pub struct ChildSummary {
    /// Digest.
    pub digest: Digest,
    /// Media type.
    pub media_type: String,
    /// Platform.
    pub platform: Option<String>,
    /// Size.
    pub size: u64,
    /// Artifact type.
    pub artifact_type: Option<String>,
}

/// An index or manifest list, summarised.
#[derive(Debug, Clone, Serialize)]
pub struct IndexSummary {
    /// Digest.
    pub digest: Digest,
    /// Media type.
    pub media_type: String,
    /// Size.
    pub size: u64,
    /// Children.
    pub manifests: Vec<ChildSummary>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Subject.
    pub subject: Option<Digest>,
}

/// What `inspect` shows.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Inspected {
    /// A manifest and its config.
    Image(Box<ImageSummary>),
    /// An index or manifest list.
    Index(IndexSummary),
    /// Any other blob.
    Blob {
        /// Digest.
        digest: Digest,
        /// Media type.
        media_type: String,
        /// Size.
        size: u64,
    },
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v?.as_array().map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|o| {
            o.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned()))).collect()
        })
        .unwrap_or_default()
}

/// Decide the kind of a blob to inspect: by the descriptor, else by the blob's own
/// `mediaType`, else by its shape.
fn doc_kind(desc: &Descriptor, v: &Value) -> Option<Kind> {
    let k = desc.media_type.kind();
    if k.is_walkable() {
        return Some(k);
    }
    if let Some(k) = v.get("mediaType").and_then(Value::as_str).map(|t| MediaType::from(t).kind())
        && k.is_walkable()
    {
        return Some(k);
    }
    // The same shapes as the walk's sniffing.
    walk::kind_by_shape(v)
}

/// Read and summarise what `desc` points at. Only a blob that may be a document is read: a
/// layer (or anything whose first bytes do not open a JSON object) is shown as a blob.
pub fn inspect<S: Store + ?Sized>(store: &S, desc: &Descriptor) -> Result<Inspected> {
    let read = |digest: &Digest, limit: u64| store.read_blob(digest, limit);
    let kind = desc.media_type.kind();
    let json_like =
        || store.peek_blob(&desc.digest, 64).is_ok_and(|head| walk::opens_json_object(&head));
    let may_be_doc = desc.size <= JSON_LIMIT
        && !matches!(kind, Kind::Layer { .. } | Kind::Config | Kind::Empty)
        && (kind.is_walkable() || json_like());
    if !may_be_doc {
        return Ok(Inspected::Blob {
            digest: desc.digest.clone(),
            media_type: desc.media_type.to_string(),
            size: desc.size,
        });
    }
    let bytes = read(&desc.digest, JSON_LIMIT)?;
    let v: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(_) if !desc.media_type.kind().is_walkable() => {
            return Ok(Inspected::Blob {
                digest: desc.digest.clone(),
                media_type: desc.media_type.to_string(),
                size: desc.size,
            });
        }
        Err(source) => {
            return Err(Error::InvalidJson { path: desc.digest.blob_path(), source });
        }
    };
    let subject = v.pointer("/subject/digest").and_then(Value::as_str).and_then(|s| s.parse().ok());
    match doc_kind(desc, &v) {
        Some(Kind::Index) => {
            let manifests = v
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::InvalidDocument {
                    digest: desc.digest.clone(),
                    what: "index",
                    reason: "no `manifests` array".into(),
                })?
                .iter()
                .map(|m| serde_json::from_value::<Descriptor>(m.clone()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::InvalidDocument {
                    digest: desc.digest.clone(),
                    what: "index",
                    reason: e.to_string(),
                })?;
            Ok(Inspected::Index(IndexSummary {
                digest: desc.digest.clone(),
                media_type: desc.media_type.to_string(),
                size: bytes.len() as u64,
                manifests: manifests
                    .into_iter()
                    .map(|m| ChildSummary {
                        platform: m.platform.as_ref().map(|p| p.display()),
                        digest: m.digest,
                        media_type: m.media_type.to_string(),
                        size: m.size,
                        artifact_type: m.artifact_type,
                    })
                    .collect(),
                annotations: string_map(v.get("annotations")),
                subject,
            }))
        }
        Some(Kind::Manifest) => {
            let bad = |reason: String| Error::InvalidDocument {
                digest: desc.digest.clone(),
                what: "manifest",
                reason,
            };
            let config: Descriptor = serde_json::from_value(
                v.get("config").cloned().ok_or_else(|| bad("no `config`".into()))?,
            )
            .map_err(|e| bad(format!("`config`: {e}")))?;
            let layers: Vec<Descriptor> = match v.get("layers") {
                None | Some(Value::Null) => Vec::new(),
                Some(l) => {
                    serde_json::from_value(l.clone()).map_err(|e| bad(format!("`layers`: {e}")))?
                }
            };
            let mut s = ImageSummary {
                digest: desc.digest.clone(),
                media_type: desc.media_type.to_string(),
                size: bytes.len() as u64,
                artifact_type: v.get("artifactType").and_then(Value::as_str).map(str::to_owned),
                config: config.clone(),
                platform: None,
                created: None,
                author: None,
                env: Vec::new(),
                entrypoint: None,
                cmd: None,
                working_dir: None,
                user: None,
                labels: BTreeMap::new(),
                exposed_ports: Vec::new(),
                volumes: Vec::new(),
                stop_signal: None,
                diff_ids: Vec::new(),
                history: Vec::new(),
                layers: layers
                    .iter()
                    .map(|l| {
                        let (compression, distributable) = match l.media_type.kind() {
                            Kind::Layer { compression, distributable } => {
                                (compression.as_str(), distributable)
                            }
                            _ => ("unknown", true),
                        };
                        LayerSummary {
                            digest: l.digest.clone(),
                            media_type: l.media_type.to_string(),
                            compression: compression.to_owned(),
                            size: l.size,
                            distributable,
                        }
                    })
                    .collect(),
                annotations: string_map(v.get("annotations")),
                subject,
                config_note: None,
            };
            if config.media_type.kind() == Kind::Config {
                match read(&config.digest, JSON_LIMIT).map(|b| serde_json::from_slice::<Value>(&b))
                {
                    Ok(Ok(c)) => fill_config(&mut s, &c),
                    Ok(Err(e)) => s.config_note = Some(format!("config is not valid JSON: {e}")),
                    Err(e) => s.config_note = Some(walk::error_chain(&e)),
                }
            }
            Ok(Inspected::Image(Box::new(s)))
        }
        _ => Ok(Inspected::Blob {
            digest: desc.digest.clone(),
            media_type: desc.media_type.to_string(),
            size: desc.size,
        }),
    }
}

fn fill_config(s: &mut ImageSummary, c: &Value) {
    let os = c.get("os").and_then(Value::as_str);
    let arch = c.get("architecture").and_then(Value::as_str);
    if let (Some(os), Some(arch)) = (os, arch) {
        let mut p = format!("{os}/{arch}");
        if let Some(v) = c.get("variant").and_then(Value::as_str) {
            p.push('/');
            p.push_str(v);
        }
        s.platform = Some(p);
    }
    s.created = c.get("created").and_then(Value::as_str).map(str::to_owned);
    s.author = c.get("author").and_then(Value::as_str).map(str::to_owned);
    let cfg = c.get("config");
    let field = |k: &str| cfg.and_then(|x| x.get(k));
    s.env = strings(field("Env")).unwrap_or_default();
    s.entrypoint = strings(field("Entrypoint"));
    s.cmd = strings(field("Cmd"));
    s.working_dir =
        field("WorkingDir").and_then(Value::as_str).filter(|w| !w.is_empty()).map(str::to_owned);
    s.user = field("User").and_then(Value::as_str).filter(|w| !w.is_empty()).map(str::to_owned);
    s.labels = string_map(field("Labels"));
    s.exposed_ports = field("ExposedPorts")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    s.volumes = field("Volumes")
        .and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    s.stop_signal =
        field("StopSignal").and_then(Value::as_str).filter(|w| !w.is_empty()).map(str::to_owned);
    s.diff_ids = strings(c.pointer("/rootfs/diff_ids")).unwrap_or_default();
    let text = |h: &Value, k: &str| h.get(k).and_then(Value::as_str).map(str::to_owned);
    s.history = c
        .get("history")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|h| HistorySummary {
                    created: text(h, "created"),
                    created_by: text(h, "created_by"),
                    comment: text(h, "comment"),
                    empty_layer: h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(json: &str) -> Option<Kind> {
        let desc = Descriptor::new(
            MediaType::Other("application/octet-stream".into()),
            ocil_layout::Algorithm::Sha256.digest_of(json.as_bytes()),
            json.len() as u64,
        );
        doc_kind(&desc, &serde_json::from_str(json).unwrap())
    }

    #[test]
    fn shapes() {
        let digest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        let manifest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.oci.empty.v1+json","digest":"{digest}","size":2}},"layers":[]}}"#
        );
        assert_eq!(kind_of(&manifest), Some(Kind::Manifest));
        assert_eq!(kind_of(r#"{"schemaVersion":2,"manifests":[]}"#), Some(Kind::Index));
        // An image config, as `ocil new` writes it: its `config` is the runtime config.
        let config = r#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        assert_eq!(kind_of(config), None);
        assert_eq!(
            kind_of(r#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#),
            Some(Kind::Index)
        );
    }
}
