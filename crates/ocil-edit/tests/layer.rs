//! `ocil_edit::layer`: the tar builder and the tar checker against GNU tar: `tar -tv` lists what we wrote with
//! the names, modes, owners, times and link targets we meant, `tar -x` recreates the tree,
//! and the same tree packs to the same bytes.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_layout::{Compression, Layout, MediaType};

use ocil_edit::layer::{
    DEFAULT_MTIME, DirOptions, TarFacts, check_tar, layer_media_type, pack_dir, pack_dir_layer,
};

use std::fs as fsx;

fn write(p: &Path, body: &[u8], mode: u32) {
    fsx::create_dir_all(p.parent().unwrap()).unwrap();
    fsx::write(p, body).unwrap();
    fsx::set_permissions(p, fsx::Permissions::from_mode(mode)).unwrap();
}

const LONG_DIR: &str = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
const LONG_FILE: &str = "file-with-a-name-that-makes-the-path-longer-than-one-hundred-bytes.txt";

/// A tree with every kind of entry the builder stores.
fn tree(root: &Path) {
    write(&root.join("bin/tool"), b"#!/bin/sh\necho hi\n", 0o755);
    write(&root.join("etc/secret"), b"s3cret", 0o600);
    write(&root.join("etc/suid"), b"x", 0o4755);
    write(&root.join("a.txt"), b"a", 0o644);
    write(&root.join("with space.txt"), b"space", 0o644);
    write(&root.join(format!("long/{LONG_DIR}/{LONG_FILE}")), b"long", 0o644);
    fsx::create_dir_all(root.join("empty")).unwrap();
    fsx::create_dir_all(root.join("tmp")).unwrap();
    fsx::set_permissions(root.join("tmp"), fsx::Permissions::from_mode(0o1777)).unwrap();
    std::os::unix::fs::symlink("../etc/secret", root.join("bin/link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../../../outside", root.join("escape")).unwrap();
    let long_target = format!("long/{LONG_DIR}/{LONG_FILE}");
    std::os::unix::fs::symlink(&long_target, root.join("long-link")).unwrap();
    fsx::hard_link(root.join("bin/tool"), root.join("etc/tool-hardlink")).unwrap();
    let fifo = Command::new("mkfifo").arg(root.join("fifo")).status().unwrap();
    assert!(fifo.success());
}

fn open(p: &Path) -> Dir {
    Dir::open_ambient_dir(p, ambient_authority()).unwrap()
}

fn pack(root: &Path, opts: &DirOptions) -> (Vec<u8>, Vec<String>) {
    let mut out = Vec::new();
    let warnings = pack_dir(&open(root), &mut out, opts).unwrap();
    (out, warnings)
}

fn gnu_tar(args: &[&str], cwd: &Path) -> String {
    let out = Command::new("tar").args(args).current_dir(cwd).env("TZ", "UTC").output().unwrap();
    assert!(out.status.success(), "tar {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn gnu_tar_lists_what_we_meant() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    tree(&root);
    let (bytes, warnings) = pack(&root, &DirOptions::default());
    assert!(warnings.is_empty(), "{warnings:?}");
    fsx::write(tmp.path().join("l.tar"), &bytes).unwrap();
    let listing = gnu_tar(&["--numeric-owner", "-tvf", "l.tar"], tmp.path());
    let rows: Vec<String> =
        listing.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    let long = format!("long/{LONG_DIR}/{LONG_FILE}");
    let t = "2000-01-01 00:00";
    let expected = [
        format!("-rw-r--r-- 0/0 1 {t} a.txt"),
        format!("lrwxrwxrwx 0/0 0 {t} abs-link -> /etc/passwd"),
        format!("drwxr-xr-x 0/0 0 {t} bin/"),
        format!("lrwxrwxrwx 0/0 0 {t} bin/link -> ../etc/secret"),
        format!("-rwxr-xr-x 0/0 18 {t} bin/tool"),
        format!("drwxr-xr-x 0/0 0 {t} empty/"),
        format!("lrwxrwxrwx 0/0 0 {t} escape -> ../../../outside"),
        format!("drwxr-xr-x 0/0 0 {t} etc/"),
        format!("-rw------- 0/0 6 {t} etc/secret"),
        format!("-rwsr-xr-x 0/0 1 {t} etc/suid"),
        format!("hrwxr-xr-x 0/0 0 {t} etc/tool-hardlink link to bin/tool"),
        format!("prw-r--r-- 0/0 0 {t} fifo"),
        format!("drwxr-xr-x 0/0 0 {t} long/"),
        format!("drwxr-xr-x 0/0 0 {t} long/{LONG_DIR}/"),
        format!("-rw-r--r-- 0/0 4 {t} {long}"),
        format!("lrwxrwxrwx 0/0 0 {t} long-link -> {long}"),
        format!("drwxrwxrwt 0/0 0 {t} tmp/"),
        format!("-rw-r--r-- 0/0 5 {t} with space.txt"),
    ];
    assert_eq!(rows, expected);
}

/// Every path under `root`: (type, mode, content or link target, inode group).
fn describe(root: &Path) -> BTreeMap<PathBuf, (char, u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fsx::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let m = fsx::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let ft = m.file_type();
            let (kind, body) = if ft.is_symlink() {
                ('l', fsx::read_link(&p).unwrap().into_os_string().into_encoded_bytes())
            } else if ft.is_dir() {
                stack.push(p.clone());
                ('d', Vec::new())
            } else if ft.is_file() {
                ('f', fsx::read(&p).unwrap())
            } else {
                ('p', Vec::new())
            };
            let mode = if ft.is_symlink() { 0 } else { m.mode() & 0o7777 };
            out.insert(rel, (kind, mode, body));
        }
    }
    out
}

