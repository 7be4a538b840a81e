//! `ocil login HOST` and `ocil logout HOST`: credentials kept in the files docker and podman
//! read (`crate::auth`), checked against the registry before they are kept.

use std::io::{Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use ocil_registry::{Client, Creds, Options};

use crate::{Outcome, output};

pub(crate) const LOGIN_HELP: &str = "Log in to a registry: check the credentials against it, then keep them for pull, push, copy, ls, inspect and cat.

HOST is a registry as references name it (`docker.io`, `registry.example:5000`), or HOST/NAMESPACE for credentials that serve only the repositories under it (podman's namespaced logins). The password is read from stdin (--password-stdin), never from the command line.
The credentials go to the first of: --authfile, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json (the file podman and skopeo write; docker's ~/.docker/config.json when --authfile names it), as base64 of USER:PASS under `auths`, the file's other content kept; written whole (a temp file, mode 0600, renamed). When that file names a credential helper for HOST (`credHelpers`, or `credsStore`), the helper keeps them instead (`docker-credential-NAME store`).
Credentials are looked up in this order: --creds USER:PASS; then the first of --authfile, $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json (or ~/.docker/config.json) that has some for the registry; within a file, its credHelpers entry for the host, then its credsStore (each run as `docker-credential-NAME get`), then `auths`: the longest HOST/NAMESPACE key for the repository, any spelling of the host (`https://HOST`, Docker Hub's `https://index.docker.io/v1/`); an `identitytoken` there is exchanged at the registry's token server. Secrets are never printed.";

pub(crate) const LOGOUT_HELP: &str = "Log out of a registry: remove its credentials from every auth file ocil reads (and have the credential helper those files name for it forget them).

HOST (or HOST/NAMESPACE) as `ocil login` takes it. Exits 1 when no credentials for it were found.";

#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// The registry: HOST[:PORT], or HOST/NAMESPACE
    pub(crate) server: String,
    /// The user name
    #[arg(long, short = 'u')]
    pub(crate) username: String,
    /// Read the password from stdin (one line)
    #[arg(long)]
    pub(crate) password_stdin: bool,
    /// The auth file to write
    #[arg(long, value_name = "FILE")]
    pub(crate) authfile: Option<PathBuf>,
    /// Verify the registry's TLS certificate (false: also fall back to plain http)
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) tls_verify: bool,
    /// Talk plain http to the registry (loopback hosts get it without asking)
    #[arg(long)]
    pub(crate) plain_http: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct LogoutArgs {
    /// The registry: HOST[:PORT], or HOST/NAMESPACE
    pub(crate) server: String,
    /// The auth file to read first
    #[arg(long, value_name = "FILE")]
    pub(crate) authfile: Option<PathBuf>,
}

/// `HOST[/NAMESPACE]` as given (a scheme, `/v1/` and Docker Hub's other names allowed):
/// the registry's domain, and the key its credentials are kept under.
fn server(s: &str) -> Result<(String, String)> {
    let s = s.strip_prefix("docker://").unwrap_or(s);
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let s = s.trim_end_matches('/');
    let s = s.strip_suffix("/v1").or_else(|| s.strip_suffix("/v2")).unwrap_or(s);
    let (host, namespace) = match s.split_once('/') {
        Some((h, ns)) => (h, Some(ns)),
        None => (s, None),
    };
    if host.is_empty() || host.contains(['@', ' ']) {
        anyhow::bail!("`{s}` is not a registry (HOST[:PORT] or HOST/NAMESPACE)");
    }
    let domain = match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    };
    let key = match namespace {
        Some(ns) if !ns.is_empty() => format!("{domain}/{ns}"),
        _ => domain.to_owned(),
    };
    Ok((domain.to_owned(), key))
}

pub(crate) fn run_login(a: LoginArgs) -> Result<Outcome> {
    let (domain, key) = server(&a.server)?;
    if !a.password_stdin {
        anyhow::bail!(
            "give the password on stdin: `ocil login {} -u USER --password-stdin`",
            a.server
        );
    }
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("cannot read the password from stdin")?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        anyhow::bail!("no password on stdin");
    }
    let creds = Creds::new(a.username.clone(), password);
    let opts = Options {
        creds: Some(creds.clone()),
        tls_verify: a.tls_verify,
        plain_http: a.plain_http,
        ..Options::default()
    };
    Client::connect(&domain, opts)
        .and_then(|c| c.check_credentials())
        .with_context(|| format!("cannot log in to `{domain}`"))?;
    let place = crate::auth::store(a.authfile.as_deref(), &domain, &key, &creds)?;
    output::note(&format!("credentials for `{key}` kept in `{place}`"));
    let mut out = output::stdout();
    writeln!(out, "logged in to `{key}` as `{}`", a.username)?;
    out.flush()?;
    Ok(Outcome::Ok)
}

pub(crate) fn run_logout(a: LogoutArgs) -> Result<Outcome> {
    let (domain, key) = server(&a.server)?;
    let places = crate::auth::forget(a.authfile.as_deref(), &domain, &key)?;
    let mut out = output::stdout();
    if places.is_empty() {
        output::warn(&format!("not logged in to `{key}`: no credentials for it were found"));
        return Ok(Outcome::Problems);
    }
    for p in &places {
        writeln!(out, "removed the credentials for `{key}` from `{p}`")?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers() {
        let s = |x: &str| server(x).unwrap();
        assert_eq!(s("reg.example:5000"), ("reg.example:5000".into(), "reg.example:5000".into()));
        assert_eq!(s("https://index.docker.io/v1/"), ("docker.io".into(), "docker.io".into()));
        assert_eq!(s("reg.example/team/"), ("reg.example".into(), "reg.example/team".into()));
        assert!(server("").is_err());
    }
}
