//! The HTTP client of one registry host: ureq (blocking, rustls on `ring`, the system's root
//! certificates), the `GET /v2/` ping that picks https or plain http and learns the auth
//! challenge, auth on every request, retries with backoff, and redirects.
//!
//! - **Scheme**: https; plain http only with [`Options::plain_http`], or when https fails
//!   and the host is loopback (as docker does) or [`Options::tls_verify`] is off (as skopeo's
//!   `--tls-verify=false` does).
//! - **Retries**: an idempotent request (GET, HEAD) is tried again after a connection error,
//!   a 429 (waiting as `Retry-After` says, capped) or a 5xx, [`Options::retries`] times, the
//!   wait doubling from [`Options::backoff`].
//! - **Auth**: see [`crate::auth`]. A 401 fetches a new token once and tries again.
//! - **Redirects** (blob storage, a CDN) are followed here, not by ureq: the `Authorization`
//!   header goes only to the registry's own scheme, host and port, never to another host
//!   (containerd's CVE-2020-15157 was the opposite). Messages show URLs without their query,
//!   which may hold a signature.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::Agent;
use ureq::http::Response;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::auth::{Challenge, Scopes, Token, TokenAnswer};
use crate::host::{Options, api_host, is_loopback};
use crate::{Error, Result};

/// An answer, its body unread.
pub(crate) type Answer = Response<ureq::Body>;

/// How many redirects a request follows.
const MAX_REDIRECTS: u32 = 5;

/// The most of an error answer's body read for its error codes.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// The HTTP method of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
}

impl Method {
    fn as_http(self) -> ureq::http::Method {
        match self {
            Method::Get => ureq::http::Method::GET,
            Method::Head => ureq::http::Method::HEAD,
            Method::Post => ureq::http::Method::POST,
            Method::Put => ureq::http::Method::PUT,
            Method::Patch => ureq::http::Method::PATCH,
        }
    }
}

/// A request's body.
pub(crate) enum Body<'a> {
    /// None (`Content-Length: 0` for the methods that carry one).
    Empty,
    /// Bytes in memory (a manifest): sent again on a retry.
    Bytes(&'a [u8]),
    /// A stream of this many bytes (a blob), sent once: a request with it is never retried
    /// here, nor sent again after a 401 or a redirect (the caller starts over).
    Stream(&'a mut dyn std::io::Read, u64),
}

impl Body<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(..))
    }
}

/// A client of one registry host. Cheap to share between threads (`Sync`); tokens are
/// shared by every request.
pub struct Client {
    agent: Agent,
    /// `https://HOST[:PORT]` or `http://...`.
    base: String,
    /// `HOST[:PORT]` as references name it (`docker.io`), for messages.
    domain: String,
    opts: Options,
    challenge: Mutex<Challenge>,
    tokens: Mutex<HashMap<Scopes, Token>>,
    /// Held while a token is fetched: threads that need the same token wait for it instead
    /// of each asking the token server.
    fetching: Mutex<()>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish_non_exhaustive()
    }
}

/// The system's root certificates, loaded once.
fn system_roots() -> Result<RootCerts> {
    static ROOTS: Mutex<Option<Arc<Vec<Certificate<'static>>>>> = Mutex::new(None);
    let mut guard = ROOTS.lock().map_err(|_| Error::Roots("a thread panicked".into()))?;
    if let Some(r) = guard.as_ref() {
        return Ok(RootCerts::Specific(r.clone()));
    }
    let found = rustls_native_certs::load_native_certs();
    if found.certs.is_empty() {
        let why: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(Error::Roots(if why.is_empty() {
            "none found".into()
        } else {
            why.join("; ")
        }));
    }
    let certs: Vec<Certificate<'static>> =
        found.certs.iter().map(|c| Certificate::from_der(c.as_ref()).to_owned()).collect();
    let certs = Arc::new(certs);
    *guard = Some(certs.clone());
    Ok(RootCerts::Specific(certs))
}

