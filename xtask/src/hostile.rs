//! `testdata/hostile/`: archives that `ocil import`, `ocil fsck FILE`, `ocil ls FILE` and
//! `ocil inspect FILE` must refuse (or report), each with what must happen, in
//! `expected.json`, and a README.
//!
//! Entry names and link targets are written into the raw header fields, so names that the
//! `tar` crate's own path setters refuse (`..`, absolute paths) can be made. Written with
//! `tar`, `flate2`, `sha2` and `serde_json` only, not with ocil's libraries. Every archive is
//! byte-for-byte reproducible (mtime 0, uid/gid 0, gzip with mtime 0); the largest (a
//! 16 MiB `index.json`) is stored gzip-compressed, about 16 KiB.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tar::{EntryType, Header};

use crate::Result;

/// The JSON size cap of ocil (`ocil_layout::JSON_LIMIT`): 16 MiB.
const JSON_LIMIT: usize = 16 * 1024 * 1024;

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(bytes))
}

fn hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A tar written entry by entry with raw headers.
struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Tar {
    fn new() -> Tar {
        Tar { b: tar::Builder::new(Vec::new()) }
    }

    /// Any entry, with `name` and `link` copied verbatim into the header.
    fn raw(&mut self, name: &[u8], ty: EntryType, link: Option<&[u8]>, data: &[u8]) -> &mut Tar {
        assert!(name.len() < 100, "raw names must fit the old header");
        let mut h = Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_mode(if ty == EntryType::Directory { 0o755 } else { 0o644 });
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(ty);
        h.set_size(data.len() as u64);
        if let Some(link) = link {
            h.set_link_name_literal(link).expect("link names fit");
        }
        h.set_cksum();
        self.b.append(&h, data).expect("append to a Vec");
        self
    }

    fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.raw(name.as_bytes(), EntryType::Regular, None, data)
    }

    fn dir(&mut self, name: &str) -> &mut Tar {
        self.raw(name.as_bytes(), EntryType::Directory, None, b"")
    }

    fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(name.as_bytes(), EntryType::Symlink, Some(target.as_bytes()), b"")
    }

    fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(name.as_bytes(), EntryType::Link, Some(target.as_bytes()), b"")
    }

    fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("finish a Vec")
    }
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    crate::r#gen::gzip(bytes, flate2::Compression::best())
}

