//! `/oauth/revoke` (RFC 7009): the client authenticates as at the token endpoint; revoking a
//! refresh token ends its whole rotation family, as in Auth0.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::state::Shared;
use crate::token::{OAuthError, TokenRequest, authenticate_client, required};

#[derive(Deserialize)]
struct Params {
    token: Option<String>,
}

fn revoke_with(s: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<(), OAuthError> {
    let request = TokenRequest::from_body(headers, body)?;
    authenticate_client(&s.config, headers, &request)?;
    let p: Params = request.params()?;
    let token = required(&p.token, "token")?;
    s.refresh.lock().expect("refresh lock").revoke(token);
    Ok(())
}

pub(crate) async fn revoke(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match revoke_with(&s, &headers, &body) {
        Ok(()) => {
            s.revocations.fetch_add(1, Ordering::SeqCst);
            StatusCode::OK.into_response()
        }
        Err(e) => e.into_response(),
    }
}
