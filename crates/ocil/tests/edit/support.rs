//! Helpers for the edit tests: running `ocil` and the peers, copying fixtures, reading
//! layouts with plain serde_json and sha2, and splitting a JSON object into its members'
//! raw texts (independently of ocil's own `JsonDoc`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub(crate) use crate::peers::{require_tool, shared_dir};

/// `ocil args...` with a fixed environment and no `SOURCE_DATE_EPOCH`.
pub(crate) fn ocil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("run ocil")
}

/// `ocil args...`, which must succeed.
pub(crate) fn ocil_ok(args: &[&str]) -> Output {
    let out = ocil(args);
    assert!(
        out.status.success(),
        "`ocil {}` failed ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A path as a `&str` argument.
pub(crate) fn arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 temp path")
}

/// `ocil fsck DIR` exits 0 (no errors; warnings are fine).
pub(crate) fn assert_fsck_clean(dir: &Path, ctx: &str) {
    let out = ocil(&["fsck", arg(dir)]);
    assert!(
        out.status.success(),
        "{ctx}: fsck found errors:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run a peer tool, which must succeed; its stdout.
pub(crate) fn peer_ok(tool: &str, args: &[&str]) -> String {
    let out = Command::new(tool).args(args).output().expect("run the peer tool");
    assert!(
        out.status.success(),
        "`{tool} {}` rejected the result ({}): {}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Copy `shared/<rel>` to `dst`, writable.
pub(crate) fn copy_shared(rel: &str, dst: &Path) -> Option<PathBuf> {
    let src = shared_dir()?.join(rel);
    assert!(src.is_dir(), "no fixture `{}`", src.display());
    copy_tree(&src, dst);
    Some(dst.to_owned())
}

fn copy_tree(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
        let entry = entry.expect("walk the fixture");
        let to = dst.join(entry.path().strip_prefix(src).expect("under src"));
        if entry.file_type().is_dir() {
            fs_err::create_dir_all(&to).expect("mkdir");
            fs_err::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        } else if entry.file_type().is_symlink() {
            let target = fs_err::read_link(entry.path()).expect("readlink");
            std::os::unix::fs::symlink(target, &to).expect("symlink");
        } else {
            fs_err::copy(entry.path(), &to).expect("copy");
            fs_err::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        }
    }
}

/// `sha256:<hex>`.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

pub(crate) fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").expect("sha256"))
}

/// Write a blob as any tool would; its digest and size.
pub(crate) fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256(bytes);
    fs_err::write(blob_path(layout, &digest), bytes).expect("write blob");
    (digest, bytes.len() as u64)
}

/// A blob's bytes, checked against its digest.
pub(crate) fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    let bytes = fs_err::read(blob_path(layout, digest)).expect("read blob");
    assert_eq!(sha256(&bytes), digest, "blob `{digest}` does not hash to its name");
    bytes
}

pub(crate) fn blob_json(layout: &Path, digest: &str) -> Value {
    serde_json::from_slice(&blob(layout, digest)).expect("a JSON blob")
}

pub(crate) fn read_index(layout: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(layout.join("index.json")).expect("index.json"))
        .expect("index.json is JSON")
}

pub(crate) fn write_index(layout: &Path, index: &Value) {
    fs_err::write(layout.join("index.json"), serde_json::to_vec(index).expect("JSON"))
        .expect("write index.json");
}

/// The `index.json` entry tagged `tag`.
pub(crate) fn entry(layout: &Path, tag: &str) -> Value {
    read_index(layout)["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|e| e["annotations"][REF_NAME] == tag)
        .unwrap_or_else(|| panic!("no tag `{tag}` in `{}`", layout.display()))
        .clone()
}

pub(crate) fn digest_of(layout: &Path, tag: &str) -> String {
    entry(layout, tag)["digest"].as_str().expect("digest").to_owned()
}

/// `tag -> digest` of every tagged entry; a tag on two entries fails.
pub(crate) fn tags(layout: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in read_index(layout)["manifests"].as_array().expect("manifests") {
        if let Some(t) = e["annotations"][REF_NAME].as_str() {
            let d = e["digest"].as_str().expect("digest").to_owned();
            assert!(out.insert(t.to_owned(), d).is_none(), "tag `{t}` is on two entries");
        }
    }
    out
}

/// The config of the manifest `digest`.
pub(crate) fn config_json(layout: &Path, manifest: &str) -> Value {
    let m = blob_json(layout, manifest);
    blob_json(layout, m["config"]["digest"].as_str().expect("config digest"))
}

/// The members of a JSON object as `(key text, raw value text)` in order, by scanning the
/// text (strings, escapes, nesting); whitespace around values is trimmed.
pub(crate) fn members(text: &str) -> Vec<(String, String)> {
    let b = text.trim().as_bytes();
    assert_eq!(b.first(), Some(&b'{'), "not an object: {text}");
    let mut out = Vec::new();
    let mut i = 1;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && b[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    let string_end = |mut i: usize| {
        // `i` is at the opening quote.
        i += 1;
        while b[i] != b'"' {
            i += if b[i] == b'\\' { 2 } else { 1 };
        }
        i + 1
    };
    loop {
        skip_ws(&mut i);
        if b[i] == b'}' {
            break;
        }
        let k0 = i;
        i = string_end(i);
        let key = String::from_utf8(b[k0..i].to_vec()).expect("utf-8");
        skip_ws(&mut i);
        assert_eq!(b[i], b':');
        i += 1;
        skip_ws(&mut i);
        let v0 = i;
        let mut depth = 0i32;
        loop {
            match b[i] {
                b'"' => {
                    i = string_end(i);
                    if depth == 0 {
                        break;
                    }
                    continue;
                }
                b'{' | b'[' => depth += 1,
                b'}' | b']' if depth > 0 => depth -= 1,
                b',' | b'}' if depth == 0 => break,
                _ => {}
            }
            i += 1;
            if depth == 0 && matches!(b[i - 1], b'}' | b']') {
                break;
            }
        }
        out.push((key, String::from_utf8(b[v0..i].to_vec()).expect("utf-8").trim().to_owned()));
        skip_ws(&mut i);
        if b[i] == b',' {
            i += 1;
        }
    }
    out
}

/// The raw text of one member.
pub(crate) fn member(text: &str, key: &str) -> String {
    let quoted = format!("\"{key}\"");
    members(text)
        .into_iter()
        .find(|(k, _)| *k == quoted)
        .unwrap_or_else(|| panic!("no member `{key}` in {text}"))
        .1
}

#[test]
fn members_scanner() {
    let m = members(r#" { "a" : 1.0 , "b":{"c":[1,{"d":"}"}]},"e":"x\"y","f":[],"g":null } "#);
    let got: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        got,
        [
            ("\"a\"", "1.0"),
            ("\"b\"", r#"{"c":[1,{"d":"}"}]}"#),
            ("\"e\"", r#""x\"y""#),
            ("\"f\"", "[]"),
            ("\"g\"", "null")
        ]
    );
}
