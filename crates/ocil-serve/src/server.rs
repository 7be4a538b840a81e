//! The server: configuration, the listening socket, connections (plain or TLS, HTTP/1.1 and
//! HTTP/2), authentication, routing, the access log, and shutdown.
//!
//! Every connection is bounded: at most [`Config::max_connections`] at once, the request
//! head within [`Config::header_timeout`], and no more than [`Config::idle_timeout`] without a byte
//! moving either way (a client that stops sending a body, or stops reading a blob, is cut).
//! Shutdown stops accepting, lets in-flight requests finish for at most
//! [`Config::shutdown_grace`], then closes what is left.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use cap_std::fs::Dir;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HeaderMap, USER_AGENT, WWW_AUTHENTICATE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::api::{ApiError, Code};
use crate::auth::{Check, Htpasswd};
use crate::body::Body;
use crate::http::{self, Resp};
use crate::registry::Registry;
use crate::route::Route;
use crate::tls::Tls;
use crate::uploads::Sessions;
use crate::{Error, Result, blobs, listing, manifests, names, uploads};

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest request head accepted (HTTP/1: 431 above it).
const MAX_HEADER_BYTES: usize = 64 * 1024;

/// One request, as the access log sees it.
#[derive(Debug, Clone)]
pub struct AccessEntry<'a> {
    /// The client's address.
    pub peer: SocketAddr,
    /// The authenticated user, if any.
    pub user: Option<&'a str>,
    /// The method.
    pub method: &'a str,
    /// The path and query.
    pub target: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`.
    pub version: &'a str,
    /// The response status.
    pub status: u16,
    /// The response body's length, when known.
    pub bytes: Option<u64>,
    /// From the request's arrival to the response head.
    pub elapsed: Duration,
    /// The client's `User-Agent`.
    pub user_agent: Option<&'a str>,
}

/// Where the server reports each request (the caller prints; this library does not).
pub trait AccessLog: Send + Sync {
    /// One request was answered.
    fn log(&self, entry: &AccessEntry<'_>);
}

/// What to serve, and how.
pub struct Config {
    /// ROOT: a layout, or a directory of layouts.
    pub root: Dir,
    /// ROOT as the user named it (for messages).
    pub root_label: String,
    /// ROOT's own directory name: the repository name of a single layout without `name`.
    pub dir_name: String,
    /// The repository name of a single layout (`--name`).
    pub name: Option<String>,
    /// Accept uploads and manifests (`--push`).
    pub push: bool,
    /// Accept deletes (`--delete`).
    pub delete: bool,
    /// Basic authentication (`--htpasswd`).
    pub htpasswd: Option<Htpasswd>,
    /// TLS (`--tls-cert`, `--tls-key`).
    pub tls: Option<Tls>,
    /// An upload session untouched for this long is dropped with its bytes.
    pub upload_expiry: Duration,
    /// How long in-flight requests may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// How long a connection may go without a byte moving.
    pub idle_timeout: Duration,
    /// How long a client has to send a request's head.
    pub header_timeout: Duration,
    /// Connections served at once (more wait to be accepted).
    pub max_connections: usize,
    /// Where each request is reported.
    pub log: Option<Arc<dyn AccessLog>>,
}

impl Config {
    /// Serve `root` read-only, with the defaults.
    pub fn new(root: Dir, root_label: &str, dir_name: &str) -> Config {
        Config {
            root,
            root_label: root_label.to_owned(),
            dir_name: dir_name.to_owned(),
            name: None,
            push: false,
            delete: false,
            htpasswd: None,
            tls: None,
            upload_expiry: Duration::from_secs(30 * 60),
            shutdown_grace: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            header_timeout: Duration::from_secs(30),
            max_connections: 512,
            log: None,
        }
    }
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("root_label", &self.root_label)
            .field("name", &self.name)
            .field("push", &self.push)
            .field("delete", &self.delete)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// What every request shares.
pub(crate) struct State {
    pub(crate) registry: Registry,
    pub(crate) push: bool,
    pub(crate) delete: bool,
    pub(crate) htpasswd: Option<Htpasswd>,
    pub(crate) uploads: Sessions,
    log: Option<Arc<dyn AccessLog>>,
}

/// Stops a running server from another thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle(Arc<watch::Sender<bool>>);

impl ShutdownHandle {
    /// Ask the server to stop (as SIGTERM does).
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

/// A bound server, not yet serving.
pub struct Server {
    rt: tokio::runtime::Runtime,
    listener: TcpListener,
    addr: SocketAddr,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: Arc<watch::Sender<bool>>,
    config: Limits,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    upload_expiry: Duration,
    shutdown_grace: Duration,
    idle_timeout: Duration,
    header_timeout: Duration,
    max_connections: usize,
}

impl Server {
    /// Open ROOT and listen on `addr` (port 0 picks a free port: see
    /// [`Server::local_addr`]).
    pub fn bind(addr: SocketAddr, config: Config) -> Result<Server> {
        let registry = Registry::open(
            config.root,
            &config.root_label,
            &config.dir_name,
            config.name.as_deref(),
        )?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("ocil-serve")
            .build()
            .map_err(Error::Runtime)?;
        let listener = rt
            .block_on(TcpListener::bind(addr))
            .map_err(|source| Error::Bind { addr: addr.to_string(), source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr: addr.to_string(), source })?;
        let state = Arc::new(State {
            registry,
            push: config.push,
            delete: config.delete,
            htpasswd: config.htpasswd,
            uploads: Sessions::default(),
            log: config.log,
        });
        let (stop, _) = watch::channel(false);
        Ok(Server {
            rt,
            listener,
            addr,
            state,
            tls: config.tls.map(|t| tokio_rustls::TlsAcceptor::from(t.config)),
            stop: Arc::new(stop),
            config: Limits {
                upload_expiry: config.upload_expiry,
                shutdown_grace: config.shutdown_grace,
                idle_timeout: config.idle_timeout,
                header_timeout: config.header_timeout,
                max_connections: config.max_connections.max(1),
            },
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// What it serves: each repository with a few words on what it is.
    pub fn repositories(&self) -> Vec<(String, String)> {
        self.state.registry.summary()
    }

    /// A handle that stops [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.stop.clone())
    }

    /// Serve until SIGINT or SIGTERM (when `signals`) or the shutdown handle, then stop
    /// gracefully.
    pub fn run(self, signals: bool) -> Result<()> {
        let Server { rt, listener, state, tls, stop, config, .. } = self;
        let result = rt.block_on(serve(listener, state, tls, stop, config, signals));
        rt.shutdown_timeout(Duration::from_secs(2));
        result
    }
}

async fn wait_stop(stop: Arc<watch::Sender<bool>>, signals: bool) -> Result<()> {
    let mut rx = stop.subscribe();
    let handle = async move {
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    if !signals {
        handle.await;
        return Ok(());
    }
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Runtime)?;
    let mut term = signal(SignalKind::terminate()).map_err(Error::Runtime)?;
    tokio::select! {
        _ = handle => {}
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stop: Arc<watch::Sender<bool>>,
    limits: Limits,
    signals: bool,
) -> Result<()> {
    // Expire abandoned uploads.
    let sweeper = {
        let state = state.clone();
        let every =
            (limits.upload_expiry / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let gone = state.uploads.expire(limits.upload_expiry);
                if !gone.is_empty() {
                    let _ = tokio::task::spawn_blocking(move || drop(gone)).await;
                }
            }
        })
    };
    let stopping = wait_stop(stop, signals);
    tokio::pin!(stopping);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    builder.http2().timer(TokioTimer::new()).max_header_list_size(MAX_HEADER_BYTES as u32);
    let builder = Arc::new(builder);
    let stop_result = loop {
        let permit = tokio::select! {
            r = &mut stopping => break r,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break Ok(()),
            },
        };
        let (stream, peer) = tokio::select! {
            r = &mut stopping => break r,
            a = listener.accept() => match a {
                Ok(a) => a,
                // Out of descriptors and the like: wait a little, then go on.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(state, peer, req).await) }
            });
            match tls {
                None => {
                    let io = TokioIo::new(IdleIo::new(
                        stream,
                        limits.idle_timeout,
                        limits.header_timeout,
                    ));
                    let _ = watcher.watch(builder.serve_connection(io, svc).into_owned()).await;
                }
                Some(acceptor) => {
                    let Ok(Ok(tls_stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    else {
                        return;
                    };
                    let io = TokioIo::new(IdleIo::new(
                        tls_stream,
                        limits.idle_timeout,
                        limits.header_timeout,
                    ));
                    let _ = watcher.watch(builder.serve_connection(io, svc).into_owned()).await;
                }
            }
        });
    };
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {}
    }
    sweeper.abort();
    stop_result
}

/// Run blocking work (the filesystem) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::new(Code::Unknown, format!("the request's work failed: {e}")))
    })
}

/// Read a whole request body of at most `limit` bytes (413 above it).
pub(crate) async fn read_limited(
    mut body: Incoming,
    headers: &HeaderMap,
    limit: u64,
) -> Result<bytes::Bytes, ApiError> {
    let too_big = || {
        ApiError::new(Code::SizeInvalid, format!("the body is over the {limit}-byte limit"))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
    };
    if headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > limit)
    {
        return Err(too_big());
    }
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(Code::ManifestInvalid, format!("the request body broke off: {e}"))
        })?;
        if let Ok(data) = frame.into_data() {
            if out.len() as u64 + data.len() as u64 > limit {
                return Err(too_big());
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

async fn handle(state: Arc<State>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let start = Instant::now();
    let method = req.method().clone();
    let target =
        req.uri().path_and_query().map_or_else(|| req.uri().path().to_owned(), |p| p.to_string());
    let version = format!("{:?}", req.version());
    let agent = req.headers().get(USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let head = method == Method::HEAD;
    let mut user = None;
    let resp = match &state.htpasswd {
        None => route(&state, req).await,
        Some(h) => {
            let auth =
                req.headers().get(hyper::header::AUTHORIZATION).map(|v| v.as_bytes().to_vec());
            let st = state.clone();
            let check = tokio::task::spawn_blocking(move || {
                st.htpasswd.as_ref().map_or(Check::Missing, |h| h.check(auth.as_deref()))
            })
            .await
            .unwrap_or(Check::Wrong);
            let _ = h;
            match check {
                Check::User(u) => {
                    user = Some(u);
                    route(&state, req).await
                }
                Check::Missing | Check::Wrong => Err(ApiError::new(
                    Code::Unauthorized,
                    if check == Check::Missing {
                        "authentication required"
                    } else {
                        "wrong user name or password"
                    },
                )),
            }
        }
    };
    let mut resp = resp.unwrap_or_else(|e| http::error(&e, head));
    if resp.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(WWW_AUTHENTICATE, http::header_value("Basic realm=\"ocil\""));
    }
    if let Some(log) = &state.log {
        let bytes = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .map(|n: u64| if head { 0 } else { n });
        log.log(&AccessEntry {
            peer,
            user: user.as_deref(),
            method: method.as_str(),
            target: &target,
            version: &version,
            status: resp.status().as_u16(),
            bytes,
            elapsed: start.elapsed(),
            user_agent: agent.as_deref(),
        });
    }
    resp
}

async fn route(state: &Arc<State>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let (parts, body) = req.into_parts();
    let m = &parts.method;
    let head = m == Method::HEAD;
    let query = names::query_pairs(parts.uri.query());
    let headers = &parts.headers;
    let st = state.clone();
    let not_allowed = || ApiError::new(Code::Unsupported, format!("{m} is not allowed here"));
    match crate::route::parse(parts.uri.path())? {
        Route::Base => match *m {
            Method::GET | Method::HEAD => {
                Ok(http::with_bytes(http::builder(StatusCode::OK), "application/json", "{}", head))
            }
            _ => Err(not_allowed()),
        },
        Route::Catalog => match *m {
            Method::GET | Method::HEAD => listing::catalog(st, query, head).await,
            _ => Err(not_allowed()),
        },
        Route::Manifest { name, reference } => match *m {
            Method::GET | Method::HEAD => manifests::get(st, name, reference, headers, head).await,
            Method::PUT => manifests::put(st, name, reference, headers, body).await,
            Method::DELETE => manifests::delete(st, name, reference).await,
            _ => Err(not_allowed()),
        },
        Route::Blob { name, digest } => match *m {
            Method::GET | Method::HEAD => blobs::get(st, name, digest, headers, head).await,
            Method::DELETE => blobs::delete(st, name, digest).await,
            _ => Err(not_allowed()),
        },
        Route::UploadStart { name } => match *m {
            Method::POST => uploads::start(st, name, &query, body).await,
            _ => Err(not_allowed()),
        },
        Route::Upload { name, id } => match *m {
            Method::GET | Method::HEAD => uploads::status(st, name, id).await,
            Method::PATCH => uploads::patch(st, name, id, headers, body).await,
            Method::PUT => uploads::finish(st, name, id, &query, headers, body).await,
            Method::DELETE => uploads::cancel(st, name, id).await,
            _ => Err(not_allowed()),
        },
        Route::Tags { name } => match *m {
            Method::GET | Method::HEAD => listing::tags(st, name, query, head).await,
            _ => Err(not_allowed()),
        },
        Route::Referrers { name, digest } => match *m {
            Method::GET | Method::HEAD => listing::referrers(st, name, digest, query, head).await,
            _ => Err(not_allowed()),
        },
    }
}

/// A connection that fails when no byte has moved either way for `timeout`.
/// Until the first byte arrives, `first` (the head timeout) applies: a connection that
/// never sends anything does not hold its place for the whole idle time.
struct IdleIo<T> {
    inner: T,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<T> IdleIo<T> {
    fn new(inner: T, timeout: Duration, first: Duration) -> IdleIo<T> {
        IdleIo { inner, timeout, deadline: Box::pin(tokio::time::sleep(first.min(timeout))) }
    }

    fn moved(&mut self) {
        let at = tokio::time::Instant::now() + self.timeout;
        self.deadline.as_mut().reset(at);
    }

    fn idle<R>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<R>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the connection was idle too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut me.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    me.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending => me.idle(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        match Pin::new(&mut me.inner).poll_write(cx, buf) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    me.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending => me.idle(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        match Pin::new(&mut me.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                if matches!(r, Ok(n) if n > 0) {
                    me.moved();
                }
                Poll::Ready(r)
            }
            Poll::Pending => me.idle(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let me = self.get_mut();
        match Pin::new(&mut me.inner).poll_flush(cx) {
            Poll::Pending => me.idle(cx),
            r => r,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
