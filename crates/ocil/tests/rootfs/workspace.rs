//! The workspace loop and its edges: unpack, change, status, repack, unpack elsewhere; the
//! entry types and metadata a layer can hold; rootless bundles; reproducible repacks; what
//! is refused.

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use serde_json::{Value, json};

use crate::peers::require_tool;
use crate::support::{
    Comp, Layer, Layout, RawEntry, arg, diff, ocil, ocil_env, ocil_ok, ok, run_ok, snapshot, tree,
};

/// 2024-01-01T00:00:00Z, the generated entries' mtime and the repacks' SOURCE_DATE_EPOCH.
const EPOCH: &str = "1704067200";

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The base image: every entry type a layer holds, owners, special bits, xattrs, a long
/// name, hard links within and across layers, whiteouts (one after what it must not hide),
/// a file replaced by a directory and the reverse.
fn base_image(layout: &Layout, tag: &str) -> String {
    let (l1, l2) = base_layers();
    layout.image(tag, &[Layer::gz(&l1), Layer::gz(&l2)], base_config(), false)
}

/// The runtime config of the base image.
fn base_config() -> Value {
    json!({
        "User": "app",
        "Env": ["A=B", "PATH=/usr/bin"],
        "Entrypoint": ["/usr/bin/tool"],
        "Cmd": ["--flag"],
        "WorkingDir": "/opt/app",
        "Labels": {"org.example.label": "x"},
        "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
        "StopSignal": "SIGTERM",
    })
}

/// The base image's two layers.
fn base_layers() -> (Vec<RawEntry>, Vec<RawEntry>) {
    let long = format!("data/long/{}/file.txt", "x".repeat(120));
    let l1 = vec![
        RawEntry::dir("./", 0o755),
        RawEntry::dir("etc/", 0o755),
        RawEntry::file(
            "etc/passwd",
            b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/opt/app:/bin/sh\n",
            0o644,
        ),
        RawEntry::file("etc/group", b"root:x:0:\napp:x:1000:\nwheel:x:10:app\n", 0o644),
        RawEntry::symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
        RawEntry::dir("usr/", 0o755),
        RawEntry::dir("usr/bin/", 0o755),
        RawEntry::file("usr/bin/tool", b"#!/bin/sh\necho tool\n", 0o4755),
        RawEntry::hardlink("usr/bin/tool2", "usr/bin/tool"),
        RawEntry::file("usr/bin/gtool", b"#!/bin/sh\necho gtool\n", 0o2755),
        RawEntry::symlink("usr/bin/tool-link", "tool"),
        RawEntry::dir("tmp/", 0o1777),
        RawEntry::dir("opt/", 0o755),
        RawEntry::dir("opt/app/", 0o750).owner(1000, 1000),
        RawEntry::file("opt/app/config", b"secret=1\n", 0o600)
            .owner(1000, 1000)
            .xattr("user.note", b"hello"),
        RawEntry::dir("var/", 0o755),
        RawEntry::dir("var/log/", 0o755),
        RawEntry::file("var/log/app.log", b"log line\n", 0o640).owner(0, 4),
        RawEntry::fifo("var/pipe", 0o620),
        RawEntry::dir("data/", 0o755),
        RawEntry::file("data/keep.txt", b"keep\n", 0o644),
        RawEntry::file("data/remove.txt", b"remove me\n", 0o644),
        RawEntry::file("data/chmod.txt", b"chmod me\n", 0o644),
        RawEntry::file("data/modify.txt", b"before\n", 0o644),
        RawEntry::file("data/was-file", b"a file first\n", 0o644),
        RawEntry::dir("data/was-dir/", 0o755),
        RawEntry::file("data/was-dir/x", b"x\n", 0o644),
        RawEntry::dir("data/gone/", 0o755),
        RawEntry::file("data/gone/old1", b"old\n", 0o644),
        RawEntry::file("data/gone/old2", b"old\n", 0o644),
        RawEntry::file(&long, b"long name\n", 0o644),
        RawEntry::dir("srv/", 0o755),
        RawEntry::dir("srv/old/", 0o755),
        RawEntry::file("srv/old/a.txt", b"a\n", 0o644),
        RawEntry::file("srv/old/b.txt", b"b\n", 0o644),
    ];
    let l2 = vec![
        RawEntry::file("data/gone/fresh.txt", b"fresh\n", 0o644),
        // After what it must not hide: the opaque whiteout hides the lower layer's only.
        RawEntry::file("data/gone/.wh..wh..opq", b"", 0o644),
        RawEntry::file("srv/old/.wh.b.txt", b"", 0o644),
        RawEntry::hardlink("data/link-to-keep", "/data/keep.txt"),
        RawEntry::dir("data/was-file/", 0o755),
        RawEntry::file("data/was-file/inner", b"inner\n", 0o644),
        RawEntry::file("data/was-dir", b"a file now\n", 0o644),
    ];
    (l1, l2)
}

