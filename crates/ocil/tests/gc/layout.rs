//! Layouts written by hand (serde_json and sha2, not `ocil-layout`), running the `ocil`
//! binary, and reading the result back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::Digest as _;

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub(crate) const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub(crate) const DOCKER_FOREIGN_LAYER: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Run `ocil` with `args`.
pub(crate) fn ocil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocil")).args(args).output().expect("run ocil")
}

/// Run `ocil` and require exit 0.
pub(crate) fn ocil_ok(args: &[&str]) -> Output {
    let out = ocil(args);
    assert!(
        out.status.success(),
        "ocil {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `path` as a `&str` argument.
pub(crate) fn arg(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

/// `sha256:<hex>` of `bytes`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// `blobs/sha256/<hex>` of a digest.
pub(crate) fn blob_path(digest: &str) -> String {
    let (alg, hex) = digest.split_once(':').expect("a digest has a colon");
    format!("blobs/{alg}/{hex}")
}

/// `oci-layout`, an empty `index.json`, `blobs/sha256/`.
pub(crate) fn init(dir: &Path) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create blobs/sha256");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    write_index(dir, &[]);
}

/// Replace `index.json` (only while no ocil process runs).
pub(crate) fn write_index(dir: &Path, entries: &[Value]) {
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).expect("JSON"))
        .expect("write index.json");
}

/// Store bytes; returns a descriptor.
pub(crate) fn put(dir: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let d = digest(bytes);
    std::fs::write(dir.join(blob_path(&d)), bytes).expect("write blob");
    json!({"mediaType": media_type, "digest": d, "size": bytes.len()})
}

/// Store a JSON document (compact); returns a descriptor.
pub(crate) fn put_json(dir: &Path, media_type: &str, v: &Value) -> Value {
    put(dir, media_type, &serde_json::to_vec(v).expect("JSON"))
}

/// An image: a config and `layers`; returns the manifest's descriptor.
pub(crate) fn image(dir: &Path, docker: bool, arch: &str, layers: &[Value], note: &str) -> Value {
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = put_json(
        dir,
        if docker { DOCKER_CONFIG } else { OCI_CONFIG },
        &json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Env": [format!("NOTE={note}")]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }),
    );
    let media_type = if docker { DOCKER_MANIFEST } else { OCI_MANIFEST };
    put_json(
        dir,
        media_type,
        &json!({"schemaVersion": 2, "mediaType": media_type, "config": config, "layers": layers}),
    )
}

/// `desc` as an `index.json` entry with a tag.
pub(crate) fn tagged(desc: &Value, tag: &str) -> Value {
    let mut d = desc.clone();
    d["annotations"] = json!({REF_NAME: tag});
    d
}

/// Digests of the regular files in `blobs/sha256/` named like digests.
pub(crate) fn blobs_on_disk(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir.join("blobs/sha256"))
        .expect("list blobs/sha256")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_type().expect("file type").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|n| format!("sha256:{n}"))
        .collect()
}

/// Temp files of ocil anywhere in the layout.
pub(crate) fn temp_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for sub in [".", "blobs/sha256"] {
        for e in std::fs::read_dir(dir.join(sub)).expect("list") {
            let name = e.expect("entry").file_name().to_string_lossy().into_owned();
            if name.starts_with(".ocil-tmp-") {
                out.push(format!("{sub}/{name}"));
            }
        }
    }
    out
}

/// The `index.json` entries: (tag or None, digest), in order.
pub(crate) fn entries(dir: &Path) -> Vec<(Option<String>, String)> {
    let bytes = std::fs::read(dir.join("index.json")).expect("read index.json");
    let v: Value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!("index.json is not JSON ({e}): {}", String::from_utf8_lossy(&bytes))
    });
    v["manifests"]
        .as_array()
        .expect("index.json has a manifests array")
        .iter()
        .map(|d| {
            let tag = d["annotations"][REF_NAME].as_str().map(str::to_owned);
            (tag, d["digest"].as_str().expect("entry digest").to_owned())
        })
        .collect()
}

/// tag -> digest, requiring tags to be unique.
pub(crate) fn tags(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (tag, digest) in entries(dir) {
        if let Some(t) = tag {
            assert!(out.insert(t.clone(), digest).is_none(), "tag `{t}` appears twice");
        }
    }
    out
}

/// `ocil fsck DIR` exits 0 (no errors; warnings such as temp files are allowed).
pub(crate) fn assert_fsck_clean(dir: &Path, ctx: &str) {
    let out = ocil(&["fsck", "--quiet", arg(dir)]);
    assert!(
        out.status.success(),
        "{ctx}: fsck failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every blob a manifest names (config and layers) is on disk, read without ocil.
pub(crate) fn assert_image_complete(dir: &Path, manifest: &str, ctx: &str) {
    let bytes = std::fs::read(dir.join(blob_path(manifest)))
        .unwrap_or_else(|e| panic!("{ctx}: manifest `{manifest}` unreadable: {e}"));
    assert_eq!(digest(&bytes), manifest, "{ctx}: manifest bytes");
    let v: Value = serde_json::from_slice(&bytes).expect("manifest is JSON");
    let mut wanted: Vec<&Value> =
        v["layers"].as_array().map(|a| a.iter().collect()).unwrap_or_default();
    wanted.extend(v.get("config"));
    for d in wanted {
        if d["mediaType"] == DOCKER_FOREIGN_LAYER {
            continue;
        }
        let digest = d["digest"].as_str().expect("digest");
        assert!(dir.join(blob_path(digest)).is_file(), "{ctx}: `{digest}` of `{manifest}` is gone");
    }
}
