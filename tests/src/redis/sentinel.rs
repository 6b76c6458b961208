//! A throw-away Redis Sentinel set-up on loopback: a master, one replica of it, and three
//! sentinels (quorum 2) that promote the replica when the master is gone for a second. Plain, or
//! TLS-only with an ACL user on the data nodes and a password on the sentinels.

use std::path::PathBuf;
use std::time::Duration;

use toolgate::{RedisConfig, RedisNode, RedisTopology, SecretString, TlsTrust};

use super::node::{Access, Node, info_field, wait_for, wait_replicated};
use super::{INSTANCES, RawRedis};
use crate::tls::pki;

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "toolgate-master";

/// How long the master may be silent before a sentinel thinks it down.
pub const DOWN_AFTER: Duration = Duration::from_millis(1000);

const SETTLE: Duration = Duration::from_secs(60);

pub struct RedisSentinels {
    /// The first master, then its replica.
    data: Vec<Node>,
    sentinels: Vec<Node>,
    access: Access,
    sentinel_access: Access,
    dir: PathBuf,
}

impl RedisSentinels {
    /// Plain TCP, no passwords.
    pub fn start() -> Self {
        Self::start_as(Access::default(), Access::default())
    }

    /// TLS only (certificates from the test CA) everywhere; the master and replica let in the
    /// ACL user `user` only, the sentinels want `sentinel_password`.
    pub fn start_tls(user: &str, password: &str, sentinel_password: &str) -> Self {
        Self::start_as(
            Access {
                tls: true,
                user: Some(user.to_owned()),
                password: Some(password.to_owned()),
            },
            Access {
                tls: true,
                user: None,
                password: Some(sentinel_password.to_owned()),
            },
        )
    }

