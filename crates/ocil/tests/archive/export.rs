//! `ocil export`: round trips through `ocil import` (digests and tags kept, OCI and docker
//! format, several images and layouts, compressed, through a pipe), determinism, referrers,
//! a corrupt source blob, and the peers as oracles: skopeo reads every image of our archives
//! (`oci-archive:` and `docker-archive:`) and `skopeo inspect` agrees on the digests.
//! Sources are the peer-made fixtures and conformance layouts of `shared/`, copied first.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::{Out, blobs, entries, index, ocil, run, s, snapshot};
use crate::peers::{require_tool, shared_dir};

const PEER: &str = "fixtures/peer-made";
const UMOCI: &str = "fixtures/peer-made/umoci-edit/layout";
const BUILDAH: &str = "fixtures/peer-made/buildah-index/layout";
const REGCLIENT: &str = "conformance/regclient-regclient/testdata/testrepo";
const NOTATION: &str = "conformance/notaryproject-notation-go/internal/testdata/oci-layout";

/// `cp -a shared/<rel> <dst>`.
fn copy_in(shared: &Path, rel: &str, dst: &Path) -> PathBuf {
    let out = Command::new("cp").arg("-a").arg(shared.join(rel)).arg(dst).output().unwrap();
    assert!(out.status.success(), "cp {rel}: {}", String::from_utf8_lossy(&out.stderr));
    dst.to_path_buf()
}

fn ok(out: &Out, what: &str) {
    assert_eq!(
        out.code, 0,
        "{what}: exit {}\nstdout:\n{}\nstderr:\n{}",
        out.code, out.stdout, out.stderr
    );
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(fs_err::read(p).unwrap()))
}

/// Tar entry names of an (uncompressed) archive, in order.
fn tar_names(p: &Path) -> Vec<String> {
    let bytes = fs_err::read(p).unwrap();
    let mut a = tar::Archive::new(&bytes[..]);
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// One file of an (uncompressed) archive.
fn tar_file(p: &Path, name: &str) -> Option<Vec<u8>> {
    let bytes = fs_err::read(p).unwrap();
    let mut a = tar::Archive::new(&bytes[..]);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == name {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return Some(v);
        }
    }
    None
}

/// Blobs reachable from a layout's index.json, by `ocil fsck --json`'s count, and the set of
/// blob names an import of its export must hold (all of them, when the layout has no garbage).
fn reachable(layout: &Path) -> usize {
    let out = ocil(&["fsck", "--json", s(layout)]);
    out.json()["stats"]["reachable"].as_u64().unwrap_or_else(|| panic!("{}", out.stdout)) as usize
}

#[test]
fn round_trip_keeps_digests_and_tags_and_the_source_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    for rel in [UMOCI, BUILDAH, REGCLIENT, NOTATION] {
        let src = copy_in(&shared, rel, &t.join("src"));
        let before = snapshot(&src);
        let a = t.join("a.tar");
        ok(&ocil(&["export", s(&src), "-o", s(&a)]), rel);
        let dst = t.join("dst");
        ok(&ocil(&["import", s(&a), s(&dst)]), rel);
        assert_eq!(entries(&dst), entries(&src), "{rel}: index.json entries");
        // Every reachable blob, and nothing else (umoci-edit has 5 garbage blobs).
        assert_eq!(blobs(&dst).len(), reachable(&src), "{rel}");
        assert!(blobs(&dst).is_subset(&blobs(&src)), "{rel}");
        let fsck = ocil(&["fsck", s(&dst)]);
        ok(&fsck, rel);
        // The annotations (io.containerd.image.name, ...) come along.
        assert_eq!(index(&dst)["manifests"], index(&src)["manifests"], "{rel}");
        assert_eq!(snapshot(&src), before, "{rel}: the source changed");
        // Each blob once, and the documents before the layers.
        let names = tar_names(&a);
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{rel}: {names:?}");
        assert_eq!(&names[..2], ["oci-layout", "index.json"], "{rel}");
        for p in [&src, &dst] {
            fs_err::remove_dir_all(p).unwrap();
        }
    }
}

