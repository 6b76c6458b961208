//! A throw-away Redis Cluster on loopback: three masters and three replicas, made with
//! `redis-cli --cluster create`, plain or TLS-only with one ACL user. Killed and removed on drop.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use toolgate::{RedisConfig, RedisNode, SecretString, TlsTrust};

use super::node::{Access, Node, certificates, info_field, wait_for, wait_replicated};
use super::{INSTANCES, RawRedis, free_port};
use crate::tls::pki;

/// The node timeout: a master that does not answer for this long is failed over.
pub const NODE_TIMEOUT: Duration = Duration::from_millis(2000);

/// A generous bound for the cluster forming or healing; polled, never slept.
const SETTLE: Duration = Duration::from_secs(60);

pub struct RedisCluster {
    nodes: Vec<Node>,
    access: Access,
    dir: PathBuf,
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug)]
pub struct ClusterNodeInfo {
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// Slot ranges, inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Three masters with one replica each, plain TCP, no password.
    pub fn start() -> Self {
        Self::start_as(Access::default())
    }

    /// The same over TLS only (certificates from the test CA), where the only way in is the ACL
    /// user `user` with `password`: also between the nodes.
    pub fn start_tls(user: &str, password: &str) -> Self {
        Self::start_as(Access {
            tls: true,
            user: Some(user.to_owned()),
            password: Some(password.to_owned()),
        })
    }