/// What `ocil status --json` lists: (path, change).
fn status_set(bundle: &Path) -> (Option<i32>, BTreeSet<(String, String)>) {
    let out = ocil(&["status", arg(bundle), "--json"]);
    let v: Value = serde_json::from_slice(&out.stdout).expect("status --json");
    let set = v["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let what = match c["change"].as_str().expect("a change") {
                "modified"
                    if c["content"] == false
                        && c.get("mode").is_some()
                        && c.get("owner").is_none()
                        && c["xattrs"] == false =>
                {
                    "mode".to_owned()
                }
                other => other.to_owned(),
            };
            (c["path"].as_str().expect("a path").to_owned(), what)
        })
        .collect();
    (out.status.code(), set)
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items.iter().map(|(p, c)| ((*p).to_owned(), (*c).to_owned())).collect()
}

/// The changes of the round trip, made in `root`.
fn change(root: &Path) {
    std::fs::write(root.join("etc/new.conf"), "new\n").expect("write");
    std::fs::create_dir(root.join("data/newdir")).expect("mkdir");
    std::fs::write(root.join("data/newdir/f"), "f\n").expect("write");
    std::fs::write(root.join("data/modify.txt"), "after, longer\n").expect("write");
    std::fs::remove_file(root.join("data/remove.txt")).expect("rm");
    std::fs::remove_dir_all(root.join("srv/old")).expect("rm -r");
    std::fs::set_permissions(root.join("data/chmod.txt"), std::fs::Permissions::from_mode(0o600))
        .expect("chmod");
    std::fs::remove_dir_all(root.join("var/log")).expect("rm -r");
    std::fs::write(root.join("var/log"), "a file where a directory was\n").expect("write");
    // A new directory where one was (made before the old one goes, so its inode differs).
    std::fs::rename(root.join("data/gone"), root.join("data/gone.old")).expect("mv");
    std::fs::create_dir(root.join("data/gone")).expect("mkdir");
    std::fs::remove_dir_all(root.join("data/gone.old")).expect("rm -r");
    std::fs::write(root.join("data/gone/other"), "other\n").expect("write");
    std::fs::hard_link(root.join("etc/new.conf"), root.join("data/hl")).expect("ln");
    // In place: both names of the group change.
    let mut tool = std::fs::read(root.join("usr/bin/tool")).expect("read");
    tool.extend_from_slice(b"echo more\n");
    std::fs::write(root.join("usr/bin/tool"), tool).expect("write");
    std::fs::remove_file(root.join("usr/bin/tool-link")).expect("rm");
    std::os::unix::fs::symlink("gtool", root.join("usr/bin/tool-link")).expect("ln -s");
}

fn expected_changes() -> BTreeSet<(String, String)> {
    set(&[
        ("/data/chmod.txt", "mode"),
        ("/data/gone", "replaced"),
        ("/data/gone/other", "added"),
        ("/data/hl", "added"),
        ("/data/modify.txt", "modified"),
        ("/data/newdir", "added"),
        ("/data/newdir/f", "added"),
        ("/data/remove.txt", "deleted"),
        ("/etc/new.conf", "added"),
        ("/srv/old", "deleted"),
        ("/usr/bin/tool", "modified"),
        ("/usr/bin/tool-link", "modified"),
        ("/usr/bin/tool2", "modified"),
        ("/var/log", "type_changed"),
    ])
}

/// Blob names and index.json bytes: what "writes nothing" is checked against.
fn layout_state(dir: &Path) -> (Vec<String>, Vec<u8>) {
    let mut blobs: Vec<String> = std::fs::read_dir(dir.join("blobs/sha256"))
        .expect("ls")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    blobs.sort();
    (blobs, std::fs::read(dir.join("index.json")).expect("read index.json"))
}

