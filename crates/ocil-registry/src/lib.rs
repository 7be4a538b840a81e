//! `ocil-registry`: images in a registry, over the OCI distribution API.
//!
//! - [`host`]: where a `docker://` reference's registry is served (Docker Hub's
//!   `registry-1.docker.io`), loopback hosts, [`Options`] and [`Creds`];
//! - [`Client`]: one registry host over HTTP (ureq, rustls with the system's roots): the
//!   `GET /v2/` ping, auth ([`auth`]: anonymous, Basic, the Bearer token flow), retries with
//!   backoff, redirects that never carry credentials to another host;
//! - [`Repository`]: one repository: manifests ([`manifest`]: capped, digest-checked),
//!   blobs ([`BlobReader`]: streamed, checked, resumed with `Range`), tags;
//! - [`RegistryStore`]: a repository read as an [`ocil_layout::Store`], so the copy engine of
//!   `ocil-transfer` pulls from a registry as it copies from a layout: a transport never
//!   owns the copy engine.
//!
//! The reference grammar (`busybox` = `docker.io/library/busybox:latest`) is
//! [`ocil_layout::image_ref::RegistryRef`]'s.

#![warn(missing_docs, clippy::unwrap_used)]

pub mod auth;
mod blob;
mod client;
mod error;
pub mod host;
pub mod manifest;
mod repo;
mod store;

pub use blob::BlobReader;
pub use client::Client;
pub use error::{Error, Result};
pub use host::{Creds, Options, api_host};
pub use repo::Repository;
pub use store::RegistryStore;
