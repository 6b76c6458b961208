//! Every supported form of `#[mcp_tool]`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolgate::{AccessToken, Contents, ToolContext, ToolError, mcp_tool};

/// The doc comment is the description.
#[mcp_tool]
async fn defaults(a: i64, b: i64) -> i64 {
    a + b
}

#[mcp_tool(name = "named.tool-v2", description = "Explicit name and description")]
async fn explicit() -> String {
    "ok".to_owned()
}

#[mcp_tool(description = "Needs two permissions", permissions = ["tool:read", "tool:write"])]
pub async fn protected(token: AccessToken) -> Result<String, ToolError> {
    let profile = token.user_info().await?;
    Ok(profile.sub)
}

#[mcp_tool(description = "Optional token and a context")]
pub(crate) async fn extractors(token: Option<AccessToken>, context: ToolContext) -> bool {
    token.is_some() && !context.is_cancelled()
}

#[derive(Deserialize, JsonSchema)]
struct Query {
    text: String,
    limit: Option<u32>,
}

#[derive(Serialize, JsonSchema)]
struct Answer {
    hits: Vec<String>,
}

#[mcp_tool(description = "Structured in and out")]
async fn search(
    #[arg(description = "what to look for")] query: Query,
    #[arg(description = "case-sensitive?")] exact: Option<bool>,
) -> Answer {
    let _ = (query.text, query.limit, exact);
    Answer { hits: Vec::new() }
}

#[mcp_tool(description = "Returns nothing")]
async fn nothing() {}

/// Arguments mirrored in headers, and a cross-field rule added to the schema.
#[mcp_tool(refine_schema = one_of_them)]
async fn routed(
    #[arg(header = "Region", description = "where to run")] region: String,
    #[arg(header = "Shard")] shard: u32,
    #[arg(header = "Dry-Run")] dry_run: bool,
    note: Option<String>,
    tag: Option<String>,
) -> String {
    format!("{region}/{shard}/{dry_run}/{note:?}/{tag:?}")
}

fn one_of_them(schema: &mut serde_json::Map<String, serde_json::Value>) {
    schema.insert(
        "anyOf".into(),
        serde_json::json!([{ "required": ["note"] }, { "required": ["tag"] }]),
    );
}

#[mcp_tool(description = "Any std error converts with ?")]
async fn io_error(path: String) -> Result<String, std::io::Error> {
    std::fs::read_to_string(path)
}

#[mcp_tool(description = "A Result alias")]
async fn aliased() -> std::io::Result<u8> {
    Ok(1)
}

#[mcp_tool(description = "Raw content blocks")]
async fn image() -> Contents {
    Contents(vec![toolgate::rmcp::model::ContentBlock::text("a picture")])
}

#[mcp_tool(description = "A raw identifier")]
async fn r#type(mut r#in: i64) -> i64 {
    r#in += 1;
    r#in
}

mod nested {
    /// A tool in another module may share no name with the ones above.
    #[toolgate::mcp_tool]
    pub async fn nested_tool() -> f64 {
        1.5
    }
}

fn main() {
    let server = toolgate::Server::builder()
        .tool::<defaults>()
        .tool::<explicit>()
        .tool::<protected>()
        .tool::<extractors>()
        .tool::<search>()
        .tool::<nothing>()
        .tool::<io_error>()
        .tool::<aliased>()
        .tool::<image>()
        .tool::<r#type>()
        .tool::<nested::nested_tool>()
        .tool::<routed>()
        .build()
        .unwrap();
    assert_eq!(server.registry().len(), 12);
    // Every linked tool is found without being listed.
    assert_eq!(toolgate::Registry::from_linked().unwrap().len(), 12);
    let schema = (<routed as toolgate::Tool>::DEF.input_schema)();
    assert_eq!(schema["properties"]["region"]["x-mcp-header"], "Region");
    assert_eq!(schema["properties"]["shard"]["x-mcp-header"], "Shard");
    assert!(schema["properties"]["note"].get("x-mcp-header").is_none());
    assert_eq!(schema["anyOf"][1]["required"][0], "tag");
    // The user's fns are still ordinary fns.
    let _ = defaults(1, 2);
}
