//! The dev IdP's records, in memory: sign-ins waiting at the login page, authorization codes and
//! refresh tokens, each with the rule that makes it single-use.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use url::Url;

use crate::util::random_token;

/// A validated `/authorize` request, kept until the user decides and then inside its code.
#[derive(Clone, Debug)]
pub(crate) struct AuthorizeRequest {
    /// As sent, because the token request must repeat it byte for byte.
    pub(crate) redirect_uri_raw: String,
    pub(crate) redirect_uri: Url,
    pub(crate) state: Option<String>,
    pub(crate) scope: String,
    pub(crate) audience: String,
    pub(crate) nonce: Option<String>,
    pub(crate) code_challenge: Option<String>,
}

/// What an authorization code stands for. There is one client, which the token endpoint has
/// authenticated before any code is looked up, so a code needs no client of its own.
pub(crate) struct CodeGrant {
    pub(crate) request: AuthorizeRequest,
    pub(crate) sub: String,
    pub(crate) permissions: Vec<String>,
    pub(crate) sid: String,
}

/// What a user approved: the basis of every token issued from one sign-in.
#[derive(Clone, Debug)]
pub(crate) struct UserGrant {
    pub(crate) sub: String,
    pub(crate) permissions: Vec<String>,
    pub(crate) scope: String,
    pub(crate) audience: String,
    pub(crate) sid: String,
}

/// Values that expire after `ttl` and are spent by their first use, valid or not.
pub(crate) struct OneTime<T> {
    ttl: Duration,
    entries: HashMap<String, (T, Instant)>,
}

impl<T> OneTime<T> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: HashMap::new(),
        }
    }

    /// Stores `value` under `key`, dropping whatever has expired.
    pub(crate) fn insert(&mut self, key: String, value: T) {
        let now = Instant::now();
        self.entries.retain(|_, (_, expires)| *expires > now);
        self.entries.insert(key, (value, now + self.ttl));
    }

    /// Removes `key` in any case, and gives its value back if it has not expired.
    pub(crate) fn take(&mut self, key: &str) -> Option<T> {
        let (value, expires) = self.entries.remove(key)?;
        (expires > Instant::now()).then_some(value)
    }
}

pub(crate) struct RefreshGrant {
    pub(crate) grant: UserGrant,
    pub(crate) family: u64,
}

/// Refresh tokens with Auth0's rotation: each use spends the token and the next one joins its
/// family; presenting a spent token again revokes the whole family (reuse detection).
#[derive(Default)]
pub(crate) struct RefreshStore {
    active: HashMap<String, RefreshGrant>,
    spent: HashMap<String, u64>,
    families: u64,
}

impl RefreshStore {
    /// A new refresh token for `grant`: in `family` when it replaces a spent one, else in a new family.
    pub(crate) fn issue(&mut self, grant: UserGrant, family: Option<u64>) -> String {
        let family = family.unwrap_or_else(|| {
            self.families += 1;
            self.families
        });
        let token = random_token(32);
        self.active
            .insert(token.clone(), RefreshGrant { grant, family });
        token
    }

    /// Spends `token` and gives its grant back; `None` for a token that is unknown, spent or revoked.
    pub(crate) fn redeem(&mut self, token: &str) -> Option<RefreshGrant> {
        match self.active.remove(token) {
            Some(record) => {
                self.spent.insert(token.to_owned(), record.family);
                Some(record)
            }
            None => {
                if let Some(family) = self.spent.get(token).copied() {
                    self.revoke_family(family);
                }
                None
            }
        }
    }

    /// Ends the family of an active `token`, as Auth0 does; any other token is ignored (RFC 7009).
    pub(crate) fn revoke(&mut self, token: &str) {
        if let Some(family) = self.active.get(token).map(|r| r.family) {
            self.revoke_family(family);
        }
    }

    fn revoke_family(&mut self, family: u64) {
        self.active.retain(|_, r| r.family != family);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(sub: &str) -> UserGrant {
        UserGrant {
            sub: sub.into(),
            permissions: vec!["tools:read".into()],
            scope: "openid offline_access".into(),
            audience: "https://api".into(),
            sid: "sid".into(),
        }
    }

    #[test]
    fn a_token_is_redeemed_once_and_its_successor_keeps_the_family() {
        let mut store = RefreshStore::default();
        let first = store.issue(grant("alice"), None);
        let record = store.redeem(&first).expect("fresh token");
        assert_eq!(record.grant.sub, "alice");
        let second = store.issue(record.grant, Some(record.family));
        assert_ne!(first, second);
        assert_eq!(store.redeem(&second).map(|r| r.family), Some(record.family));
    }

    /// Alice's first token, spent, and its successor; Bob's token in a family of its own.
    fn rotated_once(store: &mut RefreshStore) -> (String, String, String) {
        let first = store.issue(grant("alice"), None);
        let family = store.redeem(&first).unwrap().family;
        let successor = store.issue(grant("alice"), Some(family));
        (first, successor, store.issue(grant("bob"), None))
    }

    #[test]
    fn reusing_a_spent_token_revokes_its_family_only() {
        let mut store = RefreshStore::default();
        let (first, successor, other) = rotated_once(&mut store);
        assert!(store.redeem(&first).is_none(), "a spent token is refused");
        assert!(store.redeem(&successor).is_none(), "its family is revoked");
        assert_eq!(store.redeem(&other).unwrap().grant.sub, "bob");
    }

    #[test]
    fn revocation_ends_the_family_and_ignores_unknown_tokens() {
        let mut store = RefreshStore::default();
        let (first, successor, other) = rotated_once(&mut store);
        store.revoke("not-a-token");
        store.revoke(&first); // spent: nothing to end
        assert!(store.active.contains_key(&successor));
        store.revoke(&successor);
        assert!(store.redeem(&successor).is_none());
        assert!(store.redeem(&other).is_some());
    }

    #[test]
    fn new_sign_ins_start_new_families() {
        let mut store = RefreshStore::default();
        let a = store.issue(grant("alice"), None);
        let b = store.issue(grant("alice"), None);
        assert_ne!(
            store.redeem(&a).unwrap().family,
            store.redeem(&b).unwrap().family
        );
    }

    #[test]
    fn one_time_values_are_spent_by_their_first_use() {
        let mut codes = OneTime::new(Duration::from_secs(60));
        codes.insert("c".into(), 1);
        assert_eq!(codes.take("c"), Some(1));
        assert_eq!(codes.take("c"), None);
        assert_eq!(codes.take("unknown"), None);
    }

    #[test]
    fn expired_values_are_refused_and_swept() {
        let mut codes = OneTime::new(Duration::ZERO);
        codes.insert("old".into(), 1);
        assert_eq!(codes.take("old"), None, "expired");
        codes.insert("a".into(), 2);
        codes.insert("b".into(), 3);
        assert_eq!(codes.entries.len(), 1, "inserting sweeps what has expired");
    }
}
