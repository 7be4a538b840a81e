//! Docker-typed images (which umoci refuses) against the Docker daemon: `ocil export
//! --format docker` loaded with `docker load`, a container created (never run) from it, and
//! `docker export` of that container compared with `ocil unpack` and `ocil export-rootfs` of
//! the same image, less what Docker adds to every container (`/.dockerenv`, `/dev`,
//! `/proc`, `/sys`, `/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`, `/etc/mtab`).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::peers::{docker_daemon, shared_dir};
use crate::support::{Layer, Layout, Node, RawEntry, arg, diff, digest, ocil_ok, tree};

/// What Docker puts into every container it creates.
fn docker_added(path: &str) -> bool {
    matches!(
        path,
        ".dockerenv"
            | "dev"
            | "proc"
            | "sys"
            | "etc/hostname"
            | "etc/hosts"
            | "etc/resolv.conf"
            | "etc/mtab"
    ) || path.starts_with("dev/")
}

/// A tar (docker export, export-rootfs) read as a tree, hard links resolved to their
/// targets' content.
fn tar_tree(bytes: &[u8]) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut a = tar::Archive::new(bytes);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = String::from_utf8_lossy(&e.path_bytes())
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned();
        if path.is_empty() || path == "." {
            continue;
        }
        let h = e.header().clone();
        let mode = h.mode().expect("mode") & 0o7777;
        let (uid, gid) = (h.uid().expect("uid") as u32, h.gid().expect("gid") as u32);
        let (kind, content, size) = match h.entry_type() {
            tar::EntryType::Directory => ('d', String::new(), 0),
            tar::EntryType::Symlink => {
                let t = String::from_utf8_lossy(&e.link_name_bytes().expect("target")).into_owned();
                let n = t.len() as u64;
                ('l', t, n)
            }
            tar::EntryType::Link => {
                let target = String::from_utf8_lossy(&e.link_name_bytes().expect("target"))
                    .trim_start_matches("./")
                    .to_owned();
                links.push((path.clone(), target));
                continue;
            }
            tar::EntryType::Fifo => ('p', String::new(), 0),
            _ => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("read");
                ('f', digest(&data), data.len() as u64)
            }
        };
        let mode = if kind == 'l' { 0o777 } else { mode };
        out.insert(path, Node { kind, mode, uid, gid, size, content, links: Vec::new() });
    }
    for (p, t) in &links {
        let node = out.get(t).cloned().unwrap_or_else(|| panic!("hard link {p} to missing {t}"));
        out.insert(p.clone(), node);
    }
    // Groups as `tree` reports them.
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (p, t) in &links {
        groups.entry(t.clone()).or_insert_with(|| vec![t.clone()]).push(p.clone());
    }
    for names in groups.values() {
        for n in names {
            if let Some(node) = out.get_mut(n) {
                let mut others: Vec<String> = names.iter().filter(|o| *o != n).cloned().collect();
                others.sort();
                node.links = others;
            }
        }
    }
    out
}

/// Run docker; stdout.
fn docker(args: &[&str]) -> Vec<u8> {
    let out = Command::new("docker").args(args).output().expect("run docker");
    assert!(out.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Compare one image of `layout` with the daemon's view of it.
fn compare(layout: &Path, tag: &str, work: &Path, name: &str) {
    std::fs::create_dir_all(work).expect("mkdir");
    let archive = work.join("image.tar");
    let image = format!("{}:{tag}", arg(layout));
    ocil_ok(&["export", &image, "--format", "docker", "--repo", name, "-o", arg(&archive)]);
    docker(&["load", "-i", arg(&archive)]);
    let reference = format!("{name}:{tag}");
    let id = String::from_utf8(docker(&["create", &reference, "true"]))
        .expect("an id")
        .trim()
        .to_owned();
    let exported = docker(&["export", &id]);
    docker(&["rm", &id]);
    docker(&["rmi", &reference]);
    let mut theirs = tar_tree(&exported);
    theirs.retain(|k, _| !docker_added(k));
    let b = work.join("bundle");
    ocil_ok(&["unpack", &image, arg(&b)]);
    let mut ours = tree(&b.join("rootfs"));
    // Docker's init layer makes /etc, /dev, ... when the image has none: only the image's
    // paths are compared; a directory Docker touched keeps its mode.
    ours.retain(|k, _| !docker_added(k));
    let d = diff(&ours, &theirs);
    assert!(d.is_empty(), "{image}: ocil unpack vs docker export:\n{}", d.join("\n"));
    let x = work.join("rootfs.tar");
    ocil_ok(&["export-rootfs", &image, "-o", arg(&x)]);
    let mut exported = tar_tree(&std::fs::read(&x).expect("read"));
    exported.retain(|k, _| !docker_added(k));
    let d = diff(&exported, &theirs);
    assert!(d.is_empty(), "{image}: ocil export-rootfs vs docker export:\n{}", d.join("\n"));
}

#[test]
fn same_tree_as_docker_export_needs_docker_needs_shared() {
    if !docker_daemon() {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().expect("tempdir");
    // A generated Docker-typed image: owners, special bits, hard links, whiteouts.
    let layout = Layout::init(&tmp.path().join("gen"));
    let l1 = vec![
        RawEntry::dir("etc/", 0o755),
        RawEntry::file("etc/conf", b"conf\n", 0o640).owner(0, 42),
        RawEntry::dir("app/", 0o750).owner(1000, 1000),
        RawEntry::file("app/run", b"#!/bin/sh\n", 0o4755),
        // Docker applies a hard link's header to the inode (GNU tar does not): the same as the
        // target's, as every tar writer makes them.
        RawEntry::hardlink("app/run2", "app/run").mode(0o4755),
        RawEntry::symlink("app/cfg", "/etc/conf"),
        RawEntry::dir("app/old/", 0o755),
        RawEntry::file("app/old/x", b"x\n", 0o644),
        RawEntry::file("app/gone", b"gone\n", 0o644),
        RawEntry::dir("tmp/", 0o1777),
    ];
    let l2 = vec![
        RawEntry::file("app/.wh.gone", b"", 0o644),
        RawEntry::dir("app/old/", 0o755),
        RawEntry::file("app/old/.wh..wh..opq", b"", 0o644),
        RawEntry::file("app/old/y", b"y\n", 0o600),
        RawEntry::hardlink("etc/conf-link", "etc/conf").mode(0o640).owner(0, 42),
    ];
    layout.image("gen", &[Layer::gz(&l1), Layer::gz(&l2)], json!({"Cmd": ["/app/run"]}), true);
    let pid = std::process::id();
    compare(&layout.dir, "gen", &tmp.path().join("w0"), &format!("ocil-rootfs-test-{pid}-gen"));
    // The Docker-typed peer-made images.
    for (i, (fixture, tag)) in
        [("skopeo-v2s2", "v3"), ("skopeo-from-docker-archive", "v1")].iter().enumerate()
    {
        let src = shared.join("fixtures/peer-made").join(fixture).join("layout");
        let copy = tmp.path().join(format!("f{i}"));
        for e in walkdir::WalkDir::new(&src) {
            let e = e.expect("walk");
            let to = copy.join(e.path().strip_prefix(&src).expect("under"));
            if e.file_type().is_dir() {
                std::fs::create_dir_all(&to).expect("mkdir");
            } else {
                std::fs::copy(e.path(), &to).expect("copy");
            }
        }
        compare(
            &copy,
            tag,
            &tmp.path().join(format!("w{}", i + 1)),
            &format!("ocil-rootfs-test-{pid}-{i}"),
        );
    }
}
