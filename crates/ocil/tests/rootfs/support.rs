//! Helpers written independently of ocil's libraries: layers as raw tars (names exactly as
//! given, ustar with GNU long names and PAX records), layouts from serde_json and sha2,
//! running `ocil`, and reading trees back (types, modes, owners, sizes, contents, link
//! targets, hard-link groups) to compare with what the peers make.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::Digest as _;

/// Run `ocil` with `args`.
pub(crate) fn ocil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocil")).args(args).output().expect("run ocil")
}

/// Run `ocil` with `args` and extra environment.
pub(crate) fn ocil_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ocil"));
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run ocil")
}

/// Require exit 0; stdout.
pub(crate) fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `ocil` and require exit 0; stdout.
pub(crate) fn ocil_ok(args: &[&str]) -> String {
    ok(ocil(args), &format!("ocil {args:?}"))
}

/// Run a program and require exit 0; stdout.
pub(crate) fn run_ok(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    ok(out, &format!("{program} {args:?}"))
}

/// `path` as an argument.
pub(crate) fn arg(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// `sha256:<hex>`.
pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// One tar entry, every field as it goes into the header.
#[derive(Debug, Clone)]
pub(crate) struct RawEntry {
    pub(crate) kind: u8,
    pub(crate) name: Vec<u8>,
    pub(crate) link: Vec<u8>,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: u64,
    pub(crate) data: Vec<u8>,
    pub(crate) dev: (u32, u32),
    pub(crate) pax: Vec<(String, Vec<u8>)>,
}

/// The mtime of generated entries: 2024-01-01T00:00:00Z.
pub(crate) const MTIME: u64 = 1_704_067_200;

impl RawEntry {
    fn new(kind: u8, name: &[u8], mode: u32) -> RawEntry {
        RawEntry {
            kind,
            name: name.to_vec(),
            link: Vec::new(),
            mode,
            uid: 0,
            gid: 0,
            mtime: MTIME,
            data: Vec::new(),
            dev: (0, 0),
            pax: Vec::new(),
        }
    }
    pub(crate) fn file(name: &str, data: &[u8], mode: u32) -> RawEntry {
        RawEntry { data: data.to_vec(), ..RawEntry::new(b'0', name.as_bytes(), mode) }
    }
    pub(crate) fn dir(name: &str, mode: u32) -> RawEntry {
        RawEntry::new(b'5', name.as_bytes(), mode)
    }
    pub(crate) fn symlink(name: &str, target: &str) -> RawEntry {
        RawEntry { link: target.as_bytes().to_vec(), ..RawEntry::new(b'2', name.as_bytes(), 0o777) }
    }
    pub(crate) fn hardlink(name: &str, target: &str) -> RawEntry {
        RawEntry { link: target.as_bytes().to_vec(), ..RawEntry::new(b'1', name.as_bytes(), 0o644) }
    }
    pub(crate) fn fifo(name: &str, mode: u32) -> RawEntry {
        RawEntry::new(b'6', name.as_bytes(), mode)
    }
    pub(crate) fn device(name: &str, kind: u8, dev: (u32, u32)) -> RawEntry {
        RawEntry { dev, ..RawEntry::new(kind, name.as_bytes(), 0o666) }
    }
    pub(crate) fn mode(mut self, mode: u32) -> RawEntry {
        self.mode = mode;
        self
    }
    pub(crate) fn owner(mut self, uid: u32, gid: u32) -> RawEntry {
        (self.uid, self.gid) = (uid, gid);
        self
    }
    pub(crate) fn xattr(mut self, k: &str, v: &[u8]) -> RawEntry {
        self.pax.push((format!("SCHILY.xattr.{k}"), v.to_vec()));
        self
    }
}

fn octal(field: &mut [u8], v: u64) {
    let n = field.len() - 1;
    let s = format!("{v:0n$o}");
    field[..n].copy_from_slice(s.as_bytes());
}

fn header(name: &[u8], link: &[u8], kind: u8, e: &RawEntry, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    octal(&mut h[100..108], u64::from(e.mode));
    octal(&mut h[108..116], u64::from(e.uid));
    octal(&mut h[116..124], u64::from(e.gid));
    octal(&mut h[124..136], size);
    octal(&mut h[136..148], e.mtime);
    h[156] = kind;
    h[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    octal(&mut h[329..337], u64::from(e.dev.0));
    octal(&mut h[337..345], u64::from(e.dev.1));
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

fn push_data(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

/// A tar of `entries`, names and link targets byte for byte as given (GNU long-name
/// entries for those over 100 bytes), PAX records before an entry that has some.
pub(crate) fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let meta = RawEntry::new(b'0', b"", 0o644);
        if e.name.len() > 100 {
            let mut n = e.name.clone();
            n.push(0);
            out.extend(header(b"././@LongLink", b"", b'L', &meta, n.len() as u64));
            push_data(&mut out, &n);
        }
        if e.link.len() > 100 {
            let mut n = e.link.clone();
            n.push(0);
            out.extend(header(b"././@LongLink", b"", b'K', &meta, n.len() as u64));
            push_data(&mut out, &n);
        }
        if !e.pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &e.pax {
                let rest = k.len() + v.len() + 3;
                let mut len = rest + 1;
                while len.to_string().len() + rest > len {
                    len += 1;
                }
                body.extend(format!("{len} {k}=").into_bytes());
                body.extend(v);
                body.push(b'\n');
            }
            out.extend(header(b"PaxHeaders/entry", b"", b'x', &meta, body.len() as u64));
            push_data(&mut out, &body);
        }
        out.extend(header(&e.name, &e.link, e.kind, e, e.data.len() as u64));
        push_data(&mut out, &e.data);
    }
    out.extend([0u8; 1024]);
    out
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Comp {
    None,
    Gzip,
    Zstd,
}

/// A layer: the tar and how its blob is compressed.
pub(crate) struct Layer {
    pub(crate) tar: Vec<u8>,
    pub(crate) comp: Comp,
}

impl Layer {
    pub(crate) fn gz(entries: &[RawEntry]) -> Layer {
        Layer { tar: raw_tar(entries), comp: Comp::Gzip }
    }
}

/// The host's architecture in the image spec's words.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A layout written by hand.
pub(crate) struct Layout {
    pub(crate) dir: PathBuf,
}

impl Layout {
    pub(crate) fn init(dir: &Path) -> Layout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("mkdir");
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
            .expect("write");
        std::fs::write(dir.join("index.json"), br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#)
            .expect("write");
        Layout { dir: dir.to_path_buf() }
    }

    pub(crate) fn put(&self, bytes: &[u8]) -> (String, usize) {
        let d = digest(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), bytes).expect("write blob");
        (d, bytes.len())
    }

    /// An image of `layers` and runtime config `config` tagged `tag`; its manifest digest.
    pub(crate) fn image(&self, tag: &str, layers: &[Layer], config: Value, docker: bool) -> String {
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in layers {
            diff_ids.push(digest(&l.tar));
            let (blob, mt) = match (l.comp, docker) {
                (Comp::Gzip, true) => {
                    (gzip(&l.tar), "application/vnd.docker.image.rootfs.diff.tar.gzip")
                }
                (Comp::Gzip, false) => {
                    (gzip(&l.tar), "application/vnd.oci.image.layer.v1.tar+gzip")
                }
                (Comp::Zstd, _) => (
                    zstd::encode_all(&l.tar[..], 3).expect("zstd"),
                    "application/vnd.oci.image.layer.v1.tar+zstd",
                ),
                (Comp::None, _) => (l.tar.clone(), "application/vnd.oci.image.layer.v1.tar"),
            };
            let (d, size) = self.put(&blob);
            descs.push(json!({"mediaType": mt, "digest": d, "size": size}));
        }
        let config = json!({
            "architecture": host_arch(),
            "os": "linux",
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": layers.iter().map(|_| json!({"created": "2024-01-01T00:00:00Z", "created_by": "test"})).collect::<Vec<_>>(),
        });
        let cbytes = serde_json::to_vec(&config).expect("JSON");
        let (cd, csize) = self.put(&cbytes);
        let (mt, ct) = if docker {
            (
                "application/vnd.docker.distribution.manifest.v2+json",
                "application/vnd.docker.container.image.v1+json",
            )
        } else {
            (
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.oci.image.config.v1+json",
            )
        };
        let manifest = json!({"schemaVersion": 2, "mediaType": mt, "config": {"mediaType": ct, "digest": cd, "size": csize}, "layers": descs});
        let mbytes = serde_json::to_vec(&manifest).expect("JSON");
        let (md, msize) = self.put(&mbytes);
        let mut index: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("index.json")).expect("read"))
                .expect("JSON");
        index["manifests"].as_array_mut().expect("array").push(json!({
            "mediaType": mt, "digest": md, "size": msize,
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }));
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&index).expect("JSON"))
            .expect("write");
        md
    }
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// What a path of a tree is, as compared across tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) kind: char,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    /// A file's sha256, a symlink's target, a device's numbers.
    pub(crate) content: String,
    /// The other names of a file with several (sorted).
    pub(crate) links: Vec<String>,
}

