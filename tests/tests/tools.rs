//! The foundation over real HTTP: listing, calling, argument errors, unknown tools, Host checks,
//! both the session mode and the stateless JSON mode.

use rmcp::model::CallToolRequestParams;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};
use toolgate::{Server, ToolError, mcp_tool};
use toolgate_tests::{TestServer, mcp_post, mcp_post_as, tools_call_body};

/// Adds two integers.
#[mcp_tool]
async fn add(a: i64, #[arg(description = "the second addend")] b: i64) -> i64 {
    a + b
}

#[derive(Serialize, JsonSchema)]
struct Stats {
    sum: i64,
    count: usize,
}

#[mcp_tool(name = "stats", description = "Sum and count of some numbers")]
async fn numbers_stats(numbers: Vec<i64>) -> Stats {
    Stats {
        sum: numbers.iter().sum(),
        count: numbers.len(),
    }
}

#[mcp_tool(description = "Greets someone, or the world")]
async fn greet(name: Option<String>) -> String {
    format!("Hello, {}!", name.as_deref().unwrap_or("world"))
}

#[mcp_tool(description = "Fails on purpose")]
async fn fail(reason: String) -> Result<String, ToolError> {
    Err(ToolError::new(format!("failed: {reason}")))
}

#[mcp_tool(description = "A protected tool", permissions = ["tool:secret"])]
async fn secret() -> String {
    panic!("a protected body must never run with auth off")
}

fn builder(base: url::Url) -> toolgate::ServerBuilder {
    Server::builder()
        .config(toolgate::Config::without_auth(base))
        .tool::<add>()
        .tool::<numbers_stats>()
        .tool::<greet>()
        .tool::<fail>()
        .tool::<secret>()
}

fn args(value: Value) -> serde_json::Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[tokio::test]
async fn tools_list_shows_names_descriptions_and_schemas() {
    let server = TestServer::start(builder).await;
    let client = server.client(None).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    // The protected tool is hidden while auth is off.
    assert_eq!(names, ["add", "fail", "greet", "stats"]);

    let add = &tools[0];
    assert_eq!(add.description.as_deref(), Some("Adds two integers."));
    let schema = Value::Object((*add.input_schema).clone());
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["properties"]["a"]["type"], "integer");
    assert_eq!(
        schema["properties"]["b"]["description"],
        "the second addend"
    );
    assert_eq!(schema["required"], json!(["a", "b"]));
    assert!(add.output_schema.is_none(), "a number has no output schema");

    let greet = &tools[2];
    let schema = Value::Object((*greet.input_schema).clone());
    assert!(
        schema.get("required").is_none(),
        "an Option argument is optional: {schema}"
    );

    let stats = &tools[3];
    let output = Value::Object(
        (*stats
            .output_schema
            .clone()
            .expect("an object result has an output schema"))
        .clone(),
    );
    assert_eq!(output["type"], "object");
    assert_eq!(output["properties"]["sum"]["type"], "integer");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_call_returns_text_structured_content_and_tool_errors() {
    let server = TestServer::start(builder).await;
    let client = server.client(None).await.unwrap();

    let result = client
        .call_tool(CallToolRequestParams::new("add").with_arguments(args(json!({"a": 2, "b": 40}))))
        .await
        .unwrap();
    assert_eq!(result.content[0].as_text().unwrap().text, "42");
    assert_ne!(result.is_error, Some(true));

    let result = client
        .call_tool(
            CallToolRequestParams::new("stats").with_arguments(args(json!({"numbers": [1, 2, 3]}))),
        )
        .await
        .unwrap();
    assert_eq!(
        result.structured_content,
        Some(json!({"sum": 6, "count": 3}))
    );

    let result = client
        .call_tool(CallToolRequestParams::new("greet"))
        .await
        .unwrap();
    assert_eq!(result.content[0].as_text().unwrap().text, "Hello, world!");

    let result = client
        .call_tool(
            CallToolRequestParams::new("fail").with_arguments(args(json!({"reason": "no luck"}))),
        )
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(true));
    assert_eq!(result.content[0].as_text().unwrap().text, "failed: no luck");
    client.cancel().await.unwrap();
}

