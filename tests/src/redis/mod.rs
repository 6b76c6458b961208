//! Throw-away `redis-server` processes on loopback (a single node, a cluster, a sentinel set-up),
//! with raw access for tests that inspect or tamper with what the store wrote.

pub mod cluster;
mod node;
pub mod sentinel;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use toolgate::{RedisConfig, SecretString, TlsTrust};

use crate::tls::pki;

/// How long a fresh redis-server gets to answer PING before the test gives up on it.
pub(crate) const START_DEADLINE: Duration = Duration::from_secs(15);

pub(crate) static INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// A `redis-server` on `127.0.0.1:<free port>` with no persistence and its own temporary directory;
/// killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
    /// `Some(user)`: TLS only (no plain port), and `default` is off: the only way in is this ACL
    /// user with `password`, as on managed Redis.
    tls_user: Option<String>,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server without a password.
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Starts a server that requires `password` (`requirepass`).
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(Some(password.to_owned()))
    }

    /// Starts a server as managed Redis runs: TLS only, with a certificate from the test CA, its
    /// `default` user off and one ACL user, `user`, signing in with `password`.
    pub fn start_tls(user: &str, password: &str) -> Self {
        Self::start_as(Some(password.to_owned()), Some(user.to_owned()))
    }

    fn start_with(password: Option<String>) -> Self {
        Self::start_as(password, None)
    }

    fn start_as(password: Option<String>, tls_user: Option<String>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "toolgate-redis-{}-{}",
            std::process::id(),
            INSTANCES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory for redis-server");
        // A port found free can be taken before redis-server binds it; another port is tried then.
        let mut last_failure = String::new();
        for _ in 0..5 {
            let mut server = Self {
                child: None,
                port: free_port(),
                password: password.clone(),
                tls_user: tls_user.clone(),
                dir: dir.clone(),
            };
            match server.spawn_and_wait() {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("redis-server did not start: {last_failure}");
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// What `REDIS_HOST`, `REDIS_PORT` and `REDIS_PASSWORD` (or `REDIS_URL`) would say for this
    /// server; for a TLS server, trusting the test CA as `SSL_CERT_FILE` would.
    pub fn config(&self) -> RedisConfig {
        let mut config = RedisConfig::new("127.0.0.1", self.port);
        config.password = self.password.as_deref().map(SecretString::new);
        if let Some(user) = &self.tls_user {
            config.username = Some(user.clone());
            config.tls = true;
            config.tls_trust = TlsTrust::from_pem_file(pki().ca_file());
        }
        config
    }

    /// The same server address with another password (or none), for authentication tests.
    pub fn config_with_password(&self, password: Option<&str>) -> RedisConfig {
        let mut config = self.config();
        config.password = password.map(SecretString::new);
        config
    }

    /// `REDIS_URL` for this server: `rediss://user:password@127.0.0.1:PORT/0` when it is a TLS
    /// server, `redis://` otherwise.
    pub fn url(&self) -> String {
        let scheme = if self.tls_user.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let credentials = match (&self.tls_user, &self.password) {
            (Some(user), Some(password)) => format!("{user}:{password}@"),
            (None, Some(password)) => format!(":{password}@"),
            _ => String::new(),
        };
        format!("{scheme}://{credentials}127.0.0.1:{}/0", self.port)
    }

    /// The variables that point toolgate at this server, in the form a user would write: for a
    /// TLS server `REDIS_URL` plus the CA as `SSL_CERT_FILE`, otherwise the seed's variables.
    pub fn vars(&self) -> Vec<(String, String)> {
        if self.tls_user.is_some() {
            return vec![
                ("REDIS_URL".to_owned(), self.url()),
                (
                    "SSL_CERT_FILE".to_owned(),
                    pki().ca_file().display().to_string(),
                ),
            ];
        }
        let mut vars = vec![
            ("REDIS_HOST".to_owned(), "127.0.0.1".to_owned()),
            ("REDIS_PORT".to_owned(), self.port.to_string()),
        ];
        if let Some(password) = &self.password {
            vars.push(("REDIS_PASSWORD".to_owned(), password.clone()));
        }
        vars
    }

    /// Kills the server (as a crash would) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server if running and starts a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let mut last_failure = String::new();
        // The old socket may take a moment to be released.
        for _ in 0..20 {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(failure) => last_failure = failure,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "redis-server did not restart on port {}: {last_failure}",
            self.port
        );
    }

    /// A direct connection, bypassing toolgate.
    pub fn connection(&self) -> redis::Connection {
        self.client()
            .get_connection_with_timeout(Duration::from_secs(5))
            .unwrap_or_else(|error| panic!("connect to redis-server on {}: {error}", self.port))
    }

    /// Every key with its value (via SCAN and GET), sorted by key.
    pub fn keys_and_values(&self) -> Vec<(String, Vec<u8>)> {
        let mut connection = self.connection();
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

    /// Overwrites a key's value, keeping its TTL if it has one (`SET ... KEEPTTL`).
    pub fn set_raw(&self, key: &str, value: &[u8]) {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("KEEPTTL")
            .query(&mut self.connection())
            .expect("SET KEEPTTL");
    }

    /// The raw value of a key.
    pub fn get_raw(&self, key: &str) -> Option<Vec<u8>> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut self.connection())
            .expect("GET")
    }

    /// `PTTL`: milliseconds left, -1 for a key without expiry, -2 for a missing key.
    pub fn ttl_of(&self, key: &str) -> i64 {
        redis::cmd("PTTL")
            .arg(key)
            .query(&mut self.connection())
            .expect("PTTL")
    }

    fn client(&self) -> redis::Client {
        let mut settings = redis::RedisConnectionInfo::default();
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        if let Some(user) = &self.tls_user {
            settings = settings.set_username(user);
        }
        let address = match self.tls_user {
            None => redis::ConnectionAddr::Tcp("127.0.0.1".to_owned(), self.port),
            Some(_) => redis::ConnectionAddr::TcpTls {
                host: "127.0.0.1".to_owned(),
                port: self.port,
                insecure: false,
                tls_params: None,
            },
        };
        let info = redis::IntoConnectionInfo::into_connection_info(address)
            .expect("a TCP address")
            .set_redis_settings(settings);
        match self.tls_user {
            None => redis::Client::open(info).expect("a redis client"),
            Some(_) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pki().ca_pem().into_bytes()),
                },
            )
            .expect("a redis TLS client"),
        }
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = self.dir.join(format!("redis-{}.log", self.port));
        let mut command = Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]);
        if let Some(user) = &self.tls_user {
            let certificate = pki().localhost();
            let (cert, key, ca, acl) = (
                self.dir.join("redis.crt"),
                self.dir.join("redis.key"),
                self.dir.join("ca.pem"),
                self.dir.join("users.acl"),
            );
            std::fs::write(&cert, &certificate.chain_pem).expect("write the Redis certificate");
            std::fs::write(&key, &certificate.key_pem).expect("write the Redis key");
            std::fs::write(&ca, pki().ca_pem()).expect("write the CA");
            let password = self
                .password
                .as_deref()
                .expect("an ACL user has a password");
            std::fs::write(
                &acl,
                format!("user default off\nuser {user} on >{password} ~* &* +@all\n"),
            )
            .expect("write the ACL file");
            command
                .args(["--port", "0", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(&cert)
                .arg("--tls-key-file")
                .arg(&key)
                .arg("--tls-ca-cert-file")
                .arg(&ca)
                .args(["--tls-auth-clients", "no", "--aclfile"])
                .arg(&acl);
        } else {
            command.arg("--port").arg(self.port.to_string());
        }
        command
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let (Some(password), None) = (&self.password, &self.tls_user) {
            command.arg("--requirepass").arg(password);
        }
        let child = command.spawn().unwrap_or_else(|error| {
            if error.kind() == std::io::ErrorKind::NotFound {
                panic!(
                    "redis-server is not installed (not on PATH); run scripts/install-peers.sh, which installs it"
                )
            }
            panic!("could not start redis-server: {error}")
        });
        self.child = Some(child);

        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("it exited with {status}; {}", log_tail(&log)));
            }
            if self.answers_ping() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "no PING answer within {START_DEADLINE:?}; {}",
                    log_tail(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut connection) = self
            .client()
            .get_connection_with_timeout(Duration::from_millis(500))
        else {
            return false;
        };
        redis::cmd("PING")
            .query::<String>(&mut connection)
            .is_ok_and(|reply| reply == "PONG")
    }
}