#[test]
fn gnu_tar_extracts_the_same_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    tree(&root);
    let (bytes, _) = pack(&root, &DirOptions::default());
    fsx::write(tmp.path().join("l.tar"), &bytes).unwrap();
    let x = tmp.path().join("x");
    fsx::create_dir_all(&x).unwrap();
    gnu_tar(&["-xpf", "../l.tar", "--no-same-owner"], &x);
    assert_eq!(describe(&x), describe(&root));
    let ino = |p: &str| fsx::metadata(x.join(p)).unwrap().ino();
    assert_eq!(ino("bin/tool"), ino("etc/tool-hardlink"), "the hard link is a hard link again");
    let mtime = fsx::symlink_metadata(x.join("bin/tool")).unwrap().mtime();
    assert_eq!(mtime, DEFAULT_MTIME as i64);
}

#[test]
fn same_tree_same_bytes_and_mtime_changes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    tree(&a);
    tree(&b);
    // Different inode numbers, timestamps and creation order: the same tar.
    fsx::set_permissions(b.join("a.txt"), fsx::Permissions::from_mode(0o644)).unwrap();
    let opts = DirOptions::default();
    assert_eq!(pack(&a, &opts).0, pack(&b, &opts).0);
    let later = DirOptions { mtime: 1_704_067_200, ..opts };
    let (bytes, _) = pack(&a, &later);
    assert_ne!(bytes, pack(&a, &opts).0);
    fsx::write(tmp.path().join("l.tar"), &bytes).unwrap();
    let listing = gnu_tar(&["--numeric-owner", "-tvf", "l.tar"], tmp.path());
    assert!(listing.lines().all(|l| l.contains("2024-01-01 00:00")), "{listing}");
}

#[test]
fn keep_owner_keeps_numeric_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    write(&root.join("f"), b"x", 0o644);
    std::os::unix::fs::chown(root.join("f"), Some(1234), Some(5678)).unwrap();
    let (bytes, _) = pack(&root, &DirOptions { keep_owner: true, ..DirOptions::default() });
    fsx::write(tmp.path().join("l.tar"), &bytes).unwrap();
    let listing = gnu_tar(&["--numeric-owner", "-tvf", "l.tar"], tmp.path());
    assert!(listing.contains(" 1234/5678 "), "{listing}");
    let (bytes, _) = pack(&root, &DirOptions::default());
    fsx::write(tmp.path().join("l.tar"), &bytes).unwrap();
    let listing = gnu_tar(&["--numeric-owner", "-tvf", "l.tar"], tmp.path());
    assert!(listing.contains(" 0/0 "), "{listing}");
}

