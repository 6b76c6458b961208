//! `/userinfo`: the profile of the user a token was issued to, with the failures and delays tests
//! inject to see how a client copes.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use headers::authorization::Bearer;
use headers::{Authorization, HeaderMapExt};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value, json};

use crate::state::Shared;

fn invalid_token(description: &'static str) -> Response {
    let challenge = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, challenge)],
        "Unauthorized",
    )
        .into_response()
}

/// The injected failure, if any: that status (429 adds `Retry-After: 1`).
fn injected_failure(s: &Shared) -> Option<Response> {
    let status = (*s.userinfo_failure.lock().expect("lock"))?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut response = (status, reason).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            "1".parse().expect("a valid header value"),
        );
    }
    Some(response)
}

/// The claims of an access token this IdP signed for its `/userinfo` audience, not expired.
fn verify(s: &Shared, token: &str) -> Result<Value, String> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.leeway = 0;
    validation.set_audience(&[s.endpoint("/userinfo")]);
    validation.set_issuer(&[s.issuer()]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    s.keys
        .read()
        .expect("key ring lock")
        .verify(token, &validation)
}

pub(crate) async fn userinfo(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    s.userinfo_requests.fetch_add(1, Ordering::SeqCst);
    let delay = *s.userinfo_delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = injected_failure(&s) {
        return failure;
    }
    let bearer = headers.typed_get::<Authorization<Bearer>>();
    let Some(token) = bearer
        .as_ref()
        .map(|b| b.token().trim())
        .filter(|t| !t.is_empty())
    else {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Bearer realm=\"toolgate-dev-idp\"",
            )],
            "Unauthorized",
        )
            .into_response();
    };
    let claims = match verify(&s, token) {
        Ok(claims) => claims,
        Err(reason) => {
            tracing::debug!(%reason, "userinfo rejected a token");
            return invalid_token("The access token is invalid or expired");
        }
    };
    let sub = claims["sub"].as_str().unwrap_or_default();
    if sub.is_empty() || sub.ends_with("@clients") {
        return invalid_token("The access token does not belong to a user");
    }
    let scope = claims["scope"].as_str().unwrap_or_default();
    let mut profile = Map::new();
    profile.insert("sub".into(), json!(sub));
    // Tokens forged for a sub outside the configured users still get their `sub` back.
    if let Some(user) = s.config.find_user(sub).filter(|u| u.sub == sub) {
        profile.extend(s.profile_claims(user, scope));
    }
    Json(Value::Object(profile)).into_response()
}
