//! What every Redis topology must do for the store, checked against real servers: each `Store`
//! method, atomic takes and locks between two instances, a TTL on every key, encrypted records,
//! and publish/subscribe. The single-node, cluster and sentinel tests run the same functions.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use toolgate::{EncryptedStore, RedisStore, Store, StoreError, Subscription, SubscriptionEvent};

use crate::redis::RawRedis;

pub const MINUTE: Duration = Duration::from_secs(60);
pub const NAMING: &[u8] = b"naming secret for the storage tests";

/// Generous bounds for things that happen "soon" (expiry, reconnection, failover); a test fails
/// only if they never happen, it never measures how soon.
pub const EVENTUALLY: Duration = Duration::from_secs(30);
/// A call that hangs for this long has hung: with a 500 ms command timeout nothing should come close.
pub const HANG: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub subject: String,
    pub upstream_token: String,
}

pub fn grant(subject: &str) -> Grant {
    Grant {
        subject: subject.to_owned(),
        upstream_token: format!("upstream-token-of-{subject}"),
    }
}

/// Waits until `check` is true, failing the test if it never becomes true within `EVENTUALLY`.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + EVENTUALLY;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Awaits a store call that must answer (not hang) and fail as unavailable.
pub async fn assert_unavailable<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, StoreError>>,
) -> String {
    let result = tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung instead of failing"));
    match result {
        Err(StoreError::Unavailable(message)) => message,
        Ok(value) => panic!("{what} succeeded with {value:?} although Redis is down"),
    }
}

/// Every `Store` method, with what it leaves in Redis checked behind the store's back.
pub async fn every_store_method_works(store: &RedisStore, server: &dyn RawRedis) {
    // The store connects on first use; a cluster's first connections (six nodes, over TLS in a
    // debug build) may take longer than one command may.
    eventually("the store answering PING", || async {
        store.ping().await.is_ok()
    })
    .await;

    assert_eq!(store.get("k").await.unwrap(), None);
    store.put("k", b"one".to_vec(), MINUTE).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(b"one".to_vec()));
    let ttl = server.ttl_of("k");
    assert!(ttl > 0 && ttl <= 60_000, "PTTL {ttl}");
    store.put("k", b"two".to_vec(), MINUTE).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(b"two".to_vec()));

    let every_byte: Vec<u8> = (0..=255).collect();
    store
        .put("bytes", every_byte.clone(), MINUTE)
        .await
        .unwrap();
    assert_eq!(server.get_raw("bytes"), Some(every_byte.clone()));
    assert_eq!(store.take("bytes").await.unwrap(), Some(every_byte));
    assert_eq!(store.take("bytes").await.unwrap(), None);
    assert_eq!(server.ttl_of("bytes"), -2, "take removed the key");

    store.delete("k").await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), None);
    store.delete("never-written").await.unwrap();

    store.put("zero", b"v".to_vec(), MINUTE).await.unwrap();
    store
        .put("zero", b"w".to_vec(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(server.get_raw("zero"), None, "a zero TTL deletes");
    assert!(
        !store
            .put_if_absent("zero", b"w".to_vec(), Duration::ZERO)
            .await
            .unwrap()
    );
    assert_eq!(server.get_raw("zero"), None);

    assert!(
        store
            .put_if_absent("lock", b"mine".to_vec(), MINUTE)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_if_absent("lock", b"yours".to_vec(), MINUTE)
            .await
            .unwrap()
    );
    assert_eq!(server.get_raw("lock"), Some(b"mine".to_vec()));
    assert!(server.ttl_of("lock") > 0);
    assert!(!store.delete_if_equals("lock", b"yours").await.unwrap());
    assert_eq!(server.get_raw("lock"), Some(b"mine".to_vec()));
    assert!(store.delete_if_equals("lock", b"mine").await.unwrap());
    assert_eq!(server.get_raw("lock"), None);
    assert!(!store.delete_if_equals("lock", b"mine").await.unwrap());

    store.put("r", b"old".to_vec(), MINUTE).await.unwrap();
    assert!(
        !store
            .replace_if_equals("r", b"other", b"new".to_vec(), MINUTE)
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_if_equals("r", b"old", b"new".to_vec(), Duration::from_secs(30))
            .await
            .unwrap()
    );
    assert_eq!(server.get_raw("r"), Some(b"new".to_vec()));
    let ttl = server.ttl_of("r");
    assert!(ttl > 0 && ttl <= 30_000, "PTTL {ttl}");
    store.take("r").await.unwrap();
    assert!(
        !store
            .replace_if_equals("r", b"new", b"newer".to_vec(), MINUTE)
            .await
            .unwrap()
    );
    assert_eq!(server.get_raw("r"), None, "a taken value stays taken");
}

/// Two stores stand for two server instances sharing one Redis: of twenty concurrent takes of a
/// value, exactly one gets it, ten rounds over.
pub async fn of_twenty_concurrent_takes_exactly_one_gets_the_value(stores: &[Arc<RedisStore>]) {
    for round in 0..10 {
        let key = format!("code-{round}");
        stores[0]
            .put(&key, format!("value-{round}").into_bytes(), MINUTE)
            .await
            .unwrap();
        let takers: Vec<_> = (0..20)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                let key = key.clone();
                tokio::spawn(async move { store.take(&key).await.unwrap() })
            })
            .collect();
        let mut winners = Vec::new();
        for taker in takers {
            if let Some(value) = taker.await.unwrap() {
                winners.push(value);
            }
        }
        assert_eq!(
            winners,
            vec![format!("value-{round}").into_bytes()],
            "round {round}"
        );
    }
}

