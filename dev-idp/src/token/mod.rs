//! `/oauth/token`: client authentication, then one of four grants, each in its own file and each
//! reading only its own parameters.

mod authorization_code;
mod client_auth;
mod client_credentials;
mod error;
mod params;
mod password;
mod refresh;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;
use serde_json::Value;

pub(crate) use client_auth::authenticate_client;
pub(crate) use error::OAuthError;
pub(crate) use params::TokenRequest;

use crate::state::Shared;
use crate::util::unique_words;

pub(crate) async fn token(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let answer = TokenRequest::from_body(&headers, &body).and_then(|request| {
        authenticate_client(&s.config, &headers, &request)?;
        grant(&s, &request)
    });
    match answer {
        Ok(body) => (error::NO_STORE, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct GrantType {
    grant_type: Option<String>,
}

fn grant(s: &Shared, request: &TokenRequest) -> Result<Value, OAuthError> {
    let GrantType { grant_type } = request.params()?;
    match grant_type.as_deref() {
        Some("authorization_code") => authorization_code::grant(s, request.params()?),
        Some("refresh_token") => refresh::grant(s, request.params()?),
        Some("client_credentials") => client_credentials::grant(s, request.params()?),
        Some("password") => password::grant(s, request.params()?),
        Some(_) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
        )),
        None => Err(OAuthError::invalid_request(
            "Missing required parameter: grant_type",
        )),
    }
}

pub(crate) fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, OAuthError> {
    value
        .as_deref()
        .ok_or_else(|| OAuthError::invalid_request(format!("Missing required parameter: {name}")))
}

/// The API a machine or password token is for: the configured one, which `client_credentials`
/// must name and `password` may.
fn api_audience(s: &Shared, requested: Option<&str>, required: bool) -> Result<String, OAuthError> {
    let denied =
        |description: String| OAuthError::new(StatusCode::FORBIDDEN, "access_denied", description);
    match requested {
        Some(a) if a == s.config.audience => Ok(a.to_owned()),
        Some(a) => Err(denied(format!("Service not found: {a}"))),
        None if required => Err(denied(
            "No audience parameter was provided, and no default audience has been configured"
                .to_owned(),
        )),
        None => Ok(s.config.audience.clone()),
    }
}

/// Dev-only `permissions` parameter: a space-separated list that chooses the claim; without it,
/// every configured permission.
fn requested_permissions(s: &Shared, list: Option<&str>) -> Vec<String> {
    list.map_or_else(|| s.config.permissions.clone(), unique_words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DevIdpConfig;
    use crate::state::testing::shared;
    use params::form;

    #[test]
    fn unknown_and_missing_grant_types_are_refused() {
        let s = shared(DevIdpConfig::default());
        let device = "urn:ietf:params:oauth:grant-type:device_code";
        let e = grant(&s, &form(&[("grant_type", device)])).unwrap_err();
        assert_eq!(
            (e.status, e.error),
            (StatusCode::BAD_REQUEST, "unsupported_grant_type")
        );
        assert_eq!(grant(&s, &form(&[])).unwrap_err().error, "invalid_request");
    }

    #[test]
    fn a_grant_refuses_its_own_parameters_twice() {
        let s = shared(DevIdpConfig::default());
        let twice = [
            ("grant_type", "password"),
            ("username", "a"),
            ("username", "b"),
        ];
        let e = grant(&s, &form(&twice)).unwrap_err();
        assert!(e.description.contains("`username`"), "{}", e.description);
    }

    #[test]
    fn the_audience_must_be_the_api() {
        let s = shared(DevIdpConfig::default());
        let api = "https://api.toolgate.dev";
        assert_eq!(api_audience(&s, Some(api), true).unwrap(), api);
        assert_eq!(api_audience(&s, None, false).unwrap(), api);
        for (requested, required) in [(None, true), (Some("https://other"), false)] {
            let e = api_audience(&s, requested, required).unwrap_err();
            assert_eq!(
                (e.status, e.error),
                (StatusCode::FORBIDDEN, "access_denied")
            );
        }
    }

    #[test]
    fn permissions_default_to_the_configured_ones() {
        let s = shared(DevIdpConfig {
            permissions: vec!["a".into()],
            ..DevIdpConfig::default()
        });
        assert_eq!(requested_permissions(&s, None), ["a"]);
        assert_eq!(requested_permissions(&s, Some("b c b")), ["b", "c"]);
    }
}