/// A tree read back without following anything: path -> node.
pub(crate) fn tree(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry = entry.expect("walk");
        let p = entry.path();
        let rel = p.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        let m = std::fs::symlink_metadata(p).expect("lstat");
        let ft = m.file_type();
        let (kind, content) = if ft.is_symlink() {
            ('l', std::fs::read_link(p).expect("readlink").to_string_lossy().into_owned())
        } else if ft.is_dir() {
            ('d', String::new())
        } else if ft.is_file() {
            inodes.entry(m.ino()).or_default().push(rel.clone());
            ('f', digest(&std::fs::read(p).expect("read")))
        } else if ft.is_fifo() {
            ('p', String::new())
        } else if ft.is_char_device() {
            ('c', format!("{}:{}", m.rdev() >> 8 & 0xfff, m.rdev() & 0xff))
        } else if ft.is_block_device() {
            ('b', format!("{}:{}", m.rdev() >> 8 & 0xfff, m.rdev() & 0xff))
        } else {
            ('s', String::new())
        };
        let mode = if ft.is_symlink() { 0o777 } else { m.mode() & 0o7777 };
        let size = if ft.is_dir() { 0 } else { m.len() };
        out.insert(
            rel,
            Node { kind, mode, uid: m.uid(), gid: m.gid(), size, content, links: Vec::new() },
        );
    }
    for names in inodes.values().filter(|n| n.len() > 1) {
        for n in names {
            if let Some(node) = out.get_mut(n) {
                node.links = names.iter().filter(|o| *o != n).cloned().collect();
            }
        }
    }
    out
}

