//! `ocil unpack`, `status`, `repack` and `export-rootfs`: what they print, their exit codes,
//! and their refusals (snapshots). Oracles (umoci, docker, runc) and the extraction vectors
//! are in the `rootfs` test binary.

use std::os::unix::fs::PermissionsExt;

use crate::support::{TestDir, snap};

/// `img/`: an image `v1` with one layer packed from a small directory.
fn image(t: &TestDir) {
    let src = t.join("src");
    fs_err::create_dir_all(src.join("etc")).unwrap();
    fs_err::write(src.join("etc/motd"), "hello\n").unwrap();
    fs_err::write(src.join("etc/old"), "old\n").unwrap();
    fs_err::write(src.join("etc/mode"), "mode\n").unwrap();
    for (p, m) in
        [("etc/motd", 0o644), ("etc/old", 0o644), ("etc/mode", 0o644), ("etc", 0o755), ("", 0o755)]
    {
        fs_err::set_permissions(src.join(p), std::fs::Permissions::from_mode(m)).unwrap();
    }
    t.run(&["init", "img"]);
    t.run(&["new", "img:base"]);
    t.run(&["append", "img:base", "src", "--tag", "v1"]);
}

/// Digests of files the test wrote (whose owner is whoever runs the tests) are hidden.
fn settings(t: &TestDir) -> insta::Settings {
    let mut s = t.settings();
    s.add_filter("sha256:[0-9a-f]{64}", "sha256:[DIGEST]");
    s.add_filter(r"\d+(\.\d+)? (B|KiB)\b", "[SIZE]");
    s
}

#[test]
fn workspace_loop() {
    if !rustix::process::geteuid().is_root() {
        return; // unpack needs --rootless otherwise (the rootfs binary tests that)
    }
    let t = TestDir::new();
    image(&t);
    settings(&t).bind(|| {
        insta_cmd::assert_cmd_snapshot!(
            "rootfs_unpack",
            t.ocil().args(["unpack", "img:v1", "bundle"])
        );
        insta_cmd::assert_cmd_snapshot!("rootfs_status_clean", t.ocil().args(["status", "bundle"]));
        let r = t.join("bundle/rootfs");
        fs_err::write(r.join("etc/motd"), "hello, changed\n").unwrap();
        fs_err::write(r.join("etc/new"), "new\n").unwrap();
        fs_err::set_permissions(r.join("etc/new"), std::fs::Permissions::from_mode(0o644)).unwrap();
        fs_err::remove_file(r.join("etc/old")).unwrap();
        fs_err::set_permissions(r.join("etc/mode"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        insta_cmd::assert_cmd_snapshot!(
            "rootfs_status_changes",
            t.ocil().args(["status", "bundle"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "rootfs_status_quiet",
            t.ocil().args(["status", "-q", "bundle"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "rootfs_status_json",
            t.ocil().args(["status", "--json", "bundle"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "rootfs_repack",
            t.ocil().args(["repack", "bundle", "img:v2"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "rootfs_repack_nothing",
            t.ocil().args(["repack", "bundle", "img:v3"])
        );
        insta_cmd::assert_cmd_snapshot!(
            "rootfs_unpack_not_empty",
            t.ocil().args(["unpack", "img:v2", "bundle"])
        );
    });
    // The tar `export-rootfs` writes lists what the image holds.
    t.run(&["export-rootfs", "img:v2", "-o", "rootfs.tar"]);
    let mut a = tar::Archive::new(fs_err::File::open(t.join("rootfs.tar")).unwrap());
    let names: Vec<String> =
        a.entries().unwrap().map(|e| e.unwrap().path().unwrap().display().to_string()).collect();
    assert_eq!(names, ["./", "etc/", "etc/mode", "etc/motd", "etc/new"]);
}

#[test]
fn refusals() {
    let t = TestDir::new();
    image(&t);
    fs_err::create_dir(t.join("empty")).unwrap();
    snap!(t, "rootfs_status_missing_bundle", t.ocil().args(["status", "nowhere"]));
    snap!(t, "rootfs_status_not_a_bundle", t.ocil().args(["status", "empty"]));
    snap!(t, "rootfs_repack_needs_a_tag", t.ocil().args(["repack", "empty", "img"]));
    snap!(t, "rootfs_unpack_no_args", t.ocil().args(["unpack"]));
    snap!(t, "rootfs_unpack_missing_image", t.ocil().args(["unpack", "img:nope", "b"]));
    assert!(!t.join("b").exists(), "a failed unpack leaves no bundle directory it made");
    snap!(t, "rootfs_unpack_ambiguous", t.ocil().args(["unpack", "img", "b", "--rootless"]));
    snap!(t, "rootfs_export_rootfs_needs_o", t.ocil().args(["export-rootfs", "img:v1"]));
}