#[test]
fn export_is_deterministic_and_honours_source_date_epoch_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, UMOCI, &tmp.path().join("src"));
    let mut sums = BTreeMap::new();
    for name in ["a.tar", "b.tar", "a.tar.gz", "b.tgz", "a.tar.zst", "b.tar.zst"] {
        let f = tmp.path().join(name);
        ok(&ocil(&["export", s(&src), "-o", s(&f)]), name);
        sums.insert(name, sha256_file(&f));
    }
    assert_eq!(sums["a.tar"], sums["b.tar"]);
    assert_eq!(sums["a.tar.gz"], sums["b.tgz"]);
    assert_eq!(sums["a.tar.zst"], sums["b.tar.zst"]);
    // A copy of the layout elsewhere gives the same bytes too.
    let other = copy_in(&shared, UMOCI, &tmp.path().join("elsewhere"));
    let c = tmp.path().join("c.tar");
    ok(&ocil(&["export", s(&other), "-o", s(&c)]), "copy");
    assert_eq!(sha256_file(&c), sums["a.tar"]);
    // Headers: mtime 0 (or SOURCE_DATE_EPOCH), uid/gid 0, 0644/0755.
    let out = Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["export", s(&src), "-o", s(&tmp.path().join("e.tar"))])
        .env("SOURCE_DATE_EPOCH", "1704067200")
        .output()
        .unwrap();
    assert!(out.status.success());
    for (file, mtime) in [("a.tar", 0), ("e.tar", 1704067200)] {
        let bytes = fs_err::read(tmp.path().join(file)).unwrap();
        let mut a = tar::Archive::new(&bytes[..]);
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), mtime);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            let mode = if h.entry_type().is_dir() { 0o755 } else { 0o644 };
            assert_eq!(h.mode().unwrap(), mode);
        }
    }
}

#[test]
fn compressed_archives_by_extension_or_flag_import_to_the_same_images_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, BUILDAH, &tmp.path().join("src"));
    let cases: [(&str, &[&str], &[u8]); 6] = [
        ("x.tar.gz", &[], &[0x1f, 0x8b]),
        ("x.tgz", &[], &[0x1f, 0x8b]),
        ("x.tar.zst", &[], &[0x28, 0xb5, 0x2f, 0xfd]),
        ("y.tar", &["--compress", "zstd"], &[0x28, 0xb5, 0x2f, 0xfd]),
        ("y.tar.gz", &["--compress", "none"], b"oci-layout"),
        ("z.tar", &["--compress", "gzip"], &[0x1f, 0x8b]),
    ];
    for (name, flags, magic) in cases {
        let f = tmp.path().join(name);
        let mut args = vec!["export", s(&src), "-o", s(&f)];
        args.extend_from_slice(flags);
        ok(&ocil(&args), name);
        assert!(fs_err::read(&f).unwrap().starts_with(magic), "{name}");
        let dst = tmp.path().join(format!("dst-{name}"));
        let out = ocil(&["import", "--json", s(&f), s(&dst)]);
        ok(&out, name);
        assert_eq!(entries(&dst), entries(&src), "{name}");
        assert_eq!(blobs(&dst), blobs(&src), "{name}");
    }
}

#[test]
fn several_images_of_several_layouts_in_one_archive_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let umoci = copy_in(&shared, UMOCI, &t.join("umoci"));
    let buildah = copy_in(&shared, BUILDAH, &t.join("buildah"));
    let notation = copy_in(&shared, NOTATION, &t.join("notation"));
    let a = t.join("multi.tar");
    let out = ocil(&[
        "export",
        "--json",
        &format!("{}:v1", s(&umoci)),
        &format!("{}:v4", s(&umoci)),
        s(&buildah),
        &format!("{}:v2", s(&notation)),
        // The same image twice is written once.
        &format!("{}:v4", s(&umoci)),
        "-o",
        s(&a),
    ]);
    ok(&out, "export");
    let report = out.json();
    let want: Vec<(Option<String>, String)> = [
        entries(&umoci).into_iter().filter(|(t, _)| t.as_deref() == Some("v1")).collect::<Vec<_>>(),
        entries(&umoci).into_iter().filter(|(t, _)| t.as_deref() == Some("v4")).collect(),
        entries(&buildah),
        entries(&notation),
    ]
    .concat();
    let dst = t.join("dst");
    ok(&ocil(&["import", s(&a), s(&dst)]), "import");
    assert_eq!(entries(&dst), want);
    assert_eq!(report["images"].as_array().unwrap().len(), want.len(), "{report}");
    ok(&ocil(&["fsck", s(&dst)]), "fsck");
    // Each blob once: shared blobs of v1 and v4 are one tar entry.
    let names = tar_names(&a);
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
    assert_eq!(report["blobs"].as_u64().unwrap() as usize, blobs(&dst).len());
    // Into a layout that already holds some of it: only the tags are new.
    ok(&ocil(&["import", s(&a), s(&dst)]), "import again");
    assert_eq!(entries(&dst), want);
}

#[test]
fn one_tag_for_two_images_is_an_error_and_writes_nothing_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let umoci = copy_in(&shared, UMOCI, &tmp.path().join("umoci"));
    let other = tmp.path().join("other");
    ok(&ocil(&["init", s(&other)]), "init");
    ok(&ocil(&["new", &format!("{}:v1", s(&other))]), "new");
    let a = tmp.path().join("out/a.tar");
    fs_err::create_dir(tmp.path().join("out")).unwrap();
    let out = ocil(&["export", s(&umoci), s(&other), "-o", s(&a)]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("tag `v1` names"), "{}", out.stderr);
    assert!(fs_err::read_dir(tmp.path().join("out")).unwrap().next().is_none());
    // The same tag for the same image in two layouts is fine.
    let copy = copy_in(&shared, UMOCI, &tmp.path().join("copy"));
    ok(&ocil(&["export", s(&umoci), s(&copy), "-o", s(&a)]), "same image");
}

