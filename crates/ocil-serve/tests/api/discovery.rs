//! The suite's "Content Discovery" workflow: tags (sorted, `n`, `last`, `Link`), the
//! referrers API (an empty index when there are none, annotations and artifact types, the
//! `artifactType` filter), and the catalog.

use serde_json::{Value, json};

use crate::support::*;

#[test]
fn tags_are_sorted_and_paginated() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    let (m, _) = push_image(&c, "disc", "zeta", "tags");
    for t in ["b", "a", "B", "10", "9", "a-1"] {
        assert_eq!(c.put_manifest("disc", t, OCI_MANIFEST, &m).status, 201);
    }
    let all = c.tags("disc");
    assert_eq!(all, ["10", "9", "B", "a", "a-1", "b", "zeta"]);
    let r = c.get("/v2/disc/tags/list?n=3");
    assert_eq!(r.json()["tags"], json!(["10", "9", "B"]));
    assert_eq!(r.header("link"), Some("</v2/disc/tags/list?n=3&last=B>; rel=\"next\""));
    let r = c.get("/v2/disc/tags/list?n=3&last=B");
    assert_eq!(r.json()["tags"], json!(["a", "a-1", "b"]));
    let r = c.get("/v2/disc/tags/list?n=3&last=b");
    assert_eq!(r.json()["tags"], json!(["zeta"]));
    assert_eq!(r.header("link"), None);
    let r = c.get("/v2/disc/tags/list?last=a-1");
    assert_eq!(r.json(), json!({"name": "disc", "tags": ["b", "zeta"]}));
    // Following the links visits every tag once.
    let mut seen = Vec::new();
    let mut next = Some("/v2/disc/tags/list?n=2".to_owned());
    for _ in 0..10 {
        let Some(path) = next.take() else { break };
        let r = c.get(&path);
        seen.extend(
            r.json()["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_owned()),
        );
        next = r.header("link").map(|l| l[1..l.find('>').unwrap()].to_owned());
    }
    assert_eq!(seen, all);
}

#[test]
fn catalog_is_sorted_and_paginated() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    for name in ["zz", "a/b", "a", "m/n/o"] {
        c.push_blob(name, name.as_bytes());
    }
    let r = c.get("/v2/_catalog");
    assert_eq!(r.json(), json!({"repositories": ["a", "a/b", "m/n/o", "zz"]}));
    let r = c.get("/v2/_catalog?n=2");
    assert_eq!(r.json()["repositories"], json!(["a", "a/b"]));
    assert_eq!(r.header("link"), Some("</v2/_catalog?n=2&last=a%2Fb>; rel=\"next\""));
    let r = c.get("/v2/_catalog?n=2&last=a%2Fb");
    assert_eq!(r.json()["repositories"], json!(["m/n/o", "zz"]));
}

/// The suite's referrers setup: an image (its manifests[4]) with two artifacts by config
/// media type, two by artifactType, and an index artifact; and one artifact whose subject
/// was never pushed.
fn referrers_setup(c: &Client, name: &str) -> (String, String, Vec<String>, String) {
    let empty = b"{}";
    c.push_blob(name, empty);
    let ref_a = b"NHL Peanut Butter on my NHL bagel".to_vec();
    let ref_b = b"NBA Strawberry Jam on my NBA croissant".to_vec();
    c.push_blob(name, &ref_a);
    c.push_blob(name, &ref_b);
    let (subject_bytes, subject) = push_image(c, name, "tagtest0", "referrers");
    let missing = digest(b"a manifest never pushed");
    let desc = |mt: &str, b: &[u8]| json!({"mediaType": mt, "digest": digest(b), "size": b.len()});
    let empty_desc = desc("application/vnd.oci.empty.v1+json", empty);
    let subj =
        |d: &str| json!({"mediaType": OCI_MANIFEST, "digest": d, "size": subject_bytes.len()});
    let type_a = "application/vnd.nhl.peanut.butter.bagel";
    let type_b = "application/vnd.nba.strawberry.jam.croissant";
    let mut pushed = Vec::new();
    let put = |doc: Value, mt: &str, want_subject: &str| {
        let b = serde_json::to_vec_pretty(&doc).unwrap();
        let r = c.put_manifest(name, &digest(&b), mt, &b);
        assert_eq!(r.status, 201, "{r:?} {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("oci-subject"), Some(want_subject));
        digest(&b)
    };
    for (tag, art, blob, label) in [("a", type_a, &ref_a, "a"), ("b", type_b, &ref_b, "b")] {
        let d1 = put(
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                "config": desc(art, blob), "layers": [empty_desc],
                "subject": subj(&subject),
                "annotations": {"org.opencontainers.conformance.test": format!("test config {label}")}}),
            OCI_MANIFEST,
            &subject,
        );
        let d2 = put(
            json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": art,
                "config": empty_desc, "layers": [desc(art, blob)],
                "subject": subj(&subject),
                "annotations": {"org.opencontainers.conformance.test": format!("test layer {label}")}}),
            OCI_MANIFEST,
            &subject,
        );
        let _ = tag;
        pushed.push(d1);
        pushed.push(d2);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "artifactType": "application/vnd.food.stand",
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": pushed[0], "size": 1},
            {"mediaType": OCI_MANIFEST, "digest": pushed[1], "size": 1},
        ],
        "subject": subj(&subject),
        "annotations": {"org.opencontainers.conformance.test": "test index"}});
    pushed.push(put(index, OCI_INDEX, &subject));
    let orphan = put(
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": type_b,
            "config": empty_desc, "layers": [desc(type_b, &ref_b)], "subject": subj(&missing)}),
        OCI_MANIFEST,
        &missing,
    );
    (subject, missing, pushed, orphan)
}

