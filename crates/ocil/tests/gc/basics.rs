//! `ocil gc` on single layouts: Docker-typed images keep every blob, a broken reachable
//! document stops it, `--dry-run` changes nothing, `--tagged-only` drops untagged entries.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::layout::*;

/// A Docker manifest list tagged `latest` over two schema2 manifests with Docker configs and
/// `rootfs.diff.tar.gzip` layers (one shared), an absent foreign layer, plus an old Docker
/// image nobody names and loose garbage.
fn docker_layout(dir: &std::path::Path) -> (BTreeSet<String>, BTreeSet<String>) {
    init(dir);
    let before = blobs_on_disk(dir);
    let shared = put(dir, DOCKER_LAYER, b"shared base layer (gzip in real life)");
    let amd = put(dir, DOCKER_LAYER, b"amd64 layer");
    let arm = put(dir, DOCKER_LAYER, b"arm64 layer");
    let foreign = json!({
        "mediaType": DOCKER_FOREIGN_LAYER,
        "digest": digest(b"a windows base layer that is not in the layout"),
        "size": 46,
        "urls": ["https://example.invalid/layer"],
    });
    let m_amd = image(dir, true, "amd64", &[shared.clone(), amd, foreign], "amd64");
    let m_arm = image(dir, true, "arm64", &[shared.clone(), arm], "arm64");
    let mut children = Vec::new();
    for (m, arch) in [(&m_amd, "amd64"), (&m_arm, "arm64")] {
        let mut c = m.clone();
        c["platform"] = json!({"architecture": arch, "os": "linux"});
        children.push(c);
    }
    let list = put_json(
        dir,
        DOCKER_LIST,
        &json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": children}),
    );
    write_index(dir, &[tagged(&list, "latest")]);
    let live: BTreeSet<String> = blobs_on_disk(dir).difference(&before).cloned().collect();

    let old_layer = put(dir, DOCKER_LAYER, b"old layer");
    image(dir, true, "amd64", &[shared, old_layer], "old");
    for i in 0..20 {
        put(dir, "application/octet-stream", format!("garbage {i}").as_bytes());
    }
    let garbage: BTreeSet<String> = blobs_on_disk(dir).difference(&live).cloned().collect();
    assert_eq!(live.len(), 8, "list, 2 manifests, 2 configs, 3 layers (the foreign one is absent)");
    (live, garbage)
}

#[test]
fn docker_image_keeps_its_config_and_layers() {
    for flags in [&[][..], &["--tagged-only", "--drop-referrers"][..]] {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        let (live, garbage) = docker_layout(dir);
        let mut args = vec!["gc", "--prune=now", "--json"];
        args.extend_from_slice(flags);
        args.push(arg(dir));
        let out = ocil_ok(&args);
        let v: Value = serde_json::from_slice(&out.stdout).expect("gc --json prints JSON");
        assert_eq!(v["report"]["removed_blobs"], json!(garbage.len()), "{flags:?}: {v}");
        assert_eq!(blobs_on_disk(dir), live, "{flags:?}: exactly the image's blobs stay");
        for (_, d) in entries(dir) {
            let list: Value =
                serde_json::from_slice(&std::fs::read(dir.join(blob_path(&d))).expect("list"))
                    .expect("JSON");
            for m in list["manifests"].as_array().expect("manifests") {
                assert_image_complete(dir, m["digest"].as_str().expect("digest"), "docker");
            }
        }
        assert_fsck_clean(dir, "after gc of a Docker image");
        ocil_ok(&["inspect", "--platform", "linux/arm64", &format!("{}:latest", arg(dir))]);
        // A second gc removes nothing.
        let out = ocil_ok(&["gc", "--prune=now", "--json", arg(dir)]);
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["report"]["removed_blobs"], json!(0), "second gc: {v}");
        assert_eq!(blobs_on_disk(dir), live);
    }
}

