//! Sparse files as GNU tar writes them, the old GNU form (`--format=gnu`, `S` entries) and
//! the three PAX forms (`--format=posix --sparse-version=0.0|0.1|1.0`): `ocil unpack` gives
//! the tree GNU tar extracts, with the holes left as holes, under the file's real name
//! (never `GNUSparseFile.PID/NAME`).

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use serde_json::json;

use crate::support::{Comp, Layer, Layout, arg, diff, ocil, ocil_ok, run_ok, tree};

const MIB: u64 = 1024 * 1024;

/// A file of `size` bytes with `data` written at each offset, the rest holes.
fn sparse(path: &Path, size: u64, data: &[(u64, &[u8])]) {
    let mut f = File::create(path).expect("create");
    f.set_len(size).expect("set_len");
    for (at, bytes) in data {
        f.seek(SeekFrom::Start(*at)).expect("seek");
        f.write_all(bytes).expect("write");
    }
}

fn source(dir: &Path) {
    let d = dir.join("d");
    std::fs::create_dir_all(&d).expect("mkdir");
    sparse(&d.join("big"), 10 * MIB, &[(3_000_000, b"hello"), (10 * MIB - 10, b"tail")]);
    sparse(&d.join("allhole"), MIB, &[]);
    sparse(&d.join("head"), 2 * MIB, &[(0, &[7u8; 5000])]);
    std::fs::write(d.join("dense"), b"not sparse at all").expect("write");
}

#[test]
fn sparse_files_unpack_as_gnu_tar_extracts_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    source(&src);
    for (format, version) in
        [("gnu", None), ("posix", Some("0.0")), ("posix", Some("0.1")), ("posix", Some("1.0"))]
    {
        let what = format!("{format} {}", version.unwrap_or(""));
        let case = tmp.path().join(format!("{format}{}", version.unwrap_or("")));
        std::fs::create_dir_all(&case).expect("mkdir");
        let tar_file = case.join("layer.tar");
        let mut args = vec!["--sparse".to_owned(), format!("--format={format}")];
        if let Some(v) = version {
            args.push(format!("--sparse-version={v}"));
        }
        args.extend(
            ["--owner=0", "--group=0", "--numeric-owner", "--mtime=@1704067200", "-C"]
                .map(String::from),
        );
        args.extend([arg(&src).to_owned(), "-cf".into(), arg(&tar_file).to_owned(), "d".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_ok("tar", &args, &case);
        let bytes = std::fs::read(&tar_file).expect("read");
        assert!(
            bytes.len() < 64 * 1024,
            "{what}: GNU tar stored the holes ({} bytes)",
            bytes.len()
        );

        // GNU tar's own extraction is the oracle.
        let want = case.join("want");
        std::fs::create_dir_all(&want).expect("mkdir");
        run_ok("tar", &["-xf", arg(&tar_file), "-C", arg(&want)], &case);

        let layout = Layout::init(&case.join("l"));
        layout.image("v1", &[Layer { tar: bytes, comp: Comp::Gzip }], json!({}), false);
        let b = case.join("b");
        ocil_ok(&["unpack", &format!("{}:v1", arg(&layout.dir)), arg(&b)]);
        let r = b.join("rootfs");
        let (got, expected) = (tree(&r.join("d")), tree(&want.join("d")));
        assert_eq!(diff(&expected, &got), Vec::<String>::new(), "{what}");
        assert_eq!(got.len(), 4, "{what}: {:?}", got.keys());
        let big = std::fs::metadata(r.join("d/big")).expect("stat");
        assert_eq!(big.len(), 10 * MIB, "{what}");
        assert!(
            big.blocks() * 512 < MIB,
            "{what}: the holes were written ({} blocks)",
            big.blocks()
        );
        assert!(std::fs::metadata(r.join("d/allhole")).expect("stat").blocks() * 512 < 64 * 1024);
        assert_eq!(ocil(&["status", arg(&b)]).status.code(), Some(0), "{what}: clean bundle");
    }
}

#[test]
fn a_bad_sparse_map_is_refused_naming_the_entry() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    source(&src);
    let tar_file = tmp.path().join("layer.tar");
    let st = Command::new("tar")
        .args(["--sparse", "--format=posix", "--sparse-version=0.1", "-C", arg(&src)])
        .args(["-cf", arg(&tar_file), "d/big"])
        .status()
        .expect("tar");
    assert!(st.success());
    let mut bytes = std::fs::read(&tar_file).expect("read");
    // Make the map's last data segment end past the file's size: `10481664` -> `10485664`
    // (same length, so the PAX record stays well formed).
    let at = bytes.windows(8).position(|w| w == b"10481664").expect("the map record");
    bytes[at + 4] = b'5';
    let layout = Layout::init(&tmp.path().join("l"));
    layout.image("v1", &[Layer { tar: bytes, comp: Comp::Gzip }], json!({}), false);
    let b = tmp.path().join("b");
    let out = ocil(&["unpack", &format!("{}:v1", arg(&layout.dir)), arg(&b)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("d/big") && err.contains("sparse"), "{err}");
    assert!(!b.join("rootfs").exists(), "no rootfs left");
}
