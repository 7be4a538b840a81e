//! The bundle runs: an image holding Debian's static busybox, unpacked and run with
//! `runc run` (as root: runc needs it for the cgroups and namespaces of this config), prints
//! what its config says; a change repacked into a new image shows in the next run.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::peers::require_tool;
use crate::support::{Layer, Layout, RawEntry, arg, ocil_ok};

/// `runc run` of a bundle, its state under `state`; stdout.
fn run(bundle: &Path, state: &Path, id: &str) -> String {
    let out = Command::new("runc")
        .args(["--root", arg(state), "run", id])
        .current_dir(bundle)
        .stdin(Stdio::null())
        .output()
        .expect("run runc");
    let _ = Command::new("runc").args(["--root", arg(state), "delete", "--force", id]).output();
    assert!(
        out.status.success(),
        "runc run: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn runc_runs_the_bundle_needs_runc_needs_busybox() {
    if !require_tool("runc") || !require_tool("busybox") {
        return;
    }
    if !rustix::process::geteuid().is_root() {
        // runc needs root for this (non-rootless) config; CI runs as root.
        assert!(!crate::peers::on_ci(), "the runc test runs as root on CI");
        eprintln!("not root: skipping");
        return;
    }
    let busybox = std::fs::read("/bin/busybox").expect("read /bin/busybox (busybox-static)");
    let tmp = tempfile::tempdir().expect("tempdir");
    let layout = Layout::init(&tmp.path().join("l"));
    let l1 = vec![
        RawEntry::dir("bin/", 0o755),
        RawEntry::file("bin/busybox", &busybox, 0o755),
        RawEntry::symlink("bin/sh", "busybox"),
        RawEntry::dir("etc/", 0o755),
        RawEntry::file("etc/greeting", b"hello from the image\n", 0o644),
        RawEntry::dir("work/", 0o755),
    ];
    let config = json!({
        "Entrypoint": ["/bin/sh", "-c"],
        "Cmd": ["cat /etc/greeting; echo \"cwd=$(pwd) uid=$(id -u) gid=$(id -g) A=$A\""],
        "Env": ["A=from-config", "PATH=/bin"],
        "WorkingDir": "/work",
        "User": "0:0",
    });
    layout.image("v1", &[Layer::gz(&l1)], config, false);
    let l = arg(&layout.dir).to_owned();
    let state = tmp.path().join("runc-state");
    let b1 = tmp.path().join("b1");
    ocil_ok(&["unpack", &format!("{l}:v1"), arg(&b1)]);
    let id = format!("ocil-test-{}", std::process::id());
    let out = run(&b1, &state, &format!("{id}-1"));
    assert_eq!(out, "hello from the image\ncwd=/work uid=0 gid=0 A=from-config\n");
    // Change, repack, unpack the new image elsewhere, run it.
    std::fs::write(b1.join("rootfs/etc/greeting"), "hello from the repacked layer\n")
        .expect("write");
    ocil_ok(&["repack", arg(&b1), &format!("{l}:v2")]);
    let b2 = tmp.path().join("b2");
    ocil_ok(&["unpack", &format!("{l}:v2"), arg(&b2)]);
    let out = run(&b2, &state, &format!("{id}-2"));
    assert_eq!(out, "hello from the repacked layer\ncwd=/work uid=0 gid=0 A=from-config\n");
}
