//! Storage for the authorization server's short- and long-lived records (codes, states, refresh
//! tokens, upstream tokens): a small key-value `Store` trait with per-key expiry, an in-memory store
//! for one process, a Redis store for several, and `EncryptedStore`, which names records by HMAC and
//! encrypts them with Fernet so the store never holds a usable secret. Stores also carry
//! publish/subscribe, so every instance of the server can hear of a change made by one.

mod encrypted;
mod memory;
mod pubsub;
mod redis;

pub use encrypted::{EncryptedStore, StorageKeyError, StoreLock};
pub use memory::MemoryStore;
pub(crate) use pubsub::SUBSCRIPTION_BUFFER;
pub use pubsub::{Subscription, SubscriptionEvent};
pub use redis::RedisStore;

use std::time::Duration;

use futures::future::BoxFuture;

/// The longest any Redis command may take before the store reports itself unavailable: a request
/// waiting on storage should fail fast with 503 rather than hang.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or did not answer in time: callers fail closed with 503.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// A key-value store with per-key expiry. Keys are opaque strings; values opaque bytes.
pub trait Store: Send + Sync + 'static {
    /// The value under `key`, unless absent or expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Every value has a TTL (zero TTL = error-free no-op delete is fine, but never "forever").
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// SET NX PX: true when this call stored the value (used for cross-instance locks). A zero TTL
    /// stores nothing and answers false.
    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Atomic get-and-delete (GETDEL): of two concurrent takes, exactly one sees the value.
    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>>;
    /// Removes `key`; removing an absent key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Deletes only while the stored value equals `expected` (releasing a lock one holds; a Lua script in Redis).
    fn delete_if_equals<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Replaces the value only while it still equals `expected`, with a new TTL; true when replaced.
    ///
    /// `EncryptedStore` rewrites records read under an old encryption key with this, so a record that
    /// was taken (consumed) in the meantime is never brought back. A store that cannot compare and
    /// set atomically keeps this default, which never replaces anything: old records then stay under
    /// their old key until they expire, which is safe.
    fn replace_if_equals<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (key, expected, value, ttl);
        Box::pin(async { Ok(false) })
    }

    /// Sends `message` to every current subscriber of `channel`, in every process sharing the
    /// store. Delivery is at most once and only to subscriptions that are up: a subscriber learns
    /// from its `Down`/`Up` events when it may have missed some. Messages travel in clear: never
    /// put a secret in one (send an HMAC-named id).
    ///
    /// A store without publish/subscribe keeps this default, which delivers nothing; its
    /// subscriptions stay down, so subscribers fall back to short cache lifetimes.
    fn publish<'a>(
        &'a self,
        channel: &'a str,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (channel, message);
        Box::pin(async { Ok(()) })
    }

    /// The messages published on `channel` from now on, with `Up`/`Down` events that say whether
    /// the subscription is live. It reconnects and subscribes again by itself.
    fn subscribe(&self, channel: &str) -> Subscription {
        let _ = channel;
        Subscription::unsupported("this store has no publish/subscribe")
    }
}

/// The longest TTL a store accepts; longer ones are cut to it. Redis refuses expiry times that
/// overflow its clock, and "nearly forever" is a bug in a caller, not a wish to honour.
pub(crate) const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// The TTL in whole milliseconds as the stores apply it: at most `MAX_TTL`, and a non-zero TTL below
/// one millisecond rounds up so it never becomes "no expiry" or a refused zero.
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    if ttl.is_zero() {
        return 0;
    }
    let millis = ttl.min(MAX_TTL).as_nanos().div_ceil(1_000_000);
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_round_up_to_whole_milliseconds_and_are_capped() {
        assert_eq!(ttl_millis(Duration::ZERO), 0);
        assert_eq!(ttl_millis(Duration::from_nanos(1)), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_millis(Duration::from_secs(3)), 3000);
        assert_eq!(
            ttl_millis(Duration::MAX),
            u64::try_from(MAX_TTL.as_millis()).unwrap()
        );
    }
}
