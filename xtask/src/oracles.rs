//! The outside resources the oracle tests use, probed the way the tests probe them
//! (`crates/ocil/tests/common/peers.rs`), and which tests `cargo xtask ci` leaves out when
//! one is missing.
//!
//! A test that uses a resource carries `needs_<resource>` in its name (peers.rs checks that
//! on every call), so a missing resource becomes a nextest filterset: nextest counts the tests
//! it leaves out as skipped, and ci names them at the end. `needs_` in a test name is
//! reserved for the resources below, and no segment is a prefix of another, so a plain
//! "contains" match is exact.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a resource is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    /// A program on `PATH` (a file of that name in one of its directories).
    Tool,
    /// A program on `PATH` whose name is not the resource's (`registry` is
    /// `docker-registry`, whose segment would have `needs_docker` as a prefix).
    Program(&'static str),
    /// A Docker daemon that answers `docker version` (the one `$DOCKER_HOST` names).
    Docker,
    /// The `shared/` folder: `$OCIL_SHARED`, or beside the checkout.
    Shared,
}

/// An outside resource some tests need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Resource {
    /// The tool's name, `docker` or `shared`.
    pub(crate) name: &'static str,
    probe: Probe,
}

/// Every resource a test may declare with `needs_<resource>`.
pub(crate) const RESOURCES: [Resource; 13] = [
    Resource { name: "shared", probe: Probe::Shared },
    Resource { name: "docker", probe: Probe::Docker },
    Resource { name: "umoci", probe: Probe::Tool },
    Resource { name: "skopeo", probe: Probe::Tool },
    Resource { name: "oci-image-tool", probe: Probe::Tool },
    Resource { name: "zstd", probe: Probe::Tool },
    Resource { name: "script", probe: Probe::Tool },
    Resource { name: "xz", probe: Probe::Tool },
    Resource { name: "bzip2", probe: Probe::Tool },
    Resource { name: "registry", probe: Probe::Program("docker-registry") },
    Resource { name: "htpasswd", probe: Probe::Tool },
    Resource { name: "runc", probe: Probe::Tool },
    Resource { name: "busybox", probe: Probe::Tool },
];

/// The prefix of every resource segment in a test name.
const NEEDS: &str = "needs_";

impl Resource {
    /// The segment a test that uses it carries in its name (`needs_oci_image_tool`).
    pub(crate) fn segment(&self) -> String {
        format!("{NEEDS}{}", self.name.replace('-', "_"))
    }

    /// `Ok` when it is there, else what was looked for.
    pub(crate) fn probe(&self) -> Result<(), String> {
        match self.probe {
            Probe::Tool => on_path(self.name, std::env::var_os("PATH").as_deref())
                .then_some(())
                .ok_or_else(|| "not on PATH".to_owned()),
            Probe::Program(program) => on_path(program, std::env::var_os("PATH").as_deref())
                .then_some(())
                .ok_or_else(|| format!("`{program}` is not on PATH")),
            Probe::Docker => Command::new("docker")
                .args(["version", "--format", "{{.Server.Version}}"])
                .output()
                .is_ok_and(|o| o.status.success())
                .then_some(())
                .ok_or_else(|| "no daemon answers `docker version`; .ci/run starts one".to_owned()),
            Probe::Shared => {
                let dir = shared_path(std::env::var_os("OCIL_SHARED"), &crate::project_root());
                dir.is_dir().then_some(()).ok_or_else(|| format!("looked at `{}`", dir.display()))
            }
        }
    }
}

/// Whether `PATH` holds a file `name`, as the tests' `require_tool` asks.
fn on_path(name: &str, path: Option<&OsStr>) -> bool {
    path.is_some_and(|p| std::env::split_paths(p).any(|d| d.join(name).is_file()))
}

