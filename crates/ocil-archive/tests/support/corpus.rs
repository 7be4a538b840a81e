//! Archives built in memory for tests: small valid OCI and docker-save archives, and a
//! corpus of hostile ones, each with the error code and the entry its error must name.
//!
//! Entry names and link targets are written into the raw header fields, so names the `tar`
//! crate's own path setters refuse (`..`, absolute paths) can be made.

#![allow(dead_code)]

use std::io::Write;

use ocil_layout::Algorithm;
use tar::{EntryType, Header};

/// `sha256:<hex>` of bytes.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    Algorithm::Sha256.digest_of(bytes).to_string()
}

/// The hex part of the sha256 of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    Algorithm::Sha256.digest_of(bytes).encoded().to_owned()
}

/// A tar written entry by entry with raw headers.
pub(crate) struct Tar {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Tar {
    fn default() -> Self {
        Tar::new()
    }
}

impl Tar {
    pub(crate) fn new() -> Tar {
        Tar { b: tar::Builder::new(Vec::new()) }
    }

    /// Any entry, with `name` and `link` copied verbatim into the header.
    pub(crate) fn raw(
        &mut self,
        name: &[u8],
        ty: EntryType,
        link: Option<&[u8]>,
        data: &[u8],
    ) -> &mut Tar {
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
            h.set_link_name_literal(link).expect("link name fits");
        }
        h.set_cksum();
        self.b.append(&h, data).expect("append to a Vec");
        self
    }

    pub(crate) fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.raw(name.as_bytes(), EntryType::Regular, None, data)
    }

    pub(crate) fn dir(&mut self, name: &str) -> &mut Tar {
        self.raw(name.as_bytes(), EntryType::Directory, None, b"")
    }

    pub(crate) fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(name.as_bytes(), EntryType::Symlink, Some(target.as_bytes()), b"")
    }

    pub(crate) fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.raw(name.as_bytes(), EntryType::Link, Some(target.as_bytes()), b"")
    }

    /// The archive, with its end-of-archive marker.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.b.into_inner().expect("finish a Vec")
    }
}

/// gzip bytes.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip into a Vec");
    e.finish().expect("gzip into a Vec")
}

/// zstd bytes.
pub(crate) fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd into a Vec")
}

/// A tiny layer: one file.
pub(crate) fn layer_tar(content: &str) -> Vec<u8> {
    let mut t = Tar::new();
    t.file("hello.txt", content.as_bytes());
    t.finish()
}

/// One image: an uncompressed layer, its config and an OCI manifest over them.
pub(crate) struct Image {
    pub(crate) layer: Vec<u8>,
    pub(crate) config: Vec<u8>,
    pub(crate) manifest: Vec<u8>,
}

