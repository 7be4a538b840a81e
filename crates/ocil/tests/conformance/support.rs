//! Helpers: finding `shared/`, running `ocil` and the peer tools, copying and snapshotting
//! layouts, and collecting failures so one run reports every disagreement.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sha2::{Digest as _, Sha256};

pub(crate) use crate::peers::{require_tool, shared_dir};

/// What a command did.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    /// stdout as JSON.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!("stdout is not JSON ({e}):\n{}\n{}", self.stdout, self.stderr)
        })
    }

    /// One line for failure messages.
    pub(crate) fn describe(&self) -> String {
        let tail = |s: &str| s.lines().rev().take(6).collect::<Vec<_>>().join(" | ");
        format!("exit {}; stderr: {}", self.code, tail(&self.stderr))
    }
}

/// Run `program` with `args` (and extra environment).
pub(crate) fn run_with_env<I, S>(program: &str, args: I, env: &[(&str, &str)]) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `program` with `args`.
pub(crate) fn run<I, S>(program: &str, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_with_env(program, args, &[])
}

/// Run the `ocil` binary under test.
pub(crate) fn ocil<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(env!("CARGO_BIN_EXE_ocil"), args)
}

/// `DIR:TAG` as the CLIs spell it.
pub(crate) fn target(dir: &Path, tag: &str) -> String {
    format!("{}:{tag}", dir.display())
}

/// Copy a directory tree (files, directories, symlinks) into `dst`, which must not exist.
pub(crate) fn copy_tree(src: &Path, dst: &Path) {
    for entry in walkdir::WalkDir::new(src).follow_links(false) {
        let entry = entry.unwrap_or_else(|e| panic!("cannot walk `{}`: {e}", src.display()));
        let rel = entry.path().strip_prefix(src).expect("walkdir stays under its root");
        let to = dst.join(rel);
        let ft = entry.file_type();
        if ft.is_dir() {
            fs_err::create_dir_all(&to).expect("create dir");
        } else if ft.is_symlink() {
            let link = fs_err::read_link(entry.path()).expect("read link");
            std::os::unix::fs::symlink(&link, &to)
                .unwrap_or_else(|e| panic!("cannot create symlink `{}`: {e}", to.display()));
        } else {
            fs_err::copy(entry.path(), &to).expect("copy file");
        }
    }
}

/// A copy of `src` in a fresh temp dir; the layout is at `.1`.
pub(crate) fn temp_copy(src: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::TempDir::new().expect("temp dir");
    let dst = tmp.path().join("layout");
    copy_tree(src, &dst);
    (tmp, dst)
}

/// Every entry under `dir`: relative path -> sha256 of a file, `<dir>`, or `-> target`.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name() {
        let entry = entry.unwrap_or_else(|e| panic!("cannot walk `{}`: {e}", dir.display()));
        let rel = entry.path().strip_prefix(dir).expect("under root").display().to_string();
        let ft = entry.file_type();
        let what = if ft.is_dir() {
            "<dir>".to_owned()
        } else if ft.is_symlink() {
            format!("-> {}", fs_err::read_link(entry.path()).expect("read link").display())
        } else {
            hex::encode(Sha256::digest(fs_err::read(entry.path()).expect("read file")))
        };
        out.insert(rel, what);
    }
    out
}

/// The blobs of a layout, as `sha256:<hex>` (the file names under `blobs/sha256`).
pub(crate) fn blobs(layout: &Path) -> BTreeSet<String> {
    let dir = layout.join("blobs/sha256");
    if !dir.is_dir() {
        return BTreeSet::new();
    }
    fs_err::read_dir(&dir)
        .expect("list blobs")
        .map(|e| format!("sha256:{}", e.expect("dir entry").file_name().to_string_lossy()))
        .collect()
}

/// Strings of a JSON array (panics on anything else).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|x| x.as_str().unwrap_or_else(|| panic!("not a string: {x}")).to_owned())
        .collect()
}

/// The digests `ocil gc --json` planned to remove.
pub(crate) fn gc_removed(gc: &Value) -> BTreeSet<String> {
    gc["plan"]["remove"]
        .as_array()
        .unwrap_or_else(|| panic!("gc JSON has no plan.remove: {gc}"))
        .iter()
        .map(|r| r["digest"].as_str().expect("remove[].digest").to_owned())
        .collect()
}

/// The `(code, digest)` of every error in `ocil fsck --json` output.
pub(crate) fn fsck_errors(report: &Value) -> BTreeSet<(String, String)> {
    report["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("fsck JSON has no problems: {report}"))
        .iter()
        .filter(|p| p["severity"] == "error")
        .map(|p| {
            (
                p["code"].as_str().expect("code").to_owned(),
                p["digest"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Failures collected over many cases, reported together.
#[derive(Default)]
pub(crate) struct Checks {
    failures: Vec<String>,
    checked: usize,
}

impl Checks {
    /// Record a failure unless `ok`.
    pub(crate) fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.failures.push(what());
        }
    }

    /// Record a failure unless `left == right`.
    pub(crate) fn eq<T: PartialEq + std::fmt::Debug>(&mut self, ctx: &str, left: T, right: T) {
        self.check(left == right, || format!("{ctx}: {left:?} != {right:?}"));
    }

    /// Panic with every failure, if any.
    pub(crate) fn finish(self, what: &str) {
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} checks failed:\n- {}",
            self.failures.len(),
            self.checked,
            self.failures.join("\n- ")
        );
        println!("{what}: {} checks passed", self.checked);
    }
}