#[test]
fn unpack_applies_every_entry_type() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&tmp.path().join("l"));
    base_image(&layout, "v1");
    let b = tmp.path().join("b");
    let out = ocil_ok(&["unpack", &format!("{}:v1", arg(&layout.dir)), arg(&b)]);
    assert!(out.contains("2 layers"), "{out}");
    let r = b.join("rootfs");
    let t = tree(&r);
    let node = |p: &str| t.get(p).unwrap_or_else(|| panic!("{p} missing"));
    assert_eq!(node("usr/bin/tool").mode, 0o4755);
    assert_eq!(node("usr/bin/gtool").mode, 0o2755);
    assert_eq!(node("tmp").mode, 0o1777);
    assert_eq!(node("usr/bin/tool").links, ["usr/bin/tool2"]);
    assert_eq!(
        node("data/keep.txt").links,
        ["data/link-to-keep"],
        "a hard link to a lower layer's file"
    );
    assert_eq!(node("etc/localtime").content, "/usr/share/zoneinfo/UTC");
    assert_eq!(node("var/pipe").kind, 'p');
    assert_eq!(node("var/pipe").mode, 0o620);
    assert_eq!(node("data/was-file").kind, 'd');
    assert_eq!(node("data/was-dir").kind, 'f');
    assert!(!t.contains_key("data/was-dir/x"));
    assert!(!t.contains_key("srv/old/b.txt") && t.contains_key("srv/old/a.txt"));
    let gone: Vec<&String> = t.keys().filter(|k| k.starts_with("data/gone/")).collect();
    assert_eq!(gone, ["data/gone/fresh.txt"], "the opaque whiteout hid the lower files only");
    assert!(t.keys().any(|k| k.ends_with("/file.txt") && k.len() > 130), "the long name");
    assert!(!t.keys().any(|k| k.contains(".wh.")), "no whiteout file is left");
    if is_root() {
        assert_eq!((node("opt/app/config").uid, node("opt/app/config").gid), (1000, 1000));
        assert_eq!(node("var/log/app.log").gid, 4);
        let x = xattr(&r.join("opt/app/config"), "user.note");
        assert_eq!(x.as_deref(), Some(&b"hello"[..]));
    }
    // mtimes from the headers, directories' too (set after their children).
    for p in ["usr/bin", "data", "usr/bin/tool", "data/gone"] {
        assert_eq!(
            std::fs::symlink_metadata(r.join(p)).expect("stat").mtime(),
            1_704_067_200,
            "{p}"
        );
    }
    // config.json, by the image spec's conversion.
    let c: Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).expect("read")).expect("JSON");
    assert_eq!(c["process"]["args"], json!(["/usr/bin/tool", "--flag"]));
    assert_eq!(c["process"]["env"], json!(["A=B", "PATH=/usr/bin", "HOME=/opt/app"]));
    assert_eq!(c["process"]["cwd"], "/opt/app");
    assert_eq!(c["process"]["user"], json!({"uid": 1000, "gid": 1000, "additionalGids": [10]}));
    assert_eq!(c["annotations"]["org.example.label"], "x");
    assert_eq!(c["annotations"]["org.opencontainers.image.exposedPorts"], "53/udp,80/tcp");
    assert_eq!(c["annotations"]["org.opencontainers.image.stopSignal"], "SIGTERM");
    assert_eq!(c["root"]["path"], "rootfs");
    assert_eq!(ocil(&["status", arg(&b)]).status.code(), Some(0), "a fresh bundle is clean");
}

/// An xattr of a file (through getfattr-free std: read it with rustix).
fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = rustix::fs::getxattr(p, name, &mut buf[..]).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn round_trip_needs_umoci() {
    if !require_tool("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&tmp.path().join("l"));
    base_image(&layout, "v1");
    let l = arg(&layout.dir).to_owned();
    // umoci agrees on the base image.
    assert!(
        crate::umoci::compare_with_umoci(&layout.dir, "v1", &tmp.path().join("w1")).is_some(),
        "umoci unpacks the base image"
    );

    let b1 = tmp.path().join("b1");
    ocil_ok(&["unpack", &format!("{l}:v1"), arg(&b1)]);
    change(&b1.join("rootfs"));
    let (code, got) = status_set(&b1);
    assert_eq!(code, Some(1), "changes: exit 1");
    assert_eq!(got, expected_changes());

    let out = ok(
        ocil_env(
            &["repack", arg(&b1), &format!("{l}:v2"), "--history-comment", "round trip"],
            &[("SOURCE_DATE_EPOCH", EPOCH)],
        ),
        "repack",
    );
    assert!(out.contains("v2 -> sha256:"), "{out}");
    // Unpacked elsewhere, by ocil and by umoci: the changed tree.
    let b2 = tmp.path().join("b2");
    ocil_ok(&["unpack", &format!("{l}:v2"), arg(&b2)]);
    let d = diff(&tree(&b1.join("rootfs")), &tree(&b2.join("rootfs")));
    assert!(d.is_empty(), "the repacked image is not the changed tree:\n{}", d.join("\n"));
    assert!(
        crate::umoci::compare_with_umoci(&layout.dir, "v2", &tmp.path().join("w2")).is_some(),
        "umoci unpacks the repacked image"
    );
    ocil_ok(&["fsck", &l]);

    // The record follows: clean, and nothing to commit writes nothing.
    assert_eq!(status_set(&b1), (Some(0), BTreeSet::new()));
    let before = layout_state(&layout.dir);
    let out = ocil_ok(&["repack", arg(&b1), &format!("{l}:v3")]);
    assert!(out.contains("nothing to commit"), "{out}");
    assert_eq!(layout_state(&layout.dir), before, "nothing to commit wrote something");

    // Again: a file with a hard link to a lower layer's file changes in place.
    std::fs::write(b1.join("rootfs/data/keep.txt"), "kept, changed\n").expect("write");
    assert_eq!(
        status_set(&b1).1,
        set(&[("/data/keep.txt", "modified"), ("/data/link-to-keep", "modified")])
    );
    ocil_ok(&["repack", arg(&b1), &format!("{l}:v3")]);
    let b3 = tmp.path().join("b3");
    ocil_ok(&["unpack", &format!("{l}:v3"), arg(&b3)]);
    let d = diff(&tree(&b1.join("rootfs")), &tree(&b3.join("rootfs")));
    assert!(d.is_empty(), "second round:\n{}", d.join("\n"));
    assert_eq!(
        tree(&b3.join("rootfs"))["data/keep.txt"].links,
        ["data/link-to-keep"],
        "the group stayed a group"
    );
    assert!(crate::umoci::compare_with_umoci(&layout.dir, "v3", &tmp.path().join("w3")).is_some());
    // The config got the diff_id and a history entry with the comment.
    let config = config_of(&layout.dir, "v2");
    let history = config["history"].as_array().expect("history");
    assert_eq!(history.last().expect("an entry")["comment"], "round trip");
    assert_eq!(history.last().expect("an entry")["created"], "2024-01-01T00:00:00Z");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().expect("diff_ids").len(), 3);
}

