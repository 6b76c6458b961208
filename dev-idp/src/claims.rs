//! What Auth0 puts in the tokens it issues to users, and which scopes it grants.

use serde_json::{Map, Value, json};

use crate::config::DevUser;
use crate::state::Shared;
use crate::store::UserGrant;
use crate::util::{has_scope, now_secs, random_token, unique_words};

pub(crate) const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// Used when a request names no scope, so a bare dev request still yields an ID token and userinfo access.
pub(crate) const DEFAULT_SCOPE: &str = "openid profile email";
/// Auth0's default ID token lifetime.
const ID_TOKEN_TTL_SECS: u64 = 36_000;

/// Auth0 keeps the requested scopes that are OIDC scopes or permissions the subject holds.
pub(crate) fn granted_scope(requested: &str, permissions: &[String]) -> String {
    unique_words(requested)
        .into_iter()
        .filter(|s| OIDC_SCOPES.contains(&s.as_str()) || permissions.contains(s))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A new session id, the `sid` of the ID tokens of one sign-in.
pub(crate) fn new_sid() -> String {
    random_token(16)
}

impl Shared {
    pub(crate) fn user_access_claims(
        &self,
        sub: &str,
        scope: &str,
        audience: &str,
        permissions: &[String],
    ) -> Value {
        let now = now_secs();
        // Auth0 adds its /userinfo audience whenever `openid` is granted.
        let aud = if has_scope(scope, "openid") {
            json!([audience, self.endpoint("/userinfo")])
        } else {
            json!(audience)
        };
        json!({
            "iss": self.issuer(),
            "sub": sub,
            "aud": aud,
            "iat": now,
            "exp": now + self.config.access_token_ttl.as_secs(),
            "scope": scope,
            "azp": self.config.client_id,
            "permissions": permissions,
        })
    }

    /// The profile claims `scope` allows: of the ID token and of `/userinfo`.
    pub(crate) fn profile_claims(&self, user: &DevUser, scope: &str) -> Map<String, Value> {
        let mut c = Map::new();
        if has_scope(scope, "profile") {
            c.insert("name".into(), json!(user.name));
            c.insert("nickname".into(), json!(user.nickname));
            c.insert("picture".into(), json!(user.picture));
            c.insert("updated_at".into(), json!(self.updated_at));
        }
        if has_scope(scope, "email") {
            c.insert("email".into(), json!(user.email));
            c.insert("email_verified".into(), json!(user.email_verified));
        }
        c
    }

    fn id_token_claims(&self, user: &DevUser, g: &UserGrant, nonce: Option<&str>) -> Value {
        let now = now_secs();
        let mut c = self.profile_claims(user, &g.scope);
        c.insert("iss".into(), json!(self.issuer()));
        c.insert("aud".into(), json!(self.config.client_id));
        c.insert("sub".into(), json!(user.sub));
        c.insert("iat".into(), json!(now));
        c.insert("exp".into(), json!(now + ID_TOKEN_TTL_SECS));
        c.insert("sid".into(), json!(g.sid));
        if let Some(nonce) = nonce {
            c.insert("nonce".into(), json!(nonce));
        }
        Value::Object(c)
    }

    /// The token response for a user: an access token, an ID token with `openid`, and with
    /// `offline_access` a refresh token in `family` (a rotation) or a new family (a sign-in).
    pub(crate) fn issue_user_tokens(
        &self,
        g: UserGrant,
        nonce: Option<&str>,
        family: Option<u64>,
    ) -> Value {
        let access =
            self.sign(&self.user_access_claims(&g.sub, &g.scope, &g.audience, &g.permissions));
        let mut body = json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.config.access_token_ttl.as_secs(),
            "scope": g.scope,
        });
        if has_scope(&g.scope, "openid")
            && let Some(user) = self.config.find_user(&g.sub)
        {
            body["id_token"] = json!(self.sign(&self.id_token_claims(user, &g, nonce)));
        }
        if has_scope(&g.scope, "offline_access") {
            let mut store = self.refresh.lock().expect("refresh lock");
            body["refresh_token"] = json!(store.issue(g, family));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DevIdpConfig;
    use crate::state::testing::{claims, shared};

    fn grant(scope: &str) -> UserGrant {
        UserGrant {
            sub: "auth0|alice".into(),
            permissions: vec!["tools:read".into()],
            scope: scope.into(),
            audience: "https://api.toolgate.dev".into(),
            sid: "s-1".into(),
        }
    }

    #[test]
    fn granted_scope_keeps_oidc_scopes_and_held_permissions() {
        let held = vec!["tools:read".to_string()];
        assert_eq!(
            granted_scope("openid tools:read tools:write openid email", &held),
            "openid tools:read email"
        );
        assert_eq!(granted_scope("tools:write", &held), "");
    }

    #[test]
    fn openid_adds_the_userinfo_audience() {
        let s = shared(DevIdpConfig::default());
        let c = s.user_access_claims("auth0|alice", "openid", "https://api", &[]);
        assert_eq!(
            c["aud"],
            json!(["https://api", "http://127.0.0.1:9/userinfo"])
        );
        assert_eq!(c["iss"], "http://127.0.0.1:9/");
        assert_eq!(
            c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
            3600
        );
        let c = s.user_access_claims("auth0|alice", "email", "https://api", &[]);
        assert_eq!(c["aud"], "https://api");
    }

    #[test]
    fn each_scope_brings_its_tokens() {
        let s = shared(DevIdpConfig::default());
        let body = s.issue_user_tokens(grant("email"), None, None);
        assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());

        let body = s.issue_user_tokens(grant("openid profile offline_access"), Some("n"), None);
        let id = claims(body["id_token"].as_str().unwrap());
        assert_eq!(
            (id["nonce"].as_str(), id["sid"].as_str()),
            (Some("n"), Some("s-1"))
        );
        assert_eq!(id["name"], "Alice Example");
        assert!(
            id.get("email").is_none(),
            "email claims need the email scope"
        );
        let refresh = body["refresh_token"].as_str().unwrap();
        let record = s.refresh.lock().unwrap().redeem(refresh).unwrap();
        assert_eq!(record.grant.sub, "auth0|alice");
    }
}
