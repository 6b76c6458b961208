use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm, PublicKeyUse};
use openidconnect::core::CoreJsonWebKeySet;

use super::AuthError;
use crate::net::{OutboundHttp, send};

/// The provider's signing keys, in the two forms their two users need: jsonwebtoken's, by `kid`, for
/// access tokens (the hot path), and openidconnect's set for ID tokens. Unknown `kid`s trigger at
/// most one refetch per cooldown, with one fetch in flight; when the endpoint fails the last good
/// keys stay in use.
pub(crate) struct JwksCache {
    keys: RwLock<Arc<Keys>>,
    /// When the last refetch was tried (`None`: never, so the first unknown `kid` refetches at once,
    /// even right after discovery). Holding the lock is being the one fetch in flight.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
    cooldown: Duration,
    jwks_uri: String,
    http: OutboundHttp,
}

/// One JWKS, both ways.
struct Keys {
    by_kid: HashMap<String, Arc<DecodingKey>>,
    openid: CoreJsonWebKeySet,
}

impl Keys {
    fn new(jwks: JwkSet, openid: CoreJsonWebKeySet) -> Self {
        Self {
            by_kid: usable_keys(&jwks),
            openid,
        }
    }
}

impl JwksCache {
    /// `initial` is the set openidconnect fetched during discovery. openidconnect keeps an RSA
    /// key's modulus and exponent private, so jsonwebtoken's keys are made from its serde form;
    /// once per discovery, never per token.
    pub(crate) fn new(
        initial: &CoreJsonWebKeySet,
        jwks_uri: String,
        http: OutboundHttp,
        cooldown: Duration,
    ) -> Self {
        let jwks = serde_json::to_value(initial)
            .ok()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or(JwkSet { keys: Vec::new() });
        Self {
            keys: RwLock::new(Arc::new(Keys::new(jwks, initial.clone()))),
            last_fetch: tokio::sync::Mutex::new(None),
            cooldown,
            jwks_uri,
            http,
        }
    }

    fn current(&self) -> Arc<Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn get(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.current().by_kid.get(kid).cloned()
    }

    /// How many usable RS256 keys there are now.
    pub(crate) fn len(&self) -> usize {
        self.current().by_kid.len()
    }

    /// The whole set as openidconnect verifies ID tokens with it.
    pub(crate) fn openid_set(&self) -> CoreJsonWebKeySet {
        self.current().openid.clone()
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
            Ok(keys) => {
                if keys.by_kid.is_empty() {
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

    /// Fetches the JWKS and reads its bytes both ways.
    async fn fetch(&self) -> Result<Keys, String> {
        let response = send(self.http.get(&self.jwks_uri))
            .await
            .map_err(|e| e.to_string())?;
        if !response.status().is_success() {
            return Err(format!("HTTP {}", response.status()));
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        let jwks: JwkSet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        let openid: CoreJsonWebKeySet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(Keys::new(jwks, openid))
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
