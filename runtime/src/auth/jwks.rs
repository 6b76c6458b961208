use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};

use super::AuthError;
use crate::net::{OutboundHttp, send};

/// The provider's signing keys. Unknown `kid`s trigger at most one refetch per cooldown, with one
/// fetch in flight; when the endpoint fails the last good keys stay in use.
pub(crate) struct JwksCache {
    keys: RwLock<Arc<HashMap<String, Arc<DecodingKey>>>>,
    /// When the last refetch was tried (`None`: never, so the first unknown `kid` refetches at once,
    /// even right after discovery). Holding the lock is being the one fetch in flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    cooldown: Duration,
    jwks_uri: String,
    http: OutboundHttp,
}

impl JwksCache {
    pub(crate) fn new(
        initial: &JwkSet,
        jwks_uri: String,
        http: OutboundHttp,
        cooldown: Duration,
    ) -> Self {
        Self {
            keys: RwLock::new(Arc::new(usable_keys(initial))),
            last_fetch: tokio::sync::Mutex::new(None),
            cooldown,
            jwks_uri,
            http,
        }
    }

    fn get(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    pub(crate) async fn key_for(&self, kid: &str) -> Result<Option<Arc<DecodingKey>>, AuthError> {
        if let Some(key) = self.get(kid) {
            return Ok(Some(key));
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Whoever held the lock before us may have fetched this very key.
        if let Some(key) = self.get(kid) {
            return Ok(Some(key));
        }
        if last_fetch.is_some_and(|at| at.elapsed() < self.cooldown) {
            return Ok(None);
        }
        *last_fetch = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                let keys = usable_keys(&set);
                if keys.is_empty() {
                    tracing::warn!(jwks_uri = %self.jwks_uri, "the JWKS has no usable RS256 key; keeping the previous keys");
                } else {
                    *self.keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(keys);
                }
                Ok(self.get(kid))
            }
            Err(error) => {
                tracing::warn!(jwks_uri = %self.jwks_uri, %error, "JWKS refresh failed; keeping the last good keys");
                Err(AuthError::Unavailable(format!(
                    "the JWKS could not be fetched: {error}"
                )))
            }
        }
    }

    async fn fetch(&self) -> Result<JwkSet, String> {
        let response = send(self.http.get(&self.jwks_uri))
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        response.json::<JwkSet>().await.map_err(|e| e.to_string())
    }
}

/// RSA signing keys with a `kid`, usable for RS256.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<DecodingKey>> {
    set.keys
        .iter()
        .filter(|jwk| !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)))
        .filter(|jwk| matches!(jwk.common.key_algorithm, None | Some(KeyAlgorithm::RS256)))
        .filter(|jwk| matches!(jwk.algorithm, AlgorithmParameters::RSA(_)))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some((kid, Arc::new(key)))
        })
        .collect()
}
