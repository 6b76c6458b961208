//! Grants and the tokens that lead to them: issuing our access and refresh tokens, verifying our
//! access tokens on each MCP request, keeping the upstream Auth0 token fresh, and revoking families.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};

use super::upstream::{self, UpstreamError};
use super::{ACCESS_TOKEN_MAX_TTL, GRANT_TTL, OAuth, crypto};
use crate::auth::{AccessToken, AuthError, AuthProvider};
use crate::storage::StoreError;
use crate::time::unix_now;

/// Store kinds. Each names what its id is.
pub(crate) const GRANT: &str = "grant"; // grant id
const ACCESS: &str = "access"; // our access token's jti
const REFRESH: &str = "refresh"; // our refresh token
const REFRESH_USED: &str = "refresh-used"; // a rotated-away refresh token
const REFRESH_LOCK: &str = "grant-refresh-lock"; // grant id
/// Refresh the upstream token when less than this is left.
const UPSTREAM_REFRESH_MARGIN: i64 = 60;
/// How long a resolved `jti` is reused before the store is asked again.
const RESOLVED_TTL: Duration = Duration::from_secs(30);
/// How long one instance may hold the refresh lock of a grant.
const REFRESH_LOCK_TTL: Duration = Duration::from_secs(15);
/// Longest accepted bearer token; ours are about 500 bytes, Auth0's about 1 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// One authorization: whose, for which client, and the Auth0 tokens behind it. Kept encrypted.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Grant {
    pub(crate) client_id: String,
    pub(crate) scope: String,
    pub(crate) sub: String,
    pub(crate) upstream: UpstreamTokens,
}

/// Auth0's tokens for one grant.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct UpstreamTokens {
    pub(crate) access_token: String,
    pub(crate) refresh_token: Option<String>,
    /// Unix seconds.
    pub(crate) expires_at: i64,
}

#[derive(Serialize, Deserialize)]
struct AccessRecord {
    grant_id: String,
}

#[derive(Serialize, Deserialize)]
struct RefreshRecord {
    grant_id: String,
    client_id: String,
}

#[derive(Serialize, Deserialize)]
struct UsedRecord {
    grant_id: String,
}

/// The claims of our own access tokens.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OurClaims {
    pub(crate) iss: String,
    pub(crate) sub: String,
    pub(crate) aud: String,
    pub(crate) exp: i64,
    pub(crate) iat: i64,
    pub(crate) jti: String,
    pub(crate) client_id: String,
    pub(crate) scope: String,
}

/// What `/token` answers.
pub(crate) struct IssuedTokens {
    pub(crate) access_token: String,
    pub(crate) expires_in: i64,
    /// `None` when Auth0 gave the grant no refresh token: ours could not outlive its access token.
    pub(crate) refresh_token: Option<String>,
    pub(crate) scope: String,
}

impl IssuedTokens {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut body = serde_json::json!({
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        });
        if let Some(refresh_token) = &self.refresh_token {
            body["refresh_token"] = serde_json::json!(refresh_token);
        }
        body
    }
}

/// Why a refresh token was not accepted.
pub(crate) enum RefreshError {
    /// Unknown, expired, revoked, reused or another client's: `invalid_grant`.
    Invalid(&'static str),
    /// The store or Auth0 is down: 503.
    Unavailable(String),
}

impl From<StoreError> for RefreshError {
    fn from(error: StoreError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

pub(crate) struct ExpireAtExp;

impl moka::Expiry<String, Arc<OurClaims>> for ExpireAtExp {
    fn expire_after_create(
        &self,
        _key: &String,
        claims: &Arc<OurClaims>,
        _now: Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(
            u64::try_from(claims.exp - unix_now()).unwrap_or(0),
        ))
    }
}

pub(crate) struct ExpireResolved;

impl moka::Expiry<String, AccessToken> for ExpireResolved {
    fn expire_after_create(
        &self,
        _key: &String,
        token: &AccessToken,
        _now: Instant,
    ) -> Option<Duration> {
        // Gone before the upstream token needs refreshing, so the refresh happens on the way in.
        let left = token.claims().exp - unix_now() - UPSTREAM_REFRESH_MARGIN;
        Some(RESOLVED_TTL.min(Duration::from_secs(u64::try_from(left).unwrap_or(0))))
    }
}

impl OAuth {
    /// Issues an access token and a new refresh token for `grant`.
    pub(crate) async fn issue_tokens(
        &self,
        grant_id: &str,
        grant: &Grant,
    ) -> Result<IssuedTokens, StoreError> {
        let now = unix_now();
        // Never outlive the upstream token we hand to tools.
        let exp = (now + ACCESS_TOKEN_MAX_TTL.as_secs() as i64).min(grant.upstream.expires_at);
        let jti = crypto::random_token();
        let claims = OurClaims {
            iss: self.settings.issuer.clone(),
            sub: grant.sub.clone(),
            aud: self.settings.resource.clone(),
            exp,
            iat: now,
            jti: jti.clone(),
            client_id: grant.client_id.clone(),
            scope: grant.scope.clone(),
        };
        let access_token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.keys.access_encoding,
        )
        .map_err(|e| StoreError::Unavailable(format!("signing failed: {e}")))?;
        let lifetime = Duration::from_secs(u64::try_from(exp - now).unwrap_or(0).max(1));
        self.store
            .put(
                ACCESS,
                &jti,
                &AccessRecord {
                    grant_id: grant_id.to_owned(),
                },
                lifetime,
            )
            .await?;
        // Our access token never outlives Auth0's, so without Auth0's refresh token a refresh token
        // of ours could never be redeemed: the client signs in again instead.
        let refresh_token = match grant.upstream.refresh_token {
            None => None,
            Some(_) => {
                let refresh_token = crypto::random_token();
                self.store
                    .put(
                        REFRESH,
                        &refresh_token,
                        &RefreshRecord {
                            grant_id: grant_id.to_owned(),
                            client_id: grant.client_id.clone(),
                        },
                        GRANT_TTL,
                    )
                    .await?;
                Some(refresh_token)
            }
        };
        Ok(IssuedTokens {
            access_token,
            expires_in: exp - now,
            refresh_token,
            scope: grant.scope.clone(),
        })
    }

