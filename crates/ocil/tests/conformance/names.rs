//! Names, name by name, in the shared layouts and archives that carry them: the tag
//! (`org.opencontainers.image.ref.name`) and the full name (`io.containerd.image.name`) of
//! each `index.json` entry, read here with serde_json (and the archives with `tar`), never
//! through ocil's tag rules:
//!
//! - `ocil ls` lists each entry under its full name, else its tag (`@DIGEST` untagged), and
//!   `DIR:<full name>` and `DIR:<tag>` select that entry's digest;
//! - a bare tag that several full names share (`latest`: hello-world's and skopeo's
//!   `example.com/app`) is an error that lists them, for every command that takes a target;
//! - `ocil copy`, `ocil export` (OCI, and docker's `RepoTags`) and `ocil import` keep every
//!   name.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::{self, Checks, ocil, temp_copy};

const TAG: &str = "org.opencontainers.image.ref.name";
const FULL: &str = "io.containerd.image.name";

/// One `index.json` entry as the fixture writes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    tag: Option<String>,
    full: Option<String>,
    digest: String,
}

impl Entry {
    /// What `ls -q` prints: the full name, else the tag, else `@DIGEST`.
    fn shown(&self) -> String {
        self.full.clone().or(self.tag.clone()).unwrap_or_else(|| format!("@{}", self.digest))
    }
}

fn entries_of(index: &Value) -> Vec<Entry> {
    let Some(manifests) = index["manifests"].as_array() else { return Vec::new() };
    manifests
        .iter()
        .map(|d| {
            let ann = |k: &str| d["annotations"][k].as_str().map(str::to_owned);
            Entry {
                tag: ann(TAG),
                full: ann(FULL),
                digest: d["digest"].as_str().unwrap_or_default().to_owned(),
            }
        })
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(path).expect("read JSON")).expect("parse JSON")
}

/// The regular files of a tar: name -> bytes.
fn tar_files(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(fs_err::File::open(path).expect("open archive"));
    let mut out = BTreeMap::new();
    for entry in archive.entries().expect("a tar") {
        let mut entry = entry.expect("an entry");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().expect("a path").to_string_lossy().trim_start_matches("./").into();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("read an entry");
        out.insert(name, bytes);
    }
    out
}

/// A layout or an archive of `shared/` whose `index.json` names something.
struct Fixture {
    /// The target ocil is given.
    path: PathBuf,
    entries: Vec<Entry>,
    /// The blobs it holds, `sha256:<hex>`.
    blobs: BTreeSet<String>,
}

/// Every layout directory (with `oci-layout`: without one ls refuses it, which `cases.rs`
/// checks) and every archive with an `index.json` under `shared/conformance` and
/// `shared/fixtures/peer-made` whose entries carry a tag or a full name.
fn named_fixtures(shared: &Path) -> Vec<Fixture> {
    let mut out = Vec::new();
    for root in ["conformance", "fixtures/peer-made"] {
        for entry in walkdir::WalkDir::new(shared.join(root)).sort_by_file_name() {
            let entry = entry.expect("walk shared/");
            let path = entry.path();
            let name = entry.file_name().to_string_lossy();
            let fixture = if name == "index.json" && entry.file_type().is_file() {
                let dir = path.parent().expect("a parent");
                if !dir.join("oci-layout").is_file() {
                    continue;
                }
                Fixture {
                    path: dir.to_path_buf(),
                    entries: entries_of(&read_json(path)),
                    blobs: support::blobs(dir),
                }
            } else if name.ends_with(".tar") && entry.file_type().is_file() {
                let files = tar_files(path);
                let Some(index) = files.get("index.json") else { continue };
                let index: Value = serde_json::from_slice(index).expect("index.json parses");
                let blobs = files
                    .keys()
                    .filter_map(|k| k.strip_prefix("blobs/sha256/"))
                    .map(|hex| format!("sha256:{hex}"))
                    .collect();
                Fixture { path: path.to_path_buf(), entries: entries_of(&index), blobs }
            } else {
                continue;
            };
            if fixture.entries.iter().any(|e| e.tag.is_some() || e.full.is_some()) {
                out.push(fixture);
            }
        }
    }
    out
}