#[test]
fn sockets_are_skipped_and_devices_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    write(&root.join("f"), b"x", 0o644);
    let _sock = std::os::unix::net::UnixListener::bind(root.join("sock")).unwrap();
    let (bytes, warnings) = pack(&root, &DirOptions::default());
    assert_eq!(warnings, ["`sock`: a socket, skipped"]);
    fsx::write(tmp.path().join("l.tar"), &bytes).unwrap();
    assert_eq!(gnu_tar(&["-tf", "l.tar"], tmp.path()), "f\n");

    let made = Command::new("mknod").arg(root.join("null")).args(["c", "1", "3"]).status();
    if made.is_ok_and(|s| s.success()) {
        let err = pack_dir(&open(&root), Vec::new(), &DirOptions::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`null` is a character device: device files are not packed (build the layer from a tar made as root)"
        );
    } else {
        let root_user = fsx::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        assert!(!root_user, "mknod failed as root");
    }
}

fn fresh_layout() -> (tempfile::TempDir, Layout) {
    let tmp = tempfile::tempdir().unwrap();
    fsx::create_dir_all(tmp.path().join("layout")).unwrap();
    let layout = Layout::create(open(&tmp.path().join("layout"))).unwrap();
    (tmp, layout)
}

fn decompress(c: Compression, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match c {
        Compression::None => out = bytes.to_vec(),
        Compression::Gzip => {
            flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        }
        Compression::Zstd => {
            zstd::stream::read::Decoder::new(bytes).unwrap().read_to_end(&mut out).unwrap();
        }
    }
    out
}

#[test]
fn layer_blobs_hash_and_decompress_to_the_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    tree(&root);
    let (tar, _) = pack(&root, &DirOptions::default());
    let diff_id = ocil_layout::Algorithm::Sha256.digest_of(&tar);
    for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let (_t, layout) = fresh_layout();
        let staged = pack_dir_layer(&layout, &open(&root), &DirOptions::default(), c).unwrap();
        assert_eq!(staged.diff_id, diff_id);
        assert_eq!(staged.tar_size, tar.len() as u64);
        let desc = staged.descriptor(&MediaType::OciManifest).unwrap();
        let stored = staged.commit().unwrap();
        assert_eq!(stored.digest, desc.digest);
        let blob = layout.read_blob(&desc.digest, u64::MAX).unwrap();
        assert_eq!(ocil_codec::Format::sniff(&blob).compression(), Some(c));
        assert_eq!(decompress(c, &blob), tar, "{c:?}");
        if c == Compression::Gzip {
            // Header: magic, deflate, no flags, mtime 0, XFL, OS 255 (unknown).
            assert_eq!(&blob[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        }
        // The same again: the same blob.
        let again = pack_dir_layer(&layout, &open(&root), &DirOptions::default(), c).unwrap();
        assert_eq!(again.blob.digest(), &desc.digest);
    }
}

#[test]
fn files_at_paths_are_listed_by_gnu_tar_and_hash_to_their_layer() {
    use ocil_edit::layer::{Placed, Source, layer_path, pack_files, pack_files_layer};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    tree(&root);
    let placed = || {
        let file = fsx::File::open(root.join("etc/suid")).unwrap();
        vec![
            Placed {
                dest: layer_path("/usr/bin/suid").unwrap(),
                source: Source::File(cap_std::fs::File::from_std(file)),
            },
            Placed {
                dest: layer_path("opt/bin/").unwrap(),
                source: Source::Dir(open(&root.join("bin"))),
            },
        ]
    };
    let mut tar = Vec::new();
    let warnings = pack_files(placed(), &mut tar, &DirOptions::default()).unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    fsx::write(tmp.path().join("f.tar"), &tar).unwrap();
    let listing = gnu_tar(&["--numeric-owner", "-tvf", "f.tar"], tmp.path());
    let rows: Vec<String> =
        listing.lines().map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).collect();
    let t = "2000-01-01 00:00";
    let expected = [
        format!("drwxr-xr-x 0/0 0 {t} opt/bin/"),
        format!("lrwxrwxrwx 0/0 0 {t} opt/bin/link -> ../etc/secret"),
        format!("-rwxr-xr-x 0/0 18 {t} opt/bin/tool"),
        format!("-rwsr-xr-x 0/0 1 {t} usr/bin/suid"),
    ];
    assert_eq!(rows, expected);
    let (_t, layout) = fresh_layout();
    let staged =
        pack_files_layer(&layout, placed(), &DirOptions::default(), Compression::Gzip).unwrap();
    assert_eq!(staged.diff_id, ocil_layout::Algorithm::Sha256.digest_of(&tar));
}

