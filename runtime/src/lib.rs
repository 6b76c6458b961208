//! toolgate: publish MCP tools, guarded by Auth0 permissions, from annotated `async fn`s.
//!
//! ```ignore
//! use toolgate::{mcp_tool, AccessToken, ToolError};
//!
//! /// Adds two integers.
//! #[mcp_tool]
//! async fn add(a: i64, b: i64) -> i64 { a + b }
//!
//! #[mcp_tool(name = "whoami", description = "The caller's subject", permissions = ["tool:whoami"])]
//! async fn whoami(token: AccessToken) -> String { token.claims().sub.clone() }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), toolgate::Error> {
//!     toolgate::Server::from_env()?.serve().await
//! }
//! ```

mod auth;
mod config;
mod error;
mod keys;
mod net;
mod oauth;
mod permission;
mod server;
mod storage;
mod time;
mod tool;

pub use auth::{
    AccessToken, AccessTokenRejection, Audience, Auth0Provider, AuthError, AuthProvider, Challenge,
    Claims, UserInfo, UserInfoError, get_auth_provider, require_permissions,
};
pub use config::{
    Auth0Settings, AuthConfig, Config, ConfigError, DEFAULT_BASE_URL, DEFAULT_SENTINEL_PORT,
    KNOWN_PROVIDERS, ProviderConfig, RedisConfig, RedisNode, RedisTopology, SecretString, TlsTrust,
};
pub use error::Error;
pub use permission::{MissingPermissions, Permission};
pub use server::{DEFAULT_BODY_LIMIT, Server, ServerBuilder};
pub use storage::{
    EncryptedStore, MemoryStore, RedisStore, StorageKeyError, Store, StoreError, StoreLock,
    Subscription, SubscriptionEvent,
};
pub use tool::{
    Answers, Contents, LogLevel, Questions, Registry, Tool, ToolCall, ToolContext, ToolDef,
    ToolError, ToolErrorKind,
};
pub use toolgate_macros::mcp_tool;

/// rmcp, for content blocks and other protocol types a tool may return.
pub use rmcp;

/// What `#[mcp_tool]` expansions call. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use inventory;
    pub use rmcp::model::JsonObject;

    pub use crate::permission::{IsPermission, Permission, assert_distinct, permission};
    pub use crate::tool::{
        FromArguments, HeaderArgument, Injected, InputSchema, Tool, ToolArgument, ToolCall,
        ToolDef, ToolFuture, ToolOutput, ToolRegistration, assert_described_argument,
        assert_header_argument, count_schema_arguments, schema_arguments, tool_future,
    };

    /// Converts a tool's `Err` value.
    pub fn into_tool_error<E: Into<crate::ToolError>>(error: E) -> crate::ToolError {
        error.into()
    }
}
