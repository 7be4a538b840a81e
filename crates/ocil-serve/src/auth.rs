//! Basic authentication against an htpasswd file, as distribution reads one: `user:hash`
//! lines with bcrypt hashes (`htpasswd -B`); blank lines and `#` comments are skipped.
//!
//! bcrypt is slow on purpose (tens of milliseconds), and clients send their credentials
//! with every request, so a password once verified is remembered by its SHA-256 until the
//! server stops.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::registry::lock;
use crate::{Error, Result};

/// The users of an htpasswd file.
#[derive(Debug)]
pub struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashMap<String, [u8; 32]>>,
}

/// What a request's `Authorization` header proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// A known user with the right password.
    User(String),
    /// No credentials.
    Missing,
    /// Wrong user, wrong password, or a header that is not Basic.
    Wrong,
}

impl Htpasswd {
    /// Parse an htpasswd file's text. Only bcrypt entries are accepted.
    pub fn parse(text: &str) -> Result<Htpasswd> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: &str| Error::Htpasswd { line: i + 1, reason: reason.into() };
            let (user, hash) =
                line.split_once(':').ok_or_else(|| bad("no `:` between user and hash"))?;
            if user.is_empty() {
                return Err(bad("empty user name"));
            }
            if !["$2a$", "$2b$", "$2y$", "$2x$"].iter().any(|p| hash.starts_with(p)) {
                return Err(bad("not a bcrypt hash: make entries with `htpasswd -B`"));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        if users.is_empty() {
            return Err(Error::Htpasswd { line: 0, reason: "no users".into() });
        }
        Ok(Htpasswd { users, verified: Mutex::default() })
    }

    /// Check an `Authorization` header's value.
    pub(crate) fn check(&self, header: Option<&[u8]>) -> Check {
        let Some(h) = header else { return Check::Missing };
        let Some(b64) = std::str::from_utf8(h).ok().and_then(|h| {
            let (scheme, rest) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then_some(rest.trim())
        }) else {
            return Check::Wrong;
        };
        let Some(pair) = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        else {
            return Check::Wrong;
        };
        let Some((user, password)) = pair.split_once(':') else { return Check::Wrong };
        let Some(hash) = self.users.get(user) else { return Check::Wrong };
        let seen: [u8; 32] = Sha256::digest(password.as_bytes()).into();
        if lock(&self.verified).get(user) == Some(&seen) {
            return Check::User(user.to_owned());
        }
        if bcrypt::verify(password, hash).unwrap_or(false) {
            lock(&self.verified).insert(user.to_owned(), seen);
            Check::User(user.to_owned())
        } else {
            Check::Wrong
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // `htpasswd -nbB alice secret` (Apache's tool, not this crate's bcrypt).
    const ALICE: &str = "alice:$2y$05$aj1JgkRzM7dKQnN3MdiUguED24uoLrMfVDtIb5vqpemJM.KCeRIH6";

    fn basic(s: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(s)).into_bytes()
    }

    #[test]
    fn parses_and_refuses() {
        assert!(Htpasswd::parse("# c\n\nalice:$2y$05$abc\n").is_ok());
        assert!(matches!(Htpasswd::parse("bob:{SHA}xyz"), Err(Error::Htpasswd { line: 1, .. })));
        assert!(Htpasswd::parse("nocolon").is_err());
        assert!(Htpasswd::parse("\n# only comments\n").is_err());
        let h = Htpasswd::parse(ALICE).unwrap();
        assert_eq!(h.check(None), Check::Missing);
        assert_eq!(h.check(Some(b"Bearer x")), Check::Wrong);
        assert_eq!(h.check(Some(b"Basic !!!")), Check::Wrong);
        assert_eq!(h.check(Some(&basic("alice:wrong"))), Check::Wrong);
        assert_eq!(h.check(Some(&basic("mallory:secret"))), Check::Wrong);
        assert_eq!(h.check(Some(&basic("alice:secret"))), Check::User("alice".into()));
        // Remembered: the second check does not run bcrypt (and still refuses a wrong one).
        assert_eq!(h.check(Some(&basic("alice:secret"))), Check::User("alice".into()));
        assert_eq!(h.check(Some(&basic("alice:secreT"))), Check::Wrong);
    }
}
