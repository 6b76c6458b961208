//! Tools: what `#[mcp_tool]` registers, how a call reaches the user's fn, and how results and errors
//! travel back.

pub(crate) mod context;
mod error;
pub(crate) mod input;
pub(crate) use input::StateSealer;
mod logging;
mod output;
mod registry;
mod schema;

pub use context::{ToolCall, ToolContext};
pub use error::{ToolError, ToolErrorKind};
pub use input::{Answers, Questions};
pub use logging::LogLevel;
pub(crate) use logging::SessionLogLevel;
pub use output::{Contents, ToolOutput};
pub use registry::{Registry, ToolRegistration};
pub use schema::{
    FromArguments, HeaderArgument, Injected, InputSchema, ToolArgument, assert_described_argument,
    assert_header_argument, count_schema_arguments, schema_arguments, tool_future,
};

use futures::future::BoxFuture;
use rmcp::model::{CallToolResult, JsonObject};

use crate::permission::Permission;

/// The future a generated wrapper returns.
pub type ToolFuture = BoxFuture<'static, Result<CallToolResult, ToolError>>;

/// Everything the runtime knows about one `#[mcp_tool]` fn. Built by the macro as a `static`.
pub struct ToolDef {
    /// The MCP tool name (validated by the macro).
    pub name: &'static str,
    /// Shown to clients in `tools/list`.
    pub description: &'static str,
    /// The caller must hold every one, or a permission that implies it.
    pub permissions: &'static [Permission],
    /// `module::fn`, so start-up errors can point at the code.
    pub rust_path: &'static str,
    /// JSON Schema of the arguments object.
    pub input_schema: fn() -> JsonObject,
    /// JSON Schema of `structuredContent`, for return types that serialise to an object.
    pub output_schema: fn() -> Option<JsonObject>,
    /// The generated wrapper: guard, then arguments, then the user's fn.
    pub handler: fn(ToolCall) -> ToolFuture,
}

impl std::fmt::Debug for ToolDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolDef")
            .field("name", &self.name)
            .field("permissions", &self.permissions)
            .field("rust_path", &self.rust_path)
            .finish_non_exhaustive()
    }
}

/// Names a tool in the type namespace: `#[mcp_tool] async fn add(..)` also defines a hidden `add {}` type
/// that implements this trait, so `Server::builder().tool::<add>()` can pick tools by hand.
pub trait Tool {
    /// The tool's definition.
    const DEF: &'static ToolDef;
}
