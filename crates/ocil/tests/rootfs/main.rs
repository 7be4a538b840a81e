//! `ocil unpack`, `status`, `repack` and `export-rootfs` against independent truth, in one
//! test binary:
//!
//! - `vectors`: the shared tar-extraction vectors (path traversal, symlink and hard-link
//!   breakouts, whiteout edge cases) as layers of generated images, with a sentinel tree
//!   around the bundle: each gives its stated outcome, nothing outside changes.
//! - `umoci`: `umoci unpack` as the oracle for every OCI image of `shared/` it takes: the
//!   same tree (paths, types, modes, owners, sizes, contents, link targets, hard links) and
//!   the same config.json fields; layers made by `ocil repack` unpack under umoci to the
//!   same tree as under ocil.
//! - `workspace`: the loop: unpack, change (add, modify, delete, chmod, replace a directory
//!   by a file, ...), status lists exactly those, repack, unpack elsewhere equals the changed
//!   tree; rootless bundles, every entry type, reproducible repacks, refusals.
//! - `docker`: Docker-typed images against `docker export` of a container the daemon
//!   created from the same image.
//! - `runc`: a busybox image unpacked and run by `runc run`, then changed, repacked and run
//!   again.
//! - `crash`: unpack and repack killed at random moments: a complete or an incomplete
//!   bundle, the old or the new image, an fsck-clean layout.
//!
//! A test that uses `shared/` or a peer tool says so in its name (`needs_shared`,
//! `needs_umoci`, ...); see `../common/peers.rs`.

mod crash;
#[path = "../common/crash.rs"]
mod crash_harness;
mod docker;
#[path = "../common/peers.rs"]
mod peers;
mod runc;
mod sparse;
mod support;
mod umoci;
mod vectors;
mod workspace;
