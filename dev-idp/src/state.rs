//! What every endpoint shares: the configuration, the key ring, the records, the test knobs and
//! the counters that tests read.

use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::config::DevIdpConfig;
use crate::keys::{KeyRing, SigningKey};
use crate::store::{AuthorizeRequest, CodeGrant, OneTime, RefreshStore};
use crate::util::rfc3339_millis;

/// How long a sign-in may wait at the login page, and how long its code stays good.
const CODE_TTL: Duration = Duration::from_secs(600);

pub(crate) struct Shared {
    pub(crate) config: DevIdpConfig,
    /// `http://127.0.0.1:PORT` or `https://localhost:PORT`, no trailing slash.
    pub(crate) url: String,
    pub(crate) keys: RwLock<KeyRing>,
    pub(crate) jwks_available: AtomicBool,
    pub(crate) userinfo_failure: Mutex<Option<u16>>,
    pub(crate) userinfo_delay: Mutex<Duration>,
    pub(crate) jwks_requests: AtomicUsize,
    pub(crate) userinfo_requests: AtomicUsize,
    pub(crate) refresh_grants: AtomicUsize,
    pub(crate) revocations: AtomicUsize,
    pub(crate) discovery_requests: AtomicUsize,
    /// Sign-ins shown on the login page, by the request id in its form.
    pub(crate) pending: Mutex<OneTime<AuthorizeRequest>>,
    pub(crate) codes: Mutex<OneTime<CodeGrant>>,
    pub(crate) refresh: Mutex<RefreshStore>,
    /// The profiles' `updated_at`: the time this IdP started.
    pub(crate) updated_at: String,
}

impl Shared {
    pub(crate) fn new(config: DevIdpConfig, url: String, key: SigningKey) -> Self {
        let mut keys = KeyRing::default();
        keys.push(key);
        Self {
            config,
            url,
            keys: RwLock::new(keys),
            jwks_available: AtomicBool::new(true),
            userinfo_failure: Mutex::new(None),
            userinfo_delay: Mutex::new(Duration::ZERO),
            jwks_requests: AtomicUsize::new(0),
            userinfo_requests: AtomicUsize::new(0),
            refresh_grants: AtomicUsize::new(0),
            revocations: AtomicUsize::new(0),
            discovery_requests: AtomicUsize::new(0),
            pending: Mutex::new(OneTime::new(CODE_TTL)),
            codes: Mutex::new(OneTime::new(CODE_TTL)),
            refresh: Mutex::default(),
            updated_at: rfc3339_millis(SystemTime::now()),
        }
    }

    /// `url` plus `/`: Auth0's `iss` ends with a slash.
    pub(crate) fn issuer(&self) -> String {
        format!("{}/", self.url)
    }

    /// The absolute URL of one of this IdP's paths (`path` starts with `/`).
    pub(crate) fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub(crate) fn current_key(&self) -> Arc<SigningKey> {
        self.keys.read().expect("key ring lock").current()
    }

    pub(crate) fn sign(&self, claims: &Value) -> String {
        self.current_key().sign(claims)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// A `Shared` as `DevIdp::start` makes it, at a made-up URL.
    pub(crate) fn shared(config: DevIdpConfig) -> Shared {
        Shared::new(
            config,
            "http://127.0.0.1:9".into(),
            SigningKey::generate().expect("RSA key"),
        )
    }

    /// The claims of a JWT, unverified: the unit tests read what was signed, not whether.
    pub(crate) fn claims(jwt: &str) -> Value {
        let payload = jwt.split('.').nth(1).expect("a JWT has three parts");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
            .expect("JSON claims")
    }
}
