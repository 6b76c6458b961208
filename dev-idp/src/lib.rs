//! A local stand-in for Auth0: real OAuth 2.0 / OIDC client code talks to it over HTTP
//! with Auth0's paths, token shapes and error bodies. For dev mode and tests only.

// Modules point one way: `config`, `error` and `util` are leaves; `keys` and `store` hold data;
// `state` owns them; `claims`, `pages`, `pkce` and `redirect` serve the endpoints; each endpoint
// module uses those; `server` composes the endpoints; this file is the handle tests hold.
mod authorize;
mod claims;
mod config;
mod discovery;
mod error;
mod keys;
mod logout;
mod pages;
mod pkce;
mod redirect;
mod revoke;
mod server;
mod state;
mod store;
pub mod tls;
mod token;
mod userinfo;
mod util;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use crate::config::{AutoApprove, DevIdpConfig, DevUser};
pub use crate::error::DevIdpError;
use crate::keys::SigningKey;
use crate::state::Shared;

/// A running dev IdP. Dropping it (or [`DevIdp::shutdown`]) stops the server.
pub struct DevIdp {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl fmt::Debug for DevIdp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The configuration's own `Debug` redacts the secret.
        f.debug_struct("DevIdp")
            .field("url", &self.shared.url)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

impl DevIdp {
    /// Binds `addr` (must be a loopback IP; port 0 picks a free one). Makes an RSA-2048 key with a random `kid`.
    pub async fn start(config: DevIdpConfig, addr: SocketAddr) -> Result<DevIdp, DevIdpError> {
        if !addr.ip().is_loopback() {
            return Err(DevIdpError::NotLoopback(addr));
        }
        if let Some(auto) = &config.auto_approve
            && config.find_user(&auto.user).is_none()
        {
            return Err(DevIdpError::UnknownUser(auto.user.clone()));
        }
        // Key generation takes a noticeable fraction of a second; keep it off the async workers.
        let key = tokio::task::spawn_blocking(SigningKey::generate)
            .await
            .map_err(|e| DevIdpError::Key(e.to_string()))??;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let url = match &config.tls {
            None => format!("http://{local}"),
            Some(_) => format!("https://localhost:{}", local.port()),
        };
        let tls = config.tls.clone();
        let shared = Arc::new(Shared::new(config, url, key));
        let app = server::router(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = match tls {
            None => spawn_server(listener, app, stopped),
            Some(certificate) => {
                spawn_server(tls::TlsListener::new(listener, &certificate)?, app, stopped)
            }
        };
        tracing::info!(url = %shared.url, "dev IdP listening");
        Ok(DevIdp {
            shared,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` when serving HTTPS; no trailing slash.
    pub fn url(&self) -> String {
        self.shared.url.clone()
    }

    /// What `AUTH0_DOMAIN` says for this IdP: `localhost:PORT` (a bare host, so https, as for a real
    /// tenant) when it serves HTTPS, its plain-http loopback URL otherwise.
    pub fn domain(&self) -> String {
        match self.shared.url.strip_prefix("https://") {
            Some(host) => host.to_owned(),
            None => self.shared.url.clone(),
        }
    }

    /// `url()` plus `/`: Auth0's `iss` ends with a slash.
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }

    pub fn audience(&self) -> &str {
        &self.shared.config.audience
    }

    pub fn client_id(&self) -> &str {
        &self.shared.config.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.shared.config.client_secret
    }

    pub fn kid(&self) -> String {
        self.shared.current_key().kid.clone()
    }

    /// SPKI PEM of the current public key.
    pub fn public_key_pem(&self) -> String {
        self.shared.current_key().public_key_pem()
    }

    pub fn public_key_pkcs1_der(&self) -> Vec<u8> {
        self.shared.current_key().public_key_pkcs1_der()
    }

    /// Signs arbitrary claims with the current key; header `{alg: RS256, typ: JWT, kid}`.
    pub fn sign(&self, claims: &Value) -> String {
        self.shared.current_key().sign(claims)
    }

    /// A user access token shaped as Auth0 issues it, with scope `openid profile email`.
    pub fn user_token(&self, sub: &str, permissions: &[&str]) -> String {
        self.sign(&self.user_token_claims(sub, permissions))
    }

    /// The claims [`DevIdp::user_token`] signs, for tests that tweak one field.
    pub fn user_token_claims(&self, sub: &str, permissions: &[&str]) -> Value {
        let permissions: Vec<String> = permissions.iter().map(|p| p.to_string()).collect();
        self.shared.user_access_claims(
            sub,
            "openid profile email",
            &self.shared.config.audience,
            &permissions,
        )
    }

    /// Makes a new key and `kid` current; JWKS keeps serving the old ones.
    /// Generates RSA-2048 synchronously, so it blocks the calling thread briefly.
    pub fn rotate_key(&self) {
        let key = SigningKey::generate().expect("RSA key generation failed");
        self.shared.keys.write().expect("key ring lock").push(key);
    }

    /// `false` makes `/.well-known/jwks.json` answer 503.
    pub fn set_jwks_available(&self, available: bool) {
        self.shared
            .jwks_available
            .store(available, Ordering::SeqCst);
    }

    /// `Some(status)` makes `/userinfo` answer that status (429 adds `Retry-After: 1`).
    pub fn set_userinfo_failure(&self, status: Option<u16>) {
        *self.shared.userinfo_failure.lock().expect("lock") = status;
    }

    pub fn set_userinfo_delay(&self, delay: Duration) {
        *self.shared.userinfo_delay.lock().expect("lock") = delay;
    }

    pub fn jwks_requests(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    pub fn userinfo_requests(&self) -> usize {
        self.shared.userinfo_requests.load(Ordering::SeqCst)
    }

    pub fn discovery_requests(&self) -> usize {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }

    /// Refresh-token grants answered with new tokens.
    pub fn refresh_grants(&self) -> usize {
        self.shared.refresh_grants.load(Ordering::SeqCst)
    }

    /// `/oauth/revoke` requests accepted.
    pub fn revocations(&self) -> usize {
        self.shared.revocations.load(Ordering::SeqCst)
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

/// Serves `app` on `listener` until `stop` fires or its sender is dropped.
fn spawn_server<L>(
    listener: L,
    app: Router,
    stop: oneshot::Receiver<()>,
) -> JoinHandle<std::io::Result<()>>
where
    L: axum::serve::Listener,
    L::Addr: fmt::Debug,
{
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stop.await;
            })
            .await
    })
}

impl Drop for DevIdp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
