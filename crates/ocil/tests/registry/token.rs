//! The Bearer token flow against Debian's `docker-registry` configured with `auth: token:`:
//! the token server is the tests' own (the scripted fake), signing JWTs (ES256) with a key
//! whose self-signed certificate (made by rcgen) is the registry's `rootcertbundle`, sent in
//! the token's `x5c` header (made by jsonwebtoken: no hand-written JWT). It grants `bob` what
//! he asks for and nobody anything: ocil must fetch tokens for the pull, push and mount scopes
//! it needs, from the challenge of `GET /v2/`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::fake::{Fake, Reply, Req};
use crate::memory::query;
use crate::peers::{registry_tool, shared_dir};
use crate::support::{Registry, assert_clean, ocil, ocil_ok, tags};

/// `bob:pa55-word` as Basic auth (base64 computed outside ocil).
const BOB: &str = "Basic Ym9iOnBhNTUtd29yZA==";
const SERVICE: &str = "ocil-test-registry";
const ISSUER: &str = "ocil-test-issuer";

/// What a token grants on one resource.
#[derive(serde::Serialize)]
struct Access {
    #[serde(rename = "type")]
    kind: String,
    name: String,
    actions: Vec<String>,
}

#[derive(serde::Serialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

/// Every `scope` of a token request (`repository:NAME:pull,push`), several allowed.
fn scopes(req: &Req) -> Vec<Access> {
    let q = req.path.split_once('?').map_or("", |(_, q)| q);
    q.split('&')
        .filter_map(|kv| kv.strip_prefix("scope="))
        .flat_map(|s| {
            let s = query(&format!("?s={s}")).remove("s").unwrap_or_default();
            s.split(' ').map(str::to_owned).collect::<Vec<_>>()
        })
        .filter_map(|s| {
            let (kind, rest) = s.split_once(':')?;
            let (name, actions) = rest.rsplit_once(':')?;
            Some(Access {
                kind: kind.to_owned(),
                name: name.to_owned(),
                actions: actions.split(',').map(str::to_owned).collect(),
            })
        })
        .collect()
}

/// The token server (a fake on its own port) and the registry trusting it.
struct Tokens {
    server: Fake,
    issued: Arc<AtomicUsize>,
    registry: Registry,
}

fn start() -> Tokens {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["ocil-token-signer".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let x5c = base64::engine::general_purpose::STANDARD.encode(cert.der());
    let signing = jsonwebtoken::EncodingKey::from_ec_der(&key.serialize_der());
    let issued = Arc::new(AtomicUsize::new(0));
    let count = issued.clone();
    let server = Fake::start(move |r| {
        if !r.path.starts_with("/token") {
            return Reply::new(404, "");
        }
        if r.header("authorization") != Some(BOB) {
            return Reply::new(401, r#"{"details":"bad credentials"}"#);
        }
        let n = count.fetch_add(1, Ordering::SeqCst);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let claims = Claims {
            iss: ISSUER.into(),
            sub: "bob".into(),
            aud: SERVICE.into(),
            exp: now + 300,
            nbf: now - 10,
            iat: now,
            jti: format!("t{n}"),
            access: scopes(r),
        };
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(vec![x5c.clone()]);
        let token = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
        Reply::new(200, serde_json::json!({"token": token, "expires_in": 300}).to_string())
    });
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("root.pem");
    fs_err::write(&bundle, cert.pem()).unwrap();
    let auth = format!(
        "auth:\n  token:\n    realm: http://{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
        server.host(),
        bundle.display()
    );
    let registry = Registry::start_with_auth(&auth);
    // The bundle is read at start; the directory may go.
    drop(dir);
    Tokens { server, issued, registry }
}

#[test]
fn the_token_flow_for_push_pull_and_mount_needs_registry_needs_shared() {
    if !registry_tool() {
        return;
    }
    let Some(shared) = shared_dir() else { return };
    let t = start();
    let host = t.registry.host();
    let layout = shared.join("fixtures/peer-made/umoci-edit/layout");
    let digest = tags(&layout).into_iter().find(|(tag, _)| tag == "v3").unwrap().1;
    let src = format!("{}:v3", layout.display());
    // Nobody: the token server refuses, so the registry needs credentials.
    let out = ocil(["push".to_owned(), src.clone(), format!("{host}/a/app:v3")]);
    assert_eq!(out.code, Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("needs credentials"), "{}", out.stderr);
    let out = ocil([
        "push".to_owned(),
        src.clone(),
        format!("{host}/a/app:v3"),
        "--creds".into(),
        "bob:wrong".into(),
    ]);
    assert!(out.stderr.contains("refused the credentials of user `bob`"), "{}", out.stderr);
    // bob: push (pull,push scope), then a copy to another repository that mounts (its token
    // also needs pull on the source), then a pull.
    let creds = ["--creds".to_owned(), "bob:pa55-word".to_owned()];
    let mut args = vec!["push".to_owned(), src, format!("{host}/a/app:v3")];
    args.extend(creds.clone());
    ocil_ok(args);
    let mut args = vec![
        "copy".to_owned(),
        format!("docker://{host}/a/app:v3"),
        format!("docker://{host}/b/app:v3"),
        "--json".into(),
    ];
    args.extend(creds.clone());
    let out = ocil_ok(args);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["mounted"], 3, "{v}");
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("b");
    let mut args = vec!["pull".to_owned(), format!("{host}/b/app:v3"), dst.display().to_string()];
    args.extend(creds);
    ocil_ok(args);
    assert_eq!(tags(&dst), vec![("v3".to_owned(), digest)]);
    assert_clean(&dst);
    // Tokens were asked for, and reused: one per scope set and run (the push's; the copy's
    // source, destination and mount; the pull's), not one per request or thread.
    let issued = t.issued.load(Ordering::SeqCst);
    assert!((3..=6).contains(&issued), "{issued} tokens");
    let token_requests = t.server.requests();
    assert!(token_requests.iter().any(|r| r.path.contains("service=ocil-test-registry")));
}
