//! Shipping images between layouts: `ocil copy` and `ocil convert` against the peer tools as
//! oracles, `ocil copy` killed at random moments, and the progress bars under a terminal.
//!
//! - `interop`: skopeo and umoci accept our copies; `skopeo copy` between layouts gives the
//!   same digests as `ocil copy`; `skopeo copy --format v2s2` picks the same media types as
//!   `ocil convert --to docker`, and skopeo reads what `ocil convert --to oci` writes;
//! - `crash`: `ocil copy` and `ocil convert` SIGKILLed at seeded moments (fsck-clean, no
//!   partial tags), and copies while a gc runs on SRC;
//! - `progress`: under a pseudo-terminal (`script` from util-linux) a bar is drawn on
//!   stderr; with stderr piped, or `--quiet`, nothing but the normal output.
//!
//! A test that uses `shared/` or a peer tool says so in its name (`needs_shared`,
//! `needs_umoci`, ...); when one is missing it skips with a note, is left out (and counted as
//! skipped) by `cargo xtask ci`, and fails under `CI=true` (`../common/peers.rs`).

mod crash;
#[path = "../common/crash.rs"]
mod crash_harness;
mod interop;
#[path = "../common/peers.rs"]
mod peers;
mod progress;
mod support;
