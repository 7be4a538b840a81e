//! `ocil copy`: what it prints (snapshots) and what it does to DST: only missing blobs are
//! copied, `--link` makes hard links (and falls back to copies across filesystems),
//! `--platform`, tag conflicts, and a corrupt SRC blob leaves DST unchanged.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::{Value, json};

use crate::support::{TestDir, blob_path, digest_of, put_blob, read_index, snap, write_index};

/// Every file under `blobs/` with its bytes, and index.json.
fn state(layout: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(layout).sort_by_file_name() {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(layout).unwrap().display().to_string();
            out.insert(rel, fs_err::read(e.path()).unwrap());
        }
    }
    out
}

fn blob_names(layout: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs_err::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn copy_all_then_only_missing() {
    let t = TestDir::new();
    t.multi("src");
    snap!(t, "copy_all", t.ocil().args(["copy", "src", "dst"]));
    assert_eq!(blob_names(&t.join("src")), blob_names(&t.join("dst")));
    assert_eq!(read_index(&t.join("src")), read_index(&t.join("dst")));
    snap!(t, "copy_fsck_dst", t.ocil().args(["fsck", "dst"]));
    // Again: nothing to copy.
    let again = json_of(&t.ocil().args(["copy", "--json", "src", "dst"]).output().unwrap());
    assert_eq!(again["copied"], 0);
    assert_eq!(again["present"], again["blobs"]);

    // One new image on top of v1: only its manifest and config are new.
    t.run(&["new", "--created", "2021-01-01T00:00:00Z", "src:v2"]);
    let report = json_of(&t.ocil().args(["copy", "--json", "src:v2", "dst"]).output().unwrap());
    assert_eq!(report["blobs"], 2, "{report}");
    assert_eq!(report["copied"], 2, "{report}");
    assert_eq!(report["images"][0]["tag"], "v2");
    assert_eq!(digest_of(&t.join("dst"), "v2"), digest_of(&t.join("src"), "v2"));
}

#[test]
fn copy_tags() {
    let t = TestDir::new();
    t.image("src");
    t.run(&["new", "--platform", "linux/arm64", "src:arm64"]);
    snap!(t, "copy_tag_to_new_name", t.ocil().args(["copy", "src:v1", "dst:prod"]));
    let v1 = digest_of(&t.join("src"), "v1");
    assert_eq!(digest_of(&t.join("dst"), "prod"), v1);
    snap!(t, "copy_by_digest", t.ocil().args(["copy", &format!("src@{v1}"), "dst2"]));
    // A tag that names another image in DST.
    snap!(t, "copy_tag_conflict", t.ocil().args(["copy", "src:arm64", "dst:prod"]));
    assert_eq!(digest_of(&t.join("dst"), "prod"), v1);
    snap!(
        t,
        "copy_tag_conflict_forced",
        t.ocil().args(["copy", "--force", "src:arm64", "dst:prod"])
    );
    assert_eq!(digest_of(&t.join("dst"), "prod"), digest_of(&t.join("src"), "arm64"));
    // Same image, same tag: fine.
    t.run(&["copy", "src:arm64", "dst:prod"]);
    snap!(t, "copy_tag_without_ref", t.ocil().args(["copy", "src", "dst:x"]));
    snap!(t, "copy_unknown_ref", t.ocil().args(["copy", "src:nope", "dst"]));
    snap!(t, "copy_missing_src", t.ocil().args(["copy", "nowhere:v1", "dst"]));
    // A failed copy into a new directory leaves no directory behind.
    assert!(!t.join("fresh").exists());
    snap!(t, "copy_unknown_ref_fresh", t.ocil().args(["copy", "src:nope", "fresh"]));
    assert!(!t.join("fresh").exists());
}

#[test]
fn copy_platform() {
    let t = TestDir::new();
    t.multi("src");
    snap!(
        t,
        "copy_platform",
        t.ocil().args(["copy", "--platform", "linux/arm64", "src:multi", "dst:arm"])
    );
    let multi: Value = serde_json::from_slice(
        &fs_err::read(blob_path(&t.join("src"), &digest_of(&t.join("src"), "multi"))).unwrap(),
    )
    .unwrap();
    let arm = multi["manifests"][1]["digest"].as_str().unwrap();
    assert_eq!(digest_of(&t.join("dst"), "arm"), arm);
    // Only that image's blobs: its manifest and config.
    assert_eq!(blob_names(&t.join("dst")).len(), 2);
    snap!(
        t,
        "copy_platform_absent",
        t.ocil().args(["copy", "--platform", "linux/s390x", "src:multi", "dst:s"])
    );
    snap!(
        t,
        "copy_platform_not_an_index",
        t.ocil().args(["copy", "--platform", "linux/amd64", "src:v1", "dst:s"])
    );
    snap!(
        t,
        "copy_platform_without_ref",
        t.ocil().args(["copy", "--platform", "linux/amd64", "src", "dst"])
    );
}

#[test]
fn copy_link() {
    let t = TestDir::new();
    t.image("src");
    let report =
        json_of(&t.ocil().args(["copy", "--json", "--link", "src", "dst"]).output().unwrap());
    assert_eq!(report["linked"], 2, "{report}");
    for name in blob_names(&t.join("src")) {
        let a = fs_err::metadata(t.join("src/blobs/sha256").join(&name)).unwrap();
        let b = fs_err::metadata(t.join("dst/blobs/sha256").join(&name)).unwrap();
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "{name} is not a hard link");
    }
    // Another filesystem: copies (same bytes, other inodes), with a warning.
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        return;
    }
    let other = tempfile::tempdir_in(shm).unwrap();
    let dst = other.path().join("dst");
    let out = t.ocil().args(["copy", "--link", "src"]).arg(&dst).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let src_dev = fs_err::metadata(t.join("src")).unwrap().dev();
    if fs_err::metadata(&dst).unwrap().dev() == src_dev {
        return; // /dev/shm is not another filesystem here.
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not be hard-linked"), "{stderr}");
    for name in blob_names(&t.join("src")) {
        let a = fs_err::read(t.join("src/blobs/sha256").join(&name)).unwrap();
        let b = fs_err::read(dst.join("blobs/sha256").join(&name)).unwrap();
        assert_eq!(a, b);
        let meta = fs_err::metadata(dst.join("blobs/sha256").join(&name)).unwrap();
        assert_eq!(meta.nlink(), 1);
    }
}

