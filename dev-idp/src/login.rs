use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::DevUser;
use crate::server::AuthorizeRequest;
use crate::util::html_escape as esc;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#222}\
fieldset{margin:1rem 0;border:1px solid #ccc;border-radius:6px}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0;word-break:break-all}\
button{font-size:1rem;padding:.4rem 1.2rem;margin-right:.5rem}.note{color:#666;font-size:.9rem}";

pub(crate) fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, Html(body)).into_response();
    let h = resp.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // No `form-action`: browsers apply it to the redirect that follows the POST, which goes to the client.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    resp
}

pub(crate) fn error_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>{STYLE}</style></head>\
         <body><h1>{t}</h1><p>{d}</p><p class=\"note\">toolgate dev IdP</p></body></html>",
        t = esc(title),
        d = esc(detail),
    );
    html_response(status, body)
}

pub(crate) fn login_page(
    request_id: &str,
    client_id: &str,
    request: &AuthorizeRequest,
    users: &[DevUser],
    permissions: &[String],
) -> Response {
    let mut user_rows = String::new();
    for (i, u) in users.iter().enumerate() {
        user_rows.push_str(&format!(
            "<label><input type=\"radio\" name=\"user\" value=\"{sub}\"{checked}> {name} &lt;{email}&gt; <code>{sub}</code></label><br>",
            sub = esc(&u.sub),
            name = esc(&u.name),
            email = esc(&u.email),
            checked = if i == 0 { " checked" } else { "" },
        ));
    }
    let mut perm_rows = String::new();
    for p in permissions {
        perm_rows.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"permission\" value=\"{p}\" checked> <code>{p}</code></label><br>",
            p = esc(p),
        ));
    }
    if perm_rows.is_empty() {
        perm_rows.push_str("<p class=\"note\">No permissions are configured.</p>");
    }
    let optional = |v: &Option<String>| {
        v.as_deref()
            .map(esc)
            .unwrap_or_else(|| "<i>none</i>".into())
    };
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in: toolgate dev IdP</title><style>{STYLE}</style></head><body>\
         <h1>Sign in</h1>\
         <p class=\"note\">A local stand-in for Auth0. Pick who you are and which permissions the access token carries.</p>\
         <dl><dt>Client</dt><dd>{client}</dd><dt>Redirect to</dt><dd>{redirect}</dd><dt>Audience</dt><dd>{audience}</dd>\
         <dt>Scope</dt><dd>{scope}</dd><dt>State</dt><dd>{state}</dd><dt>PKCE</dt><dd>{pkce}</dd></dl>\
         <form method=\"post\" action=\"/authorize/decision\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\
         <fieldset><legend>User</legend>{user_rows}</fieldset>\
         <fieldset><legend>Permissions</legend>{perm_rows}\
         <label>Extra permissions (space separated): <input type=\"text\" name=\"extra_permissions\" size=\"40\"></label></fieldset>\
         <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button>\
         <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\
         </form></body></html>",
        client = esc(client_id),
        redirect = esc(request.redirect_uri.as_str()),
        audience = esc(&request.audience),
        scope = esc(&request.scope),
        state = optional(&request.state),
        pkce = if request.code_challenge.is_some() {
            "S256"
        } else {
            "<i>none</i>"
        },
        request_id = esc(request_id),
    );
    html_response(StatusCode::OK, body)
}