/// One image: an uncompressed layer, its config and an OCI manifest over them.
struct Image {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

impl Image {
    fn new(content: &str) -> Image {
        let mut t = Tar::new();
        t.file("hello.txt", content.as_bytes());
        let layer = t.finish();
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            sha256(&layer)
        )
        .into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{}","size":{}}}]}}"#,
            sha256(&config),
            config.len(),
            sha256(&layer),
            layer.len()
        )
        .into_bytes();
        Image { layer, config, manifest }
    }

    fn index_json(&self, tag: Option<&str>) -> Vec<u8> {
        let ann = match tag {
            Some(t) => format!(r#","annotations":{{"org.opencontainers.image.ref.name":"{t}"}}"#),
            None => String::new(),
        };
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{}","size":{}{ann}}}]}}"#,
            sha256(&self.manifest),
            self.manifest.len()
        )
        .into_bytes()
    }

    /// An OCI archive's entries (without its end), blobs as given.
    fn oci_tar_with(&self, tag: Option<&str>, blobs: &[(&str, &[u8])]) -> Tar {
        let mut t = Tar::new();
        t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        t.file("index.json", &self.index_json(tag));
        t.dir("blobs/");
        t.dir("blobs/sha256/");
        for (name, b) in blobs {
            t.file(&format!("blobs/sha256/{name}"), b);
        }
        t
    }

    fn oci_tar(&self, tag: Option<&str>) -> Tar {
        let (l, c, m) = (hex(&self.layer), hex(&self.config), hex(&self.manifest));
        self.oci_tar_with(tag, &[(&l, &self.layer), (&c, &self.config), (&m, &self.manifest)])
    }

    fn manifest_json(&self, repo_tags: &[&str], layer_path: &str) -> Vec<u8> {
        let tags: Vec<String> = repo_tags.iter().map(|t| format!("\"{t}\"")).collect();
        format!(
            r#"[{{"Config":"{}.json","RepoTags":[{}],"Layers":["{layer_path}"]}}]"#,
            hex(&self.config),
            tags.join(",")
        )
        .into_bytes()
    }

    /// A docker-save archive's entries (`<id>/layer.tar`), without `manifest.json`.
    fn docker_tar_without_manifest(&self) -> Tar {
        let mut t = Tar::new();
        let id = hex(&self.layer);
        t.file(&format!("{}.json", hex(&self.config)), &self.config);
        t.dir(&format!("{id}/"));
        t.file(&format!("{id}/VERSION"), b"1.0");
        t.file(&format!("{id}/json"), format!(r#"{{"id":"{id}"}}"#).as_bytes());
        t.file(&format!("{id}/layer.tar"), &self.layer);
        t.file("repositories", br#"{"example.com/app":{"v1":"x"}}"#);
        t
    }

    fn docker_layer_path(&self) -> String {
        format!("{}/layer.tar", hex(&self.layer))
    }
}

/// A hostile archive and what ocil must do with it.
struct Case {
    name: &'static str,
    what: &'static str,
    bytes: Vec<u8>,
    /// The error code of `ocil import` (`ocil_archive::Error::code`).
    code: &'static str,
    /// Text the error must contain (the entry, in backticks, when there is one).
    mentions: &'static str,
    /// Whether `ocil ls FILE` / `ocil inspect FILE` refuse it too. They read the documents
    /// and check what they read; a blob nothing names is not read.
    view_refuses: bool,
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("needle is in the haystack")
}

fn cases() -> Result<Vec<Case>> {
    let img = Image::new("hostile\n");
    let mut out = Vec::new();
    let mut add = |name, what, bytes, code, mentions| {
        out.push(Case { name, what, bytes, code, mentions, view_refuses: true });
    };

    let mut t = img.oci_tar(Some("v1"));
    t.raw(b"../evil", EntryType::Regular, None, b"x");
    add(
        "dotdot-entry",
        "An OCI archive with an extra entry `../evil`.",
        t.finish(),
        "UNSAFE_ENTRY",
        "`../evil`",
    );

    let mut t = img.oci_tar(Some("v1"));
    t.raw(b"/tmp/evil", EntryType::Regular, None, b"x");
    add(
        "absolute-entry",
        "An OCI archive with an extra entry `/tmp/evil`.",
        t.finish(),
        "UNSAFE_ENTRY",
        "`/tmp/evil`",
    );

    let mut t = img.oci_tar(Some("v1"));
    t.raw(b"blobs/sha256/../../../evil", EntryType::Regular, None, b"x");
    add(
        "dotdot-inside-blobs",
        "An OCI archive with an entry `blobs/sha256/../../../evil`.",
        t.finish(),
        "UNSAFE_ENTRY",
        "`blobs/sha256/../../../evil`",
    );

    let mut t = Tar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.symlink("index.json", "/etc/passwd");
    add(
        "symlink-index-json",
        "`index.json` is a symlink to `/etc/passwd`.",
        t.finish(),
        "LINK_NOT_ALLOWED",
        "`index.json`",
    );

    let mut t = Tar::new();
    t.file("oci-layout.real", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.hardlink("oci-layout", "oci-layout.real");
    t.file("index.json", &img.index_json(Some("v1")));
    add(
        "hardlink-oci-layout",
        "`oci-layout` is a hardlink to another entry.",
        t.finish(),
        "LINK_NOT_ALLOWED",
        "`oci-layout`",
    );

    let mut t = img.oci_tar(Some("v1"));
    t.symlink(&format!("blobs/sha256/{}", hex(b"other")), &hex(&img.layer));
    add(
        "symlink-blob",
        "A `blobs/sha256/<hex>` entry that is a symlink to another blob.",
        t.finish(),
        "LINK_NOT_ALLOWED",
        "`blobs/sha256/",
    );

    let mut t = img.docker_tar_without_manifest();
    t.hardlink("escape/layer.tar", "../../../etc/passwd");
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "escape/layer.tar"));
    add(
        "hardlink-escaping",
        "A docker-save archive whose layer is a hardlink to `../../../etc/passwd`.",
        t.finish(),
        "UNSAFE_ENTRY",
        "`escape/layer.tar`",
    );

    let mut t = img.docker_tar_without_manifest();
    t.symlink("escape/layer.tar", "/etc/passwd");
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "escape/layer.tar"));
    add(
        "symlink-absolute",
        "A docker-save archive whose layer is a symlink to `/etc/passwd`.",
        t.finish(),
        "UNSAFE_ENTRY",
        "`escape/layer.tar`",
    );

    let mut t = img.docker_tar_without_manifest();
    t.symlink("a/layer.tar", "../b/layer.tar");
    t.symlink("b/layer.tar", "../a/layer.tar");
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "a/layer.tar"));
    add(
        "symlink-loop",
        "A docker-save archive whose layer is a loop of two symlinks.",
        t.finish(),
        "LINK_UNRESOLVED",
        "`a/layer.tar`",
    );

    let mut t = img.oci_tar(Some("v1"));
    t.file("./index.json", &img.index_json(Some("evil")));
    add(
        "duplicate-index-json",
        "`index.json`, then `./index.json` with other tags.",
        t.finish(),
        "DUPLICATE_ENTRY",
        "`index.json`",
    );

    let mut t = img.oci_tar(Some("v1"));
    t.file(&format!("blobs/sha256/{}", hex(&img.layer)), &img.layer);
    add(
        "duplicate-blob",
        "The same blob entry twice.",
        t.finish(),
        "DUPLICATE_ENTRY",
        "`blobs/sha256/",
    );

    let mut big = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
    big.resize(JSON_LIMIT + 1, b' ');
    let mut t = Tar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.file("index.json", &big);
    add(
        "index-json-over-16-mib",
        "A gzip-compressed OCI archive whose `index.json` is one byte over 16 MiB (mostly spaces, so the file is small).",
        gzip(&t.finish())?,
        "ENTRY_TOO_LARGE",
        "`index.json`",
    );

    let mut big = img.manifest_json(&["example.com/app:v1"], &img.docker_layer_path());
    big.resize(JSON_LIMIT + 1, b' ');
    let mut t = img.docker_tar_without_manifest();
    t.file("manifest.json", &big);
    add(
        "manifest-json-over-16-mib",
        "A gzip-compressed docker-save archive whose `manifest.json` is one byte over 16 MiB.",
        gzip(&t.finish())?,
        "ENTRY_TOO_LARGE",
        "`manifest.json`",
    );

    let (l, c) = (hex(&img.layer), hex(&img.config));
    let m = hex(&img.manifest);
    let t = img.oci_tar_with(
        Some("v1"),
        &[(&l, &img.layer), (&c, &img.config), (&m, b"{\"not\":\"the manifest\"}")],
    );
    add(
        "manifest-blob-not-matching-its-name",
        "The manifest that `index.json` names is a blob whose bytes do not hash to its name.",
        t.finish(),
        "DIGEST_MISMATCH",
        "`blobs/sha256/",
    );

    let mut t = img.oci_tar(Some("v1"));
    t.file(&format!("blobs/sha256/{}", hex(b"what the name says")), b"something else");
    out.push(Case {
        name: "unreferenced-blob-not-matching-its-name",
        what: "An extra blob, named by nothing, whose bytes do not hash to its name. Import hashes every blob and refuses it; `ls`/`inspect` check the blobs they read (index, manifests, configs) but read no others (layers included), so they list the archive; `cat` of this blob refuses it.",
        bytes: t.finish(),
        code: "DIGEST_MISMATCH",
        mentions: "`blobs/sha256/",
        view_refuses: false,
    });
    let mut add = |name, what, bytes, code, mentions| {
        out.push(Case { name, what, bytes, code, mentions, view_refuses: true });
    };

    let whole = img.oci_tar(Some("v1")).finish();
    let layer_at = find(&whole, &img.layer);
    add(
        "truncated-in-an-entry",
        "An OCI archive cut 700 bytes into the layer's data.",
        whole[..layer_at + 700].to_vec(),
        "ARCHIVE_TRUNCATED",
        "truncated",
    );
    add(
        "truncated-without-end-marker",
        "An OCI archive without its end-of-archive blocks.",
        whole[..whole.len() - 1024].to_vec(),
        "ARCHIVE_TRUNCATED",
        "truncated",
    );
    let gz = gzip(&whole)?;
    add(
        "truncated-gzip",
        "A gzip-compressed OCI archive cut in half.",
        gz[..gz.len() / 2].to_vec(),
        "ARCHIVE_TRUNCATED",
        "truncated",
    );

    let mut t = img.docker_tar_without_manifest();
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "../x"));
    add(
        "manifest-json-layer-escaping",
        "A docker-save archive whose `manifest.json` names the layer `../x`.",
        t.finish(),
        "UNSAFE_REFERENCE",
        "`../x`",
    );

    let mut t = img.docker_tar_without_manifest();
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "/etc/passwd"));
    add(
        "manifest-json-layer-absolute",
        "A docker-save archive whose `manifest.json` names the layer `/etc/passwd`.",
        t.finish(),
        "UNSAFE_REFERENCE",
        "`/etc/passwd`",
    );

    let mut t = img.docker_tar_without_manifest();
    let mj = img.manifest_json(&["example.com/app:v1"], &img.docker_layer_path());
    t.file("manifest.json", &mj[1..mj.len() - 1]);
    add(
        "manifest-json-not-an-array",
        "A docker-save archive whose `manifest.json` is an object, not an array.",
        t.finish(),
        "DOCKER_MANIFEST_INVALID",
        "not a JSON array",
    );

    let mut t = img.docker_tar_without_manifest();
    t.file(
        "manifest.json",
        format!(
            r#"[{{"Config":"missing.json","RepoTags":["example.com/app:v1"],"Layers":["{}"]}}]"#,
            img.docker_layer_path()
        )
        .as_bytes(),
    );
    add(
        "config-missing",
        "A docker-save archive whose config is not in the archive.",
        t.finish(),
        "ENTRY_MISSING",
        "`missing.json`",
    );

    let other = Image::new("a different layer\n");
    let mut t = img.docker_tar_without_manifest();
    t.file("other/layer.tar", &other.layer);
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "other/layer.tar"));
    add(
        "diff-id-mismatch",
        "A docker-save archive whose uncompressed layer is not the one the config's diff_id names.",
        t.finish(),
        "DIFF_ID_MISMATCH",
        "other/layer.tar",
    );

    // docker load reads xz and bzip2 layers; ocil stores them decompressed, so one that
    // does not decompress is refused.
    let mut t = img.docker_tar_without_manifest();
    let mut xz_layer = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    xz_layer.extend_from_slice(&[0; 64]);
    t.file("xz/layer.tar", &xz_layer);
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "xz/layer.tar"));
    add(
        "docker-layer-xz-garbage",
        "A docker-save archive whose layer is an xz magic number followed by zeros: no xz stream.",
        t.finish(),
        "LAYER_UNDECODABLE",
        "`xz/layer.tar`",
    );

    let mut garbage = vec![0x1f, 0x8b, 0x08, 0x00];
    garbage.extend((0u32..400).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    add(
        "gzip-garbage",
        "A gzip magic number followed by garbage.",
        garbage,
        "ARCHIVE_UNREADABLE",
        "cannot read the archive",
    );

    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    xz.extend_from_slice(&[0; 64]);
    add(
        "xz-garbage",
        "An xz magic number followed by zeros: no xz stream.",
        xz,
        "ARCHIVE_UNREADABLE",
        "cannot read the archive",
    );

    let mut t = img.oci_tar(Some("v1"));
    t.raw(b"dev/evil", EntryType::Char, None, b"");
    add(
        "device-entry",
        "An OCI archive with a character device entry.",
        t.finish(),
        "UNSUPPORTED_ENTRY",
        "`dev/evil`",
    );

    let mut t = Tar::new();
    t.file("repositories", br#"{"app":{"v1":"abc"}}"#);
    t.file("abc/json", br#"{"id":"abc"}"#);
    t.file("abc/layer.tar", &img.layer);
    add(
        "legacy-v1",
        "The pre-1.10 docker save format (`repositories`, `<id>/json`).",
        t.finish(),
        "LEGACY_FORMAT",
        "legacy docker save format",
    );

    add(
        "plain-layer",
        "A plain tar (a layer), not an image archive.",
        img.layer.clone(),
        "NOT_AN_IMAGE_ARCHIVE",
        "not an image archive",
    );
    Ok(out)
}

/// What `ocil fsck FILE` gives: image archives with problems exit 1 with the code as an
/// error; the legacy format is a warning and a plain tar is no problem (exit 0).
fn fsck(code: &str) -> (i32, Option<&'static str>) {
    match code {
        "LEGACY_FORMAT" => (0, Some("warning")),
        "NOT_AN_IMAGE_ARCHIVE" => (0, None),
        _ => (1, Some("error")),
    }
}

/// Writes the archives, `expected.json` and `README.md` into `dir` (created).
pub(crate) fn write(dir: &Path) -> Result<()> {
    fs_err::create_dir_all(dir)?;
    let cases = cases()?;
    let mut expected = serde_json::Map::new();
    let mut readme = String::from(
        "# testdata/hostile\n\n\
         Generated by `cargo xtask fixtures` (`xtask/src/hostile.rs`, which uses tar, flate2, sha2 and serde_json, not ocil's libraries); do not edit by hand.\n\
         Archives ocil must refuse: `ocil import FILE DIR` exits 2 with the error code and text of `expected.json`, leaving DIR as it was; `ocil fsck FILE` reports the problem (`fsck_exit`, `fsck_severity`); `ocil ls FILE` and `ocil inspect FILE` exit 2 naming the archive and the entry, unless `view_refuses` is false (they read an archive in place and check what they read, which is not every blob).\n\n\
         | archive | what | import error | mentions |\n|---|---|---|---|\n",
    );
    for c in &cases {
        let file = format!("{}.tar", c.name);
        fs_err::write(dir.join(&file), &c.bytes)?;
        let (fsck_exit, severity) = fsck(c.code);
        expected.insert(
            c.name.to_owned(),
            json!({
                "file": file,
                "code": c.code,
                "mentions": c.mentions,
                "fsck_exit": fsck_exit,
                "fsck_severity": severity,
                "view_refuses": c.view_refuses,
            }),
        );
        let _ = writeln!(
            readme,
            "| `{file}` | {} | `{}` | {} |",
            c.what,
            c.code,
            c.mentions.replace('|', "\\|")
        );
    }
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(expected))?;
    bytes.push(b'\n');
    fs_err::write(dir.join("expected.json"), bytes)?;
    fs_err::write(dir.join("README.md"), readme)?;
    Ok(())
}