#[test]
fn status_reads_only_changed_or_racy_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&tmp.path().join("l"));
    base_image(&layout, "v1");
    let b = tmp.path().join("b");
    ocil_ok(&["unpack", &format!("{}:v1", arg(&layout.dir)), arg(&b)]);
    // A change that keeps size and mtime is seen by its ctime.
    let p = b.join("rootfs/data/modify.txt");
    let mtime = std::fs::metadata(&p).expect("stat").modified().expect("mtime");
    std::fs::write(&p, "BEFORE\n").expect("write");
    std::fs::File::options()
        .write(true)
        .open(&p)
        .expect("open")
        .set_modified(mtime)
        .expect("touch");
    assert_eq!(status_set(&b).1, set(&[("/data/modify.txt", "modified")]));
    std::fs::write(&p, "before\n").expect("write");
    // The record says another digest for keep.txt, its stat unchanged: a file whose stat
    // matches is not read...
    let record_path = b.join("ocil-bundle.json");
    let mut record: Value =
        serde_json::from_slice(&std::fs::read(&record_path).expect("read")).expect("JSON");
    for e in record["entries"].as_array_mut().expect("entries") {
        if e["path"] == "/data/keep.txt" || e["path"] == "/data/link-to-keep" {
            e["sha256"] = json!(crate::support::digest(b"something else"));
        }
        if e["path"] == "/data/modify.txt" {
            let st = std::fs::metadata(&p).expect("stat");
            e["ctime"] = json!([st.ctime(), st.ctime_nsec()]);
            e["mtime"] = json!([st.mtime(), st.mtime_nsec()]);
        }
    }
    std::fs::write(&record_path, serde_json::to_vec(&record).expect("JSON")).expect("write");
    assert_eq!(status_set(&b), (Some(0), BTreeSet::new()), "files whose stat matches are not read");
    // ...unless asked to read everything,
    let changed = set(&[("/data/keep.txt", "modified"), ("/data/link-to-keep", "modified")]);
    let out = ocil(&["status", arg(&b), "--full-compare", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(v["files_read"].as_u64().expect("a count") > 10, "{v}");
    // ...or when their mtime is not older than the record (git's racy-clean guard): the
    // record taken in the second of their mtime reads them again.
    record["taken"] = json!([1_704_067_200, 0]);
    std::fs::write(&record_path, serde_json::to_vec(&record).expect("JSON")).expect("write");
    assert_eq!(status_set(&b).1, changed);
}

#[test]
fn repack_is_reproducible() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut digests = Vec::new();
    for i in 0..2 {
        let layout = Layout::init(&tmp.path().join(format!("l{i}")));
        base_image(&layout, "v1");
        let b = tmp.path().join(format!("b{i}"));
        ocil_ok(&["unpack", &format!("{}:v1", arg(&layout.dir)), arg(&b)]);
        change(&b.join("rootfs"));
        let out = ok(
            ocil_env(
                &["repack", arg(&b), &format!("{}:v2", arg(&layout.dir)), "--json"],
                &[("SOURCE_DATE_EPOCH", EPOCH)],
            ),
            "repack",
        );
        let v: Value = serde_json::from_slice(out.as_bytes()).expect("JSON");
        digests.push((
            v["layer"]["digest"].clone(),
            v["layer"]["diff_id"].clone(),
            v["manifest"].clone(),
        ));
    }
    assert_eq!(digests[0], digests[1], "two repacks of the same changes differ");
}

