//! The storage layer against a real redis-server: every `Store` method, atomicity under concurrency,
//! TTLs on every key, passwords, encrypted records tampered with in Redis itself, Redis going away
//! and coming back, and publish/subscribe (in memory and through Redis). The checks shared with the
//! cluster and sentinel tests live in `toolgate_tests::store_contract`.

use std::sync::Arc;
use std::time::Duration;

use toolgate::{EncryptedStore, MemoryStore, RedisStore, Store, SubscriptionEvent};
use toolgate_tests::redis::RedisServer;
use toolgate_tests::store_contract::{
    self, Grant, MINUTE, NAMING, assert_unavailable, eventually, grant, next_state,
    published_until_received,
};

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.config())
        .await
        .expect("connect to redis-server")
}

#[tokio::test]
async fn every_store_method_works_against_redis() {
    every_store_method_works(&RedisServer::start()).await;
}

async fn every_store_method_works(server: &RedisServer) {
    store_contract::every_store_method_works(&connect(server).await, server).await;
}

/// Managed Redis: TLS only, verified against the CA in `SSL_CERT_FILE`, signed in as an ACL user
/// while the `default` user is off.
#[tokio::test]
async fn every_store_method_works_over_tls_as_an_acl_user() {
    let server = RedisServer::start_tls("toolgate", "acl-user-password");
    assert!(server.config().tls);
    every_store_method_works(&server).await;
}

#[tokio::test]
async fn a_tls_redis_refuses_wrong_credentials_and_an_untrusted_certificate_is_named() {
    let password = "acl-user-password";
    let server = RedisServer::start_tls("toolgate", password);

    let mut wrong = server.config_with_password(Some("not-the-password"));
    let store = RedisStore::connect(&wrong).await.unwrap();
    let message = assert_unavailable("PING with a wrong password", store.ping()).await;
    assert!(message.contains("REDIS_PASSWORD"), "{message}");

    // The `default` user is off: a password alone does not get in.
    wrong.username = None;
    wrong.password = Some(toolgate::SecretString::new(password));
    let store = RedisStore::connect(&wrong).await.unwrap();
    assert_unavailable("PING as the default user", store.ping()).await;

    // Trusting only another CA: the certificate is refused and the error says so in words.
    let other = tempfile_with(&toolgate_tests::tls::untrusted_ca().certificate_pem());
    let mut untrusting = server.config();
    untrusting.tls_trust = toolgate::TlsTrust::from_pem_file(&other.0);
    let store = RedisStore::connect(&untrusting).await.unwrap();
    let message = assert_unavailable("PING with an untrusted certificate", store.ping()).await;
    assert!(
        message.contains("127.0.0.1") && message.contains("signed by an unknown authority"),
        "{message}"
    );
    assert!(!message.contains(password), "{message}");
}

/// A file holding `text`, removed on drop.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tempfile_with(text: &str) -> TempFile {
    static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let path = std::env::temp_dir().join(format!(
        "toolgate-storage-{}-{}.pem",
        std::process::id(),
        COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&path, text).unwrap();
    TempFile(path)
}

