//! Layout generation shared by `fixtures` and `bench`.
//!
//! A seeded PRNG, a blob store that names every blob by its digest, deterministic tar, gzip
//! and zstd layers, the JSON documents of an image, and the big generated layouts the
//! benchmarks run on (the gc shape and the fsck shape).
//!
//! This is an independent implementation of the image-layout format, written with plain
//! `serde_json` and `sha2`. It deliberately does not use `ocil-layout`, so the fixtures and
//! benchmarks check the library rather than repeat its mistakes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256, Sha512};

use crate::Result;

/// Media types and annotation keys, spelled once.
pub(crate) mod mt {
    pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub(crate) const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub(crate) const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub(crate) const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
    pub(crate) const OCI_DESCRIPTOR: &str = "application/vnd.oci.descriptor.v1+json";
    pub(crate) const DOCKER_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub(crate) const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// The tag annotation of an `index.json` entry.
    pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
}

/// The fixed timestamp written into every generated config.
pub(crate) const CREATED: &str = "2024-01-01T00:00:00Z";

/// A small seeded PRNG (SplitMix64): fast, deterministic everywhere, no dependency.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// A generator for one named stream, so adding a stream does not shift the others.
    pub(crate) fn for_name(seed: u64, name: &str) -> Rng {
        // FNV-1a over the name, mixed with the seed.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Rng(seed ^ h)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`); the modulo bias is irrelevant here.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// A size in `lo..=hi` whose logarithm is uniform.
    pub(crate) fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        // 53 random bits make a float in [0, 1).
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
        ((a + u * (b - a)).exp() as u64).clamp(lo, hi)
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }

    /// `n` random bytes as lowercase hex.
    pub(crate) fn hex(&mut self, n: usize) -> String {
        hex::encode(self.bytes(n))
    }
}

/// A digest algorithm the generators write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Sha256,
    Sha512,
}

impl Alg {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Alg::Sha256 => "sha256",
            Alg::Sha512 => "sha512",
        }
    }

    /// `alg:hex` of `bytes`.
    pub(crate) fn digest(self, bytes: &[u8]) -> String {
        let hex = match self {
            Alg::Sha256 => hex::encode(Sha256::digest(bytes)),
            Alg::Sha512 => hex::encode(Sha512::digest(bytes)),
        };
        format!("{}:{hex}", self.name())
    }
}

/// A blob: its digest (`alg:hex`) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blob {
    pub(crate) digest: String,
    pub(crate) size: u64,
}

impl Blob {
    pub(crate) fn of(alg: Alg, bytes: &[u8]) -> Blob {
        Blob { digest: alg.digest(bytes), size: bytes.len() as u64 }
    }

    /// `blobs/<alg>/<encoded>`, relative to the layout.
    pub(crate) fn rel_path(&self) -> String {
        let (alg, enc) = self.digest.split_once(':').unwrap_or(("sha256", &self.digest));
        format!("blobs/{alg}/{enc}")
    }

    /// A descriptor object: `mediaType`, `digest`, `size`, in that order.
    pub(crate) fn descriptor(&self, media_type: &str) -> Value {
        json!({ "mediaType": media_type, "digest": self.digest, "size": self.size })
    }
}

/// Adds `key: value` to a JSON object (after the keys it already has).
pub(crate) fn with(mut object: Value, key: &str, value: Value) -> Value {
    if let Some(map) = object.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
    object
}

/// A descriptor tagged with `org.opencontainers.image.ref.name`.
pub(crate) fn tagged(descriptor: Value, tag: &str) -> Value {
    with(descriptor, "annotations", json!({ mt::REF_NAME: tag }))
}

/// JSON as written to blobs and `index.json`: compact, keys in insertion order, no newline.
pub(crate) fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("a serde_json::Value always serializes")
}

/// A platform object for an index entry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Platform {
    pub(crate) os: &'static str,
    pub(crate) arch: &'static str,
}

pub(crate) const AMD64: Platform = Platform { os: "linux", arch: "amd64" };
pub(crate) const ARM64: Platform = Platform { os: "linux", arch: "arm64" };

