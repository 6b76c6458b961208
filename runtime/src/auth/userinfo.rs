use std::sync::Arc;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AccessToken;
use crate::net::{OutboundHttp, send};
use crate::time::unix_now;

/// How long a profile is reused at most, whatever the token's lifetime.
const PROFILE_TTL: Duration = Duration::from_secs(600);

/// The caller's profile, as the identity provider's `/userinfo` returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UserInfo {
    /// Subject: the same as the token's `sub`.
    pub sub: String,
    /// Full name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Nickname.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Whether the e-mail address was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// Picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// When the profile last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Every other field.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Why `AccessToken::user_info` has no profile. In a tool, `?` turns it into a failed tool result
/// whose `_meta` names it (`toolgate/error`: `userinfo_unauthorized`, ...).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserInfoError {
    /// The token's issuer has no `/userinfo` endpoint.
    #[error("this token's issuer has no userinfo endpoint")]
    NoEndpoint,
    /// The endpoint could not be reached.
    #[error("the identity provider's userinfo endpoint could not be reached")]
    Unreachable,
    /// The identity provider refused the token (401 or 403).
    #[error(
        "the identity provider refused this token at userinfo (HTTP {status}); sign in again with the `openid` scope"
    )]
    Unauthorized {
        /// The status it answered.
        status: http::StatusCode,
    },
    /// The identity provider is rate-limiting (429).
    #[error("the identity provider is rate-limiting userinfo requests; try again later")]
    RateLimited {
        /// Its `Retry-After`, in seconds, when it sent one.
        retry_after_seconds: Option<u64>,
    },
    /// The endpoint failed with another status.
    #[error("the identity provider's userinfo endpoint failed (HTTP {status})")]
    Failed {
        /// The status it answered.
        status: http::StatusCode,
    },
    /// The answer was not a profile.
    #[error("the identity provider's userinfo response was not a profile")]
    NotAProfile,
    /// The profile belongs to another subject than the token's.
    #[error(
        "the identity provider returned a profile for a different user than the token's subject"
    )]
    SubjectMismatch,
}

impl UserInfoError {
    /// A stable machine-readable name, sent in a failed tool result's `_meta`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized { .. } => "userinfo_unauthorized",
            Self::RateLimited { .. } => "userinfo_rate_limited",
            Self::SubjectMismatch => "userinfo_subject_mismatch",
            Self::NoEndpoint | Self::Unreachable | Self::Failed { .. } | Self::NotAProfile => {
                "userinfo_unavailable"
            }
        }
    }
}

#[derive(Clone)]
struct CachedProfile {
    info: Arc<UserInfo>,
    expires: Instant,
}

struct ExpireWithToken;

impl moka::Expiry<String, CachedProfile> for ExpireWithToken {
    fn expire_after_create(
        &self,
        _key: &String,
        value: &CachedProfile,
        now: Instant,
    ) -> Option<Duration> {
        Some(value.expires.saturating_duration_since(now))
    }
}

/// Calls `/userinfo` on behalf of tools, coalescing and caching per token.
pub(crate) struct UserInfoClient {
    http: OutboundHttp,
    endpoint: String,
    cache: moka::future::Cache<String, CachedProfile>,
}

impl UserInfoClient {
    pub(crate) fn new(http: OutboundHttp, endpoint: String) -> Self {
        let cache = moka::future::Cache::builder()
            .max_capacity(50_000)
            .expire_after(ExpireWithToken)
            .build();
        Self {
            http,
            endpoint,
            cache,
        }
    }

    pub(crate) async fn fetch(&self, token: &AccessToken) -> Result<UserInfo, UserInfoError> {
        let key = token.token().secret().to_owned();
        self.cache
            .try_get_with(key, self.request(token))
            .await
            .map(|cached| (*cached.info).clone())
            .map_err(|error| (*error).clone())
    }

    async fn request(&self, token: &AccessToken) -> Result<CachedProfile, UserInfoError> {
        let response = send(
            self.http
                .get(&self.endpoint)
                .bearer_auth(token.token().secret())
                .header(http::header::ACCEPT, "application/json"),
        )
        .await
        .map_err(|error| {
            tracing::warn!(%error, "userinfo request failed");
            UserInfoError::Unreachable
        })?;
        let status = response.status();
        match status.as_u16() {
            200 => {}
            401 | 403 => return Err(UserInfoError::Unauthorized { status }),
            429 => {
                let retry_after_seconds = response
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                return Err(UserInfoError::RateLimited {
                    retry_after_seconds,
                });
            }
            _ => return Err(UserInfoError::Failed { status }),
        }
        let info: UserInfo = response.json().await.map_err(|error| {
            tracing::warn!(%error, "userinfo returned a body that is not a profile");
            UserInfoError::NotAProfile
        })?;
        if info.sub != token.claims().sub {
            tracing::warn!("userinfo returned a profile for another subject; refusing it");
            return Err(UserInfoError::SubjectMismatch);
        }
        let now = Instant::now();
        let token_left = u64::try_from(token.claims().exp - unix_now()).unwrap_or(0);
        let expires = now + PROFILE_TTL.min(Duration::from_secs(token_left));
        Ok(CachedProfile {
            info: Arc::new(info),
            expires,
        })
    }
}
