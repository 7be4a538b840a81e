//! Missing blobs: a reachable blob that is not in the store is reported as dangling, with
//! the path to it, and nothing else is; layers that may be absent (nondistributable) and
//! descriptors that embed their data are not dangling. The leaves are checked after the
//! walk, against the listing made beside it, so this pins what that check reports.

use std::time::Duration;

use serde_json::json;

use crate::model::{self, Alg, Store, mt};
use crate::{fsck_errors, gc, options};

const NONDISTRIBUTABLE: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

#[test]
fn missing_blobs_are_dangling_unless_they_may_be_absent() {
    let mut s = Store::default();
    let config = s.put_json(
        Alg::Sha256,
        mt::OCI_CONFIG,
        &json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}),
        vec![],
    );
    let kept = s.put(Alg::Sha256, mt::OCI_LAYERS[0], b"kept layer".to_vec(), vec![]);
    let lost = s.put(Alg::Sha256, mt::OCI_LAYERS[0], b"lost layer".to_vec(), vec![]);
    let foreign = s.put(Alg::Sha256, NONDISTRIBUTABLE, b"foreign layer".to_vec(), vec![]);
    let image = s.manifest(
        Alg::Sha256,
        Some(mt::OCI_MANIFEST),
        None,
        &config,
        &[kept, lost.clone(), foreign.clone()],
        None,
        "a",
    );
    // A second image whose config is embedded in its descriptor (`data`) and not stored.
    let embedded = br#"{"architecture":"arm64","os":"linux"}"#;
    let embedded_digest = model::digest_of(Alg::Sha256, embedded);
    let data = base64_of(embedded);
    let second = s.put_json(
        Alg::Sha256,
        mt::OCI_MANIFEST,
        &json!({
            "schemaVersion": 2,
            "mediaType": mt::OCI_MANIFEST,
            "config": {"mediaType": mt::OCI_CONFIG, "digest": embedded_digest, "size": embedded.len(), "data": data},
            "layers": [],
        }),
        vec![],
    );
    s.blobs.remove(&lost.digest);
    s.blobs.remove(&foreign.digest);
    let tmp = tempfile::tempdir().expect("tempdir");
    s.write(tmp.path(), &[image.entry(Some("a")), second.entry(Some("b"))]);

    let (plan, report) = gc(tmp.path(), &options(Duration::ZERO)).expect("gc runs");
    let dangling: Vec<_> = plan
        .dangling
        .iter()
        .map(|p| (p.code, p.digest.as_ref().map(ToString::to_string)))
        .collect();
    assert_eq!(dangling, vec![("BLOB_MISSING", Some(lost.digest.clone()))], "{:?}", plan.dangling);
    let path = &plan.dangling[0].path;
    assert!(path.starts_with("index.json > [0] a") && path.contains("layer"), "{path}");
    assert_eq!(report.removed_blobs, 0);
    // fsck, which walks its own way, finds the same one missing blob.
    let errors = fsck_errors(tmp.path());
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains(&lost.digest), "{errors:?}");
}

/// Standard base64 of `bytes`, by hand: the test does not share the library's encoder.
fn base64_of(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= c.len() { T[(n >> shift) as usize & 63] as char } else { '=' });
        }
    }
    out
}
