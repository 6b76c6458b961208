//! Clients: dynamic registration (RFC 7591), client ID metadata documents, redirect-URI rules, and
//! client authentication at the token and revocation endpoints.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;

use super::responses::{json_error, json_reply, store_down_json};
use super::{CLIENT_TTL, OAuth, crypto};
use crate::net::{ClientTls, OutboundHttp, send};
use crate::storage::StoreError;

/// The largest registration request accepted.
pub(crate) const MAX_REGISTRATION_BYTES: usize = 64 * 1024;
/// The largest client metadata document fetched.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// How long a fetch of a client metadata document may take.
const DOCUMENT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document is reused.
pub(crate) const DOCUMENT_CACHE_TTL: Duration = Duration::from_secs(300);
/// The longest `client_name` accepted; it is shown on the consent page.
const MAX_CLIENT_NAME_CHARS: usize = 200;
/// The most redirect URIs one client may register.
const MAX_REDIRECT_URIS: usize = 20;
/// The store kind of registrations.
const CLIENT_KIND: &str = "client";

/// A client we know, registered here or described by its metadata document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Client {
    pub(crate) client_id: String,
    pub(crate) client_name: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
    /// SHA-256 of the client secret; `None` for a public client.
    pub(crate) secret_sha256: Option<String>,
}

impl Client {
    /// The name to show a person: the registered name, or the client id.
    pub(crate) fn display_name(&self) -> &str {
        self.client_name.as_deref().unwrap_or(&self.client_id)
    }

    /// The redirect URI to use for `requested`, when it matches one registered (RFC 6749 §3.1.2.3,
    /// exact match; RFC 8252 §7.3: for a loopback IP literal only the port may differ). `None`
    /// without a request is allowed only when exactly one URI is registered.
    pub(crate) fn redirect_uri_for(&self, requested: Option<&str>) -> Option<Url> {
        let Some(requested) = requested else {
            return match self.redirect_uris.as_slice() {
                [only] => Url::parse(only).ok(),
                _ => None,
            };
        };
        self.redirect_uris
            .iter()
            .find_map(|registered| match_redirect_uri(registered, requested))
    }
}