fn agent(opts: &Options, https: bool) -> Result<Agent> {
    let mut config = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_connect(Some(opts.timeout))
        .timeout_recv_response(Some(opts.timeout))
        .timeout_per_read(Some(opts.timeout))
        .user_agent(concat!("ocil/", env!("CARGO_PKG_VERSION")));
    if https {
        let tls = TlsConfig::builder().provider(TlsProvider::Rustls);
        let tls = if opts.tls_verify {
            tls.root_certs(system_roots()?)
        } else {
            tls.disable_verification(true)
        };
        config = config.tls_config(tls.build());
    }
    Ok(config.build().new_agent())
}

impl Client {
    /// Connect to the registry of `domain` (a reference's domain: `docker.io`,
    /// `127.0.0.1:5000`): ping `/v2/`, choosing https or plain http, and learn its
    /// challenge.
    pub fn connect(domain: &str, opts: Options) -> Result<Client> {
        let host = api_host(domain).to_owned();
        let fallback_ok = is_loopback(&host) || !opts.tls_verify;
        if opts.plain_http {
            return Client::try_scheme(domain, &host, "http", opts);
        }
        // Where plain http may follow, https is tried once (no retries): a plain http
        // registry answers a TLS handshake with an error at once.
        let mut probe = opts.clone();
        if fallback_ok {
            probe.retries = 0;
        }
        match Client::try_scheme(domain, &host, "https", probe) {
            Ok(mut c) => {
                c.opts = opts;
                Ok(c)
            }
            Err(e @ Error::Connect { .. }) => {
                if !fallback_ok {
                    return Err(e);
                }
                Client::try_scheme(domain, &host, "http", opts).map_err(|_| e)
            }
            Err(e) => Err(e),
        }
    }

    fn try_scheme(domain: &str, host: &str, scheme: &str, opts: Options) -> Result<Client> {
        let client = Client {
            agent: agent(&opts, scheme == "https")?,
            base: format!("{scheme}://{host}"),
            domain: domain.to_owned(),
            opts,
            challenge: Mutex::new(Challenge::None),
            tokens: Mutex::new(HashMap::new()),
            fetching: Mutex::new(()),
        };
        client.ping()?;
        Ok(client)
    }

