use toolgate::mcp_tool;

#[mcp_tool(description = "Reads", permissions = [])]
async fn read() {}

fn main() {}
