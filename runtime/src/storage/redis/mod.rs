//! A store in Redis, shared by every instance of the server: one node, a Redis Cluster, or the
//! master of a Redis Sentinel set-up. The commands are written once; each topology only says how
//! to get a connection and what to do after a failure.

mod cluster;
mod pubsub;
mod sentinel;
mod single;

use std::fmt;
use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use ::redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use ::redis::cluster_async::ClusterConnection;
use ::redis::{
    Cmd, ErrorKind, FromRedisValue, Pipeline, RedisError, RedisFuture, RedisResult, Script,
    TlsCertificates, Value,
};
use futures::future::BoxFuture;

use super::{COMMAND_TIMEOUT, Store, StoreError, Subscription, ttl_millis};
use crate::config::{RedisConfig, RedisTopology};
use crate::net::ClientTls;
use crate::net::tls::describe_tls_failure;

/// Compare-and-delete must be one step in Redis: a GET then DEL from here could delete a lock that
/// expired and was taken by another instance in between. One key, so on a cluster it runs on the
/// node that owns that key's slot.
static DELETE_IF_EQUALS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0",
    )
});

/// Compare-and-set, for the same reason: a record consumed by GETDEL between a read and a write
/// must stay consumed. One key, like every command of this store.
static REPLACE_IF_EQUALS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0",
    )
});

/// A store in Redis: one node (`REDIS_URL`, or `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`), a
/// Redis Cluster (`REDIS_CLUSTER_URLS`) or the master of a Sentinel set-up (`REDIS_SENTINEL_URLS`,
/// `REDIS_SENTINEL_MASTER`); over TLS for `rediss://` and as an ACL user when one is named.
///
/// Every command is bounded by a 500 ms timeout. When Redis is down, slow, or failing over, every
/// operation fails with `StoreError::Unavailable` (callers answer 503), and the store recovers by
/// itself: it reconnects to a node that comes back, follows a cluster's new slot owners (MOVED,
/// connection errors), and asks the sentinels again for the master after any failure.
///
/// Every operation touches exactly one key, so each keeps its guarantee on a cluster: GETDEL,
/// SET NX and the compare-and-delete / compare-and-set scripts run on the one node owning the key.
pub struct RedisStore {
    backend: Backend,
    /// Where it connects, for logs and errors. Never carries credentials.
    address: String,
    tls: bool,
    username: Option<String>,
    has_password: bool,
}

enum Backend {
    Single(single::SingleNode),
    Cluster(cluster::ClusterNodes),
    Sentinel(sentinel::SentinelMaster),
}