    /// `GET /v2/`: 200 is anonymous access, 401 names the challenge.
    fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let answer = self.call(Method::Get, &url, &[], None, &mut Body::Empty)?;
        match answer.status().as_u16() {
            200..=299 => Ok(()),
            401 => {
                let challenge = self.challenge_of(&answer)?;
                self.set_challenge(challenge);
                Ok(())
            }
            // Some registries 404 the ping but serve the API: go on anonymously.
            404 => Ok(()),
            _ => Err(self.failure(answer, &url)),
        }
    }

    /// The registry as references name it (`docker.io`, `127.0.0.1:5000`).
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// `https://HOST` or `http://HOST`: where requests go.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The options the client was made with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    fn set_challenge(&self, c: Challenge) {
        if let Ok(mut g) = self.challenge.lock() {
            *g = c;
        }
    }

    fn current_challenge(&self) -> Challenge {
        self.challenge.lock().map(|g| g.clone()).unwrap_or(Challenge::None)
    }

    fn challenge_of(&self, answer: &Answer) -> Result<Challenge> {
        let Some(h) = header(answer, "www-authenticate") else {
            return Err(Error::Challenge {
                host: self.domain.clone(),
                reason: "a 401 without WWW-Authenticate".into(),
            });
        };
        Challenge::parse(&h)
            .map_err(|reason| Error::Challenge { host: self.domain.clone(), reason })
    }

    /// The `Authorization` value for a request needing `scopes`, if any.
    fn authorization(&self, scopes: &Scopes, fresh: bool) -> Result<Option<String>> {
        match self.current_challenge() {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(self.opts.creds.as_ref().map(|c| c.basic())),
            Challenge::Bearer { realm, service, .. } => {
                let cached = || {
                    let now = Instant::now();
                    let tokens = self.tokens.lock().ok()?;
                    tokens.get(scopes).filter(|t| t.until > now).map(|t| t.value.clone())
                };
                if !fresh && let Some(t) = cached() {
                    return Ok(Some(format!("Bearer {t}")));
                }
                // One fetch at a time; a thread that waited finds the token it needs.
                let _one = self.fetching.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if !fresh && let Some(t) = cached() {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), scopes)?;
                let value = format!("Bearer {}", token.value);
                if let Ok(mut tokens) = self.tokens.lock() {
                    tokens.insert(scopes.clone(), token);
                }
                Ok(Some(value))
            }
        }
    }

    /// Ask the realm for a token (with the credentials as Basic auth, only over https or
    /// to a loopback host).
    fn fetch_token(&self, realm: &str, service: Option<&str>, scopes: &Scopes) -> Result<Token> {
        let shown = strip_query(realm);
        let token_err = |reason: String| Error::Token {
            host: self.domain.clone(),
            realm: shown.clone(),
            reason,
        };
        let mut basic = None;
        let mut refresh = None;
        if let Some(c) = &self.opts.creds {
            let realm_host = realm.split("://").nth(1).and_then(|r| r.split('/').next());
            if !(realm.starts_with("https://") || realm_host.is_some_and(is_loopback)) {
                return Err(token_err(
                    "refusing to send credentials to a token server over plain http".into(),
                ));
            }
            match c.token() {
                Some(t) => refresh = Some(t.to_owned()),
                None => basic = Some(c.basic()),
            }
        }
        // An identity token is exchanged with OAuth2's refresh-token grant (a form POST).
        let form = refresh.map(|token| {
            let mut form = vec![
                ("grant_type", "refresh_token".to_owned()),
                ("client_id", "ocil".to_owned()),
                ("refresh_token", token),
            ];
            if let Some(s) = service {
                form.push(("service", s.to_owned()));
            }
            if !scopes.is_empty() {
                form.push(("scope", scopes.iter().cloned().collect::<Vec<_>>().join(" ")));
            }
            form.iter()
                .map(|(k, v)| format!("{k}={}", crate::upload::encode(v)))
                .collect::<Vec<_>>()
                .join("&")
        });
        let request = || {
            let mut req = self.agent.get(realm);
            if let Some(s) = service {
                req = req.query("service", s);
            }
            for s in scopes {
                req = req.query("scope", s);
            }
            if let Some(b) = &basic {
                req = req.header("Authorization", b);
            }
            req
        };
        let call = || match &form {
            Some(body) => self
                .agent
                .post(realm)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .send(body.as_bytes()),
            None => request().call(),
        };
        let mut attempt = 0;
        let mut answer = loop {
            match call() {
                Ok(a) if retryable_status(a.status().as_u16()) && attempt < self.opts.retries => {
                    self.wait(attempt, retry_after(&a));
                    attempt += 1;
                }
                Ok(a) => break a,
                Err(e) if attempt < self.opts.retries && retryable(&e) => {
                    self.wait(attempt, None);
                    attempt += 1;
                }
                Err(source) => return Err(Error::Connect { url: shown.clone(), source }),
            }
        };
        let status = answer.status().as_u16();
        match (status, &self.opts.creds) {
            (200..=299, _) => {}
            (401 | 403, Some(c)) => {
                return Err(Error::BadCredentials {
                    host: self.domain.clone(),
                    user: c.user().to_owned(),
                    status,
                });
            }
            (401 | 403, None) => return Err(Error::NeedsCredentials { host: self.domain.clone() }),
            _ => return Err(token_err(format!("it answered {status}"))),
        }
        let bytes = answer
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_vec()
            .map_err(|e| token_err(format!("cannot read its answer: {e}")))?;
        let parsed: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| token_err(format!("its answer is not a token: {e}")))?;
        parsed.into_token(Instant::now()).ok_or_else(|| token_err("its answer has no token".into()))
    }

    /// Wait before retry `attempt` (0-based): `Retry-After` when the server gave one, else
    /// the doubling backoff; capped either way.
    pub(crate) fn wait(&self, attempt: u32, after: Option<Duration>) {
        let backoff = self.opts.backoff.saturating_mul(1 << attempt.min(16));
        std::thread::sleep(after.unwrap_or(backoff).min(self.opts.max_wait));
    }

    /// One request, without auth or redirects; retried (see the module docs) when it is
    /// idempotent (`GET`, `HEAD`, a `PUT` of bytes in memory). `POST`, `PATCH` and the
    /// `PUT` that ends an upload are retried by the upload, from a fresh session.
    fn call(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        auth: Option<&str>,
        body: &mut Body<'_>,
    ) -> Result<Answer> {
        let idempotent = match method {
            Method::Get | Method::Head => true,
            Method::Put => matches!(body, Body::Bytes(_)),
            Method::Post | Method::Patch => false,
        };
        let mut attempt = 0;
        loop {
            let mut request = ureq::http::Request::builder().method(method.as_http()).uri(url);
            for (k, v) in headers {
                request = request.header(*k, v);
            }
            if let Some(a) = auth {
                request = request.header("Authorization", a);
            }
            let result = match body {
                Body::Empty if matches!(method, Method::Get | Method::Head) => {
                    self.agent.run(built(request, (), url)?)
                }
                Body::Empty => {
                    self.agent.run(built(request.header("Content-Length", "0"), (), url)?)
                }
                Body::Bytes(bytes) => self.agent.run(built(request, *bytes, url)?),
                Body::Stream(reader, len) => {
                    let request = request.header("Content-Length", len.to_string());
                    self.agent.run(built(request, ureq::SendBody::from_reader(&mut **reader), url)?)
                }
            };
            match result {
                Ok(a)
                    if idempotent
                        && retryable_status(a.status().as_u16())
                        && attempt < self.opts.retries =>
                {
                    self.wait(attempt, retry_after(&a));
                    attempt += 1;
                }
                Ok(a) => return Ok(a),
                Err(e) if idempotent && attempt < self.opts.retries && retryable(&e) => {
                    self.wait(attempt, None);
                    attempt += 1;
                }
                Err(source) => return Err(Error::Connect { url: strip_query(url), source }),
            }
        }
    }

    /// A request to the registry (a path under the base, or a full URL a redirect gave),
    /// with auth for `scopes`, retries and redirects. Any status comes back: the caller
    /// says what it means (see [`Client::failure`]).
    pub(crate) fn send(
        &self,
        method: Method,
        path_or_url: &str,
        headers: &[(&str, String)],
        scopes: &Scopes,
    ) -> Result<Answer> {
        self.send_body(method, path_or_url, headers, scopes, Body::Empty)
    }

    /// [`Client::send`] with a body. A stream is sent once: a 401 or a redirect comes back
    /// as it is (the caller starts over; see [`Client::forget_token`]).
    pub(crate) fn send_body(
        &self,
        method: Method,
        path_or_url: &str,
        headers: &[(&str, String)],
        scopes: &Scopes,
        mut body: Body<'_>,
    ) -> Result<Answer> {
        let mut url = if path_or_url.starts_with('/') {
            format!("{}{path_or_url}", self.base)
        } else {
            path_or_url.to_owned()
        };
        let mut redirects = 0;
        let mut renewed = false;
        loop {
            let own = origin(&url) == Some(self.base.as_str());
            let auth = if own { self.authorization(scopes, false)? } else { None };
            let answer = self.call(method, &url, headers, auth.as_deref(), &mut body)?;
            let status = answer.status().as_u16();
            if !body.replayable() {
                return Ok(answer);
            }
            if status == 401 && own && !renewed {
                renewed = true;
                // A registry whose ping was open may still guard its repositories.
                if header(&answer, "www-authenticate").is_some() {
                    let c = self.challenge_of(&answer)?;
                    let changed = c != self.current_challenge();
                    self.set_challenge(c.clone());
                    if changed && c != Challenge::Basic {
                        continue;
                    }
                }
                if matches!(self.current_challenge(), Challenge::Bearer { .. }) {
                    // The token may have expired: a new one, once.
                    if let Ok(mut t) = self.tokens.lock() {
                        t.remove(scopes);
                    }
                    self.authorization(scopes, true)?;
                    continue;
                }
                if self.current_challenge() == Challenge::Basic && auth.is_none() {
                    if self.opts.creds.is_some() {
                        continue;
                    }
                    return Err(Error::NeedsCredentials { host: self.domain.clone() });
                }
            }
            // ECR's expired token is a 403 that says so (a HEAD's has no body to say it):
            // a new token, once.
            if status == 403
                && own
                && !renewed
                && auth.as_deref().is_some_and(|a| a.starts_with("Bearer "))
            {
                let mut answer = answer;
                let bytes = answer
                    .body_mut()
                    .with_config()
                    .limit(ERROR_BODY_LIMIT)
                    .read_to_vec()
                    .unwrap_or_default();
                if method == Method::Head
                    || String::from_utf8_lossy(&bytes).to_ascii_lowercase().contains("expired")
                {
                    renewed = true;
                    self.forget_token(scopes);
                    self.authorization(scopes, true)?;
                    continue;
                }
                return Err(Error::Denied {
                    host: self.domain.clone(),
                    what: strip_query(&url),
                    status,
                    detail: detail_of(&bytes),
                });
            }
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let Some(location) = header(&answer, "location") else {
                    return Err(Error::Redirect {
                        url: strip_query(&url),
                        reason: format!("a {status} without a Location"),
                    });
                };
                redirects += 1;
                if redirects > MAX_REDIRECTS {
                    return Err(Error::Redirect {
                        url: strip_query(&url),
                        reason: format!("more than {MAX_REDIRECTS} redirects"),
                    });
                }
                url = resolve(&url, &location).ok_or_else(|| Error::Redirect {
                    url: strip_query(&url),
                    reason: format!("cannot follow Location `{}`", strip_query(&location)),
                })?;
                continue;
            }
            return Ok(answer);
        }
    }

    /// Whether the registry takes the client's credentials: `GET /v2/` with them (after a
    /// token with no scope, in the Bearer flow). A registry that asks for none takes any.
    pub fn check_credentials(&self) -> Result<()> {
        let answer = self.send(Method::Get, "/v2/", &[], &Scopes::new())?;
        match answer.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(self.failure(answer, "/v2/")),
        }
    }

    /// Drop the token kept for `scopes` (a 401 to a request that could not be sent again):
    /// the next request fetches a new one.
    pub(crate) fn forget_token(&self, scopes: &Scopes) {
        if let Ok(mut t) = self.tokens.lock() {
            t.remove(scopes);
        }
    }

    /// The error an unexpected answer means (its body read for the registry's error codes).
    pub(crate) fn failure(&self, mut answer: Answer, url: &str) -> Error {
        let status = answer.status().as_u16();
        let limits = (status == 429).then(|| rate_limits(&answer));
        let detail = error_detail(&mut answer);
        let url = strip_query(url);
        if let Some(figures) = limits {
            let hint = match &self.opts.creds {
                None => format!(
                    "; a logged-in user may get a higher limit (`ocil login {}`)",
                    self.domain
                ),
                Some(_) => String::new(),
            };
            return Error::RateLimited { url, detail, figures, hint };
        }
        match status {
            401 => match (&self.opts.creds, self.current_challenge()) {
                (None, _) => Error::NeedsCredentials { host: self.domain.clone() },
                (Some(c), Challenge::Basic) => Error::BadCredentials {
                    host: self.domain.clone(),
                    user: c.user().to_owned(),
                    status,
                },
                _ => Error::Denied { host: self.domain.clone(), what: url, status, detail },
            },
            403 => Error::Denied { host: self.domain.clone(), what: url, status, detail },
            _ => Error::Status { url, status, detail },
        }
    }

    /// The registry's error codes of an answer, as `: CODE: message; ...`.
    pub(crate) fn detail(answer: &mut Answer) -> String {
        error_detail(answer)
    }
}

