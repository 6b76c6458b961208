//! The calls to Auth0 made on a client's behalf: the code exchange, refresh and revocation. The
//! client secret and Auth0's tokens go to Auth0 only, and never into a log or an error message.

use serde::Deserialize;

use crate::auth::Auth0Provider;
use crate::net::send;

/// Why Auth0 did not give us tokens.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// Auth0 answered with an OAuth error (the code or refresh token is bad): the error code.
    Rejected(String),
    /// Auth0 could not be reached or failed: try later.
    Unavailable(String),
}

/// Auth0's token response.
#[derive(Deserialize)]
pub(crate) struct UpstreamTokens {
    pub(crate) access_token: String,
    #[serde(default)]
    pub(crate) refresh_token: Option<String>,
    #[serde(default)]
    pub(crate) id_token: Option<String>,
    /// Seconds; Auth0 always sends it.
    #[serde(default = "default_expires_in")]
    pub(crate) expires_in: i64,
}

fn default_expires_in() -> i64 {
    3600
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
}

async fn token_request(
    provider: &Auth0Provider,
    params: &[(&str, &str)],
) -> Result<UpstreamTokens, UpstreamError> {
    let (_, token_endpoint) = provider
        .endpoints()
        .await
        .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
    let settings = provider.settings();
    let mut form: Vec<(&str, &str)> = vec![
        ("client_id", settings.client_id.as_str()),
        ("client_secret", settings.client_secret.secret()),
    ];
    form.extend_from_slice(params);
    let response = send(provider.http().post(&token_endpoint).form(&form))
        .await
        .map_err(|e| UpstreamError::Unavailable(format!("Auth0's token endpoint: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return response.json::<UpstreamTokens>().await.map_err(|_| {
            UpstreamError::Unavailable("Auth0's token response is not valid JSON".into())
        });
    }
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(UpstreamError::Unavailable(format!(
            "Auth0's token endpoint answered HTTP {}",
            status.as_u16()
        )));
    }
    let error = response
        .json::<ErrorBody>()
        .await
        .ok()
        .and_then(|b| b.error)
        .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
    Err(UpstreamError::Rejected(error))
}

/// Exchanges Auth0's authorization code, with our PKCE verifier and our callback URL.
pub(crate) async fn exchange_code(
    provider: &Auth0Provider,
    code: &str,
    verifier: &str,
    callback_url: &str,
) -> Result<UpstreamTokens, UpstreamError> {
    token_request(
        provider,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", callback_url),
        ],
    )
    .await
}

/// Gets a new Auth0 access token with a grant's refresh token.
pub(crate) async fn refresh(
    provider: &Auth0Provider,
    refresh_token: &str,
) -> Result<UpstreamTokens, UpstreamError> {
    token_request(
        provider,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Revokes a grant's Auth0 refresh token. Best effort: our side of the grant is already gone, and a
/// failure here must not turn a revocation into an error.
pub(crate) async fn revoke_refresh_token(provider: &Auth0Provider, refresh_token: &str) {
    let settings = provider.settings();
    let result = send(
        provider
            .http()
            .post(&provider.revocation_endpoint())
            .form(&[
                ("client_id", settings.client_id.as_str()),
                ("client_secret", settings.client_secret.secret()),
                ("token", refresh_token),
            ]),
    )
    .await;
    match result {
        Ok(response) if response.status().is_success() => {
            tracing::debug!("revoked an upstream refresh token");
        }
        Ok(response) => tracing::warn!(
            status = response.status().as_u16(),
            "Auth0 did not revoke an upstream refresh token"
        ),
        Err(error) => {
            tracing::warn!(%error, "could not reach Auth0 to revoke a refresh token")
        }
    }
}