    fn start_as(access: Access) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "toolgate-redis-cluster-{}-{}",
            std::process::id(),
            INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let mut nodes = Vec::new();
        for index in 0..6 {
            let node_dir = dir.join(format!("node-{index}"));
            let node = Node::start(node_dir.clone(), &access, |port| {
                let mut args = access.server_args(&node_dir, port, true);
                args.extend(
                    [
                        "--cluster-enabled",
                        "yes",
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        &NODE_TIMEOUT.as_millis().to_string(),
                        // The bus port would be port + 10000, which may be out of range or taken.
                        "--cluster-port",
                        &free_port().to_string(),
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--repl-diskless-sync-delay",
                        "0",
                    ]
                    .map(str::to_owned),
                );
                if access.tls {
                    args.extend(["--tls-cluster".to_owned(), "yes".to_owned()]);
                }
                args
            });
            nodes.push(node);
        }
        let cluster = Self { nodes, access, dir };
        cluster.create();
        cluster
    }

    fn create(&self) {
        // Bounded by coreutils' timeout: a cluster that never forms fails the test, not hangs it.
        let mut command = Command::new("timeout");
        command.args(["60", "redis-cli", "--cluster", "create"]);
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port));
        }
        command.args(["--cluster-replicas", "1", "--cluster-yes"]);
        if self.access.tls {
            command.arg("--tls").arg("--cacert").arg(pki().ca_file());
        }
        if let Some(user) = &self.access.user {
            command.arg("--user").arg(user);
        }
        if let Some(password) = &self.access.password {
            // Not on the command line, where redis-cli would warn about it.
            command.env("REDISCLI_AUTH", password);
        }
        let output = command
            .output()
            .expect("run redis-cli (installed with redis-server)");
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.logs()
        );
        self.wait_for_state_ok();
        wait_for("every master having a replica online", SETTLE, || {
            for master in self.masters() {
                let mut connection = self
                    .access
                    .connection(master.port)
                    .map_err(|e| e.to_string())?;
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut connection)
                    .map_err(|e| e.to_string())?;
                if !info.contains("state=online") {
                    return Err(format!(
                        "the master on {} has no replica online",
                        master.port
                    ));
                }
            }
            Ok(())
        });
    }

    /// Waits until every live node says `cluster_state:ok`: every slot has a master.
    pub fn wait_for_state_ok(&self) {
        wait_for("cluster_state:ok on every live node", SETTLE, || {
            for node in self.nodes.iter().filter(|node| node.is_running()) {
                let mut connection = self
                    .access
                    .connection(node.port)
                    .map_err(|e| format!("{}: {e}", node.port))?;
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut connection)
                    .map_err(|e| e.to_string())?;
                if info_field(&info, "cluster_state") != Some("ok") {
                    return Err(format!("{} says {info}", node.port));
                }
            }
            Ok(())
        });
    }

    /// `CLUSTER NODES` as a live node sees it.
    pub fn cluster_nodes(&self) -> Vec<ClusterNodeInfo> {
        let listing = self
            .nodes
            .iter()
            .filter(|node| node.is_running())
            .find_map(|node| {
                let mut connection = self.access.connection(node.port).ok()?;
                redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query::<String>(&mut connection)
                    .ok()
            })
            .expect("a live node answers CLUSTER NODES");
        listing
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let address = fields.get(1)?.split(['@', ',']).next()?;
                let port = address.rsplit_once(':')?.1.parse().ok()?;
                let flags = fields.get(2)?;
                let slots = fields
                    .iter()
                    .skip(8)
                    .filter(|range| !range.starts_with('['))
                    .filter_map(|range| match range.split_once('-') {
                        Some((from, to)) => Some((from.parse().ok()?, to.parse().ok()?)),
                        None => range.parse().ok().map(|slot| (slot, slot)),
                    })
                    .collect();
                Some(ClusterNodeInfo {
                    port,
                    master: flags.contains("master"),
                    failed: flags.contains("fail"),
                    slots,
                })
            })
            .collect()
    }

    /// The live masters that own slots.
    pub fn masters(&self) -> Vec<ClusterNodeInfo> {
        self.cluster_nodes()
            .into_iter()
            .filter(|node| node.master && !node.failed && !node.slots.is_empty())
            .collect()
    }

    /// The port of the master that owns `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let slot: u16 = {
            let port = self.live_ports()[0];
            let mut connection = self.access.connection(port).expect("a live node");
            redis::cmd("CLUSTER")
                .arg("KEYSLOT")
                .arg(key)
                .query(&mut connection)
                .expect("CLUSTER KEYSLOT")
        };
        self.masters()
            .into_iter()
            .find(|master| {
                master
                    .slots
                    .iter()
                    .any(|(from, to)| (*from..=*to).contains(&slot))
            })
            .map(|master| master.port)
            .unwrap_or_else(|| panic!("no master owns slot {slot}"))
    }

    /// Kills the node on `port`, as a crash would.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("no node on {port}"));
        node.kill();
    }

    /// Waits until every master has passed all it has on to its replica.
    pub fn wait_replicated(&self) {
        for master in self.masters() {
            wait_replicated(&self.access, master.port);
        }
    }

    /// The ports of the nodes still running.
    pub fn live_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|node| node.is_running())
            .map(|node| node.port)
            .collect()
    }

    /// Every node as a seed, in the form `REDIS_CLUSTER_URLS` takes.
    pub fn seeds(&self) -> Vec<RedisNode> {
        self.nodes
            .iter()
            .map(|node| RedisNode::new("127.0.0.1", node.port))
            .collect()
    }

    /// What `REDIS_CLUSTER_URLS` (and `REDIS_USERNAME`, `REDIS_PASSWORD`, `SSL_CERT_FILE`) say.
    pub fn config(&self) -> RedisConfig {
        let mut config = RedisConfig::cluster(self.seeds());
        config.tls = self.access.tls;
        config.username = self.access.user.clone();
        config.password = self.access.password.as_deref().map(SecretString::new);
        if self.access.tls {
            config.tls_trust = TlsTrust::from_pem_file(pki().ca_file());
        }
        config
    }

    /// The variables a user would set for this cluster.
    pub fn vars(&self) -> Vec<(String, String)> {
        let scheme = if self.access.tls { "rediss" } else { "redis" };
        let urls: Vec<String> = self
            .nodes
            .iter()
            .map(|node| format!("{scheme}://127.0.0.1:{}", node.port))
            .collect();
        let mut vars = vec![("REDIS_CLUSTER_URLS".to_owned(), urls.join(","))];
        if let Some(user) = &self.access.user {
            vars.push(("REDIS_USERNAME".to_owned(), user.clone()));
        }
        if let Some(password) = &self.access.password {
            vars.push(("REDIS_PASSWORD".to_owned(), password.clone()));
        }
        if self.access.tls {
            vars.push((
                "SSL_CERT_FILE".to_owned(),
                pki().ca_file().display().to_string(),
            ));
        }
        vars
    }

    /// A cluster connection of the tests' own, through the live nodes.
    fn connection(&self) -> redis::cluster::ClusterConnection {
        let nodes: Vec<redis::ConnectionInfo> = self
            .live_ports()
            .into_iter()
            .map(|port| self.access.client(port).get_connection_info().clone())
            .collect();
        let mut builder = redis::cluster::ClusterClientBuilder::new(nodes);
        if self.access.tls {
            builder = builder.certs(certificates());
        }
        builder
            .build()
            .and_then(|client| client.get_connection())
            .expect("a cluster connection of the tests' own")
    }
}

impl RawRedis for RedisCluster {
    fn get_raw(&self, key: &str) -> Option<Vec<u8>> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.connection())
            .expect("GET")
    }

    fn set_raw(&self, key: &str, value: &[u8]) {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("KEEPTTL")
            .query(&mut self.connection())
            .expect("SET KEEPTTL");
    }

    fn ttl_of(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.connection())
            .expect("PTTL")
    }

    fn keys_and_values(&self) -> Vec<(String, Vec<u8>)> {
        let mut pairs = Vec::new();
        for master in self.masters() {
            let mut connection = self
                .access
                .connection(master.port)
                .expect("connect to a master");
            let keys: Vec<String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .clone()
                .iter::<String>(&mut connection)
                .expect("SCAN")
                .map(|key| key.expect("a key name"))
                .collect();
            for key in keys {
                let value: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query(&mut connection)
                    .expect("GET");
                if let Some(value) = value {
                    pairs.push((key, value));
                }
            }
        }
        pairs.sort();
        pairs
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl RedisCluster {
    /// The end of every node's log, for failure messages.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("node {}:\n{}", node.port, node.log_tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}
