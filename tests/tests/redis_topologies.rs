//! The store on a real Redis Cluster (three masters, three replicas) and a real Sentinel set-up
//! (a master, a replica, three sentinels), configured through the variables a user sets: every
//! store guarantee over TLS with an ACL user, then a master killed. While it fails over, requests
//! are unavailable (a 503 with `Retry-After` over HTTP), never a panic, a 500 or a wrong answer;
//! after the promotion, a sign-in made before still works, records written before are there,
//! writes work again and subscriptions are back, all without a restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use toolgate::{
    AccessToken, Config, EncryptedStore, RedisConfig, RedisStore, Server, Store, StoreError,
    SubscriptionEvent, mcp_tool,
};
use toolgate_dev_idp::{AutoApprove, DevIdp, DevIdpConfig};
use toolgate_tests::flow::Flow;
use toolgate_tests::redis::RawRedis;
use toolgate_tests::redis::cluster::RedisCluster;
use toolgate_tests::redis::sentinel::RedisSentinels;
use toolgate_tests::store_contract::{
    self, EVENTUALLY, MINUTE, NAMING, grant, next_state, published_until_received,
};
use toolgate_tests::{TestServer, mcp_post, tools_call_body};

/// The caller's subject.
#[mcp_tool]
async fn whoami(token: AccessToken) -> String {
    token.claims().sub.clone()
}

const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const SIGNING_KEY: &str = "test-signing-key-0123456789-abcdefghijklmnop";
const CHANNEL: &str = "toolgate:test:revoked";

/// The store as the server makes it: from the variables a user sets.
fn store_from(vars: Vec<(String, String)>) -> RedisStore {
    let config = Config::from_vars(vars).expect("the variables are valid");
    RedisStore::new(&config.redis.expect("a Redis topology")).expect("the store is made")
}