/// A request with its body (a URL that does not parse is an error naming it).
fn built<B>(
    request: ureq::http::request::Builder,
    body: B,
    url: &str,
) -> Result<ureq::http::Request<B>> {
    request
        .body(body)
        .map_err(|e| Error::Connect { url: strip_query(url), source: ureq::Error::Http(e) })
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<&str> {
    let after = url.find("://")? + 3;
    let end = url[after..].find(['/', '?', '#']).map_or(url.len(), |i| after + i);
    Some(&url[..end])
}

/// A `Location` made absolute against the URL that answered it.
pub(crate) fn resolve(current: &str, location: &str) -> Option<String> {
    if location.starts_with("https://") || location.starts_with("http://") {
        return Some(location.to_owned());
    }
    let origin = origin(current)?;
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = &current[..current.find("://")?];
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{origin}{location}"));
    }
    // Relative to the current path's directory.
    let path = current[origin.len()..].split(['?', '#']).next().unwrap_or("/");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Some(format!("{origin}{dir}{location}"))
}

/// A URL without its query and fragment: what messages show.
pub(crate) fn strip_query(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// A header's value, when it is text.
pub(crate) fn header(answer: &Answer, name: &str) -> Option<String> {
    answer.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// Whether a status is worth another try: 429, and 5xx but 501.
pub(crate) fn retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status) && status != 501
}

