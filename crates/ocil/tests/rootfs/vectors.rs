//! The tar-extraction vectors of `shared/conformance/tar-extraction-vectors.json`
//! (containerd's TestBreakouts, moby/go-archive's traversal tests), each as the layers of a
//! generated image: the state before extraction as a first layer, the vector's entries as
//! the second, unpacked with both resolvers (openat2 and the walk). Each must give its
//! stated outcome, and nothing outside the rootfs may change: the tree around the bundle
//! (with the vector's outside files, a sibling named like the bundle, a sentinel file) is
//! compared before and after, and the bundle holds only what an unpack writes.

use std::path::Path;

use serde_json::Value;

use crate::peers::shared_dir;
use crate::support::{Layer, Layout, RawEntry, arg, in_root, ocil, snapshot};

/// One vector entry (or state entry) as a tar entry, its name exactly as given (a
/// directory's with the `/` Go's writer adds).
fn entry(v: &Value) -> RawEntry {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
    let mode = v
        .get("mode")
        .and_then(Value::as_str)
        .map(|m| u32::from_str_radix(m, 8).expect("octal mode"));
    let data: Vec<u8> = match (v.get("content"), v.get("content_bytes")) {
        (Some(Value::String(c)), _) => c.as_bytes().to_vec(),
        (_, Some(Value::Array(b))) => b.iter().map(|x| x.as_u64().expect("a byte") as u8).collect(),
        _ => Vec::new(),
    };
    let name = s("name");
    match s("type") {
        "file" => RawEntry::file(name, &data, mode.unwrap_or(0o644)),
        "dir" => {
            let n = if name.ends_with('/') { name.to_owned() } else { format!("{name}/") };
            RawEntry::dir(&n, mode.unwrap_or(0o755))
        }
        "symlink" => RawEntry::symlink(name, s("linkname")),
        "hardlink" => RawEntry::hardlink(name, s("linkname")),
        other => panic!("vector entry type {other}"),
    }
}

