use rmcp::RoleServer;
use rmcp::model::JsonObject;
use rmcp::service::{Peer, RequestContext};

use super::ToolError;
use crate::auth::{AccessToken, require_permissions};

/// One `tools/call` as the generated wrapper sees it: the raw arguments, the caller's verified token (if
/// any) and the MCP request context.
pub struct ToolCall {
    pub(crate) tool: &'static str,
    pub(crate) arguments: JsonObject,
    pub(crate) token: Option<AccessToken>,
    pub(crate) context: Option<RequestContext<RoleServer>>,
}

impl ToolCall {
    /// A call with no MCP session behind it: for unit tests of a tool and for benchmarks.
    pub fn new(tool: &'static str, arguments: JsonObject, token: Option<AccessToken>) -> Self {
        Self {
            tool,
            arguments,
            token,
            context: None,
        }
    }

    pub(crate) fn with_context(mut self, context: RequestContext<RoleServer>) -> Self {
        self.context = Some(context);
        self
    }

    /// The verified token of the caller, if the request carried one.
    pub fn token(&self) -> Option<&AccessToken> {
        self.token.as_ref()
    }

    /// The raw arguments object.
    pub fn arguments(&self) -> &JsonObject {
        &self.arguments
    }

    /// The guard every generated wrapper runs first: with no permissions declared any caller passes
    /// (authentication is the HTTP layer's job); otherwise a token holding every permission is needed.
    pub fn guard(&self, permissions: &[&str]) -> Result<(), ToolError> {
        if permissions.is_empty() {
            return Ok(());
        }
        match &self.token {
            Some(token) => require_permissions(token, permissions),
            None => Err(ToolError::with_kind(
                super::ToolErrorKind::Unauthenticated,
                format!(
                    "tool `{}` requires the permissions {permissions:?}, and this request carries no \
                     verified access token",
                    self.tool
                ),
            )),
        }
    }

    /// Refuses arguments the tool does not declare, so a misspelt optional argument is not silently
    /// ignored.
    pub fn deny_unknown_arguments(&self, known: &[&str]) -> Result<(), ToolError> {
        match self
            .arguments
            .keys()
            .find(|key| !known.contains(&key.as_str()))
        {
            None => Ok(()),
            Some(unknown) => Err(ToolError::invalid_arguments(format!(
                "unknown argument `{unknown}` for tool `{}`; expected {}",
                self.tool,
                if known.is_empty() {
                    "no arguments".to_owned()
                } else {
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
            .with_data(serde_json::json!({ "argument": unknown }))),
        }
    }
}

/// Extracts runtime-provided values (the token, the request context) into tool arguments.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be injected into a tool",
    label = "not a toolgate extractor",
    note = "injected arguments are `toolgate::AccessToken`, `Option<toolgate::AccessToken>` and `toolgate::ToolContext`"
)]
pub trait FromToolCall: Sized {
    /// Takes the value out of the call.
    fn from_tool_call(call: &ToolCall) -> Result<Self, ToolError>;
}

impl FromToolCall for AccessToken {
    fn from_tool_call(call: &ToolCall) -> Result<Self, ToolError> {
        call.token.clone().ok_or_else(|| {
            ToolError::with_kind(
                super::ToolErrorKind::Unauthenticated,
                format!(
                    "tool `{}` reads the caller's access token, and this request carries none \
                     (is AUTH_ENABLED set?)",
                    call.tool
                ),
            )
        })
    }
}

impl FromToolCall for Option<AccessToken> {
    fn from_tool_call(call: &ToolCall) -> Result<Self, ToolError> {
        Ok(call.token.clone())
    }
}

/// The MCP request behind a tool call: lets a tool talk back to the client while it runs.
#[derive(Clone)]
pub struct ToolContext {
    context: Option<RequestContext<RoleServer>>,
}

impl ToolContext {
    /// The client connection, for notifications and requests to the client.
    pub fn peer(&self) -> Option<&Peer<RoleServer>> {
        self.context.as_ref().map(|c| &c.peer)
    }

    /// The full rmcp request context (request id, `_meta`, cancellation).
    pub fn request(&self) -> Option<&RequestContext<RoleServer>> {
        self.context.as_ref()
    }

    /// True once the client has cancelled this request.
    pub fn is_cancelled(&self) -> bool {
        self.context.as_ref().is_some_and(|c| c.ct.is_cancelled())
    }
}

impl FromToolCall for ToolContext {
    fn from_tool_call(call: &ToolCall) -> Result<Self, ToolError> {
        Ok(Self {
            context: call.context.clone(),
        })
    }
}
