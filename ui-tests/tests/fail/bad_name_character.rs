use toolgate::mcp_tool;

#[mcp_tool(name = "read/all", description = "Reads")]
async fn read() {}

fn main() {}
