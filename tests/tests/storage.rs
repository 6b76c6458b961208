//! The storage layer against a real redis-server: every `Store` method, atomicity under concurrency,
//! TTLs on every key, passwords, encrypted records tampered with in Redis itself, and Redis going away
//! and coming back.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use toolgate::{EncryptedStore, RedisStore, Store, StoreError};
use toolgate_tests::redis::RedisServer;

const MINUTE: Duration = Duration::from_secs(60);
const NAMING: &[u8] = b"naming secret for the storage tests";

/// Generous bounds for things that happen "soon" (expiry, reconnection); a test fails only if they
/// never happen, it never measures how soon.
const EVENTUALLY: Duration = Duration::from_secs(20);
/// A call that hangs for this long has hung: with a 500 ms command timeout nothing should come close.
const HANG: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Grant {
    subject: String,
    upstream_token: String,
}

fn grant(subject: &str) -> Grant {
    Grant {
        subject: subject.to_owned(),
        upstream_token: format!("upstream-token-of-{subject}"),
    }
}

async fn connect(server: &RedisServer) -> RedisStore {
    RedisStore::connect(&server.config())
        .await
        .expect("connect to redis-server")
}

/// Waits until `check` is true, failing the test if it never becomes true within `EVENTUALLY`.
async fn eventually<F, Fut>(what: &str, mut check: F)
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
async fn assert_unavailable<T: std::fmt::Debug>(
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

#[tokio::test]
async fn every_store_method_works_against_redis() {
    every_store_method_works(&RedisServer::start()).await;
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

async fn every_store_method_works(server: &RedisServer) {
    let store = connect(server).await;
    store.ping().await.unwrap();

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
    for round in 0..10 {
        let key = format!("code-{round}");
        stores[0]
            .put(&key, format!("value-{round}").into_bytes(), MINUTE)
            .await
            .unwrap();
        let takers: Vec<_> = (0..20)
            .map(|i| {
                let store = stores[i % 2].clone();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_if_absent_grants_a_lock_to_exactly_one_contender() {
    let server = RedisServer::start();
    let stores: Vec<Arc<RedisStore>> = vec![
        Arc::new(connect(&server).await),
        Arc::new(connect(&server).await),
    ];
    for round in 0..10 {
        let key = format!("lock-{round}");
        let contenders: Vec<_> = (0..20)
            .map(|i| {
                let store = stores[i % 2].clone();
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

        assert!(
            !stores[1]
                .delete_if_equals(&key, b"somebody-else")
                .await
                .unwrap()
        );
        assert!(
            stores[1]
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

#[tokio::test]
async fn every_key_written_has_a_ttl() {
    let server = RedisServer::start();
    let store: Arc<RedisStore> = Arc::new(connect(&server).await);
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
