//! Configuration from the environment (and a `.env` file), with the seed's variable names.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

use url::Url;

mod provider;
mod secret;

pub use provider::{Auth0Settings, AuthConfig, KNOWN_PROVIDERS, ProviderConfig};
pub use secret::SecretString;

use provider::auth_config;
#[cfg(test)]
use provider::parse_domain;

mod redis_topology;

use redis_topology::redis_topology_config;
pub use redis_topology::{DEFAULT_SENTINEL_PORT, RedisNode, RedisTopology};

/// The default of `RESOURCE_BASE_URL`.
pub const DEFAULT_BASE_URL: &str = "http://localhost:8000";

/// Everything the server reads at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `None` when `AUTH_ENABLED` is unset or false.
    pub auth: Option<AuthConfig>,
    /// `RESOURCE_BASE_URL`, without a trailing slash.
    pub resource_base_url: Url,
    /// `JWT_SIGNING_KEY`: signs the tokens the server issues itself.
    pub jwt_signing_key: Option<SecretString>,
    /// `STORAGE_ENCRYPTION_KEY`: Fernet keys, comma-separated, the first encrypts.
    pub storage_encryption_key: Option<SecretString>,
    /// `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD` (or `REDIS_URL`, `REDIS_CLUSTER_URLS`,
    /// `REDIS_SENTINEL_URLS`); `None` means an in-memory store.
    pub redis: Option<RedisConfig>,
    /// `TOOLGATE_STATELESS`: no MCP sessions, JSON responses (the mode for load balancers).
    pub stateless: bool,
    /// `TOOLGATE_LISTEN`: where `Server::serve` binds (`0.0.0.0:8000`, `[::]:8000`); unset, the
    /// port of `RESOURCE_BASE_URL`.
    pub listen: Option<std::net::SocketAddr>,
    /// `TOOLGATE_SHUTDOWN_GRACE`: seconds in-flight requests get to finish after SIGTERM or
    /// SIGINT (default 10).
    pub shutdown_grace: std::time::Duration,
    /// `TOOLGATE_REFRESH_REUSE_INTERVAL`: for how many seconds after a refresh token was rotated
    /// the same client may present it again and get a working pair of the same family (concurrent
    /// refreshes, retries after a lost answer), as Auth0's reuse interval allows. Zero turns it
    /// off: any reuse revokes the family. Default 30.
    pub refresh_reuse_interval: std::time::Duration,
    /// `TOOLGATE_TRUSTED_PROXIES`: the proxies whose `Forwarded`/`X-Forwarded-For` name the client
    /// (CIDRs or addresses, comma-separated). Empty: those headers are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// `TOOLGATE_LIST_ALL_TOOLS`: list tools the caller may not call, with their permissions in `_meta`.
    pub list_all_tools: bool,
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR`: the certificate authorities outbound TLS trusts (Auth0,
    /// Redis, client metadata documents). Unset, the platform's roots.
    pub tls_trust: TlsTrust,
    /// `TOOLGATE_DEV_MODE`: loopback conveniences for local development (consent cookies without
    /// `Secure` on plain-http loopback, client metadata documents served from loopback). Refused
    /// unless `RESOURCE_BASE_URL` is itself on loopback.
    pub dev_mode: bool,
}

/// The shortest `JWT_SIGNING_KEY` accepted: 32 bytes, the size of the HMAC-SHA256 key derived from it.
pub const MIN_SIGNING_KEY_LEN: usize = 32;

/// Where Redis is and how to sign in to it: `REDIS_URL`, or the seed's `REDIS_HOST`, `REDIS_PORT`
/// and `REDIS_PASSWORD` (with `REDIS_USERNAME` for an ACL user).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// The host name or address.
    pub host: String,
    /// The port (default 6379).
    pub port: u16,
    /// The ACL user; `None` signs in as `default` (or with the password alone, Redis 5 style).
    pub username: Option<String>,
    /// The password.
    pub password: Option<SecretString>,
    /// `rediss://`: TLS, with the server's certificate verified against `tls_trust`.
    pub tls: bool,
    /// The database number (`/N` in the URL; default 0).
    pub database: i64,
    /// The certificate authorities a TLS connection trusts.
    pub tls_trust: TlsTrust,
    /// One node, a Redis Cluster or a Sentinel-managed master. For a cluster `host` and `port` are
    /// its first seed node, for Sentinel its first sentinel (for logs).
    pub topology: RedisTopology,
}