/// What the bundle may hold after an unpack: everything it writes, or nothing.
fn bundle_names(bundle: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(bundle)
        .map(|r| r.map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.sort();
    names
}

/// Check one expectation inside the rootfs.
fn check(root: &Path, c: &Value, id: &str) {
    let (k, v) = c.as_object().and_then(|o| o.iter().next()).expect("a check");
    let pair = |v: &Value| -> (String, String) {
        let a = v.as_array().expect("a pair");
        (
            a[0].as_str().expect("a path").to_owned(),
            a[1].as_str().map(str::to_owned).unwrap_or_default(),
        )
    };
    match k.as_str() {
        "outside_untouched" => {} // the snapshot
        "same_file" => {
            let (a, b) = pair(v);
            use std::os::unix::fs::MetadataExt;
            let ma = std::fs::metadata(in_root(root, &a, true))
                .unwrap_or_else(|e| panic!("{id}: {a}: {e}"));
            let mb = std::fs::metadata(in_root(root, &b, true))
                .unwrap_or_else(|e| panic!("{id}: {b}: {e}"));
            assert_eq!(
                (ma.dev(), ma.ino()),
                (mb.dev(), mb.ino()),
                "{id}: {a} and {b} are not the same file"
            );
        }
        "same_symlink_target" => {
            let (a, b) = pair(v);
            let ta = std::fs::read_link(in_root(root, &a, false))
                .unwrap_or_else(|e| panic!("{id}: {a}: {e}"));
            let tb = std::fs::read_link(in_root(root, &b, false))
                .unwrap_or_else(|e| panic!("{id}: {b}: {e}"));
            assert_eq!(ta, tb, "{id}");
        }
        "not_exists" => {
            let p = v.as_str().expect("a path");
            assert!(
                std::fs::symlink_metadata(in_root(root, p, false)).is_err(),
                "{id}: {p} exists"
            );
        }
        "file_content" => {
            let (p, want) = pair(v);
            let got =
                std::fs::read(in_root(root, &p, true)).unwrap_or_else(|e| panic!("{id}: {p}: {e}"));
            assert_eq!(String::from_utf8_lossy(&got), want, "{id}: {p}");
        }
        "file_content_bytes" => {
            let a = v.as_array().expect("a pair");
            let p = a[0].as_str().expect("a path");
            let want: Vec<u8> = a[1]
                .as_array()
                .expect("bytes")
                .iter()
                .map(|b| b.as_u64().expect("byte") as u8)
                .collect();
            let got =
                std::fs::read(in_root(root, p, true)).unwrap_or_else(|e| panic!("{id}: {p}: {e}"));
            assert_eq!(got, want, "{id}: {p}");
        }
        other => panic!("{id}: unknown check {other}"),
    }
}

/// Run one layer vector with one resolver.
fn run_vector(v: &Value, resolver: &str, tmp: &Path) -> String {
    let id = v["id"].as_str().expect("an id");
    let layout = Layout::init(&tmp.join("layout"));
    let around = tmp.join("around");
    std::fs::create_dir_all(&around).expect("mkdir");
    std::fs::write(around.join("sentinel"), "do not touch").expect("write");
    std::fs::create_dir_all(around.join("dest-evil")).expect("mkdir");
    let mut inside = Vec::new();
    for p in v["preexisting"].as_array().into_iter().flatten() {
        if p.get("outside").and_then(Value::as_bool) == Some(true) {
            // Outside the root: relative to the bundle's parent (`../x` of the rootfs).
            let name = p["name"].as_str().expect("a name");
            let rel = name.strip_prefix("../").expect("outside names climb once");
            let at = around.join(rel);
            match p["type"].as_str() {
                Some("dir") => std::fs::create_dir_all(&at).expect("mkdir"),
                _ => {
                    std::fs::create_dir_all(at.parent().expect("a parent")).expect("mkdir");
                    std::fs::write(&at, p["content"].as_str().unwrap_or_default()).expect("write");
                }
            }
        } else {
            inside.push(entry(p));
        }
    }
    let layers_entries: Vec<RawEntry> =
        v["entries"].as_array().expect("entries").iter().map(entry).collect();
    let mut layers = Vec::new();
    if !inside.is_empty() {
        layers.push(Layer::gz(&inside));
    }
    layers.push(Layer::gz(&layers_entries));
    layout.image("v", &layers, serde_json::json!({}), false);
    let bundle = around.join("dest");
    let before = snapshot(&around, &bundle);
    let target = format!("{}:v", arg(&layout.dir));
    let out = ocil(&["unpack", &target, arg(&bundle), "--resolver", resolver]);
    let after = snapshot(&around, &bundle);
    assert_eq!(before, after, "{id} ({resolver}): something outside the bundle changed");
    let names = bundle_names(&bundle);
    let result = v["expect"]["result"].as_str().expect("a result");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let outcome = match out.status.code() {
        Some(0) => {
            assert_eq!(names, ["config.json", "ocil-bundle.json", "rootfs"], "{id} ({resolver})");
            for c in v["expect"]["checks"].as_array().into_iter().flatten() {
                check(&bundle.join("rootfs"), c, id);
            }
            "ok"
        }
        Some(2) => {
            assert!(names.is_empty(), "{id} ({resolver}): a failed unpack left {names:?}");
            assert!(stderr.starts_with("error: "), "{id}: {stderr}");
            "error"
        }
        _ => panic!("{id} ({resolver}): {out:?}"),
    };
    match result {
        "ok" => assert_eq!(outcome, "ok", "{id} ({resolver}) should succeed: {stderr}"),
        "error" => assert_eq!(outcome, "error", "{id} ({resolver}) should fail"),
        "error-or-contained" => {}
        other => panic!("{id}: unknown result {other}"),
    }
    format!(
        "{id} ({resolver}): {outcome}{}",
        if outcome == "error" {
            format!(" [{}]", stderr.lines().last().unwrap_or_default().trim())
        } else {
            String::new()
        }
    )
}

#[test]
fn breakout_vectors_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let text = std::fs::read(shared.join("conformance/tar-extraction-vectors.json"))
        .expect("read the vectors");
    let vectors: Vec<Value> = serde_json::from_slice(&text).expect("JSON");
    assert_eq!(vectors.len(), 40, "the vector file changed");
    let mut lines = Vec::new();
    let mut layer_vectors = 0;
    for v in &vectors {
        let id = v["id"].as_str().expect("an id");
        if id.starts_with("go-containerregistry/") {
            // A docker-save archive's manifest.json, not a layer: checked by import below.
            continue;
        }
        layer_vectors += 1;
        for resolver in ["auto", "walk"] {
            let tmp = tempfile::tempdir().expect("tempdir");
            lines.push(run_vector(v, resolver, tmp.path()));
        }
    }
    assert_eq!(layer_vectors, 39);
    // The outcome of each, for the record (a policy change shows in review).
    eprintln!("{}", lines.join("\n"));
}

/// The one vector about an archive rather than a layer: a docker-save archive whose
/// `manifest.json` is a symlink cycle must be refused, not followed round and round.
#[test]
fn archive_symlink_cycle_vector_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let text = std::fs::read(shared.join("conformance/tar-extraction-vectors.json"))
        .expect("read the vectors");
    let vectors: Vec<Value> = serde_json::from_slice(&text).expect("JSON");
    let v = vectors
        .iter()
        .find(|v| v["id"] == "go-containerregistry/TestSymlinkCycle/0")
        .expect("the cycle vector");
    let tmp = tempfile::tempdir().expect("tempdir");
    let entries: Vec<RawEntry> =
        v["entries"].as_array().expect("entries").iter().map(entry).collect();
    let archive = tmp.path().join("cycle.tar");
    std::fs::write(&archive, crate::support::raw_tar(&entries)).expect("write");
    let out = ocil(&["import", arg(&archive), arg(&tmp.path().join("dst"))]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cycle") || stderr.contains("loop"), "{stderr}");
}
