use toolgate::mcp_tool;

#[mcp_tool(description = "Reads", permissions = ["tool:lire-é"])]
async fn read() {}

fn main() {}
