//! `--json` of the commands that change a layout (`init`, `rm`, `config`, `annotate`,
//! `append`, `index`): what was done, as snapshots, each digest checked against what
//! `index.json` says afterwards; and an error under `--json`.

use serde_json::Value;

use crate::support::{TestDir, digest_of, read_index, snap};

/// Run a command that must succeed, and parse its stdout as JSON.
fn json_of(t: &TestDir, args: &[&str]) -> Value {
    serde_json::from_slice(&t.run(args).stdout).expect("stdout is JSON")
}

#[test]
fn init_json() {
    let t = TestDir::new();
    snap!(t, "json_init", t.ocil().args(["init", "--json", "img"]));
    assert!(t.join("img/oci-layout").is_file());
}

#[test]
fn config_and_annotate_json() {
    let t = TestDir::new();
    let img = t.multi("img");
    let v1 = digest_of(&img, "v1");
    snap!(t, "json_config", t.ocil().args(["config", "--json", "img:v1", "--env", "A=1"]));
    let after = digest_of(&img, "v1");
    assert_ne!(after, v1);
    let v = json_of(&t, &["config", "--json", "img:v1", "--env", "A=1", "--tag", "v2"]);
    assert_eq!(v["before"], after);
    assert_eq!(v["after"], digest_of(&img, "v2"));
    assert_eq!(v["tag"], "v2");
    // An index: one image of it, and the index entry itself.
    let multi = digest_of(&img, "multi");
    let v =
        json_of(&t, &["config", "--json", "img:multi", "--platform", "linux/arm64", "--user", "1"]);
    assert_eq!(v["before"], multi);
    assert_eq!(v["after"], digest_of(&img, "multi"));
    assert_eq!(v["images"].as_array().unwrap().len(), 1);
    assert_eq!(v["images"][0]["platform"], "linux/arm64");

    snap!(t, "json_annotate_manifest", t.ocil().args(["annotate", "--json", "img:v1", "a=b"]));
    let v = json_of(&t, &["annotate", "--json", "img:multi", "k=v"]);
    assert_eq!((&v["on"], &v["after"]), (&"index".into(), &digest_of(&img, "multi").into()));
    snap!(
        t,
        "json_annotate_entry",
        t.ocil().args(["annotate", "--json", "--on", "entry", "img:v1", "x=y"])
    );
}

#[test]
fn append_json() {
    let t = TestDir::new();
    let img = t.image("img");
    fs_err::create_dir_all(t.join("src")).unwrap();
    fs_err::write(t.join("src/hello.txt"), "hello\n").unwrap();
    snap!(t, "json_append", t.ocil().args(["append", "--json", "img:v1", "src", "--tag", "v2"]));
    // The manifest's bytes, as `cat` gives them.
    let manifest: Value = serde_json::from_slice(&t.run(&["cat", "img:v2"]).stdout).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let out = json_of(&t, &["append", "--json", "img:v1", "src", "--tag", "v3"]);
    assert_eq!(out["layers"][0]["digest"], layers[0]["digest"]);
    assert_eq!(out["after"], digest_of(&img, "v3"));
}

#[test]
fn index_json() {
    let t = TestDir::new();
    let img = t.image("img");
    t.run(&["new", "--platform", "linux/arm64", "img:arm"]);
    snap!(
        t,
        "json_index_create",
        t.ocil().args(["index", "--json", "img:multi", "--add", "img:v1", "--add", "img:arm"])
    );
    let before = digest_of(&img, "multi");
    let v = json_of(&t, &["index", "--json", "img:multi", "--rm-platform", "linux/arm64"]);
    assert_eq!(v["before"], before);
    assert_eq!(v["after"], digest_of(&img, "multi"));
    assert_eq!(v["removed"][0]["digest"], digest_of(&img, "arm"));
    assert_eq!(v["created"], false);
}

#[test]
fn rm_json() {
    let t = TestDir::new();
    let img = t.image("img");
    t.run(&["tag", "img:v1", "v2"]);
    let v1 = digest_of(&img, "v1");
    snap!(t, "json_rm", t.ocil().args(["rm", "--json", "img:v2"]));
    // By digest: every entry with it; --gc: the collection, as `ocil gc --json` gives it.
    t.run(&["new", "--created", "2022-02-02T00:00:00Z", "img:other"]);
    snap!(
        t,
        "json_rm_digest_gc",
        t.ocil().args(["rm", "--json", "--gc", "--prune=now", &format!("img@{v1}")])
    );
    let left: Vec<Value> = read_index(&img)["manifests"].as_array().unwrap().clone();
    assert_eq!(left.len(), 1);
}

#[test]
fn an_edit_error_under_json_is_json() {
    let t = TestDir::new();
    t.image("img");
    snap!(
        t,
        "json_error_config_unknown_tag",
        t.ocil().args(["config", "--json", "img:v9", "--env", "A=1"])
    );
    // Each command's error is JSON under --json.
    for args in [
        &["init", "--json", "img"][..],
        &["rm", "--json", "img:v9"],
        &["annotate", "--json", "img:v9", "a=b"],
        &["append", "--json", "img:v9", "nope"],
        &["index", "--json", "img:v1", "--add", "img:v1"],
    ] {
        let out = t.ocil().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let v: Value = serde_json::from_slice(&out.stdout).expect("the error is JSON");
        assert!(v["error"]["message"].is_string(), "{args:?}: {v}");
    }
}
