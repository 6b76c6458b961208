//! The identity provider `AUTH_PROVIDER` names, and where it is: the settings `auth` builds a
//! provider from. Here rather than in `auth`, so configuration is a leaf that imports nothing.

use url::Url;

use super::{Reader, SecretString, TlsTrust, is_loopback_url};

/// The providers `AUTH_PROVIDER` may name.
pub const KNOWN_PROVIDERS: &[&str] = &["auth0"];

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

/// Where the Auth0 tenant is and what it issues for us.
#[derive(Clone, Debug)]
pub struct Auth0Settings {
    /// The tenant's base URL: `https://DOMAIN`, or plain http on loopback for a local stand-in.
    pub domain: url::Url,
    /// The application's client id.
    pub client_id: String,
    /// The application's client secret.
    pub client_secret: SecretString,
    /// The API identifier our tokens must carry in `aud`.
    pub audience: String,
    /// The certificate authorities the tenant's certificate is verified against.
    pub tls_trust: TlsTrust,
}

pub(super) fn auth_config(r: &mut Reader, tls_trust: &TlsTrust) -> Option<AuthConfig> {
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
                    tls_trust: tls_trust.clone(),
                }),
            })
        }
        _ => None,
    }
}

/// `AUTH0_DOMAIN`: a bare host means https; a full URL may be plain http only on loopback.
pub(super) fn parse_domain(value: &str) -> Result<Url, String> {
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
