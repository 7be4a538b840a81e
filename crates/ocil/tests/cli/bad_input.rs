//! Damaged and hostile layouts: every one is a clear error that names the file, with exit
//! code 2 for the readers (`ls`, `inspect`, `cat`) and a report with exit code 1 for `fsck`.
//! Nothing is read from outside the layout, big files are refused before they are read, and
//! a closed stdout is not an error.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use assert_cmd::assert::OutputAssertExt;
use predicates::prelude::*;
use predicates::str::contains;
use serde_json::json;

use crate::support::{
    OCI_MANIFEST, TestDir, blob_path, config_of, digest_of, sha256, snap, write_index,
};

/// The readers, as argument lists, on layout `img` (tag `v1`).
fn readers(v1: &str) -> [Vec<String>; 4] {
    [
        vec!["ls".into(), "img".into()],
        vec!["inspect".into(), "img:v1".into()],
        vec!["cat".into(), "img:v1".into()],
        vec!["cat".into(), format!("img@{v1}")],
    ]
}

/// Every reader fails with exit 2, naming the layout and saying `what`; stdout stays empty.
fn readers_refuse(t: &TestDir, v1: &str, what: &str) {
    for args in readers(v1) {
        t.ocil()
            .args(&args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(contains("error: ").and(contains("`img")).and(contains(what)))
            .stderr(contains("panicked").not());
    }
}

#[test]
fn missing_oci_layout() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = digest_of(&img, "v1");
    fs_err::remove_file(img.join("oci-layout")).unwrap();
    readers_refuse(&t, &v1, "`oci-layout` is missing: not an OCI image layout");
    t.ocil()
        .args(["fsck", "img"])
        .assert()
        .code(1)
        .stdout(contains("error[LAYOUT_FILE_MISSING]: no `oci-layout` file"));
}

#[test]
fn garbled_oci_layout() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = digest_of(&img, "v1");
    fs_err::write(img.join("oci-layout"), "imageLayoutVersion: 1.0.0\n").unwrap();
    readers_refuse(&t, &v1, "`oci-layout` is invalid");
    t.ocil()
        .args(["fsck", "img"])
        .assert()
        .code(1)
        .stdout(contains("error[LAYOUT_FILE_INVALID]: `oci-layout` is invalid"));
}

#[test]
fn unsupported_layout_version() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = digest_of(&img, "v1");
    fs_err::write(img.join("oci-layout"), r#"{"imageLayoutVersion":"2.0.0"}"#).unwrap();
    readers_refuse(&t, &v1, "`oci-layout` has imageLayoutVersion `2.0.0`; ocil reads 1.x layouts");
    t.ocil().args(["fsck", "img"]).assert().code(1).stdout(contains("LAYOUT_FILE_INVALID"));
    // Writers refuse too, and change nothing.
    let before = fs_err::read(img.join("index.json")).unwrap();
    t.ocil().args(["tag", "img:v1", "v2"]).assert().code(2).stderr(contains("2.0.0"));
    t.ocil().args(["gc", "--prune=now", "img"]).assert().code(2).stderr(contains("2.0.0"));
    assert_eq!(fs_err::read(img.join("index.json")).unwrap(), before);
}

#[test]
fn index_json_not_json() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = digest_of(&img, "v1");
    fs_err::write(img.join("index.json"), "{\"schemaVersion\": 2, \"manifests\": [").unwrap();
    readers_refuse(&t, &v1, "`index.json` is not valid JSON");
    t.ocil()
        .args(["ls", "img"])
        .assert()
        .stderr(contains("error: cannot read `img/index.json`").and(contains("caused by: ")));
    t.ocil()
        .args(["fsck", "img"])
        .assert()
        .code(1)
        .stdout(contains("error[INDEX_INVALID]").and(contains("at index.json")));
    // gc fails closed: nothing is deleted.
    t.ocil().args(["gc", "--prune=now", "img"]).assert().code(2).stderr(contains("index.json"));
    assert!(blob_path(&img, &v1).is_file());
}

#[test]
fn index_json_manifests_not_an_array() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = digest_of(&img, "v1");
    write_index(&img, &json!({"schemaVersion": 2, "manifests": 5}));
    readers_refuse(&t, &v1, "`index.json` is not a valid image index: `manifests` is not an array");
    t.ocil().args(["fsck", "img"]).assert().code(1).stdout(contains("error[INDEX_INVALID]"));
}

