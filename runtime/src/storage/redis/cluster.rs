//! Redis Cluster, through the redis crate's own cluster connection: it routes each command to the
//! master owning the key's slot, follows MOVED and ASK, refreshes its slot map when a node fails or
//! a replica is promoted, and starts again from the seed nodes when it knows no live node.

use std::sync::{Arc, Mutex, OnceLock};

use ::redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use ::redis::cluster_async::ClusterConnection;
use ::redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, SingleNodeRoutingInfo,
};
use ::redis::{
    Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo, RedisResult,
    TlsCertificates,
};

use super::Connection;
use super::single::client_for;
use crate::config::{RedisConfig, RedisNode};
use crate::storage::COMMAND_TIMEOUT;

/// How often a cluster request is tried again inside its command timeout: enough to follow a
/// MOVED or ASK redirection after a resharding or a failover, not so many that a dead node is
/// hammered.
const RETRIES: u32 = 3;

pub(super) struct ClusterNodes {
    client: ClusterClient,
    /// Made on first use: making it starts a task, which needs the runtime that a command has but
    /// `ServerBuilder::build` may not.
    connection: OnceLock<ClusterConnection>,
    pubsub: Arc<PubSubNodes>,
}

impl ClusterNodes {
    pub(super) fn new(
        config: &RedisConfig,
        seeds: &[RedisNode],
        certificates: Option<&TlsCertificates>,
    ) -> RedisResult<Self> {
        let nodes = seeds
            .iter()
            .map(|node| connection_info(config, node))
            .collect::<RedisResult<Vec<_>>>()?;
        let mut builder = ClusterClientBuilder::new(nodes)
            .connection_timeout(COMMAND_TIMEOUT)
            .response_timeout(COMMAND_TIMEOUT)
            .overall_response_timeout(Some(COMMAND_TIMEOUT))
            .retries(RETRIES)
            .min_retry_wait(20)
            .max_retry_wait(200);
        if let Some(certificates) = certificates {
            builder = builder.certs(certificates.clone());
        }
        Ok(Self {
            client: builder.build()?,
            connection: OnceLock::new(),
            pubsub: Arc::new(PubSubNodes {
                config: config.clone(),
                certificates: certificates.cloned(),
                nodes: Mutex::new(seeds.to_vec()),
            }),
        })
    }

    pub(super) fn connection(&self) -> Connection {
        // Pending: the nodes are connected to in the background, so a cluster that is down is
        // found up by a later command, and commands meanwhile fail as unavailable.
        Connection::Cluster(
            self.connection
                .get_or_init(|| {
                    self.client
                        .get_pending_async_connection_with_config(cluster_config())
                })
                .clone(),
        )
    }

    pub(super) fn pubsub_nodes(&self) -> Arc<PubSubNodes> {
        self.pubsub.clone()
    }
}

/// A node chosen by the connection among those it is connected to.
pub(super) fn any_node() -> RoutingInfo {
    RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random)
}

/// Every master, each of which must answer.
pub(super) fn every_master() -> RoutingInfo {
    RoutingInfo::MultiNode((
        MultipleNodeRoutingInfo::AllMasters,
        Some(ResponsePolicy::AllSucceeded),
    ))
}

fn cluster_config() -> ClusterConfig {
    ClusterConfig::new()
        .set_connection_timeout(COMMAND_TIMEOUT)
        .set_response_timeout(COMMAND_TIMEOUT)
}

fn connection_info(config: &RedisConfig, node: &RedisNode) -> RedisResult<ConnectionInfo> {
    let mut settings = RedisConnectionInfo::default();
    if let Some(username) = &config.username {
        settings = settings.set_username(username);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password.secret());
    }
    let address = if config.tls {
        ConnectionAddr::TcpTls {
            host: node.host.clone(),
            port: node.port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(node.host.clone(), node.port)
    };
    Ok(address.into_connection_info()?.set_redis_settings(settings))
}

/// The nodes a subscription may listen on. In a cluster every node, master or replica, hears every
/// PUBLISH, so any live one will do: the seeds first, then every node a seed said is in the cluster.
pub(super) struct PubSubNodes {
    config: RedisConfig,
    certificates: Option<TlsCertificates>,
    nodes: Mutex<Vec<RedisNode>>,
}

impl PubSubNodes {
    pub(super) fn candidates(&self) -> Vec<RedisNode> {
        self.nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(super) fn client(&self, node: &RedisNode) -> RedisResult<Client> {
        client_for(
            &self.config,
            node.host.clone(),
            node.port,
            0,
            self.certificates.as_ref(),
        )
    }

    /// Asks `client`'s node for the cluster's other nodes and remembers them, so that a
    /// subscription can move to any of them later, seeds down or not.
    pub(super) async fn learn_from(&self, client: &Client) {
        let learnt = tokio::time::timeout(COMMAND_TIMEOUT, async {
            let mut connection = client
                .get_multiplexed_async_connection_with_config(&super::single::connection_config())
                .await?;
            ::redis::cmd("CLUSTER")
                .arg("NODES")
                .query_async::<String>(&mut connection)
                .await
        })
        .await;
        let Ok(Ok(listing)) = learnt else {
            return;
        };
        let mut nodes = self
            .nodes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for node in parse_cluster_nodes(&listing) {
            if !nodes.contains(&node) {
                nodes.push(node);
            }
        }
    }
}

/// The live nodes of a `CLUSTER NODES` listing: `<id> <ip:port@cport[,hostname]> <flags> ...`.
fn parse_cluster_nodes(listing: &str) -> Vec<RedisNode> {
    listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _id = fields.next()?;
            let address = fields.next()?;
            let flags = fields.next()?;
            if flags
                .split(',')
                .any(|flag| matches!(flag, "fail" | "fail?" | "handshake" | "noaddr"))
            {
                return None;
            }
            let address = address.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() {
                return None;
            }
            Some(RedisNode::new(host, port.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_listings_give_the_live_nodes() {
        let listing = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host-4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master,fail - 1426238316232 1426238315000 3 disconnected 10923-16383
6ec23923021cf3ffec47632106199cb7f496ce01 [::1]:30005@31005 myself,slave 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 connected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :0@0 handshake - 0 0 0 connected
";
        assert_eq!(
            parse_cluster_nodes(listing),
            vec![
                RedisNode::new("127.0.0.1", 30004),
                RedisNode::new("127.0.0.1", 30002),
                RedisNode::new("::1", 30005),
            ]
        );
    }
}
