//! The 302s Auth0 answers with: to a client's redirect URI after `/authorize`, and after logout.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use url::Url;

/// A 302 to `target` with `params` added to its query (its own query is kept).
pub(crate) fn found<'a>(
    target: &Url,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Response {
    let mut url = target.clone();
    let mut params = params.into_iter().peekable();
    // Only touched when there is something to add: `query_pairs_mut` would leave a bare `?`.
    if params.peek().is_some() {
        url.query_pairs_mut().extend_pairs(params);
    }
    let headers = [
        (header::LOCATION, url.as_str()),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (StatusCode::FOUND, headers).into_response()
}

/// An authorization error response (RFC 6749 §4.1.2.1), for a redirect URI already checked.
pub(crate) fn authorize_error(
    redirect_uri: &Url,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let params = [("error", error), ("error_description", description)];
    found(
        redirect_uri,
        params.into_iter().chain(state.map(|s| ("state", s))),
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn location(response: &Response) -> Url {
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        Url::parse(response.headers()[header::LOCATION].to_str().unwrap()).unwrap()
    }

    #[test]
    fn parameters_are_added_to_the_query_encoded() {
        let target = Url::parse("https://app.example/cb?keep=1").unwrap();
        let url = location(&found(&target, [("code", "a b&c"), ("state", "é")]));
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            query,
            [("keep", "1"), ("code", "a b&c"), ("state", "é")]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn nothing_to_add_leaves_the_uri_as_it_was() {
        let target = Url::parse("https://app.example/bye").unwrap();
        assert_eq!(
            location(&found(&target, [])).as_str(),
            "https://app.example/bye"
        );
    }

    #[test]
    fn errors_carry_the_state_when_there_is_one() {
        let target = Url::parse("https://app.example/cb").unwrap();
        let params = |state| -> HashMap<String, String> {
            let response = authorize_error(&target, state, "access_denied", "No.");
            location(&response).query_pairs().into_owned().collect()
        };
        let with = params(Some("st"));
        assert_eq!(with["error"], "access_denied");
        assert_eq!(with["error_description"], "No.");
        assert_eq!(with["state"], "st");
        assert!(!params(None).contains_key("state"));
    }
}
