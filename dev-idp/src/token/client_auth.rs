//! Client authentication at the token and revocation endpoints: `client_secret_basic` or
//! `client_secret_post`, exactly one of them (RFC 6749 §2.3.1).

use axum::http::{HeaderMap, StatusCode};
use headers::authorization::Basic;
use headers::{Authorization, HeaderMapExt};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use super::error::OAuthError;
use super::params::TokenRequest;
use crate::config::DevIdpConfig;

/// `client_secret_post`'s parameters; with Basic, a `client_id` in the body must agree.
#[derive(Deserialize)]
struct ClientParams {
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// Auth0's answer to a wrong client or secret.
fn unauthorized() -> OAuthError {
    OAuthError::new(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized")
}

/// RFC 6749 §2.3.1 has Basic credentials form-encoded before base64; many clients skip that.
fn form_decoded(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

pub(crate) fn authenticate_client(
    config: &DevIdpConfig,
    headers: &HeaderMap,
    request: &TokenRequest,
) -> Result<(), OAuthError> {
    let p: ClientParams = request.params()?;
    // Any other scheme is an authentication method this endpoint does not support: invalid_client.
    let basic = headers
        .typed_try_get::<Authorization<Basic>>()
        .map_err(|_| {
            OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Malformed Basic credentials",
            )
            .with_basic_challenge()
        })?;
    match (basic, &p.client_secret) {
        (Some(_), Some(_)) => Err(OAuthError::invalid_request(
            "Use exactly one client authentication method",
        )),
        (Some(Authorization(basic)), None) => {
            let as_sent = (basic.username().to_owned(), basic.password().to_owned());
            let decoded = (
                form_decoded(basic.username()),
                form_decoded(basic.password()),
            );
            let body_id_differs = p
                .client_id
                .as_ref()
                .is_some_and(|id| *id != as_sent.0 && *id != decoded.0);
            let known = [as_sent, decoded]
                .iter()
                .any(|(id, secret)| config.is_client(id, secret));
            if known && !body_id_differs {
                Ok(())
            } else {
                Err(unauthorized().with_basic_challenge())
            }
        }
        (None, Some(secret)) => {
            let id = p.client_id.as_deref().unwrap_or_default();
            if config.is_client(id, secret) {
                Ok(())
            } else {
                Err(unauthorized())
            }
        }
        (None, None) => Err(OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication is required (client_secret_basic or client_secret_post)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, header};
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;
    use crate::token::params::form;

    fn config() -> DevIdpConfig {
        DevIdpConfig {
            client_id: "my client".into(),
            client_secret: "s3cret:+/".into(),
            ..DevIdpConfig::default()
        }
    }

    fn authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn basic(id: &str, secret: &str) -> HeaderMap {
        authorization(&format!(
            "Basic {}",
            STANDARD.encode(format!("{id}:{secret}"))
        ))
    }

    fn post(id: Option<&str>, secret: Option<&str>) -> TokenRequest {
        let pairs = [("client_id", id), ("client_secret", secret)];
        let present: Vec<(&str, &str)> = pairs
            .iter()
            .filter_map(|(k, v)| Some((*k, (*v)?)))
            .collect();
        form(&present)
    }

    fn outcome(headers: &HeaderMap, p: &TokenRequest) -> Result<(), (u16, &'static str, bool)> {
        authenticate_client(&config(), headers, p)
            .map_err(|e| (e.status.as_u16(), e.error, e.basic_challenge))
    }

    #[test]
    fn basic_credentials_count_as_sent_or_form_decoded() {
        let none = post(None, None);
        assert_eq!(outcome(&basic("my client", "s3cret:+/"), &none), Ok(()));
        assert_eq!(
            outcome(&basic("my+client", "s3cret%3A%2B%2F"), &none),
            Ok(())
        );
        // The scheme is case-insensitive.
        let raw = STANDARD.encode("my client:s3cret:+/");
        assert_eq!(
            outcome(&authorization(&format!("basic {raw}")), &none),
            Ok(())
        );
    }

    #[test]
    fn a_wrong_basic_secret_is_challenged() {
        let none = post(None, None);
        assert_eq!(
            outcome(&basic("my client", "nope"), &none),
            Err((401, "access_denied", true))
        );
        assert_eq!(
            outcome(&basic("other", "s3cret:+/"), &none),
            Err((401, "access_denied", true))
        );
    }

    #[test]
    fn a_body_client_id_must_name_the_basic_client() {
        let headers = basic("my client", "s3cret:+/");
        assert_eq!(outcome(&headers, &post(Some("my client"), None)), Ok(()));
        assert_eq!(
            outcome(&headers, &post(Some("someone"), None)),
            Err((401, "access_denied", true))
        );
    }

    #[test]
    fn malformed_or_foreign_authorization_is_invalid_client() {
        let none = post(None, None);
        for value in ["Basic !!!", "Basic bm9jb2xvbg==", "Bearer abc"] {
            assert_eq!(
                outcome(&authorization(value), &none),
                Err((401, "invalid_client", true)),
                "{value}"
            );
        }
    }

    #[test]
    fn client_secret_post_is_checked_without_a_challenge() {
        let headers = HeaderMap::new();
        assert_eq!(
            outcome(&headers, &post(Some("my client"), Some("s3cret:+/"))),
            Ok(())
        );
        assert_eq!(
            outcome(&headers, &post(Some("my client"), Some("wrong"))),
            Err((401, "access_denied", false))
        );
        assert_eq!(
            outcome(&headers, &post(None, Some("s3cret:+/"))),
            Err((401, "access_denied", false))
        );
    }

    #[test]
    fn exactly_one_method() {
        assert_eq!(
            outcome(&HeaderMap::new(), &post(Some("my client"), None)),
            Err((401, "invalid_client", false))
        );
        assert_eq!(
            outcome(
                &basic("my client", "s3cret:+/"),
                &post(None, Some("s3cret:+/"))
            ),
            Err((400, "invalid_request", false))
        );
    }
}
