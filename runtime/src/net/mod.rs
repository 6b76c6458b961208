//! Outbound connections: the TLS trust every connection to Auth0, Redis and client metadata
//! documents verifies against, the HTTP client, and failures described in words a person can act on.
//!
//! A leaf below `auth`, `oauth` and `storage`; it knows `config` only for `TlsTrust`.

pub(crate) mod http;
pub(crate) mod tls;

pub(crate) use http::{OpenIdHttp, OutboundError, OutboundHttp, TokenEndpointHttp, send};
pub(crate) use tls::ClientTls;