/// Checks one redirect URI a client wants to register: https anywhere, or http on loopback; no
/// fragment, no credentials. Everything else (`javascript:`, `data:`, `file:`, custom schemes) is
/// refused, since the code would travel to whoever handles that scheme.
pub(crate) fn validate_redirect_uri(raw: &str) -> Result<Url, String> {
    if raw.contains('#') {
        return Err(format!("`{raw}` has a fragment; redirect URIs may not"));
    }
    if raw.len() > 2048 {
        return Err("a redirect URI is longer than 2048 characters".into());
    }
    let url = Url::parse(raw).map_err(|_| format!("`{raw}` is not an absolute URI"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{raw}` carries credentials"));
    }
    match url.scheme() {
        "https" if url.host().is_some() => Ok(url),
        "http" if is_loopback_host(&url) => Ok(url),
        "http" => Err(format!(
            "`{raw}` is plain http on a non-loopback host; use https (or http://127.0.0.1 for a native app)"
        )),
        scheme => Err(format!(
            "the `{scheme}:` scheme is not allowed; use https, or http on loopback"
        )),
    }
}

fn is_loopback_host(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn is_loopback_ip_literal(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

/// The URI to redirect to when `requested` matches `registered`. Exact string match; for an http
/// loopback IP literal, the same URI on another port (native apps pick a free port each run). The
/// answer is built from the registered URI, so nothing of the request's spelling leaks through.
fn match_redirect_uri(registered: &str, requested: &str) -> Option<Url> {
    if registered == requested {
        return Url::parse(registered).ok();
    }
    if requested.contains('#') {
        return None;
    }
    let registered_url = Url::parse(registered).ok()?;
    if registered_url.scheme() != "http" || !is_loopback_ip_literal(&registered_url) {
        return None;
    }
    let requested_url = Url::parse(requested).ok()?;
    let port = requested_url.port()?;
    let mut candidate = registered_url.clone();
    candidate.set_port(Some(port)).ok()?;
    // Compare spellings, not parsed forms: `/cb/../cb` or `%2F` must not match `/cb`.
    (candidate.as_str() == requested).then_some(candidate)
}

#[derive(Deserialize)]
struct RegistrationRequest {
    redirect_uris: Option<Vec<String>>,
    client_name: Option<String>,
    token_endpoint_auth_method: Option<String>,
    grant_types: Option<Vec<String>>,
    response_types: Option<Vec<String>>,
    scope: Option<String>,
}

fn invalid_metadata(description: impl Into<String>) -> Response {
    json_error(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

/// `POST /register`.
pub(crate) async fn register(
    State(oauth): State<Arc<OAuth>>,
    request: axum::extract::Request,
) -> Result<Response, Response> {
    // The client as the server decided it (behind trusted proxies, the forwarded address). Read by
    // hand: a router mounted without connect info has none, and must still serve registrations.
    let peer = request
        .extensions()
        .get::<crate::net::ClientAddress>()
        .map(|address| address.0);
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    if !oauth.admit_registration(peer) {
        let mut response = json_error(
            StatusCode::TOO_MANY_REQUESTS,
            "temporarily_unavailable",
            "too many registrations from this address; try again in a minute",
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from_static("60"));
        return Err(response);
    }
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !is_json {
        return Err(invalid_metadata(
            "send the registration as application/json",
        ));
    }
    let bytes: Bytes = axum::body::to_bytes(body, MAX_REGISTRATION_BYTES)
        .await
        .map_err(|_| {
            json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_client_metadata",
                "the registration is larger than 64 KiB",
            )
        })?;
    let request: RegistrationRequest = serde_json::from_slice(&bytes)
        .map_err(|e| invalid_metadata(format!("the registration is not valid JSON: {e}")))?;

    let redirect_uris = request.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            "register at least one redirect URI",
        ));
    }
    if redirect_uris.len() > MAX_REDIRECT_URIS {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_redirect_uri",
            format!("register at most {MAX_REDIRECT_URIS} redirect URIs"),
        ));
    }
    for uri in &redirect_uris {
        validate_redirect_uri(uri).map_err(|problem| {
            json_error(StatusCode::BAD_REQUEST, "invalid_redirect_uri", problem)
        })?;
    }
    if let Some(name) = &request.client_name
        && (name.chars().count() > MAX_CLIENT_NAME_CHARS || name.chars().any(char::is_control))
    {
        return Err(invalid_metadata(format!(
            "client_name must be at most {MAX_CLIENT_NAME_CHARS} characters without control characters"
        )));
    }
    let grant_types = request
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".into()]);
    if let Some(other) = grant_types
        .iter()
        .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
    {
        return Err(invalid_metadata(format!(
            "grant type `{other}` is not supported; use authorization_code and refresh_token"
        )));
    }
    let response_types = request
        .response_types
        .unwrap_or_else(|| vec!["code".into()]);
    if response_types.iter().any(|r| r != "code") {
        return Err(invalid_metadata(
            "only the `code` response type is supported",
        ));
    }
    if let Some(scope) = &request.scope
        && let Some(unknown) = scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .find(|s| !oauth.settings.scopes_supported.iter().any(|k| k == s))
    {
        return Err(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            format!("scope `{unknown}` is not offered by this server"),
        ));
    }
    // RFC 7591 §2: without a method the client authenticates with HTTP Basic.
    let method = request
        .token_endpoint_auth_method
        .unwrap_or_else(|| "client_secret_basic".into());
    let secret = match method.as_str() {
        "none" => None,
        "client_secret_basic" | "client_secret_post" => Some(crypto::random_token()),
        other => {
            return Err(invalid_metadata(format!(
                "token_endpoint_auth_method `{other}` is not supported; use none, client_secret_basic or client_secret_post"
            )));
        }
    };

    let client = Client {
        client_id: crypto::random_token(),
        client_name: request.client_name,
        redirect_uris,
        secret_sha256: secret.as_deref().map(crypto::sha256_hex),
    };
    oauth
        .store
        .put(CLIENT_KIND, &client.client_id, &client, CLIENT_TTL)
        .await
        .map_err(store_down_json)?;
    tracing::info!(client_id = %client.client_id, "registered a client");

    let mut body = json!({
        "client_id": client.client_id,
        "client_id_issued_at": super::grants::unix_now(),
        "redirect_uris": client.redirect_uris,
        "grant_types": grant_types,
        "response_types": response_types,
        "token_endpoint_auth_method": method,
    });
    if let Some(name) = &client.client_name {
        body["client_name"] = json!(name);
    }
    if let Some(scope) = &request.scope {
        body["scope"] = json!(scope);
    }
    if let Some(secret) = secret {
        body["client_secret"] = json!(secret);
        body["client_secret_expires_at"] = json!(0);
    }
    Ok(json_reply(StatusCode::CREATED, body))
}

/// Why a client could not be found.
pub(crate) enum ClientLookupError {
    /// No such client, or its metadata document is unusable (the reason is safe to show).
    Unknown(String),
    /// The store is down.
    Unavailable(StoreError),
}

impl OAuth {
    /// A registered client, or one described by its metadata document when `client_id` is a URL.
    pub(crate) async fn client(&self, client_id: &str) -> Result<Arc<Client>, ClientLookupError> {
        if is_document_client_id(client_id) {
            return self.document_client(client_id).await;
        }
        match self.store.get::<Client>(CLIENT_KIND, client_id).await {
            Ok(Some(client)) => Ok(Arc::new(client)),
            Ok(None) => Err(ClientLookupError::Unknown(
                "this client is not registered here; register it again".into(),
            )),
            Err(error) => Err(ClientLookupError::Unavailable(error)),
        }
    }

    async fn document_client(&self, client_id: &str) -> Result<Arc<Client>, ClientLookupError> {
        let dev_mode = self.settings.dev_mode;
        let tls = self.upstream.http().tls();
        self.documents
            .try_get_with(client_id.to_owned(), async move {
                fetch_client_document(client_id, dev_mode, tls)
                    .await
                    .map(Arc::new)
            })
            .await
            .map_err(|error: Arc<String>| {
                tracing::info!(%client_id, %error, "client metadata document refused");
                ClientLookupError::Unknown(format!(
                    "the client metadata document cannot be used: {error}"
                ))
            })
    }
}

fn is_document_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

#[derive(Deserialize)]
struct ClientDocument {
    client_id: String,
    client_name: Option<String>,
    redirect_uris: Vec<String>,
    token_endpoint_auth_method: Option<String>,
}

/// Fetches and checks a client ID metadata document. The URL must be https (plain http on loopback
/// in dev mode only) and must resolve to public addresses outside dev mode, so a client id cannot
/// make the server probe its own network. The connection is pinned to the checked address.
async fn fetch_client_document(
    client_id: &str,
    dev_mode: bool,
    tls: &ClientTls,
) -> Result<Client, String> {
    let url = Url::parse(client_id).map_err(|_| "the client id is not a URL".to_owned())?;
    let loopback_http = url.scheme() == "http" && dev_mode && is_loopback_host(&url);
    if url.scheme() != "https" && !loopback_http {
        return Err("a client id URL must use https".into());
    }
    if url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("a client id URL may not have a fragment or credentials".into());
    }
    // The parsed URL has its dot segments resolved already; the client id as written must have none.
    let raw_path = client_id.split(['?', '#']).next().unwrap_or("");
    if url.path() == "/" || raw_path.split('/').any(|s| s == "." || s == "..") {
        return Err("a client id URL needs a path without dot segments".into());
    }
    let host = url
        .host_str()
        .ok_or_else(|| "the client id URL has no host".to_owned())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addresses: Vec<SocketAddr> = tokio::time::timeout(
        DOCUMENT_FETCH_TIMEOUT,
        tokio::net::lookup_host((host.as_str(), port)),
    )
    .await
    .map_err(|_| "resolving the client id host timed out".to_owned())?
    .map_err(|_| "the client id host does not resolve".to_owned())?
    .collect();
    let Some(address) = addresses.first().copied() else {
        return Err("the client id host does not resolve".into());
    };
    for candidate in &addresses {
        let allowed =
            is_public_address(candidate.ip()) || (dev_mode && candidate.ip().is_loopback());
        if !allowed {
            return Err("the client id host resolves to a private or reserved address".into());
        }
    }

    let http = OutboundHttp::builder(tls)
        .timeout(DOCUMENT_FETCH_TIMEOUT)
        .connect_timeout(DOCUMENT_FETCH_TIMEOUT)
        .resolve(&host, address)
        .build()
        .map_err(|_| "cannot build an HTTP client".to_owned())?;
    let mut response = send(
        http.get(url.clone())
            .header(header::ACCEPT, "application/json"),
    )
    .await
    .map_err(|error| format!("the client metadata document cannot be fetched: {error}"))?;
    if !response.status().is_success() {
        return Err(format!(
            "fetching the client metadata document answered HTTP {}",
            response.status().as_u16()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|_| "the client metadata document could not be read".to_owned())?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err("the client metadata document is larger than 64 KiB".into());
        }
        body.extend_from_slice(&chunk);
    }
    let document: ClientDocument = serde_json::from_slice(&body).map_err(|_| {
        "the client metadata document is not valid JSON with redirect_uris".to_owned()
    })?;
    if document.client_id != client_id {
        return Err("the document's client_id is not the URL it was fetched from".into());
    }
    if document
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != "none")
    {
        return Err(
            "only public clients (token_endpoint_auth_method none) may use a metadata document"
                .into(),
        );
    }
    if document.redirect_uris.is_empty() {
        return Err("the document lists no redirect_uris".into());
    }
    for uri in &document.redirect_uris {
        validate_redirect_uri(uri)?;
    }
    let client_name = document
        .client_name
        .filter(|n| n.chars().count() <= MAX_CLIENT_NAME_CHARS && !n.chars().any(char::is_control));
    Ok(Client {
        client_id: document.client_id,
        client_name,
        redirect_uris: document.redirect_uris,
        secret_sha256: None,
    })
}

/// True for globally routable unicast addresses.
fn is_public_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space, RFC 6598
                || (a == 192 && b == 0)                  // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19))    // benchmarking
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link local
                || first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
        }
    }
}

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
    use super::*;

    fn client(uris: &[&str]) -> Client {
        Client {
            client_id: "c".into(),
            client_name: None,
            redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
            secret_sha256: None,
        }
    }

    #[test]
    fn registration_accepts_https_and_loopback_http_only() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:3000/callback",
            "http://localhost/cb",
            "http://[::1]:9/cb",
        ] {
            assert!(validate_redirect_uri(ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "https://app.example.com/cb#frag",
            "https://app.example.com/cb#",
            "http://app.example.com/cb",
            "http://127.0.0.1.evil.com/cb",
            "https://user:pw@app.example.com/cb",
            "com.example.app:/cb",
            "/relative",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_uris_match_exactly_except_loopback_ports() {
        let c = client(&["https://app.example.com/cb", "http://127.0.0.1:4000/cb"]);
        let table = [
            (
                "https://app.example.com/cb",
                Some("https://app.example.com/cb"),
            ),
            ("https://app.example.com/cb123", None),
            ("https://APP.example.com/cb", None),
            ("https://app.example.com/CB", None),
            ("https://app.example.com/cb?x=1", None),
            ("https://app.example.com/cb#x", None),
            ("https://app.example.com:8443/cb", None),
            ("http://127.0.0.1:4000/cb", Some("http://127.0.0.1:4000/cb")),
            ("http://127.0.0.1:5555/cb", Some("http://127.0.0.1:5555/cb")),
            ("http://127.0.0.1/cb", None),
            ("http://127.0.0.1:5555/cb/../cb", None),
            ("http://127.0.0.1:5555/cb?x=1", None),
            ("http://127.0.0.1.evil.com:4000/cb", None),
            ("http://localhost:4000/cb", None),
        ];
        for (requested, expected) in table {
            assert_eq!(
                c.redirect_uri_for(Some(requested)).map(|u| u.to_string()),
                expected.map(str::to_owned),
                "{requested}"
            );
        }
        let one = client(&["https://app.example.com/cb"]);
        assert!(one.redirect_uri_for(None).is_some());
        assert!(c.redirect_uri_for(None).is_none());
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:10.0.0.1",
            "224.0.0.1",
        ] {
            assert!(!is_public_address(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(is_public_address(public.parse().unwrap()), "{public}");
        }
    }

    fn platform_tls() -> ClientTls {
        ClientTls::load(&crate::config::TlsTrust::platform()).unwrap()
    }

    #[tokio::test]
    async fn metadata_documents_on_private_addresses_are_refused_outside_dev_mode() {
        for url in [
            "https://127.0.0.1/client.json",
            "https://localhost/client.json",
            "https://10.0.0.8/client.json",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/client.json",
        ] {
            let error = fetch_client_document(url, false, &platform_tls())
                .await
                .unwrap_err();
            assert!(error.contains("private or reserved"), "{url}: {error}");
        }
        for (url, why) in [
            ("http://example.com/client.json", "https"),
            ("https://example.com/", "path"),
            ("https://example.com/a/../client.json", "path"),
            ("https://user:pw@example.com/client.json", "credentials"),
            ("http://127.0.0.1/client.json", "https"),
        ] {
            let error = fetch_client_document(url, false, &platform_tls())
                .await
                .unwrap_err();
            assert!(error.contains(why), "{url}: {error}");
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
