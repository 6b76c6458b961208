//! The OpenID discovery document, in the shape Auth0 serves it, and the JWKS it points to.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::claims::OIDC_SCOPES;
use crate::state::Shared;

pub(crate) async fn discovery(State(s): State<Arc<Shared>>) -> Response {
    s.discovery_requests.fetch_add(1, Ordering::SeqCst);
    let mut scopes: Vec<String> = OIDC_SCOPES.iter().map(|s| s.to_string()).collect();
    for p in &s.config.permissions {
        if !scopes.contains(p) {
            scopes.push(p.clone());
        }
    }
    Json(json!({
        "issuer": s.issuer(),
        "authorization_endpoint": s.endpoint("/authorize"),
        "token_endpoint": s.endpoint("/oauth/token"),
        "userinfo_endpoint": s.endpoint("/userinfo"),
        "jwks_uri": s.endpoint("/.well-known/jwks.json"),
        "revocation_endpoint": s.endpoint("/oauth/revoke"),
        "end_session_endpoint": s.endpoint("/oidc/logout"),
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password"],
        "claims_supported": [
            "aud", "email", "email_verified", "exp", "iat", "iss", "name", "nickname",
            "picture", "sid", "sub", "updated_at"
        ],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
    }))
    .into_response()
}

/// Every key of the ring, so tokens signed before a rotation still verify; 503 when a test has
/// made the JWKS unavailable.
pub(crate) async fn jwks(State(s): State<Arc<Shared>>) -> Response {
    s.jwks_requests.fetch_add(1, Ordering::SeqCst);
    if !s.jwks_available.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable").into_response();
    }
    let body = s.keys.read().expect("key ring lock").jwks();
    Json(body).into_response()
}
