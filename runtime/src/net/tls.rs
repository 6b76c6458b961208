//! The certificate authorities outbound TLS trusts, as one rustls client configuration per server.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{CertificateError, RootCertStore};

use crate::config::TlsTrust;

/// A rustls client configuration (ring, TLS 1.2 and 1.3) whose roots are the platform's, or
/// exactly the certificates `SSL_CERT_FILE`/`SSL_CERT_DIR` name. Cheap to clone.
#[derive(Clone)]
pub(crate) struct ClientTls {
    config: Arc<rustls::ClientConfig>,
    /// The roots again as PEM, for clients that take PEM (the redis crate); `None` for the
    /// platform's roots, which they load themselves.
    custom_roots_pem: Option<Arc<Vec<u8>>>,
    roots: usize,
}

/// Why the trusted roots could not be loaded: a start-up error naming the variable.
#[derive(Debug)]
pub(crate) struct TrustError {
    pub(crate) variable: &'static str,
    pub(crate) problem: String,
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.problem)
    }
}

impl ClientTls {
    /// Loads the roots `trust` names. Reading the platform's store can find some files unreadable;
    /// that is logged and the rest are used, as every TLS client does.
    pub(crate) fn load(trust: &TlsTrust) -> Result<Self, TrustError> {
        // Our own configurations name ring explicitly, but the redis crate builds its rustls
        // configuration from the process default, which does not exist until someone installs one.
        // A provider the application installed first stays in force.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let (certs, custom_roots_pem) = if trust.is_platform() {
            let loaded = rustls_native_certs::load_native_certs();
            for error in &loaded.errors {
                tracing::warn!(%error, "some of the platform's CA certificates could not be read");
            }
            (loaded.certs, None)
        } else {
            let mut certs = Vec::new();
            let mut pem = Vec::new();
            if let Some(file) = &trust.cert_file {
                read_pem_certs(file, "SSL_CERT_FILE", &mut certs, &mut pem)?;
            }
            for dir in &trust.cert_dirs {
                let entries = std::fs::read_dir(dir).map_err(|e| TrustError {
                    variable: "SSL_CERT_DIR",
                    problem: format!("cannot read {}: {e}", dir.display()),
                })?;
                let mut files: Vec<_> = entries
                    .flatten()
                    .map(|entry| entry.path())
                    .filter(|path| path.is_file())
                    .collect();
                files.sort();
                for file in files {
                    // OpenSSL's hashed directories hold other files too; a file that is not PEM
                    // is not a root, and not an error.
                    let _ = read_pem_certs(&file, "SSL_CERT_DIR", &mut certs, &mut pem);
                }
            }
            (certs, Some(Arc::new(pem)))
        };
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(certs);
        if added == 0 {
            let variable = match (&trust.cert_file, trust.cert_dirs.is_empty()) {
                (Some(_), _) => "SSL_CERT_FILE",
                (None, false) => "SSL_CERT_DIR",
                (None, true) => "SSL_CERT_FILE",
            };
            return Err(TrustError {
                variable,
                problem: if trust.is_platform() {
                    "the platform has no CA certificates (install ca-certificates) and none is set; set SSL_CERT_FILE to a PEM bundle".into()
                } else {
                    "holds no usable CA certificate in PEM form".into()
                },
            });
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(Self {
            config: Arc::new(config),
            custom_roots_pem,
            roots: added,
        })
    }

    /// The rustls configuration, for reqwest's `use_preconfigured_tls`.
    pub(crate) fn rustls_config(&self) -> rustls::ClientConfig {
        (*self.config).clone()
    }

    /// The roots as PEM when they are not the platform's.
    pub(crate) fn custom_roots_pem(&self) -> Option<&[u8]> {
        self.custom_roots_pem.as_deref().map(Vec::as_slice)
    }
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots)
            .field("platform", &self.custom_roots_pem.is_none())
            .finish()
    }
}

