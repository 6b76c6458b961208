use toolgate::mcp_tool;

const READ: &str = "tool:read";

#[mcp_tool(description = "Reads", permissions = [READ])]
async fn read() {}

fn main() {}
