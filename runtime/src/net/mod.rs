//! Connections: the TLS trust every outbound connection to Auth0, Redis and client metadata
//! documents verifies against, the HTTP client, failures described in words a person can act on,
//! and who an inbound request's client is behind trusted proxies.
//!
//! A leaf below `auth`, `oauth` and `storage`; it knows `config` only for `TlsTrust`.

pub(crate) mod forwarded;
pub(crate) mod http;
pub(crate) mod tls;

pub(crate) use forwarded::{ClientAddress, TrustedProxies};
pub(crate) use http::{OpenIdHttp, OutboundError, OutboundHttp, TokenEndpointHttp, send};
pub(crate) use tls::ClientTls;
