//! Registries on the command line: `docker://REF` targets (and a bare REF for `ocil
//! pull`), the options every command that reads a registry takes (`--creds`,
//! `--tls-verify`, `--plain-http`), and the store they open ([`ocil_registry`]).

use std::sync::Arc;

use anyhow::{Context, Result};
use ocil_layout::Layout;
use ocil_layout::image_ref::RegistryRef;
use ocil_registry::{Client, Creds, Options, RegistryStore};

/// How to reach a registry: flattened into the commands that read one.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Registry credentials, USER:PASS (Basic auth, or for the registry's token server)
    #[arg(long, value_name = "USER:PASS")]
    pub(crate) creds: Option<String>,
    /// Verify the registry's TLS certificate (false: also fall back to plain http)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) tls_verify: bool,
    /// Talk plain http to the registry (loopback hosts get it without asking)
    #[arg(long)]
    pub(crate) plain_http: bool,
}

impl RegistryArgs {
    fn options(&self) -> Result<Options> {
        let creds = self.creds.as_deref().map(Creds::parse).transpose()?;
        Ok(Options {
            creds,
            tls_verify: self.tls_verify,
            plain_http: self.plain_http,
            ..Options::default()
        })
    }
}

/// The registry reference of a `docker://REF` target, if `s` is one.
pub(crate) fn docker_target(s: &str) -> Result<Option<RegistryRef>> {
    let Some(rest) = s.strip_prefix("docker://") else { return Ok(None) };
    parse(rest, s).map(Some)
}

/// A reference as docker takes it (`busybox`, `host:port/repo:tag`, `...@sha256:...`),
/// with or without `docker://`.
pub(crate) fn parse_reference(s: &str) -> Result<RegistryRef> {
    parse(s.strip_prefix("docker://").unwrap_or(s), s)
}

fn parse(rest: &str, whole: &str) -> Result<RegistryRef> {
    RegistryRef::parse(rest)
        .map_err(|reason| anyhow::anyhow!("invalid image reference `{whole}`: {reason}"))
}

/// Connect to the registry of `r` and open its repository as a store, resolving the
/// reference; `local` (a layout) is used instead of fetching what it already holds.
pub(crate) fn open(
    r: &RegistryRef,
    args: &RegistryArgs,
    local: Option<Layout>,
) -> Result<RegistryStore> {
    let opts = args.options()?;
    let client = Client::connect(r.domain(), opts)
        .with_context(|| format!("cannot connect to registry `{}`", r.domain()))?;
    RegistryStore::open(Arc::new(client), r, local)
        .with_context(|| format!("cannot read `docker://{r}`"))
}

/// Connect to the registry of `r` (for its tag list).
pub(crate) fn connect(r: &RegistryRef, args: &RegistryArgs) -> Result<Arc<Client>> {
    let opts = args.options()?;
    Ok(Arc::new(
        Client::connect(r.domain(), opts)
            .with_context(|| format!("cannot connect to registry `{}`", r.domain()))?,
    ))
}
