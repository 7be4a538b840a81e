//! An independent model of a layout: blobs written with plain serde_json and sha2 (never
//! through `ocil-layout`'s writers), the edges the generator put into each document, and
//! the live set computed from those edges alone.
//!
//! The model records, for every blob it writes, what a correct walk must follow from it
//! (an index's children, a manifest's config, layers and subject, the same for a manifest
//! referenced under an unknown media type) and which documents carry a `subject`. The live
//! set is then a plain graph search over those records, so gc is checked against what the
//! generator meant, not against a second copy of gc's own reading of the JSON.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use serde_json::{Value, json};
use sha2::Digest as _;

/// Media types the generator writes.
pub(crate) mod mt {
    pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub(crate) const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub(crate) const OCI_LAYERS: [&str; 3] = [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ];
    pub(crate) const DOCKER_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub(crate) const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub(crate) const DOCKER_FOREIGN_LAYER: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Unknown to ocil; the blob behind it may be a manifest (then it must be followed).
    pub(crate) const UNKNOWN_BUNDLE: &str = "application/vnd.example.bundle.v1+json";
    /// Unknown to ocil; the blob behind it is plain data.
    pub(crate) const UNKNOWN_DATA: &str = "application/vnd.example.data.v1";
    pub(crate) const SBOM: &str = "application/vnd.example.sbom.v1+json";
    pub(crate) const SIGNATURE: &str = "application/vnd.example.signature.v1+json";
}

/// SplitMix64: small, seeded, the same everywhere.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A digest algorithm the store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Sha256,
    Sha512,
}

/// `alg:hex` of `bytes`.
pub(crate) fn digest_of(alg: Alg, bytes: &[u8]) -> String {
    match alg {
        Alg::Sha256 => format!("sha256:{:x}", sha2::Sha256::digest(bytes)),
        Alg::Sha512 => format!("sha512:{:x}", sha2::Sha512::digest(bytes)),
    }
}

/// `blobs/<alg>/<hex>` for a digest string.
pub(crate) fn blob_path(digest: &str) -> String {
    let (alg, hex) = digest.split_once(':').expect("a digest has a colon");
    format!("blobs/{alg}/{hex}")
}

/// A descriptor as the generator writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Desc {
    pub(crate) media_type: String,
    pub(crate) digest: String,
    pub(crate) size: u64,
}

impl Desc {
    /// The same blob under another media type.
    pub(crate) fn typed(&self, media_type: &str) -> Desc {
        Desc { media_type: media_type.to_owned(), ..self.clone() }
    }

    pub(crate) fn json(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }

    /// As an index child, with a platform.
    pub(crate) fn with_platform(&self, arch: &str) -> Value {
        let mut v = self.json();
        v["platform"] = json!({"architecture": arch, "os": "linux"});
        v
    }

    /// As an `index.json` entry, tagged or not.
    pub(crate) fn entry(&self, tag: Option<&str>) -> Value {
        let mut v = self.json();
        if let Some(t) = tag {
            v["annotations"] = json!({"org.opencontainers.image.ref.name": t});
        }
        v
    }
}

/// The blobs of a layout, with what the walk must follow from each.
#[derive(Debug, Clone, Default)]
pub(crate) struct Store {
    /// digest -> bytes.
    pub(crate) blobs: BTreeMap<String, Vec<u8>>,
    /// digest -> digests a walk follows from it (may name blobs that are not stored).
    pub(crate) edges: HashMap<String, Vec<String>>,
    /// Documents with a `subject`: digest -> subject digest.
    pub(crate) subjects: BTreeMap<String, String>,
}

impl Store {
    /// Store bytes; `edges` are what a walk follows from them.
    pub(crate) fn put(
        &mut self,
        alg: Alg,
        media_type: &str,
        bytes: Vec<u8>,
        edges: Vec<String>,
    ) -> Desc {
        let digest = digest_of(alg, &bytes);
        let size = bytes.len() as u64;
        self.edges.insert(digest.clone(), edges);
        self.blobs.insert(digest.clone(), bytes);
        Desc { media_type: media_type.to_owned(), digest, size }
    }

