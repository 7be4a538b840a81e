//! The peers read what `ocil append` and `ocil index` wrote.

use std::path::Path;

use serde_json::Value;

use crate::layout::{arg, blob_path, ocil_ok};
use crate::support::{describe, fixture, ino, require_tool, run, run_ok, src_tree};

fn json_blob(dir: &Path, digest: &str) -> Value {
    serde_json::from_slice(&fs_err::read(dir.join(blob_path(digest))).expect("read blob"))
        .expect("JSON")
}

fn tagged(dir: &Path, tag: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&fs_err::read(dir.join("index.json")).expect("index.json"))
            .expect("JSON");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag `{tag}`"))
        .clone()
}

/// The manifest and config of a tag.
fn image(dir: &Path, tag: &str) -> (Value, Value) {
    let m = json_blob(dir, tagged(dir, tag)["digest"].as_str().expect("digest"));
    let c = json_blob(dir, m["config"]["digest"].as_str().expect("config digest"));
    (m, c)
}

/// `ocil fsck --deep` exits 0 and reports no error (diff_ids were recomputed).
fn fsck_deep_clean(dir: &Path) {
    let out = ocil_ok(&["fsck", "--deep", arg(dir)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("clean: 0 errors"), "{text}");
}

/// Decompress a layer blob with the system tools and extract it with GNU tar into `to`;
/// returns the sha256 of the uncompressed tar (from sha256sum).
fn gnu_extract(blob: &Path, compression: &str, to: &Path) -> String {
    fs_err::create_dir_all(to).expect("mkdir");
    let tool = match compression {
        "gzip" => "gzip -dc",
        "zstd" => "zstd -dcq",
        _ => "cat",
    };
    let script = format!(
        "{tool} '{}' > layer.tar && sha256sum < layer.tar && tar -xpf layer.tar --no-same-owner -C '{}'",
        blob.display(),
        to.display()
    );
    let cwd = to.parent().expect("parent");
    let out = run_ok("sh", &["-c", &script], cwd);
    format!("sha256:{}", out.split_whitespace().next().expect("sha256sum output"))
}

#[test]
fn oci_images_with_appended_layers_are_read_by_umoci_skopeo_and_gnu_tar_needs_skopeo_needs_umoci_needs_zstd()
 {
    if !(require_tool("umoci") && require_tool("skopeo") && require_tool("zstd")) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let l = t.join("L");
    let src = t.join("src");
    src_tree(&src, &[7u8; 5000]);
    let want = describe(&src);
    ocil_ok(&["init", arg(&l)]);
    ocil_ok(&["new", &format!("{}:base", arg(&l))]);
    for compression in ["gzip", "none", "zstd"] {
        let tag = format!("c-{compression}");
        run_ok(
            env!("CARGO_BIN_EXE_ocil"),
            &["append", "L:base", "src", "--compress", compression, "--tag", &tag],
            t,
        );
        let (m, c) = image(&l, &tag);
        let layer = &m["layers"][0];
        let expected_type = match compression {
            "gzip" => "application/vnd.oci.image.layer.v1.tar+gzip",
            "zstd" => "application/vnd.oci.image.layer.v1.tar+zstd",
            _ => "application/vnd.oci.image.layer.v1.tar",
        };
        assert_eq!(layer["mediaType"], expected_type);
        assert_eq!(c["history"][0]["created_by"], "ocil append: directory src");
        assert_eq!(c["history"][0]["created"], "2024-01-01T00:00:00Z");

        let stat = run_ok("umoci", &["stat", "--image", &format!("L:{tag}")], t);
        assert!(stat.contains("ocil append: directory src"), "umoci stat:\n{stat}");
        let inspect: Value =
            serde_json::from_str(&run_ok("skopeo", &["inspect", &format!("oci:L:{tag}")], t))
                .expect("skopeo JSON");
        assert_eq!(inspect["Layers"], serde_json::json!([layer["digest"]]), "{inspect}");
        assert_eq!(inspect["Architecture"], "amd64");

        // GNU tar extracts the same tree, and sha256sum agrees with the diff_id.
        let blob = l.join(blob_path(layer["digest"].as_str().expect("digest")));
        let x = t.join(format!("x-{compression}"));
        let diff_id = gnu_extract(&blob, compression, &x);
        assert_eq!(c["rootfs"]["diff_ids"][0], diff_id.as_str());
        assert_eq!(describe(&x), want, "{compression}: GNU tar's tree");
        assert_eq!(ino(&x.join("app/run.sh")), ino(&x.join("app/sub/run-hardlink")));

        // umoci 0.4.7 cannot unpack zstd layers (PEERS.md); the others it must.
        if compression != "zstd" {
            let bundle = t.join(format!("bundle-{compression}"));
            run_ok(
                "umoci",
                &["unpack", "--rootless", "--image", &format!("L:{tag}"), arg(&bundle)],
                t,
            );
            let rootfs = bundle.join("rootfs");
            assert_eq!(describe(&rootfs), want, "{compression}: umoci's rootfs");
            assert_eq!(ino(&rootfs.join("app/run.sh")), ino(&rootfs.join("app/sub/run-hardlink")));
        }
    }
    fsck_deep_clean(&l);
}

#[test]
fn a_layer_on_umocis_image_keeps_the_layers_below_needs_shared_needs_skopeo_needs_umoci() {
    if !(require_tool("umoci") && require_tool("skopeo")) {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let l = t.join("U");
    if fixture("umoci-edit", &l).is_none() {
        return;
    }
    src_tree(&t.join("src"), b"x");
    run_ok(env!("CARGO_BIN_EXE_ocil"), &["append", "U:v3", "src", "--tag", "v5"], t);
    let (m, c) = image(&l, "v5");
    assert_eq!(m["layers"].as_array().expect("layers").len(), 3);
    assert_eq!(c["rootfs"]["diff_ids"].as_array().expect("diff_ids").len(), 3);
    // umoci's own config edits survive (lossless).
    assert_eq!(c["config"]["Env"], serde_json::json!(["A=B"]));
    run_ok("umoci", &["stat", "--image", "U:v5"], t);
    run_ok("umoci", &["unpack", "--rootless", "--image", "U:v5", "B"], t);
    let rootfs = t.join("B/rootfs");
    assert_eq!(
        fs_err::read_to_string(rootfs.join("etc/hello.txt")).expect("old file"),
        "hello from umoci\n"
    );
    assert_eq!(fs_err::read_to_string(rootfs.join("app/sub/secret")).expect("new"), "s3cret\n");
    let inspect: Value =
        serde_json::from_str(&run_ok("skopeo", &["inspect", "oci:U:v5"], t)).expect("JSON");
    assert_eq!(inspect["Layers"].as_array().expect("Layers").len(), 3);
    fsck_deep_clean(&l);
}

#[test]
fn docker_images_get_docker_layers_checked_with_gnu_tools_needs_shared() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let d = t.join("D");
    if fixture("skopeo-v2s2", &d).is_none() {
        return;
    }
    let src = t.join("src");
    src_tree(&src, &[1u8; 3000]);
    run_ok(env!("CARGO_BIN_EXE_ocil"), &["append", "D:v3", "src", "--tag", "v4"], t);
    let entry = tagged(&d, "v4");
    assert_eq!(entry["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    let (m, c) = image(&d, "v4");
    assert_eq!(m["mediaType"], "application/vnd.docker.distribution.manifest.v2+json");
    assert_eq!(m["config"]["mediaType"], "application/vnd.docker.container.image.v1+json");
    let layers = m["layers"].as_array().expect("layers");
    let new = layers.last().expect("a layer");
    assert_eq!(new["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
    for l in layers {
        assert_eq!(l["mediaType"], "application/vnd.docker.image.rootfs.diff.tar.gzip");
    }
    let blob = d.join(blob_path(new["digest"].as_str().expect("digest")));
    let x = t.join("x");
    let diff_id = gnu_extract(&blob, "gzip", &x);
    let diff_ids = c["rootfs"]["diff_ids"].as_array().expect("diff_ids");
    assert_eq!(diff_ids.last().expect("diff_id"), diff_id.as_str());
    assert_eq!(diff_ids.len(), layers.len());
    assert_eq!(describe(&x), describe(&src));
    // GNU tar's listing: owners 0/0, the fixed mtime, modes as packed.
    let listing = run_ok("tar", &["--numeric-owner", "-tzvf", arg(&blob)], t);
    let row = listing.lines().find(|l| l.ends_with("app/sub/secret")).expect("listed");
    assert!(row.starts_with("-rw------- 0/0 "), "{row}");
    assert!(row.contains("2024-01-01"), "{row}");
    fsck_deep_clean(&d);
}

#[test]
fn indexes_are_read_and_copied_by_skopeo_needs_skopeo() {
    if !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let ocil = env!("CARGO_BIN_EXE_ocil");
    src_tree(&t.join("src"), b"payload");
    run_ok(ocil, &["init", "L"], t);
    run_ok(ocil, &["new", "L:amd"], t);
    run_ok(ocil, &["append", "L:amd", "src"], t);
    run_ok(ocil, &["new", "--platform", "linux/arm64/v8", "L:arm"], t);
    run_ok(ocil, &["init", "O"], t);
    run_ok(ocil, &["new", "--platform", "linux/s390x", "O:s"], t);
    run_ok(ocil, &["append", "O:s", "src", "--compress", "zstd"], t);
    run_ok(ocil, &["index", "L:multi", "--add", "L:amd", "--add", "L:arm", "--add", "O:s"], t);

    let entry = tagged(&t.join("L"), "multi");
    assert_eq!(entry["mediaType"], "application/vnd.oci.image.index.v1+json");
    let digest = entry["digest"].as_str().expect("digest");
    let stored = fs_err::read(t.join("L").join(blob_path(digest))).expect("index blob");
    let raw = run("skopeo", &["inspect", "--raw", "oci:L:multi"], t);
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    assert_eq!(raw.stdout, stored, "skopeo reads the index bytes we wrote");
    let index: Value = serde_json::from_slice(&stored).expect("JSON");
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|c| {
            let p = &c["platform"];
            let mut s = format!(
                "{}/{}",
                p["os"].as_str().unwrap_or("?"),
                p["architecture"].as_str().unwrap_or("?")
            );
            if let Some(v) = p["variant"].as_str() {
                s = format!("{s}/{v}");
            }
            s
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64/v8", "linux/s390x"]);

    run_ok("skopeo", &["copy", "--all", "oci:L:multi", "oci:C:multi"], t);
    fsck_deep_clean(&t.join("C"));
    let copied = tagged(&t.join("C"), "multi");
    assert_eq!(copied["digest"], entry["digest"], "skopeo copied the index unchanged");
    // skopeo picks the image of this machine's platform out of it.
    let one: Value = serde_json::from_str(&run_ok(
        "skopeo",
        &["--override-arch", "s390x", "inspect", "oci:L:multi"],
        t,
    ))
    .expect("JSON");
    assert_eq!(one["Architecture"], "s390x");

    run_ok(ocil, &["index", "L:multi", "--rm-platform", "linux/arm64"], t);
    let raw = run_ok("skopeo", &["inspect", "--raw", "oci:L:multi"], t);
    assert!(!raw.contains("arm64"), "{raw}");
    run_ok("skopeo", &["copy", "--all", "oci:L:multi", "oci:C2:multi"], t);
    fsck_deep_clean(&t.join("L"));
    fsck_deep_clean(&t.join("C2"));
}

/// `ocil append --file`: a file at one path and a directory at another, in one layer.
/// Returns the layout's directory and the sources' root.
fn append_files(t: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let l = t.join("F");
    let src = t.join("src");
    src_tree(&src, &[9u8; 70_000]);
    fs_err::write(src.join("tool"), (0..=255u8).cycle().take(10_000).collect::<Vec<_>>())
        .expect("write");
    crate::support::set_mode(&src.join("tool"), 0o4751);
    ocil_ok(&["init", arg(&l)]);
    ocil_ok(&["new", &format!("{}:base", arg(&l))]);
    run_ok(
        env!("CARGO_BIN_EXE_ocil"),
        &[
            "append",
            "F:base",
            "--file",
            "src/tool:/usr/local/bin/tool",
            "--file",
            "src/app:opt/app/",
            "--tag",
            "f",
        ],
        t,
    );
    (l, src)
}

#[test]
fn files_at_paths_are_extracted_by_gnu_tar() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let (l, src) = append_files(t);
    let (m, c) = image(&l, "f");
    let layers = m["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1);
    let blob = l.join(blob_path(layers[0]["digest"].as_str().expect("digest")));
    // GNU tar's list: the two sources at their paths, no parent directory entries.
    let names = run_ok("tar", &["-tzf", arg(&blob)], t);
    let names: Vec<&str> = names.lines().collect();
    assert_eq!(names.first(), Some(&"opt/app/"), "{names:?}");
    assert_eq!(names.last(), Some(&"usr/local/bin/tool"), "{names:?}");
    assert!(names.iter().all(|n| n.starts_with("opt/app/") || *n == "usr/local/bin/tool"));
    // Extracted: the same bytes and modes as the sources, and sha256sum gives the diff_id.
    let x = t.join("x");
    let diff_id = gnu_extract(&blob, "gzip", &x);
    assert_eq!(c["rootfs"]["diff_ids"][0], diff_id.as_str());
    assert_eq!(
        fs_err::read(x.join("usr/local/bin/tool")).expect("tool"),
        fs_err::read(src.join("tool")).expect("src tool")
    );
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs_err::symlink_metadata(p).expect("stat").permissions().mode() & 0o7777
    };
    assert_eq!(mode(&x.join("usr/local/bin/tool")), 0o4751);
    assert_eq!(mode(&x.join("opt/app")), mode(&src.join("app")));
    assert_eq!(describe(&x.join("opt/app")), describe(&src.join("app")));
    assert_eq!(ino(&x.join("opt/app/run.sh")), ino(&x.join("opt/app/sub/run-hardlink")));
    fsck_deep_clean(&l);
}

#[test]
fn files_at_paths_are_unpacked_by_umoci_needs_umoci() {
    if !require_tool("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let (_, src) = append_files(t);
    let stat = run_ok("umoci", &["stat", "--image", "F:f"], t);
    assert!(
        stat.contains("ocil append: directory app -> /opt/app; file tool -> /usr/local/bin/tool"),
        "{stat}"
    );
    run_ok("umoci", &["unpack", "--rootless", "--image", "F:f", "B"], t);
    let rootfs = t.join("B/rootfs");
    assert_eq!(
        fs_err::read(rootfs.join("usr/local/bin/tool")).expect("tool"),
        fs_err::read(src.join("tool")).expect("src tool")
    );
    assert_eq!(describe(&rootfs.join("opt/app")), describe(&src.join("app")));
}
