//! The MCP server: an axum router with the authentication gate in front of rmcp's streamable HTTP
//! service.

mod gate;
mod handler;
mod metadata;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;

use crate::Error;
use crate::auth::{Auth0Provider, AuthProvider, Challenge, get_auth_provider};
use crate::config::{Config, ProviderConfig};
use crate::oauth::{self, OAuth, ProxyProvider};
use crate::permission::Permission;
use crate::storage::{EncryptedStore, MemoryStore, RedisStore, Store};
use crate::tool::{Registry, Tool, ToolDef};

/// Sends each write at once. A streamed (SSE) reply goes out in several writes, and with Nagle's
/// algorithm on, the last one waits for the client's delayed ACK: about 40 ms per session-mode call
/// on a kept-alive connection.
fn no_delay(stream: &mut tokio::net::TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "could not set TCP_NODELAY on an accepted connection");
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
    /// The authorization server, when the server runs one (`JWT_SIGNING_KEY` set).
    pub(crate) oauth: Option<Arc<OAuth>>,
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
            .with_max_request_body_bytes(shared.body_limit);
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
        router
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

    /// The address `serve` binds.
    pub fn default_listen_addr(&self) -> SocketAddr {
        let url = &self.shared.config.resource_base_url;
        let port = url.port_or_known_default().unwrap_or(8000);
        let ip = if gate::is_loopback_url(url) {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        SocketAddr::new(ip, port)
    }

    /// Serves on a listener you opened, until Ctrl-C.
    pub async fn serve_on(self, listener: TcpListener) -> Result<(), Error> {
        self.warm_up().await;
        let local = listener.local_addr().map_err(Error::Serve)?;
        tracing::info!(addr = %local, resource = %self.shared.config.resource_uri(), tools = self.shared.registry.len(), "toolgate is serving");
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener.tap_io(no_delay), app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .map_err(Error::Serve)
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
        let mut scopes: Vec<String> = ["openid", "profile", "email"].map(String::from).to_vec();
        scopes.extend(
            registry
                .declared_permissions()
                .into_iter()
                .map(String::from),
        );
        if let Some(key) = &self.config.jwt_signing_key {
            crate::tool::input::share_state_key(oauth::Keys::request_state_key(key.secret()));
        }
        let mut oauth = None;
        let provider = match (self.provider, &self.config.auth) {
            (Some(provider), _) => Some(provider),
            (None, Some(auth)) if self.config.authorization_server_enabled() => {
                let ProviderConfig::Auth0(settings) = &auth.provider;
                let server = build_authorization_server(
                    &self.config,
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
        Ok(Server {
            shared: Arc::new(Shared {
                config: self.config,
                registry,
                provider,
                challenge,
                allowed_hosts,
                body_limit: self.body_limit,
                oauth,
            }),
        })
    }
}

/// The authorization server of a configuration with `JWT_SIGNING_KEY`: its keys, its encrypted
/// store (Redis with `REDIS_HOST`, else memory), and Auth0 behind it.
fn build_authorization_server(
    config: &Config,
    upstream: Auth0Provider,
    store: Option<Arc<dyn Store>>,
    scopes: &[String],
    registrations_per_minute: u32,
) -> Result<OAuth, Error> {
    let signing_key = config
        .jwt_signing_key
        .as_ref()
        .expect("the authorization server runs only with JWT_SIGNING_KEY");
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
    let naming_secret = oauth::Keys::storage_naming_secret(signing_key.secret());
    let store = EncryptedStore::new(store, &encryption_keys, &naming_secret).map_err(|e| {
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
            .chain(std::iter::once("offline_access".to_owned()))
            .collect(),
        dev_mode: config.dev_mode,
        plain_http: config.resource_base_url.scheme() == "http",
        registrations_per_minute,
    };
    Ok(OAuth::new(
        settings,
        upstream,
        store,
        oauth::Keys::derive(signing_key.secret()),
    ))
}
