//! HTTPS served by the forge itself: a certificate chain and its private key (PEM files)
//! become the acceptor the accept loop runs each new connection's handshake through
//! (rustls, with the `ring` provider; HTTP/1.1 only, as the rest of the server).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why the certificate or key cannot be served, said at startup.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the TLS certificate file {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error(
        "the TLS key file {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("the TLS {what} file {} is not valid PEM: {reason}", path.display())]
    BadPem {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "the TLS key {} does not belong to the certificate {}",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error(
        "the TLS certificate {} and key {} cannot be used: {reason}",
        cert.display(),
        key.display()
    )]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// The acceptor for `cert` (the server's certificate first, then its chain) and `key`.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    let read = |what: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read("certificate", cert)?;
    let key_pem = read("key", key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadPem {
            what: "certificate",
            path: cert.to_owned(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_owned(),
        });
    }
    let private = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(private) => private,
        Err(rustls::pki_types::pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: key.to_owned(),
            });
        }
        Err(e) => {
            return Err(TlsError::BadPem {
                what: "key",
                path: key.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let unusable = |e: rustls::Error| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::Mismatch {
                cert: cert.to_owned(),
                key: key.to_owned(),
            }
        }
        other => TlsError::Unusable {
            cert: cert.to_owned(),
            key: key.to_owned(),
            reason: other.to_string(),
        },
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(unusable)?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(unusable)?;
    // The server speaks HTTP/1.1 only: say so, so that clients do not try h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