impl Platform {
    pub(crate) fn json(self) -> Value {
        json!({ "architecture": self.arch, "os": self.os })
    }
}

/// A directory being filled as an image layout. Blobs are written once each, without fsync.
#[derive(Debug)]
pub(crate) struct Store {
    root: PathBuf,
    alg: Alg,
    seen: HashSet<String>,
    /// Bytes of all distinct blobs written.
    pub(crate) bytes: u64,
}

impl Store {
    /// Creates `root/blobs/<alg>` and writes `oci-layout`.
    pub(crate) fn create(root: &Path, alg: Alg) -> Result<Store> {
        fs_err::create_dir_all(root.join("blobs").join(alg.name()))?;
        fs_err::write(
            root.join("oci-layout"),
            to_bytes(&json!({ "imageLayoutVersion": "1.0.0" })),
        )?;
        Ok(Store { root: root.to_path_buf(), alg, seen: HashSet::new(), bytes: 0 })
    }

    pub(crate) fn alg(&self) -> Alg {
        self.alg
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// Number of distinct blobs written.
    pub(crate) fn count(&self) -> usize {
        self.seen.len()
    }

    pub(crate) fn path_of(&self, blob: &Blob) -> PathBuf {
        self.root.join(blob.rel_path())
    }

    /// Writes `bytes` as a blob named by their digest (once; a repeat is a no-op).
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<Blob> {
        let blob = Blob::of(self.alg, bytes);
        if self.seen.insert(blob.digest.clone()) {
            fs_err::write(self.path_of(&blob), bytes)?;
            self.bytes += blob.size;
        }
        Ok(blob)
    }

    pub(crate) fn put_json(&mut self, value: &Value) -> Result<Blob> {
        self.put(&to_bytes(value))
    }

    /// Writes `index.json` with these entries.
    pub(crate) fn write_index(&self, manifests: Vec<Value>) -> Result<()> {
        let index =
            json!({ "schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": manifests });
        fs_err::write(self.root.join("index.json"), to_bytes(&index))?;
        Ok(())
    }
}

/// One tar entry: a directory when `data` is `None`.
#[derive(Debug, Clone)]
pub(crate) struct TarEntry {
    pub(crate) path: String,
    pub(crate) mode: u32,
    pub(crate) data: Option<Vec<u8>>,
}

impl TarEntry {
    pub(crate) fn dir(path: &str) -> TarEntry {
        TarEntry { path: format!("{}/", path.trim_end_matches('/')), mode: 0o755, data: None }
    }

    pub(crate) fn file(path: &str, mode: u32, data: impl Into<Vec<u8>>) -> TarEntry {
        TarEntry { path: path.to_owned(), mode, data: Some(data.into()) }
    }
}

/// A ustar archive of `entries`, sorted by path, with mtime 0 and uid/gid 0.
pub(crate) fn tar(mut entries: Vec<TarEntry>) -> Result<Vec<u8>> {
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut builder = tar::Builder::new(Vec::new());
    for e in &entries {
        let mut header = tar::Header::new_ustar();
        header.set_path(&e.path)?;
        header.set_mode(e.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        let data: &[u8] = e.data.as_deref().unwrap_or_default();
        header.set_size(data.len() as u64);
        header.set_entry_type(if e.data.is_some() {
            tar::EntryType::Regular
        } else {
            tar::EntryType::Directory
        });
        header.set_cksum();
        builder.append(&header, data)?;
    }
    Ok(builder.into_inner()?)
}

/// Gzip with a fixed header: mtime 0, no file name, OS "unknown" (255).
pub(crate) fn gzip(data: &[u8], level: Compression) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), level);
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

/// Zstd at level 3, single-threaded, so the same input gives the same frame.
pub(crate) fn zstd(data: &[u8]) -> Result<Vec<u8>> {
    Ok(zstd::encode_all(data, 3)?)
}

/// A layer blob and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
pub(crate) struct Layer {
    pub(crate) blob: Blob,
    pub(crate) diff_id: String,
    pub(crate) media_type: &'static str,
}

impl Layer {
    pub(crate) fn descriptor(&self) -> Value {
        self.blob.descriptor(self.media_type)
    }
}

