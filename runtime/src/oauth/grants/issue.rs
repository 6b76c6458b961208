//! Issuing our tokens for a grant, rotating refresh tokens, and revoking what a client holds.

use std::time::Duration;

use jsonwebtoken::{Algorithm, Header};

use super::verify::OurClaims;
use super::{
    ACCESS, AccessRecord, GRANT, Grant, REFRESH, REFRESH_USED, RefreshRecord, RotatedRecord,
};
use crate::auth::AuthError;
use crate::oauth::{ACCESS_TOKEN_MAX_TTL, GRANT_TTL, OAuth, crypto};
use crate::storage::StoreError;
use crate::time::unix_now;

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

    /// Rotates a refresh token: the old one is spent, and exactly one concurrent use wins the
    /// rotation. Within `refresh_reuse_interval` of the rotation the same client may present the
    /// old token again (a concurrent refresh from another replica or egress address, a retry after
    /// a lost answer) and gets a working pair of the same family; any other reuse revokes the family.
    pub(crate) async fn refresh(
        &self,
        refresh_token: &str,
        client_id: &str,
    ) -> Result<IssuedTokens, RefreshError> {
        if let Some(rotated) = self
            .store
            .get::<RotatedRecord>(REFRESH_USED, refresh_token)
            .await?
        {
            return self.refresh_rotated(rotated, client_id).await;
        }
        let Some(record) = self
            .store
            .get::<RefreshRecord>(REFRESH, refresh_token)
            .await?
        else {
            // The rotation marker goes in before the record comes out, so a use that raced a
            // rotation and found neither looks once more.
            return match self
                .store
                .get::<RotatedRecord>(REFRESH_USED, refresh_token)
                .await?
            {
                Some(rotated) => self.refresh_rotated(rotated, client_id).await,
                None => Err(RefreshError::Invalid("unknown or expired refresh token")),
            };
        };
        // The first to mark the rotation sets its time; the others keep it.
        let marker = RotatedRecord {
            grant_id: record.grant_id.clone(),
            client_id: record.client_id.clone(),
            rotated_at: unix_now(),
        };
        self.store
            .put_if_absent(REFRESH_USED, refresh_token, &marker, GRANT_TTL)
            .await?;
        if self
            .store
            .take::<RefreshRecord>(REFRESH, refresh_token)
            .await?
            .is_none()
        {
            // Another use took the record first: this one is a reuse of a rotated token.
            let rotated = self
                .store
                .get::<RotatedRecord>(REFRESH_USED, refresh_token)
                .await?
                .unwrap_or(marker);
            return self.refresh_rotated(rotated, client_id).await;
        }
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
        self.issue_for_family(&record.grant_id).await
    }

    /// A refresh token already rotated away, presented again.
    async fn refresh_rotated(
        &self,
        rotated: RotatedRecord,
        client_id: &str,
    ) -> Result<IssuedTokens, RefreshError> {
        let interval = i64::try_from(self.settings.refresh_reuse_interval.as_secs()).unwrap_or(0);
        let within = unix_now() - rotated.rotated_at < interval;
        if within && rotated.client_id == client_id {
            tracing::debug!(
                "a just-rotated refresh token was presented again within the reuse interval"
            );
            return self.issue_for_family(&rotated.grant_id).await;
        }
        self.revoke_grant(&rotated.grant_id, "a spent refresh token was replayed")
            .await?;
        Err(RefreshError::Invalid(
            "this refresh token was already used; every token of its grant is now revoked",
        ))
    }

    /// A new token pair for a live family, its upstream token refreshed first when near expiry.
    async fn issue_for_family(&self, grant_id: &str) -> Result<IssuedTokens, RefreshError> {
        let Some(grant) = self.grant(grant_id).await? else {
            return Err(RefreshError::Invalid("this grant was revoked"));
        };
        let grant = match self.fresh_upstream(grant_id, grant).await {
            Ok(grant) => grant,
            Err(AuthError::Invalid(_)) => {
                return Err(RefreshError::Invalid(
                    "the identity provider no longer honours this sign-in; sign in again",
                ));
            }
            Err(AuthError::Unavailable(reason)) => return Err(RefreshError::Unavailable(reason)),
        };
        // Sliding lifetime: an active grant lives on.
        self.store.put(GRANT, grant_id, &grant, GRANT_TTL).await?;
        Ok(self.issue_tokens(grant_id, &grant).await?)
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
