//! `refresh_token`, with Auth0's rotation: every use spends the token and issues its successor in
//! the same family; a spent token presented again revokes the family (see `RefreshStore`).

use std::sync::atomic::Ordering;

use serde::Deserialize;
use serde_json::Value;

use super::{OAuthError, required};
use crate::state::Shared;

#[derive(Deserialize)]
pub(super) struct Params {
    refresh_token: Option<String>,
}

pub(super) fn grant(s: &Shared, p: Params) -> Result<Value, OAuthError> {
    let token = required(&p.refresh_token, "refresh_token")?;
    let redeemed = s.refresh.lock().expect("refresh lock").redeem(token);
    let record =
        redeemed.ok_or_else(|| OAuthError::invalid_grant("Unknown or invalid refresh token."))?;
    let body = s.issue_user_tokens(record.grant, None, Some(record.family));
    s.refresh_grants.fetch_add(1, Ordering::SeqCst);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DevIdpConfig;
    use crate::state::testing::{claims, shared};
    use crate::store::UserGrant;

    fn signed_in(s: &Shared) -> String {
        let grant = UserGrant {
            sub: "auth0|bob".into(),
            permissions: vec!["tools:read".into()],
            scope: "openid offline_access".into(),
            audience: s.config.audience.clone(),
            sid: "sid".into(),
        };
        s.issue_user_tokens(grant, None, None)["refresh_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn refresh(s: &Shared, token: Option<&str>) -> Result<Value, OAuthError> {
        let refresh_token = token.map(Into::into);
        grant(s, Params { refresh_token })
    }

    #[test]
    fn a_refresh_rotates_the_token_and_keeps_the_grant() {
        let s = shared(DevIdpConfig::default());
        let first = signed_in(&s);
        let body = refresh(&s, Some(&first)).unwrap();
        let second = body["refresh_token"].as_str().unwrap();
        assert_ne!(first, second);
        let access = claims(body["access_token"].as_str().unwrap());
        assert_eq!(access["sub"], "auth0|bob");
        assert_eq!(access["scope"], "openid offline_access");
        assert!(body["id_token"].is_string());
        assert!(refresh(&s, Some(second)).is_ok());
        assert_eq!(s.refresh_grants.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn reuse_revokes_the_family() {
        let s = shared(DevIdpConfig::default());
        let first = signed_in(&s);
        let rotated = refresh(&s, Some(&first)).unwrap();
        let e = refresh(&s, Some(&first)).unwrap_err();
        assert_eq!(
            (e.error, e.description.as_str()),
            ("invalid_grant", "Unknown or invalid refresh token.")
        );
        let second = rotated["refresh_token"].as_str();
        assert_eq!(refresh(&s, second).unwrap_err().error, "invalid_grant");
        assert_eq!(
            s.refresh_grants.load(Ordering::SeqCst),
            1,
            "failures are not counted"
        );
    }

    #[test]
    fn an_unknown_or_missing_token_is_refused() {
        let s = shared(DevIdpConfig::default());
        assert_eq!(
            refresh(&s, Some("nope")).unwrap_err().error,
            "invalid_grant"
        );
        assert_eq!(refresh(&s, None).unwrap_err().error, "invalid_request");
    }
}
