//! Helpers: running `ocil` and peers, a `docker-registry` started for one test (killed on
//! drop), and reading layouts with plain serde_json and sha2 (not our library).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use sha2::Digest as _;

/// What a command did.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Out {
    pub(crate) fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Run a program.
pub(crate) fn run<I, S>(program: &str, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `ocil`.
pub(crate) fn ocil<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(env!("CARGO_BIN_EXE_ocil"), args)
}

/// Run `ocil`, which must succeed.
pub(crate) fn ocil_ok<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = ocil(&args);
    assert!(out.ok(), "ocil {args:?} failed: {}", out.stderr);
    out
}

/// `ocil fsck DIR` finds it clean, and every file under `blobs/` is a blob named by its
/// hash (no temp file, no bad blob left behind).
pub(crate) fn assert_clean(dir: &Path) {
    let out = ocil(["fsck".as_ref(), dir.as_os_str()]);
    assert!(out.ok(), "fsck {}: {}{}", dir.display(), out.stdout, out.stderr);
    assert_blobs_whole(dir);
}

/// Every file under `blobs/sha256` hashes to its name (no temp file, no bad blob).
pub(crate) fn assert_blobs_whole(dir: &Path) {
    let blobs = dir.join("blobs/sha256");
    if !blobs.is_dir() {
        return;
    }
    for e in fs_err::read_dir(&blobs).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let bytes = fs_err::read(e.path()).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), name, "a stray or bad blob");
    }
}

/// Tag -> digest of a layout's `index.json` (none when it has no readable one).
pub(crate) fn tags(layout: &Path) -> Vec<(String, String)> {
    let Ok(bytes) = fs_err::read(layout.join("index.json")) else { return Vec::new() };
    let index: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    index["manifests"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|d| {
                    let tag = d["annotations"]["org.opencontainers.image.ref.name"].as_str()?;
                    Some((tag.to_owned(), d["digest"].as_str()?.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A free port on 127.0.0.1 (bound then released: the registry binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `docker-registry serve` on 127.0.0.1, its storage in a temp dir; killed on drop.
pub(crate) struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Start one; with `htpasswd` (user, password), Basic auth with an htpasswd file made
    /// by `htpasswd -Bbn`.
    pub(crate) fn start(htpasswd: Option<(&str, &str)>) -> Registry {
        Registry::start_with(htpasswd, false)
    }

    /// Start one that writes its access log to a file ([`Registry::log`]).
    pub(crate) fn start_logged() -> Registry {
        Registry::start_with(None, true)
    }

    /// Start one with this `auth:` section of its config (`auth:\n  token: ...`).
    pub(crate) fn start_with_auth(auth: &str) -> Registry {
        Registry::start_in(tempfile::tempdir().unwrap(), auth.to_owned(), false)
    }

    fn start_with(htpasswd: Option<(&str, &str)>, logged: bool) -> Registry {
        let dir = tempfile::tempdir().unwrap();
        let auth = match htpasswd {
            None => String::new(),
            Some((user, password)) => {
                let out = run("htpasswd", ["-Bbn", user, password]);
                assert!(out.ok(), "htpasswd: {}", out.stderr);
                let file = dir.path().join("htpasswd");
                fs_err::write(&file, out.stdout).unwrap();
                format!("auth:\n  htpasswd:\n    realm: ocil-tests\n    path: {}\n", file.display())
            }
        };
        Registry::start_in(dir, auth, logged)
    }

    fn start_in(dir: tempfile::TempDir, auth: String, logged: bool) -> Registry {
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("config.yml");
            fs_err::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: {}\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
                    !logged,
                    dir.path().join("data").display()
                ),
            )
            .unwrap();
            // One file for both streams, opened once (appends from both ends interleave).
            let file =
                logged.then(|| fs_err::File::create(dir.path().join("log")).unwrap().into_file());
            let log = || match &file {
                Some(f) => Stdio::from(f.try_clone().unwrap()),
                None => Stdio::null(),
            };
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log())
                .stderr(log())
                .spawn()
                .expect("docker-registry");
            // Up when `/v2/` answers (200, or 401 with auth); a lost port race exits.
            for _ in 0..100 {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if ping(port) {
                    return Registry { child, port, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start");
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The access log so far (one line a request: `"METHOD PATH HTTP/1.1" STATUS ...`), for
    /// a registry made by [`Registry::start_logged`].
    pub(crate) fn log(&self) -> String {
        fs_err::read_to_string(self._dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /v2/` on the port answers 200 or 401.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok()
        && (head.starts_with(b"HTTP/1.0 200")
            || head.starts_with(b"HTTP/1.1 200")
            || head.starts_with(b"HTTP/1.0 401")
            || head.starts_with(b"HTTP/1.1 401"))
}

/// `skopeo copy --all --preserve-digests oci:LAYOUT:TAG docker://HOST/REPO:TAG` (plain
/// http, with credentials when given): whether skopeo could.
pub(crate) fn skopeo_push(layout: &Path, tag: &str, dest: &str, creds: Option<&str>) -> Out {
    let mut args: Vec<String> = vec![
        "copy".into(),
        "--all".into(),
        "--preserve-digests".into(),
        "--dest-tls-verify=false".into(),
    ];
    if let Some(c) = creds {
        args.push(format!("--dest-creds={c}"));
    }
    args.push(format!("oci:{}:{tag}", layout.display()));
    args.push(format!("docker://{dest}"));
    run("skopeo", &args)
}

/// Every layout directory (holding `oci-layout`) under `root`, sorted.
pub(crate) fn layouts_under(root: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() == "oci-layout")
        .filter_map(|e| e.path().parent().map(Path::to_path_buf))
        .collect();
    out.sort();
    out
}

/// Whether `tag` is a tag a registry takes: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn registry_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && tag.len() <= 128
}
