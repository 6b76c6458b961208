//! The OAuth 2.1 authorization server that fronts Auth0, as MCP clients expect: metadata (RFC 8414),
//! dynamic registration (RFC 7591) and client metadata documents, authorize with PKCE and a consent
//! page, the Auth0 callback, token, revocation (RFC 7009); and the tokens it issues, whose `jti` leads
//! to the Auth0 grant kept encrypted in the store.
//!
//! One authorization is one *grant*: the upstream Auth0 tokens plus our client, scope and resource.
//! Every code, refresh token and access token we issue points at its grant; revoking the family
//! deletes the grant, and everything pointing at it stops working at once.

mod authorize;
mod callback;
mod clients;
mod crypto;
mod grants;
mod metadata;
mod responses;
mod token;
mod upstream;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use crate::auth::{AccessToken, Auth0Provider, OPENID_SCOPES};
use crate::keys::DerivedKeys;
use crate::storage::EncryptedStore;

pub(crate) use grants::ProxyProvider;

/// How long a consent transaction (the page and its cookie) lasts.
const CONSENT_TTL: Duration = Duration::from_secs(600);
/// How long the upstream `state` of a login in progress at Auth0 lasts.
const UPSTREAM_STATE_TTL: Duration = Duration::from_secs(600);
/// How long one of our authorization codes lasts.
const CODE_TTL: Duration = Duration::from_secs(300);
/// The longest lifetime of one of our access tokens.
const ACCESS_TOKEN_MAX_TTL: Duration = Duration::from_secs(3600);
/// How long a grant and its refresh tokens live without use.
const GRANT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long a registration lives.
const CLIENT_TTL: Duration = Duration::from_secs(365 * 24 * 3600);
/// The scope that gets a refresh token from Auth0: every sign-in asks for it, and clients may too.
pub(crate) const OFFLINE_ACCESS: &str = "offline_access";

/// True for the scopes every sign-in asks Auth0 for, which are no tool's permission.
fn is_base_scope(scope: &str) -> bool {
    OPENID_SCOPES.contains(&scope) || scope == OFFLINE_ACCESS
}
/// Registrations accepted per client address per minute, by default.
pub(crate) const DEFAULT_REGISTRATIONS_PER_MINUTE: u32 = 20;

/// What the authorization server needs from the configuration.
pub(crate) struct Settings {
    /// Our issuer: `RESOURCE_BASE_URL` without a trailing slash.
    pub(crate) issuer: String,
    /// Our resource URI: the base URL plus `/mcp`.
    pub(crate) resource: String,
    /// Where Auth0 sends the browser back: the base URL plus `/auth/callback`.
    pub(crate) callback_url: String,
    /// The scopes a client may ask for: OpenID's plus every permission a tool declares.
    pub(crate) scopes_supported: Vec<String>,
    /// Loopback conveniences (see `Config::dev_mode`).
    pub(crate) dev_mode: bool,
    /// True when the base URL is plain http (on loopback): cookies cannot be `Secure` there.
    pub(crate) plain_http: bool,
    /// Registrations per client address per minute.
    pub(crate) registrations_per_minute: u32,
    /// How long a rotated refresh token stays usable by its client (`TOOLGATE_REFRESH_REUSE_INTERVAL`).
    pub(crate) refresh_reuse_interval: std::time::Duration,
}

/// The authorization server's state, shared by its handlers and by the token verifier.
pub(crate) struct OAuth {
    pub(crate) settings: Settings,
    pub(crate) upstream: Auth0Provider,
    pub(crate) store: EncryptedStore,
    /// The server's keys (it derived them from `JWT_SIGNING_KEY` and hands them over).
    pub(crate) keys: DerivedKeys,
    /// Registrations per client address.
    pub(crate) registrations: clients::RegistrationLimit,
    /// Client metadata documents already fetched.
    pub(crate) documents: moka::future::Cache<String, Arc<clients::Client>>,
    /// Our access tokens already verified: raw token → claims. Saves the HMAC and JSON work.
    pub(crate) verified: moka::sync::Cache<String, Arc<grants::OurClaims>>,
    /// `jti` → the upstream token the tool receives. Bounded so a revocation on another instance
    /// takes effect within `RESOLVED_TTL`.
    pub(crate) resolved: moka::future::Cache<String, AccessToken>,
}

