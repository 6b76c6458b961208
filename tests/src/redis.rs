//! Throw-away `redis-server` processes on loopback, with raw access for tests that inspect or tamper
//! with what the store wrote.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use toolgate::{RedisConfig, SecretString};

/// How long a fresh redis-server gets to answer PING before the test gives up on it.
const START_DEADLINE: Duration = Duration::from_secs(15);

static INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// A `redis-server` on `127.0.0.1:<free port>` with no persistence and its own temporary directory;
/// killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    password: Option<String>,
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

    fn start_with(password: Option<String>) -> Self {
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

    /// What `REDIS_HOST`, `REDIS_PORT` and `REDIS_PASSWORD` would say for this server.
    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            password: self.password.as_deref().map(SecretString::new),
        }
    }

    /// The same server address with another password (or none), for authentication tests.
    pub fn config_with_password(&self, password: Option<&str>) -> RedisConfig {
        RedisConfig {
            password: password.map(SecretString::new),
            ..self.config()
        }
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
        let info = redis::IntoConnectionInfo::into_connection_info(redis::ConnectionAddr::Tcp(
            "127.0.0.1".to_owned(),
            self.port,
        ))
        .expect("a TCP address")
        .set_redis_settings(settings);
        redis::Client::open(info).expect("a redis client")
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = self.dir.join(format!("redis-{}.log", self.port));
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.port.to_string())
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(password) = &self.password {
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

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free loopback port")
}

fn log_tail(log: &Path) -> String {
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
