//! Input-schema features of `#[mcp_tool]` over real HTTP: an argument mirrored in an
//! `Mcp-Param-*` header (checked against the body on 2026-07-28 requests) and cross-field rules
//! added with `refine_schema`.

use serde_json::{Value, json};
use toolgate::{Config, Server, mcp_tool};
use toolgate_tests::{TestServer, mcp_post_as};

/// Runs a job in a region.
#[mcp_tool(refine_schema = needs_a_target)]
async fn run_job(
    #[arg(header = "Region", description = "where to run")] region: String,
    host: Option<String>,
    pool: Option<String>,
) -> String {
    format!("{region}: {}", host.or(pool).unwrap_or_default())
}

fn needs_a_target(schema: &mut serde_json::Map<String, Value>) {
    schema.insert(
        "anyOf".into(),
        json!([{ "required": ["host"] }, { "required": ["pool"] }]),
    );
}

fn builder(base: url::Url) -> toolgate::ServerBuilder {
    Server::builder()
        .config(Config::without_auth(base))
        .tool::<run_job>()
        .stateless(true)
}

async fn call(server: &TestServer, region_header: Option<&str>) -> (u16, Value) {
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {
            "name": "run_job",
            "arguments": { "region": "eu-west", "host": "h1" },
            "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientInfo": { "name": "t", "version": "1" },
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        }
    });
    let http = toolgate_tests::tls::http_client();
    let mut request = mcp_post_as(&http, &server.mcp_url(), body.to_string(), "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "run_job");
    if let Some(region) = region_header {
        request = request.header("mcp-param-region", region);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_listing_carries_the_header_annotation_and_the_added_rules() {
    let server = TestServer::start(builder).await;
    let client = server.client(None).await.unwrap();
    let tools = client.list_all_tools().await.unwrap();
    let schema = Value::Object((*tools[0].input_schema).clone());
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["properties"]["region"]["x-mcp-header"], "Region",
        "{schema}"
    );
    assert_eq!(
        schema["properties"]["region"]["description"],
        "where to run"
    );
    assert!(schema["properties"]["host"].get("x-mcp-header").is_none());
    assert_eq!(
        schema["anyOf"],
        json!([{ "required": ["host"] }, { "required": ["pool"] }])
    );
    assert_eq!(schema["required"], json!(["region"]));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn a_header_that_matches_the_argument_passes_and_a_missing_or_different_one_is_refused() {
    let server = TestServer::start(builder).await;

    let (status, reply) = call(&server, Some("eu-west")).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["result"]["content"][0]["text"], "eu-west: h1");

    for (header, case) in [(None, "missing"), (Some("us-east"), "different")] {
        let (status, reply) = call(&server, header).await;
        assert_eq!(status, 400, "{case}: {reply}");
        assert_eq!(reply["error"]["code"], -32020, "{case}: {reply}");
        assert!(reply.get("result").is_none(), "{case}: {reply}");
    }
}
