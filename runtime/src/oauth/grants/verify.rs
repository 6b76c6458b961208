//! Verifying our access tokens on each MCP request: the HS256 check (cached per raw token), then
//! the `jti` leads to the grant and its Auth0 token (cached briefly, so a revocation elsewhere takes
//! effect within `RESOLVED_TTL`). `ProxyProvider` picks ours or Auth0's by the token's header.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

use super::{ACCESS, AccessRecord, UPSTREAM_REFRESH_MARGIN};
use crate::auth::{AccessToken, AuthError, AuthProvider};
use crate::oauth::OAuth;
use crate::storage::StoreError;
use crate::time::unix_now;

/// How long a resolved `jti` is reused before the store is asked again.
const RESOLVED_TTL: Duration = Duration::from_secs(30);
/// Longest accepted bearer token; ours are about 500 bytes, Auth0's about 1 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

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
    pub(super) fn decode_ours(&self, raw: &str, check_exp: bool) -> Result<OurClaims, AuthError> {
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
