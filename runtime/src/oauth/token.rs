//! `POST /token` (authorization code with PKCE, refresh with rotation) and `POST /revoke` (RFC 7009).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use http::{HeaderMap, StatusCode, header};

use super::callback::{CODE, CODE_USED, CodeRecord};
use super::clients::{Client, client_credentials};
use super::grants::RefreshError;
use super::responses::{json_error, json_reply, store_down_json, unavailable_json};
use super::{OAuth, crypto};

/// The largest token or revocation request accepted.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// How long a spent code is remembered, so a replay can revoke what it issued.
const SPENT_CODE_MEMORY: Duration = Duration::from_secs(24 * 3600);

fn invalid_request(description: impl Into<String>) -> Response {
    json_error(StatusCode::BAD_REQUEST, "invalid_request", description)
}

fn invalid_grant(description: impl Into<String>) -> Response {
    json_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// The form of a token or revocation request, with the calling client authenticated.
async fn read_form(
    oauth: &OAuth,
    headers: &HeaderMap,
    body: Body,
) -> Result<(HashMap<String, String>, Arc<Client>), Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(invalid_request(
            "send the request as application/x-www-form-urlencoded",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| invalid_request("the request body is too large"))?;
    let form = super::parse_params(&bytes).map_err(invalid_request)?;
    let credentials = client_credentials(
        headers,
        form.get("client_id").map(String::as_str),
        form.get("client_secret").map(String::as_str),
    )
    .map_err(axum::response::IntoResponse::into_response)?;
    let client = oauth.authenticate(&credentials).await?;
    Ok((form, client))
}

/// `POST /token`.
pub(crate) async fn token(
    State(oauth): State<Arc<OAuth>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let (form, client) = read_form(&oauth, &headers, body).await?;
    if let Some(resource) = form.get("resource")
        && resource.trim_end_matches('/') != oauth.settings.resource
    {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_target",
            "this server issues tokens for its own MCP endpoint only",
        ));
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(&oauth, &form, &client).await,
        Some("refresh_token") => refresh_token(&oauth, &form, &client).await,
        Some(_) => Err(json_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "use authorization_code or refresh_token",
        )),
        None => Err(invalid_request("grant_type is missing")),
    }
}

async fn authorization_code(
    oauth: &OAuth,
    form: &HashMap<String, String>,
    client: &Client,
) -> Result<Response, Response> {
    let code = form
        .get("code")
        .ok_or_else(|| invalid_request("code is missing"))?;
    let verifier = form
        .get("code_verifier")
        .ok_or_else(|| invalid_request("code_verifier is missing: PKCE is required"))?;
    let Some(record) = oauth
        .store
        .take::<CodeRecord>(CODE, code)
        .await
        .map_err(store_down_json)?
    else {
        if oauth
            .revoke_on_replay(CODE_USED, code)
            .await
            .map_err(store_down_json)?
        {
            return Err(invalid_grant(
                "this code was already used; the tokens it issued are now revoked",
            ));
        }
        return Err(invalid_grant("unknown or expired code"));
    };
    oauth
        .remember_used(CODE_USED, code, &record.grant_id, SPENT_CODE_MEMORY)
        .await
        .map_err(store_down_json)?;
    // A code in the wrong hands, or redeemed without its verifier, was intercepted: end its grant.
    let grant_id = record.grant_id.clone();
    let revoke = |reason: &'static str| async move {
        oauth
            .revoke_grant(&grant_id, reason)
            .await
            .map_err(store_down_json)
    };
    if record.client_id != client.client_id {
        revoke("a code was presented by another client").await?;
        return Err(invalid_grant("this code was issued to another client"));
    }
    if !crypto::valid_pkce_value(verifier)
        || !crypto::constant_time_eq(
            crypto::s256_challenge(verifier).as_bytes(),
            record.code_challenge.as_bytes(),
        )
    {
        revoke("a code was presented with the wrong PKCE verifier").await?;
        return Err(invalid_grant(
            "the code_verifier does not match the code_challenge",
        ));
    }
    match form.get("redirect_uri") {
        Some(uri) if *uri != record.redirect_uri => {
            revoke("a code was presented with another redirect URI").await?;
            return Err(invalid_grant(
                "redirect_uri differs from the authorization request's",
            ));
        }
        None if record.redirect_uri_given => {
            return Err(invalid_request(
                "redirect_uri is missing; it was part of the authorization request",
            ));
        }
        _ => {}
    }
    let Some(grant) = oauth
        .grant(&record.grant_id)
        .await
        .map_err(store_down_json)?
    else {
        return Err(invalid_grant("this authorization was revoked"));
    };
    let tokens = oauth
        .issue_tokens(&record.grant_id, &grant)
        .await
        .map_err(store_down_json)?;
    tracing::info!(client_id = %client.client_id, "issued tokens for a code");
    Ok(json_reply(StatusCode::OK, tokens.to_json()))
}

async fn refresh_token(
    oauth: &OAuth,
    form: &HashMap<String, String>,
    client: &Client,
) -> Result<Response, Response> {
    let refresh_token = form
        .get("refresh_token")
        .ok_or_else(|| invalid_request("refresh_token is missing"))?;
    match oauth.refresh(refresh_token, &client.client_id).await {
        Ok(tokens) => Ok(json_reply(StatusCode::OK, tokens.to_json())),
        Err(RefreshError::Invalid(why)) => Err(invalid_grant(why)),
        Err(RefreshError::Unavailable(reason)) => Err(unavailable_json(&reason)),
    }
}

/// `POST /revoke`. Answers 200 whatever the token was (RFC 7009 §2.2), once the client is
/// authenticated. Our tokens are revoked here; only a grant's Auth0 refresh token goes upstream.
pub(crate) async fn revoke(
    State(oauth): State<Arc<OAuth>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let (form, client) = read_form(&oauth, &headers, body).await?;
    let token = form
        .get("token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid_request("token is missing"))?;
    let client_id = client.client_id.as_str();
    // Our access tokens are JWTs and our refresh tokens opaque, so the token's shape says which it
    // is; `token_type_hint` (RFC 7009 §2.1) is only a hint and is not needed.
    let revoked = if token.contains('.') {
        oauth.revoke_access_token(token, client_id).await
    } else {
        oauth.revoke_refresh_token(token, client_id).await
    }
    .map_err(store_down_json)?;
    tracing::info!(client_id = %client.client_id, revoked, "revocation request");
    Ok(json_reply(StatusCode::OK, serde_json::json!({})))
}
