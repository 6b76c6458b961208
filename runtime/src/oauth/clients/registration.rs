//! `POST /register`: dynamic client registration (RFC 7591), limited per client address.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use http::{StatusCode, header};
use serde::Deserialize;
use serde_json::json;

use super::{CLIENT_KIND, Client, MAX_CLIENT_NAME_CHARS, validate_redirect_uri};
use crate::oauth::responses::{json_error, json_reply, store_down_json};
use crate::oauth::{CLIENT_TTL, OAuth, crypto};

/// The largest registration request accepted.
pub(crate) const MAX_REGISTRATION_BYTES: usize = 64 * 1024;
/// The most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 20;
/// The limiter forgets addresses it has not seen for a while once per this many registrations.
const FORGET_EVERY: u32 = 1024;

/// Registrations per client address: `per_minute` at once, then one every `60 / per_minute`
/// seconds (governor's GCRA), until the shared limit of a scaled-out deployment replaces it.
pub(crate) struct RegistrationLimit {
    /// `None` when the limit is zero: no registrations at all.
    limiter: Option<governor::DefaultKeyedRateLimiter<IpAddr>>,
    since_forgetting: AtomicU32,
}

impl RegistrationLimit {
    pub(crate) fn new(per_minute: u32) -> Self {
        Self {
            limiter: NonZeroU32::new(per_minute)
                .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n))),
            since_forgetting: AtomicU32::new(0),
        }
    }

    /// Counts one registration from `address`; `Err` with how long to wait when it is over.
    pub(crate) fn admit(&self, address: Option<IpAddr>) -> Result<(), Duration> {
        let Some(limiter) = &self.limiter else {
            return Err(Duration::from_secs(60));
        };
        // Addresses not seen for a minute hold a full allowance again, like one never seen: forget
        // them now and then, so the limiter's memory is bounded by recent callers.
        if self.since_forgetting.fetch_add(1, Ordering::Relaxed) >= FORGET_EVERY {
            self.since_forgetting.store(0, Ordering::Relaxed);
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        // Requests whose peer address is unknown (a router mounted without connect info) share one
        // bucket: limited together rather than not at all.
        let address = address.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        limiter
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[derive(Deserialize)]
struct RegistrationRequest {
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
}

fn invalid_metadata(description: impl Into<String>) -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

/// `POST /register`.
pub(crate) async fn register(
    State(oauth): State<Arc<OAuth>>,
    request: axum::extract::Request,
) -> Result<Response, Response> {
    // The client as the server decided it (behind trusted proxies, the forwarded address). Read by
    // hand: a router mounted without connect info has none, and must still serve registrations.
    let peer = request
        .extensions()
        .get::<crate::net::ClientAddress>()
        .map(|address| address.0);
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    if let Err(wait) = oauth.registrations.admit(peer) {
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
        let mut response = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            format!("too many registrations from this address; try again in {seconds} s"),
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from(seconds));
        return Err(response);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err(invalid_metadata(
            "send the registration as application/json",
        ));
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_REGISTRATION_BYTES)
        .await
        .map_err(|_| {
            json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_client_metadata",
                "the registration is larger than 64 KiB",
            )
        })?;
    let request: RegistrationRequest = serde_json::from_slice(&bytes)
        .map_err(|e| invalid_metadata(format!("the registration is not valid JSON: {e}")))?;

    let redirect_uris = request.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "register at least one redirect URI",
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            format!("register at most {MAX_REDIRECT_URIS} redirect URIs"),
        ));
    }
    for uri in &redirect_uris {
        validate_redirect_uri(uri).map_err(|problem| {
            json_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", problem)
        })?;
    }
    if let Some(name) = &request.client_name
        && (name.chars().count() > MAX_CLIENT_NAME_CHARS || name.chars().any(char::is_control))
    {
        return Err(invalid_metadata(format!(
            "client_name must be at most {MAX_CLIENT_NAME_CHARS} characters without control characters"
        )));
    }
    let grant_types = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(other) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(invalid_metadata(format!(
            "grant type `{other}` is not supported; use authorization_code and refresh_token"
        )));
    }
    let response_types = request
        .response_types
        .unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(invalid_metadata(
            "only the `code` response type is supported",
        ));
    }
    if let Some(scope) = &request.scope
        && let Some(unknown) = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .find(|s| !oauth.settings.scopes_supported.iter().any(|k| k == s))
    {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            format!("scope `{unknown}` is not offered by this server"),
        ));
    }
    // RFC 7591 §2: without a method the client authenticates with HTTP Basic.
    let method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    let secret = match method.as_str() {
        "none" => None,
        "client_secret_basic" | "client_secret_post" => Some(crypto::random_token()),
        other => {
            return Err(invalid_metadata(format!(
                "token_endpoint_auth_method `{other}` is not supported; use none, client_secret_basic or client_secret_post"
            )));
        }
    };

    let client = Client {
        client_id: crypto::random_token(),
        client_name: request.client_name,
        redirect_uris,
        secret_sha256: secret.as_deref().map(crypto::sha256_hex),
    };
    oauth
        .store
        .put(CLIENT_KIND, &client.client_id, &client, CLIENT_TTL)
        .await
        .map_err(store_down_json)?;
    tracing::info!(client_id = %client.client_id, "registered a client");

    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": crate::time::unix_now(),
        "redirect_uris": client.redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": method,
    });
    if let Some(name) = &client.client_name {
        body["client_name"] = json!(name);
    }
    if let Some(scope) = &request.scope {
        body["scope"] = json!(scope);
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(json_reply(StatusCode::CREATED, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_allowance_then_waits() {
        let limit = RegistrationLimit::new(3);
        let alice = Some(IpAddr::from([192, 0, 2, 1]));
        for _ in 0..3 {
            assert!(limit.admit(alice).is_ok());
        }
        let wait = limit.admit(alice).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        assert!(limit.admit(Some(IpAddr::from([192, 0, 2, 2]))).is_ok());
        assert!(
            limit.admit(None).is_ok(),
            "unknown peers share one allowance"
        );
        assert!(RegistrationLimit::new(0).admit(alice).is_err());
    }
}