#[tokio::test]
async fn values_disappear_when_their_ttl_passes() {
    let server = RedisServer::start();
    let store = connect(&server).await;
    store
        .put("short", b"v".to_vec(), Duration::from_millis(200))
        .await
        .unwrap();
    assert!(
        store
            .put_if_absent("lock", b"a".to_vec(), Duration::from_millis(200))
            .await
            .unwrap()
    );
    store.put("long", b"v".to_vec(), MINUTE).await.unwrap();

    eventually("the short value expiring", || async {
        store.get("short").await.unwrap().is_none()
    })
    .await;
    eventually("the lock expiring", || async {
        store
            .put_if_absent("lock", b"b".to_vec(), MINUTE)
            .await
            .unwrap()
    })
    .await;
    assert_eq!(server.get_raw("lock"), Some(b"b".to_vec()));
    assert_eq!(store.get("long").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_twenty_concurrent_takes_exactly_one_gets_the_value() {
    let server = RedisServer::start();
    // Two stores stand for two server instances sharing one Redis.
    let stores: Vec<Arc<RedisStore>> = vec![
        Arc::new(connect(&server).await),
        Arc::new(connect(&server).await),
    ];
    store_contract::of_twenty_concurrent_takes_exactly_one_gets_the_value(&stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_absent_grants_a_lock_to_exactly_one_contender() {
    let server = RedisServer::start();
    let stores: Vec<Arc<RedisStore>> = vec![
        Arc::new(connect(&server).await),
        Arc::new(connect(&server).await),
    ];
    store_contract::put_if_absent_grants_a_lock_to_exactly_one_contender(&stores, &server).await;
    store_contract::compare_and_set_replaces_exactly_once(&stores).await;
}

#[tokio::test]
async fn every_key_written_has_a_ttl() {
    let server = RedisServer::start();
    store_contract::every_key_written_has_a_ttl(Arc::new(connect(&server).await), &server).await;
}

#[tokio::test]
async fn a_password_is_required_and_a_wrong_one_is_unavailable() {
    let password = "correct-horse-battery-staple";
    let server = RedisServer::start_with_password(password);

    let store = connect(&server).await;
    store.put("k", b"v".to_vec(), MINUTE).await.unwrap();
    assert_eq!(store.get("k").await.unwrap(), Some(b"v".to_vec()));
    let debug = format!("{store:?}");
    assert!(!debug.contains(password), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");

    let wrong_password = "wrong-password-value";
    let wrong = RedisStore::connect(&server.config_with_password(Some(wrong_password)))
        .await
        .expect("connecting is lazy");
    let message = assert_unavailable("GET with a wrong password", wrong.get("k")).await;
    assert!(!message.contains(wrong_password), "{message}");
    assert!(!format!("{wrong:?}").contains(wrong_password));
    let message = assert_unavailable("PING with a wrong password", wrong.ping()).await;
    assert!(message.contains("REDIS_PASSWORD"), "{message}");
    assert!(!message.contains(wrong_password), "{message}");

    let none = RedisStore::connect(&server.config_with_password(None))
        .await
        .expect("connecting is lazy");
    assert_unavailable("GET without a password", none.get("k")).await;
    let message = assert_unavailable("PING without a password", none.ping()).await;
    assert!(message.contains("REDIS_PASSWORD"), "{message}");

    // Commands keep failing until the store's reconnection attempts have run out and it reports
    // the refused password itself; from then on only a new connection can succeed.
    eventually("the refused password being reported", || async {
        wrong
            .get("k")
            .await
            .is_err_and(|error| error.to_string().contains("REDIS_PASSWORD"))
    })
    .await;
    // Once Redis accepts the password the store uses, it works without being rebuilt.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg(wrong_password)
        .query(&mut server.connection())
        .unwrap();
    eventually("the store with the new password working", || async {
        wrong.get("k").await.is_ok()
    })
    .await;
    assert_eq!(wrong.get("k").await.unwrap(), Some(b"v".to_vec()));
}

#[tokio::test]
async fn records_in_redis_are_encrypted_and_named_by_hmac() {
    let server = RedisServer::start();
    let store = EncryptedStore::new(
        Arc::new(connect(&server).await),
        &EncryptedStore::generate_key(),
        NAMING,
    )
    .unwrap();
    let code = "authorization-code-3f9a";
    store
        .put("code", code, &grant("alice"), MINUTE)
        .await
        .unwrap();

    let pairs = server.keys_and_values();
    assert_eq!(pairs.len(), 1);
    let (key, value) = &pairs[0];
    assert_eq!(key, &store.key("code", code));
    assert!(!key.contains(code), "{key}");
    let value = String::from_utf8_lossy(value);
    for plaintext in [code, "alice", "upstream-token-of-alice"] {
        assert!(!value.contains(plaintext), "{plaintext} in {value}");
    }
    assert_eq!(store.get("code", code).await.unwrap(), Some(grant("alice")));
}

#[tokio::test]
async fn a_record_tampered_with_in_redis_counts_as_absent() {
    let server = RedisServer::start();
    let store = EncryptedStore::new(
        Arc::new(connect(&server).await),
        &EncryptedStore::generate_key(),
        NAMING,
    )
    .unwrap();
    store
        .put("grant", "g", &grant("alice"), MINUTE)
        .await
        .unwrap();
    let key = store.key("grant", "g");
    let sealed = server.get_raw(&key).unwrap();

    let mut flipped = sealed.clone();
    let middle = flipped.len() / 2;
    flipped[middle] = if flipped[middle] == b'x' { b'y' } else { b'x' };
    for (case, bytes) in [
        ("a changed character", flipped),
        ("a truncated value", sealed[..sealed.len() - 10].to_vec()),
        ("garbage", b"\xff\x00garbage".to_vec()),
    ] {
        server.set_raw(&key, &bytes);
        assert_eq!(
            store.get::<Grant>("grant", "g").await.unwrap(),
            None,
            "{case}"
        );
        assert_eq!(server.get_raw(&key), None, "{case}: get deletes it");

        store
            .put("grant", "g", &grant("alice"), MINUTE)
            .await
            .unwrap();
        server.set_raw(&key, &bytes);
        assert_eq!(
            store.take::<Grant>("grant", "g").await.unwrap(),
            None,
            "{case}"
        );
        store
            .put("grant", "g", &grant("alice"), MINUTE)
            .await
            .unwrap();
    }
    assert_eq!(store.get("grant", "g").await.unwrap(), Some(grant("alice")));
}

#[tokio::test]
async fn a_record_moved_to_another_key_in_redis_counts_as_absent() {
    let server = RedisServer::start();
    let store = EncryptedStore::new(
        Arc::new(connect(&server).await),
        &EncryptedStore::generate_key(),
        NAMING,
    )
    .unwrap();
    store
        .put("refresh", "bob", &grant("bob"), MINUTE)
        .await
        .unwrap();
    store
        .put("refresh", "mallory", &grant("mallory"), MINUTE)
        .await
        .unwrap();

    let mallorys = server.get_raw(&store.key("refresh", "mallory")).unwrap();
    server.set_raw(&store.key("refresh", "bob"), &mallorys);
    assert_eq!(store.get::<Grant>("refresh", "bob").await.unwrap(), None);
    assert_eq!(server.get_raw(&store.key("refresh", "bob")), None);
    assert_eq!(
        store.get("refresh", "mallory").await.unwrap(),
        Some(grant("mallory"))
    );
}

#[tokio::test]
async fn rotating_keys_rewrites_records_under_the_new_key() {
    let server = RedisServer::start();
    let inner: Arc<dyn Store> = Arc::new(connect(&server).await);
    let old_key = EncryptedStore::generate_key();
    let new_key = EncryptedStore::generate_key();
    let before = EncryptedStore::new(inner.clone(), &old_key, NAMING).unwrap();
    before
        .put("grant", "g", &grant("alice"), MINUTE)
        .await
        .unwrap();
    let key = before.key("grant", "g");
    let old_sealed = server.get_raw(&key).unwrap();

    let rotated =
        EncryptedStore::new(inner.clone(), &format!("{new_key},{old_key}"), NAMING).unwrap();
    assert_eq!(rotated.key("grant", "g"), key, "rotation renames nothing");
    assert_eq!(
        rotated.get("grant", "g").await.unwrap(),
        Some(grant("alice"))
    );

    let new_sealed = server.get_raw(&key).unwrap();
    assert_ne!(new_sealed, old_sealed);
    let ttl = server.ttl_of(&key);
    assert!(ttl > 0 && ttl <= 61_000, "PTTL {ttl}");
    let only_new = EncryptedStore::new(inner.clone(), &new_key, NAMING).unwrap();
    assert_eq!(
        only_new.get("grant", "g").await.unwrap(),
        Some(grant("alice"))
    );
    let only_old = EncryptedStore::new(inner, &old_key, NAMING).unwrap();
    assert_eq!(only_old.get::<Grant>("grant", "g").await.unwrap(), None);
}

#[tokio::test]
async fn redis_going_away_is_unavailable_and_coming_back_is_recovered() {
    let mut server = RedisServer::start();
    let store: Arc<RedisStore> = Arc::new(connect(&server).await);
    let records =
        EncryptedStore::new(store.clone(), &EncryptedStore::generate_key(), NAMING).unwrap();
    store.put("before", b"v".to_vec(), MINUTE).await.unwrap();

    let alice = grant("alice");
    server.stop();
    // All at once, so the test does not wait out one command timeout after another; each call is
    // still checked on its own.
    tokio::join!(
        assert_unavailable("ping", store.ping()),
        assert_unavailable("get", store.get("before")),
        assert_unavailable("put", store.put("k", b"v".to_vec(), MINUTE)),
        assert_unavailable(
            "put_if_absent",
            store.put_if_absent("k", b"v".to_vec(), MINUTE),
        ),
        assert_unavailable("take", store.take("k")),
        assert_unavailable("delete", store.delete("k")),
        assert_unavailable("delete_if_equals", store.delete_if_equals("k", b"v")),
        assert_unavailable(
            "replace_if_equals",
            store.replace_if_equals("k", b"v", b"w".to_vec(), MINUTE),
        ),
        // Encrypted records pass the failure on: "unavailable" must never read as "absent".
        assert_unavailable("record get", records.get::<Grant>("grant", "g")),
        assert_unavailable("record take", records.take::<Grant>("grant", "g")),
        assert_unavailable("record put", records.put("grant", "g", &alice, MINUTE)),
        assert_unavailable("record delete", records.delete("grant", "g")),
        assert_unavailable("record lock", records.try_lock("grant", "g", MINUTE)),
    );

    server.restart();
    eventually("the same store reaching the restarted Redis", || async {
        store.get("before").await.is_ok()
    })
    .await;
    // The restarted Redis is empty; everything works again on the same store.
    assert_eq!(store.get("before").await.unwrap(), None);
    store.put("after", b"v".to_vec(), MINUTE).await.unwrap();
    assert_eq!(store.take("after").await.unwrap(), Some(b"v".to_vec()));
    records
        .put("grant", "g", &grant("alice"), MINUTE)
        .await
        .unwrap();
    assert_eq!(
        records.get("grant", "g").await.unwrap(),
        Some(grant("alice"))
    );
    let lock = records.try_lock("grant", "g", MINUTE).await.unwrap();
    records.unlock(lock.expect("a free lock")).await.unwrap();
}

#[tokio::test]
async fn a_store_made_while_redis_is_down_works_once_redis_is_up() {
    let mut server = RedisServer::start();
    server.stop();

    let store = RedisStore::connect(&server.config())
        .await
        .expect("connecting is lazy, so start-up does not need Redis");
    assert_unavailable("get before Redis is up", store.get("k")).await;

    server.restart();
    eventually("the store reaching Redis", || async {
        store.get("k").await.is_ok()
    })
    .await;
    store.put("k", b"v".to_vec(), MINUTE).await.unwrap();
    assert_eq!(server.get_raw("k"), Some(b"v".to_vec()));
}

#[tokio::test]
async fn encrypted_records_keep_their_guarantees_in_redis() {
    let server = RedisServer::start();
    store_contract::encrypted_records_work(Arc::new(connect(&server).await), &server).await;
}

#[tokio::test]
async fn the_memory_store_broadcasts_within_the_process() {
    let memory: Arc<dyn Store> = Arc::new(MemoryStore::new());
    store_contract::publish_reaches_every_subscriber(&[
        memory.clone(),
        memory.clone(),
        memory.clone(),
    ])
    .await;

    // Subscribed as soon as `subscribe` returns: a message published at once is not missed.
    let mut subscription = memory.subscribe("channel");
    memory.publish("channel", b"at once").await.unwrap();
    assert_eq!(subscription.next_event().await, Some(SubscriptionEvent::Up));
    assert_eq!(
        subscription.next_event().await,
        Some(SubscriptionEvent::Message(b"at once".to_vec()))
    );
    // Publishing to a channel nobody listens to is no error.
    memory.publish("nobody", b"x").await.unwrap();
}

#[tokio::test]
async fn every_subscriber_hears_what_any_instance_publishes_through_redis() {
    let server = RedisServer::start_tls("toolgate", "acl-user-password");
    let mut stores: Vec<Arc<dyn Store>> = Vec::new();
    for _ in 0..3 {
        stores.push(Arc::new(connect(&server).await));
    }
    store_contract::publish_reaches_every_subscriber(&stores).await;
}

#[tokio::test]
async fn a_subscription_says_when_redis_is_gone_and_resubscribes_when_it_is_back() {
    let mut server = RedisServer::start();
    let store = connect(&server).await;
    let publisher = connect(&server).await;
    let mut subscription = store.subscribe("toolgate:test:revoked");
    assert_eq!(next_state(&mut subscription).await, SubscriptionEvent::Up);
    published_until_received(
        &publisher,
        "toolgate:test:revoked",
        &mut subscription,
        b"one",
    )
    .await;

    server.stop();
    let SubscriptionEvent::Down(reason) = next_state(&mut subscription).await else {
        panic!("the subscription did not report Redis gone");
    };
    assert!(!reason.is_empty());
    assert_unavailable("publish while Redis is down", publisher.publish("c", b"x")).await;

    server.restart();
    assert_eq!(next_state(&mut subscription).await, SubscriptionEvent::Up);
    published_until_received(
        &publisher,
        "toolgate:test:revoked",
        &mut subscription,
        b"two",
    )
    .await;
}

#[tokio::test]
async fn a_store_started_before_redis_reports_its_subscription_down_then_up() {
    let mut server = RedisServer::start();
    server.stop();
    let store = connect(&server).await;
    let mut subscription = store.subscribe("channel");
    assert!(matches!(
        next_state(&mut subscription).await,
        SubscriptionEvent::Down(_)
    ));
    server.restart();
    assert_eq!(next_state(&mut subscription).await, SubscriptionEvent::Up);
}
