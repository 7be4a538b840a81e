//! A real Docker daemon as the oracle for the docker archive format, both ways:
//!
//! - `docker load` reads what `ocil export --format docker` writes: every image of a
//!   multi-image archive appears under its `RepoTags`, with Docker's image ID equal to our
//!   config digest and its layer list equal to the config's `rootfs.diff_ids`;
//! - `ocil import` reads what `docker save` writes (Docker 20.10's legacy `<id>/layer.tar`
//!   format): the same image IDs and tags, and `ocil fsck --deep` is clean.
//!
//! The daemon is the one `$DOCKER_HOST` (or the default socket) names; `.ci/run` starts one.
//! Both tests carry `needs_docker` (and `needs_shared`: they export two peer-made images too),
//! so without a reachable daemon they skip (`../common/peers.rs`).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{ocil, run, s};
use crate::peers::{docker_daemon, shared_dir};

fn docker(args: &[&str]) -> super::Out {
    let out = run("docker", args, None);
    assert_eq!(out.code, 0, "docker {args:?} failed:\n{}{}", out.stdout, out.stderr);
    out
}

/// (config digest, diff_ids) of `target`, as `ocil inspect --json` and the config say.
fn image_id_and_diff_ids(layout: &Path, tag: &str) -> (String, Vec<String>) {
    let target = format!("{}:{tag}", s(layout));
    let inspected = ocil(&["inspect", "--json", &target]);
    assert_eq!(inspected.code, 0, "{}", inspected.stderr);
    let config = inspected.json()["config"]["digest"].as_str().unwrap().to_owned();
    let bytes = fs_err::read(layout.join("blobs/sha256").join(&config["sha256:".len()..])).unwrap();
    let doc: Value = serde_json::from_slice(&bytes).unwrap();
    let diff_ids = doc["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    (config, diff_ids)
}

/// Docker's view of `name`: (image ID, RootFS layers, RepoTags).
fn docker_image(name: &str) -> (String, Vec<String>, Vec<String>) {
    let out = docker(&["image", "inspect", name]);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map_or(Vec::new(), |a| a.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
    };
    (
        v[0]["Id"].as_str().unwrap().to_owned(),
        strings(&v[0]["RootFS"]["Layers"]),
        strings(&v[0]["RepoTags"]),
    )
}

/// A layout with two images of our own (one layer each, different contents) and, when
/// `shared/` is there, umoci's `v2` image and skopeo's uncompressed-layer image copied in.
/// The [`source`] layout under `root`, exported with `--format docker --repo REPO`: its
/// tags and image names, the layout's path and the archive's.
fn exported(root: &Path, repo: &str) -> (Vec<(String, String)>, PathBuf, PathBuf) {
    let tags = source(root, repo);
    let layout = root.join("src");
    let archive = root.join("images.tar");
    let out =
        ocil(&["export", s(&layout), "--format", "docker", "--repo", repo, "-o", s(&archive)]);
    assert_eq!(out.code, 0, "export: {}", out.stderr);
    (tags, layout, archive)
}

fn source(root: &Path, repo: &str) -> Vec<(String, String)> {
    let layout = root.join("src");
    assert_eq!(ocil(&["init", s(&layout)]).code, 0);
    let mut tags = Vec::new();
    for (tag, text) in [("one", "first\n"), ("two", "second\n")] {
        let files = root.join(format!("files-{tag}"));
        fs_err::create_dir_all(files.join("etc")).unwrap();
        fs_err::write(files.join("etc/hello"), text).unwrap();
        let target = format!("{}:{tag}", s(&layout));
        for args in [
            vec!["new", &target, "--created", "2024-01-01T00:00:00Z"],
            vec!["append", &target, s(&files), "--created", "2024-01-01T00:00:00Z"],
            vec!["config", &target, "--cmd", "/bin/cat /etc/hello", "--env", "WHO=ocil"],
        ] {
            let out = ocil(&args);
            assert_eq!(out.code, 0, "ocil {args:?}: {}", out.stderr);
        }
        tags.push((tag.to_owned(), format!("{repo}:{tag}")));
    }
    if let Some(shared) = shared_dir() {
        let peer = shared.join("fixtures/peer-made");
        for (fixture, tag, new_tag) in
            [("umoci-edit", "v2", "umoci-v2"), ("skopeo-uncompressed", "v1", "skopeo-v1")]
        {
            let from = format!("{}:{tag}", s(&peer.join(fixture).join("layout")));
            let to = format!("{}:{new_tag}", s(&layout));
            let out = ocil(&["copy", &from, &to]);
            assert_eq!(out.code, 0, "ocil copy {from}: {}", out.stderr);
            tags.push((new_tag.to_owned(), format!("{repo}:{new_tag}")));
        }
    }
    tags
}

#[test]
fn docker_load_reads_every_image_of_our_docker_archive_needs_docker_needs_shared() {
    if !docker_daemon() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (tags, layout, archive) = exported(tmp.path(), "ocil-test/load");
    let loaded = docker(&["load", "-i", s(&archive)]);
    for (tag, name) in &tags {
        assert!(
            loaded.stdout.contains(name.as_str()),
            "docker load did not load {name}:\n{}",
            loaded.stdout
        );
        let (config, diff_ids) = image_id_and_diff_ids(&layout, tag);
        let (id, layers, repo_tags) = docker_image(name);
        assert_eq!(id, config, "{name}: Docker's image ID is our config digest");
        assert_eq!(layers, diff_ids, "{name}: Docker's layers are the config's diff_ids");
        assert!(repo_tags.contains(name), "{name} in {repo_tags:?}");
    }
    let names: Vec<&str> = tags.iter().map(|(_, n)| n.as_str()).collect();
    docker(&[&["image", "rm", "--force"][..], &names].concat());
}

#[test]
fn docker_save_imports_to_the_same_images_needs_docker_needs_shared() {
    if !docker_daemon() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (tags, layout, archive) = exported(tmp.path(), "ocil-test/save");
    docker(&["load", "-i", s(&archive)]);

    let saved = tmp.path().join("saved.tar");
    let names: Vec<&str> = tags.iter().map(|(_, n)| n.as_str()).collect();
    docker(&[&["save", "-o", s(&saved)][..], &names].concat());
    let imported = tmp.path().join("imported");
    let out = ocil(&["import", s(&saved), s(&imported)]);
    assert_eq!(out.code, 0, "import of docker save: {}", out.stderr);

    // What `ocil ls` shows of the archive in place is what the import gave.
    let in_place = ocil(&["ls", "--json", s(&saved)]);
    let after = ocil(&["ls", "--json", s(&imported)]);
    assert_eq!(in_place.code, 0, "{}", in_place.stderr);
    assert_eq!(
        in_place.json(),
        after.json(),
        "ls of docker save's archive in place = after import"
    );

    for (tag, name) in &tags {
        let (config, diff_ids) = image_id_and_diff_ids(&layout, tag);
        let (back, back_diff_ids) = image_id_and_diff_ids(&imported, tag);
        assert_eq!(back, config, "{name}: the image ID survives docker load + save + ocil import");
        assert_eq!(back_diff_ids, diff_ids, "{name}: diff_ids");
        let (id, ..) = docker_image(name);
        assert_eq!(id, back, "{name}: Docker's image ID");
    }
    let fsck = ocil(&["fsck", "--deep", s(&imported)]);
    assert_eq!(
        fsck.code, 0,
        "fsck --deep after importing docker save:\n{}{}",
        fsck.stdout, fsck.stderr
    );
    docker(&[&["image", "rm", "--force"][..], &names].concat());
}

#[test]
fn docker_save_of_one_tag_in_several_repositories_keeps_every_name_needs_docker_needs_shared() {
    if !docker_daemon() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (tags, layout, archive) = exported(tmp.path(), "ocil-test/names");
    docker(&["load", "-i", s(&archive)]);
    // `a` and `c` are one image, `b` another: three names, one tag.
    let names = ["example.test/a:latest", "example.test/b:latest", "example.test/c:latest"];
    for (name, from) in names.iter().zip(["one", "two", "one"]) {
        docker(&["tag", &format!("ocil-test/names:{from}"), name]);
    }
    let saved = tmp.path().join("names.tar");
    docker(&[&["save", "-o", s(&saved)][..], &names].concat());
    let dst = tmp.path().join("dst");
    let out = ocil(&["import", s(&saved), s(&dst)]);
    assert_eq!(out.code, 0, "import: {}", out.stderr);

    // Every name is kept, each on its image.
    let (one, _) = image_id_and_diff_ids(&layout, "one");
    let (two, _) = image_id_and_diff_ids(&layout, "two");
    for (name, want) in names.iter().zip([&one, &two, &one]) {
        let (got, _) = image_id_and_diff_ids(&dst, name);
        assert_eq!(&got, want, "{name}");
    }
    // A bare `latest` names several images: an error that lists the names.
    let ambiguous = ocil(&["inspect", &format!("{}:latest", s(&dst))]);
    assert_eq!(ambiguous.code, 2, "{}", ambiguous.stdout);
    for name in names {
        assert!(ambiguous.stderr.contains(name), "{}", ambiguous.stderr);
    }

    // Back through docker: our docker-format export of them loads under the same names.
    docker(&[&["image", "rm", "--force"][..], &names].concat());
    let back = tmp.path().join("back.tar");
    let out = ocil(&["export", s(&dst), "--format", "docker", "-o", s(&back)]);
    assert_eq!(out.code, 0, "export: {}", out.stderr);
    docker(&["load", "-i", s(&back)]);
    for (name, want) in names.iter().zip([&one, &two, &one]) {
        let (id, ..) = docker_image(name);
        assert_eq!(&id, want, "{name} after docker load of our export");
    }

    // Untagging one full name leaves the others.
    let out = ocil(&["untag", &format!("{}:{}", s(&dst), names[2])]);
    assert_eq!(out.code, 0, "untag: {}", out.stderr);
    let (got, _) = image_id_and_diff_ids(&dst, names[0]);
    assert_eq!(got, one);
    assert_ne!(ocil(&["inspect", &format!("{}:{}", s(&dst), names[2])]).code, 0);

    docker(&[&["image", "rm", "--force"][..], &names].concat());
    let loaded: Vec<&str> = tags.iter().map(|(_, n)| n.as_str()).collect();
    docker(&[&["image", "rm", "--force"][..], &loaded].concat());
}
