//! `ocil convert`: snapshots of each outcome and refusal, the OCI -> Docker -> OCI round
//! trip (same digests), determinism of recompression, and `fsck --deep` after it.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::{
    TestDir, blob_path, digest_of, entry, put_blob, read_index, snap, write_index,
};

fn doc(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&fs_err::read(blob_path(layout, digest)).unwrap()).unwrap()
}

/// `img:v1` plus `img:app`: v1 with two layers (gzip), made by `ocil append`.
fn with_layers(t: &TestDir) {
    t.image("img");
    for (dir, file, text) in [("l1", "a.txt", "hello\n"), ("l2", "b/c.txt", "world\n")] {
        let p = t.join(dir).join(file);
        fs_err::create_dir_all(p.parent().unwrap()).unwrap();
        fs_err::write(&p, text).unwrap();
    }
    t.run(&["append", "img:v1", "l1", "l2", "--tag", "app"]);
}

#[test]
fn convert_round_trip() {
    let t = TestDir::new();
    with_layers(&t);
    let img = t.join("img");
    let app = digest_of(&img, "app");
    snap!(
        t,
        "convert_to_docker",
        t.ocil().args(["convert", "img:app", "--to", "docker", "--tag", "d"])
    );
    let d = digest_of(&img, "d");
    let m = doc(&img, &d);
    assert_eq!(m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(m["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
    }
    // The config (the image ID) and the layers are the same blobs.
    let a = doc(&img, &app);
    assert_eq!(m["config"]["digest"], a["config"]["digest"]);
    assert_eq!(m["layers"][0]["digest"], a["layers"][0]["digest"]);
    // And back: the same manifest digest as before.
    snap!(
        t,
        "convert_back_to_oci",
        t.ocil().args(["convert", "img:d", "--to", "oci", "--tag", "o"])
    );
    assert_eq!(digest_of(&img, "o"), app);
    // Converting to the family it already has changes nothing.
    t.run(&["convert", "img:app", "--to", "oci"]);
    assert_eq!(digest_of(&img, "app"), app);
    // Without --tag the tag moves.
    t.run(&["convert", "img:app", "--to", "docker"]);
    assert_eq!(digest_of(&img, "app"), d);
    snap!(t, "convert_fsck", t.ocil().args(["fsck", "--deep", "img"]));
}

#[test]
fn convert_index_whole_and_one_platform() {
    let t = TestDir::new();
    t.multi("img");
    let img = t.join("img");
    let multi = digest_of(&img, "multi");
    snap!(
        t,
        "convert_index_to_docker",
        t.ocil().args(["convert", "img:multi", "--to", "docker", "--tag", "dl"])
    );
    let list = doc(&img, &digest_of(&img, "dl"));
    assert_eq!(list["mediaType"], "application/vnd.docker.distribution.manifest.list.v2+json");
    assert_eq!(entry(&img, "dl")["mediaType"], list["mediaType"]);
    for child in list["manifests"].as_array().unwrap() {
        assert_eq!(child["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
        assert!(child["platform"].is_object());
        let m = doc(&img, child["digest"].as_str().unwrap());
        assert_eq!(m["mediaType"], child["mediaType"]);
    }
    t.run(&["convert", "img:dl", "--to", "oci", "--tag", "back"]);
    assert_eq!(digest_of(&img, "back"), multi);
    snap!(
        t,
        "convert_index_one_platform",
        t.ocil().args([
            "convert",
            "img:multi",
            "--to",
            "docker",
            "--platform",
            "linux/arm64",
            "--tag",
            "arm"
        ])
    );
    let arm = entry(&img, "arm");
    assert_eq!(arm["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(arm["platform"]["architecture"], "arm64");
    snap!(
        t,
        "convert_index_absent_platform",
        t.ocil().args(["convert", "img:multi", "--to", "docker", "--platform", "linux/s390x"])
    );
    snap!(t, "convert_fsck_index", t.ocil().args(["fsck", "img"]));
}

#[test]
fn convert_recompress() {
    let t = TestDir::new();
    with_layers(&t);
    let img = t.join("img");
    snap!(
        t,
        "convert_to_zstd",
        t.ocil().args(["convert", "img:app", "--to", "oci", "--compress", "zstd", "--tag", "z"])
    );
    let z = doc(&img, &digest_of(&img, "z"));
    for l in z["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd");
        let bytes = fs_err::read(blob_path(&img, l["digest"].as_str().unwrap())).unwrap();
        assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    }
    // Deterministic: again, the same digests.
    t.run(&["convert", "img:app", "--to", "oci", "--compress", "zstd", "--tag", "z2"]);
    assert_eq!(digest_of(&img, "z2"), digest_of(&img, "z"));
    // zstd to Docker: refused without --compress gzip, and --compress zstd is refused.
    snap!(t, "convert_zstd_to_docker", t.ocil().args(["convert", "img:z", "--to", "docker"]));
    snap!(
        t,
        "convert_docker_zstd",
        t.ocil().args(["convert", "img:app", "--to", "docker", "--compress", "zstd"])
    );
    snap!(
        t,
        "convert_zstd_to_docker_gzip",
        t.ocil().args(["convert", "img:z", "--to", "docker", "--compress", "gzip", "--tag", "dg"])
    );
    // Back to gzip: the layers' uncompressed digests (diff_ids) are unchanged, so the config is.
    let dg = doc(&img, &digest_of(&img, "dg"));
    assert_eq!(dg["config"]["digest"], z["config"]["digest"]);
    snap!(t, "convert_recompressed_fsck_deep", t.ocil().args(["fsck", "--deep", "img"]));
}

#[test]
fn convert_refusals_and_drops() {
    let t = TestDir::new();
    with_layers(&t);
    let img = t.join("img");
    // A broken diff_id: recompression notices.
    let app = doc(&img, &digest_of(&img, "app"));
    let mut config = doc(&img, app["config"]["digest"].as_str().unwrap());
    config["rootfs"]["diff_ids"][1] = json!(format!("sha256:{}", "0".repeat(64)));
    let (cd, cs) = put_blob(&img, &serde_json::to_vec(&config).unwrap());
    let mut bad = app.clone();
    bad["config"]["digest"] = json!(cd);
    bad["config"]["size"] = json!(cs);
    let (bd, bs) = put_blob(&img, &serde_json::to_vec(&bad).unwrap());
    // An artifact that refers to app, and app with annotations.
    let (empty, _) = put_blob(&img, b"{}");
    let referrer = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.sbom",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest_of(&img, "app"), "size": entry(&img, "app")["size"]},
    });
    let (rd, rs) = put_blob(&img, &serde_json::to_vec(&referrer).unwrap());
    let mut annotated = app.clone();
    annotated["annotations"] = json!({"org.opencontainers.image.source": "https://example.com"});
    let (ad, as_) = put_blob(&img, &serde_json::to_vec(&annotated).unwrap());
    let mut index = read_index(&img);
    let m = "application/vnd.oci.image.manifest.v1+json";
    for (tag, d, s) in [("bad", &bd, bs), ("sbom", &rd, rs), ("annotated", &ad, as_)] {
        index["manifests"].as_array_mut().unwrap().push(json!({
            "mediaType": m, "digest": d, "size": s,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    }
    write_index(&img, &index);
    let before = fs_err::read(img.join("index.json")).unwrap();
    snap!(
        t,
        "convert_bad_diff_id",
        t.ocil().args(["convert", "img:bad", "--to", "oci", "--compress", "zstd"])
    );
    snap!(
        t,
        "convert_referrer_to_docker",
        t.ocil().args(["convert", "img:sbom", "--to", "docker"])
    );
    snap!(t, "convert_unknown_tag", t.ocil().args(["convert", "img:nope", "--to", "docker"]));
    assert_eq!(fs_err::read(img.join("index.json")).unwrap(), before, "index.json changed");
    snap!(
        t,
        "convert_drops_annotations",
        t.ocil().args(["convert", "img:annotated", "--to", "docker", "--tag", "ad"])
    );
    assert!(doc(&img, &digest_of(&img, "ad")).get("annotations").is_none());
}
