//! Fail closed: when part of the reachable graph cannot be read, or `index.json` is not a
//! valid index, gc deletes nothing; `force` collects anyway.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::model::{self, Alg, Desc, Store, mt};
use crate::{gc, open, options};

/// A good tagged image, some garbage, and nothing else yet.
fn base() -> (Store, Desc, BTreeSet<String>) {
    let mut s = Store::default();
    let layer = s.put(Alg::Sha256, mt::OCI_LAYERS[0], b"layer".to_vec(), vec![]);
    let config = s.put_json(
        Alg::Sha256,
        mt::OCI_CONFIG,
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
        vec![],
    );
    let image =
        s.manifest(Alg::Sha256, Some(mt::OCI_MANIFEST), None, &config, &[layer], None, "good");
    let mut garbage = BTreeSet::new();
    for i in 0..5 {
        let d = s.put(Alg::Sha256, mt::UNKNOWN_DATA, format!("garbage {i}").into_bytes(), vec![]);
        garbage.insert(d.digest);
    }
    let d = s.put(Alg::Sha512, mt::UNKNOWN_DATA, b"garbage sha512".to_vec(), vec![]);
    garbage.insert(d.digest);
    (s, image, garbage)
}

/// Reachable documents that cannot be walked, with the problem code gc must report.
fn broken_documents() -> Vec<(&'static str, &'static str, Vec<u8>, &'static str)> {
    let layer = json!({"mediaType": mt::OCI_LAYERS[0], "digest": model::digest_of(Alg::Sha256, b"x"), "size": 1});
    let config = json!({"mediaType": mt::OCI_EMPTY, "digest": model::digest_of(Alg::Sha256, b"{}"), "size": 2});
    let doc = |v: Value| serde_json::to_vec(&v).expect("JSON");
    vec![
        (
            "manifest that is not JSON",
            mt::OCI_MANIFEST,
            b"this is not JSON".to_vec(),
            "INVALID_JSON",
        ),
        (
            "truncated manifest",
            mt::OCI_MANIFEST,
            br#"{"schemaVersion":2,"config":{"#.to_vec(),
            "INVALID_JSON",
        ),
        (
            "manifest list that is not JSON",
            mt::DOCKER_LIST,
            b"\x00\x01binary".to_vec(),
            "INVALID_JSON",
        ),
        ("manifest that is a JSON array", mt::OCI_MANIFEST, b"[1,2]".to_vec(), "INVALID_DOCUMENT"),
        (
            "polyglot manifest (with `manifests`)",
            mt::OCI_MANIFEST,
            doc(
                json!({"schemaVersion": 2, "mediaType": mt::OCI_MANIFEST, "config": config, "layers": [layer], "manifests": []}),
            ),
            "POLYGLOT",
        ),
        (
            "polyglot index (with `layers`)",
            mt::OCI_INDEX,
            doc(
                json!({"schemaVersion": 2, "mediaType": mt::OCI_INDEX, "manifests": [], "layers": [layer]}),
            ),
            "POLYGLOT",
        ),
        (
            "manifest without config",
            mt::DOCKER_MANIFEST,
            doc(json!({"schemaVersion": 2, "layers": [layer]})),
            "INVALID_DOCUMENT",
        ),
        (
            "index whose manifests is not an array",
            mt::OCI_INDEX,
            doc(json!({"schemaVersion": 2, "manifests": {"a": 1}})),
            "INVALID_DOCUMENT",
        ),
        (
            "manifest with an invalid layer descriptor",
            mt::OCI_MANIFEST,
            doc(json!({"schemaVersion": 2, "config": config, "layers": [{"mediaType": 5}]})),
            "INVALID_DESCRIPTOR",
        ),
    ]
}

fn assert_untouched(dir: &Path, before: &BTreeSet<String>, index: &[u8], ctx: &str) {
    assert_eq!(&model::blobs_on_disk(dir), before, "{ctx}: nothing deleted");
    let now = std::fs::read(dir.join("index.json")).expect("read index.json");
    assert_eq!(now, index, "{ctx}: index.json untouched");
}

