//! Authentication: the registry's `WWW-Authenticate` challenge (parsed by `http-auth`), and
//! the tokens of the Bearer flow, cached per scope set until they expire.
//!
//! The flow: `GET /v2/` answers 200 (anonymous), or 401 with a challenge. `Basic` sends the
//! credentials to the registry host with every request. `Bearer realm=...,service=...`
//! asks the realm for a token for the scopes a request needs (`repository:NAME:pull`), with
//! the credentials as Basic auth when there are any, and sends the token to the registry.
//! A token is kept for its scope set until `expires_in` (60 s when absent) runs out, and
//! fetched anew on a 401.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// What the registry asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Nothing: anonymous access.
    None,
    /// HTTP Basic with the credentials.
    Basic,
    /// The token flow.
    Bearer {
        /// The token server.
        realm: String,
        /// The `service` parameter, when given.
        service: Option<String>,
        /// The scope the challenge names, when it names one (several are space-separated).
        scope: Option<String>,
    },
}

impl Challenge {
    /// The challenge of a `WWW-Authenticate` value (several challenges: Bearer preferred,
    /// then Basic); `Err` says why it is unusable.
    pub fn parse(header: &str) -> Result<Challenge, String> {
        let all = http_auth::parse_challenges(header).map_err(|e| e.to_string())?;
        let param = |c: &http_auth::ChallengeRef<'_>, name: &str| {
            c.params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_unescaped())
        };
        if let Some(c) = all.iter().find(|c| c.scheme.eq_ignore_ascii_case("bearer")) {
            let realm = param(c, "realm").ok_or("a Bearer challenge without a realm")?;
            if !(realm.starts_with("https://") || realm.starts_with("http://")) {
                return Err(format!("the realm `{realm}` is not an http(s) URL"));
            }
            return Ok(Challenge::Bearer {
                realm,
                service: param(c, "service"),
                scope: param(c, "scope"),
            });
        }
        if all.iter().any(|c| c.scheme.eq_ignore_ascii_case("basic")) {
            return Ok(Challenge::Basic);
        }
        let schemes: Vec<&str> = all.iter().map(|c| c.scheme).collect();
        Err(format!("no Basic or Bearer challenge (got: {})", schemes.join(", ")))
    }
}

/// A set of scopes (`repository:library/busybox:pull`), in one order: the cache key.
pub type Scopes = BTreeSet<String>;

/// The pull scope of a repository.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// The pull and push scope of a repository.
pub fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// The token server's answer (Docker's `token`, OAuth's `access_token`).
#[derive(Debug, Deserialize)]
pub(crate) struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// A token and when it stops being used.
#[derive(Clone)]
pub(crate) struct Token {
    pub(crate) value: String,
    pub(crate) until: Instant,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token").field("until", &self.until).finish_non_exhaustive()
    }
}

/// The lifetime the distribution spec gives a token without `expires_in`.
const DEFAULT_LIFETIME: u64 = 60;

impl TokenAnswer {
    /// The token, kept until a little before it expires.
    pub(crate) fn into_token(self, now: Instant) -> Option<Token> {
        let value = self.token.filter(|t| !t.is_empty()).or(self.access_token)?;
        if value.is_empty() {
            return None;
        }
        let secs = self.expires_in.unwrap_or(DEFAULT_LIFETIME).max(1);
        // Renewed a tenth early (at most 10 s), so a request does not carry a dying token.
        let margin = (secs / 10).min(10);
        Some(Token { value, until: now + Duration::from_secs(secs - margin) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }
        );
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap(), Challenge::Basic);
        assert_eq!(
            Challenge::parse(r#"Basic realm="x", Bearer realm="http://127.0.0.1:1/t""#).unwrap(),
            Challenge::Bearer { realm: "http://127.0.0.1:1/t".into(), service: None, scope: None }
        );
        assert!(Challenge::parse(r#"Bearer service="x""#).is_err());
        assert!(Challenge::parse(r#"Bearer realm="file:///etc/passwd""#).is_err());
        assert!(Challenge::parse(r#"Negotiate abc="d""#).is_err());
    }

    #[test]
    fn tokens() {
        let now = Instant::now();
        let t: TokenAnswer =
            serde_json::from_str(r#"{"access_token":"a","expires_in":300}"#).unwrap();
        let t = t.into_token(now).unwrap();
        assert_eq!(t.value, "a");
        assert_eq!(t.until, now + Duration::from_secs(290));
        let t: TokenAnswer = serde_json::from_str(r#"{"token":"b","access_token":"c"}"#).unwrap();
        assert_eq!(t.into_token(now).unwrap().value, "b");
        let t: TokenAnswer = serde_json::from_str(r#"{"token":""}"#).unwrap();
        assert!(t.into_token(now).is_none());
        assert!(!format!("{:?}", Token { value: "secret".into(), until: now }).contains("secret"));
    }
}
