//! docker-save archives whose layer files are compressed, as `docker load` accepts them
//! (its layer decompression sniffs gzip, bzip2, xz and zstd), built from skopeo's peer-made
//! docker archive with the system `xz`, `bzip2` and `zstd` as the encoders:
//!
//! - xz and bzip2 layers, which no media type names, are stored as the plain tars they hold:
//!   each blob is exactly what `xz -dc` / `bzip2 -dc` gives, its digest is the config's
//!   diff_id, the manifest types it as a plain tar, and the images are those of the
//!   uncompressed archive; the same in place (`ls`, `inspect`, `cat`, `copy` of the archive);
//! - gzip and zstd layers keep their bytes and get their media types;
//! - a Docker daemon loads the xz archive and our docker export of its import to one image ID.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{blobs, index, ocil, run, s};
use crate::peers::{docker_daemon, require_tool, shared_dir};

/// skopeo's docker archive: two uncompressed layers, tagged example.com/app:{v1,latest}.
fn original(shared: &Path) -> Vec<u8> {
    fs_err::read(shared.join("fixtures/peer-made/skopeo-docker-archive/app.tar")).unwrap()
}

/// `tool -c` (or `tool -dc`) over `bytes`, the system's encoder or decoder.
fn tool(program: &str, args: &[&str], bytes: &[u8]) -> Vec<u8> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success(), "`{program} {args:?}` failed");
    out.stdout
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// What the archive's `manifest.json` and config say: the layer entries, and the diff_ids.
struct Facts {
    layers: Vec<String>,
    diff_ids: Vec<String>,
}

/// Every entry of a tar: header and data.
fn entries(archive: &[u8]) -> Vec<(tar::Header, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (e.header().clone(), data)
        })
        .collect()
}

fn facts(archive: &[u8]) -> Facts {
    let all = entries(archive);
    let file = |name: &str| -> Vec<u8> {
        all.iter()
            .find(|(h, _)| h.path().unwrap().to_str() == Some(name))
            .unwrap_or_else(|| panic!("no `{name}` in the archive"))
            .1
            .clone()
    };
    let manifest: Value = serde_json::from_slice(&file("manifest.json")).unwrap();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
    };
    let config: Value =
        serde_json::from_slice(&file(manifest[0]["Config"].as_str().unwrap())).unwrap();
    Facts {
        layers: strings(&manifest[0]["Layers"]),
        diff_ids: strings(&config["rootfs"]["diff_ids"]),
    }
}

/// The archive with layer `n`'s bytes replaced by `layer(n, bytes)`, and `RepoTags`
/// replaced when given; every other entry (links included) as it was.
fn rewritten(
    archive: &[u8],
    layer: &dyn Fn(usize, &[u8]) -> Vec<u8>,
    repo_tags: Option<&[&str]>,
) -> Vec<u8> {
    let f = facts(archive);
    let mut b = tar::Builder::new(Vec::new());
    for (mut header, data) in entries(archive) {
        let name = header.path().unwrap().to_str().unwrap().to_owned();
        let data = if let Some(n) = f.layers.iter().position(|l| *l == name) {
            layer(n, &data)
        } else if name == "manifest.json"
            && let Some(tags) = repo_tags
        {
            let mut m: Value = serde_json::from_slice(&data).unwrap();
            m[0]["RepoTags"] = serde_json::json!(tags);
            serde_json::to_vec(&m).unwrap()
        } else {
            data
        };
        header.set_size(data.len() as u64);
        header.set_cksum();
        b.append(&header, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

/// The bytes of a blob of `layout`.
fn blob(layout: &Path, digest: &str) -> Vec<u8> {
    fs_err::read(layout.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap())).unwrap()
}

/// The layers of the manifest `DIR:tag` names: (mediaType, digest).
fn manifest_layers(layout: &Path, tag: &str) -> Vec<(String, String)> {
    let idx = index(layout);
    let entry = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no `{tag}` in {}", layout.display()));
    let manifest: Value =
        serde_json::from_slice(&blob(layout, entry["digest"].as_str().unwrap())).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (l["mediaType"].as_str().unwrap().to_owned(), l["digest"].as_str().unwrap().to_owned())
        })
        .collect()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs_err::write(&path, bytes).unwrap();
    path
}

