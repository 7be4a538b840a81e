//! Carrying: `ocil receipt`, `ocil export --since` and `--volume-size`, `ocil import` and
//! `ocil fsck` of deltas and volumes: what they print, and each refusal (snapshots). The
//! behaviour on generated content is tested in `tests/archive/carry.rs`.

use crate::support::{TestDir, snap};

/// `img` (v1, arm64, multi) and `base`: `img`'s v1 alone.
fn layouts() -> TestDir {
    let t = TestDir::new();
    t.multi("img");
    t.run(&["copy", "img:v1", "base:v1"]);
    t
}

#[test]
fn receipt() {
    let t = layouts();
    snap!(t, "receipt_text", t.ocil().args(["receipt", "img", "-o", "img.receipt"]));
    // The document itself, on stdout: the format, byte for byte.
    snap!(t, "receipt_stdout", t.ocil().args(["receipt", "img", "-o", "-"]));
    assert_eq!(
        fs_err::read(t.join("img.receipt")).unwrap(),
        t.run(&["receipt", "img", "-o", "-"]).stdout
    );
    snap!(t, "receipt_json", t.ocil().args(["receipt", "--json", "base", "-o", "base.receipt"]));
    t.run(&["export", "img", "-o", "img.tar"]);
    snap!(t, "receipt_of_an_archive", t.ocil().args(["receipt", "img.tar", "-o", "-"]));
    snap!(t, "receipt_of_a_reference", t.ocil().args(["receipt", "img:v1", "-o", "x"]));
    snap!(t, "receipt_json_to_stdout", t.ocil().args(["receipt", "--json", "img", "-o", "-"]));
}

#[test]
fn delta() {
    let t = layouts();
    t.run(&["receipt", "base", "-o", "base.receipt"]);
    snap!(
        t,
        "delta_export",
        t.ocil().args(["export", "img", "-o", "d.tar", "--since", "base.receipt"])
    );
    snap!(t, "delta_fsck", t.ocil().args(["fsck", "d.tar"]));
    t.run(&["copy", "base:v1", "site:v1"]);
    snap!(
        t,
        "delta_import",
        t.ocil().args(["import", "d.tar", "site", "--receipt", "site.receipt"])
    );
    t.run(&["init", "empty"]);
    snap!(t, "delta_import_wrong_base", t.ocil().args(["import", "d.tar", "empty"]));
    snap!(t, "delta_import_one_image", t.ocil().args(["import", "d.tar", "site", "--image", "v1"]));
    snap!(
        t,
        "delta_docker_format",
        t.ocil().args(["export", "img", "-o", "x.tar", "--since", "base", "--format", "docker"])
    );
    snap!(t, "delta_no_base", t.ocil().args(["export", "img", "-o", "x.tar", "--since", "nosuch"]));
    fs_err::write(t.join("bad.receipt"), br#"{"mediaType":"text/plain"}"#).unwrap();
    snap!(
        t,
        "delta_bad_receipt",
        t.ocil().args(["export", "img", "-o", "x.tar", "--since", "bad.receipt"])
    );
}

#[test]
fn volumes() {
    let t = layouts();
    fs_err::create_dir(t.join("media")).unwrap();
    snap!(
        t,
        "volumes_export",
        t.ocil().args(["export", "img", "-o", "media/b.tar", "--volume-size", "8K"])
    );
    assert!(t.join("media/SHA256SUMS").exists());
    snap!(t, "volumes_fsck", t.ocil().args(["fsck", "media/b.002.tar"]));
    snap!(t, "volumes_import_second", t.ocil().args(["import", "media/b.002.tar", "site"]));
    snap!(t, "volumes_import_first", t.ocil().args(["import", "media/b.001.tar", "site"]));
    snap!(t, "volumes_import_tag", t.ocil().args(["import", "media/b.001.tar", "other:x"]));
    for (name, args) in [
        ("volumes_stdout", &["export", "img", "-o", "-", "--volume-size", "8K"][..]),
        ("volumes_compressed", &["export", "img", "-o", "b.tar.gz", "--volume-size", "8K"]),
        ("volumes_too_small", &["export", "img", "-o", "s.tar", "--volume-size", "2K"]),
        ("volumes_bad_size", &["export", "img", "-o", "s.tar", "--volume-size", "4X"]),
        ("volumes_zero", &["export", "img", "-o", "s.tar", "--volume-size", "0"]),
    ] {
        snap!(t, name, t.ocil().args(args));
    }
    assert!(!t.join("s.001.tar").exists());
}
