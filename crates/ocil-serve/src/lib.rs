//! `ocil-serve`: serve OCI image-layout directories as an OCI distribution registry that
//! docker, podman, containerd and skopeo pull from (and push into, with `--push`), with the
//! layout on disk as the registry's storage: nothing is copied.
//!
//! - [`Server`]: bind, then [`Server::run`] until a signal or a [`ShutdownHandle`]; tokio
//!   stays inside this crate (the API is blocking).
//! - ROOT is one layout (one repository, plus each full name its entries carry) or a
//!   directory of layouts, each sub-path a repository.
//! - Reads go through `ocil_layout`'s [`Layout`](ocil_layout::Layout) by digest; names and
//!   digests are checked against the spec's grammars before they touch the filesystem.
//! - Writes use the layout's own atomic paths and lock: blobs are hashed into locked temp
//!   files and renamed when they match; `index.json` updates are batched under the lock.
//! - [`Htpasswd`] (bcrypt) for Basic authentication, [`Tls`] for HTTPS.
//! - Each request is reported to an [`AccessLog`] the caller gives; this crate prints
//!   nothing.

#![warn(missing_docs, clippy::unwrap_used)]

mod api;
mod auth;
mod blobs;
mod body;
mod error;
mod http;
mod listing;
mod manifests;
mod names;
mod referrers;
mod registry;
mod route;
mod server;
mod tls;
mod uploads;
mod view;
mod writer;

pub use auth::Htpasswd;
pub use error::{Error, Result};
pub use server::{AccessEntry, AccessLog, Config, Server, ShutdownHandle};
pub use tls::Tls;