async fn call_error(server: &TestServer, name: &str, arguments: Value) -> rmcp::model::ErrorData {
    let client = server.client(None).await.unwrap();
    let error = client
        .call_tool(CallToolRequestParams::new(name.to_owned()).with_arguments(args(arguments)))
        .await
        .expect_err("the call must fail");
    client.cancel().await.unwrap();
    match error {
        rmcp::ServiceError::McpError(data) => data,
        other => panic!("expected a JSON-RPC error, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_arguments_are_invalid_params_naming_the_field() {
    let server = TestServer::start(builder).await;
    let error = call_error(&server, "add", json!({"a": "two", "b": 1})).await;
    assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert!(error.message.contains("`a`"), "{}", error.message);

    let error = call_error(&server, "add", json!({"a": 1})).await;
    assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert!(
        error.message.contains("missing required argument `b`"),
        "{}",
        error.message
    );

    let error = call_error(&server, "add", json!({"a": 1, "b": 2, "c": 3})).await;
    assert!(
        error.message.contains("unknown argument `c`"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn unknown_tools_and_protected_tools_without_auth_are_errors() {
    let server = TestServer::start(builder).await;
    let error = call_error(&server, "nope", json!({})).await;
    assert_eq!(error.code, rmcp::model::ErrorCode::INVALID_PARAMS);
    assert!(
        error.message.contains("unknown tool `nope`"),
        "{}",
        error.message
    );

    let error = call_error(&server, "secret", json!({})).await;
    assert!(
        error.message.contains("authentication is off"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn the_stateless_json_mode_serves_plain_json() {
    let server = TestServer::start(|base| builder(base).stateless(true)).await;
    let http = toolgate_tests::tls::http_client();
    for version in ["2025-11-25", "2026-07-28"] {
        let mut body: Value =
            serde_json::from_str(&tools_call_body("add", json!({"a": 1, "b": 2}))).unwrap();
        if version == "2026-07-28" {
            body["params"]["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": version,
                "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
                "io.modelcontextprotocol/clientCapabilities": {},
            });
        }
        let response = mcp_post_as(&http, &server.mcp_url(), body.to_string(), version)
            .header("mcp-method", "tools/call")
            .header("mcp-name", "add")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        assert_eq!(status, 200, "{version}: {text}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{version}"
        );
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            reply["result"]["content"][0]["text"], "3",
            "{version}: {reply}"
        );
    }
    // The rmcp client works against the stateless server too.
    let client = server.client(None).await.unwrap();
    assert_eq!(client.list_all_tools().await.unwrap().len(), 4);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_and_healthz_answers() {
    let server = TestServer::start(builder).await;
    let http = toolgate_tests::tls::http_client();
    let body = tools_call_body("add", json!({"a": 1, "b": 2}));
    let response = mcp_post(&http, &server.mcp_url(), body.clone())
        .header("host", "evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = mcp_post(&http, &server.mcp_url(), body.clone())
        .header("origin", "http://evil.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = mcp_post(&http, &server.mcp_url(), body)
        .header("host", format!("localhost:{}", server.addr.port()))
        .send()
        .await
        .unwrap();
    assert_ne!(
        response.status(),
        403,
        "loopback names are allowed for a loopback base URL"
    );
    let health = http
        .get(format!("{}/healthz", server.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn an_oversized_body_is_refused_with_413() {
    let server = TestServer::start(|base| builder(base).body_limit(1024)).await;
    let http = toolgate_tests::tls::http_client();
    let body = tools_call_body("greet", json!({"name": "x".repeat(4096)}));
    let response = mcp_post(&http, &server.mcp_url(), body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
}
