//! Conformance of `ocil` against the shared corpus that lives beside the checkout
//! (`../shared`, or `$OCIL_SHARED`):
//!
//! - `cases`: every OCI-layout case of `shared/conformance/CASES.md` (real layouts copied from
//!   other projects): the fsck verdict and errors, `ls` names, what gc removes (or refuses to);
//! - `peer_made`: the layouts umoci, skopeo, buildah and docker-registry wrote
//!   (`shared/fixtures/peer-made/*/layout`), checked against their `facts.json`;
//! - `interop`: the peer tools as oracles of what ocil writes and of what its gc leaves.
//!
//! Without `shared/` every test prints a skip message and passes, except under `CI=true`,
//! where it fails. A missing peer tool is handled the same way (see `support::require_tool`).
//! Fixtures are never modified: anything that writes works on a copy in a temp dir.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cases;
mod interop;
mod peer_made;
#[path = "../common/peers.rs"]
mod peers;
mod support;
