//! Grants and the tokens that lead to them. A grant is one authorization (whose, for which client,
//! the Auth0 tokens behind it); this file keeps grants and ends families. `issue` issues and rotates
//! our tokens, `verify` checks our access tokens on each MCP request (with its caches), and
//! `upstream` keeps a grant's Auth0 token fresh under a lock shared by every instance.

mod issue;
mod upstream;
mod verify;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::upstream as auth0;
use super::{GRANT_TTL, OAuth, crypto};
use crate::storage::StoreError;

pub(crate) use issue::RefreshError;
pub(crate) use verify::{ExpireAtExp, ExpireResolved, OurClaims, ProxyProvider};

/// Store kinds. Each names what its id is.
pub(crate) const GRANT: &str = "grant"; // grant id
const ACCESS: &str = "access"; // our access token's jti
const REFRESH: &str = "refresh"; // our refresh token
const REFRESH_USED: &str = "refresh-used"; // a rotated-away refresh token
/// Refresh the upstream token when less than this is left.
const UPSTREAM_REFRESH_MARGIN: i64 = 60;

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

/// A refresh token rotated away: its family, its client, and when. Written before the token's own
/// record is taken, so whoever finds that record gone finds this instead.
#[derive(Serialize, Deserialize)]
pub(crate) struct RotatedRecord {
    pub(crate) grant_id: String,
    pub(crate) client_id: String,
    /// Unix seconds.
    pub(crate) rotated_at: i64,
}

impl OAuth {
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
            auth0::revoke_refresh_token(&self.upstream, &refresh_token).await;
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
}
