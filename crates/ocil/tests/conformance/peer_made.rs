//! The layouts that umoci, skopeo, buildah and docker-registry wrote
//! (`shared/fixtures/peer-made/*/layout`), checked against each fixture's `facts.json`
//! (written by an independent checker): `ls` lists the tags, fsck accepts them, gc removes
//! exactly the garbage and keeps Docker-typed images whole, `inspect` reads the configs.
//!
//! The tar artefacts (`skopeo-oci-archive/app-v3.tar`, `skopeo-oci-archive-index/multi.tar`,
//! `skopeo-docker-archive/app.tar`) and `skopeo-dir/dir` are not layouts; the CLI cannot read
//! archives yet, so they are not checked here.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{self, Checks, blobs, gc_removed, ocil, target, temp_copy};

/// A peer-made layout and its facts.
pub(crate) struct Fixture {
    pub(crate) name: String,
    pub(crate) layout: PathBuf,
    pub(crate) facts: Value,
}

impl Fixture {
    /// The tags in index.json order.
    pub(crate) fn tags(&self) -> Vec<String> {
        support::strings(&self.facts["tags"])
    }

    /// The index.json entries (`name`, `digest`, `mediaType`, ...).
    pub(crate) fn refs(&self) -> Vec<Value> {
        self.facts["refs"].as_array().expect("facts.refs").clone()
    }

    /// Whether the entry for `tag` has a Docker media type (skopeo cannot read those by tag).
    pub(crate) fn docker_typed(&self, tag: &str) -> bool {
        self.refs().iter().any(|r| {
            r["name"] == tag
                && r["mediaType"].as_str().is_some_and(|t| t.starts_with("application/vnd.docker."))
        })
    }
}

/// The layouts whose facts the tests rely on by name.
const EXPECTED: &[&str] = &[
    "buildah-index",
    "buildah-index-docker",
    "registry-index",
    "registry-index-docker",
    "registry-roundtrip",
    "skopeo-from-docker-archive",
    "skopeo-from-oci-archive",
    "skopeo-uncompressed",
    "skopeo-v2s2",
    "skopeo-zstd",
    "umoci-edit",
    "umoci-edit-gc",
];

/// Every `peer-made/*/layout` with a `facts.json`, sorted by name.
pub(crate) fn fixtures() -> Option<Vec<Fixture>> {
    let root = support::shared_dir()?.join("fixtures/peer-made");
    let mut out = Vec::new();
    for entry in fs_err::read_dir(&root).expect("list peer-made") {
        let dir = entry.expect("dir entry").path();
        let (layout, facts) = (dir.join("layout"), dir.join("facts.json"));
        if !layout.is_dir() || !facts.is_file() {
            continue;
        }
        let facts: Value =
            serde_json::from_str(&fs_err::read_to_string(&facts).expect("read facts"))
                .expect("facts.json is JSON");
        let name = dir.file_name().expect("name").to_string_lossy().into_owned();
        out.push(Fixture { name, layout, facts });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    let names: Vec<&str> = out.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, EXPECTED, "the peer-made layouts changed");
    Some(out)
}

/// `ocil ls --json`: exactly the tags, in order, with the entries' digests and media types.
#[test]
fn peer_made_ls_needs_shared() {
    let Some(fixtures) = fixtures() else { return };
    let mut checks = Checks::default();
    for f in &fixtures {
        let out = ocil(["ls".as_ref(), "--json".as_ref(), f.layout.as_os_str()]);
        checks.check(out.code == 0, || format!("{}: ls: {}", f.name, out.describe()));
        if out.code != 0 {
            continue;
        }
        let rows = out.json().as_array().expect("rows").clone();
        let names: Vec<String> =
            rows.iter().map(|r| r["names"][0].as_str().unwrap_or("").to_owned()).collect();
        checks.eq(&format!("{}: tags", f.name), names, f.tags());
        let refs = f.refs();
        checks.eq(&format!("{}: rows", f.name), rows.len(), refs.len());
        for (row, r) in rows.iter().zip(&refs) {
            checks.eq(&format!("{}: {} digest", f.name, r["name"]), &row["digest"], &r["digest"]);
            checks.eq(
                &format!("{}: {} media type", f.name, r["name"]),
                &row["media_type"],
                &r["mediaType"],
            );
        }
    }
    checks.finish("peer-made ls");
}

fn fsck(layout: &Path, deep: bool) -> (i32, Value) {
    let mut args: Vec<&std::ffi::OsStr> = vec!["fsck".as_ref(), "--json".as_ref()];
    if deep {
        args.push("--deep".as_ref());
    }
    args.push(layout.as_os_str());
    let out = ocil(args);
    assert!(out.code <= 1, "fsck `{}`: {}", layout.display(), out.describe());
    (out.code, out.json())
}