#[test]
fn export_streams_into_import_through_a_pipe_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, REGCLIENT, &tmp.path().join("src"));
    let dst = tmp.path().join("dst");
    for compress in ["none", "zstd"] {
        let mut export = Command::new(env!("CARGO_BIN_EXE_ocil"))
            .args(["export", s(&src), "--compress", compress, "-o", "-"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let import = Command::new(env!("CARGO_BIN_EXE_ocil"))
            .args(["import", "--force", "-", s(&dst)])
            .stdin(export.stdout.take().unwrap())
            .output()
            .unwrap();
        let status = export.wait().unwrap();
        assert!(status.success(), "export");
        assert!(import.status.success(), "import: {}", String::from_utf8_lossy(&import.stderr));
        assert_eq!(entries(&dst), entries(&src));
        assert_eq!(blobs(&dst), blobs(&src));
    }
}

/// Put a JSON document into a layout's store (not into index.json); its digest.
fn put_doc(layout: &Path, doc: &Value) -> (String, u64) {
    let bytes = serde_json::to_vec(doc).unwrap();
    let hex = hex::encode(Sha256::digest(&bytes));
    fs_err::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len() as u64)
}

fn manifest_desc(layout: &Path, tag: &str) -> Value {
    index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap()
        .clone()
}

#[test]
fn referrers_in_the_store_come_along_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, UMOCI, &tmp.path().join("src"));
    let empty = put_doc(&src, &json!({}));
    let referrer = |subject: &Value, what: &str| {
        json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": format!("application/vnd.example.{what}"),
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.0, "size": empty.1},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.0, "size": empty.1}],
            "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
        })
    };
    let v3 = manifest_desc(&src, "v3");
    let sig = put_doc(&src, &referrer(&v3, "signature"));
    let sig_desc = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sig.0, "size": sig.1});
    // A signature of the signature, and a referrer of an image that is not exported.
    let sig2 = put_doc(&src, &referrer(&sig_desc, "countersignature"));
    let other = put_doc(&src, &referrer(&manifest_desc(&src, "v1"), "sbom"));
    let hex = |d: &str| d.strip_prefix("sha256:").unwrap().to_owned();

    let a = tmp.path().join("a.tar");
    let out = ocil(&["export", "--json", &format!("{}:v3", s(&src)), "-o", s(&a)]);
    ok(&out, "export");
    assert_eq!(out.json()["referrers"], 2, "{}", out.stdout);
    let dst = tmp.path().join("dst");
    ok(&ocil(&["import", s(&a), s(&dst)]), "import");
    let got = blobs(&dst);
    assert!(got.contains(&hex(&sig.0)) && got.contains(&hex(&sig2.0)), "{got:?}");
    assert!(got.contains(&hex(&empty.0)));
    assert!(!got.contains(&hex(&other.0)));
    // They are blobs of the archive, not entries: gc of the destination keeps them.
    assert_eq!(entries(&dst).len(), 1);
    ok(&ocil(&["gc", "--prune=now", s(&dst)]), "gc");
    assert!(blobs(&dst).contains(&hex(&sig2.0)));

    let b = tmp.path().join("b.tar");
    let out =
        ocil(&["export", "--json", "--no-referrers", &format!("{}:v3", s(&src)), "-o", s(&b)]);
    ok(&out, "export --no-referrers");
    assert_eq!(out.json()["referrers"], 0);
    assert!(!tar_names(&b).contains(&format!("blobs/sha256/{}", hex(&sig.0))));
}

