//! `ocil import` and `ocil fsck FILE` against archives:
//!
//! - every archive case of `shared/conformance/CASES.md` (fsck verdicts and error codes,
//!   plain tars' diff_ids, imported tags and Docker image IDs) and the peer-made archives
//!   (skopeo's oci-archive import gives exactly the blobs of the peer-made layouts);
//! - the hostile corpus (`testdata/hostile/`, written by `cargo xtask fixtures`): `ocil
//!   import` exits 2 naming the entry and changes nothing, on disk, anywhere under the
//!   test's root; `ocil fsck` of the same files reports the problem as `expected.json` says;
//!   `ocil ls FILE` and `ocil inspect FILE` exit 2 naming the archive and the entry;
//! - stdin, a new DIR, tag conflicts and `--force`;
//! - skopeo as an oracle: its import of the peer-made OCI archive gives our manifest digest,
//!   and it reads back what we import from a docker-save archive.
//!
//! - crashes: `ocil import` killed at random moments (`crash.rs`);
//! - carrying: receipts, deltas and volumes over layouts of the xtask generator, volume
//!   imports killed at random moments (`carry.rs`); importing never extracts anything
//!   first, and writes no blob the destination holds (`temp_disk.rs`);
//! - a real Docker daemon as the oracle: `docker load` of our docker-format export and
//!   `ocil import` of `docker save` (`docker.rs`);
//! - docker-save archives whose layers are compressed with xz, bzip2, gzip or zstd by the
//!   system tools: xz and bzip2 layers stored as the plain tars they hold, the others kept
//!   (`layer_compression.rs`).
//!
//! A test that uses `shared/` a peer tool or the Docker daemon says so in its name (`needs_shared`,
//! `needs_skopeo`, `needs_docker`); when one is missing it skips with a note, is left out (and counted as
//! skipped) by `cargo xtask ci`, and fails under `CI=true` (`../common/peers.rs`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod carry;
#[path = "../../../ocil-archive/tests/support/corpus.rs"]
mod corpus;
mod docker;
mod export;
#[path = "../../../ocil-archive/tests/support/hostile.rs"]
mod hostile;
mod layer_compression;
mod temp_disk;

mod crash;
#[path = "../common/crash.rs"]
mod crash_harness;
/// The xtask generator (an independent writer of layouts), for content of a chosen size.
#[path = "../../../../xtask/src/gen.rs"]
#[allow(dead_code, unreachable_pub)]
mod r#gen;
#[path = "../common/peers.rs"]
mod peers;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::peers::{require_tool, shared_dir};

/// What the generator's functions return (`xtask`'s own `Result`).
type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

