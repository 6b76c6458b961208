//! The checks in front of `/mcp`: Host and Origin, the bearer token, and the permission pre-check
//! that answers 403 before rmcp dispatches anything.

use std::borrow::Cow;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Method, StatusCode, header};
use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{Shared, sessions};
use crate::auth::{AccessToken, AuthError};
pub(crate) use crate::config::is_loopback_url;
use crate::net::ClientAddress;

/// Host names (without port) a request may name: the base URL's, plus the loopback names when the
/// base URL is itself on loopback.
pub(crate) fn allowed_hosts(base: &Url) -> Vec<String> {
    let mut hosts = vec![host_of_url(base)];
    if is_loopback_url(base) {
        for name in ["localhost", "127.0.0.1", "[::1]"] {
            if !hosts.iter().any(|h| h == name) {
                hosts.push(name.to_owned());
            }
        }
    }
    hosts
}

fn host_of_url(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(host) => host.to_string().to_ascii_lowercase(),
        None => String::new(),
    }
}

/// `example.com:8000` → `example.com`; `[::1]:8000` → `[::1]`.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

fn forbidden(message: &'static str) -> Response {
    (
        StatusCode::FORBIDDEN,
        axum::Json(json!({ "error": "forbidden", "error_description": message })),
    )
        .into_response()
}

pub(crate) fn unavailable() -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(json!({ "error": "temporarily_unavailable", "error_description": "the identity provider or the token store cannot be reached; try again shortly" })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

fn bad_request(description: &'static str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "error": "invalid_request", "error_description": description })),
    )
        .into_response()
}

/// Decides who the client is (the TCP peer, or what a trusted proxy forwarded) once per request,
/// for the handlers (the registration limit) and the logs.
pub(crate) async fn client_address(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    if let Some(peer) = peer {
        let client = shared
            .trusted_proxies
            .client_address(peer, request.headers());
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}

/// The Host half of `check_host`, for the authorization server's endpoints: clients on other
/// origins call them by design, but a rebound DNS name still shows in Host.
pub(crate) async fn check_host_only(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = refuse_host(&shared, &request) {
        return refused;
    }
    next.run(request).await
}

fn refuse_host(shared: &Shared, request: &Request) -> Option<Response> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return Some(forbidden("the request names no Host"));
    };
    let host = strip_port(host).to_ascii_lowercase();
    if !shared.allowed_hosts.contains(&host) {
        return Some(forbidden("this Host is not served here"));
    }
    None
}

/// DNS-rebinding protection: a browser tricked into calling us names a foreign Host (and Origin).
pub(crate) async fn check_host(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    if let Some(refused) = refuse_host(&shared, &request) {
        return refused;
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| Url::parse(o).ok())
            .map(|u| host_of_url(&u));
        if !origin_host.is_some_and(|o| shared.allowed_hosts.contains(&o)) {
            return forbidden("this Origin may not call this server");
        }
    }
    next.run(request).await
}

/// The bearer token, from the `Authorization` header only.
#[derive(Debug, PartialEq, Eq)]
enum Bearer<'a> {
    None,
    One(&'a str),
    Malformed,
    Repeated,
}

fn bearer(headers: &http::HeaderMap) -> Bearer<'_> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(first) = values.next() else {
        return Bearer::None;
    };
    if values.next().is_some() {
        return Bearer::Repeated;
    }
    let Ok(value) = first.to_str() else {
        return Bearer::Malformed;
    };
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Bearer::One(token.trim())
        }
        _ => Bearer::Malformed,
    }
}

/// Just enough of a JSON-RPC message to find the tool a `tools/call` names.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<PeekParams<'a>>,
}

#[derive(Deserialize)]
struct PeekParams<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

pub(crate) async fn gate(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let token = match (&shared.provider, bearer(request.headers())) {
        (_, Bearer::Repeated) => return bad_request("send exactly one Authorization header"),
        (None, _) => None,
        (Some(_), Bearer::None) => {
            return shared.challenge.unauthorized(
                None,
                "this server needs an access token: send `Authorization: Bearer <token>`",
            );
        }
        (Some(_), Bearer::Malformed) => {
            return shared.challenge.unauthorized(
                Some("invalid_token"),
                "the Authorization header is not `Bearer <token>`",
            );
        }
        (Some(provider), Bearer::One(raw)) => match provider.verify(raw).await {
            // From here on the token is judged by this server's permission catalog.
            Ok(token) => Some(token.with_policy(shared.registry.policy().clone())),
            Err(AuthError::Invalid(reason)) => {
                tracing::debug!(%reason, "refused a bearer token");
                return shared.challenge.unauthorized(
                    Some("invalid_token"),
                    "the access token is invalid or expired",
                );
            }
            Err(AuthError::Unavailable(reason)) => {
                tracing::warn!(%reason, "could not verify a bearer token");
                return unavailable();
            }
        },
    };
    let Some(token) = token else {
        return next.run(request).await;
    };

    // A session is its opener's: another caller naming it gets what an unknown session gets.
    let session = sessions::session_id(request.headers()).map(str::to_owned);
    if let Some(id) = &session
        && !shared.sessions.is_owned_by(id, &token)
    {
        return sessions::not_found();
    }
    let method = request.method().clone();
    let response = authorized(&shared, request, token.clone(), next).await;
    match session {
        None => shared.sessions.record_opened(&response, &token),
        Some(id) if method == Method::DELETE && response.status().is_success() => {
            shared.sessions.forget(&id);
        }
        Some(_) => {}
    }
    response
}

