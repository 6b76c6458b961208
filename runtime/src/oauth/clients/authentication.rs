//! How a client proves itself at the token and revocation endpoints: HTTP Basic or the form
//! (RFC 6749 §2.3.1), a confidential client's secret checked against its hash, a public client
//! refused a secret.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{StatusCode, header};

use super::{Client, ClientLookupError};
use crate::oauth::responses::{json_error, store_down_json};
use crate::oauth::{OAuth, crypto};

/// Who is calling the token or revocation endpoint.
pub(crate) struct ClientCredentials {
    pub(crate) client_id: String,
    secret: Option<String>,
    basic: bool,
}

/// Reads client credentials from HTTP Basic (RFC 6749 §2.3.1) or the form; both at once is refused.
pub(crate) fn client_credentials(
    headers: &HeaderMap,
    form_client_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<ClientCredentials, InvalidClient> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, value)| value.trim().to_owned());
    if let Some(encoded) = basic {
        if form_secret.is_some() {
            return Err(InvalidClient {
                description: "send the client secret in one place: the Authorization header or the form",
                basic: true,
            });
        }
        let decoded = STANDARD
            .decode(encoded)
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or(InvalidClient {
                description: "the Basic credentials are not valid base64",
                basic: true,
            })?;
        let (id, secret) = decoded.split_once(':').ok_or(InvalidClient {
            description: "the Basic credentials have no `:`",
            basic: true,
        })?;
        let id = form_urldecode(id);
        if form_client_id.is_some_and(|f| f != id) {
            return Err(InvalidClient {
                description: "two different client ids were sent",
                basic: true,
            });
        }
        return Ok(ClientCredentials {
            client_id: id,
            secret: Some(form_urldecode(secret)),
            basic: true,
        });
    }
    let client_id = form_client_id
        .filter(|id| !id.is_empty())
        .ok_or(InvalidClient {
            description: "client_id is missing",
            basic: false,
        })?;
    Ok(ClientCredentials {
        client_id: client_id.to_owned(),
        secret: form_secret.map(str::to_owned),
        basic: false,
    })
}

/// RFC 6749 §2.3.1 form-encodes the id and secret before Basic encoding.
fn form_urldecode(value: &str) -> String {
    url::form_urlencoded::parse(format!("x={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Client credentials that cannot be read; answered with [`invalid_client`].
#[derive(Debug)]
pub(crate) struct InvalidClient {
    description: &'static str,
    basic: bool,
}

impl axum::response::IntoResponse for InvalidClient {
    fn into_response(self) -> Response {
        invalid_client(self.description, self.basic)
    }
}

/// 401 `invalid_client`; with Basic, the challenge RFC 6749 §5.2 asks for.
pub(crate) fn invalid_client(description: &str, basic: bool) -> Response {
    let mut response = json_error(StatusCode::UNAUTHORIZED, "invalid_client", description);
    if basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"toolgate\""),
        );
    }
    response
}

impl OAuth {
    /// The client the credentials name, when they prove it: a confidential client must present its
    /// secret; a public client must not claim one.
    pub(crate) async fn authenticate(
        &self,
        credentials: &ClientCredentials,
    ) -> Result<Arc<Client>, Response> {
        let client = match self.client(&credentials.client_id).await {
            Ok(client) => client,
            Err(ClientLookupError::Unavailable(error)) => return Err(store_down_json(error)),
            Err(ClientLookupError::Unknown(_)) => {
                return Err(invalid_client("unknown client", credentials.basic));
            }
        };
        match (&client.secret_sha256, &credentials.secret) {
            (Some(expected), Some(given))
                if crypto::constant_time_eq(
                    expected.as_bytes(),
                    crypto::sha256_hex(given).as_bytes(),
                ) =>
            {
                Ok(client)
            }
            (None, None) => Ok(client),
            (None, Some(_)) => Err(invalid_client(
                "this client is public and has no secret",
                credentials.basic,
            )),
            _ => Err(invalid_client(
                "client authentication failed",
                credentials.basic,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn form_encode(value: &str) -> String {
        url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
    }

    proptest! {
        #[test]
        fn any_authorization_header_is_read_without_panicking(
            value in proptest::collection::vec(any::<u8>(), 0..200),
            form_id in proptest::option::of(".{0,20}"),
            form_secret in proptest::option::of(".{0,20}"),
        ) {
            if let Ok(value) = http::HeaderValue::from_bytes(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(header::AUTHORIZATION, value);
                let _ = client_credentials(&headers, form_id.as_deref(), form_secret.as_deref());
            }
        }

        #[test]
        fn basic_credentials_come_back_as_the_client_encoded_them(id in ".{1,40}", secret in ".{0,40}") {
            let encoded = STANDARD.encode(format!("{}:{}", form_encode(&id), form_encode(&secret)));
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, format!("Basic {encoded}").parse().unwrap());
            let creds = client_credentials(&headers, None, None).ok().unwrap();
            prop_assert_eq!(creds.client_id, id);
            prop_assert_eq!(creds.secret, Some(secret));
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%20id:s%3Acret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        let creds = client_credentials(&headers, None, None).ok().unwrap();
        assert_eq!(creds.client_id, "my id");
        assert_eq!(creds.secret.as_deref(), Some("s:cret"));
        assert!(client_credentials(&headers, None, Some("x")).is_err());
        assert!(client_credentials(&HeaderMap::new(), None, None).is_err());
    }
}
