#![allow(deprecated)] // sampling and roots are deprecated by SEP-2577 yet current in every version served

use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{
    ClientCapabilities, CreateMessageRequestParams, CreateMessageResult, ElicitRequestParams,
    ElicitResult, InputResponses, JsonObject, ListRootsResult, ProgressNotificationParam,
    ProgressToken, ProtocolVersion,
};
use rmcp::service::{Peer, RequestContext};
use serde::Serialize;

use super::input::{self, Answers, ClientInput, Questions, StateSealer};
use super::logging::{LogLevel, SessionLogLevel};
use super::schema::Injected;
use super::{InputSchema, ToolArgument, ToolError};
use crate::auth::AccessToken;
use crate::permission::Permission;

/// One `tools/call` as the generated wrapper sees it: the raw arguments, the caller's verified token (if
/// any) and the MCP request context.
pub struct ToolCall {
    pub(crate) tool: &'static str,
    pub(crate) arguments: JsonObject,
    pub(crate) token: Option<AccessToken>,
    pub(crate) context: Option<RequestContext<RoleServer>>,
    pub(crate) input: Arc<ClientInput>,
    pub(crate) session_log_level: Option<SessionLogLevel>,
}

impl ToolCall {
    /// A call with no MCP session behind it: for unit tests of a tool and for benchmarks.
    pub fn new(tool: &'static str, arguments: JsonObject, token: Option<AccessToken>) -> Self {
        Self {
            tool,
            arguments,
            token,
            context: None,
            input: Arc::default(),
            session_log_level: None,
        }
    }

    pub(crate) fn with_context(mut self, context: RequestContext<RoleServer>) -> Self {
        self.context = Some(context);
        self
    }

    /// The answers a client sent back after an `input_required` result, checked against the
    /// `requestState` this server issued (under `sealer`, its own) for the same tool and caller.
    pub(crate) fn with_client_input(
        mut self,
        sealer: &StateSealer,
        responses: Option<InputResponses>,
        request_state: Option<&str>,
    ) -> Result<Self, ToolError> {
        let binding = input::binding(self.tool, self.token.as_ref());
        self.input = Arc::new(ClientInput::open(
            sealer,
            responses,
            request_state,
            &binding,
        )?);
        Ok(self)
    }

