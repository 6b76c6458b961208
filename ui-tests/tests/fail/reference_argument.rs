use toolgate::mcp_tool;

/// Greets.
#[mcp_tool]
async fn greet(name: &str) -> String {
    name.to_owned()
}

fn main() {}
