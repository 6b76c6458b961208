use crate::auth::AuthError;
use crate::config::ConfigError;

/// What can stop a server from starting or serving.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The environment is missing or malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Two tools share a name.
    #[error(
        "two tools are named `{name}`: `{first}` and `{second}`; rename one with #[mcp_tool(name = \"...\")]"
    )]
    DuplicateTool {
        /// The shared name.
        name: &'static str,
        /// The first fn.
        first: &'static str,
        /// The second fn.
        second: &'static str,
    },
    /// One permission scope is declared twice with different descriptions or implications.
    #[error(
        "the permission `{scope}` is declared twice with different descriptions or implications: declare it once, as one `toolgate::Permission` constant"
    )]
    ConflictingPermission {
        /// The scope.
        scope: &'static str,
    },
    /// The identity provider could not be set up.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The listening socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}
