//! `tagged_only`: untagged `index.json` entries that are not referrers of live images are
//! dropped (index.json replaced atomically) and their blobs removed; untagged referrers of
//! live images, and untagged entries reachable from tagged ones, stay.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::Duration;

use serde_json::{Value, json};

use crate::model::{self, Alg, Desc, Store, mt};
use crate::{fsck_errors, gc, options};

fn image(s: &mut Store, shared: &Desc, note: &str) -> Desc {
    let own = s.put(Alg::Sha256, mt::OCI_LAYERS[0], format!("layer {note}").into_bytes(), vec![]);
    let layers = [shared.clone(), own];
    let config = s.put_json(
        Alg::Sha256,
        mt::OCI_CONFIG,
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}, "note": note}),
        vec![],
    );
    s.manifest(Alg::Sha256, Some(mt::OCI_MANIFEST), None, &config, &layers, None, note)
}

fn referrer(s: &mut Store, subject: &Desc, artifact_type: &str, note: &str) -> Desc {
    let config = s.put(Alg::Sha256, mt::OCI_EMPTY, b"{}".to_vec(), vec![]);
    let payload = s.put(Alg::Sha256, artifact_type, format!("payload {note}").into_bytes(), vec![]);
    s.manifest(
        Alg::Sha256,
        Some(mt::OCI_MANIFEST),
        Some(artifact_type),
        &config,
        &[payload],
        Some(subject),
        note,
    )
}