#[test]
fn unreadable_reachable_documents_stop_gc_and_force_overrides() {
    for (what, media_type, bytes, code) in broken_documents() {
        // At depth 1 (an index.json entry) and depth 2 (a child of a good index).
        for nested in [false, true] {
            let ctx = format!("{what} (nested: {nested})");
            let (mut s, image, garbage) = base();
            let broken = s.put(Alg::Sha256, media_type, bytes.clone(), vec![]);
            let entries = if nested {
                let idx = s.index(
                    Alg::Sha256,
                    mt::OCI_INDEX,
                    vec![
                        (image.json(), image.digest.clone()),
                        (broken.json(), broken.digest.clone()),
                    ],
                    None,
                    "outer",
                );
                vec![idx.entry(Some("v1"))]
            } else {
                vec![image.entry(Some("good")), broken.entry(Some("bad"))]
            };
            let tmp = tempfile::tempdir().expect("temp dir");
            s.write(tmp.path(), &entries);
            let before = model::blobs_on_disk(tmp.path());
            let index = std::fs::read(tmp.path().join("index.json")).expect("read index.json");

            // Even with no grace at all, nothing goes.
            match gc(tmp.path(), &options(Duration::ZERO)) {
                Err(ocil_gc::Error::MarkFailed { problems }) => {
                    assert!(
                        problems.iter().any(|p| p.code == code),
                        "{ctx}: expected {code}, got {problems:?}"
                    );
                }
                Err(e) => panic!("{ctx}: expected MarkFailed, got {e:?}"),
                Ok((plan, _)) => panic!("{ctx}: gc went ahead and removed {:?}", plan.remove),
            }
            assert_untouched(tmp.path(), &before, &index, &ctx);
            // Neither tagged_only nor drop_referrers changes that.
            let opts = ocil_gc::Options {
                tagged_only: true,
                drop_referrers: true,
                ..options(Duration::ZERO)
            };
            assert!(
                matches!(gc(tmp.path(), &opts), Err(ocil_gc::Error::MarkFailed { .. })),
                "{ctx}: tagged_only"
            );
            assert_untouched(tmp.path(), &before, &index, &ctx);

            // force: collect anyway. The garbage goes; what was reached stays.
            let force = ocil_gc::Options { force: true, ..options(Duration::ZERO) };
            let (plan, report) = gc(tmp.path(), &force).unwrap_or_else(|e| panic!("{ctx}: {e:?}"));
            assert!(plan.problems.iter().any(|p| p.code == code), "{ctx}: the problem is reported");
            let after = model::blobs_on_disk(tmp.path());
            assert!(after.is_disjoint(&garbage), "{ctx}: forced gc removed the garbage");
            assert!(report.removed_blobs >= garbage.len(), "{ctx}: removed count");
            let keep = [&image.digest, &broken.digest];
            assert!(keep.iter().all(|d| after.contains(*d)), "{ctx}: reached documents stay");
            assert!(
                s.live(std::slice::from_ref(&image.digest), true).is_subset(&after),
                "{ctx}: the good image is intact"
            );
        }
    }
}

#[test]
fn invalid_index_json_stops_gc_and_force_reads_it_as_empty() {
    let cases: [(&str, &[u8], bool); 4] = [
        ("null manifests", br#"{"schemaVersion":2,"manifests":null}"#, true),
        (
            "no manifests",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
            true,
        ),
        ("manifests not an array", br#"{"schemaVersion":2,"manifests":{}}"#, false),
        ("not JSON", b"{\"schemaVersion\":2,\"manifests\":[", false),
    ];
    for (what, index, force_reads) in cases {
        let (s, image, _) = base();
        let tmp = tempfile::tempdir().expect("temp dir");
        s.write(tmp.path(), &[image.entry(Some("latest"))]);
        std::fs::write(tmp.path().join("index.json"), index).expect("write index.json");
        let before = model::blobs_on_disk(tmp.path());

        let err = gc(tmp.path(), &options(Duration::ZERO)).expect_err(what);
        assert!(matches!(err, ocil_gc::Error::Layout(_)), "{what}: {err:?}");
        assert_untouched(tmp.path(), &before, index, what);
        // The plan alone fails too (a dry run must not report an empty graph).
        let layout = open(tmp.path());
        assert!(ocil_gc::plan(&layout, &options(Duration::ZERO)).is_err(), "{what}: plan");

        let force = ocil_gc::Options { force: true, ..options(Duration::ZERO) };
        match gc(tmp.path(), &force) {
            Ok((_, report)) if force_reads => {
                // No entries at all: everything is unreferenced and goes.
                assert_eq!(report.removed_blobs, before.len(), "{what}: forced gc");
                assert!(model::blobs_on_disk(tmp.path()).is_empty(), "{what}: forced gc");
            }
            Ok((plan, _)) => panic!("{what}: forced gc read a broken index.json: {plan:?}"),
            Err(e) if force_reads => panic!("{what}: forced gc failed: {e:?}"),
            Err(_) => assert_untouched(tmp.path(), &before, index, what),
        }
    }
}