    /// Stores a new grant and returns its id.
    pub(crate) async fn create_grant(&self, grant: &Grant) -> Result<String, StoreError> {
        let grant_id = crypto::random_token();
        self.store.put(GRANT, &grant_id, grant, GRANT_TTL).await?;
        Ok(grant_id)
    }

    /// A grant that is still live.
    pub(crate) async fn grant(&self, grant_id: &str) -> Result<Option<Grant>, StoreError> {
        self.store.get(GRANT, grant_id).await
    }

    /// Revokes a whole family: the grant goes, so every code, access token and refresh token that
    /// leads to it stops working. Auth0's refresh token is revoked too, where Auth0 allows.
    pub(crate) async fn revoke_grant(
        &self,
        grant_id: &str,
        reason: &str,
    ) -> Result<(), StoreError> {
        let grant = self.store.take::<Grant>(GRANT, grant_id).await?;
        self.forget_resolved();
        tracing::warn!(%reason, "revoked a token family");
        if let Some(refresh_token) = grant.and_then(|g| g.upstream.refresh_token) {
            upstream::revoke_refresh_token(&self.upstream, &refresh_token).await;
        }
        Ok(())
    }

    /// Marks `used` (a code or refresh token) as spent, pointing at its grant, so a replay can find
    /// the family to revoke.
    pub(crate) async fn remember_used(
        &self,
        kind: &str,
        used: &str,
        grant_id: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.store
            .put(
                kind,
                used,
                &UsedRecord {
                    grant_id: grant_id.to_owned(),
                },
                ttl,
            )
            .await
    }