struct Case {
    store: Store,
    /// (entry, name) in index.json order.
    entries: Vec<(Value, &'static str)>,
}

fn case() -> Case {
    let mut s = Store::default();
    let shared = s.put(Alg::Sha256, mt::OCI_LAYERS[0], b"shared layer".to_vec(), vec![]);
    let a = image(&mut s, &shared, "a");
    let b = image(&mut s, &shared, "b");
    let d = image(&mut s, &shared, "d");
    let idx = s.index(
        Alg::Sha256,
        mt::OCI_INDEX,
        vec![(d.with_platform("amd64"), d.digest.clone())],
        None,
        "idx",
    );
    let sbom = referrer(&mut s, &a, mt::SBOM, "sbom of a");
    let sig = referrer(&mut s, &sbom, mt::SIGNATURE, "signature of the sbom of a");
    let store_only_sbom = referrer(&mut s, &a, mt::SBOM, "store-only sbom of a");
    let sig_of_store_only =
        referrer(&mut s, &store_only_sbom, mt::SIGNATURE, "signature of the store-only sbom");
    let ref_b = referrer(&mut s, &b, mt::SIGNATURE, "signature of b");
    let plain = s.put(Alg::Sha256, mt::UNKNOWN_DATA, b"an untagged plain blob".to_vec(), vec![]);
    let sha512 = s.put(Alg::Sha512, mt::OCI_LAYERS[1], b"layer of e".to_vec(), vec![]);
    let cfg = s.put(Alg::Sha256, mt::OCI_EMPTY, b"{}".to_vec(), vec![]);
    let e =
        s.manifest(Alg::Sha512, Some(mt::OCI_MANIFEST), None, &cfg, &[sha512], None, "e (sha512)");
    let entries = vec![
        (a.entry(Some("a")), "a"),
        (b.entry(None), "b"),
        // The signature comes before the SBOM it signs: order must not matter.
        (sig.entry(None), "sig"),
        (sbom.entry(None), "sbom"),
        (a.entry(None), "a untagged"),
        (idx.entry(Some("idx")), "idx"),
        (d.entry(None), "d untagged"),
        (ref_b.entry(None), "ref_b"),
        (sig_of_store_only.entry(None), "sig of store-only sbom"),
        (plain.typed(mt::UNKNOWN_DATA).entry(None), "plain"),
        (e.entry(None), "e"),
    ];
    Case { store: s, entries }
}

fn digest_of_entry(v: &Value) -> String {
    v["digest"].as_str().expect("entry digest").to_owned()
}

fn check(keep_referrers: bool, dropped: &[&str]) {
    let ctx = format!("keep_referrers {keep_referrers}");
    let c = case();
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = tmp.path();
    let all: Vec<Value> = c.entries.iter().map(|(v, _)| v.clone()).collect();
    c.store.write(root, &all);
    let original = std::fs::read(root.join("index.json")).expect("read index.json");
    let mut old_handle = std::fs::File::open(root.join("index.json")).expect("open index.json");

    let kept: Vec<Value> =
        c.entries.iter().filter(|(_, n)| !dropped.contains(n)).map(|(v, _)| v.clone()).collect();
    let roots: Vec<String> = kept.iter().map(digest_of_entry).collect();
    let live = c.store.live(&roots, keep_referrers);
    let garbage: BTreeSet<String> =
        c.store.blobs.keys().filter(|d| !live.contains(*d)).cloned().collect();

    let opts = ocil_gc::Options {
        tagged_only: true,
        drop_referrers: !keep_referrers,
        ..options(Duration::ZERO)
    };
    let (plan, report) = gc(root, &opts).unwrap_or_else(|e| panic!("{ctx}: gc: {e:?}"));
    let expected_dropped: BTreeSet<String> = c
        .entries
        .iter()
        .filter(|(_, n)| dropped.contains(n))
        .map(|(v, _)| digest_of_entry(v))
        .collect();
    let names = |set: &BTreeSet<String>| -> Vec<&str> {
        c.entries
            .iter()
            .filter(|(v, _)| set.contains(&digest_of_entry(v)))
            .map(|(_, n)| *n)
            .collect()
    };
    let got: BTreeSet<String> = plan.dropped_entries.iter().map(|d| d.to_string()).collect();
    assert_eq!(names(&got), names(&expected_dropped), "{ctx}: dropped entries");
    assert!(report.index_rewritten, "{ctx}: index.json rewritten");
    let removed: BTreeSet<String> = plan.remove.iter().map(|g| g.digest.to_string()).collect();
    assert_eq!(removed, garbage, "{ctx}: removed blobs");
    assert_eq!(model::blobs_on_disk(root), live, "{ctx}: what stays");

    // index.json: the kept entries in their order, unknown keys kept, replaced by rename (a
    // reader holding the old file still reads the old bytes in full).
    let v: Value = serde_json::from_slice(&std::fs::read(root.join("index.json")).expect("read"))
        .expect("index.json is JSON");
    assert_eq!(v["manifests"], Value::Array(kept), "{ctx}: kept entries, in order");
    assert_eq!(v["annotations"], json!({"org.example.layout": "generated"}), "{ctx}: annotations");
    assert_eq!(v["org.example.unknown"], json!({"kept": true}), "{ctx}: unknown keys");
    assert_eq!(
        (v["schemaVersion"].clone(), v["mediaType"].clone()),
        (json!(2), json!(mt::OCI_INDEX))
    );
    let mut through_old = Vec::new();
    old_handle.read_to_end(&mut through_old).expect("read old handle");
    assert_eq!(through_old, original, "{ctx}: index.json was replaced, not rewritten in place");
    let temps: Vec<String> = std::fs::read_dir(root)
        .expect("list root")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ocil-tmp-"))
        .collect();
    assert!(temps.is_empty(), "{ctx}: no temp file left: {temps:?}");
    let errors = fsck_errors(root);
    assert!(errors.is_empty(), "{ctx}: fsck: {errors:#?}");

    // Again: nothing to drop, nothing to remove, index.json untouched.
    let before = std::fs::read(root.join("index.json")).expect("read");
    let (plan, report) = gc(root, &opts).expect("second gc");
    assert!(
        plan.dropped_entries.is_empty() && plan.remove.is_empty(),
        "{ctx}: second gc: {plan:?}"
    );
    assert!(!report.index_rewritten, "{ctx}: second gc leaves index.json alone");
    assert_eq!(std::fs::read(root.join("index.json")).expect("read"), before);
}

#[test]
fn tagged_only_drops_untagged_entries_that_are_not_live_referrers() {
    check(true, &["b", "ref_b", "plain", "e"]);
}

#[test]
fn tagged_only_with_drop_referrers() {
    // The store-only SBOM is not kept, so the signature of it has no live subject.
    check(false, &["b", "ref_b", "plain", "e", "sig of store-only sbom"]);
}

#[test]
fn without_tagged_only_untagged_entries_are_roots() {
    let c = case();
    let tmp = tempfile::tempdir().expect("temp dir");
    let all: Vec<Value> = c.entries.iter().map(|(v, _)| v.clone()).collect();
    c.store.write(tmp.path(), &all);
    let original = std::fs::read(tmp.path().join("index.json")).expect("read");
    let (plan, report) = gc(tmp.path(), &options(Duration::ZERO)).expect("gc");
    assert!(plan.dropped_entries.is_empty() && !report.index_rewritten);
    let roots: Vec<String> = all.iter().map(digest_of_entry).collect();
    assert_eq!(model::blobs_on_disk(tmp.path()), c.store.live(&roots, true));
    assert_eq!(std::fs::read(tmp.path().join("index.json")).expect("read"), original);
}
