//! `password` (Auth0's Resource Owner Password grant): any password signs in a configured user,
//! by `sub`, nickname or email.

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;

use super::{OAuthError, api_audience, requested_permissions, required};
use crate::claims::{DEFAULT_SCOPE, granted_scope, new_sid};
use crate::state::Shared;
use crate::store::UserGrant;

#[derive(Default, Deserialize)]
pub(super) struct Params {
    username: Option<String>,
    password: Option<String>,
    audience: Option<String>,
    scope: Option<String>,
    permissions: Option<String>,
}

pub(super) fn grant(s: &Shared, p: Params) -> Result<Value, OAuthError> {
    let username = required(&p.username, "username")?;
    required(&p.password, "password")?;
    let user = s.config.find_user(username).ok_or_else(|| {
        OAuthError::new(
            StatusCode::FORBIDDEN,
            "invalid_grant",
            "Wrong email or password.",
        )
    })?;
    let audience = api_audience(s, p.audience.as_deref(), false)?;
    let permissions = requested_permissions(s, p.permissions.as_deref());
    let requested = p
        .scope
        .as_deref()
        .filter(|scope| !scope.trim().is_empty())
        .unwrap_or(DEFAULT_SCOPE);
    let grant = UserGrant {
        sub: user.sub.clone(),
        scope: granted_scope(requested, &permissions),
        permissions,
        audience,
        sid: new_sid(),
    };
    Ok(s.issue_user_tokens(grant, None, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DevIdpConfig;
    use crate::state::testing::{claims, shared};

    fn with_tools_read() -> Shared {
        shared(DevIdpConfig {
            permissions: vec!["tools:read".into()],
            ..DevIdpConfig::default()
        })
    }

    fn sign_in(s: &Shared, username: &str, scope: Option<&str>) -> Result<Value, OAuthError> {
        let p = Params {
            username: Some(username.into()),
            password: Some("anything".into()),
            scope: scope.map(Into::into),
            ..Params::default()
        };
        grant(s, p)
    }

    #[test]
    fn a_user_signs_in_with_the_default_scope() {
        let s = with_tools_read();
        let body = sign_in(&s, "bob@example.com", Some("  ")).unwrap();
        assert_eq!(body["scope"], "openid profile email");
        let c = claims(body["access_token"].as_str().unwrap());
        assert_eq!(c["sub"], "auth0|bob");
        assert_eq!(c["permissions"], serde_json::json!(["tools:read"]));
        assert!(body["id_token"].is_string());
        assert!(body.get("refresh_token").is_none());
    }

    #[test]
    fn held_permissions_may_be_asked_for_as_scopes() {
        let body = sign_in(
            &with_tools_read(),
            "alice",
            Some("email tools:read tools:write"),
        );
        let body = body.unwrap();
        assert_eq!(body["scope"], "email tools:read");
        assert!(body.get("id_token").is_none(), "no openid, no ID token");
    }

    #[test]
    fn an_unknown_user_or_a_missing_password_is_refused() {
        let s = shared(DevIdpConfig::default());
        let e = sign_in(&s, "mallory", None).unwrap_err();
        assert_eq!(
            (e.status, e.error),
            (StatusCode::FORBIDDEN, "invalid_grant")
        );
        let p = Params {
            username: Some("alice".into()),
            ..Params::default()
        };
        assert_eq!(grant(&s, p).unwrap_err().error, "invalid_request");
    }
}
