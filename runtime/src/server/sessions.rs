//! MCP sessions belong to the caller who opened them. rmcp knows sessions only by id, so a caller
//! holding another user's `Mcp-Session-Id` could otherwise post into that session, read its event
//! stream, or end it. The gate records who opened each session and answers any other caller as if
//! the session did not exist.

use std::sync::Arc;
use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::auth::AccessToken;

/// The header carrying the session id (MCP streamable HTTP).
pub(crate) const SESSION_HEADER: &str = "mcp-session-id";

/// Longer than rmcp's own idle timeout (5 minutes), so a live session is never forgotten here
/// first; each request of the session refreshes it.
const OWNER_IDLE: Duration = Duration::from_secs(600);

/// Who opened a session: the issuer and subject of the token.
#[derive(Clone, PartialEq, Eq)]
struct Owner {
    issuer: Arc<str>,
    subject: Arc<str>,
}

impl Owner {
    fn of(token: &AccessToken) -> Self {
        Self {
            issuer: token.claims().iss.as_str().into(),
            subject: token.claims().sub.as_str().into(),
        }
    }
}

/// Session id → owner, for the sessions this server opened.
pub(crate) struct SessionOwners {
    owners: moka::sync::Cache<String, Owner>,
}

impl SessionOwners {
    pub(crate) fn new() -> Self {
        Self {
            owners: moka::sync::Cache::builder()
                .max_capacity(1_000_000)
                .time_to_idle(OWNER_IDLE)
                .build(),
        }
    }

    /// True when `token`'s caller opened session `id`. Fails closed: a session with no record
    /// here (never opened by this server, or forgotten) belongs to nobody.
    pub(crate) fn is_owned_by(&self, id: &str, token: &AccessToken) -> bool {
        self.owners
            .get(id)
            .is_some_and(|owner| owner == Owner::of(token))
    }

    /// Remembers the caller of a request whose response opened a session.
    pub(crate) fn record_opened(&self, response: &Response, token: &AccessToken) {
        if let Some(id) = session_id(response.headers()) {
            self.owners.insert(id.to_owned(), Owner::of(token));
        }
    }

    pub(crate) fn forget(&self, id: &str) {
        self.owners.invalidate(id);
    }
}

/// The session a request or response names, when it names one readable id.
pub(crate) fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(SESSION_HEADER)
        .and_then(|value: &HeaderValue| value.to_str().ok())
}

/// What rmcp answers for a session it does not know, so a foreign session looks the same.
pub(crate) fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found: Session not found").into_response()
}
