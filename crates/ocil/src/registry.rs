//! Registries on the command line: `docker://REF` targets (and a bare REF for `ocil
//! pull`), the options every command that reads a registry takes (`--creds`,
//! `--tls-verify`, `--plain-http`), and the store they open ([`ocil_registry`]).

use std::sync::Arc;

use anyhow::{Context, Result};
use ocil_layout::Layout;
use ocil_layout::image_ref::RegistryRef;
use ocil_registry::{Client, Options, ReferrersMode, RegistryDest, RegistryStore};

/// How to reach a registry: flattened into the commands that read one.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct RegistryArgs {
    /// Registry credentials, USER:PASS (Basic auth, or for the registry's token server);
    /// without it, the auth files docker and podman keep (see `ocil login --help`)
    #[arg(long, value_name = "USER:PASS")]
    pub(crate) creds: Option<String>,
    /// The auth file to read first (podman's format, docker's config.json too)
    #[arg(long, value_name = "FILE")]
    pub(crate) authfile: Option<std::path::PathBuf>,
    /// Verify the registry's TLS certificate (false: also fall back to plain http)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) tls_verify: bool,
    /// Talk plain http to the registry (loopback hosts get it without asking)
    #[arg(long)]
    pub(crate) plain_http: bool,
}

impl RegistryArgs {
    /// How to reach the registry of `r`, with the credentials found for its repository.
    fn options(&self, r: &RegistryRef) -> Result<Options> {
        let creds = crate::auth::lookup(
            self.creds.as_deref(),
            self.authfile.as_deref(),
            r.domain(),
            r.repository(),
        )?;
        Ok(Options {
            creds,
            tls_verify: self.tls_verify,
            plain_http: self.plain_http,
            ..Options::default()
        })
    }
}

/// How referrers are found and indexed: flattened into `pull`, `push` and `copy`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ReferrersArgs {
    /// How referrers (signatures, SBOMs) of the images are found in a registry and indexed
    /// in one: the referrers API, else the sha256-<hex> tag (auto); only one of them; or
    /// none (not copied)
    #[arg(long, value_name = "MODE", default_value = "auto")]
    pub(crate) referrers: ReferrersChoice,
}

/// `--referrers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReferrersChoice {
    Auto,
    Api,
    Tag,
    None,
}

impl ReferrersArgs {
    pub(crate) fn mode(&self) -> ReferrersMode {
        match self.referrers {
            ReferrersChoice::Auto => ReferrersMode::Auto,
            ReferrersChoice::Api => ReferrersMode::Api,
            ReferrersChoice::Tag => ReferrersMode::Tag,
            ReferrersChoice::None => ReferrersMode::None,
        }
    }

    /// Whether referrers are copied at all.
    pub(crate) fn copied(&self) -> bool {
        self.referrers != ReferrersChoice::None
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
    referrers: ReferrersMode,
) -> Result<RegistryStore> {
    let client = connect(r, args)?;
    open_with(client, r, local, referrers)
}

/// [`open`] with a client already connected (one registry read and written).
pub(crate) fn open_with(
    client: Arc<Client>,
    r: &RegistryRef,
    local: Option<Layout>,
    referrers: ReferrersMode,
) -> Result<RegistryStore> {
    let mut store = RegistryStore::open(client, r, local)
        .with_context(|| format!("cannot read `docker://{r}`"))?;
    store.set_referrers(referrers);
    Ok(store)
}

/// The repository of `r` as a destination; blobs are mounted from `mount_from` (a
/// repository of the same registry) when given.
pub(crate) fn destination(
    client: Arc<Client>,
    r: &RegistryRef,
    mount_from: Option<String>,
    referrers: &ReferrersArgs,
) -> RegistryDest {
    RegistryDest::new(client, r).mount_from(mount_from).referrers(referrers.mode())
}

/// Connect to the registry of `r` (for its tag list).
pub(crate) fn connect(r: &RegistryRef, args: &RegistryArgs) -> Result<Arc<Client>> {
    let opts = args.options(r)?;
    Ok(Arc::new(
        Client::connect(r.domain(), opts)
            .with_context(|| format!("cannot connect to registry `{}`", r.domain()))?,
    ))
}
