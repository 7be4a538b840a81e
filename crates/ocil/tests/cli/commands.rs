//! What each command prints, and its exit code, on good layouts: built by `ocil init` and
//! `ocil new` (always available), and copied from the peer-made fixtures in `shared/`
//! (umoci's edits with garbage blobs, buildah's two-platform index).

use crate::support::{TestDir, blob_path, config_of, digest_of, read_index, snap};

#[test]
fn init() {
    let t = TestDir::new();
    snap!(t, "init_fresh", t.ocil().args(["init", "img"]));
    assert!(t.join("img/oci-layout").is_file());
    assert!(t.join("img/blobs/sha256").is_dir());
    snap!(t, "init_again", t.ocil().args(["init", "img"]));
    // An existing empty directory is fine; nested new ones are created.
    fs_err::create_dir(t.join("empty")).unwrap();
    snap!(t, "init_existing_empty_dir", t.ocil().args(["init", "empty"]));
    snap!(t, "init_nested", t.ocil().args(["init", "a/b/c"]));
    // A directory that holds only an index.json is someone's layout too.
    fs_err::create_dir(t.join("half")).unwrap();
    fs_err::write(t.join("half/index.json"), r#"{"schemaVersion":2,"manifests":[]}"#).unwrap();
    snap!(t, "init_over_index_json", t.ocil().args(["init", "half"]));
    fs_err::write(t.join("file"), "").unwrap();
    snap!(t, "init_over_a_file", t.ocil().args(["init", "file"]));
}

#[test]
fn new_tag_untag() {
    let t = TestDir::new();
    t.run(&["init", "img"]);
    snap!(t, "new", t.ocil().args(["new", "img:v1"]));
    // Same SOURCE_DATE_EPOCH, same digest: `new` is reproducible.
    snap!(t, "new_again", t.ocil().args(["new", "img:v1"]));
    snap!(t, "new_arm64", t.ocil().args(["new", "--platform", "linux/arm64/v8", "img:arm64"]));
    snap!(t, "new_created", t.ocil().args(["new", "--created", "2020-02-02T02:02:02Z", "img:old"]));
    // A tag that names another image is not moved without --force.
    let before = read_index(&t.join("img"));
    snap!(
        t,
        "new_over_a_tag",
        t.ocil().args(["new", "--created", "2021-01-01T00:00:00Z", "img:v1"])
    );
    assert_eq!(read_index(&t.join("img")), before);
    snap!(
        t,
        "new_over_a_tag_forced",
        t.ocil().args(["new", "--force", "--created", "2021-01-01T00:00:00Z", "img:old"])
    );
    snap!(t, "tag", t.ocil().args(["tag", "img:v1", "latest"]));
    let v1 = digest_of(&t.join("img"), "v1");
    snap!(t, "tag_by_digest", t.ocil().args(["tag", &format!("img@{v1}"), "stable"]));
    snap!(t, "tag_moves", t.ocil().args(["tag", "img:arm64", "latest"]));
    snap!(t, "tag_unknown_source", t.ocil().args(["tag", "img:v9", "x"]));
    let config = config_of(&t.join("img"), "v1");
    snap!(t, "tag_a_config_blob", t.ocil().args(["tag", &format!("img@{config}"), "x"]));
    snap!(t, "ls_after_tags", t.ocil().args(["ls", "img"]));
    snap!(t, "untag", t.ocil().args(["untag", "img:latest"]));
    snap!(t, "untag_again", t.ocil().args(["untag", "img:latest"]));
    snap!(t, "untag_needs_a_tag", t.ocil().args(["untag", &format!("img@{v1}")]));
    snap!(t, "ls_after_untag", t.ocil().args(["ls", "img"]));
    // Untagging leaves the blobs for gc.
    assert!(blob_path(&t.join("img"), &v1).is_file());
    let index = read_index(&t.join("img"));
    assert_eq!(index["manifests"].as_array().unwrap().len(), 4, "{index}");
}

#[test]
fn ls() {
    let t = TestDir::new();
    t.run(&["init", "empty"]);
    snap!(t, "ls_empty", t.ocil().args(["ls", "empty"]));
    t.multi("img");
    snap!(t, "ls_built", t.ocil().args(["ls", "img"]));
    snap!(t, "ls_built_json", t.ocil().args(["ls", "--json", "img"]));
}

#[test]
fn ls_counts_platforms_past_a_width() {
    let t = TestDir::new();
    t.run(&["init", "img"]);
    let arches = ["amd64", "arm64", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"];
    let mut args = vec!["index".to_owned(), "img:all".to_owned()];
    for a in arches {
        t.run(&["new", "--platform", &format!("linux/{a}"), &format!("img:{a}")]);
        args.extend(["--add".to_owned(), format!("img:{a}")]);
    }
    t.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    snap!(t, "ls_many_platforms", t.ocil().args(["ls", "img"]));
    // --json has them all.
    let out = t.run(&["ls", "--json", "img"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let all = rows.as_array().unwrap().iter().find(|r| r["names"][0] == "all").unwrap();
    assert_eq!(all["platforms"].as_array().unwrap().len(), arches.len());
}

#[test]
fn ls_peer_made_needs_shared() {
    let t = TestDir::new();
    let Some(_) = t.fixture("umoci-edit") else { return };
    let Some(_) = t.fixture("buildah-index") else { return };
    snap!(t, "ls_umoci", t.ocil().args(["ls", "umoci-edit"]));
    snap!(t, "ls_umoci_json", t.ocil().args(["ls", "--json", "umoci-edit"]));
    snap!(t, "ls_buildah_index", t.ocil().args(["ls", "buildah-index"]));
}

#[test]
fn inspect() {
    let t = TestDir::new();
    let img = t.multi("img");
    snap!(t, "inspect_tag", t.ocil().args(["inspect", "img:v1"]));
    let v1 = digest_of(&img, "v1");
    snap!(t, "inspect_digest", t.ocil().args(["inspect", &format!("img@{v1}")]));
    snap!(t, "inspect_index", t.ocil().args(["inspect", "img:multi"]));
    snap!(
        t,
        "inspect_index_platform",
        t.ocil().args(["inspect", "--platform", "linux/arm64", "img:multi"])
    );
    snap!(
        t,
        "inspect_index_unknown_platform",
        t.ocil().args(["inspect", "--platform", "windows/amd64", "img:multi"])
    );
    snap!(
        t,
        "inspect_image_other_platform",
        t.ocil().args(["inspect", "--platform", "linux/arm64", "img:v1"])
    );
    snap!(t, "inspect_raw", t.ocil().args(["inspect", "--raw", "img:v1"]));
    snap!(t, "inspect_raw_index", t.ocil().args(["inspect", "--raw", "img:multi"]));
    snap!(t, "inspect_json", t.ocil().args(["inspect", "--json", "img:v1"]));
    snap!(t, "inspect_index_json", t.ocil().args(["inspect", "--json", "img:multi"]));
    let config = config_of(&img, "v1");
    snap!(t, "inspect_config_blob", t.ocil().args(["inspect", &format!("img@{config}")]));
    snap!(t, "inspect_unknown_tag", t.ocil().args(["inspect", "img:v9"]));
    snap!(t, "inspect_dir_with_two_entries", t.ocil().args(["inspect", "img"]));
    t.run(&["init", "empty"]);
    snap!(t, "inspect_empty_dir", t.ocil().args(["inspect", "empty"]));
    t.image("single");
    snap!(t, "inspect_dir_with_one_entry", t.ocil().args(["inspect", "single"]));
}

#[test]
fn inspect_peer_made_needs_shared() {
    let t = TestDir::new();
    let Some(_) = t.fixture("umoci-edit") else { return };
    let Some(_) = t.fixture("buildah-index") else { return };
    snap!(t, "inspect_umoci_v3", t.ocil().args(["inspect", "umoci-edit:v3"]));
    snap!(t, "inspect_buildah_index", t.ocil().args(["inspect", "buildah-index"]));
    snap!(
        t,
        "inspect_buildah_index_arm64",
        t.ocil().args(["inspect", "--platform", "linux/arm64", "buildah-index:multi"])
    );
}

#[test]
fn cat() {
    let t = TestDir::new();
    let img = t.image("img");
    let config = config_of(&img, "v1");
    snap!(t, "cat_config", t.ocil().args(["cat", &format!("img@{config}")]));
    snap!(t, "cat_tag", t.ocil().args(["cat", "img:v1"]));
    // The bytes are exactly the blob's.
    let out = t.run(&["cat", &format!("img@{config}")]);
    assert_eq!(out.stdout, fs_err::read(blob_path(&img, &config)).unwrap());
    let absent = crate::support::sha256(b"absent");
    snap!(t, "cat_absent_blob", t.ocil().args(["cat", &format!("img@{absent}")]));
}

#[test]
fn cat_refuses_a_binary_blob_on_a_terminal_needs_script() {
    if !crate::peers::require_tool("script") {
        return;
    }
    let t = TestDir::new();
    t.image("img");
    fs_err::create_dir_all(t.join("rootfs")).unwrap();
    fs_err::write(t.join("rootfs/hello.txt"), "hello\n").unwrap();
    t.run(&["append", "img:v1", "rootfs", "--tag", "layered", "--compress", "gzip"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&t.run(&["cat", "img:layered"]).stdout).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let under_pty = |what: &str| {
        let cmd = format!("{} cat img{what}", env!("CARGO_BIN_EXE_ocil"));
        let out = std::process::Command::new("script")
            .current_dir(t.path())
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .expect("`script` (util-linux) runs");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"))
    };
    let (code, shown) = under_pty(&format!("@{layer}"));
    assert_eq!(code, Some(2), "{shown}");
    assert_eq!(
        shown,
        format!(
            "error: refusing to write binary blob `{layer}` to a terminal: redirect stdout (`ocil cat ... > FILE`)\n"
        )
    );
    // A document is text: shown.
    let (code, shown) = under_pty(":layered");
    assert_eq!(code, Some(0), "{shown}");
    assert!(shown.starts_with('{'), "{shown}");
}

#[test]
fn short_digests_as_ls_prints_them() {
    let t = TestDir::new();
    let img = t.image("img");
    let v1 = digest_of(&img, "v1");
    let short = &v1[..19]; // sha256: and 12 digits, as `ocil ls` shows it.
    snap!(t, "ls_no_trunc", t.ocil().args(["ls", "--no-trunc", "img"]));
    let by_short = t.run(&["inspect", "--json", &format!("img@{short}")]).stdout;
    let by_full = t.run(&["inspect", "--json", &format!("img@{v1}")]).stdout;
    assert_eq!(by_short, by_full);
    // In an archive read in place too.
    t.run(&["export", "img", "-o", "img.tar"]);
    let in_archive = t.run(&["inspect", "--json", &format!("img.tar@{short}")]).stdout;
    assert_eq!(in_archive, by_full);
    snap!(t, "short_digest_unknown", t.ocil().args(["inspect", "img@sha256:0000000000"]));
}

#[test]
fn full_names_share_a_tag_across_repositories() {
    let t = TestDir::new();
    t.image("img");
    t.run(&["new", "--platform", "linux/arm64", "img:arm"]);
    snap!(t, "tag_full_name_a", t.ocil().args(["tag", "img:v1", "example.com/a:latest"]));
    snap!(t, "tag_full_name_b", t.ocil().args(["tag", "img:arm", "example.com/b:latest"]));
    snap!(t, "ls_full_names", t.ocil().args(["ls", "img"]));
    snap!(t, "ls_quiet_full_names", t.ocil().args(["ls", "-q", "img"]));
    snap!(t, "inspect_ambiguous_tag", t.ocil().args(["inspect", "img:latest"]));
    snap!(t, "untag_ambiguous_tag", t.ocil().args(["untag", "img:latest"]));
    snap!(t, "rm_ambiguous_tag", t.ocil().args(["rm", "img:latest"]));
    snap!(t, "untag_full_name", t.ocil().args(["untag", "--json", "img:example.com/b:latest"]));
    // Now `latest` is one image's.
    let out = t.run(&["inspect", "--json", "img:latest"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["digest"], digest_of(&t.join("img"), "v1"));
    // Moving a full name: JSON says where it was.
    snap!(
        t,
        "tag_full_name_moves_json",
        t.ocil().args(["tag", "--json", "img:arm", "example.com/a:latest"])
    );
}

#[test]
fn inspect_config_raw_and_corrupt() {
    let t = TestDir::new();
    let img = t.image("img");
    let config = config_of(&img, "v1");
    // --config: the config's exact bytes.
    let out = t.run(&["inspect", "--config", "img:v1"]);
    assert_eq!(out.stdout, fs_err::read(blob_path(&img, &config)).unwrap());
    // A corrupt config: everything else is shown, the config is named, exit 1.
    let path = blob_path(&img, &config);
    let mut bytes = fs_err::read(&path).unwrap();
    bytes[0] = b' ';
    fs_err::write(&path, &bytes).unwrap();
    snap!(t, "inspect_corrupt_config", t.ocil().args(["inspect", "img:v1"]));
}

#[test]
fn fsck() {
    let t = TestDir::new();
    t.multi("img");
    snap!(t, "fsck_clean", t.ocil().args(["fsck", "img"]));
    snap!(t, "fsck_clean_json", t.ocil().args(["fsck", "--json", "img"]));
    snap!(t, "fsck_clean_deep", t.ocil().args(["fsck", "--deep", "img"]));
}

#[test]
fn fsck_peer_made_needs_shared() {
    let t = TestDir::new();
    let Some(_) = t.fixture("umoci-edit") else { return };
    let Some(buildah) = t.fixture("buildah-index") else { return };
    snap!(t, "fsck_umoci", t.ocil().args(["fsck", "umoci-edit"]));
    snap!(t, "fsck_umoci_quiet", t.ocil().args(["fsck", "-q", "umoci-edit"]));
    snap!(t, "fsck_buildah_deep", t.ocil().args(["fsck", "--deep", "buildah-index"]));
    // Drop one layer: an error, or a warning with --allow-missing.
    let layer = "sha256:83ba9546a6676914b187e195816da1755c3beb2744b7f20a2edfcb104b36f7f7";
    fs_err::remove_file(blob_path(&buildah, layer)).unwrap();
    snap!(t, "fsck_missing_blob", t.ocil().args(["fsck", "buildah-index"]));
    snap!(t, "fsck_missing_blob_json", t.ocil().args(["fsck", "--json", "buildah-index"]));
    snap!(
        t,
        "fsck_missing_blob_allowed",
        t.ocil().args(["fsck", "--allow-missing", "buildah-index"])
    );
}

#[test]
fn fsck_problems() {
    let t = TestDir::new();
    let img = t.multi("img");
    // Damage: a config with other bytes, a stray file, and a leftover temp file.
    let config = config_of(&img, "v1");
    fs_err::write(blob_path(&img, &config), "{}").unwrap();
    fs_err::write(img.join("blobs/sha256/notes.txt"), "hi").unwrap();
    fs_err::write(img.join("blobs/sha256/.ocil-tmp-blob-1-2-3"), "").unwrap();
    snap!(t, "fsck_problems", t.ocil().args(["fsck", "img"]));
    snap!(t, "fsck_problems_json", t.ocil().args(["fsck", "--json", "img"]));
    snap!(t, "fsck_problems_quiet", t.ocil().args(["fsck", "--quiet", "img"]));
}

#[test]
fn gc() {
    let t = TestDir::new();
    let img = t.multi("img");
    // Two unreferenced blobs: an untagged image's manifest and config.
    t.run(&["new", "img:scratch"]);
    t.run(&["new", "--created", "2020-01-01T00:00:00Z", "img:old"]);
    t.run(&["untag", "img:old"]);
    snap!(t, "gc_dry_run_grace", t.ocil().args(["gc", "--dry-run", "img"]));
    snap!(t, "gc_dry_run", t.ocil().args(["gc", "--dry-run", "--prune=now", "img"]));
    snap!(t, "gc_dry_run_json", t.ocil().args(["gc", "-n", "--json", "--prune=now", "img"]));
    let blobs_before = fs_err::read_dir(img.join("blobs/sha256")).unwrap().count();
    snap!(t, "gc_prune_now", t.ocil().args(["gc", "--prune=now", "img"]));
    let blobs_after = fs_err::read_dir(img.join("blobs/sha256")).unwrap().count();
    assert_eq!(blobs_before - blobs_after, 2);
    // A second gc removes nothing, and the layout stays clean.
    snap!(t, "gc_again_json", t.ocil().args(["gc", "--json", "--prune=now", "img"]));
    t.run(&["fsck", "img"]);
    // --verbose adds the phase times on stderr (they differ on every run: matched, not
    // snapshotted), and changes nothing on stdout.
    let out = t.ocil().args(["gc", "-v", "--prune=now", "img"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let fields: Vec<&str> = stderr
        .strip_prefix("note: phases: walk ")
        .and_then(|r| r.strip_suffix("s\n"))
        .map(|r| {
            r.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .filter(|f| f.contains('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        stderr.contains("(listing blobs/ beside it: ") && stderr.contains(", sweep "),
        "{stderr}"
    );
    assert_eq!(fields.len(), 4, "four times: {stderr}");
    assert!(fields.iter().all(|f| f.parse::<f64>().is_ok()), "{stderr}");
    assert!(out.status.success(), "{stderr}");
    let quiet = t.ocil().args(["gc", "--prune=now", "img"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&quiet.stdout));
}

#[test]
fn gc_peer_made_needs_shared() {
    let t = TestDir::new();
    let Some(_) = t.fixture("umoci-edit") else { return };
    snap!(t, "gc_umoci_dry_run", t.ocil().args(["gc", "--dry-run", "--prune=now", "umoci-edit"]));
    snap!(t, "gc_umoci_json", t.ocil().args(["gc", "--json", "--prune=now", "umoci-edit"]));
    t.run(&["fsck", "umoci-edit"]);
}

#[test]
fn gc_strict_with_a_dangling_blob() {
    let t = TestDir::new();
    let img = t.image("img");
    let config = config_of(&img, "v1");
    fs_err::remove_file(blob_path(&img, &config)).unwrap();
    snap!(t, "gc_dangling", t.ocil().args(["gc", "--prune=now", "img"]));
    snap!(t, "gc_strict_dangling", t.ocil().args(["gc", "--strict", "--prune=now", "img"]));
    snap!(t, "gc_strict_dangling_json", t.ocil().args(["gc", "--strict", "--json", "img"]));
    // The manifest that names the missing config stays.
    assert!(blob_path(&img, &digest_of(&img, "v1")).is_file());
}