/// An entry: raw name, type, raw link target.
type RawEntry<'a> = (&'a [u8], tar::EntryType, Option<&'a [u8]>);

fn tar_with(entries: &[RawEntry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(if *kind == tar::EntryType::Regular { 1 } else { 0 });
        h.set_mode(0o644);
        // Raw names: the builder's own path checks would refuse the hostile ones.
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name);
        if let Some(l) = link {
            raw.linkname[..l.len()].copy_from_slice(l);
        }
        h.set_cksum();
        let data: &[u8] = if *kind == tar::EntryType::Regular { b"x" } else { b"" };
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

fn check(bytes: &[u8]) -> Result<(TarFacts, Vec<u8>), ocil_edit::Error> {
    let mut out = Vec::new();
    let facts = check_tar(bytes, "in.tar", &mut out)?;
    Ok((facts, out))
}

#[test]
fn input_tars_pass_through_unchanged_whatever_the_compression() {
    let tar = tar_with(&[
        (b"./etc/", tar::EntryType::Directory, None),
        (b"./etc/f", tar::EntryType::Regular, None),
        (b"etc/h", tar::EntryType::Link, Some(b"etc/f")),
        (b"etc/abs", tar::EntryType::Symlink, Some(b"/etc/f")),
        (b"etc/up", tar::EntryType::Symlink, Some(b"../../x")),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 1).unwrap();
    // xz and bzip2 from the system tools (xz-utils, bzip2: .ci/run installs them), an
    // independent encoder for each.
    let by_tool = |tool: &str| -> Vec<u8> {
        let mut child = std::process::Command::new(tool)
            .arg("-c")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("`{tool}` runs (Debian package xz-utils / bzip2): {e}"));
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), &tar).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{tool} -c");
        out.stdout
    };
    use ocil_codec::Format;
    let inputs = [
        (tar.clone(), Format::Plain),
        (gz, Format::Gzip),
        (zst, Format::Zstd),
        (by_tool("xz"), Format::Xz),
        (by_tool("bzip2"), Format::Bzip2),
    ];
    for (input, c) in &inputs {
        let (input, c) = (input, *c);
        let (facts, out) = check(input).unwrap();
        assert_eq!(out, tar);
        assert_eq!(facts, TarFacts { input_compression: c, entries: 5, size: tar.len() as u64 });
    }
}

