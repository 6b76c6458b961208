use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum DevIdpError {
    #[error("the dev IdP binds loopback addresses only, not {0}")]
    NotLoopback(SocketAddr),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("signing key error: {0}")]
    Key(String),
    #[error("auto_approve names {0:?}, which is not one of the configured users")]
    UnknownUser(String),
    #[error("TLS set-up failed: {0}")]
    Tls(String),
}
