//! The answers the authorization server gives: OAuth JSON errors, HTML pages for people (maud,
//! which escapes every value it is given, as in the dev IdP), and redirects back to a client.
//! Every one carries `Cache-Control: no-store`.

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::json;
use url::Url;

use crate::storage::StoreError;

/// Seconds a client should wait after a 503.
const RETRY_AFTER_SECONDS: &str = "5";

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// A JSON body with `no-store`, for token, registration and revocation answers.
pub(crate) fn json_reply(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    no_store(response.headers_mut());
    response
}

/// An RFC 6749 §5.2 error.
pub(crate) fn json_error(
    status: StatusCode,
    error: &str,
    description: impl Into<String>,
) -> Response {
    json_reply(
        status,
        json!({ "error": error, "error_description": description.into() }),
    )
}

/// 503 with `Retry-After`: the store or Auth0 is down. Never 401 (the client's credentials are
/// fine) and never 500 (nothing is broken that waiting will not fix).
pub(crate) fn unavailable_json(reason: &dyn std::fmt::Display) -> Response {
    tracing::warn!(%reason, "authorization server: a dependency is unavailable");
    let mut response = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "the authorization server cannot reach its storage or identity provider; try again shortly",
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

/// `?` on a store call inside a JSON endpoint.
pub(crate) fn store_down_json(error: StoreError) -> Response {
    unavailable_json(&error)
}

/// `?` on a store call inside a browser endpoint.
pub(crate) fn store_down_page(error: StoreError) -> Response {
    unavailable_page(&error)
}

/// 503 for a person in a browser.
pub(crate) fn unavailable_page(reason: &dyn std::fmt::Display) -> Response {
    tracing::warn!(%reason, "authorization server: a dependency is unavailable");
    let mut response = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again shortly",
        html! {
            p { "The sign-in service is briefly unavailable. Please try again in a few seconds." }
        },
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECONDS),
    );
    response
}

/// An error shown to the person in the browser instead of a redirect: used whenever the redirect URI
/// is not (yet) known to be the client's, so nothing is ever sent to an unverified address.
pub(crate) fn error_page(status: StatusCode, error: &str, message: &str) -> Response {
    page(
        status,
        "Sign-in cannot continue",
        html! {
            p { (message) }
            p.code { "error: " (error) }
        },
    )
}

/// A complete HTML page around `body`. Pages may never be framed (clickjacking of the consent button) and load
/// nothing from elsewhere.
///
/// No `form-action`: Chromium applies it to every redirect that follows a form's POST, and the
/// consent form's approval redirects to Auth0, which may send the browser straight back to us and on
/// to the client (or on to a social or enterprise identity provider). `'self'` cut that chain at the
/// first hop and left people unable to sign in; an exact list of origins cannot foresee where Auth0
/// goes. The one form's action is a fixed absolute URL of ours, and nothing a client sends is
/// rendered unescaped, so there is no injected form for `form-action` to stop.
pub(crate) fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { main { h1 { (title) } (body) } }
        }
    };
    let mut response = (status, axum::response::Html(html.into_string())).into_response();
    let headers = response.headers_mut();
    no_store(headers);
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f5f5f7;margin:0}\
main{max-width:32rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 3px #0002}h1{font-size:1.3rem}.code{color:#666;font-family:monospace}\
ul{padding-left:1.2rem}button{font-size:1rem;padding:.5rem 1.2rem;margin-right:.5rem}\
dt{font-weight:600}dd{margin:0 0 .6rem 0;word-break:break-all}";

/// A 302 to `target` with `params` added to its query.
pub(crate) fn redirect_with(target: &Url, params: &[(&str, &str)]) -> Response {
    let mut url = target.clone();
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    redirect_to(url.as_str())
}

/// A 302 to `location`.
pub(crate) fn redirect_to(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    let headers = response.headers_mut();
    match HeaderValue::from_str(location) {
        Ok(value) => {
            headers.insert(header::LOCATION, value);
        }
        Err(_) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "the redirect address cannot be used",
            );
        }
    }
    no_store(headers);
    response
}

/// An error sent back to a client's verified redirect URI (RFC 6749 §4.1.2.1, with RFC 9207 `iss`).
pub(crate) fn redirect_error(
    redirect_uri: &Url,
    state: Option<&str>,
    issuer: &str,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    redirect_with(redirect_uri, &params)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn escaping_covers_markup_and_quotes() {
        let response = error_page(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "<script>alert('x')</script>&\"",
        );
        let html = body_of(response).await;
        assert!(
            html.contains("&lt;script&gt;alert('x')&lt;/script&gt;&amp;&quot;"),
            "{html}"
        );
    }

    #[test]
    fn pages_refuse_framing() {
        let response = error_page(StatusCode::BAD_REQUEST, "invalid_request", "<b>no</b>");
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn pages_leave_form_redirects_to_other_origins_alone() {
        // The approval's redirect chain crosses origins (Auth0, back, the client): a browser
        // enforcing `form-action` on it would stop the sign-in at Auth0's door.
        let response = unavailable_page(&"any page");
        let csp = response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(!csp.contains("form-action"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
    }

    #[test]
    fn redirect_errors_carry_state_and_issuer() {
        let target = Url::parse("https://client.example/cb?x=1").unwrap();
        let response = redirect_error(
            &target,
            Some("s t"),
            "https://as.example",
            "access_denied",
            "no",
        );
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(
            location,
            "https://client.example/cb?x=1&error=access_denied&error_description=no&state=s+t&iss=https%3A%2F%2Fas.example"
        );
    }
}
