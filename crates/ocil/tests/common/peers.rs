//! What the test binaries need from outside the repository, and the one rule for when it is
//! missing: the peer tools on `PATH` (umoci, skopeo, oci-image-tool, ...), a Docker daemon,
//! and the `shared/` folder beside the checkout (or `$OCIL_SHARED`). Outside CI a missing one
//! skips the test with a note; under `CI=true` it fails, so a CI machine cannot pass by
//! skipping.
//!
//! Each test binary includes it with `#[path = "../common/peers.rs"] mod peers;`.

#![allow(dead_code, reason = "included by several test binaries, each using part of it")]

use std::path::{Path, PathBuf};

/// Whether the tests run under CI (`CI=true`).
pub(crate) fn on_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// Whether the peer tool `name` is on `PATH`; a note when it is not, a failure under
/// `CI=true`.
#[allow(clippy::print_stderr, reason = "the note that a test skipped")]
pub(crate) fn require_tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    if !found {
        assert!(!on_ci(), "peer tool `{name}` is not installed and CI=true");
        eprintln!("peer tool `{name}` not found: skipping");
    }
    found
}

/// Whether a Docker daemon answers `docker version` (the one `$DOCKER_HOST` names, or the
/// default socket; `.ci/run` starts one); a note when none does, a failure under `CI=true`.
#[allow(clippy::print_stderr, reason = "the note that a test skipped")]
pub(crate) fn docker_daemon() -> bool {
    let up = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(up || !on_ci(), "no Docker daemon answers (is DOCKER_HOST set? .ci/run starts one)");
    if !up {
        eprintln!("no Docker daemon: skipping");
    }
    up
}

/// The `shared/` folder beside the checkout (or `$OCIL_SHARED`); `None` (after a note) when
/// it is absent, a failure under `CI=true`.
#[allow(clippy::print_stderr, reason = "the note that a test skipped")]
pub(crate) fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("OCIL_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(!on_ci(), "shared/ not found (looked at `{}`) and CI=true", dir.display());
    eprintln!("shared/ not found beside the checkout: skipping");
    None
}
