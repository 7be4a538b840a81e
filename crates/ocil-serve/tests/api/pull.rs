//! The suite's "Pull" workflow, and what it checks loosely: exact bytes and media types,
//! ranges, index.json read again when it changes.

use std::io::{Read as _, Write as _};

use serde_json::json;

use crate::support::*;

/// A read-only server over a hand-made layout `app` with tag `v1` (and the full name
/// `example.com/team/app:1.0` on a second entry).
fn fixture() -> (tempfile::TempDir, HandLayout, Srv, Vec<u8>, Vec<u8>, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let l = HandLayout::new(&tmp.path().join("app"));
    let (m, cfg, lay) = hand_image(&l, "pull", &layer());
    let (m2, _, _) = hand_image(&l, "pull-2", b"a plain layer");
    l.write_index(&[
        entry(OCI_MANIFEST, &m, Some("v1"), None),
        entry(OCI_MANIFEST, &m2, Some("1.0"), Some("example.com/team/app:1.0")),
    ]);
    let srv = serve_at(&l.dir, Opts::default());
    (tmp, l, srv, m, cfg, lay)
}

#[test]
fn base_endpoint_answers_without_a_challenge() {
    let (_t, _l, srv, ..) = fixture();
    let c = client(&srv);
    for m in ["GET", "HEAD"] {
        let r = c.req(m, "/v2/", &[], b"");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("docker-distribution-api-version"), Some("registry/2.0"));
        assert_eq!(r.header("www-authenticate"), None);
    }
}

#[test]
fn blobs_head_and_get() {
    let (_t, _l, srv, _m, cfg, _) = fixture();
    let c = client(&srv);
    let dummy = digest(b"hello world");
    let r = c.req("HEAD", &format!("/v2/app/blobs/{dummy}"), &[], b"");
    assert_eq!(r.status, 404);
    let r = c.get(&format!("/v2/app/blobs/{dummy}"));
    assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UNKNOWN"));
    let d = digest(&cfg);
    let r = c.req("HEAD", &format!("/v2/app/blobs/{d}"), &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
    assert_eq!(r.header("content-length"), Some(cfg.len().to_string().as_str()));
    assert_eq!(r.header("accept-ranges"), Some("bytes"));
    let r = c.get(&format!("/v2/app/blobs/{d}"));
    assert_eq!((r.status, &r.body), (200, &cfg));
}

#[test]
fn manifests_are_the_stored_bytes_with_their_media_type() {
    let (_t, _l, srv, m, ..) = fixture();
    let c = client(&srv);
    let d = digest(&m);
    let r = c.req("HEAD", "/v2/app/manifests/.INVALID_MANIFEST_NAME", &[], b"");
    assert_eq!(r.status, 404);
    let r = c.get("/v2/app/manifests/.INVALID_MANIFEST_NAME");
    assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    for reference in ["v1", d.as_str()] {
        let path = format!("/v2/app/manifests/{reference}");
        // Asking for a Docker type changes nothing: the bytes are the digest.
        let r = c.req("GET", &path, &[("accept", DOCKER_MANIFEST)], b"");
        assert_eq!(r.status, 200, "{reference}");
        assert_eq!(r.body, m);
        assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(r.header("docker-content-digest"), Some(d.as_str()));
        assert_eq!(r.header("content-length"), Some(m.len().to_string().as_str()));
        assert_eq!(r.header("etag"), Some(format!("\"{d}\"").as_str()));
        let h = c.req("HEAD", &path, &[("accept", OCI_MANIFEST)], b"");
        assert_eq!(h.status, 200);
        assert_eq!(h.header("docker-content-digest"), Some(d.as_str()));
        assert_eq!(h.header("content-length"), Some(m.len().to_string().as_str()));
        // A client that has it gets 304.
        let r = c.req("GET", &path, &[("if-none-match", &format!("\"{d}\""))], b"");
        assert_eq!(r.status, 304);
    }
}

#[test]
fn a_full_name_is_served_as_its_repository() {
    let (_t, _l, srv, ..) = fixture();
    let c = client(&srv);
    assert_eq!(c.tags("app"), ["1.0", "v1"]);
    assert_eq!(c.tags("example.com/team/app"), ["1.0"]);
    let r = c.get("/v2/example.com/team/app/manifests/1.0");
    assert_eq!(r.status, 200);
    let r = c.get("/v2/example.com/team/app/manifests/v1");
    assert_eq!(r.status, 404);
    let r = c.get("/v2/nobody/tags/list");
    assert_eq!((r.status, r.code().as_str()), (404, "NAME_UNKNOWN"));
    let r = c.get("/v2/_catalog");
    assert_eq!(r.json(), json!({"repositories": ["app", "example.com/team/app"]}));
}

#[test]
fn a_blob_digest_is_not_a_manifest() {
    let (_t, _l, srv, _m, cfg, lay) = fixture();
    let c = client(&srv);
    for b in [&cfg, &lay] {
        let r = c.get(&format!("/v2/app/manifests/{}", digest(b)));
        assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    }
}

#[test]
fn a_malformed_digest_is_a_spec_error_not_a_500() {
    let (_t, _l, srv, ..) = fixture();
    let c = client(&srv);
    for bad in ["sha256:totallywrong", "sha256:", "md5:00", "sha256:ABCDEF"] {
        for path in [format!("/v2/app/manifests/{bad}"), format!("/v2/app/blobs/{bad}")] {
            let r = c.get(&path);
            assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"), "{path}");
        }
    }
}

#[test]
fn single_ranges_partial_content_and_416() {
    let tmp = tempfile::tempdir().unwrap();
    let l = HandLayout::new(&tmp.path().join("r"));
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let d = l.blob(&big);
    let srv = serve_at(&l.dir, Opts::default());
    let c = client(&srv);
    let path = format!("/v2/r/blobs/{d}");
    let size = big.len();
    let cases: [(&str, usize, usize); 4] = [
        ("bytes=0-", 0, size - 1),
        ("bytes=10-19", 10, 19),
        ("bytes=-5", size - 5, size - 1),
        ("bytes=299990-400000", 299_990, size - 1),
    ];
    for (range, a, b) in cases {
        let r = c.req("GET", &path, &[("range", range)], b"");
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.header("content-range"), Some(format!("bytes {a}-{b}/{size}").as_str()));
        assert_eq!(r.body, &big[a..=b], "{range}");
    }
    for range in [format!("bytes={size}-"), "bytes=-0".to_owned()] {
        let r = c.req("GET", &path, &[("range", &range)], b"");
        assert_eq!(r.status, 416, "{range}");
        assert_eq!(r.header("content-range"), Some(format!("bytes */{size}").as_str()));
    }
    // Several ranges: the whole blob.
    let r = c.req("GET", &path, &[("range", "bytes=0-1,5-6")], b"");
    assert_eq!((r.status, r.body.len()), (200, size));
}