/// Where the tests look for `shared/`: `$OCIL_SHARED`, else beside the checkout (the tests'
/// `CARGO_MANIFEST_DIR/../../../shared` is `root/../shared` for every crate).
fn shared_path(env: Option<OsString>, root: &Path) -> PathBuf {
    env.map_or_else(|| root.join("../shared"), PathBuf::from)
}

/// The resources a test's name declares; the name itself is the error when a `needs_`
/// segment in it names none (`needs_` is reserved for [`RESOURCES`]).
pub(crate) fn needs_of(test: &str) -> Result<Vec<Resource>, &str> {
    let mut found = Vec::new();
    for (at, _) in test.match_indices(NEEDS) {
        let rest = &test[at..];
        let known = RESOURCES.iter().find(|r| {
            let seg = r.segment();
            rest.starts_with(&seg)
                && rest[seg.len()..].chars().next().is_none_or(|c| c == '_' || c == ':')
        });
        found.push(*known.ok_or(test)?);
    }
    Ok(found)
}

/// The error for test names whose `needs_` segments name no resource.
pub(crate) fn undeclared_names(tests: &[&str]) -> String {
    let mut text = format!(
        "`{NEEDS}` in a test name is reserved for the oracle resources ({}), but these names \
         use it otherwise (reword the test, or add the resource to xtask/src/oracles.rs):",
        RESOURCES.map(|r| r.segment()).join(", ")
    );
    for t in tests {
        text.push_str("\n    ");
        text.push_str(t);
    }
    text
}

/// The nextest filterset that leaves out every test of the `missing` resources.
pub(crate) fn filterset(missing: &[Resource]) -> Option<String> {
    let terms: Vec<String> = missing.iter().map(|r| format!("test(~{})", r.segment())).collect();
    (!terms.is_empty()).then(|| format!("not ({})", terms.join(" | ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(name: &str) -> Resource {
        *RESOURCES.iter().find(|r| r.name == name).expect("a known resource")
    }

    #[test]
    fn segments_are_prefix_free() {
        for a in RESOURCES {
            for b in RESOURCES {
                assert!(
                    a == b || !b.segment().starts_with(&a.segment()),
                    "`{}` is a prefix of `{}`: a contains-match would confuse them",
                    a.segment(),
                    b.segment()
                );
            }
        }
    }

    #[test]
    fn test_names_declare_their_resources() {
        fn needs(t: &str) -> Result<Vec<&'static str>, &str> {
            needs_of(t).map(|v| v.iter().map(|r| r.name).collect())
        }
        assert_eq!(needs("commands::init"), Ok(vec![]));
        assert_eq!(
            needs("interop::peers_agree_needs_oci_image_tool_needs_shared_needs_skopeo"),
            Ok(vec!["oci-image-tool", "shared", "skopeo"])
        );
        assert_eq!(needs("needs_docker::load_needs_shared"), Ok(vec!["docker", "shared"]));
        for wrong in ["format_needs_names", "x_needs_umocii", "x_needs_", "needs_dockers::load"] {
            assert_eq!(needs(wrong), Err(wrong));
        }
    }

    #[test]
    fn missing_resources_become_one_filterset() {
        assert_eq!(filterset(&[]), None);
        assert_eq!(
            filterset(&[resource("docker"), resource("oci-image-tool")]).as_deref(),
            Some("not (test(~needs_docker) | test(~needs_oci_image_tool))")
        );
    }

    #[test]
    fn probes_look_where_the_tests_look() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs_err::write(dir.path().join("umoci"), "").expect("write");
        let path = std::env::join_paths(["/nonexistent", dir.path().to_str().expect("utf-8")])
            .expect("join");
        assert!(on_path("umoci", Some(&path)));
        assert!(!on_path("skopeo", Some(&path)));
        assert!(!on_path("umoci", None));
        let root = Path::new("/src/ocil");
        assert_eq!(shared_path(None, root), root.join("../shared"));
        assert_eq!(shared_path(Some("/data".into()), root), PathBuf::from("/data"));
    }
}