/// `TARGET:name` selects `want`: `ocil inspect` shows it, or, when the fixture lacks that
/// manifest, says that this very blob is missing.
fn selects(fixture: &Fixture, name: &str, want: &str) -> Result<(), String> {
    let target = support::target(&fixture.path, name);
    let out = ocil(["inspect", "--json", target.as_str()]);
    if out.code == 0 {
        let got = out.json()["digest"].as_str().unwrap_or_default().to_owned();
        return if got == want { Ok(()) } else { Err(format!("`{target}` selects {got}")) };
    }
    if !fixture.blobs.contains(want) && out.stderr.contains(want) && out.stderr.contains("missing")
    {
        return Ok(());
    }
    Err(format!("`{target}` (want {want}): {}", out.describe()))
}

#[test]
fn ls_lists_and_targets_select_every_name_of_the_shared_layouts_needs_shared() {
    let Some(shared) = support::shared_dir() else { return };
    let fixtures = named_fixtures(&shared);
    let full_names = fixtures.iter().flat_map(|f| &f.entries).filter(|e| e.full.is_some()).count();
    assert!(fixtures.len() >= 20, "only {} named layouts and archives found", fixtures.len());
    assert!(full_names >= 2, "the notation layout and oras' hello-world.tar carry full names");
    let mut checks = Checks::default();
    for f in &fixtures {
        let p = f.path.display().to_string();
        let quiet = ocil(["ls", "-q", p.as_str()]);
        let lines: Vec<String> = quiet.stdout.lines().map(str::to_owned).collect();
        let want: Vec<String> = f.entries.iter().map(Entry::shown).collect();
        checks.eq(&format!("{p}: ls -q"), &lines, &want);

        let rows = ocil(["ls", "--json", p.as_str()]);
        checks.check(rows.code == 0, || format!("{p}: ls --json: {}", rows.describe()));
        if rows.code == 0 {
            let rows = rows.json();
            let got: Vec<(Vec<String>, String)> = rows
                .as_array()
                .expect("rows")
                .iter()
                .map(|r| (support::strings(&r["names"]), r["digest"].as_str().unwrap().into()))
                .collect();
            let want: Vec<(Vec<String>, String)> = f
                .entries
                .iter()
                .map(|e| {
                    let names = [&e.tag, &e.full].into_iter().flatten().cloned().collect();
                    (names, e.digest.clone())
                })
                .collect();
            checks.eq(&format!("{p}: ls --json names"), &got, &want);
        }

        // Every full name selects its entry.
        for e in &f.entries {
            if let Some(full) = &e.full {
                let result = selects(f, full, &e.digest);
                checks.check(result.is_ok(), || result.unwrap_err());
            }
        }
        // A tag selects its entry when every entry carrying it is the same image; else it
        // is an error listing the names of those entries.
        let mut by_tag: BTreeMap<&str, Vec<&Entry>> = BTreeMap::new();
        for e in &f.entries {
            if let Some(t) = &e.tag {
                by_tag.entry(t).or_default().push(e);
            }
        }
        for (tag, carriers) in by_tag {
            let digests: BTreeSet<&str> = carriers.iter().map(|e| e.digest.as_str()).collect();
            if digests.len() == 1 {
                let result = selects(f, tag, carriers[0].digest.as_str());
                checks.check(result.is_ok(), || result.unwrap_err());
            } else {
                let target = support::target(&f.path, tag);
                let out = ocil(["inspect", target.as_str()]);
                let listed = carriers.iter().all(|e| out.stderr.contains(&e.shown()));
                checks.check(out.code == 2 && listed, || {
                    format!("`{target}` names several images: {}", out.describe())
                });
            }
        }
    }
    println!("{} layouts and archives with names", fixtures.len());
    checks.finish("names in shared/");
}

/// The full names of a docker-save archive (`RepoTags`) and its config's digest.
fn repo_tags(archive: &Path) -> (Vec<String>, String) {
    let files = tar_files(archive);
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    let config = manifest[0]["Config"].as_str().expect("Config");
    let hex = config.trim_end_matches(".json").rsplit('/').next().expect("a name");
    (support::strings(&manifest[0]["RepoTags"]), format!("sha256:{hex}"))
}

