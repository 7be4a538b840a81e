//! Helpers shared by the CLI tests: a temp directory per test, the `ocil` command with a
//! fixed environment, layouts built with `ocil` itself or copied from the peer-made fixtures
//! in `shared/`, raw blob writing for damage the binary cannot make, and insta settings that
//! hide the temp path.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

/// `SOURCE_DATE_EPOCH` for every run: 2024-01-01T00:00:00Z, so `ocil new` digests are stable.
pub(crate) const EPOCH: &str = "1704067200";

/// The media types the built layouts use.
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub(crate) use crate::peers::shared_dir;

/// A per-test temp directory; every command runs inside it, with relative paths, so no
/// temp path reaches a snapshot.
pub(crate) struct TestDir {
    tmp: TempDir,
}

impl TestDir {
    pub(crate) fn new() -> TestDir {
        TestDir { tmp: tempfile::tempdir().expect("create a temp dir") }
    }

    pub(crate) fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub(crate) fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.tmp.path().join(p)
    }

    /// `ocil`, run in the temp directory with a fixed environment.
    pub(crate) fn ocil(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ocil"));
        cmd.current_dir(self.path()).env("SOURCE_DATE_EPOCH", EPOCH).env("COLUMNS", "100");
        cmd
    }

    /// Run `ocil args...` as a setup step that must succeed.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        let out = self.ocil().args(args).output().expect("run ocil");
        assert!(
            out.status.success(),
            "setup `ocil {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// An insta settings block whose filters replace the temp path with `[TMP]`.
    pub(crate) fn settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        let mut paths = vec![self.path().to_path_buf()];
        if let Ok(canonical) = self.path().canonicalize() {
            paths.push(canonical);
        }
        for p in paths {
            settings.add_filter(&regex_escape(&p.display().to_string()), "[TMP]");
        }
        settings
    }

    /// `name/`: a layout with one image, `v1` (linux/amd64), made by `ocil init` + `ocil new`.
    pub(crate) fn image(&self, name: &str) -> PathBuf {
        self.run(&["init", name]);
        self.run(&["new", &format!("{name}:v1")]);
        self.join(name)
    }

    /// `name/`: `v1` (a linux/amd64 image) and `multi` (an index of v1 and a linux/arm64
    /// image that only the index reaches).
    pub(crate) fn multi(&self, name: &str) -> PathBuf {
        let dir = self.image(name);
        self.run(&["new", "--platform", "linux/arm64", &format!("{name}:arm64")]);
        let amd64 = entry(&dir, "v1");
        let arm64 = entry(&dir, "arm64");
        let platform = |arch: &str| json!({"architecture": arch, "os": "linux"});
        let child = |e: &Value, arch: &str| {
            json!({
                "mediaType": e["mediaType"],
                "digest": e["digest"],
                "size": e["size"],
                "platform": platform(arch),
            })
        };
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [child(&amd64, "amd64"), child(&arm64, "arm64")],
        });
        let (digest, size) = put_blob(&dir, &serde_json::to_vec(&index).unwrap());
        let mut top = read_index(&dir);
        top["manifests"] = json!([
            amd64,
            {
                "mediaType": OCI_INDEX,
                "digest": digest,
                "size": size,
                "annotations": {REF_NAME: "multi"},
            },
        ]);
        write_index(&dir, &top);
        dir
    }

    /// Copy `shared/fixtures/peer-made/<name>/layout` to `<tmp>/<name>`, writable.
    /// `None` (after a note on stderr) when `shared/` is absent.
    pub(crate) fn fixture(&self, name: &str) -> Option<PathBuf> {
        let src = shared_dir()?.join("fixtures/peer-made").join(name).join("layout");
        assert!(src.is_dir(), "no fixture `{}`", src.display());
        let dst = self.join(name);
        copy_tree(&src, &dst);
        Some(dst)
    }
}

/// Copy a tree with fresh, writable permissions (the fixtures are read-only).
fn copy_tree(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(src).sort_by_file_name() {
        let entry = entry.expect("walk the fixture");
        let to = dst.join(entry.path().strip_prefix(src).unwrap());
        let ft = entry.file_type();
        if ft.is_dir() {
            fs_err::create_dir_all(&to).unwrap();
            fs_err::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        } else if ft.is_symlink() {
            let target = fs_err::read_link(entry.path()).unwrap();
            std::os::unix::fs::symlink(target, &to).unwrap();
        } else {
            fs_err::copy(entry.path(), &to).unwrap();
            fs_err::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}

/// `sha256:<hex>` of some bytes.
pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The path of a blob in a layout.
pub(crate) fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    layout.join("blobs/sha256").join(hex)
}

/// Write a blob the way any tool would (no ocil involved); returns its digest and size.
pub(crate) fn put_blob(layout: &Path, bytes: &[u8]) -> (String, u64) {
    let digest = sha256(bytes);
    fs_err::write(blob_path(layout, &digest), bytes).unwrap();
    (digest, bytes.len() as u64)
}

pub(crate) fn read_index(layout: &Path) -> Value {
    serde_json::from_slice(&fs_err::read(layout.join("index.json")).unwrap()).unwrap()
}

pub(crate) fn write_index(layout: &Path, index: &Value) {
    fs_err::write(layout.join("index.json"), serde_json::to_vec(index).unwrap()).unwrap();
}

/// The `index.json` entry tagged `tag`.
pub(crate) fn entry(layout: &Path, tag: &str) -> Value {
    read_index(layout)["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["annotations"][REF_NAME] == tag)
        .unwrap_or_else(|| panic!("no tag `{tag}` in `{}`", layout.display()))
        .clone()
}

/// The digest tagged `tag`.
pub(crate) fn digest_of(layout: &Path, tag: &str) -> String {
    entry(layout, tag)["digest"].as_str().unwrap().to_owned()
}

/// The config digest of the manifest tagged `tag`.
pub(crate) fn config_of(layout: &Path, tag: &str) -> String {
    let manifest: Value =
        serde_json::from_slice(&fs_err::read(blob_path(layout, &digest_of(layout, tag))).unwrap())
            .unwrap();
    manifest["config"]["digest"].as_str().unwrap().to_owned()
}

/// Escape a literal for insta's regex filters.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Run a command and compare its exit code, stdout and stderr with a file snapshot, with
/// the temp path filtered out.
macro_rules! snap {
    ($t:expr, $name:expr, $cmd:expr $(,)?) => {
        $t.settings().bind(|| insta_cmd::assert_cmd_snapshot!($name, $cmd))
    };
}
pub(crate) use snap;
