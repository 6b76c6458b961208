//! The master of a Redis Sentinel set-up, found through the redis crate's sentinel client.
//!
//! The store keeps one connection to the master it was last told about. Any failure on it
//! (refused, dropped, timed out, `READONLY` from a master demoted to replica) retires that
//! connection, and the next command asks the sentinels again. During a failover the sentinels
//! either still name the dead master (connecting fails) or flag it down (none is named): both
//! are `Unavailable` until a replica is promoted, and the command after that reaches the new
//! master. One discovery runs at a time, in a task of its own, so a slow sentinel never holds a
//! command past its timeout and a burst of failures asks the sentinels once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ::redis::aio::MultiplexedConnection;
use ::redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use ::redis::{
    Client, ConnectionAddr, ErrorKind, RedisError, RedisResult, TlsCertificates, TlsMode,
};
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use super::single::connection_config;
use super::{Connection, Generation};
use crate::config::{RedisConfig, RedisNode};

/// The longest one round of questions to the sentinels may take; a sentinel that does not answer
/// is skipped by the crate after its own connection timeout.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// After a discovery failed, commands within this time fail at once with its error instead of
/// asking the sentinels again: during a failover, a busy server would otherwise ask them for
/// every request.
const DISCOVERY_BACKOFF: Duration = Duration::from_millis(100);

/// The sentinels and how to sign in to them.
pub(super) struct Sentinels<'a> {
    pub(super) nodes: &'a [RedisNode],
    pub(super) master_name: &'a str,
    pub(super) username: Option<&'a str>,
    pub(super) password: Option<&'a str>,
}

/// The current master, shared by the store and its subscriptions.
#[derive(Clone)]
pub(super) struct SentinelMaster(Arc<Inner>);

struct Inner {
    sentinel: tokio::sync::Mutex<SentinelClient>,
    master_name: String,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    current: Option<Master>,
    discovery: Option<Shared<BoxFuture<'static, Result<Master, RedisError>>>>,
    last_failure: Option<(Instant, RedisError)>,
    generations: u64,
}

#[derive(Clone)]
pub(super) struct Master {
    pub(super) client: Client,
    connection: MultiplexedConnection,
    pub(super) generation: Generation,
}

impl SentinelMaster {
    pub(super) fn new(
        config: &RedisConfig,
        sentinels: Sentinels<'_>,
        certificates: Option<&TlsCertificates>,
    ) -> RedisResult<Self> {
        if sentinels.nodes.is_empty() {
            return Err(RedisError::from((
                ErrorKind::InvalidClientConfig,
                "no sentinel to ask for the master",
            )));
        }
        // The sentinels' own connections use the scheme of their URLs, which is the master's too.
        let addresses = sentinels.nodes.iter().map(|node| {
            if config.tls {
                ConnectionAddr::TcpTls {
                    host: node.host.clone(),
                    port: node.port,
                    insecure: false,
                    tls_params: None,
                }
            } else {
                ConnectionAddr::Tcp(node.host.clone(), node.port)
            }
        });
        let mut builder = SentinelClientBuilder::new(
            addresses,
            sentinels.master_name,
            SentinelServerType::Master,
        )?
        .set_client_to_redis_db(config.database);
        if let Some(username) = &config.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &config.password {
            builder = builder.set_client_to_redis_password(password.secret());
        }
        if let Some(username) = sentinels.username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = sentinels.password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        if let Some(certificates) = certificates {
            builder = builder
                .set_client_to_redis_tls_mode(TlsMode::Secure)
                .set_client_to_redis_certificates(certificates.clone())
                .set_client_to_sentinel_certificates(certificates.clone());
        }
        Ok(Self(Arc::new(Inner {
            sentinel: tokio::sync::Mutex::new(builder.build()?),
            master_name: sentinels.master_name.to_owned(),
            state: Mutex::new(State::default()),
        })))
    }

    pub(super) async fn connection(&self) -> RedisResult<(Connection, Generation)> {
        let master = self.master().await?;
        Ok((
            Connection::Multiplexed(master.connection),
            master.generation,
        ))
    }

    /// The master as last found, or found now.
    pub(super) async fn master(&self) -> RedisResult<Master> {
        let discovery = {
            let mut state = self.0.lock();
            if let Some(master) = &state.current {
                return Ok(master.clone());
            }
            if let Some((at, error)) = &state.last_failure
                && at.elapsed() < DISCOVERY_BACKOFF
            {
                return Err(error.clone());
            }
            match &state.discovery {
                Some(discovery) => discovery.clone(),
                None => {
                    let inner = self.0.clone();
                    let task = tokio::spawn(async move { inner.discover().await });
                    let discovery = async move {
                        task.await.unwrap_or_else(|_| {
                            Err(RedisError::from((
                                ErrorKind::Client,
                                "asking the sentinels for the master failed",
                            )))
                        })
                    }
                    .boxed()
                    .shared();
                    state.discovery = Some(discovery.clone());
                    discovery
                }
            }
        };
        discovery.await
    }

    /// Forgets the connection of `generation` after a failure on it, so the next command asks
    /// the sentinels again. A newer connection, made meanwhile, stays.
    pub(super) fn retire(&self, generation: Generation) {
        let mut state = self.0.lock();
        if state
            .current
            .as_ref()
            .is_some_and(|master| master.generation == generation)
        {
            tracing::info!(
                master = %self.0.master_name,
                "a connection to the Redis master failed; asking the sentinels for the master again"
            );
            state.current = None;
        }
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn discover(self: Arc<Self>) -> Result<Master, RedisError> {
        let found = tokio::time::timeout(DISCOVERY_TIMEOUT, async {
            // The crate checks with ROLE that the node the sentinels name is a master.
            let client = self.sentinel.lock().await.async_get_client().await?;
            let connection = client
                .get_multiplexed_async_connection_with_config(&connection_config())
                .await?;
            Ok::<_, RedisError>((client, connection))
        })
        .await
        .unwrap_or_else(|_| {
            Err(RedisError::from((
                ErrorKind::Io,
                "the sentinels did not name a master in time",
            )))
        });
        let mut state = self.lock();
        state.discovery = None;
        match found {
            Ok((client, connection)) => {
                state.generations += 1;
                let master = Master {
                    client,
                    connection,
                    generation: Generation(state.generations),
                };
                state.current = Some(master.clone());
                state.last_failure = None;
                Ok(master)
            }
            Err(error) => {
                state.last_failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }
}
