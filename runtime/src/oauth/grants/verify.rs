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

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::Header;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    use super::*;
    use crate::auth::Auth0Provider;
    use crate::config::{Auth0Settings, SecretString, TlsTrust};
    use crate::keys::DerivedKeys;
    use crate::oauth::Settings;
    use crate::storage::{EncryptedStore, MemoryStore};

    const BASE: &str = "http://localhost:8000";

    /// An authorization server whose Auth0 is a closed loopback port: any token that gets as far as
    /// Auth0 fails as unavailable, at once.
    fn proxy() -> ProxyProvider {
        let upstream = Auth0Provider::new(Auth0Settings {
            domain: url::Url::parse("http://127.0.0.1:9").unwrap(),
            client_id: "client".into(),
            client_secret: SecretString::new("client-secret"),
            audience: "https://api.example".into(),
            tls_trust: TlsTrust::platform(),
        })
        .unwrap();
        let store = EncryptedStore::new(
            Arc::new(MemoryStore::new()),
            &EncryptedStore::generate_key(),
            b"names",
        )
        .unwrap();
        let settings = Settings {
            issuer: BASE.into(),
            resource: format!("{BASE}/mcp"),
            callback_url: format!("{BASE}/auth/callback"),
            scopes_supported: Vec::new(),
            dev_mode: false,
            plain_http: true,
            registrations_per_minute: 20,
            refresh_reuse_interval: std::time::Duration::from_secs(30),
        };
        let keys = DerivedKeys::derive(&SecretString::new(
            "a-signing-key-of-forty-characters-at-least",
        ));
        ProxyProvider {
            oauth: Arc::new(OAuth::new(settings, upstream, store, keys)),
        }
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Three dot-separated segments whose header is JSON with any `alg` and `kid`: what reaches
    /// the header parser and the signature check.
    fn jwt_shaped() -> impl Strategy<Value = String> {
        let alg = prop_oneof![
            Just("HS256".to_owned()),
            Just("RS256".to_owned()),
            Just("none".to_owned()),
            Just("ES256".to_owned()),
            ".{0,10}",
        ];
        (
            alg,
            proptest::option::of(".{0,20}"),
            proptest::collection::vec(any::<u8>(), 0..200),
            proptest::collection::vec(any::<u8>(), 0..80),
        )
            .prop_map(|(alg, kid, payload, signature)| {
                let mut header = serde_json::json!({ "alg": alg, "typ": "JWT" });
                if let Some(kid) = kid {
                    header["kid"] = serde_json::json!(kid);
                }
                format!(
                    "{}.{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(&payload),
                    b64(&signature)
                )
            })
    }

    fn refused(strategy: impl Strategy<Value = String>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let proxy = proxy();
        TestRunner::new(Config::with_cases(256))
            .run(&strategy, |raw| {
                let verified = runtime.block_on(proxy.verify(&raw));
                prop_assert!(verified.is_err(), "{raw} was accepted");
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn any_bearer_string_is_refused_without_panicking() {
        refused(".{0,300}");
    }

    #[test]
    fn any_jwt_shaped_token_is_refused_without_panicking() {
        refused(jwt_shaped());
    }

    #[test]
    fn our_own_token_with_any_character_changed_fails_its_check() {
        let proxy = proxy();
        let claims = OurClaims {
            iss: BASE.into(),
            sub: "auth0|alice".into(),
            aud: format!("{BASE}/mcp"),
            exp: unix_now() + 600,
            iat: unix_now(),
            jti: "jti".into(),
            client_id: "client".into(),
            scope: "openid".into(),
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &proxy.oauth.keys.access_encoding,
        )
        .unwrap();
        assert!(proxy.oauth.decode_ours(&token, true).is_ok());
        // Mostly characters of base64url and the dots, which get past the parser to the signature.
        let replacement = prop_oneof![
            4 => "[A-Za-z0-9_.-]".prop_map(|s| s.chars().next().unwrap()),
            1 => any::<char>(),
        ];
        let strategy = (any::<prop::sample::Index>(), replacement).prop_filter_map(
            "a different token",
            move |(at, c)| {
                let mut chars: Vec<char> = token.chars().collect();
                let at = at.index(chars.len());
                (chars[at] != c).then(|| {
                    chars[at] = c;
                    chars.into_iter().collect::<String>()
                })
            },
        );
        // The signature check itself, not the store: a genuine token is refused too here, having no
        // access record.
        TestRunner::new(Config::with_cases(256))
            .run(&strategy, |changed| {
                prop_assert!(
                    proxy.oauth.decode_ours(&changed, true).is_err(),
                    "{changed} was accepted"
                );
                Ok(())
            })
            .unwrap();
    }
}
