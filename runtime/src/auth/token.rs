use std::fmt;
use std::sync::{Arc, LazyLock};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::userinfo::{UserInfo, UserInfoClient, UserInfoError};
use crate::config::SecretString;
use crate::permission::{MissingPermissions, PermissionPolicy};

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
pub struct AccessToken {
    inner: Arc<TokenInner>,
    /// The permission policy of the server that received the token; exact matching without one.
    policy: Option<Arc<PermissionPolicy>>,
}

/// The policy of a token no server has seen: it knows no implications.
static EXACT: LazyLock<PermissionPolicy> = LazyLock::new(PermissionPolicy::exact);

impl AccessToken {
    pub(crate) fn new(raw: String, claims: Claims, userinfo: Option<Arc<UserInfoClient>>) -> Self {
        Self {
            inner: Arc::new(TokenInner {
                raw: SecretString::new(raw),
                claims,
                userinfo,
            }),
            policy: None,
        }
    }

    /// The same token, judged by a server's permission policy (its catalog's implications).
    pub(crate) fn with_policy(mut self, policy: Arc<PermissionPolicy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Whether the token satisfies `required`, by the policy of the server that received it.
    pub(crate) fn check_permissions<R: AsRef<str>>(
        &self,
        required: &[R],
    ) -> Result<(), MissingPermissions> {
        self.policy
            .as_deref()
            .unwrap_or(&EXACT)
            .check(self.permissions(), required)
    }

    /// The raw token, as the caller sent it.
    pub fn token(&self) -> &SecretString {
        &self.inner.raw
    }

    /// The verified claims.
    pub fn claims(&self) -> &Claims {
        &self.inner.claims
    }

    /// The `scope` claim, split on spaces.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.inner
            .claims
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
    }

    /// The `permissions` claim.
    pub fn permissions(&self) -> &[String] {
        &self.inner.claims.permissions
    }

    /// True when the token holds every one of `required` (scopes or [`Permission`]s), each in its
    /// `permissions` claim (exact, case-sensitive) or implied by one there.
    ///
    /// [`Permission`]: crate::Permission
    pub fn has_permissions<R: AsRef<str>>(&self, required: &[R]) -> bool {
        self.check_permissions(required).is_ok()
    }

    /// The caller's profile from the identity provider's `/userinfo`, called with this token. Cached
    /// per token (until it expires, at most 10 minutes); concurrent calls share one request. In a
    /// tool, `?` turns the error into a `ToolError` that keeps its kind.
    pub async fn user_info(&self) -> Result<UserInfo, UserInfoError> {
        let Some(client) = &self.inner.userinfo else {
            return Err(UserInfoError::NoEndpoint);
        };
        client.fetch(self).await
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &self.inner.raw)
            .field("sub", &self.inner.claims.sub)
            .field("iss", &self.inner.claims.iss)
            .field("permissions", &self.inner.claims.permissions)
            .finish_non_exhaustive()
    }
}

/// The check behind `permissions = [...]`, for hand-written code: the token must hold every listed
/// permission (scopes or [`Permission`]s) in its `permissions` claim, or one that implies it. A
/// permission that appears only in `scope` does not count. In a tool, `?` turns the error into a
/// permission-denied `ToolError`.
///
/// [`Permission`]: crate::Permission
pub fn require_permissions<R: AsRef<str>>(
    token: &AccessToken,
    required: &[R],
) -> Result<(), MissingPermissions> {
    token.check_permissions(required)
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
