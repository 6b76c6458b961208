//! `GET /authorize` checks the client's request and shows the consent page; `POST
//! /authorize/consent` takes the person's answer and, on approval only, starts the Auth0 login.
//!
//! The consent is bound to the browser that saw the page: an encrypted cookie names the consent
//! transaction and its client, and the form carries a CSRF token derived from the transaction.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, CookieJar, SameSite};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::html;
use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{CsrfToken, Nonce, PkceCodeChallenge, RedirectUrl, Scope};
use serde::{Deserialize, Serialize};
use url::Url;

use super::clients::ClientLookupError;
use super::responses::{
    error_page, page, redirect_error, redirect_to, store_down_page, unavailable_page,
};
use super::{CONSENT_TTL, OAuth, UPSTREAM_STATE_TTL, crypto, is_base_scope};
use crate::auth::OPENID_SCOPES;

/// Store kinds.
const CONSENT: &str = "consent"; // consent transaction id
pub(crate) const UPSTREAM_STATE: &str = "upstream-state"; // the `state` we sent Auth0
/// Longest `state` a client may send; it comes back in a URL.
const MAX_STATE_LEN: usize = 2048;

/// A checked authorization request, waiting for the person's consent and then for Auth0.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct PendingAuthorization {
    pub(crate) client_id: String,
    /// The redirect URI to use: registered, exactly as matched.
    pub(crate) redirect_uri: String,
    /// Whether the request named it (then the token request must name it too, RFC 6749 §4.1.3).
    pub(crate) redirect_uri_given: bool,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: String,
    /// The scopes the client asked for and may have.
    pub(crate) scope: String,
}

/// A login in progress at Auth0, found again by the `state` we sent.
#[derive(Serialize, Deserialize)]
pub(crate) struct UpstreamLogin {
    pub(crate) pending: PendingAuthorization,
    pub(crate) verifier: String,
    pub(crate) nonce: String,
}

/// `GET /authorize`.
pub(crate) async fn authorize(
    State(oauth): State<Arc<OAuth>>,
    RawQuery(query): RawQuery,
) -> Response {
    let params = match super::query_params(query.as_deref()) {
        Ok(params) => params,
        Err(page) => return *page,
    };
    // Until the redirect URI is known to be the client's, every error is a page, never a redirect.
    let Some(client_id) = params.get("client_id") else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the request names no client (client_id is missing)",
        );
    };
    let client = match oauth.client(client_id).await {
        Ok(client) => client,
        Err(ClientLookupError::Unknown(why)) => {
            return error_page(StatusCode::BAD_REQUEST, "invalid_client", &why);
        }
        Err(ClientLookupError::Unavailable(error)) => return unavailable_page(&error),
    };
    let Some(redirect_uri) =
        client.redirect_uri_for(params.get("redirect_uri").map(String::as_str))
    else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the redirect_uri is missing or is not one this client registered",
        );
    };

    let state = params.get("state").cloned();
    let issuer = oauth.settings.issuer.as_str();
    let fail = |error: &str, description: &str| {
        redirect_error(&redirect_uri, state.as_deref(), issuer, error, description)
    };
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the state parameter is too long",
        );
    }
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None => return fail("invalid_request", "response_type is missing"),
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            );
        }
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method").map(String::as_str),
    ) {
        (None, _) => {
            return fail(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            );
        }
        (Some(_), Some("S256")) => params["code_challenge"].clone(),
        (Some(_), None | Some("plain")) => {
            return fail(
                "invalid_request",
                "code_challenge_method must be S256; plain is not accepted",
            );
        }
        (Some(_), Some(_)) => return fail("invalid_request", "code_challenge_method must be S256"),
    };
    if !crypto::valid_pkce_value(&code_challenge) {
        return fail(
            "invalid_request",
            "code_challenge must be 43 to 128 base64url characters",
        );
    }
    if let Some(resource) = params.get("resource")
        && resource.trim_end_matches('/') != oauth.settings.resource
    {
        return fail(
            "invalid_target",
            "this server issues tokens for its own MCP endpoint only",
        );
    }
    let requested: Vec<&str> = params
        .get("scope")
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if let Some(unknown) = requested
        .iter()
        .find(|s| !oauth.settings.scopes_supported.iter().any(|k| k == *s))
    {
        return fail(
            "invalid_scope",
            &format!("scope `{unknown}` is not offered by this server"),
        );
    }
    let mut scope: Vec<&str> = Vec::new();
    for s in requested {
        if !scope.contains(&s) {
            scope.push(s);
        }
    }

    let pending = PendingAuthorization {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_string(),
        redirect_uri_given: params.contains_key("redirect_uri"),
        state,
        code_challenge,
        scope: scope.join(" "),
    };
    let transaction = crypto::random_token();
    if let Err(error) = oauth
        .store
        .put(CONSENT, &transaction, &pending, CONSENT_TTL)
        .await
    {
        return store_down_page(error);
    }

    let permissions: Vec<&str> = scope
        .iter()
        .copied()
        .filter(|s| !is_base_scope(s))
        .collect();
    let mut response = consent_page(
        &oauth,
        client.display_name(),
        &client.client_id,
        &redirect_uri,
        &permissions,
        &transaction,
    );
    let cookie = consent_cookie(&oauth, &transaction, &client.client_id);
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn consent_page(
    oauth: &OAuth,
    client_name: &str,
    client_id: &str,
    redirect_uri: &Url,
    permissions: &[&str],
    transaction: &str,
) -> Response {
    let redirect_host = redirect_uri
        .host_str()
        .map(|h| match redirect_uri.port() {
            Some(port) => format!("{h}:{port}"),
            None => h.to_owned(),
        })
        .unwrap_or_default();
    let issuer = &oauth.settings.issuer;
    let body = html! {
        p {
            strong #client-name { (client_name) }
            " wants to use the tools of " strong { (oauth.settings.resource) } " on your behalf."
        }
        dl {
            dt { "Client id" } dd { (client_id) }
            dt { "After sign-in you are sent to" } dd #redirect-host { (redirect_host) }
        }
        @if permissions.is_empty() {
            p { "No tool permissions: only your basic profile (name and e-mail)." }
        } @else {
            p { "It asks for these permissions:" }
            ul #permissions { @for permission in permissions { li { code { (permission) } } } }
        }
        p { "Approve only if you started this sign-in and trust this application." }
        form method="post" action={ (issuer) "/authorize/consent" } {
            input type="hidden" name="transaction" value=(transaction);
            input type="hidden" name="csrf_token" value=(csrf_token(oauth, transaction));
            button type="submit" name="decision" value="approve" #approve { "Approve" }
            button type="submit" name="decision" value="deny" #deny { "Deny" }
        }
    };
    page(StatusCode::OK, "Allow access?", body)
}