/// An image config (OCI and Docker share this shape).
pub(crate) fn config(platform: Platform, name: &str, layers: &[Layer]) -> Value {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let history: Vec<Value> = (0..layers.len())
        .map(|i| json!({ "created": CREATED, "created_by": format!("xtask: {name} layer {i}") }))
        .collect();
    json!({
        "created": CREATED,
        "architecture": platform.arch,
        "os": platform.os,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["/bin/sh"],
            "Labels": { "org.example.image": name }
        },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
        "history": history
    })
}

/// A manifest (OCI or Docker schema2, by `media_type`).
pub(crate) fn manifest(media_type: &str, config: Value, layers: &[Layer]) -> Value {
    let layers: Vec<Value> = layers.iter().map(Layer::descriptor).collect();
    json!({ "schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layers })
}

/// An index (OCI index or Docker manifest list, by `media_type`).
pub(crate) fn index(media_type: &str, manifests: Vec<Value>) -> Value {
    json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": manifests })
}

/// Puts a config and an OCI manifest for `layers`; returns the manifest blob.
pub(crate) fn put_image(
    store: &mut Store,
    platform: Platform,
    name: &str,
    layers: &[Layer],
) -> Result<Blob> {
    let config_blob = store.put_json(&config(platform, name, layers))?;
    store.put_json(&manifest(mt::OCI_MANIFEST, config_blob.descriptor(mt::OCI_CONFIG), layers))
}

/// Puts a layer holding one file `data/<name>` of `content`, gzipped at `level`.
pub(crate) fn put_data_layer(
    store: &mut Store,
    name: &str,
    content: Vec<u8>,
    level: Compression,
) -> Result<Layer> {
    let tar =
        tar(vec![TarEntry::dir("data"), TarEntry::file(&format!("data/{name}"), 0o644, content)])?;
    let diff_id = store.alg().digest(&tar);
    let blob = store.put(&gzip(&tar, level)?)?;
    Ok(Layer { blob, diff_id, media_type: mt::OCI_LAYER_GZIP })
}

/// What a generator wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Files under `blobs/`.
    pub(crate) blobs: usize,
    /// Blobs reachable from `index.json`.
    pub(crate) reachable: usize,
    /// Blobs nothing references.
    pub(crate) garbage: usize,
    /// Bytes of all blobs.
    pub(crate) bytes: u64,
    /// Image manifests.
    pub(crate) images: usize,
    /// Index blobs (not counting `index.json`).
    pub(crate) indexes: usize,
}

/// Layer contents for the gc shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LayerSize {
    /// A few random bytes in a tar, compressed: small files, so the count of blobs dominates.
    Tiny,
    /// This many random bytes in a tar, gzip-stored: the bytes dominate.
    Bytes(usize),
}

/// The gc benchmark's layout: many images sharing layers, some under nested indexes, garbage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GcShape {
    pub(crate) images: usize,
    /// Layers per image.
    pub(crate) layers: usize,
    /// How many of each image's layers come from the shared pool.
    pub(crate) shared: usize,
    /// Unreferenced blobs to add.
    pub(crate) garbage: usize,
    pub(crate) layer_size: LayerSize,
    pub(crate) seed: u64,
}

impl GcShape {
    /// `images` images of 8 layers, half shared, `images * 8` garbage blobs, tiny layers.
    pub(crate) fn new(images: usize) -> GcShape {
        GcShape {
            images,
            layers: 8,
            shared: 4,
            garbage: images * 8,
            layer_size: LayerSize::Tiny,
            seed: 1,
        }
    }
}

fn random_layer(store: &mut Store, rng: &mut Rng, name: &str, size: LayerSize) -> Result<Layer> {
    match size {
        LayerSize::Tiny => {
            let n = rng.range(16, 256) as usize;
            put_data_layer(store, name, rng.bytes(n), Compression::fast())
        }
        LayerSize::Bytes(n) => put_data_layer(store, name, rng.bytes(n), Compression::none()),
    }
}

