#![allow(deprecated)] // logging/setLevel is deprecated by SEP-2577 yet current in 2025-11-25

use std::sync::Arc;

use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, ErrorData, Implementation, JsonObject,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig,
    SetLevelRequestParams, Tool as McpTool,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};
use serde_json::json;

use super::Shared;
use super::handoff::token_of;
use crate::auth::AccessToken;
use crate::permission::Permission;
use crate::tool::{LogLevel, SessionLogLevel, ToolCall};

/// How long a client may reuse a `tools/list` answer: the list is fixed for the life of the
/// process, but a deploy can change it, so a minute keeps clients close to current.
const TOOLS_LIST_TTL_MS: u64 = 60_000;

/// The rmcp handler: lists and calls the registry's tools. One per MCP session.
#[derive(Clone)]
pub(crate) struct ToolgateHandler {
    shared: Arc<Shared>,
    log_level: SessionLogLevel,
}

impl ToolgateHandler {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            log_level: SessionLogLevel::default(),
        }
    }

    /// Tools that declare permissions are callable only with auth on and a token that satisfies
    /// them (by the server's policy, which the gate attached to the token).
    fn may_call(&self, permissions: &[Permission], token: Option<&AccessToken>) -> bool {
        match token {
            Some(token) if self.shared.auth_enabled() => {
                token.check_permissions(permissions).is_ok()
            }
            _ => permissions.is_empty(),
        }
    }
}

impl ServerHandler for ToolgateHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_logging()
                .build(),
        )
        .with_server_info(Implementation::new("toolgate", env!("CARGO_PKG_VERSION")))
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let token = token_of(&context);
        let list_all = self.shared.config.list_all_tools && self.shared.auth_enabled();
        let tools: Vec<McpTool> = self
            .shared
            .registry
            .iter()
            .filter_map(|tool| {
                let permissions = tool.def.permissions;
                if self.may_call(permissions, token.as_ref()) && !list_all {
                    return Some(tool.listing.clone());
                }
                if !list_all || !self.shared.auth_enabled() {
                    return None;
                }
                let mut listing = tool.listing.clone();
                let mut meta = JsonObject::new();
                meta.insert("toolgate/permissions".into(), json!(permissions));
                listing.meta = Some(rmcp::model::MetaObject(meta));
                Some(listing)
            })
            .collect();
        // Which tools are listed depends on the caller's token when auth is on, so only then is
        // the answer private to the caller.
        let scope = if self.shared.auth_enabled() {
            CacheScope::Private
        } else {
            CacheScope::Public
        };
        Ok(ListToolsResult {
            tools,
            ..Default::default()
        }
        .with_ttl_ms(TOOLS_LIST_TTL_MS)
        .with_cache_scope(scope))
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.log_level.set(LogLevel::from(request.level));
        Ok(())
    }

    fn get_tool(&self, name: &str) -> Option<McpTool> {
        self.shared.registry.get(name).map(|t| t.listing.clone())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = self.shared.registry.get(&request.name) else {
            return Err(ErrorData::invalid_params(
                format!("unknown tool `{}`", request.name),
                Some(json!({ "tool": request.name })),
            ));
        };
        if !self.shared.auth_enabled() && !self.may_call(tool.def.permissions, None) {
            // Fail closed: with auth off nobody can hold a permission.
            return Err(ErrorData::invalid_params(
                format!(
                    "tool `{}` requires permissions and authentication is off on this server",
                    tool.def.name
                ),
                Some(json!({ "tool": tool.def.name })),
            ));
        }
        let token = token_of(&context);
        let call = ToolCall::new(tool.def.name, request.arguments.unwrap_or_default(), token)
            .with_context(context)
            .with_session_log_level(self.log_level.clone())
            .with_client_input(
                &self.shared.state_sealer,
                request.input_responses,
                request.request_state.as_deref(),
            );
        let outcome = match call {
            Ok(call) => (tool.def.handler)(call).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(result) => Ok(result.into()),
            Err(error) => error.into_response(),
        }
    }
}
