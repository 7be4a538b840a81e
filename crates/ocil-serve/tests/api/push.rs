//! The suite's "Push" workflow: streamed, monolithic and chunked uploads (416 for an
//! out-of-order or a repeated chunk, the status of a "stale" session), cross-repository
//! mounts, manifest uploads; and what the suite checks loosely: what lands on disk.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::*;

fn blob_of(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn streamed_upload() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let a = blob_of(42, 1);
    let r = c.req("POST", "/v2/push/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202);
    let r = c.req("PATCH", &r.location(), &[("content-type", "application/octet-stream")], &a);
    assert_eq!(r.status, 202, "{r:?}");
    let r = c.req("PUT", &format!("{}?digest={}", r.location(), digest(&a)), &[], b"");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.location(), format!("/v2/push/blobs/{}", digest(&a)));
    assert_eq!(c.get(&format!("/v2/push/blobs/{}", digest(&a))).body, a);
}

#[test]
fn monolithic_uploads() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let cfg = config("monolithic");
    let d = digest(&cfg);
    assert_eq!(c.get(&format!("/v2/push/blobs/{}", digest(b"hello world"))).status, 404);
    // POST with the digest and the bytes.
    let r = c.req(
        "POST",
        &format!("/v2/push/blobs/uploads/?digest={d}"),
        &[("content-type", "application/octet-stream")],
        &cfg,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert!(!r.location().is_empty());
    assert_eq!(c.get(&format!("/v2/push/blobs/{d}")).status, 200);
    // POST for a session, then PUT the bytes with the digest (the ':' percent-encoded).
    let r = c.req("POST", "/v2/push/blobs/uploads/", &[], b"");
    assert_eq!(r.status, 202);
    let enc = digest(&layer()).replace(':', "%3A");
    let r = c.req("PUT", &format!("{}?digest={enc}", r.location()), &[], &layer());
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(c.get(&format!("/v2/push/blobs/{}", digest(&layer()))).body, layer());
}

#[test]
fn chunked_upload_in_order_out_of_order_and_repeated() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let b = blob_of(42, 2);
    let (c1, c2) = b.split_at(42 / 2 + 1);
    let r1 = format!("0-{}", c1.len() - 1);
    let r2 = format!("{}-{}", c1.len(), b.len() - 1);
    let len2 = c2.len().to_string();
    // Out of order: the second chunk first.
    let r = c.req("POST", "/v2/push/blobs/uploads/", &[("content-length", "0")], b"");
    let r = c.req("PATCH", &r.location(), &[("content-range", &r2), ("content-length", &len2)], c2);
    assert_eq!((r.status, r.code().as_str()), (416, "RANGE_INVALID"));
    // In order.
    let post = c.req("POST", "/v2/push/blobs/uploads/", &[("content-length", "0")], b"");
    let first = post.location();
    let r = c.req("PATCH", &first, &[("content-range", &r1)], c1);
    assert_eq!(r.status, 202);
    assert_eq!(r.header("range"), Some(r1.as_str()));
    // The same chunk again, at the session's first URL.
    let r = c.req("PATCH", &first, &[("content-range", &r1)], c1);
    assert_eq!(r.status, 416);
    assert_eq!(r.header("range"), Some(r1.as_str()));
    // That "stale" URL still reports the session.
    let r = c.req("GET", &first, &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("range"), Some(r1.as_str()));
    assert!(r.header("location").is_some() && r.header("docker-upload-uuid").is_some());
    let r = c.req("PATCH", &r.location(), &[("content-range", &r2), ("content-length", &len2)], c2);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.header("range"), Some(format!("0-{}", b.len() - 1).as_str()));
    let r = c.req(
        "PUT",
        &format!("{}?digest={}", r.location(), digest(&b)),
        &[("content-length", "0")],
        b"",
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(c.get(&format!("/v2/push/blobs/{}", digest(&b))).body, b);
    // The session is gone.
    let r = c.get(&first);
    assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));
}