    /// When `used` was spent before, revokes the family it led to and says so.
    pub(crate) async fn revoke_on_replay(
        &self,
        kind: &str,
        used: &str,
    ) -> Result<bool, StoreError> {
        match self.store.get::<UsedRecord>(kind, used).await? {
            Some(record) => {
                self.revoke_grant(
                    &record.grant_id,
                    "a spent code or refresh token was replayed",
                )
                .await?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Rotates a refresh token: the old one is spent (atomically: of two concurrent uses, one
    /// wins), reuse of a spent one revokes the family.
    pub(crate) async fn refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
    ) -> Result<IssuedTokens, RefreshError> {
        let Some(record) = self
            .store
            .take::<RefreshRecord>(REFRESH, refresh_token)
            .await?
        else {
            if self.revoke_on_replay(REFRESH_USED, refresh_token).await? {
                return Err(RefreshError::Invalid(
                    "this refresh token was already used; every token of its grant is now revoked",
                ));
            }
            return Err(RefreshError::Invalid("unknown or expired refresh token"));
        };
        self.remember_used(REFRESH_USED, refresh_token, &record.grant_id, GRANT_TTL)
            .await?;
        if record.client_id != client_id {
            // A refresh token in another client's hands was stolen: end the family.
            self.revoke_grant(
                &record.grant_id,
                "a refresh token was presented by another client",
            )
            .await?;
            return Err(RefreshError::Invalid(
                "this refresh token was issued to another client",
            ));
        }
        let Some(grant) = self.grant(&record.grant_id).await? else {
            return Err(RefreshError::Invalid("this grant was revoked"));
        };
        let grant = match self.fresh_upstream(&record.grant_id, grant).await {
            Ok(grant) => grant,
            Err(AuthError::Invalid(_)) => {
                return Err(RefreshError::Invalid(
                    "the identity provider no longer honours this sign-in; sign in again",
                ));
            }
            Err(AuthError::Unavailable(reason)) => return Err(RefreshError::Unavailable(reason)),
        };
        // Sliding lifetime: an active grant lives on.
        self.store
            .put(GRANT, &record.grant_id, &grant, GRANT_TTL)
            .await?;
        Ok(self.issue_tokens(&record.grant_id, &grant).await?)
    }

    /// Revokes one of our access tokens (by its jti), or returns false when `token` is not one we
    /// issued to `client_id`.
    pub(crate) async fn revoke_access_token(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        let Ok(claims) = self.decode_ours(token, false) else {
            return Ok(false);
        };
        if claims.client_id != client_id {
            return Ok(false);
        }
        self.store.delete(ACCESS, &claims.jti).await?;
        self.verified.invalidate(token);
        self.resolved.invalidate(&claims.jti).await;
        Ok(true)
    }

    /// Revokes the family of one of our refresh tokens, when `client_id` owns it. False when the
    /// token is not a live refresh token of that client.
    pub(crate) async fn revoke_refresh_token(
        &self,
        token: &str,
        client_id: &str,
    ) -> Result<bool, StoreError> {
        let Some(record) = self.store.get::<RefreshRecord>(REFRESH, token).await? else {
            return Ok(false);
        };
        if record.client_id != client_id {
            return Ok(false);
        }
        self.store.delete(REFRESH, token).await?;
        self.revoke_grant(&record.grant_id, "the client revoked its refresh token")
            .await?;
        Ok(true)
    }

    fn decode_ours(&self, raw: &str, check_exp: bool) -> Result<OurClaims, AuthError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = vec![Algorithm::HS256];
        validation.leeway = 5;
        validation.validate_exp = check_exp;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.resource]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<OurClaims>(raw, &self.keys.access_decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Invalid(format!("our token: {:?}", e.kind())))
    }

    /// Verifies one of our access tokens and returns the Auth0 token behind it, as tools see it.
    pub(crate) async fn verify_ours(&self, raw: &str) -> Result<AccessToken, AuthError> {
        let claims = match self.verified.get(raw) {
            Some(claims) if claims.exp > unix_now() => claims,
            _ => {
                let claims = Arc::new(self.decode_ours(raw, true)?);
                self.verified.insert(raw.to_owned(), claims.clone());
                claims
            }
        };
        let jti = claims.jti.clone();
        self.resolved
            .try_get_with(jti.clone(), self.resolve(jti))
            .await
            .map_err(|error: Arc<AuthError>| match &*error {
                AuthError::Invalid(reason) => AuthError::Invalid(reason.clone()),
                AuthError::Unavailable(reason) => AuthError::Unavailable(reason.clone()),
            })
    }

    async fn resolve(&self, jti: String) -> Result<AccessToken, AuthError> {
        let unavailable = |e: StoreError| AuthError::Unavailable(e.to_string());
        let access = self
            .store
            .get::<AccessRecord>(ACCESS, &jti)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AuthError::Invalid("this access token was revoked".into()))?;
        let grant = self
            .grant(&access.grant_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AuthError::Invalid("this token's grant was revoked".into()))?;
        let grant = self.fresh_upstream(&access.grant_id, grant).await?;
        self.upstream.verify(&grant.upstream.access_token).await
    }

    /// The grant with an upstream token that is not about to expire: refreshed at Auth0 when near
    /// expiry, by one instance at a time (a lock in the store); the others wait for its result.
    pub(crate) async fn fresh_upstream(
        &self,
        grant_id: &str,
        grant: Grant,
    ) -> Result<Grant, AuthError> {
        if grant.upstream.expires_at - unix_now() > UPSTREAM_REFRESH_MARGIN {
            return Ok(grant);
        }
        if grant.upstream.refresh_token.is_none() {
            if grant.upstream.expires_at > unix_now() {
                return Ok(grant);
            }
            return Err(AuthError::Invalid(
                "the upstream token expired and there is no refresh token".into(),
            ));
        }
        let unavailable = |e: StoreError| AuthError::Unavailable(e.to_string());
        // The token this request saw: a different one in the store means another request refreshed.
        let seen = grant.upstream.access_token;
        for _ in 0..50 {
            if let Some(lock) = self
                .store
                .try_lock(REFRESH_LOCK, grant_id, REFRESH_LOCK_TTL)
                .await
                .map_err(unavailable)?
            {
                let result = self.refresh_upstream_locked(grant_id, &seen).await;
                if let Err(error) = self.store.unlock(lock).await {
                    tracing::warn!(%error, "could not release a refresh lock; it expires by itself");
                }
                return result;
            }
            // Another request or instance is refreshing this grant: wait for its result.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let current = self
                .grant(grant_id)
                .await
                .map_err(unavailable)?
                .ok_or_else(|| AuthError::Invalid("this token's grant was revoked".into()))?;
            if current.upstream.access_token != seen {
                return Ok(current);
            }
        }
        Err(AuthError::Unavailable(
            "another instance holds the refresh lock for too long".into(),
        ))
    }