/// The cookie's name: `__Host-` (so no subdomain can set or read it) wherever it can be `Secure`;
/// browsers refuse a `__Host-` cookie without `Secure`, so dev mode on plain-http loopback uses a
/// plain name.
pub(crate) fn cookie_name(oauth: &OAuth) -> &'static str {
    if insecure_cookie(oauth) {
        "toolgate-consent"
    } else {
        "__Host-toolgate-consent"
    }
}

fn insecure_cookie(oauth: &OAuth) -> bool {
    oauth.settings.dev_mode && oauth.settings.plain_http
}

fn csrf_token(oauth: &OAuth, transaction: &str) -> String {
    URL_SAFE_NO_PAD.encode(crypto::hmac(
        &oauth.keys.consent_csrf,
        transaction.as_bytes(),
    ))
}

/// The consent cookie without its value: HttpOnly, SameSite=Lax (so a cross-site form cannot carry
/// it), `Secure` except in dev mode on plain-http loopback.
fn cookie_builder(oauth: &OAuth, value: String) -> cookie::CookieBuilder<'static> {
    Cookie::build((cookie_name(oauth), value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(!insecure_cookie(oauth))
}

/// `Set-Cookie` for a consent transaction: the transaction and its client, encrypted and
/// authenticated (the cookie crate's private jar, under a key derived from `JWT_SIGNING_KEY`), so
/// only this server can have made it and it fits that transaction and client only.
fn consent_cookie(oauth: &OAuth, transaction: &str, client_id: &str) -> String {
    let mut jar = CookieJar::new();
    jar.private_mut(&oauth.keys.consent_cookie).add(
        cookie_builder(oauth, format!("{transaction}\n{client_id}")).max_age(
            cookie::time::Duration::seconds(CONSENT_TTL.as_secs().try_into().unwrap_or(600)),
        ),
    );
    jar.get(cookie_name(oauth))
        .map(ToString::to_string)
        .unwrap_or_default()
}

fn clear_cookie(oauth: &OAuth) -> String {
    cookie_builder(oauth, String::new())
        .removal()
        .build()
        .to_string()
}

/// The consent transaction and client in the request's cookie, when this server made it.
fn cookie_value(oauth: &OAuth, headers: &HeaderMap) -> Option<(String, String)> {
    let name = cookie_name(oauth);
    let jar = CookieJar::new();
    let private = jar.private(&oauth.keys.consent_cookie);
    let opened = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v.to_owned()).flatten())
        .filter(|cookie| cookie.name() == name)
        .find_map(|cookie| private.decrypt(cookie))?;
    let (transaction, client_id) = opened.value().split_once('\n')?;
    Some((transaction.to_owned(), client_id.to_owned()))
}