    fn start_as(access: Access, sentinel_access: Access) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "toolgate-redis-sentinel-{}-{}",
            std::process::id(),
            INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let data_args = |dir: &PathBuf, port: u16| {
            let mut args = access.server_args(dir, port, true);
            args.extend(
                [
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--repl-diskless-sync-delay",
                    "0",
                ]
                .map(str::to_owned),
            );
            args
        };
        let master_dir = dir.join("master");
        let master = Node::start(master_dir.clone(), &access, |port| {
            data_args(&master_dir, port)
        });
        let replica_dir = dir.join("replica");
        let replica = Node::start(replica_dir.clone(), &access, |port| {
            let mut args = data_args(&replica_dir, port);
            args.extend([
                "--replicaof".to_owned(),
                "127.0.0.1".to_owned(),
                master.port.to_string(),
            ]);
            args
        });
        let mut sentinels = Vec::new();
        for index in 0..3 {
            let sentinel_dir = dir.join(format!("sentinel-{index}"));
            std::fs::create_dir_all(&sentinel_dir).expect("create a sentinel's directory");
            // Each sentinel rewrites its own file, so each has its own.
            let conf = sentinel_dir.join("sentinel.conf");
            let mut text = format!(
                "sentinel monitor {MASTER_NAME} 127.0.0.1 {} 2\n\
                 sentinel down-after-milliseconds {MASTER_NAME} {}\n\
                 sentinel failover-timeout {MASTER_NAME} 10000\n\
                 sentinel parallel-syncs {MASTER_NAME} 1\n",
                master.port,
                DOWN_AFTER.as_millis()
            );
            if let (Some(user), Some(password)) = (&access.user, &access.password) {
                text.push_str(&format!(
                    "sentinel auth-user {MASTER_NAME} {user}\nsentinel auth-pass {MASTER_NAME} {password}\n"
                ));
            }
            if let Some(password) = &sentinel_access.password {
                // Sentinels sign in to each other with it too.
                text.push_str(&format!("sentinel sentinel-pass {password}\n"));
            }
            std::fs::write(&conf, text).expect("write a sentinel's configuration");
            let node = Node::start(sentinel_dir.clone(), &sentinel_access, |port| {
                let mut args = vec![conf.display().to_string(), "--sentinel".to_owned()];
                args.extend(sentinel_access.server_args(&sentinel_dir, port, false));
                args
            });
            sentinels.push(node);
        }
        let set = Self {
            data: vec![master, replica],
            sentinels,
            access,
            sentinel_access,
            dir,
        };
        set.wait_until_monitored();
        set
    }

    /// Waits until every sentinel knows the replica and the two other sentinels (they find each
    /// other through the master), so that a failover can be agreed on.
    fn wait_until_monitored(&self) {
        wait_for(
            "the sentinels knowing each other and the replica",
            SETTLE,
            || {
                for sentinel in &self.sentinels {
                    let mut connection = self
                        .sentinel_access
                        .connection(sentinel.port)
                        .map_err(|e| e.to_string())?;
                    let fields: Vec<String> = redis::cmd("SENTINEL")
                        .arg("MASTER")
                        .arg(MASTER_NAME)
                        .query(&mut connection)
                        .map_err(|e| e.to_string())?;
                    let field = |name: &str| {
                        fields
                            .iter()
                            .position(|field| field == name)
                            .and_then(|at| fields.get(at + 1))
                            .cloned()
                            .unwrap_or_default()
                    };
                    if field("num-slaves") != "1" || field("num-other-sentinels") != "2" {
                        return Err(format!(
                            "sentinel {} sees {} replicas and {} other sentinels",
                            sentinel.port,
                            field("num-slaves"),
                            field("num-other-sentinels")
                        ));
                    }
                }
                let master = self.master_port();
                let mut connection = self.access.connection(master).map_err(|e| e.to_string())?;
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut connection)
                    .map_err(|e| e.to_string())?;
                if info_field(&info, "connected_slaves") != Some("1")
                    || !info.contains("state=online")
                {
                    return Err(format!("the master's replica is not online: {info}"));
                }
                Ok(())
            },
        );
    }

    /// The master's port as the sentinels name it now.
    pub fn master_port(&self) -> u16 {
        wait_for("a sentinel naming the master", SETTLE, || {
            self.named_master()
        })
    }

    fn named_master(&self) -> Result<u16, String> {
        let mut last = "no sentinel running".to_owned();
        for sentinel in self.sentinels.iter().filter(|s| s.is_running()) {
            let answer =
                self.sentinel_access
                    .connection(sentinel.port)
                    .and_then(|mut connection| {
                        redis::cmd("SENTINEL")
                            .arg("GET-MASTER-ADDR-BY-NAME")
                            .arg(MASTER_NAME)
                            .query::<Option<(String, u16)>>(&mut connection)
                    });
            match answer {
                Ok(Some((_, port))) => return Ok(port),
                Ok(None) => last = "the sentinels know no master".to_owned(),
                Err(error) => last = error.to_string(),
            }
        }
        Err(last)
    }

    /// Kills the current master's process, as a crash would; returns its port.
    pub fn kill_master(&mut self) -> u16 {
        let port = self.master_port();
        let node = self
            .data
            .iter_mut()
            .find(|node| node.port == port)
            .expect("the master is one of the data nodes");
        node.kill();
        port
    }

    /// Waits until the sentinels name a master other than `old` and that node says it is one.
    pub fn wait_for_promotion(&self, old: u16) -> u16 {
        wait_for("a replica being promoted", SETTLE, || {
            let port = self.named_master()?;
            if port == old {
                return Err(format!("the sentinels still name {old}"));
            }
            let mut connection = self.access.connection(port).map_err(|e| e.to_string())?;
            let info: String = redis::cmd("INFO")
                .arg("replication")
                .query(&mut connection)
                .map_err(|e| e.to_string())?;
            if info_field(&info, "role") == Some("master") {
                Ok(port)
            } else {
                Err(format!("{port} is not a master yet"))
            }
        })
    }

    /// Waits until the master's replica has everything the master has now.
    pub fn wait_replicated(&self) {
        wait_replicated(&self.access, self.master_port());
    }

    /// What `REDIS_SENTINEL_URLS`, `REDIS_SENTINEL_MASTER` and the other variables say.
    pub fn config(&self) -> RedisConfig {
        let mut config = RedisConfig::sentinel(
            self.sentinels
                .iter()
                .map(|sentinel| RedisNode::new("127.0.0.1", sentinel.port))
                .collect(),
            MASTER_NAME,
        );
        config.tls = self.access.tls;
        config.username = self.access.user.clone();
        config.password = self.access.password.as_deref().map(SecretString::new);
        if let RedisTopology::Sentinel {
            sentinel_password, ..
        } = &mut config.topology
        {
            *sentinel_password = self
                .sentinel_access
                .password
                .as_deref()
                .map(SecretString::new);
        }
        if self.access.tls {
            config.tls_trust = TlsTrust::from_pem_file(pki().ca_file());
        }
        config
    }

    /// The variables a user would set for this set-up.
    pub fn vars(&self) -> Vec<(String, String)> {
        let scheme = if self.access.tls { "rediss" } else { "redis" };
        let credentials = match &self.sentinel_access.password {
            Some(password) => format!(":{password}@"),
            None => String::new(),
        };
        let urls: Vec<String> = self
            .sentinels
            .iter()
            .map(|sentinel| format!("{scheme}://{credentials}127.0.0.1:{}", sentinel.port))
            .collect();
        let mut vars = vec![
            ("REDIS_SENTINEL_URLS".to_owned(), urls.join(",")),
            ("REDIS_SENTINEL_MASTER".to_owned(), MASTER_NAME.to_owned()),
        ];
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

    fn master_connection(&self) -> redis::Connection {
        let port = self.master_port();
        self.access
            .connection(port)
            .unwrap_or_else(|error| panic!("connect to the master on {port}: {error}"))
    }

    /// The end of every process's log, for failure messages.
    pub fn logs(&self) -> String {
        self.data
            .iter()
            .chain(&self.sentinels)
            .map(|node| {
                format!(
                    "{} on {}:\n{}",
                    node.dir.display(),
                    node.port,
                    node.log_tail()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl RawRedis for RedisSentinels {
    fn get_raw(&self, key: &str) -> Option<Vec<u8>> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.master_connection())
            .expect("GET")
    }

    fn set_raw(&self, key: &str, value: &[u8]) {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("KEEPTTL")
            .query(&mut self.master_connection())
            .expect("SET KEEPTTL");
    }

    fn ttl_of(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.master_connection())
            .expect("PTTL")
    }

    fn keys_and_values(&self) -> Vec<(String, Vec<u8>)> {
        let mut connection = self.master_connection();
        let keys: Vec<String> = redis::cmd("SCAN")
            .cursor_arg(0)
            .clone()
            .iter::<String>(&mut connection)
            .expect("SCAN")
            .map(|key| key.expect("a key name"))
            .collect();
        let mut pairs: Vec<(String, Vec<u8>)> = keys
            .into_iter()
            .filter_map(|key| {
                let value: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(&key)
                    .query(&mut connection)
                    .expect("GET");
                value.map(|value| (key, value))
            })
            .collect();
        pairs.sort();
        pairs
    }
}

impl Drop for RedisSentinels {
    fn drop(&mut self) {
        for node in self.sentinels.iter_mut().chain(&mut self.data) {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