/// Of twenty contenders for a lock, exactly one gets it; only its holder releases it.
pub async fn put_if_absent_grants_a_lock_to_exactly_one_contender(
    stores: &[Arc<RedisStore>],
    server: &dyn RawRedis,
) {
    for round in 0..10 {
        let key = format!("lock-{round}");
        let contenders: Vec<_> = (0..20)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                let key = key.clone();
                tokio::spawn(async move {
                    let nonce = format!("nonce-{i}");
                    let won = store
                        .put_if_absent(&key, nonce.clone().into_bytes(), MINUTE)
                        .await
                        .unwrap();
                    won.then_some(nonce)
                })
            })
            .collect();
        let mut holders = Vec::new();
        for contender in contenders {
            holders.extend(contender.await.unwrap());
        }
        assert_eq!(holders.len(), 1, "round {round}: {holders:?}");
        let holder = holders.pop().unwrap();
        assert_eq!(server.get_raw(&key), Some(holder.clone().into_bytes()));

        let other = &stores[1 % stores.len()];
        assert!(
            !other
                .delete_if_equals(&key, b"somebody-else")
                .await
                .unwrap()
        );
        assert!(
            other
                .delete_if_equals(&key, holder.as_bytes())
                .await
                .unwrap()
        );
        assert!(
            stores[0]
                .put_if_absent(&key, b"next".to_vec(), MINUTE)
                .await
                .unwrap()
        );
    }
}

/// Of concurrent compare-and-sets from one expected value, exactly one replaces it.
pub async fn compare_and_set_replaces_exactly_once(stores: &[Arc<RedisStore>]) {
    for round in 0..5 {
        let key = format!("cas-{round}");
        stores[0].put(&key, b"v0".to_vec(), MINUTE).await.unwrap();
        let writers: Vec<_> = (0..10)
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                let key = key.clone();
                tokio::spawn(async move {
                    store
                        .replace_if_equals(&key, b"v0", format!("w{i}").into_bytes(), MINUTE)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut replaced = 0;
        for writer in writers {
            replaced += usize::from(writer.await.unwrap());
        }
        assert_eq!(replaced, 1, "round {round}");
    }
}

/// Every key the store and its encrypted records write carries a TTL.
pub async fn every_key_written_has_a_ttl(store: Arc<RedisStore>, server: &dyn RawRedis) {
    let records =
        EncryptedStore::new(store.clone(), &EncryptedStore::generate_key(), NAMING).unwrap();

    store.put("plain", b"v".to_vec(), MINUTE).await.unwrap();
    store
        .put("huge-ttl", b"v".to_vec(), Duration::from_secs(u64::MAX))
        .await
        .unwrap();
    store
        .put("tiny-ttl", b"v".to_vec(), Duration::from_nanos(1))
        .await
        .unwrap();
    store
        .put_if_absent("lock", b"v".to_vec(), MINUTE)
        .await
        .unwrap();
    store.put("replaced", b"a".to_vec(), MINUTE).await.unwrap();
    store
        .replace_if_equals("replaced", b"a", b"b".to_vec(), MINUTE)
        .await
        .unwrap();
    for i in 0..5 {
        records
            .put("grant", &format!("g{i}"), &grant("alice"), MINUTE)
            .await
            .unwrap();
    }
    let _held = records
        .try_lock("refresh", "family", MINUTE)
        .await
        .unwrap()
        .expect("a free lock");

    let pairs = server.keys_and_values();
    assert!(pairs.len() >= 10, "{} keys", pairs.len());
    for (key, _) in pairs {
        // -1 is a key without expiry; -2 one that expired between the scan and this check (the
        // 1 ms key can), which had a TTL.
        let ttl = server.ttl_of(&key);
        assert!(ttl > 0 || ttl == -2, "{key} has PTTL {ttl}");
    }
}

/// Records are encrypted and named by HMAC, with no hash tag: on a cluster each one hashes on its
/// whole name, so records spread over every master and none is pinned to one slot. A lock is
/// exclusive and released by its holder only; a tampered record counts as absent.
pub async fn encrypted_records_work(inner: Arc<dyn Store>, server: &dyn RawRedis) {
    let store = EncryptedStore::new(inner, &EncryptedStore::generate_key(), NAMING).unwrap();
    let code = "authorization-code-3f9a";
    store
        .put("code", code, &grant("alice"), MINUTE)
        .await
        .unwrap();
    let key = store.key("code", code);
    assert!(!key.contains('{') && !key.contains('}'), "{key}");
    assert!(!key.contains(code), "{key}");
    let value =
        String::from_utf8_lossy(&server.get_raw(&key).expect("the record is stored")).into_owned();
    for plaintext in [code, "alice", "upstream-token-of-alice"] {
        assert!(!value.contains(plaintext), "{plaintext} in {value}");
    }
    assert_eq!(store.get("code", code).await.unwrap(), Some(grant("alice")));
    assert_eq!(
        store.take("code", code).await.unwrap(),
        Some(grant("alice"))
    );
    assert_eq!(store.take::<Grant>("code", code).await.unwrap(), None);

    store
        .put("grant", "g", &grant("bob"), MINUTE)
        .await
        .unwrap();
    let key = store.key("grant", "g");
    let sealed = server.get_raw(&key).unwrap();
    server.set_raw(&key, &sealed[..sealed.len() - 10]);
    assert_eq!(store.get::<Grant>("grant", "g").await.unwrap(), None);
    assert_eq!(server.get_raw(&key), None, "a rejected record is deleted");

    let lock = store
        .try_lock("refresh", "family", MINUTE)
        .await
        .unwrap()
        .expect("a free lock");
    assert!(!lock.key().contains('{'), "{}", lock.key());
    assert!(
        store
            .try_lock("refresh", "family", MINUTE)
            .await
            .unwrap()
            .is_none()
    );
    store.unlock(lock).await.unwrap();
    let again = store.try_lock("refresh", "family", MINUTE).await.unwrap();
    store.unlock(again.expect("free again")).await.unwrap();
}

/// Waits for the next event that is not a message, skipping messages.
pub async fn next_state(subscription: &mut Subscription) -> SubscriptionEvent {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, subscription.next_event()).await {
            Ok(Some(SubscriptionEvent::Message(_))) => continue,
            Ok(Some(event)) => return event,
            Ok(None) => panic!("the subscription ended"),
            Err(_) => panic!("no Up or Down within {EVENTUALLY:?}"),
        }
    }
}

