//! Peer-made fixtures edited by `ocil config` and `ocil annotate` (plain images, one
//! platform of an index, every platform of an index with a BuildKit attestation, Docker
//! manifest lists, platform changes), then judged by the peers: `umoci stat`, `umoci unpack
//! --rootless`, `skopeo inspect`, `skopeo copy --all` (which verifies every blob it copies),
//! and `ocil fsck`.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// `umoci stat` and `umoci unpack --rootless` accept `DIR:tag`; the bundle's runtime
/// config, for checks.
fn umoci_accepts(dir: &Path, tag: &str, bundle: &Path) -> Option<Value> {
    if !require_tool("umoci") {
        return None;
    }
    let image = format!("{}:{tag}", arg(dir));
    peer_ok("umoci", &["stat", "--image", &image]);
    peer_ok("umoci", &["unpack", "--rootless", "--image", &image, arg(bundle)]);
    let config = fs_err::read(bundle.join("config.json")).expect("the bundle's config.json");
    Some(serde_json::from_slice(&config).expect("JSON"))
}

/// `skopeo inspect` (optionally for another architecture) as JSON.
fn skopeo_inspect(image: &str, arch: Option<&str>) -> Option<Value> {
    if !require_tool("skopeo") {
        return None;
    }
    let mut args = Vec::new();
    if let Some(a) = arch {
        args.extend(["--override-arch", a]);
    }
    args.extend(["inspect", image]);
    Some(serde_json::from_str(&peer_ok("skopeo", &args)).expect("skopeo prints JSON"))
}

#[test]
fn plain_image_config_and_annotations_needs_shared_needs_skopeo_needs_umoci() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let Some(dir) = copy_shared("fixtures/peer-made/umoci-edit/layout", &tmp.path().join("l"))
    else {
        return;
    };
    let d = arg(&dir);
    ocil_ok(&[
        "config",
        &format!("{d}:v3"),
        "--tag",
        "e1",
        "--env",
        "A=C",
        "--env",
        "NEW=1",
        "--entrypoint",
        r#"["/bin/sh","-c"]"#,
        "--cmd",
        "echo edited",
        "--workdir",
        "/opt",
        "--user",
        "1000:1000",
        "--label",
        "org.example.k=v",
        "--expose",
        "8080/tcp",
        "--volume",
        "/data",
        "--stop-signal",
        "SIGINT",
        "--author",
        "ocil test",
        "--created",
        "2024-06-01T00:00:00Z",
        "--history-comment",
        "edited by ocil",
    ]);
    ocil_ok(&["annotate", &format!("{d}:e1"), "org.example.note=hello"]);
    ocil_ok(&["annotate", &format!("{d}:e1"), "--on", "entry", "org.example.entry=1"]);
    assert_fsck_clean(&dir, "after config and annotate");
    assert_eq!(entry(&dir, "e1")["annotations"]["org.example.entry"], "1");
    let m = blob_json(&dir, &digest_of(&dir, "e1"));
    assert_eq!(m["annotations"]["org.example.note"], "hello");
    let c = config_json(&dir, &digest_of(&dir, "e1"));
    assert_eq!(c["created"], "2024-06-01T00:00:00Z");
    assert_eq!(
        c["history"].as_array().expect("history").last(),
        Some(
            &json!({"created":"2024-06-01T00:00:00Z","comment":"edited by ocil","empty_layer":true})
        )
    );
    // v3 is untouched.
    assert_eq!(
        digest_of(&dir, "v3"),
        "sha256:6ae4b4729c93a9c0af535ad9956fd688937d2020727afef5ffbfa99df45e43cb"
    );

    if let Some(rt) = umoci_accepts(&dir, "e1", &tmp.path().join("bundle")) {
        let env = rt["process"]["env"].as_array().expect("env");
        assert!(env.contains(&json!("A=C")) && env.contains(&json!("NEW=1")), "{env:?}");
        assert_eq!(rt["process"]["args"], json!(["/bin/sh", "-c", "echo", "edited"]));
        assert_eq!(rt["process"]["cwd"], "/opt");
        // The layers unpack as before.
        assert!(tmp.path().join("bundle/rootfs/data/new.txt").is_file());
    }
    if let Some(s) = skopeo_inspect(&format!("oci:{d}:e1"), None) {
        assert_eq!(s["Labels"]["org.example.k"], "v");
        assert_eq!(s["Env"], json!(["A=C", "NEW=1"]));
        assert_eq!(s["Digest"], digest_of(&dir, "e1"));
    }
    if require_tool("umoci") {
        peer_ok("umoci", &["stat", "--image", &format!("{d}:v3")]);
    }

    // Platform fields: a plain image's config changes; umoci still reads it.
    ocil_ok(&["config", &format!("{d}:e1"), "--arch", "arm64", "--variant", "v8"]);
    let c = config_json(&dir, &digest_of(&dir, "e1"));
    assert_eq!((c["architecture"].as_str(), c["variant"].as_str()), (Some("arm64"), Some("v8")));
    if require_tool("umoci") {
        peer_ok("umoci", &["stat", "--image", &format!("{d}:e1")]);
    }

    // rm --gc: the edit's intermediate images go, the fixture's images stay intact.
    ocil_ok(&["rm", "--gc", "--prune", "now", &format!("{d}:e1")]);
    assert_fsck_clean(&dir, "after rm --gc");
    if let Some(s) = skopeo_inspect(&format!("oci:{d}:v4"), None) {
        assert_eq!(s["Env"], json!(["A=B"]));
    }
}