/// The differences between two trees, one line each (empty when equal).
pub(crate) fn diff(a: &BTreeMap<String, Node>, b: &BTreeMap<String, Node>) -> Vec<String> {
    let mut d = Vec::new();
    for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => d.push(format!("{k}: {x:?} vs {y:?}")),
        }
    }
    d
}

/// Every file and directory under `dir` but `skip` (type, mode, size, content, mtime):
/// what "nothing written outside" is checked against. (`dir` itself changes: the bundle is
/// made in it.)
pub(crate) fn snapshot(dir: &Path, skip: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| e.path() != skip)
    {
        let entry = entry.expect("walk");
        let p = entry.path();
        let m = std::fs::symlink_metadata(p).expect("lstat");
        let content = if m.file_type().is_file() {
            digest(&std::fs::read(p).expect("read"))
        } else if m.file_type().is_symlink() {
            std::fs::read_link(p).expect("readlink").to_string_lossy().into_owned()
        } else {
            String::new()
        };
        out.insert(
            p.to_path_buf(),
            format!(
                "{:o} {}:{} {} {} {}.{}",
                m.mode(),
                m.uid(),
                m.gid(),
                m.len(),
                content,
                m.mtime(),
                m.mtime_nsec()
            ),
        );
    }
    out
}

/// A path resolved inside `root` as the container sees it (symlinks followed with `/` as
/// the root, `..` stopping there; the last one only when `follow`): the host path.
pub(crate) fn in_root(root: &Path, path: &str, follow: bool) -> PathBuf {
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut stack: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        let here: PathBuf =
            stack.iter().chain(std::iter::once(&c)).fold(root.to_path_buf(), |p, s| p.join(s));
        let last = pending.iter().all(|p| p.is_empty() || p == ".");
        match std::fs::symlink_metadata(&here) {
            Ok(m) if m.file_type().is_symlink() && (follow || !last) => {
                links += 1;
                assert!(links < 40, "symlink loop at {}", here.display());
                let target =
                    std::fs::read_link(&here).expect("readlink").to_string_lossy().into_owned();
                if target.starts_with('/') {
                    stack.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_owned));
            }
            _ => stack.push(c),
        }
    }
    stack.iter().fold(root.to_path_buf(), |p, s| p.join(s))
}