#[test]
fn a_corrupt_blob_aborts_naming_it_and_leaves_no_file_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, UMOCI, &tmp.path().join("src"));
    let v1: Value = {
        let d = manifest_desc(&src, "v1");
        let hex = d["digest"].as_str().unwrap().strip_prefix("sha256:").unwrap().to_owned();
        serde_json::from_slice(&fs_err::read(src.join("blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let layer = v1["layers"][0]["digest"].as_str().unwrap().to_owned();
    let path = src.join("blobs/sha256").join(layer.strip_prefix("sha256:").unwrap());
    let mut bytes = fs_err::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs_err::write(&path, &bytes).unwrap();
    let out_dir = tmp.path().join("out");
    fs_err::create_dir(&out_dir).unwrap();
    for name in ["a.tar", "a.tar.zst"] {
        let out = ocil(&["export", &format!("{}:v1", s(&src)), "-o", s(&out_dir.join(name))]);
        assert_eq!(out.code, 2, "{}", out.stderr);
        assert!(out.stderr.contains(&format!("blob `{layer}`")), "{}", out.stderr);
        assert!(out.stderr.contains("corrupt"), "{}", out.stderr);
        let left: Vec<_> = fs_err::read_dir(&out_dir).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
    // On stdout, the stream stops without an end-of-archive marker: an import on the other
    // side of the pipe fails and creates nothing.
    let mut export = Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["export", &format!("{}:v1", s(&src)), "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dst = tmp.path().join("dst");
    let import = Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["import", "-", s(&dst)])
        .stdin(export.stdout.take().unwrap())
        .output()
        .unwrap();
    assert_eq!(export.wait().unwrap().code(), Some(2));
    assert_eq!(import.status.code(), Some(2), "{}", String::from_utf8_lossy(&import.stderr));
    assert!(!dst.exists());
}

/// `(tag, digest, media type)` of every index.json entry of an exported archive.
fn archive_entries(a: &Path) -> Vec<(Option<String>, String, String)> {
    let index: Value = serde_json::from_slice(&tar_file(a, "index.json").unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["annotations"]["org.opencontainers.image.ref.name"].as_str().map(str::to_owned),
                d["digest"].as_str().unwrap().to_owned(),
                d["mediaType"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn skopeo(args: &[&str]) -> Out {
    run("skopeo", args, None)
}

/// sha256 of what `skopeo inspect --raw` prints for an image.
fn skopeo_raw_digest(image: &str) -> String {
    let out = Command::new("skopeo").args(["inspect", "--raw", image]).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect --raw {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    format!("sha256:{}", hex::encode(Sha256::digest(&out.stdout)))
}

#[test]
fn skopeo_reads_every_image_of_our_oci_archives_needs_shared_needs_skopeo() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let get = |rel: &str, name: &str| copy_in(&shared, rel, &t.join(name));
    let umoci = get(UMOCI, "umoci");
    let buildah = get(BUILDAH, "buildah");
    let reg_docker = get(&format!("{PEER}/registry-index-docker/layout"), "reg-docker");
    let roundtrip = get(&format!("{PEER}/registry-roundtrip/layout"), "roundtrip");
    let zstd = get(&format!("{PEER}/skopeo-zstd/layout"), "zstd");
    let uncompressed = get(&format!("{PEER}/skopeo-uncompressed/layout"), "uncompressed");
    let notation = get(NOTATION, "notation");
    let archives: Vec<(&str, Vec<String>)> = vec![
        ("a.tar", vec![s(&umoci).into(), s(&buildah).into(), s(&reg_docker).into()]),
        (
            "b.tar.gz",
            vec![
                format!("{}:multi-system", s(&roundtrip)),
                s(&uncompressed).into(),
                format!("{}:v2", s(&notation)),
            ],
        ),
        ("c.tar.zst", vec![s(&zstd).into()]),
    ];
    let mut checked = 0;
    for (name, sources) in &archives {
        let a = t.join(name);
        let mut args: Vec<&str> = vec!["export"];
        args.extend(sources.iter().map(String::as_str));
        args.extend(["-o", s(&a)]);
        ok(&ocil(&args), name);
        // skopeo's oci-archive: reads uncompressed tars only; give it the same archive so.
        let plain = t.join(format!("{name}.plain.tar"));
        let mut args: Vec<&str> = vec!["export", "--compress", "none"];
        args.extend(sources.iter().map(String::as_str));
        args.extend(["-o", s(&plain)]);
        ok(&ocil(&args), name);
        let dst = t.join(format!("dst-{name}"));
        ok(&ocil(&["import", s(&a), s(&dst)]), name);
        for (tag, digest, _media_type) in archive_entries(&plain) {
            let tag = tag.expect("every exported entry here is tagged");
            let image = format!("oci-archive:{}:{tag}", s(&plain));
            // skopeo inspect agrees with ocil inspect (of the imported layout) on the digest.
            assert_eq!(skopeo_raw_digest(&image), digest, "{name} {tag}");
            let inspect = ocil(&["inspect", "--json", &format!("{}:{tag}", s(&dst))]);
            ok(&inspect, "inspect");
            assert!(inspect.stdout.contains(&digest), "{name} {tag}: {}", inspect.stdout);
            // skopeo copies it, unchanged.
            let x = t.join(format!("skopeo-{name}-{tag}"));
            let out = skopeo(&[
                "copy",
                "-q",
                "--all",
                "--preserve-digests",
                &image,
                &format!("oci:{}:{tag}", s(&x)),
            ]);
            ok(&out, &format!("skopeo copy {image}"));
            assert_eq!(entries(&x), [(Some(tag.clone()), digest.clone())], "{name} {tag}");
            checked += 1;
        }
    }
    assert!(checked >= 10, "{checked}");
}

/// skopeo 1.9 looks up tags only among OCI-typed index.json entries, so a Docker-typed
/// entry is read from an archive of its own, without a tag.
#[test]
fn skopeo_reads_an_archive_of_a_docker_typed_image_needs_shared_needs_skopeo() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, &format!("{PEER}/skopeo-v2s2/layout"), &tmp.path().join("v2s2"));
    let a = tmp.path().join("v2s2.tar");
    ok(&ocil(&["export", s(&src), "-o", s(&a)]), "export");
    let digest = entries(&src)[0].1.clone();
    assert_eq!(skopeo_raw_digest(&format!("oci-archive:{}", s(&a))), digest);
}

#[test]
fn docker_format_holds_manifest_json_for_docker_load_and_the_oci_layout_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let umoci = copy_in(&shared, UMOCI, &t.join("umoci"));
    let a = t.join("d.tar");
    let out = ocil(&[
        "export",
        "--json",
        "--format",
        "docker",
        "--repo",
        "example.com/app",
        s(&umoci),
        "-o",
        s(&a),
    ]);
    ok(&out, "export");
    let manifest: Value = serde_json::from_slice(&tar_file(&a, "manifest.json").unwrap()).unwrap();
    let items = manifest.as_array().unwrap();
    // 6 tags on 5 manifests: v3 and latest are one image with two RepoTags.
    assert_eq!(items.len(), 5, "{manifest}");
    let v3 = items.iter().find(|i| i["RepoTags"][0] == "example.com/app:v3").unwrap();
    assert_eq!(v3["RepoTags"], json!(["example.com/app:v3", "example.com/app:latest"]));
    let names: BTreeSet<String> = tar_names(&a).into_iter().collect();
    for item in items {
        for p in std::iter::once(&item["Config"]).chain(item["Layers"].as_array().unwrap()) {
            assert!(names.contains(p.as_str().unwrap()), "{p} is not in the archive");
        }
    }
    // Our import reads the OCI side: the same images and tags.
    let dst = t.join("dst");
    ok(&ocil(&["import", s(&a), s(&dst)]), "import");
    assert_eq!(entries(&dst), entries(&umoci));
    // A loader that knows only manifest.json (the archive without oci-layout and
    // index.json) gets every image: same config (image ID) and layers.
    let bytes = fs_err::read(&a).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    let mut archive = tar::Archive::new(&bytes[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        if path == "oci-layout" || path == "index.json" {
            continue;
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let mut h = e.header().clone();
        builder.append_data(&mut h, &path, &data[..]).unwrap();
    }
    let docker_only = t.join("docker-only.tar");
    fs_err::write(&docker_only, builder.into_inner().unwrap()).unwrap();
    let dst2 = t.join("dst2");
    let out = ocil(&["import", "--json", s(&docker_only), s(&dst2)]);
    ok(&out, "import docker-only");
    assert_eq!(out.json()["format"], "docker-archive");
    for (tag, digest) in entries(&umoci) {
        let tag = tag.unwrap();
        let ours = super::blob_json(&umoci, &digest);
        let (_, theirs_digest) =
            entries(&dst2).into_iter().find(|(t, _)| t.as_deref() == Some(&tag)).unwrap();
        let theirs = super::blob_json(&dst2, &theirs_digest);
        assert_eq!(theirs["config"]["digest"], ours["config"]["digest"], "{tag}");
        let layers = |m: &Value| -> Vec<Value> {
            m["layers"].as_array().unwrap().iter().map(|l| l["digest"].clone()).collect()
        };
        assert_eq!(layers(&theirs), layers(&ours), "{tag}");
    }
}

#[test]
fn docker_format_requires_names_one_platform_and_no_zstd_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let umoci = copy_in(&shared, UMOCI, &t.join("umoci"));
    let buildah = copy_in(&shared, BUILDAH, &t.join("buildah"));
    let zstd = copy_in(&shared, &format!("{PEER}/skopeo-zstd/layout"), &t.join("zstd"));
    let notation = copy_in(&shared, NOTATION, &t.join("notation"));
    let a = t.join("d.tar");
    let fails = |args: &[&str], says: &str| {
        let mut all = vec!["export", "--format", "docker", "-o", s(&a)];
        all.extend_from_slice(args);
        let out = ocil(&all);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{args:?}: {}", out.stderr);
        assert!(!a.exists());
    };
    fails(&[&format!("{}:v1", s(&umoci))], "give one with --repo NAME");
    fails(&["--repo", "x", s(&buildah)], "pick one with --platform");
    fails(&["--repo", "x", "--platform", "linux/s390x", s(&buildah)], "no image for platform");
    fails(&["--repo", "x", s(&zstd)], "zstd layer");
    // The full name of io.containerd.image.name needs no --repo.
    let out = ocil(&["export", "--json", "--format", "docker", s(&notation), "-o", s(&a)]);
    ok(&out, "notation");
    assert_eq!(out.json()["docker"][0]["repo_tags"], json!(["docker.io/library/alpine:v2"]));
    // One platform of an index: manifest.json names that image; index.json keeps the index.
    let out = ocil(&[
        "export",
        "--json",
        "--format",
        "docker",
        "--repo",
        "example.com/multi",
        "--platform",
        "linux/arm64",
        s(&buildah),
        "-o",
        s(&a),
    ]);
    ok(&out, "buildah");
    let manifest: Value = serde_json::from_slice(&tar_file(&a, "manifest.json").unwrap()).unwrap();
    assert_eq!(manifest[0]["RepoTags"], json!(["example.com/multi:multi"]));
    let config_path = manifest[0]["Config"].as_str().unwrap();
    let config: Value = serde_json::from_slice(&tar_file(&a, config_path).unwrap()).unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(archive_entries(&a)[0].1, entries(&buildah)[0].1);
}

#[test]
fn skopeo_reads_every_image_of_our_docker_archives_needs_shared_needs_skopeo() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let umoci = copy_in(&shared, UMOCI, &t.join("umoci"));
    let buildah = copy_in(&shared, BUILDAH, &t.join("buildah"));
    let roundtrip =
        copy_in(&shared, &format!("{PEER}/registry-roundtrip/layout"), &t.join("roundtrip"));
    let a = t.join("d.tar");
    let out = ocil(&[
        "export",
        "--json",
        "--format",
        "docker",
        "--repo",
        "example.com/app",
        "--platform",
        "linux/amd64",
        s(&umoci),
        s(&buildah),
        &format!("{}:multi-system", s(&roundtrip)),
        "-o",
        s(&a),
    ]);
    ok(&out, "export");
    let report = out.json();
    let docker = report["docker"].as_array().unwrap();
    // buildah's linux/amd64 image and registry-roundtrip's are umoci's v3: one entry.
    assert_eq!(docker.len(), 5, "{report}");
    assert_eq!(
        docker[3]["repo_tags"],
        json!([
            "example.com/app:v3",
            "example.com/app:latest",
            "example.com/app:multi",
            "example.com/app:multi-system"
        ])
    );
    let mut checked = 0;
    for (n, image) in docker.iter().enumerate() {
        let config = image["config"].as_str().unwrap();
        let mut refs: Vec<String> = image["repo_tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| format!("docker-archive:{}:{}", s(&a), t.as_str().unwrap()))
            .collect();
        refs.push(format!("docker-archive:{}:@{n}", s(&a)));
        for r in refs {
            // skopeo builds a manifest from manifest.json: its config is ours, byte for byte.
            let raw = Command::new("skopeo").args(["inspect", "--raw", &r]).output().unwrap();
            assert!(raw.status.success(), "{r}: {}", String::from_utf8_lossy(&raw.stderr));
            let m: Value = serde_json::from_slice(&raw.stdout).unwrap();
            assert_eq!(m["config"]["digest"], config, "{r}");
            let x = t.join(format!("x{checked}"));
            ok(&skopeo(&["copy", "-q", &r, &format!("oci:{}:t", s(&x))]), &r);
            checked += 1;
        }
    }
    assert_eq!(checked, 13);
}

/// Adds an image of four 4 MiB (random, not tar) layers to `layout`, tagged `big`: enough
/// bytes for an export to take a while.
fn add_big_image(layout: &Path, seed: u64) {
    let mut x = seed;
    let mut layers = Vec::new();
    for _ in 0..4 {
        let mut bytes = vec![0u8; 4 << 20];
        for chunk in bytes.chunks_mut(8) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let hex = hex::encode(Sha256::digest(&bytes));
        fs_err::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
        layers.push(json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": format!("sha256:{hex}"),
            "size": bytes.len(),
        }));
    }
    let diff_ids: Vec<&Value> = layers.iter().map(|l| &l["digest"]).collect();
    let config = put_doc(
        layout,
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}),
    );
    let manifest = put_doc(
        layout,
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
            "layers": layers,
        }),
    );
    let mut idx = index(layout);
    idx["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest.0,
        "size": manifest.1,
        "annotations": {"org.opencontainers.image.ref.name": "big"},
    }));
    fs_err::write(layout.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
}

