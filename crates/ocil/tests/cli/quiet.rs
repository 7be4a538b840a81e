//! `-q/--quiet`, one meaning on every command: only the result on stdout (the digest a write
//! produces, each image's digest for import and copy, ls's names, fsck's errors; nothing for
//! init, untag, rm, gc and export), warnings and errors on stderr, the same exit code.
//! Each digest printed is checked against what `index.json` says afterwards.

use crate::support::{TestDir, blob_path, config_of, digest_of, snap};

/// stdout of a command that must succeed, as text.
fn stdout(t: &TestDir, args: &[&str]) -> String {
    String::from_utf8(t.run(args).stdout).unwrap()
}

#[test]
fn writes_print_the_digest_they_make() {
    let t = TestDir::new();
    snap!(t, "quiet_init", t.ocil().args(["init", "-q", "img"]));
    let img = t.join("img");
    snap!(t, "quiet_new", t.ocil().args(["new", "-q", "img:v1"]));
    t.run(&["new", "--platform", "linux/arm64", "img:arm"]);
    // A moved tag: the digest, without the note.
    snap!(t, "quiet_tag_moved", t.ocil().args(["tag", "-q", "img:arm", "v1"]));
    assert_eq!(stdout(&t, &["tag", "-q", "img:arm", "v2"]), format!("{}\n", digest_of(&img, "v2")));
    snap!(t, "quiet_config", t.ocil().args(["config", "-q", "img:v2", "--env", "A=1"]));
    assert_eq!(
        stdout(&t, &["config", "--quiet", "img:v2", "--env", "B=2"]),
        format!("{}\n", digest_of(&img, "v2"))
    );
    let d = stdout(&t, &["annotate", "-q", "img:v2", "k=v"]);
    assert_eq!(d, format!("{}\n", digest_of(&img, "v2")));
    let d = stdout(&t, &["annotate", "-q", "--on", "entry", "img:v2", "e=f"]);
    assert_eq!(d, format!("{}\n", digest_of(&img, "v2")));
    fs_err::create_dir_all(t.join("src")).unwrap();
    fs_err::write(t.join("src/a.txt"), "a\n").unwrap();
    snap!(t, "quiet_append", t.ocil().args(["append", "-q", "img:v2", "src", "--tag", "v3"]));
    assert_eq!(
        stdout(&t, &["append", "-q", "img:v2", "src", "--tag", "v4"]),
        format!("{}\n", digest_of(&img, "v4"))
    );
    snap!(t, "quiet_index", t.ocil().args(["index", "-q", "img:multi", "--add", "img:v3"]));
    assert_eq!(
        stdout(&t, &["index", "-q", "img:multi", "--add", "img:arm"]),
        format!("{}\n", digest_of(&img, "multi"))
    );
    snap!(t, "quiet_convert", t.ocil().args(["convert", "-q", "img:v4", "--to", "docker"]));
    assert_eq!(
        stdout(&t, &["convert", "-q", "img:v4", "--to", "oci", "--tag", "v5"]),
        format!("{}\n", digest_of(&img, "v5"))
    );
}

#[test]
fn removals_print_nothing() {
    let t = TestDir::new();
    let img = t.image("img");
    t.run(&["tag", "img:v1", "v2"]);
    t.run(&["tag", "img:v1", "v3"]);
    snap!(t, "quiet_untag", t.ocil().args(["untag", "-q", "img:v2"]));
    snap!(t, "quiet_rm_gc", t.ocil().args(["rm", "-q", "--gc", "--prune=now", "img:v3"]));
    t.run(&["new", "--created", "2022-02-02T00:00:00Z", "img:other"]);
    t.run(&["rm", "img:other"]);
    snap!(t, "quiet_gc", t.ocil().args(["gc", "-q", "--prune=now", "img"]));
    // What is wrong with the layout still shows, on stderr; --strict still exits 1.
    fs_err::remove_file(blob_path(&img, &config_of(&img, "v1"))).unwrap();
    snap!(t, "quiet_gc_dangling", t.ocil().args(["gc", "-q", "--strict", "img"]));
}

#[test]
fn transfers_print_each_image_digest() {
    let t = TestDir::new();
    let img = t.multi("img");
    snap!(t, "quiet_export", t.ocil().args(["export", "-q", "img", "-o", "img.tar"]));
    snap!(t, "quiet_import", t.ocil().args(["import", "-q", "img.tar", "back"]));
    let copied = stdout(&t, &["copy", "-q", "img", "dst"]);
    let want = format!("{}\n{}\n", digest_of(&img, "v1"), digest_of(&img, "multi"));
    assert_eq!(copied, want);
    snap!(t, "quiet_copy_one", t.ocil().args(["copy", "-q", "img:v1", "dst:prod"]));
}

#[test]
fn quiet_does_not_go_with_json() {
    let t = TestDir::new();
    t.image("img");
    snap!(t, "quiet_with_json", t.ocil().args(["new", "-q", "--json", "img:v2"]));
    for args in [&["ls", "-q", "--json", "img"][..], &["fsck", "-q", "--json", "img"]] {
        let out = t.ocil().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
