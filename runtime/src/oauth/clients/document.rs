//! Client ID metadata documents: a client whose id is an https URL describes itself in the JSON
//! document there. Fetching it is a request the server makes on a stranger's word, so it is guarded
//! against server-side request forgery: https only, public addresses only, the connection pinned to
//! the address checked, a size and time limit.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http::header;
use serde::Deserialize;
use url::Url;

use super::{Client, ClientLookupError, MAX_CLIENT_NAME_CHARS, validate_redirect_uri};
use crate::config::is_loopback_url;
use crate::net::{ClientTls, OutboundHttp, send};
use crate::oauth::OAuth;

/// The largest client metadata document fetched.
const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// How long a fetch of a client metadata document may take.
const DOCUMENT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched document is reused.
pub(crate) const DOCUMENT_CACHE_TTL: Duration = Duration::from_secs(300);

impl OAuth {
    pub(super) async fn document_client(
        &self,
        client_id: &str,
    ) -> Result<Arc<Client>, ClientLookupError> {
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
pub(super) fn is_document_client_id(client_id: &str) -> bool {
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
    let loopback_http = url.scheme() == "http" && dev_mode && is_loopback_url(&url);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