impl RedisConfig {
    /// A plain-TCP Redis at `host:port`, without a password.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
            username: None,
            password: None,
            tls: false,
            database: 0,
            tls_trust: TlsTrust::default(),
            topology: RedisTopology::Single,
        }
    }

    /// The address as `host:port`, for logs. Never carries credentials.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// Which certificate authorities outbound TLS connections trust. With neither field set, the
/// platform's roots; otherwise only what the file and directories hold, as OpenSSL does with
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsTrust {
    /// `SSL_CERT_FILE`: a PEM bundle.
    pub cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR`: directories of PEM files (colon-separated in the variable).
    pub cert_dirs: Vec<PathBuf>,
}

impl TlsTrust {
    /// The platform's roots.
    pub fn platform() -> Self {
        Self::default()
    }

    /// Only the certificates in this PEM bundle.
    pub fn from_pem_file(path: impl Into<PathBuf>) -> Self {
        Self {
            cert_file: Some(path.into()),
            cert_dirs: Vec::new(),
        }
    }

    /// True when neither `SSL_CERT_FILE` nor `SSL_CERT_DIR` was given.
    pub fn is_platform(&self) -> bool {
        self.cert_file.is_none() && self.cert_dirs.is_empty()
    }
}

/// Every problem found in the configuration, by variable name. Values are never echoed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// `(variable, problem)` pairs.
    pub problems: Vec<(String, String)>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the configuration has {} problem(s):",
            self.problems.len()
        )?;
        for (var, problem) in &self.problems {
            write!(f, "\n  - {var}: {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

pub(crate) struct Reader {
    vars: HashMap<String, String>,
    problems: Vec<(String, String)>,
}

impl Reader {
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn problem(&mut self, name: &str, message: impl Into<String>) {
        self.problems.push((name.to_owned(), message.into()));
    }

    pub(crate) fn required(&mut self, name: &str, why: &str) -> Option<String> {
        let value = self.get(name).map(str::to_owned);
        if value.is_none() {
            self.problem(name, format!("missing; {why}"));
        }
        value
    }

    fn flag(&mut self, name: &str) -> bool {
        match self.get(name) {
            None => false,
            Some("true" | "True" | "TRUE" | "1" | "yes") => true,
            Some("false" | "False" | "FALSE" | "0" | "no") => false,
            Some(_) => {
                self.problem(name, "must be true, True, 1, false, False or 0");
                false
            }
        }
    }
}

impl Config {
    /// Reads the process environment, plus `.env` in the working directory for variables the
    /// environment does not set.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(Self::env_vars())
    }

    /// The variables `from_env` reads: `.env` first, the process environment over it. The process
    /// environment is never modified.
    pub fn env_vars() -> HashMap<String, String> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Ok(iter) = dotenvy::dotenv_iter() {
            vars.extend(iter.flatten());
        }
        vars.extend(std::env::vars());
        vars
    }

    /// Reads the given variables only (tests use this to avoid touching the process environment).
    pub fn from_vars<K: Into<String>, V: Into<String>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let mut r = Reader {
            vars: vars
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            problems: Vec::new(),
        };

        let resource_base_url = match r.get("RESOURCE_BASE_URL").map(str::to_owned) {
            None => Url::parse(DEFAULT_BASE_URL).expect("the default base URL parses"),
            Some(value) => match parse_base_url(&value) {
                Ok(url) => url,
                Err(message) => {
                    r.problem("RESOURCE_BASE_URL", message);
                    Url::parse(DEFAULT_BASE_URL).expect("the default base URL parses")
                }
            },
        };

        let tls_trust = tls_trust(&mut r);
        let auth = if r.flag("AUTH_ENABLED") {
            auth_config(&mut r, &tls_trust)
        } else {
            None
        };

        let jwt_signing_key = r.get("JWT_SIGNING_KEY").map(SecretString::new);
        if jwt_signing_key
            .as_ref()
            .is_some_and(|key| key.secret().len() < MIN_SIGNING_KEY_LEN)
        {
            r.problem(
                "JWT_SIGNING_KEY",
                format!(
                    "too short to be safe: use at least {MIN_SIGNING_KEY_LEN} random characters, e.g. from `openssl rand -base64 48`"
                ),
            );
        }
        let storage_encryption_key = r.get("STORAGE_ENCRYPTION_KEY").map(SecretString::new);

        let redis = redis_config(&mut r, &tls_trust);

        let stateless = r.flag("TOOLGATE_STATELESS");
        let (listen, shutdown_grace) = operations(&mut r);
        let refresh_reuse_interval = seconds(
            &mut r,
            "TOOLGATE_REFRESH_REUSE_INTERVAL",
            DEFAULT_REFRESH_REUSE_INTERVAL,
        );
        let trusted_proxies = match r.get("TOOLGATE_TRUSTED_PROXIES").map(str::to_owned) {
            None => Vec::new(),
            Some(list) => parse_trusted_proxies(&list).unwrap_or_else(|problem| {
                r.problem("TOOLGATE_TRUSTED_PROXIES", problem);
                Vec::new()
            }),
        };
        let list_all_tools = r.flag("TOOLGATE_LIST_ALL_TOOLS");
        let dev_mode = r.flag("TOOLGATE_DEV_MODE");
        if dev_mode && !is_loopback_url(&resource_base_url) {
            r.problem(
                "TOOLGATE_DEV_MODE",
                "dev mode relaxes cookie and fetch rules for loopback; it needs a loopback RESOURCE_BASE_URL",
            );
        }
        if auth.is_some()
            && jwt_signing_key.is_some()
            && redis.is_some()
            && storage_encryption_key.is_none()
        {
            r.problem(
                "STORAGE_ENCRYPTION_KEY",
                "missing; the authorization server keeps upstream tokens in Redis only encrypted: set one or more comma-separated Fernet keys",
            );
        }

        if !r.problems.is_empty() {
            return Err(ConfigError {
                problems: r.problems,
            });
        }
        Ok(Config {
            auth,
            resource_base_url,
            jwt_signing_key,
            storage_encryption_key,
            redis,
            stateless,
            listen,
            shutdown_grace,
            refresh_reuse_interval,
            trusted_proxies,
            list_all_tools,
            tls_trust,
            dev_mode,
        })
    }

    /// A configuration with auth off, for `Server::builder()` defaults and tests.
    pub fn without_auth(resource_base_url: Url) -> Self {
        Config {
            auth: None,
            resource_base_url,
            jwt_signing_key: None,
            storage_encryption_key: None,
            redis: None,
            stateless: false,
            listen: None,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            refresh_reuse_interval: DEFAULT_REFRESH_REUSE_INTERVAL,
            trusted_proxies: Vec::new(),
            list_all_tools: false,
            tls_trust: TlsTrust::default(),
            dev_mode: false,
        }
    }

    /// True when the server runs its own OAuth authorization server in front of Auth0: auth is on
    /// and `JWT_SIGNING_KEY` is set. Otherwise it is a resource server that accepts Auth0 tokens only.
    pub fn authorization_server_enabled(&self) -> bool {
        self.auth.is_some() && self.jwt_signing_key.is_some()
    }

    /// The base URL as a string without a trailing slash.
    pub fn base_url(&self) -> String {
        self.resource_base_url
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The MCP resource URI: the base URL plus `/mcp`.
    pub fn resource_uri(&self) -> String {
        format!("{}/mcp", self.base_url())
    }
}

/// A comma- or space-separated list of CIDRs or single addresses (`10.0.0.0/8, 192.168.1.7`).
/// The error names the first entry that is neither: a list of networks is not a secret.
pub(crate) fn parse_trusted_proxies(list: &str) -> Result<Vec<ipnet::IpNet>, String> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry
                .parse::<ipnet::IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| format!("`{entry}` is not a CIDR (like 10.0.0.0/8) or an IP address"))
        })
        .collect()
}

/// How long a rotated refresh token may be presented again by its client, by default.
pub const DEFAULT_REFRESH_REUSE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// A whole number of seconds, or `default` when unset.
fn seconds(r: &mut Reader, name: &str, default: std::time::Duration) -> std::time::Duration {
    match r.get(name).map(str::to_owned) {
        None => default,
        Some(value) => match value.parse::<u64>() {
            Ok(seconds) => std::time::Duration::from_secs(seconds),
            Err(_) => {
                r.problem(name, "must be a whole number of seconds, like 30");
                default
            }
        },
    }
}

/// How long in-flight requests may run on after SIGTERM, by default.
pub const DEFAULT_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// `TOOLGATE_LISTEN` and `TOOLGATE_SHUTDOWN_GRACE`.
fn operations(r: &mut Reader) -> (Option<std::net::SocketAddr>, std::time::Duration) {
    let listen = r
        .get("TOOLGATE_LISTEN")
        .map(str::to_owned)
        .and_then(|value| {
            value
                .parse::<std::net::SocketAddr>()
                .map_err(|_| {
                    r.problem(
                        "TOOLGATE_LISTEN",
                        "must be an address and port, like 0.0.0.0:8000 or [::]:8000",
                    )
                })
                .ok()
        });
    let grace = seconds(r, "TOOLGATE_SHUTDOWN_GRACE", DEFAULT_SHUTDOWN_GRACE);
    (listen, grace)
}

/// `SSL_CERT_FILE` and `SSL_CERT_DIR`, checked to exist now so a typo is a start-up error rather
/// than every TLS connection failing later.
fn tls_trust(r: &mut Reader) -> TlsTrust {
    let mut trust = TlsTrust::default();
    if let Some(file) = r.get("SSL_CERT_FILE").map(PathBuf::from) {
        if file.is_file() {
            trust.cert_file = Some(file);
        } else {
            r.problem(
                "SSL_CERT_FILE",
                "names no readable file; give the path of a PEM bundle of the CA certificates to trust",
            );
        }
    }
    if let Some(dirs) = r.get("SSL_CERT_DIR").map(str::to_owned) {
        for dir in dirs.split(':').filter(|d| !d.is_empty()).map(PathBuf::from) {
            if dir.is_dir() {
                trust.cert_dirs.push(dir);
            } else {
                r.problem(
                    "SSL_CERT_DIR",
                    "names a directory that does not exist; give directories of PEM CA certificates, separated by colons",
                );
            }
        }
    }
    trust
}

/// `REDIS_URL` wins over the seed's `REDIS_HOST`/`REDIS_PORT`/`REDIS_PASSWORD`; `REDIS_USERNAME`
/// gives either form an ACL user. No value is ever echoed: a URL may carry a password.
fn redis_config(r: &mut Reader, tls_trust: &TlsTrust) -> Option<RedisConfig> {
    if let Some(config) = redis_topology_config(r, tls_trust) {
        return config;
    }
    let username = r.get("REDIS_USERNAME").map(str::to_owned);
    let password = r.get("REDIS_PASSWORD").map(SecretString::new);
    let mut config = if let Some(url) = r.get("REDIS_URL").map(str::to_owned) {
        let parsed = match parse_redis_url(&url) {
            Ok(parsed) => parsed,
            Err(message) => {
                r.problem("REDIS_URL", message);
                return None;
            }
        };
        if parsed.password.is_some() && password.is_some() {
            r.problem(
                "REDIS_URL",
                "carries a password and REDIS_PASSWORD is set too; give the password in one place only",
            );
        }
        if parsed.username.is_some() && username.is_some() {
            r.problem(
                "REDIS_URL",
                "carries a user name and REDIS_USERNAME is set too; give the user in one place only",
            );
        }
        let mut config = parsed;
        config.username = config.username.or(username);
        config.password = config.password.or(password);
        config
    } else {
        let host = r.get("REDIS_HOST")?.to_owned();
        let port = match r.get("REDIS_PORT").map(str::to_owned) {
            None => 6379,
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .unwrap_or_else(|| {
                    r.problem("REDIS_PORT", "must be a port number between 1 and 65535");
                    6379
                }),
        };
        let mut config = RedisConfig::new(host, port);
        config.username = username;
        config.password = password;
        config
    };
    config.tls_trust = tls_trust.clone();
    Some(config)
}

/// `redis://[user[:password]@]host[:port][/db]`, or `rediss://` for TLS.
fn parse_redis_url(value: &str) -> Result<RedisConfig, String> {
    let url = Url::parse(value).map_err(|_| {
        "not a valid URL; use redis://[user:password@]host[:port][/db] or rediss:// for TLS"
            .to_owned()
    })?;
    let tls = match url.scheme() {
        "redis" => false,
        "rediss" => true,
        _ => {
            return Err(
                "must start with redis:// or rediss:// (TLS); cluster and sentinel have variables of their own"
                    .into(),
            );
        }
    };
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(host) => host.to_string(),
        None => return Err("names no host".into()),
    };
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment".into());
    }
    let database = match url.path().trim_start_matches('/') {
        "" => 0,
        db => db
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| "the path must be a database number, like /0".to_owned())?,
    };
    let decode = |part: &str| {
        percent_decode(part)
            .ok_or_else(|| "the user name or password is not valid percent-encoding".to_owned())
    };
    let mut config = RedisConfig::new(host, url.port().unwrap_or(6379));
    config.tls = tls;
    config.database = database;
    if !url.username().is_empty() {
        config.username = Some(decode(url.username())?);
    }
    if let Some(password) = url.password() {
        config.password = Some(SecretString::new(decode(password)?));
    }
    Ok(config)
}