#[test]
fn repack_compressions_and_docker_images() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&tmp.path().join("l"));
    base_image(&layout, "v1");
    let l = arg(&layout.dir).to_owned();
    // The same layers as zstd and plain blobs unpack to the same tree.
    let (l1, l2) = base_layers();
    let (t1, t2) = (crate::support::raw_tar(&l1), crate::support::raw_tar(&l2));
    layout.image(
        "mixed",
        &[Layer { tar: t1, comp: Comp::Zstd }, Layer { tar: t2, comp: Comp::None }],
        base_config(),
        false,
    );
    let (bg, bm) = (tmp.path().join("bg"), tmp.path().join("bm"));
    ocil_ok(&["unpack", &format!("{l}:v1"), arg(&bg)]);
    ocil_ok(&["unpack", &format!("{l}:mixed"), arg(&bm)]);
    assert!(
        diff(&tree(&bg.join("rootfs")), &tree(&bm.join("rootfs"))).is_empty(),
        "zstd and plain layers"
    );
    for (i, compress) in ["zstd", "none"].iter().enumerate() {
        let b = tmp.path().join(format!("b{i}"));
        ocil_ok(&["unpack", &format!("{l}:v1"), arg(&b)]);
        change(&b.join("rootfs"));
        ocil_ok(&["repack", arg(&b), &format!("{l}:{compress}"), "--compress", compress]);
        let b2 = tmp.path().join(format!("c{i}"));
        ocil_ok(&["unpack", &format!("{l}:{compress}"), arg(&b2)]);
        assert!(diff(&tree(&b.join("rootfs")), &tree(&b2.join("rootfs"))).is_empty(), "{compress}");
    }
    // A Docker-typed image keeps Docker types: gzip only.
    let docker = Layout::init(&tmp.path().join("d"));
    docker.image(
        "v1",
        &[Layer::gz(&[RawEntry::dir("etc/", 0o755), RawEntry::file("etc/x", b"x\n", 0o644)])],
        json!({}),
        true,
    );
    let b = tmp.path().join("bd");
    ocil_ok(&["unpack", &format!("{}:v1", arg(&docker.dir)), arg(&b)]);
    std::fs::write(b.join("rootfs/etc/y"), "y\n").expect("write");
    let out = ocil(&["repack", arg(&b), &format!("{}:v2", arg(&docker.dir)), "--compress", "zstd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Docker"), "{out:?}");
    ocil_ok(&["repack", arg(&b), &format!("{}:v2", arg(&docker.dir))]);
    let m = ocil_ok(&["inspect", &format!("{}:v2", arg(&docker.dir))]);
    assert!(m.contains("application/vnd.docker.image.rootfs.diff.tar.gzip"), "{m}");
}

