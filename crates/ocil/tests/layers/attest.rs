//! `ocil index` with BuildKit attestations: an index added from another layout brings its
//! attestation (and its blobs) still pointing at its image; replacing or removing that
//! image drops the attestation; the result stays valid for fsck and skopeo.

use std::path::Path;

use serde_json::{Value, json};

use crate::layout::{OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, arg, blob_path, ocil_ok, put, put_json};
use crate::support::{require_tool, run_ok, src_tree};

const REF_DIGEST: &str = "vnd.docker.reference.digest";

fn json_blob(dir: &Path, digest: &str) -> Value {
    serde_json::from_slice(&fs_err::read(dir.join(blob_path(digest))).expect("read blob"))
        .expect("JSON")
}

fn index_json(dir: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(dir.join("index.json")).expect("index.json"))
        .expect("JSON")
}

/// The children of the index tagged `tag`.
fn children(dir: &Path, tag: &str) -> Vec<Value> {
    let entry = index_json(dir)["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("tagged")
        .clone();
    json_blob(dir, entry["digest"].as_str().expect("digest"))["manifests"]
        .as_array()
        .expect("children")
        .clone()
}

/// Give the index tagged `multi` a BuildKit-style attestation of its first child (written
/// by hand, while no ocil runs). Returns the attestation's digest and its layer's.
fn add_attestation(dir: &Path) -> (String, String) {
    let statement = put(
        dir,
        "application/vnd.in-toto+json",
        br#"{"_type":"https://in-toto.io/Statement/v0.1"}"#,
    );
    let config = put_json(
        dir,
        OCI_CONFIG,
        &json!({"architecture": "unknown", "os": "unknown", "config": {}, "rootfs": {"type": "layers", "diff_ids": [statement["digest"]]}}),
    );
    let manifest = put_json(
        dir,
        OCI_MANIFEST,
        &json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": [statement]}),
    );
    let mut top = index_json(dir);
    let entry = top["manifests"]
        .as_array_mut()
        .expect("manifests")
        .iter_mut()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == "multi")
        .expect("multi");
    let mut index = json_blob(dir, entry["digest"].as_str().expect("digest"));
    let first = index["manifests"][0]["digest"].clone();
    let mut child = manifest.clone();
    child["annotations"] =
        json!({REF_DIGEST: first, "vnd.docker.reference.type": "attestation-manifest"});
    child["platform"] = json!({"architecture": "unknown", "os": "unknown"});
    index["manifests"].as_array_mut().expect("children").push(child);
    let stored = put_json(dir, OCI_INDEX, &index);
    entry["digest"] = stored["digest"].clone();
    entry["size"] = stored["size"].clone();
    fs_err::write(dir.join("index.json"), serde_json::to_vec(&top).expect("JSON")).expect("write");
    (
        manifest["digest"].as_str().expect("d").to_owned(),
        statement["digest"].as_str().expect("d").to_owned(),
    )
}

#[test]
fn attestations_follow_their_images_needs_skopeo() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let ocil = env!("CARGO_BIN_EXE_ocil");
    src_tree(&t.join("src"), b"x");
    run_ok(ocil, &["init", "L"], t);
    run_ok(ocil, &["new", "L:amd"], t);
    run_ok(ocil, &["new", "--platform", "linux/arm64", "L:arm"], t);
    run_ok(ocil, &["index", "L:multi", "--add", "L:amd", "--add", "L:arm"], t);
    let l = t.join("L");
    let (attestation, statement) = add_attestation(&l);
    ocil_ok(&["fsck", arg(&l)]);

    // From another layout: the attestation comes along, with its blobs, still attached.
    run_ok(ocil, &["init", "O"], t);
    run_ok(ocil, &["index", "O:copy", "--add", "L:multi"], t);
    let o = t.join("O");
    let c = children(&o, "copy");
    assert_eq!(c.len(), 3, "{c:?}");
    assert_eq!(c[2]["digest"], attestation.as_str());
    assert_eq!(c[2]["annotations"][REF_DIGEST], c[0]["digest"]);
    assert!(o.join(blob_path(&statement)).is_file(), "the attestation's layer was copied");
    ocil_ok(&["fsck", "--deep", arg(&o)]);

    // Replacing the amd64 image drops the attestation that described the old one.
    run_ok(ocil, &["append", "L:amd", "src"], t);
    let out = run_ok(ocil, &["index", "L:multi", "--add", "L:amd"], t);
    assert!(out.contains("removed  attestation"), "{out}");
    let c = children(&l, "multi");
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c.iter().all(|x| x["digest"] != attestation.as_str()));
    ocil_ok(&["fsck", "--deep", arg(&l)]);

    // Removing a platform removes its attestation; the other child's bytes stay.
    let arm_before = children(&o, "copy")[1].clone();
    run_ok(ocil, &["index", "O:copy", "--rm-platform", "linux/amd64"], t);
    let c = children(&o, "copy");
    assert_eq!(c, [arm_before]);
    ocil_ok(&["fsck", "--deep", arg(&o)]);
    if require_tool("skopeo") {
        run_ok("skopeo", &["copy", "--all", "oci:O:copy", "oci:C:copy"], t);
        ocil_ok(&["fsck", "--deep", arg(&t.join("C"))]);
    }
}
