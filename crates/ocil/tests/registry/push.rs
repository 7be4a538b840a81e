//! `ocil push` and `docker://` destinations against Debian's `docker-registry`: skopeo (the
//! oracle) reads back what ocil pushed with the same digests; every shared image round-trips
//! layout -> registry -> layout; the Docker daemon pulls what ocil pushed; a copy between two
//! repositories of one registry mounts its blobs (counted in the registry's access log);
//! referrers go through the `sha256-<hex>` tag (distribution 2.8 has no referrers API);
//! Basic auth.

use std::path::Path;

use crate::peers::{registry_tool, require_tool, shared_dir};
use crate::support::{
    Registry, assert_clean, layouts_under, ocil, ocil_ok, registry_tag, run, tags,
};

/// Push every tagged entry of every layout under `root` with ocil, pull each back with ocil,
/// and compare. Returns (round-tripped, refused with the reason).
fn round_trip_all(reg: &Registry, root: &Path, work: &Path) -> (Vec<String>, Vec<String>) {
    let (mut done, mut refused) = (Vec::new(), Vec::new());
    for (i, layout) in layouts_under(root).iter().enumerate() {
        let dst = work.join(format!("l{i}"));
        for (tag, digest) in tags(layout) {
            let what = format!("{}:{tag}", layout.strip_prefix(root).unwrap_or(layout).display());
            if !registry_tag(&tag) {
                refused.push(format!("{what} (not a registry tag)"));
                continue;
            }
            let dest = format!("{}/r{i}:{tag}", reg.host());
            let out =
                ocil(["push".to_owned(), format!("{}:{tag}", layout.display()), dest.clone()]);
            if !out.ok() {
                // A broken source (fsck finds errors), or an image distribution 2.8 refuses
                // (an index typed as a Docker manifest list in index.json whose children
                // are OCI manifests): exit 2, saying so.
                let broken = !ocil(["fsck".as_ref(), layout.as_os_str()]).ok();
                let invalid = out.stderr.contains("answered 400 (MANIFEST_INVALID");
                assert!(
                    out.code == Some(2) && (broken && out.stderr.contains("broken") || invalid),
                    "ocil push {what}: {}",
                    out.stderr
                );
                let why = if broken { "broken" } else { "MANIFEST_INVALID" };
                refused.push(format!("{what} ({why})"));
                continue;
            }
            ocil_ok(["pull".to_owned(), dest.clone(), format!("{}:{tag}", dst.display())]);
            let got = tags(&dst);
            assert!(
                got.contains(&(tag.clone(), digest.clone())),
                "{what}: pulled back {got:?}, pushed {digest}"
            );
            done.push(what);
        }
        if dst.exists() {
            assert_clean(&dst);
        }
    }
    (done, refused)
}

