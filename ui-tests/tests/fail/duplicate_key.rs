use toolgate::mcp_tool;

#[mcp_tool(name = "one", name = "two", description = "Twice")]
async fn twice() {}

fn main() {}
