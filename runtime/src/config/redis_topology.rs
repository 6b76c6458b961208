//! `REDIS_CLUSTER_URLS` and `REDIS_SENTINEL_URLS` + `REDIS_SENTINEL_MASTER`: Redis deployments of
//! more than one node. The single-node variables (`REDIS_URL`, `REDIS_HOST`, ...) stay in the parent.

use std::fmt;

use url::Url;

use super::{Reader, RedisConfig, SecretString, TlsTrust, parse_redis_url};

/// The port a sentinel listens on when its URL names none.
pub const DEFAULT_SENTINEL_PORT: u16 = 26379;

/// How the Redis deployment is laid out.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisTopology {
    /// One node at `host:port` (`REDIS_URL`, or `REDIS_HOST` and `REDIS_PORT`).
    Single,
    /// Redis Cluster (`REDIS_CLUSTER_URLS`): the seed nodes the rest of the cluster is learnt from.
    /// Every node takes the same credentials and TLS; a cluster has database 0 only.
    #[non_exhaustive]
    Cluster {
        /// At least one node of the cluster; more let the store start while some are down.
        seeds: Vec<RedisNode>,
    },
    /// A master found through Redis Sentinel (`REDIS_SENTINEL_URLS`, `REDIS_SENTINEL_MASTER`).
    /// The master and its replicas take `RedisConfig`'s credentials, TLS and database; the
    /// sentinels take the credentials their URLs carry and the same TLS as the master.
    #[non_exhaustive]
    Sentinel {
        /// The sentinels to ask; any one that answers will do.
        sentinels: Vec<RedisNode>,
        /// The name the sentinels monitor the master under (`sentinel monitor NAME ...`).
        master_name: String,
        /// The ACL user the sentinels want, if any (the user in the sentinel URLs).
        sentinel_username: Option<String>,
        /// The password the sentinels want (`requirepass` in their configuration), if any.
        sentinel_password: Option<SecretString>,
    },
}

/// A host and port of one Redis node or sentinel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisNode {
    /// The host name or address.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl RedisNode {
    /// A node at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for RedisNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl RedisConfig {
    /// A Redis Cluster reached through these seed nodes, over plain TCP, without a password.
    pub fn cluster(seeds: Vec<RedisNode>) -> Self {
        let first = seeds.first().cloned().unwrap_or(RedisNode::new("", 0));
        let mut config = Self::new(first.host, first.port);
        config.topology = RedisTopology::Cluster { seeds };
        config
    }

    /// The master the sentinels know as `master_name`, over plain TCP, without passwords.
    pub fn sentinel(sentinels: Vec<RedisNode>, master_name: impl Into<String>) -> Self {
        let first = sentinels.first().cloned().unwrap_or(RedisNode::new("", 0));
        let mut config = Self::new(first.host, first.port);
        config.topology = RedisTopology::Sentinel {
            sentinels,
            master_name: master_name.into(),
            sentinel_username: None,
            sentinel_password: None,
        };
        config
    }

    /// Where the store connects, for logs and errors: never carries credentials.
    pub fn describe(&self) -> String {
        let list = |nodes: &[RedisNode]| {
            nodes
                .iter()
                .map(RedisNode::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        match &self.topology {
            RedisTopology::Single => self.address(),
            RedisTopology::Cluster { seeds } => format!("the Redis Cluster of {}", list(seeds)),
            RedisTopology::Sentinel {
                sentinels,
                master_name,
                ..
            } => format!(
                "the master {master_name} of the sentinels {}",
                list(sentinels)
            ),
        }
    }

    /// The variable that configured this topology, for errors found when the store is made.
    pub fn variable(&self) -> &'static str {
        match self.topology {
            RedisTopology::Single => "REDIS_HOST",
            RedisTopology::Cluster { .. } => "REDIS_CLUSTER_URLS",
            RedisTopology::Sentinel { .. } => "REDIS_SENTINEL_URLS",
        }
    }
}

