//! Helpers: peer tools and `shared/` (required under `CI=true`), the source tree every test
//! appends, and reading a tree back (type, mode, content, link target, inode) to compare.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) use crate::peers::require_tool;
use crate::peers::shared_dir;

/// `shared/fixtures/peer-made/<name>/layout` copied (writable) to `dst`; `None` when
/// `shared/` is absent outside CI.
pub(crate) fn fixture(name: &str, dst: &Path) -> Option<()> {
    let shared = shared_dir()?;
    let src = shared.join("fixtures/peer-made").join(name).join("layout");
    for entry in walkdir::WalkDir::new(&src).sort_by_file_name() {
        let entry = entry.expect("walk the fixture");
        let to = dst.join(entry.path().strip_prefix(&src).expect("under src"));
        if entry.file_type().is_dir() {
            fs_err::create_dir_all(&to).expect("mkdir");
            set_mode(&to, 0o755);
        } else {
            fs_err::copy(entry.path(), &to).expect("copy");
            set_mode(&to, 0o644);
        }
    }
    Some(())
}

pub(crate) fn set_mode(p: &Path, m: u32) {
    fs_err::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

/// Run a program; the output, whatever the status.
pub(crate) fn run(program: &str, args: &[&str], cwd: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("SOURCE_DATE_EPOCH", "1704067200")
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

/// Run a program that must succeed; its stdout.
pub(crate) fn run_ok(program: &str, args: &[&str], cwd: &Path) -> String {
    let out = run(program, args, cwd);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The tree every test appends: files of modes 0755 and 0600, a subdirectory, a symlink, a
/// hard link, a name with a space, and `extra` random bytes in a bigger file.
pub(crate) fn src_tree(root: &Path, extra: &[u8]) {
    fs_err::create_dir_all(root.join("app/sub")).expect("mkdir");
    fs_err::write(root.join("app/run.sh"), "#!/bin/sh\necho hi\n").expect("write");
    set_mode(&root.join("app/run.sh"), 0o755);
    fs_err::write(root.join("app/sub/secret"), "s3cret\n").expect("write");
    set_mode(&root.join("app/sub/secret"), 0o600);
    fs_err::write(root.join("app/with space.txt"), "space\n").expect("write");
    set_mode(&root.join("app/with space.txt"), 0o644);
    fs_err::write(root.join("app/blob.bin"), extra).expect("write");
    set_mode(&root.join("app/blob.bin"), 0o644);
    std::os::unix::fs::symlink("sub/secret", root.join("app/link")).expect("symlink");
    fs_err::hard_link(root.join("app/run.sh"), root.join("app/sub/run-hardlink")).expect("link");
    set_mode(&root.join("app/sub"), 0o750);
    set_mode(&root.join("app"), 0o755);
}

/// What a tree holds: path -> (kind, mode, content or link target).
pub(crate) type Tree = BTreeMap<PathBuf, (char, u32, Vec<u8>)>;

/// Read a tree back (symlinks not followed).
pub(crate) fn describe(root: &Path) -> Tree {
    let mut out = Tree::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1) {
        let entry = entry.expect("walk");
        let p = entry.path();
        let m = fs_err::symlink_metadata(p).expect("lstat");
        let ft = m.file_type();
        let (kind, body) = if ft.is_symlink() {
            ('l', fs_err::read_link(p).expect("readlink").into_os_string().into_encoded_bytes())
        } else if ft.is_dir() {
            ('d', Vec::new())
        } else {
            ('f', fs_err::read(p).expect("read"))
        };
        let mode = if ft.is_symlink() { 0 } else { m.mode() & 0o7777 };
        out.insert(p.strip_prefix(root).expect("under root").to_path_buf(), (kind, mode, body));
    }
    out
}

/// The inode of a path (to check hard links).
pub(crate) fn ino(p: &Path) -> u64 {
    fs_err::metadata(p).expect("stat").ino()
}
