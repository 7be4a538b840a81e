//! `ocil gc` through the binary: Docker-typed images, fail-closed exit codes, `--tagged-only`
//! (`basics.rs`); writers and gc running at the same time (`concurrency.rs`); gc and writers
//! killed with SIGKILL at seeded random moments (`crash.rs`).
//!
//! Layouts are written by hand with serde_json and sha2 (`layout.rs`), or by `ocil` itself.

mod basics;
mod concurrency;
mod crash;
#[path = "../common/crash.rs"]
mod crash_harness;
mod layout;
