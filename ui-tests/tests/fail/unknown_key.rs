use toolgate::mcp_tool;

#[mcp_tool(description = "Reads", permission = ["tool:read"])]
async fn read() -> String {
    String::new()
}

fn main() {}
