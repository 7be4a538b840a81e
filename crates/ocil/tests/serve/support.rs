//! Running `ocil serve` (and stopping it), a minimal HTTP/1.1 GET over a `TcpStream`, and
//! building layouts with `ocil` itself.

#![allow(dead_code, reason = "each test module uses part of it")]

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

pub(crate) use crate::peers::{docker_daemon, require_tool, shared_dir};

/// `sha256:<hex>`.
pub(crate) fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// What a command did.
#[derive(Debug)]
pub(crate) struct Out {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Run a program.
pub(crate) fn run<I, S>(program: &str, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(program)
        .args(args)
        .env("SOURCE_DATE_EPOCH", "1704067200")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Run `ocil`, which must succeed.
pub(crate) fn ocil<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = run(env!("CARGO_BIN_EXE_ocil"), &args);
    assert!(out.ok, "ocil {args:?} failed: {}", out.stderr);
    out
}

/// A running `ocil serve`; stopped with SIGTERM (then SIGKILL) on drop.
pub(crate) struct Serving {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    /// Its stderr (notes and the access log).
    pub(crate) log: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Start `ocil serve ROOT --addr 127.0.0.1:0 ARGS` and read the bound address.
pub(crate) fn serve(root: &Path, args: &[&str]) -> Serving {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocil"))
        .arg("serve")
        .arg(root)
        .args(["--addr", "127.0.0.1:0"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut r = BufReader::new(stdout);
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        // Keep reading, so the server never blocks on a full pipe.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let addr = line.trim().to_owned();
    if addr.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "ocil serve printed no address: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    Serving { child: Some(child), addr, log, _tmp: tmp }
}

impl Serving {
    /// SIGTERM, and the exit status (within 30 seconds).
    pub(crate) fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("ocil serve did not stop within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(15);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A response of [`get`].
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// `GET path` (HTTP/1.1, `Connection: close`), read whole; `None` when the connection
/// broke or the body is shorter than its `Content-Length`.
pub(crate) fn get(addr: &str, path: &str) -> Option<Resp> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    let split = all.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&all[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = all[split..].to_vec();
    let len: Option<usize> =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok());
    if len.is_some_and(|l| l != body.len()) {
        return None;
    }
    Some(Resp { status, headers, body })
}

/// `DIR:TAG`.
pub(crate) fn at(dir: &Path, tag: &str) -> String {
    format!("{}:{tag}", dir.display())
}

/// A layout at `dir` with tagged images `i0`.. on one base layer, each adding a file of
/// `size` bytes from `seed`.
pub(crate) fn build(dir: &Path, images: usize, size: usize, seed: u64) {
    let mut rng = crate::crash_harness::Rng(seed);
    let work = dir.with_extension("files");
    ocil(["init".as_ref(), dir.as_os_str()]);
    ocil(["new", &at(dir, "base")]);
    for i in 0..images {
        let d = work.join(format!("l{i}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("data-{i}.bin")), rng.bytes(size)).unwrap();
        ocil([
            "append".as_ref(),
            at(dir, "base").as_ref(),
            d.as_os_str(),
            "--tag".as_ref(),
            format!("i{i}").as_ref(),
        ]);
    }
    std::fs::remove_dir_all(&work).unwrap();
}

/// `index.json` as JSON.
pub(crate) fn index(layout: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

/// The digest `tag` names in a layout's index.json.
pub(crate) fn tag_digest(layout: &Path, tag: &str) -> Option<String> {
    index(layout)["manifests"].as_array()?.iter().find_map(|e| {
        (e["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .then(|| e["digest"].as_str().unwrap().to_owned())
    })
}

/// Copy a tree, writable (the shared fixtures are read-only).
pub(crate) fn copy_tree(src: &Path, dst: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        let to = dst.join(entry.path().strip_prefix(src).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
        } else {
            std::fs::copy(entry.path(), &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
}
