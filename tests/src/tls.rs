//! One test certificate authority per test process, as a private CA is in production: servers the
//! tests start (the dev-idp, Redis, HAProxy, client metadata documents) present certificates it
//! issued, and toolgate trusts it through `SSL_CERT_FILE`, never through a test-only switch.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use toolgate_dev_idp::tls::{ServerCertificate, TestCa, Validity};

/// The process's test CA and the file its certificate is written to.
pub struct TestPki {
    ca: TestCa,
    ca_file: PathBuf,
}

impl TestPki {
    /// The PEM file holding the CA certificate: what `SSL_CERT_FILE` names.
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.ca.certificate_pem()
    }

    /// A certificate for `localhost` and `127.0.0.1`.
    pub fn localhost(&self) -> ServerCertificate {
        self.ca.localhost().expect("issue a localhost certificate")
    }

    /// A certificate for other names, or one that has expired.
    pub fn issue(&self, names: &[&str], validity: Validity) -> ServerCertificate {
        self.ca
            .issue(names, validity)
            .expect("issue a test certificate")
    }
}

/// The test CA of this process, made on first use.
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = TestCa::generate("toolgate test CA").expect("make the test CA");
        let dir = std::env::temp_dir().join(format!("toolgate-test-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the test CA's directory");
        let ca_file = dir.join("ca.pem");
        ca.write_pem(&ca_file)
            .expect("write the test CA certificate");
        TestPki { ca, ca_file }
    })
}

/// A CA nobody trusts, for the "unknown authority" case.
pub fn untrusted_ca() -> TestCa {
    TestCa::generate("an untrusted CA").expect("make a CA")
}

/// Makes ring the process's rustls provider, as toolgate itself does when it sets up TLS: the
/// workspace builds reqwest without a provider of its own (toolgate hands it a configured one),
/// so clients the tests build with reqwest's defaults, rmcp's among them, need it installed first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// An HTTP client for tests that trusts exactly the test CA, as a browser of a company with a
/// private CA would; plain-http loopback servers work as before.
pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("an HTTP client")
}

/// [`http_client`]'s builder, for tests that set more options.
pub fn http_client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    let ca = reqwest::Certificate::from_pem(pki().ca_pem().as_bytes()).expect("the test CA parses");
    reqwest::Client::builder().tls_certs_only([ca])
}

/// rmcp's streamable HTTP client transport for `uri`, after [`install_crypto_provider`].
pub fn rmcp_transport(
    uri: impl Into<std::sync::Arc<str>>,
) -> rmcp::transport::StreamableHttpClientTransport<reqwest::Client> {
    install_crypto_provider();
    rmcp::transport::StreamableHttpClientTransport::from_uri(uri)
}
