//! `ocil append` and `ocil index` against independent truth, in one test binary:
//!
//! - `interop`: the peers read what we wrote. `umoci stat` and `umoci unpack --rootless`
//!   (the appended files appear in the bundle's rootfs with their modes, contents, symlink
//!   target and hard link), `skopeo inspect` and `skopeo copy --all`, `ocil fsck --deep`
//!   (diff_ids right); Docker-typed images, which umoci 0.4.7 and skopeo 1.9.3 cannot read
//!   from a layout, are checked with GNU tar, gzip and sha256sum instead; `append --file`
//!   layers are listed and extracted by GNU tar and unpacked by umoci.
//! - `attest`: `ocil index` carries, drops and removes BuildKit attestations with their images.
//! - `concurrent`: parallel appends and index edits on one layout lose nothing.
//! - `crash`: `ocil append` killed with SIGKILL at seeded random moments: fsck clean, the
//!   tag at the old or the new image.
//!
//! A test that uses `shared/` or a peer tool says so in its name (`needs_shared`,
//! `needs_umoci`, ...); when one is missing it skips with a note, is left out (and counted as
//! skipped) by `cargo xtask ci`, and fails under `CI=true` (`../common/peers.rs`).

#[allow(dead_code, reason = "the gc tests' helpers, shared by path; not all are used here")]
#[path = "../gc/layout.rs"]
mod layout;

mod attest;
mod concurrent;
mod crash;
#[path = "../common/crash.rs"]
mod crash_harness;
mod interop;
#[path = "../common/peers.rs"]
mod peers;
mod support;
