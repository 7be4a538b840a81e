//! Against Debian's `docker-registry`, with skopeo as the oracle: what skopeo pushes
//! (`--preserve-digests`), `ocil pull` brings back with the same digests and tags,
//! fsck-clean. Basic auth; `--platform`; `ls`, `inspect`, `cat` and `copy` of `docker://`.

use std::path::Path;

use crate::peers::{registry_tool, require_tool, shared_dir};
use crate::support::{
    Registry, assert_clean, layouts_under, ocil, ocil_ok, registry_tag, skopeo_push, tags,
};

/// Push every tagged entry of every layout under `root` with skopeo, pull each with ocil,
/// and compare. Returns (pushed and pulled, skopeo could not push).
fn round_trip_all(reg: &Registry, root: &Path, work: &Path) -> (Vec<String>, Vec<String>) {
    let (mut done, mut skipped) = (Vec::new(), Vec::new());
    for (i, layout) in layouts_under(root).iter().enumerate() {
        let dst = work.join(format!("l{i}"));
        for (tag, digest) in tags(layout) {
            let what = format!("{}:{tag}", layout.strip_prefix(root).unwrap_or(layout).display());
            if !registry_tag(&tag) {
                skipped.push(format!("{what} (not a registry tag)"));
                continue;
            }
            let dest = format!("{}/t{i}:{tag}", reg.host());
            let pushed = skopeo_push(layout, &tag, &dest, None);
            if !pushed.ok() {
                skipped.push(format!(
                    "{what} (skopeo: {})",
                    pushed.stderr.lines().last().unwrap_or("")
                ));
                continue;
            }
            let out = ocil(["pull".to_owned(), dest.clone(), format!("{}:{tag}", dst.display())]);
            if !out.ok() {
                // Only a broken source may fail (a descriptor whose size is not its blob's:
                // skopeo pushes the blob as it is), with exit 2 naming what is wrong.
                let fsck = ocil(["fsck".as_ref(), layout.as_os_str()]);
                assert!(
                    out.code == Some(2) && !fsck.ok() && out.stderr.contains("blob `sha256:"),
                    "ocil pull {dest} (from {what}): {}",
                    out.stderr
                );
                skipped.push(format!(
                    "{what} (broken, refused: {})",
                    out.stderr.lines().last().unwrap_or("")
                ));
                continue;
            }
            let got = tags(&dst);
            assert!(
                got.contains(&(tag.clone(), digest.clone())),
                "{what}: pulled {got:?}, skopeo pushed {digest}"
            );
            done.push(what);
        }
        if dst.exists() {
            assert_clean(&dst);
        }
    }
    (done, skipped)
}