#[test]
fn the_last_chunk_can_come_with_the_put() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let b = blob_of(1000, 3);
    let (c1, c2) = b.split_at(400);
    let r = c.req("POST", "/v2/push/blobs/uploads/", &[], b"");
    let r = c.req("PATCH", &r.location(), &[("content-range", "0-399")], c1);
    assert_eq!(r.status, 202);
    let r = c.req(
        "PUT",
        &format!("{}?digest={}", r.location(), digest(&b)),
        &[("content-range", "400-999")],
        c2,
    );
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(c.get(&format!("/v2/push/blobs/{}", digest(&b))).body, b);
}

#[test]
fn a_digest_that_does_not_match_stores_nothing() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let wrong = digest(b"something else");
    let r = c.req("POST", &format!("/v2/push/blobs/uploads/?digest={wrong}"), &[], b"the bytes");
    assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
    let r = c.req("POST", "/v2/push/blobs/uploads/", &[], b"");
    let r = c.req("PUT", &format!("{}?digest={wrong}", r.location()), &[], b"the bytes");
    assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
    for d in [wrong, digest(b"the bytes")] {
        assert_eq!(c.get(&format!("/v2/push/blobs/{d}")).status, 404);
    }
    let l = HandLayout { dir: srv.root.join("push") };
    let names: Vec<_> = std::fs::read_dir(l.dir.join("blobs/sha256")).unwrap().collect();
    assert!(names.is_empty(), "no blob and no temp file: {names:?}");
}

#[test]
fn cancel_and_expiry_remove_the_bytes() {
    let srv = serve_empty(Opts {
        tweak: Some(Box::new(|c| c.upload_expiry = Duration::from_millis(400))),
        ..Opts::rw()
    });
    let c = client(&srv);
    let sha = srv.root.join("push/blobs/sha256");
    let count = || std::fs::read_dir(&sha).map(|d| d.count()).unwrap_or(0);
    let r = c.req("POST", "/v2/push/blobs/uploads/", &[], b"");
    let r = c.req("PATCH", &r.location(), &[], b"some bytes");
    assert_eq!(count(), 1, "the session's temp file");
    let r = c.req("DELETE", &r.location(), &[], b"");
    assert_eq!(r.status, 204);
    assert_eq!(count(), 0);
    // Abandoned: gone after the expiry.
    let r = c.req("POST", "/v2/push/blobs/uploads/", &[], b"");
    let loc = r.location();
    c.req("PATCH", &loc, &[], b"some bytes");
    assert_eq!(count(), 1);
    let t = Instant::now();
    while count() != 0 && t.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(count(), 0, "the abandoned upload's temp file");
    let r = c.get(&loc);
    assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UPLOAD_UNKNOWN"));
    let r = c.req("DELETE", &loc, &[], b"");
    assert_eq!(r.status, 404);
}

#[test]
fn cross_repository_mount() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let a = blob_of(42, 4);
    let d = c.push_blob("source", &a);
    // Without `from`, a blob the target does not have: a session.
    let r = c.req(
        "POST",
        &format!("/v2/cross/blobs/uploads/?mount={}", digest(b"hello world")),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);
    assert!(r.location().starts_with("/v2/cross/blobs/uploads/"));
    // From another repository (another layout): 201 and the blob is there.
    let r = c.req("POST", &format!("/v2/cross/blobs/uploads/?mount={d}&from=source"), &[], b"");
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.location(), format!("/v2/cross/blobs/{d}"));
    assert_eq!(c.get(&r.location()).body, a);
    // From a repository that does not have it: a session.
    let r = c.req(
        "POST",
        &format!("/v2/other/blobs/uploads/?mount={}&from=cross", digest(b"x")),
        &[],
        b"",
    );
    assert_eq!(r.status, 202);
}

