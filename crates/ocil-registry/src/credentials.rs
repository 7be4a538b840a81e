//! Credentials as docker and podman keep them: the JSON of `~/.docker/config.json` and
//! `containers-auth.json` (one format), and docker's credential helpers. The caller reads
//! and writes the files (they live outside any directory a library is given); this parses,
//! looks up, edits and runs the helpers.
//!
//! Per file, for a registry host: `credHelpers[host]` (run as `docker-credential-NAME get`),
//! then `credsStore` (the same, for every host), then `auths`: the longest key among
//! `host/a/b/c`, `host/a/b`, `host/a`, `host` for the repository `a/b/c` (podman's
//! namespaced logins), any spelling of the host (`https://host`, `host/v1/`), Docker Hub's
//! `https://index.docker.io/v1/` for `docker.io`; its `auth` is base64 of `USER:PASS`, and
//! an `identitytoken` beside it is a refresh token exchanged for access tokens.
//!
//! Edits keep every other member of the file as it was.

use std::io::Write;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::host::{Creds, DOCKER_HUB, TOKEN_USER};
use crate::{Error, Result};

/// Docker Hub's key in docker's files (and its credential helpers' server URL).
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Where a file says a host's credentials are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// In the file.
    Creds(Creds),
    /// With the credential helper `docker-credential-NAME`.
    Helper(String),
}

/// An auth file's content. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct AuthFile {
    doc: Map<String, Value>,
}

/// A key of `auths` as a host path: no scheme, no `/v1/` or `/v2/`, no trailing `/`
/// (`https://index.docker.io/v1/` is `index.docker.io`).
fn normalize(key: &str) -> String {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    let k = k.trim_end_matches('/');
    let k = k.strip_suffix("/v1").or_else(|| k.strip_suffix("/v2")).unwrap_or(k);
    k.to_owned()
}

/// The hosts a domain may be written as (Docker Hub has three).
fn host_names(domain: &str) -> Vec<&str> {
    if domain == DOCKER_HUB {
        vec![DOCKER_HUB, "index.docker.io", "registry-1.docker.io"]
    } else {
        vec![domain]
    }
}

/// The server a credential helper is asked about: Docker Hub's key, else the host.
pub fn helper_server(domain: &str) -> String {
    if domain == DOCKER_HUB { DOCKER_HUB_KEY.to_owned() } else { domain.to_owned() }
}

