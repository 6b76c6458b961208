use std::fmt;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::userinfo::{UserInfo, UserInfoClient};
use crate::tool::{ToolError, ToolErrorKind};

/// A secret string: `Debug` and `Display` never show it; `.secret()` is the one way in.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Keep it out of logs.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([redacted])")
    }
}

/// `aud`: one audience or several.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience string.
    One(String),
    /// An array of audiences (Auth0 adds its `/userinfo` URL when `openid` was requested).
    Many(Vec<String>),
}

impl Audience {
    /// Every audience.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let slice: &[String] = match self {
            Self::One(one) => std::slice::from_ref(one),
            Self::Many(many) => many,
        };
        slice.iter().map(String::as_str)
    }

    /// True when `audience` is one of them.
    pub fn contains(&self, audience: &str) -> bool {
        self.iter().any(|a| a == audience)
    }
}

/// The claims of a verified access token. Registered claims are typed; the rest are kept in `extra`.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: the user, or `CLIENT_ID@clients` for machine-to-machine tokens.
    pub sub: String,
    /// Audience.
    pub aud: Audience,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Granted scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Auth0 RBAC permissions.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Authorized party: the client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    /// Every other claim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

pub(crate) struct TokenInner {
    pub(crate) raw: SecretString,
    pub(crate) claims: Claims,
    pub(crate) userinfo: Option<Arc<UserInfoClient>>,
}

/// The caller's verified access token. Take it as a tool argument (it is injected, not part of the
/// schema) or as an axum extractor behind toolgate's router. Cloning is cheap.
#[derive(Clone)]
pub struct AccessToken(pub(crate) Arc<TokenInner>);

impl AccessToken {
    pub(crate) fn new(raw: String, claims: Claims, userinfo: Option<Arc<UserInfoClient>>) -> Self {
        Self(Arc::new(TokenInner {
            raw: SecretString(raw),
            claims,
            userinfo,
        }))
    }

    /// The raw token, as the caller sent it.
    pub fn token(&self) -> &SecretString {
        &self.0.raw
    }

    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.0.claims
    }

    /// The `scope` claim, split on spaces.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.0
            .claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// The `permissions` claim.
    pub fn permissions(&self) -> &[String] {
        &self.0.claims.permissions
    }

    /// True when every one of `required` is in the `permissions` claim (exact, case-sensitive match).
    pub fn has_permissions(&self, required: &[&str]) -> bool {
        required
            .iter()
            .all(|r| self.0.claims.permissions.iter().any(|p| p == r))
    }

    /// The caller's profile from the identity provider's `/userinfo`, called with this token. Cached
    /// per token (until it expires, at most 10 minutes); concurrent calls share one request.
    pub async fn user_info(&self) -> Result<UserInfo, ToolError> {
        let Some(client) = &self.0.userinfo else {
            return Err(ToolError::with_kind(
                ToolErrorKind::UserInfoUnavailable,
                "this token's issuer has no userinfo endpoint",
            ));
        };
        client.fetch(self).await
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.0.raw)
            .field("sub", &self.0.claims.sub)
            .field("iss", &self.0.claims.iss)
            .field("permissions", &self.0.claims.permissions)
            .finish_non_exhaustive()
    }
}

/// The check behind `permissions = [...]`, for hand-written code: every listed permission must be in
/// the token's `permissions` claim. A permission that appears only in `scope` does not count.
pub fn require_permissions(token: &AccessToken, required: &[&str]) -> Result<(), ToolError> {
    let missing: Vec<&str> = required
        .iter()
        .copied()
        .filter(|r| !token.0.claims.permissions.iter().any(|p| p == r))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(ToolError::with_kind(
        ToolErrorKind::PermissionDenied,
        format!("permission denied: missing {}", missing.join(", ")),
    )
    .with_data(serde_json::json!({ "missing_permissions": missing })))
}

/// Why an axum handler could not get an `AccessToken`.
#[derive(Debug)]
pub struct AccessTokenRejection;

impl IntoResponse for AccessTokenRejection {
    fn into_response(self) -> Response {
        (
            StatusCode::UNAUTHORIZED,
            "no verified access token on this request: serve the route through toolgate's router \
             (Server::router) so its authentication layer runs first",
        )
            .into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AccessToken {
    type Rejection = AccessTokenRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AccessToken>()
            .cloned()
            .ok_or(AccessTokenRejection)
    }
}
