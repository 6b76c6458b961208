use toolgate::mcp_tool;

#[mcp_tool(description = "Reads", permissions = [concat!("tool:", "read")])]
async fn read() {}

fn main() {}
