//! The MCP server: an axum router with the authentication gate in front of rmcp's streamable HTTP
//! service.

mod drain;
mod gate;
mod handler;
mod handoff;
mod metadata;
mod sessions;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

use crate::Error;
use crate::auth::{Auth0Provider, AuthProvider, Challenge, OPENID_SCOPES, get_auth_provider};
use crate::config::{Config, ProviderConfig};
use crate::keys::DerivedKeys;
use crate::oauth::{self, OAuth, ProxyProvider};
use crate::permission::Permission;
use crate::storage::{EncryptedStore, MemoryStore, RedisStore, Store};
use crate::tool::{Registry, StateSealer, Tool, ToolDef};

/// Sends each write at once. A streamed (SSE) reply goes out in several writes, and with Nagle's
/// algorithm on, the last one waits for the client's delayed ACK: about 40 ms per session-mode call
/// on a kept-alive connection.
fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY on an accepted connection");
    }
}

/// How long connections get to close once sessions have been ended.
const CLOSE_AFTER_DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// SIGTERM or SIGINT, whichever comes first.
async fn termination_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The default limit on a request body.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) registry: Registry,
    pub(crate) provider: Option<Arc<dyn AuthProvider>>,
    pub(crate) challenge: Challenge,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) body_limit: usize,
    /// What a client may ask for: the OpenID scopes plus every permission of the catalog.
    pub(crate) scopes: Vec<String>,
    /// This server's key for tools' `requestState`s (never shared with another server).
    pub(crate) state_sealer: StateSealer,
    /// The authorization server, when the server runs one (`JWT_SIGNING_KEY` set).
    pub(crate) oauth: Option<Arc<OAuth>>,
    /// Who opened each MCP session.
    pub(crate) sessions: sessions::SessionOwners,
    /// Whose `Forwarded`/`X-Forwarded-For` headers name the client.
    pub(crate) trusted_proxies: crate::net::TrustedProxies,
    /// Cancelled when the server shuts down: rmcp then ends every session and closes its streams.
    pub(crate) shutdown: tokio_util::sync::CancellationToken,
}

impl Shared {
    pub(crate) fn auth_enabled(&self) -> bool {
        self.provider.is_some()
    }
}

/// A configured MCP server: call [`Server::serve`], or mount [`Server::router`] yourself.
pub struct Server {
    shared: Arc<Shared>,
}

enum ToolSelection {
    Linked,
    Explicit(Vec<&'static ToolDef>),
}

/// Builds a [`Server`].
pub struct ServerBuilder {
    config: Config,
    tools: ToolSelection,
    provider: Option<Arc<dyn AuthProvider>>,
    body_limit: usize,
    store: Option<Arc<dyn Store>>,
    registrations_per_minute: u32,
    /// Catalog entries no tool requires.
    permissions: Vec<Permission>,
}

impl Server {
    /// The seed's set-up: configuration from the environment and `.env`, every `#[mcp_tool]` in the
    /// binary.
    pub fn from_env() -> Result<Self, Error> {
        Self::builder().config(Config::from_env()?).build()
    }

