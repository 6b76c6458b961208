//! `authorization_code`: a code from `/authorize`, spent by its first use, with the redirect URI
//! repeated byte for byte and the PKCE verifier when the request had a challenge.

use serde::Deserialize;
use serde_json::Value;

use super::{OAuthError, required};
use crate::claims::granted_scope;
use crate::pkce;
use crate::state::Shared;
use crate::store::UserGrant;

#[derive(Deserialize)]
pub(super) struct Params {
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
}

pub(super) fn grant(s: &Shared, p: Params) -> Result<Value, OAuthError> {
    let code = required(&p.code, "code")?;
    // Taken out before any check: a code is spent by its first use, successful or not.
    let taken = s.codes.lock().expect("codes lock").take(code);
    let grant = taken.ok_or_else(|| OAuthError::invalid_grant("Invalid authorization code"))?;
    if p.redirect_uri.as_deref() != Some(grant.request.redirect_uri_raw.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the one in the authorization request",
        ));
    }
    check_verifier(
        grant.request.code_challenge.as_deref(),
        p.code_verifier.as_deref(),
    )?;
    let user_grant = UserGrant {
        scope: granted_scope(&grant.request.scope, &grant.permissions),
        sub: grant.sub,
        permissions: grant.permissions,
        audience: grant.request.audience,
        sid: grant.sid,
    };
    Ok(s.issue_user_tokens(user_grant, grant.request.nonce.as_deref(), None))
}

/// A verifier exactly when the request had a challenge, and one that hashes to it.
fn check_verifier(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (Some(challenge), Some(verifier)) if pkce::verifies(verifier, challenge) => Ok(()),
        (Some(_), _) => Err(OAuthError::invalid_grant("Failed to verify code verifier")),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier given but the authorization request had no code_challenge",
        )),
    }
}

#[cfg(test)]
mod tests {
    use url::Url;

    use super::*;
    use crate::config::DevIdpConfig;
    use crate::state::testing::{claims, shared};
    use crate::store::{AuthorizeRequest, CodeGrant};

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "https://app.example/cb";

    fn with_code(s: &Shared, code: &str, challenge: Option<&str>) {
        let request = AuthorizeRequest {
            redirect_uri_raw: REDIRECT.into(),
            redirect_uri: Url::parse(REDIRECT).unwrap(),
            state: None,
            scope: "openid tools:read tools:write".into(),
            audience: s.config.audience.clone(),
            nonce: Some("n-1".into()),
            code_challenge: challenge.map(Into::into),
        };
        let grant = CodeGrant {
            request,
            sub: "auth0|alice".into(),
            permissions: vec!["tools:read".into()],
            sid: "sid-1".into(),
        };
        s.codes.lock().unwrap().insert(code.into(), grant);
    }

    fn exchange(code: &str, redirect_uri: &str, verifier: Option<&str>) -> Params {
        Params {
            code: Some(code.into()),
            redirect_uri: Some(redirect_uri.into()),
            code_verifier: verifier.map(Into::into),
        }
    }

    #[test]
    fn the_verifier_must_match_a_challenge_and_only_one() {
        assert!(check_verifier(None, None).is_ok());
        assert!(check_verifier(Some(CHALLENGE), Some(VERIFIER)).is_ok());
        for (challenge, verifier) in [
            (Some(CHALLENGE), None),
            (Some(CHALLENGE), Some(&VERIFIER[1..])),
            (Some(CHALLENGE), Some(CHALLENGE)),
            (None, Some(VERIFIER)),
        ] {
            let e = check_verifier(challenge, verifier).unwrap_err();
            assert_eq!(e.error, "invalid_grant", "{challenge:?} {verifier:?}");
        }
    }

    #[test]
    fn a_code_gives_tokens_with_the_granted_scope_once() {
        let s = shared(DevIdpConfig::default());
        with_code(&s, "c1", Some(CHALLENGE));
        let body = grant(&s, exchange("c1", REDIRECT, Some(VERIFIER))).unwrap();
        assert_eq!(body["scope"], "openid tools:read");
        let access = claims(body["access_token"].as_str().unwrap());
        assert_eq!(access["sub"], "auth0|alice");
        assert_eq!(access["permissions"], serde_json::json!(["tools:read"]));
        let id = claims(body["id_token"].as_str().unwrap());
        assert_eq!(
            (id["nonce"].as_str(), id["sid"].as_str()),
            (Some("n-1"), Some("sid-1"))
        );

        let again = grant(&s, exchange("c1", REDIRECT, Some(VERIFIER))).unwrap_err();
        assert_eq!(again.error, "invalid_grant");
    }

    #[test]
    fn a_failed_exchange_spends_the_code() {
        let s = shared(DevIdpConfig::default());
        with_code(&s, "c2", Some(CHALLENGE));
        assert!(grant(&s, exchange("c2", REDIRECT, None)).is_err());
        let e = grant(&s, exchange("c2", REDIRECT, Some(VERIFIER))).unwrap_err();
        assert_eq!(e.description, "Invalid authorization code");
    }

    #[test]
    fn the_redirect_uri_must_be_repeated_exactly() {
        let s = shared(DevIdpConfig::default());
        with_code(&s, "c3", None);
        let e = grant(&s, exchange("c3", &format!("{REDIRECT}/"), None)).unwrap_err();
        assert!(e.description.contains("redirect_uri"), "{}", e.description);
        let none = Params {
            code: None,
            redirect_uri: None,
            code_verifier: None,
        };
        assert_eq!(
            grant(&s, none).unwrap_err().error,
            "invalid_request",
            "no code"
        );
    }
}
