//! One `redis-server` process of a cluster or a sentinel set-up: started with the arguments it is
//! given, waited for until it answers PING, killed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tls::pki;

use super::{START_DEADLINE, free_port, log_tail};

/// How the tests reach the nodes: over TLS with the test CA or not, as an ACL user or with a
/// password alone, or open.
#[derive(Clone, Debug, Default)]
pub(crate) struct Access {
    pub(crate) tls: bool,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
}

impl Access {
    /// A client for the node at `127.0.0.1:port`, bypassing toolgate.
    pub(crate) fn client(&self, port: u16) -> redis::Client {
        let mut settings = redis::RedisConnectionInfo::default();
        if let Some(user) = &self.user {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.password {
            settings = settings.set_password(password);
        }
        let address = if self.tls {
            redis::ConnectionAddr::TcpTls {
                host: "127.0.0.1".to_owned(),
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            redis::ConnectionAddr::Tcp("127.0.0.1".to_owned(), port)
        };
        let info = redis::IntoConnectionInfo::into_connection_info(address)
            .expect("a TCP address")
            .set_redis_settings(settings);
        if self.tls {
            redis::Client::build_with_tls(info, certificates()).expect("a redis TLS client")
        } else {
            redis::Client::open(info).expect("a redis client")
        }
    }

    /// A direct connection to the node at `port`.
    pub(crate) fn connection(&self, port: u16) -> redis::RedisResult<redis::Connection> {
        self.client(port)
            .get_connection_with_timeout(Duration::from_secs(2))
    }

    /// The arguments for a node on `port`: TLS only with the test CA's certificate (files written
    /// to `dir`) when `tls`. A data node (`data`) gets the ACL user in an ACL file with `default`
    /// off, or the password as `requirepass`, and signs in to its master the same way; a
    /// sentinel gets the password as `requirepass`.
    pub(crate) fn server_args(&self, dir: &Path, port: u16, data: bool) -> Vec<String> {
        let mut args = Vec::new();
        if self.tls {
            let files = TlsFiles::write(dir);
            args.extend(
                [
                    "--port",
                    "0",
                    "--tls-port",
                    &port.to_string(),
                    "--tls-cert-file",
                    &files.cert.display().to_string(),
                    "--tls-key-file",
                    &files.key.display().to_string(),
                    "--tls-ca-cert-file",
                    &files.ca.display().to_string(),
                    "--tls-client-cert-file",
                    &files.client_cert.display().to_string(),
                    "--tls-client-key-file",
                    &files.client_key.display().to_string(),
                    "--tls-auth-clients",
                    "no",
                    "--tls-replication",
                    "yes",
                ]
                .map(str::to_owned),
            );
        } else {
            args.extend(["--port".to_owned(), port.to_string()]);
        }
        match (&self.user, &self.password) {
            (Some(user), Some(password)) if data => {
                let acl = dir.join("users.acl");
                std::fs::write(
                    &acl,
                    format!("user default off\nuser {user} on >{password} ~* &* +@all\n"),
                )
                .expect("write the ACL file");
                args.extend(
                    [
                        "--aclfile",
                        &acl.display().to_string(),
                        "--masteruser",
                        user,
                        "--masterauth",
                        password,
                    ]
                    .map(str::to_owned),
                );
            }
            (_, Some(password)) => {
                args.extend(["--requirepass".to_owned(), password.clone()]);
                if data {
                    args.extend(["--masterauth".to_owned(), password.clone()]);
                }
            }
            _ => {}
        }
        args
    }
}

pub(crate) fn certificates() -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pki().ca_pem().into_bytes()),
    }
}

/// The certificate, key and CAs a TLS node is started with.
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) client_cert: PathBuf,
    pub(crate) client_key: PathBuf,
    pub(crate) ca: PathBuf,
}

impl TlsFiles {
    /// The server certificate is the test CA's, as toolgate checks it. Nodes also connect to each
    /// other (the cluster bus, replication), and a cluster node always asks its peer for a client
    /// certificate, which the test CA's server-only certificates cannot be: those come from a CA
    /// of the nodes' own, which they trust besides the test CA.
    pub(crate) fn write(dir: &Path) -> Self {
        let certificate = pki().localhost();
        let peers = peer_ca();
        let files = Self {
            cert: dir.join("redis.crt"),
            key: dir.join("redis.key"),
            client_cert: dir.join("peer.crt"),
            client_key: dir.join("peer.key"),
            ca: dir.join("ca.pem"),
        };
        std::fs::write(&files.cert, &certificate.chain_pem).expect("write the Redis certificate");
        std::fs::write(&files.key, &certificate.key_pem).expect("write the Redis key");
        std::fs::write(&files.client_cert, &peers.client_cert).expect("write the peer certificate");
        std::fs::write(&files.client_key, &peers.client_key).expect("write the peer key");
        std::fs::write(&files.ca, format!("{}{}", pki().ca_pem(), peers.ca))
            .expect("write the CAs");
        files
    }
}

struct PeerCa {
    ca: String,
    client_cert: String,
    client_key: String,
}

