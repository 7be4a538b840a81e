//! What the HTTP tests share: a server on 127.0.0.1 (random port) over a temp directory,
//! stopped when dropped; a blocking client (ureq) that returns every status as data; raw
//! requests over a `TcpStream` for what a client library would clean up; layouts written
//! by hand (serde_json and sha2, not ocil-layout) for the read-only tests; and the
//! conformance suite's test data.

#![allow(dead_code, reason = "each test module uses part of it")]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ocil_serve::{Config, Server, ShutdownHandle};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// `sha256:<hex>` of bytes.
pub(crate) fn digest(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A running server; stopped (and joined) on drop.
pub(crate) struct Srv {
    pub(crate) addr: SocketAddr,
    pub(crate) root: PathBuf,
    handle: ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Srv {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A change to the server's configuration before it starts.
pub(crate) type Tweak = Box<dyn FnOnce(&mut Config)>;

/// How to start one.
#[derive(Default)]
pub(crate) struct Opts {
    pub(crate) push: bool,
    pub(crate) delete: bool,
    pub(crate) name: Option<String>,
    pub(crate) tweak: Option<Tweak>,
}

impl Opts {
    pub(crate) fn rw() -> Opts {
        Opts { push: true, delete: true, ..Opts::default() }
    }
}

/// Serve `root` (kept as is; the caller owns it).
pub(crate) fn serve_at(root: &Path, opts: Opts) -> Srv {
    start(root.to_path_buf(), None, opts)
}

/// Serve a fresh empty directory of layouts.
pub(crate) fn serve_empty(opts: Opts) -> Srv {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    start(root, Some(tmp), opts)
}

fn start(root: PathBuf, tmp: Option<tempfile::TempDir>, opts: Opts) -> Srv {
    let dir = cap_std::fs::Dir::open_ambient_dir(&root, cap_std::ambient_authority()).unwrap();
    let name = root.file_name().unwrap().to_string_lossy().into_owned();
    let mut config = Config::new(dir, &root.display().to_string(), &name);
    config.push = opts.push;
    config.delete = opts.delete;
    config.name = opts.name;
    if let Some(t) = opts.tweak {
        t(&mut config);
    }
    let server = Server::bind("127.0.0.1:0".parse().unwrap(), config).unwrap();
    let addr = server.local_addr();
    let handle = server.shutdown_handle();
    let thread = std::thread::spawn(move || server.run(false).unwrap());
    Srv { addr, root, handle, thread: Some(thread), _tmp: tmp }
}

/// A response: status, headers (lower-case names), body.
#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The first error code of a spec error body.
    pub(crate) fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or_default().to_owned()
    }

    /// `Location`, as a path relative to the server.
    pub(crate) fn location(&self) -> String {
        let l = self.header("location").expect("a Location header").to_owned();
        match l.find("/v2/") {
            Some(i) => l[i..].to_owned(),
            None => l,
        }
    }
}

/// A client of one server.
pub(crate) struct Client {
    agent: ureq::Agent,
    pub(crate) base: String,
    pub(crate) auth: Option<String>,
}

pub(crate) fn client(srv: &Srv) -> Client {
    Client::new(&format!("http://{}", srv.addr), None)
}

impl Client {
    pub(crate) fn new(base: &str, tls: Option<ureq::tls::TlsConfig>) -> Client {
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)));
        if let Some(t) = tls {
            cfg = cfg.tls_config(t);
        }
        Client { agent: cfg.build().into(), base: base.to_owned(), auth: None }
    }

    /// A request; `path` starts with `/v2/` (or is a whole URL).
    pub(crate) fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        self.try_req(method, path, headers, body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub(crate) fn try_req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Resp, ureq::Error> {
        let url =
            if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.base) };
        let mut b = ureq::http::Request::builder().method(method).uri(&url);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if let Some(a) = &self.auth {
            b = b.header("authorization", a.as_str());
        }
        let with_body = !body.is_empty() || matches!(method, "PUT" | "PATCH" | "POST");
        let mut r = if with_body {
            self.agent.run(b.body(body.to_vec()).unwrap())?
        } else {
            self.agent.run(b.body(()).unwrap())?
        };
        let status = r.status().as_u16();
        let headers = r
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let body = if method == "HEAD" {
            Vec::new()
        } else {
            r.body_mut().with_config().limit(1 << 30).read_to_vec()?
        };
        Ok(Resp { status, headers, body })
    }

    pub(crate) fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &[], b"")
    }

    /// Upload a blob monolithically (POST, then PUT ?digest=); returns its digest.
    pub(crate) fn push_blob(&self, name: &str, bytes: &[u8]) -> String {
        let d = digest(bytes);
        let r = self.req("POST", &format!("/v2/{name}/blobs/uploads/"), &[], b"");
        assert_eq!(r.status, 202, "{r:?}");
        let loc = r.location();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let r = self.req(
            "PUT",
            &format!("{loc}{sep}digest={d}"),
            &[("content-type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(r.status, 201, "{r:?} {}", String::from_utf8_lossy(&r.body));
        d
    }

    /// PUT a manifest.
    pub(crate) fn put_manifest(
        &self,
        name: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Resp {
        self.req(
            "PUT",
            &format!("/v2/{name}/manifests/{reference}"),
            &[("content-type", media_type)],
            bytes,
        )
    }

    pub(crate) fn tags(&self, name: &str) -> Vec<String> {
        let r = self.get(&format!("/v2/{name}/tags/list"));
        assert_eq!(r.status, 200, "{r:?}");
        r.json()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect()
    }
}

/// A raw HTTP/1.1 request (the path exactly as given): the status and the whole response.
pub(crate) fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

/// `GET <path>` sent raw, with `Connection: close`.
pub(crate) fn raw_get(addr: SocketAddr, path: &str) -> (u16, String) {
    raw(addr, format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
}

/// The conformance suite's layer: a gzipped tar of one small text file.
pub(crate) const LAYER_B64: &str = "H4sIAAAAAAAAA+3OQQrCMBCF4a49xXgBSUnaHMCTRBptQRNpp6i3t0UEV7oqIv7fYgbmzeJpHHSjVy0WZCa1c/MufWVe94N3RWlrZ72x3k/30nhbFWKWLPU0Dhp6keJ8im//PuU/6pZH2WVtYx8b0Sz7LjWSR5VLG6YRBumSzOlGtjkd+qDjMWiX07Befbs7AAAAAAAAAAAAAAAAAPyzO34MnqoAKAAA";

pub(crate) fn layer() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(LAYER_B64).unwrap()
}

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// A config as the suite makes one (unique by its author), indented as Go's MarshalIndent.
pub(crate) fn config(author: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "author": author, "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .unwrap()
}

/// An image manifest over a config and the suite's layer, with the suite's extra config
/// fields (`data`, an unknown member).
pub(crate) fn manifest(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let layers: Vec<Value> = layers
        .iter()
        .map(|l| json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": l.len(), "digest": digest(l)}))
        .collect();
    serde_json::to_vec_pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest(config), "size": config.len(),
            "data": b64.encode(config),
            "newUnspecifiedField": b64.encode("hello world"),
        },
        "layers": layers,
    }))
    .unwrap()
}

