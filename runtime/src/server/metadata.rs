use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde_json::json;

use super::Shared;

/// RFC 9728 protected-resource metadata, served at the root and the path-inserted `/mcp` form.
pub(crate) async fn protected_resource(State(shared): State<Arc<Shared>>) -> Response {
    let Some(provider) = &shared.provider else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "not_found", "error_description": "authentication is off on this server" }))).into_response();
    };
    let servers = match provider.authorization_servers().await {
        Ok(servers) => servers,
        Err(error) => {
            tracing::warn!(%error, "protected-resource metadata: the identity provider is unavailable");
            return super::gate::unavailable();
        }
    };
    axum::Json(json!({
        "resource": shared.config.resource_uri(),
        "authorization_servers": servers,
        "scopes_supported": shared.scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": "toolgate MCP server",
    }))
    .into_response()
}