#[test]
fn copy_corrupt_source_blob() {
    let t = TestDir::new();
    t.image("src");
    t.run(&["new", "--created", "2021-01-01T00:00:00Z", "src:v2"]);
    t.run(&["copy", "src:v1", "dst"]);
    let before = state(&t.join("dst"));
    // Damage v2's config in SRC (same size, other bytes).
    let v2: Value = serde_json::from_slice(
        &fs_err::read(blob_path(&t.join("src"), &digest_of(&t.join("src"), "v2"))).unwrap(),
    )
    .unwrap();
    let config = v2["config"]["digest"].as_str().unwrap().to_owned();
    let path = blob_path(&t.join("src"), &config);
    let mut bytes = fs_err::read(&path).unwrap();
    bytes[0] ^= 1;
    fs_err::write(&path, &bytes).unwrap();
    for link in [false, true] {
        let mut cmd = t.ocil();
        cmd.arg("copy");
        if link {
            cmd.arg("--link");
        }
        let name = if link { "copy_corrupt_blob_link" } else { "copy_corrupt_blob" };
        snap!(t, name, cmd.args(["src:v2", "dst"]));
        assert_eq!(state(&t.join("dst")), before, "DST changed");
    }
}

#[test]
fn copy_referrers_come_along() {
    let t = TestDir::new();
    let src = t.image("src");
    let v1 = read_index(&src)["manifests"][0].clone();
    // A signature-like referrer of v1, stored but not named by index.json.
    let (empty, _) = put_blob(&src, b"{}");
    let (payload, payload_size) = put_blob(&src, b"signature");
    let referrer = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": payload, "size": payload_size}],
        "subject": {"mediaType": v1["mediaType"], "digest": v1["digest"], "size": v1["size"]},
    });
    let (referrer, _) = put_blob(&src, &serde_json::to_vec(&referrer).unwrap());
    // And an unrelated stored document.
    put_blob(&src, br#"{"schemaVersion":2,"manifests":[]}"#);
    snap!(t, "copy_with_referrer", t.ocil().args(["copy", "src:v1", "dst"]));
    for d in [&referrer, &payload, &empty] {
        assert!(blob_path(&t.join("dst"), d).is_file(), "{d} not copied");
    }
    assert_eq!(blob_names(&t.join("dst")).len(), 5);
    // Not named by DST's index.json (it was not named by SRC's either).
    assert_eq!(read_index(&t.join("dst"))["manifests"].as_array().unwrap().len(), 1);
    // `ocil gc` keeps it: it is a live referrer.
    t.run(&["gc", "--prune=now", "dst"]);
    assert!(blob_path(&t.join("dst"), &referrer).is_file());
    // An untagged index.json entry of SRC that refers to v1 becomes an entry of DST too.
    let mut index = read_index(&src);
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": referrer,
        "size": fs_err::metadata(blob_path(&src, &referrer)).unwrap().len(),
        "artifactType": "application/vnd.example.signature",
    }));
    write_index(&src, &index);
    t.run(&["copy", "src:v1", "dst3"]);
    let entries = read_index(&t.join("dst3"))["manifests"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1]["digest"], referrer.as_str());
}