/// Push a config, the layer and a manifest over them under `tag`; returns the manifest's
/// bytes and digest.
pub(crate) fn push_image(c: &Client, name: &str, tag: &str, author: &str) -> (Vec<u8>, String) {
    let cfg = config(author);
    c.push_blob(name, &cfg);
    let l = layer();
    c.push_blob(name, &l);
    let m = manifest(&cfg, &[&l]);
    let r = c.put_manifest(name, tag, OCI_MANIFEST, &m);
    assert_eq!(r.status, 201, "{r:?} {}", String::from_utf8_lossy(&r.body));
    let d = digest(&m);
    (m, d)
}

/// A layout written by hand: `oci-layout`, `blobs/sha256/*`, `index.json` with `entries`.
pub(crate) struct HandLayout {
    pub(crate) dir: PathBuf,
}

impl HandLayout {
    pub(crate) fn new(dir: &Path) -> HandLayout {
        std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let l = HandLayout { dir: dir.to_path_buf() };
        l.write_index(&[]);
        l
    }

    pub(crate) fn blob(&self, bytes: &[u8]) -> String {
        let d = digest(bytes);
        std::fs::write(self.dir.join("blobs/sha256").join(&d[7..]), bytes).unwrap();
        d
    }

    /// Replace index.json (by rename, as ocil does) with these entries.
    pub(crate) fn write_index(&self, entries: &[Value]) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
        let tmp = self.dir.join(".index.json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&index).unwrap()).unwrap();
        std::fs::rename(&tmp, self.dir.join("index.json")).unwrap();
    }

    pub(crate) fn blob_path(&self, digest: &str) -> PathBuf {
        self.dir.join("blobs/sha256").join(&digest[7..])
    }

    /// Every file under `blobs/` whose name is not its content's digest, and every temp
    /// file left: what must never be there.
    pub(crate) fn bad_files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).unwrap();
            if digest(&bytes)[7..] != name {
                out.push(name);
            }
        }
        out
    }
}

/// An entry of index.json.
pub(crate) fn entry(
    media_type: &str,
    bytes: &[u8],
    tag: Option<&str>,
    full: Option<&str>,
) -> Value {
    let mut e = json!({"mediaType": media_type, "digest": digest(bytes), "size": bytes.len()});
    let mut ann = serde_json::Map::new();
    if let Some(t) = tag {
        ann.insert("org.opencontainers.image.ref.name".into(), t.into());
    }
    if let Some(f) = full {
        ann.insert("io.containerd.image.name".into(), f.into());
    }
    if !ann.is_empty() {
        e["annotations"] = Value::Object(ann);
    }
    e
}

/// A small image written into a hand layout: (manifest bytes, config bytes, layer bytes).
pub(crate) fn hand_image(
    l: &HandLayout,
    author: &str,
    layer_bytes: &[u8],
) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let cfg = config(author);
    l.blob(&cfg);
    l.blob(layer_bytes);
    let m = manifest(&cfg, &[layer_bytes]);
    l.blob(&m);
    (m, cfg, layer_bytes.to_vec())
}

/// Run `f` on `n` threads at once; collect their results.
pub(crate) fn parallel<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let f = f.clone();
            std::thread::spawn(move || f(i))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}