    /// A builder with auth off, the default base URL, and every linked tool.
    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            config: Config::without_auth(
                url::Url::parse(crate::config::DEFAULT_BASE_URL).expect("valid"),
            ),
            tools: ToolSelection::Linked,
            provider: None,
            body_limit: DEFAULT_BODY_LIMIT,
            store: None,
            registrations_per_minute: oauth::DEFAULT_REGISTRATIONS_PER_MINUTE,
            permissions: Vec::new(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The published tools.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// The auth provider, when auth is on.
    pub fn auth_provider(&self) -> Option<&Arc<dyn AuthProvider>> {
        self.shared.provider.as_ref()
    }

    /// The encrypted store of the authorization server, when it runs one.
    pub fn store(&self) -> Option<&EncryptedStore> {
        self.shared.oauth.as_ref().map(|oauth| &oauth.store)
    }

    /// The routes: `/mcp`, the protected-resource metadata, `/healthz`, and the authorization
    /// server's when it runs.
    pub fn router(&self) -> Router {
        let shared = self.shared.clone();
        let mut rmcp_config = StreamableHttpServerConfig::default()
            // Host and Origin are checked by our own layer, before authentication.
            .disable_allowed_hosts()
            .with_max_request_body_bytes(shared.body_limit)
            .with_cancellation_token(shared.shutdown.child_token());
        if shared.config.stateless {
            rmcp_config = rmcp_config
                .with_legacy_session_mode(false)
                .with_json_response(true);
        }
        let handler_shared = shared.clone();
        let mcp = StreamableHttpService::new(
            move || Ok(handler::ToolgateHandler::new(handler_shared.clone())),
            Arc::new(LocalSessionManager::default()),
            rmcp_config,
        );
        let mcp = Router::new()
            .route_service("/mcp", mcp)
            .route_layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                gate::gate,
            ))
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                gate::check_host,
            ));
        // Public metadata that browser-based clients read from their own origin: the Host check
        // (DNS rebinding) applies, the Origin check does not.
        let metadata = Router::new()
            .route(
                "/.well-known/oauth-protected-resource",
                get(metadata::protected_resource),
            )
            .route(
                "/.well-known/oauth-protected-resource/mcp",
                get(metadata::protected_resource),
            )
            .layer(oauth::cors())
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                gate::check_host_only,
            ));
        let mut router = mcp
            .merge(metadata)
            .route("/healthz", get(|| async { "ok" }))
            .with_state(shared.clone());
        if let Some(oauth) = &shared.oauth {
            router = router.merge(oauth::routes(oauth.clone()).layer(
                axum::middleware::from_fn_with_state(shared.clone(), gate::check_host_only),
            ));
        }
        // Outermost, so every handler and every log line sees the same client address.
        router.layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            gate::client_address,
        ))
    }

    /// Puts your own axum routes behind the same Host check and bearer-token verification as `/mcp`,
    /// so their handlers can take `AccessToken` as an extractor. Merge the result into `router()`.
    pub fn protect(&self, routes: Router) -> Router {
        routes
            .route_layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                gate::gate,
            ))
            .route_layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                gate::check_host,
            ))
    }

    /// Listens where `RESOURCE_BASE_URL` says (its port; loopback when its host is loopback).
    pub async fn serve(self) -> Result<(), Error> {
        let addr = self.default_listen_addr();
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind {
                addr: addr.to_string(),
                source,
            })?;
        self.serve_on(listener).await
    }

    /// The address `serve` binds: `TOOLGATE_LISTEN`, or the port of `RESOURCE_BASE_URL` (on
    /// loopback when its host is loopback). Behind a TLS-terminating proxy the public URL's port is
    /// 443, which an unprivileged process cannot bind: set `TOOLGATE_LISTEN` there.
    pub fn default_listen_addr(&self) -> SocketAddr {
        if let Some(listen) = self.shared.config.listen {
            return listen;
        }
        let url = &self.shared.config.resource_base_url;
        let port = url.port_or_known_default().unwrap_or(8000);
        let ip = if gate::is_loopback_url(url) {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        SocketAddr::new(ip, port)
    }

    /// Serves on a listener you opened until SIGTERM or SIGINT (what Kubernetes, systemd and
    /// Ctrl-C send), then shuts down gracefully: no new connections, open sessions and their SSE
    /// streams closed, in-flight requests given `TOOLGATE_SHUTDOWN_GRACE` to finish. Returns `Ok`
    /// once done, so the process exits 0.
    pub async fn serve_on(self, listener: TcpListener) -> Result<(), Error> {
        self.serve_until(listener, termination_signal()).await
    }

    /// `serve_on` with your own shutdown trigger instead of the signals.
    pub async fn serve_until(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        self.warm_up().await;
        let local = listener.local_addr().map_err(Error::Serve)?;
        tracing::info!(addr = %local, resource = %self.shared.config.resource_uri(), tools = self.shared.registry.len(), "toolgate is serving");
        let in_flight = Arc::new(drain::InFlight::default());
        let app = self
            .router()
            .layer(axum::middleware::from_fn_with_state(
                in_flight.clone(),
                drain::track,
            ))
            .into_make_service_with_connect_info::<SocketAddr>();
        let stop_accepting = tokio_util::sync::CancellationToken::new();
        let serving = axum::serve(listener.tap_io(no_delay), app)
            .with_graceful_shutdown(stop_accepting.clone().cancelled_owned())
            .into_future();
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => return result.map_err(Error::Serve),
            () = shutdown => {}
        }
        let grace = self.shared.config.shutdown_grace;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            in_flight = in_flight.count(),
            "shutting down: no new connections; in-flight requests may finish, then sessions close"
        );
        stop_accepting.cancel();
        if tokio::time::timeout(grace, in_flight.idle()).await.is_err() {
            tracing::warn!(
                requests = in_flight.count(),
                grace_seconds = grace.as_secs(),
                "requests still running after the shutdown grace were dropped"
            );
        }
        // Ends every session and its event stream, so their connections close too.
        self.shared.shutdown.cancel();
        match tokio::time::timeout(CLOSE_AFTER_DRAIN, serving).await {
            Ok(result) => result.map_err(Error::Serve)?,
            Err(_) => tracing::warn!("connections still open after the drain were dropped"),
        }
        tracing::info!("toolgate stopped");
        Ok(())
    }

    /// Reaches the identity provider once, so a misconfiguration shows at start rather than on the
    /// first request. A failure is logged, not fatal: requests fail closed (503) until it recovers.
    pub async fn warm_up(&self) {
        match &self.shared.provider {
            None => tracing::warn!(
                "authentication is OFF (AUTH_ENABLED is not true): tools that declare permissions are hidden and refused"
            ),
            Some(provider) => {
                if let Err(error) = provider.warm_up().await {
                    tracing::error!(%error, "the identity provider is not reachable yet; requests get 503 until it is");
                }
            }
        }
    }
}

