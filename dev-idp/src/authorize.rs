//! `/authorize` and the login page's decision: Auth0's authorization code flow, with PKCE.
//!
//! Until the client and its redirect URI are checked, errors are pages; after, they go back to the
//! client as redirects. Nothing ever redirects to an unchecked URI.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use url::Url;

use crate::claims::{DEFAULT_SCOPE, new_sid};
use crate::config::DevIdpConfig;
use crate::pages::{Login, error_page, login_page};
use crate::pkce;
use crate::redirect::{authorize_error, found};
use crate::state::Shared;
use crate::store::{AuthorizeRequest, CodeGrant};
use crate::util::{has_scope, random_token, unique_words};

/// The query of `/authorize`. serde refuses a field given twice, as RFC 6749 §3.1 asks.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    response_type: Option<String>,
    state: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
    prompt: Option<String>,
}

fn bad_request(detail: &str) -> Box<Response> {
    Box::new(error_page(
        StatusCode::BAD_REQUEST,
        "Invalid authorization request",
        detail,
    ))
}

/// Checks a request as Auth0 does. `Err` is the answer to send: a page, or a redirect with an error.
pub(crate) fn validate(
    config: &DevIdpConfig,
    q: &AuthorizeQuery,
) -> Result<AuthorizeRequest, Box<Response>> {
    match q.client_id.as_deref() {
        None => return Err(bad_request("Missing required parameter: client_id")),
        Some(id) if id != config.client_id => {
            return Err(bad_request(
                "Unknown client: the client_id is not registered with this dev IdP.",
            ));
        }
        Some(_) => {}
    }
    let raw = q
        .redirect_uri
        .as_deref()
        .ok_or_else(|| bad_request("Missing required parameter: redirect_uri"))?;
    let redirect_uri = Url::parse(raw)
        .ok()
        .filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.has_host() && u.fragment().is_none()
        })
        .ok_or_else(|| {
            bad_request("redirect_uri must be an absolute http(s) URI without a fragment.")
        })?;
    let state = q.state.clone();
    let refuse = |error: &str, description: &str| {
        Err(Box::new(authorize_error(
            &redirect_uri,
            state.as_deref(),
            error,
            description,
        )))
    };
    match q.response_type.as_deref() {
        Some("code") => {}
        None => {
            return refuse(
                "invalid_request",
                "Missing required parameter: response_type",
            );
        }
        Some(_) => {
            return refuse(
                "unsupported_response_type",
                "Only response_type=code is supported",
            );
        }
    }
    let audience = match &q.audience {
        None => config.audience.clone(),
        Some(a) if *a == config.audience => a.clone(),
        Some(a) => return refuse("access_denied", &format!("Service not found: {a}")),
    };
    let code_challenge = match (
        q.code_challenge.as_deref(),
        q.code_challenge_method.as_deref(),
    ) {
        (None, None) => None,
        (Some(c), Some("S256")) if pkce::well_formed(c) => Some(c.to_owned()),
        (Some(_), Some("S256")) => {
            return refuse(
                "invalid_request",
                "code_challenge must be 43-128 base64url characters",
            );
        }
        (Some(_), _) => return refuse("invalid_request", "code_challenge_method must be S256"),
        (None, Some(_)) => {
            return refuse(
                "invalid_request",
                "code_challenge_method given without code_challenge",
            );
        }
    };
    let scope = q
        .scope
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map_or_else(|| DEFAULT_SCOPE.to_owned(), |s| unique_words(s).join(" "));
    Ok(AuthorizeRequest {
        redirect_uri_raw: raw.to_owned(),
        redirect_uri,
        state,
        scope,
        audience,
        nonce: q.nonce.clone(),
        code_challenge,
    })
}

/// Redirects to the client with a new code for `sub` holding `permissions`.
fn issue_code(
    s: &Shared,
    request: AuthorizeRequest,
    sub: String,
    permissions: Vec<String>,
) -> Response {
    let code = random_token(32);
    let state = request.state.as_deref().map(|st| ("state", st));
    let response = found(
        &request.redirect_uri,
        std::iter::once(("code", code.as_str())).chain(state),
    );
    let grant = CodeGrant {
        request,
        sub,
        permissions,
        sid: new_sid(),
    };
    s.codes.lock().expect("codes lock").insert(code, grant);
    response
}

pub(crate) async fn authorize(State(s): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let query: AuthorizeQuery = match serde_urlencoded::from_str(query.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => {
            return *bad_request(&format!(
                "The query is not a valid authorization request ({e}); no parameter may be given twice."
            ));
        }
    };
    let request = match validate(&s.config, &query) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    if let Some(auto) = &s.config.auto_approve {
        let user = s
            .config
            .find_user(&auto.user)
            .expect("auto_approve user checked at start");
        return issue_code(&s, request, user.sub.clone(), auto.permissions.clone());
    }
    if query.prompt.is_some_and(|p| has_scope(&p, "none")) {
        return authorize_error(
            &request.redirect_uri,
            request.state.as_deref(),
            "login_required",
            "Login required",
        );
    }
    let request_id = random_token(32);
    let page = login_page(&Login {
        request_id: &request_id,
        client_id: &s.config.client_id,
        request: &request,
        users: &s.config.users,
        permissions: &s.config.permissions,
    });
    s.pending
        .lock()
        .expect("pending lock")
        .insert(request_id, request);
    page
}

/// The permissions ticked on the login page and typed into its extra field, each once.
fn chosen_permissions(fields: &[(String, String)]) -> Vec<String> {
    let ticked = fields
        .iter()
        .filter(|(k, _)| k == "permission")
        .map(|(_, v)| v.as_str());
    let typed = fields
        .iter()
        .filter(|(k, _)| k == "extra_permissions")
        .flat_map(|(_, v)| v.split_whitespace());
    let mut permissions: Vec<String> = Vec::new();
    for p in ticked.chain(typed) {
        if !p.is_empty() && !permissions.iter().any(|q| q == p) {
            permissions.push(p.to_owned());
        }
    }
    permissions
}