/// A connection error worth another try (not a bad URL, a TLS refusal, or a port nothing
/// listens on).
fn retryable(e: &ureq::Error) -> bool {
    if let ureq::Error::Io(io) = e
        && io.kind() == std::io::ErrorKind::ConnectionRefused
    {
        return false;
    }
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_)
    )
}

/// `Retry-After` in seconds (an HTTP date is taken as "soon").
fn retry_after(answer: &Answer) -> Option<Duration> {
    let v = header(answer, "retry-after")?;
    Some(Duration::from_secs(v.trim().parse::<u64>().unwrap_or(1)))
}

/// The `RateLimit-*` figures of a 429 (Docker Hub's `ratelimit-limit: 100;w=21600`), and
/// its `Retry-After`, as `; limit 100;w=21600, remaining 0;w=21600, retry after 60 s`.
fn rate_limits(answer: &Answer) -> String {
    let mut parts = Vec::new();
    for (name, shown) in [
        ("ratelimit-limit", "limit"),
        ("ratelimit-remaining", "remaining"),
        ("ratelimit-reset", "reset in"),
        ("x-ratelimit-limit", "limit"),
        ("x-ratelimit-remaining", "remaining"),
    ] {
        if let Some(v) = header(answer, name) {
            parts.push(format!("{shown} {}", v.trim()));
        }
    }
    if let Some(v) = header(answer, "retry-after") {
        parts.push(format!("retry after {} s", v.trim()));
    }
    if parts.is_empty() { String::new() } else { format!("; {}", parts.join(", ")) }
}

