//! The suite's "Content Management" workflow: deleting tags, manifests and blobs, and what
//! it checks loosely: a delete never leaves index.json naming a missing blob.

use serde_json::Value;

use crate::support::*;

/// Every digest index.json reaches is in the layout (a shallow check: entries, and the
/// config and layers of each manifest entry).
fn layout_is_whole(dir: &std::path::Path) {
    let l = HandLayout { dir: dir.to_path_buf() };
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    for e in index["manifests"].as_array().unwrap() {
        let d = e["digest"].as_str().unwrap();
        let m: Value = serde_json::from_slice(&std::fs::read(l.blob_path(d)).unwrap()).unwrap();
        for c in std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten()) {
            if let Some(cd) = c["digest"].as_str() {
                assert!(l.blob_path(cd).exists(), "{cd} of {d}");
            }
        }
    }
    assert!(l.bad_files().is_empty());
}

#[test]
fn delete_a_tag_then_the_manifest_then_its_blobs() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let cfg = config("management");
    let (m, d) = push_image(&c, "mgmt", "tagtest0", "management");
    let _ = m;
    // Another tag of the same manifest, and another image sharing the layer.
    c.put_manifest("mgmt", "keep", OCI_MANIFEST, &m);
    let (_, other) = push_image(&c, "mgmt", "other", "management-2");
    let before = c.tags("mgmt").len();
    let r = c.req("DELETE", "/v2/mgmt/manifests/tagtest0", &[], b"");
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(c.tags("mgmt").len(), before - 1);
    assert_eq!(c.get("/v2/mgmt/manifests/tagtest0").status, 404);
    assert_eq!(c.get("/v2/mgmt/manifests/keep").status, 200);
    // Deleting a tag twice: unknown.
    let r = c.req("DELETE", "/v2/mgmt/manifests/tagtest0", &[], b"");
    assert_eq!((r.status, r.code().as_str()), (404, "MANIFEST_UNKNOWN"));
    // Its config is still reached (by `keep`): refused.
    let r = c.req("DELETE", &format!("/v2/mgmt/blobs/{}", digest(&cfg)), &[], b"");
    assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"));
    // By digest: every entry goes, and the manifest.
    let r = c.req("DELETE", &format!("/v2/mgmt/manifests/{d}"), &[], b"");
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(c.get(&format!("/v2/mgmt/manifests/{d}")).status, 404);
    assert_eq!(c.tags("mgmt"), ["other"]);
    let r = c.req("DELETE", &format!("/v2/mgmt/manifests/{d}"), &[], b"");
    assert_eq!(r.status, 404);
    // Now the config is free; the layer is still reached by `other`.
    let r = c.req("DELETE", &format!("/v2/mgmt/blobs/{}", digest(&cfg)), &[], b"");
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(c.get(&format!("/v2/mgmt/blobs/{}", digest(&cfg))).status, 404);
    let r = c.req("DELETE", &format!("/v2/mgmt/blobs/{}", digest(&layer())), &[], b"");
    assert_eq!(r.status, 405);
    let r = c.req("DELETE", &format!("/v2/mgmt/blobs/{}", digest(b"never")), &[], b"");
    assert_eq!((r.status, r.code().as_str()), (404, "BLOB_UNKNOWN"));
    assert_eq!(c.get(&format!("/v2/mgmt/manifests/{other}")).status, 200);
    layout_is_whole(&srv.root.join("mgmt"));
}

#[test]
fn a_child_of_a_tagged_index_is_not_deleted() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let (m, d) = push_image(&c, "idx", "child", "index child");
    // Untag it; an index keeps it.
    assert_eq!(c.req("DELETE", "/v2/idx/manifests/child", &[], b"").status, 202);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": d, "size": m.len(),
            "platform": {"os": "linux", "architecture": "amd64"}}],
    }))
    .unwrap();
    assert_eq!(c.put_manifest("idx", "multi", OCI_INDEX, &index).status, 201);
    let r = c.req("DELETE", &format!("/v2/idx/manifests/{d}"), &[], b"");
    assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"));
    assert_eq!(c.get(&format!("/v2/idx/manifests/{d}")).status, 200);
    layout_is_whole(&srv.root.join("idx"));
}

#[test]
fn without_delete_nothing_is_deleted() {
    let srv = serve_empty(Opts { push: true, ..Opts::default() });
    let c = client(&srv);
    let (_, d) = push_image(&c, "keep", "v1", "no delete");
    for path in [
        format!("/v2/keep/manifests/{d}"),
        "/v2/keep/manifests/v1".to_owned(),
        format!("/v2/keep/blobs/{}", digest(&layer())),
    ] {
        let r = c.req("DELETE", &path, &[], b"");
        assert_eq!((r.status, r.code().as_str()), (405, "UNSUPPORTED"), "{path}");
    }
    assert_eq!(c.tags("keep"), ["v1"]);
}