#[test]
fn rootless_keeps_owners_in_the_record() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&tmp.path().join("l"));
    base_image(&layout, "v1");
    let dev = vec![
        RawEntry::dir("dev/", 0o755),
        RawEntry::device("dev/null", b'3', (1, 3)),
        RawEntry::device("dev/loop9", b'4', (7, 9)),
    ];
    layout.image("dev", &[Layer::gz(&dev)], json!({}), false);
    let l = arg(&layout.dir).to_owned();
    let b = tmp.path().join("b");
    ocil_ok(&["unpack", "--rootless", &format!("{l}:v1"), arg(&b)]);
    let r = b.join("rootfs");
    let me = rustix::process::geteuid().as_raw();
    assert_eq!(
        std::fs::metadata(r.join("opt/app/config")).expect("stat").uid(),
        me,
        "owners are not set"
    );
    // umoci's encoding: uid 1000, gid 1000.
    assert_eq!(
        xattr(&r.join("opt/app/config"), "user.rootlesscontainers").as_deref(),
        Some(&[0x08, 0xe8, 0x07, 0x10, 0xe8, 0x07][..])
    );
    let c: Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).expect("read")).expect("JSON");
    assert_eq!(c["linux"]["uidMappings"], json!([{"containerID": 0, "hostID": me, "size": 1}]));
    assert!(
        c["linux"]["namespaces"].as_array().expect("namespaces").contains(&json!({"type": "user"}))
    );
    assert!(
        !c["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .contains(&json!({"type": "network"}))
    );
    assert_eq!(ocil(&["status", arg(&b)]).status.code(), Some(0));
    // A change repacks with the image's owners, not the caller's.
    std::fs::write(r.join("opt/app/config"), "secret=2\n").expect("write");
    ocil_ok(&["repack", arg(&b), &format!("{l}:v2"), "--compress", "none"]);
    let layer = last_layer(&layout.dir, "v2");
    let mut a = tar::Archive::new(&layer[..]);
    let mut seen = false;
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.path_bytes().as_ref() == b"opt/app/config" {
            assert_eq!(
                (e.header().uid().expect("uid"), e.header().gid().expect("gid")),
                (1000, 1000)
            );
            let keys: Vec<String> = e
                .pax_extensions()
                .expect("pax")
                .into_iter()
                .flatten()
                .map(|x| x.expect("pax").key().expect("key").to_owned())
                .collect();
            assert_eq!(
                keys,
                ["SCHILY.xattr.user.note"],
                "the rootless owner xattr stays out of layers"
            );
            seen = true;
        }
    }
    assert!(seen);
    // Devices: empty files and a warning; the export still has the devices.
    let bd = tmp.path().join("bd");
    let out = ocil(&["unpack", "--rootless", &format!("{l}:dev"), arg(&bd)]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("devices created as empty files"),
        "{out:?}"
    );
    assert!(
        std::fs::symlink_metadata(bd.join("rootfs/dev/null")).expect("stat").file_type().is_file()
    );
    let x = tmp.path().join("x.tar");
    ocil_ok(&["export-rootfs", &format!("{l}:dev"), "-o", arg(&x)]);
    let listing = run_ok("tar", &["tvf", arg(&x)], tmp.path());
    assert!(listing.lines().any(|l| l.starts_with('c') && l.contains("dev/null")), "{listing}");
    assert!(listing.lines().any(|l| l.starts_with('b') && l.contains("dev/loop9")), "{listing}");
    if is_root() {
        let br = tmp.path().join("br");
        ocil_ok(&["unpack", &format!("{l}:dev"), arg(&br)]);
        let t = tree(&br.join("rootfs"));
        assert_eq!((t["dev/null"].kind, t["dev/null"].content.as_str()), ('c', "1:3"));
        assert_eq!((t["dev/loop9"].kind, t["dev/loop9"].content.as_str()), ('b', "7:9"));
    }
}

/// A blob of a layout by its digest (a JSON string).
fn blob(layout: &Path, d: &Value) -> Vec<u8> {
    std::fs::read(layout.join("blobs/sha256").join(&d.as_str().expect("digest")[7..]))
        .expect("read blob")
}

/// The manifest a tag names.
fn manifest_of(layout: &Path, tag: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("read"))
            .expect("JSON");
    let m = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .expect("the tag");
    serde_json::from_slice(&blob(layout, &m["digest"])).expect("JSON")
}

/// The config of the image a tag names.
fn config_of(layout: &Path, tag: &str) -> Value {
    serde_json::from_slice(&blob(layout, &manifest_of(layout, tag)["config"]["digest"]))
        .expect("JSON")
}

/// The last layer of an image (an uncompressed one).
fn last_layer(layout: &Path, tag: &str) -> Vec<u8> {
    let manifest = manifest_of(layout, tag);
    blob(layout, &manifest["layers"].as_array().expect("layers").last().expect("a layer")["digest"])
}

#[test]
fn export_rootfs_is_the_unpacked_tree() {
    if !is_root() {
        return; // GNU tar restores owners only as root.
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&tmp.path().join("l"));
    base_image(&layout, "v1");
    let l = arg(&layout.dir).to_owned();
    let b = tmp.path().join("b");
    ocil_ok(&["unpack", &format!("{l}:v1"), arg(&b)]);
    let x = tmp.path().join("rootfs.tar");
    ocil_ok(&["export-rootfs", &format!("{l}:v1"), "-o", arg(&x)]);
    let e = tmp.path().join("e");
    std::fs::create_dir(&e).expect("mkdir");
    run_ok(
        "tar",
        &["--same-owner", "--xattrs", "--xattrs-include=*", "-xpf", arg(&x), "-C", arg(&e)],
        tmp.path(),
    );
    let d = diff(&tree(&b.join("rootfs")), &tree(&e));
    assert!(d.is_empty(), "export-rootfs vs unpack:\n{}", d.join("\n"));
    assert_eq!(xattr(&e.join("opt/app/config"), "user.note").as_deref(), Some(&b"hello"[..]));
    // `-o -` gives the same bytes.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["export-rootfs", &format!("{l}:v1"), "-o", "-"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert_eq!(out.stdout, std::fs::read(&x).expect("read"));
}

