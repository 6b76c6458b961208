use toolgate::mcp_tool;

#[mcp_tool(description = "Adds", permissions = ["tool:add", "tool:add"])]
async fn add(a: i64, b: i64) -> i64 {
    a + b
}

// The fn is still emitted, so this call adds no second error.
async fn caller() -> i64 {
    add(1, 2).await
}

fn main() {
    let _ = caller;
}
