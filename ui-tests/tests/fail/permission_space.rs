use toolgate::mcp_tool;

#[mcp_tool(description = "Reads", permissions = ["tool:read tool:write"])]
async fn read() {}

fn main() {}
