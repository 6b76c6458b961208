//! The HTTP client for every call to the identity provider and to client metadata documents.

use std::fmt;
use std::time::Duration;

use super::tls::{ClientTls, describe_tls_failure};

/// How long a connection (TCP and TLS) may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a whole request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A client that verifies TLS against the server's trust, follows no redirect (a redirect could
/// carry a token elsewhere), and bounds every request. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct OutboundHttp {
    client: reqwest::Client,
    tls: ClientTls,
}

impl OutboundHttp {
    pub(crate) fn new(tls: ClientTls) -> Self {
        let client = Self::builder(&tls)
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect(
                "a reqwest client with static settings and a built rustls config always builds",
            );
        Self { client, tls }
    }

    /// A builder with this trust and no redirects, for clients that need more settings (the
    /// metadata-document fetch pins its connection to a checked address).
    pub(crate) fn builder(tls: &ClientTls) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .use_preconfigured_tls(tls.rustls_config())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("toolgate/", env!("CARGO_PKG_VERSION")))
    }

    /// The trust this client verifies against.
    pub(crate) fn tls(&self) -> &ClientTls {
        &self.tls
    }

    pub(crate) fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.client.get(url)
    }

    pub(crate) fn request(&self, method: http::Method, url: &str) -> reqwest::RequestBuilder {
        self.client.request(method, url)
    }
}

/// Sends `request`; a failure says which host and what went wrong, never the URL's path or query
/// (they can carry codes) nor any header.
pub(crate) async fn send(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, OutboundError> {
    request.send().await.map_err(OutboundError::from)
}

/// Why an outbound request got no answer, in words a person can act on.
#[derive(Debug, Clone)]
pub(crate) struct OutboundError {
    description: String,
}

impl From<reqwest::Error> for OutboundError {
    fn from(error: reqwest::Error) -> Self {
        let host = error
            .url()
            .map(|url| match url.port() {
                Some(port) => format!("{}:{port}", url.host_str().unwrap_or("?")),
                None => url.host_str().unwrap_or("?").to_owned(),
            })
            .unwrap_or_else(|| "the server".to_owned());
        let description = if let Some(tls) = describe_tls_failure(&host, &error) {
            tls
        } else if error.is_timeout() {
            format!("{host} did not answer in time")
        } else if error.is_connect() {
            let cause = innermost(&error);
            format!("cannot connect to {host}: {cause}")
        } else {
            format!("the request to {host} failed: {}", innermost(&error))
        };
        Self { description }
    }
}

impl fmt::Display for OutboundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for OutboundError {}

/// The deepest cause: "connection refused" rather than "error sending request".
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

/// Lets `openidconnect` run discovery over our client (and its trust, no-redirect, timeout policy).
pub(crate) struct OpenIdHttp<'a>(pub(crate) &'a OutboundHttp);

/// As [`OpenIdHttp`], for the identity provider's token and revocation endpoints: an answer of 5xx
/// or 429 is a failure to get an answer (try later), never the provider's word on a grant. oauth2
/// reads every answer other than 200 as an OAuth error response, and a grant whose refresh the
/// provider refused is revoked: an outage must not look like that.
pub(crate) struct TokenEndpointHttp<'a>(pub(crate) &'a OutboundHttp);

impl<'c> openidconnect::AsyncHttpClient<'c> for TokenEndpointHttp<'_> {
    type Error = OutboundError;
    type Future =
        futures::future::BoxFuture<'c, Result<openidconnect::HttpResponse, OutboundError>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let host = request.uri().host().unwrap_or("the server").to_owned();
            let response = openid_http(self.0, request).await?;
            let status = response.status();
            if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
                return Err(OutboundError {
                    description: format!("{host} answered HTTP {}", status.as_u16()),
                });
            }
            Ok(response)
        })
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for OpenIdHttp<'_> {
    type Error = OutboundError;
    type Future =
        futures::future::BoxFuture<'c, Result<openidconnect::HttpResponse, OutboundError>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(openid_http(self.0, request))
    }
}

async fn openid_http(
    client: &OutboundHttp,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, OutboundError> {
    let (parts, body) = request.into_parts();
    let response = send(
        client
            .request(parts.method, &parts.uri.to_string())
            .headers(parts.headers)
            .body(body),
    )
    .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .map_err(OutboundError::from)?
        .to_vec();
    let mut out = http::Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
