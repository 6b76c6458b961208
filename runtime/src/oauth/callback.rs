//! `GET /auth/callback`: Auth0 sends the browser back here. We exchange Auth0's code, verify the
//! ID token, keep Auth0's tokens encrypted in a new grant, and send the browser on to the client
//! with a code of our own.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use super::authorize::{UPSTREAM_STATE, UpstreamLogin};
use super::grants::{Grant, UpstreamTokens};
use super::responses::{
    error_page, redirect_error, redirect_with, store_down_page, unavailable_page,
};
use super::upstream::{self, UpstreamError};
use super::{CODE_TTL, OAuth, crypto};
use crate::auth::{AuthError, AuthProvider};
use crate::time::unix_now;
use openidconnect::{Nonce, OAuth2TokenResponse};

/// Store kinds.
pub(crate) const CODE: &str = "code"; // our authorization code
pub(crate) const CODE_USED: &str = "code-used"; // a spent code

/// One of our authorization codes: bound to the client, its redirect URI and its PKCE challenge.
#[derive(Serialize, Deserialize)]
pub(crate) struct CodeRecord {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) redirect_uri_given: bool,
    pub(crate) code_challenge: String,
    pub(crate) grant_id: String,
}

/// `GET /auth/callback`.
pub(crate) async fn callback(
    State(oauth): State<Arc<OAuth>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match super::query_params(query.as_deref()) {
        Ok(params) => params,
        Err(page) => return *page,
    };
    let Some(state) = params.get("state") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the identity provider sent no state",
        );
    };
    // Single use: a replayed or forged callback finds nothing.
    let login = match oauth
        .store
        .take::<UpstreamLogin>(UPSTREAM_STATE, state)
        .await
    {
        Ok(Some(login)) => login,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "this sign-in has expired or was already completed; start again from your application",
            );
        }
        Err(error) => return store_down_page(error),
    };
    let pending = login.pending;
    let Ok(redirect_uri) = Url::parse(&pending.redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the redirect URI is unusable",
        );
    };
    let issuer = oauth.settings.issuer.as_str();
    let deny = |description: &str| {
        redirect_error(
            &redirect_uri,
            pending.state.as_deref(),
            issuer,
            "access_denied",
            description,
        )
    };
    if let Some(error) = params.get("error") {
        tracing::info!(%error, "the sign-in at Auth0 did not complete");
        return deny("the sign-in at the identity provider did not complete");
    }
    let Some(code) = params.get("code") else {
        return deny("the identity provider sent no code");
    };

    let tokens = match upstream::exchange_code(
        &oauth.upstream,
        code,
        &login.verifier,
        &oauth.settings.callback_url,
    )
    .await
    {
        Ok(tokens) => tokens,
        Err(UpstreamError::Rejected(error)) => {
            tracing::warn!(%error, "Auth0 refused the code exchange");
            return deny("the identity provider refused the sign-in");
        }
        Err(UpstreamError::Unavailable(reason)) => return unavailable_page(&reason),
    };
    let Some(id_token) = tokens.extra_fields().id_token() else {
        return deny("the identity provider sent no ID token");
    };
    let nonce = Nonce::new(login.nonce);
    let id_claims = match oauth.upstream.verify_id_token(id_token, &nonce).await {
        Ok(claims) => claims,
        Err(AuthError::Unavailable(reason)) => return unavailable_page(&reason),
        Err(AuthError::Invalid(reason)) => {
            tracing::warn!(%reason, "refused an ID token");
            return deny("the identity provider's ID token is invalid");
        }
    };
    let access = match oauth.upstream.verify(tokens.access_token().secret()).await {
        Ok(access) => access,
        Err(AuthError::Unavailable(reason)) => return unavailable_page(&reason),
        Err(AuthError::Invalid(reason)) => {
            tracing::warn!(%reason, "refused the access token from the code exchange");
            return deny("the identity provider's access token is not for this server");
        }
    };
    if id_claims.subject().as_str() != access.claims().sub {
        return deny("the ID token and the access token name different users");
    }

    let grant = Grant {
        client_id: pending.client_id.clone(),
        scope: pending.scope.clone(),
        sub: access.claims().sub.clone(),
        upstream: UpstreamTokens {
            access_token: tokens.access_token().secret().clone(),
            refresh_token: tokens.refresh_token().map(|t| t.secret().clone()),
            expires_at: (unix_now() + upstream::expires_in(&tokens)).min(access.claims().exp),
        },
    };
    let grant_id = match oauth.create_grant(&grant).await {
        Ok(id) => id,
        Err(error) => return store_down_page(error),
    };
    let our_code = crypto::random_token();
    let record = CodeRecord {
        client_id: pending.client_id,
        redirect_uri: pending.redirect_uri,
        redirect_uri_given: pending.redirect_uri_given,
        code_challenge: pending.code_challenge,
        grant_id,
    };
    if let Err(error) = oauth.store.put(CODE, &our_code, &record, CODE_TTL).await {
        return store_down_page(error);
    }
    let mut params = vec![("code", our_code.as_str())];
    if let Some(state) = pending.state.as_deref() {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    redirect_with(&redirect_uri, &params)
}
