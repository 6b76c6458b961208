use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::OAuthError;

/// The body of a token or revocation request, kept form-encoded (a JSON body, which Auth0 takes
/// too, is converted on arrival). Each reader deserialises the parameters it uses into its own
/// struct, and serde refuses a field given twice: RFC 6749 §3.2's "must not be included more
/// than once", for exactly the parameters that matter to that request.
pub(crate) struct TokenRequest {
    form: Vec<u8>,
}

impl TokenRequest {
    /// A form body, or a JSON object; without a content type, a form.
    pub(crate) fn from_body(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/x-www-form-urlencoded");
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        let form = if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            body.to_vec()
        } else if essence.eq_ignore_ascii_case("application/json") {
            json_as_form(body)?.into_bytes()
        } else {
            return Err(OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded or application/json",
            ));
        };
        Ok(Self { form })
    }

    /// The parameters `T` names; others are ignored, as Auth0 ignores them.
    pub(crate) fn params<T: DeserializeOwned>(&self) -> Result<T, OAuthError> {
        serde_urlencoded::from_bytes(&self.form).map_err(|e| {
            OAuthError::invalid_request(format!("Invalid parameters ({e}): each may be given once"))
        })
    }
}

/// JSON values become the strings a form would carry: a list joins with spaces, `null` is absent.
fn json_as_form(body: &[u8]) -> Result<String, OAuthError> {
    let object: Map<String, Value> = serde_json::from_slice(body)
        .map_err(|_| OAuthError::invalid_request("The request body is not a JSON object"))?;
    let pairs: Vec<(String, String)> = object
        .into_iter()
        .filter_map(|(name, value)| Some((name, as_text(value)?)))
        .collect();
    Ok(serde_urlencoded::to_string(pairs).expect("string pairs always form-encode"))
}

fn as_text(value: Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Array(items) => Some(
            items
                .into_iter()
                .filter_map(as_text)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => Some(other.to_string()),
    }
}

/// A form request of `pairs`, for the unit tests of its readers.
#[cfg(test)]
pub(crate) fn form(pairs: &[(&str, &str)]) -> TokenRequest {
    let body = serde_urlencoded::to_string(pairs).expect("string pairs form-encode");
    TokenRequest::from_body(&HeaderMap::new(), body.as_bytes()).expect("a form body")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    struct Sample {
        grant_type: Option<String>,
        scope: Option<String>,
        client_id: Option<String>,
        audience: Option<String>,
    }

    fn parse(content_type: Option<&'static str>, body: &str) -> Result<Sample, OAuthError> {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        TokenRequest::from_body(&headers, body.as_bytes())?.params()
    }

    #[test]
    fn a_form_is_read_with_or_without_its_content_type() {
        for ct in [
            None,
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
        ] {
            let p = parse(
                ct,
                "grant_type=password&client_id=a%40b&scope=openid+email&x=1",
            )
            .unwrap();
            assert_eq!(p.grant_type.as_deref(), Some("password"));
            assert_eq!(p.client_id.as_deref(), Some("a@b"));
            assert_eq!(p.scope.as_deref(), Some("openid email"));
            assert_eq!(p.audience, None);
        }
    }

    #[test]
    fn a_repeated_parameter_is_refused_by_name() {
        let e = parse(None, "scope=a&grant_type=password&scope=b").unwrap_err();
        assert_eq!((e.status.as_u16(), e.error), (400, "invalid_request"));
        assert!(e.description.contains("`scope`"), "{}", e.description);
        // Parameters the reader does not use may repeat: Auth0 ignores them.
        assert!(parse(None, "x=1&x=2&grant_type=password").is_ok());
    }

    #[test]
    fn json_values_become_form_strings() {
        let p = parse(
            Some("application/json"),
            r#"{"grant_type":"client_credentials","scope":["a","b"],"audience":null,"client_id":7}"#,
        )
        .unwrap();
        assert_eq!(p.grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(p.scope.as_deref(), Some("a b"));
        assert_eq!(p.audience, None);
        assert_eq!(p.client_id.as_deref(), Some("7"));
    }

    #[test]
    fn other_bodies_are_refused() {
        let e = parse(Some("application/json"), "[1]").unwrap_err();
        assert_eq!(e.error, "invalid_request");
        let e = parse(Some("text/plain"), "grant_type=password").unwrap_err();
        assert!(e.description.contains("Content-Type"));
    }
}
