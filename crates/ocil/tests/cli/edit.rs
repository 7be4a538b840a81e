//! `ocil config`, `ocil annotate` and `ocil rm`: what they print and their exit codes, on
//! layouts built by `ocil` (an image, and an index of two images), and every refusal.

use crate::support::{TestDir, blob_path, digest_of, entry, read_index, snap};

#[test]
fn help() {
    let t = TestDir::new();
    snap!(t, "edit_help_config", t.ocil().args(["config", "--help"]));
    snap!(t, "edit_help_annotate", t.ocil().args(["annotate", "--help"]));
    snap!(t, "edit_help_rm", t.ocil().args(["rm", "--help"]));
}

#[test]
fn config() {
    let t = TestDir::new();
    t.image("img");
    snap!(
        t,
        "config_many",
        t.ocil().args([
            "config",
            "img:v1",
            "--env",
            "A=1",
            "--env",
            "B=2",
            "--entrypoint",
            "/bin/sh -c",
            "--cmd",
            r#"["echo","hi"]"#,
            "--workdir",
            "/app",
            "--user",
            "1000",
            "--label",
            "k=v",
            "--expose",
            "80",
            "--expose",
            "53/udp",
            "--volume",
            "/data",
            "--stop-signal",
            "SIGTERM",
            "--author",
            "me",
            "--history-comment",
            "set up",
        ])
    );
    snap!(t, "config_inspect", t.ocil().args(["inspect", "img:v1"]));
    // SOURCE_DATE_EPOCH is fixed, so the same edit of the same image gives the same digest.
    let v1 = digest_of(&t.join("img"), "v1");
    snap!(
        t,
        "config_new_tag",
        t.ocil().args([
            "config",
            "img:v1",
            "--tag",
            "v2",
            "--env-rm",
            "A",
            "--label-rm",
            "k",
            "--clear",
            "cmd"
        ])
    );
    assert_eq!(digest_of(&t.join("img"), "v1"), v1, "--tag leaves v1 alone");
    snap!(t, "config_unchanged", t.ocil().args(["config", "img:v1", "--env", "A=1"]));
    snap!(
        t,
        "config_platform_fields",
        t.ocil().args([
            "config",
            "img:v2",
            "--os",
            "linux",
            "--arch",
            "arm64",
            "--variant",
            "v8",
            "--created",
            "2020-01-01T00:00:00Z"
        ])
    );
    // The index.json entry's platform follows the config.
    assert_eq!(entry(&t.join("img"), "v2")["platform"]["architecture"], "arm64");
    snap!(t, "config_ls", t.ocil().args(["ls", "img"]));
}

#[test]
fn config_errors() {
    let t = TestDir::new();
    t.multi("img");
    let before = read_index(&t.join("img"));
    snap!(t, "config_bad_env", t.ocil().args(["config", "img:v1", "--env", "NOEQUALS"]));
    snap!(t, "config_bad_label", t.ocil().args(["config", "img:v1", "--label", "=v"]));
    snap!(t, "config_bad_expose", t.ocil().args(["config", "img:v1", "--expose", "80/icmp"]));
    snap!(t, "config_bad_port", t.ocil().args(["config", "img:v1", "--expose", "99999"]));
    snap!(t, "config_bad_created", t.ocil().args(["config", "img:v1", "--created", "yesterday"]));
    snap!(t, "config_bad_cmd_json", t.ocil().args(["config", "img:v1", "--cmd", "[1,2]"]));
    snap!(t, "config_relative_workdir", t.ocil().args(["config", "img:v1", "--workdir", "app"]));
    snap!(t, "config_nothing", t.ocil().args(["config", "img:v1"]));
    snap!(t, "config_unknown_tag", t.ocil().args(["config", "img:v9", "--env", "A=1"]));
    snap!(t, "config_no_ref", t.ocil().args(["config", "img", "--env", "A=1"]));
    snap!(
        t,
        "config_bad_new_tag",
        t.ocil().args(["config", "img:v1", "--tag", "a b", "--env", "A=1"])
    );
    snap!(t, "config_index_no_platform", t.ocil().args(["config", "img:multi", "--env", "A=1"]));
    snap!(
        t,
        "config_index_unknown_platform",
        t.ocil().args(["config", "img:multi", "--platform", "linux/s390x", "--env", "A=1"])
    );
    snap!(
        t,
        "config_bad_platform",
        t.ocil().args(["config", "img:multi", "--platform", "linux", "--env", "A=1"])
    );
    snap!(
        t,
        "config_both_platform_flags",
        t.ocil().args([
            "config",
            "img:multi",
            "--platform",
            "linux/amd64",
            "--all-platforms",
            "--env",
            "A=1"
        ])
    );
    snap!(
        t,
        "config_wrong_platform_for_image",
        t.ocil().args(["config", "img:v1", "--platform", "linux/arm64", "--env", "A=1"])
    );
    let config = {
        let m: serde_json::Value = serde_json::from_slice(
            &fs_err::read(blob_path(&t.join("img"), &digest_of(&t.join("img"), "v1"))).unwrap(),
        )
        .unwrap();
        m["config"]["digest"].as_str().unwrap().to_owned()
    };
    snap!(
        t,
        "config_of_a_config_blob",
        t.ocil().args(["config", &format!("img@{config}"), "--tag", "x", "--env", "A=1"])
    );
    snap!(
        t,
        "config_digest_not_an_entry",
        t.ocil().args(["config", &format!("img@{config}"), "--env", "A=1"])
    );
    assert_eq!(read_index(&t.join("img")), before, "no refusal changed index.json");
    snap!(
        t,
        "config_index_one_platform",
        t.ocil().args(["config", "img:multi", "--platform", "linux/arm64", "--env", "A=1"])
    );
    snap!(
        t,
        "config_index_all_platforms",
        t.ocil().args(["config", "img:multi", "--all-platforms", "--env", "B=1", "--tag", "all"])
    );
}

