//! Clients: who may ask for tokens. Registered here (`registration`), or described by a metadata
//! document at their client id URL (`document`); the redirect-URI rules both obey; and how a client
//! proves itself at the token and revocation endpoints (`authentication`).

mod authentication;
mod document;
mod registration;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

use super::OAuth;
use crate::config::is_loopback_url;
use crate::storage::StoreError;

pub(crate) use authentication::client_credentials;
pub(crate) use document::DOCUMENT_CACHE_TTL;
pub(crate) use registration::{RegistrationLimit, register};

/// The longest `client_name` accepted; it is shown on the consent page.
const MAX_CLIENT_NAME_CHARS: usize = 200;
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
        "http" if is_loopback_url(&url) => Ok(url),
        "http" => Err(format!(
            "`{raw}` is plain http on a non-loopback host; use https (or http://127.0.0.1 for a native app)"
        )),
        scheme => Err(format!(
            "the `{scheme}:` scheme is not allowed; use https, or http on loopback"
        )),
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
        if document::is_document_client_id(client_id) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn client(uris: &[&str]) -> Client {
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
}