impl OAuth {
    pub(crate) fn new(
        settings: Settings,
        upstream: Auth0Provider,
        store: EncryptedStore,
        keys: DerivedKeys,
    ) -> Self {
        Self {
            upstream,
            store,
            keys,
            registrations: clients::RegistrationLimit::new(settings.registrations_per_minute),
            settings,
            documents: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(clients::DOCUMENT_CACHE_TTL)
                .build(),
            verified: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .expire_after(grants::ExpireAtExp)
                .build(),
            resolved: moka::future::Cache::builder()
                .max_capacity(100_000)
                .expire_after(grants::ExpireResolved)
                .build(),
        }
    }

    /// Forgets every resolved token, after a revocation on this instance.
    pub(crate) fn forget_resolved(&self) {
        self.resolved.invalidate_all();
    }
}

/// Form or query parameters, refusing repeats (RFC 6749 §3.1: a parameter must not appear twice).
pub(crate) fn parse_params(
    raw: &[u8],
) -> Result<std::collections::HashMap<String, String>, String> {
    let mut params = std::collections::HashMap::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if params
            .insert(name.to_string(), value.into_owned())
            .is_some()
        {
            return Err(format!("the parameter `{name}` is repeated"));
        }
    }
    Ok(params)
}

/// The query of a browser request; a malformed one is answered with a 400 page, never a redirect.
pub(crate) fn query_params(
    query: Option<&str>,
) -> Result<std::collections::HashMap<String, String>, Box<axum::response::Response>> {
    parse_params(query.unwrap_or("").as_bytes()).map_err(|problem| {
        Box::new(responses::error_page(
            http::StatusCode::BAD_REQUEST,
            "invalid_request",
            &problem,
        ))
    })
}

/// The authorization server's routes.
pub(crate) fn routes(oauth: Arc<OAuth>) -> Router {
    // What browser-based clients call with fetch from their own origin. No cookie or ambient
    // credential is involved (clients authenticate explicitly), so any origin may read the answers.
    let api = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/oauth-authorization-server/mcp",
            get(metadata::authorization_server),
        )
        .route("/register", post(clients::register))
        .route("/token", post(token::token))
        .route("/revoke", post(token::revoke))
        .layer(cors());
    // What the browser navigates to: no CORS, so no other origin can read these pages.
    let pages = Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/authorize/consent", post(authorize::consent))
        .route("/auth/callback", get(callback::callback));
    api.merge(pages).with_state(oauth)
}

/// CORS for endpoints a browser-based MCP client reads from another origin.
pub(crate) fn cors() -> tower_http::cors::CorsLayer {
    use http::{Method, header};
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            http::HeaderName::from_static("mcp-protocol-version"),
        ])
        .expose_headers([header::WWW_AUTHENTICATE])
        .max_age(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_bytes_parse_or_are_refused_without_panicking(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = super::parse_params(&raw);
            let _ = super::query_params(std::str::from_utf8(&raw).ok());
        }

        #[test]
        fn distinct_parameters_come_back_as_sent(params in proptest::collection::hash_map(".{0,20}", ".{0,40}", 0..8)) {
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish();
            let parsed = super::parse_params(encoded.as_bytes()).unwrap();
            prop_assert_eq!(parsed, params);
        }

        #[test]
        fn a_repeated_parameter_is_refused_wherever_it_is(
            params in proptest::collection::hash_map("[a-z]{1,8}", ".{0,20}", 1..6),
            pick in any::<prop::sample::Index>(),
            again in ".{0,20}",
        ) {
            let names: Vec<&String> = params.keys().collect();
            let repeated = names[pick.index(names.len())].clone();
            let mut pairs: Vec<(String, String)> = params.clone().into_iter().collect();
            pairs.push((repeated.clone(), again));
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let error = super::parse_params(encoded.as_bytes()).unwrap_err();
            prop_assert!(error.contains(&format!("`{repeated}`")), "{}", error);
        }
    }

    #[test]
    fn an_empty_map_is_an_empty_form() {
        assert_eq!(super::parse_params(b"").unwrap(), HashMap::new());
    }

    #[test]
    fn repeated_parameters_are_refused() {
        assert_eq!(super::parse_params(b"a=1&b=%20").unwrap()["b"], " ");
        assert!(super::parse_params(b"a=1&a=2").is_err());
        assert!(super::parse_params(b"").unwrap().is_empty());
    }
}