#[test]
fn annotate() {
    let t = TestDir::new();
    t.multi("img");
    snap!(
        t,
        "annotate_manifest",
        t.ocil().args(["annotate", "img:v1", "org.example.a=1", "org.example.b=2"])
    );
    snap!(
        t,
        "annotate_rm",
        t.ocil().args(["annotate", "img:v1", "--rm", "org.example.a", "--rm", "absent"])
    );
    snap!(t, "annotate_index_default", t.ocil().args(["annotate", "img:multi", "org.example.i=1"]));
    snap!(
        t,
        "annotate_index_child",
        t.ocil().args(["annotate", "img:multi", "--platform", "linux/amd64", "org.example.c=1"])
    );
    snap!(
        t,
        "annotate_entry",
        t.ocil().args(["annotate", "img:v1", "--on", "entry", "org.example.e=1"])
    );
    assert_eq!(entry(&t.join("img"), "v1")["annotations"]["org.example.e"], "1");
    snap!(t, "annotate_inspect", t.ocil().args(["inspect", "img:v1"]));
    let before = read_index(&t.join("img"));
    snap!(
        t,
        "annotate_entry_ref_name",
        t.ocil().args([
            "annotate",
            "img:v1",
            "--on",
            "entry",
            "org.opencontainers.image.ref.name=x"
        ])
    );
    snap!(
        t,
        "annotate_entry_rm_ref_name",
        t.ocil().args([
            "annotate",
            "img:v1",
            "--on",
            "entry",
            "--rm",
            "org.opencontainers.image.ref.name"
        ])
    );
    snap!(
        t,
        "annotate_entry_tag",
        t.ocil().args(["annotate", "img:v1", "--on", "entry", "--tag", "x", "k=v"])
    );
    snap!(t, "annotate_bad_pair", t.ocil().args(["annotate", "img:v1", "novalue"]));
    snap!(t, "annotate_nothing", t.ocil().args(["annotate", "img:v1"]));
    snap!(
        t,
        "annotate_index_on_image",
        t.ocil().args(["annotate", "img:v1", "--on", "index", "k=v"])
    );
    snap!(
        t,
        "annotate_index_no_platform",
        t.ocil().args(["annotate", "img:multi", "--on", "manifest", "k=v"])
    );
    snap!(t, "annotate_bad_on", t.ocil().args(["annotate", "img:v1", "--on", "layer", "k=v"]));
    assert_eq!(read_index(&t.join("img")), before, "no refusal changed index.json");
}

#[test]
fn rm() {
    let t = TestDir::new();
    t.multi("img");
    t.run(&["tag", "img:v1", "latest"]);
    t.run(&["config", "img:v1", "--env", "X=1", "--tag", "edited"]);
    let v1 = digest_of(&t.join("img"), "v1");
    snap!(t, "rm_tag", t.ocil().args(["rm", "img:edited"]));
    snap!(t, "rm_unknown_tag", t.ocil().args(["rm", "img:edited"]));
    snap!(t, "rm_no_ref", t.ocil().args(["rm", "img"]));
    snap!(t, "rm_prune_without_gc", t.ocil().args(["rm", "img:v1", "--prune", "now"]));
    snap!(t, "rm_bad_prune", t.ocil().args(["rm", "img:v1", "--gc", "--prune", "soon"]));
    snap!(t, "rm_digest_gc", t.ocil().args(["rm", &format!("img@{v1}"), "--gc", "--prune", "now"]));
    // Both tags of v1 went; the arm64 image stays (reachable through `multi`).
    snap!(t, "rm_ls", t.ocil().args(["ls", "img"]));
    snap!(t, "rm_fsck", t.ocil().args(["fsck", "img"]));
    snap!(t, "rm_unknown_digest", t.ocil().args(["rm", &format!("img@{v1}")]));
}