#[test]
fn index_json_is_read_again_when_it_changes() {
    let (_t, l, srv, m, ..) = fixture();
    let c = client(&srv);
    assert_eq!(c.tags("app"), ["1.0", "v1"]);
    let (m3, _, _) = hand_image(&l, "later", b"another layer");
    l.write_index(&[
        entry(OCI_MANIFEST, &m, Some("v1"), None),
        entry(OCI_MANIFEST, &m3, Some("v2"), None),
    ]);
    assert_eq!(c.tags("app"), ["v1", "v2"]);
    let r = c.get("/v2/app/manifests/v2");
    assert_eq!((r.status, &r.body), (200, &m3));
}

#[test]
fn an_open_blob_survives_its_removal() {
    let tmp = tempfile::tempdir().unwrap();
    let l = HandLayout::new(&tmp.path().join("gc"));
    let big: Vec<u8> =
        (0..8_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let d = l.blob(&big);
    let srv = serve_at(&l.dir, Opts::default());
    let mut s = std::net::TcpStream::connect(srv.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(s, "GET /v2/gc/blobs/{d} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut first = vec![0u8; 4096];
    let n = s.read(&mut first).unwrap();
    assert!(n > 0);
    // As gc would: the file goes while the response is being sent.
    std::fs::remove_file(l.blob_path(&d)).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    let mut all = first[..n].to_vec();
    all.extend(rest);
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(all.starts_with(b"HTTP/1.1 200"));
    assert_eq!(digest(&all[split..]), d, "the whole blob arrived");
    // And a new request no longer finds it.
    let r = client(&srv).get(&format!("/v2/gc/blobs/{d}"));
    assert_eq!(r.status, 404);
}
