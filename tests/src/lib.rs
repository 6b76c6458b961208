//! Support for the integration tests: servers on ephemeral loopback ports and MCP clients for them.

pub mod flow;
pub mod haproxy;
pub mod logs;
pub mod oidc_provider;
pub mod processes;
pub mod redis;
pub mod store_contract;
pub mod tls;

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use toolgate::ServerBuilder;
use url::Url;

/// A server running on `127.0.0.1:<ephemeral>`; stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Binds a port, lets `build` configure the server for that base URL, and serves it.
    pub async fn start(build: impl FnOnce(Url) -> ServerBuilder) -> Self {
        Self::start_with_routes(build, |_| axum::Router::new()).await
    }

    /// Like `start`, with `public` as the base URL: several servers behind one address, as behind a
    /// load balancer, accept each other's tokens.
    pub async fn start_behind(public: Url, build: impl FnOnce(Url) -> ServerBuilder) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        Self::serve(listener, build(public), |_| axum::Router::new()).await
    }

    /// Like `start`, merging extra routes made from the built server (for `Server::protect`).
    pub async fn start_with_routes(
        build: impl FnOnce(Url) -> ServerBuilder,
        routes: impl FnOnce(&toolgate::Server) -> axum::Router,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind an ephemeral port");
        let addr = listener.local_addr().unwrap();
        let base = Url::parse(&format!("http://127.0.0.1:{}", addr.port())).unwrap();
        Self::serve(listener, build(base), routes).await
    }

    async fn serve(
        listener: TcpListener,
        builder: ServerBuilder,
        routes: impl FnOnce(&toolgate::Server) -> axum::Router,
    ) -> Self {
        let addr = listener.local_addr().unwrap();
        let server = builder.build().expect("the server builds");
        server.warm_up().await;
        let router = server.router().merge(routes(&server));
        let task = tokio::spawn(async move {
            axum_serve(listener, router).await;
        });
        Self { addr, task }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url())
    }

    /// An rmcp client over streamable HTTP, with a bearer token when given.
    pub async fn client(
        &self,
        token: Option<&str>,
    ) -> Result<RunningService<RoleClient, ()>, String> {
        mcp_client(&self.mcp_url(), token).await
    }
}

/// An rmcp client for the MCP endpoint at `mcp_url`, with a bearer token when given.
pub async fn mcp_client(
    mcp_url: &str,
    token: Option<&str>,
) -> Result<RunningService<RoleClient, ()>, String> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(mcp_url.to_owned());
    if let Some(token) = token {
        config = config.auth_header(token.to_owned());
    }
    tls::install_crypto_provider();
    let transport = StreamableHttpClientTransport::from_config(config);
    ().serve(transport).await.map_err(|e| e.to_string())
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn axum_serve(listener: TcpListener, router: axum::Router) {
    // As `Server::serve_on` does: a session's SSE reply must not wait for a delayed ACK.
    let listener = listener.tap_io(|stream| {
        let _ = stream.set_nodelay(true);
    });
    let _ = axum::serve(listener, router).await;
}

/// The dev-idp as Auth0 is in production: over HTTPS, with a certificate from the test CA, at
/// `https://localhost:PORT` (so `AUTH0_DOMAIN` is the bare host `localhost:PORT`).
pub async fn start_idp(config: toolgate_dev_idp::DevIdpConfig) -> toolgate_dev_idp::DevIdp {
    toolgate_dev_idp::DevIdp::start(
        toolgate_dev_idp::DevIdpConfig {
            tls: Some(tls::pki().localhost()),
            ..config
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("the dev-idp starts")
}

/// The dev-idp on plain http, as the example's dev mode runs it: only for tests of that shortcut.
pub async fn start_plain_http_idp(
    config: toolgate_dev_idp::DevIdpConfig,
) -> toolgate_dev_idp::DevIdp {
    toolgate_dev_idp::DevIdp::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("the dev-idp starts")
}

/// The seed's variables for a server whose Auth0 is `idp`, served at `base`. For an HTTPS idp,
/// `AUTH0_DOMAIN` is its bare host and `SSL_CERT_FILE` the test CA, as for a tenant behind a
/// private CA.
pub fn auth0_vars(idp: &toolgate_dev_idp::DevIdp, base: &Url) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = Vec::new();
    if idp.url().starts_with("https://") {
        vars.push((
            "SSL_CERT_FILE".to_owned(),
            tls::pki().ca_file().display().to_string(),
        ));
    }
    [
        ("AUTH_ENABLED", "true".to_owned()),
        ("AUTH_PROVIDER", "auth0".to_owned()),
        ("AUTH0_DOMAIN", idp.domain()),
        ("AUTH0_CLIENT_ID", idp.client_id().to_owned()),
        ("AUTH0_CLIENT_SECRET", idp.client_secret().to_owned()),
        ("AUTH0_AUDIENCE", idp.audience().to_owned()),
        ("RESOURCE_BASE_URL", base.as_str().to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .chain(vars)
    .collect()
}

/// A JSON-RPC `tools/call` body, for raw HTTP tests.
pub fn tools_call_body(name: &str, arguments: serde_json::Value) -> String {
    serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": { "name": name, "arguments": arguments }
    })
    .to_string()
}

/// The headers an MCP client sends on a POST, at protocol version 2025-11-25.
pub fn mcp_post(client: &reqwest::Client, url: &str, body: String) -> reqwest::RequestBuilder {
    mcp_post_as(client, url, body, "2025-11-25")
}

/// The headers an MCP client sends on a POST, at a given protocol version.
pub fn mcp_post_as(
    client: &reqwest::Client,
    url: &str,
    body: String,
    version: &str,
) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", version)
        .body(body)
}

/// Asserts a 401 whose `WWW-Authenticate` says `invalid_token` and points at the resource metadata.
pub fn assert_invalid_token(response: &reqwest::Response, case: &str) {
    assert_eq!(response.status(), 401, "{case}");
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        challenge.contains("error=\"invalid_token\""),
        "{case}: {challenge}"
    );
    assert!(
        challenge.contains("resource_metadata=\""),
        "{case}: {challenge}"
    );
}
