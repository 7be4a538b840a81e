//! Helpers: running `ocil` and the peer tools, and building layouts with `ocil` itself
//! (`init`, `new`, `append` of generated files), so every layer is a real tar.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::crash_harness::Rng;
pub(crate) use crate::peers::{require_tool, shared_dir};

/// `SOURCE_DATE_EPOCH` for every run: 2024-01-01T00:00:00Z.
pub(crate) const EPOCH: &str = "1704067200";

/// What a command did.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Run a program.
pub(crate) fn run<I, S>(program: &str, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(program)
        .args(args)
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `ocil`, which must succeed.
pub(crate) fn ocil<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = run(env!("CARGO_BIN_EXE_ocil"), &args);
    assert!(out.ok, "ocil {args:?} failed: {}", out.stderr);
    out
}

/// `DIR:TAG`.
pub(crate) fn at(dir: &Path, tag: &str) -> String {
    format!("{}:{tag}", dir.display())
}

/// A layout at `dir` with `images` tagged images `i0`, `i1`, ... on one shared base layer;
/// each adds a layer of one file of `file_size` random bytes.
pub(crate) fn build(dir: &Path, images: usize, file_size: usize, rng: &mut Rng) {
    let work = dir.with_extension("files");
    ocil(["init".as_ref(), dir.as_os_str()]);
    ocil(["new", &at(dir, "base")]);
    let base = work.join("base");
    fs_err::create_dir_all(base.join("etc")).unwrap();
    fs_err::write(base.join("etc/hello.txt"), "hello\n").unwrap();
    ocil(["append".as_ref(), at(dir, "base").as_ref(), base.as_os_str()]);
    for i in 0..images {
        let d = work.join(format!("l{i}"));
        fs_err::create_dir_all(&d).unwrap();
        fs_err::write(d.join(format!("data-{i}.bin")), rng.bytes(file_size)).unwrap();
        ocil([
            "append".as_ref(),
            at(dir, "base").as_ref(),
            d.as_os_str(),
            "--tag".as_ref(),
            format!("i{i}").as_ref(),
        ]);
    }
    fs_err::remove_dir_all(&work).unwrap();
}

/// `index.json` as JSON.
pub(crate) fn index(layout: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(layout.join("index.json")).unwrap()).unwrap()
}

/// Tag -> digest of a layout's `index.json`.
pub(crate) fn tags(layout: &Path) -> std::collections::BTreeMap<String, String> {
    index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let tag = e["annotations"]["org.opencontainers.image.ref.name"].as_str()?;
            Some((tag.to_owned(), e["digest"].as_str()?.to_owned()))
        })
        .collect()
}

/// A blob as JSON.
pub(crate) fn doc(layout: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&fs_err::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// The media types of an image: manifest, config, layers.
pub(crate) fn media_types(layout: &Path, manifest: &str) -> Vec<String> {
    let m = doc(layout, manifest);
    let mut out = vec![m["mediaType"].as_str().unwrap_or("(none)").to_owned()];
    out.push(m["config"]["mediaType"].as_str().unwrap().to_owned());
    for l in m["layers"].as_array().unwrap() {
        out.push(l["mediaType"].as_str().unwrap().to_owned());
    }
    out
}

/// Copy a tree, writable (the shared fixtures are read-only).
pub(crate) fn copy_tree(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        let to = dst.join(entry.path().strip_prefix(src).unwrap());
        if entry.file_type().is_dir() {
            fs_err::create_dir_all(&to).unwrap();
            fs_err::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            fs_err::copy(entry.path(), &to).unwrap();
            fs_err::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}
