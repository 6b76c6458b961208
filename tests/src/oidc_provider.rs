//! `oidc-provider` (a certified OpenID provider, run under Node from `tests/peers/oidc-provider`)
//! standing in for Auth0: as the issuer of client-credentials tokens toolgate verifies, or as the
//! upstream identity provider of toolgate's authorization server.

use std::process::Command;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::Value;

use crate::processes::{Spawned, TempDir, Upstream, peer_dir, peer_node};

/// The API (`aud`) its access tokens are for.
pub const API: &str = "https://api.toolgate.test";
/// The client-credentials client every instance has.
pub const CLIENT_ID: &str = "toolgate-test";
pub const CLIENT_SECRET: &str = "toolgate-test-secret";
/// Node plus a 2048-bit key generation; generous because cargo may be compiling on both cores.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// The first stdout line of `server.mjs`.
#[derive(Deserialize)]
struct Handshake {
    issuer: String,
    port: u16,
    upstream_client: Option<UpstreamClient>,
}

#[derive(Deserialize)]
struct UpstreamClient {
    client_id: String,
}

/// A running `oidc-provider`, serving HTTPS with a certificate from the test CA at
/// `https://localhost:PORT`, as Auth0 is served; killed and reaped on drop.
pub struct OidcProvider {
    process: Spawned,
    pub issuer: String,
    /// `AUTH0_DOMAIN` for it: the bare host `localhost:PORT`, so https.
    pub domain: String,
    // The certificate and key files it reads at start.
    _tls_files: TempDir,
    pub token_endpoint: String,
    upstream: Option<Upstream>,
    http: reqwest::Client,
}

impl OidcProvider {
    /// An instance that issues client-credentials tokens for [`API`].
    pub async fn start() -> Self {
        Self::start_with(&[], None).await
    }

    /// An instance that is also the upstream identity provider of a toolgate authorization
    /// server whose callback is `callback_url`: a confidential client for it, a login and consent
    /// page, refresh tokens, and API access tokens that live `access_token_ttl`.
    pub async fn start_upstream(callback_url: &str, access_token_ttl: Duration) -> Self {
        let ttl = access_token_ttl.as_secs().max(1).to_string();
        // Given through the environment, so it is in no command line and no output.
        let mut secret = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut secret);
        let secret = URL_SAFE_NO_PAD.encode(secret);
        Self::start_with(
            &[
                "--upstream-callback",
                callback_url,
                "--access-token-ttl",
                &ttl,
            ],
            Some(&secret),
        )
        .await
    }

    async fn start_with(args: &[&str], upstream_secret: Option<&str>) -> Self {
        let node = peer_node("oidc-provider");
        let dir = peer_dir("oidc-provider");
        assert!(
            dir.join("node_modules/oidc-provider/package.json")
                .is_file(),
            "the oidc-provider peer is not installed under {}: run scripts/install-peers.sh \
             (it needs the npm registry) and run the tests again",
            dir.display()
        );
        let tls_files = TempDir::new("oidc-provider-tls");
        let certificate = crate::tls::pki().localhost();
        let (cert, key) = (tls_files.0.join("cert.pem"), tls_files.0.join("key.pem"));
        std::fs::write(&cert, &certificate.chain_pem).expect("write the certificate");
        std::fs::write(&key, &certificate.key_pem).expect("write the key");
        let mut command = Command::new(node);
        command
            .arg("server.mjs")
            .arg("--exit-on-stdin-close")
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(args)
            .current_dir(&dir);
        if let Some(secret) = upstream_secret {
            command.env("UPSTREAM_CLIENT_SECRET", secret);
        }
        let mut process = Spawned::start("oidc-provider", command);
        let line = process
            .wait_for_line(STARTUP_TIMEOUT, |line| line.starts_with('{'))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let handshake: Handshake = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the handshake line {line:?} is not as expected: {e}"));
        assert_eq!(
            handshake.issuer,
            format!("https://localhost:{}", handshake.port)
        );
        let domain = format!("localhost:{}", handshake.port);
        let upstream = handshake
            .upstream_client
            .zip(upstream_secret)
            .map(|(client, secret)| Upstream {
                domain: domain.clone(),
                client_id: client.client_id,
                client_secret: secret.to_owned(),
                audience: API.to_owned(),
            });

        let http = crate::tls::http_client();
        let discovery: Value = http
            .get(format!(
                "{}/.well-known/openid-configuration",
                handshake.issuer
            ))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("oidc-provider serves its discovery document")
            .json()
            .await
            .unwrap();
        assert_eq!(discovery["issuer"], handshake.issuer);
        let token_endpoint = discovery["token_endpoint"]
            .as_str()
            .expect("discovery names a token endpoint")
            .to_owned();
        Self {
            process,
            issuer: handshake.issuer,
            domain,
            _tls_files: tls_files,
            token_endpoint,
            upstream,
            http,
        }
    }

    /// What toolgate needs to sign in here as its upstream (only after `start_upstream`).
    pub fn upstream(&self) -> &Upstream {
        self.upstream
            .as_ref()
            .expect("started with OidcProvider::start_upstream")
    }

    /// What it logged (refusals included), for failure messages.
    pub fn stderr_log(&self) -> String {
        self.process.log()
    }

    /// A client-credentials access token for [`API`] with the given scope (space-separated).
    pub async fn token(&self, scope: &str) -> String {
        let response = self
            .http
            .post(&self.token_endpoint)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("resource", API),
                ("scope", scope),
            ])
            .send()
            .await
            .expect("the token endpoint answers");
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            status,
            200,
            "token request for {scope:?} failed: {body}; its log:\n{}",
            self.stderr_log()
        );
        assert_eq!(body["token_type"], "Bearer", "{body}");
        assert_eq!(body["scope"], scope, "granted scope differs: {body}");
        body["access_token"].as_str().unwrap().to_owned()
    }
}