/// Publishes `message` until `subscription` receives it (a subscription that has just come up may
/// miss the first, one that is down misses all), failing if it never does. Other messages and
/// `Up`/`Down` changes on the way are skipped.
pub async fn published_until_received(
    publisher: &dyn Store,
    channel: &str,
    subscription: &mut Subscription,
    message: &[u8],
) {
    let deadline = Instant::now() + EVENTUALLY;
    loop {
        assert!(
            Instant::now() < deadline,
            "the message never arrived on {channel}"
        );
        // A failover may still refuse it; a later round publishes again.
        let _ = publisher.publish(channel, message).await;
        let round = Instant::now() + Duration::from_millis(500);
        loop {
            let left = round.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, subscription.next_event()).await {
                Ok(Some(SubscriptionEvent::Message(received))) if received == message => return,
                Ok(Some(_)) => {}
                Ok(None) => panic!("the subscription ended"),
                Err(_) => break,
            }
        }
    }
}

/// Two subscribers and one publisher, each its own store (three server instances): both hear
/// every message, and a message on another channel reaches neither.
pub async fn publish_reaches_every_subscriber(stores: &[Arc<dyn Store>]) {
    let channel = "toolgate:test:revoked";
    let mut first = stores[0].subscribe(channel);
    let mut second = stores[1].subscribe(channel);
    assert_eq!(next_state(&mut first).await, SubscriptionEvent::Up);
    assert_eq!(next_state(&mut second).await, SubscriptionEvent::Up);
    let publisher = &stores[2 % stores.len()];
    publisher
        .publish("toolgate:test:other", b"not for you")
        .await
        .unwrap();
    for n in 0..5 {
        publisher
            .publish(channel, format!("grant-{n}").as_bytes())
            .await
            .unwrap();
    }
    let wanted: Vec<Vec<u8>> = (0..5).map(|n| format!("grant-{n}").into_bytes()).collect();
    for subscription in [&mut first, &mut second] {
        let mut received = Vec::new();
        for _ in 0..5 {
            let event = tokio::time::timeout(EVENTUALLY, subscription.next_event())
                .await
                .expect("a message arrives")
                .expect("the subscription lives");
            let SubscriptionEvent::Message(message) = event else {
                panic!("{event:?} instead of a message");
            };
            received.push(message);
        }
        // On a cluster each message may travel through another node, so the order may differ.
        received.sort();
        assert_eq!(received, wanted);
    }
}