    /// The level the client chose with `logging/setLevel` for its session.
    pub(crate) fn with_session_log_level(mut self, level: SessionLogLevel) -> Self {
        self.session_log_level = Some(level);
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
    /// (authentication is the HTTP layer's job); otherwise the token must satisfy them, by the
    /// permission policy of the server that received it.
    pub fn guard(&self, permissions: &[Permission]) -> Result<(), ToolError> {
        match &self.token {
            Some(token) => Ok(token.check_permissions(permissions)?),
            None if permissions.is_empty() => Ok(()),
            None => {
                let scopes: Vec<&str> = permissions.iter().map(Permission::scope).collect();
                Err(ToolError::with_kind(
                    super::ToolErrorKind::Unauthenticated,
                    format!(
                        "tool `{}` requires the permissions {scopes:?}, and this request carries \
                         no verified access token",
                        self.tool
                    ),
                ))
            }
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

impl ToolArgument<Injected> for AccessToken {
    const IN_SCHEMA: bool = false;

    fn extract(call: &ToolCall, _name: &str) -> Result<Self, ToolError> {
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

    fn describe(_: &mut InputSchema, _: &str, _: Option<&str>, _: bool) {}
}

impl ToolArgument<Injected> for Option<AccessToken> {
    const IN_SCHEMA: bool = false;

    fn extract(call: &ToolCall, _name: &str) -> Result<Self, ToolError> {
        Ok(call.token.clone())
    }

    fn describe(_: &mut InputSchema, _: &str, _: Option<&str>, _: bool) {}
}

/// The MCP request behind a tool call: lets a tool talk back to the client while it runs (progress,
/// log messages) and ask it for input (sampling, elicitation, roots).
///
/// Take it as an argument of a `#[mcp_tool]` fn; it is injected, not part of the input schema:
///
/// ```
/// use toolgate::{mcp_tool, LogLevel, ToolContext};
///
/// /// Counts to three, reporting each step.
/// #[mcp_tool]
/// async fn count(ctx: ToolContext) -> String {
///     for step in 1..=3 {
///         ctx.progress(step as f64, Some(3.0), Some(&format!("step {step}"))).await;
///         ctx.log(LogLevel::Info, format!("reached {step}")).await;
///     }
///     "done".to_owned()
/// }
/// ```
#[derive(Clone)]
pub struct ToolContext {
    tool: &'static str,
    context: Option<RequestContext<RoleServer>>,
    input: Arc<ClientInput>,
    binding: Arc<str>,
    session_log_level: Option<SessionLogLevel>,
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

    /// The MCP name of the tool being called.
    pub fn tool_name(&self) -> &'static str {
        self.tool
    }

    /// The protocol version of this request: from its `_meta` (2026-07-28 and later), else the one
    /// the session negotiated.
    pub fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.context.as_ref().and_then(|c| c.protocol_version())
    }

    /// What the client declared it can do: from this request's `_meta` (2026-07-28 and later), else
    /// from the session's `initialize`.
    pub fn client_capabilities(&self) -> Option<ClientCapabilities> {
        self.context.as_ref().and_then(|c| c.client_capabilities())
    }

    /// The token the client attached to ask for progress notifications, if it did.
    pub fn progress_token(&self) -> Option<ProgressToken> {
        self.context
            .as_ref()
            .and_then(|c| c.meta.get_progress_token())
    }

    /// Reports progress (`notifications/progress`) when the client asked for it with a progress
    /// token; otherwise does nothing. `progress` should grow with every call; `total` is the value
    /// it reaches when done, if known. Returns whether a notification was sent: one that cannot be
    /// delivered (the client went away) is dropped, because the call is being cancelled anyway.
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: Option<&str>) -> bool {
        let (Some(context), Some(token)) = (&self.context, self.progress_token()) else {
            return false;
        };
        let mut notification = ProgressNotificationParam::new(token, progress);
        if let Some(total) = total {
            notification = notification.with_total(total);
        }
        if let Some(message) = message {
            notification = notification.with_message(message);
        }
        match context.peer.notify_progress(notification).await {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(tool = self.tool, %error, "a progress notification was not delivered");
                false
            }
        }
    }

    /// Whether a message at `level` reaches the client: at or above the level this request's
    /// `_meta` asks for (2026-07-28), or the session's `logging/setLevel`; without either, a session
    /// gets every level and a 2026-07-28 request none.
    pub fn log_enabled(&self, level: LogLevel) -> bool {
        let Some(context) = &self.context else {
            return false;
        };
        if let Some(requested) = context.meta.log_level() {
            return level >= LogLevel::from(requested);
        }
        if self
            .protocol_version()
            .is_some_and(|version| !version.has_initialize())
        {
            return false;
        }
        match self
            .session_log_level
            .as_ref()
            .and_then(SessionLogLevel::get)
        {
            Some(minimum) => level >= minimum,
            None => true,
        }
    }

    /// Sends a log message (`notifications/message`) to the client, named after the tool, when
    /// [`log_enabled`](Self::log_enabled) says the client wants that level. `data` is any JSON
    /// value: a string, or an object with detail. Returns whether it was sent.
    pub async fn log(&self, level: LogLevel, data: impl Serialize) -> bool {
        let Some(context) = &self.context else {
            return false;
        };
        if !self.log_enabled(level) {
            return false;
        }
        let data = match serde_json::to_value(data) {
            Ok(data) => data,
            Err(error) => {
                tracing::warn!(tool = self.tool, %error, "a log message could not be serialised");
                return false;
            }
        };
        match super::logging::send(&context.peer, level, self.tool, data).await {
            Ok(()) => true,
            Err(error) => {
                tracing::debug!(tool = self.tool, %error, "a log message was not delivered");
                false
            }
        }
    }

    /// Asks the client's user for structured input (`elicitation/create`). `key` names the question
    /// for the 2026-07-28 protocol, where the call ends with an `input_required` result and the
    /// client calls again with the answer: keep keys stable and distinct within a tool.
    ///
    /// Fails with JSON-RPC error -32021 when the client did not declare elicitation; the
    /// [`ElicitResult`] says whether the user accepted, declined or cancelled.
    pub async fn elicit(
        &self,
        key: impl Into<String>,
        params: ElicitRequestParams,
    ) -> Result<ElicitResult, ToolError> {
        let key = key.into();
        let answers = self
            .ask(Questions::new().elicit(key.clone(), params))
            .await?;
        answers.elicitation(&key)
    }

    /// Asks the client's model for a completion (`sampling/createMessage`). `key` as for
    /// [`elicit`](Self::elicit). Fails with -32021 when the client did not declare sampling.
    pub async fn sample(
        &self,
        key: impl Into<String>,
        params: CreateMessageRequestParams,
    ) -> Result<CreateMessageResult, ToolError> {
        let key = key.into();
        let answers = self
            .ask(Questions::new().sample(key.clone(), params))
            .await?;
        answers.sampling(&key)
    }

    /// Asks the client for its roots (`roots/list`). `key` as for [`elicit`](Self::elicit). Fails
    /// with -32021 when the client did not declare roots.
    pub async fn list_roots(&self, key: impl Into<String>) -> Result<ListRootsResult, ToolError> {
        let key = key.into();
        let answers = self.ask(Questions::new().list_roots(key.clone())).await?;
        answers.roots(&key)
    }

    /// Asks several questions at once. In a session (protocol 2025-11-25 and earlier) each is sent
    /// to the client as a request and awaited in turn. With 2026-07-28 the server cannot send
    /// requests: the answers the client already gave (in `inputResponses`, or carried over from
    /// earlier rounds in the sealed `requestState`) are used, and if any is missing the call ends
    /// with one `input_required` result that asks for all missing ones together, so `?` on this
    /// is all a tool does. A tool that asks in several steps is simply called again from the top
    /// with more answers each round.
    pub async fn ask(&self, questions: Questions) -> Result<Answers, ToolError> {
        let Some(context) = &self.context else {
            return Err(ToolError::new(format!(
                "tool `{}` asks the client for input, and this call has no MCP client behind it",
                self.tool
            )));
        };
        questions.check_capabilities(self.client_capabilities().as_ref())?;
        let answers_by_round_trip = self
            .protocol_version()
            .is_some_and(|version| !version.has_initialize());
        if answers_by_round_trip {
            questions.answer_from(&self.input, &self.binding)
        } else {
            questions.send(&context.peer, self.tool).await
        }
    }
}

impl ToolArgument<Injected> for ToolContext {
    const IN_SCHEMA: bool = false;

    fn extract(call: &ToolCall, _name: &str) -> Result<Self, ToolError> {
        Ok(Self {
            tool: call.tool,
            context: call.context.clone(),
            input: call.input.clone(),
            binding: input::binding(call.tool, call.token.as_ref()).into(),
            session_log_level: call.session_log_level.clone(),
        })
    }

    fn describe(_: &mut InputSchema, _: &str, _: Option<&str>, _: bool) {}
}