/// `ocil export -o FILE` killed (SIGKILL) at seeded moments between its start and the end of
/// an uninterrupted run: FILE is absent or complete (the same bytes as an uninterrupted
/// export), nothing else appears beside it, and the source is unchanged. The delay is a
/// wait on the child (polling), not a sleep the checks depend on.
#[test]
fn a_killed_export_leaves_no_file_or_a_complete_one_needs_shared() {
    use std::os::unix::process::ExitStatusExt;
    use std::time::{Duration, Instant};
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, UMOCI, &tmp.path().join("src"));
    add_big_image(&src, 7);
    let before = snapshot(&src);
    let reference = tmp.path().join("reference.tar.zst");
    let started = Instant::now();
    ok(&ocil(&["export", s(&src), "-o", s(&reference)]), "reference export");
    let full = started.elapsed();
    let want = sha256_file(&reference);
    let out_dir = tmp.path().join("out");
    fs_err::create_dir(&out_dir).unwrap();
    let target = out_dir.join("a.tar.zst");
    let mut x: u64 = 0x5eed;
    let (mut killed, mut complete) = (0, 0);
    for _ in 0..20 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = full.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64 * 1.1);
        if target.exists() {
            fs_err::remove_file(&target).unwrap();
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_ocil"))
            .args(["export", s(&src), "-o", s(&target)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + delay;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                child.kill().unwrap();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_micros(500));
        };
        assert!(
            status.success() || status.signal() == Some(9),
            "export failed on its own: {status}"
        );
        if !status.success() {
            killed += 1;
        }
        let left: Vec<String> = fs_err::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        match left.as_slice() {
            [] => assert!(!status.success(), "a finished export left no file"),
            [name] if name == "a.tar.zst" => {
                assert_eq!(sha256_file(&target), want, "a partial archive under the name");
                complete += 1;
            }
            other => panic!("left beside the archive: {other:?}"),
        }
        assert_eq!(snapshot(&src), before, "the source changed");
    }
    assert!(killed >= 5, "only {killed} of 20 runs were killed (full run {full:?})");
    println!("{killed} killed, {complete} complete archives");
}