#[test]
fn xz_and_bzip2_layers_are_stored_as_the_plain_tars_they_hold_needs_shared_needs_xz_needs_bzip2() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("xz") || !require_tool("bzip2") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let plain_archive = original(&shared);
    let want = facts(&plain_archive);
    assert_eq!(want.layers.len(), 2, "the fixture has two layers");
    let plain = root.join("plain");
    assert_eq!(ocil(&["import", s(&write(root, "plain.tar", &plain_archive)), s(&plain)]).code, 0);

    for (name, tools) in
        [("xz", ["xz", "xz"]), ("bzip2", ["bzip2", "bzip2"]), ("mixed", ["xz", "bzip2"])]
    {
        let packed = rewritten(&plain_archive, &|n, bytes| tool(tools[n], &["-c"], bytes), None);
        let file = write(root, &format!("{name}.tar"), &packed);
        let f = s(&file);
        let layer_files: Vec<Vec<u8>> = {
            let all = entries(&packed);
            want.layers
                .iter()
                .map(|l| {
                    all.iter()
                        .find(|(h, _)| h.path().unwrap().to_str() == Some(l))
                        .unwrap()
                        .1
                        .clone()
                })
                .collect()
        };

        // Import: the note says so, the JSON report lists each layer with its diff_id.
        let dest = root.join(format!("{name}-imported"));
        let out = ocil(&["import", f, s(&dest)]);
        assert_eq!(out.code, 0, "{name}: {}", out.stderr);
        assert!(out.stderr.contains("stored decompressed"), "{name}: {}", out.stderr);
        let json_dest = root.join(format!("{name}-json"));
        let report = ocil(&["import", "--json", f, s(&json_dest)]).json();
        let listed: Vec<(String, String)> = report["decompressed_layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["compression"].as_str().unwrap().to_owned(),
                    l["digest"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> =
            tools.iter().map(|t| t.to_string()).zip(want.diff_ids.iter().cloned()).collect();
        assert_eq!(listed, expected, "{name}: decompressed_layers");

        // Each layer blob is exactly what the system decoder gives, its digest the diff_id,
        // typed as a plain tar.
        let layers = manifest_layers(&dest, "v1");
        for (n, (media_type, digest)) in layers.iter().enumerate() {
            let decoded = tool(tools[n], &["-dc"], &layer_files[n]);
            assert_eq!(blob(&dest, digest), decoded, "{name}: layer {n} is `{} -dc`", tools[n]);
            assert_eq!(digest, &want.diff_ids[n], "{name}: layer {n}'s digest is its diff_id");
            assert_eq!(sha256(&decoded), want.diff_ids[n]);
            assert_eq!(media_type, "application/vnd.oci.image.layer.v1.tar", "{name}: layer {n}");
        }
        assert_eq!(index(&dest), index(&plain), "{name}: the uncompressed archive's images");
        assert_eq!(blobs(&dest), blobs(&plain), "{name}: the uncompressed archive's blobs");
        let fsck = ocil(&["fsck", "--deep", s(&dest)]);
        assert_eq!(fsck.code, 0, "{name}: fsck --deep: {}", fsck.stdout);
        let fsck = ocil(&["fsck", f]);
        assert_eq!(fsck.code, 0, "{name}: fsck FILE: {}{}", fsck.stdout, fsck.stderr);

        // In place, by offset and in one pass (gzip-compressed): what the import shows.
        let gz = write(root, &format!("{name}.tar.gz"), &gzip(&packed));
        let imported_ls = ocil(&["ls", "--json", s(&dest)]).stdout;
        for archive in [f, s(&gz)] {
            let ls = ocil(&["ls", "--json", archive]);
            assert_eq!((ls.code, &ls.stdout), (0, &imported_ls), "{archive}: ls: {}", ls.stderr);
            let inspect = ocil(&["inspect", "--json", &format!("{archive}:v1")]);
            let from_dest = ocil(&["inspect", "--json", &format!("{}:v1", s(&dest))]);
            assert_eq!(inspect.stdout, from_dest.stdout, "{archive}: inspect: {}", inspect.stderr);
        }
        for (n, (_, digest)) in layers.iter().enumerate() {
            let cat = Command::new(env!("CARGO_BIN_EXE_ocil"))
                .args(["cat", &format!("{f}@{digest}")])
                .output()
                .unwrap();
            assert!(cat.status.success(), "{name}: cat layer {n}");
            assert_eq!(cat.stdout, blob(&dest, digest), "{name}: cat layer {n} in place");
        }
        let copied = root.join(format!("{name}-copied"));
        let out = ocil(&["copy", f, s(&copied)]);
        assert_eq!(out.code, 0, "{name}: copy in place: {}", out.stderr);
        assert_eq!(blobs(&copied), blobs(&dest), "{name}: copy gives the import's blobs");
        assert_eq!(index(&copied), index(&dest), "{name}: copy gives the import's index");
        // A compressed archive keeps only its documents: copying says to import it.
        let out = ocil(&["copy", s(&gz), s(&root.join(format!("{name}-gz-copied")))]);
        assert_eq!(out.code, 2, "{name}: copy of the gzip-compressed archive");
        assert!(out.stderr.contains("import it"), "{name}: {}", out.stderr);
    }
}

#[test]
fn gzip_and_zstd_layers_keep_their_bytes_and_types_needs_shared_needs_zstd() {
    let Some(shared) = shared_dir() else { return };
    if !require_tool("zstd") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let plain_archive = original(&shared);
    let want = facts(&plain_archive);
    let encode = |n: usize, bytes: &[u8]| match n {
        0 => gzip(bytes),
        _ => tool("zstd", &["-q", "-c"], bytes),
    };
    let packed = rewritten(&plain_archive, &encode, None);
    let file = write(root, "gz-zstd.tar", &packed);
    let dest = root.join("imported");
    let report = ocil(&["import", "--json", s(&file), s(&dest)]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    assert_eq!(report.json()["decompressed_layers"], serde_json::json!([]));
    let all = entries(&packed);
    let types = [
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ];
    for (n, (media_type, digest)) in manifest_layers(&dest, "v1").iter().enumerate() {
        let bytes = &all
            .iter()
            .find(|(h, _)| h.path().unwrap().to_str() == Some(&want.layers[n]))
            .unwrap()
            .1;
        assert_eq!(&blob(&dest, digest), bytes, "layer {n} keeps its bytes");
        assert_eq!(media_type, types[n], "layer {n}");
    }
    // --deep decompresses each layer and checks it against its diff_id.
    let fsck = ocil(&["fsck", "--deep", s(&dest)]);
    assert_eq!(fsck.code, 0, "fsck --deep: {}", fsck.stdout);
    let ls = ocil(&["ls", "--json", s(&file)]);
    assert_eq!(ls.stdout, ocil(&["ls", "--json", s(&dest)]).stdout, "{}", ls.stderr);
}

fn docker(args: &[&str]) -> super::Out {
    let out = run("docker", args, None);
    assert_eq!(out.code, 0, "docker {args:?} failed:\n{}{}", out.stdout, out.stderr);
    out
}

/// Load an archive and return the image ID `name` gets, then remove it.
fn docker_load_id(archive: &Path, name: &str) -> String {
    docker(&["load", "-i", s(archive)]);
    let inspected: Value =
        serde_json::from_str(&docker(&["image", "inspect", name]).stdout).unwrap();
    docker(&["image", "rm", "--force", name]);
    inspected[0]["Id"].as_str().unwrap().to_owned()
}

#[test]
fn docker_load_gives_one_image_id_for_the_xz_archive_and_our_export_of_its_import_needs_docker_needs_shared_needs_xz_needs_bzip2()
 {
    if !docker_daemon() {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    if !require_tool("xz") || !require_tool("bzip2") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let name = "ocil-test/xz-bzip2-layers:v1";
    let tools = ["xz", "bzip2"];
    let packed =
        rewritten(&original(&shared), &|n, bytes| tool(tools[n], &["-c"], bytes), Some(&[name]));
    let file = write(root, "packed.tar", &packed);
    let loaded = docker_load_id(&file, name);

    let dest = root.join("imported");
    let out = ocil(&["import", s(&file), s(&dest)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let exported = root.join("exported.tar");
    let out = ocil(&["export", s(&dest), "--format", "docker", "-o", s(&exported)]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let reloaded = docker_load_id(&exported, name);
    assert_eq!(loaded, reloaded, "docker load: the xz/bzip2 archive and our export");
    // Docker's image ID is the config digest, which the import kept.
    let config =
        ocil(&["inspect", "--json", &format!("{}:v1", s(&dest))]).json()["config"]["digest"]
            .clone();
    assert_eq!(config, loaded.as_str());
}