fn read_pem_certs(
    path: &Path,
    variable: &'static str,
    certs: &mut Vec<CertificateDer<'static>>,
    pem: &mut Vec<u8>,
) -> Result<(), TrustError> {
    let bytes = std::fs::read(path).map_err(|e| TrustError {
        variable,
        problem: format!("cannot read {}: {e}", path.display()),
    })?;
    let before = certs.len();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        certs.push(cert.map_err(|e| TrustError {
            variable,
            problem: format!("{} is not a PEM bundle: {e}", path.display()),
        })?);
    }
    if certs.len() > before {
        pem.extend_from_slice(&bytes);
        pem.push(b'\n');
    }
    Ok(())
}

/// What went wrong in a TLS handshake, in words that say what to do, when `error` (or anything in
/// its chain) is a certificate problem. `None` for failures that are not about TLS.
pub(crate) fn describe_tls_failure(
    host: &str,
    error: &(dyn std::error::Error + 'static),
) -> Option<String> {
    let rustls_error = rustls_error_in(error)?;
    Some(match rustls_error {
        rustls::Error::InvalidCertificate(certificate) => match certificate {
            CertificateError::UnknownIssuer => format!(
                "certificate for {host} is signed by an unknown authority; set SSL_CERT_FILE if you use a private CA"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "certificate presented by {host} is not valid for that name; check the host name you configured"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => format!(
                "certificate for {host} has expired; the server must renew it (or this machine's clock is wrong)"
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("certificate for {host} is not valid yet; check this machine's clock")
            }
            CertificateError::Revoked => format!("certificate for {host} has been revoked"),
            CertificateError::BadSignature => format!(
                "certificate for {host} has a signature that does not verify; the connection may be intercepted"
            ),
            other => format!("certificate for {host} was refused: {other:?}"),
        },
        rustls::Error::AlertReceived(alert) => {
            format!("{host} ended the TLS handshake with the alert {alert:?}")
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => format!(
            "{host} did not answer in TLS; is it plain http on that port? (AUTH0_DOMAIN without a scheme means https)"
        ),
        other => format!("the TLS handshake with {host} failed: {other}"),
    })
}

/// Finds a rustls error in a chain of sources. `std::io::Error::source` skips the error it wraps,
/// and so does an `Arc<dyn Error>` (how the redis crate keeps its causes), so both are opened too.
fn rustls_error_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(found) = error.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(found) = rustls_error_in(inner)
        {
            return Some(found);
        }
        if let Some(shared) = error.downcast_ref::<Shared>()
            && let Some(found) = rustls_error_in(&**shared)
        {
            return Some(found);
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_certificate_error_is_described_with_its_host() {
        let io = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        let text = describe_tls_failure("my-app.us.auth0.com", &io).unwrap();
        assert_eq!(
            text,
            "certificate for my-app.us.auth0.com is signed by an unknown authority; set SSL_CERT_FILE if you use a private CA"
        );
        let shared: std::sync::Arc<dyn std::error::Error + Send + Sync> = std::sync::Arc::new(io);
        let text = describe_tls_failure("127.0.0.1:6380", &shared).unwrap();
        assert!(text.starts_with("certificate for 127.0.0.1:6380"), "{text}");
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(describe_tls_failure("h", &refused).is_none());
    }

    #[test]
    fn a_file_without_certificates_is_refused_by_name() {
        let dir = std::env::temp_dir().join(format!("toolgate-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("empty.pem");
        std::fs::write(&file, "not a certificate\n").unwrap();
        let error = ClientTls::load(&TlsTrust::from_pem_file(&file)).unwrap_err();
        assert_eq!(error.variable, "SSL_CERT_FILE");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_platform_roots_load() {
        // Debian's ca-certificates is on every machine the tests run on.
        let tls = ClientTls::load(&TlsTrust::platform()).unwrap();
        assert!(tls.roots > 10, "{tls:?}");
        assert!(tls.custom_roots_pem().is_none());
    }
}