#[test]
fn referrers_api() {
    let srv = serve_empty(Opts::rw());
    let c = client(&srv);
    // Before anything: an empty index, not a 404.
    let r = c.get(&format!("/v2/refs/referrers/{}", digest(b"hello world")));
    assert_eq!(r.status, 404, "no such repository yet: {r:?}");
    let (subject, missing, pushed, orphan) = referrers_setup(&c, "refs");
    let r = c.get(&format!("/v2/refs/referrers/{}", digest(b"hello world")));
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some(OCI_INDEX));
    assert_eq!(r.json()["manifests"], json!([]));
    assert_eq!(r.json()["mediaType"], OCI_INDEX);

    let r = c.get(&format!("/v2/refs/referrers/{subject}"));
    assert_eq!((r.status, r.header("content-type")), (200, Some(OCI_INDEX)));
    let list = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(list.len(), 5, "{list:?}");
    let mut got: Vec<&str> = list.iter().map(|d| d["digest"].as_str().unwrap()).collect();
    got.sort();
    let mut want: Vec<&str> = pushed.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(got, want);
    for d in &list {
        let ann = d["annotations"].as_object().unwrap();
        assert_eq!(ann.len(), 1, "{d}");
        assert!(ann["org.opencontainers.conformance.test"].as_str().unwrap().starts_with("test "));
        assert!(d["artifactType"].is_string(), "{d}");
        assert!(d["size"].as_u64().unwrap() > 0);
    }
    // artifactType: the manifest's own, else its config's media type.
    let by_config = list.iter().find(|d| d["digest"] == pushed[0].as_str()).unwrap();
    assert_eq!(by_config["artifactType"], "application/vnd.nhl.peanut.butter.bagel");
    let idx = list.iter().find(|d| d["digest"] == pushed[4].as_str()).unwrap();
    assert_eq!(
        (idx["artifactType"].as_str(), idx["mediaType"].as_str()),
        (Some("application/vnd.food.stand"), Some(OCI_INDEX))
    );

    let r = c.get(&format!(
        "/v2/refs/referrers/{subject}?artifactType=application%2Fvnd.nhl.peanut.butter.bagel"
    ));
    assert_eq!(r.header("oci-filters-applied"), Some("artifactType"));
    let list = r.json()["manifests"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|d| d["artifactType"] == "application/vnd.nhl.peanut.butter.bagel"));

    // A subject that does not exist still lists its referrer.
    let r = c.get(&format!("/v2/refs/referrers/{missing}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["manifests"][0]["digest"], orphan.as_str());
    assert_eq!(r.json()["manifests"].as_array().unwrap().len(), 1);

    let r = c.get("/v2/refs/referrers/sha256:nothex");
    assert_eq!((r.status, r.code().as_str()), (400, "DIGEST_INVALID"));
}

#[test]
fn referrers_added_on_disk_by_another_process_are_found() {
    let tmp = tempfile::tempdir().unwrap();
    let l = HandLayout::new(&tmp.path().join("side"));
    let (m, _, _) = hand_image(&l, "side", &layer());
    l.write_index(&[entry(OCI_MANIFEST, &m, Some("v1"), None)]);
    let srv = serve_at(&l.dir, Opts::default());
    let c = client(&srv);
    let subject = digest(&m);
    let r = c.get(&format!("/v2/side/referrers/{subject}"));
    assert_eq!(r.json()["manifests"], json!([]));
    // Another process stores a signature beside it, untagged, and updates index.json.
    l.blob(b"{}");
    let sig = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest(b"{}"), "size": 2},
        "layers": [], "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": m.len()},
    }))
    .unwrap();
    l.blob(&sig);
    l.write_index(&[
        entry(OCI_MANIFEST, &m, Some("v1"), None),
        entry(OCI_MANIFEST, &sig, None, None),
    ]);
    let r = c.get(&format!("/v2/side/referrers/{subject}"));
    assert_eq!(r.json()["manifests"][0]["digest"], digest(&sig).as_str());
    // gc removes it (index.json untouched): it is no longer listed.
    std::fs::remove_file(l.blob_path(&digest(&sig))).unwrap();
    let r = c.get(&format!("/v2/side/referrers/{subject}"));
    assert_eq!(r.json()["manifests"], json!([]));
}
