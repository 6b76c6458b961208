//! `/oidc/logout` and Auth0's `/v2/logout`: back to the client when it says where, else a page.

use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use url::Url;

use crate::pages::error_page;
use crate::redirect::found;

#[derive(Deserialize)]
pub(crate) struct LogoutQuery {
    post_logout_redirect_uri: Option<String>,
    /// `/v2/logout`'s name for it.
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
    state: Option<String>,
}

pub(crate) async fn logout(Query(q): Query<LogoutQuery>) -> Response {
    let target = q
        .post_logout_redirect_uri
        .or(q.return_to)
        .and_then(|u| Url::parse(&u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"));
    match target {
        Some(url) => found(&url, q.state.as_deref().map(|s| ("state", s))),
        None => error_page(
            StatusCode::OK,
            "Signed out",
            "You are signed out of the toolgate dev IdP.",
        ),
    }
}
