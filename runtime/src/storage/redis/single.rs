//! One Redis node, through a connection manager that reconnects by itself.

use std::sync::RwLock;
use std::time::{Duration, Instant};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
    RedisResult, TlsCertificates,
};

use super::Connection;
use crate::config::RedisConfig;
use crate::storage::COMMAND_TIMEOUT;

/// After Redis refuses the password the connection manager keeps that answer for good (it only
/// reconnects after I/O errors), so the store builds a new manager, at most this often.
const REBUILD_AFTER_AUTH_FAILURE: Duration = Duration::from_secs(1);

struct Manager {
    connection: ConnectionManager,
    built_at: Instant,
}

pub(super) struct SingleNode {
    client: Client,
    manager: RwLock<Manager>,
    address: String,
    username: Option<String>,
    has_password: bool,
}

impl SingleNode {
    pub(super) fn new(
        config: &RedisConfig,
        certificates: Option<&TlsCertificates>,
    ) -> RedisResult<Self> {
        let client = client_for(
            config,
            config.host.clone(),
            config.port,
            config.database,
            certificates,
        )?;
        let connection = manager_for(&client)?;
        Ok(Self {
            client,
            manager: RwLock::new(Manager {
                connection,
                built_at: Instant::now(),
            }),
            address: config.address(),
            username: config.username.clone(),
            has_password: config.password.is_some(),
        })
    }

    pub(super) fn client(&self) -> Client {
        self.client.clone()
    }

    pub(super) fn connection(&self) -> Connection {
        Connection::Manager(
            self.manager
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .connection
                .clone(),
        )
    }

    /// A PING on a connection of its own, so the error is the actual one.
    pub(super) async fn ping(&self) -> RedisResult<()> {
        let mut connection = self
            .client
            .get_multiplexed_async_connection_with_config(&connection_config())
            .await?;
        ::redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map(drop)
    }

    pub(super) fn rebuild_after_auth_failure(&self) {
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
        if let Ok(connection) = manager_for(&self.client) {
            *manager = Manager {
                connection,
                built_at: Instant::now(),
            };
        }
    }
}

/// A client for one node at `host:port` with the configuration's credentials and TLS.
pub(super) fn client_for(
    config: &RedisConfig,
    host: String,
    port: u16,
    database: i64,
    certificates: Option<&TlsCertificates>,
) -> RedisResult<Client> {
    let mut settings = RedisConnectionInfo::default().set_db(database);
    if let Some(username) = &config.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password.secret());
    }
    let address = if config.tls {
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host, port)
    };
    let info = address.into_connection_info()?.set_redis_settings(settings);
    match certificates {
        Some(certificates) => Client::build_with_tls(info, certificates.clone()),
        None => Client::open(info),
    }
}

/// Connections made for one purpose (a PING, a master found by the sentinels) give up as fast
/// as a command does.
pub(super) fn connection_config() -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(COMMAND_TIMEOUT))
        .set_response_timeout(Some(COMMAND_TIMEOUT))
}

fn manager_for(client: &Client) -> RedisResult<ConnectionManager> {
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
}
