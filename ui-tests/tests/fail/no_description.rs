use toolgate::mcp_tool;

#[mcp_tool(permissions = ["tool:read"])]
async fn read() {}

fn main() {}
