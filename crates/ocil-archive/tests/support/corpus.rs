//! Archives built in memory for tests: small valid OCI and docker-save archives. (The
//! hostile ones are files in `testdata/hostile/`, see `hostile.rs`.)
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

/// A header of a regular file `name` whose size field holds `text` (not octal digits), with
/// a valid checksum: what the parser reads there must never reach a message.
pub(crate) fn header_with_text_in_size(name: &str, text: &[u8]) -> Vec<u8> {
    assert!(text.len() <= 12);
    let mut h = Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_mode(0o644);
    h.set_entry_type(EntryType::Regular);
    let mut bytes = h.as_bytes().to_vec();
    bytes[124..136].fill(0);
    bytes[124..124 + text.len()].copy_from_slice(text);
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
    bytes[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    bytes
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
        Image::from_layer(layer_tar(content))
    }

    /// An image over this (uncompressed) layer.
    pub(crate) fn from_layer(layer: Vec<u8>) -> Image {
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
