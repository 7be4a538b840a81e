//! `ocil serve` as clients meet it: the command itself (the bound address on stdout's first
//! line, the access log, SIGTERM), real clients as oracles (skopeo pulls every image of the
//! shared layouts and archives with identical digests and pushes into `--push`; the Docker
//! daemon pulls OCI and Docker-typed images and pushes), and 32 concurrent pulls while
//! `ocil tag` and `ocil gc` run on the served layout. The HTTP API spec by spec is tested in
//! `crates/ocil-serve/tests/api`.
//!
//! A test that uses `shared/` or a peer tool says so in its name (`needs_shared`,
//! `needs_skopeo`, `needs_docker`); see `../common/peers.rs`.

mod cli;
mod clients;
mod concurrency;
#[path = "../common/crash.rs"]
mod crash_harness;
#[path = "../common/peers.rs"]
mod peers;
mod support;
