use toolgate::mcp_tool;

fn rules(schema: serde_json::Value) -> serde_json::Value {
    schema
}

/// Adds.
#[mcp_tool(refine_schema = rules)]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
