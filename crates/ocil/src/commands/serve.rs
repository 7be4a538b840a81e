//! `ocil serve ROOT`: serve a layout (or a directory of layouts) as an OCI registry, until
//! SIGINT or SIGTERM. The bound address is the first line on stdout (with `--addr
//! 127.0.0.1:0` a script learns the port there); notes, warnings and the access log go to
//! stderr.

use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use ocil_serve::{AccessEntry, AccessLog, Config, Htpasswd, Server, Tls};

use crate::{Outcome, output};

pub(crate) const HELP: &str = "Serve a layout, or a directory of layouts, as an OCI registry that docker, podman, containerd and skopeo pull from. Nothing is copied: the layout on disk is the registry's storage.

ROOT is a layout (served as one repository, named by --name or the directory's name; an entry whose full name is known, e.g. io.containerd.image.name = docker.io/library/busybox:1.36, is also served under that repository and tag), or a directory of layouts, each sub-path a repository (ROOT/team/app/ is team/app), as zot lays them out.

Read-only unless --push (uploads and manifests; a new repository of a directory of layouts becomes a new layout) and --delete (manifests, tags and blobs that nothing reaches). Writes go through the same lock and atomic paths as the other commands, so ocil gc and ocil tag can run on a served layout.

The bound address is the first line on stdout (--addr 127.0.0.1:0 picks a free port); notes and one access-log line per request go to stderr. SIGINT or SIGTERM stops the server: in-flight requests get 10 seconds to finish. A non-loopback --addr without TLS is served with a warning: anyone who reaches the port can read (and with --push, write).

Docker treats a registry on 127.0.0.1 as insecure-allowed; from other machines, use TLS or the daemon's insecure-registries.";

/// How the access log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// One line per request, like a web server's access log.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// A layout, or a directory of layouts (each sub-path a repository)
    pub(crate) root: PathBuf,
    /// Address to listen on (port 0: a free port; the bound address is printed first)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:5000")]
    pub(crate) addr: String,
    /// The repository name of a single layout (default: its directory's name)
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Accept pushes (blob uploads and manifests)
    #[arg(long)]
    pub(crate) push: bool,
    /// Accept deletes (manifests, tags, and blobs nothing reaches)
    #[arg(long)]
    pub(crate) delete: bool,
    /// Require Basic authentication against an htpasswd file (bcrypt: htpasswd -B)
    #[arg(long, value_name = "FILE")]
    pub(crate) htpasswd: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Access log format
    #[arg(long, value_enum, default_value = "text")]
    pub(crate) log_format: LogFormat,
    /// Drop an upload session untouched for this long, with its bytes (30s, 10m, 2h)
    #[arg(long, value_name = "AGE", default_value = "30m")]
    pub(crate) upload_expiry: String,
}

struct Log(LogFormat);

impl AccessLog for Log {
    fn log(&self, e: &AccessEntry<'_>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let time = ocil_codec::epoch::rfc3339(now).unwrap_or_default();
        let line = match self.0 {
            LogFormat::Text => format!(
                "{} - {} [{time}] \"{} {} {}\" {} {} {:.3}s \"{}\"",
                e.peer.ip(),
                e.user.unwrap_or("-"),
                e.method,
                e.target,
                e.version,
                e.status,
                e.bytes.map_or_else(|| "-".to_owned(), |b| b.to_string()),
                e.elapsed.as_secs_f64(),
                e.user_agent.unwrap_or("-").replace('"', "'"),
            ),
            LogFormat::Json => serde_json::json!({
                "time": time,
                "peer": e.peer.to_string(),
                "user": e.user,
                "method": e.method,
                "target": e.target,
                "version": e.version,
                "status": e.status,
                "bytes": e.bytes,
                "elapsed_ms": e.elapsed.as_secs_f64() * 1000.0,
                "user_agent": e.user_agent,
            })
            .to_string(),
        };
        output::log_line(&line);
    }
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("`{addr}` is not an address to listen on (HOST:PORT)"))?
        .next()
        .with_context(|| format!("`{addr}` resolves to no address"))
}