/// `ocil fsck` accepts every peer-made layout. With `--deep`, skopeo-uncompressed fails:
/// its layers are uncompressed tars under a `+gzip` media type (a skopeo 1.9.3 quirk).
#[test]
fn peer_made_fsck_needs_shared() {
    let Some(fixtures) = fixtures() else { return };
    let mut checks = Checks::default();
    for f in &fixtures {
        let (code, report) = fsck(&f.layout, false);
        checks.check(code == 0, || format!("{}: fsck: {report}", f.name));
        for d in support::strings(&f.facts["missing"]) {
            checks.check(false, || format!("{}: facts list a missing blob {d}", f.name));
        }
        let (code, report) = fsck(&f.layout, true);
        if f.name == "skopeo-uncompressed" {
            checks.eq("skopeo-uncompressed: fsck --deep exit", code, 1);
            let flagged: BTreeSet<String> = report["problems"]
                .as_array()
                .expect("problems")
                .iter()
                .filter(|p| p["severity"] == "error")
                .map(|p| {
                    assert_eq!(p["code"], "LAYER_COMPRESSION_MISMATCH", "unexpected error {p}");
                    p["digest"].as_str().expect("digest").to_owned()
                })
                .collect();
            let layers: BTreeSet<String> = f.facts["manifests"]
                .as_object()
                .expect("manifests")
                .values()
                .flat_map(|m| m["layers"].as_array().expect("layers").clone())
                .map(|l| l["digest"].as_str().expect("digest").to_owned())
                .collect();
            checks.eq("skopeo-uncompressed: layers flagged", flagged, layers);
        } else {
            checks.check(code == 0, || format!("{}: fsck --deep: {report}", f.name));
        }
    }
    checks.finish("peer-made fsck");
}

/// Every config and layer named by a manifest in the facts.
fn referenced_leaves(facts: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for m in facts["manifests"].as_object().expect("manifests").values() {
        out.insert(m["config"]["digest"].as_str().expect("config digest").to_owned());
        for l in m["layers"].as_array().expect("layers") {
            out.insert(l["digest"].as_str().expect("layer digest").to_owned());
        }
    }
    out
}

/// `ocil gc --prune=now` on a copy removes exactly `facts.garbage` (umoci-edit: the 5 blobs
/// of the removed tags tmp1 and tmp2; the others: nothing). Docker-typed images keep their
/// config and every layer, which `umoci gc` deletes (4 -> 1 and 7 -> 1 blobs, PEERS.md).
#[test]
fn peer_made_gc_needs_shared() {
    let Some(fixtures) = fixtures() else { return };
    let mut checks = Checks::default();
    for f in &fixtures {
        let (_tmp, layout) = temp_copy(&f.layout);
        let before = blobs(&layout);
        checks.eq(
            &format!("{}: blob_count", f.name),
            before.len() as u64,
            f.facts["blob_count"].as_u64().expect("blob_count"),
        );
        let out =
            ocil(["gc".as_ref(), "--prune=now".as_ref(), "--json".as_ref(), layout.as_os_str()]);
        checks.check(out.code == 0, || format!("{}: gc: {}", f.name, out.describe()));
        if out.code != 0 {
            continue;
        }
        let garbage: BTreeSet<String> = support::strings(&f.facts["garbage"]).into_iter().collect();
        checks.eq(&format!("{}: gc planned", f.name), gc_removed(&out.json()), garbage.clone());
        let after = blobs(&layout);
        let gone: BTreeSet<String> = before.difference(&after).cloned().collect();
        checks.eq(&format!("{}: gc removed", f.name), gone, garbage);
        checks.eq(
            &format!("{}: blobs after gc = reachable_count", f.name),
            after.len() as u64,
            f.facts["reachable_count"].as_u64().expect("reachable_count"),
        );
        let lost: Vec<_> = referenced_leaves(&f.facts).difference(&after).cloned().collect();
        checks.check(lost.is_empty(), || format!("{}: gc removed configs/layers {lost:?}", f.name));
        match f.name.as_str() {
            "skopeo-v2s2" => checks.eq("skopeo-v2s2: blobs after gc", after.len(), 4),
            "buildah-index-docker" => {
                checks.eq("buildah-index-docker: blobs after gc", after.len(), 7)
            }
            "umoci-edit" => checks.eq("umoci-edit: removed", before.len() - after.len(), 5),
            _ => {}
        }
        let (code, report) = fsck(&layout, false);
        checks.check(code == 0, || format!("{}: fsck after gc: {report}", f.name));
    }
    checks.finish("peer-made gc");
}