#[test]
fn dry_run_and_default_grace_remove_nothing() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    let (_, garbage) = docker_layout(dir);
    let all = blobs_on_disk(dir);
    let out = ocil_ok(&["gc", "--prune=now", "--dry-run", "--json", arg(dir)]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let planned: BTreeSet<String> = v["plan"]["remove"]
        .as_array()
        .expect("remove")
        .iter()
        .map(|g| g["digest"].as_str().expect("digest").to_owned())
        .collect();
    assert_eq!(planned, garbage, "the dry run lists the garbage");
    assert_eq!(blobs_on_disk(dir), all, "the dry run removes nothing");
    // Blobs written just now are younger than the default 10 minutes.
    ocil_ok(&["gc", arg(dir)]);
    assert_eq!(blobs_on_disk(dir), all, "the default grace keeps fresh garbage");
}

#[test]
fn broken_reachable_documents_stop_gc() {
    let cases: [(&str, &[u8]); 3] = [
        ("not JSON", b"not JSON at all"),
        ("polyglot", br#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[],"manifests":[]}"#),
        ("null manifests in index.json", b""),
    ];
    for (what, bytes) in cases {
        let tmp = tempfile::tempdir().expect("temp dir");
        let dir = tmp.path();
        let (live, _) = docker_layout(dir);
        let mut entries: Vec<Value> = Vec::new();
        if bytes.is_empty() {
            std::fs::write(dir.join("index.json"), br#"{"schemaVersion":2,"manifests":null}"#)
                .expect("write index.json");
        } else {
            let bad = put(dir, OCI_MANIFEST, bytes);
            let good = std::fs::read(dir.join("index.json")).expect("read");
            let v: Value = serde_json::from_slice(&good).expect("JSON");
            entries.extend(v["manifests"].as_array().expect("manifests").iter().cloned());
            entries.push(tagged(&bad, "bad"));
            write_index(dir, &entries);
        }
        let index = std::fs::read(dir.join("index.json")).expect("read");
        let all = blobs_on_disk(dir);
        let out = ocil(&["gc", "--prune=now", arg(dir)]);
        assert_eq!(out.status.code(), Some(2), "{what}: gc refuses");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("error:"), "{what}: {stderr}");
        assert_eq!(blobs_on_disk(dir), all, "{what}: nothing deleted");
        assert_eq!(std::fs::read(dir.join("index.json")).expect("read"), index, "{what}");
        // --force proceeds.
        ocil_ok(&["gc", "--prune=now", "--force", arg(dir)]);
        let after = blobs_on_disk(dir);
        assert!(after.len() < all.len(), "{what}: --force removed garbage");
        if !bytes.is_empty() {
            assert!(live.is_subset(&after), "{what}: the good image survives --force");
        }
    }
}

#[test]
fn tagged_only_drops_untagged_entries_but_not_referrers_of_live_images() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path();
    init(dir);
    let layer = put(dir, OCI_LAYER, b"layer");
    let a = image(dir, false, "amd64", std::slice::from_ref(&layer), "a");
    let b_layer = put(dir, OCI_LAYER, b"layer of b");
    let b = image(dir, false, "amd64", &[layer, b_layer.clone()], "b");
    let empty = put(dir, "application/vnd.oci.empty.v1+json", b"{}");
    let sig_payload = put(dir, "application/vnd.example.signature", b"signed a");
    let sig = put_json(
        dir,
        OCI_MANIFEST,
        &json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": empty, "layers": [sig_payload], "subject": a,
        }),
    );
    write_index(dir, &[tagged(&a, "a"), b.clone(), sig.clone()]);
    let out = ocil_ok(&["gc", "--prune=now", "--tagged-only", arg(dir)]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("untagged entries dropped from index.json: 1"), "{stdout}");
    let left: Vec<String> = entries(dir).into_iter().map(|(_, d)| d).collect();
    let want: Vec<String> =
        [&a, &sig].iter().map(|d| d["digest"].as_str().expect("digest").to_owned()).collect();
    assert_eq!(left, want, "b dropped, the signature of a kept");
    let on_disk = blobs_on_disk(dir);
    assert!(!on_disk.contains(b["digest"].as_str().expect("digest")), "b's manifest removed");
    assert!(!on_disk.contains(b_layer["digest"].as_str().expect("digest")), "b's layer removed");
    assert_image_complete(dir, a["digest"].as_str().expect("digest"), "a");
    assert_image_complete(dir, sig["digest"].as_str().expect("digest"), "signature");
    assert_fsck_clean(dir, "after --tagged-only");
    assert!(temp_files(dir).is_empty(), "no temp files left: {:?}", temp_files(dir));
}