#[test]
fn index_json_manifests_null() {
    let t = TestDir::new();
    let img = t.image("img");
    write_index(&img, &json!({"schemaVersion": 2, "manifests": null}));
    t.ocil().args(["fsck", "img"]).assert().code(1).stdout(contains("error[INDEX_INVALID]"));
    // ls reads it as empty, and says so.
    t.ocil()
        .args(["ls", "img"])
        .assert()
        .code(0)
        .stdout("NAME  DIGEST  TYPE  PLATFORMS  SIZE\n")
        .stderr("warning: `index.json` has no `manifests` array; read as empty\n");
}

#[test]
fn huge_index_json_is_refused_unread() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = digest_of(&img, "v1");
    // 100 MB, sparse: written in no time, never read.
    let f = fs_err::File::create(img.join("index.json")).unwrap();
    f.set_len(100 * 1024 * 1024).unwrap();
    drop(f);
    for args in readers(&v1).iter().chain([&vec!["fsck".to_string(), "img".to_string()]]) {
        let start = Instant::now();
        let out = t.ocil().args(args).output().unwrap();
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "`ocil {}` took {took:?}", args.join(" "));
        let expected = if args[0] == "fsck" { 1 } else { 2 };
        out.clone().assert().code(expected).stderr(contains("panicked").not());
        let all = [out.stdout, out.stderr].concat();
        let all = String::from_utf8_lossy(&all);
        assert!(
            all.contains("`index.json` is 104857600 bytes, over the 16777216-byte limit"),
            "{all}"
        );
    }
}

#[test]
fn digest_with_dot_dot_reads_nothing_outside() {
    let t = TestDir::new();
    t.image("img");
    // What `blobs/sha256/../../../secret` would reach.
    fs_err::write(t.join("secret"), "SECRET").unwrap();
    for target in ["img@sha256:../../x", "img@sha256:../../../secret", "img@sha256:/etc/hostname"] {
        t.ocil()
            .args(["cat", target])
            .assert()
            .code(2)
            .stdout("")
            .stderr(contains("invalid digest").and(contains(target)));
        t.ocil().args(["inspect", target]).assert().code(2).stdout("");
    }
}

/// A file outside the layout, and a symlink to it named for its digest.
fn symlink_out(t: &TestDir, img: &Path) -> String {
    fs_err::write(t.join("outside"), "SECRET").unwrap();
    let digest = sha256(b"SECRET");
    std::os::unix::fs::symlink(t.join("outside"), blob_path(img, &digest)).unwrap();
    digest
}

#[test]
fn symlinked_blob_leading_outside_is_refused() {
    let t = TestDir::new();
    let img = t.image("img");
    let digest = symlink_out(&t, &img);
    let path = format!("blobs/sha256/{}", digest.strip_prefix("sha256:").unwrap());
    for command in ["cat", "inspect"] {
        t.ocil()
            .args([command, &format!("img@{digest}")])
            .assert()
            .code(2)
            .stdout("")
            .stderr(contains(&*path).and(contains("leads outside the layout")));
    }
    // fsck names it as a stray and does not follow it.
    t.ocil()
        .args(["fsck", "img"])
        .assert()
        .code(0)
        .stdout(contains(format!("warning[STRAY]: a symlink, not a regular file\n  at {path}")))
        .stdout(contains("SECRET").not());
    // gc keeps it (strays are never deleted) and the outside file is untouched.
    t.ocil().args(["gc", "--prune=now", "img"]).assert().code(0).stdout(contains(&*path));
    assert_eq!(fs_err::read_to_string(t.join("outside")).unwrap(), "SECRET");
}

#[test]
fn reachable_blob_replaced_by_a_symlink_outside() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = digest_of(&img, "v1");
    let manifest = fs_err::read(blob_path(&img, &v1)).unwrap();
    // The outside file even has the right bytes: it is refused for where it is.
    fs_err::write(t.join("outside"), &manifest).unwrap();
    fs_err::remove_file(blob_path(&img, &v1)).unwrap();
    std::os::unix::fs::symlink(t.join("outside"), blob_path(&img, &v1)).unwrap();
    for args in [["cat", "img:v1"], ["inspect", "img:v1"], ["inspect", "img"]] {
        t.ocil()
            .args(args)
            .assert()
            .code(2)
            .stdout("")
            .stderr(contains("leads outside the layout").and(contains(&v1[7..])));
    }
    t.ocil()
        .args(["fsck", "img"])
        .assert()
        .code(1)
        .stdout(contains("leads outside the layout").and(contains("warning[STRAY]")));
}