#[test]
fn round_trip_peer_made_needs_registry_needs_shared() {
    if !registry_tool() {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let (done, refused) = round_trip_all(&reg, &shared.join("fixtures/peer-made"), tmp.path());
    eprintln!("round-tripped {} image(s); refused: {refused:#?}", done.len());
    assert!(refused.is_empty(), "{refused:?}");
    for must in
        ["registry-index/layout:", "skopeo-v2s2/layout:", "skopeo-zstd/", "buildah-index-docker/"]
    {
        assert!(done.iter().any(|d| d.contains(must)), "{must} not round-tripped: {done:?}");
    }
}

#[test]
fn round_trip_conformance_needs_registry_needs_shared() {
    if !registry_tool() {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let (done, refused) = round_trip_all(&reg, &shared.join("conformance"), tmp.path());
    eprintln!("round-tripped {} image(s); refused: {refused:#?}", done.len());
    assert!(done.len() >= 40, "too few round trips: {done:?}");
    // The registry refuses only go-containerregistry's index typed as a Docker manifest
    // list whose child is an OCI manifest (skopeo cannot read it either).
    let invalid: Vec<&String> = refused.iter().filter(|r| r.contains("MANIFEST_INVALID")).collect();
    assert!(
        invalid.iter().all(|r| r.contains("go-containerregistry") && r.contains(":4 ")),
        "{invalid:?}"
    );
}

#[test]
fn skopeo_reads_what_ocil_pushed_needs_registry_needs_skopeo_needs_shared() {
    if !(registry_tool() && require_tool("skopeo")) {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let peer = shared.join("fixtures/peer-made");
    // OCI and Docker-typed multi-platform indexes, zstd layers, a plain image.
    for (i, name) in
        ["registry-index", "registry-index-docker", "skopeo-zstd", "umoci-edit", "buildah-index"]
            .iter()
            .enumerate()
    {
        let layout = peer.join(name).join("layout");
        let (tag, digest) = tags(&layout).last().unwrap().clone();
        let dest = format!("{}/s{i}:{tag}", reg.host());
        ocil_ok(["push".to_owned(), format!("{}:{tag}", layout.display()), dest.clone()]);
        let out = tmp.path().join(format!("s{i}"));
        let copied = run(
            "skopeo",
            [
                "copy".to_owned(),
                "--all".into(),
                "--preserve-digests".into(),
                "--src-tls-verify=false".into(),
                format!("docker://{dest}"),
                format!("oci:{}:{tag}", out.display()),
            ],
        );
        assert!(copied.ok(), "skopeo copy {dest}: {}", copied.stderr);
        assert_eq!(tags(&out), vec![(tag, digest)], "{name}");
        assert_clean(&out);
    }
}

#[test]
fn docker_pulls_what_ocil_pushed_needs_docker_needs_registry_needs_shared() {
    if !(crate::peers::docker_daemon() && registry_tool()) {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    let layout = shared.join("fixtures/peer-made/umoci-edit/layout");
    let digest = tags(&layout).into_iter().find(|(t, _)| t == "v2").unwrap().1;
    let name = format!("{}/ocil-i14-push-{}:v2", reg.host(), std::process::id());
    ocil_ok(["push".to_owned(), format!("{}:v2", layout.display()), name.clone()]);
    let pulled = run("docker", ["pull", &name]);
    let inspected = run("docker", ["image", "inspect", "--format", "{{json .RepoDigests}}", &name]);
    let _ = run("docker", ["rmi", &name]);
    assert!(pulled.ok(), "docker pull: {}{}", pulled.stdout, pulled.stderr);
    assert!(inspected.stdout.contains(&digest), "{} vs {digest}", inspected.stdout);
}

#[test]
fn a_copy_between_repositories_mounts_needs_registry_needs_shared() {
    if !registry_tool() {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start_logged();
    let layout = shared.join("fixtures/peer-made/umoci-edit/layout");
    let digest = tags(&layout).into_iter().find(|(t, _)| t == "v3").unwrap().1;
    let a = format!("{}/team-a/app:v3", reg.host());
    let b = format!("{}/team-b/app:v3", reg.host());
    ocil_ok(["push".to_owned(), format!("{}:v3", layout.display()), a.clone()]);
    let out = ocil_ok([
        "copy".to_owned(),
        format!("docker://{a}"),
        format!("docker://{b}"),
        "--json".into(),
    ]);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // A config and two layers, mounted; the manifest PUT.
    assert_eq!((v["mounted"].as_u64(), v["uploaded"].as_u64()), (Some(3), Some(1)), "{v}");
    assert_eq!(v["images"][0]["digest"], digest);
    let log = reg.log();
    let mounts = log
        .lines()
        .filter(|l| l.contains("\"POST /v2/team-b/app/blobs/uploads/?mount=sha256%3A"))
        .filter(|l| l.contains("&from=team-a%2Fapp HTTP/1.1\" 201"))
        .count();
    assert_eq!(mounts, 3, "{log}");
    assert!(!log.contains("PATCH /v2/team-b/"), "no bytes uploaded to team-b");
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("b");
    ocil_ok(["pull".to_owned(), b, dst.display().to_string()]);
    assert_eq!(tags(&dst), vec![("v3".to_owned(), digest)]);
    assert_clean(&dst);
}

#[test]
fn referrers_through_the_tag_fallback_needs_registry_needs_shared() {
    if !registry_tool() {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    // regclient's testrepo: `v2` (an index) has a signature and an SBOM, and its
    // per-platform manifests have referrers of their own.
    let layout = shared.join("conformance/regclient-regclient/testdata/testrepo");
    let subject = tags(&layout).into_iter().find(|(t, _)| t == "v2").unwrap().1;
    let hex = subject.trim_start_matches("sha256:");
    let listed = ocil_ok(["referrers".to_owned(), format!("{}:v2", layout.display())]).stdout;
    let repo = format!("{}/rc", reg.host());
    let out =
        ocil_ok(["push".to_owned(), format!("{}:v2", layout.display()), format!("{repo}:v2")]);
    assert!(out.stdout.contains("5 referrer(s)"), "{}", out.stdout);
    let tag_list = ocil_ok(["ls".to_owned(), format!("docker://{repo}")]).stdout;
    assert!(tag_list.contains(&format!("sha256-{hex}")), "{tag_list}");
    // The fallback index lists the subject's two referrers (read by curl-free means: cat).
    let index = std::process::Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["cat".to_owned(), format!("docker://{repo}:sha256-{hex}")])
        .output()
        .unwrap()
        .stdout;
    let index: serde_json::Value = serde_json::from_slice(&index).unwrap();
    let digests: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests.len(), 2, "{index}");
    for d in &digests {
        assert!(listed.contains(d), "{d} is a referrer of v2 in the layout: {listed}");
    }
    // Pushed again: the index is unchanged (no duplicates).
    ocil_ok(["push".to_owned(), format!("{}:v2", layout.display()), format!("{repo}:v2")]);
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["cat".to_owned(), format!("docker://{repo}:sha256-{hex}")])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&again).unwrap(), index);

    // Pulled back: the same referrers, found through the tag.
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("back");
    let out = ocil_ok(["pull".to_owned(), format!("{repo}:v2"), dst.display().to_string()]);
    assert!(out.stdout.contains("5 referrer(s)"), "{}", out.stdout);
    assert_eq!(ocil_ok(["referrers".to_owned(), format!("{}:v2", dst.display())]).stdout, listed);
    assert_clean(&dst);

    // Registry to registry (another repository): the referrers and their index follow.
    let other = format!("{}/rc2", reg.host());
    ocil_ok(["copy".to_owned(), format!("docker://{repo}:v2"), format!("docker://{other}:v2")]);
    let tag_list = ocil_ok(["ls".to_owned(), format!("docker://{other}")]).stdout;
    assert!(tag_list.contains(&format!("sha256-{hex}")), "{tag_list}");
    // --referrers none pushes the image alone.
    let bare = format!("{}/bare", reg.host());
    ocil_ok([
        "push".to_owned(),
        format!("{}:v2", layout.display()),
        format!("{bare}:v2"),
        "--referrers".into(),
        "none".into(),
    ]);
    assert_eq!(ocil_ok(["ls".to_owned(), format!("docker://{bare}")]).stdout, "v2\n");
}

#[test]
fn push_with_basic_auth_needs_registry_needs_htpasswd() {
    if !(registry_tool() && require_tool("htpasswd")) {
        return;
    }
    let reg = Registry::start(Some(("bob", "pa55-word")));
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    ocil_ok(["init".as_ref(), src.as_os_str()]);
    ocil_ok(["new".to_owned(), format!("{}:v1", src.display())]);
    let digest = tags(&src)[0].1.clone();
    let dest = format!("{}/private:v1", reg.host());
    let push = |extra: &[&str]| {
        let mut args = vec!["push".to_owned(), format!("{}:v1", src.display()), dest.clone()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        ocil(args)
    };
    let out = push(&[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("needs credentials"), "{}", out.stderr);
    let out = push(&["--creds", "bob:pa55-word"]);
    assert!(out.ok(), "{}", out.stderr);
    assert!(!out.stderr.contains("pa55") && !out.stdout.contains("pa55"));
    let dst = tmp.path().join("dst");
    ocil_ok([
        "pull".to_owned(),
        dest,
        dst.display().to_string(),
        "--creds".into(),
        "bob:pa55-word".into(),
    ]);
    assert_eq!(tags(&dst), vec![("v1".to_owned(), digest)]);
}

#[test]
fn the_air_gap_workflow_keeps_every_digest_needs_registry_needs_shared() {
    if !registry_tool() {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    let layout = shared.join("fixtures/peer-made/registry-index/layout");
    let (tag, digest) = tags(&layout)[0].clone();
    let source = format!("{}/upstream/app:v1", reg.host());
    ocil_ok(["push".to_owned(), format!("{}:{tag}", layout.display()), source.clone()]);
    let tmp = tempfile::tempdir().unwrap();
    let p = |name: &str| tmp.path().join(name).display().to_string();
    // Connected side: pull, export. Site: import, push. (README's example.)
    ocil_ok(["pull".to_owned(), source, format!("{}:app", p("carry"))]);
    ocil_ok(["export".to_owned(), format!("{}:app", p("carry")), "-o".into(), p("app.tar")]);
    ocil_ok(["import".to_owned(), p("app.tar"), format!("{}:app", p("site"))]);
    let site = format!("{}/site/app:v1", reg.host());
    ocil_ok(["push".to_owned(), format!("{}:app", p("site")), site.clone()]);
    ocil_ok(["pull".to_owned(), site, p("check")]);
    assert_eq!(tags(&tmp.path().join("check")), vec![("v1".to_owned(), digest)]);
    assert_clean(&tmp.path().join("check"));
}