/// A connection of whichever topology, so that each command is written once.
#[derive(Clone)]
enum Connection {
    Manager(ConnectionManager),
    Cluster(ClusterConnection),
    Multiplexed(MultiplexedConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Manager(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
            Self::Multiplexed(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Manager(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Multiplexed(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Manager(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
            Self::Multiplexed(connection) => connection.get_db(),
        }
    }
}

/// Which connection a command went out on, so that a failure retires that one and not a newer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Generation(u64);

impl Backend {
    async fn connection(&self) -> RedisResult<(Connection, Generation)> {
        match self {
            Self::Single(single) => Ok((single.connection(), Generation::default())),
            Self::Cluster(cluster) => Ok((cluster.connection(), Generation::default())),
            Self::Sentinel(sentinel) => sentinel.connection().await,
        }
    }

    /// Whether a command that failed so is tried again on a new connection. Only with Sentinel:
    /// a connection to a master that died or was demoted (`READONLY`) is useless, while the
    /// sentinels may well name the new master already, so the first command after a failover
    /// need not fail. Trying again is safe for every command of the store: the first attempt
    /// either never reached a master, was refused, or ran on one whose writes survive only as far
    /// as they were replicated, and a repeat never grants twice (GETDEL, SET NX and the scripts
    /// answer "absent" or "not replaced" the second time, which callers treat as the safe case).
    fn retries_after(&self, error: &RedisError) -> bool {
        matches!(self, Self::Sentinel(_))
            && (error.is_io_error()
                || error.is_connection_dropped()
                || error.is_connection_refusal()
                || error.code() == Some("READONLY"))
    }

    /// After a command failed (`None`: it timed out) on the connection of `generation`.
    fn failed(&self, generation: Option<Generation>, error: Option<&RedisError>) {
        match self {
            Self::Single(single) => {
                if error.is_some_and(refuses_credentials) {
                    single.rebuild_after_auth_failure();
                }
            }
            // The cluster connection repairs itself: it reconnects to nodes, refreshes its slot
            // map on MOVED and on connection errors, and starts again from the seeds when it
            // knows no node.
            Self::Cluster(_) => {}
            Self::Sentinel(sentinel) => {
                if let Some(generation) = generation {
                    sentinel.retire(generation);
                }
            }
        }
    }
}

impl RedisStore {
    /// Prepares the connection. It is made lazily, on the first command, so the server starts
    /// even while Redis is down (each command then fails with `Unavailable` until it is back); call
    /// [`ping`](Self::ping) to find out at start whether Redis answers.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        Self::new(config)
    }

    /// `connect` for synchronous set-up (`ServerBuilder::build`): it awaits nothing either way.
    /// Fails when the CA certificates a TLS connection is to trust cannot be loaded, or a cluster
    /// or sentinel configuration names no node.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        let certificates = if config.tls {
            // The same roots as every other outbound connection: the platform's, or exactly what
            // SSL_CERT_FILE/SSL_CERT_DIR name (the redis crate takes them as PEM).
            let tls = ClientTls::load(&config.tls_trust)
                .map_err(|error| StoreError::Unavailable(error.to_string()))?;
            Some(TlsCertificates {
                client_tls: None,
                root_cert: tls.custom_roots_pem().map(<[u8]>::to_vec),
            })
        } else {
            None
        };
        let configuring =
            |error: RedisError| unavailable("configuring the Redis connection", &error);
        let backend = match &config.topology {
            RedisTopology::Single => Backend::Single(
                single::SingleNode::new(config, certificates.as_ref()).map_err(configuring)?,
            ),
            RedisTopology::Cluster { seeds } => Backend::Cluster(
                cluster::ClusterNodes::new(config, seeds, certificates.as_ref())
                    .map_err(configuring)?,
            ),
            RedisTopology::Sentinel {
                sentinels,
                master_name,
                sentinel_username,
                sentinel_password,
            } => Backend::Sentinel(
                sentinel::SentinelMaster::new(
                    config,
                    sentinel::Sentinels {
                        nodes: sentinels,
                        master_name,
                        username: sentinel_username.as_deref(),
                        password: sentinel_password.as_ref().map(|p| p.secret()),
                    },
                    certificates.as_ref(),
                )
                .map_err(configuring)?,
            ),
        };
        Ok(Self {
            backend,
            address: config.describe(),
            tls: config.tls,
            username: config.username.clone(),
            has_password: config.password.is_some(),
        })
    }

    /// Sends PING: `Ok` when Redis accepts the credentials and answers within the command
    /// timeout. For one node the PING goes on a connection of its own, so that, unlike a command
    /// through the shared connection (which may still be waiting between reconnection attempts),
    /// the error names the actual problem (refused, wrong password, no answer). On a cluster every
    /// master must answer; with Sentinel, the master the sentinels name (asked again if the last
    /// one failed). Both go through the store's own connection, which is made on first use.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Single(single) => {
                let result = tokio::time::timeout(COMMAND_TIMEOUT, single.ping()).await;
                self.outcome("PING", None, result)
            }
            Backend::Cluster(_) => {
                self.run("PING", |connection| async move {
                    let Connection::Cluster(mut connection) = connection else {
                        unreachable!("a cluster backend hands out cluster connections")
                    };
                    connection
                        .route_command(::redis::cmd("PING"), cluster::every_master())
                        .await
                        .map(drop)
                })
                .await
            }
            Backend::Sentinel(_) => self
                .query::<String>("PING", ::redis::cmd("PING"))
                .await
                .map(drop),
        }
    }

    /// Runs one request under the command timeout and turns every failure into `Unavailable`.
    async fn run<T, F, Fut>(&self, operation: &'static str, request: F) -> Result<T, StoreError>
    where
        F: Fn(Connection) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let mut generation = None;
        let result = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let (connection, used) = self.backend.connection().await?;
            generation = Some(used);
            match request(connection).await {
                Err(error) if self.backend.retries_after(&error) => {
                    // The connection is to a master that is gone or was demoted: within the same
                    // time budget, once, on the master the sentinels name now.
                    self.backend.failed(Some(used), Some(&error));
                    let (connection, used) = self.backend.connection().await?;
                    generation = Some(used);
                    request(connection).await
                }
                result => result,
            }
        })
        .await;
        self.outcome(operation, generation, result)
    }

    fn outcome<T>(
        &self,
        operation: &'static str,
        generation: Option<Generation>,
        result: Result<RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match result {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                self.backend.failed(generation, Some(&error));
                if let Some(tls) = describe_tls_failure(&self.address, &error) {
                    return Err(StoreError::Unavailable(format!(
                        "Redis {operation} failed: {tls}"
                    )));
                }
                Err(unavailable(operation, &error))
            }
            Err(_) => {
                self.backend.failed(generation, None);
                Err(StoreError::Unavailable(format!(
                    "Redis did not answer {operation} within {} ms",
                    COMMAND_TIMEOUT.as_millis()
                )))
            }
        }
    }

    async fn query<T: FromRedisValue>(
        &self,
        operation: &'static str,
        command: Cmd,
    ) -> Result<T, StoreError> {
        self.run(operation, |mut connection| {
            let command = command.clone();
            async move { command.query_async::<T>(&mut connection).await }
        })
        .await
    }

    async fn script<T: FromRedisValue>(
        &self,
        operation: &'static str,
        script: &'static Script,
        key: &str,
        args: &[&[u8]],
    ) -> Result<T, StoreError> {
        self.run(operation, |mut connection| async move {
            let mut invocation = script.key(key);
            for arg in args {
                invocation.arg(*arg);
            }
            invocation.invoke_async(&mut connection).await
        })
        .await
    }

    /// Where the store connects (a node, a cluster's seeds, or the sentinels), for logs.
    pub fn address(&self) -> &str {
        &self.address
    }
}

