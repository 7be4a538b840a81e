//! `ocil export`: what it prints on success and on each error (snapshots), and that a
//! failed export writes nothing.

use std::process::Command;

use crate::support::{TestDir, snap};

/// Nothing but `keep` entries under the test directory's `out/`.
fn out_is_empty(t: &TestDir) -> bool {
    let dir = t.join("out");
    !dir.exists() || fs_err::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn export_success() {
    let t = TestDir::new();
    t.multi("img");
    snap!(t, "export_all", t.ocil().args(["export", "img", "-o", "all.tar"]));
    snap!(t, "export_one_gzip", t.ocil().args(["export", "img:v1", "-o", "one.tar.gz"]));
    snap!(t, "export_json", t.ocil().args(["export", "--json", "img:multi", "-o", "m.tar.zst"]));
    snap!(
        t,
        "export_docker",
        t.ocil().args([
            "export",
            "--format",
            "docker",
            "--repo",
            "example.com/img",
            "--platform",
            "linux/arm64",
            "img",
            "-o",
            "d.tar"
        ])
    );
    // `-o -`: the archive on stdout, the summary on stderr.
    let out = t.ocil().args(["export", "img:v1", "-o", "-"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(&out.stdout[..10], b"oci-layout");
    t.run(&["export", "img:v1", "-o", "one.tar"]);
    assert_eq!(out.stdout, fs_err::read(t.join("one.tar")).unwrap(), "stdout and FILE differ");
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("exported 1 image(s) to stdout"));
}

#[test]
fn export_errors() {
    let t = TestDir::new();
    t.multi("img");
    t.run(&["init", "other"]);
    t.run(&["new", "--platform", "linux/arm64", "other:v1"]);
    t.run(&["init", "empty"]);
    fs_err::create_dir(t.join("out")).unwrap();
    let o = "out/a.tar";
    snap!(t, "export_unknown_tag", t.ocil().args(["export", "img:v9", "-o", o]));
    snap!(
        t,
        "export_unknown_digest",
        t.ocil().args(["export", &format!("img@sha256:{}", "0".repeat(64)), "-o", o])
    );
    snap!(t, "export_conflicting_tags", t.ocil().args(["export", "img", "other", "-o", o]));
    snap!(t, "export_empty_layout", t.ocil().args(["export", "empty", "-o", o]));
    snap!(t, "export_missing_dir", t.ocil().args(["export", "nosuch:v1", "-o", o]));
    snap!(t, "export_bad_format", t.ocil().args(["export", "--format", "zip", "img", "-o", o]));
    snap!(t, "export_bad_compress", t.ocil().args(["export", "--compress", "xz", "img", "-o", o]));
    snap!(t, "export_xz_name", t.ocil().args(["export", "img", "-o", "out.tar.xz"]));
    assert!(!t.join("out.tar.xz").exists());
    snap!(t, "export_no_source", t.ocil().args(["export", "-o", o]));
    snap!(t, "export_no_output", t.ocil().args(["export", "img"]));
    snap!(t, "export_output_dir_missing", t.ocil().args(["export", "img", "-o", "nodir/a.tar"]));
    snap!(t, "export_output_is_a_dir", t.ocil().args(["export", "img", "-o", "out"]));
    snap!(t, "export_json_to_stdout", t.ocil().args(["export", "--json", "img", "-o", "-"]));
    snap!(
        t,
        "export_repo_without_docker",
        t.ocil().args(["export", "--repo", "x", "img", "-o", o])
    );
    snap!(
        t,
        "export_docker_without_repo",
        t.ocil().args(["export", "--format", "docker", "img:v1", "-o", o])
    );
    snap!(
        t,
        "export_docker_index_needs_platform",
        t.ocil().args(["export", "--format", "docker", "--repo", "x", "img:multi", "-o", o])
    );
    snap!(
        t,
        "export_docker_unknown_platform",
        t.ocil().args([
            "export",
            "--format",
            "docker",
            "--repo",
            "x",
            "--platform",
            "linux/riscv64",
            "img:multi",
            "-o",
            o
        ])
    );
    snap!(
        t,
        "export_bad_source_date_epoch",
        t.ocil().args(["export", "img", "-o", o]).env("SOURCE_DATE_EPOCH", "yesterday")
    );
    assert!(out_is_empty(&t));
}

#[test]
fn export_docker_refuses_zstd_layers_needs_shared() {
    let t = TestDir::new();
    let Some(_) = t.fixture("skopeo-zstd") else { return };
    fs_err::create_dir(t.join("out")).unwrap();
    snap!(
        t,
        "export_docker_zstd",
        t.ocil().args([
            "export",
            "--format",
            "docker",
            "--repo",
            "x",
            "skopeo-zstd",
            "-o",
            "out/a.tar"
        ])
    );
    assert!(out_is_empty(&t));
}

/// A terminal on stdout (a pty from `script`) is refused before anything is read.
#[test]
fn export_refuses_a_terminal() {
    let t = TestDir::new();
    t.image("img");
    let ocil = env!("CARGO_BIN_EXE_ocil");
    let mut cmd = Command::new("script");
    cmd.current_dir(t.path())
        .args(["-qec", &format!("{ocil} export img -o -"), "/dev/null"])
        .env("SOURCE_DATE_EPOCH", crate::support::EPOCH);
    let out = cmd.output().expect("`script` (util-linux) runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    assert_eq!(
        text,
        "error: refusing to write a binary archive to a terminal: redirect stdout (`-o - > FILE`, `| ssh host ocil import - DIR`) or give -o FILE\n"
    );
}
