//! `ocil referrers`: the tree of documents stored for an image, in a layout and in an
//! archive read in place.

use serde_json::{Value, json};

use crate::support::{TestDir, put_blob, read_index, snap};

/// Store an artifact manifest of `artifact_type` whose subject is `subject`.
fn refer(layout: &std::path::Path, subject: &Value, artifact_type: &str, payload: &[u8]) -> Value {
    let (empty, _) = put_blob(layout, b"{}");
    let (data, size) = put_blob(layout, payload);
    let m = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": data, "size": size}],
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
    });
    let bytes = serde_json::to_vec(&m).unwrap();
    let (digest, size) = put_blob(layout, &bytes);
    json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": size})
}

#[test]
fn referrers_tree() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = read_index(&img)["manifests"][0].clone();
    let sig = refer(&img, &v1, "application/vnd.example.signature", b"sig");
    refer(&img, &v1, "application/spdx+json", b"{\"spdx\":1}");
    // A signature of the signature.
    refer(&img, &sig, "application/vnd.example.signature", b"countersig");
    snap!(t, "referrers_tree", t.ocil().args(["referrers", "img:v1"]));
    snap!(t, "referrers_json", t.ocil().args(["referrers", "--json", "img:v1"]));
    snap!(
        t,
        "referrers_sbom_only",
        t.ocil().args(["referrers", "--artifact-type", "application/spdx+json", "img:v1"])
    );
    // In an archive read in place: the same tree.
    t.run(&["export", "img:v1", "-o", "img.tar"]);
    let from_archive = t.run(&["referrers", "--json", "img.tar:v1"]).stdout;
    let from_layout = t.run(&["referrers", "--json", "img:v1"]).stdout;
    assert_eq!(from_archive, from_layout);
    // None stored: said so.
    t.image("bare");
    snap!(t, "referrers_none", t.ocil().args(["referrers", "bare:v1"]));
}
