//! How the caller's verified token crosses rmcp, from the gate (an axum layer) to the handler (an
//! rmcp `ServerHandler`), which share no state of their own per request.

use rmcp::RoleServer;
use rmcp::service::RequestContext;

use crate::auth::AccessToken;

/// The token the gate verified for the HTTP request behind `context`, if it carried one.
///
/// The gate inserts the `AccessToken` into the HTTP request's extensions. rmcp's
/// `StreamableHttpService` consumes the request's body and puts the rest of the request, its
/// `http::request::Parts` with those extensions, into the extensions of the JSON-RPC request it
/// dispatches, which the handler reads as `RequestContext::extensions`. rmcp documents this on
/// `StreamableHttpService` ("Accessing HTTP request data from tool handlers"); it is the one
/// contract between the two, and the test below fails if rmcp stops keeping the parts.
pub(crate) fn token_of(context: &RequestContext<RoleServer>) -> Option<AccessToken> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<AccessToken>())
        .cloned()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rmcp::ServerHandler;
    use rmcp::model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ErrorData,
        ServerCapabilities, ServerConfig,
    };
    use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
    use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
    use serde_json::{Value, json};
    use tower::ServiceExt;

    use super::*;
    use crate::auth::{Audience, Claims};

    /// Answers every call with the subject of the token that reached it.
    struct Echo;

    impl ServerHandler for Echo {
        fn get_info(&self) -> ServerConfig {
            ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        }

        async fn call_tool(
            &self,
            _request: CallToolRequestParams,
            context: RequestContext<RoleServer>,
        ) -> Result<CallToolResponse, ErrorData> {
            let subject =
                token_of(&context).map_or_else(|| "none".to_owned(), |t| t.claims().sub.clone());
            Ok(CallToolResult::success(vec![ContentBlock::text(subject)]).into())
        }
    }

    fn token(subject: &str) -> AccessToken {
        let claims = Claims {
            iss: "https://issuer.example/".into(),
            sub: subject.into(),
            aud: Audience::One("https://api.example".into()),
            exp: i64::MAX,
            iat: None,
            nbf: None,
            scope: None,
            permissions: Vec::new(),
            azp: None,
            extra: Default::default(),
        };
        AccessToken::new("raw".into(), claims, None)
    }

    /// One stateless `tools/call` through rmcp's HTTP service, `token` on the HTTP request as the
    /// gate leaves it.
    async fn call(token: Option<AccessToken>) -> String {
        let config = StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_legacy_session_mode(false)
            .with_json_response(true);
        let service = StreamableHttpService::new(
            || Ok(Echo),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "echo", "arguments": {} }
        });
        let mut request = http::Request::post("http://localhost/mcp")
            .header(http::header::HOST, "localhost")
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        if let Some(token) = token {
            request.extensions_mut().insert(token);
        }
        let response = service.oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 20)
            .await
            .unwrap();
        let reply: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
        reply["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_else(|| panic!("no text in {reply}"))
            .to_owned()
    }

    #[tokio::test]
    async fn the_token_on_the_http_request_reaches_the_handler_through_rmcp() {
        assert_eq!(call(Some(token("auth0|alice"))).await, "auth0|alice");
        assert_eq!(call(None).await, "none");
    }
}