/// While an export streams (here: stalled on a full pipe), it holds the source's lock: a
/// gc waits, and the archive read afterwards is complete.
#[test]
fn gc_waits_for_an_export_in_progress_needs_shared() {
    use std::time::{Duration, Instant};
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, UMOCI, &tmp.path().join("src"));
    add_big_image(&src, 11);
    let mut export = Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["export", s(&src), "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The export takes the lock before its first byte, and blocks on the full pipe.
    let layout = ocil_layout::Layout::open_ambient(&src).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while layout.try_lock().unwrap().is_some() {
        assert!(Instant::now() < deadline, "the export never took the lock");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut gc = Command::new(env!("CARGO_BIN_EXE_ocil"))
        .args(["gc", "--prune=now", s(&src)])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A bounded poll: the claim is only that gc has not finished while the export runs.
    for _ in 0..30 {
        assert!(gc.try_wait().unwrap().is_none(), "gc finished during the export");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut archive = Vec::new();
    export.stdout.take().unwrap().read_to_end(&mut archive).unwrap();
    assert!(export.wait().unwrap().success());
    let gc = gc.wait_with_output().unwrap();
    assert!(gc.status.success(), "{gc:?}");
    let dst = tmp.path().join("dst");
    let out = run(env!("CARGO_BIN_EXE_ocil"), &["import", "-", s(&dst)], Some(&archive));
    ok(&out, "import");
    assert_eq!(entries(&dst), entries(&src));
    assert_eq!(blobs(&dst), blobs(&src), "gc removed only the garbage, after the export");
}

/// sha512 blob names (141 bytes) do not fit ustar's name field: a PAX record carries them,
/// which GNU tar, skopeo and our import all read.
#[test]
fn sha512_layouts_export_with_pax_names() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/layouts/sha512");
    let out = Command::new("cp").arg("-a").arg(&testdata).arg(&src).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let a = tmp.path().join("a.tar");
    ok(&ocil(&["export", s(&src), "-o", s(&a)]), "export");
    let listed = Command::new("tar").arg("tf").arg(&a).output().unwrap();
    assert!(listed.status.success());
    let names: BTreeSet<String> =
        String::from_utf8_lossy(&listed.stdout).lines().map(str::to_owned).collect();
    let files: BTreeSet<String> = fs_err::read_dir(src.join("blobs/sha512"))
        .unwrap()
        .map(|e| format!("blobs/sha512/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert!(files.len() >= 3 && files.is_subset(&names), "{names:?}");
    let dst = tmp.path().join("dst");
    ok(&ocil(&["import", s(&a), s(&dst)]), "import");
    assert_eq!(entries(&dst), entries(&src));
    let imported: BTreeSet<String> = fs_err::read_dir(dst.join("blobs/sha512"))
        .unwrap()
        .map(|e| format!("blobs/sha512/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(imported, files);
}

/// Every valid layout of `shared/conformance/CASES.md` goes through export and import with
/// its `index.json` entries (annotations included) and reachable blobs intact.
#[test]
fn every_valid_conformance_layout_round_trips_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let text = fs_err::read_to_string(shared.join("conformance/CASES.md")).unwrap();
    let mut cases: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(path) = line.strip_prefix("### ") {
            cases.push((path.trim().to_owned(), String::new()));
        } else if let (Some(c), Some(kind)) = (cases.last_mut(), line.strip_prefix("- kind: ")) {
            c.1 = kind.to_owned();
        }
    }
    let layouts: Vec<&String> = cases
        .iter()
        .filter(|(p, k)| {
            (k.starts_with("**oci-layout**") || k.starts_with("**docker-save-dir+oci-layout**"))
                && k.ends_with("verdict: **valid**")
                && shared.join("conformance").join(p).is_dir()
        })
        .map(|(p, _)| p)
        .collect();
    assert!(layouts.len() >= 6, "{layouts:?}");
    let tmp = tempfile::tempdir().unwrap();
    for (i, rel) in layouts.iter().enumerate() {
        let src =
            copy_in(&shared, &format!("conformance/{rel}"), &tmp.path().join(format!("s{i}")));
        let a = tmp.path().join(format!("a{i}.tar.gz"));
        ok(&ocil(&["export", s(&src), "-o", s(&a)]), rel);
        let dst = tmp.path().join(format!("d{i}"));
        ok(&ocil(&["import", s(&a), s(&dst)]), rel);
        assert_eq!(index(&dst)["manifests"], index(&src)["manifests"], "{rel}");
        assert_eq!(blobs(&dst).len(), reachable(&src), "{rel}");
        ok(&ocil(&["fsck", s(&dst)]), rel);
    }
}

#[test]
fn a_missing_blob_is_named_and_nothing_is_written_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, UMOCI, &tmp.path().join("src"));
    let v1 = super::blob_json(&src, manifest_desc(&src, "v1")["digest"].as_str().unwrap());
    let layer = v1["layers"][0]["digest"].as_str().unwrap().to_owned();
    fs_err::remove_file(src.join("blobs/sha256").join(layer.strip_prefix("sha256:").unwrap()))
        .unwrap();
    fs_err::create_dir(tmp.path().join("out")).unwrap();
    let out = ocil(&["export", &format!("{}:v1", s(&src)), "-o", s(&tmp.path().join("out/a.tar"))]);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("is incomplete") && out.stderr.contains(&layer[7..19]),
        "{}",
        out.stderr
    );
    assert!(fs_err::read_dir(tmp.path().join("out")).unwrap().next().is_none());
}

