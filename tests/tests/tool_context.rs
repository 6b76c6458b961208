//! What a tool does through `ToolContext`, seen by a real rmcp client over HTTP: progress and log
//! notifications, and questions (sampling, elicitation, roots) answered by the client, both in a
//! 2025-11-25 session (requests from the server) and with 2026-07-28 (`input_required` rounds).

#![allow(deprecated)] // sampling, roots and logging are deprecated by SEP-2577 yet current

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, CreateMessageRequestParams,
    CreateMessageResult, ElicitRequestParams, ElicitResult, ElicitationAction, ElicitationSchema,
    ErrorCode, Implementation, ListRootsResult, LoggingLevel, LoggingMessageNotificationParam,
    NumberOrString, ProgressNotificationParam, ProgressToken, ProtocolVersion, RequestMetaObject,
    Root, SamplingMessage, SetLevelRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, RunningService};
use rmcp::{ClientHandler, ErrorData, RoleClient, ServiceExt};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use toolgate::{Config, LogLevel, Questions, Server, ToolContext, ToolError, mcp_tool};
use toolgate_tests::{TestServer, mcp_post_as};

/// Reports progress three times and logs at four levels, then a marker.
#[mcp_tool]
async fn work(ctx: ToolContext) -> String {
    for (step, message) in [(1.0, "one"), (2.0, "two"), (3.0, "three")] {
        ctx.progress(step, Some(3.0), Some(message)).await;
    }
    let mut sent = Vec::new();
    for level in [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warning,
        LogLevel::Error,
    ] {
        if ctx
            .log(level, json!({ "level": format!("{level:?}") }))
            .await
        {
            sent.push(format!("{level:?}"));
        }
    }
    ctx.log(LogLevel::Emergency, "done").await;
    sent.join(",")
}

fn name_form() -> ElicitRequestParams {
    ElicitRequestParams::FormElicitationParams {
        meta: None,
        message: "What is your name?".into(),
        requested_schema: serde_json::from_value::<ElicitationSchema>(json!({
            "type": "object",
            "properties": { "name": { "type": "string" } },
            "required": ["name"]
        }))
        .unwrap(),
    }
}

/// Asks the three kinds of question at once.
#[mcp_tool]
async fn interview(ctx: ToolContext) -> Result<String, ToolError> {
    let answers = ctx
        .ask(
            Questions::new()
                .elicit("name", name_form())
                .sample(
                    "capital",
                    CreateMessageRequestParams::new(
                        vec![SamplingMessage::user_text("The capital of France?")],
                        20,
                    ),
                )
                .list_roots("roots"),
        )
        .await?;
    let name = answers.elicitation("name")?.content.unwrap_or_default()["name"].clone();
    let capital = answers.sampling("capital")?;
    let capital = capital
        .message
        .content
        .first()
        .and_then(|c| c.as_text())
        .unwrap()
        .text
        .clone();
    let roots: Vec<String> = answers
        .roots("roots")?
        .roots
        .into_iter()
        .map(|r| r.uri)
        .collect();
    Ok(format!(
        "{} / {capital} / {}",
        name.as_str().unwrap_or("?"),
        roots.join(",")
    ))
}

/// Asks one question, then another that depends on the first.
#[mcp_tool]
async fn two_steps(ctx: ToolContext) -> Result<String, ToolError> {
    let first = ctx.elicit("first", name_form()).await?;
    let name = first.content.unwrap_or_default()["name"].clone();
    let second = ctx.elicit("second", name_form()).await?;
    Ok(format!(
        "{} then {}",
        name.as_str().unwrap_or("?"),
        second.content.unwrap_or_default()["name"]
            .as_str()
            .unwrap_or("?")
    ))
}

fn builder(base: url::Url) -> toolgate::ServerBuilder {
    Server::builder()
        .config(Config::without_auth(base))
        .tool::<work>()
        .tool::<interview>()
        .tool::<two_steps>()
}

/// What the client saw, in arrival order.
#[derive(Debug)]
enum Seen {
    Progress(ProgressNotificationParam),
    Log(LoggingMessageNotificationParam),
}

/// A client that answers every question the way a user and a model would, and reports what the
/// server sent it.
#[derive(Clone)]
struct AnsweringClient {
    capabilities: Value,
    version: ProtocolVersion,
    seen: mpsc::UnboundedSender<Seen>,
    elicitations: Arc<AtomicUsize>,
}

