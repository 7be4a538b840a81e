//! Peers as oracles for `ocil copy` and `ocil convert`.

use crate::crash_harness::Rng;
use crate::support::{at, build, media_types, ocil, require_tool, run, tags};

/// skopeo and umoci read our copies, and `skopeo copy` between layouts gives the same
/// digests (manifests and blobs) as `ocil copy`.
#[test]
fn copy_matches_skopeo_and_peers_read_it_needs_skopeo_needs_umoci() {
    if !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, 3, 4096, &mut Rng(7));
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    for tag in ["i0", "i2"] {
        ocil(["copy", &at(&src, tag), &at(&ours, tag)]);
        let s = run(
            "skopeo",
            ["copy", "-q", &format!("oci:{}", at(&src, tag)), &format!("oci:{}", at(&theirs, tag))],
        );
        assert!(s.ok, "skopeo copy: {}", s.stderr);
        let inspect = run("skopeo", ["inspect", &format!("oci:{}", at(&ours, tag))]);
        assert!(inspect.ok, "skopeo inspect of our copy: {}", inspect.stderr);
        let v: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        assert_eq!(v["Digest"].as_str(), tags(&src).get(tag).map(String::as_str));
        let stat = run("umoci", ["stat", "--image", &at(&ours, tag)]);
        assert!(stat.ok, "umoci stat of our copy: {}", stat.stderr);
    }
    assert_eq!(tags(&ours), tags(&theirs));
    let blobs = |d: &std::path::Path| {
        let mut v: Vec<String> = fs_err::read_dir(d.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(blobs(&ours), blobs(&theirs));
    let fsck = ocil(["fsck".as_ref(), ours.as_os_str()]);
    assert!(fsck.stdout.contains("clean: 0 errors"), "{}", fsck.stdout);
}

/// `skopeo copy --format v2s2` as the oracle for the Docker media types; skopeo reads what
/// `ocil convert --to oci` writes (back from Docker, and recompressed to zstd).
///
/// skopeo 1.9 cannot look up an `index.json` entry of a Docker media type by tag in an OCI
/// layout ("no descriptor found", also for what its own `--format v2s2` copy wrote), so the
/// Docker side is compared on the documents, not through `skopeo inspect`.
#[test]
fn convert_matches_skopeo_needs_skopeo() {
    if !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    build(&src, 1, 4096, &mut Rng(11));
    let theirs = tmp.path().join("theirs");
    let s = run(
        "skopeo",
        [
            "copy",
            "-q",
            "--format",
            "v2s2",
            &format!("oci:{}", at(&src, "i0")),
            &format!("oci:{}", at(&theirs, "i0")),
        ],
    );
    assert!(s.ok, "skopeo copy --format v2s2: {}", s.stderr);
    ocil(["convert", &at(&src, "i0"), "--to", "docker", "--tag", "d"]);
    let ours = tags(&src)["d"].clone();
    assert_eq!(media_types(&src, &ours), media_types(&theirs, &tags(&theirs)["i0"]));
    // Same config and layers: only the media types changed.
    let a = crate::support::doc(&src, &ours);
    let b = crate::support::doc(&theirs, &tags(&theirs)["i0"]);
    assert_eq!(a["config"]["digest"], b["config"]["digest"]);
    assert_eq!(
        a["layers"],
        serde_json::json!(b["layers"].as_array().unwrap().iter().map(|l| {
        serde_json::json!({"mediaType": l["mediaType"], "digest": l["digest"], "size": l["size"]})
    }).collect::<Vec<_>>())
    );

    // Back to OCI: skopeo reads it, and it is the original image.
    ocil(["convert", &at(&src, "d"), "--to", "oci", "--tag", "o"]);
    assert_eq!(tags(&src)["o"], tags(&src)["i0"]);
    let inspect = run("skopeo", ["inspect", &format!("oci:{}", at(&src, "o"))]);
    assert!(inspect.ok, "skopeo inspect: {}", inspect.stderr);

    // zstd: skopeo's own zstd copy picks the same layer media type; skopeo reads ours.
    ocil(["convert", &at(&src, "i0"), "--to", "oci", "--compress", "zstd", "--tag", "z"]);
    let zs = tmp.path().join("zs");
    let s = run(
        "skopeo",
        [
            "copy",
            "-q",
            "--dest-compress-format",
            "zstd",
            "--dest-compress",
            &format!("oci:{}", at(&src, "i0")),
            &format!("oci:{}", at(&zs, "i0")),
        ],
    );
    assert!(s.ok, "skopeo copy zstd: {}", s.stderr);
    assert_eq!(media_types(&src, &tags(&src)["z"])[2..], media_types(&zs, &tags(&zs)["i0"])[2..]);
    let inspect = run("skopeo", ["inspect", &format!("oci:{}", at(&src, "z"))]);
    assert!(inspect.ok, "skopeo inspect of the zstd image: {}", inspect.stderr);
    // umoci unpacks nothing zstd (0.4.7), so `fsck --deep` is the check of the layers.
    let fsck = ocil(["fsck".as_ref(), "--deep".as_ref(), src.as_os_str()]);
    assert!(fsck.stdout.contains("clean: 0 errors"), "{}", fsck.stdout);
}

/// The shape of a tagged index: its entry's and own media types, then per child: the
/// descriptor's media type, platform, the manifest's own `mediaType` (when
/// `with_own_types`), config media type and digest, and the layers' media types and digests.
fn index_shape(layout: &std::path::Path, tag: &str, with_own_types: bool) -> Vec<String> {
    use crate::support::doc;
    let entry = crate::support::index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()
        .clone();
    let digest = entry["digest"].as_str().unwrap();
    let index = doc(layout, digest);
    let mut out = vec![entry["mediaType"].to_string(), index["mediaType"].to_string()];
    for child in index["manifests"].as_array().unwrap() {
        let m = doc(layout, child["digest"].as_str().unwrap());
        out.push(format!("{} {}", child["mediaType"], child["platform"]));
        if with_own_types {
            out.push(m["mediaType"].to_string());
        }
        out.push(format!("{} {}", m["config"]["mediaType"], m["config"]["digest"]));
        for l in m["layers"].as_array().unwrap() {
            out.push(format!("{} {}", l["mediaType"], l["digest"]));
        }
    }
    out
}

/// buildah pushed one two-platform list as OCI (`buildah-index`) and as v2s2
/// (`buildah-index-docker`): converting either to the other's family gives the other's
/// media types, configs and layers. (buildah's OCI manifests omit their own `mediaType`;
/// ours keep the member they had as Docker, so that one is compared only towards Docker.)
#[test]
fn convert_matches_buildah_needs_shared() {
    let Some(shared) = crate::support::shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    let docker = tmp.path().join("docker");
    let peer = shared.join("fixtures/peer-made");
    crate::support::copy_tree(&peer.join("buildah-index/layout"), &oci);
    crate::support::copy_tree(&peer.join("buildah-index-docker/layout"), &docker);
    ocil(["convert", &at(&oci, "multi"), "--to", "docker", "--tag", "d"]);
    assert_eq!(index_shape(&oci, "d", true), index_shape(&docker, "multi", true));
    ocil(["convert", &at(&docker, "multi"), "--to", "oci", "--tag", "o"]);
    assert_eq!(index_shape(&docker, "o", false), index_shape(&oci, "multi", false));
    for layout in [&oci, &docker] {
        let fsck = ocil(["fsck".as_ref(), "--deep".as_ref(), layout.as_os_str()]);
        assert!(fsck.stdout.contains("clean: 0 errors"), "{}", fsck.stdout);
    }
}