    /// Store a JSON document (compact, keys in insertion order).
    pub(crate) fn put_json(
        &mut self,
        alg: Alg,
        media_type: &str,
        v: &Value,
        edges: Vec<String>,
    ) -> Desc {
        let bytes = serde_json::to_vec(v).expect("JSON serializes");
        if let Some(s) = v.get("subject").and_then(|s| s.get("digest")).and_then(Value::as_str) {
            self.subjects.insert(digest_of(alg, &bytes), s.to_owned());
        }
        self.put(alg, media_type, bytes, edges)
    }

    /// A manifest; `media_type: None` writes no `mediaType` field (found by its shape).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn manifest(
        &mut self,
        alg: Alg,
        media_type: Option<&str>,
        artifact_type: Option<&str>,
        config: &Desc,
        layers: &[Desc],
        subject: Option<&Desc>,
        note: &str,
    ) -> Desc {
        let mut v = serde_json::Map::new();
        v.insert("schemaVersion".into(), json!(2));
        if let Some(t) = media_type {
            v.insert("mediaType".into(), json!(t));
        }
        if let Some(t) = artifact_type {
            v.insert("artifactType".into(), json!(t));
        }
        v.insert("config".into(), config.json());
        v.insert("layers".into(), Value::Array(layers.iter().map(Desc::json).collect()));
        if let Some(s) = subject {
            v.insert("subject".into(), s.json());
        }
        v.insert("annotations".into(), json!({"org.example.note": note}));
        let mut edges: Vec<String> = vec![config.digest.clone()];
        edges.extend(layers.iter().map(|l| l.digest.clone()));
        edges.extend(subject.map(|s| s.digest.clone()));
        self.put_json(alg, media_type.unwrap_or(mt::OCI_MANIFEST), &Value::Object(v), edges)
    }

    /// An index or manifest list over `children` (already JSON descriptors).
    pub(crate) fn index(
        &mut self,
        alg: Alg,
        media_type: &str,
        children: Vec<(Value, String)>,
        subject: Option<&Desc>,
        note: &str,
    ) -> Desc {
        let mut v = serde_json::Map::new();
        v.insert("schemaVersion".into(), json!(2));
        v.insert("mediaType".into(), json!(media_type));
        let edges: Vec<String> = children
            .iter()
            .map(|(_, d)| d.clone())
            .chain(subject.map(|s| s.digest.clone()))
            .collect();
        v.insert("manifests".into(), Value::Array(children.into_iter().map(|(c, _)| c).collect()));
        if let Some(s) = subject {
            v.insert("subject".into(), s.json());
        }
        v.insert("annotations".into(), json!({"org.example.note": note}));
        self.put_json(alg, media_type, &Value::Object(v), edges)
    }

    /// Everything reachable from `roots`; with `keep_referrers`, also every document whose
    /// subject is live (and what it reaches), until nothing changes.
    pub(crate) fn live(&self, roots: &[String], keep_referrers: bool) -> BTreeSet<String> {
        let mut live = BTreeSet::new();
        let mut stack: Vec<String> = roots.to_vec();
        loop {
            while let Some(d) = stack.pop() {
                if !live.insert(d.clone()) {
                    continue;
                }
                if let Some(e) = self.edges.get(&d) {
                    stack.extend(e.iter().cloned());
                }
            }
            if keep_referrers {
                for (r, s) in &self.subjects {
                    if live.contains(s) && !live.contains(r) {
                        stack.push(r.clone());
                    }
                }
            }
            if stack.is_empty() {
                break;
            }
        }
        // Only stored blobs count (a missing subject or foreign layer is not a blob).
        live.retain(|d| self.blobs.contains_key(d));
        live
    }

    /// Write `oci-layout`, `index.json` (with `entries`) and every blob into `dir`.
    pub(crate) fn write(&self, dir: &Path, entries: &[Value]) {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create blobs/sha256");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write oci-layout");
        write_index(dir, entries);
        for (digest, bytes) in &self.blobs {
            let path = dir.join(blob_path(digest));
            std::fs::create_dir_all(path.parent().expect("blob path has a parent"))
                .expect("create algorithm directory");
            std::fs::write(&path, bytes).expect("write blob");
        }
    }
}

/// Write `index.json` with these entries (and a top-level annotation and an unknown key, which
/// a rewrite must keep).
pub(crate) fn write_index(dir: &Path, entries: &[Value]) {
    let index = json!({
        "schemaVersion": 2,
        "mediaType": mt::OCI_INDEX,
        "manifests": entries,
        "annotations": {"org.example.layout": "generated"},
        "org.example.unknown": {"kept": true},
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).expect("JSON serializes"))
        .expect("write index.json");
}