impl AnsweringClient {
    fn new(capabilities: Value, version: ProtocolVersion) -> (Self, mpsc::UnboundedReceiver<Seen>) {
        let (seen, receiver) = mpsc::unbounded_channel();
        let client = Self {
            capabilities,
            version,
            seen,
            elicitations: Arc::default(),
        };
        (client, receiver)
    }
}

impl ClientHandler for AnsweringClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            serde_json::from_value::<ClientCapabilities>(self.capabilities.clone()).unwrap(),
            Implementation::new("toolgate-tests", "1"),
        )
        .with_protocol_version(self.version.clone())
    }

    async fn create_elicitation(
        &self,
        _request: ElicitRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<ElicitResult, ErrorData> {
        let count = self.elicitations.fetch_add(1, Ordering::SeqCst) + 1;
        let name = if count == 1 { "Alice" } else { "Bob" };
        Ok(ElicitResult::new(ElicitationAction::Accept).with_content(json!({ "name": name })))
    }

    async fn create_message(
        &self,
        _params: CreateMessageRequestParams,
        _context: RequestContext<RoleClient>,
    ) -> Result<CreateMessageResult, ErrorData> {
        Ok(CreateMessageResult::new(
            SamplingMessage::assistant_text("Paris"),
            "test-model".into(),
        ))
    }

    async fn list_roots(
        &self,
        _context: RequestContext<RoleClient>,
    ) -> Result<ListRootsResult, ErrorData> {
        Ok(ListRootsResult::new(vec![Root::new("file:///work")]))
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.seen.send(Seen::Progress(params));
    }

    async fn on_logging_message(
        &self,
        params: LoggingMessageNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let _ = self.seen.send(Seen::Log(params));
    }
}

const EVERY_CAPABILITY: fn() -> Value =
    || json!({ "sampling": {}, "elicitation": {}, "roots": {} });

async fn session_client(
    server: &TestServer,
    client: AnsweringClient,
) -> RunningService<RoleClient, AnsweringClient> {
    client
        .serve(toolgate_tests::tls::rmcp_transport(server.mcp_url()))
        .await
        .expect("the client connects")
}

async fn stateless_client(
    server: &TestServer,
    client: AnsweringClient,
) -> RunningService<RoleClient, AnsweringClient> {
    use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
    client
        .serve_with_lifecycle(
            toolgate_tests::tls::rmcp_transport(server.mcp_url()),
            ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            },
        )
        .await
        .expect("the client connects")
}

fn text_of(result: &rmcp::model::CallToolResult) -> String {
    result.content[0]
        .as_text()
        .expect("a text block")
        .text
        .clone()
}

/// Collects notifications until the `done` marker and the given numbers of progress and other log
/// messages have arrived (a client may handle notifications out of order); the deadline only stops
/// a broken run from hanging.
async fn collect(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    progress_wanted: usize,
    logs_wanted: usize,
) -> (
    Vec<ProgressNotificationParam>,
    Vec<LoggingMessageNotificationParam>,
) {
    let mut progress = Vec::new();
    let mut logs = Vec::new();
    let mut done = false;
    while !done || progress.len() < progress_wanted || logs.len() < logs_wanted {
        let next = tokio::time::timeout(Duration::from_secs(30), seen.recv())
            .await
            .unwrap_or_else(|_| panic!("still waiting; so far {progress:?} {logs:?}"))
            .expect("the client is still running");
        match next {
            Seen::Progress(p) => progress.push(p),
            Seen::Log(log) if log.data == json!("done") => done = true,
            Seen::Log(log) => logs.push(log),
        }
    }
    progress.sort_by(|a, b| a.progress.total_cmp(&b.progress));
    logs.sort_by_key(|log| LogLevel::from(log.level));
    (progress, logs)
}

fn with_progress_token(name: &'static str, token: &str) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new(name);
    params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::String(token.into()),
    )));
    params
}

