//! The HTML the dev IdP shows a person: the login page, and a page for errors and sign-out.
//! maud escapes every value it is given, so nothing a client sends reaches the page as markup.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::config::DevUser;
use crate::store::AuthorizeRequest;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}\
fieldset{margin:1rem 0;border:1px solid #ccc;border-radius:6px}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-all}\
button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.5rem}.note{color:#666;font-size:.9rem}";

/// No `form-action` in the policy: browsers apply it to the redirect that follows the POST,
/// which goes to the client.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'";

fn document(status: StatusCode, title: &str, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    };
    let headers = [
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    (status, headers, page).into_response()
}

pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    document(
        status,
        title,
        html! {
            h1 { (title) }
            p { (detail) }
            p.note { "toolgate dev IdP" }
        },
    )
}

/// What the login page shows and submits.
pub(crate) struct Login<'a> {
    /// The unguessable id the form sends back in place of the request itself.
    pub(crate) request_id: &'a str,
    pub(crate) client_id: &'a str,
    pub(crate) request: &'a AuthorizeRequest,
    pub(crate) users: &'a [DevUser],
    pub(crate) permissions: &'a [String],
}

pub(crate) fn login_page(login: &Login<'_>) -> Response {
    let request = login.request;
    let none = html! { i { "none" } };
    let body = html! {
        h1 { "Sign in" }
        p.note { "A local stand-in for Auth0. Pick who you are and which permissions the access token carries." }
        dl {
            dt { "Client" } dd { (login.client_id) }
            dt { "Redirect to" } dd { (request.redirect_uri.as_str()) }
            dt { "Audience" } dd { (request.audience) }
            dt { "Scope" } dd { (request.scope) }
            dt { "State" } dd { @if let Some(state) = &request.state { (state) } @else { (none) } }
            dt { "PKCE" } dd { @if request.code_challenge.is_some() { "S256" } @else { (none) } }
        }
        form method="post" action="/authorize/decision" {
            input type="hidden" name="request_id" value=(login.request_id);
            fieldset {
                legend { "User" }
                @for (i, user) in login.users.iter().enumerate() {
                    label {
                        input type="radio" name="user" value=(user.sub) checked[i == 0];
                        " " (user.name) " <" (user.email) "> " code { (user.sub) }
                    }
                    br;
                }
            }
            fieldset {
                legend { "Permissions" }
                @for permission in login.permissions {
                    label {
                        input type="checkbox" name="permission" value=(permission) checked;
                        " " code { (permission) }
                    }
                    br;
                }
                @if login.permissions.is_empty() {
                    p.note { "No permissions are configured." }
                }
                label {
                    "Extra permissions (space separated): "
                    input type="text" name="extra_permissions" size="40";
                }
            }
            button type="submit" name="action" value="approve" { "Approve" }
            button type="submit" name="action" value="deny" { "Deny" }
        }
    };
    document(StatusCode::OK, "Sign in: toolgate dev IdP", body)
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;
    use url::Url;

    use super::*;

    async fn text(response: Response) -> String {
        let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn request(state: Option<&str>) -> AuthorizeRequest {
        let raw = "https://app.example/cb?x=<1>";
        AuthorizeRequest {
            redirect_uri_raw: raw.into(),
            redirect_uri: Url::parse(raw).unwrap(),
            state: state.map(Into::into),
            scope: "openid".into(),
            audience: "https://api".into(),
            nonce: None,
            code_challenge: None,
        }
    }

    #[tokio::test]
    async fn escapes_markup() {
        let page = text(error_page(
            StatusCode::BAD_REQUEST,
            "t",
            r#"<script>"a"&'b'</script>"#,
        ))
        .await;
        assert!(
            page.contains("&lt;script&gt;&quot;a&quot;&amp;'b'&lt;/script&gt;"),
            "{page}"
        );
        assert!(!page.contains("<script>"));
    }

    #[tokio::test]
    async fn pages_carry_the_security_headers() {
        let response = error_page(StatusCode::BAD_REQUEST, "Bad", "detail");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let h = response.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], CSP);
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert_eq!(h[header::REFERRER_POLICY], "no-referrer");
        assert!(
            h[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }

    #[tokio::test]
    async fn the_login_page_lists_users_and_permissions_checked() {
        let request = request(Some("<b>st</b>"));
        let permissions = ["tools:read".to_string(), "a\"b".to_string()];
        let users = [DevUser::alice(), DevUser::bob()];
        let page = text(login_page(&Login {
            request_id: "rid-1",
            client_id: "client-1",
            request: &request,
            users: &users,
            permissions: &permissions,
        }))
        .await;
        for needle in [
            r#"<input type="hidden" name="request_id" value="rid-1">"#,
            r#"<input type="radio" name="user" value="auth0|alice" checked>"#,
            r#"<input type="radio" name="user" value="auth0|bob">"#,
            r#"value="tools:read" checked"#,
            r#"value="a&quot;b" checked"#,
            "Alice Example &lt;alice@example.com&gt;",
            "&lt;b&gt;st&lt;/b&gt;",
            "https://app.example/cb?x=%3C1%3E",
            "<dt>PKCE</dt><dd><i>none</i></dd>",
            r#"action="/authorize/decision""#,
        ] {
            assert!(page.contains(needle), "{needle} missing from {page}");
        }
        assert!(!page.contains("No permissions are configured"));
    }

    #[tokio::test]
    async fn without_permissions_the_page_says_so() {
        let request = request(None);
        let page = text(login_page(&Login {
            request_id: "r",
            client_id: "c",
            request: &request,
            users: &[DevUser::alice()],
            permissions: &[],
        }))
        .await;
        assert!(page.contains("No permissions are configured."));
        assert!(page.contains("<dt>State</dt><dd><i>none</i></dd>"));
    }
}