/// Every store guarantee, checked on one deployment by two stores (two server instances) and a
/// third that publishes.
async fn every_guarantee_holds(vars: Vec<(String, String)>, raw: &dyn RawRedis) {
    let stores: Vec<Arc<RedisStore>> = (0..3).map(|_| Arc::new(store_from(vars.clone()))).collect();
    store_contract::every_store_method_works(&stores[0], raw).await;
    store_contract::of_twenty_concurrent_takes_exactly_one_gets_the_value(&stores[..2]).await;
    store_contract::put_if_absent_grants_a_lock_to_exactly_one_contender(&stores[..2], raw).await;
    store_contract::compare_and_set_replaces_exactly_once(&stores[..2]).await;
    store_contract::encrypted_records_work(stores[0].clone(), raw).await;
    store_contract::every_key_written_has_a_ttl(stores[1].clone(), raw).await;
    let dyn_stores: Vec<Arc<dyn Store>> = stores
        .iter()
        .map(|store| store.clone() as Arc<dyn Store>)
        .collect();
    store_contract::publish_reaches_every_subscriber(&dyn_stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_over_tls_with_an_acl_user_keeps_every_store_guarantee() {
    let cluster = RedisCluster::start_tls("toolgate", "cluster-acl-password");
    let store = store_from(cluster.vars());
    assert!(
        format!("{store:?}").contains("Redis Cluster")
            && !format!("{store:?}").contains("cluster-acl-password"),
        "{store:?}"
    );
    every_guarantee_holds(cluster.vars(), &cluster).await;
    // The keys spread over the masters: the store does route by slot.
    let masters = cluster.masters();
    assert_eq!(masters.len(), 3);
    let mut owners: Vec<u16> = [
        "k", "bytes", "lock", "r", "code-0", "code-1", "code-2", "lock-3",
    ]
    .iter()
    .map(|key| cluster.master_of(key))
    .collect();
    owners.sort();
    owners.dedup();
    assert!(owners.len() > 1, "every test key on one master: {owners:?}");

    // A seed that is down is skipped: the others lead to the cluster.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut config = cluster.config();
    if let toolgate::RedisTopology::Cluster { seeds, .. } = &mut config.topology {
        seeds.insert(0, toolgate::RedisNode::new("127.0.0.1", dead));
    }
    let store = RedisStore::new(&config).unwrap();
    store_contract::eventually("a store whose first seed is down answering", || async {
        store.ping().await.is_ok()
    })
    .await;
    store
        .put("via-the-other-seeds", b"v".to_vec(), MINUTE)
        .await
        .unwrap();
    assert_eq!(cluster.get_raw("via-the-other-seeds"), Some(b"v".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_over_tls_with_an_acl_user_keeps_every_store_guarantee() {
    let sentinels =
        RedisSentinels::start_tls("toolgate", "master-acl-password", "sentinel-password");
    let store = store_from(sentinels.vars());
    let debug = format!("{store:?}");
    assert!(
        !debug.contains("master-acl-password") && !debug.contains("sentinel-password"),
        "{debug}"
    );
    every_guarantee_holds(sentinels.vars(), &sentinels).await;

    // A wrong password for the master or for the sentinels is unavailable, and never echoed.
    let mut vars = sentinels.vars();
    for (name, value) in &mut vars {
        if name == "REDIS_PASSWORD" {
            *value = "not-the-master-password".to_owned();
        }
    }
    let store = store_from(vars);
    let message = store_contract::assert_unavailable("PING", store.ping()).await;
    assert!(!message.contains("not-the-master-password"), "{message}");
    store_contract::assert_unavailable("GET", store.get("k")).await;

    let mut config = sentinels.config();
    if let toolgate::RedisTopology::Sentinel {
        sentinel_password, ..
    } = &mut config.topology
    {
        *sentinel_password = Some(toolgate::SecretString::new("not-the-sentinel-password"));
    }
    let store = RedisStore::new(&config).unwrap();
    let message = store_contract::assert_unavailable("GET", store.get("k")).await;
    assert!(!message.contains("not-the-sentinel-password"), "{message}");
}

/// A cluster or a sentinel set-up, for the failover scenario both go through.
enum Deployment {
    Cluster(RedisCluster),
    Sentinel(RedisSentinels),
}

impl Deployment {
    fn vars(&self) -> Vec<(String, String)> {
        match self {
            Self::Cluster(cluster) => cluster.vars(),
            Self::Sentinel(sentinels) => sentinels.vars(),
        }
    }

    fn raw(&self) -> &dyn RawRedis {
        match self {
            Self::Cluster(cluster) => cluster,
            Self::Sentinel(sentinels) => sentinels,
        }
    }

    /// The master that holds `key`.
    fn master_of(&self, key: &str) -> u16 {
        match self {
            Self::Cluster(cluster) => cluster.master_of(key),
            Self::Sentinel(sentinels) => sentinels.master_port(),
        }
    }

    /// A store whose subscriptions start on the master on `port` (with Sentinel they are always on
    /// the master; a cluster subscription tries its seeds in order).
    fn subscriber_on(&self, port: u16) -> RedisStore {
        match self {
            Self::Cluster(cluster) => {
                let mut config = cluster.config();
                if let toolgate::RedisTopology::Cluster { seeds, .. } = &mut config.topology {
                    seeds.sort_by_key(|seed| seed.port != port);
                }
                RedisStore::new(&config).unwrap()
            }
            Self::Sentinel(sentinels) => RedisStore::new(&sentinels.config()).unwrap(),
        }
    }

    fn wait_replicated(&self) {
        match self {
            Self::Cluster(cluster) => cluster.wait_replicated(),
            Self::Sentinel(sentinels) => sentinels.wait_replicated(),
        }
    }

    fn kill(&mut self, port: u16) {
        match self {
            Self::Cluster(cluster) => cluster.kill(port),
            Self::Sentinel(sentinels) => assert_eq!(sentinels.kill_master(), port),
        }
    }

    /// Waits, behind the store's back, until a replica has taken over from `dead`.
    fn wait_promoted(&self, dead: u16) {
        match self {
            Self::Cluster(cluster) => {
                cluster.wait_for_state_ok();
                let masters = cluster.masters();
                assert!(masters.iter().all(|master| master.port != dead));
                assert_eq!(masters.len(), 3, "{masters:?}");
            }
            Self::Sentinel(sentinels) => {
                sentinels.wait_for_promotion(dead);
            }
        }
    }

    fn logs(&self) -> String {
        match self {
            Self::Cluster(cluster) => cluster.logs(),
            Self::Sentinel(sentinels) => sentinels.logs(),
        }
    }
}

fn idp_config() -> DevIdpConfig {
    DevIdpConfig {
        auto_approve: Some(AutoApprove {
            user: "auth0|alice".into(),
            permissions: vec![],
        }),
        ..DevIdpConfig::default()
    }
}

fn server_vars(
    idp: &DevIdp,
    base: &url::Url,
    deployment: &Deployment,
    encryption_keys: &str,
) -> Vec<(String, String)> {
    let mut vars = toolgate_tests::auth0_vars(idp, base);
    vars.extend(
        [
            ("JWT_SIGNING_KEY", SIGNING_KEY.to_owned()),
            ("STORAGE_ENCRYPTION_KEY", encryption_keys.to_owned()),
            ("TOOLGATE_DEV_MODE", "true".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    // The deployment's CA is the same test CA the identity provider's certificate comes from.
    vars.extend(
        deployment
            .vars()
            .into_iter()
            .filter(|(name, _)| name != "SSL_CERT_FILE"),
    );
    vars
}

fn server_builder(vars: Vec<(String, String)>) -> toolgate::ServerBuilder {
    Server::builder()
        .config(Config::from_vars(vars).expect("the server's variables are valid"))
        .stateless(true)
        .tool::<whoami>()
}

async fn call(server: &TestServer, token: &str) -> reqwest::Response {
    mcp_post(
        &toolgate_tests::tls::http_client(),
        &server.mcp_url(),
        tools_call_body("whoami", json!({})),
    )
    .bearer_auth(token)
    .send()
    .await
    .unwrap()
}

fn jti_of(token: &str) -> String {
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["jti"].as_str().expect("a jti").to_owned()
}

/// Kills the master holding a signed-in user's records and checks every request on the way:
/// during the failover 503 with `Retry-After` (HTTP) or `Unavailable` (store), never anything
/// else; after it the same sign-in works on instances that never saw it, records written before
/// are all there, and writes, refreshes, sign-ins and subscriptions work again.
async fn a_master_failing_over(mut deployment: Deployment) {
    let idp = toolgate_tests::start_idp(idp_config()).await;
    let encryption_keys = EncryptedStore::generate_key();
    let server = TestServer::start(|base| {
        server_builder(server_vars(&idp, &base, &deployment, &encryption_keys))
    })
    .await;
    let public = url::Url::parse(&server.base_url()).unwrap();
    let vars = server_vars(&idp, &public, &deployment, &encryption_keys);
    let flow = Flow::new(server.base_url());
    let (client, tokens) = flow.sign_in(REDIRECT, "openid profile email").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(call(&server, &access).await.status(), 200);

    // The record a call with this token needs, and the master that holds it.
    let access_key = server_builder(vars.clone())
        .build()
        .unwrap()
        .store()
        .expect("the authorization server runs")
        .key("access", &jti_of(&access));
    let victim = deployment.master_of(&access_key);

    // Records of the store's own, on every master, and one on the victim.
    let store = Arc::new(store_from(deployment.vars()));
    let records =
        EncryptedStore::new(store.clone(), &EncryptedStore::generate_key(), NAMING).unwrap();
    for i in 0..30 {
        store
            .put(
                &format!("before-{i}"),
                format!("value-{i}").into_bytes(),
                MINUTE,
            )
            .await
            .unwrap();
        records
            .put(
                "grant",
                &format!("g{i}"),
                &grant(&format!("user-{i}")),
                MINUTE,
            )
            .await
            .unwrap();
    }
    let (on_victim, victims_value) = (0..30)
        .map(|i| (format!("before-{i}"), format!("value-{i}").into_bytes()))
        .find(|(key, _)| deployment.master_of(key) == victim)
        .expect("a key on the victim");
    let subscriber = deployment.subscriber_on(victim);
    let mut subscription = subscriber.subscribe(CHANNEL);
    assert_eq!(next_state(&mut subscription).await, SubscriptionEvent::Up);
    // Instances that have resolved nothing yet, so every call they answer needs the store.
    let cold = TestServer::start_behind(public.clone(), |_| server_builder(vars.clone())).await;
    let colder = TestServer::start_behind(public.clone(), |_| server_builder(vars.clone())).await;

    deployment.wait_replicated();
    deployment.kill(victim);

    // Until the promotion: unavailable, and only that. Store calls and HTTP calls alternate, each
    // answering (not hanging); the first answer after the kill cannot come from a promoted
    // replica yet (it takes at least the node timeout), so it is unavailable.
    let deadline = Instant::now() + EVENTUALLY;
    let mut unavailable = 0;
    let mut store_back = false;
    let mut http_back = false;
    while !(store_back && http_back) {
        assert!(
            Instant::now() < deadline,
            "service did not resume after the failover; logs:\n{}",
            deployment.logs()
        );
        if !store_back {
            let answer = tokio::time::timeout(store_contract::HANG, store.get(&on_victim))
                .await
                .expect("a store call hung during the failover");
            match answer {
                Ok(Some(value)) => {
                    assert_eq!(value, victims_value, "{on_victim} read wrong");
                    store_back = true;
                }
                Ok(None) => {
                    panic!("{on_victim} read as absent during the failover: a wrong answer")
                }
                Err(StoreError::Unavailable(_)) => unavailable += 1,
            }
        }
        if !http_back {
            let response = call(&cold, &access).await;
            match response.status().as_u16() {
                200 => http_back = true,
                503 => {
                    assert!(
                        response.headers().contains_key("retry-after"),
                        "a 503 without Retry-After"
                    );
                    unavailable += 1;
                }
                other => panic!(
                    "a call during the failover was answered {other}: {}",
                    response.text().await.unwrap_or_default()
                ),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(unavailable > 0, "no request saw the failover");
    deployment.wait_promoted(victim);
    assert_eq!(deployment.raw().get_raw(&on_victim), Some(victims_value));

    // Nothing written (and replicated) before is lost.
    for i in 0..30 {
        assert_eq!(
            store.get(&format!("before-{i}")).await.unwrap(),
            Some(format!("value-{i}").into_bytes()),
            "before-{i}"
        );
        assert_eq!(
            records.get("grant", &format!("g{i}")).await.unwrap(),
            Some(grant(&format!("user-{i}"))),
            "record g{i}"
        );
    }
    // Writes, takes, locks and scripts work again, on every master.
    for i in 0..30 {
        let key = format!("after-{i}");
        store.put(&key, b"v".to_vec(), MINUTE).await.unwrap();
        assert!(
            store
                .replace_if_equals(&key, b"v", b"w".to_vec(), MINUTE)
                .await
                .unwrap()
        );
        assert_eq!(store.take(&key).await.unwrap(), Some(b"w".to_vec()));
        let lock = records.try_lock("lock", &key, MINUTE).await.unwrap();
        records.unlock(lock.expect("a free lock")).await.unwrap();
    }

    // The sign-in made before the failover still works, on an instance that never saw it.
    let response = call(&colder, &access).await;
    assert_eq!(response.status(), 200);
    // Its refresh token rotates, and the new access token works.
    let response = flow.refresh(&client, &refresh).await;
    assert_eq!(response.status(), 200, "the refresh after the failover");
    let refreshed: Value = response.json().await.unwrap();
    let new_access = refreshed["access_token"].as_str().unwrap();
    assert_eq!(call(&cold, new_access).await.status(), 200);
    // And a new sign-in writes all its records.
    let (_, tokens) = flow.sign_in(REDIRECT, "openid").await;
    assert_eq!(
        call(&colder, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );

    // The subscription that was on the victim came back elsewhere, by itself.
    let SubscriptionEvent::Down(_) = next_state(&mut subscription).await else {
        panic!("the subscription on the killed master did not report Down");
    };
    published_until_received(store.as_ref(), CHANNEL, &mut subscription, b"after").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_failing_over_keeps_sign_ins_and_records() {
    a_master_failing_over(Deployment::Cluster(RedisCluster::start())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_master_failing_over_keeps_sign_ins_and_records() {
    a_master_failing_over(Deployment::Sentinel(RedisSentinels::start())).await;
}

#[test]
fn one_topology_at_a_time() {
    let error = Config::from_vars([
        ("REDIS_HOST", "127.0.0.1"),
        ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000"),
    ])
    .unwrap_err();
    assert_eq!(error.problems[0].0, "REDIS_CLUSTER_URLS");
    let config = RedisConfig::cluster(vec![]);
    assert!(RedisStore::new(&config).is_err(), "a cluster without seeds");
}
