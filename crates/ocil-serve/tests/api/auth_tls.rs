//! Basic authentication against an htpasswd file (bcrypt entries made by Apache's
//! `htpasswd -B`, not by this crate's bcrypt), and TLS with a test CA made in the test.

use std::sync::Arc;

use base64::Engine as _;

use crate::support::*;

// `htpasswd -nbB alice secret`.
const HTPASSWD: &str = "alice:$2y$05$aj1JgkRzM7dKQnN3MdiUguED24uoLrMfVDtIb5vqpemJM.KCeRIH6\n";

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[test]
fn basic_auth_challenges_refuses_and_admits() {
    let srv = serve_empty(Opts {
        tweak: Some(Box::new(|c| {
            c.htpasswd = Some(ocil_serve::Htpasswd::parse(HTPASSWD).unwrap())
        })),
        ..Opts::rw()
    });
    let mut c = client(&srv);
    for path in ["/v2/", "/v2/_catalog", "/v2/x/tags/list"] {
        let r = c.get(path);
        assert_eq!((r.status, r.code().as_str()), (401, "UNAUTHORIZED"), "{path}");
        assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"ocil\""));
    }
    for (u, p) in [("alice", "wrong"), ("mallory", "secret"), ("alice", "")] {
        c.auth = Some(basic(u, p));
        let r = c.get("/v2/");
        assert_eq!(r.status, 401, "{u}:{p}");
        assert!(r.header("www-authenticate").is_some());
        let r = c.req("POST", "/v2/x/blobs/uploads/", &[], b"");
        assert_eq!(r.status, 401);
    }
    c.auth = Some("Bearer abc".into());
    assert_eq!(c.get("/v2/").status, 401);
    c.auth = Some(basic("alice", "secret"));
    assert_eq!(c.get("/v2/").status, 200);
    let (_, d) = push_image(&c, "x", "v1", "auth");
    assert_eq!(c.get(&format!("/v2/x/manifests/{d}")).status, 200);
    assert!(!srv.root.join("x/blobs/sha256").join("nothing").exists());
}

struct Pki {
    ca_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "ocil test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki { ca_der: ca.der().to_vec(), cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

#[test]
fn tls_with_a_test_ca() {
    let p = pki();
    let tls = ocil_serve::Tls::from_pem(p.cert_pem.as_bytes(), p.key_pem.as_bytes()).unwrap();
    let srv = serve_empty(Opts { tweak: Some(Box::new(move |c| c.tls = Some(tls))), ..Opts::rw() });
    let roots = ureq::tls::RootCerts::Specific(Arc::new(vec![
        ureq::tls::Certificate::from_der(&p.ca_der).to_owned(),
    ]));
    let tls_config = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    let c = Client::new(&format!("https://127.0.0.1:{}", srv.addr.port()), Some(tls_config));
    assert_eq!(c.get("/v2/").status, 200);
    let (m, d) = push_image(&c, "tls", "v1", "tls");
    assert_eq!(c.get(&format!("/v2/tls/manifests/{d}")).body, m);
    // A client that does not trust the CA is refused by its own TLS; plain HTTP gets nothing.
    let untrusting = Client::new(&format!("https://127.0.0.1:{}", srv.addr.port()), None);
    assert!(untrusting.try_req("GET", "/v2/", &[], b"").is_err());
    let plain = Client::new(&format!("http://127.0.0.1:{}", srv.addr.port()), None);
    assert!(plain.try_req("GET", "/v2/", &[], b"").map_or(true, |r| r.status != 200));
}

#[test]
fn unusable_certificates_and_htpasswd_files_are_errors() {
    assert!(ocil_serve::Tls::from_pem(b"", b"").is_err());
    let p = pki();
    let other = pki();
    assert!(ocil_serve::Tls::from_pem(p.cert_pem.as_bytes(), other.key_pem.as_bytes()).is_err());
    assert!(ocil_serve::Htpasswd::parse("bob:plain").is_err());
}
