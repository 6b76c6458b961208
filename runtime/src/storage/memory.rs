//! A store in this process's memory: for one instance and for dev mode.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::{SUBSCRIPTION_BUFFER, Store, StoreError, Subscription, SubscriptionEvent, ttl_millis};

/// Messages a slow subscriber may fall behind by before it misses some (and is told so).
const CHANNEL_CAPACITY: usize = 1024;

/// Sweeps never run on a map smaller than this, so a small store is not swept on every write.
const MIN_SWEEP_LEN: usize = 64;

struct Entry {
    value: Vec<u8>,
    expires_at: Instant,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        now < self.expires_at
    }
}

struct Entries {
    map: HashMap<String, Entry>,
    /// The map's length at which the next write sweeps out expired entries. Doubling it after each
    /// sweep keeps the cost of sweeping proportional to the number of writes.
    sweep_at: usize,
}

/// A store in this process's memory. Expired entries are invisible at once and purged as writes go
/// on, so memory does not grow with entries nobody reads again. Every process has its own: use
/// `RedisStore` when several instances serve the same clients.
pub struct MemoryStore {
    entries: Mutex<Entries>,
    /// Publish/subscribe within this process: one broadcast per channel with subscribers.
    channels: Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            entries: Mutex::new(Entries {
                map: HashMap::new(),
                sweep_at: MIN_SWEEP_LEN,
            }),
            channels: Mutex::new(HashMap::new()),
        }
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Vec<u8>>>> {
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How many entries are held, expired ones not yet purged included (for tests of the purge).
    #[cfg(test)]
    fn held(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        // A panic elsewhere while holding the lock cannot leave an entry half-written (every update
        // is a single map operation), so the data is still sound.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live_value(entries: &mut Entries, key: &str, now: Instant) -> Option<Vec<u8>> {
        match entries.map.get(key) {
            Some(entry) if entry.is_live(now) => Some(entry.value.clone()),
            Some(_) => {
                entries.map.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(entries: &mut Entries, key: &str, value: Vec<u8>, ttl: Duration, now: Instant) {
        let expires_at = now + Duration::from_millis(ttl_millis(ttl));
        entries
            .map
            .insert(key.to_owned(), Entry { value, expires_at });
        if entries.map.len() >= entries.sweep_at {
            entries.map.retain(|_, entry| entry.is_live(now));
            entries.sweep_at = (entries.map.len() * 2).max(MIN_SWEEP_LEN);
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets (before encryption wraps them), so only the size is shown.
        f.debug_struct("MemoryStore")
            .field("entries", &self.lock().map.len())
            .finish()
    }
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move { Ok(Self::live_value(&mut self.lock(), key, Instant::now())) })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut entries = self.lock();
            if ttl.is_zero() {
                entries.map.remove(key);
            } else {
                Self::insert(&mut entries, key, value, ttl, Instant::now());
            }
            Ok(())
        })
    }

    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if ttl.is_zero() {
                return Ok(false);
            }
            let mut entries = self.lock();
            let now = Instant::now();
            let absent = Self::live_value(&mut entries, key, now).is_none();
            if absent {
                Self::insert(&mut entries, key, value, ttl, now);
            }
            Ok(absent)
        })
    }

    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(async move {
            let entry = self.lock().map.remove(key);
            Ok(entry
                .filter(|entry| entry.is_live(Instant::now()))
                .map(|entry| entry.value))
        })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.lock().map.remove(key);
            Ok(())
        })
    }

    fn delete_if_equals<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut entries = self.lock();
            let matches = Self::live_value(&mut entries, key, Instant::now())
                .is_some_and(|value| value == expected);
            if matches {
                entries.map.remove(key);
            }
            Ok(matches)
        })
    }

    fn replace_if_equals<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let mut entries = self.lock();
            let now = Instant::now();
            let matches =
                Self::live_value(&mut entries, key, now).is_some_and(|current| current == expected);
            if matches {
                if ttl.is_zero() {
                    entries.map.remove(key);
                } else {
                    Self::insert(&mut entries, key, value, ttl, now);
                }
            }
            Ok(matches)
        })
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut channels = self.channels();
            if let Some(sender) = channels.get(channel)
                && sender.send(message.to_vec()).is_err()
            {
                // Its last subscriber is gone.
                channels.remove(channel);
            }
            Ok(())
        })
    }

    fn subscribe(&self, channel: &str) -> Subscription {
        // Subscribed from this call on: a message published right after it is not missed.
        let mut messages = self
            .channels()
            .entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        let (events, receiver) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let task = async move {
            if events.send(SubscriptionEvent::Up).await.is_err() {
                return;
            }
            loop {
                let event = match messages.recv().await {
                    Ok(message) => SubscriptionEvent::Message(message),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let down = SubscriptionEvent::Down(format!(
                            "the subscriber fell behind and missed {missed} messages"
                        ));
                        if events.send(down).await.is_err() {
                            return;
                        }
                        SubscriptionEvent::Up
                    }
                    // The store is gone.
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        };
        Subscription::new(receiver, task.boxed())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn put_get_take_delete() {
        let store = MemoryStore::new();
        assert_eq!(store.get("k").await.unwrap(), None);

        store.put("k", b"one".to_vec(), MINUTE).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"one"[..]));
        store.put("k", b"two".to_vec(), MINUTE).await.unwrap();
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"two"[..]));

        assert_eq!(store.take("k").await.unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(store.take("k").await.unwrap(), None);
        assert_eq!(store.get("k").await.unwrap(), None);

        store.put("k", b"three".to_vec(), MINUTE).await.unwrap();
        store.delete("k").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
        store.delete("never-there").await.unwrap();
    }

    #[tokio::test]
    async fn a_zero_ttl_stores_nothing() {
        let store = MemoryStore::new();
        store.put("k", b"v".to_vec(), MINUTE).await.unwrap();
        store.put("k", b"w".to_vec(), Duration::ZERO).await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(
            !store
                .put_if_absent("k", b"w".to_vec(), Duration::ZERO)
                .await
                .unwrap()
        );
        assert_eq!(store.get("k").await.unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_vanish_when_their_ttl_passes() {
        let store = MemoryStore::new();
        store
            .put("short", b"v".to_vec(), Duration::from_secs(2))
            .await
            .unwrap();
        store.put("long", b"v".to_vec(), MINUTE).await.unwrap();

        tokio::time::advance(Duration::from_millis(1999)).await;
        assert!(store.get("short").await.unwrap().is_some());

        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(store.get("short").await.unwrap(), None);
        assert_eq!(store.take("short").await.unwrap(), None);
        assert!(!store.delete_if_equals("short", b"v").await.unwrap());
        assert!(store.get("long").await.unwrap().is_some());
    }

    #[tokio::test(start_paused = true)]
    async fn an_expired_entry_no_longer_blocks_put_if_absent() {
        let store = MemoryStore::new();
        let ttl = Duration::from_secs(5);
        assert!(
            store
                .put_if_absent("lock", b"a".to_vec(), ttl)
                .await
                .unwrap()
        );
        assert!(
            !store
                .put_if_absent("lock", b"b".to_vec(), ttl)
                .await
                .unwrap()
        );
        assert_eq!(store.get("lock").await.unwrap().as_deref(), Some(&b"a"[..]));

        tokio::time::advance(ttl).await;
        assert!(
            store
                .put_if_absent("lock", b"b".to_vec(), ttl)
                .await
                .unwrap()
        );
        assert_eq!(store.get("lock").await.unwrap().as_deref(), Some(&b"b"[..]));
    }

    #[tokio::test(start_paused = true)]
    async fn expired_entries_are_purged_as_writes_go_on() {
        let store = MemoryStore::new();
        for i in 0..1000 {
            store
                .put(&format!("old-{i}"), b"v".to_vec(), Duration::from_secs(1))
                .await
                .unwrap();
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        for i in 0..1000 {
            store
                .put(&format!("new-{i}"), b"v".to_vec(), MINUTE)
                .await
                .unwrap();
        }
        // Every old entry expired before the new ones were written, and the new writes crossed
        // the sweep threshold, so none of the old ones may still be held.
        assert!(store.held() <= 1000, "{} entries held", store.held());
        assert!(store.get("new-999").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn delete_if_equals_only_removes_the_expected_value() {
        let store = MemoryStore::new();
        store.put("lock", b"mine".to_vec(), MINUTE).await.unwrap();
        assert!(!store.delete_if_equals("lock", b"yours").await.unwrap());
        assert_eq!(
            store.get("lock").await.unwrap().as_deref(),
            Some(&b"mine"[..])
        );
        assert!(store.delete_if_equals("lock", b"mine").await.unwrap());
        assert_eq!(store.get("lock").await.unwrap(), None);
        assert!(!store.delete_if_equals("lock", b"mine").await.unwrap());
    }

    #[tokio::test]
    async fn replace_if_equals_never_brings_back_a_taken_value() {
        let store = MemoryStore::new();
        store.put("k", b"old".to_vec(), MINUTE).await.unwrap();
        assert!(
            store
                .replace_if_equals("k", b"old", b"new".to_vec(), MINUTE)
                .await
                .unwrap()
        );
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"new"[..]));
        assert!(
            !store
                .replace_if_equals("k", b"old", b"newer".to_vec(), MINUTE)
                .await
                .unwrap()
        );

        store.take("k").await.unwrap();
        assert!(
            !store
                .replace_if_equals("k", b"new", b"newer".to_vec(), MINUTE)
                .await
                .unwrap()
        );
        assert_eq!(store.get("k").await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_concurrent_takes_exactly_one_gets_the_value() {
        let store = Arc::new(MemoryStore::new());
        for round in 0..50 {
            let key = format!("code-{round}");
            store.put(&key, b"v".to_vec(), MINUTE).await.unwrap();
            let takers: Vec<_> = (0..20)
                .map(|_| {
                    let store = store.clone();
                    let key = key.clone();
                    tokio::spawn(async move { store.take(&key).await.unwrap() })
                })
                .collect();
            let mut winners = 0;
            for taker in takers {
                winners += usize::from(taker.await.unwrap().is_some());
            }
            assert_eq!(winners, 1, "round {round}");
        }
    }

    #[test]
    fn debug_shows_no_values() {
        let store = MemoryStore::new();
        futures::executor::block_on(store.put("k", b"secret-value".to_vec(), MINUTE)).unwrap();
        let debug = format!("{store:?}");
        assert!(!debug.contains("secret-value"), "{debug}");
        assert!(debug.contains("entries: 1"), "{debug}");
    }
}
