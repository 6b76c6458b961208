//! A store in Redis, shared by every instance of the server.

use std::fmt;
use std::future::Future;
use std::sync::{LazyLock, RwLock};
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{
    AsyncConnectionConfig, Client, Cmd, ConnectionAddr, ErrorKind, IntoConnectionInfo,
    RedisConnectionInfo, RedisResult, Script, TlsCertificates, Value,
};
use futures::future::BoxFuture;

use super::{COMMAND_TIMEOUT, Store, StoreError, ttl_millis};
use crate::config::RedisConfig;
use crate::net::ClientTls;
use crate::net::tls::describe_tls_failure;

/// Compare-and-delete must be one step in Redis: a GET then DEL from here could delete a lock that
/// expired and was taken by another instance in between.
static DELETE_IF_EQUALS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0",
    )
});

/// Compare-and-set, for the same reason: a record consumed by GETDEL between a read and a write
/// must stay consumed.
static REPLACE_IF_EQUALS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0",
    )
});

/// After Redis refuses the password the connection manager keeps that answer for good (it only
/// reconnects after I/O errors), so the store builds a new manager, at most this often.
const REBUILD_AFTER_AUTH_FAILURE: Duration = Duration::from_secs(1);

struct Manager {
    connection: ConnectionManager,
    built_at: Instant,
}

/// A store in Redis (`REDIS_URL`, or `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`), over TLS for
/// `rediss://` and as an ACL user when one is named. Every command is bounded by a 500 ms timeout;
/// when Redis is down or slow every operation fails with `StoreError::Unavailable`, and the store
/// reconnects by itself once Redis is back.
pub struct RedisStore {
    client: Client,
    manager: RwLock<Manager>,
    /// `host:port`, for logs and errors.
    address: String,
    tls: bool,
    username: Option<String>,
    has_password: bool,
}

impl RedisStore {
    /// Prepares a connection manager. It connects lazily, on the first command, so the server starts
    /// even while Redis is down (each command then fails with `Unavailable` until it is back); call
    /// [`ping`](Self::ping) to find out at start whether Redis answers.
    pub async fn connect(config: &RedisConfig) -> Result<Self, StoreError> {
        Self::new(config)
    }

    /// `connect` for synchronous set-up (`ServerBuilder::build`): it awaits nothing either way.
    /// Fails when the CA certificates a TLS connection is to trust cannot be loaded.
    pub fn new(config: &RedisConfig) -> Result<Self, StoreError> {
        let mut settings = RedisConnectionInfo::default().set_db(config.database);
        if let Some(username) = &config.username {
            settings = settings.set_username(username);
        }
        if let Some(password) = &config.password {
            settings = settings.set_password(password.secret());
        }
        let address = if config.tls {
            ConnectionAddr::TcpTls {
                host: config.host.clone(),
                port: config.port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(config.host.clone(), config.port)
        };
        let info = address
            .into_connection_info()
            .map_err(|error| unavailable("configuring the Redis connection", &error))?
            .set_redis_settings(settings);
        let client = if config.tls {
            // The same roots as every other outbound connection: the platform's, or exactly what
            // SSL_CERT_FILE/SSL_CERT_DIR name (the redis crate takes them as PEM).
            let tls = ClientTls::load(&config.tls_trust)
                .map_err(|error| StoreError::Unavailable(error.to_string()))?;
            Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: tls.custom_roots_pem().map(<[u8]>::to_vec),
                },
            )
        } else {
            Client::open(info)
        }
        .map_err(|error| unavailable("configuring the Redis connection", &error))?;
        let connection = Self::manager_for(&client)?;
        Ok(Self {
            client,
            manager: RwLock::new(Manager {
                connection,
                built_at: Instant::now(),
            }),
            address: config.address(),
            tls: config.tls,
            username: config.username.clone(),
            has_password: config.password.is_some(),
        })
    }

    /// Opens a connection of its own and sends PING: `Ok` when Redis accepts the password and
    /// answers within the command timeout. For start-up checks: unlike a command through the shared
    /// connection, which may still be waiting between reconnection attempts, the error names the
    /// actual problem (refused, wrong password, no answer).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT));
        self.bounded("PING", async {
            let mut connection = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            ::redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        })
        .await
        .map(drop)
    }

    fn manager_for(client: &Client) -> Result<ConnectionManager, StoreError> {
        // Reconnection attempts back off quickly to a short ceiling, so a Redis that comes back
        // while they last is found within about half a second; after the last one, the next
        // command starts a new round. Commands never wait longer than COMMAND_TIMEOUT either way.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(COMMAND_TIMEOUT)
            .set_number_of_retries(10);
        ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(|error| unavailable("configuring the Redis connection", &error))
    }

    fn connection(&self) -> ConnectionManager {
        self.manager
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .connection
            .clone()
    }

    fn rebuild_after_auth_failure(&self) {
        let mut manager = self
            .manager
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if manager.built_at.elapsed() < REBUILD_AFTER_AUTH_FAILURE {
            return;
        }
        tracing::warn!(
            address = %self.address,
            user = self.username.as_deref().unwrap_or("default"),
            password_set = self.has_password,
            "Redis refused the credentials (check REDIS_USERNAME and REDIS_PASSWORD, or the URL's); reconnecting"
        );
        if let Ok(connection) = Self::manager_for(&self.client) {
            *manager = Manager {
                connection,
                built_at: Instant::now(),
            };
        }
    }

    /// Runs one request under the command timeout and turns every failure into `Unavailable`.
    async fn bounded<T>(
        &self,
        operation: &'static str,
        request: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(COMMAND_TIMEOUT, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if refuses_credentials(&error) {
                    self.rebuild_after_auth_failure();
                }
                if let Some(tls) = describe_tls_failure(&self.address, &error) {
                    return Err(StoreError::Unavailable(format!(
                        "Redis {operation} failed: {tls}"
                    )));
                }
                Err(unavailable(operation, &error))
            }
            Err(_) => Err(StoreError::Unavailable(format!(
                "Redis did not answer {operation} within {} ms",
                COMMAND_TIMEOUT.as_millis()
            ))),
        }
    }

    async fn query<T: ::redis::FromRedisValue>(
        &self,
        operation: &'static str,
        command: Cmd,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection();
        self.bounded(operation, command.query_async::<T>(&mut connection))
            .await
    }
}

/// A wrong password fails the handshake; no password where one is required fails each command.
fn refuses_credentials(error: &::redis::RedisError) -> bool {
    error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
}

/// Redis errors name the failure (refused connection, timeout, a server error), never a command's
/// arguments, so they are safe to carry.
fn unavailable(operation: &str, error: &::redis::RedisError) -> StoreError {
    if refuses_credentials(error) {
        return StoreError::Unavailable(format!(
            "Redis refused {operation}: authentication failed (check REDIS_PASSWORD and REDIS_USERNAME, or the credentials in REDIS_URL)"
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
            let mut connection = self.connection();
            let mut invocation = DELETE_IF_EQUALS.key(key);
            invocation.arg(expected);
            let deleted: i64 = self
                .bounded(
                    "compare-and-delete",
                    invocation.invoke_async(&mut connection),
                )
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
            let mut connection = self.connection();
            let mut invocation = REPLACE_IF_EQUALS.key(key);
            invocation.arg(expected).arg(value).arg(millis);
            let replaced: i64 = self
                .bounded("compare-and-set", invocation.invoke_async(&mut connection))
                .await?;
            Ok(replaced == 1)
        })
    }
}