/// Children of the index tagged `tag`: `(digest, architecture)`.
fn children(dir: &Path, tag: &str) -> Vec<(String, String)> {
    blob_json(dir, &digest_of(dir, tag))["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|c| {
            (
                c["digest"].as_str().expect("digest").to_owned(),
                c["platform"]["architecture"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn one_platform_of_an_index_needs_shared_needs_skopeo_needs_umoci() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let Some(dir) = copy_shared("fixtures/peer-made/buildah-index/layout", &tmp.path().join("l"))
    else {
        return;
    };
    let d = arg(&dir);
    // No platform choice: an error that lists them, and nothing changes.
    let out = ocil(&["config", &format!("{d}:multi"), "--env", "X=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("linux/amd64, linux/arm64"));

    let before = children(&dir, "multi");
    ocil_ok(&[
        "config",
        &format!("{d}:multi"),
        "--platform",
        "linux/arm64",
        "--env",
        "X=1",
        "--tag",
        "m2",
    ]);
    let after = children(&dir, "m2");
    assert_eq!(after[0], before[0], "amd64 is untouched");
    assert_ne!(after[1].0, before[1].0);
    assert_eq!(after[1].1, "arm64");
    ocil_ok(&["annotate", &format!("{d}:m2"), "org.example.index=yes"]);
    assert_eq!(blob_json(&dir, &digest_of(&dir, "m2"))["annotations"]["org.example.index"], "yes");
    ocil_ok(&["annotate", &format!("{d}:m2"), "--platform", "linux/amd64", "org.example.amd=yes"]);
    let amd = &children(&dir, "m2")[0].0;
    assert_eq!(blob_json(&dir, amd)["annotations"]["org.example.amd"], "yes");
    assert_fsck_clean(&dir, "after the platform edits");

    if let Some(s) = skopeo_inspect(&format!("oci:{d}:m2"), Some("arm64")) {
        assert_eq!(s["Env"], json!(["A=B", "X=1"]));
        assert_eq!(s["Architecture"], "arm64");
    }
    if let Some(s) = skopeo_inspect(&format!("oci:{d}:m2"), Some("amd64")) {
        assert_eq!(s["Env"], json!(["A=B"]));
    }
    // umoci cannot choose a platform: tag the edited child and let it read that.
    let arm = children(&dir, "m2")[1].0.clone();
    ocil_ok(&["tag", &format!("{d}@{arm}"), "arm"]);
    if let Some(rt) = umoci_accepts(&dir, "arm", &tmp.path().join("bundle")) {
        assert!(rt["process"]["env"].as_array().expect("env").contains(&json!("X=1")));
    }

    // A platform change reaches the index's descriptor.
    ocil_ok(&["config", &format!("{d}:m2"), "--platform", "linux/amd64", "--arch", "riscv64"]);
    assert_eq!(children(&dir, "m2")[0].1, "riscv64");
    assert_fsck_clean(&dir, "after the platform change");
    if let Some(s) = skopeo_inspect(&format!("oci:{d}:m2"), Some("riscv64")) {
        assert_eq!(s["Architecture"], "riscv64");
    }
    // An unknown platform is an error naming the ones there are.
    let out = ocil(&["config", &format!("{d}:m2"), "--platform", "linux/s390x", "--env", "Y=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image for platform `linux/s390x`"));
}

/// Add a BuildKit-style attestation for the amd64 image to the index tagged `multi`.
fn add_attestation(dir: &Path) -> String {
    let statement = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document","subject":[],"predicate":{}}"#;
    let (sd, ss) = put_blob(dir, statement);
    let config = json!({"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[sd]}});
    let (cd, cs) = put_blob(dir, &serde_json::to_vec(&config).expect("JSON"));
    let manifest = json!({"schemaVersion":2,"mediaType":OCI_MANIFEST,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":cd,"size":cs},"layers":[{"mediaType":"application/vnd.in-toto+json","digest":sd,"size":ss,"annotations":{"in-toto.io/predicate-type":"https://spdx.dev/Document"}}]});
    let (ad, asz) = put_blob(dir, &serde_json::to_vec(&manifest).expect("JSON"));
    let mut index = blob_json(dir, &digest_of(dir, "multi"));
    let amd = index["manifests"][0]["digest"].clone();
    index["manifests"].as_array_mut().expect("manifests").push(json!({
        "mediaType": OCI_MANIFEST, "digest": ad, "size": asz,
        "annotations": {"vnd.docker.reference.digest": amd, "vnd.docker.reference.type": "attestation-manifest"},
        "platform": {"architecture": "unknown", "os": "unknown"},
    }));
    let (id, is) = put_blob(dir, &serde_json::to_vec(&index).expect("JSON"));
    write_index(
        dir,
        &json!({"schemaVersion":2,"manifests":[{"mediaType":OCI_INDEX,"digest":id,"size":is,"annotations":{REF_NAME:"multi"}}]}),
    );
    ad
}

#[test]
fn all_platforms_with_an_attestation_needs_shared_needs_skopeo() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let Some(dir) = copy_shared("fixtures/peer-made/buildah-index/layout", &tmp.path().join("l"))
    else {
        return;
    };
    let d = arg(&dir);
    let attestation = add_attestation(&dir);
    let attestation_bytes = blob(&dir, &attestation);
    assert_fsck_clean(&dir, "the fixture with an attestation");
    // The error lists image platforms only.
    let out = ocil(&["config", &format!("{d}:multi"), "--env", "X=1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(linux/amd64, linux/arm64)"), "{err}");

    let out = ocil_ok(&["config", &format!("{d}:multi"), "--all-platforms", "--env", "ALL=1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("attestations re-attached: 1"));
    let index = blob_json(&dir, &digest_of(&dir, "multi"));
    let m = index["manifests"].as_array().expect("manifests");
    assert_eq!(m.len(), 3);
    assert_eq!(m[2]["digest"], attestation.as_str(), "the attestation is not edited");
    assert_eq!(blob(&dir, &attestation), attestation_bytes);
    assert_eq!(m[2]["annotations"]["vnd.docker.reference.digest"], m[0]["digest"]);
    for c in &m[..2] {
        let env = &config_json(&dir, c["digest"].as_str().expect("digest"))["config"]["Env"];
        assert_eq!(env, &json!(["A=B", "ALL=1"]));
    }
    assert_fsck_clean(&dir, "after --all-platforms");
    if require_tool("skopeo") {
        // skopeo verifies every blob it copies, the attestation included.
        let copy = tmp.path().join("copy");
        peer_ok(
            "skopeo",
            &["copy", "--all", &format!("oci:{d}:multi"), &format!("oci:{}:multi", arg(&copy))],
        );
        for arch in ["amd64", "arm64"] {
            let s = skopeo_inspect(&format!("oci:{d}:multi"), Some(arch)).expect("skopeo");
            assert_eq!(s["Env"], json!(["A=B", "ALL=1"]), "{arch}");
        }
    }
}

#[test]
fn docker_manifest_list_stays_docker_needs_shared_needs_skopeo() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let Some(dir) =
        copy_shared("fixtures/peer-made/buildah-index-docker/layout", &tmp.path().join("l"))
    else {
        return;
    };
    let d = arg(&dir);
    ocil_ok(&["config", &format!("{d}:multi"), "--all-platforms", "--label", "k=v"]);
    let e = entry(&dir, "multi");
    assert_eq!(e["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");
    let list = blob_json(&dir, e["digest"].as_str().expect("digest"));
    assert_eq!(list["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");
    for c in list["manifests"].as_array().expect("manifests") {
        assert_eq!(c["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
        let m = blob_json(&dir, c["digest"].as_str().expect("digest"));
        assert_eq!(m["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
        assert_eq!(
            config_json(&dir, c["digest"].as_str().expect("d"))["config"]["Labels"]["k"],
            "v"
        );
    }
    assert_fsck_clean(&dir, "after the Docker list edit");
    // skopeo reads Docker-typed images in an OCI layout without a reference only.
    for arch in ["amd64", "arm64"] {
        if let Some(s) = skopeo_inspect(&format!("oci:{d}"), Some(arch)) {
            assert_eq!(s["Labels"]["k"], "v", "{arch}");
        }
    }
}

/// The index `tag` names: its children's `(digest, platform os/arch[/variant], annotations)`.
fn listed(dir: &Path, tag: &str) -> Vec<(String, String, Value)> {
    blob_json(dir, &digest_of(dir, tag))["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|c| {
            let p = &c["platform"];
            let mut platform = format!(
                "{}/{}",
                p["os"].as_str().unwrap_or_default(),
                p["architecture"].as_str().unwrap_or_default()
            );
            if let Some(v) = p["variant"].as_str() {
                platform = format!("{platform}/{v}");
            }
            (c["digest"].as_str().expect("digest").to_owned(), platform, c["annotations"].clone())
        })
        .collect()
}

#[test]
fn conformance_regclient_indexes_needs_shared_needs_skopeo() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let Some(dir) =
        copy_shared("conformance/regclient-regclient/testdata/testrepo", &tmp.path().join("l"))
    else {
        return;
    };
    let d = arg(&dir);
    assert_fsck_clean(&dir, "regclient's testrepo as shipped");

    // v1: two images and two `unknown/unknown` attestations pointing at them.
    let before = listed(&dir, "v1");
    let out =
        ocil_ok(&["config", &format!("{d}:v1"), "--all-platforms", "--env", "E=1", "--tag", "v1e"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("attestations re-attached: 2"));
    let after = listed(&dir, "v1e");
    assert_eq!(after.len(), before.len());
    for (b, a) in before.iter().zip(&after) {
        assert_eq!(a.1, b.1, "platforms stay in order");
        if b.1 == "unknown/unknown" {
            assert_eq!(a.0, b.0, "an attestation is not edited");
            let old_subject = b.2["vnd.docker.reference.digest"].as_str().expect("subject");
            let i = before.iter().position(|x| x.0 == old_subject).expect("subject in the index");
            assert_eq!(a.2["vnd.docker.reference.digest"], after[i].0.as_str());
        } else {
            assert_ne!(a.0, b.0);
        }
    }
    // b1: `linux/arm` is ambiguous (v6 and v7); `linux/arm/v7` is one image.
    let out = ocil(&["config", &format!("{d}:b1"), "--platform", "linux/arm", "--env", "X=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("matches several images"));
    ocil_ok(&["config", &format!("{d}:b1"), "--platform", "linux/arm/v7", "--env", "X=1"]);
    ocil_ok(&["config", &format!("{d}:v3"), "--all-platforms", "--label", "l=1"]);
    ocil_ok(&["annotate", &format!("{d}:v2"), "org.example.edited=1"]);
    assert_fsck_clean(&dir, "after the edits");
    if require_tool("skopeo") {
        for tag in ["v1e", "v3", "v2", "b1"] {
            let to = format!("oci:{}:{tag}", arg(&tmp.path().join("copy")));
            peer_ok("skopeo", &["copy", "--all", &format!("oci:{d}:{tag}"), &to]);
        }
        let s = skopeo_inspect(&format!("oci:{d}:b1"), Some("arm")).expect("skopeo");
        assert!(s["Env"].as_array().expect("Env").contains(&json!("X=1")), "{s}");
    }
}

#[test]
fn conformance_olot_shallow_index_needs_shared() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let Some(dir) =
        copy_shared("conformance/containers-olot/tests/data/ocilayout1", &tmp.path().join("l"))
    else {
        return;
    };
    let d = arg(&dir);
    let fsck_errors = |ctx: &str| {
        let out = ocil(&["fsck", "--json", d]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("fsck --json");
        let mut e: Vec<String> = v["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .filter(|p| p["severity"] == "error")
            .map(|p| format!("{} {}", p["code"], p["digest"]))
            .collect();
        e.sort();
        e.dedup();
        assert!(!e.is_empty(), "{ctx}: the fixture is shallow");
        e
    };
    let before = fsck_errors("before");
    // Only linux/amd64 is present; the other platforms are chosen by their listing alone.
    let out =
        ocil_ok(&["config", &format!("{d}:latest"), "--platform", "linux/amd64", "--env", "X=1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("attestations re-attached: 1"));
    assert_eq!(fsck_errors("after"), before, "the edit adds no problem");
    let out =
        ocil(&["config", &format!("{d}:latest"), "--platform", "linux/s390x", "--env", "X=1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is missing"));
}