/// `DIR@DIGEST` of a manifest that index.json does not list (a child of an index) exports
/// it as an untagged entry.
#[test]
fn a_digest_below_index_json_is_exported_untagged_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, BUILDAH, &tmp.path().join("src"));
    let multi = super::blob_json(&src, &entries(&src)[0].1);
    let child = &multi["manifests"][1];
    let digest = child["digest"].as_str().unwrap();
    let a = tmp.path().join("a.tar");
    ok(&ocil(&["export", &format!("{}@{digest}", s(&src)), "-o", s(&a)]), "export");
    let dst = tmp.path().join("dst");
    ok(&ocil(&["import", s(&a), s(&dst)]), "import");
    assert_eq!(entries(&dst), [(None, digest.to_owned())]);
    let entry = &index(&dst)["manifests"][0];
    assert_eq!(entry["mediaType"], child["mediaType"]);
    assert_eq!(entry["size"], child["size"]);
    ok(&ocil(&["fsck", s(&dst)]), "fsck");
}

/// An untagged artifact listed in index.json (a signature) stays on the OCI side of a
/// docker-format archive; manifest.json holds the images.
#[test]
fn docker_format_leaves_untagged_artifacts_to_the_oci_side_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let src = copy_in(&shared, UMOCI, &tmp.path().join("src"));
    let empty = put_doc(&src, &json!({}));
    let v3 = manifest_desc(&src, "v3");
    let sig = put_doc(
        &src,
        &json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.signature",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.0, "size": empty.1},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.0, "size": empty.1}],
            "subject": {"mediaType": v3["mediaType"], "digest": v3["digest"], "size": v3["size"]},
        }),
    );
    let mut idx = index(&src);
    idx["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": sig.0,
        "size": sig.1,
    }));
    fs_err::write(src.join("index.json"), serde_json::to_vec(&idx).unwrap()).unwrap();
    let a = tmp.path().join("d.tar");
    let out = ocil(&["export", "--format", "docker", "--repo", "x", s(&src), "-o", s(&a)]);
    ok(&out, "export");
    let manifest: Value = serde_json::from_slice(&tar_file(&a, "manifest.json").unwrap()).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 5);
    assert_eq!(archive_entries(&a).len(), 7);
    let dst = tmp.path().join("dst");
    ok(&ocil(&["import", s(&a), s(&dst)]), "import");
    assert_eq!(entries(&dst), entries(&src));
}
