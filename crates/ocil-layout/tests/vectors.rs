//! The image-spec JSON-schema test vectors (`shared/conformance/image-spec-vectors.json`):
//! our validator's verdict must equal upstream's for every vector, except for the documented
//! disagreements listed in [`DISAGREEMENTS`].
//!
//! The vectors live in the shared corpus beside the checkout (override with `OCIL_SHARED`),
//! found and required as every test binary does (`crates/ocil/tests/common/peers.rs`).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use ocil_layout::validate::{Schema, validate_bytes};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

#[path = "../../ocil/tests/common/peers.rs"]
mod peers;
use peers::shared_dir;

/// How many vectors the corpus holds (CASES.md: "57 JSON-schema test vectors ... (29 valid,
/// 28 invalid)").
const TOTAL: usize = 57;

/// Vectors where we knowingly differ from the upstream verdict, with the reason.
///
/// `manifest_test/TestManifest/5` ("expected failure: empty layer, expected at least one"):
/// the JSON schema (schema/image-manifest-schema.json) has `"minItems": 1` on `layers`, but
/// the prose of image-spec v1.1 manifest.md says:
///
/// > **`layers`** *array of objects*
/// > Each item in the array MUST be a descriptor.
/// > For portability, `layers` SHOULD have at least one entry.
///
/// A SHOULD is not a MUST, and real tools write zero-layer images (`umoci new`), so our
/// validator accepts the document and reports a warning instead of an error.
const DISAGREEMENTS: &[(&str, &str)] = &[(
    "manifest_test/TestManifest/5",
    "layers: is empty (the spec says SHOULD have at least one)",
)];

/// The backwards-compatibility vectors replace Docker media types by the OCI ones before
/// validating (image-spec schema/backwards_compatibility_test.go, `convertFormats`).
const DOCKER_TO_OCI: &[(&str, &str)] = &[
    (
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ),
    (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
    ("application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"),
];

fn schema(name: &str) -> Schema {
    match name {
        "manifest" => Schema::Manifest,
        "index" => Schema::Index,
        "config" => Schema::Config,
        "descriptor" => Schema::Descriptor,
        "layout-header" => Schema::LayoutHeader,
        other => panic!("unknown schema `{other}` in the vector file"),
    }
}

fn preprocess(document: &str) -> String {
    let mut out = document.to_owned();
    for (docker, oci) in DOCKER_TO_OCI {
        out = out.replace(docker, oci);
    }
    out
}

#[test]
fn image_spec_vectors_needs_shared() {
    let Some(shared) = shared_dir() else { return };
    let path = shared.join("conformance/image-spec-vectors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
    let vectors: Vec<Value> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("`{}` is not a JSON array: {e}", path.display()));
    assert_eq!(vectors.len(), TOTAL, "vector count changed");

    let mut agree = 0;
    let mut valid_count = 0;
    let mut documented = 0;
    let mut failures = Vec::new();
    let mut seen_disagreements = Vec::new();
    for v in &vectors {
        let id = v["id"].as_str().expect("vector id");
        let expected = v["valid"].as_bool().expect("vector valid");
        let mut document = v["document"].as_str().expect("vector document").to_owned();
        // The document is byte-exact upstream text: check it against the recorded digest.
        if let Some(want) = v.get("document_sha256").and_then(Value::as_str) {
            let got = hex::encode(Sha256::digest(document.as_bytes()));
            assert_eq!(want.trim_start_matches("sha256:"), got, "{id}: document bytes changed");
        }
        valid_count += usize::from(expected);
        if v.get("preprocess").is_some_and(|p| !p.is_null()) {
            document = preprocess(&document);
        }
        let findings =
            validate_bytes(schema(v["schema"].as_str().expect("schema")), document.as_bytes());
        let ours = findings.is_valid();
        if let Some((_, warning)) = DISAGREEMENTS.iter().find(|(d, _)| *d == id) {
            seen_disagreements.push(id);
            assert_ne!(ours, expected, "{id}: listed as a disagreement but we now agree");
            assert!(
                findings.warnings.iter().any(|w| w == warning),
                "{id}: expected the warning `{warning}`, got {findings:?}"
            );
            documented += 1;
        } else if ours == expected {
            agree += 1;
        } else {
            failures
                .push(format!("{id}: upstream valid={expected}, ours valid={ours}: {findings:?}"));
        }
    }
    assert_eq!(
        seen_disagreements.len(),
        DISAGREEMENTS.len(),
        "a documented disagreement is not in the vector file"
    );
    assert!(failures.is_empty(), "verdicts differ:\n{}", failures.join("\n"));
    assert_eq!(valid_count, 29, "CASES.md: 29 valid, 28 invalid");
    println!("{TOTAL} vectors: {agree} agree, {documented} documented disagreement");
    assert_eq!(agree + documented, TOTAL);
}
