//! Keeping a grant's Auth0 token fresh: refreshed at Auth0 when near expiry, by one instance at a
//! time (a lock in the store), while the others wait for its result.

use std::time::Duration;

use openidconnect::OAuth2TokenResponse;

use super::auth0::{self, UpstreamError};
use super::{GRANT, Grant, UPSTREAM_REFRESH_MARGIN, UpstreamTokens};
use crate::auth::AuthError;
use crate::oauth::{GRANT_TTL, OAuth};
use crate::storage::StoreError;
use crate::time::unix_now;

/// The store kind of a grant's refresh lock; its id is the grant id.
const REFRESH_LOCK: &str = "grant-refresh-lock";
/// How long one instance may hold the refresh lock of a grant.
const REFRESH_LOCK_TTL: Duration = Duration::from_secs(15);

impl OAuth {
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
        let refreshed = match auth0::refresh(&self.upstream, &refresh_token).await {
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
            access_token: refreshed.access_token().secret().clone(),
            // Auth0 rotates refresh tokens only when the tenant asks it to.
            refresh_token: refreshed
                .refresh_token()
                .map(|t| t.secret().clone())
                .or(Some(refresh_token)),
            expires_at: unix_now() + auth0::expires_in(&refreshed),
        };
        self.store
            .put(GRANT, grant_id, &grant, GRANT_TTL)
            .await
            .map_err(unavailable)?;
        tracing::debug!("refreshed an upstream token");
        Ok(grant)
    }
}
