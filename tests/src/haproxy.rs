//! HAProxy (Debian's, 2.6) in front of replicas, as a load balancer is in production: it terminates
//! TLS with a certificate from the test CA, adds `X-Forwarded-For`, and sends each request to the
//! next replica in turn (`balance roundrobin`). Every answer says which replica served it in
//! `X-Served-By`, so a test can check that the steps of one flow really landed on different ones.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::processes::{Spawned, TempDir, free_port};
use crate::tls::pki;

/// How long HAProxy gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running HAProxy; stopped on drop.
pub struct Haproxy {
    process: Spawned,
    port: u16,
    _dir: TempDir,
}

impl Haproxy {
    /// Listens on `https://localhost:PORT` and balances over `replicas`, named `r0`, `r1`, ... in
    /// `X-Served-By`.
    pub async fn start(replicas: &[SocketAddr]) -> Self {
        Self::start_on(free_port(), replicas).await
    }

    /// The same, on a port chosen beforehand (the replicas' `RESOURCE_BASE_URL` names it).
    pub async fn start_on(port: u16, replicas: &[SocketAddr]) -> Self {
        let dir = TempDir::new("haproxy");
        let certificate = dir.0.join("combined.pem");
        std::fs::write(&certificate, pki().localhost().combined_pem())
            .expect("write HAProxy's certificate");
        let servers: String = replicas
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("    server r{i} {addr}\n"))
            .collect();
        let config = format!(
            "global
    maxconn 2000
defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout tunnel 120s
frontend public
    bind 127.0.0.1:{port} ssl crt {certificate}
    option forwardfor
    default_backend replicas
backend replicas
    balance roundrobin
    http-response set-header X-Served-By %s
{servers}",
            certificate = certificate.display()
        );
        let file = dir.0.join("haproxy.cfg");
        std::fs::write(&file, config).expect("write haproxy.cfg");
        let mut command = Command::new(haproxy_binary());
        command.arg("-f").arg(&file).arg("-db");
        let process = Spawned::start("haproxy", command);
        let proxy = Self {
            process,
            port,
            _dir: dir,
        };
        proxy.wait_until_listening().await;
        proxy
    }

    async fn wait_until_listening(&self) {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "HAProxy did not listen on {} within {START_TIMEOUT:?}; its output:\n{}",
                self.port,
                self.process.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The public base URL: `https://localhost:PORT`.
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What HAProxy printed, for failure messages.
    pub fn log(&self) -> String {
        self.process.log()
    }
}

fn haproxy_binary() -> &'static str {
    for candidate in ["/usr/sbin/haproxy", "/usr/bin/haproxy"] {
        if std::path::Path::new(candidate).is_file() {
            return candidate;
        }
    }
    panic!("haproxy is not installed: run scripts/install-peers.sh, which installs it")
}