#[tokio::test]
async fn a_session_client_gets_progress_and_the_log_levels_it_set() {
    let server = TestServer::start(builder).await;
    let (client, mut seen) =
        AnsweringClient::new(EVERY_CAPABILITY(), ProtocolVersion::V_2025_11_25);
    let client = session_client(&server, client).await;

    client
        .set_level(SetLevelRequestParams::new(LoggingLevel::Warning))
        .await
        .unwrap();
    let result = client
        .call_tool(with_progress_token("work", "w-1"))
        .await
        .unwrap();
    assert_eq!(
        text_of(&result),
        "Warning,Error",
        "the tool knows what was sent"
    );

    let (progress, logs) = collect(&mut seen, 3, 2).await;
    let steps: Vec<(f64, Option<f64>, Option<&str>)> = progress
        .iter()
        .map(|p| (p.progress, p.total, p.message.as_deref()))
        .collect();
    assert_eq!(
        steps,
        [
            (1.0, Some(3.0), Some("one")),
            (2.0, Some(3.0), Some("two")),
            (3.0, Some(3.0), Some("three"))
        ]
    );
    let levels: Vec<LoggingLevel> = logs.iter().map(|l| l.level).collect();
    assert_eq!(levels, [LoggingLevel::Warning, LoggingLevel::Error]);
    assert!(
        logs.iter().all(|l| l.logger.as_deref() == Some("work")),
        "{logs:?}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn without_a_level_a_session_gets_every_log_message() {
    let server = TestServer::start(builder).await;
    let (client, mut seen) =
        AnsweringClient::new(EVERY_CAPABILITY(), ProtocolVersion::V_2025_11_25);
    let client = session_client(&server, client).await;
    let result = client
        .call_tool(CallToolRequestParams::new("work"))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "Debug,Info,Warning,Error");
    // rmcp's client asks for progress on every call.
    let (_, logs) = collect(&mut seen, 3, 4).await;
    let levels: Vec<LoggingLevel> = logs.iter().map(|l| l.level).collect();
    assert_eq!(
        levels,
        [
            LoggingLevel::Debug,
            LoggingLevel::Info,
            LoggingLevel::Warning,
            LoggingLevel::Error
        ]
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_session_client_answers_sampling_elicitation_and_roots_requests() {
    let server = TestServer::start(builder).await;
    let (client, _seen) = AnsweringClient::new(EVERY_CAPABILITY(), ProtocolVersion::V_2025_11_25);
    let elicitations = client.elicitations.clone();
    let client = session_client(&server, client).await;

    let result = client
        .call_tool(CallToolRequestParams::new("interview"))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "Alice / Paris / file:///work");
    let result = client
        .call_tool(CallToolRequestParams::new("two_steps"))
        .await
        .unwrap();
    assert_eq!(
        text_of(&result),
        "Bob then Bob",
        "each elicit is one request"
    );
    assert_eq!(elicitations.load(Ordering::SeqCst), 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_2026_client_answers_the_same_questions_in_input_required_rounds() {
    let server = TestServer::start(builder).await;
    let (client, _seen) = AnsweringClient::new(EVERY_CAPABILITY(), ProtocolVersion::V_2026_07_28);
    let elicitations = client.elicitations.clone();
    let client = stateless_client(&server, client).await;

    let result = client
        .call_tool(CallToolRequestParams::new("interview"))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "Alice / Paris / file:///work");
    // Round one asks `first`; round two carries its answer in the sealed state and asks `second`.
    let result = client
        .call_tool(CallToolRequestParams::new("two_steps"))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "Bob then Bob");
    assert_eq!(elicitations.load(Ordering::SeqCst), 3);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_client_without_the_capability_gets_error_32021_naming_it() {
    let server = TestServer::start(builder).await;
    for version in [ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28] {
        let (client, _seen) = AnsweringClient::new(json!({ "sampling": {} }), version.clone());
        let modern = !version.has_initialize();
        let client = if modern {
            stateless_client(&server, client).await
        } else {
            session_client(&server, client).await
        };
        let error = client
            .call_tool(CallToolRequestParams::new("interview"))
            .await
            .expect_err("elicitation and roots were not declared");
        let rmcp::ServiceError::McpError(error) = error else {
            panic!("{version}: expected a JSON-RPC error, got {error:?}");
        };
        assert_eq!(
            error.code,
            ErrorCode::MISSING_REQUIRED_CLIENT_CAPABILITY,
            "{version}"
        );
        let data = error.data.unwrap_or_default().to_string();
        assert!(
            data.contains("elicitation") && data.contains("roots"),
            "{version}: {data}"
        );
        client.cancel().await.unwrap();
    }
}

/// The 2026-07-28 wire by hand: what a client sees, and what a client that edits the state gets.
#[tokio::test]
async fn an_edited_request_state_is_refused_and_a_genuine_one_completes() {
    let server = TestServer::start(|base| builder(base).stateless(true)).await;
    let http = toolgate_tests::tls::http_client();
    let call = |params: Value| {
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { "name": "t", "version": "1" },
            "io.modelcontextprotocol/clientCapabilities": { "elicitation": {} },
        });
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params });
        mcp_post_as(&http, &server.mcp_url(), body.to_string(), "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", params_name(&body))
            .send()
    };
    let first: Value = call(json!({ "name": "two_steps" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    assert!(
        first["result"]["inputRequests"]["first"].is_object(),
        "{first}"
    );
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();

    let answer = json!({ "first": { "action": "accept", "content": { "name": "Carol" } } });
    let mut edited = state.clone().into_bytes();
    let middle = edited.len() / 2;
    edited[middle] = if edited[middle] == b'x' { b'y' } else { b'x' };
    let edited = String::from_utf8(edited).unwrap();
    let refused: Value =
        call(json!({ "name": "two_steps", "inputResponses": answer, "requestState": edited }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    assert!(refused.get("result").is_none(), "{refused}");

    let second: Value =
        call(json!({ "name": "two_steps", "inputResponses": answer, "requestState": state }))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert!(
        second["result"]["inputRequests"]["second"].is_object(),
        "{second}"
    );
    let third: Value = call(json!({
        "name": "two_steps",
        "inputResponses": { "second": { "action": "accept", "content": { "name": "Dan" } } },
        "requestState": second["result"]["requestState"],
    }))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        third["result"]["content"][0]["text"], "Carol then Dan",
        "{third}"
    );
}

/// Calls `two_steps` on `server` the 2026-07-28 way, by hand.
async fn call_2026(server: &TestServer, params: Value) -> Value {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": { "name": "t", "version": "1" },
        "io.modelcontextprotocol/clientCapabilities": { "elicitation": {} },
    });
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params });
    let http = toolgate_tests::tls::http_client();
    mcp_post_as(&http, &server.mcp_url(), body.to_string(), "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", params_name(&body))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The sealing key is each server's own, from its `JWT_SIGNING_KEY`: a replica with the same key