#[test]
fn refusals() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&tmp.path().join("l"));
    base_image(&layout, "v1");
    let l = arg(&layout.dir).to_owned();
    // A bundle that holds something: refused, then replaced with --force (the rest kept).
    let b = tmp.path().join("b");
    std::fs::create_dir(&b).expect("mkdir");
    std::fs::write(b.join("notes.txt"), "mine").expect("write");
    let out = ocil(&["unpack", &format!("{l}:v1"), arg(&b)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"), "{out:?}");
    ocil_ok(&["unpack", &format!("{l}:v1"), arg(&b), "--force"]);
    std::fs::write(b.join("rootfs/etc/extra"), "x").expect("write");
    ocil_ok(&["unpack", &format!("{l}:v1"), arg(&b), "--force"]);
    assert!(!b.join("rootfs/etc/extra").exists() && b.join("notes.txt").exists());
    // An incomplete bundle (no record): status and repack refuse it.
    std::fs::remove_file(b.join("ocil-bundle.json")).expect("rm");
    for args in [vec!["status", arg(&b)], vec!["repack", arg(&b), &format!("{l}:v9")]] {
        let out = ocil(&args.iter().map(|s| &**s).collect::<Vec<_>>());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a complete ocil bundle"),
            "{out:?}"
        );
    }
    // Repack into a layout without the bundle's image.
    let b2 = tmp.path().join("b2");
    ocil_ok(&["unpack", &format!("{l}:v1"), arg(&b2)]);
    std::fs::write(b2.join("rootfs/etc/extra"), "x").expect("write");
    let other = Layout::init(&tmp.path().join("other"));
    let out = ocil(&["repack", arg(&b2), &format!("{}:v2", arg(&other.dir))]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not hold the image"), "{out:?}");
    // A layer that does not match its diff_id, a root entry that is a symlink: refused,
    // nothing left in the bundle, nothing written beside it.
    let bad = Layout::init(&tmp.path().join("bad"));
    let mut layer = Layer::gz(&[RawEntry::file("a", b"a", 0o644)]);
    let good_tar = layer.tar.clone();
    bad.image(
        "diff",
        &[Layer { tar: good_tar, comp: crate::support::Comp::Gzip }],
        json!({}),
        false,
    );
    // Same diff_id in the config, other bytes in the blob: swap the blob's content.
    layer.tar = crate::support::raw_tar(&[RawEntry::file("a", b"b", 0o644)]);
    let manifest_text = std::fs::read_to_string(bad.dir.join("index.json")).expect("read");
    let index: Value = serde_json::from_str(&manifest_text).expect("JSON");
    let md = index["manifests"][0]["digest"].as_str().expect("digest").to_owned();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(bad.dir.join("blobs/sha256").join(&md[7..])).expect("read"),
    )
    .expect("JSON");
    let (ld, _) = bad.put(&crate::support::gzip(&layer.tar));
    let mut m2 = manifest.clone();
    m2["layers"][0]["digest"] = json!(ld);
    m2["layers"][0]["size"] =
        json!(std::fs::metadata(bad.dir.join("blobs/sha256").join(&ld[7..])).expect("stat").len());
    let (md2, size2) = bad.put(&serde_json::to_vec(&m2).expect("JSON"));
    let mut index2 = index.clone();
    index2["manifests"][0]["digest"] = json!(md2);
    index2["manifests"][0]["size"] = json!(size2);
    std::fs::write(bad.dir.join("index.json"), serde_json::to_vec(&index2).expect("JSON"))
        .expect("write");
    bad.image("root-symlink", &[Layer::gz(&[RawEntry::symlink("./", "/etc")])], json!({}), false);
    for (tag, says) in [("diff", "diff_ids"), ("root-symlink", "CVE-2021-29136")] {
        let around = tmp.path().join(format!("around-{tag}"));
        std::fs::create_dir(&around).expect("mkdir");
        std::fs::write(around.join("sentinel"), "x").expect("write");
        let bundle = around.join("bundle");
        let before = snapshot(&around, &bundle);
        let out = ocil(&["unpack", &format!("{}:{tag}", arg(&bad.dir)), arg(&bundle)]);
        assert_eq!(out.status.code(), Some(2), "{tag}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{tag}: {out:?}");
        assert!(!bundle.exists(), "{tag}: the bundle directory the unpack made is gone");
        assert_eq!(snapshot(&around, &bundle), before, "{tag}");
    }
}

