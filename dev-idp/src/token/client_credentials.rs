//! `client_credentials`: a machine token for the API, shaped as Auth0's (`sub` = `CLIENT_ID@clients`,
//! `gty`), with the permissions asked for and, when a `scope` is given, only those it names.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{OAuthError, api_audience, requested_permissions};
use crate::state::Shared;
use crate::util::{has_scope, now_secs};

#[derive(Deserialize)]
pub(super) struct Params {
    audience: Option<String>,
    scope: Option<String>,
    permissions: Option<String>,
}

pub(super) fn grant(s: &Shared, p: Params) -> Result<Value, OAuthError> {
    let audience = api_audience(s, p.audience.as_deref(), true)?;
    let mut permissions = requested_permissions(s, p.permissions.as_deref());
    if let Some(scope) = &p.scope {
        permissions.retain(|perm| has_scope(scope, perm));
    }
    let now = now_secs();
    let ttl = s.config.access_token_ttl.as_secs();
    let client_id = &s.config.client_id;
    let mut claims = json!({
        "iss": s.issuer(),
        "sub": format!("{client_id}@clients"),
        "aud": audience,
        "iat": now,
        "exp": now + ttl,
        "gty": "client-credentials",
        "azp": client_id,
        "permissions": permissions,
    });
    let mut body = json!({ "token_type": "Bearer", "expires_in": ttl });
    // Auth0 lists a machine token's granted permissions in `scope` too, and omits it when there are none.
    if !permissions.is_empty() {
        let scope = permissions.join(" ");
        claims["scope"] = json!(scope);
        body["scope"] = json!(scope);
    }
    body["access_token"] = json!(s.sign(&claims));
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DevIdpConfig;
    use crate::state::testing::{claims, shared};

    fn machine(s: &Shared, scope: Option<&str>, permissions: Option<&str>) -> Value {
        let p = Params {
            audience: Some(s.config.audience.clone()),
            scope: scope.map(Into::into),
            permissions: permissions.map(Into::into),
        };
        grant(s, p).unwrap()
    }

    #[test]
    fn a_machine_token_has_auth0s_shape() {
        let s = shared(DevIdpConfig {
            permissions: vec!["tools:read".into(), "tools:write".into()],
            ..DevIdpConfig::default()
        });
        let body = machine(&s, None, None);
        assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
        assert_eq!(body["scope"], "tools:read tools:write");
        let c = claims(body["access_token"].as_str().unwrap());
        assert_eq!(c["sub"], "toolgate-dev-client@clients");
        assert_eq!(c["gty"], "client-credentials");
        assert_eq!(c["aud"], "https://api.toolgate.dev");
        assert_eq!(c["permissions"], json!(["tools:read", "tools:write"]));
        assert_eq!(c["scope"], "tools:read tools:write");
    }

    #[test]
    fn a_scope_narrows_and_no_permissions_means_no_scope() {
        let s = shared(DevIdpConfig::default());
        let body = machine(&s, Some("b c"), Some("a b"));
        let c = claims(body["access_token"].as_str().unwrap());
        assert_eq!(c["permissions"], json!(["b"]));
        let body = machine(&s, None, None);
        assert!(body.get("scope").is_none());
        assert!(
            claims(body["access_token"].as_str().unwrap())
                .get("scope")
                .is_none()
        );
    }

    #[test]
    fn the_audience_is_required() {
        let s = shared(DevIdpConfig::default());
        let p = Params {
            audience: None,
            scope: None,
            permissions: None,
        };
        assert_eq!(grant(&s, p).unwrap_err().error, "access_denied");
    }
}