/// Every blob on disk (regular files under `blobs/<alg>/` named like a digest), as digests.
pub(crate) fn blobs_on_disk(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for alg in ["sha256", "sha512"] {
        let Ok(rd) = std::fs::read_dir(dir.join("blobs").join(alg)) else { continue };
        for e in rd {
            let e = e.expect("read blobs directory entry");
            let name = e.file_name().to_string_lossy().into_owned();
            let is_file = e.file_type().expect("file type").is_file();
            let hex_len = if alg == "sha256" { 64 } else { 128 };
            if is_file
                && name.len() == hex_len
                && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                out.insert(format!("{alg}:{name}"));
            }
        }
    }
    out
}

/// A generated layout: the store, the `index.json` entries, and facts for the checks.
#[derive(Debug, Clone)]
pub(crate) struct Generated {
    pub(crate) store: Store,
    pub(crate) entries: Vec<Value>,
    /// Digests of the entries.
    pub(crate) roots: Vec<String>,
    /// How many of each feature the seed produced (to check the generator covers them).
    pub(crate) counts: BTreeMap<&'static str, usize>,
}

impl Generated {
    pub(crate) fn write(&self, dir: &Path) {
        self.store.write(dir, &self.entries);
    }

    pub(crate) fn live(&self, keep_referrers: bool) -> BTreeSet<String> {
        self.store.live(&self.roots, keep_referrers)
    }

    pub(crate) fn garbage(&self, keep_referrers: bool) -> BTreeSet<String> {
        let live = self.live(keep_referrers);
        self.store.blobs.keys().filter(|d| !live.contains(*d)).cloned().collect()
    }
}

struct Gen {
    rng: Rng,
    store: Store,
    counts: BTreeMap<&'static str, usize>,
    n: usize,
}

