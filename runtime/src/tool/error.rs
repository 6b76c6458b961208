use std::any::Any;
use std::borrow::Cow;
use std::fmt;

use rmcp::model::{
    CallToolResponse, CallToolResult, ClientCapabilities, ContentBlock, ErrorCode, ErrorData,
    InputRequiredResult,
};
use serde_json::{Value, json};

use crate::auth::UserInfoError;
use crate::permission::MissingPermissions;

/// Why a tool call failed. Most kinds become a tool result with `isError: true` (the caller's model
/// sees the message); argument and permission problems become JSON-RPC errors, as MCP asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolErrorKind {
    /// The tool ran and failed.
    Execution,
    /// The arguments do not match the input schema.
    InvalidArguments,
    /// The caller lacks a permission the tool declares.
    PermissionDenied,
    /// The tool needs a signed-in caller and there is none.
    Unauthenticated,
    /// The tool needs answers from the client first (sampling, elicitation, roots): the call ends
    /// with an `input_required` result and the client calls again with the answers.
    InputRequired,
    /// The tool needs a client capability (sampling, elicitation, roots) the client did not declare.
    MissingClientCapability,
    /// The `requestState` the client echoed back was not issued by this server for this call.
    InvalidRequestState,
}

impl ToolErrorKind {
    /// A stable machine-readable name, sent in the result's `_meta`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Execution => "execution",
            Self::InvalidArguments => "invalid_arguments",
            Self::PermissionDenied => "permission_denied",
            Self::Unauthenticated => "unauthenticated",
            Self::InputRequired => "input_required",
            Self::MissingClientCapability => "missing_client_capability",
            Self::InvalidRequestState => "invalid_request_state",
        }
    }
}

/// The error type of tools. Any `std::error::Error` converts into it, so `?` works in tool bodies.
///
/// Like `anyhow::Error`, it deliberately does not implement `std::error::Error` itself: that is what
/// lets the blanket `From` impl exist.
#[derive(Clone)]
pub struct ToolError {
    kind: ToolErrorKind,
    /// A finer name than the kind's, from the error it was made of (`userinfo_unauthorized`).
    code: Option<&'static str>,
    message: Cow<'static, str>,
    data: Option<Value>,
    protocol: Option<Box<ProtocolReply>>,
}

/// What some kinds carry to the client instead of a message.
#[derive(Clone)]
enum ProtocolReply {
    InputRequired(InputRequiredResult),
    MissingCapability(ClientCapabilities),
}

impl ToolError {
    /// A failure of the tool itself, shown to the caller.
    pub fn new(message: impl Into<Cow<'static, str>>) -> Self {
        Self::with_kind(ToolErrorKind::Execution, message)
    }

    /// A failure of a given kind.
    pub fn with_kind(kind: ToolErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            code: None,
            message: message.into(),
            data: None,
            protocol: None,
        }
    }

    /// Ends the call with an `input_required` result. Only [`ToolContext::ask`](crate::ToolContext::ask)
    /// builds these, because toolgate seals and checks every `requestState` itself.
    pub(crate) fn input_required(result: InputRequiredResult) -> Self {
        let keys: Vec<&str> = result
            .input_requests
            .iter()
            .flat_map(|requests| requests.keys().map(String::as_str))
            .collect();
        let message = format!("the tool needs input from the client first: {keys:?}");
        let mut error = Self::with_kind(ToolErrorKind::InputRequired, message);
        error.protocol = Some(Box::new(ProtocolReply::InputRequired(result)));
        error
    }

    /// The client lacks a capability the tool needs: JSON-RPC error -32021 naming it, as the
    /// specification asks. The `ask` family returns this by itself.
    pub fn missing_client_capability(required: ClientCapabilities) -> Self {
        let mut error = Self::with_kind(
            ToolErrorKind::MissingClientCapability,
            "the client did not declare a capability this tool needs",
        );
        error.protocol = Some(Box::new(ProtocolReply::MissingCapability(required)));
        error
    }

    /// Arguments that do not fit the schema: a JSON-RPC invalid-params error.
    pub fn invalid_arguments(message: impl Into<Cow<'static, str>>) -> Self {
        Self::with_kind(ToolErrorKind::InvalidArguments, message)
    }

    /// Attaches machine-readable detail.
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }

    /// What went wrong, by kind.
    pub fn kind(&self) -> ToolErrorKind {
        self.kind
    }

    /// A stable machine-readable name, sent in a failed result's `_meta` as `toolgate/error`: the
    /// kind's, or a finer one from the error it was made of (`userinfo_rate_limited`).
    pub fn code(&self) -> &'static str {
        self.code.unwrap_or(self.kind.as_str())
    }

    /// The message shown to the caller.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Turns the error into what MCP sends back: a JSON-RPC error for protocol-level problems,
    /// otherwise a tool result flagged as an error.
    pub(crate) fn into_response(self) -> Result<CallToolResponse, ErrorData> {
        match self.protocol.map(|reply| *reply) {
            Some(ProtocolReply::InputRequired(result)) => return Ok(result.into()),
            Some(ProtocolReply::MissingCapability(required)) => {
                return Err(ErrorData::missing_required_client_capability(required));
            }
            None => {}
        }
        match self.kind {
            ToolErrorKind::InvalidArguments => {
                Err(ErrorData::invalid_params(self.message, self.data))
            }
            ToolErrorKind::InvalidRequestState => {
                Err(ErrorData::invalid_params(self.message, None))
            }
            ToolErrorKind::PermissionDenied | ToolErrorKind::Unauthenticated => Err(
                ErrorData::new(ErrorCode::INVALID_REQUEST, self.message, self.data),
            ),
            _ => {
                let code = self.code.unwrap_or(self.kind.as_str());
                let mut result = CallToolResult::error(vec![ContentBlock::text(self.message)]);
                let mut meta = rmcp::model::JsonObject::new();
                meta.insert("toolgate/error".into(), json!(code));
                if let Some(data) = self.data {
                    meta.insert("toolgate/detail".into(), data);
                }
                result.meta = Some(rmcp::model::MetaObject(meta));
                Ok(result.into())
            }
        }
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolError")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .finish()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for ToolError {
    fn from(error: E) -> Self {
        from_auth(&error).unwrap_or_else(|| Self::new(error.to_string()))
    }
}

/// Auth's own errors as tool errors: the one place they are mapped. The blanket `From` above leaves
/// no room for a `From` impl per type, so it asks here first.
fn from_auth(error: &dyn Any) -> Option<ToolError> {
    if let Some(missing) = error.downcast_ref::<MissingPermissions>() {
        return Some(
            ToolError::with_kind(ToolErrorKind::PermissionDenied, missing.to_string())
                .with_data(json!({ "missing_permissions": missing.missing() })),
        );
    }
    if let Some(error) = error.downcast_ref::<UserInfoError>() {
        let mut tool_error = ToolError::new(error.to_string());
        tool_error.code = Some(error.code());
        if let UserInfoError::RateLimited {
            retry_after_seconds,
        } = error
        {
            tool_error =
                tool_error.with_data(json!({ "retry_after_seconds": retry_after_seconds }));
        }
        return Some(tool_error);
    }
    None
}
