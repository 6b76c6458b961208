use toolgate::mcp_tool;

/// Adds.
#[mcp_tool]
async fn add(#[arg(desc = "first")] a: i64) -> i64 {
    a
}

fn main() {}
