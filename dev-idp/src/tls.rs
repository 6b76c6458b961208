//! HTTPS for the dev IdP and for tests: a throw-away certificate authority, server certificates it
//! issues (for `localhost` and `127.0.0.1` by default, or for whatever a failure case needs), and an
//! axum listener that speaks TLS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::error::DevIdpError;

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate authority made in memory. Its certificate is what a client trusts (through
/// `SSL_CERT_FILE`, say); its key signs server certificates and never leaves the process.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA with an ECDSA P-256 key, named `name`.
    pub fn generate(name: &str) -> Result<Self, DevIdpError> {
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, name);
        params.distinguished_name = subject;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().map_err(tls_error)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(tls_error)?;
        Ok(Self { issuer })
    }

    /// The CA certificate, PEM.
    pub fn certificate_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Writes the CA certificate to `path` (PEM), for `SSL_CERT_FILE` and the like.
    pub fn write_pem(&self, path: &Path) -> Result<(), DevIdpError> {
        std::fs::write(path, self.certificate_pem())?;
        Ok(())
    }

    /// A server certificate for `localhost` and `127.0.0.1`, valid now.
    pub fn localhost(&self) -> Result<ServerCertificate, DevIdpError> {
        self.issue(&["localhost", "127.0.0.1"], Validity::Current)
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue(
        &self,
        names: &[&str],
        validity: Validity,
    ) -> Result<ServerCertificate, DevIdpError> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).map_err(tls_error)?;
        let mut subject = DistinguishedName::new();
        subject.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.distinguished_name = subject;
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if let Validity::Expired = validity {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().map_err(tls_error)?;
        let certificate = params.signed_by(&key, &self.issuer).map_err(tls_error)?;
        Ok(ServerCertificate {
            chain_pem: format!("{}{}", certificate.pem(), self.certificate_pem()),
            key_pem: key.serialize_pem(),
        })
    }
}

/// When a server certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From long ago until far ahead.
    Current,
    /// Only during 2020: expired.
    Expired,
}

/// A server certificate with its chain (leaf, then CA) and key, both PEM.
#[derive(Clone)]
pub struct ServerCertificate {
    /// The leaf, then the CA that issued it.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for ServerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCertificate")
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl ServerCertificate {
    /// Certificate and key in one PEM file, as HAProxy's `crt` wants it.
    pub fn combined_pem(&self) -> String {
        format!("{}{}", self.chain_pem, self.key_pem)
    }

    /// A rustls server configuration presenting this certificate (HTTP/1.1 only).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, DevIdpError> {
        let chain = CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(tls_error)?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(tls_error)?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_error)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn tls_error(error: impl std::fmt::Display) -> DevIdpError {
    DevIdpError::Tls(error.to_string())
}

/// An axum listener that completes TLS handshakes before handing connections over. Handshakes run
/// concurrently, so a client that stalls in one never blocks the others; a failed handshake (a
/// client that refuses the certificate, say) is logged and dropped.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Serves `certificate` on connections `listener` accepts.
    pub fn new(
        listener: TcpListener,
        certificate: &ServerCertificate,
    ) -> Result<Self, DevIdpError> {
        let acceptor = TlsAcceptor::from(certificate.server_config()?);
        let local_addr = listener.local_addr()?;
        let (ready, incoming) = mpsc::channel(64);
        let accept_task = tokio::spawn(async move {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let ready = ready.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = ready.send((tls, peer)).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            incoming,
            local_addr,
            accept_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accept task ends only when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local_addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_chain_to_the_ca_and_load_into_rustls() {
        let ca = TestCa::generate("toolgate test CA").unwrap();
        let leaf = ca.localhost().unwrap();
        assert_eq!(leaf.chain_pem.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(leaf.chain_pem.ends_with(&ca.certificate_pem()));
        leaf.server_config().unwrap();
        assert!(!format!("{leaf:?}").contains("PRIVATE KEY"));
    }
}
