//! `ocil append` and `ocil index`: what they print, their exit codes, and each error
//! (snapshots). Interop oracles and crashes are in the `layers` test binary.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::Value;

use crate::support::{TestDir, blob_path, digest_of, entry, snap};

fn mode(p: &Path, m: u32) {
    fs_err::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// `src/`: files of modes 0755 and 0600, a subdirectory, a symlink and a hard link; every
/// mode set explicitly so the umask does not matter.
fn src_tree(t: &TestDir, name: &str) {
    let root = t.join(name);
    fs_err::create_dir_all(root.join("sub")).unwrap();
    fs_err::write(root.join("run.sh"), "#!/bin/sh\necho hi\n").unwrap();
    mode(&root.join("run.sh"), 0o755);
    fs_err::write(root.join("sub/secret"), "s3cret\n").unwrap();
    mode(&root.join("sub/secret"), 0o600);
    std::os::unix::fs::symlink("sub/secret", root.join("link")).unwrap();
    fs_err::hard_link(root.join("run.sh"), root.join("sub/run-again.sh")).unwrap();
    mode(&root.join("sub"), 0o755);
    mode(&root, 0o755);
}

/// A tar whose one entry has a raw (unchecked) name.
fn hostile_tar(path: &Path, name: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(1);
    h.set_mode(0o644);
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    let mut b = tar::Builder::new(Vec::new());
    b.append(&h, &b"x"[..]).unwrap();
    fs_err::write(path, b.into_inner().unwrap()).unwrap();
}

fn config(layout: &Path, tag: &str) -> Value {
    let m: Value =
        serde_json::from_slice(&fs_err::read(blob_path(layout, &digest_of(layout, tag))).unwrap())
            .unwrap();
    let c = m["config"]["digest"].as_str().unwrap();
    serde_json::from_slice(&fs_err::read(blob_path(layout, c)).unwrap()).unwrap()
}

#[test]
fn append_directories_and_tars() {
    let t = TestDir::new();
    let img = t.image("img");
    src_tree(&t, "src");
    snap!(t, "append_dir", t.ocil().args(["append", "img:v1", "src", "--tag", "v2"]));
    // The same inputs give the same digests.
    snap!(t, "append_dir_again", t.ocil().args(["append", "img:v1", "src", "--tag", "v2b"]));
    assert_eq!(digest_of(&img, "v2"), digest_of(&img, "v2b"));
    snap!(
        t,
        "append_zstd_comment",
        t.ocil().args([
            "append",
            "img:v2",
            "src",
            "--compress",
            "zstd",
            "--history-comment",
            "again, as zstd",
            "--created",
            "2020-02-02T02:02:02Z",
            "--tag",
            "v3",
        ])
    );
    snap!(t, "append_inspect", t.ocil().args(["inspect", "img:v3"]));
    let c = config(&img, "v3");
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    assert_eq!(c["rootfs"]["diff_ids"][0], c["rootfs"]["diff_ids"][1], "same tar, same diff_id");
    assert_eq!(c["history"][1]["comment"], "again, as zstd");

    // A tar file (here: the layer blob of v2, gzip) and a plain tar made by GNU tar.
    let v2: Value =
        serde_json::from_slice(&fs_err::read(blob_path(&img, &digest_of(&img, "v2"))).unwrap())
            .unwrap();
    let layer = blob_path(&img, v2["layers"][0]["digest"].as_str().unwrap());
    fs_err::copy(&layer, t.join("layer.tar.gz")).unwrap();
    let gnu = std::process::Command::new("tar")
        .args(["--sort=name", "--mtime=@0", "--owner=0", "--group=0", "--numeric-owner"])
        .args(["-cf", "gnu.tar", "-C", "src", "."])
        .current_dir(t.path())
        .status()
        .unwrap();
    assert!(gnu.success());
    snap!(
        t,
        "append_tars_uncompressed",
        t.ocil().args(["append", "img:v1", "layer.tar.gz", "gnu.tar", "--compress", "none"])
    );
    let c = config(&img, "v1");
    let v2c = config(&img, "v2");
    assert_eq!(c["rootfs"]["diff_ids"][0], v2c["rootfs"]["diff_ids"][0], "the tar as given");
    // v1 moved (no --tag); v2 stayed.
    assert_ne!(digest_of(&img, "v1"), digest_of(&img, "v2"));
    snap!(t, "append_fsck_deep", t.ocil().args(["fsck", "--deep", "img"]));
}

#[test]
fn append_errors() {
    let t = TestDir::new();
    t.image("img");
    src_tree(&t, "src");
    snap!(t, "append_missing_path", t.ocil().args(["append", "img:v1", "nope"]));
    snap!(t, "append_no_path", t.ocil().args(["append", "img:v1"]));
    snap!(t, "append_no_ref", t.ocil().args(["append", "img", "src"]));
    snap!(t, "append_unknown_tag", t.ocil().args(["append", "img:v9", "src"]));
    snap!(t, "append_bad_new_tag", t.ocil().args(["append", "img:v1", "src", "--tag", "a b"]));
    snap!(
        t,
        "append_bad_created",
        t.ocil().args(["append", "img:v1", "src", "--created", "yesterday"])
    );
    snap!(t, "append_bad_compress", t.ocil().args(["append", "img:v1", "src", "--compress", "xz"]));
    fs_err::write(t.join("notatar.txt"), "hello\n").unwrap();
    snap!(t, "append_text_file", t.ocil().args(["append", "img:v1", "notatar.txt"]));
    hostile_tar(&t.join("dotdot.tar"), b"a/../../etc/passwd");
    snap!(t, "append_tar_dotdot", t.ocil().args(["append", "img:v1", "dotdot.tar"]));
    hostile_tar(&t.join("abs.tar"), b"/etc/passwd");
    snap!(t, "append_tar_absolute", t.ocil().args(["append", "img:v1", "abs.tar"]));
    fs_err::write(t.join("notes.txt"), "not a tar at all, just some text\n".repeat(40)).unwrap();
    snap!(t, "append_not_a_tar", t.ocil().args(["append", "img:v1", "notes.txt"]));
    // Nothing was published by the failures: v1 is where it was, and no blob is garbage.
    snap!(t, "append_errors_fsck", t.ocil().args(["fsck", "img"]));

    let _sock = std::os::unix::net::UnixListener::bind(t.join("src/sock")).unwrap();
    snap!(t, "append_socket_warning", t.ocil().args(["append", "img:v1", "src", "--tag", "s"]));
}

#[test]
fn append_files_at_paths() {
    let t = TestDir::new();
    let img = t.image("img");
    src_tree(&t, "src");
    fs_err::write(t.join("tool"), "#!/bin/sh\n").unwrap();
    mode(&t.join("tool"), 0o751);
    snap!(
        t,
        "append_file",
        t.ocil().args([
            "append",
            "img:v1",
            "--file",
            "tool:/usr/local/bin/tool",
            "--file",
            "src:etc/app/",
            "--tag",
            "v2"
        ])
    );
    let c = config(&img, "v2");
    assert_eq!(
        c["history"][0]["created_by"],
        "ocil append: directory src -> /etc/app; file tool -> /usr/local/bin/tool"
    );
    // The same sources in another order: the same layer.
    t.run(&[
        "append",
        "img:v1",
        "--file",
        "src:/etc/app",
        "--file",
        "tool:/usr/local/bin/tool",
        "--tag",
        "v3",
    ]);
    assert_eq!(digest_of(&img, "v2"), digest_of(&img, "v3"));
    // PATH layers first, then the --file layer.
    snap!(
        t,
        "append_path_and_file",
        t.ocil().args(["append", "img:v1", "src", "--file", "tool:/t", "--tag", "v4"])
    );
    // A `:` in SRC: the split is at the last `:` whose left side exists.
    fs_err::write(t.join("a:b"), "colon\n").unwrap();
    t.run(&["append", "img:v1", "--file", "a:b:/c:d", "--tag", "v5"]);
    let c = config(&img, "v5");
    assert_eq!(c["history"][0]["created_by"], "ocil append: file a:b -> /c:d");

    snap!(t, "append_file_root", t.ocil().args(["append", "img:v1", "--file", "tool:/"]));
    snap!(
        t,
        "append_file_dotdot",
        t.ocil().args(["append", "img:v1", "--file", "tool:/a/../../b"])
    );
    snap!(t, "append_file_missing", t.ocil().args(["append", "img:v1", "--file", "nope:/x"]));
    snap!(t, "append_file_no_dest", t.ocil().args(["append", "img:v1", "--file", "tool"]));
    snap!(
        t,
        "append_file_overlap",
        t.ocil().args(["append", "img:v1", "--file", "src:/etc", "--file", "tool:/etc/tool"])
    );
    std::process::Command::new("mkfifo").arg(t.join("fifo")).status().unwrap();
    snap!(t, "append_file_fifo", t.ocil().args(["append", "img:v1", "--file", "fifo:/f"]));
    // Nothing was published by the failures.
    snap!(t, "append_file_errors_fsck", t.ocil().args(["fsck", "img"]));
}

#[test]
fn append_to_indexes() {
    let t = TestDir::new();
    t.multi("img");
    src_tree(&t, "src");
    snap!(t, "append_index_no_platform", t.ocil().args(["append", "img:multi", "src"]));
    snap!(
        t,
        "append_bad_platform",
        t.ocil().args(["append", "img:multi", "src", "--platform", "linux"])
    );
    snap!(
        t,
        "append_platform_absent",
        t.ocil().args(["append", "img:multi", "src", "--platform", "linux/s390x"])
    );
    snap!(
        t,
        "append_both_platform_flags",
        t.ocil().args([
            "append",
            "img:multi",
            "src",
            "--platform",
            "linux/amd64",
            "--all-platforms"
        ])
    );
    snap!(
        t,
        "append_one_platform",
        t.ocil().args(["append", "img:multi", "src", "--platform", "linux/arm64", "--tag", "m1"])
    );
    snap!(
        t,
        "append_all_platforms",
        t.ocil().args(["append", "img:multi", "src", "--all-platforms"])
    );
    snap!(t, "append_index_ls", t.ocil().args(["ls", "img"]));
    snap!(t, "append_index_fsck", t.ocil().args(["fsck", "--deep", "img"]));
}

#[test]
fn append_to_docker_images_needs_shared() {
    let t = TestDir::new();
    let Some(d) = t.fixture("skopeo-v2s2") else { return };
    src_tree(&t, "src");
    snap!(
        t,
        "append_docker_zstd",
        t.ocil().args(["append", "skopeo-v2s2:v3", "src", "--compress", "zstd"])
    );
    snap!(
        t,
        "append_docker_none",
        t.ocil().args(["append", "skopeo-v2s2:v3", "src", "--compress", "none"])
    );
    snap!(
        t,
        "append_docker_gzip",
        t.ocil().args(["append", "skopeo-v2s2:v3", "src", "--tag", "v4"])
    );
    let e = entry(&d, "v4");
    assert_eq!(e["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    let m: Value = serde_json::from_slice(
        &fs_err::read(blob_path(&d, e["digest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(
        layers.last().unwrap()["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(m["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
    snap!(t, "append_docker_fsck", t.ocil().args(["fsck", "--deep", "skopeo-v2s2"]));
}

#[test]
fn index_create_edit_remove() {
    let t = TestDir::new();
    let img = t.image("img");
    t.run(&["new", "--platform", "linux/arm64/v8", "img:arm"]);
    t.run(&["init", "other"]);
    t.run(&["new", "--platform", "linux/s390x", "other:s"]);
    src_tree(&t, "src");
    t.run(&["append", "other:s", "src"]);
    snap!(
        t,
        "index_create",
        t.ocil().args(["index", "img:multi", "--add", "img:v1", "--add", "img:arm"])
    );
    snap!(
        t,
        "index_add_from_other_layout",
        t.ocil().args(["index", "img:multi", "--add", "other:s"])
    );
    // Two images for one platform in one run: refused, nothing written.
    t.run(&[
        "new",
        "--platform",
        "linux/arm64/v8",
        "--created",
        "2022-02-02T00:00:00Z",
        "img:arm2",
    ]);
    let before = crate::support::read_index(&img);
    snap!(
        t,
        "index_two_adds_one_platform",
        t.ocil().args(["index", "img:multi2", "--add", "img:arm", "--add", "img:arm2"])
    );
    assert_eq!(crate::support::read_index(&img), before);
    let old_v1 = digest_of(&img, "v1");
    t.run(&["append", "img:v1", "src"]);
    // A manifest that is no `index.json` entry any more, by digest.
    snap!(
        t,
        "index_add_not_an_entry",
        t.ocil().args(["index", "other:old", "--add", &format!("img@{old_v1}")])
    );
    snap!(
        t,
        "index_replace_same_platform",
        t.ocil().args(["index", "img:multi", "--add", "img:v1"])
    );
    // The same image again: nothing changes, the digest stays.
    let before = digest_of(&img, "multi");
    snap!(t, "index_add_again", t.ocil().args(["index", "img:multi", "--add", "img:v1"]));
    assert_eq!(digest_of(&img, "multi"), before);
    snap!(t, "index_ls", t.ocil().args(["ls", "img"]));
    snap!(t, "index_inspect_raw", t.ocil().args(["inspect", "--raw", "img:multi"]));
    snap!(
        t,
        "index_rm_platform",
        t.ocil().args(["index", "img:multi", "--rm-platform", "linux/arm64"])
    );
    snap!(t, "index_fsck", t.ocil().args(["fsck", "--deep", "img"]));
    // An index of an index's children, by digest.
    let multi = digest_of(&img, "multi");
    snap!(
        t,
        "index_from_index",
        t.ocil().args(["index", "other:copy", "--add", &format!("img@{multi}")])
    );

    snap!(
        t,
        "index_rm_absent_platform",
        t.ocil().args(["index", "img:multi", "--rm-platform", "linux/mips"])
    );
    snap!(
        t,
        "index_bad_rm_platform",
        t.ocil().args(["index", "img:multi", "--rm-platform", "linux"])
    );
    snap!(t, "index_tag_is_a_manifest", t.ocil().args(["index", "img:v1", "--add", "img:arm"]));
    snap!(
        t,
        "index_new_tag_only_rm",
        t.ocil().args(["index", "img:nope", "--rm-platform", "linux/amd64"])
    );
    snap!(t, "index_nothing_to_do", t.ocil().args(["index", "img:multi"]));
    snap!(t, "index_add_unknown", t.ocil().args(["index", "img:multi", "--add", "other:v9"]));
    snap!(t, "index_add_no_ref", t.ocil().args(["index", "img:multi", "--add", "other"]));
    snap!(t, "index_add_missing_dir", t.ocil().args(["index", "img:multi", "--add", "nowhere:v1"]));
    let cfg = crate::support::config_of(&img, "arm");
    snap!(
        t,
        "index_add_config_blob",
        t.ocil().args(["index", "img:multi", "--add", &format!("img@{cfg}")])
    );
}

#[test]
fn index_of_docker_images_is_a_manifest_list_needs_shared() {
    let t = TestDir::new();
    let Some(_) = t.fixture("skopeo-v2s2") else { return };
    let img = t.image("img");
    snap!(t, "index_docker_list", t.ocil().args(["index", "img:list", "--add", "skopeo-v2s2:v3"]));
    assert_eq!(
        entry(&img, "list")["mediaType"],
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    // An OCI image joins: the list becomes an OCI index.
    t.run(&["new", "--platform", "linux/arm64", "img:arm"]);
    snap!(
        t,
        "index_docker_list_converted",
        t.ocil().args(["index", "img:list", "--add", "img:arm"])
    );
    assert_eq!(entry(&img, "list")["mediaType"], "application/vnd.oci.image.index.v1+json");
    snap!(t, "index_docker_fsck", t.ocil().args(["fsck", "img"]));
}
