use toolgate::mcp_tool;

#[mcp_tool(description = "Adds")]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

fn main() {}
