//! TLS with rustls (ring provider): a certificate chain and a private key in PEM, HTTP/2
//! and HTTP/1.1 offered by ALPN.

use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::{Error, Result};

/// A server certificate and its key, ready to accept connections.
#[derive(Debug, Clone)]
pub struct Tls {
    pub(crate) config: Arc<rustls::ServerConfig>,
}

impl Tls {
    /// A certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1), both
    /// PEM.
    pub fn from_pem(cert_chain: &[u8], key: &[u8]) -> Result<Tls> {
        let bad = |reason: String| Error::Tls { reason };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_chain)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("the certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(bad("the certificate file holds no certificate".into()));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key).map_err(|e| bad(format!("the key file: {e}")))?;
        // ring, not aws-lc-rs (a C and cmake build): the provider ureq uses too. rustls
        // deprecates it for lacking post-quantum key exchange, which a registry on a
        // private network can do without.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| bad(format!("the certificate and key do not go together: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Tls { config: Arc::new(config) })
    }
}