/// A wrong password fails the handshake; no password where one is required fails each command.
fn refuses_credentials(error: &RedisError) -> bool {
    error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
}

/// Redis errors name the failure (refused connection, timeout, a server error, a node's address),
/// never a command's arguments, so they are safe to carry.
fn unavailable(operation: &str, error: &RedisError) -> StoreError {
    if refuses_credentials(error) {
        return StoreError::Unavailable(format!(
            "Redis refused {operation}: authentication failed (check REDIS_PASSWORD and REDIS_USERNAME, or the credentials in the Redis URLs)"
        ));
    }
    StoreError::Unavailable(format!("Redis {operation} failed: {error}"))
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("address", &self.address)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field(
                "password",
                &if self.has_password {
                    "[redacted]"
                } else {
                    "none"
                },
            )
            .finish()
    }
}

impl Store for RedisStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.query("GET", ::redis::cmd("GET").arg(key).to_owned()))
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let millis = ttl_millis(ttl);
            if millis == 0 {
                return self.delete(key).await;
            }
            let command = ::redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis)
                .to_owned();
            self.query::<Value>("SET", command).await.map(drop)
        })
    }

    fn put_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let millis = ttl_millis(ttl);
            if millis == 0 {
                return Ok(false);
            }
            let command = ::redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .to_owned();
            let reply: Value = self.query("SET NX", command).await?;
            Ok(!matches!(reply, Value::Nil))
        })
    }

    fn take<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Vec<u8>>, StoreError>> {
        Box::pin(self.query("GETDEL", ::redis::cmd("GETDEL").arg(key).to_owned()))
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.query::<i64>("DEL", ::redis::cmd("DEL").arg(key).to_owned())
                .await
                .map(drop)
        })
    }

    fn delete_if_equals<'a>(
        &'a self,
        key: &'a str,
        expected: &'a [u8],
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let deleted: i64 = self
                .script("compare-and-delete", &DELETE_IF_EQUALS, key, &[expected])
                .await?;
            Ok(deleted == 1)
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
            let millis = ttl_millis(ttl);
            if millis == 0 {
                return self.delete_if_equals(key, expected).await;
            }
            let millis = millis.to_string();
            let replaced: i64 = self
                .script(
                    "compare-and-set",
                    &REPLACE_IF_EQUALS,
                    key,
                    &[expected, &value, millis.as_bytes()],
                )
                .await?;
            Ok(replaced == 1)
        })
    }

    fn publish<'a>(
        &'a self,
        channel: &'a str,
        message: &'a [u8],
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let mut command = ::redis::cmd("PUBLISH");
            command.arg(channel).arg(message);
            match &self.backend {
                // Any node passes a message on to the whole cluster, so it goes to whichever node
                // answers, not to the owner of a slot that may be failing over.
                Backend::Cluster(_) => {
                    self.run("PUBLISH", |connection| {
                        let command = command.clone();
                        async move {
                            let Connection::Cluster(mut connection) = connection else {
                                unreachable!("a cluster backend hands out cluster connections")
                            };
                            connection
                                .route_command(command, cluster::any_node())
                                .await
                                .map(drop)
                        }
                    })
                    .await
                }
                _ => self.query::<i64>("PUBLISH", command).await.map(drop),
            }
        })
    }

    fn subscribe(&self, channel: &str) -> Subscription {
        let source = match &self.backend {
            Backend::Single(single) => pubsub::Source::Single(Box::new(single.client())),
            Backend::Cluster(cluster) => pubsub::Source::Cluster(cluster.pubsub_nodes()),
            Backend::Sentinel(sentinel) => pubsub::Source::Sentinel(sentinel.clone()),
        };
        pubsub::subscribe(source, channel.to_owned(), self.address.clone())
    }
}