fn run(program: &str, args: &[&str], stdin: Option<&[u8]>) -> Out {
    let mut cmd = Command::new(program);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn ocil(args: &[&str]) -> Out {
    run(env!("CARGO_BIN_EXE_ocil"), args, None)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Every entry under `dir`: relative path -> sha256 of a file, `<dir>`, or `-> target`.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name() {
        let entry = entry.unwrap();
        let rel = entry.path().strip_prefix(dir).unwrap().display().to_string();
        let ft = entry.file_type();
        let what = if ft.is_dir() {
            "<dir>".to_owned()
        } else if ft.is_symlink() {
            format!("-> {}", fs_err::read_link(entry.path()).unwrap().display())
        } else {
            hex::encode(Sha256::digest(fs_err::read(entry.path()).unwrap()))
        };
        out.insert(rel, what);
    }
    out
}

/// Blob names under `layout/blobs/sha256`.
fn blobs(layout: &Path) -> BTreeSet<String> {
    fs_err::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn index(layout: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(layout.join("index.json")).unwrap()).unwrap()
}

fn blob_json(layout: &Path, digest: &str) -> Value {
    let hex = digest.strip_prefix("sha256:").unwrap();
    serde_json::from_slice(&fs_err::read(layout.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

/// `(tag, digest)` of every index.json entry, in order.
fn entries(layout: &Path) -> Vec<(Option<String>, String)> {
    index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let tag = d["annotations"]["org.opencontainers.image.ref.name"].as_str();
            (tag.map(str::to_owned), d["digest"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The error codes (or warning codes) of `ocil fsck --json`.
fn codes(out: &Out, severity: &str) -> BTreeSet<String> {
    out.json()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["severity"] == severity)
        .map(|p| p["code"].as_str().unwrap().to_owned())
        .collect()
}

/// One archive case of CASES.md.
#[derive(Debug, Default)]
struct Case {
    path: String,
    kind: String,
    verdict: String,
    repo_tags: Vec<String>,
    ref_names: Vec<String>,
    image_ids: BTreeSet<String>,
    diff_id: Option<String>,
    errors: BTreeSet<String>,
    warnings: BTreeSet<String>,
}

fn backticked(line: &str) -> Vec<String> {
    line.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

fn bold(line: &str, key: &str) -> String {
    let at = line.find(key).unwrap_or_else(|| panic!("no `{key}` in `{line}`")) + key.len();
    line[at..].trim_start_matches("**").split("**").next().unwrap().to_owned()
}

fn archive_cases(shared: &Path) -> Vec<Case> {
    let text = fs_err::read_to_string(shared.join("conformance/CASES.md")).unwrap();
    let mut out = Vec::new();
    let mut in_errors = false;
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("### ") {
            out.push(Case { path: path.trim().to_owned(), ..Case::default() });
            in_errors = false;
            continue;
        }
        let Some(c) = out.last_mut() else { continue };
        if line.starts_with("- kind: ") {
            c.kind = bold(line, "kind: ");
            c.verdict = bold(line, "verdict: ");
        } else if line.starts_with("- RepoTags: ") {
            c.repo_tags = backticked(line);
        } else if line.starts_with("- ref names ") {
            c.ref_names = backticked(line.split_once(':').unwrap().1);
        } else if line.contains("image ID (sha256 of config) `") {
            c.image_ids.insert(backticked(line)[0].clone());
        } else if line.starts_with("- sha256 of the uncompressed tar") {
            c.diff_id = backticked(line).pop();
        } else if line.starts_with("- warnings: ") {
            c.warnings =
                line.split("; ").filter_map(|w| backticked(w).into_iter().next()).collect();
        } else if line.starts_with("- errors an fsck should report") {
            in_errors = true;
            continue;
        }
        if in_errors {
            match line.strip_prefix("  - `") {
                Some(rest) => {
                    c.errors.insert(rest.split('`').next().unwrap().to_owned());
                }
                None => in_errors = false,
            }
        }
    }
    out.retain(|c| c.path.ends_with(".tar") || c.path.ends_with(".tar.zst"));
    out
}

/// The tag ocil gives a RepoTags name: after the last `:` following the last `/`, or the
/// whole name when it has none.
fn tag_of(name: &str) -> &str {
    let start = name.rfind('/').map_or(0, |i| i + 1);
    name[start..].rfind(':').map_or(name, |i| &name[start + i + 1..])
}

#[test]
fn conformance_archives_get_the_verdicts_of_cases_md_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let cases = archive_cases(&shared);
    assert!(cases.len() >= 14, "only {} archive cases parsed from CASES.md", cases.len());
    let mut failures = Vec::new();
    let mut fail = |c: &Case, msg: String| failures.push(format!("{}: {msg}", c.path));
    for c in &cases {
        let file = shared.join("conformance").join(&c.path);
        let f = s(&file);
        let want = match c.verdict.as_str() {
            "valid" => 0,
            "invalid" => 1,
            v => panic!("{}: unknown verdict `{v}`", c.path),
        };
        for deep in [false, true] {
            let args: Vec<&str> =
                if deep { vec!["fsck", "--deep", "--json", f] } else { vec!["fsck", "--json", f] };
            let out = ocil(&args);
            if out.code != want {
                fail(
                    c,
                    format!("fsck (deep {deep}) exit {}, want {want}: {}", out.code, out.stdout),
                );
                continue;
            }
            let errors = codes(&out, "error");
            if errors != c.errors {
                fail(c, format!("fsck errors {errors:?}, CASES says {:?}", c.errors));
            }
            if c.warnings.contains("LEGACY_FORMAT")
                && !codes(&out, "warning").contains("LEGACY_FORMAT")
            {
                fail(c, "no LEGACY_FORMAT warning".into());
            }
            if let Some(diff_id) = &c.diff_id
                && out.json()["archive"]["diff_id"] != diff_id.as_str()
            {
                fail(
                    c,
                    format!("diff_id {}, CASES says {diff_id}", out.json()["archive"]["diff_id"]),
                );
            }
        }
        // Import: image archives that are valid (and hello-world, whose missing blobs are
        // allowed in a shallow layout) land with their tags and image IDs.
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("dest");
        let out = ocil(&["import", f, s(&dest)]);
        let importable = matches!(c.kind.as_str(), "docker-save" | "docker-save+oci-layout")
            && (want == 0 || !c.errors.is_empty() && c.errors.iter().all(|e| e == "BLOB_MISSING"))
            && !c.warnings.contains("LEGACY_FORMAT");
        if !importable {
            if out.code != 2 {
                fail(c, format!("import exit {}, want 2", out.code));
            }
            if dest.exists() {
                fail(c, "a failed import left the new DIR behind".into());
            }
            continue;
        }
        if out.code != 0 {
            fail(c, format!("import exit {}: {}", out.code, out.stderr));
            continue;
        }
        let got = entries(&dest);
        let tags: BTreeSet<String> = got.iter().filter_map(|(t, _)| t.clone()).collect();
        let want_tags: BTreeSet<String> = if c.kind == "docker-save" {
            c.repo_tags.iter().map(|t| tag_of(t).to_owned()).collect()
        } else {
            c.ref_names.iter().cloned().collect()
        };
        if tags != want_tags {
            fail(c, format!("tags {tags:?}, want {want_tags:?}"));
        }
        if c.kind == "docker-save" {
            let ids: BTreeSet<String> = got
                .iter()
                .map(|(_, d)| blob_json(&dest, d)["config"]["digest"].as_str().unwrap().to_owned())
                .collect();
            if ids != c.image_ids {
                fail(c, format!("config digests {ids:?}, image IDs {:?}", c.image_ids));
            }
            let fsck = ocil(&["fsck", "--deep", s(&dest)]);
            if fsck.code != 0 {
                fail(c, format!("fsck of the import: {}", fsck.stdout));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn peer_made_archives_import_to_the_peers_digests_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let peer = shared.join("fixtures/peer-made");
    let tmp = tempfile::tempdir().unwrap();

    // skopeo's oci-archive of umoci-edit:v3: the blobs of the layout skopeo made from it.
    let dest = tmp.path().join("v3");
    let out = ocil(&["import", s(&peer.join("skopeo-oci-archive/app-v3.tar")), s(&dest)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("sha256:6ae4b4729c93a9c0af535ad9956fd688937d2020727afef5ffbfa99df45e43cb")
    );
    assert_eq!(
        entries(&dest),
        [(
            Some("v3".into()),
            "sha256:6ae4b4729c93a9c0af535ad9956fd688937d2020727afef5ffbfa99df45e43cb".into()
        )]
    );
    assert_eq!(blobs(&dest), blobs(&peer.join("skopeo-from-oci-archive/layout")));
    assert_eq!(ocil(&["fsck", "--deep", s(&dest)]).code, 0);

    // The index archive: the blobs of buildah-index.
    let dest = tmp.path().join("multi");
    let out = ocil(&["import", s(&peer.join("skopeo-oci-archive-index/multi.tar")), s(&dest)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        entries(&dest),
        [(
            Some("multi".into()),
            "sha256:2cef67357b3dbb31b535efc36f20b1723814f2acd1e57c3322a7ba05360143ba".into()
        )]
    );
    assert_eq!(blobs(&dest), blobs(&peer.join("buildah-index/layout")));
    assert_eq!(ocil(&["fsck", "--deep", s(&dest)]).code, 0);

    // skopeo's docker-archive: the config is umoci's (its digest is the image ID), the
    // layers are the uncompressed diffs, both tags point at one manifest.
    let dest = tmp.path().join("app");
    let out = ocil(&["import", "--json", s(&peer.join("skopeo-docker-archive/app.tar")), s(&dest)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["format"], "docker-archive");
    let got = entries(&dest);
    assert_eq!(got.iter().map(|e| e.0.clone().unwrap()).collect::<Vec<_>>(), ["v1", "latest"]);
    assert_eq!(got[0].1, got[1].1);
    let idx = index(&dest);
    assert_eq!(
        idx["manifests"][0]["annotations"]["io.containerd.image.name"],
        "example.com/app:v1"
    );
    assert_eq!(
        idx["manifests"][1]["annotations"]["io.containerd.image.name"],
        "example.com/app:latest"
    );
    let m = blob_json(&dest, &got[0].1);
    assert_eq!(
        m["config"]["digest"],
        "sha256:bec55cea057a214f1684143f30fa83e2c9097688d515d3b5e2617ef01ff76de3"
    );
    let layers: Vec<&str> =
        m["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap()).collect();
    assert_eq!(
        layers,
        [
            "sha256:f47bbcac59ed1e4b29b81cb05ddacfb723cf7661e05cee9f39114e41c8666b6c",
            "sha256:719f5c9e514391175696df85406723e3a48160b71897e20a1854cced6e78c0d4"
        ]
    );
    assert_eq!(ocil(&["fsck", "--deep", s(&dest)]).code, 0);

    // fsck of the archives themselves.
    for f in [
        "skopeo-oci-archive/app-v3.tar",
        "skopeo-oci-archive-index/multi.tar",
        "skopeo-docker-archive/app.tar",
    ] {
        let out = ocil(&["fsck", "--deep", s(&peer.join(f))]);
        assert_eq!(out.code, 0, "{f}: {}", out.stdout);
    }
}

/// A destination layout holding one image, in `root/dest`, and the corpus files copied to
/// `root/in` (so that "nothing changed beside them" can be checked).
fn hostile_setup(root: &Path) -> (PathBuf, Vec<(hostile::Hostile, PathBuf)>) {
    let dest = root.join("dest");
    let keep = root.join("keep.tar");
    fs_err::write(&keep, corpus::Image::new("existing\n").oci_archive(Some("keep"))).unwrap();
    let out = ocil(&["import", s(&keep), s(&dest)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    fs_err::create_dir(root.join("in")).unwrap();
    let files = hostile::corpus()
        .into_iter()
        .map(|h| {
            let f = root.join("in").join(h.path.file_name().unwrap());
            fs_err::copy(&h.path, &f).unwrap();
            (h, f)
        })
        .collect();
    (dest, files)
}

#[test]
fn the_hostile_corpus_exits_2_names_the_entry_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (dest, files) = hostile_setup(tmp.path());
    assert!(files.len() >= 20, "{}", files.len());
    let before = snapshot(tmp.path());
    let mut failures = Vec::new();
    for (h, f) in &files {
        let out = ocil(&["import", s(f), s(&dest)]);
        if out.code != 2 {
            failures.push(format!("{}: exit {}, want 2: {}", h.name, out.code, out.stdout));
        }
        if !out.stderr.contains(&h.mentions) {
            failures.push(format!(
                "{}: stderr does not mention {}:\n{}",
                h.name, h.mentions, out.stderr
            ));
        }
        if !out.stderr.starts_with("error: cannot import") {
            failures.push(format!("{}: stderr: {}", h.name, out.stderr));
        }
        // Nothing changed anywhere under the root: the destination (index.json, blobs, no
        // temp files left), the inputs, and nothing appeared beside them.
        let after = snapshot(tmp.path());
        if after != before {
            let changed: Vec<_> = after
                .iter()
                .filter(|(k, v)| before.get(*k) != Some(*v))
                .map(|(k, _)| k.clone())
                .chain(before.keys().filter(|k| !after.contains_key(*k)).cloned())
                .collect();
            failures.push(format!("{}: changed {changed:?}", h.name));
        }
        // Into a new DIR: nothing is left behind.
        let fresh = tmp.path().join("fresh");
        let out = ocil(&["import", s(f), s(&fresh)]);
        if out.code != 2 || fresh.exists() {
            failures.push(format!(
                "{}: into a new DIR: exit {}, exists {}",
                h.name,
                out.code,
                fresh.exists()
            ));
        }
        let _ = fs_err::remove_dir_all(&fresh);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn fsck_reports_the_hostile_corpus_as_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let (_dest, files) = hostile_setup(tmp.path());
    let before = snapshot(tmp.path());
    let mut failures = Vec::new();
    for (h, f) in &files {
        let out = ocil(&["fsck", "--json", s(f)]);
        let want = h.fsck_exit;
        if out.code != want {
            failures.push(format!(
                "{}: fsck exit {}, want {want}: {}{}",
                h.name, out.code, out.stdout, out.stderr
            ));
            continue;
        }
        if let Some(severity) = &h.fsck_severity
            && !codes(&out, severity).contains(&h.code)
        {
            failures.push(format!("{}: no {} {}: {}", h.name, severity, h.code, out.stdout));
        }
    }
    assert_eq!(snapshot(tmp.path()), before, "fsck wrote beside its input");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ls_and_inspect_refuse_the_hostile_corpus_in_place_naming_archive_and_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let (_dest, files) = hostile_setup(tmp.path());
    let before = snapshot(tmp.path());
    let mut failures = Vec::new();
    for (h, f) in &files {
        for args in [vec!["ls", s(f)], vec!["inspect", s(f)], vec!["ls", "--json", s(f)]] {
            let out = ocil(&args);
            let cmd = args.join(" ");
            if !h.view_refuses {
                if out.code != 0 {
                    failures.push(format!("{}: `{cmd}` exit {}: {}", h.name, out.code, out.stderr));
                }
                continue;
            }
            if out.code != 2 {
                failures.push(format!("{}: `{cmd}` exit {}, want 2", h.name, out.code));
            }
            let head = format!("error: cannot read archive `{}`", s(f));
            if !out.stderr.starts_with(&head) || !out.stderr.contains(&h.mentions) {
                failures.push(format!(
                    "{}: `{cmd}` stderr does not name the archive and {}:\n{}",
                    h.name, h.mentions, out.stderr
                ));
            }
            // Nothing of the archive on stdout: under --json, only the error, as JSON.
            if args.contains(&"--json") {
                let v: Value = serde_json::from_str(&out.stdout).unwrap_or_default();
                let message = v["error"]["message"].as_str().unwrap_or_default();
                if !message.contains(s(f)) {
                    failures.push(format!("{}: `{cmd}` printed {}", h.name, out.stdout));
                }
            } else if !out.stdout.is_empty() {
                failures.push(format!("{}: `{cmd}` printed {}", h.name, out.stdout));
            }
        }
    }
    assert_eq!(snapshot(tmp.path()), before, "ls/inspect wrote beside their input");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `ocil ls --json` rows without the fields a layout and an archive may not share.
fn ls_rows(args: &[&str]) -> Result<Value, String> {
    let out = ocil(args);
    if out.code != 0 {
        return Err(format!("`ocil {}` exit {}: {}", args.join(" "), out.code, out.stderr));
    }
    Ok(out.json())
}

/// The archives of `shared/`: skopeo's three peer-made ones and every archive case of
/// CASES.md.
fn shared_archives(shared: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [
        "fixtures/peer-made/skopeo-oci-archive/app-v3.tar",
        "fixtures/peer-made/skopeo-oci-archive-index/multi.tar",
        "fixtures/peer-made/skopeo-docker-archive/app.tar",
    ]
    .iter()
    .map(|p| shared.join(p))
    .collect();
    files.extend(archive_cases(shared).iter().map(|c| shared.join("conformance").join(&c.path)));
    files
}

#[test]
fn ls_in_place_agrees_with_import_then_ls_on_the_shared_archives_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let files = shared_archives(&shared);
    let tmp = tempfile::tempdir().unwrap();
    let mut compared = 0;
    let mut failures = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let f = s(file);
        let dest = tmp.path().join(format!("d{i}"));
        let imported = ocil(&["import", f, s(&dest)]).code == 0;
        let in_place = ls_rows(&["ls", "--json", f]);
        if !imported {
            // What import refuses, ls refuses too (exit 2, naming the archive).
            let out = ocil(&["ls", f]);
            if out.code != 2 || !out.stderr.contains("cannot read archive") {
                failures.push(format!("{f}: import refused it, ls exit {}", out.code));
            }
            continue;
        }
        let from_dir = ls_rows(&["ls", "--json", s(&dest)]);
        match (in_place, from_dir) {
            (Ok(a), Ok(b)) if a == b => compared += 1,
            (a, b) => failures.push(format!("{f}: in place {a:?}\nafter import {b:?}")),
        }
        // The same in one pass, compressed.
        let gz = tmp.path().join(format!("a{i}.tar.gz"));
        fs_err::write(&gz, corpus::gzip(&fs_err::read(file).unwrap())).unwrap();
        if ls_rows(&["ls", "--json", s(&gz)]) != ls_rows(&["ls", "--json", s(&dest)]) {
            failures.push(format!("{f}: gzip-compressed, ls differs"));
        }
        // inspect of every entry: the same as of the imported layout.
        for row in ls_rows(&["ls", "--json", s(&dest)]).unwrap().as_array().unwrap() {
            let digest = row["digest"].as_str().unwrap();
            let a = ocil(&["inspect", "--json", &format!("{f}@{digest}")]);
            let b = ocil(&["inspect", "--json", &format!("{}@{digest}", s(&dest))]);
            if a.code != 0 || a.stdout != b.stdout {
                failures.push(format!("{f}@{digest}: inspect differs: {}{}", a.stdout, a.stderr));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 8, "only {compared} archives compared");
}

#[test]
fn xz_and_bzip2_archives_read_as_the_uncompressed_ones_needs_shared_needs_xz_needs_bzip2() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("xz") || !require_tool("bzip2") {
        return;
    }
    let files = shared_archives(&shared);
    let tmp = tempfile::tempdir().unwrap();
    let mut compared = 0;
    let mut failures = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let f = s(file);
        let plain = tmp.path().join(format!("p{i}"));
        if ocil(&["import", f, s(&plain)]).code != 0 {
            continue; // What import refuses is the hostile and legacy cases' business.
        }
        let bytes = fs_err::read(file).unwrap();
        for tool in ["xz", "bzip2"] {
            // The system tool compresses: an encoder independent of ours.
            let out = Command::new(tool)
                .arg("-c")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    c.stdin.take().unwrap().write_all(&bytes)?;
                    c.wait_with_output()
                })
                .unwrap();
            assert!(out.status.success(), "{tool} -c {f}");
            let packed = tmp.path().join(format!("a{i}.tar.{tool}"));
            fs_err::write(&packed, &out.stdout).unwrap();
            let dest = tmp.path().join(format!("{tool}{i}"));
            let imported = ocil(&["import", s(&packed), s(&dest)]);
            if imported.code != 0 {
                failures.push(format!("{f} ({tool}): import failed: {}", imported.stderr));
                continue;
            }
            if index(&dest) != index(&plain) || blobs(&dest) != blobs(&plain) {
                failures.push(format!("{f} ({tool}): not the images of the plain archive"));
            }
            // Read in place and from a pipe, as the plain archive's import shows them.
            if ls_rows(&["ls", "--json", s(&packed)]) != ls_rows(&["ls", "--json", s(&plain)]) {
                failures.push(format!("{f} ({tool}): ls in place differs"));
            }
            let piped = tmp.path().join(format!("{tool}{i}-piped"));
            let from_pipe =
                run(env!("CARGO_BIN_EXE_ocil"), &["import", "-", s(&piped)], Some(&out.stdout));
            if from_pipe.code != 0 || index(&piped) != index(&plain) {
                failures.push(format!("{f} ({tool}): import from a pipe: {}", from_pipe.stderr));
            }
            let fsck = ocil(&["fsck", s(&packed)]);
            if fsck.code != ocil(&["fsck", f]).code {
                failures.push(format!("{f} ({tool}): fsck exit {}: {}", fsck.code, fsck.stdout));
            }
            compared += 1;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(compared >= 16, "only {compared} archives compared");
}

#[test]
fn skopeo_inspect_agrees_with_inspect_in_place_needs_shared_needs_skopeo() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("skopeo") {
        return;
    }
    let peer = shared.join("fixtures/peer-made");
    let mut failures = Vec::new();
    // (skopeo transport, archive, reference for skopeo, our reference)
    for (transport, path, theirs, ours) in [
        ("oci-archive", "skopeo-oci-archive/app-v3.tar", "", ""),
        ("docker-archive", "skopeo-docker-archive/app.tar", ":example.com/app:v1", ":v1"),
        ("docker-archive", "skopeo-docker-archive/app.tar", ":example.com/app:latest", ":latest"),
    ] {
        let file = peer.join(path);
        let f = s(&file);
        let out = run("skopeo", &["inspect", "--raw", &format!("{transport}:{f}{theirs}")], None);
        if out.code != 0 {
            failures.push(format!("skopeo inspect {f}{theirs}: {}", out.stderr));
            continue;
        }
        let raw: Value = serde_json::from_str(&out.stdout).unwrap();
        let cfg =
            run("skopeo", &["inspect", "--config", &format!("{transport}:{f}{theirs}")], None);
        let config: Value = serde_json::from_str(&cfg.stdout).unwrap_or(Value::Null);
        let mine = ocil(&["inspect", "--json", &format!("{f}{ours}")]).json();
        let layers = |v: &Value, key: &str| -> Vec<String> {
            v[key]
                .as_array()
                .map(|a| a.iter().map(|l| l["digest"].as_str().unwrap_or("").to_owned()).collect())
                .unwrap_or_default()
        };
        // skopeo shows the manifest as stored (docker-archive: its own Docker schema 2
        // manifest over the same config and layers); the config and layers are the same.
        if raw["config"]["digest"] != mine["config"]["digest"] {
            failures.push(format!(
                "{f}: config {} vs {}",
                raw["config"]["digest"], mine["config"]["digest"]
            ));
        }
        if layers(&raw, "layers") != layers(&mine, "layers") {
            failures.push(format!("{f}: layers differ"));
        }
        if config["architecture"].as_str().map(|a| format!("linux/{a}"))
            != mine["platform"].as_str().map(str::to_owned)
        {
            failures
                .push(format!("{f}: platform {} vs {}", config["architecture"], mine["platform"]));
        }
        if transport == "oci-archive" {
            let digest = run(
                "skopeo",
                &["inspect", "--format", "{{.Digest}}", &format!("{transport}:{f}")],
                None,
            );
            if digest.stdout.trim() != mine["digest"] {
                failures.push(format!(
                    "{f}: manifest digest {} vs {}",
                    digest.stdout.trim(),
                    mine["digest"]
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `(config digest, layer digests)` of an image, from a manifest as JSON.
fn image_key(v: &Value) -> (String, Vec<String>) {
    let digest = |d: &Value| d["digest"].as_str().unwrap_or_default().to_owned();
    (digest(&v["config"]), v["layers"].as_array().into_iter().flatten().map(digest).collect())
}

#[test]
fn skopeo_reads_the_same_images_from_every_docker_archive_needs_shared_needs_skopeo() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("skopeo") {
        return;
    }
    let mut files = vec![shared.join("fixtures/peer-made/skopeo-docker-archive/app.tar")];
    files.extend(
        archive_cases(&shared)
            .iter()
            .filter(|c| {
                c.kind == "docker-save"
                    && c.verdict == "valid"
                    && !c.warnings.contains("LEGACY_FORMAT")
            })
            .map(|c| shared.join("conformance").join(&c.path)),
    );
    let mut failures = Vec::new();
    let mut images = 0;
    for file in &files {
        let f = s(file);
        // skopeo: every image of manifest.json, by position.
        let mut theirs = BTreeSet::new();
        for n in 0.. {
            let out =
                run("skopeo", &["inspect", "--raw", &format!("docker-archive:{f}:@{n}")], None);
            if out.code != 0 {
                break;
            }
            theirs.insert(image_key(&serde_json::from_str(&out.stdout).unwrap()));
        }
        // ocil, in place: every entry of `ls`, through `inspect --raw`.
        let mut ours = BTreeSet::new();
        for row in ls_rows(&["ls", "--json", f]).unwrap().as_array().unwrap() {
            let digest = row["digest"].as_str().unwrap();
            let out = ocil(&["inspect", "--raw", &format!("{f}@{digest}")]);
            assert_eq!(out.code, 0, "{f}@{digest}: {}", out.stderr);
            ours.insert(image_key(&out.json()));
        }
        if theirs.is_empty() || theirs != ours {
            failures.push(format!("{f}: skopeo {theirs:?}\nocil {ours:?}"));
        }
        images += ours.len();
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(images >= 5, "only {images} images compared");
}

#[test]
fn import_reads_stdin_and_creates_dir() {
    let img = corpus::Image::new("stdin\n");
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("a/b");
    let archive = corpus::gzip(&img.docker_archive(&["example.com/app:v1"]));
    let out = run(env!("CARGO_BIN_EXE_ocil"), &["import", "-", s(&dest)], Some(&archive));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with("imported docker-archive stdin (gzip) into"), "{}", out.stdout);
    assert!(out.stdout.contains("example.com/app:v1"), "{}", out.stdout);
    assert_eq!(entries(&dest)[0].0.as_deref(), Some("v1"));
    assert_eq!(ocil(&["fsck", "--deep", s(&dest)]).code, 0);
    // An existing empty directory is initialised too.
    let empty = tmp.path().join("empty");
    fs_err::create_dir(&empty).unwrap();
    let f = tmp.path().join("a.tar");
    fs_err::write(&f, img.oci_archive(Some("x"))).unwrap();
    assert_eq!(ocil(&["import", s(&f), s(&empty)]).code, 0);
    assert_eq!(entries(&empty)[0].0.as_deref(), Some("x"));
    // A directory that is neither empty nor a layout is refused.
    let out = ocil(&["import", s(&f), s(tmp.path())]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    // A missing archive creates nothing.
    let out = ocil(&["import", s(&tmp.path().join("nope.tar")), s(&tmp.path().join("new"))]);
    assert_eq!(out.code, 2);
    assert!(!tmp.path().join("new").exists());
}

#[test]
fn a_tag_conflict_exits_2_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("dest");
    let a = tmp.path().join("a.tar");
    let b = tmp.path().join("b.tar");
    fs_err::write(&a, corpus::Image::new("a\n").oci_archive(Some("v1"))).unwrap();
    fs_err::write(&b, corpus::Image::new("b\n").oci_archive(Some("v1"))).unwrap();
    assert_eq!(ocil(&["import", s(&a), s(&dest)]).code, 0);
    let before = snapshot(&dest);
    let out = ocil(&["import", s(&b), s(&dest)]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("tag `v1` already names"), "{}", out.stderr);
    assert!(out.stderr.contains("--force"), "{}", out.stderr);
    assert_eq!(snapshot(&dest), before);
    let out = ocil(&["import", "--force", s(&b), s(&dest)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(entries(&dest).len(), 1);
    // The old image's blobs stay until gc.
    assert_eq!(blobs(&dest).len(), 6);
}

#[test]
fn skopeo_agrees_on_the_digests_needs_shared_needs_skopeo() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let archive = shared.join("fixtures/peer-made/skopeo-oci-archive/app-v3.tar");
    // skopeo's import of the archive and ours name the same manifest.
    let theirs = tmp.path().join("theirs");
    let out = run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("oci-archive:{}:v3", s(&archive)),
            &format!("oci:{}:v3", s(&theirs)),
        ],
        None,
    );
    assert_eq!(out.code, 0, "skopeo: {}", out.stderr);
    let ours = tmp.path().join("ours");
    assert_eq!(ocil(&["import", s(&archive), s(&ours)]).code, 0);
    assert_eq!(entries(&theirs), entries(&ours));
    assert_eq!(blobs(&theirs), blobs(&ours));

    // skopeo reads back, byte for byte, what we import from a docker-save archive.
    let docker = tmp.path().join("docker");
    let app = shared.join("fixtures/peer-made/skopeo-docker-archive/app.tar");
    assert_eq!(ocil(&["import", s(&app), s(&docker)]).code, 0);
    let copy = tmp.path().join("copy");
    let out = run(
        "skopeo",
        &[
            "copy",
            "-q",
            // Without it skopeo gzips uncompressed layers, which changes the manifest.
            "--dest-oci-accept-uncompressed-layers",
            &format!("oci:{}:v1", s(&docker)),
            &format!("oci:{}:v1", s(&copy)),
        ],
        None,
    );
    assert_eq!(out.code, 0, "skopeo: {}", out.stderr);
    assert_eq!(entries(&copy)[0].1, entries(&docker)[0].1);
}

#[test]
fn fsck_of_a_plain_tar_warns_about_unsafe_names_and_prints_its_diff_id() {
    let mut t = corpus::Tar::new();
    t.file("ok.txt", b"fine");
    t.raw(b"../up.txt", tar::EntryType::Regular, None, b"up");
    t.raw(b"/etc/abs.txt", tar::EntryType::Regular, None, b"abs");
    let bytes = t.finish();
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("layer.tar.gz");
    fs_err::write(&f, corpus::gzip(&bytes)).unwrap();
    let out = ocil(&["fsck", s(&f)]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("warning[UNSAFE_ENTRY]: entry `../up.txt`"), "{}", out.stdout);
    assert!(out.stdout.contains("warning[UNSAFE_ENTRY]: entry `/etc/abs.txt`"), "{}", out.stdout);
    assert!(out.stdout.contains("archive: plain-tar, gzip-compressed, 3 entries (3 files)"));
    assert!(out.stdout.contains(&format!("diff_id: {}", corpus::sha256(&bytes))), "{}", out.stdout);
    let json = ocil(&["fsck", "--json", s(&f)]).json();
    assert_eq!(json["warnings"], 2);
    assert_eq!(json["archive"]["compression"], "gzip");
}