/// The cluster or sentinel configuration, when one of their variables is set: `Some(None)` when it
/// is set but wrong (the problems are recorded), `None` when neither is set, so the single-node
/// variables decide. Configuring more than one topology is a problem too.
pub(super) fn redis_topology_config(
    r: &mut Reader,
    tls_trust: &TlsTrust,
) -> Option<Option<RedisConfig>> {
    let single = ["REDIS_URL", "REDIS_HOST"]
        .into_iter()
        .find(|name| r.get(name).is_some());
    let cluster = r.get("REDIS_CLUSTER_URLS").is_some();
    let sentinel = r.get("REDIS_SENTINEL_URLS").is_some();
    let topologies: Vec<&str> = single
        .into_iter()
        .chain(cluster.then_some("REDIS_CLUSTER_URLS"))
        .chain(sentinel.then_some("REDIS_SENTINEL_URLS"))
        .collect();
    if topologies.len() > 1 {
        r.problem(
            topologies[1],
            format!(
                "more than one Redis topology is configured ({}); set the variables of one only",
                topologies.join(", ")
            ),
        );
        return Some(None);
    }
    if r.get("REDIS_SENTINEL_MASTER").is_some() && !sentinel {
        r.problem(
            "REDIS_SENTINEL_MASTER",
            "is set without REDIS_SENTINEL_URLS; give the sentinels' addresses too",
        );
        return Some(None);
    }
    if cluster {
        return Some(cluster_config(r, tls_trust));
    }
    if sentinel {
        return Some(sentinel_config(r, tls_trust));
    }
    None
}

fn cluster_config(r: &mut Reader, tls_trust: &TlsTrust) -> Option<RedisConfig> {
    const VAR: &str = "REDIS_CLUSTER_URLS";
    let username = r.get("REDIS_USERNAME").map(str::to_owned);
    let password = r.get("REDIS_PASSWORD").map(SecretString::new);
    let list = node_list(
        r,
        VAR,
        6379,
        "selects a database, and Redis Cluster has database 0 only: drop the path",
    )?;
    if list.password.is_some() && password.is_some() {
        r.problem(
            VAR,
            "carries a password and REDIS_PASSWORD is set too; give the password in one place only",
        );
    }
    if list.username.is_some() && username.is_some() {
        r.problem(
            VAR,
            "carries a user name and REDIS_USERNAME is set too; give the user in one place only",
        );
    }
    let mut config = RedisConfig::cluster(list.nodes);
    config.tls = list.tls;
    config.username = list.username.or(username);
    config.password = list.password.or(password);
    config.tls_trust = tls_trust.clone();
    Some(config)
}

fn sentinel_config(r: &mut Reader, tls_trust: &TlsTrust) -> Option<RedisConfig> {
    const VAR: &str = "REDIS_SENTINEL_URLS";
    let master_name = r.required(
        "REDIS_SENTINEL_MASTER",
        "the name the sentinels monitor the master under (`sentinel monitor NAME ...`)",
    );
    if master_name
        .as_deref()
        .is_some_and(|name| name.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        r.problem(
            "REDIS_SENTINEL_MASTER",
            "must be the master's name as the sentinels know it, without spaces or control characters",
        );
    }
    let list = node_list(
        r,
        VAR,
        DEFAULT_SENTINEL_PORT,
        "selects a database, and sentinels have none: drop the path",
    )?;
    let mut config = RedisConfig::sentinel(list.nodes, master_name?);
    if let RedisTopology::Sentinel {
        sentinel_username,
        sentinel_password,
        ..
    } = &mut config.topology
    {
        *sentinel_username = list.username;
        *sentinel_password = list.password;
    }
    // The master's credentials are the single node's: the sentinel URLs carry the sentinels' own.
    config.username = r.get("REDIS_USERNAME").map(str::to_owned);
    config.password = r.get("REDIS_PASSWORD").map(SecretString::new);
    config.tls = list.tls;
    config.tls_trust = tls_trust.clone();
    Some(config)
}

/// The nodes of a comma-separated URL list, with the scheme and credentials they share.
struct NodeList {
    nodes: Vec<RedisNode>,
    tls: bool,
    username: Option<String>,
    password: Option<SecretString>,
}

