use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use serde_json::json;

/// Builds the `WWW-Authenticate` answers of a protected resource (RFC 6750, RFC 9728).
#[derive(Clone, Debug)]
pub struct Challenge {
    resource_metadata: String,
    default_scope: String,
}

impl Challenge {
    /// `resource_metadata` is the URL of our protected-resource metadata; `default_scope` is what a
    /// client should ask for when it has no token yet.
    pub fn new(resource_metadata: String, default_scope: String) -> Self {
        Self {
            resource_metadata,
            default_scope,
        }
    }

    fn header(&self, error: Option<&str>, scope: &str) -> HeaderValue {
        let mut value = String::from("Bearer ");
        if let Some(error) = error {
            value.push_str(&format!("error=\"{error}\", "));
        }
        value.push_str(&format!(
            "scope=\"{scope}\", resource_metadata=\"{}\"",
            self.resource_metadata
        ));
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    }

    /// 401: no token (`error` None) or a bad one (`invalid_token`).
    pub fn unauthorized(&self, error: Option<&str>, description: &str) -> Response {
        let body = json!({ "error": error.unwrap_or("invalid_request"), "error_description": description });
        let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            self.header(error, &self.default_scope),
        );
        response
    }

    /// 403 `insufficient_scope`, naming every permission the tool needs.
    pub fn insufficient_scope(&self, tool: &str, needed: &[&str]) -> Response {
        let scope = needed.join(" ");
        let body = json!({
            "error": "insufficient_scope",
            "error_description": format!("tool `{tool}` requires the permissions: {scope}"),
        });
        let mut response = (StatusCode::FORBIDDEN, axum::Json(body)).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            self.header(Some("insufficient_scope"), &scope),
        );
        response
    }
}