/// The tag of a full name: after the last `:` that follows the last `/`.
fn tag_of(full: &str) -> &str {
    let last = full.rsplit('/').next().unwrap_or(full);
    last.rsplit_once(':').map_or("latest", |(_, t)| t)
}

#[test]
fn a_tag_shared_by_several_full_names_is_an_error_listing_them_needs_shared() {
    let Some(shared) = support::shared_dir() else { return };
    let hello =
        shared.join("conformance/oras-project-oras-go/content/oci/testdata/hello-world.tar");
    let app = shared.join("fixtures/peer-made/skopeo-docker-archive/app.tar");
    let hello_entries =
        entries_of(&serde_json::from_slice(&tar_files(&hello)["index.json"]).expect("index"));
    let (app_names, app_config) = repo_tags(&app);
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("both");
    let d = dir.display().to_string();
    for archive in [&hello, &app] {
        let out = ocil(["import".as_ref(), archive.as_os_str(), dir.as_os_str()]);
        assert_eq!(out.code, 0, "import {}: {}", archive.display(), out.describe());
    }

    // Every full name, each listed and selecting its own image.
    let mut names: Vec<(String, Option<String>)> = Vec::new();
    for e in &hello_entries {
        let full = e.full.clone().expect("hello-world.tar's entry has a full name");
        names.push((full, Some(e.digest.clone())));
    }
    names.extend(app_names.iter().map(|n| (n.clone(), None)));
    let listed = ocil(["ls", "-q", d.as_str()]);
    let want: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(listed.stdout.lines().collect::<Vec<_>>(), want, "ls -q");
    for (name, digest) in &names {
        let out = ocil(["inspect", "--json", &support::target(&dir, name)]);
        assert_eq!(out.code, 0, "{name}: {}", out.describe());
        let v = out.json();
        match digest {
            Some(d) => assert_eq!(v["digest"], d.as_str(), "{name}"),
            // skopeo's image: the manifest is import's own, the config is the archive's.
            None => assert_eq!(v["config"]["digest"], app_config.as_str(), "{name}"),
        }
    }

    // The tags the two archives share, each naming several full names.
    let mut by_tag: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, _) in &names {
        by_tag.entry(tag_of(name)).or_default().push(name);
    }
    by_tag.retain(|_, fulls| fulls.len() > 1);
    assert_eq!(by_tag.keys().copied().collect::<Vec<_>>(), ["latest"], "the shared tags");
    let before = fs_err::read(dir.join("index.json")).expect("index.json");
    for (tag, fulls) in &by_tag {
        let target = support::target(&dir, tag);
        let copy_to = tmp.path().join("copy").display().to_string();
        let export_to = tmp.path().join("export.tar").display().to_string();
        for args in [
            vec!["inspect", target.as_str()],
            vec!["cat", target.as_str()],
            vec!["untag", target.as_str()],
            vec!["copy", target.as_str(), copy_to.as_str()],
            vec!["export", target.as_str(), "-o", export_to.as_str()],
        ] {
            let out = ocil(&args);
            assert_eq!(out.code, 2, "{args:?}: {}", out.describe());
            assert!(out.stderr.contains("ambiguous"), "{args:?}: {}", out.stderr);
            for full in fulls {
                assert!(out.stderr.contains(&format!("`{full}`")), "{args:?}: {}", out.stderr);
            }
        }
        assert!(!Path::new(&copy_to).exists() && !Path::new(&export_to).exists());
    }
    assert_eq!(fs_err::read(dir.join("index.json")).expect("index.json"), before, "untouched");
}

/// `(tag, full name, digest)` of every entry of a layout's `index.json`.
fn names_of(layout: &Path) -> Vec<Entry> {
    entries_of(&read_json(&layout.join("index.json")))
}