/// Parses `var` as `redis://` or `rediss://` URLs. Every problem is recorded by entry number; no
/// value is echoed, since a URL may carry a password.
fn node_list(r: &mut Reader, var: &str, default_port: u16, no_database: &str) -> Option<NodeList> {
    let value = r.get(var)?.to_owned();
    let entries: Vec<&str> = value.split(',').map(str::trim).collect();
    let count = entries.len();
    let problems_before = r.problems.len();
    let mut nodes = Vec::new();
    let mut schemes = Vec::new();
    let mut credentials: Vec<(Option<String>, Option<SecretString>)> = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let position = index + 1;
        let mut problem = |message: &str| {
            r.problem(var, format!("entry {position} of {count} {message}"));
        };
        if entry.is_empty() {
            problem("is empty; separate the URLs with single commas");
            continue;
        }
        let Ok(url) = Url::parse(entry) else {
            problem(
                "is not a valid URL; use redis://[user:password@]host[:port], or rediss:// for TLS",
            );
            continue;
        };
        if !matches!(url.scheme(), "redis" | "rediss") {
            problem("must start with redis:// or rediss:// (TLS)");
            continue;
        }
        let parsed = match parse_redis_url(entry) {
            Ok(parsed) => parsed,
            Err(message) => {
                problem(&format!("is wrong: {message}"));
                continue;
            }
        };
        if parsed.database != 0 {
            problem(no_database);
            continue;
        }
        schemes.push(parsed.tls);
        if parsed.username.is_some() || parsed.password.is_some() {
            credentials.push((parsed.username.clone(), parsed.password.clone()));
        }
        nodes.push(RedisNode::new(
            parsed.host,
            url.port().unwrap_or(default_port),
        ));
    }
    if schemes.iter().any(|tls| *tls) && schemes.iter().any(|tls| !*tls) {
        r.problem(
            var,
            "mixes redis:// and rediss://; use one scheme for every node",
        );
    }
    credentials.dedup();
    if credentials.len() > 1 {
        r.problem(
            var,
            "carries different user names or passwords; every node takes the same, given once or on every URL alike",
        );
    }
    if r.problems.len() > problems_before {
        return None;
    }
    let (username, password) = credentials.pop().unwrap_or_default();
    Some(NodeList {
        nodes,
        tls: schemes.first().copied().unwrap_or(false),
        username,
        password,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    use super::*;

    fn redis(vars: &[(&str, &str)]) -> RedisConfig {
        Config::from_vars(vars.iter().copied())
            .unwrap()
            .redis
            .unwrap()
    }

    fn problems_of(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        Config::from_vars(vars.iter().copied())
            .unwrap_err()
            .problems
    }

    #[test]
    fn cluster_urls_name_the_seeds_with_shared_credentials_and_tls() {
        let config = redis(&[(
            "REDIS_CLUSTER_URLS",
            "rediss://app:p%40ss@10.0.0.1:7000, rediss://10.0.0.2 ,rediss://app:p%40ss@[::1]:7002",
        )]);
        assert_eq!(
            config.topology,
            RedisTopology::Cluster {
                seeds: vec![
                    RedisNode::new("10.0.0.1", 7000),
                    RedisNode::new("10.0.0.2", 6379),
                    RedisNode::new("::1", 7002),
                ]
            }
        );
        assert!(config.tls);
        assert_eq!(config.username.as_deref(), Some("app"));
        assert_eq!(config.password.as_ref().unwrap().secret(), "p@ss");
        assert_eq!((config.host.as_str(), config.port), ("10.0.0.1", 7000));
        assert_eq!(
            config.describe(),
            "the Redis Cluster of 10.0.0.1:7000, 10.0.0.2:6379, [::1]:7002"
        );
        assert!(!format!("{config:?}").contains("p@ss"));

        let config = redis(&[
            ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000"),
            ("REDIS_USERNAME", "app"),
            ("REDIS_PASSWORD", "from-the-variable"),
        ]);
        assert!(!config.tls);
        assert_eq!(config.username.as_deref(), Some("app"));
        assert_eq!(
            config.password.as_ref().unwrap().secret(),
            "from-the-variable"
        );
        assert_eq!(config.variable(), "REDIS_CLUSTER_URLS");
    }

    #[test]
    fn sentinel_urls_carry_the_sentinels_credentials_and_the_variables_the_masters() {
        let config = redis(&[
            (
                "REDIS_SENTINEL_URLS",
                "rediss://:sentinel-pw@s1.example.com,rediss://:sentinel-pw@s2.example.com:26380",
            ),
            ("REDIS_SENTINEL_MASTER", "mymaster"),
            ("REDIS_USERNAME", "app"),
            ("REDIS_PASSWORD", "master-pw"),
        ]);
        let RedisTopology::Sentinel {
            sentinels,
            master_name,
            sentinel_username,
            sentinel_password,
        } = &config.topology
        else {
            panic!("not a sentinel topology: {:?}", config.topology);
        };
        assert_eq!(
            sentinels,
            &[
                RedisNode::new("s1.example.com", DEFAULT_SENTINEL_PORT),
                RedisNode::new("s2.example.com", 26380)
            ]
        );
        assert_eq!(master_name, "mymaster");
        assert_eq!(sentinel_username, &None);
        assert_eq!(sentinel_password.as_ref().unwrap().secret(), "sentinel-pw");
        assert_eq!(config.username.as_deref(), Some("app"));
        assert_eq!(config.password.as_ref().unwrap().secret(), "master-pw");
        assert!(config.tls);
        assert_eq!(config.variable(), "REDIS_SENTINEL_URLS");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("sentinel-pw") && !debug.contains("master-pw"),
            "{debug}"
        );
    }

    #[test]
    fn more_than_one_topology_is_refused() {
        for (vars, named) in [
            (
                vec![
                    ("REDIS_HOST", "127.0.0.1"),
                    ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000"),
                ],
                "REDIS_CLUSTER_URLS",
            ),
            (
                vec![
                    ("REDIS_URL", "redis://127.0.0.1"),
                    ("REDIS_SENTINEL_URLS", "redis://127.0.0.1"),
                    ("REDIS_SENTINEL_MASTER", "m"),
                ],
                "REDIS_SENTINEL_URLS",
            ),
            (
                vec![
                    ("REDIS_CLUSTER_URLS", "redis://127.0.0.1:7000"),
                    ("REDIS_SENTINEL_URLS", "redis://127.0.0.1"),
                    ("REDIS_SENTINEL_MASTER", "m"),
                ],
                "REDIS_SENTINEL_URLS",
            ),
        ] {
            let problems = problems_of(&vars);
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert_eq!(problems[0].0, named);
            assert!(
                problems[0].1.contains("more than one Redis topology"),
                "{problems:?}"
            );
        }
        let problems = problems_of(&[("REDIS_SENTINEL_MASTER", "m")]);
        assert_eq!(problems[0].0, "REDIS_SENTINEL_MASTER");
        let problems = problems_of(&[("REDIS_SENTINEL_URLS", "redis://127.0.0.1")]);
        assert_eq!(problems[0].0, "REDIS_SENTINEL_MASTER");
        assert!(problems[0].1.contains("missing"), "{problems:?}");
    }

    #[test]
    fn every_bad_entry_is_named_by_position_without_its_value() {
        let problems = problems_of(&[
            (
                "REDIS_CLUSTER_URLS",
                "redis://u:hunter2@h1,,http://u:hunter2@h2,redis://u:hunter2@h3/4,not a url hunter2,rediss://h5",
            ),
            ("REDIS_PASSWORD", "hunter2"),
        ]);
        let text: Vec<String> = problems.iter().map(|(v, p)| format!("{v}: {p}")).collect();
        let text = text.join("\n");
        for wanted in [
            "entry 2 of 6 is empty",
            "entry 3 of 6 must start with redis:// or rediss://",
            "entry 4 of 6 selects a database, and Redis Cluster has database 0 only",
            "entry 5 of 6 is not a valid URL",
            "mixes redis:// and rediss://",
        ] {
            assert!(text.contains(wanted), "{wanted} missing from\n{text}");
        }
        assert!(!text.contains("hunter2"), "{text}");
        assert!(problems.iter().all(|(v, _)| v == "REDIS_CLUSTER_URLS"));

        let problems = problems_of(&[
            (
                "REDIS_CLUSTER_URLS",
                "redis://:hunter2@h1,redis://:other-secret@h2",
            ),
            ("REDIS_PASSWORD", "hunter2"),
        ]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].1.contains("different user names or passwords"));

        let problems = problems_of(&[
            ("REDIS_CLUSTER_URLS", "redis://:hunter2@h1,redis://h2"),
            ("REDIS_PASSWORD", "hunter2"),
        ]);
        assert!(
            problems[0].1.contains("password in one place"),
            "{problems:?}"
        );

        let problems = problems_of(&[
            ("REDIS_SENTINEL_URLS", "redis://s1/1"),
            ("REDIS_SENTINEL_MASTER", "my master"),
        ]);
        let vars: Vec<&str> = problems.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(vars, ["REDIS_SENTINEL_MASTER", "REDIS_SENTINEL_URLS"]);
        assert!(
            problems[1].1.contains("sentinels have none"),
            "{problems:?}"
        );
    }
}