#[test]
fn hostile_and_broken_tars_are_refused() {
    let msg = |bytes: &[u8]| check(bytes).unwrap_err().to_string();
    let reg = tar::EntryType::Regular;
    assert_eq!(
        msg(&tar_with(&[(b"a/../../etc/passwd", reg, None)])),
        "`in.tar`: entry `a/../../etc/passwd` has a `..` component"
    );
    assert_eq!(
        msg(&tar_with(&[(b"/etc/passwd", reg, None)])),
        "`in.tar`: entry `/etc/passwd` is an absolute path"
    );
    assert_eq!(
        msg(&tar_with(&[(b"h", tar::EntryType::Link, Some(b"../x"))])),
        "`in.tar`: entry `h` is a hard link whose target has a `..` component"
    );
    assert_eq!(
        msg(&tar_with(&[(b"h", tar::EntryType::Link, Some(b"/etc/shadow"))])),
        "`in.tar`: entry `h` is a hard link to an absolute path"
    );
    assert_eq!(msg(b""), "`in.tar` is not a usable layer tar: it is empty");
    assert_eq!(
        msg(&[b'x'; 1024]),
        "`in.tar` is not a usable layer tar: not a tar archive (its first header is not a valid tar header)"
    );
    let good = tar_with(&[(b"f", reg, None)]);
    // Cut at the entry boundary: no end-of-archive block.
    assert_eq!(
        msg(&good[..1024]),
        "`in.tar` is not a usable layer tar: it is truncated: it stops after 1024 bytes without an end-of-archive block"
    );
    assert_eq!(
        msg(&good[..700]),
        "`in.tar` is not a usable layer tar: it is truncated, in or after entry 1"
    );
    // xz is read (and the layer written as --compress says), so a cut xz stream is a
    // truncated tar.
    assert_eq!(
        msg(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]),
        "`in.tar` is not a usable layer tar: it is truncated, in or after entry 0"
    );
}

/// A header of `name` whose size field holds `text`, checksummed, then the end blocks.
fn text_in_size_field(name: &[u8], text: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_gnu();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_mode(0o644);
    let mut bytes = h.as_bytes().to_vec();
    bytes[124..136].fill(0);
    bytes[124..124 + text.len()].copy_from_slice(text);
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes.iter().map(|b| u32::from(*b)).sum();
    bytes[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    bytes.extend_from_slice(&[0u8; 1024]);
    bytes
}

#[test]
fn a_header_field_holding_text_is_refused_without_echoing_it() {
    let msg = |bytes: &[u8]| check(bytes).unwrap_err().to_string();
    let hostile = text_in_size_field(b"etc/passwd", b"SECRET-TEXT");
    assert_eq!(
        msg(&hostile),
        "`in.tar` is not a usable layer tar: entry 1: invalid size field in a header"
    );
    let mut second = tar_with(&[(b"a", tar::EntryType::Regular, None)]);
    second.truncate(second.len() - 1024);
    second.extend_from_slice(&hostile);
    assert_eq!(
        msg(&second),
        "`in.tar` is not a usable layer tar: entry 2: invalid size field in a header"
    );
}

#[test]
fn media_types_follow_the_manifest_family() {
    let oci = MediaType::OciManifest;
    let docker = MediaType::DockerManifest;
    assert_eq!(layer_media_type(&oci, Compression::Gzip).unwrap(), MediaType::OciLayerGzip);
    assert_eq!(layer_media_type(&oci, Compression::Zstd).unwrap(), MediaType::OciLayerZstd);
    assert_eq!(layer_media_type(&oci, Compression::None).unwrap(), MediaType::OciLayerTar);
    assert_eq!(layer_media_type(&docker, Compression::Gzip).unwrap(), MediaType::DockerLayerGzip);
    let err = layer_media_type(&docker, Compression::Zstd).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Docker schema2 images have no zstd layer media type (use --compress gzip, or convert the image to OCI)"
    );
    assert!(layer_media_type(&docker, Compression::None).is_err());
}

#[test]
fn symlinks_out_of_the_tree_are_stored_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    write(&outside.join("private.txt"), b"not for the layer", 0o644);
    let root = tmp.path().join("root");
    write(&root.join("f"), b"x", 0o644);
    std::os::unix::fs::symlink(&outside, root.join("out-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("private.txt"), root.join("out-file")).unwrap();
    let (bytes, _) = pack(&root, &DirOptions::default());
    assert!(!bytes.windows(17).any(|w| w == b"not for the layer"), "content from outside");
    fsx::write(tmp.path().join("l.tar"), &bytes).unwrap();
    let listing = gnu_tar(&["-tvf", "l.tar"], tmp.path());
    let names: Vec<&str> = listing.lines().map(|l| l.split(" -> ").next().unwrap()).collect();
    assert_eq!(names.len(), 3, "{listing}");
    assert!(listing.contains(&format!("out-dir -> {}", outside.display())), "{listing}");
    assert!(names.iter().all(|n| !n.ends_with("private.txt")), "{listing}");
}