#[derive(Deserialize)]
pub(crate) struct ConsentForm {
    transaction: Option<String>,
    csrf_token: Option<String>,
    decision: Option<String>,
}

/// `POST /authorize/consent`.
pub(crate) async fn consent(
    State(oauth): State<Arc<OAuth>>,
    headers: HeaderMap,
    Form(form): Form<ConsentForm>,
) -> Response {
    let refuse = || {
        error_page(
            StatusCode::FORBIDDEN,
            "access_denied",
            "this approval did not come from the consent page shown to this browser; start the sign-in again from your application",
        )
    };
    let (Some(transaction), Some(csrf)) = (form.transaction.as_deref(), form.csrf_token.as_deref())
    else {
        return refuse();
    };
    let Some((cookie_transaction, cookie_client_id)) = cookie_value(&oauth, &headers) else {
        return refuse();
    };
    let expected_csrf = csrf_token(&oauth, transaction);
    if !crypto::constant_time_eq(cookie_transaction.as_bytes(), transaction.as_bytes())
        || !crypto::constant_time_eq(expected_csrf.as_bytes(), csrf.as_bytes())
    {
        // Nothing is consumed: the real page in the real browser still works.
        return refuse();
    }
    let pending = match oauth
        .store
        .get::<PendingAuthorization>(CONSENT, transaction)
        .await
    {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "this consent page has expired or was already answered; start the sign-in again",
            );
        }
        Err(error) => return store_down_page(error),
    };
    if cookie_client_id != pending.client_id {
        return refuse();
    }
    // Single use: of two concurrent answers, one proceeds.
    let pending = match oauth
        .store
        .take::<PendingAuthorization>(CONSENT, transaction)
        .await
    {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "this consent page was already answered",
            );
        }
        Err(error) => return store_down_page(error),
    };
    let Ok(redirect_uri) = Url::parse(&pending.redirect_uri) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the redirect URI is unusable",
        );
    };

    let mut response = if form.decision.as_deref() != Some("approve") {
        redirect_error(
            &redirect_uri,
            pending.state.as_deref(),
            &oauth.settings.issuer,
            "access_denied",
            "the user denied the request",
        )
    } else {
        match start_upstream_login(&oauth, pending).await {
            Ok(response) => response,
            Err(response) => return response,
        }
    };
    if let Ok(value) = HeaderValue::from_str(&clear_cookie(&oauth)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Makes the upstream `state` (single use, 10 minutes) with our own PKCE pair and a nonce, and
/// sends the browser to Auth0 (openidconnect builds the authorization request).
async fn start_upstream_login(
    oauth: &OAuth,
    pending: PendingAuthorization,
) -> Result<Response, Response> {
    let client = oauth
        .upstream
        .client()
        .await
        .map_err(|e| unavailable_page(&e))?;
    let callback = RedirectUrl::new(oauth.settings.callback_url.clone())
        .map_err(|_| unavailable_page(&"the callback URL is not a URL"))?;
    // openidconnect asks for `openid` itself; the rest of the base scopes, then the client's.
    let mut scope: Vec<&str> = OPENID_SCOPES[1..].to_vec();
    scope.push(super::OFFLINE_ACCESS);
    for s in pending.scope.split(' ').filter(|s| !s.is_empty()) {
        if s != "openid" && !scope.contains(&s) {
            scope.push(s);
        }
    }
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    // 256-bit values of our own rather than the crate's 128-bit defaults: `state` names a record.
    let state = crypto::random_token();
    let nonce = crypto::random_token();
    let (url, _, _) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            {
                let state = state.clone();
                move || CsrfToken::new(state)
            },
            {
                let nonce = nonce.clone();
                move || Nonce::new(nonce)
            },
        )
        .set_redirect_uri(Cow::Owned(callback))
        .add_scopes(scope.into_iter().map(|s| Scope::new(s.to_owned())))
        .add_extra_param("audience", oauth.upstream.settings().audience.clone())
        .set_pkce_challenge(challenge)
        .url();
    let login = UpstreamLogin {
        pending,
        verifier: verifier.into_secret(),
        nonce,
    };
    oauth
        .store
        .put(UPSTREAM_STATE, &state, &login, UPSTREAM_STATE_TTL)
        .await
        .map_err(store_down_page)?;
    Ok(redirect_to(url.as_str()))
}