impl Image {
    pub(crate) fn new(content: &str) -> Image {
        let layer = layer_tar(content);
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

    /// `index.json` with this image under `tag` (untagged when `None`).
    pub(crate) fn index_json(&self, tag: Option<&str>) -> Vec<u8> {
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

    /// Entries of an OCI archive (without its end), to add more before finishing.
    pub(crate) fn oci_tar(&self, tag: Option<&str>) -> Tar {
        let mut t = Tar::new();
        t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        t.file("index.json", &self.index_json(tag));
        t.dir("blobs/");
        t.dir("blobs/sha256/");
        for b in [&self.layer, &self.config, &self.manifest] {
            t.file(&format!("blobs/sha256/{}", hex(b)), b);
        }
        t
    }

    /// An OCI archive.
    pub(crate) fn oci_archive(&self, tag: Option<&str>) -> Vec<u8> {
        self.oci_tar(tag).finish()
    }

    /// The `manifest.json` of a docker-save archive holding this image.
    pub(crate) fn manifest_json(&self, repo_tags: &[&str], layer_path: &str) -> Vec<u8> {
        let tags: Vec<String> = repo_tags.iter().map(|t| format!("\"{t}\"")).collect();
        format!(
            r#"[{{"Config":"{}.json","RepoTags":[{}],"Layers":["{layer_path}"]}}]"#,
            hex(&self.config),
            tags.join(",")
        )
        .into_bytes()
    }

    /// Entries of a docker-save archive (classic layout: `<id>/layer.tar`), without
    /// `manifest.json`.
    pub(crate) fn docker_tar_without_manifest(&self) -> Tar {
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

    /// The layer's path in the classic docker-save layout.
    pub(crate) fn docker_layer_path(&self) -> String {
        format!("{}/layer.tar", hex(&self.layer))
    }

    /// A docker-save archive.
    pub(crate) fn docker_archive(&self, repo_tags: &[&str]) -> Vec<u8> {
        let mut t = self.docker_tar_without_manifest();
        t.file("manifest.json", &self.manifest_json(repo_tags, &self.docker_layer_path()));
        t.finish()
    }
}

/// A hostile (or unusable) archive and what importing it must say.
pub(crate) struct Hostile {
    pub(crate) name: &'static str,
    pub(crate) bytes: Vec<u8>,
    /// `Error::code()` of the import.
    pub(crate) code: &'static str,
    /// Text the error message must contain (usually the entry, in backticks).
    pub(crate) mentions: &'static str,
}

/// The corpus.
pub(crate) fn hostile() -> Vec<Hostile> {
    let img = Image::new("hostile\n");
    let mut out = Vec::new();
    let mut add = |name, bytes, code, mentions| out.push(Hostile { name, bytes, code, mentions });

    // Names.
    let mut t = img.oci_tar(Some("v1"));
    t.raw(b"../evil", EntryType::Regular, None, b"x");
    add("dotdot-entry", t.finish(), "UNSAFE_ENTRY", "`../evil`");

    let mut t = img.oci_tar(Some("v1"));
    t.raw(b"/tmp/evil", EntryType::Regular, None, b"x");
    add("absolute-entry", t.finish(), "UNSAFE_ENTRY", "`/tmp/evil`");

    let mut t = img.oci_tar(Some("v1"));
    t.raw(b"blobs/sha256/../../../evil", EntryType::Regular, None, b"x");
    add("dotdot-inside-blobs", t.finish(), "UNSAFE_ENTRY", "`blobs/sha256/../../../evil`");

    // Links.
    let mut t = Tar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.symlink("index.json", "/etc/passwd");
    add("symlink-index-json", t.finish(), "LINK_NOT_ALLOWED", "`index.json`");

    let mut t = img.oci_tar(Some("v1"));
    t.symlink(&format!("blobs/sha256/{}", hex(b"other")), &hex(&img.layer));
    add("symlink-blob", t.finish(), "LINK_NOT_ALLOWED", "`blobs/sha256/");

    let mut t = img.docker_tar_without_manifest();
    t.hardlink("escape/layer.tar", "../../../etc/passwd");
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "escape/layer.tar"));
    add("hardlink-escaping", t.finish(), "UNSAFE_ENTRY", "`escape/layer.tar`");

    let mut t = img.docker_tar_without_manifest();
    t.symlink("escape/layer.tar", "/etc/passwd");
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "escape/layer.tar"));
    add("symlink-absolute", t.finish(), "UNSAFE_ENTRY", "`escape/layer.tar`");

    let mut t = img.docker_tar_without_manifest();
    t.symlink("a/layer.tar", "../b/layer.tar");
    t.symlink("b/layer.tar", "../a/layer.tar");
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "a/layer.tar"));
    add("symlink-loop", t.finish(), "LINK_UNRESOLVED", "`a/layer.tar`");

    // Duplicates.
    let mut t = img.oci_tar(Some("v1"));
    t.file("./index.json", &img.index_json(Some("evil")));
    add("duplicate-entry", t.finish(), "DUPLICATE_ENTRY", "`index.json`");

    // Sizes and digests.
    let mut big = br#"{"schemaVersion":2,"manifests":[]}"#.to_vec();
    big.resize(16 * 1024 * 1024 + 1, b' ');
    let mut t = Tar::new();
    t.file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    t.file("index.json", &big);
    add("index-json-over-16-mib", gzip(&t.finish()), "ENTRY_TOO_LARGE", "`index.json`");

    let mut t = img.oci_tar(Some("v1"));
    t.file(&format!("blobs/sha256/{}", hex(b"what the name says")), b"something else");
    add("blob-not-matching-its-name", t.finish(), "DIGEST_MISMATCH", "`blobs/sha256/");

    // Truncation.
    let whole = img.oci_archive(Some("v1"));
    let layer_at = find(&whole, &img.layer);
    add(
        "truncated-in-an-entry",
        whole[..layer_at + 700].to_vec(),
        "ARCHIVE_TRUNCATED",
        "truncated",
    );
    add(
        "truncated-without-end-marker",
        whole[..whole.len() - 1024].to_vec(),
        "ARCHIVE_TRUNCATED",
        "truncated",
    );
    let gz = gzip(&whole);
    add("truncated-gzip", gz[..gz.len() / 2].to_vec(), "ARCHIVE_TRUNCATED", "truncated");

    // manifest.json.
    let mut t = img.docker_tar_without_manifest();
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "../x"));
    add("manifest-json-layer-escaping", t.finish(), "UNSAFE_REFERENCE", "`../x`");

    let mut t = img.docker_tar_without_manifest();
    let mj = img.manifest_json(&["example.com/app:v1"], &img.docker_layer_path());
    t.file("manifest.json", &mj[1..mj.len() - 1]);
    add("manifest-json-not-an-array", t.finish(), "DOCKER_MANIFEST_INVALID", "not a JSON array");

    let mut t = img.docker_tar_without_manifest();
    t.file(
        "manifest.json",
        format!(
            r#"[{{"Config":"missing.json","RepoTags":["example.com/app:v1"],"Layers":["{}"]}}]"#,
            img.docker_layer_path()
        )
        .as_bytes(),
    );
    add("config-missing", t.finish(), "ENTRY_MISSING", "`missing.json`");

    let other = Image::new("a different layer\n");
    let mut t = img.docker_tar_without_manifest();
    t.file("other/layer.tar", &other.layer);
    t.file("manifest.json", &img.manifest_json(&["example.com/app:v1"], "other/layer.tar"));
    add("diff-id-mismatch", t.finish(), "DIFF_ID_MISMATCH", "other/layer.tar");

    // Streams.
    let mut garbage = vec![0x1f, 0x8b, 0x08, 0x00];
    garbage.extend((0u32..400).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    add("gzip-garbage", garbage, "ARCHIVE_UNREADABLE", "cannot read the archive");

    let mut xz = vec![0xfd, b'7', b'z', b'X', b'Z', 0];
    xz.extend_from_slice(&[0; 64]);
    add("xz-compressed", xz, "UNSUPPORTED_COMPRESSION", "xz");

    let mut t = img.oci_tar(Some("v1"));
    t.raw(b"dev/evil", EntryType::Char, None, b"");
    add("device-entry", t.finish(), "UNSUPPORTED_ENTRY", "`dev/evil`");

    // Formats ocil does not import.
    let mut t = Tar::new();
    t.file("repositories", br#"{"app":{"v1":"abc"}}"#);
    t.file("abc/json", br#"{"id":"abc"}"#);
    t.file("abc/layer.tar", &img.layer);
    add("legacy-v1", t.finish(), "LEGACY_FORMAT", "legacy docker save format");

    add("plain-layer", img.layer.clone(), "NOT_AN_IMAGE_ARCHIVE", "not an image archive");

    out
}

fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack.windows(needle.len()).position(|w| w == needle).expect("needle is in the haystack")
}
