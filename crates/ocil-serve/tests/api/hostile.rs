//! Bad input: names and digests that try to leave ROOT, oversized heads and manifests,
//! slow clients, many connections. Each is a spec error (or a closed connection), nothing
//! is written, and the server keeps serving everyone else.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;

/// Everything under `dir`, as sorted relative paths.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn paths_that_try_to_leave_root() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("secret"), b"TOP-SECRET-CONTENT").unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    // A symlink inside ROOT that leads out of it.
    std::os::unix::fs::symlink(tmp.path(), root.join("escape")).unwrap();
    let srv = serve_at(&root, Opts::rw());
    let before = tree(tmp.path());
    let secret_digest = digest(b"TOP-SECRET-CONTENT");
    let hex = &secret_digest[7..];
    for path in [
        "/v2/../manifests/v1".to_owned(),
        "/v2/a/../../manifests/v1".to_owned(),
        "/v2/%2e%2e/manifests/v1".to_owned(),
        "/v2/a%2F..%2F..%2Fx/manifests/v1".to_owned(),
        "/v2//etc/manifests/v1".to_owned(),
        "/v2/./x/tags/list".to_owned(),
        "/v2/a/blobs/sha256:../../../secret".to_owned(),
        "/v2/a/blobs/sha256:..%2F..%2Fsecret".to_owned(),
        format!("/v2/a/manifests/sha256:../{hex}"),
        format!("/v2/escape/blobs/{secret_digest}"),
        "/v2/escape/manifests/v1".to_owned(),
        "/v2/escape/tags/list".to_owned(),
    ] {
        for method in ["GET", "PUT", "DELETE", "POST"] {
            let (status, text) = raw(
                srv.addr,
                format!("{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}").as_bytes(),
            );
            assert!((400..500).contains(&status), "{method} {path}: {text}");
            assert!(!text.contains("TOP-SECRET-CONTENT"), "{method} {path}: {text}");
            assert!(text.contains("\"errors\""), "{method} {path}: a spec error body: {text}");
        }
    }
    assert_eq!(tree(tmp.path()), before, "nothing written anywhere");
    assert_eq!(raw_get(srv.addr, "/v2/").0, 200, "still serving");
}

#[test]
fn a_blob_name_is_only_ever_a_digest() {
    let tmp = tempfile::tempdir().unwrap();
    let l = HandLayout::new(&tmp.path().join("app"));
    // A stray file in blobs/sha256 named like a path, and index.json, are not blobs.
    std::fs::write(l.dir.join("blobs/sha256/index.json"), b"x").unwrap();
    let srv = serve_at(&l.dir, Opts::default());
    for path in
        ["/v2/app/blobs/sha256:index.json", "/v2/app/blobs/index.json", "/v2/app/blobs/sha256:"]
    {
        let (status, text) = raw_get(srv.addr, path);
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains("DIGEST_INVALID"), "{text}");
    }
}

#[test]
fn oversized_heads_and_manifests() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    // A head larger than the cap.
    let big = "x".repeat(80 * 1024);
    let (status, _) = raw(
        srv.addr,
        format!("GET /v2/ HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    assert!(status == 431 || status == 0, "{status}");
    // A manifest over 4 MiB: refused by its Content-Length, and by its bytes.
    let body = vec![b' '; 4 * 1024 * 1024 + 1];
    // (The server answers before reading the body and closes: the client may see the 413 or
    // a connection cut while it was still sending.)
    let put = c.try_req("PUT", "/v2/big/manifests/v1", &[("content-type", OCI_MANIFEST)], &body);
    if let Ok(r) = put {
        assert_eq!((r.status, r.code().as_str()), (413, "SIZE_INVALID"));
    }
    let (status, text) = raw(
        srv.addr,
        b"PUT /v2/big/manifests/v1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n{",
    );
    assert_eq!(status, 413, "{text}");
    assert_eq!(c.get("/v2/").status, 200);
}

#[test]
fn slow_and_idle_clients_are_cut() {
    let srv = serve_empty(Opts {
        tweak: Some(Box::new(|c| {
            c.header_timeout = Duration::from_millis(500);
            c.idle_timeout = Duration::from_millis(800);
        })),
        ..Opts::rw()
    });
    // A client that sends half a head and stops.
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /v2/ HTTP/1.1\r\nHost:").unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(t.elapsed() < Duration::from_secs(10), "closed by the server");
    // A client that starts an upload body and stops sending.
    let c = client(&srv);
    let r = c.req("POST", "/v2/slow/blobs/uploads/", &[], b"");
    let mut s = TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "PATCH {} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a little",
        r.location()
    )
    .unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(t.elapsed() < Duration::from_secs(10), "closed by the server");
    // The session still reports what arrived, so the client can resume.
    let r = c.get(&r.location());
    assert_eq!(r.status, 204);
    assert_eq!(c.get("/v2/").status, 200);
}

#[test]
fn many_connections_are_bounded_and_others_are_still_served() {
    let srv = serve_empty(Opts {
        tweak: Some(Box::new(|c| {
            c.max_connections = 16;
            c.header_timeout = Duration::from_millis(500);
        })),
        ..Opts::default()
    });
    // 300 connections that send nothing.
    let idle: Vec<TcpStream> = (0..300).filter_map(|_| TcpStream::connect(srv.addr).ok()).collect();
    assert!(idle.len() > 100);
    let t = Instant::now();
    let c = client(&srv);
    assert_eq!(c.get("/v2/").status, 200);
    assert!(t.elapsed() < Duration::from_secs(60));
    drop(idle);
    // And many real clients at once.
    let base = c.base.clone();
    let ok = parallel(32, move |_| Client::new(&base, None).get("/v2/_catalog").status == 200);
    assert!(ok.iter().all(|&b| b));
}

#[test]
fn unknown_endpoints_and_methods() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let r = c.get("/v2/a/nothing/here");
    assert_eq!(r.status, 404);
    assert!(!r.code().is_empty());
    let r = c.get("/v1/_ping");
    assert_eq!(r.status, 404);
    let r = c.req("POST", "/v2/a/manifests/v1", &[], b"{}");
    assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"));
    let r = c.req("PATCH", &format!("/v2/a/blobs/uploads/{}", "0".repeat(32)), &[], b"x");
    assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));
    // Another repository's session id is unknown here.
    let r = c.req("POST", "/v2/one/blobs/uploads/", &[], b"");
    let id = r.location().rsplit('/').next().unwrap().to_owned();
    let r = c.get(&format!("/v2/two/blobs/uploads/{id}"));
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
}
