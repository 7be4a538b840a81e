//! Usage: `--help`, `--version`, missing and unknown arguments, and directories that are
//! missing or not layouts, for every command.

use assert_cmd::assert::OutputAssertExt;

use crate::support::{TestDir, snap};

const COMMANDS: [&str; 9] = ["init", "ls", "inspect", "cat", "fsck", "gc", "tag", "untag", "new"];

#[test]
fn help() {
    let t = TestDir::new();
    snap!(t, "help", t.ocil().arg("--help"));
    snap!(t, "help_short", t.ocil().arg("-h"));
    for command in COMMANDS {
        snap!(t, format!("help_{command}"), t.ocil().args([command, "--help"]));
    }
}

#[test]
fn version() {
    let t = TestDir::new();
    let mut settings = t.settings();
    // The snapshot should not change with every release.
    settings.add_filter(&env!("CARGO_PKG_VERSION").replace('.', r"\."), "[VERSION]");
    settings.bind(|| insta_cmd::assert_cmd_snapshot!("version", t.ocil().arg("--version")));
}

#[test]
fn no_command() {
    let t = TestDir::new();
    snap!(t, "no_command", t.ocil());
}

#[test]
fn unknown_command() {
    let t = TestDir::new();
    snap!(t, "unknown_command", t.ocil().arg("list"));
}

#[test]
fn missing_arguments() {
    let t = TestDir::new();
    for command in COMMANDS {
        snap!(t, format!("missing_args_{command}"), t.ocil().arg(command));
    }
    // `tag` needs two.
    t.image("img");
    snap!(t, "missing_args_tag_new_name", t.ocil().args(["tag", "img:v1"]));
}

#[test]
fn unknown_flags() {
    let t = TestDir::new();
    t.image("img");
    snap!(t, "unknown_flag_top", t.ocil().args(["--frobnicate", "ls", "img"]));
    snap!(t, "unknown_flag_ls", t.ocil().args(["ls", "--long", "img"]));
    snap!(t, "unknown_flag_gc", t.ocil().args(["gc", "--all", "img"]));
    snap!(t, "conflicting_flags_inspect", t.ocil().args(["inspect", "--raw", "--json", "img"]));
}

#[test]
fn invalid_values() {
    let t = TestDir::new();
    t.image("img");
    snap!(t, "invalid_prune_age", t.ocil().args(["gc", "--prune=soon", "img"]));
    snap!(t, "invalid_tag", t.ocil().args(["tag", "img:v1", "no spaces"]));
    snap!(t, "stdin_is_not_a_layout", t.ocil().args(["tag", "--", "-:v1", "v2"]));
    snap!(t, "invalid_digest", t.ocil().args(["cat", "img@sha256:12"]));
    snap!(t, "invalid_platform", t.ocil().args(["new", "--platform", "linux", "img:v2"]));
    snap!(
        t,
        "invalid_source_date_epoch",
        t.ocil().args(["new", "img:v2"]).env("SOURCE_DATE_EPOCH", "yesterday")
    );
    snap!(t, "cat_needs_a_reference", t.ocil().args(["cat", "img"]));
    snap!(t, "ls_takes_no_reference", t.ocil().args(["ls", "img:v1"]));
    snap!(t, "new_needs_a_tag", t.ocil().args(["new", "img"]));
}

#[test]
fn nonexistent_directory() {
    let t = TestDir::new();
    let cases: [(&str, &[&str]); 8] = [
        ("ls", &["ls", "nope"]),
        ("inspect", &["inspect", "nope:v1"]),
        (
            "cat",
            &[
                "cat",
                "nope@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            ],
        ),
        ("fsck", &["fsck", "nope"]),
        ("gc", &["gc", "nope"]),
        ("tag", &["tag", "nope:v1", "v2"]),
        ("untag", &["untag", "nope:v1"]),
        ("new", &["new", "nope:v1"]),
    ];
    for (name, args) in cases {
        snap!(t, format!("nonexistent_dir_{name}"), t.ocil().args(args));
    }
    // An absolute path is printed as given. (Not a snapshot: the temp path would land in the
    // snapshot's recorded arguments, which insta's filters do not cover.)
    let absolute = t.join("nope");
    t.ocil()
        .arg("ls")
        .arg(&absolute)
        .assert()
        .code(2)
        .stdout("")
        .stderr(format!("error: no such directory `{}`\n", absolute.display()));
}

#[test]
fn not_a_layout() {
    let t = TestDir::new();
    fs_err::create_dir(t.join("plain")).unwrap();
    fs_err::write(t.join("plain/readme.txt"), "not a layout").unwrap();
    let cases: [(&str, &[&str]); 8] = [
        ("ls", &["ls", "plain"]),
        ("inspect", &["inspect", "plain"]),
        ("cat", &["cat", "plain:v1"]),
        ("fsck", &["fsck", "plain"]),
        ("gc", &["gc", "plain"]),
        ("tag", &["tag", "plain:v1", "v2"]),
        ("untag", &["untag", "plain:v1"]),
        ("new", &["new", "plain:v1"]),
    ];
    for (name, args) in cases {
        snap!(t, format!("not_a_layout_{name}"), t.ocil().args(args));
    }
    // A file where a directory is expected.
    snap!(t, "not_a_directory_ls", t.ocil().args(["ls", "plain/readme.txt"]));
    snap!(t, "not_a_directory_fsck", t.ocil().args(["fsck", "plain/readme.txt"]));
}