/// Writes the gc shape into `dir` (which must not exist or be empty).
///
/// Every third image goes under a nested multi-platform index: groups of four become an
/// outer index (tagged) holding an amd64 and an arm64 manifest plus an inner index with the
/// other two. The rest are tagged directly in `index.json`. Shared layers come from a pool
/// of about `images * shared / 16` layers, each created on first use, so none is garbage.
pub(crate) fn generate_gc(dir: &Path, shape: &GcShape) -> Result<Counts> {
    let mut store = Store::create(dir, Alg::Sha256)?;
    let mut rng = Rng::for_name(shape.seed, "gc-shape");
    let shared = shape.shared.min(shape.layers);
    let pool_size = (shape.images * shared).div_ceil(16).max(shared);
    let mut pool: Vec<Option<Layer>> = vec![None; pool_size];
    let mut entries = Vec::new();
    let mut nested: Vec<Blob> = Vec::new();
    let mut counts = Counts::default();

    let flush_nested = |store: &mut Store,
                        nested: &mut Vec<Blob>,
                        entries: &mut Vec<Value>,
                        counts: &mut Counts| {
        if nested.is_empty() {
            return Ok::<(), Box<dyn std::error::Error>>(());
        }
        let platform_desc = |b: &Blob, i: usize| {
            let p = if i % 2 == 0 { AMD64 } else { ARM64 };
            with(b.descriptor(mt::OCI_MANIFEST), "platform", p.json())
        };
        let mut outer: Vec<Value> =
            nested.iter().take(2).enumerate().map(|(i, b)| platform_desc(b, i)).collect();
        if nested.len() > 2 {
            let inner: Vec<Value> =
                nested.iter().skip(2).enumerate().map(|(i, b)| platform_desc(b, i)).collect();
            let inner_blob = store.put_json(&index(mt::OCI_INDEX, inner))?;
            counts.indexes += 1;
            outer.push(inner_blob.descriptor(mt::OCI_INDEX));
        }
        let outer_blob = store.put_json(&index(mt::OCI_INDEX, outer))?;
        counts.indexes += 1;
        entries.push(tagged(
            outer_blob.descriptor(mt::OCI_INDEX),
            &format!("multi-{}", entries.len()),
        ));
        nested.clear();
        Ok(())
    };

    for i in 0..shape.images {
        let mut layers = Vec::with_capacity(shape.layers);
        let mut picked = Vec::with_capacity(shared);
        while picked.len() < shared {
            let p = rng.below(pool_size as u64) as usize;
            if !picked.contains(&p) {
                picked.push(p);
            }
        }
        for p in picked {
            let layer = match &pool[p] {
                Some(l) => l.clone(),
                None => {
                    let l =
                        random_layer(&mut store, &mut rng, &format!("pool-{p}"), shape.layer_size)?;
                    pool[p] = Some(l.clone());
                    l
                }
            };
            layers.push(layer);
        }
        for j in shared..shape.layers {
            layers.push(random_layer(
                &mut store,
                &mut rng,
                &format!("image-{i}-{j}"),
                shape.layer_size,
            )?);
        }
        let nest = i % 3 == 2;
        let platform = if nest && nested.len() % 2 == 1 { ARM64 } else { AMD64 };
        let m = put_image(&mut store, platform, &format!("image-{i}"), &layers)?;
        counts.images += 1;
        if nest {
            nested.push(m);
            if nested.len() == 4 {
                flush_nested(&mut store, &mut nested, &mut entries, &mut counts)?;
            }
        } else {
            entries.push(tagged(m.descriptor(mt::OCI_MANIFEST), &format!("image-{i}")));
        }
    }
    flush_nested(&mut store, &mut nested, &mut entries, &mut counts)?;
    store.write_index(entries)?;
    counts.reachable = store.count();

    let mut added = 0;
    while added < shape.garbage {
        let bytes = match shape.layer_size {
            LayerSize::Tiny => {
                let n = rng.range(16, 256) as usize;
                rng.bytes(n)
            }
            LayerSize::Bytes(n) => rng.bytes(n),
        };
        let before = store.count();
        store.put(&bytes)?;
        if store.count() > before {
            added += 1;
        }
    }
    counts.garbage = added;
    counts.blobs = store.count();
    counts.bytes = store.bytes;
    Ok(counts)
}

