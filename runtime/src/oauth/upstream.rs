//! The calls to Auth0 made on a client's behalf: the code exchange, refresh and revocation, through
//! openidconnect over our own HTTP client (its TLS trust, no redirects, timeouts). The client
//! secret and Auth0's tokens go to Auth0 only, and never into a log or an error message.

use std::borrow::Cow;

use openidconnect::core::{CoreErrorResponseType, CoreRevocableToken, CoreTokenResponse};
use openidconnect::{
    AuthorizationCode, OAuth2TokenResponse, PkceCodeVerifier, RedirectUrl, RefreshToken,
    RequestTokenError, StandardErrorResponse,
};

use crate::auth::Auth0Provider;
use crate::net::{OutboundError, TokenEndpointHttp};

/// Why Auth0 did not give us tokens.
#[derive(Debug)]
pub(crate) enum UpstreamError {
    /// Auth0 answered with an OAuth error (the code or refresh token is bad): the error code.
    Rejected(String),
    /// Auth0 could not be reached or failed: try later.
    Unavailable(String),
}

/// Auth0's token response.
pub(crate) type Auth0Tokens = CoreTokenResponse;

/// Seconds the access token of `tokens` lives: Auth0 always says; an hour if it did not.
pub(crate) fn expires_in(tokens: &Auth0Tokens) -> i64 {
    tokens
        .expires_in()
        .map_or(3600, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn classify(
    error: RequestTokenError<OutboundError, StandardErrorResponse<CoreErrorResponseType>>,
) -> UpstreamError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            UpstreamError::Rejected(response.error().as_ref().to_owned())
        }
        RequestTokenError::Request(error) => {
            UpstreamError::Unavailable(format!("Auth0's token endpoint: {error}"))
        }
        // A body that is not what OAuth says (not JSON, not a token response): not Auth0's word
        // on the grant, so nothing is revoked for it.
        RequestTokenError::Parse(..) | RequestTokenError::Other(_) => {
            UpstreamError::Unavailable("Auth0's token response could not be read".into())
        }
    }
}

fn unavailable(error: impl std::fmt::Display) -> UpstreamError {
    UpstreamError::Unavailable(error.to_string())
}

/// Exchanges Auth0's authorization code, with our PKCE verifier and our callback URL.
pub(crate) async fn exchange_code(
    provider: &Auth0Provider,
    code: &str,
    verifier: &str,
    callback_url: &str,
) -> Result<Auth0Tokens, UpstreamError> {
    let client = provider.client().await.map_err(unavailable)?;
    let redirect = RedirectUrl::new(callback_url.to_owned()).map_err(unavailable)?;
    client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(unavailable)?
        .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
        .set_redirect_uri(Cow::Owned(redirect))
        .request_async(&TokenEndpointHttp(provider.http()))
        .await
        .map_err(classify)
}

/// Gets a new Auth0 access token with a grant's refresh token.
pub(crate) async fn refresh(
    provider: &Auth0Provider,
    refresh_token: &str,
) -> Result<Auth0Tokens, UpstreamError> {
    let client = provider.client().await.map_err(unavailable)?;
    let refresh_token = RefreshToken::new(refresh_token.to_owned());
    client
        .exchange_refresh_token(&refresh_token)
        .map_err(unavailable)?
        .request_async(&TokenEndpointHttp(provider.http()))
        .await
        .map_err(classify)
}

/// Revokes a grant's Auth0 refresh token. Best effort: our side of the grant is already gone, and a
/// failure here must not turn a revocation into an error.
pub(crate) async fn revoke_refresh_token(provider: &Auth0Provider, refresh_token: &str) {
    let result = async {
        let client = provider.client().await.map_err(|e| e.to_string())?;
        let token = CoreRevocableToken::from(RefreshToken::new(refresh_token.to_owned()));
        client
            .revoke_token(token)
            .map_err(|e| e.to_string())?
            .request_async(&TokenEndpointHttp(provider.http()))
            .await
            .map_err(|error| match error {
                RequestTokenError::ServerResponse(response) => {
                    format!("Auth0 refused: {}", response.error().as_ref())
                }
                RequestTokenError::Request(error) => error.to_string(),
                other => other.to_string(),
            })
    }
    .await;
    match result {
        Ok(()) => tracing::debug!("revoked an upstream refresh token"),
        Err(error) => {
            tracing::warn!(%error, "Auth0 did not revoke an upstream refresh token")
        }
    }
}
