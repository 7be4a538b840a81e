//! Registries: `ocil pull`, and `docker://` for `copy`, `ls`, `inspect` and `cat`, against
//! real components started by the tests on 127.0.0.1 (random ports, bounded waits).
//!
//! - `interop`: Debian's `docker-registry` (distribution 2.8) started per test; skopeo (the
//!   oracle) pushes the shared conformance layouts and peer-made fixtures into it, and
//!   `ocil pull` must give the same digests and tags, fsck-clean; Basic auth with an
//!   htpasswd file; `--platform`; `ls` of tags, `inspect`, `cat`, `copy docker://`; what the
//!   Docker daemon pushed (`docker push`) pulled with the same digest;
//! - `push`: `ocil push` into `docker-registry`: skopeo reads it back with the same digests,
//!   every shared image round-trips, the Docker daemon pulls it, a copy between two
//!   repositories mounts (the registry's access log counts), referrers through the tag
//!   fallback, Basic auth;
//! - `faults`: a scripted registry of the tests' own (`fake.rs`, a `TcpListener` answering
//!   what each test says, able to cut a body mid-stream): a wrong Docker-Content-Digest, a
//!   manifest over the cap, an HTML page with a 200, a flipped byte, a dropped connection
//!   resumed with `Range`, a 200 answer to a `Range` request, a pull killed mid-blob, a 403
//!   "expired" token renewed, a 429 with its `RateLimit-*` figures. Each
//!   leaves the destination fsck-clean, with no bad blob stored;
//! - `uploads`: `ocil push` into the scripted registry serving an honest one in memory
//!   (`memory.rs`): the order of requests, odd upload answers, a source that lies, and
//!   referrers through the API and the fallback tag.
//!
//! - `auth`: `ocil login`/`logout` and the auth files docker and podman keep (HOME,
//!   XDG_RUNTIME_DIR and DOCKER_CONFIG in a temp dir, a fake `docker-credential-*` script on
//!   PATH), an identity token exchanged at the scripted registry's token server.
//!
//! - `token`: the Bearer token flow against `docker-registry`'s `auth: token:`, with a token
//!   server of the tests' own signing JWTs (jsonwebtoken, a key and certificate from rcgen).
//!
//! Tests that need `docker-registry` carry `needs_registry` in their names (see
//! `../common/peers.rs`).

mod auth;
mod fake;
mod faults;
mod interop;
mod memory;
#[path = "../common/peers.rs"]
mod peers;
mod push;
mod support;
mod token;
mod uploads;