/// The nodes' own CA and the one client certificate they all present to each other.
fn peer_ca() -> &'static PeerCa {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
        ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    };
    static PEERS: std::sync::OnceLock<PeerCa> = std::sync::OnceLock::new();
    PEERS.get_or_init(|| {
        let mut params = CertificateParams::default();
        let mut subject = DistinguishedName::new();
        subject.push(DnType::CommonName, "toolgate test Redis peers");
        params.distinguished_name = subject;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap())
            .expect("make the peer CA");
        let mut params =
            CertificateParams::new(vec!["redis-peer".to_owned()]).expect("peer certificate names");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ClientAuth,
            ExtendedKeyUsagePurpose::ServerAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let certificate = params
            .signed_by(&key, &issuer)
            .expect("issue the peer certificate");
        PeerCa {
            ca: issuer.pem(),
            client_cert: certificate.pem(),
            client_key: key.serialize_pem(),
        }
    })
}

/// A running node.
pub(crate) struct Node {
    child: Option<Child>,
    pub(crate) port: u16,
    pub(crate) dir: PathBuf,
}

impl Node {
    /// Starts `redis-server` in `dir` with `args(port)` (a config file first, for a sentinel) on a
    /// free port, trying other ports if one was taken meanwhile, and waits until it answers PING.
    pub(crate) fn start(dir: PathBuf, access: &Access, args: impl Fn(u16) -> Vec<String>) -> Self {
        std::fs::create_dir_all(&dir).expect("create a directory for redis-server");
        let mut last_failure = String::new();
        for _ in 0..5 {
            let port = free_port();
            match Self::spawn(&dir, port, access, &args(port)) {
                Ok(node) => return node,
                Err(failure) => last_failure = failure,
            }
        }
        panic!(
            "redis-server did not start in {}: {last_failure}",
            dir.display()
        );
    }

    fn spawn(dir: &Path, port: u16, access: &Access, args: &[String]) -> Result<Self, String> {
        let log = dir.join("redis.log");
        let _ = std::fs::remove_file(&log);
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                if error.kind() == std::io::ErrorKind::NotFound {
                    panic!(
                        "redis-server is not installed (not on PATH); run scripts/install-peers.sh, which installs it"
                    )
                }
                panic!("could not start redis-server: {error}")
            });
        let mut node = Self {
            child: Some(child),
            port,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = node
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                node.child = None;
                return Err(format!("it exited with {status}; {}", log_tail(&log)));
            }
            let answers = access.connection(port).is_ok_and(|mut connection| {
                redis::cmd("PING")
                    .query::<String>(&mut connection)
                    .is_ok_and(|reply| reply == "PONG")
            });
            if answers {
                return Ok(node);
            }
            if Instant::now() > deadline {
                node.kill();
                return Err(format!(
                    "no PING answer within {START_DEADLINE:?}; {}",
                    log_tail(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the process (as a crash would) and waits for it to exit.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The end of its log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        log_tail(&self.dir.join("redis.log"))
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `check` every 50 ms until it gives `Some`, panicking with `what` and the last state it
/// reported after `deadline`.
pub(crate) fn wait_for<T>(
    what: &str,
    deadline: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let until = Instant::now() + deadline;
    loop {
        match check() {
            Ok(value) => return value,
            Err(state) => {
                assert!(
                    Instant::now() < until,
                    "{what} did not happen within {deadline:?}; last: {state}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `field:value` lines of an INFO answer.
pub(crate) fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|line| {
        line.trim()
            .strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
    })
}

/// Waits until every replica of the master at `port` has acknowledged everything the master had
/// when this was called, so that killing the master loses nothing written before.
pub(crate) fn wait_replicated(access: &Access, port: u16) {
    let info = |connection: &mut redis::Connection| -> Result<String, String> {
        redis::cmd("INFO")
            .arg("replication")
            .query::<String>(connection)
            .map_err(|e| e.to_string())
    };
    let mut connection = access
        .connection(port)
        .unwrap_or_else(|error| panic!("connect to the master on {port}: {error}"));
    let first = info(&mut connection).expect("INFO replication");
    let target: u64 = info_field(&first, "master_repl_offset")
        .and_then(|offset| offset.parse().ok())
        .expect("the master's replication offset");
    wait_for(
        &format!("replication of the master on {port}"),
        Duration::from_secs(20),
        || {
            let info = info(&mut connection)?;
            let replicas: Vec<&str> = info
                .lines()
                .filter(|line| line.starts_with("slave") && line.contains("offset="))
                .collect();
            if replicas.is_empty() {
                return Err("no replica connected".to_owned());
            }
            let behind = replicas.iter().any(|line| {
                line.split(',')
                    .find_map(|part| part.strip_prefix("offset="))
                    .and_then(|offset| offset.parse::<u64>().ok())
                    .is_none_or(|offset| offset < target)
            });
            if behind {
                Err(format!("replicas behind offset {target}: {replicas:?}"))
            } else {
                Ok(())
            }
        },
    );
}