/// The login page's form. It carries only an unguessable id of the request validated at /authorize,
/// so a cross-site POST cannot mint a code for a redirect URI of its choosing.
pub(crate) async fn decision(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    // Repeated `permission` fields are the point of this form, so it is read as a list of pairs.
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let pending =
        field("request_id").and_then(|id| s.pending.lock().expect("pending lock").take(id));
    let Some(request) = pending else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Sign-in request expired",
            "This sign-in request is unknown, already used or expired. Start the sign-in again from the application.",
        );
    };
    match field("action") {
        Some("approve") => match field("user").and_then(|u| s.config.find_user(u)) {
            Some(user) => {
                let sub = user.sub.clone();
                issue_code(&s, request, sub, chosen_permissions(&fields))
            }
            None => error_page(
                StatusCode::BAD_REQUEST,
                "Unknown user",
                "Pick one of the listed users.",
            ),
        },
        Some("deny") => authorize_error(
            &request.redirect_uri,
            request.state.as_deref(),
            "access_denied",
            "User did not authorize the request",
        ),
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "Invalid decision",
            "Approve or deny the request.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::http::header;

    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn query(extra: &[(&str, &str)]) -> AuthorizeQuery {
        let mut pairs = vec![
            ("client_id", "toolgate-dev-client"),
            ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"),
            ("state", "st"),
        ];
        for (k, v) in extra {
            pairs.retain(|(name, _)| name != k);
            if !v.is_empty() {
                pairs.push((k, v));
            }
        }
        serde_urlencoded::from_str(&serde_urlencoded::to_string(&pairs).unwrap()).unwrap()
    }

    /// The error a refused request redirects with, or `None` when it is a page.
    fn redirected_error(extra: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        let response = validate(&DevIdpConfig::default(), &query(extra)).unwrap_err();
        let location = response.headers().get(header::LOCATION)?;
        let url = Url::parse(location.to_str().unwrap()).unwrap();
        assert_eq!(
            url.as_str().split('?').next(),
            Some("https://app.example/cb")
        );
        Some(url.query_pairs().into_owned().collect())
    }

    #[test]
    fn a_plain_request_gets_the_default_scope_and_audience() {
        let request = validate(&DevIdpConfig::default(), &query(&[])).unwrap();
        assert_eq!(request.scope, "openid profile email");
        assert_eq!(request.audience, "https://api.toolgate.dev");
        assert_eq!(request.state.as_deref(), Some("st"));
        assert_eq!(request.code_challenge, None);
    }

    #[test]
    fn the_scope_is_kept_once_per_word_and_the_redirect_uri_byte_for_byte() {
        let uri = "https://app.example/cb?a=%41";
        let request = validate(
            &DevIdpConfig::default(),
            &query(&[("scope", "openid  email openid"), ("redirect_uri", uri)]),
        )
        .unwrap();
        assert_eq!(request.scope, "openid email");
        assert_eq!(request.redirect_uri_raw, uri);
    }

    #[test]
    fn an_unchecked_client_or_redirect_uri_gets_a_page_not_a_redirect() {
        for extra in [
            [("client_id", "someone-else")],
            [("client_id", "")],
            [("redirect_uri", "")],
            [("redirect_uri", "javascript:alert(1)")],
            [("redirect_uri", "https://app.example/cb#frag")],
            [("redirect_uri", "/relative")],
        ] {
            let response = validate(&DevIdpConfig::default(), &query(&extra)).unwrap_err();
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{extra:?}");
            assert!(
                response.headers().get(header::LOCATION).is_none(),
                "{extra:?}"
            );
        }
    }

    #[test]
    fn later_errors_go_back_to_the_client_with_the_state() {
        let cases = [
            (vec![("response_type", "")], "invalid_request"),
            (
                vec![("response_type", "token")],
                "unsupported_response_type",
            ),
            (vec![("audience", "https://elsewhere")], "access_denied"),
            (vec![("code_challenge", CHALLENGE)], "invalid_request"),
            (
                vec![
                    ("code_challenge", CHALLENGE),
                    ("code_challenge_method", "plain"),
                ],
                "invalid_request",
            ),
            (
                vec![
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ],
                "invalid_request",
            ),
            (vec![("code_challenge_method", "S256")], "invalid_request"),
        ];
        for (extra, error) in cases {
            let params = redirected_error(&extra).unwrap_or_else(|| panic!("{extra:?}: a page"));
            assert_eq!(params["error"], error, "{extra:?}");
            assert_eq!(params["state"], "st", "{extra:?}");
            assert!(!params.contains_key("code"));
        }
    }

    #[test]
    fn an_s256_challenge_is_kept() {
        let request = validate(
            &DevIdpConfig::default(),
            &query(&[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ]),
        )
        .unwrap();
        assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn a_repeated_parameter_is_refused() {
        let parsed: Result<AuthorizeQuery, _> =
            serde_urlencoded::from_str("client_id=a&redirect_uri=https://x/&client_id=b");
        assert!(parsed.unwrap_err().to_string().contains("client_id"));
    }

    #[test]
    fn chosen_permissions_merge_ticked_and_typed_once_each() {
        let fields: Vec<(String, String)> = [
            ("permission", "tools:read"),
            ("user", "bob"),
            ("permission", "tools:write"),
            ("extra_permissions", " admin:all  tools:read extra:one "),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            chosen_permissions(&fields),
            ["tools:read", "tools:write", "admin:all", "extra:one"]
        );
    }
}