impl Gen {
    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }

    fn alg(&mut self) -> Alg {
        if self.rng.chance(15) {
            self.count("sha512 blobs");
            Alg::Sha512
        } else {
            Alg::Sha256
        }
    }

    fn note(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{what}-{}", self.n)
    }

    fn layer_bytes(&mut self) -> Vec<u8> {
        let n = self.rng.range(1, 3000);
        self.rng.bytes(n)
    }

    fn layer(&mut self, docker: bool) -> Desc {
        let alg = self.alg();
        let bytes = self.layer_bytes();
        let media_type = if docker { mt::DOCKER_LAYER } else { *self.rng.pick(&mt::OCI_LAYERS) };
        self.store.put(alg, media_type, bytes, Vec::new())
    }

    fn config(&mut self, docker: bool, layers: &[Desc]) -> Desc {
        let alg = self.alg();
        let note = self.note("config");
        let arch = *self.rng.pick(&["amd64", "arm64", "riscv64"]);
        let v = json!({
            "created": "2024-01-01T00:00:00Z",
            "architecture": arch,
            "os": "linux",
            "config": {"Env": [format!("NOTE={note}")]},
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
        });
        self.store.put_json(
            alg,
            if docker { mt::DOCKER_CONFIG } else { mt::OCI_CONFIG },
            &v,
            vec![],
        )
    }

    /// A plain blob under an unknown media type (random bytes, or JSON that is no manifest).
    fn unknown_plain(&mut self) -> Desc {
        self.count("unknown-typed plain blobs");
        let alg = self.alg();
        let bytes = if self.rng.chance(50) {
            let n = self.rng.range(1, 500);
            self.rng.bytes(n)
        } else {
            let note = self.note("data");
            serde_json::to_vec(&json!({"note": note, "items": [1, 2, 3]})).expect("JSON")
        };
        self.store.put(alg, mt::UNKNOWN_DATA, bytes, Vec::new())
    }

    /// A manifest stored under an unknown media type: it must be followed.
    fn unknown_manifest(&mut self) -> Desc {
        self.count("unknown-typed manifests");
        let layer = self.layer(false);
        let config = self.config(false, std::slice::from_ref(&layer));
        let alg = self.alg();
        let note = self.note("bundle");
        // Half carry their own mediaType, half are recognisable by shape only.
        let own_type = if self.rng.chance(50) { Some(mt::OCI_MANIFEST) } else { None };
        let d = self.store.manifest(alg, own_type, None, &config, &[layer], None, &note);
        d.typed(mt::UNKNOWN_BUNDLE)
    }

    fn image(&mut self, pool: &[Desc]) -> Desc {
        let docker = self.rng.chance(40);
        self.count(if docker { "docker images" } else { "oci images" });
        let mut layers: Vec<Desc> = Vec::new();
        for _ in 0..self.rng.range(0, 3) {
            let l = self.rng.pick(pool).clone();
            if !layers.iter().any(|x| x.digest == l.digest) {
                let media_type = if docker { mt::DOCKER_LAYER } else { mt::OCI_LAYERS[0] };
                layers.push(l.typed(media_type));
            }
        }
        if layers.is_empty() || self.rng.chance(60) {
            let l = self.layer(docker);
            layers.push(l);
        }
        let config = self.config(docker, &layers);
        if !docker && self.rng.chance(30) {
            let extra =
                if self.rng.chance(50) { self.unknown_manifest() } else { self.unknown_plain() };
            layers.push(extra);
        }
        if docker && self.rng.chance(15) {
            // A foreign layer that is not in the layout: allowed, and not a blob to keep.
            self.count("absent foreign layers");
            let bytes = self.layer_bytes();
            let digest = digest_of(Alg::Sha256, &bytes);
            layers.push(Desc {
                media_type: mt::DOCKER_FOREIGN_LAYER.into(),
                digest,
                size: bytes.len() as u64,
            });
        }
        let alg = self.alg();
        let note = self.note("image");
        let media_type = if docker { mt::DOCKER_MANIFEST } else { mt::OCI_MANIFEST };
        self.store.manifest(alg, Some(media_type), None, &config, &layers, None, &note)
    }

    /// An index (or Docker manifest list) over `children`; some children are referenced
    /// under an unknown media type, and some plain unknown-typed blobs are mixed in.
    fn index(&mut self, children: &[Desc]) -> Desc {
        let docker = self.rng.chance(40);
        self.count(if docker { "docker manifest lists" } else { "oci indexes" });
        let mut out = Vec::new();
        for c in children {
            let arch = *self.rng.pick(&["amd64", "arm64", "s390x"]);
            let c = if self.rng.chance(10) {
                self.count("unknown-typed index children");
                c.typed(mt::UNKNOWN_BUNDLE)
            } else {
                c.clone()
            };
            out.push((c.with_platform(arch), c.digest.clone()));
        }
        if self.rng.chance(10) {
            let p = self.unknown_plain();
            out.push((p.json(), p.digest.clone()));
        }
        let alg = self.alg();
        let note = self.note("index");
        self.store.index(
            alg,
            if docker { mt::DOCKER_LIST } else { mt::OCI_INDEX },
            out,
            None,
            &note,
        )
    }

    /// A referrer of `subject` (an artifact manifest, sometimes an artifact index).
    fn referrer(&mut self, subject: &Desc, artifact_type: &str) -> Desc {
        self.count("referrers");
        let alg = self.alg();
        let note = self.note("referrer");
        if self.rng.chance(10) {
            self.count("referrer indexes");
            return self.store.index(alg, mt::OCI_INDEX, Vec::new(), Some(subject), &note);
        }
        let config = if self.rng.chance(70) {
            self.store.put(Alg::Sha256, mt::OCI_EMPTY, b"{}".to_vec(), Vec::new())
        } else {
            let v = json!({"tool": "example", "note": note});
            self.store.put_json(Alg::Sha256, "application/vnd.example.config.v1+json", &v, vec![])
        };
        let payload_note = self.note("payload");
        let payload = self.store.put(
            alg,
            artifact_type,
            serde_json::to_vec(&json!({"payload": payload_note})).expect("JSON"),
            Vec::new(),
        );
        self.store.manifest(
            alg,
            Some(mt::OCI_MANIFEST),
            Some(artifact_type),
            &config,
            &[payload],
            Some(subject),
            &note,
        )
    }
}

#[derive(Default)]
struct Entries {
    entries: Vec<Value>,
    roots: Vec<String>,
    tags: usize,
}