/// opens the state, a server in the same process with another key refuses it.
#[tokio::test]
async fn a_request_state_opens_only_on_servers_with_the_same_signing_key() {
    let with_key = |key: &'static str| {
        move |base: url::Url| {
            let mut config = Config::without_auth(base.clone());
            config.jwt_signing_key = Some(toolgate::SecretString::new(key));
            builder(base).config(config).stateless(true)
        }
    };
    let first_key = "the-first-signing-key-of-forty-characters!";
    let issuer = TestServer::start(with_key(first_key)).await;
    let replica = TestServer::start(with_key(first_key)).await;
    let other = TestServer::start(with_key("another-signing-key-of-forty-characters!!")).await;

    let first = call_2026(&issuer, json!({ "name": "two_steps" })).await;
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    let answer = json!({ "first": { "action": "accept", "content": { "name": "Carol" } } });
    let again = json!({ "name": "two_steps", "inputResponses": answer, "requestState": state });

    let refused = call_2026(&other, again.clone()).await;
    assert_eq!(refused["error"]["code"], -32602, "{refused}");
    let opened = call_2026(&replica, again).await;
    assert!(
        opened["result"]["inputRequests"]["second"].is_object(),
        "{opened}"
    );
}

fn params_name(body: &Value) -> String {
    body["params"]["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_2026_request_gets_log_messages_only_from_the_level_its_meta_asks_for() {
    let server = TestServer::start(builder).await;
    let (client, mut seen) =
        AnsweringClient::new(EVERY_CAPABILITY(), ProtocolVersion::V_2026_07_28);
    let client = stateless_client(&server, client).await;

    let mut params = CallToolRequestParams::new("work");
    let mut meta = RequestMetaObject::new();
    meta.set_log_level(LoggingLevel::Warning);
    params.meta = Some(meta);
    let result = client.call_tool(params).await.unwrap();
    assert_eq!(text_of(&result), "Warning,Error");
    let (_, logs) = collect(&mut seen, 3, 2).await;
    let levels: Vec<LoggingLevel> = logs.iter().map(|l| l.level).collect();
    assert_eq!(levels, [LoggingLevel::Warning, LoggingLevel::Error]);

    // Without a level in `_meta` a 2026-07-28 request asked for no log messages at all.
    let result = client
        .call_tool(CallToolRequestParams::new("work"))
        .await
        .unwrap();
    assert_eq!(text_of(&result), "");
    client.cancel().await.unwrap();
}
