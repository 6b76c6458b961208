use std::time::Duration;

/// The client for every call to the identity provider: no redirects (a redirect could carry a token
/// elsewhere), and a timeout on everything.
pub(crate) fn outbound_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(5))
        .user_agent(concat!("toolgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a reqwest client with static settings always builds")
}

/// Lets `openidconnect` run discovery over our client (and its no-redirect, timeout policy).
pub(crate) struct OpenIdHttp(pub(crate) reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for OpenIdHttp {
    type Error = reqwest::Error;
    type Future =
        futures::future::BoxFuture<'c, Result<openidconnect::HttpResponse, reqwest::Error>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(openid_http(&self.0, request))
    }
}

async fn openid_http(
    client: &reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let (parts, body) = request.into_parts();
    let response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    let mut out = http::Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}