/// `os/arch[/variant]` of a facts platform or image config.
fn platform_of(v: &Value) -> String {
    let mut p = format!(
        "{}/{}",
        v["os"].as_str().expect("os"),
        v["architecture"].as_str().expect("architecture")
    );
    if let Some(variant) = v["variant"].as_str() {
        p.push('/');
        p.push_str(variant);
    }
    p
}

/// Compare `ocil inspect --json` of an image with the facts of its manifest.
fn check_image(checks: &mut Checks, ctx: &str, ours: &Value, facts: &Value) {
    let cfg = &facts["image_config"];
    checks.eq(&format!("{ctx}: kind"), &ours["kind"], &Value::from("image"));
    checks.eq(
        &format!("{ctx}: config digest"),
        &ours["config"]["digest"],
        &facts["config"]["digest"],
    );
    checks.eq(
        &format!("{ctx}: platform"),
        ours["platform"].as_str(),
        Some(platform_of(cfg).as_str()),
    );
    // The facts write an absent Env as null; ocil lists it as [].
    let env = if cfg["Env"].is_null() { Value::Array(vec![]) } else { cfg["Env"].clone() };
    checks.eq(&format!("{ctx}: Env"), &ours["env"], &env);
    checks.eq(&format!("{ctx}: Entrypoint"), &ours["entrypoint"], &cfg["Entrypoint"]);
    checks.eq(&format!("{ctx}: Cmd"), &ours["cmd"], &cfg["Cmd"]);
    let labels = if cfg["Labels"].is_null() {
        Value::Object(Default::default())
    } else {
        cfg["Labels"].clone()
    };
    checks.eq(&format!("{ctx}: Labels"), &ours["labels"], &labels);
    checks.eq(&format!("{ctx}: created"), &ours["created"], &cfg["created"]);
    let our_layers: Vec<&Value> = ours["layers"]
        .as_array()
        .map(|l| l.iter().map(|x| &x["digest"]).collect())
        .unwrap_or_default();
    let want_layers: Vec<&Value> =
        facts["layers"].as_array().expect("layers").iter().map(|x| &x["digest"]).collect();
    checks.eq(
        &format!("{ctx}: layer count"),
        our_layers.len() as u64,
        facts["layer_count"].as_u64().expect("layer_count"),
    );
    checks.eq(&format!("{ctx}: layers"), our_layers, want_layers);
}

/// `ocil inspect DIR:TAG --json` agrees with the facts' image config for every tag; for an
/// index, with its children, and for each child (chosen by `--platform`) with its config.
#[test]
fn peer_made_inspect_needs_shared() {
    let Some(fixtures) = fixtures() else { return };
    let mut checks = Checks::default();
    for f in &fixtures {
        for r in f.refs() {
            let tag = r["name"].as_str().expect("ref name");
            let digest = r["digest"].as_str().expect("ref digest");
            let ctx = format!("{}:{tag}", f.name);
            let out = ocil(["inspect", "--json", &target(&f.layout, tag)]);
            checks.check(out.code == 0, || format!("{ctx}: inspect: {}", out.describe()));
            if out.code != 0 {
                continue;
            }
            let ours = out.json();
            checks.eq(&format!("{ctx}: digest"), ours["digest"].as_str(), Some(digest));
            if let Some(m) = f.facts["manifests"].get(digest) {
                check_image(&mut checks, &ctx, &ours, m);
                continue;
            }
            let index = &f.facts["indexes"][digest];
            checks.check(index.is_object(), || format!("{ctx}: {digest} not in the facts"));
            checks.eq(&format!("{ctx}: kind"), &ours["kind"], &Value::from("index"));
            let children = index["children"].as_array().expect("children");
            let ours_children: Vec<&Value> = ours["manifests"]
                .as_array()
                .map(|c| c.iter().map(|x| &x["digest"]).collect())
                .unwrap_or_default();
            let want_children: Vec<&Value> = children.iter().map(|c| &c["digest"]).collect();
            checks.eq(&format!("{ctx}: children"), ours_children, want_children);
            for child in children {
                let platform = platform_of(&child["platform"]);
                let ctx = format!("{ctx} --platform {platform}");
                let out =
                    ocil(["inspect", "--json", "--platform", &platform, &target(&f.layout, tag)]);
                checks.check(out.code == 0, || format!("{ctx}: {}", out.describe()));
                if out.code != 0 {
                    continue;
                }
                let ours = out.json();
                checks.eq(&format!("{ctx}: digest"), &ours["digest"], &child["digest"]);
                let facts = &f.facts["manifests"][child["digest"].as_str().expect("child digest")];
                check_image(&mut checks, &ctx, &ours, facts);
            }
        }
    }
    checks.finish("peer-made inspect");
}
