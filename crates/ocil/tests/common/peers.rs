//! What the test binaries need from outside the repository, and the rules for it: the peer
//! tools on `PATH` (umoci, skopeo, oci-image-tool, ...), a Docker daemon, and the `shared/`
//! folder beside the checkout (or `$OCIL_SHARED`).
//!
//! A test that uses one carries `needs_<resource>` in its name: `needs_shared`,
//! `needs_docker`, or the tool's name with `-` written `_` (`needs_umoci`,
//! `needs_oci_image_tool`). Every probe here checks that on every call, present or not, so a
//! test cannot use a resource its name does not declare. `cargo xtask ci` probes the same way
//! before it runs the tests and leaves out, by name, the tests of a missing resource, which
//! nextest then reports as skipped.
//!
//! When a resource is missing at run time: under `CI=true` the test fails, so a CI machine
//! cannot pass by skipping; under `cargo xtask ci` (`OCIL_XTASK_PROBED=1`) it fails too,
//! since xtask only runs a test whose resources it found; otherwise (`cargo nextest run` or
//! `cargo test` by hand) the test returns early with a note on stderr.
//!
//! Each test binary includes it with `#[path = "../common/peers.rs"] mod peers;`.

#![allow(dead_code, reason = "included by several test binaries, each using part of it")]

use std::path::{Path, PathBuf};

/// Whether the tests run under CI (`CI=true`).
pub(crate) fn on_ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// The name segment of a test that uses `resource`.
pub(crate) fn needs(resource: &str) -> String {
    format!("needs_{}", resource.replace('-', "_"))
}

/// Why `test` may not use `resource`, if it may not: its name lacks `needs_<resource>`.
pub(crate) fn undeclared(test: &str, resource: &str) -> Option<String> {
    let segment = needs(resource);
    (!test.contains(&segment)).then(|| {
        format!(
            "test `{test}` uses {resource}, so its name must contain `{segment}` \
             (`cargo xtask ci` leaves it out by that name when {resource} is missing)"
        )
    })
}

/// The rule for every resource: the running test declares it (libtest names each test's
/// thread after the test); a missing one fails under `CI=true` or `cargo xtask ci`, and
/// otherwise skips with a note. Whether it is there.
#[allow(clippy::print_stderr, reason = "the note that a test skipped")]
fn available(resource: &str, found: bool, where_: &str) -> bool {
    let thread = std::thread::current();
    if let Some(why) = undeclared(thread.name().unwrap_or("<unnamed thread>"), resource) {
        panic!("{why}");
    }
    if !found {
        assert!(!on_ci(), "{resource} is missing ({where_}) and CI=true");
        assert!(
            std::env::var_os("OCIL_XTASK_PROBED").is_none(),
            "{resource} is missing ({where_}), but `cargo xtask ci` found it and ran this test: \
             its probe and this one disagree"
        );
        eprintln!("{resource} is missing ({where_}): skipping");
    }
    found
}

/// Whether the peer tool `name` is on `PATH` (the test's name must contain `needs_<name>`).
pub(crate) fn require_tool(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()));
    available(name, found, "not on PATH")
}

/// Whether Debian's `docker-registry` (distribution 2.8) is on `PATH`: the resource
/// `registry` (the test's name must contain `needs_registry`).
pub(crate) fn registry_tool() -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("docker-registry").is_file()));
    available("registry", found, "`docker-registry` is not on PATH")
}

/// Whether a Docker daemon answers `docker version` (the one `$DOCKER_HOST` names, or the
/// default socket; `.ci/run` starts one). The test's name must contain `needs_docker`.
pub(crate) fn docker_daemon() -> bool {
    let up = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    available("docker", up, "no daemon answers `docker version`; .ci/run starts one")
}

/// The `shared/` folder beside the checkout (or `$OCIL_SHARED`), if it is there (the test's
/// name must contain `needs_shared`).
pub(crate) fn shared_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("OCIL_SHARED") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    let looked = format!("looked at `{}`", dir.display());
    available("shared", dir.is_dir(), &looked).then_some(dir)
}