#[test]
fn truncated_blob() {
    let t = TestDir::new();
    let img = t.image("img");
    let config = config_of(&img, "v1");
    let file = fs_err::OpenOptions::new().write(true).open(blob_path(&img, &config)).unwrap();
    file.set_len(10).unwrap();
    drop(file);
    damaged_blob_is_reported(&t, &config);
}

#[test]
fn blob_with_other_bytes() {
    let t = TestDir::new();
    let img = t.image("img");
    let config = config_of(&img, "v1");
    let path = blob_path(&img, &config);
    // Same size, one byte changed.
    let mut bytes = fs_err::read(&path).unwrap();
    bytes[1] ^= 0x20;
    fs_err::write(&path, bytes).unwrap();
    damaged_blob_is_reported(&t, &config);
}

/// `cat` refuses the blob (exit 2, naming it, printing none of it); fsck reports it (exit 1).
fn damaged_blob_is_reported(t: &TestDir, digest: &str) {
    let path = format!("blobs/sha256/{}", &digest[7..]);
    t.ocil()
        .args(["cat", &format!("img@{digest}")])
        .assert()
        .code(2)
        .stdout("")
        .stderr(contains(&*path).and(contains("hashes to `sha256:")).and(contains(digest)));
    t.ocil()
        .args(["fsck", "img"])
        .assert()
        .code(1)
        .stdout(contains("error[DIGEST_MISMATCH]: content hashes to `sha256:"))
        .stdout(contains(format!("  at {path}\n")));
    t.ocil()
        .args(["fsck", "--json", "img"])
        .assert()
        .code(1)
        .stdout(contains("\"code\": \"DIGEST_MISMATCH\"").and(contains("\"clean\": false")));
}

#[test]
fn closed_stdout_is_not_an_error() {
    let t = TestDir::new();
    let img = t.image("img");
    // 2000 entries, all naming the one image: far more output than a pipe buffer holds.
    let v1 = crate::support::entry(&img, "v1");
    let manifests: Vec<_> = (0..2000)
        .map(|i| {
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": v1["digest"],
                "size": v1["size"],
                "annotations": {"org.opencontainers.image.ref.name": format!("tag-{i:04}")},
            })
        })
        .collect();
    write_index(&img, &json!({"schemaVersion": 2, "manifests": manifests}));
    for args in [&["ls", "img"][..], &["ls", "--json", "img"], &["fsck", "--json", "img"]] {
        let mut child =
            t.ocil().args(args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // Close the read end before reading anything: every write gets EPIPE.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "`ocil {}`: {status}: {stderr}", args.join(" "));
        assert_eq!(stderr, "", "`ocil {}`", args.join(" "));
    }
}

#[test]
fn a_text_file_is_neither_a_layout_nor_an_archive_and_is_not_quoted() {
    let t = TestDir::new();
    let text = "root:x:0:0:SECRET-PASSWD-LINE:/root:/bin/bash\n".repeat(20);
    fs_err::write(t.join("passwd"), &text).unwrap();
    snap!(t, "text_file_ls", t.ocil().args(["ls", "passwd"]));
    snap!(t, "text_file_fsck", t.ocil().args(["fsck", "passwd"]));
    snap!(t, "text_file_inspect", t.ocil().args(["inspect", "passwd:v1"]));
    for args in [&["ls", "passwd"][..], &["fsck", "passwd"], &["import", "passwd", "dst"]] {
        let out = t.ocil().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let shown = String::from_utf8_lossy(&out.stderr) + String::from_utf8_lossy(&out.stdout);
        assert!(!shown.contains("SECRET"), "{args:?} quotes the file: {shown}");
    }
}

#[test]
fn under_json_an_error_is_json_on_stdout_too() {
    let t = TestDir::new();
    snap!(t, "json_error_missing_layout", t.ocil().args(["ls", "--json", "nosuch"]));
    let out = t.ocil().args(["inspect", "--json", "nosuch:v1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(v["error"]["message"].as_str().unwrap().contains("nosuch"), "{v}");
    // Without --json, stdout stays empty.
    let out = t.ocil().args(["inspect", "nosuch:v1"]).output().unwrap();
    assert!(out.stdout.is_empty());
}
