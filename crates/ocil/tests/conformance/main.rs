//! Conformance of `ocil` against the shared corpus that lives beside the checkout
//! (`../shared`, or `$OCIL_SHARED`):
//!
//! - `cases`: every OCI-layout case of `shared/conformance/CASES.md` (real layouts copied from
//!   other projects): the fsck verdict and errors, `ls` names, what gc removes (or refuses to);
//! - `peer_made`: the layouts umoci, skopeo, buildah and docker-registry wrote
//!   (`shared/fixtures/peer-made/*/layout`), checked against their `facts.json`;
//! - `interop`: the peer tools as oracles of what ocil writes and of what its gc leaves;
//! - `names`: every tag and full name of the shared layouts and archives, listed, selected,
//!   ambiguous when several full names share a tag, and kept by copy, export and import.
//!
//! A test that uses `shared/` or a peer tool says so in its name (`needs_shared`,
//! `needs_umoci`, ...); when one is missing it skips with a note, is left out (and counted as
//! skipped) by `cargo xtask ci`, and fails under `CI=true` (`../common/peers.rs`).
//! Fixtures are never modified: anything that writes works on a copy in a temp dir.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cases;
mod interop;
mod names;
mod peer_made;
#[path = "../common/peers.rs"]
mod peers;
mod support;

/// The naming rule holds whether or not the resource is there: a test whose name does not
/// declare umoci cannot ask for it, so `cargo xtask ci` can trust the names.
#[test]
fn a_test_cannot_use_a_resource_its_name_does_not_declare() {
    let caught = std::panic::catch_unwind(|| peers::require_tool("umoci"));
    let panic = caught.expect_err("require_tool checks the running test's name");
    let msg = panic.downcast_ref::<String>().map(String::as_str).unwrap_or_default();
    assert!(msg.contains("its name must contain `needs_umoci`"), "{msg}");
    assert_eq!(peers::undeclared("interop::x_needs_oci_image_tool", "oci-image-tool"), None);
    assert!(peers::undeclared("interop::x_needs_umoci", "skopeo").is_some());
}