fn percent_decode(part: &str) -> Option<String> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .ok()
        .map(|decoded| decoded.into_owned())
}

/// True for `localhost` and loopback IP addresses.
pub(crate) fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn parse_base_url(value: &str) -> Result<Url, String> {
    let url =
        Url::parse(value).map_err(|_| "not a valid URL, like http://localhost:8000".to_owned())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http or https URL, like https://mcp.example.com".into());
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("must not have a query, fragment or credentials".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth0_vars() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AUTH_ENABLED", "True"),
            ("AUTH_PROVIDER", "auth0"),
            ("AUTH0_DOMAIN", "my-app.us.auth0.com"),
            ("AUTH0_CLIENT_ID", "client"),
            ("AUTH0_CLIENT_SECRET", "super-secret-value"),
            ("AUTH0_AUDIENCE", "https://api.example.com"),
        ]
    }

    #[test]
    fn the_seed_variables_configure_auth0() {
        let config = Config::from_vars(auth0_vars()).unwrap();
        let ProviderConfig::Auth0(settings) = config.auth.clone().unwrap().provider;
        assert_eq!(settings.domain.as_str(), "https://my-app.us.auth0.com/");
        assert_eq!(settings.audience, "https://api.example.com");
        assert_eq!(config.resource_uri(), "http://localhost:8000/mcp");
        assert!(!format!("{settings:?}").contains("super-secret-value"));
    }

    #[test]
    fn auth_is_off_unless_enabled() {
        assert!(
            Config::from_vars(Vec::<(String, String)>::new())
                .unwrap()
                .auth
                .is_none()
        );
        assert!(
            Config::from_vars([("AUTH_ENABLED", "false")])
                .unwrap()
                .auth
                .is_none()
        );
        for on in ["true", "True", "1"] {
            let mut vars = auth0_vars();
            vars[0].1 = on;
            assert!(Config::from_vars(vars).unwrap().auth.is_some(), "{on}");
        }
    }

    #[test]
    fn every_problem_is_reported_at_once_without_values() {
        let error = Config::from_vars([
            ("AUTH_ENABLED", "1"),
            ("AUTH_PROVIDER", "okta"),
            ("AUTH0_DOMAIN", "http://evil.example.com"),
            ("AUTH0_CLIENT_SECRET", "hunter2-secret"),
            ("REDIS_PORT", "x"),
            ("REDIS_HOST", "localhost"),
            ("RESOURCE_BASE_URL", "ftp://x"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = error.problems.iter().map(|(v, _)| v.as_str()).collect();
        for var in [
            "AUTH_PROVIDER",
            "AUTH0_DOMAIN",
            "AUTH0_CLIENT_ID",
            "AUTH0_AUDIENCE",
            "REDIS_PORT",
            "RESOURCE_BASE_URL",
        ] {
            assert!(vars.contains(&var), "{var} missing from {vars:?}");
        }
        let text = error.to_string();
        assert!(text.contains("known providers: auth0"), "{text}");
        assert!(
            !text.contains("hunter2-secret") && !text.contains("evil.example.com"),
            "{text}"
        );
    }

    #[test]
    fn the_authorization_server_needs_a_long_signing_key_and_an_encryption_key_for_redis() {
        let mut vars = auth0_vars();
        vars.push(("JWT_SIGNING_KEY", "short-key-value"));
        let error = Config::from_vars(vars.clone()).unwrap_err();
        assert_eq!(error.problems[0].0, "JWT_SIGNING_KEY");
        assert!(!error.to_string().contains("short-key-value"));

        vars.pop();
        vars.push((
            "JWT_SIGNING_KEY",
            "a-signing-key-of-forty-characters-at-least",
        ));
        let config = Config::from_vars(vars.clone()).unwrap();
        assert!(config.authorization_server_enabled());
        assert!(
            !Config::from_vars(auth0_vars())
                .unwrap()
                .authorization_server_enabled()
        );

        vars.push(("REDIS_HOST", "127.0.0.1"));
        let error = Config::from_vars(vars).unwrap_err();
        assert_eq!(error.problems[0].0, "STORAGE_ENCRYPTION_KEY");
    }

    #[test]
    fn dev_mode_is_for_loopback_base_urls_only() {
        assert!(
            Config::from_vars([("TOOLGATE_DEV_MODE", "true")])
                .unwrap()
                .dev_mode
        );
        let error = Config::from_vars([
            ("TOOLGATE_DEV_MODE", "true"),
            ("RESOURCE_BASE_URL", "https://mcp.example.com"),
        ])
        .unwrap_err();
        assert_eq!(error.problems[0].0, "TOOLGATE_DEV_MODE");
    }

    #[test]
    fn redis_url_wins_and_carries_tls_user_password_and_database() {
        let config = Config::from_vars([
            (
                "REDIS_URL",
                "rediss://toolgate:p%40ss@cache.example.com:6380/2",
            ),
            ("REDIS_HOST", "ignored.example.com"),
        ])
        .unwrap();
        let redis = config.redis.unwrap();
        assert_eq!(
            (redis.host.as_str(), redis.port, redis.database, redis.tls),
            ("cache.example.com", 6380, 2, true)
        );
        assert_eq!(redis.username.as_deref(), Some("toolgate"));
        assert_eq!(redis.password.as_ref().unwrap().secret(), "p@ss");
        assert!(!format!("{redis:?}").contains("p@ss"));

        let plain = Config::from_vars([("REDIS_URL", "redis://[::1]")])
            .unwrap()
            .redis
            .unwrap();
        assert_eq!(
            (plain.host.as_str(), plain.port, plain.tls),
            ("::1", 6379, false)
        );
        assert_eq!(plain.address(), "[::1]:6379");
    }

    #[test]
    fn the_seeds_redis_variables_take_an_acl_user() {
        let redis = Config::from_vars([
            ("REDIS_HOST", "127.0.0.1"),
            ("REDIS_PORT", "6390"),
            ("REDIS_USERNAME", "app"),
            ("REDIS_PASSWORD", "secret-pw"),
        ])
        .unwrap()
        .redis
        .unwrap();
        assert_eq!(redis.username.as_deref(), Some("app"));
        assert_eq!(redis.password.unwrap().secret(), "secret-pw");
        assert!(!redis.tls);
    }

    #[test]
    fn a_bad_redis_url_or_a_password_given_twice_is_named_without_its_value() {
        for (vars, wanted) in [
            (
                vec![("REDIS_URL", "http://user:hunter2@cache.example.com")],
                "redis:// or rediss://",
            ),
            (
                vec![
                    ("REDIS_URL", "rediss://user:hunter2@cache.example.com"),
                    ("REDIS_PASSWORD", "hunter2"),
                ],
                "password in one place",
            ),
            (
                vec![("REDIS_URL", "redis://:hunter2@cache.example.com/x")],
                "database number",
            ),
            (vec![("REDIS_URL", "not a url hunter2")], "not a valid URL"),
        ] {
            let error = Config::from_vars(vars).unwrap_err();
            assert_eq!(error.problems[0].0, "REDIS_URL");
            let text = error.to_string();
            assert!(text.contains(wanted), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[test]
    fn ssl_cert_file_must_name_a_file() {
        let error = Config::from_vars([("SSL_CERT_FILE", "/nonexistent/ca.pem")]).unwrap_err();
        assert_eq!(error.problems[0].0, "SSL_CERT_FILE");
        let error = Config::from_vars([("SSL_CERT_DIR", "/nonexistent-dir")]).unwrap_err();
        assert_eq!(error.problems[0].0, "SSL_CERT_DIR");
        let config = Config::from_vars([("SSL_CERT_FILE", "/etc/hosts")]).unwrap();
        assert_eq!(
            config.tls_trust.cert_file.as_deref(),
            Some(std::path::Path::new("/etc/hosts"))
        );
    }

    #[test]
    fn listen_address_and_shutdown_grace() {
        let config = Config::from_vars([
            ("TOOLGATE_LISTEN", "[::]:8000"),
            ("TOOLGATE_SHUTDOWN_GRACE", "3"),
        ])
        .unwrap();
        assert_eq!(config.listen, Some("[::]:8000".parse().unwrap()));
        assert_eq!(config.shutdown_grace, std::time::Duration::from_secs(3));
        let defaults = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(
            (defaults.listen, defaults.shutdown_grace),
            (None, DEFAULT_SHUTDOWN_GRACE)
        );
        let error = Config::from_vars([
            ("TOOLGATE_LISTEN", "8000"),
            ("TOOLGATE_SHUTDOWN_GRACE", "soon"),
        ])
        .unwrap_err();
        let vars: Vec<&str> = error.problems.iter().map(|(v, _)| v.as_str()).collect();
        assert_eq!(vars, ["TOOLGATE_LISTEN", "TOOLGATE_SHUTDOWN_GRACE"]);
        assert_eq!(
            defaults.refresh_reuse_interval,
            std::time::Duration::from_secs(30)
        );
        let off = Config::from_vars([("TOOLGATE_REFRESH_REUSE_INTERVAL", "0")]).unwrap();
        assert!(off.refresh_reuse_interval.is_zero());
        let error = Config::from_vars([("TOOLGATE_REFRESH_REUSE_INTERVAL", "-1")]).unwrap_err();
        assert_eq!(error.problems[0].0, "TOOLGATE_REFRESH_REUSE_INTERVAL");
    }

    #[test]
    fn trusted_proxies_are_cidrs_or_addresses() {
        let config =
            Config::from_vars([("TOOLGATE_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7 ::1")])
                .unwrap();
        assert_eq!(config.trusted_proxies.len(), 3);
        let error = Config::from_vars([("TOOLGATE_TRUSTED_PROXIES", "10.0.0.0/8,lb.internal")])
            .unwrap_err();
        assert_eq!(error.problems[0].0, "TOOLGATE_TRUSTED_PROXIES");
        assert!(error.problems[0].1.contains("lb.internal"));
    }

    #[test]
    fn plain_http_domains_are_loopback_only() {
        assert!(parse_domain("http://127.0.0.1:9000").is_ok());
        assert!(parse_domain("http://localhost:9000/").is_ok());
        assert!(parse_domain("http://[::1]:9000").is_ok());
        assert!(parse_domain("http://10.0.0.1:9000").is_err());
        assert!(parse_domain("https://tenant.auth0.com/extra").is_err());
        assert!(parse_domain("https://user:pw@tenant.auth0.com").is_err());
        assert_eq!(
            parse_domain("tenant.eu.auth0.com").unwrap().as_str(),
            "https://tenant.eu.auth0.com/"
        );
        // A bare host with a port is still https: no fallback to http on loopback either.
        assert_eq!(
            parse_domain("localhost:8443").unwrap().as_str(),
            "https://localhost:8443/"
        );
    }
}