/// As a user that is not root (root's tests drop to `nobody` with `setpriv`): `--rootless`
/// is required, read-only directories of the image do not stop the unpack, a `--force`
/// unpack removes the earlier one, and the repacked layer keeps the image's owners.
#[test]
fn rootless_as_an_unprivileged_user() {
    if !is_root() {
        // Already unprivileged: the other tests run rootless paths as this user.
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let layout = Layout::init(&tmp.path().join("l"));
    let layer = vec![
        RawEntry::dir("ro/", 0o555),
        RawEntry::file("ro/file", b"read only\n", 0o444).owner(1000, 1000),
        RawEntry::dir("ro/sub/", 0o500),
        RawEntry::file("ro/sub/x", b"x\n", 0o400),
        RawEntry::device("ro/null", b'3', (1, 3)),
        // Mode 0000, as RHEL ships /etc/shadow: nobody owns it in the bundle but may not
        // read it; status, repack and export-rootfs read it as root would.
        RawEntry::dir("etc/", 0o755),
        RawEntry::file("etc/shadow", b"root:*:19000::::::\n", 0o000),
    ];
    layout.image("v1", &[Layer::gz(&layer)], json!({}), false);
    for e in walkdir::WalkDir::new(&layout.dir) {
        let e = e.expect("walk");
        let m = if e.file_type().is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(m)).expect("chmod");
    }
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).expect("mkdir");
    rustix::fs::chown(
        &work,
        Some(rustix::fs::Uid::from_raw(65534)),
        Some(rustix::fs::Gid::from_raw(65534)),
    )
    .expect("chown");
    let as_nobody = |args: &[&str]| {
        std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(env!("CARGO_BIN_EXE_ocil"))
            .args(args)
            .output()
            .expect("run setpriv")
    };
    let image = format!("{}:v1", arg(&layout.dir));
    let b = work.join("b");
    let out = as_nobody(&["unpack", &image, arg(&b)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--rootless"), "{out:?}");
    ok(as_nobody(&["unpack", "--rootless", &image, arg(&b)]), "unpack --rootless as nobody");
    let m = std::fs::metadata(b.join("rootfs/ro")).expect("stat");
    assert_eq!((m.uid(), m.mode() & 0o7777), (65534, 0o555), "the image's mode, set last");
    assert_eq!(std::fs::metadata(b.join("rootfs/ro/sub")).expect("stat").mode() & 0o7777, 0o500);
    let status = as_nobody(&["status", arg(&b)]);
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    ok(
        as_nobody(&["unpack", "--rootless", "--force", &image, arg(&b)]),
        "unpack --force over read-only directories",
    );
    // A change, repacked by nobody into a layout nobody can write.
    let l2 = work.join("l2");
    ok(as_nobody(&["copy", &image, &format!("{}:v1", arg(&l2))]), "copy");
    // Changes: a file removed (by root: nobody may not write into the 0500 directory) and a
    // new top-level file.
    std::fs::remove_file(b.join("rootfs/ro/sub/x")).expect("rm");
    std::fs::write(b.join("rootfs/etc/shadow"), b"root:!:19001::::::\n").expect("write");
    assert_eq!(
        std::fs::metadata(b.join("rootfs/etc/shadow")).expect("stat").mode() & 0o7777,
        0,
        "the image's mode"
    );
    let status = as_nobody(&["status", arg(&b)]);
    let listed = String::from_utf8_lossy(&status.stdout);
    assert_eq!(status.status.code(), Some(1), "{status:?}");
    assert!(listed.contains("etc/shadow"), "a modified mode-0000 file is read: {listed}");
    let exported = work.join("rootfs.tar");
    ok(
        as_nobody(&["export-rootfs", &image, "-o", arg(&exported)]),
        "export-rootfs as nobody reads mode-0000 files",
    );
    let listing = run_ok("tar", &["-tvf", arg(&exported)], tmp.path());
    assert!(listing.contains("---------- 0/0") && listing.contains("etc/shadow"), "{listing}");
    std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "sh", "-c"])
        .arg(format!("echo new > {}/rootfs/new", arg(&b)))
        .status()
        .expect("write as nobody");
    ok(
        as_nobody(&["repack", arg(&b), &format!("{}:v2", arg(&l2)), "--compress", "none"]),
        "repack as nobody",
    );
    let b2 = tmp.path().join("b2");
    ocil_ok(&["unpack", &format!("{}:v2", arg(&l2)), arg(&b2)]);
    let t = tree(&b2.join("rootfs"));
    assert_eq!((t["ro/file"].uid, t["ro/file"].gid, t["ro/file"].mode), (1000, 1000, 0o444));
    assert_eq!(t["ro/null"].kind, 'c', "root's unpack makes the device the layer asked for");
    assert_eq!(t["new"].content, crate::support::digest(b"new\n"));
    assert_eq!((t["new"].uid, t["new"].gid), (0, 0), "a rootless bundle's new files are root's");
    assert!(!t.contains_key("ro/sub/x") && t.contains_key("ro/sub"));
    assert_eq!(t["etc/shadow"].content, crate::support::digest(b"root:!:19001::::::\n"));
    assert_eq!(t["etc/shadow"].mode, 0, "the mode is kept");
}
