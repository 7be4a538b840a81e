//! `umoci unpack` as the oracle: every tagged OCI image of `shared/conformance/` and
//! `shared/fixtures/peer-made/` that umoci 0.4.7 unpacks (it refuses indexes, Docker types,
//! zstd and uncompressed layers, and ambiguous tags) must unpack under ocil to the same tree
//! and to a config.json with the same fields umoci sets.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::peers::{require_tool, shared_dir};
use crate::support::{arg, diff, ocil_ok, tree};

/// The OCI layouts under `shared/`.
fn layouts(shared: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(shared)
        .sort_by_file_name()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "oci-layout" && e.file_type().is_file())
        .filter_map(|e| e.path().parent().map(Path::to_path_buf))
        .collect();
    out.sort();
    out
}

/// A writable copy (umoci locks the layout it reads).
fn copy(src: &Path, dst: &Path) {
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.expect("walk");
        let to = dst.join(entry.path().strip_prefix(src).expect("under src"));
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).expect("mkdir");
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

/// The config.json fields umoci sets from the image, as compared. umoci's runtime-tools
/// generator adds what is not the image's: `TERM=xterm`, empty annotations, and `["sh"]` as
/// the args of an image without Entrypoint and Cmd (ocil leaves them empty); it also puts
/// `Env` in another order (the generator's `PATH` slot first), so the variables are
/// compared as a set.
fn fields(v: &Value) -> (Value, Value, Value, Value, Vec<String>) {
    let mut env: Vec<String> = v
        .pointer("/process/env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|e| *e != "TERM=xterm")
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    env.sort();
    let args = match v.pointer("/process/args") {
        Some(a) if *a == serde_json::json!(["sh"]) => serde_json::json!([]),
        Some(a) => a.clone(),
        None => serde_json::json!([]),
    };
    (
        args,
        v.pointer("/process/cwd").cloned().unwrap_or(Value::Null),
        v.pointer("/process/user").cloned().unwrap_or(Value::Null),
        v.pointer("/root/path").cloned().unwrap_or(Value::Null),
        env,
    )
}

/// Compare one image; `None` when umoci refuses it.
pub(crate) fn compare_with_umoci(layout: &Path, tag: &str, work: &Path) -> Option<usize> {
    let ub = work.join("umoci");
    let ob = work.join("ocil");
    let image = format!("{}:{tag}", arg(layout));
    let u = Command::new("umoci")
        .args(["unpack", "--image", &image, arg(&ub)])
        .output()
        .expect("run umoci");
    if !u.status.success() {
        return None;
    }
    ocil_ok(&["unpack", &image, arg(&ob)]);
    let (a, b) = (tree(&ub.join("rootfs")), tree(&ob.join("rootfs")));
    let d = diff(&a, &b);
    assert!(d.is_empty(), "{image}: umoci and ocil trees differ:\n{}", d.join("\n"));
    let read = |p: PathBuf| -> Value {
        serde_json::from_slice(&std::fs::read(p).expect("read config.json")).expect("JSON")
    };
    let (uc, oc) = (read(ub.join("config.json")), read(ob.join("config.json")));
    assert_eq!(fields(&uc), fields(&oc), "{image}: config.json differs");
    for (k, v) in uc["annotations"].as_object().into_iter().flatten() {
        // Empty values and Go's zero time stand for what the image does not say.
        if v.as_str() != Some("") && v.as_str() != Some("0001-01-01T00:00:00Z") {
            assert_eq!(oc["annotations"].get(k), Some(v), "{image}: annotation {k}");
        }
    }
    Some(a.len())
}

#[test]
fn same_tree_as_umoci_needs_umoci_needs_shared() {
    if !require_tool("umoci") {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut compared = Vec::new();
    let mut refused = Vec::new();
    for (i, src) in layouts(&shared).iter().enumerate() {
        let index: Value = match std::fs::read(src.join("index.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
        {
            Some(v) => v,
            None => continue,
        };
        let layout = tmp.path().join(format!("l{i}"));
        copy(src, &layout);
        let tags: Vec<String> = index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| {
                d.pointer("/annotations/org.opencontainers.image.ref.name").and_then(Value::as_str)
            })
            .map(str::to_owned)
            .collect();
        for (j, tag) in tags.iter().enumerate() {
            let work = tmp.path().join(format!("w{i}-{j}"));
            let name =
                format!("{}:{tag}", src.strip_prefix(&shared).expect("under shared").display());
            match compare_with_umoci(&layout, tag, &work) {
                Some(paths) => compared.push(format!("{name} ({paths} paths)")),
                None => refused.push(name),
            }
        }
    }
    eprintln!(
        "compared with umoci:\n  {}\numoci refused:\n  {}",
        compared.join("\n  "),
        refused.join("\n  ")
    );
    assert!(compared.len() >= 15, "only {} images compared", compared.len());
}