impl AuthFile {
    /// A file's bytes (empty or blank is an empty file).
    pub fn parse(bytes: &[u8], path: &str) -> Result<AuthFile> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(AuthFile::default());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(doc)) => Ok(AuthFile { doc }),
            Ok(_) => {
                Err(Error::AuthFile { path: path.to_owned(), reason: "not a JSON object".into() })
            }
            Err(e) => Err(Error::AuthFile { path: path.to_owned(), reason: e.to_string() }),
        }
    }

    /// The file's bytes (pretty, as docker and podman write them).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(&self.doc).unwrap_or_default();
        out.push(b'\n');
        out
    }

    fn object(&self, name: &str) -> Option<&Map<String, Value>> {
        self.doc.get(name).and_then(Value::as_object)
    }

    /// The credential helper the file names for `domain`: its `credHelpers` entry, else its
    /// `credsStore`.
    pub fn helper(&self, domain: &str) -> Option<String> {
        let helpers = self.object("credHelpers");
        let mut hosts = host_names(domain);
        if domain == DOCKER_HUB {
            hosts.push(DOCKER_HUB_KEY);
        }
        for host in hosts {
            if let Some(name) = helpers.and_then(|h| h.get(host)).and_then(Value::as_str) {
                return Some(name.to_owned());
            }
        }
        self.doc
            .get("credsStore")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The key of `auths` that serves `repository` of `domain` (the longest namespace).
    fn auth_key(&self, domain: &str, repository: &str) -> Option<String> {
        let auths = self.object("auths")?;
        let parts: Vec<&str> = repository.split('/').collect();
        for host in host_names(domain) {
            for n in (0..=parts.len()).rev() {
                let want = if n == 0 {
                    host.to_owned()
                } else {
                    format!("{host}/{}", parts[..n].join("/"))
                };
                if let Some(k) = auths.keys().find(|k| normalize(k) == want) {
                    return Some(k.clone());
                }
            }
        }
        None
    }

    /// Where the credentials for `repository` of `domain` are, per the module docs.
    pub fn lookup(&self, domain: &str, repository: &str, path: &str) -> Result<Option<Found>> {
        if let Some(h) = self.helper(domain) {
            return Ok(Some(Found::Helper(h)));
        }
        self.lookup_auths(domain, repository, path)
    }

    /// The credentials `auths` holds for `repository` of `domain`.
    pub fn lookup_auths(
        &self,
        domain: &str,
        repository: &str,
        path: &str,
    ) -> Result<Option<Found>> {
        let Some(key) = self.auth_key(domain, repository) else { return Ok(None) };
        let Some(entry) = self.object("auths").and_then(|a| a.get(&key)) else { return Ok(None) };
        let bad = |reason: &str| Error::AuthFile {
            path: path.to_owned(),
            reason: format!("auths[\"{key}\"]: {reason}"),
        };
        let (mut user, mut password) = (String::new(), String::new());
        if let Some(auth) = entry.get("auth").and_then(Value::as_str).filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("`auth` is not base64"))?;
            let raw = String::from_utf8(raw).map_err(|_| bad("`auth` is not UTF-8"))?;
            let (u, p) = raw.split_once(':').ok_or_else(|| bad("`auth` is not USER:PASS"))?;
            (user, password) = (u.to_owned(), p.to_owned());
        }
        if let Some(t) =
            entry.get("identitytoken").and_then(Value::as_str).filter(|t| !t.is_empty())
        {
            return Ok(Some(Found::Creds(Creds::identity_token(user, t))));
        }
        if user.is_empty() {
            return Ok(None);
        }
        Ok(Some(Found::Creds(Creds::new(user, password))))
    }

    /// Set `auths[key]` to these credentials (`auth`, base64 of `USER:PASS`), keeping the
    /// rest of the file; a key that spells the same host another way is replaced.
    pub fn set(&mut self, key: &str, creds: &Creds) {
        let auths = self.doc.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Some(auths) = auths.as_object_mut() {
            let same: Vec<String> = auths
                .keys()
                .filter(|k| normalize(k) == normalize(key) && *k != key)
                .cloned()
                .collect();
            for k in same {
                auths.remove(&k);
            }
            let raw = format!("{}:{}", creds.user(), creds.password());
            let mut entry = Map::new();
            entry.insert(
                "auth".into(),
                base64::engine::general_purpose::STANDARD.encode(raw).into(),
            );
            auths.insert(key.to_owned(), Value::Object(entry));
        }
    }

    /// Remove the `auths` entries of `key` (any spelling of it; for Docker Hub, its docker
    /// key too); whether there was one.
    pub fn remove(&mut self, key: &str) -> bool {
        let Some(auths) = self.doc.get_mut("auths").and_then(Value::as_object_mut) else {
            return false;
        };
        let want = normalize(key);
        let hub = want == DOCKER_HUB;
        let gone: Vec<String> = auths
            .keys()
            .filter(|k| {
                let n = normalize(k);
                n == want || hub && (n == "index.docker.io" || n == "registry-1.docker.io")
            })
            .cloned()
            .collect();
        for k in &gone {
            auths.remove(k);
        }
        !gone.is_empty()
    }
}

/// The answer of `docker-credential-NAME get`.
#[derive(serde::Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Run `docker-credential-NAME VERB` with `input` on its stdin: its stdout, or `None` when
/// it is not installed or says it has nothing (a non-zero exit).
fn run_helper(name: &str, verb: &str, input: &[u8]) -> Result<Option<Vec<u8>>> {
    let program = format!("docker-credential-{name}");
    let failed =
        |reason: String| Error::Helper { helper: program.clone(), verb: verb.into(), reason };
    let mut child = match Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(e.to_string())),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).map_err(|e| failed(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| failed(e.to_string()))?;
    Ok(out.status.success().then_some(out.stdout))
}

/// The credentials the helper `name` keeps for `domain` (none when it has none, or is not
/// installed).
pub fn helper_get(name: &str, domain: &str) -> Result<Option<Creds>> {
    let server = helper_server(domain);
    let Some(out) = run_helper(name, "get", server.as_bytes())? else { return Ok(None) };
    let answer: HelperAnswer = serde_json::from_slice(&out).map_err(|e| Error::Helper {
        helper: format!("docker-credential-{name}"),
        verb: "get".into(),
        reason: format!("its answer is not credentials: {e}"),
    })?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if answer.username == TOKEN_USER {
        Creds::identity_token("", answer.secret)
    } else {
        Creds::new(answer.username, answer.secret)
    }))
}