impl ServerBuilder {
    /// Uses this configuration (auth, base URL, modes).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Publishes this tool; the first call switches from "every linked tool" to an explicit set.
    pub fn tool<T: Tool>(self) -> Self {
        self.tool_def(T::DEF)
    }

    /// Publishes a tool by its definition.
    pub fn tool_def(mut self, def: &'static ToolDef) -> Self {
        match &mut self.tools {
            ToolSelection::Explicit(defs) => defs.push(def),
            ToolSelection::Linked => self.tools = ToolSelection::Explicit(vec![def]),
        }
        self
    }

    /// Uses this provider instead of the one the configuration names (turns auth on).
    pub fn auth_provider(mut self, provider: Arc<dyn AuthProvider>) -> Self {
        self.provider = Some(provider);
        self
    }

    /// No MCP sessions and JSON responses (`TOOLGATE_STATELESS`).
    pub fn stateless(mut self, stateless: bool) -> Self {
        self.config.stateless = stateless;
        self
    }

    /// Lists every tool, with its permissions in `_meta` (`TOOLGATE_LIST_ALL_TOOLS`).
    pub fn list_all_tools(mut self, list_all: bool) -> Self {
        self.config.list_all_tools = list_all;
        self
    }

    /// The store behind the authorization server, instead of the one the configuration names
    /// (Redis with `REDIS_HOST`, otherwise in memory). It is always wrapped in Fernet encryption.
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Adds permissions to the catalog that no tool requires itself: a permission that only implies
    /// others (an administrator's, say) grants them only once the server knows it. Like the tools'
    /// permissions, they are listed by `declared_permissions` and in `scopes_supported`.
    pub fn permissions(mut self, permissions: &[Permission]) -> Self {
        self.permissions.extend_from_slice(permissions);
        self
    }

    /// How many client registrations one address may make per minute (default 20).
    pub fn registrations_per_minute(mut self, limit: u32) -> Self {
        self.registrations_per_minute = limit;
        self
    }