#[test]
fn pull_gives_what_skopeo_pushed_peer_made_needs_registry_needs_skopeo_needs_shared() {
    if !(registry_tool() && require_tool("skopeo")) {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let (done, skipped) = round_trip_all(&reg, &shared.join("fixtures/peer-made"), tmp.path());
    eprintln!("round-tripped {} image(s); skopeo could not push: {skipped:#?}", done.len());
    // OCI and Docker-typed images, multi-platform indexes, zstd layers among them.
    // (skopeo 1.9 cannot push skopeo-v2s2 from a layout: its index.json names a Docker
    // manifest, which skopeo's oci: transport does not take.)
    for must in ["registry-index/layout:", "registry-index-docker/layout:", "skopeo-zstd/"] {
        assert!(done.iter().any(|d| d.contains(must)), "{must} not round-tripped: {done:?}");
    }
}

#[test]
fn pull_gives_what_skopeo_pushed_conformance_needs_registry_needs_skopeo_needs_shared() {
    if !(registry_tool() && require_tool("skopeo")) {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    let (done, skipped) = round_trip_all(&reg, &shared.join("conformance"), tmp.path());
    eprintln!("round-tripped {} image(s); skopeo could not push: {skipped:#?}", done.len());
    assert!(done.len() >= 10, "too few round trips: {done:?}");
}

/// A one-image layout made by ocil (`init`, `new`): something to push without `shared/`.
fn small_layout(dir: &Path) -> String {
    ocil_ok(["init".as_ref(), dir.as_os_str()]);
    ocil_ok(["new".to_owned(), format!("{}:v1", dir.display())]);
    tags(dir)[0].1.clone()
}

#[test]
fn basic_auth_with_htpasswd_needs_registry_needs_htpasswd_needs_skopeo() {
    if !(registry_tool() && require_tool("htpasswd") && require_tool("skopeo")) {
        return;
    }
    let reg = Registry::start(Some(("alice", "s3cret-pw")));
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let digest = small_layout(&src);
    let dest = format!("{}/app:v1", reg.host());
    let pushed = skopeo_push(&src, "v1", &dest, Some("alice:s3cret-pw"));
    assert!(pushed.ok(), "{}", pushed.stderr);
    let dst = tmp.path().join("dst");
    let pull = |extra: &[&str]| {
        let mut args = vec!["pull".to_owned(), dest.clone(), dst.display().to_string()];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        ocil(args)
    };
    let out = pull(&[]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("needs credentials"), "{}", out.stderr);
    let out = pull(&["--creds", "alice:wrong-pw"]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("refused the credentials of user `alice`"), "{}", out.stderr);
    assert!(!out.stderr.contains("wrong-pw") && !out.stdout.contains("wrong-pw"));
    assert!(!dst.exists(), "a failed pull leaves no new directory");
    let out = pull(&["--creds", "alice:s3cret-pw", "--json"]);
    assert!(out.ok(), "{}", out.stderr);
    assert!(!out.stdout.contains("s3cret") && !out.stderr.contains("s3cret"));
    assert_eq!(tags(&dst), vec![("v1".to_owned(), digest)]);
    // fsck clean (docker 20.10 writes `"Env": null` in the config, which is an empty Env),
    // and every blob whole.
    crate::support::assert_clean(&dst);
}

#[test]
fn platforms_and_registry_reads_needs_registry_needs_skopeo_needs_shared() {
    if !(registry_tool() && require_tool("skopeo")) {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let reg = Registry::start(None);
    let layout = shared.join("fixtures/peer-made/registry-index/layout");
    let (tag, index_digest) = tags(&layout)[0].clone();
    let name = format!("{}/multi", reg.host());
    assert!(skopeo_push(&layout, &tag, &format!("{name}:{tag}"), None).ok());
    let tmp = tempfile::tempdir().unwrap();

    // --platform: a filtered index with one child, whose digest is not the registry's.
    let dst = tmp.path().join("arm");
    let out = ocil_ok([
        "pull".to_owned(),
        format!("docker://{name}:{tag}"),
        dst.display().to_string(),
        "--platform".into(),
        "linux/arm64".into(),
    ]);
    assert!(out.stderr.contains("its digest changed"), "{}", out.stderr);
    let (_, filtered) = tags(&dst)[0].clone();
    assert_ne!(filtered, index_digest);
    let hex = filtered.trim_start_matches("sha256:");
    let doc: serde_json::Value =
        serde_json::from_slice(&fs_err::read(dst.join("blobs/sha256").join(hex)).unwrap()).unwrap();
    let kids = doc["manifests"].as_array().unwrap();
    assert_eq!(kids.len(), 1);
    assert_eq!(kids[0]["platform"]["architecture"], "arm64");
    assert_clean(&dst);
    let out = ocil([
        "pull".to_owned(),
        format!("{name}:{tag}"),
        tmp.path().join("none").display().to_string(),
        "--platform".into(),
        "linux/s390x".into(),
    ]);
    assert_eq!(out.code, Some(2));
    assert!(out.stderr.contains("linux/s390x"), "{}", out.stderr);

    // ls lists tags; cat gives the index's exact bytes; inspect shows it.
    assert_eq!(ocil_ok(["ls".to_owned(), format!("docker://{name}")]).stdout, format!("{tag}\n"));
    let bytes = std::process::Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["cat".to_owned(), format!("docker://{name}:{tag}")])
        .output()
        .unwrap()
        .stdout;
    let hex = index_digest.trim_start_matches("sha256:");
    assert_eq!(bytes, fs_err::read(layout.join("blobs/sha256").join(hex)).unwrap());
    let out = ocil_ok(["inspect".to_owned(), format!("docker://{name}:{tag}")]);
    assert!(out.stdout.contains(&index_digest), "{}", out.stdout);

    // copy docker:// with --platform takes that platform's manifest, as from a layout.
    let from_layout = tmp.path().join("from-layout");
    ocil_ok([
        "copy".to_owned(),
        format!("{}:{tag}", layout.display()),
        format!("{}:x", from_layout.display()),
        "--platform".into(),
        "linux/amd64".into(),
    ]);
    let from_registry = tmp.path().join("from-registry");
    ocil_ok([
        "copy".to_owned(),
        format!("docker://{name}:{tag}"),
        format!("{}:x", from_registry.display()),
        "--platform".into(),
        "linux/amd64".into(),
    ]);
    assert_eq!(tags(&from_layout), tags(&from_registry));
    assert_clean(&from_registry);
}

#[test]
fn pull_gives_what_docker_pushed_needs_docker_needs_registry() {
    if !(crate::peers::docker_daemon() && registry_tool()) {
        return;
    }
    let reg = Registry::start(None);
    let tmp = tempfile::tempdir().unwrap();
    // A one-file image made by the daemon itself (`docker import`), pushed by `docker push`.
    let file = tmp.path().join("hello.txt");
    fs_err::write(&file, "hello from docker\n").unwrap();
    let tar = tmp.path().join("rootfs.tar");
    let made = crate::support::run(
        "tar",
        [
            "-C".as_ref(),
            tmp.path().as_os_str(),
            "-cf".as_ref(),
            tar.as_os_str(),
            "hello.txt".as_ref(),
        ],
    );
    assert!(made.ok(), "{}", made.stderr);
    let name = format!("{}/ocil-i14-docker-push:v1", reg.host());
    let imported =
        crate::support::run("docker", ["import".as_ref(), tar.as_os_str(), name.as_ref()]);
    assert!(imported.ok(), "{}", imported.stderr);
    let pushed = crate::support::run("docker", ["push", &name]);
    let _ = crate::support::run("docker", ["rmi", &name]);
    assert!(pushed.ok(), "docker push: {}{}", pushed.stdout, pushed.stderr);
    // `v1: digest: sha256:... size: N`
    let digest = pushed
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .expect("docker push prints the digest")
        .to_owned();
    let dst = tmp.path().join("dst");
    ocil_ok(["pull".to_owned(), name, dst.display().to_string()]);
    assert_eq!(tags(&dst), vec![("v1".to_owned(), digest)]);
    // fsck clean (docker 20.10 writes `"Env": null` in the config, which is an empty Env),
    // and every blob whole.
    crate::support::assert_clean(&dst);
}
