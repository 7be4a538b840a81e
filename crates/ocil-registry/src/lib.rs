//! `ocil-registry`: images in a registry, over the OCI distribution API.
//!
//! - [`host`]: where a `docker://` reference's registry is served (Docker Hub's
//!   `registry-1.docker.io`), loopback hosts, [`Options`] and [`Creds`];
//! - [`Client`]: one registry host over HTTP (ureq, rustls with the system's roots): the
//!   `GET /v2/` ping, auth ([`auth`]: anonymous, Basic, the Bearer token flow), retries with
//!   backoff, redirects that never carry credentials to another host;
//! - [`Repository`]: one repository: manifests ([`manifest`]: capped, digest-checked),
//!   blobs ([`BlobReader`]: streamed, checked, resumed with `Range`), tags;
//! - [`RegistryStore`]: a repository read as an [`ocil_layout::Store`], and
//!   [`RegistryDest`]: a repository written as an [`ocil_layout::Destination`] (uploads,
//!   cross-repository mounts, manifests, tags), so the copy engine of `ocil-transfer` pulls
//!   from and pushes to a registry as it copies between layouts: a transport never owns the
//!   copy engine;
//! - [`credentials`]: docker's and podman's auth files and credential helpers;
//! - [`referrers`]: the referrers API and its `sha256-<hex>` tag fallback, both ways.
//!
//! The reference grammar (`busybox` = `docker.io/library/busybox:latest`) is
//! [`ocil_layout::image_ref::RegistryRef`]'s.

#![warn(missing_docs, clippy::unwrap_used)]

pub mod auth;
mod blob;
mod client;
pub mod credentials;
mod dest;
mod error;
pub mod host;
pub mod manifest;
pub mod referrers;
mod repo;
mod store;
mod upload;

pub use blob::BlobReader;
pub use client::Client;
pub use credentials::AuthFile;
pub use dest::RegistryDest;
pub use error::{Error, Result};
pub use host::{Creds, Options, api_host};
pub use referrers::ReferrersMode;
pub use repo::Repository;
pub use store::RegistryStore;
