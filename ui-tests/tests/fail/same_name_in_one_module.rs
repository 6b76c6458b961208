use toolgate::mcp_tool;

#[mcp_tool(name = "lookup", description = "Finds users")]
async fn find_users() {}

#[mcp_tool(name = "lookup", description = "Finds orders")]
async fn find_orders() {}

fn main() {}