#[test]
fn manifest_uploads() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    assert_eq!(c.get("/v2/push/manifests/.INVALID_MANIFEST_NAME").status, 404);
    let cfg = config("manifests");
    c.push_blob("push", &cfg);
    c.push_blob("push", &layer());
    let m = manifest(&cfg, &[&layer()]);
    for i in 0..4 {
        let r = c.put_manifest("push", &format!("test{i}"), OCI_MANIFEST, &m);
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.location(), format!("/v2/push/manifests/{}", digest(&m)));
        assert_eq!(r.header("docker-content-digest"), Some(digest(&m).as_str()));
    }
    // No layers, no mediaType: the Content-Type says what it is.
    let empty = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&cfg), "size": cfg.len()},
        "layers": [],
    }))
    .unwrap();
    let r = c.put_manifest("push", "emptylayer", OCI_MANIFEST, &empty);
    assert_eq!(r.status, 201, "{r:?}");
    let r = c.req(
        "GET",
        &format!("/v2/push/manifests/{}", digest(&m)),
        &[("accept", OCI_MANIFEST)],
        b"",
    );
    assert_eq!((r.status, &r.body), (200, &m));
    let r = c.get("/v2/push/manifests/emptylayer");
    assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(c.tags("push"), ["emptylayer", "test0", "test1", "test2", "test3"]);
    // By digest: kept, untagged.
    let m2 = manifest(&cfg, &[]);
    let r = c.put_manifest("push", &digest(&m2), OCI_MANIFEST, &m2);
    assert_eq!(r.status, 201);
    assert_eq!(c.get(&format!("/v2/push/manifests/{}", digest(&m2))).body, m2);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(srv.root.join("push/index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 6, "{index}");
    assert!(HandLayout { dir: srv.root.join("push") }.bad_files().is_empty());
}

#[test]
fn a_manifest_naming_a_missing_blob_is_refused() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let cfg = config("missing");
    c.push_blob("push", &cfg);
    let m = manifest(&cfg, &[b"never pushed"]);
    let r = c.put_manifest("push", "v1", OCI_MANIFEST, &m);
    assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));
    assert_eq!(c.tags("push"), Vec::<String>::new());
    // An index whose child is missing, too.
    let idx = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest(&m), "size": m.len()}],
    }))
    .unwrap();
    let r = c.put_manifest("push", "idx", OCI_INDEX, &idx);
    assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_BLOB_UNKNOWN"));
}

#[test]
fn invalid_manifests_and_references() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    // The suite's "400 response body should contain OCI-conforming JSON message".
    let r = c.put_manifest("push", "sha256:totallywrong", OCI_MANIFEST, b"blablabla");
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = c.put_manifest("push", "v1", OCI_MANIFEST, b"blablabla");
    assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_INVALID"));
    let r = c.put_manifest("push", "bad:tag", OCI_MANIFEST, b"{}");
    assert_eq!(r.code(), "DIGEST_INVALID");
    let r = c.put_manifest("push", ".bad", OCI_MANIFEST, b"{}");
    assert_eq!((r.status, r.code().as_str()), (400, "TAG_INVALID"));
    let cfg = config("invalid");
    c.push_blob("push", &cfg);
    let m = manifest(&cfg, &[]);
    // A digest reference that is not the bytes' digest.
    let r = c.put_manifest("push", &digest(b"other"), OCI_MANIFEST, &m);
    assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
    // Content-Type and mediaType disagree.
    let r = c.put_manifest("push", "v1", OCI_INDEX, &m);
    assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_INVALID"));
    // Not valid per the image spec (no schemaVersion).
    let bad = serde_json::to_vec(&json!({"mediaType": OCI_MANIFEST, "config": {}, "layers": []}))
        .unwrap();
    let r = c.put_manifest("push", "v1", OCI_MANIFEST, &bad);
    assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_INVALID"));
    // A polyglot.
    let mut poly: serde_json::Value = serde_json::from_slice(&m).unwrap();
    poly["manifests"] = json!([]);
    let r = c.put_manifest("push", "v1", OCI_MANIFEST, &serde_json::to_vec(&poly).unwrap());
    assert_eq!((r.status, r.code().as_str()), (400, "MANIFEST_INVALID"));
    assert_eq!(c.tags("push"), Vec::<String>::new());
    // A bad manifest for a new name makes no repository.
    let r = c.put_manifest("fresh", "v1", OCI_MANIFEST, b"blablabla");
    assert_eq!(r.code(), "MANIFEST_INVALID");
    assert!(!srv.root.join("fresh").exists());
}