/// What a test reads and writes in Redis behind the store's back, whatever the topology.
pub trait RawRedis {
    /// The raw value of a key.
    fn get_raw(&self, key: &str) -> Option<Vec<u8>>;
    /// Overwrites a key's value, keeping its TTL if it has one (`SET ... KEEPTTL`).
    fn set_raw(&self, key: &str, value: &[u8]);
    /// `PTTL`: milliseconds left, -1 for a key without expiry, -2 for a missing key.
    fn ttl_of(&self, key: &str) -> i64;
    /// Every key with its value, sorted by key.
    fn keys_and_values(&self) -> Vec<(String, Vec<u8>)>;
}

impl RawRedis for RedisServer {
    fn get_raw(&self, key: &str) -> Option<Vec<u8>> {
        RedisServer::get_raw(self, key)
    }

    fn set_raw(&self, key: &str, value: &[u8]) {
        RedisServer::set_raw(self, key, value)
    }

    fn ttl_of(&self, key: &str) -> i64 {
        RedisServer::ttl_of(self, key)
    }

    fn keys_and_values(&self) -> Vec<(String, Vec<u8>)> {
        RedisServer::keys_and_values(self)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free loopback port")
}

pub(crate) fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    if lines.is_empty() {
        "its log is empty".to_owned()
    } else {
        format!(
            "its log ends with:\n{}",
            lines.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    }
}