/// `: CODE: message; ...` from a distribution-spec error body, or empty.
fn error_detail(answer: &mut Answer) -> String {
    let Ok(bytes) = answer.body_mut().with_config().limit(ERROR_BODY_LIMIT).read_to_vec() else {
        return String::new();
    };
    detail_of(&bytes)
}

/// [`error_detail`] of a body already read.
fn detail_of(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<One>,
    }
    #[derive(serde::Deserialize)]
    struct One {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(bytes) {
        Ok(e) if !e.errors.is_empty() => {
            let parts: Vec<String> = e
                .errors
                .iter()
                .map(|o| match (o.code.is_empty(), o.message.is_empty()) {
                    (false, false) => format!("{}: {}", o.code, o.message),
                    (false, true) => o.code.clone(),
                    _ => o.message.clone(),
                })
                .collect();
            format!(" ({})", parts.join("; "))
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        let cur = "http://127.0.0.1:5000/v2/a/blobs/sha256:x?y=1";
        assert_eq!(origin(cur), Some("http://127.0.0.1:5000"));
        assert_eq!(resolve(cur, "/b?q").as_deref(), Some("http://127.0.0.1:5000/b?q"));
        assert_eq!(resolve(cur, "https://s3/x?sig").as_deref(), Some("https://s3/x?sig"));
        assert_eq!(resolve(cur, "//cdn/x").as_deref(), Some("http://cdn/x"));
        assert_eq!(
            resolve(cur, "z?k=v").as_deref(),
            Some("http://127.0.0.1:5000/v2/a/blobs/z?k=v")
        );
        assert_eq!(strip_query("https://s3/x?X-Amz-Signature=abc"), "https://s3/x");
    }
}