/// The fsck benchmark's layout: about `total` bytes of layers whose sizes are log-uniform in
/// `min..=max`, 8 to an image, every image tagged; no garbage.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FsckShape {
    pub(crate) total: u64,
    pub(crate) min: u64,
    pub(crate) max: u64,
    pub(crate) seed: u64,
}

impl FsckShape {
    pub(crate) fn new(total: u64) -> FsckShape {
        FsckShape { total, min: 4 << 10, max: (64 << 20).min(total / 4).max(4 << 10), seed: 1 }
    }
}

/// Writes the fsck shape into `dir`. Layers are real tar+gzip (stored, so writing is fast)
/// with correct `diff_ids`, so a deep fsck has nothing to report either.
pub(crate) fn generate_fsck(dir: &Path, shape: &FsckShape) -> Result<Counts> {
    let mut store = Store::create(dir, Alg::Sha256)?;
    let mut rng = Rng::for_name(shape.seed, "fsck-shape");
    let mut entries = Vec::new();
    let mut layers = Vec::new();
    let mut counts = Counts::default();
    let mut layer_bytes = 0;
    let mut n = 0;
    while layer_bytes < shape.total {
        let size = rng.log_uniform(shape.min, shape.max);
        let layer = put_data_layer(
            &mut store,
            &format!("blob-{n}"),
            rng.bytes(size as usize),
            Compression::none(),
        )?;
        n += 1;
        layer_bytes += layer.blob.size;
        layers.push(layer);
        if layers.len() == 8 || layer_bytes >= shape.total {
            let name = format!("image-{}", counts.images);
            let m = put_image(&mut store, AMD64, &name, &layers)?;
            entries.push(tagged(m.descriptor(mt::OCI_MANIFEST), &name));
            counts.images += 1;
            layers.clear();
        }
    }
    store.write_index(entries)?;
    counts.blobs = store.count();
    counts.reachable = store.count();
    counts.bytes = store.bytes;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_is_deterministic_and_has_a_fixed_header() {
        let data = b"hello hello hello hello".repeat(100);
        let a = gzip(&data, Compression::default()).unwrap();
        let b = gzip(&data, Compression::default()).unwrap();
        assert_eq!(a, b);
        // Magic, deflate, no flags (so no file name), mtime 0, OS 255.
        assert_eq!(&a[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&a[4..8], &[0, 0, 0, 0]);
        assert_eq!(a[9], 255);
    }

    #[test]
    fn tar_is_sorted_and_deterministic() {
        let entries = vec![
            TarEntry::file("b/x", 0o644, "x"),
            TarEntry::dir("b"),
            TarEntry::file("a", 0o755, "a"),
        ];
        let t = tar(entries.clone()).unwrap();
        assert_eq!(t, tar(entries).unwrap());
        let mut archive = tar::Archive::new(&t[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        // Directories keep their trailing slash, as Go and GNU tar write them.
        assert_eq!(names, ["a", "b/", "b/x"]);
    }

    #[test]
    fn rng_is_seeded() {
        assert_eq!(Rng(7).bytes(33), Rng(7).bytes(33));
        assert_ne!(Rng(7).bytes(33), Rng(8).bytes(33));
        let mut r = Rng(1);
        for _ in 0..1000 {
            let s = r.log_uniform(4096, 1 << 26);
            assert!((4096..=1 << 26).contains(&s));
        }
    }

    #[test]
    fn empty_descriptor_digest_matches_the_spec() {
        assert_eq!(
            Alg::Sha256.digest(b"{}"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }

    #[test]
    fn gc_shape_counts_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let shape = GcShape::new(10);
        let counts = generate_gc(dir.path(), &shape).unwrap();
        assert_eq!(counts.garbage, 80);
        assert_eq!(counts.blobs, counts.reachable + counts.garbage);
        let files = walkdir::WalkDir::new(dir.path().join("blobs"))
            .into_iter()
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_type().is_file()))
            .count();
        assert_eq!(files, counts.blobs);
        assert_eq!(counts.images, 10);
        // Images 2, 5, 8 are nested: one outer index with an inner index.
        assert_eq!(counts.indexes, 2);
    }
}