#[test]
fn a_manifest_with_a_subject_answers_oci_subject() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let (_, subject) = push_image(&c, "push", "v1", "subject");
    c.push_blob("push", b"{}");
    let art = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.test",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
        "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
    }))
    .unwrap();
    let r = c.put_manifest("push", &digest(&art), OCI_MANIFEST, &art);
    assert_eq!(r.status, 201, "{r:?}");
    assert_eq!(r.header("oci-subject"), Some(subject.as_str()));
    let (m, _) = push_image(&c, "push", "v2", "no subject");
    let r = c.put_manifest("push", "v3", OCI_MANIFEST, &m);
    assert_eq!(r.header("oci-subject"), None);
}

#[test]
fn a_read_only_server_refuses_writes() {
    let srv = serve_empty(Opts::default());
    let c = client(&srv);
    let r = c.req("POST", "/v2/x/blobs/uploads/", &[], b"");
    assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"));
    let r = c.put_manifest("x", "v1", OCI_MANIFEST, b"{}");
    assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"));
    let r = c.req("DELETE", &format!("/v2/x/blobs/{}", digest(b"")), &[], b"");
    assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"));
    assert_eq!(std::fs::read_dir(&srv.root).unwrap().count(), 0, "nothing created");
}

#[test]
fn many_clients_pushing_tags_lose_none() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let (m, d) = push_image(&c, "many", "base", "many");
    let base = c.base.clone();
    let m = std::sync::Arc::new(m);
    parallel(8, move |i| {
        let c = Client::new(&base, None);
        for j in 0..25 {
            let r = c.put_manifest("many", &format!("t{i}-{j}"), OCI_MANIFEST, &m);
            assert_eq!(r.status, 201, "{r:?}");
        }
    });
    let tags = c.tags("many");
    assert_eq!(tags.len(), 8 * 25 + 1);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(srv.root.join("many/index.json")).unwrap()).unwrap();
    assert!(index["manifests"].as_array().unwrap().iter().all(|e| e["digest"] == d.as_str()));
}

#[test]
fn a_single_layout_takes_pushes_to_other_names_as_full_names() {
    let tmp = tempfile::tempdir().unwrap();
    let l = HandLayout::new(&tmp.path().join("site"));
    let srv = serve_at(&l.dir, Opts::rw());
    let c = client(&srv);
    let (_, d) = push_image(&c, "site", "v1", "single");
    let (_, d2) = push_image(&c, "example.com/team/app", "1.0", "single-2");
    assert_eq!(c.tags("site"), ["1.0", "v1"]);
    assert_eq!(c.tags("example.com/team/app"), ["1.0"]);
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(l.dir.join("index.json")).unwrap()).unwrap();
    let full: Vec<&serde_json::Value> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["annotations"]["io.containerd.image.name"] == "example.com/team/app:1.0")
        .collect();
    assert_eq!(full.len(), 1);
    assert_eq!(full[0]["digest"], d2.as_str());
    // Blobs are shared: a mount between two names of one layout is immediate.
    let r = c.req(
        "POST",
        &format!("/v2/other/blobs/uploads/?mount={}&from=site", digest(&layer())),
        &[],
        b"",
    );
    assert_eq!(r.status, 201);
    assert_eq!(c.get("/v2/site/manifests/v1").header("docker-content-digest"), Some(d.as_str()));
    assert!(l.bad_files().is_empty());
}
