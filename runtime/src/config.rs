//! Configuration from the environment (and a `.env` file), with the seed's variable names.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use url::Url;

use crate::auth::{Auth0Settings, KNOWN_PROVIDERS, SecretString};

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
    /// `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`; `None` means an in-memory store.
    pub redis: Option<RedisConfig>,
    /// `TOOLGATE_STATELESS`: no MCP sessions, JSON responses (the mode for load balancers).
    pub stateless: bool,
    /// `TOOLGATE_LIST_ALL_TOOLS`: list tools the caller may not call, with their permissions in `_meta`.
    pub list_all_tools: bool,
    /// `TOOLGATE_DEV_MODE`: loopback conveniences for local development (consent cookies without
    /// `Secure` on plain-http loopback, client metadata documents served from loopback). Refused
    /// unless `RESOURCE_BASE_URL` is itself on loopback.
    pub dev_mode: bool,
}

/// The shortest `JWT_SIGNING_KEY` accepted: 32 bytes, the size of the HMAC-SHA256 key derived from it.
pub const MIN_SIGNING_KEY_LEN: usize = 32;

/// Authentication settings.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// The provider `AUTH_PROVIDER` names.
    pub provider: ProviderConfig,
}

/// One variant per known provider.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ProviderConfig {
    /// `AUTH_PROVIDER=auth0`.
    Auth0(Auth0Settings),
}

/// Where Redis is.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `REDIS_HOST`.
    pub host: String,
    /// `REDIS_PORT` (default 6379).
    pub port: u16,
    /// `REDIS_PASSWORD`.
    pub password: Option<SecretString>,
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

struct Reader {
    vars: HashMap<String, String>,
    problems: Vec<(String, String)>,
}

impl Reader {
    fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn problem(&mut self, name: &str, message: impl Into<String>) {
        self.problems.push((name.to_owned(), message.into()));
    }

    fn required(&mut self, name: &str, why: &str) -> Option<String> {
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

        let auth = if r.flag("AUTH_ENABLED") {
            auth_config(&mut r)
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

        let redis = r.get("REDIS_HOST").map(str::to_owned).map(|host| {
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
            RedisConfig {
                host,
                port,
                password: r.get("REDIS_PASSWORD").map(SecretString::new),
            }
        });

        let stateless = r.flag("TOOLGATE_STATELESS");
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
            list_all_tools,
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
            list_all_tools: false,
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

fn auth_config(r: &mut Reader) -> Option<AuthConfig> {
    let provider = r.required("AUTH_PROVIDER", "set it to auth0");
    if let Some(provider) = &provider
        && !KNOWN_PROVIDERS.contains(&provider.as_str())
    {
        r.problem(
            "AUTH_PROVIDER",
            format!(
                "unknown provider; known providers: {}",
                KNOWN_PROVIDERS.join(", ")
            ),
        );
    }
    let domain = r.required(
        "AUTH0_DOMAIN",
        "your Auth0 tenant domain, e.g. my-app.us.auth0.com",
    );
    let domain = domain.and_then(|d| match parse_domain(&d) {
        Ok(url) => Some(url),
        Err(message) => {
            r.problem("AUTH0_DOMAIN", message);
            None
        }
    });
    let client_id = r.required(
        "AUTH0_CLIENT_ID",
        "the application's Client ID from the Auth0 dashboard",
    );
    let client_secret = r.required(
        "AUTH0_CLIENT_SECRET",
        "the application's Client Secret from the Auth0 dashboard",
    );
    let audience = r.required(
        "AUTH0_AUDIENCE",
        "the identifier of your Auth0 API, e.g. https://api.example.com",
    );
    match (
        provider.as_deref(),
        domain,
        client_id,
        client_secret,
        audience,
    ) {
        (Some("auth0"), Some(domain), Some(client_id), Some(client_secret), Some(audience)) => {
            Some(AuthConfig {
                provider: ProviderConfig::Auth0(Auth0Settings {
                    domain,
                    client_id,
                    client_secret: SecretString::new(client_secret),
                    audience,
                }),
            })
        }
        _ => None,
    }
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

/// `AUTH0_DOMAIN`: a bare host means https; a full URL may be plain http only on loopback.
fn parse_domain(value: &str) -> Result<Url, String> {
    let url = if value.contains("://") {
        Url::parse(value).map_err(|_| "not a valid URL or host name".to_owned())?
    } else {
        let url = Url::parse(&format!("https://{value}"))
            .map_err(|_| "not a valid host name".to_owned())?;
        if url.path() != "/" {
            return Err("give the domain only, like my-app.us.auth0.com".into());
        }
        url
    };
    match url.scheme() {
        "https" => {}
        "http" if is_loopback_url(&url) => {}
        "http" => {
            return Err("plain http is accepted only for loopback addresses; use https".into());
        }
        _ => return Err("must be a host name or an https URL".into()),
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a path, query or fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(url)
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
    }
}