impl Entries {
    fn add(&mut self, g: &mut Gen, d: &Desc, tagged: bool) {
        let d = if g.rng.chance(8) {
            g.count("unknown-typed entries");
            d.typed(mt::UNKNOWN_BUNDLE)
        } else {
            d.clone()
        };
        let tag = if tagged {
            self.tags += 1;
            Some(format!("t{}", self.tags))
        } else {
            g.count("untagged entries");
            None
        };
        self.entries.push(d.entry(tag.as_deref()));
        self.roots.push(d.digest.clone());
    }
}

/// Generate a layout from `seed`.
pub(crate) fn generate(seed: u64) -> Generated {
    let mut g = Gen { rng: Rng::new(seed), store: Store::default(), counts: BTreeMap::new(), n: 0 };
    let pool: Vec<Desc> = (0..g.rng.range(3, 7)).map(|_| g.layer(false)).collect();

    let images: Vec<Desc> = (0..g.rng.range(4, 9)).map(|_| g.image(&pool)).collect();
    // Inner indexes over images, outer indexes over inner ones: index.json > outer > inner > image.
    let mut inner = Vec::new();
    for _ in 0..g.rng.range(1, 3) {
        let k = g.rng.range(1, 3);
        let children: Vec<Desc> = (0..k).map(|_| g.rng.pick(&images).clone()).collect();
        let mut unique: Vec<Desc> = Vec::new();
        for c in children {
            if !unique.iter().any(|u| u.digest == c.digest) {
                unique.push(c);
            }
        }
        inner.push(g.index(&unique));
    }
    let mut outer = Vec::new();
    for _ in 0..g.rng.range(0, 2) {
        let mut children = vec![g.rng.pick(&inner).clone()];
        if g.rng.chance(50) {
            let i = g.rng.pick(&images).clone();
            if !children.iter().any(|c| c.digest == i.digest) {
                children.push(i);
            }
        }
        g.count("nested indexes");
        outer.push(g.index(&children));
    }

    // index.json entries: tagged or not, sometimes under an unknown media type.
    let mut e = Entries::default();
    let documents: Vec<Desc> = images.iter().chain(&inner).chain(&outer).cloned().collect();
    for d in &documents {
        if g.rng.chance(35) {
            let tagged = g.rng.chance(70);
            e.add(&mut g, d, tagged);
        }
    }
    if e.roots.is_empty() {
        let d = outer.first().or(inner.first()).expect("there is an index").clone();
        e.add(&mut g, &d, true);
    }

    // Referrers: random subjects (live or not), chains, some named in index.json.
    let mut subjects: Vec<Desc> = documents.clone();
    for _ in 0..g.rng.range(2, 7) {
        let s = g.rng.pick(&subjects).clone();
        let at = *g.rng.pick(&[mt::SBOM, mt::SIGNATURE]);
        let r = g.referrer(&s, at);
        if g.rng.chance(20) {
            g.count("referrers named in index.json");
            let tagged = g.rng.chance(30);
            e.add(&mut g, &r, tagged);
        }
        subjects.push(r);
    }
    // The chain a signature > SBOM > image, once from a root's image and once from any image.
    for s in [e.roots[0].clone(), g.rng.pick(&images).digest.clone()] {
        let subject = subjects.iter().find(|d| d.digest == s).expect("subject is known").clone();
        let sbom = g.referrer(&subject, mt::SBOM);
        let sig = g.referrer(&sbom, mt::SIGNATURE);
        g.count("referrer chains");
        subjects.push(sig);
    }
    // A referrer whose subject is not in the layout at all.
    if g.rng.chance(40) {
        g.count("referrers of absent subjects");
        let ghost = Desc {
            media_type: mt::OCI_MANIFEST.into(),
            digest: digest_of(Alg::Sha256, &g.rng.bytes(16)),
            size: 16,
        };
        g.referrer(&ghost, mt::SIGNATURE);
    }

    // Plain garbage.
    for _ in 0..g.rng.range(2, 10) {
        g.count("garbage blobs");
        let alg = g.alg();
        let n = g.rng.range(0, 2000);
        let bytes = g.rng.bytes(n);
        g.store.put(alg, mt::UNKNOWN_DATA, bytes, Vec::new());
    }

    Generated { store: g.store, entries: e.entries, roots: e.roots, counts: g.counts }
}