#[test]
fn copy_export_and_import_keep_every_name_needs_shared() {
    let Some(shared) = support::shared_dir() else { return };
    // Full names (notation's layout, skopeo's docker archive) beside bare tags (umoci's).
    let (tmp, src) = temp_copy(
        &shared.join("conformance/notaryproject-notation-go/internal/testdata/oci-layout"),
    );
    let root = tmp.path();
    let s = src.display().to_string();
    let app = shared.join("fixtures/peer-made/skopeo-docker-archive/app.tar");
    let umoci = shared.join("fixtures/peer-made/umoci-edit/layout");
    for args in [
        vec!["import".to_owned(), app.display().to_string(), s.clone()],
        vec!["copy".to_owned(), umoci.display().to_string(), s.clone()],
    ] {
        let out = ocil(&args);
        assert_eq!(out.code, 0, "{args:?}: {}", out.describe());
    }
    let want = names_of(&src);
    let fulls: Vec<&str> = want.iter().filter_map(|e| e.full.as_deref()).collect();
    assert!(fulls.len() >= 3, "full names: {fulls:?}");
    assert!(want.iter().any(|e| e.full.is_none() && e.tag.is_some()), "bare tags too");
    let path = |name: &str| root.join(name).display().to_string();

    // copy
    let out = ocil(["copy", s.as_str(), path("copied").as_str()]);
    assert_eq!(out.code, 0, "copy: {}", out.describe());
    assert_eq!(names_of(&root.join("copied")), want, "copy");

    // an OCI archive, imported
    let out = ocil(["export", s.as_str(), "-o", path("oci.tar").as_str()]);
    assert_eq!(out.code, 0, "export: {}", out.describe());
    let out = ocil(["import", path("oci.tar").as_str(), path("from-oci").as_str()]);
    assert_eq!(out.code, 0, "import: {}", out.describe());
    assert_eq!(names_of(&root.join("from-oci")), want, "export, import");

    // a docker archive: RepoTags are the full names, --repo names the bare tags only, and
    // no RepoTag names two images; imported, every name is back.
    let repo = "example.com/bare";
    let docker = path("docker.tar");
    let out = ocil(["export", s.as_str(), "--format", "docker", "--repo", repo, "-o", &docker]);
    assert_eq!(out.code, 0, "export --format docker: {}", out.describe());
    let manifest: Value =
        serde_json::from_slice(&tar_files(Path::new(&docker))["manifest.json"]).expect("JSON");
    let repo_tags: Vec<String> = manifest
        .as_array()
        .expect("manifest.json is an array")
        .iter()
        .flat_map(|m| support::strings(&m["RepoTags"]))
        .collect();
    let unique: BTreeSet<&String> = repo_tags.iter().collect();
    assert_eq!(unique.len(), repo_tags.len(), "a RepoTag names one image: {repo_tags:?}");
    let expected: BTreeSet<String> = want
        .iter()
        .map(|e| match (&e.full, &e.tag) {
            (Some(full), _) => full.clone(),
            (None, Some(tag)) => format!("{repo}:{tag}"),
            (None, None) => unreachable!("every entry here is named"),
        })
        .collect();
    assert_eq!(repo_tags.iter().cloned().collect::<BTreeSet<_>>(), expected, "RepoTags");
    let out = ocil(["import", docker.as_str(), path("from-docker").as_str()]);
    assert_eq!(out.code, 0, "import: {}", out.describe());
    assert_eq!(names_of(&root.join("from-docker")), want, "export --format docker, import");

    // A --repo that would give a bare tag a full name another image has is refused.
    let (_, app_repo) = fulls
        .iter()
        .find_map(|f| f.rsplit_once(':').filter(|(r, _)| r.contains('/')).map(|(r, t)| (t, r)))
        .expect("a full name with a repository");
    let clash = want.iter().find(|e| {
        e.full.is_none()
            && e.tag.as_deref().is_some_and(|t| fulls.contains(&format!("{app_repo}:{t}").as_str()))
    });
    let clash = clash.expect("a bare tag that a full name's repository also has");
    let out = ocil([
        "export",
        s.as_str(),
        "--format",
        "docker",
        "--repo",
        app_repo,
        "-o",
        path("clash.tar").as_str(),
    ]);
    assert_eq!(out.code, 2, "export with a clashing --repo: {}", out.describe());
    let tag = clash.tag.as_deref().unwrap_or_default();
    assert!(out.stderr.contains(&format!("{app_repo}:{tag}")), "{}", out.stderr);
    assert!(!root.join("clash.tar").exists());
}