/// The rest of the way for a verified token: the permission pre-check, then rmcp.
async fn authorized(shared: &Shared, request: Request, token: AccessToken, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(with_token(request, token)).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, shared.body_limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(json!({ "error": "invalid_request", "error_description": "the request body is too large" })))
                .into_response();
        }
    };
    if let Some(denied) = precheck(shared, &token, &bytes) {
        return denied;
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    next.run(with_token(request, token)).await
}

fn with_token(mut request: Request, token: AccessToken) -> Request {
    request.extensions_mut().insert(token);
    request
}

/// A `tools/call` for a tool whose permissions the token lacks is answered 403 here, before dispatch,
/// so the client learns which scopes to ask for. A body that is not a single request passes through:
/// rmcp reports its own errors, and the wrapper's guard still runs.
fn precheck(shared: &Shared, token: &AccessToken, body: &[u8]) -> Option<Response> {
    let peek: Peek<'_> = serde_json::from_slice(body).ok()?;
    if peek.method.as_deref() != Some("tools/call") {
        return None;
    }
    let name = peek.params?.name?;
    let tool = shared.registry.get(&name)?;
    let needed = tool.def.permissions;
    token.check_permissions(needed).err()?;
    // The challenge names everything the tool declares, not only what is missing, so a client that
    // asks again for these scopes gets a token that is enough.
    let scopes: Vec<&str> = needed.iter().map(|p| p.scope()).collect();
    Some(shared.challenge.insufficient_scope(tool.def.name, &scopes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("example.com:8000"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:8000"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    fn headers(values: &[HeaderValue]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for value in values {
            headers.append(header::AUTHORIZATION, value.clone());
        }
        headers
    }

    proptest::proptest! {
        #[test]
        fn any_authorization_header_is_read_without_panicking(value in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            if let Ok(value) = HeaderValue::from_bytes(&value) {
                let headers = headers(&[value]);
                if let Bearer::One(token) = bearer(&headers) {
                    let text = headers[header::AUTHORIZATION].to_str().unwrap();
                    let (scheme, rest) = text.split_once(' ').unwrap();
                    proptest::prop_assert!(scheme.eq_ignore_ascii_case("bearer"));
                    proptest::prop_assert!(!token.is_empty());
                    proptest::prop_assert_eq!(token, rest.trim());
                }
            }
        }

        #[test]
        fn a_bearer_token_in_any_case_of_the_scheme_is_read_whole(
            scheme in "[bB][eE][aA][rR][eE][rR]",
            token in "[!-~]{1,200}",
            padding in " {0,3}",
        ) {
            let value = HeaderValue::from_str(&format!("{scheme} {padding}{token}{padding}")).unwrap();
            let headers = headers(&[value]);
            proptest::prop_assert_eq!(bearer(&headers), Bearer::One(&token));
        }

        #[test]
        fn two_authorization_headers_are_refused_whatever_they_say(a in "[ -~]{0,50}", b in "[ -~]{0,50}") {
            let headers = headers(&[HeaderValue::from_str(&a).unwrap(), HeaderValue::from_str(&b).unwrap()]);
            proptest::prop_assert_eq!(bearer(&headers), Bearer::Repeated);
        }
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_malformed() {
        for value in [
            "Basic abc",
            "Bearer",
            "Bearer ",
            "Bearer   ",
            "Bearerabc",
            "Token abc",
        ] {
            let headers = headers(&[HeaderValue::from_static(value)]);
            assert_eq!(bearer(&headers), Bearer::Malformed, "{value}");
        }
        assert_eq!(bearer(&http::HeaderMap::new()), Bearer::None);
    }

    #[test]
    fn loopback_bases_allow_every_loopback_name() {
        let hosts = allowed_hosts(&Url::parse("http://localhost:8000").unwrap());
        assert_eq!(hosts, ["localhost", "127.0.0.1", "[::1]"]);
        let hosts = allowed_hosts(&Url::parse("https://mcp.example.com").unwrap());
        assert_eq!(hosts, ["mcp.example.com"]);
    }
}
