use toolgate::mcp_tool;

/// Adds.
#[mcp_tool(refine_schema = "rules")]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
