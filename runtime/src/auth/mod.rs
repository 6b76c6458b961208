//! Authentication: verifying bearer tokens, the `AccessToken` tools receive, and the challenges sent
//! when a token is missing or short of a permission.

mod auth0;
mod challenge;
mod jwks;
mod token;
mod userinfo;

pub use auth0::Auth0Provider;
pub use challenge::Challenge;
pub use token::{AccessToken, AccessTokenRejection, Audience, Claims, require_permissions};
pub use userinfo::{UserInfo, UserInfoError};

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::config::{AuthConfig, ProviderConfig};

/// The OpenID scopes a client may always ask for and every sign-in asks the identity provider for,
/// besides the tools' permissions.
pub(crate) const OPENID_SCOPES: [&str; 3] = ["openid", "profile", "email"];

/// Why a bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token is malformed, forged, expired, or not meant for this server. The reason is for logs;
    /// clients get only `invalid_token`.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The identity provider could not be reached to check the token: fail closed with 503.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
}

/// Something that turns a bearer token into a verified `AccessToken`.
pub trait AuthProvider: Send + Sync + 'static {
    /// The provider's name, as `AUTH_PROVIDER` spells it.
    fn name(&self) -> &'static str;
    /// Verifies a raw bearer token.
    fn verify<'a>(&'a self, raw: &'a str) -> BoxFuture<'a, Result<AccessToken, AuthError>>;
    /// Authorization servers to advertise in the protected-resource metadata.
    fn authorization_servers(&self) -> BoxFuture<'_, Result<Vec<String>, AuthError>>;
    /// Makes sure the provider is reachable, so start-up can report problems early.
    fn warm_up(&self) -> BoxFuture<'_, Result<(), AuthError>>;
}

/// Builds the provider a configuration names, like the seed's `get_auth_provider("auth0")`.
pub fn get_auth_provider(config: &AuthConfig) -> Result<Arc<dyn AuthProvider>, crate::Error> {
    match &config.provider {
        ProviderConfig::Auth0(settings) => Ok(Arc::new(Auth0Provider::new(settings.clone())?)),
    }
}
