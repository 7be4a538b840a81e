//! Where a registry is and how it is reached: the API host of a reference's domain (Docker
//! Hub's `docker.io` is served by `registry-1.docker.io`), whether plain http is allowed
//! (loopback only, unless asked), and the client's options, credentials among them.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::{Error, Result};

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";

/// The host Docker Hub's API answers on.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// The host (with port) a reference's domain is served from: `docker.io` (and its old
/// spelling `index.docker.io`) is `registry-1.docker.io`; any other domain is itself.
pub fn api_host(domain: &str) -> &str {
    match domain {
        DOCKER_HUB | "index.docker.io" => DOCKER_HUB_API,
        other => other,
    }
}

/// The host part of `HOST[:PORT]` (`[::1]:5000` is `::1`).
pub fn host_only(host_port: &str) -> &str {
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split_once(']').map_or(v6, |(h, _)| h);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host_port,
    }
}

/// Whether `HOST[:PORT]` is this machine: `localhost`, 127.0.0.0/8 or `::1`. Docker talks
/// plain http to these without being asked; ocil does too.
pub fn is_loopback(host_port: &str) -> bool {
    let host = host_only(host_port);
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A user name and password (`--creds USER:PASS`), or an identity token (a refresh token a
/// registry gave at login, exchanged for access tokens). Secrets are never shown: `Debug`
/// prints the user only.
#[derive(Clone, PartialEq, Eq)]
pub struct Creds {
    user: String,
    password: String,
    identity_token: Option<String>,
}

/// The user name docker's credential helpers give with an identity token.
pub const TOKEN_USER: &str = "<token>";

impl Creds {
    /// A user and password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Creds {
        Creds { user: user.into(), password: password.into(), identity_token: None }
    }

    /// An identity token (with the user it was given to, when known).
    pub fn identity_token(user: impl Into<String>, token: impl Into<String>) -> Creds {
        Creds { user: user.into(), password: String::new(), identity_token: Some(token.into()) }
    }

    /// The identity token, when these are one.
    pub fn token(&self) -> Option<&str> {
        self.identity_token.as_deref()
    }

    /// The password (for writing an auth file; never shown).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// `USER:PASS` (the password may hold `:`).
    pub fn parse(s: &str) -> Result<Creds> {
        match s.split_once(':') {
            Some((u, p)) if !u.is_empty() => Ok(Creds::new(u, p)),
            _ => Err(Error::Usage("--creds takes USER:PASS".into())),
        }
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `Authorization` value of HTTP Basic for these credentials.
    pub(crate) fn basic(&self) -> String {
        use base64::Engine as _;
        let raw = format!("{}:{}", self.user, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

impl fmt::Debug for Creds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Creds").field("user", &self.user).finish_non_exhaustive()
    }
}

/// How to reach a registry.
#[derive(Debug, Clone)]
pub struct Options {
    /// Credentials for Basic auth, or for the token server of the Bearer flow.
    pub creds: Option<Creds>,
    /// Verify TLS certificates (skopeo's `--tls-verify`). `false` also allows plain http
    /// when https fails.
    pub tls_verify: bool,
    /// Talk plain http (`--plain-http`), whatever the host.
    pub plain_http: bool,
    /// How long to wait for a connection, and for each read of an answer: a stalled peer
    /// is an error after this.
    pub timeout: Duration,
    /// How often an idempotent request is tried again after a connection error, a 429 or
    /// a 5xx (and how often a blob download resumes after a dropped connection).
    pub retries: u32,
    /// The first wait before a retry; it doubles at each (a `Retry-After` wins, up to
    /// [`Options::max_wait`]).
    pub backoff: Duration,
    /// The longest wait before a retry.
    pub max_wait: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            creds: None,
            tls_verify: true,
            plain_http: false,
            timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_millis(500),
            max_wait: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        for h in ["localhost", "localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:80", "::1"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["example.com", "10.0.0.1:5000", "[fe80::1]:5000", "localhost.example.com"] {
            assert!(!is_loopback(h), "{h}");
        }
        assert_eq!(host_only("[::1]:5000"), "::1");
        assert_eq!(host_only("a.b:5000"), "a.b");
    }

    #[test]
    fn creds_never_show_the_password() {
        let c = Creds::parse("me:se:cret").unwrap();
        assert_eq!(c.user(), "me");
        assert!(!format!("{c:?}").contains("se:cret"));
        assert_eq!(c.basic(), "Basic bWU6c2U6Y3JldA==");
        assert!(Creds::parse("nocolon").is_err());
        assert!(Creds::parse(":pass").is_err());
        let t = Creds::identity_token("me", "refresh-secret");
        assert!(!format!("{t:?}").contains("refresh-secret"));
        assert_eq!(t.token(), Some("refresh-secret"));
    }
}