/// What to warn about when serving on `addr`: a non-loopback address without TLS, or one
/// that accepts writes from anyone.
fn exposure_warnings(addr: SocketAddr, tls: bool, writes: bool, auth: bool) -> Vec<String> {
    let mut out = Vec::new();
    if addr.ip().is_loopback() {
        return out;
    }
    if !tls {
        out.push(format!(
            "serving on {addr} without TLS: anyone who reaches it can read{}, and nothing is encrypted (use --tls-cert/--tls-key)",
            if writes { " and write" } else { "" }
        ));
    }
    if writes && !auth {
        out.push("--push/--delete on a non-loopback address without --htpasswd: anyone who reaches it can change the layout".to_owned());
    }
    out
}

pub(crate) fn run(a: ServeArgs) -> Result<Outcome> {
    let addr = resolve(&a.addr)?;
    let upload_expiry = super::gc::parse_age(&a.upload_expiry)?;
    let root = Dir::open_ambient_dir(&a.root, ambient_authority())
        .with_context(|| format!("cannot open `{}`", a.root.display()))?;
    let canonical = fs_err::canonicalize(&a.root)?;
    let dir_name =
        canonical.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut config = Config::new(root, &a.root.display().to_string(), &dir_name);
    config.name = a.name.clone();
    config.push = a.push;
    config.delete = a.delete;
    config.upload_expiry = upload_expiry;
    config.log = Some(Arc::new(Log(a.log_format)));
    if let Some(f) = &a.htpasswd {
        let text = fs_err::read_to_string(f)?;
        config.htpasswd =
            Some(Htpasswd::parse(&text).with_context(|| format!("cannot use `{}`", f.display()))?);
    }
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        let tls = Tls::from_pem(&fs_err::read(cert)?, &fs_err::read(key)?)
            .with_context(|| format!("cannot use `{}` and `{}`", cert.display(), key.display()))?;
        config.tls = Some(tls);
    }
    let tls = config.tls.is_some();
    let server = Server::bind(addr, config)
        .with_context(|| format!("cannot serve `{}`", a.root.display()))?;
    let bound = server.local_addr();
    output::line(&bound.to_string())?;
    for w in exposure_warnings(bound, tls, a.push || a.delete, a.htpasswd.is_some()) {
        output::warn(&w);
    }
    let repos = server.repositories();
    let mode = match (a.push, a.delete) {
        (false, false) => "read-only",
        (true, false) => "push enabled",
        (false, true) => "delete enabled",
        (true, true) => "push and delete enabled",
    };
    let scheme = if tls { "https" } else { "http" };
    output::note(&format!(
        "serving `{}` at {scheme}://{bound}/v2/ ({mode}); {} {}",
        a.root.display(),
        repos.len(),
        if repos.len() == 1 { "repository" } else { "repositories" }
    ));
    for (name, what) in repos.iter().take(20) {
        output::note(&format!("  {name}: {what}"));
    }
    if repos.len() > 20 {
        output::note(&format!("  ... and {} more (GET /v2/_catalog)", repos.len() - 20));
    }
    server.run(true).context("the server stopped")?;
    output::note("stopped");
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_for_exposed_addresses() {
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lo6: SocketAddr = "[::1]:5000".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:5000".parse().unwrap();
        assert!(exposure_warnings(lo, false, true, false).is_empty());
        assert!(exposure_warnings(lo6, false, true, false).is_empty());
        let w = exposure_warnings(any, false, false, false);
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("without TLS") && !w[0].contains("write"), "{w:?}");
        assert_eq!(exposure_warnings(any, false, true, false).len(), 2);
        assert!(exposure_warnings(any, true, false, false).is_empty());
        assert!(exposure_warnings(any, true, true, true).is_empty());
        assert_eq!(exposure_warnings(any, true, true, false).len(), 1);
    }
}
