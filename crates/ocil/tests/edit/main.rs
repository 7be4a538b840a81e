//! `ocil config`, `annotate` and `rm` through the binary, judged by independent means:
//!
//! - `lossless`: hand-written Docker and OCI documents, edited, compared member by member
//!   as raw text (a scanner written here, not the library's);
//! - `interop`: peer-made fixtures edited, then read by the peers (umoci, skopeo) and fsck;
//! - `crash`: `ocil config` killed with SIGKILL at seeded random moments;
//! - `concurrency`: many `ocil tag` and `ocil config` processes on one layout at once.

mod concurrency;
mod crash;
#[path = "../common/crash.rs"]
mod crash_harness;
mod interop;
mod lossless;
#[path = "../common/peers.rs"]
mod peers;
mod support;