    async fn refresh_upstream_locked(
        &self,
        grant_id: &str,
        seen: &str,
    ) -> Result<Grant, AuthError> {
        let unavailable = |e: StoreError| AuthError::Unavailable(e.to_string());
        // Read again under the lock: the grant may have been refreshed (and its refresh token
        // rotated) since this request loaded it. Refreshing with a rotated-away token would look
        // like theft to Auth0.
        let mut grant = self
            .grant(grant_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AuthError::Invalid("this token's grant was revoked".into()))?;
        if grant.upstream.access_token != seen {
            return Ok(grant);
        }
        let Some(refresh_token) = grant.upstream.refresh_token.clone() else {
            return Err(AuthError::Invalid("this grant has no refresh token".into()));
        };
        let refreshed = match upstream::refresh(&self.upstream, &refresh_token).await {
            Ok(tokens) => tokens,
            Err(UpstreamError::Rejected(reason)) => {
                // Auth0 ended this sign-in (revoked, expired, or reuse detected): so do we.
                self.revoke_grant(grant_id, "Auth0 refused to refresh the grant")
                    .await
                    .map_err(unavailable)?;
                return Err(AuthError::Invalid(format!(
                    "upstream refresh refused: {reason}"
                )));
            }
            Err(UpstreamError::Unavailable(reason)) => return Err(AuthError::Unavailable(reason)),
        };
        grant.upstream = UpstreamTokens {
            access_token: refreshed.access_token,
            // Auth0 rotates refresh tokens only when the tenant asks it to.
            refresh_token: refreshed.refresh_token.or(Some(refresh_token)),
            expires_at: unix_now() + refreshed.expires_in,
        };
        self.store
            .put(GRANT, grant_id, &grant, GRANT_TTL)
            .await
            .map_err(unavailable)?;
        tracing::debug!("refreshed an upstream token");
        Ok(grant)
    }
}

/// The provider in force when the authorization server runs: our own tokens (HS256) first;
/// Auth0's (RS256), sent directly by machine-to-machine clients, still accepted.
pub(crate) struct ProxyProvider {
    pub(crate) oauth: Arc<OAuth>,
}

impl AuthProvider for ProxyProvider {
    fn name(&self) -> &'static str {
        "auth0"
    }

    fn verify<'a>(&'a self, raw: &'a str) -> BoxFuture<'a, Result<AccessToken, AuthError>> {
        Box::pin(async move {
            // Repeat callers first, without parsing the token: ours, then Auth0's.
            if self.oauth.verified.contains_key(raw) {
                return self.oauth.verify_ours(raw).await;
            }
            if let Some(token) = self.oauth.upstream.cached(raw) {
                return Ok(token);
            }
            if raw.len() > MAX_TOKEN_BYTES {
                return Err(AuthError::Invalid("the token is too long".into()));
            }
            let header = jsonwebtoken::decode_header(raw)
                .map_err(|e| AuthError::Invalid(format!("malformed: {e}")))?;
            match header.alg {
                Algorithm::HS256 => self.oauth.verify_ours(raw).await,
                _ => self.oauth.upstream.verify(raw).await,
            }
        })
    }

    fn authorization_servers(&self) -> BoxFuture<'_, Result<Vec<String>, AuthError>> {
        Box::pin(async move { Ok(vec![self.oauth.settings.issuer.clone()]) })
    }

    fn warm_up(&self) -> BoxFuture<'_, Result<(), AuthError>> {
        Box::pin(async move { self.oauth.upstream.warm_up().await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_without_an_upstream_refresh_token_gets_none_of_ours() {
        let tokens = IssuedTokens {
            access_token: "a".into(),
            expires_in: 60,
            refresh_token: None,
            scope: "openid".into(),
        };
        let body = tokens.to_json();
        assert!(body.get("refresh_token").is_none(), "{body}");
        assert_eq!(body["token_type"], "Bearer");
    }
}