/// Give the helper `name` these credentials for `domain` (`docker-credential-NAME store`).
pub fn helper_store(name: &str, domain: &str, creds: &Creds) -> Result<()> {
    let input = serde_json::json!({
        "ServerURL": helper_server(domain),
        "Username": creds.user(),
        "Secret": creds.password(),
    });
    match run_helper(name, "store", input.to_string().as_bytes())? {
        Some(_) => Ok(()),
        None => Err(Error::Helper {
            helper: format!("docker-credential-{name}"),
            verb: "store".into(),
            reason: "it failed, or is not installed".into(),
        }),
    }
}

/// Have the helper `name` forget `domain` (`docker-credential-NAME erase`): whether it did.
pub fn helper_erase(name: &str, domain: &str) -> Result<bool> {
    Ok(run_helper(name, "erase", helper_server(domain).as_bytes())?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str) -> AuthFile {
        AuthFile::parse(json.as_bytes(), "auth.json").unwrap()
    }

    fn creds(f: &AuthFile, domain: &str, repo: &str) -> Option<(String, String)> {
        match f.lookup(domain, repo, "auth.json").unwrap()? {
            Found::Creds(c) => Some((c.user().to_owned(), c.password().to_owned())),
            Found::Helper(h) => Some(("helper".into(), h)),
        }
    }

    #[test]
    fn lookups() {
        // bob:pw, alice:pw2, carol:pw3
        let f = file(
            r#"{"auths": {
                "reg.example:5000": {"auth": "Ym9iOnB3"},
                "reg.example:5000/team": {"auth": "YWxpY2U6cHcy"},
                "https://index.docker.io/v1/": {"auth": "Y2Fyb2w6cHcz"},
                "http://other.example/v2/": {"auth": "Ym9iOnB3"}
            }, "unknown": 1}"#,
        );
        let pair = |u: &str, p: &str| Some((u.to_owned(), p.to_owned()));
        assert_eq!(creds(&f, "reg.example:5000", "team/app"), pair("alice", "pw2"));
        assert_eq!(creds(&f, "reg.example:5000", "teams/app"), pair("bob", "pw"));
        assert_eq!(creds(&f, "docker.io", "library/busybox"), pair("carol", "pw3"));
        assert_eq!(creds(&f, "other.example", "x"), pair("bob", "pw"));
        assert_eq!(creds(&f, "nowhere.example", "x"), None);
        let f = file(r#"{"credHelpers": {"reg.example": "pass"}, "credsStore": "desktop"}"#);
        assert_eq!(creds(&f, "reg.example", "x"), pair("helper", "pass"));
        assert_eq!(creds(&f, "docker.io", "x"), pair("helper", "desktop"));
        let f = file(r#"{"auths": {"quay.example": {"auth": "", "identitytoken": "refresh"}}}"#);
        match f.lookup("quay.example", "x", "a").unwrap() {
            Some(Found::Creds(c)) => assert_eq!(c.token(), Some("refresh")),
            other => panic!("{other:?}"),
        }
        assert!(AuthFile::parse(b"[]", "a").is_err());
        assert!(file(r#"{"auths": {"h": {"auth": "!!"}}}"#).lookup("h", "x", "a").is_err());
        assert!(AuthFile::parse(b"", "a").unwrap().lookup("h", "x", "a").unwrap().is_none());
    }

    #[test]
    fn edits_keep_the_rest() {
        let mut f =
            file(r#"{"auths": {"https://reg.example/v1/": {"auth": "eDp5"}}, "psFormat": "x"}"#);
        f.set("reg.example", &Creds::new("bob", "pw"));
        let v: Value = serde_json::from_slice(&f.to_bytes()).unwrap();
        assert_eq!(v["auths"]["reg.example"]["auth"], "Ym9iOnB3");
        assert!(v["auths"].get("https://reg.example/v1/").is_none(), "one spelling");
        assert_eq!(v["psFormat"], "x");
        assert!(f.remove("reg.example"));
        assert!(!f.remove("reg.example"));
        let mut hub = file(r#"{"auths": {"https://index.docker.io/v1/": {"auth": "eDp5"}}}"#);
        assert!(hub.remove("docker.io"));
    }
}