    /// The largest request body accepted, in bytes.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Checks the tools and builds the server.
    pub fn build(self) -> Result<Server, Error> {
        let registry = match self.tools {
            ToolSelection::Linked => Registry::from_linked()?,
            ToolSelection::Explicit(defs) => Registry::new(defs)?,
        }
        .with_permissions(&self.permissions)?;
        let base = self.config.base_url();
        let mut scopes: Vec<String> = OPENID_SCOPES.map(String::from).to_vec();
        scopes.extend(
            registry
                .declared_permissions()
                .into_iter()
                .map(String::from),
        );
        let keys = self
            .config
            .jwt_signing_key
            .as_ref()
            .map(DerivedKeys::derive);
        let state_sealer = keys.as_ref().map_or_else(StateSealer::random, |keys| {
            StateSealer::from_key(keys.request_state)
        });
        let mut oauth = None;
        let provider = match (self.provider, &self.config.auth) {
            (Some(provider), _) => Some(provider),
            (None, Some(auth)) if self.config.authorization_server_enabled() => {
                let ProviderConfig::Auth0(settings) = &auth.provider;
                let server = build_authorization_server(
                    &self.config,
                    keys.expect("the authorization server runs only with JWT_SIGNING_KEY"),
                    Auth0Provider::new(settings.clone())?,
                    self.store,
                    &scopes,
                    self.registrations_per_minute,
                )?;
                let server = Arc::new(server);
                oauth = Some(server.clone());
                Some(Arc::new(ProxyProvider { oauth: server }) as Arc<dyn AuthProvider>)
            }
            (None, Some(auth)) => Some(get_auth_provider(auth)?),
            (None, None) => None,
        };
        let challenge = Challenge::new(
            format!("{base}/.well-known/oauth-protected-resource/mcp"),
            scopes.join(" "),
        );
        let allowed_hosts = gate::allowed_hosts(&self.config.resource_base_url);
        let trusted_proxies = crate::net::TrustedProxies::new(&self.config.trusted_proxies);
        Ok(Server {
            shared: Arc::new(Shared {
                config: self.config,
                registry,
                provider,
                challenge,
                allowed_hosts,
                body_limit: self.body_limit,
                scopes,
                state_sealer,
                oauth,
                sessions: sessions::SessionOwners::new(),
                shutdown: tokio_util::sync::CancellationToken::new(),
                trusted_proxies,
            }),
        })
    }
}

/// The authorization server of a configuration with `JWT_SIGNING_KEY`: its keys, its encrypted
/// store (Redis with `REDIS_HOST`, else memory), and Auth0 behind it.
fn build_authorization_server(
    config: &Config,
    keys: DerivedKeys,
    upstream: Auth0Provider,
    store: Option<Arc<dyn Store>>,
    scopes: &[String],
    registrations_per_minute: u32,
) -> Result<OAuth, Error> {
    let in_memory = store.is_none() && config.redis.is_none();
    let store: Arc<dyn Store> = match (store, &config.redis) {
        (Some(store), _) => store,
        (None, Some(redis)) => Arc::new(RedisStore::new(redis).map_err(|e| {
            Error::Config(crate::ConfigError {
                problems: vec![(redis.variable().into(), e.to_string())],
            })
        })?),
        (None, None) => Arc::new(MemoryStore::new()),
    };
    // A memory store dies with the process, so a key made now protects it as well as a configured one.
    let encryption_keys = match &config.storage_encryption_key {
        Some(keys) => keys.secret().to_owned(),
        None if in_memory => EncryptedStore::generate_key(),
        None => {
            return Err(Error::Config(crate::ConfigError {
                problems: vec![(
                    "STORAGE_ENCRYPTION_KEY".into(),
                    "missing; a shared store needs a Fernet key".into(),
                )],
            }));
        }
    };
    let store = EncryptedStore::new(store, &encryption_keys, &keys.storage_names).map_err(|e| {
        Error::Config(crate::ConfigError {
            problems: vec![("STORAGE_ENCRYPTION_KEY".into(), e.to_string())],
        })
    })?;
    if in_memory {
        tracing::warn!(
            "the authorization server keeps its records in memory: one process only, and a restart signs everyone out (set REDIS_HOST to share them)"
        );
    }
    let base = config.base_url();
    let settings = oauth::Settings {
        issuer: base.clone(),
        resource: config.resource_uri(),
        callback_url: format!("{base}/auth/callback"),
        scopes_supported: scopes
            .iter()
            .cloned()
            .chain(std::iter::once(oauth::OFFLINE_ACCESS.to_owned()))
            .collect(),
        dev_mode: config.dev_mode,
        plain_http: config.resource_base_url.scheme() == "http",
        registrations_per_minute,
        refresh_reuse_interval: config.refresh_reuse_interval,
    };
    Ok(OAuth::new(settings, upstream, store, keys))
}
